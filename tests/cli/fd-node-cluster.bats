#!/usr/bin/env bats
# shellcheck disable=SC2154  # $stderr comes from run
# fd-node membership with real nodes on 127.0.0.1: forming a cluster,
# detecting a killed node, rejoin after restart, leave, name conflicts,
# healing after a long "partition" (SIGSTOP past the failure timeout),
# garbage datagrams, the events stream, readiness.

setup() { load helpers/common; fd_common_setup; }
teardown() { fd_common_teardown; }

# alive_count NODE: how many members NODE sees alive.
alive_count() { fd-node members -n "${FD_ADDR[$1]}" | jq -s '[.[] | select(.state == "alive")] | length'; }
# sees NODE N: NODE sees exactly N alive members.
sees() { [ "$(alive_count "$1")" = "$2" ]; }
# state_of NODE MEMBER: MEMBER's state as NODE sees it.
state_of() { fd-node members -n "${FD_ADDR[$1]}" | jq -r --arg m "$2" 'select(.name == $m) | .state'; }
has_state() { [ "$(state_of "$1" "$2")" = "$3" ]; }
info_field() { fd-node info -n "${FD_ADDR[$1]}" | jq -r "$2"; }
# info_true NODE JQ-EXPR: the expression holds for NODE's /v1/info.
info_true() { fd-node info -n "${FD_ADDR[$1]}" | jq -e "$2" >/dev/null; }

start3() {
	fd_start_node n1 --profile local
	fd_start_node n2 --profile local --join "${FD_ADDR[n1]}"
	fd_start_node n3 --profile local --join "${FD_ADDR[n1]}"
	for n in n1 n2 n3; do fd_wait_until 10s sees "$n" 3; done
}

@test "three nodes joining one seed all see three alive members" {
	start3
	run -0 --separate-stderr fd-node members -n "${FD_ADDR[n2]}"
	assert_equal "${#lines[@]}" 3
	fd_assert_jsonl <(printf '%s\n' "$output")
	run -0 jq -e -s 'map(.type == "member" and (.id | test("^[0-9a-f]{32}$")) and .addr != null and .incarnation > 0) | all' <<<"$output"
	run -0 fd-node members -n "${FD_ADDR[n1]}" --format table
	assert_line --index 0 --regexp '^NAME +ADDR +STATE'
	assert_equal "${#lines[@]}" 4
	run -0 info_field n1 '.members.alive'
	assert_output 3
	run -0 info_field n1 '.partitioned'
	assert_output false
}

@test "a SIGKILLed node is marked failed by every other node, and rejoins by itself when restarted" {
	start3
	fd_stop_node n3 KILL
	fd_wait_until 10s has_state n1 n3 failed
	fd_wait_until 10s has_state n2 n3 failed
	run -0 fd-node members -n "${FD_ADDR[n1]}"
	run -0 jq -e -s 'map(select(.name == "n3")) | .[0].failures >= 1' <<<"$output"
	# Same name, new process, new port: the same member, alive again everywhere.
	fd_start_node n3 --profile local --join "${FD_ADDR[n2]}"
	for n in n1 n2 n3; do fd_wait_until 10s sees "$n" 3; done
	run -0 fd-node members -n "${FD_ADDR[n1]}"
	run -0 jq -e -s --arg a "${FD_ADDR[n3]}" 'map(select(.name == "n3")) | .[0].addr == $a' <<<"$output"
}

@test "leave: the node stops and the others record it as left, not failed" {
	start3
	run -0 --separate-stderr fd-node leave -n "${FD_ADDR[n2]}"
	run -0 jq -e '.type == "result" and .left == true and .name == "n2"' <<<"$output"
	fd_wait_until 10s has_state n1 n2 left
	fd_wait_until 10s has_state n3 n2 left
	fd_wait_until 10s _fd_gone "${FD_PID[n2]}"
	fd_stop_node n2
	assert_equal "${FD_EXIT[n2]}" 0
	run -0 fd-node members -n "${FD_ADDR[n1]}"
	run -0 jq -e -s 'map(select(.name == "n2")) | .[0].failures == 0' <<<"$output"
}

