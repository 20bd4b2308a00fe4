#!/usr/bin/env bats
# shellcheck disable=SC2154,SC2016  # stderr* come from bats run; $1 in bash -c is meant
# fd-discover: strategies static and file, --watch, --format, exit codes.
# Background processes are spawned with helpers/spawn and stopped in teardown;
# every wait is bounded.

setup()
{
	load helpers/common
	load helpers/spawn
	fd_common_setup
	spawn_setup
	P=$BATS_TEST_TMPDIR/peers
}

teardown()
{
	spawn_stop_all
	fd_common_teardown
}

TS='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z'

# The peer lines of a run, without their timestamps, as "event addr strategy".
peers() { jq -r 'select(.type == "peer") | "\(.event) \(.addr) \(.strategy)"' "$@"; }

# Replaces the peers file in one step, as a careful writer does.
write_peers()
{
	printf '%s\n' "$@" >"$P.tmp"
	mv "$P.tmp" "$P"
}

## Command line

@test "--help prints the usage on stdout and exits 0" {
	run -0 --separate-stderr fd-discover --help
	assert_equal "$stderr" ""
	assert_line --index 0 --regexp '^usage: fd-discover static '
	assert_output --partial '--watch'
	assert_output --partial '--down-after'
	run -0 fd-discover -h
	assert_line --index 0 --regexp '^usage: fd-discover '
}

@test "--version and -V print 'fd-discover VERSION'" {
	run -0 --separate-stderr fd-discover --version
	assert_equal "$output" "fd-discover $(cat "$FD_ROOT/VERSION")"
	run -0 fd-discover -V
	assert_equal "$output" "fd-discover $(cat "$FD_ROOT/VERSION")"
}

@test "an unknown strategy is a usage error naming the known ones" {
	run -2 --separate-stderr fd-discover consul example.org
	assert_equal "$output" ""
	assert_equal "${stderr_lines[0]}" "fd-discover: unknown strategy 'consul' (known: static, file, exec, dns, dns-srv, kubernetes)"
	assert_usage_line
}

@test "no strategy, an unknown option, a bad option value: exit 2" {
	run -2 --separate-stderr fd-discover
	assert_equal "${stderr_lines[0]}" "fd-discover: no strategy given (known: static, file, exec, dns, dns-srv, kubernetes; or --auto, --config FILE)"
	run -2 --separate-stderr fd-discover --bogus static a
	assert_equal "${stderr_lines[0]}" "fd-discover: unknown option '--bogus'"
	run -2 --separate-stderr fd-discover --format yaml static a
	assert_regex "${stderr_lines[0]}" "invalid --format 'yaml'"
	run -2 --separate-stderr fd-discover -i soon file "$P"
	assert_regex "${stderr_lines[0]}" "invalid --interval 'soon'"
	run -2 --separate-stderr fd-discover --down-after 0 file "$P"
	assert_regex "${stderr_lines[0]}" "invalid --down-after '0'"
	run -2 --separate-stderr fd-discover static
	assert_equal "${stderr_lines[0]}" "fd-discover: static: no addresses given"
	run -2 --separate-stderr fd-discover file
	assert_equal "${stderr_lines[0]}" "fd-discover: file: no PATH given"
	run -2 --separate-stderr fd-discover file a b
	assert_equal "${stderr_lines[0]}" "fd-discover: file: one PATH expected"
}

assert_usage_line()
{
	local l
	for l in "${stderr_lines[@]}"; do
		[[ $l == 'usage: fd-discover '* ]] && return 0
	done
	echo "no usage line on stderr: $stderr" | fail
}

## static

@test "static prints one up line per address, in order, with the default port" {
	run -0 --separate-stderr fd-discover static 127.0.0.1:4001 127.0.0.2 '[::1]:7' db1.example
	assert_equal "$stderr" ""
	assert_equal "${#lines[@]}" 4
	assert_equal "$(jq -c 'del(.ts)' <<<"${lines[0]}")" \
		'{"type":"peer","event":"up","addr":"127.0.0.1:4001","strategy":"static"}'
	assert_equal "$(jq -r .addr <<<"${lines[1]}")" "127.0.0.2:4380"
	assert_equal "$(jq -r .addr <<<"${lines[2]}")" "[::1]:7"
	assert_equal "$(jq -r .addr <<<"${lines[3]}")" "db1.example:4380"
	assert_regex "$(jq -r .ts <<<"${lines[0]}")" "^$TS\$"
}

@test "static prints duplicates once (127.0.0.1 and 127.0.0.1:4380 are one peer)" {
	run -0 fd-discover static a:1 127.0.0.1 a:1 127.0.0.1:4380
	assert_equal "${#lines[@]}" 2
}

