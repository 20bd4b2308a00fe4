#!/usr/bin/env bats
# shellcheck disable=SC2154  # $stderr comes from run
# fd-sub against one real node: message lines, --raw, --count, --timeout,
# pipes that close early, overlapping patterns, Server-Sent Events, slow
# subscribers (gap lines that add up), usage errors, an unknown node.

setup() {
	load helpers/common
	load helpers/pubsub
	fd_common_setup
}
teardown() { fd_common_teardown; }

@test "usage errors exit 2" {
	run -2 --separate-stderr fd-sub
	fd_assert_stderr_match 'no pattern given'
	run -2 --separate-stderr fd-sub 'a..b'
	fd_assert_stderr_match "invalid pattern 'a..b': empty token"
	run -2 --separate-stderr fd-sub 'a.>.b'
	run -2 --separate-stderr fd-sub --overflow sometimes a.b
	run -2 --separate-stderr fd-sub --count x a.b
	run -2 --separate-stderr fd-sub -q 'g g' a.b
}

@test "an unknown node: exit 1 and a clear message; a node that never answers: exit 5" {
	run -1 --separate-stderr fd-sub -n 127.0.0.1:1 -t 5s a.b
	fd_assert_stderr_match "^fd-sub: unable to reach '127.0.0.1:1'"
	fd_hold_port tcp # listens, never answers
	run -5 --separate-stderr timeout 20 fd-sub -n "127.0.0.1:$FD_HELD_PORT" -t 500ms a.b
	fd_assert_stderr_match "^fd-sub: unable to reach '127.0.0.1:$FD_HELD_PORT'"
}

@test "--count stops after N messages; --raw prints only the data" {
	fd_start_node n1
	fd_spawn s1 fd-sub -n "${FD_ADDR[n1]}" -c 2 -t 20s --raw 'r.*'
	ps_wait_subs n1 1
	fd-pub -n "${FD_ADDR[n1]}" r.a '{"x":1}' '"two"' 3
	fd_wait_until 10s _fd_gone "${FD_PID[s1]}"
	run -0 cat "${FD_OUT[s1]}"
	assert_output $'{"x":1}\n"two"'
}

@test "--timeout: exit 5 when fewer than --count came, 0 without --count" {
	fd_start_node n1
	run -5 --separate-stderr timeout 20 fd-sub -n "${FD_ADDR[n1]}" -c 1 -t 500ms q.x
	run -0 --separate-stderr timeout 20 fd-sub -n "${FD_ADDR[n1]}" -t 500ms q.x
	assert_output ''
}

@test "a subscriber with overlapping patterns gets each message once" {
	fd_start_node n1
	fd_spawn s1 fd-sub -n "${FD_ADDR[n1]}" -c 3 -t 20s 'o.*' 'o.>' o.a
	ps_wait_subs n1 1
	fd-pub -n "${FD_ADDR[n1]}" --topic o.a <<<'1'
	fd-pub -n "${FD_ADDR[n1]}" o.b.c 2
	fd-pub -n "${FD_ADDR[n1]}" o.d 3
	fd_wait_until 10s _fd_gone "${FD_PID[s1]}"
	run -0 jq -c '[.topic, .data]' "${FD_OUT[s1]}"
	assert_output $'["o.a",1]\n["o.b.c",2]\n["o.d",3]'
}

@test "fd-sub | head -1 ends quietly; fd-sub | jq stops when jq exits" {
	fd_start_node n1
	(
		for _ in $(seq 1 200); do
			fd-pub -n "${FD_ADDR[n1]}" p.x 1 2 3 2>/dev/null || true
			sleep 0.05
		done
	) 3>&- &
	fd_track_pid $!
	run -0 --separate-stderr bash -c "timeout 20 fd-sub -n '${FD_ADDR[n1]}' 'p.>' | head -1"
	run -0 jq -e '.type == "message"' <<<"$output"
	[ -z "$stderr" ] || fail "stderr: $stderr"
	run -0 --separate-stderr bash -c "timeout 20 fd-sub -n '${FD_ADDR[n1]}' 'p.>' | jq -c .data | head -2"
	assert_equal "${#lines[@]}" 2
}

@test "Server-Sent Events for browsers" {
	fd_start_node n1
	fd_spawn c1 curl -sN --noproxy '*' --max-time 10 -H 'Accept: text/event-stream' \
		"http://${FD_ADDR[n1]}/v1/subscribe?pattern=sse.x"
	ps_wait_subs n1 1
	fd-pub -n "${FD_ADDR[n1]}" sse.x '"hi"'
	fd_wait_until 10s grep -q '^data: {"type":"message"' "${FD_OUT[c1]}"
	run -0 sed -n 's/^data: //p' "${FD_OUT[c1]}"
	run -0 jq -e '.data == "hi"' <<<"$output"
}

@test "a too slow subscriber: gap lines add up to what it missed (drop-new and drop-oldest)" {
	fd_start_node n1
	for policy in drop-new drop-oldest; do
		# A reader that stalls, then reads everything: the node's queue of
		# 100 messages overflows.
		fd_spawn "s-$policy" bash -c "exec fd-sub -n '${FD_ADDR[n1]}' -t 30s --overflow $policy --queue-len 100 'slow.$policy' > >(sleep 2; cat)"
		ps_wait_subs n1 1
		seq 1 50000 | awk -v t="slow.$policy" '{printf "{\"topic\":\"%s\",\"data\":\"%0200d\"}\n", t, $1}' |
			fd-pub -n "${FD_ADDR[n1]}"
		fd_wait_until 30s bash -c "[ \$(jq -s '[.[] | if .type == \"gap\" then .missed else 1 end] | add' '${FD_OUT[s-$policy]}') = 50000 ]"
		run -0 jq -s -e --arg t "slow.$policy" '(map(select(.type == "gap")) | length > 0) and (map(select(.type == "gap") | .topic == $t) | all) and (map(select(.type == "message") | .seq) | . == sort)' "${FD_OUT[s-$policy]}"
		kill "${FD_PID[s-$policy]}"
		ps_wait_subs n1 0
	done
	run -0 fd-node info -n "${FD_ADDR[n1]}"
	run -0 jq -e '.pubsub.missed > 0 and .pubsub.gaps > 0' <<<"$output"
}

@test "overflow disconnect: a gap line with a reason, then exit 1" {
	fd_start_node n1
	fd_spawn s1 bash -c "exec fd-sub -n '${FD_ADDR[n1]}' -t 30s --overflow disconnect --queue-len 10 d.x > >(sleep 2; cat)"
	ps_wait_subs n1 1
	seq 1 50000 | awk '{printf "{\"topic\":\"d.x\",\"data\":\"%0200d\"}\n", $1}' | fd-pub -n "${FD_ADDR[n1]}"
	fd_wait_until 20s grep -q '"type":"gap"' "${FD_OUT[s1]}"
	fd_wait_until 20s grep -q 'the node ended the subscription' "${FD_ERR[s1]}"
	run -0 jq -s -e 'map(select(.type == "gap")) | .[0].reason | test("disconnected")' "${FD_OUT[s1]}"
}
