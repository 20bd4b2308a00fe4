#!/usr/bin/env bats
# shellcheck disable=SC2154  # $stderr comes from run
# Client authorization: bearer tokens with scopes from --acl-file (reread
# on SIGHUP), --default-scope for clients on the node's host, 401 and 403
# with JSON bodies and exit 1 in every client; the audit log of admin
# actions.

setup() {
	load helpers/common
	load helpers/pubsub
	fd_common_setup
	CI=ci-secret-0123456789abcdef
	OPS=ops-secret-0123456789abcdef
	RO=ro-secret-0123456789abcdef
	ACL=$FD_TMP/acl.json
	NETNS=()
	write_acl "$ACL"
}
teardown() {
	fd_common_teardown
	for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}

write_acl() {
	cat >"$1.tmp" <<EOF
{"tokens": [
  {"id": "ci", "token": "$CI", "scopes": ["publish:orders.", "subscribe:orders.", "read"]},
  {"id": "ops", "token": "$OPS", "scopes": ["admin", "read", "register"]},
  {"id": "ro", "token_sha256": "$(printf %s "$RO" | sha256sum | cut -d' ' -f1)", "scopes": ["read"]}
]}
EOF
	chmod 600 "$1.tmp"
	mv "$1.tmp" "$1"
}

@test "a token scoped to publish:orders. cannot publish to billing.x nor register names" {
	fd_start_node n1 --acl-file "$ACL" --default-scope none
	run -1 --separate-stderr fd-pub -n "${FD_ADDR[n1]}" --token "$CI" billing.x 1
	fd_assert_stderr_line 'fd-pub: publish to billing.x: forbidden: token "ci" lacks publish:billing.x'
	# the same from stdin lines: what came before it went out, nothing after
	fd_spawn sub fd-sub -n "${FD_ADDR[n1]}" --token "$CI" -t 30s 'orders.>'
	ps_wait_subs_token n1 1
	run -1 --separate-stderr fd-pub -n "${FD_ADDR[n1]}" --token "$CI" <<-EOF
		{"topic":"orders.a","data":1}
		{"topic":"billing.x","data":2}
		{"topic":"orders.b","data":3}
	EOF
	fd_assert_stderr_line 'fd-pub: publish to billing.x: forbidden: token "ci" lacks publish:billing.x'
	fd_assert_stderr_line 'fd-pub: 1 messages before it were published'
	FD_TOKEN=$CI run -1 --separate-stderr fd-registry -n "${FD_ADDR[n1]}" register billing.x 1
	fd_assert_stderr_line "fd-registry: unable to register 'billing.x': forbidden: token \"ci\" lacks register:billing.x"
	FD_TOKEN=$CI run -1 --separate-stderr fd-registry -n "${FD_ADDR[n1]}" register orders.x 1
	printf '{"name":"a"}\n{"name":"b"}\n' >"$FD_TMP/names"
	FD_TOKEN=$CI run -1 --separate-stderr fd-registry -n "${FD_ADDR[n1]}" register --batch <"$FD_TMP/names"
	fd_assert_stderr_line 'fd-registry: stdin: line 2: forbidden: token "ci" lacks register:b'
	# and publishing inside its scope works, to a subscriber inside its scope
	run -0 fd-pub -n "${FD_ADDR[n1]}" --token "$CI" orders.x '"ok"'
	fd_wait_until 10s grep -q '"orders.x"' "${FD_OUT[sub]}"
	run -0 jq -sc 'map(.topic)' "${FD_OUT[sub]}"
	assert_output '["orders.a","orders.x"]'
	# the HTTP answer itself: 403 with a JSON body
	fd_http POST "${FD_ADDR[n1]}" /v1/publish/billing.x -H "Authorization: Bearer $CI" -d 1
	assert_equal "$HTTP_CODE" 403
	fd_assert_json_error
	jq -e '.error == "forbidden: token \"ci\" lacks publish:billing.x"' <<<"$HTTP_BODY"
}

# ps_wait_subs with a token that may read
ps_wait_subs_token() {
	fd_wait_until 10s bash -c "fd-node info -n ${FD_ADDR[$1]} --token $CI | jq -e '.pubsub.subscribers == $2'"
}