@test "SIGTERM is a graceful leave too" {
	start3
	fd_stop_node n3 TERM
	assert_equal "${FD_EXIT[n3]}" 0
	fd_wait_until 10s has_state n1 n3 left
}

@test "a second node with a name already in use gets a clear conflict error" {
	fd_start_node n1 --profile local
	fd_start_node n2 --profile local --join "${FD_ADDR[n1]}"
	fd_wait_until 10s sees n1 2
	fd_start_node dup --name n2 --profile local --join "${FD_ADDR[n1]}"
	fd_wait_until 15s _fd_gone "${FD_PID[dup]}"
	fd_stop_node dup
	assert_equal "${FD_EXIT[dup]}" 4
	run grep -q "name 'n2' is already in use" "${FD_ERR[dup]}"
	assert_success
	# The original n2 is still there and alive everywhere.
	fd_wait_until 10s has_state n1 n2 alive
	run -0 info_field n2 '.name'
	assert_output n2
}

@test "a node stopped past the failure timeout (SIGSTOP) merges back by itself after SIGCONT" {
	start3
	kill -STOP "${FD_PID[n3]}"
	fd_wait_until 10s has_state n1 n3 failed
	fd_wait_until 10s has_state n2 n3 failed
	kill -CONT "${FD_PID[n3]}"
	for n in n1 n2 n3; do fd_wait_until 20s sees "$n" 3; done
}

@test "garbage, truncated and unknown-version datagrams are dropped and counted" {
	fd_start_node n1 --profile local
	printf 'garbage that is not fd' >"/dev/udp/127.0.0.1/${FD_PORT[n1]}"
	printf '\xfd\x4d' >"/dev/udp/127.0.0.1/${FD_PORT[n1]}"
	printf '\xfd\x4d\x09\x01whatever' >"/dev/udp/127.0.0.1/${FD_PORT[n1]}"
	head -c 3000 /dev/zero >"/dev/udp/127.0.0.1/${FD_PORT[n1]}"
	fd_wait_until 5s info_true n1 '.udp.rx_bad + .udp.rx_version >= 4'
	run -0 info_field n1 '.udp.rx_version'
	assert_output 1
	fd_http GET "${FD_ADDR[n1]}" /healthz
	assert_equal "$HTTP_CODE" 200
}

@test "POST /v1/join: one result per address; a dead address fails without harming the node" {
	fd_start_node n1 --profile local
	fd_start_node n2 --profile local
	fd_hold_port tcp
	local dead=127.0.0.1:$FD_HELD_PORT
	fd_http POST "${FD_ADDR[n1]}" /v1/join -d "{\"addrs\":[\"${FD_ADDR[n2]}\",\"$dead\",\"bad:addr:x\"]}"
	assert_equal "$HTTP_CODE" 200
	run -0 jq -e --arg a "${FD_ADDR[n2]}" '.results[0] | .type == "join" and .ok and .addr == $a and .name == "n2"' <<<"$HTTP_BODY"
	run -0 jq -e '.results[1] | .ok == false and (.error | length > 0)' <<<"$HTTP_BODY"
	run -0 jq -e '.results[2] | .ok == false' <<<"$HTTP_BODY"
	fd_wait_until 10s sees n2 2
	# Joining again is a no-op success.
	fd_http POST "${FD_ADDR[n1]}" /v1/join -d "{\"addrs\":[\"${FD_ADDR[n2]}\"]}"
	run -0 jq -e '.results[0].ok' <<<"$HTTP_BODY"
	fd_http POST "${FD_ADDR[n1]}" /v1/join -d '{"addrs":[]}'
	assert_equal "$HTTP_CODE" 400
	fd_http POST "${FD_ADDR[n1]}" /v1/join -d '{"addrs":'
	assert_equal "$HTTP_CODE" 400
	run -0 info_field n1 '.members.alive'
	assert_output 2
}

@test "--join to an address where nothing answers: exit 1 without --retry-join" {
	fd_hold_port tcp
	run -1 --separate-stderr timeout 20 fd-node --name lone --listen 127.0.0.1:0 --profile local --join "127.0.0.1:$FD_HELD_PORT"
	assert_regex "$stderr" 'unable to join any --join address'
}

