#!/usr/bin/env bats
# shellcheck disable=SC2016,SC2154  # bash -c scripts in single quotes; $stderr comes from run
# fd-node: command line, identity line, detach, signals, HTTP API, logging.
# Every node listens on 127.0.0.1:0; teardown stops whatever a test started.

setup() { load helpers/common; fd_common_setup; }
teardown() { fd_common_teardown; }

# fd-node with a bound on its run time: a node that wrongly starts instead of
# failing must not hang the suite (timeout exits 124, which fails the test).
fd_node_bounded() { timeout -k 2 "$FD_CMD_TIMEOUT" fd-node "$@"; }

## Command line

@test "--help prints the usage on stdout and exits 0" {
	run -0 --separate-stderr fd-node --help
	assert_equal "$stderr" ""
	assert_line --index 0 --regexp '^usage: fd-node '
	assert_output --partial '--listen'
	assert_output --partial '--detach'
	assert_output --partial 'info'
	run -0 --separate-stderr fd-node -h
	assert_line --index 0 --regexp '^usage: fd-node '
}

@test "--version and -V print 'fd-node VERSION'" {
	local version
	version=$(cat "$FD_ROOT/VERSION")
	run -0 --separate-stderr fd-node --version
	assert_equal "$output" "fd-node $version"
	assert_equal "$stderr" ""
	run -0 --separate-stderr fd-node -V
	assert_equal "$output" "fd-node $version"
}

@test "the man page SYNOPSIS names every option and subcommand of the usage" {
	local opt synopsis
	synopsis=$(sed -n '/^\.SH SYNOPSIS/,/^\.SH DESCRIPTION/p' "$FD_ROOT/man/fd-node.1")
	for opt in -N -l -p -j --retry-join -d --advertise --ready-quorum --ready-expect \
		--pid-file --log-file --log-level --log-format --max-body info members leave -n -t -f \
		--key-file --cluster --encrypt-rollout --insecure keys keygen --force; do
		grep -qF -- "${opt//-/\\-}" <<<"$synopsis" ||
			fail "the SYNOPSIS of man/fd-node.1 does not mention $opt"
	done
}

@test "an unknown option: exit 2, what was wrong and the usage on stderr, nothing on stdout" {
	run -2 --separate-stderr fd_node_bounded --bogus --listen 127.0.0.1:0
	assert_equal "$output" ""
	assert_regex "${stderr_lines[0]}" '^fd-node: .*bogus'
	fd_assert_stderr_match '^usage: fd-node '
}

@test "an unexpected argument or unknown subcommand is a usage error" {
	run -2 --separate-stderr fd_node_bounded frobnicate --listen 127.0.0.1:0
	assert_equal "$output" ""
	assert_regex "${stderr_lines[0]}" '^fd-node: .*frobnicate'
	fd_assert_stderr_match '^usage: fd-node '
}

@test "an option without its argument is a usage error" {
	local opt
	for opt in --name --listen --pid-file --log-file --log-level --log-format --max-body; do
		run -2 --separate-stderr fd_node_bounded "$opt"
		assert_equal "$output" ""
		fd_assert_stderr_match '^usage: fd-node '
	done
	run -2 --separate-stderr fd_node_bounded info -n
	fd_assert_stderr_match '^usage: fd-node '
}

@test "a malformed --listen is a usage error (exit 2), named in the message" {
	local bad
	for bad in nope 1.2.3.4:99999 host:abc 127.0.0.1: :4380 127.0.0.1:-1 '' 127.0.0.1:65536 '127.0.0.1:80 x'; do
		run -2 --separate-stderr fd_node_bounded --name t --listen "$bad"
		assert_equal "$output" ""
		[ -z "$bad" ] || assert_regex "${stderr_lines[0]}" "^fd-node: .*'?${bad//./\\.}'?"
		fd_assert_stderr_match '^usage: fd-node '
	done
}

