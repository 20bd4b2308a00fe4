#!/usr/bin/env bats
# shellcheck disable=SC2154  # $stderr comes from run
# fd-partition's nemeses (halves, bridge, ring, grudge, slow, flaky) and
# chaos against real clusters (profile local): the rules each node gets,
# their effect on membership, all-or-nothing bad input, rollback, expiry,
# and a chaos schedule that replays from its seed and heals on SIGINT.

setup() { load helpers/common; fd_common_setup; }
teardown() {
	# nodes a chaos run restarted write their pid files here
	for f in "$FD_TMP"/restarted-*.pid; do
		[ -f "$f" ] && fd_track_pid "$(cat "$f")"
	done
	fd_common_teardown
}

NODES=()
state_of() { fd-node members -n "${FD_ADDR[$1]}" | jq -r --arg m "$2" 'select(.name == $m) | .state'; }
has_state() { [ "$(state_of "$1" "$2")" = "$3" ]; }
sees() { [ "$(fd-node members -n "${FD_ADDR[$1]}" | jq -s '[.[] | select(.state == "alive")] | length')" = "$2" ]; }
rules_on() { curl -sf "http://${FD_ADDR[$1]}/v1/faults" | jq '.rules | length'; }
no_rules_anywhere() { for n in "${NODES[@]}"; do [ "$(rules_on "$n")" = 0 ] || return 1; done; }
some_rules() { [ "$(rules_on "$1")" -gt 0 ]; }
# -n ADDR for every node, in order
node_args() { for n in "${NODES[@]}"; do printf -- '-n\n%s\n' "${FD_ADDR[$n]}"; done; }
fdp() { local a; mapfile -t a < <(node_args); fd-partition "${a[@]}" "$@"; }
# {node: [peer direction action...]} from status
peers_by_node() { fdp status | jq -s -c 'map({(.node): (.rules | map(.peer + ":" + .direction) | sort)}) | add'; }
applied() { curl -sf "http://${FD_ADDR[$1]}/v1/faults" | jq -e --arg p "$2" '[.rules[] | select(.peer == $p) | .applied] | add > 0' >/dev/null; }

start_cluster() {
	local n
	NODES=()
	fd_start_node n1 --profile local "${@:2}"
	NODES+=(n1)
	for ((i = 2; i <= $1; i++)); do
		fd_start_node "n$i" --profile local --join "${FD_ADDR[n1]}" "${@:2}"
		NODES+=("n$i")
	done
	for n in "${NODES[@]}"; do fd_wait_until 15s sees "$n" "$1"; done
}

@test "halves --random --seed: the same seed, the same halves; each side sees the other failed; heal" {
	start_cluster 3
	run -0 fdp --dry-run halves --random --seed 11
	local plan=$output
	run -0 jq -e '.seed == 11 and (.groups | length == 2) and .dry_run' <<<"$plan"
	run -0 fdp --dry-run halves --random --seed 11
	assert_equal "$(jq -c .groups <<<"$output")" "$(jq -c .groups <<<"$plan")"
	no_rules_anywhere
	run -0 fdp halves --random --seed 11
	assert_equal "$(jq -c .groups <<<"$output")" "$(jq -c .groups <<<"$plan")"
	local alone others
	alone=$(jq -r '.groups[] | select(length == 1) | .[0]' <<<"$output")
	mapfile -t others < <(jq -r '.groups[] | select(length == 2) | .[]' <<<"$output")
	for o in "${others[@]}"; do
		fd_wait_until 15s has_state "$alone" "$o" failed
		fd_wait_until 15s has_state "$o" "$alone" failed
	done
	run -0 fdp heal
	no_rules_anywhere
	for n in n1 n2 n3; do fd_wait_until 30s sees "$n" 3; done
}

@test "bridge: the halves drop each other, the bridge drops no one and everyone keeps seeing it" {
	start_cluster 3
	run -0 fdp bridge n2
	run -0 jq -e '.bridge == "n2" and .groups == [["n1", "n2"], ["n2", "n3"]]' <<<"$output"
	assert_equal "$(peers_by_node)" '{"n1":["n3:both"],"n2":[],"n3":["n1:both"]}'
	# traffic between the halves is dropped, both ways
	fd_wait_until 10s applied n1 n3
	fd_wait_until 10s applied n3 n1
	# the bridge talks to both halves directly: it never loses one
	fd_wait_until 10s sees n2 3
	[ "$(state_of n1 n2)" = alive ]
	[ "$(state_of n3 n2)" = alive ]
	run -0 fdp heal
	no_rules_anywhere
}

