#!/usr/bin/env bats
# shellcheck disable=SC2016,SC2154  # bash -c scripts in single quotes; $stderr comes from run
# fd-bench: command line, the scenario list, small real runs of the
# membership and registry scenarios, the output formats, baselines and
# regressions.
#
# fd-bench starts its nodes itself (children of fd-bench, not of this shell),
# through a link private to the test ($FD_TMP/bin/fd-node), so that pgrep can
# find exactly this test's nodes while other test files run in parallel. Its
# temp dirs go to $FD_TMP/tmp. Runs are small: 2 or 3 nodes, 1 or 2 runs.

setup()
{
	load helpers/common
	fd_common_setup
	mkdir -p "$FD_TMP/bin" "$FD_TMP/tmp"
	ln -s "$(command -v fd-node)" "$FD_TMP/bin/fd-node"
	NODE_BIN=$FD_TMP/bin/fd-node
	export TMPDIR=$FD_TMP/tmp
}

teardown()
{
	# A node fd-bench left behind (a bug) is ours to kill, by its PID.
	local pid
	for pid in $(our_nodes); do
		fd_track_pid "$pid"
	done
	fd_common_teardown
}

# The PIDs of the fd-node processes this test's fd-bench started.
our_nodes() { pgrep -f -- "^$NODE_BIN --name " || true; }

# fd-bench with a bound on its run time and this test's node binary.
bench() { timeout -k 2 "$FD_CMD_TIMEOUT" fd-bench --fd-node "$NODE_BIN" "$@"; }

# After a run: no node left running, no temp dir left behind.
assert_clean()
{
	local left
	left=$(our_nodes)
	[ -z "$left" ] || fail "fd-node processes left behind: $left"
	left=$(find "$FD_TMP/tmp" -mindepth 1 -print -quit)
	[ -z "$left" ] || fail "temp files left behind: $left"
}

# write_baseline FILE VALUE [NODES]: one result line for membership.converge.
write_baseline()
{
	printf '{"type":"result","name":"membership.converge","params":{"nodes":%s,"profile":"local"},"unit":"s","value":%s,"min":%s,"max":%s,"runs":1}\n' \
		"${3:-3}" "$2" "$2" "$2" >"$1"
}

## Command line

@test "--help prints the usage on stdout and exits 0; --version" {
	run -0 --separate-stderr fd-bench --help
	assert_equal "$stderr" ""
	assert_line --index 0 --regexp '^usage: fd-bench '
	assert_output --partial '--baseline'
	assert_output --partial 'fd-bench list'
	run -0 --separate-stderr fd-bench --version
	assert_equal "$output" "fd-bench $(cat "$FD_ROOT/VERSION")"
}

@test "the man page SYNOPSIS names every option of the usage" {
	local opt synopsis
	synopsis=$(sed -n '/^\.SH SYNOPSIS/,/^\.SH DESCRIPTION/p' "$FD_ROOT/man/fd-bench.1")
	for opt in -N -r -p --duration --timeout --entries --baseline --threshold -f --fd-node --encrypt list; do
		grep -qF -- "${opt//-/\\-}" <<<"$synopsis" ||
			fail "the SYNOPSIS of man/fd-bench.1 does not mention $opt"
	done
}

