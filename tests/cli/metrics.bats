#!/usr/bin/env bats
# shellcheck disable=SC2154  # $output comes from run
# fd-node's /metrics: Prometheus text format 0.0.4 that parses, fault rule
# counters that move when traffic is dropped, gap counters that move when a
# subscriber is told it missed messages, HTTP answers by status class.

setup() { load helpers/common; fd_common_setup; }
teardown() { fd_common_teardown; }

sees() { [ "$(fd-node members -n "${FD_ADDR[$1]}" | jq -s '[.[] | select(.state == "alive")] | length')" = "$2" ]; }

# metric NODE NAME [LABEL-REGEX]: the value of the first matching sample.
metric() {
	curl -sf "http://${FD_ADDR[$1]}/metrics" |
		awk -v n="$2" -v l="${3:-}" '$1 ~ ("^" n "({|$)") && $1 ~ l { print $2; exit }'
}
metric_ge() { local v; v=$(metric "$1" "$2" "$3") && [ -n "$v" ] && awk -v v="$v" -v w="$4" 'BEGIN { exit !(v >= w) }'; }

# Every line is a comment (HELP, TYPE) or "name{labels} value"; every
# sample's family was announced by a TYPE line before it, once.
well_formed() {
	awk '
	/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* / { next }
	/^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped)$/ {
		if ($3 in typed) { print "TYPE twice: " $3; bad = 1 }
		typed[$3] = 1; next
	}
	/^#/ { print "bad comment: " $0; bad = 1; next }
	{
		if ($0 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? ([-+]?[0-9.]+([eE][-+]?[0-9]+)?|NaN|[-+]Inf)$/) {
			print "bad line " NR ": " $0; bad = 1; next
		}
		name = $0; sub(/[{ ].*/, "", name)
		if (!(name in typed)) { print "no TYPE before: " name; bad = 1 }
		samples++
	}
	END { if (samples < 40) { print "only " samples " samples"; bad = 1 } exit bad }'
}

@test "/metrics: text format 0.0.4, every line parses, HTTP answers counted by class" {
	fd_start_node n1 --profile local
	run -0 curl -sf -D "$FD_TMP/headers" "http://${FD_ADDR[n1]}/metrics"
	grep -qi '^content-type: text/plain; version=0.0.4' "$FD_TMP/headers"
	well_formed <<<"$output"
	[[ $output == *'fd_members{state="alive"} 1'* ]]
	[[ $output == *'fd_node_info{name="n1",'* ]]
	for f in fd_member_probes_total fd_member_suspicions_total fd_registry_entries \
		fd_registry_deltas_sent_total fd_pubsub_published_total fd_pubsub_delivered_total \
		fd_pubsub_forwarded_total fd_fault_rules fd_fault_dropped_total; do
		grep -q "^$f " <<<"$output" || fail "no $f"
	done
	run -0 metric n1 fd_http_requests_total 'code="4xx"'
	local before=$output
	run -22 curl -sf "http://${FD_ADDR[n1]}/no/such/path"
	run -0 metric n1 fd_http_requests_total 'code="4xx"'
	[ "$output" -eq $((before + 1)) ]
	run -0 curl -sf "http://${FD_ADDR[n1]}/metrics"
	well_formed <<<"$output"
}

@test "/metrics: a fault rule's counters move when it drops traffic; gap lines move the gap counters" {
	fd_start_node n1 --profile local
	fd_start_node n2 --profile local --join "${FD_ADDR[n1]}"
	for n in n1 n2; do fd_wait_until 10s sees "$n" 2; done
	fd_spawn s2 fd-sub -n "${FD_ADDR[n2]}" 'm.>'
	fd_wait_until 10s bash -c "fd-node info -n ${FD_ADDR[n1]} | jq -e '.pubsub.peers.n2.interest == 1'"
	run -0 metric n2 fd_pubsub_gaps_total 'overflow="drop-oldest"'
	[ "$output" = 0 ]
	fd-partition -n "${FD_ADDR[n1]}" -n "${FD_ADDR[n2]}" --tag m isolate n2 >/dev/null
	fd_wait_until 10s metric_ge n1 fd_fault_rule_dropped_total 'peer="n2".*action="drop"' 1
	run -0 metric n1 fd_fault_rule_matched_total 'tag="m",peer="n2"'
	[ "$output" -ge 1 ]
	run -0 curl -sf "http://${FD_ADDR[n1]}/metrics"
	well_formed <<<"$output"
	# /v1/info shows the same per rule
	run -0 fd-node info -n "${FD_ADDR[n1]}"
	run -0 jq -e '.faults.per_rule | length == 1 and .[0].peer == "n2" and .[0].dropped >= 1 and .[0].matched >= .[0].dropped' <<<"$output"
	seq 1 5 | jq -c '{topic: "m.x", data: .}' | fd-pub -n "${FD_ADDR[n1]}"
	fd-partition -n "${FD_ADDR[n1]}" -n "${FD_ADDR[n2]}" --tag m heal >/dev/null
	fd_wait_until 30s grep -q '"type":"gap"' "${FD_OUT[s2]}"
	run -0 metric n2 fd_pubsub_gaps_total 'overflow="drop-oldest"'
	[ "$output" = 1 ]
	# what it missed, as its gap lines say, is what the counter says; the
	# rest came after the heal
	fd_wait_until 10s bash -c "[ \$(jq -s 'map(if .type == \"gap\" then .missed else 1 end) | add' '${FD_OUT[s2]}') = 5 ]"
	run -0 jq -s 'map(select(.type == "gap") | .missed) | add' "${FD_OUT[s2]}"
	local missed=$output
	run -0 metric n2 fd_pubsub_missed_total 'overflow="drop-oldest"'
	[ "$output" = "$missed" ]
	run -0 metric n2 fd_pubsub_gap_frames_received_total
	[ "$output" -ge 1 ]
	run -0 metric n1 fd_pubsub_gap_frames_sent_total
	[ "$output" -ge 1 ]
	run -0 metric n1 fd_pubsub_lost_total
	[ "$output" -ge "$missed" ]
}
