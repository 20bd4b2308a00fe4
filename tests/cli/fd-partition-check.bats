#!/usr/bin/env bats
# shellcheck disable=SC2154  # $stderr comes from run
# fd-partition check: histories made by hand (a lost acknowledged write is
# invalid, a gap covers a missed publish, malformed lines are counted) and
# the history of a real run against a 3-node cluster.

setup() { load helpers/common; fd_common_setup; }
teardown() { fd_common_teardown; }

sees() { [ "$(fd-node members -n "${FD_ADDR[$1]}" | jq -s '[.[] | select(.state == "alive")] | length')" = "$2" ]; }

# A history: two registrations seen by n1 and n2, three publishes, one
# subscriber that got them all.
good_history()
{
	cat <<'EOF'
{"type":"entry","name":"a","value":{"v":1},"owner":"n1","created":true}
{"type":"entry","name":"b","value":"x","owner":"n1","created":true}
{"type":"published","topic":"t.a","seq":1,"stream":1,"node":"n1","bytes":1}
{"type":"published","topic":"t.a","seq":2,"stream":1,"node":"n1","bytes":1}
{"type":"published","topic":"t.b","seq":3,"stream":1,"node":"n1","bytes":1}
{"type":"fault","action":"split","groups":[["n1"],["n2"]],"ts":"2026-01-01T00:00:01.000000Z"}
{"type":"fault","action":"heal","nodes":["n1","n2"],"ts":"2026-01-01T00:00:02.000000Z"}
{"type":"entry","name":"a","value":{"v":1},"snapshot":"n1"}
{"type":"entry","name":"b","value":"x","snapshot":"n1"}
{"type":"entry","name":"a","value":{"v":1},"snapshot":"n2"}
{"type":"entry","name":"b","value":"x","snapshot":"n2"}
EOF
}

sub_output()
{
	cat <<'EOF'
{"type":"message","topic":"t.a","seq":1,"from":"n1","stream":1,"ts":"2026-01-01T00:00:00.1Z","data":1}
{"type":"message","topic":"t.a","seq":2,"from":"n1","stream":1,"ts":"2026-01-01T00:00:00.2Z","data":2}
{"type":"message","topic":"t.b","seq":3,"from":"n1","stream":1,"ts":"2026-01-01T00:00:00.3Z","data":3}
EOF
}

@test "check: a hand-made good history is valid (exit 0)" {
	good_history >"$FD_TMP/h.jsonl"
	sub_output >"$FD_TMP/s1.jsonl"
	run -0 fd-partition check --sub "s1=$FD_TMP/s1.jsonl" "$FD_TMP/h.jsonl"
	run -0 jq -e '.type == "check" and .valid == true and .registrations.present == 2
		and .registrations.nodes == 2 and .publishes.expected == 3 and .publishes.received == 3
		and .faults == 2 and .last_heal == "2026-01-01T00:00:02.000000Z" and .lost == []
		and .malformed == 0' <<<"$output"
	# the same with the subscriber tagged by "sub" on stdin
	run -0 bash -c "{ cat '$FD_TMP/h.jsonl'; jq -c '.sub = \"s1\"' '$FD_TMP/s1.jsonl'; } | fd-partition check"
	run -0 jq -e '.valid == true and .publishes.subscribers == 1' <<<"$output"
}

@test "check: a lost acknowledged registration or publish is invalid (exit 1); a gap covers a publish" {
	good_history | grep -v '"name":"b","value":"x","snapshot":"n2"' >"$FD_TMP/h.jsonl"
	sub_output >"$FD_TMP/s1.jsonl"
	run -1 fd-partition check --sub "s1=$FD_TMP/s1.jsonl" "$FD_TMP/h.jsonl"
	run -0 jq -e '.valid == false and .registrations.lost == 1 and .registrations.divergent == 1
		and .lost == [{"kind": "registration", "name": "b", "value": "x", "nodes": ["n2"]}]' <<<"$output"

	good_history >"$FD_TMP/h.jsonl"
	grep -v '"seq":2' "$FD_TMP/s1.jsonl" >"$FD_TMP/s2.jsonl"
	run -1 fd-partition check --sub "s1=$FD_TMP/s2.jsonl" "$FD_TMP/h.jsonl"
	run -0 jq -e '.valid == false and .publishes.lost == 1
		and .lost == [{"kind": "publish", "sub": "s1", "topic": "t.a", "node": "n1", "stream": 1, "seq": 2}]' <<<"$output"
	# a gap line where seq 2 would have been covers it
	sed -n 1p "$FD_TMP/s1.jsonl" >"$FD_TMP/s3.jsonl"
	echo '{"type":"gap","topic":"t.a","missed":1}' >>"$FD_TMP/s3.jsonl"
	sed -n 3p "$FD_TMP/s1.jsonl" >>"$FD_TMP/s3.jsonl"
	run -0 fd-partition check --sub "s1=$FD_TMP/s3.jsonl" "$FD_TMP/h.jsonl"
	run -0 jq -e '.valid == true and .publishes.covered == 1 and .publishes.gaps == 1' <<<"$output"
	# ... but not after seq 3, and not for another topic
	sed -n '1p;3p' "$FD_TMP/s1.jsonl" >"$FD_TMP/s4.jsonl"
	echo '{"type":"gap","topic":"t.a","missed":1}' >>"$FD_TMP/s4.jsonl"
	run -1 fd-partition check --sub "s1=$FD_TMP/s4.jsonl" "$FD_TMP/h.jsonl"
	sed 's/"topic":"t.a","missed"/"topic":"t.b","missed"/' "$FD_TMP/s3.jsonl" >"$FD_TMP/s5.jsonl"
	run -1 fd-partition check --sub "s1=$FD_TMP/s5.jsonl" "$FD_TMP/h.jsonl"
	# a message received twice
	cat "$FD_TMP/s1.jsonl" "$FD_TMP/s1.jsonl" >"$FD_TMP/s6.jsonl"
	run -1 fd-partition check --sub "s1=$FD_TMP/s6.jsonl" "$FD_TMP/h.jsonl"
	run -0 jq -e '.publishes.duplicated == 3 and .publishes.reordered == 1' <<<"$output"
}

