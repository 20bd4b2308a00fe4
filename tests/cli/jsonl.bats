#!/usr/bin/env bats
# shellcheck disable=SC2016,SC2154  # bash -c scripts in single quotes; $stderr comes from run
# The JSON-lines contract (DESIGN.md §4, fd(7)) as every binary reads and
# writes it, through the jsonl-cat test tool (tests/tools/jsonl-cat.c): good
# records out compactly, a bad line reported with its number and skipped,
# exit 7 at the end, --strict stops at once, nothing half-written, EPIPE quiet.

setup() { load helpers/common; fd_common_setup; }
teardown() { fd_common_teardown; }

# jsonl_run INPUT-FILE [ARG...]: jsonl-cat < INPUT-FILE, stdout kept in
# $FD_TMP/out as well, so it can be checked line by line.
jsonl_run()
{
	local in=$1
	shift
	run --separate-stderr bash -c 'jsonl-cat "$@" <"$0" | tee "$FD_TMP/out"; exit "${PIPESTATUS[0]}"' "$in" "$@"
}

@test "good lines pass through compactly, in order" {
	printf '%s\n' '{ "type" : "peer", "addr":"127.0.0.1:4380" }' \
		'{"a": [1, 2, {"b": null}], "s": "caf\u00e9 ü"}' \
		'{}' >"$FD_TMP/in"
	jsonl_run "$FD_TMP/in"
	assert_equal "$status" 0
	assert_equal "$stderr" ""
	assert_equal "${#lines[@]}" 3
	assert_equal "${lines[0]}" '{"type":"peer","addr":"127.0.0.1:4380"}'
	assert_equal "${lines[1]}" '{"a":[1,2,{"b":null}],"s":"café ü"}'
	assert_equal "${lines[2]}" '{}'
}

@test "blank lines are ignored; CRLF and surrounding spaces are accepted" {
	printf '\n   \n{"a":1}\r\n\t\n  {"b":2}  \n\n' >"$FD_TMP/in"
	jsonl_run "$FD_TMP/in"
	assert_equal "$status" 0
	assert_equal "$stderr" ""
	assert_equal "$output" $'{"a":1}\n{"b":2}'
}

@test "a last line without a newline is a record too" {
	printf '{"a":1}\n{"b":2}' >"$FD_TMP/in"
	jsonl_run "$FD_TMP/in"
	assert_equal "$status" 0
	assert_equal "$output" $'{"a":1}\n{"b":2}'
}

@test "a truncated line: reported with its line number, skipped, exit 7 at the end" {
	printf '%s\n' '{"a":1}' '{"b":' '{"c":3}' >"$FD_TMP/in"
	jsonl_run "$FD_TMP/in"
	assert_equal "$status" 7
	assert_equal "$output" $'{"a":1}\n{"c":3}'
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" '^jsonl-cat: stdin: line 2: .+'
	fd_assert_jsonl "$FD_TMP/out"
}

@test "line numbers count every physical line, blank ones included" {
	printf '\n\n{"a":1}\n\n{oops}\n' >"$FD_TMP/in"
	jsonl_run "$FD_TMP/in"
	assert_equal "$status" 7
	assert_equal "$output" '{"a":1}'
	assert_regex "$stderr" '^jsonl-cat: stdin: line 5: '
}

@test "a truncated last line (no newline) is bad input" {
	printf '{"a":1}\n{"b":' >"$FD_TMP/in"
	jsonl_run "$FD_TMP/in"
	assert_equal "$status" 7
	assert_equal "$output" '{"a":1}'
	assert_regex "$stderr" '^jsonl-cat: stdin: line 2: '
}

@test "invalid UTF-8 is bad input, named as such" {
	printf '{"a":1}\n{"s":"\xc3\x28"}\n{"c":3}\n' >"$FD_TMP/in"
	jsonl_run "$FD_TMP/in"
	assert_equal "$status" 7
	assert_equal "$output" $'{"a":1}\n{"c":3}'
	assert_equal "$stderr" 'jsonl-cat: stdin: line 2: invalid UTF-8'
	fd_assert_jsonl "$FD_TMP/out"
}

@test "a record must be an object; trailing data after it is bad" {
	printf '%s\n' '[1,2]' '"str"' '42' '{"a":1} x' '{"a":1}{"b":2}' '{"ok":true}' >"$FD_TMP/in"
	jsonl_run "$FD_TMP/in"
	assert_equal "$status" 7
	assert_equal "$output" '{"ok":true}'
	assert_equal "${#stderr_lines[@]}" 5
	assert_regex "${stderr_lines[0]}" '^jsonl-cat: stdin: line 1: expected a JSON object$'
	assert_regex "${stderr_lines[1]}" '^jsonl-cat: stdin: line 2: '
	assert_regex "${stderr_lines[2]}" '^jsonl-cat: stdin: line 3: '
	assert_regex "${stderr_lines[3]}" '^jsonl-cat: stdin: line 4: '
	assert_regex "${stderr_lines[4]}" '^jsonl-cat: stdin: line 5: '
}

@test "a 10 MiB line is skipped with its line number; the lines around it get through" {
	{
		printf '{"a":1}\n{"big":"'
		head -c $((10 * 1024 * 1024)) /dev/zero | tr '\0' x
		printf '"}\n{"c":3}\n'
	} >"$FD_TMP/in"
	jsonl_run "$FD_TMP/in"
	assert_equal "$status" 7
	assert_equal "$output" $'{"a":1}\n{"c":3}'
	assert_equal "$stderr" 'jsonl-cat: stdin: line 2: longer than 1048576 bytes'
	fd_assert_jsonl "$FD_TMP/out"
}