@test "a bad --log-level, --log-format or --max-body is a usage error" {
	run -2 --separate-stderr fd_node_bounded --listen 127.0.0.1:0 --log-level loud
	assert_equal "$output" ""
	assert_regex "${stderr_lines[0]}" "^fd-node: .*loud"
	fd_assert_stderr_match '^usage: fd-node '
	run -2 --separate-stderr fd_node_bounded --listen 127.0.0.1:0 --log-format xml
	assert_regex "${stderr_lines[0]}" "^fd-node: .*xml"
	run -2 --separate-stderr fd_node_bounded --listen 127.0.0.1:0 --max-body lots
	assert_regex "${stderr_lines[0]}" "^fd-node: .*lots"
}

## Start, identity, ports

@test "the identity line: type, name, id (32 hex), addr with the real port, pid" {
	fd_start_node n1
	run -0 cat "${FD_OUT[n1]}"
	assert_equal "${#lines[@]}" 1
	jq -e --arg pid "${FD_CHILD[n1]}" '
		.type == "node" and .name == "n1" and
		(.id | test("^[0-9a-f]{32}$")) and
		(.addr | test("^127\\.0\\.0\\.1:[0-9]+$")) and
		(.addr | ltrimstr("127.0.0.1:") | tonumber) > 0 and
		.pid == ($pid | tonumber)' <<<"${lines[0]}"
	# It is one compact line: no spaces between the tokens.
	refute_output --partial '": '
	refute_output --partial ', "'
	# And it stays the only line on stdout once the node is serving.
	fd_http GET "${FD_ADDR[n1]}" /healthz
	run -0 wc -l <"${FD_OUT[n1]}"
	assert_equal "${output// /}" 1
}

@test "two nodes get different ports and ids" {
	fd_start_node n1
	fd_start_node n2
	assert_not_equal "${FD_ADDR[n1]}" "${FD_ADDR[n2]}"
	assert_not_equal "${FD_ID[n1]}" "${FD_ID[n2]}"
}

@test "the name defaults to the hostname" {
	fd_spawn anon fd-node --listen 127.0.0.1:0
	fd_wait_identity anon
	run -0 jq -r .name "${FD_OUT[anon]}"
	assert_equal "$output" "$(hostname)"
}

@test "a TCP port in use: exit 1, 'unable to listen on' the address" {
	fd_start_node n1
	run -1 --separate-stderr fd_node_bounded --name n2 --listen "${FD_ADDR[n1]}"
	assert_equal "$output" ""
	fd_assert_stderr_line "fd-node: unable to listen on '${FD_ADDR[n1]}': Address already in use"
}

@test "a port whose UDP side is taken: exit 1 as well (TCP and UDP share the number)" {
	fd_hold_port udp
	run -1 --separate-stderr fd_node_bounded --name n2 --listen "127.0.0.1:$FD_HELD_PORT"
	assert_equal "$output" ""
	fd_assert_stderr_line "fd-node: unable to listen on '127.0.0.1:$FD_HELD_PORT': Address already in use"
}

@test "a port whose TCP side is held by another program: exit 1" {
	fd_hold_port tcp
	run -1 --separate-stderr fd_node_bounded --name n2 --listen "127.0.0.1:$FD_HELD_PORT"
	fd_assert_stderr_line "fd-node: unable to listen on '127.0.0.1:$FD_HELD_PORT': Address already in use"
}

## Signals

@test "SIGTERM: exit 0, pid file removed, the port is free again" {
	fd_start_node n1 --pid-file "$FD_TMP/n1.pid"
	fd_wait_until 5s test -s "$FD_TMP/n1.pid"
	assert_equal "$(cat "$FD_TMP/n1.pid")" "${FD_PID[n1]}"
	fd_http GET "${FD_ADDR[n1]}" /healthz # a served connection, as in real life
	fd_stop_node n1 TERM
	assert_equal "${FD_EXIT[n1]}" 0
	assert [ ! -e "$FD_TMP/n1.pid" ]
	fd_start_node n1b --listen "${FD_ADDR[n1]}"
	assert_equal "${FD_ADDR[n1b]}" "${FD_ADDR[n1]}"
}

