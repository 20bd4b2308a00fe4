#!/usr/bin/env bats
# shellcheck disable=SC2154,SC2016  # stderr* come from bats run; $1 in bash -c is meant
# fd-join: command line, input parsing, output, exit codes. The node side is
# played by tests/tools/fake-node (the join API contract: POST /v1/join,
# GET /v1/members), so these tests do not depend on fd-node's membership;
# fd-join-cluster.bats runs the same client against real fd-node clusters.

setup()
{
	load helpers/common
	load helpers/spawn
	fd_common_setup
	spawn_setup
	IN=$BATS_TEST_TMPDIR/in
}

teardown()
{
	spawn_stop_all
	fd_common_teardown
}

# start_fake [ARG...]: runs fake-node, sets NODE to its address.
start_fake()
{
	spawn fake fake-node "$@"
	NODE=$(spawn_identity fake)
	[ -n "$NODE" ] && [ "$NODE" != null ]
}

# The address lists fake-node received, one request per line.
requests() { jq -c 'select(.type == "request") | .body.addrs' "$SPAWN_DIR/fake.out"; }

# fd-join, bounded: a client that wrongly hangs must not hang the suite.
join() { timeout -k 2 20 fd-join "$@"; }

assert_usage_line()
{
	local l
	for l in "${stderr_lines[@]}"; do
		[[ $l == 'usage: fd-join '* ]] && return 0
	done
	echo "no usage line on stderr: $stderr" | fail
}

## Command line

@test "--help prints the usage on stdout and exits 0" {
	run -0 --separate-stderr fd-join --help
	assert_equal "$stderr" ""
	assert_line --index 0 --regexp '^usage: fd-join '
	assert_output --partial '--expect'
	assert_output --partial '--timeout'
	run -0 fd-join -h
	assert_line --index 0 --regexp '^usage: fd-join '
}

@test "--version and -V print 'fd-join VERSION'" {
	run -0 fd-join --version
	assert_equal "$output" "fd-join $(cat "$FD_ROOT/VERSION")"
	run -0 fd-join -V
	assert_equal "$output" "fd-join $(cat "$FD_ROOT/VERSION")"
}

@test "no addresses, empty stdin and no --expect: usage error 'no addresses given'" {
	run -2 --separate-stderr join -n 127.0.0.1:1 </dev/null
	assert_equal "$output" ""
	assert_equal "${stderr_lines[0]}" "fd-join: no addresses given"
	assert_usage_line
	# Blank lines and ignored records are no addresses either.
	printf '\n{"type":"peer","event":"down","addr":"a:1"}\n' >"$IN"
	run -2 --separate-stderr join -n 127.0.0.1:1 <"$IN"
	assert_equal "${stderr_lines[0]}" "fd-join: no addresses given"
}

@test "a malformed address argument is a usage error; nothing is sent" {
	local bad
	start_fake
	for bad in 'a:x' 'a:0' '::1' 'a b:1' ''; do
		run -2 --separate-stderr join -n "$NODE" 127.0.0.1:4001 "$bad"
		assert_equal "$output" ""
		assert_regex "${stderr_lines[0]}" "^fd-join: invalid address '"
		assert_usage_line
	done
	assert_equal "$(requests)" ""
}

@test "bad options and option values are usage errors" {
	run -2 --separate-stderr join --bogus a:1
	assert_equal "${stderr_lines[0]}" "fd-join: unknown option '--bogus'"
	run -2 --separate-stderr join --expect 0 a:1
	assert_equal "${stderr_lines[0]}" "fd-join: invalid --expect '0' (1 to 1000000)"
	run -2 --separate-stderr join -e many a:1
	assert_regex "${stderr_lines[0]}" "invalid --expect 'many'"
	run -2 --separate-stderr join --timeout 0 a:1
	assert_equal "${stderr_lines[0]}" "fd-join: invalid --timeout '0'"
	run -2 --separate-stderr join -t
	assert_equal "${stderr_lines[0]}" "fd-join: option '-t' requires an argument"
	run -2 --separate-stderr join -n 'no port:x' a:1
	assert_regex "${stderr_lines[0]}" "invalid node address"
}

## The node

@test "an unreachable node: exit 1 and 'unable to reach'" {
	run -1 --separate-stderr join -n 127.0.0.1:1 127.0.0.1:4001
	assert_equal "$output" ""
	assert_regex "${stderr_lines[0]}" "^fd-join: unable to reach '127\.0\.0\.1:1': "
	# With --expect only, the same.
	run -1 --separate-stderr join -n 127.0.0.1:1 --expect 2 </dev/null
	assert_regex "${stderr_lines[0]}" "^fd-join: unable to reach '127\.0\.0\.1:1': "
}