@test "list: one scenario record per line: membership, registry, pub/sub and discovery scenarios" {
	run -0 --separate-stderr fd-bench list
	assert_equal "$stderr" ""
	fd_assert_jsonl <(printf '%s\n' "$output")
	assert_equal "${#lines[@]}" 28
	run -0 jq -e -s '
		map(.type == "scenario" and (.unit | length > 0) and (.description | length > 0)) | all' \
		<<<"$output"
	run -0 bash -c 'fd-bench list | jq -r .name | grep ^membership | sort | tr "\n" " "'
	assert_output 'membership.converge membership.detect membership.false_positives membership.rss '
	run -0 bash -c 'fd-bench list | jq -r .name | grep ^registry | sort | tr "\n" " "'
	assert_output 'registry.bulk registry.lookup registry.memory registry.visible '
	run -0 bash -c 'fd-bench list | jq -r "select(.name | startswith(\"registry.\")) | .unit" | tr "\n" " "'
	assert_output 'ms names/s lookups/s bytes/entry '
	run -0 bash -c 'fd-bench list | jq -r .name | grep ^pubsub | sort | tr "\n" " "'
	assert_output 'pubsub.codec.json pubsub.codec.random pubsub.codec.text pubsub.compression pubsub.compression.random pubsub.compression.text pubsub.hol pubsub.latency pubsub.throughput.16 pubsub.throughput.1m pubsub.throughput.256 pubsub.throughput.4k pubsub.throughput.64k pubsub.throughput.fanout4 pubsub.throughput.same_node '
	run -0 bash -c 'fd-bench list | jq -r "select(.name | startswith(\"discover.\")) | .name" | tr "\n" " "'
	assert_output 'discover.dns discover.kubernetes discover.mdns discover.gossip '
	run -0 bash -c 'fd-bench list | jq -r .name | grep ^partition | sort | tr "\n" " "'
	assert_output 'partition.heal '
	run -0 bash -c 'fd-bench list | jq -r "select(.name == \"membership.false_positives\") | .unit"'
	assert_output count
	run -0 bash -c 'fd-bench list | jq -r "select(.name == \"membership.rss\") | .unit"'
	assert_output MiB
}

@test "list | head -1 ends quietly with exit 0" {
	run -0 --separate-stderr bash -c 'set -o pipefail; fd-bench list | head -n 1'
	assert_equal "${#lines[@]}" 1
	assert_equal "$stderr" ""
}

@test "an unknown scenario, or none: exit 2 before anything runs" {
	run -2 --separate-stderr bench membership.converge bogus
	assert_equal "$output" ""
	assert_regex "${stderr_lines[0]}" "^fd-bench: unknown scenario 'bogus'"
	fd_assert_stderr_match '^usage: fd-bench '
	assert_clean
	run -2 --separate-stderr bench
	assert_regex "${stderr_lines[0]}" '^fd-bench: no scenario given'
}

@test "bad --nodes, --runs, --profile, --format, --threshold, --duration: exit 2" {
	local args
	for args in '-N 0' '-N 1001' '-N x' '-N 3,,x' '--nodes=' '-r 0' '-r 1001' '-r many' \
		'-p fast' '--profile=' '-f xml' '--format=csv' '--threshold -1' '--threshold 5%' \
		'--duration soon' '--timeout 0' '--entries 0' '--entries 1000001' '--entries x' \
		'--bogus' '-N'; do
		# shellcheck disable=SC2086  # split on purpose
		run -2 --separate-stderr bench $args membership.converge
		assert_equal "$output" ""
		assert_regex "${stderr_lines[0]}" '^fd-bench: '
		fd_assert_stderr_match '^usage: fd-bench '
	done
	assert_clean
}

## Real runs

@test "membership.converge -N 3 -r 2: one result line; median within [min, max]" {
	run -0 --separate-stderr bench -N 3 -r 2 membership.converge
	# stderr is not a terminal: no progress, nothing at all.
	assert_equal "$stderr" ""
	assert_equal "${#lines[@]}" 1
	fd_assert_jsonl <(printf '%s\n' "$output")
	run -0 jq -e '
		.type == "result" and .name == "membership.converge" and
		.params == {"nodes": 3, "profile": "local"} and .unit == "s" and
		.runs == 2 and (.value | type == "number") and
		.min <= .value and .value <= .max and .min > 0 and
		(has("verdict") | not)' <<<"$output"
	assert_clean
}