@test "SIGINT: exit 0 as well" {
	fd_start_node n1 --pid-file "$FD_TMP/n1.pid"
	fd_wait_until 5s test -s "$FD_TMP/n1.pid"
	fd_stop_node n1 INT
	assert_equal "${FD_EXIT[n1]}" 0
	assert [ ! -e "$FD_TMP/n1.pid" ]
}

## --detach

@test "--detach returns promptly with the identity line; the daemon runs on" {
	local t0 t1 pid
	t0=$(_fd_now_ms)
	fd_start_detached d1
	t1=$(_fd_now_ms)
	assert_equal "${FD_EXIT[d1]}" 0
	# The parent exits as soon as the node is ready; 5 s is generous.
	[ $((t1 - t0)) -lt 5000 ] || fail "fd-node --detach took $((t1 - t0)) ms"
	run -0 cat "${FD_OUT[d1]}"
	assert_equal "${#lines[@]}" 1
	jq -e '.type == "node" and .name == "d1" and (.id | test("^[0-9a-f]{32}$"))' <<<"$output"
	pid=${FD_PID[d1]}
	assert _fd_alive "$pid"
	assert_equal "$(cat "$FD_TMP/d1.pid")" "$pid"
	# stdin and stdout on /dev/null; stderr too, without --log-file.
	assert_equal "$(readlink "/proc/$pid/fd/0")" /dev/null
	assert_equal "$(readlink "/proc/$pid/fd/1")" /dev/null
	assert_equal "$(readlink "/proc/$pid/fd/2")" /dev/null
	fd_http GET "${FD_ADDR[d1]}" /healthz
	assert_equal "$HTTP_CODE" 200
}

@test "--detach with --log-file: the daemon logs there; SIGTERM removes the pid file" {
	fd_start_detached d1 --log-file "$FD_TMP/d1.log"
	fd_wait_until 5s grep -q "listening on ${FD_ADDR[d1]}" "$FD_TMP/d1.log"
	assert_equal "$(readlink "/proc/${FD_PID[d1]}/fd/2")" "$FD_TMP/d1.log"
	fd_stop_node d1 TERM
	assert [ ! -e "$FD_TMP/d1.pid" ]
}

@test "--detach on a taken port: the parent exits 1 with the message, no daemon" {
	fd_start_node n1
	run -1 --separate-stderr fd_node_bounded --detach --name d1 --listen "${FD_ADDR[n1]}" \
		--pid-file "$FD_TMP/d1.pid"
	assert_equal "$output" ""
	fd_assert_stderr_line "fd-node: unable to listen on '${FD_ADDR[n1]}': Address already in use"
	assert [ ! -e "$FD_TMP/d1.pid" ]
}

## fd-node info

@test "fd-node info -n ADDR prints the node's /v1/info as one compact line" {
	fd_start_node n1
	run -0 --separate-stderr fd-node info -n "${FD_ADDR[n1]}"
	assert_equal "$stderr" ""
	assert_equal "${#lines[@]}" 1
	refute_output --partial '": '
	jq -e --arg id "${FD_ID[n1]}" --arg addr "${FD_ADDR[n1]}" --arg pid "${FD_PID[n1]}" \
		--arg v "$(cat "$FD_ROOT/VERSION")" '
		.type == "node" and .name == "n1" and .id == $id and .addr == $addr and
		.pid == ($pid | tonumber) and .version == $v and
		(.uptime | type == "number") and .uptime >= 0' <<<"$output"
	run -0 bash -c 'fd-node info -n "$0" | jq -r .name' "${FD_ADDR[n1]}"
	assert_equal "$output" n1
}

@test "fd-node info: --node=ADDR, -t, and \$FD_NODE" {
	fd_start_node n1
	run -0 fd-node info --node="${FD_ADDR[n1]}" --timeout 2s
	assert_equal "$(jq -r .name <<<"$output")" n1
	FD_NODE=${FD_ADDR[n1]} run -0 fd-node info -t 500ms
	assert_equal "$(jq -r .name <<<"$output")" n1
	# -n wins over FD_NODE.
	fd_start_node n2
	FD_NODE=${FD_ADDR[n1]} run -0 fd-node info -n "${FD_ADDR[n2]}"
	assert_equal "$(jq -r .name <<<"$output")" n2
}

