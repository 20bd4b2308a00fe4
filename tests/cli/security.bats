#!/usr/bin/env bats
# shellcheck disable=SC2016,SC2154  # jq and bash -c scripts in single quotes; $stderr comes from run
# The cluster key across real fd-node processes on 127.0.0.1: key files and
# keygen, secure defaults, nodes with and without the key, forged, unsigned
# and replayed node-to-node requests, captured and replayed datagrams, key
# rotation under a steady pub/sub stream, plain -> encrypted rollout.

setup() {
	load helpers/common
	load helpers/pubsub
	fd_common_setup
}
teardown() {
	fd_common_teardown
	local ns
	for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}

declare -ga NETNS=()

alive() { fd-node members -n "${FD_ADDR[$1]}" | jq -s -e "[.[] | select(.state == \"alive\")] | length == $2" >/dev/null; }
# auth NODE JQ: JQ applied to NODE's /v1/info .auth
auth() { fd-node info -n "${FD_ADDR[$1]}" | jq -r ".auth | $2"; }
auth_true() { fd-node info -n "${FD_ADDR[$1]}" | jq -e ".auth | $2" >/dev/null; }
# no_failures NODE...: no member was ever seen failed by any NODE
no_failures() {
	local n
	for n in "$@"; do
		fd-node members -n "${FD_ADDR[$n]}" | jq -s -e 'all(.failures == 0)' >/dev/null || return 1
	done
}
# stop_clean NAME...: SIGTERM, and a clean exit (0: the sanitizers found
# no leak or error either)
stop_clean() {
	local n
	for n in "$@"; do
		fd_stop_node "$n" TERM 20s
		[ "${FD_EXIT[$n]}" = 0 ] || fail "$n exited ${FD_EXIT[$n]}: $(tail -5 "${FD_ERR[$n]}")"
	done
}
# got_more NAME N: NAME's output holds more than N messages
got_more() { [ "$(ps_lines "${FD_OUT[$1]}")" -gt "$2" ]; }
kid() { (printf 'fd-key-id' && base64 -d <"$1") | sha256sum | cut -c1-8; }