@test "subscribe scopes: a pattern must stay under the prefix" {
	fd_start_node n1 --acl-file "$ACL" --default-scope none
	run -1 --separate-stderr fd-sub -n "${FD_ADDR[n1]}" --token "$CI" -t 5s '>'
	fd_assert_stderr_match 'forbidden: token "ci" lacks subscribe:>'
	run -1 --separate-stderr fd-sub -n "${FD_ADDR[n1]}" --token "$CI" -t 5s '*.x'
	fd_assert_stderr_match 'forbidden: token "ci" lacks subscribe:\*\.x'
	run -1 --separate-stderr fd-sub -n "${FD_ADDR[n1]}" --token "$RO" -t 5s 'orders.x'
	fd_assert_stderr_match 'forbidden: token "ro" lacks subscribe:orders.x'
	run -0 --separate-stderr fd-sub -n "${FD_ADDR[n1]}" --token "$CI" -t 500ms 'orders.*' 'orders.eu.>'
}

@test "a missing or unknown token: 401 and exit 1 in every client" {
	fd_start_node n1 --acl-file "$ACL" --default-scope none
	for tok in "" bogus-0123456789abcdef; do
		export FD_TOKEN=$tok
		run -1 --separate-stderr fd-node info -n "${FD_ADDR[n1]}"
		fd_assert_stderr_match '^fd-node: unauthorized: '
		run -1 --separate-stderr fd-pub -n "${FD_ADDR[n1]}" orders.x 1
		fd_assert_stderr_match '^fd-pub: publish: unauthorized: '
		run -1 --separate-stderr fd-sub -n "${FD_ADDR[n1]}" -t 5s orders.x
		fd_assert_stderr_match '^fd-sub: .*unauthorized: '
		run -1 --separate-stderr fd-registry -n "${FD_ADDR[n1]}" lookup x
		fd_assert_stderr_match 'unauthorized: '
		run -1 --separate-stderr fd-join -n "${FD_ADDR[n1]}" 127.0.0.1:1
		fd_assert_stderr_match 'unauthorized: '
		run -1 --separate-stderr fd-partition -n "${FD_ADDR[n1]}" status
		fd_assert_stderr_match 'unauthorized: '
	done
	unset FD_TOKEN
	fd_http GET "${FD_ADDR[n1]}" /v1/info -H "Authorization: Bearer bogus-0123456789abcdef"
	assert_equal "$HTTP_CODE" 401
	jq -e '.error == "unauthorized: unknown token"' <<<"$HTTP_BODY"
	assert_regex "$HTTP_HEADERS" $'(^|\n)www-authenticate: Bearer'
	fd_http GET "${FD_ADDR[n1]}" /v1/info -H "Authorization: Basic eDp5"
	assert_equal "$HTTP_CODE" 401
	fd_http GET "${FD_ADDR[n1]}" /v1/info
	assert_equal "$HTTP_CODE" 401
	jq -e '.error == "unauthorized: a token is needed (--default-scope none)"' <<<"$HTTP_BODY"
	# health probes need nothing
	fd_http GET "${FD_ADDR[n1]}" /healthz
	assert_equal "$HTTP_CODE" 200
	# a token that may read reads; the sha256 form works
	run -0 fd-node info -n "${FD_ADDR[n1]}" --token "$RO"
	run -1 --separate-stderr fd-node leave -n "${FD_ADDR[n1]}" --token "$RO"
	fd_assert_stderr_line 'fd-node: forbidden: token "ro" lacks admin'
	run -2 --separate-stderr fd-node info -n "${FD_ADDR[n1]}" --token 'two words'
	fd_assert_stderr_match 'invalid token'
}

@test "--default-scope: everything on this host by default, what it says otherwise" {
	fd_start_node all
	run -0 fd-pub -n "${FD_ADDR[all]}" any.topic 1
	run -0 fd-registry -n "${FD_ADDR[all]}" register any.name 1
	fd_http PUT "${FD_ADDR[all]}" /v1/log-level -d '{"level":"info"}'
	assert_equal "$HTTP_CODE" 200
	fd_start_node ro --default-scope read,publish:logs.
	run -0 fd-node info -n "${FD_ADDR[ro]}"
	run -0 fd-pub -n "${FD_ADDR[ro]}" logs.x 1
	run -1 --separate-stderr fd-pub -n "${FD_ADDR[ro]}" orders.x 1
	fd_assert_stderr_line 'fd-pub: publish to orders.x: forbidden: clients without a token (--default-scope read,publish:logs.) lack publish:orders.x'
	run -1 --separate-stderr fd-node leave -n "${FD_ADDR[ro]}"
	fd_assert_stderr_line 'fd-node: forbidden: clients without a token (--default-scope read,publish:logs.) lack admin'
	fd_start_node none --default-scope none
	run -1 --separate-stderr fd-node info -n "${FD_ADDR[none]}"
	fd_assert_stderr_line 'fd-node: unauthorized: a token is needed (--default-scope none)'
	# without an ACL file no token is known
	run -1 --separate-stderr fd-node info -n "${FD_ADDR[none]}" --token "$CI"
	fd_assert_stderr_line 'fd-node: unauthorized: unknown token (this node has no --acl-file)'
	run -2 --separate-stderr fd-node --default-scope 'read,bogus'
	fd_assert_stderr_match "invalid --default-scope 'read,bogus': unknown scope 'bogus'"
}

