#!/usr/bin/env bats
# shellcheck disable=SC2154  # $stderr comes from run
# fd-partition against real 3-node clusters (profile local): split and heal
# through the nodes' fault rules, rules that expire by themselves (also when
# fd-partition is SIGKILLed), and bad input that changes nothing anywhere.

setup() { load helpers/common; fd_common_setup; }
teardown() { fd_common_teardown; }

state_of() { fd-node members -n "${FD_ADDR[$1]}" | jq -r --arg m "$2" 'select(.name == $m) | .state'; }
has_state() { [ "$(state_of "$1" "$2")" = "$3" ]; }
sees() { [ "$(fd-node members -n "${FD_ADDR[$1]}" | jq -s '[.[] | select(.state == "alive")] | length')" = "$2" ]; }
rules_on() { curl -sf "http://${FD_ADDR[$1]}/v1/faults" | jq '.rules | length'; }
no_rules_anywhere() { for n in n1 n2 n3; do [ "$(rules_on "$n")" = 0 ] || return 1; done; }
nodes() { echo -n "${FD_ADDR[n1]}" "-n" "${FD_ADDR[n2]}" "-n" "${FD_ADDR[n3]}"; }

start3() {
	fd_start_node n1 --profile local
	fd_start_node n2 --profile local --join "${FD_ADDR[n1]}"
	fd_start_node n3 --profile local --join "${FD_ADDR[n1]}"
	for n in n1 n2 n3; do fd_wait_until 10s sees "$n" 3; done
}

@test "split n1 | n2,n3: each side sees the other failed, n1 is partitioned; heal: one cluster, registry intact" {
	start3
	run -0 curl -sf -X PUT "http://${FD_ADDR[n2]}/v1/registry?name=before" -d '{"value":1}'
	for n in n1 n3; do
		fd_wait_until 10s curl -sf "http://${FD_ADDR[$n]}/v1/registry?name=before" -o /dev/null
	done
	# shellcheck disable=SC2046
	run -0 --separate-stderr fd-partition -n $(nodes) split n1 n2,n3
	run -0 jq -e -c 'select(.type == "fault" and .action == "split") | .groups == [["n1"], ["n2", "n3"]] and (.ts | test("Z$"))' <<<"$output"
	fd_wait_until 15s has_state n1 n2 failed
	fd_wait_until 15s has_state n1 n3 failed
	fd_wait_until 15s has_state n2 n1 failed
	fd_wait_until 15s has_state n3 n1 failed
	run -0 fd-node info -n "${FD_ADDR[n1]}"
	run -0 jq -e '.partitioned == true and .faults.rules == 2 and .faults.dropped > 0' <<<"$output"
	run -0 fd-node info -n "${FD_ADDR[n2]}"
	run -0 jq -e '.partitioned == false and .members.alive == 2' <<<"$output"
	# status: one line per node with its rules
	# shellcheck disable=SC2046
	run -0 fd-partition -n $(nodes) status
	run -0 jq -e -s 'map({(.node): (.rules | map(.peer) | sort)}) | add == {"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}' <<<"$output"
	# shellcheck disable=SC2046
	run -0 fd-partition -n $(nodes) heal
	run -0 jq -e 'select(.action == "heal") | .nodes | length == 3' <<<"$output"
	no_rules_anywhere
	for n in n1 n2 n3; do fd_wait_until 30s sees "$n" 3; done
	run -0 fd-node info -n "${FD_ADDR[n1]}"
	run -0 jq -e '.partitioned == false' <<<"$output"
	for n in n1 n2 n3; do
		fd_wait_until 10s curl -sf "http://${FD_ADDR[$n]}/v1/registry?name=before" -o /dev/null
	done
}

@test "targets from fd-node members on stdin; --duration 2s rules vanish by themselves" {
	start3
	run -0 bash -c "fd-node members -n ${FD_ADDR[n1]} | fd-partition --duration 2s isolate n3"
	run -0 jq -e '.action == "isolate" and .duration == 2 and (.groups | length == 2)' <<<"$output"
	[ "$(rules_on n3)" = 2 ]
	[ "$(rules_on n1)" = 1 ]
	fd_wait_until 10s no_rules_anywhere
	for n in n1 n2 n3; do fd_wait_until 30s sees "$n" 3; done
}

@test "a SIGKILLed fd-partition leaves rules that still expire" {
	start3
	# shellcheck disable=SC2046
	fd_spawn part bash -c "fd-partition -n $(nodes) --duration 3s split n1 n2,n3 && exec sleep 60"
	fd_wait_until 10s bash -c "[ \"\$(curl -sf http://${FD_ADDR[n1]}/v1/faults | jq '.rules | length')\" = 2 ]"
	kill -KILL "${FD_PID[part]}"
	[ "$(rules_on n2)" = 1 ]
	fd_wait_until 10s no_rules_anywhere
}

@test "--dry-run prints the plan and installs nothing" {
	start3
	# shellcheck disable=SC2046
	run -0 fd-partition -n $(nodes) --dry-run split n1,n2
	run -0 jq -e '.dry_run == true and .groups == [["n1", "n2"], ["n3"]]' <<<"$output"
	no_rules_anywhere
}

