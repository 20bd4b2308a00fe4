#!/usr/bin/env bats
# examples/chaos.sh, 30 seconds of it: five nodes, a writer, a subscriber per
# node, partitions coming and going, then heal and fd-partition check, which
# must find the run valid (nothing acknowledged lost, every missed publish
# reported by a gap line).

setup() { load helpers/common; fd_common_setup; }
teardown() { fd_common_teardown; }

@test "examples/chaos.sh -d 30s: the history checks valid" {
	export FD_BIN=$FD_BUILD/bin TMPDIR=$FD_TMP
	run -0 --separate-stderr timeout -k 10 300 "$FD_ROOT/examples/chaos.sh" -d 30s -s 20261126
	run -0 jq -e 'select(.type == "check") | .valid == true and .faults >= 2
		and .registrations.nodes == 5 and .registrations.present == .registrations.acknowledged
		and .registrations.acknowledged > 50 and .publishes.subscribers == 5
		and .publishes.received + .publishes.covered == .publishes.expected
		and .membership.converged == true and .malformed == 0' <<<"$output"
	# every process it started is gone, and its work directory too
	run -1 pgrep -f "$FD_TMP/fd-chaos"
	run -0 bash -c "ls -d '$FD_TMP'/fd-chaos.* 2>/dev/null | wc -l"
	assert_output 0
}

@test "examples/chaos.sh: bad arguments (exit 2)" {
	run -2 "$FD_ROOT/examples/chaos.sh" -d soon
	run -2 "$FD_ROOT/examples/chaos.sh" -s x
	run -2 "$FD_ROOT/examples/chaos.sh" -z
	run -0 "$FD_ROOT/examples/chaos.sh" -h
	[[ $output == *"CHAOS_DURATION"* ]]
}