@test "ring on 5 nodes: each node hears a different majority, as the printed grudge says" {
	start_cluster 5
	run -0 fdp ring --random --seed 3
	local line=$output
	run -0 jq -e '.seed == 3 and (.ring | length == 5) and (.groups | length == 5) and all(.groups[]; length == 3) and (.groups | unique | length == 5)' <<<"$line"
	# the rules are the grudge: each node drops the two it does not hear
	local want got
	want=$(jq -c '.grudge | map_values(sort)' <<<"$line")
	got=$(fdp status | jq -s -c 'map({(.node): (.rules | map(.peer) | sort)}) | add')
	assert_equal "$got" "$want"
	fdp status | jq -e -s 'all(.[]; (.rules | length == 2) and all(.rules[]; .direction == "both" and .action == "drop"))'
	for n in n1 n2 n3 n4 n5; do
		fd_wait_until 10s applied "$n" "$(jq -r --arg n "$n" '.grudge[$n][0]' <<<"$line")"
	done
	run -0 fdp heal
	no_rules_anywhere
}

@test "grudge: n3 drops what n1 and n2 send it: 'in' rules on n3 only, and n3 is cut off both ways" {
	start_cluster 3
	echo '{"n3": ["n1", "n2"]}' >"$FD_TMP/g.json"
	run -0 fdp grudge "$FD_TMP/g.json"
	run -0 jq -e '.grudge == {"n3": ["n1", "n2"]}' <<<"$output"
	assert_equal "$(peers_by_node)" '{"n1":[],"n2":[],"n3":["n1:in","n2:in"]}'
	fd_wait_until 15s has_state n3 n1 failed
	fd_wait_until 15s has_state n3 n2 failed
	fd_wait_until 15s has_state n1 n3 failed
	run -0 fdp heal
	# a grudge on stdin, the nodes from -n
	run -0 bash -c "echo '{\"n1\": [\"n2\"], \"n2\": [\"n1\"]}' | fd-partition -n ${FD_ADDR[n1]} -n ${FD_ADDR[n2]} -n ${FD_ADDR[n3]} grudge -"
	assert_equal "$(peers_by_node)" '{"n1":["n2:both"],"n2":["n1:both"],"n3":[]}'
	run -0 fdp heal
	no_rules_anywhere
	for n in n1 n2 n3; do fd_wait_until 30s sees "$n" 3; done
}

@test "slow and flaky: each message delayed or lost once, at its sender; the gate counts it" {
	start_cluster 3
	run -0 fdp slow --delay 100ms --jitter 20ms n1
	run -0 jq -e '.groups == [["n1"]] and .delay_ms == 100 and .jitter_ms == 20' <<<"$output"
	assert_equal "$(peers_by_node)" '{"n1":["*:out"],"n2":["n1:out"],"n3":["n1:out"]}'
	fdp status | jq -e -s 'all(.[].rules[]; .action == "delay" and .delay_ms == 100 and .jitter_ms == 20)'
	fd_wait_until 10s bash -c "fd-node info -n ${FD_ADDR[n1]} | jq -e '.faults.delayed > 0'"
	fd_wait_until 10s bash -c "fd-node info -n ${FD_ADDR[n2]} | jq -e '.faults.delayed > 0'"
	# flaky replaces slow (same tag): every node loses 50% of what it sends
	run -0 fdp flaky --loss 50%
	run -0 jq -e '.loss == 0.5 and (.groups[0] | length == 3)' <<<"$output"
	fdp status | jq -e -s 'all(.[]; (.rules | length == 1) and .rules[0].peer == "*" and .rules[0].action == "loss" and .rules[0].probability == 0.5)'
	fd_wait_until 10s bash -c "fd-node info -n ${FD_ADDR[n2]} | jq -e '.faults.dropped > 0'"
	run -0 fdp heal
	no_rules_anywhere
}