@test "--retry-join keeps trying until the seed comes up" {
	fd_hold_port tcp
	local port=$FD_HELD_PORT
	fd_start_node n2 --profile local --retry-join --join "127.0.0.1:$port"
	# Free the port, then start the seed on it.
	kill "$FD_HELD_PID" 2>/dev/null || true
	fd_wait_until 5s bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null"
	fd_start_node n1 --profile local --listen "127.0.0.1:$port"
	fd_wait_until 20s sees n2 2
}

@test "GET /v1/events streams membership changes as JSON lines" {
	fd_start_node n1 --profile local
	fd_spawn events curl -sN "http://${FD_ADDR[n1]}/v1/events"
	fd_wait_until 5s bash -c "ss -tn | grep -q ':${FD_PORT[n1]} '"
	fd_start_node n2 --profile local --join "${FD_ADDR[n1]}"
	fd_wait_until 10s grep -q '"event":"joined"' "${FD_OUT[events]}"
	fd_stop_node n2 TERM
	fd_wait_until 10s grep -q '"event":"left"' "${FD_OUT[events]}"
	fd_assert_jsonl "${FD_OUT[events]}"
	run -0 jq -e -s 'map(.type == "member" and .name == "n2" and (.ts | test("Z$"))) | all' "${FD_OUT[events]}"
}

@test "/readyz honours --ready-expect" {
	fd_start_node n1 --profile local --ready-expect 2
	fd_http GET "${FD_ADDR[n1]}" /readyz
	assert_equal "$HTTP_CODE" 503
	run -0 jq -e '.ready == false and (.reason | test("1 of 2"))' <<<"$HTTP_BODY"
	fd_start_node n2 --profile local --join "${FD_ADDR[n1]}"
	fd_wait_until 10s sees n1 2
	fd_http GET "${FD_ADDR[n1]}" /readyz
	assert_equal "$HTTP_CODE" 200
}

@test "bad membership options are usage errors" {
	run -2 --separate-stderr fd-node --profile fast --listen 127.0.0.1:0
	assert_regex "${stderr_lines[0]}" "invalid --profile 'fast'"
	run -2 --separate-stderr fd-node --join nope:port --listen 127.0.0.1:0
	run -2 --separate-stderr fd-node --ready-expect 0 --listen 127.0.0.1:0
	run -2 --separate-stderr fd-node members -n 127.0.0.1:1 extra
	run -2 --separate-stderr fd-node members --format xml
	run -1 --separate-stderr fd-node members -n 127.0.0.1:1
	assert_regex "$stderr" "unable to reach '127.0.0.1:1'"
}

@test "--detach with a name already in use: the parent exits 4 and names the other node" {
	fd_start_node n1 --profile local
	run -4 --separate-stderr timeout 20 fd-node --detach --name n1 --listen 127.0.0.1:0 --profile local --join "${FD_ADDR[n1]}"
	assert_equal "$output" ""
	assert_regex "$stderr" "^fd-node: name 'n1' is already in use by the node at ${FD_ADDR[n1]}"
}

@test "--ready-quorum: a node that sees no majority reports partitioned and is not ready" {
	fd_start_node n1 --profile local --ready-quorum
	fd_start_node n2 --profile local --join "${FD_ADDR[n1]}"
	fd_start_node n3 --profile local --join "${FD_ADDR[n1]}"
	for n in n1 n2 n3; do fd_wait_until 10s sees "$n" 3; done
	fd_http GET "${FD_ADDR[n1]}" /readyz
	assert_equal "$HTTP_CODE" 200
	fd_stop_node n2 KILL
	fd_stop_node n3 KILL
	fd_wait_until 15s info_true n1 '.partitioned'
	fd_http GET "${FD_ADDR[n1]}" /readyz
	assert_equal "$HTTP_CODE" 503
	run -0 jq -e '.ready == false and (.reason | test("no quorum: 1 of 3"))' <<<"$HTTP_BODY"
	# A node that left on purpose does not count against the quorum.
	fd_start_node n4 --profile local --ready-quorum
	fd_start_node n5 --profile local --join "${FD_ADDR[n4]}"
	fd_wait_until 10s sees n4 2
	fd_stop_node n5 TERM
	fd_wait_until 10s has_state n4 n5 left
	run -0 info_field n4 '.partitioned'
	assert_output false
}