@test "--encrypt: every node gets the cluster's generated key (0600); results carry encrypt:true" {
	# a wrapper notes each node's --key-file and its mode, then runs fd-node
	cat >"$FD_TMP/bin/fd-node-keyed" <<-EOF
		#!/bin/bash
		prev=
		for a in "\$@"; do
			[ "\$prev" = --key-file ] && echo "\$a \$(stat -c %a "\$a")" >>"$FD_TMP/keys"
			prev=\$a
		done
		exec "$NODE_BIN" "\$@"
	EOF
	chmod +x "$FD_TMP/bin/fd-node-keyed"
	run -0 --separate-stderr timeout -k 2 "$FD_CMD_TIMEOUT" fd-bench --fd-node "$FD_TMP/bin/fd-node-keyed" \
		-N 3 -r 1 --encrypt membership.converge
	run -0 jq -e '.params == {"nodes": 3, "profile": "local", "encrypt": true} and .value > 0' <<<"$output"
	run -0 awk '{ print $2 }' "$FD_TMP/keys"
	assert_output $'600\n600\n600'
	run -0 awk '{ print $1 }' "$FD_TMP/keys"
	[ "$(sort -u <<<"$output" | wc -l)" -eq 1 ]
	# a baseline without encryption is another figure: not compared
	write_baseline "$FD_TMP/base" 0.000001
	run -0 --separate-stderr timeout -k 2 "$FD_CMD_TIMEOUT" fd-bench --fd-node "$NODE_BIN" \
		-N 3 -r 1 --encrypt --baseline "$FD_TMP/base" membership.converge
	run -0 jq -e '.params.encrypt and (has("verdict") | not)' <<<"$output"
	assert_clean
}

@test "membership.detect -N 3 -r 1: seconds until a SIGKILLed node is marked failed" {
	run -0 --separate-stderr bench -N 3 -r 1 membership.detect
	assert_equal "${#lines[@]}" 1
	run -0 jq -e '
		.type == "result" and .name == "membership.detect" and .unit == "s" and
		.params.nodes == 3 and .runs == 1 and .value > 0 and
		.min == .value and .max == .value' <<<"$output"
	assert_clean
}

@test "membership.rss -N 2 -r 1: RSS, PSS and private MiB of the largest node" {
	local out
	run -0 --separate-stderr bench -N 2 -r 1 membership.rss
	assert_equal "${#lines[@]}" 3
	out=$output
	run -0 jq -r -s 'map(select(.unit == "MiB" and .value > 0) | .name) | join(",")' <<<"$out"
	assert_output 'membership.rss,membership.pss,membership.private'
	run -0 jq -e -s '.[0].value >= .[1].value' <<<"$out"
	assert_clean
}

@test "discover.dns, discover.kubernetes -N 3 -r 1: seconds until a new node, and one back at a new address, is joined" {
	run -0 --separate-stderr bench -N 3 -r 1 discover.dns discover.kubernetes
	assert_equal "${#lines[@]}" 4
	run -0 jq -r -s 'map(select(.type == "result" and .unit == "s" and .params.nodes == 3 and
		.value > 0 and .value < 30) | .name) | join(",")' <<<"$output"
	assert_output 'discover.dns.join,discover.dns.rejoin,discover.kubernetes.join,discover.kubernetes.rejoin'
	assert_clean
}

@test "several sizes and scenarios: one result line per scenario and size, in order" {
	run -0 --separate-stderr bench -N 2,3 -r 1 membership.converge membership.detect
	assert_equal "${#lines[@]}" 4
	run -0 jq -r -s 'map("\(.name) \(.params.nodes)") | join(",")' <<<"$output"
	assert_output 'membership.converge 2,membership.converge 3,membership.detect 2,membership.detect 3'
	assert_clean
}

@test "--format table: one aligned line per figure, no JSON" {
	run -0 --separate-stderr bench -N 3 -r 2 -f table membership.converge
	assert_equal "${#lines[@]}" 1
	assert_regex "${lines[0]}" '^membership\.converge +nodes=3 profile=local +[0-9.e+-]+ s +\[[0-9.e+-]+ \.\. [0-9.e+-]+\] runs=2$'
	assert_clean
}

@test "--format github: a JSON array benchmark-action reads (name, unit, value)" {
	run -0 --separate-stderr bench -N 3 -r 1 --format github membership.converge membership.rss
	run -0 jq -e '
		type == "array" and length == 4 and
		(map((.name | type == "string") and (.unit | type == "string") and
		     (.value | type == "number") and (.extra | test("smaller is better"))) | all) and
		.[0].name == "membership.converge (nodes=3, profile=local)" and .[0].unit == "s" and
		.[1].unit == "MiB"' <<<"$output"
	assert_clean
}

