#!/usr/bin/env bash
# A local three-node fd cluster: started, joined into one cluster, shown,
# one node killed and seen failed, the rest stopped. Run by `make demo` after
# the release build, or by hand:  examples/demo.sh
#
# Narration goes to stderr, data (the nodes' JSON) to stdout, so
#   examples/demo.sh 2>/dev/null | jq -c .
# shows the records only. Everything lives in a temporary directory that is
# removed at the end, on error and on Ctrl-C; the nodes are stopped with
# SIGTERM and a bounded wait (then SIGKILL).
#
# Each step is one function called from main(); later steps (registry,
# pub/sub, partitions) go in as more functions.
#
# Environment: FD_BIN (where the binaries are; default ./bin of the tree),
# FD_DEMO_NODES (default "n1 n2 n3"; at least 2), FD_DEMO_KEEP=1 keeps the
# temp dir.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${FD_BIN:-$root/bin}
read -r -a names <<<"${FD_DEMO_NODES:-n1 n2 n3}"
PATH=$bin:$PATH
# The membership timings for nodes on one host (fd-node(1), PROFILES).
profile=local

tmp=
declare -A addr=() pid=()

if [ -t 2 ]; then
	bold=$'\e[1m' dim=$'\e[2m' red=$'\e[31m' off=$'\e[0m'
else
	bold='' dim='' red='' off=''
fi

section() { printf '\n%s== %s%s\n' "$bold" "$*" "$off" >&2; }
say() { printf '%s\n' "$*" >&2; }
shown() { printf '%s$ %s%s\n' "$dim" "$*" "$off" >&2; }
run_shown() {
	shown "$@"
	"$@"
}
die() {
	printf '%sdemo: %s%s\n' "$red" "$*" "$off" >&2
	exit 1
}

# True while the process exists (the daemons are not our children, so no
# zombie can fool kill -0).
alive() { kill -0 "$1" 2>/dev/null; }

# stop_node NAME: SIGTERM, up to 5 s for a clean exit, then SIGKILL.
stop_node() {
	local name=$1 p=${pid[$1]:-} i
	[ -n "$p" ] || return 0
	if ! alive "$p"; then
		say "$name (pid $p) had already exited"
		unset "pid[$name]"
		return 0
	fi
	kill -TERM "$p" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		alive "$p" || break
		sleep 0.05
	done
	if alive "$p"; then
		say "${red}$name (pid $p) ignored SIGTERM; killing it${off}"
		kill -KILL "$p" 2>/dev/null || true
	else
		say "stopped $name (pid $p)"
	fi
	unset "pid[$name]"
}

cleanup() {
	local rc=$? name
	trap - EXIT INT TERM
	set +e
	for name in "${!pid[@]}"; do
		stop_node "$name"
	done
	# A node started but not yet recorded still has its pid file.
	if [ -n "$tmp" ] && [ -d "$tmp" ]; then
		local f p
		for f in "$tmp"/*.pid; do
			[ -s "$f" ] || continue
			p=$(cat "$f")
			if [[ $p =~ ^[0-9]+$ ]] && alive "$p"; then
				kill -TERM "$p" 2>/dev/null
			fi
		done
		if [ "$rc" -ne 0 ]; then
			for f in "$tmp"/*.log; do
				[ -s "$f" ] || continue
				say "--- ${f##*/} (last lines)"
				tail -n 5 "$f" >&2
			done
		fi
		if [ "${FD_DEMO_KEEP:-0}" = 1 ]; then
			say "kept $tmp"
		else
			rm -rf "$tmp"
		fi
	fi
	[ "$rc" -eq 0 ] || say "${red}demo failed (exit $rc)${off}"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

check_tools() {
	local b
	for b in fd-node fd-discover fd-join; do
		command -v "$b" >/dev/null || die "$b not found in $bin (run 'make' first)"
	done
	[ "${#names[@]}" -ge 2 ] || die "FD_DEMO_NODES: at least two nodes, please"
	command -v jq >/dev/null || die "jq not found (scripts/install-deps installs it)"
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/fd-demo.XXXXXX")
}