@test "FD_NODE is the default node" {
	FD_NODE=127.0.0.1:1 run -1 --separate-stderr join 127.0.0.1:4001
	assert_regex "${stderr_lines[0]}" "^fd-join: unable to reach '127\.0\.0\.1:1': "
	start_fake
	FD_NODE=$NODE run -0 --separate-stderr join 127.0.0.1:4001
	assert_equal "$(requests)" '["127.0.0.1:4001"]'
}

## Joining

@test "one join line per address, addresses normalized, one request" {
	start_fake
	run -0 --separate-stderr join -n "$NODE" 127.0.0.1:4001 127.0.0.2 '[::1]:7'
	assert_equal "$stderr" ""
	assert_equal "${#lines[@]}" 3
	assert_equal "${lines[0]}" '{"type":"join","addr":"127.0.0.1:4001","ok":true,"name":"peer-4001","id":"id-4001"}'
	assert_equal "${lines[1]}" '{"type":"join","addr":"127.0.0.2:4380","ok":true,"name":"peer-4380","id":"id-4380"}'
	assert_equal "${lines[2]}" '{"type":"join","addr":"[::1]:7","ok":true,"name":"peer-7","id":"id-7"}'
	assert_equal "$(requests)" '["127.0.0.1:4001","127.0.0.2:4380","[::1]:7"]'
}

@test "a failed join: every line printed, 'unable to join' on stderr, exit 1" {
	start_fake
	run -1 --separate-stderr join -n "$NODE" 127.0.0.1:4001 127.0.0.1:1 127.0.0.1:4002
	assert_equal "${#lines[@]}" 3
	assert_equal "${lines[1]}" '{"type":"join","addr":"127.0.0.1:1","ok":false,"error":"connection refused"}'
	assert_equal "$(jq -r .ok <<<"${lines[2]}")" true
	assert_equal "$stderr" "fd-join: unable to join '127.0.0.1:1': connection refused"
}

@test "an error answer from the node fails every address with its message" {
	start_fake --join-status 500
	run -1 --separate-stderr join -n "$NODE" 127.0.0.1:4001 127.0.0.1:4002
	assert_equal "${lines[0]}" '{"type":"join","addr":"127.0.0.1:4001","ok":false,"error":"injected"}'
	assert_equal "${lines[1]}" '{"type":"join","addr":"127.0.0.1:4002","ok":false,"error":"injected"}'
	assert_equal "${stderr_lines[0]}" "fd-join: unable to join '127.0.0.1:4001': injected"
	assert_equal "${stderr_lines[1]}" "fd-join: unable to join '127.0.0.1:4002': injected"
}

@test "-q suppresses the join lines, not the failures" {
	start_fake
	run -1 --separate-stderr join -q -n "$NODE" 127.0.0.1:4001 127.0.0.1:1
	assert_equal "$output" ""
	assert_equal "$stderr" "fd-join: unable to join '127.0.0.1:1': connection refused"
}

## stdin

@test "stdin: plain and JSON lines; down events and error records are ignored" {
	start_fake
	cat >"$IN" <<-'EOF'
		127.0.0.1:4001

		  127.0.0.2
		{"type":"peer","event":"up","addr":"127.0.0.3:4003","strategy":"static","ts":"x"}
		{"type":"peer","event":"down","addr":"127.0.0.4:4004"}
		{"type":"error","strategy":"file","source":"p","error":"gone"}
		{"type":"node","name":"n9","addr":"127.0.0.9:4009"}
	EOF
	run -0 --separate-stderr join -n "$NODE" <"$IN"
	assert_equal "$stderr" ""
	assert_equal "$(jq -r .addr <<<"$output" | tr '\n' ' ')" \
		"127.0.0.1:4001 127.0.0.2:4380 127.0.0.3:4003 127.0.0.9:4009 "
}

