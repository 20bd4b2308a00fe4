#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions called through trap and wait_for
# Chaos on a local cluster, then proof that nothing acknowledged was lost.
#
# Five fd-node processes on 127.0.0.1 (profile local, ephemeral ports); a
# writer registering names (fd-registry, through every node in turn) and
# publishing (fd-pub --confirm) while a subscriber on every node (fd-sub)
# records what it gets; meanwhile partitions come and go (fd-partition);
# then heal, wait for pub/sub to drain, and `fd-partition check` the
# history against the nodes' final state. Exits with check's status: 0 valid,
# 1 invalid (1 also when the run itself failed).
#
#   examples/chaos.sh [-d DURATION] [-i INTERVAL] [-s SEED] [-k]
#     -d DURATION  how long the chaos lasts (default $CHAOS_DURATION, else 2m)
#     -i INTERVAL  how long each fault, and each calm after it, lasts
#                  (default $CHAOS_INTERVAL, else 5s)
#     -s SEED      the schedule's seed (default $CHAOS_SEED, else random):
#                  the same seed gives the same faults
#     -k           keep the work directory (also kept when the check fails)
#
# The verdict line goes to stdout; narration to stderr. Every process the
# script starts is stopped on exit, error or Ctrl-C; every fault rule it
# installs also expires by itself (fd-partition --duration).
#
# Environment: FD_BIN (where the binaries are; default ./bin of the tree,
# else PATH), CHAOS_DURATION, CHAOS_INTERVAL, CHAOS_SEED, CHAOS_NODES
# (default 5).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${FD_BIN:-$root/bin}
[ -x "$bin/fd-node" ] && PATH=$bin:$PATH

duration=${CHAOS_DURATION:-2m}
interval=${CHAOS_INTERVAL:-5s}
seed=${CHAOS_SEED:-}
keep=0
nnodes=${CHAOS_NODES:-5}
while getopts d:i:s:kh opt; do
	case $opt in
	d) duration=$OPTARG ;;
	i) interval=$OPTARG ;;
	s) seed=$OPTARG ;;
	k) keep=1 ;;
	h)
		sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "usage: chaos.sh [-d duration] [-i interval] [-s seed] [-k]" >&2
		exit 2
		;;
	esac
done

# A duration (90, 90s, 2m, 1500ms) in whole seconds (at least 1).
seconds() {
	local d=$1
	case $d in
	*ms) d=$(((${d%ms} + 999) / 1000)) ;;
	*m) d=$((${d%m} * 60)) ;;
	*s) d=${d%s} ;;
	esac
	[[ $d =~ ^[0-9]+$ ]] || {
		echo "chaos.sh: invalid duration '$1'" >&2
		exit 2
	}
	echo $((d < 1 ? 1 : d))
}
secs=$(seconds "$duration")
[ -n "$seed" ] || seed=$((RANDOM * 32768 + RANDOM))
[[ $seed =~ ^[0-9]+$ ]] || {
	echo "chaos.sh: invalid seed '$seed'" >&2
	exit 2
}
[[ $interval =~ ^[0-9]+(\.[0-9]+)?(ms|s|m)?$ ]] || {
	echo "chaos.sh: invalid interval '$interval'" >&2
	exit 2
}

