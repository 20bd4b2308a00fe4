#!/usr/bin/env bats
# shellcheck disable=SC2154  # $stderr comes from run
# Pub/sub across real nodes on 127.0.0.1: a million messages A -> B in
# order, wildcards and overlapping subscriptions on several nodes, queue
# groups, interest-based routing (a node without subscribers gets no
# traffic), interest kept through failures and restarts, fd-sub reconnecting
# after its node is killed.

setup() {
	load helpers/common
	load helpers/pubsub
	fd_common_setup
}
teardown() { fd_common_teardown; }

alive() { fd-node members -n "${FD_ADDR[$1]}" | jq -s -e "[.[] | select(.state == \"alive\")] | length == $2" >/dev/null; }

start() {
	local first=$1 n
	shift
	fd_start_node "$first" --profile local
	for n in "$@"; do
		fd_start_node "$n" --profile local --join "${FD_ADDR[$first]}"
	done
	for n in "$first" "$@"; do fd_wait_until 10s alive "$n" $(($# + 1)); done
}

@test "1,000,000 messages published on A through one fd-pub arrive on B, exactly and in order" {
	start a b
	fd_spawn s1 fd-sub -n "${FD_ADDR[b]}" -c 1000000 -t 120s 'big.>'
	ps_wait_interest a b 1
	seq 1 1000000 | awk '{printf "{\"topic\":\"big.x\",\"data\":\"%090d\"}\n", $1}' >"$FD_TMP/in"
	run -0 --separate-stderr fd-pub -n "${FD_ADDR[a]}" <"$FD_TMP/in"
	fd_wait_until 120s _fd_gone "${FD_PID[s1]}"
	wait "${FD_PID[s1]}"
	run -0 awk -F'"seq":' '{ split($2, a, ","); if (a[1] != NR) { print "line " NR ": seq " a[1]; exit 1 } } END { print NR }' "${FD_OUT[s1]}"
	assert_output 1000000
	run -0 fd-node info -n "${FD_ADDR[a]}"
	run -0 jq -e '.pubsub.published == 1000000 and .pubsub.forwarded == 1000000 and .pubsub.lost == 0' <<<"$output"
}

@test "proxy variables pointing nowhere change nothing: nodes reach each other and clients their node directly" {
	# a dead proxy for every scheme, and no NO_PROXY to spare anything
	unset NO_PROXY no_proxy
	export http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 \
		all_proxy=http://127.0.0.1:9 ALL_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9
	start a b
	run -0 fd-registry register -n "${FD_ADDR[a]}" px.one '{"n":1}'
	fd_wait_until 10s fd-registry lookup -n "${FD_ADDR[b]}" px.one
	fd_spawn s fd-sub -n "${FD_ADDR[b]}" -c 1 -t 20s 'px.>'
	ps_wait_interest a b 1
	run -0 fd-pub -n "${FD_ADDR[a]}" px.x hello
	fd_wait_until 20s _fd_gone "${FD_PID[s]}"
	run -0 jq -r .data "${FD_OUT[s]}"
	assert_output hello
}

@test "wildcards and overlapping subscriptions on several nodes: exactly the right messages, once each" {
	start a b c d
	fd_spawn sb1 fd-sub -n "${FD_ADDR[b]}" -c 2 -t 20s 'w.*'
	fd_spawn sb2 fd-sub -n "${FD_ADDR[b]}" -c 3 -t 20s 'w.*' 'w.>'
	fd_spawn sc fd-sub -n "${FD_ADDR[c]}" -c 3 -t 20s 'w.>'
	fd_spawn sa fd-sub -n "${FD_ADDR[a]}" -c 1 -t 20s w.x.y
	ps_wait_interest a b 2
	ps_wait_interest a c 1
	ps_wait_subs a 1
	fd-pub -n "${FD_ADDR[a]}" --confirm w.x 1 >/dev/null
	fd-pub -n "${FD_ADDR[a]}" w.x.y 2
	fd-pub -n "${FD_ADDR[a]}" w.z 3
	fd-pub -n "${FD_ADDR[a]}" other.q 4
	for s in sb1 sb2 sc sa; do fd_wait_until 10s _fd_gone "${FD_PID[$s]}"; done
	run -0 jq -c .data "${FD_OUT[sb1]}"
	assert_output $'1\n3'
	run -0 jq -c .data "${FD_OUT[sb2]}"
	assert_output $'1\n2\n3'
	run -0 jq -c .data "${FD_OUT[sc]}"
	assert_output $'1\n2\n3'
	run -0 jq -c '[.data, .from]' "${FD_OUT[sa]}"
	assert_output '[2,"a"]'
	# d has no subscriber: it got no pub/sub traffic at all, and b got each
	# message once though two of its subscribers matched.
	run -0 ps_info d '.peers.a.rx_bytes'
	assert_output 0
	run -0 ps_info d '.received'
	assert_output 0
	run -0 ps_info b '.received'
	assert_output 3
	run -0 ps_info a '.peers.d.tx_bytes'
	assert_output 0
}

@test "queue groups: each message goes to exactly one member across the cluster" {
	start a b c
	fd_spawn g1 fd-sub -n "${FD_ADDR[b]}" -t 8s -q workers 'job.*'
	fd_spawn g2 fd-sub -n "${FD_ADDR[c]}" -t 8s -q workers 'job.*'
	fd_spawn g3 fd-sub -n "${FD_ADDR[a]}" -t 8s -q workers 'job.*'
	fd_spawn all fd-sub -n "${FD_ADDR[c]}" -t 8s 'job.*'
	ps_wait_interest a b 1
	ps_wait_interest a c 2
	ps_wait_subs a 1
	seq 1 60 | awk '{printf "{\"topic\":\"job.run\",\"data\":%d}\n", $1}' | fd-pub -n "${FD_ADDR[a]}"
	for s in g1 g2 g3 all; do fd_wait_until 15s _fd_gone "${FD_PID[$s]}"; done
	run -0 jq -s -e 'map(.data) | sort == [range(1; 61)]' "${FD_OUT[g1]}" "${FD_OUT[g2]}" "${FD_OUT[g3]}"
	for s in g1 g2 g3; do
		[ "$(ps_lines "${FD_OUT[$s]}")" -gt 0 ] || fail "$s got nothing"
	done
	run -0 jq -s -e 'map(.data) == [range(1; 61)]' "${FD_OUT[all]}"
}

@test "interest follows subscribers, failures and restarts" {
	start a b
	fd_spawn s1 fd-sub -n "${FD_ADDR[b]}" -t 30s 'i.>'
	ps_wait_interest a b 1
	kill "${FD_PID[s1]}"
	ps_wait_interest a b 0
	fd_spawn s2 fd-sub -n "${FD_ADDR[b]}" -t 30s 'i.*'
	ps_wait_interest a b 1
	fd_stop_node b KILL
	# failed may be cut off only: what b wanted stays, what it misses is owed
	fd_wait_until 15s ps_true a '.peers.b.alive == false and .peers.b.interest == 1'
	fd-pub -n "${FD_ADDR[a]}" i.x 1 2
	fd_wait_until 5s ps_true a '.peers.b.owed == 2 and .lost == 2'
	# a new instance of b: what the old one wanted and was owed is void
	fd_start_node b --profile local --join "${FD_ADDR[a]}"
	fd_wait_until 15s ps_true a '.peers.b.alive and .peers.b.interest == 0 and .peers.b.owed == 0'
}

@test "killing the subscriber's node mid-stream: fd-sub reports it, reconnects after the restart, prints a gap" {
	start a b
	local port=${FD_PORT[b]}
	fd_spawn s1 fd-sub -n "${FD_ADDR[b]}" -t 60s 'k.x'
	ps_wait_interest a b 1
	fd-pub -n "${FD_ADDR[a]}" k.x 1 2
	fd_wait_until 10s bash -c "[ \$(grep -c message '${FD_OUT[s1]}') = 2 ]"
	fd_stop_node b KILL
	fd_wait_until 10s grep -q 'lost the subscription' "${FD_ERR[s1]}"
	fd_start_node b --profile local --listen "127.0.0.1:$port" --join "${FD_ADDR[a]}"
	fd_wait_until 15s ps_true a '.peers.b.alive and .peers.b.interest == 1'
	fd-pub -n "${FD_ADDR[a]}" k.x 3
	fd_wait_until 10s grep -q '"data":3' "${FD_OUT[s1]}"
	run -0 jq -s -c 'map(if .type == "gap" then "gap" else .data end)' "${FD_OUT[s1]}"
	assert_output '[1,2,"gap",3]'
	run -0 jq -s -e 'map(select(.type == "gap"))[0] | .missed == null and (.reason | test("lost"))' "${FD_OUT[s1]}"
}

@test "large messages cross nodes whole or in chunks, in order, between small ones, to a queue group and the publisher's node too" {
	fd_start_node a --profile local --chunk-size 32KiB
	fd_start_node b --profile local --chunk-size 32KiB --join "${FD_ADDR[a]}"
	fd_start_node c --profile local --chunk-size 32KiB --join "${FD_ADDR[a]}"
	for n in a b c; do fd_wait_until 10s alive "$n" 3; done
	fd_spawn sb fd-sub -n "${FD_ADDR[b]}" -c 40 -t 60s 'lg.>'
	fd_spawn sg fd-sub -n "${FD_ADDR[c]}" -q workers -c 40 -t 60s 'lg.>'
	fd_spawn sa fd-sub -n "${FD_ADDR[a]}" -c 40 -t 60s 'lg.>'
	ps_wait_interest a b 1
	ps_wait_interest a c 1
	ps_wait_subs a 1
	# sizes around the chunk and far past it, small ones in between
	for i in $(seq 1 20); do
		n=$(( (i * 7919) % 300000 + 1 ))
		[ $((i % 5)) -eq 0 ] && n=$((4096 * i))
		printf '{"topic":"lg.x","data":{"i":%d,"s":"%s"}}\n' "$i" "$(head -c "$n" /dev/zero | tr '\0' x)"
		printf '{"topic":"lg.x","data":{"i":%d,"s":"small"}}\n' "$((i + 100))"
	done >"$FD_TMP/in"
	run -0 --separate-stderr fd-pub -n "${FD_ADDR[a]}" <"$FD_TMP/in"
	for s in sb sg sa; do fd_wait_until 60s _fd_gone "${FD_PID[$s]}"; done
	jq -c .data <"$FD_TMP/in" >"$FD_TMP/want"
	for s in sb sg sa; do
		jq -c .data "${FD_OUT[$s]}" >"$FD_TMP/got"
		cmp "$FD_TMP/want" "$FD_TMP/got" || fail "$s: the messages differ"
	done
	run -0 fd-node info -n "${FD_ADDR[a]}"
	run -0 jq -e '.pubsub.lost == 0 and .pubsub.forwarded == 80' <<<"$output"
}