@test "bad input to the nemeses: clear errors, exit 2 or 7, nothing installed anywhere" {
	start_cluster 3
	run -2 --separate-stderr fdp bridge n9
	[[ $stderr == *"unknown node 'n9'"* ]]
	run -2 --separate-stderr fdp bridge n1,n2
	run -2 --separate-stderr fdp ring --seed 4
	[[ $stderr == *"--seed goes with --random"* ]]
	run -2 --separate-stderr fdp halves --random --seed x
	run -2 --separate-stderr fdp slow
	[[ $stderr == *"needs --delay"* ]]
	run -2 --separate-stderr fdp slow --delay -1s
	run -2 --separate-stderr fdp slow --delay 100ms n1,n1
	[[ $stderr == *"named twice"* ]]
	run -2 --separate-stderr fdp slow --delay 100ms n1 ''
	[[ $stderr == *"empty"* ]]
	run -2 --separate-stderr fdp flaky --loss 120%
	[[ $stderr == *"invalid --loss '120%'"* ]]
	run -2 --separate-stderr fdp flaky --loss 0%
	run -2 --separate-stderr fdp flaky --loss 20% --delay 1s
	run -2 --separate-stderr fdp --duration -5s flaky --loss 20%
	[[ $stderr == *"invalid --duration"* ]]
	run -2 --separate-stderr fdp grudge
	run -2 --separate-stderr bash -c "echo '{}' | fd-node members -n ${FD_ADDR[n1]} | fd-partition grudge -"
	run -3 --separate-stderr fdp grudge "$FD_TMP/none.json"
	echo '{"n1": ["n2"' >"$FD_TMP/g.json"
	run -7 --separate-stderr fdp grudge "$FD_TMP/g.json"
	[[ $stderr == *"invalid JSON"*"nothing changed"* ]]
	echo '["n1"]' >"$FD_TMP/g.json"
	run -7 --separate-stderr fdp grudge "$FD_TMP/g.json"
	echo '{"n1": ["n2"], "n4": ["n1"]}' >"$FD_TMP/g.json"
	run -7 --separate-stderr fdp grudge "$FD_TMP/g.json"
	[[ $stderr == *"unknown node 'n4'"* ]]
	echo '{"n1": ["n2", "n7"]}' >"$FD_TMP/g.json"
	run -7 --separate-stderr fdp grudge "$FD_TMP/g.json"
	[[ $stderr == *"unknown node 'n7'"* ]]
	echo '{"n1": ["n2", "n1"]}' >"$FD_TMP/g.json"
	run -7 --separate-stderr fdp grudge "$FD_TMP/g.json"
	[[ $stderr == *"against itself"* ]]
	echo '{"n1": "n2"}' >"$FD_TMP/g.json"
	run -7 --separate-stderr fdp grudge "$FD_TMP/g.json"
	no_rules_anywhere
	# too few nodes for a bridge or a ring
	run -2 --separate-stderr fd-partition -n "${FD_ADDR[n1]}" -n "${FD_ADDR[n2]}" bridge
	[[ $stderr == *"at least 3 nodes"* ]]
	run -2 --separate-stderr fd-partition -n "${FD_ADDR[n1]}" -n "${FD_ADDR[n2]}" ring
	no_rules_anywhere
}

@test "an install refused midway is undone on the nodes already changed: exit 1" {
	NODES=(n1 n2 n3)
	fd_start_node n1 --profile local
	fd_start_node n2 --profile local --join "${FD_ADDR[n1]}"
	fd_start_node n3 --profile local --join "${FD_ADDR[n1]}" --max-duration 5s
	# n1 and n2 take 30 s rules; n3, the last, refuses them
	run -1 --separate-stderr fdp --duration 30s ring
	[[ $stderr == *"unable to install the rules on 'n3'"*"undone on every node"* ]]
	assert_equal "$output" ""
	no_rules_anywhere
}

@test "--duration 2s: a nemesis's rules vanish by themselves" {
	start_cluster 3
	run -0 fdp --duration 2s flaky --loss 30% n3
	some_rules n1
	fd_wait_until 10s no_rules_anywhere
}