start_nodes() {
	section "Starting ${#names[@]} nodes on 127.0.0.1, each on a free port"
	say "Each runs in the background (--detach); fd-node returns once the node"
	say "is ready and prints its identity line: that line says where it is."
	say "They do not know each other yet."
	local name line
	for name in "${names[@]}"; do
		shown fd-node --detach --profile "$profile" --name "$name" --listen 127.0.0.1:0 \
			--pid-file "$tmp/$name.pid" --log-file "$tmp/$name.log"
		line=$(timeout 20 fd-node --detach --profile "$profile" --name "$name" \
			--listen 127.0.0.1:0 --pid-file "$tmp/$name.pid" --log-file "$tmp/$name.log") ||
			die "$name did not start"
		printf '%s\n' "$line"
		addr[$name]=$(jq -r .addr <<<"$line")
		pid[$name]=$(jq -r .pid <<<"$line")
		if [ -z "${addr[$name]}" ] || [ "${addr[$name]}" = null ]; then
			die "$name: no address in '$line'"
		fi
	done
	say
	for name in "${names[@]}"; do
		say "  $name  ${addr[$name]}  pid ${pid[$name]}  log $tmp/$name.log"
	done
}

show_info() {
	local first=${names[0]}
	section "Asking $first about itself (fd-node info, GET /v1/info)"
	run_shown fd-node info -n "${addr[$first]}" |
		jq -c '{name, addr, profile, members, partitioned}'
}

