#!/usr/bin/env bats
# shellcheck disable=SC2154  # $stderr comes from run
# The node's limits that other files do not test already (fd(7) LIMITS
# lists them all): connections per client and in total, JSON depth in a
# request body, patterns per subscriber, addresses per join, lines per
# registry batch.

setup() {
	load helpers/common
	fd_common_setup
	HELD=()
}
teardown() {
	local fd
	for fd in "${HELD[@]}"; do exec {fd}>&-; done
	fd_common_teardown
}

# hold N: opens N idle TCP connections to node n1 (closed in teardown), and
# waits until the node has accepted them (a served request proves it).
hold() {
	local i fd
	for ((i = 0; i < $1; i++)); do
		exec {fd}<>"/dev/tcp/127.0.0.1/${FD_PORT[n1]}"
		HELD+=("$fd")
	done
}

# served: a request gets an HTTP answer (a refused connection gets none).
served() {
	curl -s --noproxy '*' --max-time 5 -o /dev/null -w '%{http_code}' \
		"http://${FD_ADDR[n1]}/healthz" | grep -q 200
}

@test "--max-client-conns: one address may hold that many connections" {
	fd_start_node n1 --max-client-conns 4
	hold 4
	fd_wait_until 10s bash -c "! curl -s --noproxy '*' --max-time 2 http://${FD_ADDR[n1]}/healthz"
	# one let go: served again
	exec {HELD[0]}>&-
	HELD=("${HELD[@]:1}")
	fd_wait_until 10s served
	run -2 --separate-stderr fd-node --max-client-conns -1
	fd_assert_stderr_match "invalid --max-client-conns '-1'"
}

@test "--max-conns: the node holds at most that many connections" {
	fd_start_node n1 --max-conns 16 --max-client-conns 0
	hold 16
	fd_wait_until 10s bash -c "! curl -s --noproxy '*' --max-time 2 http://${FD_ADDR[n1]}/healthz"
	exec {HELD[0]}>&-
	HELD=("${HELD[@]:1}")
	fd_wait_until 10s served
	run -2 --separate-stderr fd-node --max-conns 15
	fd_assert_stderr_match "invalid --max-conns '15' \(16 to 1000000\)"
}

@test "JSON nesting in a request body is limited to a depth of 64" {
	fd_start_node n1
	local open close
	open=$(printf '%63s' '' | tr ' ' '[')
	close=$(printf '%63s' '' | tr ' ' ']')
	fd_http PUT "${FD_ADDR[n1]}" '/v1/registry?name=deep' -d "{\"value\":$open$close}"
	assert_equal "$HTTP_CODE" 201
	fd_http PUT "${FD_ADDR[n1]}" '/v1/registry?name=deeper' -d "{\"value\":[$open$close]}"
	assert_equal "$HTTP_CODE" 400
	fd_assert_json_error
	jq -e '.error | startswith("invalid request body")' <<<"$HTTP_BODY"
}

@test "a subscriber gives at most 64 patterns; a join at most 256 addresses" {
	fd_start_node n1
	local pats
	pats=$(seq 1 65 | sed 's/^/p./' | paste -sd+)
	fd_http GET "${FD_ADDR[n1]}" "/v1/subscribe?pattern=$pats"
	assert_equal "$HTTP_CODE" 400
	jq -e '.error == "too many patterns (at most 64)"' <<<"$HTTP_BODY"
	run -2 --separate-stderr timeout 20 fd-sub -n "${FD_ADDR[n1]}" -t 5s $(seq 1 65 | sed 's/^/p./')
	fd_assert_stderr_match 'too many patterns \(at most 64\)'
	fd_http POST "${FD_ADDR[n1]}" /v1/join \
		-d "{\"addrs\":$(seq 1 257 | sed 's/^/"127.0.0.1:/; s/$/"/' | paste -sd, | sed 's/^/[/; s/$/]/')}"
	assert_equal "$HTTP_CODE" 400
	jq -e '.error | contains("(1 to 256)")' <<<"$HTTP_BODY"
}

@test "a registry batch holds at most 100000 lines" {
	fd_start_node n1
	seq 1 100001 | sed 's/^/n./' >"$FD_TMP/names"
	run -0 curl -sS --noproxy '*' --max-time 60 -o "$FD_TMP/answer" -w '%{http_code}' \
		--data-binary @"$FD_TMP/names" "http://${FD_ADDR[n1]}/v1/registry/lookup"
	assert_output 200
	assert_equal "$(wc -l <"$FD_TMP/answer")" 100001
	run -0 tail -n 1 "$FD_TMP/answer"
	jq -e '.type == "error" and .line == 100001 and .status == 413 and .error == "too many lines in one batch"' <<<"$output"
}