@test "fd-node info against a dead address: exit 1 and a clear message" {
	run -1 --separate-stderr fd_node_bounded info -n 127.0.0.1:1 -t 2s
	assert_equal "$output" ""
	assert_regex "$stderr" "^fd-node: unable to reach '127\.0\.0\.1:1': .+"
}

@test "fd-node info honours -t against a node that never answers" {
	local t0 t1
	fd_hold_port tcp # listens, never accepts a request
	t0=$(_fd_now_ms)
	run --separate-stderr fd_node_bounded info -n "127.0.0.1:$FD_HELD_PORT" -t 500ms
	t1=$(_fd_now_ms)
	assert_equal "$output" ""
	# Exit 1 (runtime) or 5 (timeout); never success, never a usage error.
	[[ $status == 1 || $status == 5 ]] || fail "exit status $status"
	assert_regex "$stderr" "^fd-node: .*127\.0\.0\.1:$FD_HELD_PORT"
	[ $((t1 - t0)) -lt 4000 ] || fail "-t 500ms took $((t1 - t0)) ms"
}

@test "fd-node info: a malformed address or a bad timeout is a usage error" {
	run -2 --separate-stderr fd_node_bounded info -n nope
	assert_equal "$output" ""
	fd_assert_stderr_match '^usage: fd-node '
	run -2 --separate-stderr fd_node_bounded info -n 127.0.0.1:1 -t soon
	fd_assert_stderr_match '^usage: fd-node '
}

## HTTP API

@test "GET /healthz and /readyz" {
	fd_start_node n1
	fd_http GET "${FD_ADDR[n1]}" /healthz
	assert_equal "$HTTP_CODE" 200
	assert_equal "$(jq -c . <<<"$HTTP_BODY")" "{\"status\":\"ok\",\"id\":\"${FD_ID[n1]}\",\"addr\":\"${FD_ADDR[n1]}\"}"
	assert_regex "$HTTP_HEADERS" $'(^|\n)content-type: application/json'
	fd_http GET "${FD_ADDR[n1]}" /readyz
	assert_equal "$HTTP_CODE" 200
	jq -e '.ready == true' <<<"$HTTP_BODY"
}

@test "GET /v1/info matches the identity line" {
	fd_start_node n1
	fd_http GET "${FD_ADDR[n1]}" /v1/info
	assert_equal "$HTTP_CODE" 200
	jq -e --slurpfile ident "${FD_OUT[n1]}" '
		. as $i | $ident[0] | to_entries | all(.value == $i[.key])' <<<"$HTTP_BODY"
	jq -e '.version == "'"$(cat "$FD_ROOT/VERSION")"'" and (.uptime | type == "number")' <<<"$HTTP_BODY"
}

@test "an unknown path: 404 with a JSON error" {
	fd_start_node n1
	fd_http GET "${FD_ADDR[n1]}" /nope
	assert_equal "$HTTP_CODE" 404
	fd_assert_json_error
	jq -e '.error == "not found"' <<<"$HTTP_BODY"
	fd_http GET "${FD_ADDR[n1]}" /v1/nope
	assert_equal "$HTTP_CODE" 404
	fd_assert_json_error
}

@test "a known path with the wrong method: 405, an Allow header and a JSON error" {
	fd_start_node n1
	fd_http POST "${FD_ADDR[n1]}" /healthz -d '{}'
	assert_equal "$HTTP_CODE" 405
	fd_assert_json_error
	assert_regex "$HTTP_HEADERS" $'(^|\n)allow: [^\n]*GET'
	fd_http DELETE "${FD_ADDR[n1]}" /v1/info
	assert_equal "$HTTP_CODE" 405
	fd_assert_json_error
	fd_http POST "${FD_ADDR[n1]}" /v1/log-level -d '{"level":"debug"}'
	assert_equal "$HTTP_CODE" 405
	fd_assert_json_error
	assert_regex "$HTTP_HEADERS" $'(^|\n)allow: [^\n]*PUT'
}