@test "the line limit is 1 MiB: a line of exactly 1048576 bytes is accepted" {
	# {"a":"xxx…"} is 8 bytes of syntax around the x's.
	{
		printf '{"a":"'
		head -c $((1048576 - 8)) /dev/zero | tr '\0' x
		printf '"}\n'
	} >"$FD_TMP/in"
	assert_equal "$(head -n 1 "$FD_TMP/in" | wc -c)" 1048577
	run --separate-stderr bash -c 'jsonl-cat <"$0" | wc -c' "$FD_TMP/in"
	assert_equal "$status" 0
	assert_equal "$stderr" ""
	assert_equal "$output" 1048577
	# One byte more is one byte too many.
	{
		printf '{"a":"'
		head -c $((1048576 - 7)) /dev/zero | tr '\0' x
		printf '"}\n'
	} >"$FD_TMP/in"
	jsonl_run "$FD_TMP/in"
	assert_equal "$status" 7
	assert_equal "$stderr" 'jsonl-cat: stdin: line 1: longer than 1048576 bytes'
}

@test "--max-line takes a size" {
	printf '%s\n' '{"a":"12345678"}' '{"a":"123456789"}' >"$FD_TMP/in"
	jsonl_run "$FD_TMP/in" --max-line 16
	assert_equal "$status" 7
	assert_equal "$output" '{"a":"12345678"}'
	assert_equal "$stderr" 'jsonl-cat: stdin: line 2: longer than 16 bytes'
	jsonl_run "$FD_TMP/in" --max-line 1KiB
	assert_equal "$status" 0
	assert_equal "${#lines[@]}" 2
}

@test "JSON nesting is limited to a depth of 64" {
	local open close
	open=$(printf '%63s' '' | tr ' ' '[')
	close=$(printf '%63s' '' | tr ' ' ']')
	printf '{"a":%s%s}\n{"a":[%s%s]}\n' "$open" "$close" "$open" "$close" >"$FD_TMP/in"
	jsonl_run "$FD_TMP/in"
	assert_equal "$status" 7
	assert_equal "$output" "{\"a\":$open$close}"
	assert_regex "$stderr" '^jsonl-cat: stdin: line 2: '
}

@test "an empty stream is bad input: no records, exit 7" {
	: >"$FD_TMP/in"
	jsonl_run "$FD_TMP/in"
	assert_equal "$status" 7
	assert_equal "$output" ""
	assert_equal "$stderr" 'jsonl-cat: stdin: no records'
	printf '\n \n\n' >"$FD_TMP/in"
	jsonl_run "$FD_TMP/in"
	assert_equal "$status" 7
	assert_equal "$stderr" 'jsonl-cat: stdin: no records'
}

@test "--strict stops at the first bad line" {
	printf '%s\n' '{"a":1}' 'nope' '{"c":3}' '[' >"$FD_TMP/in"
	jsonl_run "$FD_TMP/in" --strict
	assert_equal "$status" 7
	assert_equal "$output" '{"a":1}'
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" '^jsonl-cat: stdin: line 2: '
}

@test "--plain accepts host:port lines as strings, still checks UTF-8" {
	printf '%s\n' '127.0.0.1:4380' '{"addr":"10.0.0.2:4380"}' '[::1]:4380' >"$FD_TMP/in"
	jsonl_run "$FD_TMP/in" --plain
	assert_equal "$status" 0
	assert_equal "$output" $'"127.0.0.1:4380"\n{"addr":"10.0.0.2:4380"}\n"[::1]:4380"'
	printf 'ok:1\nbad\xff:2\n' >"$FD_TMP/in"
	jsonl_run "$FD_TMP/in" --plain
	assert_equal "$status" 7
	assert_equal "$output" '"ok:1"'
	assert_equal "$stderr" 'jsonl-cat: stdin: line 2: invalid UTF-8'
}

@test "output to a regular file is complete at exit" {
	seq 1 5000 | sed 's/.*/{"n":&}/' >"$FD_TMP/in"
	run -0 bash -c 'jsonl-cat <"$0" >"$0.out"' "$FD_TMP/in"
	cmp "$FD_TMP/in" "$FD_TMP/in.out"
}

@test "lines reach a pipe while the input is idle (flushed per line)" {
	mkfifo "$FD_TMP/fifo"
	fd_spawn cat bash -c 'jsonl-cat <"$0" | cat' "$FD_TMP/fifo"
	# Hold the writer open so jsonl-cat waits for more input after line 1
	# (opened after the spawn, so only this shell holds it).
	exec 4>"$FD_TMP/fifo"
	printf '{"first":1}\n' >&4
	fd_wait_until 5s grep -qx '{"first":1}' "${FD_OUT[cat]}"
	exec 4>&-
	fd_wait_until 5s _fd_gone "${FD_PID[cat]}"
}

@test "| head -1 on a large input ends quietly with exit 0" {
	run --separate-stderr bash -c \
		'yes "{\"a\":1}" | head -n 2000000 | jsonl-cat | head -n 1; echo "status ${PIPESTATUS[2]}" >&2'
	assert_equal "$status" 0
	assert_equal "$output" '{"a":1}'
	assert_equal "$stderr" 'status 0'
}

@test "usage errors exit 2 with the usage line on stderr" {
	run -2 --separate-stderr jsonl-cat --bogus </dev/null
	assert_equal "$output" ""
	fd_assert_stderr_match '^usage: jsonl-cat '
	run -2 --separate-stderr jsonl-cat --max-line lots </dev/null
	fd_assert_stderr_line "jsonl-cat: invalid --max-line 'lots'"
}