say() { printf 'chaos: %s\n' "$*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/fd-chaos.XXXXXX")
names=()
nodeargs=() # -n ADDR for every node
declare -A addr=() pid=()
pids=() # everything else we started, killed by PID at the end
verdict_rc=1
cleanup() {
	local rc=$? p n
	trap - EXIT INT TERM
	set +e
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	if [ ${#nodeargs[@]} -gt 0 ]; then
		fd-partition "${nodeargs[@]}" --tag chaos heal >/dev/null 2>&1
	fi
	for n in "${names[@]}"; do
		[ -n "${pid[$n]:-}" ] && kill -TERM "${pid[$n]}" 2>/dev/null
	done
	for n in "${names[@]}"; do
		for _ in $(seq 1 100); do
			kill -0 "${pid[$n]:-0}" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "${pid[$n]:-0}" 2>/dev/null
	done
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "$keep" = 1 ] || [ "$rc" != 0 ]; then
		say "work directory kept: $work"
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for SECONDS CMD...: polls CMD every 0.1 s.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

alive_count() {
	fd-node members -n "$1" | jq -s '[.[] | select(.state == "alive")] | length'
}
all_see_all() {
	local n
	for n in "${names[@]}"; do
		[ "$(alive_count "${addr[$n]}")" = "$nnodes" ] || return 1
	done
}

# interest_from WRITER: every other node's subscriber is known at WRITER.
interest_everywhere() {
	local n info
	info=$(fd-node info -n "${addr[${names[0]}]}") || return 1
	for n in "${names[@]:1}"; do
		jq -e --arg n "$n" '.pubsub.peers[$n].interest >= 1' <<<"$info" >/dev/null || return 1
	done
}

start_nodes() {
	local i n first=
	for ((i = 1; i <= nnodes; i++)); do
		n=n$i
		names+=("$n")
		fd-node --name "$n" --listen 127.0.0.1:0 --profile local --detach \
			--pid-file "$work/$n.pid" --log-file "$work/$n.log" \
			${first:+--join "$first"} >"$work/$n.json"
		addr[$n]=$(jq -r .addr "$work/$n.json")
		pid[$n]=$(jq -r .pid "$work/$n.json")
		first=${first:-${addr[$n]}}
		nodeargs+=(-n "${addr[$n]}")
	done
	wait_for 30 all_see_all || {
		say "the cluster did not form"
		exit 1
	}
	say "$nnodes nodes up: ${addr[*]}"
}

start_subscribers() {
	local n
	for n in "${names[@]}"; do
		fd-sub -n "${addr[$n]}" 'chaos.>' >"$work/sub-$n.jsonl" 2>"$work/sub-$n.err" &
		pids+=($!)
	done
	wait_for 30 interest_everywhere || {
		say "the subscriptions did not reach ${names[0]}"
		exit 1
	}
}

# The writer: a name registered (through each node in turn) and a message
# published (through the first node, by an fd-pub reading the fifo) about
# ten times a second, until the file $work/stop appears. Acknowledgements
# go to writer.jsonl and published.jsonl.
writer() {
	local i=0 n
	exec 3>"$work/pub.fifo"
	while [ ! -e "$work/stop" ]; do
		i=$((i + 1))
		n=${names[i % nnodes]}
		fd-registry register -n "${addr[$n]}" -t 5s "chaos-$i" "{\"i\":$i,\"via\":\"$n\"}" \
			>>"$work/writer.jsonl" 2>>"$work/writer.err" || true
		printf '{"topic":"chaos.t%d","data":{"i":%d}}\n' $((i % 4)) "$i" >&3
		sleep 0.1
	done
	exec 3>&-
}

# The faults: fd-partition chaos, one nemesis after another drawn from the
# seed (split, isolate, bridge, ring, halves, slow, flaky), each held for
# an interval, healed, then an interval of calm. Its rules expire by
# themselves soon after their planned heal.
chaos() {
	fd-partition "${nodeargs[@]}" --tag chaos chaos --seed "$seed" \
		--duration "${secs}s" --interval "$interval"
}

main() {
	local n p pub writer_pid subs=()
	say "seed $seed, chaos for ${secs}s, work in $work"
	start_nodes
	start_subscribers
	mkfifo "$work/pub.fifo"
	fd-pub -n "${addr[${names[0]}]}" --confirm <"$work/pub.fifo" \
		>"$work/published.jsonl" 2>"$work/pub.err" &
	pub=$!
	pids+=("$pub")
	writer &
	writer_pid=$!
	pids+=("$writer_pid")
	chaos >"$work/faults.jsonl"
	touch "$work/stop"
	wait "$writer_pid" || true
	wait "$pub" || say "fd-pub exited $? (see $work/pub.err)"
	fd-partition "${nodeargs[@]}" --tag chaos heal >>"$work/faults.jsonl"
	say "healed; waiting for pub/sub to drain"
	wait_for 60 all_see_all || say "membership not reunited after 60 s"
	wait_for 60 interest_everywhere || say "interest not back after 60 s"
	# the last message published must reach every subscriber
	echo '{"topic":"chaos.end","data":"end"}' |
		fd-pub -n "${addr[${names[0]}]}" --confirm >>"$work/published.jsonl"
	for n in "${names[@]}"; do
		wait_for 30 grep -q '"topic":"chaos.end"' "$work/sub-$n.jsonl" ||
			say "sub-$n did not get the last message"
	done
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for n in "${names[@]}"; do subs+=(--sub "$n=$work/sub-$n.jsonl"); done
	say "$(grep -c . "$work/writer.jsonl" || true) registrations and" \
		"$(grep -c . "$work/published.jsonl" || true) publishes acknowledged," \
		"$(grep -c . "$work/faults.jsonl" || true) fault lines"
	set +e
	fd-partition "${nodeargs[@]}" check --wait 60s "${subs[@]}" \
		"$work/writer.jsonl" "$work/published.jsonl" "$work/faults.jsonl" |
		tee "$work/check.jsonl"
	verdict_rc=${PIPESTATUS[0]}
	set -e
	[ "$verdict_rc" = 0 ] || keep=1
	exit "$verdict_rc"
}

main