@test "stdin: bad lines are warned about with their number, skipped, exit 7" {
	start_fake
	cat >"$IN" <<-'EOF'
		127.0.0.1:4001
		{"addr": 5}
		not an address
		{"type":"peer"
		["127.0.0.1:4002"]
		127.0.0.1:4003
	EOF
	run -7 --separate-stderr join -n "$NODE" <"$IN"
	assert_equal "$(jq -r .addr <<<"$output" | tr '\n' ' ')" "127.0.0.1:4001 127.0.0.1:4003 "
	assert_equal "${#stderr_lines[@]}" 4
	assert_equal "${stderr_lines[0]}" 'fd-join: stdin: line 2: no "addr" string in the record'
	assert_equal "${stderr_lines[1]}" "fd-join: stdin: line 3: invalid address 'not an address' (expected HOST[:PORT])"
	assert_regex "${stderr_lines[2]}" '^fd-join: stdin: line 4: invalid JSON'
	assert_regex "${stderr_lines[3]}" '^fd-join: stdin: line 5: '
}

@test "stdin --strict: stops at the first bad line, exit 7, nothing more joined" {
	start_fake
	printf '127.0.0.1:4001\nbad:x\n127.0.0.1:4003\n' >"$IN"
	run -7 --separate-stderr join --strict -n "$NODE" <"$IN"
	assert_equal "$output" ""
	assert_equal "$stderr" "fd-join: stdin: line 2: invalid address 'bad:x' (expected HOST[:PORT])"
	assert_equal "$(requests)" ""
}

@test "a failed join outranks bad input: exit 1" {
	start_fake
	printf '127.0.0.1:1\nbad:x\n' >"$IN"
	run -1 --separate-stderr join -n "$NODE" <"$IN"
	assert_equal "${#lines[@]}" 1
}

@test "arguments win over stdin" {
	start_fake
	echo 127.0.0.1:4009 >"$IN"
	run -0 join -n "$NODE" 127.0.0.1:4001 <"$IN"
	assert_equal "$(requests)" '["127.0.0.1:4001"]'
}

@test "fd-discover static ... | fd-join" {
	start_fake
	run -0 --separate-stderr bash -c 'fd-discover static 127.0.0.1:4001 127.0.0.1:4002 | fd-join -n "$1"' _ "$NODE"
	assert_equal "$stderr" ""
	assert_equal "$(jq -r '"\(.addr) \(.ok)"' <<<"$output" | tr '\n' ' ')" \
		"127.0.0.1:4001 true 127.0.0.1:4002 true "
}

@test "a long input is sent in batches of at most 128 addresses" {
	start_fake
	seq 4001 4300 | sed 's/^/127.0.0.1:/' >"$IN"
	run -0 --separate-stderr join -q -n "$NODE" <"$IN"
	assert_equal "$(requests | jq -s 'map(length) | add')" 300
	assert_equal "$(requests | jq -s 'map(length) | max')" 128
}

## --expect

@test "--expect: waits until N members are alive, then a result line, exit 0" {
	start_fake --alive-after 300ms
	run -0 --separate-stderr join -n "$NODE" --expect 3 --timeout 10s 127.0.0.1:4001 127.0.0.1:4002
	assert_equal "$stderr" ""
	assert_equal "${#lines[@]}" 3
	assert_equal "$(jq -c 'del(.elapsed)' <<<"${lines[2]}")" \
		'{"type":"result","ok":true,"expect":3,"alive":3}'
	# It had to wait for the members to turn alive.
	assert_equal "$(jq '.elapsed >= 0.2 and .elapsed < 10' <<<"${lines[2]}")" true
}

@test "--expect alone just waits" {
	start_fake
	run -0 --separate-stderr join -n "$NODE" -e 1 </dev/null
	assert_equal "$(jq -c 'del(.elapsed)' <<<"$output")" '{"type":"result","ok":true,"expect":1,"alive":1}'
	assert_equal "$(requests)" ""
}

@test "--expect not met within --timeout: ok:false with the members seen, exit 5" {
	start_fake
	run -5 --separate-stderr join -q -n "$NODE" --expect 4 --timeout 500ms 127.0.0.1:4001
	assert_equal "${#lines[@]}" 1
	assert_equal "$(jq -c 'del(.elapsed) | del(.members[0].addr)' <<<"$output")" \
		'{"type":"result","ok":false,"expect":4,"alive":2,"members":[{"name":"fake","state":"alive"},{"name":"peer-4001","addr":"127.0.0.1:4001","state":"alive"}]}'
	assert_equal "$(jq '.elapsed >= 0.5 and .elapsed < 5' <<<"$output")" true
	assert_equal "$stderr" "fd-join: only 2 of 4 members alive after 500ms"
}

@test "--expect counts only alive members" {
	start_fake --alive-after 1h
	run -5 --separate-stderr join -q -n "$NODE" -e 2 -t 300ms 127.0.0.1:4001
	assert_equal "$(jq -c '[.alive, (.members | map(.state))]' <<<"$output")" '[1,["alive","suspect"]]'
	assert_equal "$stderr" "fd-join: only 1 of 2 members alive after 300ms"
}

@test "| head -1 ends quietly with exit 0" {
	start_fake
	seq 4001 4300 | sed 's/^/127.0.0.1:/' >"$IN"
	run -0 --separate-stderr bash -c 'fd-join -n "$1" <"$2" | head -n 1; exit "${PIPESTATUS[0]}"' _ "$NODE" "$IN"
	assert_equal "${#lines[@]}" 1
	assert_equal "$stderr" ""
}
