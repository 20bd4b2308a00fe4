# shellcheck shell=bash
# shellcheck disable=SC2034  # FD_ADDR, FD_PORT, ... are the interface
# shellcheck disable=SC2154  # stderr, stderr_lines come from bats' run
# Shared helpers for the bats tests of fd. Every .bats file starts with
#
#   setup()    { load helpers/common; fd_common_setup; }
#   teardown() { fd_common_teardown; }
#
# fd_common_setup      bats-support and bats-assert loaded; a private directory
#                      $FD_TMP (under $BATS_TEST_TMPDIR) that is also $HOME;
#                      the build's bin/ and tests/ on PATH; FD_NODE unset.
# fd_start_node NAME [ARG...]
#                      runs `fd-node --name NAME --listen 127.0.0.1:0 ARG...`
#                      in the background (no --listen/--name added when ARG has
#                      one), waits for its identity line and fills
#                        FD_ADDR[NAME] FD_PORT[NAME] FD_PID[NAME] FD_ID[NAME]
#                        FD_OUT[NAME] (stdout file) FD_ERR[NAME] (stderr file)
# fd_start_detached NAME [ARG...]
#                      the same with --detach and --pid-file $FD_TMP/NAME.pid;
#                      FD_EXIT[NAME] is the parent's exit status (0).
# fd_spawn NAME CMD... runs any command in the background the same way
#                      (stdout, stderr to files; PID recorded for teardown);
#                      FD_PID[NAME] is its PID until fd_wait_identity NAME
#                      replaces it with the one the identity line names.
# fd_stop_node NAME [SIGNAL] [TIMEOUT]
#                      signals the node (TERM), waits until it is gone and sets
#                      FD_EXIT[NAME] to its exit status (nodes started by
#                      fd_start_node; empty for detached ones).
# fd_wait_until TIMEOUT CMD...
#                      runs CMD until it succeeds; fails the test with a message
#                      when TIMEOUT (5s, 500ms, 2) passes first.
# fd_hold_port tcp|udp [PORT]
#                      occupies 127.0.0.1:PORT (0: a free one) with the
#                      port-hold test tool and sets FD_HELD_PORT (and
#                      FD_HELD_PID, to free it early).
# fd_http METHOD ADDR PATH [CURL-ARG...]
#                      one HTTP request; sets HTTP_CODE, HTTP_BODY and
#                      HTTP_HEADERS (lowercased names).
# fd_track_pid PID     kill PID in teardown too (e.g. a detached daemon).
# fd_common_teardown   TERM to every recorded PID, a bounded wait, then KILL.
#
# Nothing here uses a fixed port or a file outside $FD_TMP, so test files can
# run in parallel (scripts/run-tests uses bats --jobs when GNU parallel is
# installed).

# How long a node may take to print its identity line (sanitizer builds are
# slow to start), and how long it may take to stop.
: "${FD_START_TIMEOUT:=10s}"
: "${FD_STOP_TIMEOUT:=5s}"
# Upper bound for any one command a test runs that could hang when the code
# under test is wrong (used as `timeout "$FD_CMD_TIMEOUT" cmd`).
: "${FD_CMD_TIMEOUT:=20}"

fd_common_setup()
{
	bats_require_minimum_version 1.5.0 # run -N, run --separate-stderr
	bats_load_library bats-support
	bats_load_library bats-assert

	FD_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	# scripts/run-tests sets FD_BUILD and PATH; running bats by hand works
	# too, against the sanitizer build if there is one, else bin/.
	if [ -z "${FD_BUILD:-}" ]; then
		if [ -d "$FD_ROOT/build/asan/tests" ]; then
			FD_BUILD=$FD_ROOT/build/asan
		else
			FD_BUILD=$FD_ROOT
		fi
		PATH=$FD_BUILD/bin:$FD_BUILD/tests:$FD_ROOT/build/release/tests:$PATH
	fi
	export FD_ROOT FD_BUILD PATH

	FD_TMP=$BATS_TEST_TMPDIR/fd
	mkdir -p "$FD_TMP/home"
	export FD_TMP HOME=$FD_TMP/home
	unset FD_NODE
	# curl must never send a test's request to a proxy.
	export NO_PROXY='*' no_proxy='*'

	declare -gA FD_ADDR=() FD_PORT=() FD_PID=() FD_ID=() FD_OUT=() FD_ERR=() \
		FD_EXIT=() FD_CHILD=()
	declare -ga _FD_PIDS=()
	FD_HELD_PORT=
}

