# shellcheck shell=bash
# shellcheck disable=SC2034  # FD_ADDR, FD_PID are the interface
# Minimal stand-in for the shared bats helpers (tests/cli/helpers/common.bash
# from the test-infrastructure branch replaces this file on merge). Only the
# interface used by the fd-discover / fd-join tests is provided:
#
#   fd_common_setup        bats-support + bats-assert; build bin/ and tests/
#                          on PATH; a private HOME; FD_NODE unset
#   fd_wait_until T CMD... runs CMD until it succeeds; fails after T (5s, 500ms)
#   fd_start_node NAME     fd-node --name NAME --listen 127.0.0.1:0 in the
#                          background; FD_ADDR[NAME], FD_PID[NAME]
#   fd_common_teardown     TERM to every node started, bounded wait, KILL

fd_common_setup()
{
	bats_require_minimum_version 1.5.0
	bats_load_library bats-support
	bats_load_library bats-assert
	FD_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	if [ -z "${FD_BUILD:-}" ]; then
		FD_BUILD=$FD_ROOT/build/asan
		PATH=$FD_BUILD/bin:$FD_BUILD/tests:$PATH
	fi
	FD_TMP=$BATS_TEST_TMPDIR/fd
	mkdir -p "$FD_TMP/home"
	export FD_ROOT FD_BUILD FD_TMP PATH HOME=$FD_TMP/home NO_PROXY='*' no_proxy='*'
	unset FD_NODE
	declare -gA FD_ADDR=() FD_PID=()
	declare -ga _FD_PIDS=()
}

_fd_now_ms()
{
	local t=${EPOCHREALTIME//[!0-9]/}
	echo $((10#$t / 1000))
}

_fd_ms()
{
	if [[ $1 =~ ^([0-9]+)ms$ ]]; then
		echo "${BASH_REMATCH[1]}"
	elif [[ $1 =~ ^([0-9]+)s?$ ]]; then
		echo $((BASH_REMATCH[1] * 1000))
	else
		echo "invalid duration '$1'" >&2
		return 2
	fi
}

# True while PID runs (an exited child stays a zombie until waited for).
_fd_alive()
{
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

fd_wait_until()
{
	local deadline
	deadline=$(($(_fd_now_ms) + $(_fd_ms "$1")))
	shift
	until "$@" >/dev/null 2>&1; do
		if [ "$(_fd_now_ms)" -ge "$deadline" ]; then
			echo "timed out waiting for: $*" | fail
			return 1
		fi
		sleep 0.02
	done
}

fd_start_node()
{
	local name=$1 out=$FD_TMP/$1.out
	shift
	fd-node --name "$name" --listen 127.0.0.1:0 "$@" >"$out" 2>"$FD_TMP/$name.err" </dev/null 3>&- &
	FD_PID[$name]=$!
	_FD_PIDS+=("$!")
	fd_wait_until 10s test -s "$out" || return 1
	FD_ADDR[$name]=$(head -n 1 "$out" | jq -r .addr)
}

fd_common_teardown()
{
	local pid deadline
	for pid in "${_FD_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	deadline=$(($(_fd_now_ms) + 5000))
	for pid in "${_FD_PIDS[@]}"; do
		while _fd_alive "$pid" && [ "$(_fd_now_ms)" -lt "$deadline" ]; do
			sleep 0.02
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	_FD_PIDS=()
}