@test "SIGHUP rereads the ACL file; a bad one keeps the old" {
	fd_start_node n1 --acl-file "$ACL" --default-scope none
	NEW=new-secret-0123456789abcdef
	run -1 fd-node info -n "${FD_ADDR[n1]}" --token "$NEW"
	sed -i "s/\"id\": \"ro\"/\"id\": \"new\", \"token\": \"$NEW\", \"scopes\": [\"read\"]}, {\"id\": \"ro\"/" "$ACL"
	jq -e '.tokens | length == 4' "$ACL"
	kill -HUP "${FD_PID[n1]}"
	fd_wait_until 10s fd-node info -n "${FD_ADDR[n1]}" --token "$NEW"
	fd_wait_until 5s grep -q "ACL '$ACL' reloaded: 4 tokens" "${FD_ERR[n1]}"
	# a broken file: logged, and the old ACL stays in force
	echo '{"tokens": [' >"$ACL"
	kill -HUP "${FD_PID[n1]}"
	fd_wait_until 10s grep -q "ACL not reloaded, the old one stays: '$ACL': invalid JSON" "${FD_ERR[n1]}"
	run -0 fd-node info -n "${FD_ADDR[n1]}" --token "$NEW"
	run -0 fd-node info -n "${FD_ADDR[n1]}" --token "$CI"
	# a token removed by a reload is refused from then on
	write_acl "$ACL"
	kill -HUP "${FD_PID[n1]}"
	fd_wait_until 10s bash -c "! fd-node info -n ${FD_ADDR[n1]} --token $NEW"
	run -1 --separate-stderr fd-node info -n "${FD_ADDR[n1]}" --token "$NEW"
	fd_assert_stderr_line 'fd-node: unauthorized: unknown token'
}

@test "a bad ACL file at start: exit 2 with the reason" {
	run -2 --separate-stderr fd-node --acl-file "$FD_TMP/nope.json"
	fd_assert_stderr_match "^fd-node: invalid --acl-file: unable to open '$FD_TMP/nope.json': No such file"
	echo '{"tokens": [{"id": "x", "token": "short", "scopes": []}]}' >"$FD_TMP/bad.json"
	run -2 --separate-stderr fd-node --acl-file "$FD_TMP/bad.json"
	fd_assert_stderr_match "'$FD_TMP/bad.json': token 1 \(\"x\"\): \"token\" must be 16 to 1024 visible ASCII characters"
	sed 's/"publish:orders."/"pubish:orders."/' "$ACL" >"$FD_TMP/typo.json"
	run -2 --separate-stderr fd-node --acl-file "$FD_TMP/typo.json"
	fd_assert_stderr_match "token 1 \(\"ci\"\): unknown scope 'pubish:orders.'"
	chmod 666 "$ACL"
	run -2 --separate-stderr fd-node --acl-file "$ACL"
	fd_assert_stderr_match "is writable by group or others \(mode 666\)"
	# with --detach the parent says it too
	chmod 600 "$ACL"
	run -2 --separate-stderr fd-node --detach --acl-file "$FD_TMP/bad.json"
	fd_assert_stderr_match "invalid --acl-file"
}

