#!/usr/bin/env bats
# shellcheck disable=SC2154  # $stderr comes from run
# fd-pub against one real node: arguments and stdin, JSON and strings,
# --confirm, bad input (line numbers, exit 7, the good lines published),
# invalid topics, payload limits, usage errors, an unknown node.

setup() {
	load helpers/common
	load helpers/pubsub
	fd_common_setup
}
teardown() { fd_common_teardown; }

# sub NAME PATTERN COUNT: a subscriber on n1 waiting for COUNT messages.
sub() {
	fd_spawn "$1" fd-sub -n "${FD_ADDR[n1]}" -c "$3" -t 20s "$2"
	ps_wait_subs n1 "${SUBS:-1}"
}

@test "usage errors exit 2 and say what was wrong" {
	run -2 --separate-stderr fd-pub --priority urgent t.x 1
	fd_assert_stderr_match "invalid --priority 'urgent'"
	run -2 --separate-stderr fd-pub 'a.*' 1
	fd_assert_stderr_match "invalid topic 'a.\*'"
	run -2 --separate-stderr fd-pub --bogus
	run -2 --separate-stderr fd-pub -T a.b c.d 1
}

@test "an unknown node: exit 1 and a clear message" {
	run -1 --separate-stderr fd-pub -n 127.0.0.1:1 t.x 1
	fd_assert_stderr_match "^fd-pub: unable to reach '127.0.0.1:1'"
	run -1 --separate-stderr fd-pub -n 127.0.0.1:1 <<<'{"topic":"a.b","data":1}'
	fd_assert_stderr_match "^fd-pub: unable to reach '127.0.0.1:1'"
}

@test "arguments: valid JSON goes as JSON, anything else as a string" {
	fd_start_node n1
	sub s1 t.x 4
	run -0 --separate-stderr fd-pub -n "${FD_ADDR[n1]}" t.x 42 hello '{"a":[1,2]}' '"q"'
	assert_output ''
	fd_wait_until 10s _fd_gone "${FD_PID[s1]}"
	run -0 jq -c .data "${FD_OUT[s1]}"
	assert_output $'42\n"hello"\n{"a":[1,2]}\n"q"'
	run -0 jq -r '[.type, .topic, .seq, .from, (.stream > 0), (.ts | test("Z$"))] | @tsv' "${FD_OUT[s1]}"
	assert_line --index 0 $'message\tt.x\t1\tn1\ttrue\ttrue'
	assert_line --index 3 $'message\tt.x\t4\tn1\ttrue\ttrue'
}

@test "--confirm prints one published line per message with its seq" {
	fd_start_node n1
	run -0 --separate-stderr fd-pub -n "${FD_ADDR[n1]}" --confirm t.x 1 2 3
	assert_equal "${#lines[@]}" 3
	run -0 jq -r '[.type, .topic, .seq] | @tsv' <<<"$output"
	assert_output $'published\tt.x\t1\npublished\tt.x\t2\npublished\tt.x\t3'
	run -0 --separate-stderr fd-pub -n "${FD_ADDR[n1]}" --confirm <<<$'{"topic":"a.b","data":1}\n{"topic":"a.c","data":2}'
	run -0 jq -r '[.topic, .seq] | @tsv' <<<"$output"
	assert_output $'a.b\t1\na.c\t2'
}

@test "stdin: per-line topics, a default topic, whole lines as data" {
	fd_start_node n1
	sub s1 'd.>' 4
	printf '%s\n' '{"topic":"d.one","data":{"k":1}}' '{"data":"x"}' '{"v":7}' '[1,2]' >"$FD_TMP/in"
	run -0 --separate-stderr fd-pub -n "${FD_ADDR[n1]}" -T d.def <"$FD_TMP/in"
	fd_wait_until 10s _fd_gone "${FD_PID[s1]}"
	run -0 jq -c '[.topic, .data]' "${FD_OUT[s1]}"
	assert_output $'["d.one",{"k":1}]\n["d.def","x"]\n["d.def",{"v":7}]\n["d.def",[1,2]]'
}