## Registry scenarios (small: --entries keeps each run short)

@test "registry.visible -N 3 --entries 30: p50 and p99 ms of watch visibility" {
	run -0 --separate-stderr bench -N 3 -r 1 --entries 30 registry.visible
	assert_equal "$stderr" ""
	assert_equal "${#lines[@]}" 2
	run -0 jq -e -s '
		(map(.type == "result" and .unit == "ms" and .runs == 1 and .value > 0 and
		     .params == {"nodes": 3, "entries": 30, "profile": "local"}) | all) and
		(map(.name) == ["registry.visible.p50", "registry.visible.p99"]) and
		.[0].value <= .[1].value' <<<"$output"
	assert_clean
}

@test "partition.heal -N 4 --duration 3s --entries 200: seconds from the heal to membership and registry agreement" {
	run -0 --separate-stderr fd-bench -N 4 -r 1 --duration 3s --entries 200 --timeout 60s partition.heal
	run -0 jq -s -e 'length == 2 and (map(.name) == ["partition.heal.members", "partition.heal.registry"])
		and all(.[]; .type == "result" and .unit == "s" and .value > 0 and .value < 60
			and .params.nodes == 4 and .params.entries == 200)' <<<"$output"
	run -1 --separate-stderr fd-bench -N 1 -r 1 --duration 1s partition.heal
	[[ $stderr == *"needs at least 2 nodes"* ]]
}

@test "registry.visible -N 1: needs 2 nodes, an error record and exit 1" {
	run -1 --separate-stderr bench -N 1 -r 1 --entries 5 registry.visible
	run -0 jq -e '.type == "error" and .name == "registry.visible" and .error == "needs at least 2 nodes"' <<<"$output"
	fd_assert_stderr_match 'needs at least 2 nodes'
	assert_clean
}

@test "registry.bulk -N 2 --entries 2500: names/s, replication seconds, CPU per name" {
	local out
	run -0 --separate-stderr bench -N 2 -r 1 --entries 2500 registry.bulk
	assert_equal "${#lines[@]}" 4
	out=$output
	run -0 jq -r -s 'map("\(.name) \(.unit)") | join(",")' <<<"$out"
	assert_output 'registry.bulk names/s,registry.bulk.replicated s,registry.bulk.cpu us,registry.bulk.replica_cpu us'
	run -0 jq -e -s '
		(map(.params == {"nodes": 2, "entries": 2500, "profile": "local"}) | all) and
		.[0].value > 0 and .[1].value >= 0 and .[2].value > 0 and .[3].value >= 0' <<<"$out"
	assert_clean
}

@test "registry.lookup -N 2 --entries 1500: lookups/s, p50 and p99 ms of single lookups" {
	local out
	run -0 --separate-stderr bench -N 2 -r 1 --entries 1500 registry.lookup
	assert_equal "${#lines[@]}" 3
	out=$output
	run -0 jq -r -s 'map("\(.name) \(.unit)") | join(",")' <<<"$out"
	assert_output 'registry.lookup lookups/s,registry.lookup.p50 ms,registry.lookup.p99 ms'
	run -0 jq -e -s '(map(.value > 0) | all) and .[1].value <= .[2].value' <<<"$out"
	assert_clean
}

@test "registry.memory -N 2 --entries 3000: bytes per entry, registry and private" {
	local out
	run -0 --separate-stderr bench -N 2 -r 1 --entries 3000 registry.memory
	assert_equal "${#lines[@]}" 3
	out=$output
	run -0 jq -r -s 'map("\(.name) \(.unit)") | join(",")' <<<"$out"
	assert_output 'registry.memory bytes/entry,registry.memory.private bytes/entry,registry.memory.replica bytes/entry'
	# An entry costs something beyond its name and value, and not absurdly much.
	run -0 jq -e -s '.[0].value > 0 and .[0].value < 10000' <<<"$out"
	assert_clean
}

## Baselines