@test "static: a malformed address is a usage error and nothing is printed" {
	local bad
	for bad in 'a:x' 'a:0' 'a:65536' '::1' 'a b' ''; do
		run -2 --separate-stderr fd-discover static 127.0.0.1:4001 "$bad"
		assert_equal "$output" ""
		assert_regex "${stderr_lines[0]}" "^fd-discover: static: invalid address '"
		assert_usage_line
	done
}

@test "--format table prints aligned rows from the same records" {
	run -0 --separate-stderr fd-discover --format table static 127.0.0.1:4001 b
	assert_equal "${#lines[@]}" 2
	assert_regex "${lines[0]}" "^up    127\.0\.0\.1:4001        static   $TS\$"
	assert_regex "${lines[1]}" "^up    b:4380                static   $TS\$"
}

@test "| head -1 ends quietly with exit 0" {
	seq 1 20000 | awk '{ printf "10.0.%d.%d:%d\n", $1 / 250, $1 % 250, 1000 + $1 }' >"$P"
	run -0 --separate-stderr bash -c 'fd-discover file "$1" | head -n 1; exit "${PIPESTATUS[0]}"' _ "$P"
	assert_equal "${#lines[@]}" 1
	assert_equal "$stderr" ""
	run -0 --separate-stderr bash -c 'fd-discover static a:1 b:2 | head -n 1; exit "${PIPESTATUS[0]}"'
	assert_equal "$stderr" ""
}

## file

@test "file: comments, blank lines and whitespace are ignored; duplicates printed once" {
	printf '# the peers\n\n127.0.0.1:4001\n  127.0.0.2  \n\t127.0.0.3:9 # a comment\n127.0.0.1:4001\n   # indented comment\nlast:5' >"$P"
	run -0 --separate-stderr fd-discover file "$P"
	assert_equal "$stderr" ""
	assert_equal "$(peers <<<"$output")" "$(printf '%s\n' 'up 127.0.0.1:4001 file' \
		'up 127.0.0.2:4380 file' 'up 127.0.0.3:9 file' 'up last:5 file')"
}

@test "file: bad lines are warned about with their line number, skipped, exit 7" {
	printf '127.0.0.1:4001\nnot an address\n127.0.0.2:4002\nbad:port\n127.0.0.3:4003\n' >"$P"
	run -7 --separate-stderr fd-discover file "$P"
	assert_equal "$(peers <<<"$output" | cut -d' ' -f2 | tr '\n' ' ')" \
		"127.0.0.1:4001 127.0.0.2:4002 127.0.0.3:4003 "
	assert_equal "${#stderr_lines[@]}" 2
	assert_equal "${stderr_lines[0]}" \
		"fd-discover: $P: line 2: invalid address 'not an address' (one address per line)"
	assert_equal "${stderr_lines[1]}" \
		"fd-discover: $P: line 4: invalid address 'bad:port' (expected HOST[:PORT])"
}

@test "file --strict stops at the first bad line with exit 7" {
	printf '127.0.0.1:4001\nbad:port\n127.0.0.3:4003\n' >"$P"
	run -7 --separate-stderr fd-discover --strict file "$P"
	assert_equal "$(peers <<<"$output")" "up 127.0.0.1:4001 file"
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "${stderr_lines[0]}" ": line 2: "
}

@test "file: a missing or unreadable file is a runtime error (exit 1)" {
	run -1 --separate-stderr fd-discover file "$P.nope"
	assert_equal "$output" ""
	assert_equal "$stderr" "fd-discover: unable to read '$P.nope': No such file or directory"
	run -1 --separate-stderr fd-discover file "$BATS_TEST_TMPDIR"
	assert_equal "$stderr" "fd-discover: unable to read '$BATS_TEST_TMPDIR': Is a directory"
	run -1 --separate-stderr timeout 10 fd-discover --watch file "$P.nope"
	assert_equal "$output" ""
}

@test "file: an empty file prints nothing and exits 0" {
	: >"$P"
	run -0 --separate-stderr fd-discover file "$P"
	assert_equal "$output" ""
	assert_equal "$stderr" ""
}

## --watch

@test "--watch prints up, then down and up when the file changes; SIGTERM exits 0" {
	local out=$SPAWN_DIR/w.out
	write_peers 127.0.0.1:4001 127.0.0.1:4002
	spawn w fd-discover --watch --interval 100ms file "$P"
	fd_wait_until 10s has_lines "$out" 2 '.event == "up"'
	write_peers 127.0.0.1:4002 127.0.0.1:4003
	fd_wait_until 10s has_lines "$out" 1 '.event == "down"'
	fd_wait_until 10s has_lines "$out" 3 '.event == "up"'
	# The file is unchanged from now on: nothing more happens.
	sleep 0.3
	spawn_stop w TERM
	assert_equal "${SPAWN_EXIT[w]}" 0
	assert_equal "$(peers "$out")" "$(printf '%s\n' 'up 127.0.0.1:4001 file' \
		'up 127.0.0.1:4002 file' 'up 127.0.0.1:4003 file' 'down 127.0.0.1:4001 file')"
	assert_equal "$(cat "$SPAWN_DIR/w.err")" ""
}