@test "a malformed line is skipped and reported with its number; exit 7; the good lines are published" {
	fd_start_node n1
	sub s1 'm.>' 3
	printf '%s\n' '{"topic":"m.a","data":1}' 'not json' '{"topic":"m.b","data":2}' \
		'{"topic":"m.c","data":' '{"topic":"m.d","data":3}' >"$FD_TMP/in"
	run -7 --separate-stderr fd-pub -n "${FD_ADDR[n1]}" <"$FD_TMP/in"
	fd_assert_stderr_match '^fd-pub: line 2: invalid JSON'
	fd_assert_stderr_match '^fd-pub: line 4: invalid JSON'
	fd_wait_until 10s _fd_gone "${FD_PID[s1]}"
	run -0 jq -c .data "${FD_OUT[s1]}"
	assert_output $'1\n2\n3'
}

@test "--strict stops at the first bad line" {
	fd_start_node n1
	printf '%s\n' '{"topic":"m.a","data":1}' 'oops' '{"topic":"m.b","data":2}' >"$FD_TMP/in"
	run -7 --separate-stderr fd-pub -n "${FD_ADDR[n1]}" --strict --confirm <"$FD_TMP/in"
	fd_assert_stderr_match '^fd-pub: line 2: '
}

@test "invalid topics: empty tokens, wildcards in a publish, over 255 bytes" {
	fd_start_node n1
	long=$(printf 'a%.0s' {1..256})
	printf '%s\n' '{"topic":"a..b","data":1}' '{"topic":".a","data":1}' \
		'{"topic":"a.*","data":1}' '{"topic":"a.>","data":1}' \
		"{\"topic\":\"$long\",\"data\":1}" '{"topic":"ok.one","data":1}' '{"topic":5,"data":1}' >"$FD_TMP/in"
	run -7 --separate-stderr fd-pub -n "${FD_ADDR[n1]}" --confirm <"$FD_TMP/in"
	fd_assert_stderr_match "^fd-pub: line 1: invalid topic 'a..b': empty token"
	fd_assert_stderr_match "^fd-pub: line 2: invalid topic"
	fd_assert_stderr_match "^fd-pub: line 3: invalid topic 'a.\*'"
	fd_assert_stderr_match "^fd-pub: line 4: invalid topic 'a.>'"
	fd_assert_stderr_match "^fd-pub: line 5: invalid topic"
	fd_assert_stderr_match '^fd-pub: line 7: "topic" is not a string'
	run -0 jq -r .topic <<<"$output"
	assert_output ok.one
	# The node checks too (for clients other than fd-pub).
	fd_http POST "${FD_ADDR[n1]}" /v1/publish --data-binary '{"topic":"x..y","data":1}'
	assert_equal "$HTTP_CODE" 400
	run -0 jq -e '.rejected == 1 and (.errors[0].error | test("empty token"))' <<<"$HTTP_BODY"
	fd_http POST "${FD_ADDR[n1]}" '/v1/publish/a.*' --data-binary '1'
	assert_equal "$HTTP_CODE" 400
}

@test "a payload over the limit is refused, by fd-pub and by the node" {
	fd_start_node n1 --max-payload 1KiB
	big=$(head -c 2000 /dev/zero | tr '\0' x)
	run -7 --separate-stderr fd-pub -n "${FD_ADDR[n1]}" --max-payload 1KiB t.x "$big"
	fd_assert_stderr_match 'payload of 2002 bytes over the limit of 1024'
	run -7 --separate-stderr fd-pub -n "${FD_ADDR[n1]}" t.x "$big" small
	fd_assert_stderr_match 'rejected by the node: payload of about 2.* bytes over the limit of 1024'
	run -0 fd-node info -n "${FD_ADDR[n1]}"
	run -0 jq -e '.pubsub.published == 1 and .pubsub.rejected == 1' <<<"$output"
}

@test "stdin streams: many lines go through one request, in order" {
	fd_start_node n1
	sub s1 'n.x' 20000
	seq 1 20000 | awk '{printf "{\"topic\":\"n.x\",\"data\":%d}\n", $1}' >"$FD_TMP/in"
	run -0 --separate-stderr fd-pub -n "${FD_ADDR[n1]}" <"$FD_TMP/in"
	fd_wait_until 20s _fd_gone "${FD_PID[s1]}"
	run -0 jq -s -e 'length == 20000 and (map(.data) == [range(1; 20001)]) and (map(.seq) == [range(1; 20001)]) and (map(.stream) | unique | length == 1)' "${FD_OUT[s1]}"
}
