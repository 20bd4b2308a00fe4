# shellcheck shell=bash
# shellcheck disable=SC2034  # SPAWN_EXIT is the interface
# Background processes for the fd-discover / fd-join tests, independent of
# the shared helpers' node API (only fd_wait_until is used from there):
#
#   spawn NAME CMD...     runs CMD in the background with stdout in
#                         $SPAWN_DIR/NAME.out, stderr in NAME.err, stdin
#                         /dev/null; SPAWN_PID[NAME] is its PID
#   spawn_identity NAME   waits (bounded) for NAME's first stdout line and
#                         prints its "addr" (fd-node's or fake-node's identity)
#   spawn_stop NAME [SIG] signals NAME (TERM), waits (bounded) and sets
#                         SPAWN_EXIT[NAME] to its exit status
#   spawn_stop_all        for teardown: TERM, bounded wait, KILL, reap
#   count_lines FILE JQ   number of JSON lines in FILE matching the jq filter
#   has_lines FILE N JQ   true when at least N lines of FILE match JQ

spawn_setup()
{
	SPAWN_DIR=$BATS_TEST_TMPDIR/spawn
	mkdir -p "$SPAWN_DIR"
	declare -gA SPAWN_PID=() SPAWN_EXIT=()
}

spawn()
{
	local name=$1
	shift
	"$@" >"$SPAWN_DIR/$name.out" 2>"$SPAWN_DIR/$name.err" </dev/null 3>&- &
	SPAWN_PID[$name]=$!
}

spawn_identity()
{
	local name=$1
	fd_wait_until 10s test -s "$SPAWN_DIR/$name.out" || return 1
	head -n 1 "$SPAWN_DIR/$name.out" | jq -r .addr
}

_spawn_alive()
{
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

_spawn_gone()
{
	! _spawn_alive "$1"
}

spawn_stop()
{
	local name=$1 sig=${2:-TERM} pid=${SPAWN_PID[$1]} rc=0
	kill -s "$sig" "$pid" 2>/dev/null || true
	fd_wait_until 5s _spawn_gone "$pid" || return 1
	wait "$pid" || rc=$?
	SPAWN_EXIT[$name]=$rc
	unset "SPAWN_PID[$name]"
}

spawn_stop_all()
{
	local pid i
	for pid in "${SPAWN_PID[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${SPAWN_PID[@]}"; do
		for ((i = 0; i < 250; i++)); do
			_spawn_alive "$pid" || break
			sleep 0.02
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	SPAWN_PID=()
}

count_lines()
{
	jq -c "select($2)" "$1" 2>/dev/null | wc -l
}

has_lines()
{
	[ "$(count_lines "$1" "$3")" -ge "$2" ]
}