# start KEYFILE FIRST [NAME...]: a cluster on one key file each, all alive.
start() {
	local key=$1 first=$2 n
	shift 2
	cp "$key" "$FD_TMP/$first.key"
	fd_start_node "$first" --profile local --key-file "$FD_TMP/$first.key"
	for n in "$@"; do
		cp "$key" "$FD_TMP/$n.key"
		fd_start_node "$n" --profile local --key-file "$FD_TMP/$n.key" --join "${FD_ADDR[$first]}"
	done
	for n in "$first" "$@"; do fd_wait_until 20s alive "$n" $(($# + 1)); done
}

# sign KEYFILE METHOD TARGET BODY: an X-FD-Auth value computed with openssl
# from fd(7)'s description (so the format is checked from outside).
sign() {
	local keyhex skey ts nonce len mac
	keyhex=$(base64 -d <"$1" | od -An -tx1 -v | tr -d ' \n')
	skey=$(printf 'fd-sign-v1' | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$keyhex" -r | cut -d' ' -f1)
	ts=$(($(_fd_now_ms)))
	nonce=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
	len=$(printf '%s' "$4" | wc -c)
	mac=$(printf 'fd-http-v2\n%s\n%s\nfd\n%s\n%s\n%s\n%s' "$2" "$3" "$ts" "$nonce" "$len" "$4" |
		openssl dgst -sha256 -mac HMAC -macopt "hexkey:$skey" -r | cut -d' ' -f1)
	echo "v2 kid=$(kid "$1") ts=$ts nonce=$nonce body=$len mac=$mac"
}

@test "keygen: a 0600 key file; an existing one is kept unless --force; stdout without a file" {
	run -0 fd-node keygen "$FD_TMP/k"
	assert_output ""
	run -0 stat -c %a "$FD_TMP/k"
	assert_output 600
	run -0 cat "$FD_TMP/k"
	assert_output --regexp '^[A-Za-z0-9+/]{43}=$'
	local first=$output
	run -4 --separate-stderr fd-node keygen "$FD_TMP/k"
	assert_equal "${stderr_lines[0]}" "fd-node: '$FD_TMP/k' exists already (--force replaces it)"
	run -0 cat "$FD_TMP/k"
	assert_output "$first"
	umask 022
	run -0 fd-node keygen --force "$FD_TMP/k"
	run -0 stat -c %a "$FD_TMP/k"
	assert_output 600
	run -0 cat "$FD_TMP/k"
	refute_output "$first"
	run -0 fd-node keygen
	assert_output --regexp '^[A-Za-z0-9+/]{43}=$'
	run -1 --separate-stderr fd-node keygen "$FD_TMP/no/such/dir/k"
	fd_assert_stderr_match "^fd-node: unable to write '.*': No such file or directory$"
	run -2 --separate-stderr fd-node keygen a b
}

@test "key files: group/other permissions or bad contents are refused (exit 2), a missing one is exit 1" {
	fd-node keygen "$FD_TMP/k"
	chmod 640 "$FD_TMP/k"
	run -2 --separate-stderr fd-node --name t --listen 127.0.0.1:0 --key-file "$FD_TMP/k"
	assert_equal "${stderr_lines[0]}" "fd-node: key file '$FD_TMP/k' is accessible to group or others (mode 0640): chmod 600 it"
	chmod 604 "$FD_TMP/k"
	run -2 --separate-stderr env FD_KEY_FILE="$FD_TMP/k" fd-node --name t --listen 127.0.0.1:0
	fd_assert_stderr_match "mode 0604"
	printf '# keys\n%s\nnot-a-key\n' "$(fd-node keygen)" >"$FD_TMP/bad"
	chmod 600 "$FD_TMP/bad"
	run -2 --separate-stderr fd-node --name t --listen 127.0.0.1:0 --key-file "$FD_TMP/bad"
	assert_equal "${stderr_lines[0]}" "fd-node: key file '$FD_TMP/bad': line 3: not a key (expected 44 base64 characters, as fd-node keygen writes)"
	: >"$FD_TMP/empty"
	chmod 600 "$FD_TMP/empty"
	run -2 --separate-stderr fd-node --name t --listen 127.0.0.1:0 --key-file "$FD_TMP/empty"
	assert_equal "${stderr_lines[0]}" "fd-node: key file '$FD_TMP/empty': no key in the file"
	run -1 --separate-stderr fd-node --name t --listen 127.0.0.1:0 --key-file "$FD_TMP/none"
	assert_equal "${stderr_lines[0]}" "fd-node: unable to open key file '$FD_TMP/none': No such file or directory"
	run -2 --separate-stderr fd-node --name t --listen 127.0.0.1:0 --encrypt-rollout
	assert_equal "${stderr_lines[0]}" "fd-node: --encrypt-rollout needs --key-file"
	run -2 --separate-stderr fd-node --name t --listen 127.0.0.1:0 --cluster 'a b'
	fd_assert_stderr_match "^fd-node: invalid --cluster 'a b'"
}

@test "secure defaults: a non-loopback --listen or --advertise without a key is refused before binding (exit 2)" {
	# 0.0.0.0 would listen on every interface: only the refusal is tested
	run -2 --separate-stderr timeout 10 fd-node --name t --listen 0.0.0.0:0
	assert_equal "${stderr_lines[0]}" "fd-node: refusing to listen on '0.0.0.0:0' without a cluster key: node-to-node traffic would be plaintext and unauthenticated (give --key-file FILE, made by 'fd-node keygen FILE', or --insecure)"
	assert_output ""
	run -2 --separate-stderr timeout 10 fd-node --name t --listen '[::]:0' --advertise '[::1]:4380'
	fd_assert_stderr_match "^fd-node: refusing to listen on '\[::\]:0' without a cluster key"
	run -2 --separate-stderr timeout 10 fd-node --name t --listen 127.0.0.1:0 --advertise 192.0.2.7:4380
	fd_assert_stderr_match "^fd-node: refusing to advertise '192.0.2.7:4380' without a cluster key: .*--key-file.*--insecure"
	# --insecure lifts it; so does a key (loopback bind, nobody sends there)
	fd_start_node i1 --advertise 192.0.2.7:4380 --insecure
	assert_equal "${FD_ADDR[i1]}" 192.0.2.7:4380
	fd-node keygen "$FD_TMP/k"
	fd_start_node i2 --advertise 192.0.2.8:4380 --key-file "$FD_TMP/k"
	assert_equal "${FD_ADDR[i2]}" 192.0.2.8:4380
	# loopback without a key stays the default
	fd_start_node i3
	run -0 jq -e '.auth.enabled == false' < <(fd-node info -n "${FD_ADDR[i3]}")
}

@test "two nodes with the same key form a cluster: sealed datagrams, signed requests, registry and pub/sub across" {
	fd-node keygen "$FD_TMP/k"
	start "$FD_TMP/k" a b
	fd_spawn s fd-sub -n "${FD_ADDR[b]}" -c 1 -t 20s 'sec.>'
	ps_wait_interest a b 1
	run -0 fd-pub -n "${FD_ADDR[a]}" sec.x hello
	fd_wait_until 20s _fd_gone "${FD_PID[s]}"
	run -0 jq -r .data "${FD_OUT[s]}"
	assert_output hello
	run -0 fd-registry register -n "${FD_ADDR[a]}" svc.one '{"port":1}'
	fd_wait_until 10s fd-registry lookup -n "${FD_ADDR[b]}" svc.one
	local k
	k=$(kid "$FD_TMP/k")
	for n in a b; do
		run -0 auth_true "$n" ".enabled and .primary == \"$k\" and .keys == 1 and .cluster == \"fd\"
			and .udp.sealed > 0 and .udp.opened > 0 and .http.signed > 0 and .http.verified > 0
			and .http.answers_verified > 0 and ([.udp.rejected[], .http.rejected[]] | add) == 0"
	done
	stop_clean b a
}

@test "one change sent to two peers carries one signature: both accept it once, none is refused as replayed" {
	fd-node keygen "$FD_TMP/k"
	start "$FD_TMP/k" a b c
	local i
	for i in $(seq 1 20); do
		run -0 fd-registry register -n "${FD_ADDR[a]}" "lend.$i" '{}'
	done
	for n in b c; do
		fd_wait_until 10s fd-registry lookup -n "${FD_ADDR[$n]}" lend.20
		run -0 jq -e '.registry.names == 20' < <(fd-node info -n "${FD_ADDR[$n]}")
	done
	run -0 auth_true a '.http.signatures_lent > 0 and .http.signatures_lent < .http.signed'
	for n in a b c; do
		run -0 auth_true "$n" '([.udp.rejected[], .http.rejected[]] | add) == 0 and .http.answers_rejected == 0'
	done
	stop_clean c b a
}

@test "a node with another key, or none, cannot join: exit 1, and both sides log why" {
	fd-node keygen "$FD_TMP/k"
	fd-node keygen "$FD_TMP/k2"
	start "$FD_TMP/k" a
	run -1 --separate-stderr timeout 20 fd-node --name x --listen 127.0.0.1:0 --profile local \
		--key-file "$FD_TMP/k2" --join "${FD_ADDR[a]}"
	fd_assert_stderr_match "unable to join '${FD_ADDR[a]}': unauthorized: unknown key $(kid "$FD_TMP/k2") \(is it in the key file\?\)"
	fd_wait_until 5s grep -q "refused POST /v1/cluster/pushpull from 127.0.0.1:[0-9]* ('x'): unknown key $(kid "$FD_TMP/k2")" "${FD_ERR[a]}"
	run -1 --separate-stderr timeout 20 fd-node --name y --listen 127.0.0.1:0 --profile local \
		--join "${FD_ADDR[a]}"
	fd_assert_stderr_match "unable to join '${FD_ADDR[a]}': unauthorized: no X-FD-Auth header \(this cluster needs a key: --key-file\)"
	# the detached parent says it on stderr, with the exit status
	run -1 --separate-stderr timeout 20 fd-node --name z --listen 127.0.0.1:0 --profile local \
		--key-file "$FD_TMP/k2" --join "${FD_ADDR[a]}" --detach
	assert_equal "${stderr_lines[0]}" "fd-node: unable to join any --join address: unauthorized: unknown key $(kid "$FD_TMP/k2") (is it in the key file?)"
	# a keyed node joining a keyless one: the answer is not signed
	fd_start_node p --profile local
	run -1 --separate-stderr timeout 20 fd-node --name w --listen 127.0.0.1:0 --profile local \
		--key-file "$FD_TMP/k" --join "${FD_ADDR[p]}"
	fd_assert_stderr_match "unable to join '${FD_ADDR[p]}': answer not authenticated: no X-FD-Auth header in the answer \(does that node hold the cluster key\?\)"
	run -0 alive a 1
	run -0 auth_true a '.http.rejected.unknown_key == 2 and .http.rejected.unsigned == 1'
}

@test "unsigned, forged and replayed /v1/cluster/ requests get 401 JSON; nothing is injected" {
	fd-node keygen "$FD_TMP/k"
	fd-node keygen "$FD_TMP/k2"
	start "$FD_TMP/k" a b
	fd_spawn s fd-sub -n "${FD_ADDR[a]}" -t 30s 'inj.>'
	ps_wait_subs a 1
	local path
	for path in /v1/cluster/pushpull /v1/cluster/registry /v1/cluster/registry/sync \
		'/v1/cluster/interest?from=evil&id=00' '/v1/cluster/pubsub?from=evil&id=00&ch=0' \
		/v1/cluster/keys; do
		fd_http POST "${FD_ADDR[a]}" "$path" --data-binary 'x'
		assert_equal "$HTTP_CODE" 401
		fd_assert_json_error
		run -0 jq -e '.reason == "unsigned" and (.error | startswith("unauthorized: no X-FD-Auth header"))' <<<"$HTTP_BODY"
	done
	# a well-formed signature with another key; a mangled one; a good one
	# on another path
	fd_http POST "${FD_ADDR[a]}" /v1/cluster/registry --data-binary 'x' \
		-H "X-FD-Auth: $(sign "$FD_TMP/k2" POST /v1/cluster/registry x)"
	assert_equal "$HTTP_CODE" 401
	run -0 jq -e '.reason == "unknown_key"' <<<"$HTTP_BODY"
	fd_http POST "${FD_ADDR[a]}" /v1/cluster/registry --data-binary 'x' -H 'X-FD-Auth: v2 kid=zz'
	run -0 jq -e '.reason == "unsigned" and (.error | contains("malformed"))' <<<"$HTTP_BODY"
	fd_http POST "${FD_ADDR[a]}" /v1/cluster/registry --data-binary 'x' -H 'X-FD-Auth: v1 kid=12345678 ts=1'
	run -0 jq -e '.reason == "unsigned" and (.error | contains("signed in version 1, this node speaks v2"))' <<<"$HTTP_BODY"
	# another body of the signed length; a longer one
	fd_http POST "${FD_ADDR[a]}" /v1/cluster/registry --data-binary 'y' \
		-H "X-FD-Auth: $(sign "$FD_TMP/k" POST /v1/cluster/registry x)"
	run -0 jq -e '.reason == "bad_auth" and (.error | startswith("unauthorized: bad signature"))' <<<"$HTTP_BODY"
	fd_http POST "${FD_ADDR[a]}" /v1/cluster/registry --data-binary 'xy' \
		-H "X-FD-Auth: $(sign "$FD_TMP/k" POST /v1/cluster/registry x)"
	run -0 jq -e '.reason == "bad_auth" and (.error | contains("the body has 2 bytes, the signature covers 1"))' <<<"$HTTP_BODY"
	fd_http POST "${FD_ADDR[a]}" /v1/cluster/registry/sync --data-binary 'x' \
		-H "X-FD-Auth: $(sign "$FD_TMP/k" POST /v1/cluster/registry x)"
	run -0 jq -e '.reason == "bad_auth" and .error == "unauthorized: bad signature (another cluster name, or forged?)"' <<<"$HTTP_BODY"
	# signed right (computed here from the documented format): accepted,
	# the answer signed; the very same request again: replayed
	local h
	h=$(sign "$FD_TMP/k" GET /v1/cluster/keys '')
	fd_http GET "${FD_ADDR[a]}" /v1/cluster/keys -H "X-FD-Auth: $h"
	assert_equal "$HTTP_CODE" 200
	assert_regex "$HTTP_HEADERS" $'\nx-fd-auth: v2 kid=[0-9a-f]{8} mac=[0-9a-f]{64}'
	fd_http GET "${FD_ADDR[a]}" /v1/cluster/keys -H "X-FD-Auth: $h"
	assert_equal "$HTTP_CODE" 401
	run -0 jq -e '.reason == "replayed"' <<<"$HTTP_BODY"
	# the registry delta's answer, a bare acknowledgement, carries none
	fd_http POST "${FD_ADDR[a]}" /v1/cluster/registry --data-binary 'x' \
		-H "X-FD-Auth: $(sign "$FD_TMP/k" POST /v1/cluster/registry x)"
	assert_equal "$HTTP_CODE" 400
	run -0 jq -e '.error | startswith("undecodable registry data")' <<<"$HTTP_BODY"
	[[ "$HTTP_HEADERS" != *x-fd-auth* ]]
	# nothing got in: no member, no name, no message
	run -0 alive a 2
	run -0 fd-node members -n "${FD_ADDR[a]}"
	refute_output --partial evil
	run -0 jq -e '.registry.names == 0' < <(fd-node info -n "${FD_ADDR[a]}")
	run -0 ps_true a '.peers | has("evil") | not'
	run -0 auth_true a '.http.rejected.unsigned == 8 and .http.rejected.unknown_key == 1 and
		.http.rejected.bad_auth == 3 and .http.rejected.replayed == 1'
	[ ! -s "${FD_OUT[s]}" ]
	stop_clean b a
}

@test "over UDP: plaintext and other-key datagrams are dropped and counted; a captured datagram replayed is refused" {
	fd-node keygen "$FD_TMP/k"
	fd-node keygen "$FD_TMP/k2"
	start "$FD_TMP/k" a b
	# a plaintext cluster and a cluster on another key, on loopback too
	fd_start_node p1 --profile local
	fd_start_node p2 --profile local --join "${FD_ADDR[p1]}"
	cp "$FD_TMP/k2" "$FD_TMP/o1.key"
	fd_start_node o1 --profile local --key-file "$FD_TMP/o1.key"
	cp "$FD_TMP/k2" "$FD_TMP/o2.key"
	fd_start_node o2 --profile local --key-file "$FD_TMP/o2.key" --join "${FD_ADDR[o1]}"
	local plain other ours
	plain=$(timeout 20 udp-replay capture "${FD_PORT[p1]}" 1 15000)
	other=$(timeout 20 udp-replay capture "${FD_PORT[o1]}" 1 15000)
	ours=$(timeout 20 udp-replay capture "${FD_PORT[a]}" 1 15000)
	[ "${plain:0:4}" = fd4d ] # the wire header: plaintext
	[ "${ours:0:2}" = 01 ]    # sealed, version 1
	run -0 udp-replay send "${FD_ADDR[a]}" "$plain"
	run -0 udp-replay send "${FD_ADDR[a]}" "$other"
	run -0 udp-replay send "${FD_ADDR[a]}" "$ours"  # a had it already
	run -0 udp-replay send "${FD_ADDR[b]}" "$ours"  # sealed for a, not b
	fd_wait_until 10s auth_true a '.udp.rejected.not_sealed == 1 and .udp.rejected.unknown_key == 1 and .udp.rejected.replayed == 1'
	fd_wait_until 10s auth_true b '.udp.rejected.bad_auth == 1'
	fd_wait_until 5s grep -q "dropped datagram from 127.0.0.1:[0-9]*: unknown key $(kid "$FD_TMP/k2") (is it in the key file?)" "${FD_ERR[a]}"
	fd_wait_until 5s grep -q "dropped datagram from 127.0.0.1:[0-9]*: replayed" "${FD_ERR[a]}"
	grep -q "dropped datagram from 127.0.0.1:[0-9]*: not sealed (a node without a key?)" "${FD_ERR[a]}"
	# nobody from the other clusters made it into a's table
	run -0 fd-node members -n "${FD_ADDR[a]}"
	refute_output --partial '"name":"p'
	refute_output --partial '"name":"o'
	run -0 alive a 2
}

@test "keys list/install/use/remove across a 3-node cluster; key files follow; a missing member makes it exit 1; SIGHUP reloads" {
	fd-node keygen "$FD_TMP/k"
	fd-node keygen "$FD_TMP/k2"
	fd-node keygen "$FD_TMP/k3"
	local k1 k2 k3
	k1=$(kid "$FD_TMP/k")
	k2=$(kid "$FD_TMP/k2")
	k3=$(kid "$FD_TMP/k3")
	start "$FD_TMP/k" a b c
	run -0 --separate-stderr fd-node keys list -n "${FD_ADDR[a]}"
	assert_equal "${#lines[@]}" 1
	run -0 jq -e --arg k "$k1" '.type == "key" and .id == $k and .primary and .holders == 3 and .answered == 3
		and (.members | sort) == ["a", "b", "c"]' <<<"$output"
	run -0 --separate-stderr fd-node keys install -n "${FD_ADDR[a]}" "$(cat "$FD_TMP/k2")"
	assert_equal "${#lines[@]}" 3
	run -0 jq -s -e --arg k "$k2" 'all(.type == "key_change" and .op == "install" and .ok and .id == $k)
		and ([.[].name] | sort) == ["a", "b", "c"]' <<<"$output"
	run -0 fd-node keys list -n "${FD_ADDR[b]}"
	run -0 jq -s -e --arg a "$k1" --arg b "$k2" 'length == 2 and (.[] | select(.id == $a) | .primary)
		and (.[] | select(.id == $b) | (.primary | not) and .holders == 3 and .primary_on == [])' <<<"$output"
	run -0 fd-node keys use -n "${FD_ADDR[b]}" "$k2"
	run -0 fd-node keys remove -n "${FD_ADDR[c]}" "$k1"
	run -0 fd-node keys list -n "${FD_ADDR[a]}"
	run -0 jq -e --arg b "$k2" '.id == $b and .primary and .holders == 3' <<<"$output"
	local n
	for n in a b c; do
		run -0 grep -v '^#' "$FD_TMP/$n.key"
		assert_output "$(cat "$FD_TMP/k2")"
		run -0 stat -c %a "$FD_TMP/$n.key"
		assert_output 600
	done
	# the cluster still talks (on the new key only)
	fd-registry register -n "${FD_ADDR[a]}" after.rotation 1
	fd_wait_until 10s fd-registry lookup -n "${FD_ADDR[c]}" after.rotation
	# bad requests
	run -3 --separate-stderr fd-node keys use -n "${FD_ADDR[a]}" "$k3"
	assert_equal "${stderr_lines[0]}" "fd-node: no key $k3 in the ring"
	run -4 --separate-stderr fd-node keys remove -n "${FD_ADDR[a]}" "$k2"
	assert_equal "${stderr_lines[0]}" "fd-node: key $k2 is the primary key (use another one first)"
	run -2 --separate-stderr fd-node keys use -n "${FD_ADDR[a]}" nothex
	run -2 --separate-stderr fd-node keys install -n "${FD_ADDR[a]}" short
	run -2 --separate-stderr fd-node keys frob
	# a member gone (killed, still alive in the others' eyes): exit 1
	fd_stop_node c KILL
	run -1 --separate-stderr fd-node keys install -n "${FD_ADDR[a]}" - <"$FD_TMP/k3"
	run -0 jq -s -e '(.[] | select(.name == "c") | .ok | not) and ([.[] | select(.ok)] | length) == 2' <<<"$output"
	fd_assert_stderr_match "^fd-node: member 'c' did not confirm: "
	# SIGHUP: a's file back to k2 only, reloaded; a broken file is not taken
	cp "$FD_TMP/k2" "$FD_TMP/a.key"
	kill -HUP "${FD_PID[a]}"
	fd_wait_until 10s auth_true a '.keys == 1 and .reloads == 1'
	echo junk >>"$FD_TMP/a.key"
	kill -HUP "${FD_PID[a]}"
	fd_wait_until 10s grep -q "SIGHUP: key file '$FD_TMP/a.key': line 2: not a key .*; keeping the keys in use" "${FD_ERR[a]}"
	run -0 auth_true a ".keys == 1 and .reloads == 1 and .primary == \"$k2\""
	# a node without a key has no ring to change
	fd_start_node p --profile local
	run -4 --separate-stderr fd-node keys list -n "${FD_ADDR[p]}"
	assert_equal "${stderr_lines[0]}" "fd-node: this node runs without a key (--key-file)"
	stop_clean b a
}

@test "key rotation on a running 3-node cluster while fd-sub gets a steady stream: no message lost, no member failed" {
	fd-node keygen "$FD_TMP/k"
	fd-node keygen "$FD_TMP/k2"
	start "$FD_TMP/k" a b c
	fd_spawn s fd-sub -n "${FD_ADDR[c]}" -t 120s 'rot.>'
	ps_wait_interest a c 1
	# one message every ~5 ms through one fd-pub until told to stop, then
	# how many
	fd_spawn pub bash -c '{ i=0; while [ ! -e "$1/stop" ]; do i=$((i + 1));
		printf "{\"topic\":\"rot.x\",\"data\":%d}\n" "$i"; sleep 0.005; done;
		echo "$i" >"$1/count"; } | fd-pub --confirm -n "$2"' _ "$FD_TMP" "${FD_ADDR[a]}"
	fd_wait_until 10s test -s "${FD_OUT[s]}"
	run -0 fd-node keys install -n "${FD_ADDR[a]}" "$(cat "$FD_TMP/k2")"
	fd_wait_until 10s got_more s 100
	run -0 fd-node keys use -n "${FD_ADDR[b]}" "$(kid "$FD_TMP/k2")"
	local seen
	seen=$(ps_lines "${FD_OUT[s]}")
	fd_wait_until 10s got_more s $((seen + 100))
	run -0 fd-node keys remove -n "${FD_ADDR[c]}" "$(kid "$FD_TMP/k")"
	seen=$(ps_lines "${FD_OUT[s]}")
	fd_wait_until 10s got_more s $((seen + 100))
	touch "$FD_TMP/stop"
	fd_wait_until 10s test -s "$FD_TMP/count"
	local count
	count=$(cat "$FD_TMP/count")
	fd_wait_until 30s got_more s $((count - 1))
	run -0 jq -s -e --argjson n "$count" '[.[] | select(.type == "message") | .data] == [range(1; $n + 1)]
		and all(.type == "message")' "${FD_OUT[s]}"
	run -0 no_failures a b c
	for n in a b c; do
		run -0 alive "$n" 3
		run -0 auth_true "$n" "(.keys == 1) and (.primary == \"$(kid "$FD_TMP/k2")\") and ([.udp.rejected[], .http.rejected[]] | add) == 0"
	done
	run -0 jq -e '.pubsub.lost == 0' < <(fd-node info -n "${FD_ADDR[a]}")
	stop_clean c b a
}

# opened_all NODE...: prints NODE=udp.opened for each
opened_all() { local n; for n in "$@"; do printf '%s=%s ' "$n" "$(auth "$n" .udp.opened)"; done; }
# more_opened "a=N b=M ..." K: every node opened K more datagrams since
more_opened() {
	local kv
	for kv in $1; do
		[ "$(auth "${kv%%=*}" .udp.opened)" -ge $((${kv#*=} + $2)) ] || return 1
	done
}

@test "plain -> encrypted rollout on a live 3-node cluster: restart with key + rollout, then without; no member fails" {
	fd-node keygen "$FD_TMP/k"
	fd_start_node a --profile local
	fd_start_node b --profile local --join "${FD_ADDR[a]}"
	fd_start_node c --profile local --join "${FD_ADDR[a]}"
	for n in a b c; do fd_wait_until 20s alive "$n" 3; done
	local n m peer
	# restart NAME ARG...: leave gracefully, come back on the same address
	restart() {
		local name=$1 addr=${FD_ADDR[$1]}
		shift
		fd_stop_node "$name"
		cp "$FD_TMP/k" "$FD_TMP/$name.key"
		fd_start_node "$name" --profile local --listen "$addr" --key-file "$FD_TMP/$name.key" \
			--join "$peer" "$@"
		for m in a b c; do fd_wait_until 20s alive "$m" 3; done
	}
	for n in a b c; do
		peer=${FD_ADDR[a]}
		[ "$n" != a ] || peer=${FD_ADDR[b]}
		restart "$n" --encrypt-rollout
		run -0 no_failures a b c
	done
	# all on the key now: everything sealed, nothing plain any more
	for n in a b c; do
		run -0 auth_true "$n" '.rollout and .udp.opened > 0'
	done
	for n in a b c; do
		peer=${FD_ADDR[a]}
		[ "$n" != a ] || peer=${FD_ADDR[b]}
		restart "$n"
		run -0 no_failures a b c
	done
	# some probe rounds on the final configuration
	local before
	before=$(opened_all a b c)
	fd_wait_until 20s more_opened "$before" 30
	run -0 no_failures a b c
	for n in a b c; do
		run -0 alive "$n" 3
		run -0 auth_true "$n" '.enabled and (.rollout | not) and .udp.plaintext_accepted == 0 and .http.unsigned_accepted == 0'
	done
	# and pub/sub runs across the encrypted cluster
	fd_spawn s fd-sub -n "${FD_ADDR[c]}" -c 1 -t 20s 'roll.>'
	ps_wait_interest a c 1
	fd-pub -n "${FD_ADDR[a]}" roll.x finished
	fd_wait_until 20s _fd_gone "${FD_PID[s]}"
	run -0 jq -r .data "${FD_OUT[s]}"
	assert_output finished
}

# Two network namespaces joined by a veth pair: 10.211.8.1 and 10.211.8.2.
netns_setup() {
	[ "$(id -u)" = 0 ] || skip "network namespaces need root"
	local id=$$.$BATS_TEST_NUMBER
	NS1=fds1.$id NS2=fds2.$id
	ip netns add "$NS1" || skip "ip netns unavailable"
	NETNS+=("$NS1")
	ip netns add "$NS2"
	NETNS+=("$NS2")
	ip link add "fds1.$$" netns "$NS1" type veth peer name "fds2.$$" netns "$NS2"
	ip -n "$NS1" addr add 10.211.8.1/24 dev "fds1.$$"
	ip -n "$NS2" addr add 10.211.8.2/24 dev "fds2.$$"
	for ns in "$NS1" "$NS2"; do ip -n "$ns" link set lo up; done
	ip -n "$NS1" link set "fds1.$$" up
	ip -n "$NS2" link set "fds2.$$" up
}

@test "off loopback (network namespaces): keyed nodes form a cluster; /v1/keys needs admin from other hosts; no key, no join" {
	netns_setup
	fd-node keygen "$FD_TMP/k"
	cp "$FD_TMP/k" "$FD_TMP/b.key"
	fd_spawn a ip netns exec "$NS1" fd-node --name a --listen 10.211.8.1:0 --profile local --key-file "$FD_TMP/k"
	fd_wait_identity a
	fd_spawn b ip netns exec "$NS2" fd-node --name b --listen 10.211.8.2:0 --profile local \
		--key-file "$FD_TMP/b.key" --join "${FD_ADDR[a]}"
	fd_wait_identity b
	in1() { ip netns exec "$NS1" "$@"; }
	in2() { ip netns exec "$NS2" "$@"; }
	fd_wait_until 20s in1 bash -c "fd-node members -n ${FD_ADDR[a]} | jq -s -e '[.[] | select(.state == \"alive\")] | length == 2'"
	run -0 in1 bash -c "fd-node info -n ${FD_ADDR[a]} | jq -e '.auth.udp.opened > 0 and .auth.http.verified > 0'"
	# the key ring: from a's own host yes, from b's host not without a token
	run -0 in1 fd-node keys list -n "${FD_ADDR[a]}"
	run -0 jq -e '.holders == 2' <<<"$output"
	run -1 --separate-stderr in2 fd-node keys list -n "${FD_ADDR[a]}"
	assert_equal "${stderr_lines[0]}" "fd-node: unauthorized: a token is needed from other hosts (--token or FD_TOKEN)"
	run -1 --separate-stderr in2 fd-node keys install -n "${FD_ADDR[a]}" "$(fd-node keygen)"
	run -0 in1 bash -c "fd-node info -n ${FD_ADDR[a]} | jq -e '.auth.keys == 1'"
	# without a key: refused off loopback; with --insecure it starts but
	# cannot join
	run -2 --separate-stderr timeout 20 ip netns exec "$NS2" fd-node --name c --listen 10.211.8.2:0
	fd_assert_stderr_match "refusing to listen on '10.211.8.2:0' without a cluster key"
	run -1 --separate-stderr timeout 20 ip netns exec "$NS2" fd-node --name c --listen 10.211.8.2:0 \
		--insecure --profile local --join "${FD_ADDR[a]}"
	fd_assert_stderr_match "unable to join '${FD_ADDR[a]}': unauthorized: no X-FD-Auth header"
}