@test "bad input: unknown node, a node twice, an empty group, a negative duration: exit 2, nothing installed" {
	start3
	# shellcheck disable=SC2046
	run -2 --separate-stderr fd-partition -n $(nodes) split n1 n4
	assert_equal "$output" ""
	[[ $stderr == *"unknown node 'n4'"* ]]
	# shellcheck disable=SC2046
	run -2 --separate-stderr fd-partition -n $(nodes) split n1,n2 n2
	[[ $stderr == *"'n2' is named twice"* ]]
	# shellcheck disable=SC2046
	run -2 --separate-stderr fd-partition -n $(nodes) split n1 ''
	[[ $stderr == *"empty"* ]]
	# shellcheck disable=SC2046
	run -2 --separate-stderr fd-partition -n $(nodes) split n1, n2
	[[ $stderr == *"empty node name"* ]]
	# shellcheck disable=SC2046
	run -2 --separate-stderr fd-partition -n $(nodes) --duration -1s split n1
	[[ $stderr == *"invalid --duration"* ]]
	# shellcheck disable=SC2046
	run -2 --separate-stderr fd-partition -n $(nodes) split n1,n2,n3
	[[ $stderr == *"two sides"* ]]
	run -2 --separate-stderr fd-partition -n "${FD_ADDR[n1]}" bogus
	run -7 --separate-stderr bash -c "printf '%s\n' '{\"addr\":\"${FD_ADDR[n1]}\"}' '{not json' | fd-partition split n1"
	no_rules_anywhere
	# a node that does not answer: exit 1, nothing installed on the others
	fd_hold_port tcp
	# shellcheck disable=SC2046
	run -1 --separate-stderr fd-partition -n $(nodes) -n "127.0.0.1:$FD_HELD_PORT" -t 1s split n1
	no_rules_anywhere
}

@test "the node's /v1/faults: validation, --max-duration cap, delete by tag" {
	fd_start_node n1 --profile local --max-duration 30s
	fd_http PUT "${FD_ADDR[n1]}" /v1/faults -d '{"tag":"t","peer":"x","action":"loss","probability":1.5}'
	assert_equal "$HTTP_CODE" 400
	fd_http PUT "${FD_ADDR[n1]}" /v1/faults -d '{"tag":"t","peer":"x","duration":60}'
	assert_equal "$HTTP_CODE" 400
	[[ $HTTP_BODY == *"--max-duration"* ]]
	fd_http PUT "${FD_ADDR[n1]}" /v1/faults -d '{"peer":"x"}'
	assert_equal "$HTTP_CODE" 400
	fd_http PUT "${FD_ADDR[n1]}" /v1/faults -d '{"tag":"t","rules":[{"peer":"x"},{"peer":"y","direction":"in","action":"delay","delay_ms":50,"jitter_ms":10}]}'
	assert_equal "$HTTP_CODE" 200
	fd_http PUT "${FD_ADDR[n1]}" /v1/faults -d '{"tag":"u","peer":"z","action":"duplicate"}'
	assert_equal "$HTTP_CODE" 200
	fd_http GET "${FD_ADDR[n1]}" /v1/faults
	run -0 jq -e '(.rules | length == 3) and .max_duration == 30 and (.rules[0].expires_in <= 30)' <<<"$HTTP_BODY"
	fd_http DELETE "${FD_ADDR[n1]}" '/v1/faults?tag=t'
	run -0 jq -e '.removed == 2' <<<"$HTTP_BODY"
	run -0 fd-node info -n "${FD_ADDR[n1]}"
	run -0 jq -e '.faults.rules == 1 and .faults.tags == ["u"]' <<<"$output"
	fd_http DELETE "${FD_ADDR[n1]}" /v1/faults
	run -0 jq -e '.removed == 1' <<<"$HTTP_BODY"
}

@test "--help, --version and usage errors" {
	run -0 fd-partition --help
	assert_line --partial 'split GROUP'
	run -0 fd-partition --version
	run -2 --separate-stderr fd-partition
	[[ $stderr == *"no subcommand"* ]]
	run -2 --separate-stderr fd-partition --bogus heal
}

@test "a delay rule holds incoming node-to-node requests before their handler" {
	fd_start_node n1 --profile local
	fd_http PUT "${FD_ADDR[n1]}" /v1/faults -d '{"tag":"t","peer":"x","direction":"in","action":"delay","delay_ms":400}'
	assert_equal "$HTTP_CODE" 200
	# from x: answered (whatever the handler says) no sooner than 400 ms
	run -0 curl -s --noproxy '*' --max-time 10 -o /dev/null -w '%{http_code} %{time_total}' \
		-X POST -H 'X-FD-From: x' --data-binary '{}' "http://${FD_ADDR[n1]}/v1/cluster/interest"
	read -r code secs <<<"$output"
	[ "$code" != 000 ]
	run -0 awk -v s="$secs" 'BEGIN { exit !(s >= 0.4) }'
	fd_http GET "${FD_ADDR[n1]}" /v1/faults
	run -0 jq -e '.rules[0].applied >= 1' <<<"$HTTP_BODY"
	# from another peer: not held, the counter stays
	run -0 curl -s --noproxy '*' --max-time 10 -o /dev/null -w '%{http_code}' \
		-X POST -H 'X-FD-From: y' --data-binary '{}' "http://${FD_ADDR[n1]}/v1/cluster/interest"
	[ "$output" != 000 ]
	fd_http GET "${FD_ADDR[n1]}" /v1/faults
	run -0 jq -e '.rules[0].applied == 1' <<<"$HTTP_BODY"
}