@test "PUT /v1/log-level sets the level" {
	fd_start_node n1
	local level
	for level in debug warn error off info; do
		fd_http PUT "${FD_ADDR[n1]}" /v1/log-level -H 'Content-Type: application/json' \
			--data-binary "{\"level\":\"$level\"}"
		assert_equal "$HTTP_CODE" 200
		assert_equal "$(jq -c . <<<"$HTTP_BODY")" "{\"level\":\"$level\"}"
	done
	# The node still serves.
	fd_http GET "${FD_ADDR[n1]}" /healthz
	assert_equal "$HTTP_CODE" 200
}

@test "PUT /v1/log-level with a bad body: 400 with a JSON error" {
	fd_start_node n1
	local body
	for body in '{"level":' 'level=debug' '' '{"level":"loud"}' '{"level":7}' '{}' '[]' '"debug"' \
		$'{"level":"\xc3\x28"}'; do
		fd_http PUT "${FD_ADDR[n1]}" /v1/log-level --data-binary "$body"
		[ "$HTTP_CODE" = 400 ] || fail "body '$body': HTTP $HTTP_CODE, expected 400"
		fd_assert_json_error
	done
}

@test "a body larger than --max-body: 413 with a JSON error" {
	fd_start_node n1 --max-body 64KiB
	# Just under the limit is fine: a valid body padded with whitespace.
	{
		printf '{"level":"debug"'
		head -c 60000 /dev/zero | tr '\0' ' '
		printf '}'
	} >"$FD_TMP/small"
	fd_http PUT "${FD_ADDR[n1]}" /v1/log-level --data-binary @"$FD_TMP/small"
	assert_equal "$HTTP_CODE" 200
	head -c $((64 * 1024 + 1)) /dev/zero | tr '\0' x >"$FD_TMP/big"
	fd_http PUT "${FD_ADDR[n1]}" /v1/log-level -H 'Expect: 100-continue' \
		--data-binary @"$FD_TMP/big"
	assert_equal "$HTTP_CODE" 413
	fd_assert_json_error
	fd_http GET "${FD_ADDR[n1]}" /healthz
	assert_equal "$HTTP_CODE" 200
}

@test "the default body limit is 1 MiB" {
	fd_start_node n1
	head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' x >"$FD_TMP/big"
	fd_http PUT "${FD_ADDR[n1]}" /v1/log-level -H 'Expect: 100-continue' \
		--data-binary @"$FD_TMP/big"
	assert_equal "$HTTP_CODE" 413
	fd_assert_json_error
}

## Logging

@test "logs go to stderr as text by default: 'listening on ADDR' at info" {
	fd_start_node n1
	fd_wait_until 5s grep -q "listening on ${FD_ADDR[n1]}" "${FD_ERR[n1]}"
	run -0 grep "listening on ${FD_ADDR[n1]}" "${FD_ERR[n1]}"
	assert_regex "$output" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z fd-node info: '
}