@test "the audit log: one JSON line per admin action, who, what, when, result" {
	LOG=$FD_TMP/audit.log
	fd_start_node n1 --acl-file "$ACL" --audit-log "$LOG"
	fd_http PUT "${FD_ADDR[n1]}" /v1/faults -H "Authorization: Bearer $OPS" \
		-d '{"tag":"t","rules":[{"peer":"127.0.0.1:9","action":"drop"}]}'
	assert_equal "$HTTP_CODE" 200
	fd_http PUT "${FD_ADDR[n1]}" /v1/faults -H "Authorization: Bearer $CI" -d '{"tag":"t","rules":[]}'
	assert_equal "$HTTP_CODE" 403
	fd_http DELETE "${FD_ADDR[n1]}" '/v1/faults?tag=t' # local, default scope all
	assert_equal "$HTTP_CODE" 200
	FD_TOKEN=$OPS run -0 fd-registry -n "${FD_ADDR[n1]}" register x 1
	FD_TOKEN=$OPS run -0 fd-registry -n "${FD_ADDR[n1]}" unregister --force x
	kill -HUP "${FD_PID[n1]}"
	fd_wait_until 10s grep -q 'acl reload' "$LOG"
	run -0 fd-node leave -n "${FD_ADDR[n1]}" --token "$OPS"
	fd_wait_until 10s _fd_gone "${FD_PID[n1]}"
	fd_assert_jsonl "$LOG"
	run -0 jq -c '[.who, .action, .status, .result]' "$LOG"
	assert_output - <<-'EOF'
		["ops","PUT /v1/faults",200,"ok"]
		["ci","PUT /v1/faults",403,"denied"]
		["local","DELETE /v1/faults",200,"ok"]
		["ops","DELETE /v1/registry",200,"ok"]
		["SIGHUP","acl reload",200,"ok"]
		["ops","POST /v1/leave",200,"ok"]
	EOF
	# every line has its time, the client's address and this node
	run -0 jq -se 'all(.ts | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{6}Z$"))' "$LOG"
	run -0 jq -se 'all(.type == "audit" and .node == "n1")' "$LOG"
	run -0 jq -se '.[0].detail.body.tag == "t" and .[2].detail.args.tag == "t" and .[3].detail.args.force == "1"' "$LOG"
	run -0 jq -se '[.[] | select(.who != "SIGHUP") | .peer | test("^127\\.0\\.0\\.1:[0-9]+$")] | all' "$LOG"
	# appended, never rewritten: a second node life adds to it
	fd_start_node n2 --audit-log "$LOG"
	fd-node leave -n "${FD_ADDR[n2]}" >/dev/null
	fd_wait_until 10s _fd_gone "${FD_PID[n2]}"
	assert_equal "$(wc -l <"$LOG")" 7
}

@test "an audit log that cannot be written: exit 1 at start" {
	run -1 --separate-stderr fd-node --audit-log "$FD_TMP/no/such/dir/audit.log"
	fd_assert_stderr_line "fd-node: unable to open the audit log '$FD_TMP/no/such/dir/audit.log': No such file or directory"
}

@test "clients on other hosts need a token (network namespaces)" {
	command -v ip >/dev/null || skip "no ip command"
	NS1=fdacl1.$$
	NS2=fdacl2.$$
	ip netns add "$NS1" || skip "ip netns unavailable"
	NETNS+=("$NS1")
	ip netns add "$NS2"
	NETNS+=("$NS2")
	ip link add "fda1.$$" netns "$NS1" type veth peer name "fda2.$$" netns "$NS2"
	ip -n "$NS1" addr add 10.212.7.1/24 dev "fda1.$$"
	ip -n "$NS2" addr add 10.212.7.2/24 dev "fda2.$$"
	ip -n "$NS1" link set "fda1.$$" up
	ip -n "$NS2" link set "fda2.$$" up
	ip -n "$NS1" link set lo up
	ip -n "$NS2" link set lo up
	fd_spawn n1 ip netns exec "$NS1" fd-node --name n1 --listen 10.212.7.1:0 --insecure --acl-file "$ACL"
	fd_wait_identity n1
	# on the node's host, through its own address: local, no token needed
	run -0 ip netns exec "$NS1" fd-node info -n "${FD_ADDR[n1]}"
	# from another host: 401 without a token, served with one
	run -1 --separate-stderr ip netns exec "$NS2" fd-node info -n "${FD_ADDR[n1]}"
	fd_assert_stderr_line 'fd-node: unauthorized: a token is needed from other hosts (--token or FD_TOKEN)'
	run -0 ip netns exec "$NS2" fd-node info -n "${FD_ADDR[n1]}" --token "$RO"
	fd_stop_node n1
}