@test "--baseline far below: exit 6, 'regressed' on stderr, verdict regression" {
	write_baseline "$FD_TMP/base.jsonl" 0.000001
	run -6 --separate-stderr bench -N 3 -r 1 --baseline "$FD_TMP/base.jsonl" membership.converge
	assert_equal "${#lines[@]}" 1
	run -0 jq -e '
		.verdict == "regression" and .change_pct > 10 and
		.baseline.value == 0.000001 and .baseline.min == 0.000001 and .baseline.max == 0.000001' \
		<<<"$output"
	fd_assert_stderr_match '^fd-bench: membership\.converge\|nodes=3,profile=local regressed: '
	assert_clean
}

@test "--baseline far above: exit 0, verdict better; a baseline of other params is ignored" {
	write_baseline "$FD_TMP/base.jsonl" 1000
	run -0 --separate-stderr bench -N 3 -r 1 --baseline "$FD_TMP/base.jsonl" membership.converge
	assert_equal "$stderr" ""
	run -0 jq -e '.verdict == "better" and .change_pct < 0 and .baseline.value == 1000' <<<"$output"
	# Only the same name with the same params is compared.
	write_baseline "$FD_TMP/other.jsonl" 0.000001 8
	run -0 --separate-stderr bench -N 3 -r 1 --baseline "$FD_TMP/other.jsonl" membership.converge
	run -0 jq -e 'has("verdict") | not' <<<"$output"
	assert_clean
}

@test "--baseline within the threshold: verdict same, exit 0" {
	# A baseline range as wide as can be: any new figure falls within it.
	printf '%s\n' '{"type":"result","name":"membership.converge","params":{"nodes":3,"profile":"local"},"unit":"s","value":1,"min":0,"max":1000,"runs":5}' \
		>"$FD_TMP/base.jsonl"
	run -0 --separate-stderr bench -N 3 -r 1 --baseline "$FD_TMP/base.jsonl" --threshold 0 membership.converge
	run -0 jq -e '.verdict == "same"' <<<"$output"
}

@test "a baseline made by fd-bench itself compares as same or better, never a crash" {
	bench -N 3 -r 2 membership.converge >"$FD_TMP/base.jsonl"
	run --separate-stderr bench -N 3 -r 2 --baseline "$FD_TMP/base.jsonl" --threshold 1000 membership.converge
	assert_success
	run -0 jq -e '.verdict == "same" or .verdict == "better"' <<<"$output"
}

@test "a baseline with a malformed line: a warning with its line number, the run goes on, exit 7" {
	write_baseline "$FD_TMP/base.jsonl" 1000
	printf '{not json\n{"type":"result","name":"membership.converge"}\n' >>"$FD_TMP/base.jsonl"
	run -7 --separate-stderr bench -N 3 -r 1 --baseline "$FD_TMP/base.jsonl" membership.converge
	fd_assert_stderr_match "^fd-bench: $FD_TMP/base\.jsonl: line 2: "
	fd_assert_stderr_match "^fd-bench: $FD_TMP/base\.jsonl: line 3: a result needs name, params and value"
	run -0 jq -e '.type == "result" and .verdict == "better"' <<<"$output"
	assert_clean
}

@test "a regression wins over a malformed baseline line: exit 6" {
	write_baseline "$FD_TMP/base.jsonl" 0.000001
	printf 'garbage\n' >>"$FD_TMP/base.jsonl"
	run -6 --separate-stderr bench -N 3 -r 1 --baseline "$FD_TMP/base.jsonl" membership.converge
	fd_assert_stderr_match 'line 2: '
	fd_assert_stderr_match 'regressed'
}

@test "a missing baseline file: exit 1 before any run" {
	run -1 --separate-stderr bench -N 3 -r 1 --baseline "$FD_TMP/nope.jsonl" membership.converge
	assert_equal "$output" ""
	fd_assert_stderr_line "fd-bench: unable to open baseline '$FD_TMP/nope.jsonl': No such file or directory"
	assert_clean
}

## Failures