# Milliseconds since the epoch.
_fd_now_ms()
{
	local t=${EPOCHREALTIME//[!0-9]/}
	echo $((10#$t / 1000))
}

# Converts a duration (250ms, 5s, 1m, 2 = seconds, 1.5s) to milliseconds.
_fd_ms()
{
	local d=$1 n unit
	if [[ $d =~ ^([0-9]+(\.[0-9]+)?)(ms|s|m)?$ ]]; then
		n=${BASH_REMATCH[1]}
		unit=${BASH_REMATCH[3]:-s}
	else
		echo "fd_wait_until: invalid duration '$d'" >&2
		return 2
	fi
	case $unit in
	ms) awk -v n="$n" 'BEGIN { printf "%d\n", n }' ;;
	s) awk -v n="$n" 'BEGIN { printf "%d\n", n * 1000 }' ;;
	m) awk -v n="$n" 'BEGIN { printf "%d\n", n * 60000 }' ;;
	esac
}

# True while PID exists and is not a zombie (an exited child of this shell
# stays a zombie until it is waited for).
_fd_alive()
{
	local stat
	[ -r "/proc/$1/stat" ] || return 1
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

_fd_gone()
{
	! _fd_alive "$1"
}

fd_track_pid()
{
	local pid=$1
	if ! [[ $pid =~ ^[0-9]+$ ]] || [ "$pid" -le 1 ]; then
		echo "fd_track_pid: not a PID: '$pid'" >&2
		return 1
	fi
	_FD_PIDS+=("$pid")
}

# fd_wait_until TIMEOUT CMD...: CMD's output is kept for the failure message.
fd_wait_until()
{
	local timeout=$1 ms deadline out=$FD_TMP/.wait.out
	shift
	ms=$(_fd_ms "$timeout") || return 2
	deadline=$(($(_fd_now_ms) + ms))
	while :; do
		if "$@" >"$out" 2>&1; then
			return 0
		fi
		if [ "$(_fd_now_ms)" -ge "$deadline" ]; then
			{
				echo "timed out after $timeout waiting for: $*"
				if [ -s "$out" ]; then
					echo "last output:"
					sed 's/^/  /' "$out" | head -20
				fi
			} | fail
			return 1
		fi
		sleep 0.02
	done
}

# fd_spawn NAME CMD...: background, stdout/stderr to $FD_TMP/NAME.{out,err}.
# bats waits for its output fd 3 to close, so the child must not inherit it.
fd_spawn()
{
	local name=$1
	shift
	FD_OUT[$name]=$FD_TMP/$name.out
	FD_ERR[$name]=$FD_TMP/$name.err
	"$@" >"${FD_OUT[$name]}" 2>"${FD_ERR[$name]}" </dev/null 3>&- &
	FD_PID[$name]=$!
	FD_CHILD[$name]=$!
	_FD_PIDS+=("$!")
}

# fd_wait_identity NAME: waits for the identity line in FD_OUT[NAME] and fills
# FD_ADDR, FD_PORT, FD_PID, FD_ID. Fails early when the process exits first.
fd_wait_identity()
{
	local name=$1 out=${FD_OUT[$1]} child=${FD_CHILD[$1]:-} ms deadline line
	ms=$(_fd_ms "$FD_START_TIMEOUT") || return 2
	deadline=$(($(_fd_now_ms) + ms))
	while :; do
		if [ -s "$out" ] && [ "$(wc -l <"$out")" -ge 1 ]; then
			break
		fi
		if [ -n "$child" ] && ! _fd_alive "$child"; then
			# One last look: it may have printed and then exited.
			[ -s "$out" ] && [ "$(wc -l <"$out")" -ge 1 ] && break
			{
				echo "$name exited before printing its identity line"
				echo "stderr:"
				sed 's/^/  /' "${FD_ERR[$name]}" | head -20
			} | fail
			return 1
		fi
		if [ "$(_fd_now_ms)" -ge "$deadline" ]; then
			{
				echo "$name printed no identity line within $FD_START_TIMEOUT"
				echo "stderr:"
				sed 's/^/  /' "${FD_ERR[$name]}" | head -20
			} | fail
			return 1
		fi
		sleep 0.02
	done
	IFS= read -r line <"$out"
	if ! jq -e 'type == "object" and .type == "node"' <<<"$line" >/dev/null 2>&1; then
		echo "$name: the first stdout line is not a node record: $line" | fail
		return 1
	fi
	FD_ADDR[$name]=$(jq -r .addr <<<"$line")
	FD_PORT[$name]=${FD_ADDR[$name]##*:}
	FD_ID[$name]=$(jq -r .id <<<"$line")
	FD_PID[$name]=$(jq -r .pid <<<"$line")
	if [ "${FD_PID[$name]}" != "${child:-}" ]; then
		fd_track_pid "${FD_PID[$name]}" || true
	fi
}

# Arguments for fd-node: --name NAME and --listen 127.0.0.1:0 unless given.
_fd_node_args()
{
	local name=$1 a has_name=0 has_listen=0
	shift
	for a in "$@"; do
		case $a in
		-N | --name | --name=*) has_name=1 ;;
		-l | --listen | --listen=*) has_listen=1 ;;
		esac
	done
	_FD_ARGS=()
	[ "$has_name" -eq 1 ] || _FD_ARGS+=(--name "$name")
	[ "$has_listen" -eq 1 ] || _FD_ARGS+=(--listen 127.0.0.1:0)
	_FD_ARGS+=("$@")
}

