#!/usr/bin/env bats
# shellcheck disable=SC2154,SC2016  # stderr* come from bats run; $1 in bash -c is meant
# fd-discover: the polled strategies exec, dns and dns-srv, and --expect.
# The dns tests ask their own DNS server (tests/tools/dns-responder) on
# loopback, which reads its zone file again whenever it changes.

setup()
{
	load helpers/common
	load helpers/spawn
	fd_common_setup
	spawn_setup
	ZONE=$BATS_TEST_TMPDIR/zone
}

teardown()
{
	spawn_stop_all
	fd_common_teardown
}

peers() { jq -r 'select(.type == "peer") | "\(.event) \(.addr) \(.strategy)"' "$@"; }

# zone LINE...: replaces the zone file in one step.
zone()
{
	printf '%s\n' "$@" >"$ZONE.tmp"
	mv "$ZONE.tmp" "$ZONE"
}

# dns_server: starts the responder on $ZONE; RESOLVER is its address.
dns_server()
{
	[ -e "$ZONE" ] || : >"$ZONE"
	spawn dns dns-responder "$ZONE"
	fd_wait_until 10s test -s "$SPAWN_DIR/dns.out"
	RESOLVER=127.0.0.1:$(head -n 1 "$SPAWN_DIR/dns.out")
}

## exec

@test "exec: plain and JSON peer lines; other records and down events skipped" {
	local cmd='echo 127.0.0.1:4001; echo "  # a comment"; echo 127.0.0.2
echo "{\"type\":\"peer\",\"event\":\"up\",\"name\":\"n3\",\"addr\":\"127.0.0.3:4003\",\"meta\":{\"zone\":\"a\"}}"
echo "{\"type\":\"error\",\"error\":\"x\"}"; echo "{\"addr\":\"127.0.0.4:1\",\"event\":\"down\"}"'
	run -0 --separate-stderr fd-discover exec "$cmd"
	assert_equal "$stderr" ""
	assert_equal "$(peers <<<"$output")" "$(printf '%s\n' 'up 127.0.0.1:4001 exec' \
		'up 127.0.0.2:4380 exec' 'up 127.0.0.3:4003 exec')"
	assert_equal "$(jq -c 'select(.name) | del(.ts)' <<<"$output")" \
		'{"type":"peer","event":"up","name":"n3","addr":"127.0.0.3:4003","strategy":"exec","meta":{"zone":"a"}}'
}

@test "exec: bad lines are warned about with their line number, skipped, exit 7" {
	run -7 --separate-stderr fd-discover exec 'printf "a:1\nnot an address\n{\"addr\":5}\n{oops\nb:2\n"'
	assert_equal "$(peers <<<"$output")" "$(printf '%s\n' 'up a:1 exec' 'up b:2 exec')"
	assert_equal "${#stderr_lines[@]}" 3
	assert_regex "${stderr_lines[0]}" "^fd-discover: exec '.*': line 2: invalid address 'not an address'"
	assert_regex "${stderr_lines[1]}" ": line 3: no \"addr\" string\$"
	assert_regex "${stderr_lines[2]}" ": line 4: invalid JSON object\$"
	run -7 --separate-stderr fd-discover --strict exec 'printf "a:1\nbad:x\nb:2\n"'
	assert_equal "$(peers <<<"$output")" "up a:1 exec"
}

@test "exec: a failing command is an error line and exit 1" {
	run -1 --separate-stderr fd-discover exec 'echo a:1; exit 3'
	assert_equal "$(jq -c 'del(.ts)' <<<"$output")" \
		"{\"type\":\"error\",\"strategy\":\"exec\",\"source\":\"echo a:1; exit 3\",\"error\":\"'echo a:1; exit 3': exited with status 3\"}"
	assert_equal "$stderr" "fd-discover: 'echo a:1; exit 3': exited with status 3"
	run -1 --separate-stderr fd-discover exec 'true'
	assert_equal "$stderr" "fd-discover: 'true': no peers in its output"
}