@test "--watch sees a file rewritten in place, and SIGINT exits 0" {
	local out=$SPAWN_DIR/w.out
	echo 127.0.0.1:4001 >"$P"
	spawn w fd-discover -w -i 100ms file "$P"
	fd_wait_until 10s has_lines "$out" 1 '.event == "up"'
	echo 127.0.0.1:4009 >>"$P"
	fd_wait_until 10s has_lines "$out" 1 '.addr == "127.0.0.1:4009" and .event == "up"'
	spawn_stop w INT
	assert_equal "${SPAWN_EXIT[w]}" 0
	assert_equal "$(count_lines "$out" '.event == "down"')" 0
}

@test "--watch: a removed file is reported as an error line and does not remove peers" {
	local out=$SPAWN_DIR/w.out err=$SPAWN_DIR/w.err
	write_peers 127.0.0.1:4001 127.0.0.1:4002
	spawn w fd-discover --watch --interval 50ms file "$P"
	fd_wait_until 10s has_lines "$out" 2 '.event == "up"'
	rm "$P"
	fd_wait_until 10s has_lines "$out" 1 '.type == "error"'
	# Several more reads fail: still no down, and the error is reported once.
	sleep 0.5
	assert_equal "$(count_lines "$out" '.event == "down"')" 0
	assert_equal "$(count_lines "$out" '.type == "error"')" 1
	assert_equal "$(jq -c 'select(.type == "error") | del(.ts)' "$out")" \
		"{\"type\":\"error\",\"strategy\":\"file\",\"source\":\"$P\",\"error\":\"unable to read '$P': No such file or directory\"}"
	assert_equal "$(cat "$err")" "fd-discover: unable to read '$P': No such file or directory"
	# Back with one peer fewer: that one goes down.
	write_peers 127.0.0.1:4002
	fd_wait_until 10s has_lines "$out" 1 '.event == "down"'
	assert_equal "$(jq -r 'select(.event == "down") | .addr' "$out")" 127.0.0.1:4001
	spawn_stop w
	assert_equal "${SPAWN_EXIT[w]}" 0
}

@test "--watch: an emptied file does not remove peers" {
	local out=$SPAWN_DIR/w.out
	write_peers 127.0.0.1:4001
	spawn w fd-discover --watch --interval 50ms file "$P"
	fd_wait_until 10s has_lines "$out" 1 '.event == "up"'
	: >"$P"
	sleep 0.4
	assert_equal "$(count_lines "$out" '.event == "down"')" 0
	spawn_stop w
	assert_equal "${SPAWN_EXIT[w]}" 0
}

@test "--watch --down-after 3: a peer goes down only after three reads without it" {
	local out=$SPAWN_DIR/w.out
	write_peers 127.0.0.1:4001 127.0.0.1:4002
	spawn w fd-discover --watch --interval 300ms --down-after 3 file "$P"
	fd_wait_until 10s has_lines "$out" 2 '.event == "up"'
	write_peers 127.0.0.1:4002
	# One read at once (inotify), the next two at least 300 ms apart.
	sleep 0.2
	assert_equal "$(count_lines "$out" '.event == "down"')" 0
	fd_wait_until 10s has_lines "$out" 1 '.event == "down" and .addr == "127.0.0.1:4001"'
	spawn_stop w
}

@test "--watch --format table streams rows" {
	local out=$SPAWN_DIR/w.out
	write_peers 127.0.0.1:4001
	spawn w fd-discover --watch --interval 50ms --format table file "$P"
	fd_wait_until 10s grep -q '^up    127.0.0.1:4001 ' "$out"
	write_peers 127.0.0.1:4002
	fd_wait_until 10s grep -q '^down  127.0.0.1:4001 ' "$out"
	rm "$P"
	fd_wait_until 10s grep -q "^error $P " "$out"
	spawn_stop w
}

@test "--watch: bad lines are reported once, and the exit status is 7" {
	local err=$SPAWN_DIR/w.err
	write_peers 127.0.0.1:4001 oops:x
	spawn w fd-discover --watch --interval 50ms file "$P"
	fd_wait_until 10s has_lines "$SPAWN_DIR/w.out" 1 '.event == "up"'
	sleep 0.3
	spawn_stop w
	assert_equal "${SPAWN_EXIT[w]}" 7
	assert_equal "$(cat "$err")" "fd-discover: $P: line 2: invalid address 'oops:x' (expected HOST[:PORT])"
}

@test "static --watch prints the peers and waits for a signal" {
	spawn w fd-discover --watch static a:1 b:2
	fd_wait_until 10s has_lines "$SPAWN_DIR/w.out" 2 '.event == "up"'
	spawn_stop w TERM
	assert_equal "${SPAWN_EXIT[w]}" 0
}