# join_cluster: the others' addresses, found by a discovery strategy (here
# the simplest, a static list), piped into fd-join, which asks the first node
# to join them and waits until it sees every node alive.
join_cluster() {
	local first=${names[0]} n=${#names[@]} name peers=()
	for name in "${names[@]:1}"; do
		peers+=("${addr[$name]}")
	done
	section "Joining them into one cluster (fd-discover | fd-join)"
	say "fd-discover prints each peer as a JSON line; fd-join asks $first to"
	say "join each one, prints one result per peer, then waits for $n alive."
	shown "fd-discover static ${peers[*]} | fd-join -n ${addr[$first]} --expect $n --timeout 10s"
	fd-discover static "${peers[@]}" |
		fd-join -n "${addr[$first]}" --expect "$n" --timeout 10s ||
		die "the cluster did not form"
}

show_members() {
	local first=${names[0]}
	section "The members as $first sees them (fd-node members, GET /v1/members)"
	run_shown fd-node members -n "${addr[$first]}" --format table >&2
}

# state_of NODE MEMBER: MEMBER's state as NODE sees it.
state_of() {
	fd-node members -n "${addr[$1]}" -t 2s |
		jq -r --arg m "$2" 'select(.name == $m) | .state'
}

# kill_one: SIGKILL the last node (no goodbye), then poll the others, with a
# deadline, until each of them has marked it failed.
kill_one() {
	local victim=${names[-1]} name i done_all t0 ms
	section "Killing $victim with SIGKILL: the others must notice"
	say "No goodbye: the others find out by probing it (SWIM). With the local"
	say "profile that takes about a second."
	shown kill -KILL "${pid[$victim]}"
	t0=${EPOCHREALTIME/./}
	kill -KILL "${pid[$victim]}"
	unset "pid[$victim]"
	rm -f "$tmp/$victim.pid"
	for ((i = 0; i < 100; i++)); do
		done_all=1
		for name in "${names[@]}"; do
			[ "$name" != "$victim" ] || continue
			[ "$(state_of "$name" "$victim")" = failed ] || done_all=0
		done
		[ "$done_all" = 0 ] || break
		sleep 0.1
	done
	[ "$done_all" = 1 ] || die "after 10 s, not every node had marked $victim failed"
	ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
	say "every other node had marked $victim failed within $ms ms"
	show_members
}

# Registry: a name registered on the first node, looked up on the last
# (replicated as a delta CRDT), a taken name refused, a watcher told.
registry_demo() {
	local first=${names[0]} last=${names[${#names[@]} - 1]} w i
	section "Registry: register on $first, look up on $last"
	shown "fd-registry -n ${addr[$last]} watch --prefix svc. --count 2 &"
	fd-registry -n "${addr[$last]}" watch --prefix svc. --count 2 -t 10s &
	w=$!
	# the first change must find the watch connected
	for ((i = 0; i < 100; i++)); do
		fd-node info -n "${addr[$last]}" |
			jq -e '.registry.watchers > 0' >/dev/null && break
		sleep 0.05
	done
	run_shown fd-registry -n "${addr[$first]}" register svc.db 10.0.0.5:5432 >/dev/null
	run_shown fd-registry -n "${addr[$last]}" lookup --wait 5s svc.db |
		jq -c '{name, value, owner}'
	shown "fd-registry -n ${addr[$last]} register svc.db 10.0.0.9:5432   # taken: exit 4"
	if fd-registry -n "${addr[$last]}" register svc.db 10.0.0.9:5432; then
		die "a taken name was registered twice"
	fi
	run_shown fd-registry -n "${addr[$first]}" unregister svc.db >/dev/null
	wait "$w" || die "the watcher did not see both changes"
}

# Later: partition and heal (fd-partition): one more function called from
# main().

# stop_nodes: the first node leaves through the API (fd-node leave), the
# others get SIGTERM, which is a graceful leave too: peers record "left".
stop_nodes() {
	section "Stopping the rest (fd-node leave, SIGTERM: graceful leaves)"
	local first=${names[0]} name p i gone=()
	for name in "${names[@]:1}"; do
		[ -n "${pid[$name]:-}" ] || continue
		shown kill -TERM "${pid[$name]}"
		stop_node "$name"
		gone+=("$name")
	done
	# They said goodbye: the first node records them as left, not failed.
	for ((i = 0; i < 50; i++)); do
		local all_left=1
		for name in "${gone[@]}"; do
			[ "$(state_of "$first" "$name")" = left ] || all_left=0
		done
		[ "$all_left" = 0 ] || break
		sleep 0.1
	done
	show_members
	p=${pid[$first]}
	run_shown fd-node leave -n "${addr[$first]}"
	for ((i = 0; i < 100; i++)); do
		alive "$p" || break
		sleep 0.05
	done
	if alive "$p"; then
		stop_node "$first"
	else
		say "stopped $first (pid $p)"
		unset "pid[$first]"
	fi
	for name in "${names[@]}"; do
		[ ! -e "$tmp/$name.pid" ] || die "$name left its pid file behind"
	done
}

# Pub/sub: fd-sub | jq on the last node, fd-pub on the first.
pubsub_demo() {
	local first=${names[0]} last=${names[${#names[@]} - 1]} sub i
	section "Pub/sub: publish on $first, subscribe on $last"
	shown "fd-sub -n ${addr[$last]} -c 3 'orders.>' | jq -c .data &"
	fd-sub -n "${addr[$last]}" -c 3 -t 10s 'orders.>' | jq -c .data &
	sub=$!
	# the subscription reaches the publishing node through interest gossip
	for ((i = 0; i < 100; i++)); do
		fd-node info -n "${addr[$first]}" |
			jq -e --arg n "$last" '.pubsub.peers[$n].interest > 0' >/dev/null && break
		sleep 0.05
	done
	run_shown fd-pub -n "${addr[$first]}" orders.eu '{"id":1,"total":9.5}'
	run_shown fd-pub -n "${addr[$first]}" --topic orders.us <<<'{"data":{"id":2}}'
	shown "fd-pub -n ${addr[$first]} orders.eu.paid 3"
	fd-pub -n "${addr[$first]}" orders.eu.paid 3
	wait "$sub" || die "the subscriber did not get its three messages"
}

main() {
	check_tools
	start_nodes
	join_cluster
	show_members
	show_info
	registry_demo
	pubsub_demo
	kill_one
	stop_nodes
	section "Done"
}

main "$@"