@test "exec: a command that outlives --exec-timeout is killed (with what it started)" {
	run -1 --separate-stderr timeout 20 fd-discover --exec-timeout 300ms exec 'sleep 30 & sleep 30; echo a:1'
	assert_equal "$stderr" "fd-discover: 'sleep 30 & sleep 30; echo a:1': timed out after 300 ms"
	run -2 --separate-stderr fd-discover --exec-timeout never exec true
	run -2 --separate-stderr fd-discover exec
	assert_equal "${stderr_lines[0]}" "fd-discover: exec: no CMD given"
}

@test "exec --watch: re-run every interval; a failure removes nothing; down after --down-after" {
	local out=$SPAWN_DIR/w.out list=$BATS_TEST_TMPDIR/list
	printf '%s\n' a:1 b:2 >"$list"
	spawn w fd-discover --watch --interval 100ms --down-after 2 exec "cat '$list'"
	fd_wait_until 10s has_lines "$out" 2 '.event == "up"'
	rm "$list" # cat fails: an error, once
	fd_wait_until 10s has_lines "$out" 1 '.type == "error"'
	sleep 0.4
	assert_equal "$(count_lines "$out" '.event == "down"')" 0
	assert_equal "$(count_lines "$out" '.type == "error"')" 1
	printf '%s\n' b:2 c:3 >"$list"
	fd_wait_until 10s has_lines "$out" 1 '.event == "down" and .addr == "a:1"'
	spawn_stop w TERM
	assert_equal "${SPAWN_EXIT[w]}" 0
	assert_equal "$(peers "$out")" "$(printf '%s\n' 'up a:1 exec' 'up b:2 exec' \
		'up c:3 exec' 'down a:1 exec')"
}

## --expect

@test "--expect: exit 5 when fewer peers are found within --timeout" {
	run -5 --separate-stderr fd-discover --expect 3 --timeout 500ms -i 100ms exec 'echo a:1'
	assert_equal "$(peers <<<"$output")" "up a:1 exec"
	assert_equal "$stderr" "fd-discover: found 1 of 3 peers within 500ms"
	run -0 fd-discover --expect 2 static a b
	run -5 --separate-stderr fd-discover --expect 3 static a b
	run -2 --separate-stderr fd-discover --expect 2 --watch static a
	assert_equal "${stderr_lines[0]}" "fd-discover: --expect is for one-shot runs, not --watch"
}

@test "--expect: polls until enough peers appear" {
	local list=$BATS_TEST_TMPDIR/list
	echo a:1 >"$list"
	(sleep 0.5 && printf '%s\n' a:1 b:2 c:3 >"$list") &
	run -0 --separate-stderr fd-discover --expect 3 --timeout 10s -i 100ms exec "cat '$list'"
	assert_equal "$(peers <<<"$output" | wc -l)" 3
	echo a:1 >"$list"
	(sleep 0.5 && printf '%s\n' a:1 b:2 >"$list") &
	run -0 --separate-stderr fd-discover --expect 2 --timeout 10s -i 100ms file "$list"
	assert_equal "$(peers <<<"$output" | wc -l)" 2
}

## dns, dns-srv

@test "dns: A and AAAA records with --port; NXDOMAIN and an empty answer are errors" {
	zone 'nodes.test A 127.0.0.1' 'nodes.test A 127.0.0.2' 'nodes.test AAAA ::1' \
		'mx.test SRV 0 0 1 x.test'
	dns_server
	run -0 --separate-stderr fd-discover --resolver "$RESOLVER" --port 4001 dns nodes.test
	assert_equal "$stderr" ""
	assert_equal "$(peers <<<"$output")" "$(printf '%s\n' 'up 127.0.0.1:4001 dns' \
		'up 127.0.0.2:4001 dns' 'up [::1]:4001 dns')"
	run -1 --separate-stderr fd-discover --resolver "$RESOLVER" dns nope.test
	assert_equal "$stderr" "fd-discover: unable to resolve 'nope.test': no such name (NXDOMAIN)"
	assert_equal "$(jq -r .type <<<"$output")" error
	run -1 --separate-stderr fd-discover --resolver "$RESOLVER" dns mx.test
	assert_equal "$stderr" "fd-discover: unable to resolve 'mx.test': no A or AAAA records"
	run -2 --separate-stderr fd-discover --resolver dns.example dns a
	assert_equal "${stderr_lines[0]}" "fd-discover: invalid --resolver 'dns.example' (expected IP[:PORT])"
}