@test "--log-format json: every stderr line is a JSON log record" {
	fd_start_node n1 --log-format json
	fd_wait_until 5s grep -q "listening on ${FD_ADDR[n1]}" "${FD_ERR[n1]}"
	fd_assert_jsonl "${FD_ERR[n1]}"
	jq -se --arg addr "${FD_ADDR[n1]}" '
		any(.[]; .level == "info" and .prog == "fd-node" and
			(.msg | contains("listening on " + $addr)) and
			(.ts | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$")))' \
		"${FD_ERR[n1]}"
}

@test "--log-level warn keeps info lines out" {
	fd_start_node n1 --log-level warn
	fd_http GET "${FD_ADDR[n1]}" /healthz # the node has done its start-up work
	run -0 cat "${FD_ERR[n1]}"
	refute_output --partial ' info: '
	refute_output --partial 'listening on'
}

@test "--log-file appends the logs to a file, not stderr" {
	echo "previous line" >"$FD_TMP/n1.log"
	fd_start_node n1 --log-file "$FD_TMP/n1.log"
	fd_wait_until 5s grep -q "listening on ${FD_ADDR[n1]}" "$FD_TMP/n1.log"
	assert_equal "$(head -n 1 "$FD_TMP/n1.log")" "previous line"
	run -0 cat "${FD_ERR[n1]}"
	assert_output ""
}

## Completions (no binary needed)

# complete_words WORD...: what the bash completion offers for the last word.
complete_words()
{
	# shellcheck source=/dev/null
	source "$FD_ROOT/completions/bash/fd-node"
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	_fd_node fd-node "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	printf '%s\n' "${COMPREPLY[@]}"
}

@test "bash completion: options, subcommands, log levels and formats" {
	run -0 complete_words fd-node --log-l
	assert_output '--log-level'
	run -0 complete_words fd-node --log-level ''
	assert_equal "$(sort <<<"$output" | tr '\n' ' ')" 'debug error info off warn '
	run -0 complete_words fd-node --log-format ''
	assert_equal "$(sort <<<"$output" | tr '\n' ' ')" 'json text '
	run -0 complete_words fd-node ''
	assert_line info
	run -0 complete_words fd-node --
	assert_line --detach
	assert_line --listen
	assert_line --pid-file
	assert_line --version
	run -0 complete_words fd-node info -
	assert_line --node
	assert_line --timeout
	refute_line --detach
	touch "$FD_TMP/some.pid"
	run -0 complete_words fd-node --pid-file "$FD_TMP/some"
	assert_line "$FD_TMP/some.pid"
}

@test "bash completion: membership options, profiles, members and leave" {
	run -0 complete_words fd-node --pro
	assert_output '--profile'
	run -0 complete_words fd-node -p ''
	assert_equal "$(sort <<<"$output" | tr '\n' ' ')" 'lan local wan '
	run -0 complete_words fd-node --profile=w
	assert_output 'wan'
	run -0 complete_words fd-node --
	assert_line --join
	assert_line --retry-join
	assert_line --discover
	assert_line --advertise
	assert_line --ready-quorum
	assert_line --ready-expect
	run -0 complete_words fd-node --discover ''
	assert_equal "$(sort <<<"$output" | tr '\n' ' ')" 'dns dns-srv exec file kubernetes static '
	# After --discover SPEC the next word is still an option or a subcommand.
	run -0 complete_words fd-node --discover 'static addrs=a:1' m
	assert_output members
	run -0 complete_words fd-node ''
	assert_equal "$(sort <<<"$output" | tr '\n' ' ')" 'info keygen keys leave members '
	# After --join ADDR the next word is still an option or a subcommand.
	run -0 complete_words fd-node -j 127.0.0.1:4380 m
	assert_output members
	run -0 complete_words fd-node members -
	assert_line --format
	assert_line --node
	refute_line --join
	run -0 complete_words fd-node members -f ''
	assert_equal "$(sort <<<"$output" | tr '\n' ' ')" 'json table '
	run -0 complete_words fd-node leave --
	assert_line --timeout
}

@test "bash completion: security options, keys actions, keygen files" {
	run -0 complete_words fd-node --key
	assert_output '--key-file'
	run -0 complete_words fd-node --
	assert_line --cluster
	assert_line --encrypt-rollout
	assert_line --insecure
	touch "$FD_TMP/cluster.key"
	run -0 complete_words fd-node --key-file "$FD_TMP/clu"
	assert_output "$FD_TMP/cluster.key"
	run -0 complete_words fd-node keys ''
	assert_equal "$(sort <<<"$output" | tr '\n' ' ')" 'install list remove use '
	run -0 complete_words fd-node keys -n 127.0.0.1:4380 u
	assert_output use
	run -0 complete_words fd-node keys use ''
	assert_output ''
	run -0 complete_words fd-node keys -
	assert_line --node
	assert_line --timeout
	run -0 complete_words fd-node keygen --
	assert_line --force
	run -0 complete_words fd-node keygen "$FD_TMP/clu"
	assert_output "$FD_TMP/cluster.key"
}

@test "zsh completion: a #compdef file that zsh can parse" {
	run -0 head -n 1 "$FD_ROOT/completions/zsh/_fd-node"
	assert_output '#compdef fd-node'
	command -v zsh >/dev/null || skip "zsh is not installed"
	run -0 zsh -n "$FD_ROOT/completions/zsh/_fd-node"
}