@test "check: malformed lines are reported with their line numbers (exit 7)" {
	{
		good_history
		echo 'not json'
		echo '{"type":"published","topic":"t.a","stream":1}'
		echo '{"type":"message","topic":"t.a","seq":1,"from":"n1","stream":1}'
	} >"$FD_TMP/h.jsonl"
	sub_output >"$FD_TMP/s1.jsonl"
	run -7 --separate-stderr fd-partition check --sub "s1=$FD_TMP/s1.jsonl" "$FD_TMP/h.jsonl"
	run -0 jq -e '.malformed == 3 and .valid == true' <<<"$output"
	[[ $stderr == *"h.jsonl: line 12: invalid JSON"* ]]
	[[ $stderr == *"h.jsonl: line 13: \"seq\" missing or not a positive integer"* ]]
	[[ $stderr == *"h.jsonl: line 14: no subscriber"* ]]
	[[ $stderr == *"3 malformed history lines"* ]]
}

@test "check: usage errors (exit 2)" {
	good_history >"$FD_TMP/h.jsonl"
	run -2 --separate-stderr fd-partition check --sub nofile "$FD_TMP/h.jsonl"
	[[ $stderr == *"invalid --sub 'nofile' (expected NAME=FILE)"* ]]
	run -2 --separate-stderr fd-partition check --wait 1s "$FD_TMP/h.jsonl"
	[[ $stderr == *"--wait needs nodes (-n)"* ]]
	run -2 --separate-stderr fd-partition check - - <"$FD_TMP/h.jsonl"
	run -2 --separate-stderr fd-partition check --bogus
	# only acknowledgements, nothing to compare them with
	run -2 --separate-stderr fd-partition check <<<'{"type":"published","topic":"t","seq":1,"stream":1}'
	[[ $stderr == *"nothing to check"* ]]
	run -1 --separate-stderr fd-partition check /nonexistent
	[[ $stderr == *"unable to open '/nonexistent'"* ]]
	run -0 fd-partition check --help
	[[ $output == *"--sub NAME=FILE"* ]]
}

@test "check: a real run on 3 nodes, final state taken from the nodes (-n), is valid; a name removed behind its back is lost" {
	fd_start_node n1 --profile local
	fd_start_node n2 --profile local --join "${FD_ADDR[n1]}"
	fd_start_node n3 --profile local --join "${FD_ADDR[n1]}"
	for n in n1 n2 n3; do fd_wait_until 10s sees "$n" 3; done
	fd_spawn s2 fd-sub -n "${FD_ADDR[n2]}" 'run.>'
	fd_spawn s3 fd-sub -n "${FD_ADDR[n3]}" 'run.>'
	for n in n2 n3; do
		fd_wait_until 10s bash -c "fd-node info -n ${FD_ADDR[n1]} | jq -e '.pubsub.peers.$n.interest == 1'"
	done
	for i in $(seq 1 20); do
		fd-registry register -n "${FD_ADDR[n1]}" "name-$i" "{\"i\":$i}"
	done >"$FD_TMP/writer.jsonl"
	seq 1 50 | jq -c '{topic: "run.t\(. % 3)", data: .}' |
		fd-pub -n "${FD_ADDR[n1]}" --confirm >>"$FD_TMP/writer.jsonl"
	run -0 jq -s -e 'map(select(.type == "published" and .node == "n1")) | length == 50' "$FD_TMP/writer.jsonl"
	fd_wait_until 10s bash -c "[ \$(grep -c message '${FD_OUT[s2]}') = 50 ] && [ \$(grep -c message '${FD_OUT[s3]}') = 50 ]"
	run -0 fd-partition -n "${FD_ADDR[n1]}" -n "${FD_ADDR[n2]}" -n "${FD_ADDR[n3]}" check \
		--wait 10s --sub "s2=${FD_OUT[s2]}" --sub "s3=${FD_OUT[s3]}" "$FD_TMP/writer.jsonl"
	run -0 jq -e '.valid == true and .registrations.nodes == 3 and .registrations.present == 20
		and .publishes.expected == 100 and .publishes.received == 100
		and .membership.converged == true' <<<"$output"
	# a name unregistered behind the writer's back: lost on every node
	run -0 fd-registry unregister -n "${FD_ADDR[n1]}" name-7
	fd_wait_until 10s bash -c "! fd-registry lookup -n ${FD_ADDR[n3]} name-7"
	run -1 fd-partition -n "${FD_ADDR[n1]}" -n "${FD_ADDR[n2]}" -n "${FD_ADDR[n3]}" check \
		--wait 1s --sub "s2=${FD_OUT[s2]}" --sub "s3=${FD_OUT[s3]}" "$FD_TMP/writer.jsonl"
	run -0 jq -e '.valid == false and .registrations.lost == 1
		and .lost[0].name == "name-7" and (.lost[0].nodes | length == 3) and .waited >= 1' <<<"$output"
}