fd_start_node()
{
	local name=$1
	shift
	_fd_node_args "$name" "$@"
	fd_spawn "$name" fd-node "${_FD_ARGS[@]}"
	fd_wait_identity "$name"
}

fd_start_detached()
{
	local name=$1 pidfile rc
	shift
	pidfile=$FD_TMP/$name.pid
	_fd_node_args "$name" --detach --pid-file "$pidfile" "$@"
	FD_OUT[$name]=$FD_TMP/$name.out
	FD_ERR[$name]=$FD_TMP/$name.err
	FD_CHILD[$name]=
	# The parent must come back on its own; the daemon must not hold our
	# pipes (its stdout is a file here, so a wrong daemon cannot hang us).
	rc=0
	timeout -k 2 "$FD_CMD_TIMEOUT" fd-node "${_FD_ARGS[@]}" \
		>"${FD_OUT[$name]}" 2>"${FD_ERR[$name]}" </dev/null 3>&- || rc=$?
	FD_EXIT[$name]=$rc
	# Whatever happened, a daemon that wrote its PID file is killed later.
	if [ -s "$pidfile" ]; then
		fd_track_pid "$(head -n 1 "$pidfile")" || true
	fi
	if [ "$rc" -ne 0 ]; then
		{
			echo "fd-node --detach ($name) exited $rc"
			echo "stderr:"
			sed 's/^/  /' "${FD_ERR[$name]}" | head -20
		} | fail
		return 1
	fi
	fd_wait_identity "$name"
}

# fd_stop_node NAME [SIGNAL] [TIMEOUT]
fd_stop_node()
{
	local name=$1 sig=${2:-TERM} timeout=${3:-$FD_STOP_TIMEOUT}
	local pid=${FD_PID[$1]:-} child=${FD_CHILD[$1]:-} rc=0
	if [ -z "$pid" ]; then
		echo "fd_stop_node: no node named '$name'" | fail
		return 1
	fi
	kill -s "$sig" "$pid" 2>/dev/null || true
	fd_wait_until "$timeout" _fd_gone "$pid" || return 1
	if [ -n "$child" ] && [ "$child" = "$pid" ]; then
		wait "$pid" 2>/dev/null || rc=$?
		FD_EXIT[$name]=$rc
	else
		FD_EXIT[$name]=
	fi
}