@test "dns --watch: a record added is up; removed, down only after --down-after polls" {
	local out=$SPAWN_DIR/w.out
	zone 'nodes.test A 127.0.0.1'
	dns_server
	spawn w fd-discover --watch --interval 200ms --down-after 3 --resolver "$RESOLVER" dns nodes.test
	fd_wait_until 10s has_lines "$out" 1 '.event == "up" and .addr == "127.0.0.1:4380"'
	zone 'nodes.test A 127.0.0.1' 'nodes.test A 127.0.0.2'
	fd_wait_until 10s has_lines "$out" 1 '.event == "up" and .addr == "127.0.0.2:4380"'
	zone 'nodes.test A 127.0.0.2'
	# Three polls without it (the first within 200 ms): not before 400 ms.
	local t0=$EPOCHREALTIME
	fd_wait_until 10s has_lines "$out" 1 '.event == "down" and .addr == "127.0.0.1:4380"'
	local ms
	ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
	[ "$ms" -ge 350 ] || fail "down after $ms ms, expected three polls"
	spawn_stop w TERM
	assert_equal "${SPAWN_EXIT[w]}" 0
	assert_equal "$(peers "$out")" "$(printf '%s\n' 'up 127.0.0.1:4380 dns' \
		'up 127.0.0.2:4380 dns' 'down 127.0.0.1:4380 dns')"
}

@test "dns --watch: SERVFAIL removes nothing and prints one error line" {
	local out=$SPAWN_DIR/w.out err=$SPAWN_DIR/w.err
	zone 'nodes.test A 127.0.0.1'
	dns_server
	spawn w fd-discover --watch --interval 100ms --resolver "$RESOLVER" dns nodes.test
	fd_wait_until 10s has_lines "$out" 1 '.event == "up"'
	zone 'nodes.test servfail'
	fd_wait_until 10s has_lines "$out" 1 '.type == "error"'
	sleep 0.5
	assert_equal "$(count_lines "$out" '.event == "down"')" 0
	assert_equal "$(count_lines "$out" '.type == "error"')" 1
	assert_equal "$(jq -c 'select(.type == "error") | del(.ts)' "$out")" \
		"{\"type\":\"error\",\"strategy\":\"dns\",\"source\":\"nodes.test\",\"error\":\"unable to resolve 'nodes.test' (A): server failure (SERVFAIL)\"}"
	assert_equal "$(cat "$err")" "fd-discover: unable to resolve 'nodes.test' (A): server failure (SERVFAIL)"
	# An empty answer removes nothing either.
	zone 'nodes.test SRV 0 0 1 x.test'
	fd_wait_until 10s has_lines "$out" 2 '.type == "error"'
	sleep 0.3
	assert_equal "$(count_lines "$out" '.event == "down"')" 0
	spawn_stop w TERM
	assert_equal "${SPAWN_EXIT[w]}" 0
}