@test "check: publishes cut off by a split reach the far subscribers as gap lines, in order; the history is valid" {
	fd_start_node n1 --profile local
	fd_start_node n2 --profile local --join "${FD_ADDR[n1]}"
	fd_start_node n3 --profile local --join "${FD_ADDR[n1]}"
	for n in n1 n2 n3; do fd_wait_until 10s sees "$n" 3; done
	fd_spawn s2 fd-sub -n "${FD_ADDR[n2]}" 'p.>'
	fd_spawn s3 fd-sub -n "${FD_ADDR[n3]}" 'p.>'
	for n in n2 n3; do
		fd_wait_until 10s bash -c "fd-node info -n ${FD_ADDR[n1]} | jq -e '.pubsub.peers.$n.interest == 1'"
	done
	local nodes=(-n "${FD_ADDR[n1]}" -n "${FD_ADDR[n2]}" -n "${FD_ADDR[n3]}")
	pub() { seq "$1" "$2" | jq -c '{topic: "p.t\(. % 2)", data: .}' | fd-pub -n "${FD_ADDR[n1]}" --confirm; }
	pub 1 10 >"$FD_TMP/pub.jsonl"
	fd_wait_until 10s bash -c "[ \$(grep -c message '${FD_OUT[s2]}') = 10 ] && [ \$(grep -c message '${FD_OUT[s3]}') = 10 ]"
	fd-partition "${nodes[@]}" split n1 n2,n3 >"$FD_TMP/faults.jsonl"
	pub 11 20 >>"$FD_TMP/pub.jsonl"
	# n1 owes them what they missed, by topic, until it can tell them
	fd_wait_until 20s bash -c "fd-node info -n ${FD_ADDR[n1]} | jq -e '.pubsub.peers.n2.owed == 10 and .pubsub.peers.n3.owed == 10'"
	fd-partition "${nodes[@]}" heal >>"$FD_TMP/faults.jsonl"
	for s in s2 s3; do fd_wait_until 30s grep -q '"type":"gap"' "${FD_OUT[$s]}"; done
	pub 21 30 >>"$FD_TMP/pub.jsonl"
	fd_wait_until 30s bash -c "grep -q '\"data\":30' '${FD_OUT[s2]}' && grep -q '\"data\":30' '${FD_OUT[s3]}'"
	for s in s2 s3; do
		# 1..10, gap lines for p.t0 and p.t1 (5 each), then 21..30
		run -0 jq -s -c 'map(if .type == "gap" then "\(.topic):\(.missed)" else .data end)' "${FD_OUT[$s]}"
		run -0 jq -e '(.[0:10] == [range(1; 11)]) and (.[10:12] | sort == ["p.t0:5", "p.t1:5"]) and (.[12:] == [range(21; 31)])' <<<"$output"
	done
	run -0 fd-node info -n "${FD_ADDR[n2]}"
	run -0 jq -e '.pubsub.gap_frames_received == 2 and .pubsub.remote_missed == 10 and .pubsub.gaps == 2' <<<"$output"
	run -0 fd-partition "${nodes[@]}" check --wait 20s --sub "s2=${FD_OUT[s2]}" --sub "s3=${FD_OUT[s3]}" \
		"$FD_TMP/pub.jsonl" "$FD_TMP/faults.jsonl"
	run -0 jq -e '.valid == true and .publishes.expected == 60 and .publishes.received == 40
		and .publishes.covered == 20 and .publishes.gaps == 4 and .faults == 2' <<<"$output"
	# without its gap lines, s2's history loses ten acknowledged publishes
	grep -v '"type":"gap"' "${FD_OUT[s2]}" >"$FD_TMP/s2.jsonl"
	run -1 fd-partition check --sub "s2=$FD_TMP/s2.jsonl" --sub "s3=${FD_OUT[s3]}" "$FD_TMP/pub.jsonl"
	run -0 jq -e '.valid == false and .publishes.lost == 10 and (.lost | length == 10)' <<<"$output"
}