fd_hold_port()
{
	local proto=$1 port=${2:-0} name
	name=hold-$proto-${#_FD_PIDS[@]}
	fd_spawn "$name" port-hold "$proto" "$port"
	fd_wait_until "$FD_START_TIMEOUT" test -s "${FD_OUT[$name]}" || return 1
	FD_HELD_PORT=$(head -n 1 "${FD_OUT[$name]}")
	FD_HELD_PID=${FD_PID[$name]}
}

# fd_http METHOD ADDR PATH [CURL-ARG...]
fd_http()
{
	local method=$1 addr=$2 path=$3 body=$FD_TMP/.http.body hdr=$FD_TMP/.http.headers
	shift 3
	HTTP_CODE=$(curl -sS --noproxy '*' --max-time 10 -X "$method" \
		-o "$body" -D "$hdr" -w '%{http_code}' "$@" "http://$addr$path") || {
		echo "curl $method http://$addr$path failed (exit $?)" | fail
		return 1
	}
	HTTP_BODY=$(cat "$body")
	HTTP_HEADERS=$(tr -d '\r' <"$hdr" | awk -F': *' 'NF > 1 { $1 = tolower($1) } 1' OFS=': ')
	export HTTP_CODE HTTP_BODY HTTP_HEADERS
}

# fd_assert_json_error: HTTP_BODY is a JSON object with an "error" string.
fd_assert_json_error()
{
	if ! jq -e 'type == "object" and (.error | type == "string") and (.error | length > 0)' \
		<<<"$HTTP_BODY" >/dev/null 2>&1; then
		echo "expected a JSON error object, got HTTP $HTTP_CODE body: $HTTP_BODY" | fail
		return 1
	fi
}

# fd_assert_jsonl FILE: every line of FILE is exactly one JSON object.
fd_assert_jsonl()
{
	local file=$1 n=0 line
	while IFS= read -r line || [ -n "$line" ]; do
		n=$((n + 1))
		if ! jq -se 'length == 1 and (.[0] | type == "object")' <<<"$line" >/dev/null 2>&1; then
			echo "line $n of $file is not one JSON object: ${line:0:200}" | fail
			return 1
		fi
	done <"$file"
}

# fd_assert_stderr_line TEXT / fd_assert_stderr_match REGEX: some line of
# $stderr (from run --separate-stderr) is TEXT / matches REGEX.
fd_assert_stderr_line()
{
	local l
	for l in "${stderr_lines[@]}"; do
		[ "$l" = "$1" ] && return 0
	done
	printf 'expected a stderr line: %s\nstderr:\n%s\n' "$1" "$stderr" | fail
}

fd_assert_stderr_match()
{
	local l
	for l in "${stderr_lines[@]}"; do
		[[ $l =~ $1 ]] && return 0
	done
	printf 'expected a stderr line matching: %s\nstderr:\n%s\n' "$1" "$stderr" | fail
}

fd_common_teardown()
{
	local pid live=() deadline
	for pid in "${_FD_PIDS[@]}"; do
		if _fd_alive "$pid"; then
			kill -TERM "$pid" 2>/dev/null && live+=("$pid")
		fi
	done
	if [ ${#live[@]} -gt 0 ]; then
		deadline=$(($(_fd_now_ms) + $(_fd_ms "$FD_STOP_TIMEOUT")))
		for pid in "${live[@]}"; do
			while _fd_alive "$pid" && [ "$(_fd_now_ms)" -lt "$deadline" ]; do
				sleep 0.02
			done
			if _fd_alive "$pid"; then
				echo "# teardown: PID $pid ignored SIGTERM; sending SIGKILL" >&3
				kill -KILL "$pid" 2>/dev/null || true
			fi
		done
	fi
	# Reap our own children so no zombie outlives the test.
	for pid in "${FD_CHILD[@]}"; do
		[ -z "$pid" ] || wait "$pid" 2>/dev/null || true
	done
	_FD_PIDS=()
	return 0
}