@test "dns-srv: targets resolved at the same server, ports from the records, meta" {
	zone '_fd._tcp.test SRV 20 0 4003 n3.test' '_fd._tcp.test SRV 10 5 4001 n1.test' \
		'_fd._tcp.test SRV 10 9 4002 n2.test' 'n1.test A 127.0.0.1' 'n2.test AAAA ::1' \
		'n3.test servfail'
	dns_server
	# A target that fails: what resolved is up, the poll is an error.
	run -1 --separate-stderr fd-discover --resolver "$RESOLVER" dns-srv _fd._tcp.test
	assert_equal "$(peers <<<"$output")" "$(printf '%s\n' 'up [::1]:4002 dns-srv' \
		'up 127.0.0.1:4001 dns-srv')"
	assert_equal "$(jq -c 'select(.type == "peer") | .meta' <<<"$output" | head -n 1)" \
		'{"target":"n2.test","priority":10,"weight":9}'
	assert_equal "$stderr" \
		"fd-discover: unable to resolve 'n3.test' (target of '_fd._tcp.test'): server failure (SERVFAIL)"
	# A target without addresses is given by name.
	zone '_fd._tcp.test SRV 10 5 4001 n1.test' '_fd._tcp.test SRV 10 5 4003 n3.test' \
		'n1.test A 127.0.0.1'
	run -0 --separate-stderr fd-discover --resolver "$RESOLVER" dns-srv _fd._tcp.test
	assert_equal "$(peers <<<"$output")" "$(printf '%s\n' 'up 127.0.0.1:4001 dns-srv' \
		'up n3.test:4003 dns-srv')"
	run -1 --separate-stderr fd-discover --resolver "$RESOLVER" dns-srv n1.test
	assert_equal "$stderr" "fd-discover: unable to resolve 'n1.test' (SRV): no SRV records"
}

@test "dns-srv --watch: up when a record is added, down after --down-after polls" {
	local out=$SPAWN_DIR/w.out
	zone '_fd._tcp.test SRV 10 5 4001 n1.test' 'n1.test A 127.0.0.1'
	dns_server
	spawn w fd-discover -w -i 100ms --down-after 2 --resolver "$RESOLVER" dns-srv _fd._tcp.test
	fd_wait_until 10s has_lines "$out" 1 '.event == "up" and .addr == "127.0.0.1:4001"'
	zone '_fd._tcp.test SRV 10 5 4001 n1.test' '_fd._tcp.test SRV 10 5 4002 n1.test' \
		'n1.test A 127.0.0.1'
	fd_wait_until 10s has_lines "$out" 1 '.event == "up" and .addr == "127.0.0.1:4002"'
	zone '_fd._tcp.test servfail'
	fd_wait_until 10s has_lines "$out" 1 '.type == "error"'
	zone '_fd._tcp.test SRV 10 5 4002 n1.test' 'n1.test A 127.0.0.1'
	fd_wait_until 10s has_lines "$out" 1 '.event == "down" and .addr == "127.0.0.1:4001"'
	spawn_stop w INT
	assert_equal "${SPAWN_EXIT[w]}" 0
	assert_equal "$(count_lines "$out" '.event == "down"')" 1
}

@test "cluster: fd-discover dns-srv ... | fd-join --expect 3 with three fd-nodes" {
	local n addr lines=()
	for n in n1 n2 n3; do
		spawn "$n" fd-node --name "$n" --listen 127.0.0.1:0 --profile local
		addr=$(spawn_identity "$n")
		[ -n "$addr" ] && [ "$addr" != null ]
		eval "ADDR_$n=\$addr"
		lines+=("_fd._tcp.test SRV 10 5 ${addr##*:} $n.test" "$n.test A 127.0.0.1")
	done
	zone "${lines[@]}"
	dns_server
	run -0 --separate-stderr timeout 40 bash -c \
		'fd-discover --resolver "$2" dns-srv _fd._tcp.test | fd-join -n "$1" --expect 3 --timeout 20s' \
		_ "$ADDR_n1" "$RESOLVER"
	assert_equal "$(jq -c 'select(.type == "result") | [.ok, .alive]' <<<"$output")" '[true,3]'
	# The same with dns (A records) and --port, for one peer.
	zone "solo.test A 127.0.0.1"
	run -0 --separate-stderr timeout 40 bash -c \
		'fd-discover --resolver "$2" --port "$3" dns solo.test | fd-join -n "$1" --expect 3 --timeout 20s' \
		_ "$ADDR_n1" "$RESOLVER" "${ADDR_n2##*:}"
	assert_equal "$(jq -c 'select(.type == "result") | [.ok, .alive]' <<<"$output")" '[true,3]'
}