@test "chaos: the same seed twice gives the same schedule, and a real run follows it" {
	start_cluster 3
	run -0 fdp chaos --seed 42 --duration 30s --interval 1s --dry-run
	local one=$output
	run -0 fdp chaos --seed 42 --duration 30s --interval 1s --dry-run
	assert_equal "$output" "$one"
	run -0 jq -e -s '.[0].type == "chaos" and .[0].seed == 42 and (.[1:] | length == 30) and all(.[1:][]; .type == "fault" and (.groups | length > 0) and (has("ts") | not))' <<<"$one"
	# every apply is followed by its heal, one interval later
	run -0 jq -e -s '[.[1:][] | .event] == ([range(15)] | map("apply", "heal"))' <<<"$one"
	run -0 fdp chaos --seed 43 --duration 30s --interval 1s --dry-run
	[ "$output" != "$one" ]
	no_rules_anywhere
	# a real run prints the same faults (with the time they happened)
	run -0 fdp chaos --seed 42 --duration 2s --interval 500ms
	local real=$output
	run -0 jq -e -s 'all(.[1:][]; .ts | test("Z$"))' <<<"$real"
	assert_equal "$(jq -c 'select(.type == "fault") | del(.ts)' <<<"$real")" \
		"$(fdp chaos --seed 42 --duration 2s --interval 500ms --dry-run | jq -c 'select(.type == "fault")')"
	no_rules_anywhere
}

@test "chaos: SIGINT heals at once; a SIGKILLed chaos leaves rules that expire" {
	start_cluster 3
	local a
	mapfile -t a < <(node_args)
	fd_spawn chaos fd-partition "${a[@]}" chaos --seed 1 --interval 20s --nemesis split,isolate
	fd_wait_until 10s some_rules n1
	kill -INT "${FD_PID[chaos]}"
	fd_wait_until 10s _fd_gone "${FD_PID[chaos]}"
	no_rules_anywhere
	run -0 jq -e -s '.[-1].event == "heal" and .[-1].interrupted == true' "${FD_OUT[chaos]}"
	# SIGKILL: the rules outlive the planned heal by one interval only
	fd_spawn chaos2 fd-partition "${a[@]}" chaos --seed 1 --interval 1s --nemesis split
	fd_wait_until 10s some_rules n1
	kill -KILL "${FD_PID[chaos2]}"
	fd_wait_until 10s no_rules_anywhere
}

@test "chaos kill: the node is killed by its pid and restarted with --restart" {
	start_cluster 3
	run -0 fdp chaos --seed 5 --duration 1s --interval 1s --nemesis kill \
		--restart "fd-node --name {name} --listen {addr} --profile local --join ${FD_ADDR[n1]} --detach --pid-file $FD_TMP/restarted-{name}.pid"
	local killed
	killed=$(jq -r 'select(.event == "apply") | .groups[0][0]' <<<"$output")
	run -0 jq -e -s '[.[1:][] | .action] == ["kill", "kill"]' <<<"$output"
	fd_wait_until 10s _fd_gone "${FD_PID[$killed]}"
	[ -f "$FD_TMP/restarted-$killed.pid" ]
	fd_track_pid "$(cat "$FD_TMP/restarted-$killed.pid")"
	for n in n1 n2 n3; do
		[ "$n" = "$killed" ] || fd_wait_until 30s has_state "$n" "$killed" alive
	done
}

@test "chaos: bad input" {
	start_cluster 2
	run -2 --separate-stderr fdp chaos --nemesis split,meteor --duration 1s --dry-run
	[[ $stderr == *"unknown nemesis 'meteor'"* ]]
	run -2 --separate-stderr fdp chaos --nemesis kill --duration 1s --dry-run
	[[ $stderr == *"--restart"* ]]
	run -2 --separate-stderr fdp chaos --dry-run
	[[ $stderr == *"needs --duration"* ]]
	run -2 --separate-stderr fdp chaos --nemesis ring,bridge --duration 1s --dry-run
	[[ $stderr == *"fits 2 nodes"* ]]
	run -2 --separate-stderr fdp chaos --interval 0 --duration 1s
	run -2 --separate-stderr fdp chaos --seed -3 --duration 1s
	run -2 --separate-stderr fdp chaos extra
	no_rules_anywhere
}
