#!/usr/bin/env bash
# A local three-node fd cluster, shown and stopped. Run by `make demo` after
# the release build, or by hand:  examples/demo.sh
#
# Narration goes to stderr, data (the nodes' JSON) to stdout, so
#   examples/demo.sh 2>/dev/null | jq -c .
# shows the records only. Everything lives in a temporary directory that is
# removed at the end, on error and on Ctrl-C; the nodes are stopped with
# SIGTERM and a bounded wait (then SIGKILL).
#
# Environment: FD_BIN (where the binaries are; default ./bin of the tree),
# FD_DEMO_NODES (default "n1 n2 n3"), FD_DEMO_KEEP=1 keeps the temp dir.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${FD_BIN:-$root/bin}
read -r -a names <<<"${FD_DEMO_NODES:-n1 n2 n3}"
PATH=$bin:$PATH

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
	command -v fd-node >/dev/null || die "fd-node not found in $bin (run 'make' first)"
	command -v jq >/dev/null || die "jq not found (scripts/install-deps installs it)"
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/fd-demo.XXXXXX")
}

start_nodes() {
	section "Starting ${#names[@]} nodes on 127.0.0.1, each on a free port"
	say "Each runs in the background (--detach); fd-node returns once the node"
	say "is ready and prints its identity line: that line says where it is."
	local name line
	for name in "${names[@]}"; do
		shown fd-node --detach --name "$name" --listen 127.0.0.1:0 \
			--pid-file "$tmp/$name.pid" --log-file "$tmp/$name.log"
		line=$(timeout 20 fd-node --detach --name "$name" --listen 127.0.0.1:0 \
			--pid-file "$tmp/$name.pid" --log-file "$tmp/$name.log") ||
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
	section "Asking each node about itself (fd-node info, GET /v1/info)"
	local name
	for name in "${names[@]}"; do
		run_shown fd-node info -n "${addr[$name]}" | jq .
	done
}

# Later: join the nodes into one cluster (fd-join --expect 3), register
# names (fd-registry), publish and subscribe (fd-pub | fd-sub), partition
# and heal (fd-partition). Each is one more function called below.

stop_nodes() {
	section "Stopping the nodes (SIGTERM: a clean exit; pid files removed)"
	local name
	for name in "${names[@]}"; do
		stop_node "$name"
		[ ! -e "$tmp/$name.pid" ] || die "$name left its pid file behind"
	done
}

main() {
	check_tools
	start_nodes
	show_info
	stop_nodes
	section "Done"
}

main "$@"