@test "--fd-node that cannot run: an error record, a message, exit 1" {
	run -1 --separate-stderr timeout 20 fd-bench --fd-node /nonexistent/fd-node -N 3 -r 1 membership.converge
	assert_equal "${#lines[@]}" 1
	run -0 jq -e '.type == "error" and .name == "membership.converge" and (.error | length > 0)' <<<"$output"
	fd_assert_stderr_match "^fd-bench: membership\.converge \(nodes=3\) run 1 failed: node b1 exited during start-up: unable to run '/nonexistent/fd-node'"
	# In the github format the array is still valid JSON (and empty).
	run -1 --separate-stderr timeout 20 fd-bench --fd-node /nonexistent/fd-node -N 3 -r 1 -f github membership.converge
	run -0 jq -e 'type == "array" and length == 0' <<<"$output"
	assert_clean
}

@test "--timeout too short for a run: an error record and exit 1, nodes stopped" {
	run -1 --separate-stderr bench -N 3 -r 1 --timeout 1ms membership.detect
	run -0 jq -e '.type == "error" and .name == "membership.detect"' <<<"$output"
	assert_clean
}

## Completions (no binary needed)

# complete_words WORD...: what the bash completion offers for the last word.
complete_words()
{
	# shellcheck source=/dev/null
	source "$FD_ROOT/completions/bash/fd-bench"
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	_fd_bench fd-bench "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	printf '%s\n' "${COMPREPLY[@]}"
}

@test "discover.mdns -r 2: one result line, measured in a network namespace" {
	[ "$(id -u)" -eq 0 ] || skip "network namespaces need root"
	run -0 --separate-stderr bench -r 2 discover.mdns
	assert_equal "${#lines[@]}" 1
	run -0 jq -e '.type == "result" and .name == "discover.mdns" and .unit == "s"
		and .params.nodes == 3 and .runs == 2 and .value > 0 and .min <= .value
		and .value <= .max' <<<"$output"
	assert_clean
}

@test "discover.mdns and discover.gossip without root: skipped with a message, exit 0" {
	command -v setpriv >/dev/null || skip "setpriv is not installed"
	[ "$(id -u)" -eq 0 ] || skip "needs root to drop to another user"
	run -0 --separate-stderr setpriv --reuid=65534 --regid=65534 --clear-groups \
		fd-bench --fd-node "$(command -v fd-node)" -r 1 discover.mdns discover.gossip
	assert_equal "$(jq -c '[.type, .name, .skipped]' <<<"$output" | tr '\n' ' ')" \
		'["error","discover.mdns",true] ["error","discover.gossip",true] '
	assert_equal "${stderr_lines[0]}" "fd-bench: discover.mdns (nodes=3): skipped: needs a network namespace of its own (run as root): Operation not permitted"
}

@test "bash completion: options, scenarios, profiles and formats" {
	run -0 complete_words fd-bench --base
	assert_output '--baseline'
	run -0 complete_words fd-bench membership.d
	assert_output 'membership.detect'
	run -0 complete_words fd-bench ''
	assert_line list
	assert_line membership.converge
	assert_line membership.false_positives
	assert_line membership.rss
	assert_line registry.visible
	assert_line registry.memory
	run -0 complete_words fd-bench registry.l
	assert_output 'registry.lookup'
	run -0 complete_words fd-bench partition.
	assert_output 'partition.heal'
	run -0 complete_words fd-bench --ent
	assert_output '--entries'
	run -0 complete_words fd-bench -p ''
	assert_equal "$(sort <<<"$output" | tr '\n' ' ')" 'lan local wan '
	run -0 complete_words fd-bench --format ''
	assert_equal "$(sort <<<"$output" | tr '\n' ' ')" 'github json table '
	run -0 complete_words fd-bench -N 3 -r 2 --
	assert_line --fd-node
	assert_line --threshold
	touch "$FD_TMP/base.jsonl"
	run -0 complete_words fd-bench --baseline "$FD_TMP/base"
	assert_line "$FD_TMP/base.jsonl"
}

@test "zsh completion: a #compdef file that zsh can parse" {
	run -0 head -n 1 "$FD_ROOT/completions/zsh/_fd-bench"
	assert_output '#compdef fd-bench'
	command -v zsh >/dev/null || skip "zsh is not installed"
	run -0 zsh -n "$FD_ROOT/completions/zsh/_fd-bench"
}
