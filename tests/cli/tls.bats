#!/usr/bin/env bats
# shellcheck disable=SC2154  # $stderr comes from run
# TLS on the node's HTTP side (libmicrohttpd on GnuTLS) and in every client
# (libcurl): certificates made here with openssl; a client without the CA,
# or without a client certificate where one is required, is refused with a
# clear message; fd-sub over TLS into jq; a two-node cluster talking https.

setup() {
	load helpers/common
	load helpers/pubsub
	load helpers/tls
	fd_common_setup
	fd_tls_setup
}
teardown() { fd_common_teardown; }

tls_node() { # NAME [ARG...]
	local name=$1
	shift
	fd_start_node "$name" --tls-cert "$FD_TLS/node.pem" --tls-key "$FD_TLS/node.key" "$@"
}

@test "a TLS node: refused without its CA, served with it" {
	tls_node n1
	# plain HTTP to the TLS port
	run -1 --separate-stderr fd-node info -n "${FD_ADDR[n1]}"
	fd_assert_stderr_match "^fd-node: unable to reach '${FD_ADDR[n1]}': .*\(if the node uses TLS: an https:// address or --tls-ca\)"
	# https, but without the CA that signed the node's certificate
	run -1 --separate-stderr fd-node info -n "https://${FD_ADDR[n1]}"
	fd_assert_stderr_match "^fd-node: unable to reach '${FD_ADDR[n1]}': SSL certificate problem.*--tls-ca"
	run -1 --separate-stderr fd-node info -n "${FD_ADDR[n1]}" --tls-ca "$FD_TLS/other-ca.pem"
	fd_assert_stderr_match "certificate"
	# with it: a bare address means https once a CA is given
	run -0 fd-node info -n "${FD_ADDR[n1]}" --tls-ca "$FD_TLS/ca.pem"
	jq -e --arg id "${FD_ID[n1]}" '.type == "node" and .id == $id' <<<"$output"
	run -0 fd-node info -n "https://${FD_ADDR[n1]}" --tls-ca "$FD_TLS/ca.pem"
	FD_TLS_CA=$FD_TLS/ca.pem run -0 fd-node members -n "${FD_ADDR[n1]}"
	jq -e '.state == "alive"' <<<"$output"
	# curl agrees: the certificate is valid for 127.0.0.1
	run -0 curl -sS --noproxy '*' --cacert "$FD_TLS/ca.pem" "https://${FD_ADDR[n1]}/healthz"
	jq -e '.status == "ok"' <<<"$output"
	run -0 grep -q "listening on ${FD_ADDR[n1]} (TLS)" "${FD_ERR[n1]}"
}

@test "a plain node reached with TLS options: exit 1 with a hint" {
	fd_start_node n1
	run -1 --separate-stderr fd-node info -n "${FD_ADDR[n1]}" --tls-ca "$FD_TLS/ca.pem"
	fd_assert_stderr_match "^fd-node: unable to reach '${FD_ADDR[n1]}': .*\(if the node does not use TLS: an http:// address, no --tls-\* options\)"
	run -0 fd-node info -n "http://${FD_ADDR[n1]}" --tls-ca "$FD_TLS/ca.pem"
}

@test "--tls-verify-client: a client certificate the CA signed is required" {
	tls_node n1 --tls-ca "$FD_TLS/ca.pem" --tls-verify-client
	export FD_TLS_CA=$FD_TLS/ca.pem
	run -1 --separate-stderr fd-node info -n "${FD_ADDR[n1]}"
	fd_assert_stderr_line "fd-node: client certificate required: no client certificate was presented"
	run -1 --separate-stderr fd-node info -n "${FD_ADDR[n1]}" \
		--tls-cert "$FD_TLS/stranger.pem" --tls-key "$FD_TLS/stranger.key"
	fd_assert_stderr_match "^fd-node: client certificate required: the client certificate is not trusted"
	run -0 fd-node info -n "${FD_ADDR[n1]}" --tls-cert "$FD_TLS/client.pem" \
		--tls-key "$FD_TLS/client.key"
	jq -e '.type == "node"' <<<"$output"
	# from the environment, and a key inside the certificate's file
	cat "$FD_TLS/client.pem" "$FD_TLS/client.key" >"$FD_TMP/both.pem"
	FD_TLS_CERT=$FD_TMP/both.pem run -0 fd-node info -n "${FD_ADDR[n1]}"
	run -0 curl -sS --noproxy '*' --cacert "$FD_TLS/ca.pem" --cert "$FD_TLS/client.pem" \
		--key "$FD_TLS/client.key" "https://${FD_ADDR[n1]}/v1/info"
	run -0 curl -sS --noproxy '*' --cacert "$FD_TLS/ca.pem" -o /dev/null -w '%{http_code}' \
		"https://${FD_ADDR[n1]}/healthz"
	assert_output 403
}

@test "fd-sub over TLS into jq gets what fd-pub publishes over TLS" {
	tls_node n1 --tls-ca "$FD_TLS/ca.pem" --tls-verify-client
	export FD_TLS_CA=$FD_TLS/ca.pem FD_TLS_CERT=$FD_TLS/client.pem FD_TLS_KEY=$FD_TLS/client.key
	fd_spawn sub bash -c "fd-sub -n '${FD_ADDR[n1]}' -c 3 -t 30s 'orders.>' | jq -c '[.topic, .data]'"
	ps_wait_subs n1 1
	run -0 fd-pub -n "${FD_ADDR[n1]}" orders.eu '{"n":1}' 2
	printf '{"topic":"orders.us.x","data":"three"}\n' | fd-pub -n "${FD_ADDR[n1]}"
	fd_wait_until 20s _fd_gone "${FD_PID[sub]}"
	run -0 cat "${FD_OUT[sub]}"
	assert_output $'["orders.eu",{"n":1}]\n["orders.eu",2]\n["orders.us.x","three"]'
}

@test "fd-registry, fd-join and fd-partition speak TLS too" {
	tls_node n1 --tls-ca "$FD_TLS/ca.pem"
	run -0 fd-registry -n "${FD_ADDR[n1]}" --tls-ca "$FD_TLS/ca.pem" register svc.a '"x"'
	run -0 fd-registry -n "https://${FD_ADDR[n1]}" --tls-ca "$FD_TLS/ca.pem" lookup svc.a
	jq -e '.value == "x"' <<<"$output"
	run -1 --separate-stderr fd-registry -n "${FD_ADDR[n1]}" lookup svc.a
	run -0 fd-partition -n "${FD_ADDR[n1]}" --tls-ca "$FD_TLS/ca.pem" status
	jq -e '.type' <<<"$output"
	run -1 --separate-stderr fd-join -n "${FD_ADDR[n1]}" 127.0.0.1:1
	run -2 --separate-stderr fd-registry -n "${FD_ADDR[n1]}" --tls-ca "$FD_TMP/nope.pem" lookup x
	fd_assert_stderr_match "unable to read the TLS CA '$FD_TMP/nope.pem': No such file or directory"
}

@test "a two-node cluster over https (mutual TLS) forms and replicates" {
	export FD_TLS_CA=$FD_TLS/ca.pem FD_TLS_CERT=$FD_TLS/client.pem FD_TLS_KEY=$FD_TLS/client.key
	tls_node a --tls-ca "$FD_TLS/ca.pem" --tls-verify-client --profile local
	tls_node b --tls-ca "$FD_TLS/ca.pem" --tls-verify-client --profile local --join "${FD_ADDR[a]}"
	fd_wait_until 20s bash -c "[ \"\$(fd-node members -n ${FD_ADDR[a]} | grep -c '\"alive\"')\" = 2 ]"
	fd_wait_until 20s bash -c "[ \"\$(fd-node members -n ${FD_ADDR[b]} | grep -c '\"alive\"')\" = 2 ]"
	run -0 fd-registry -n "${FD_ADDR[a]}" register db.primary '"10.0.0.5:5432"'
	fd_wait_until 20s fd-registry -n "${FD_ADDR[b]}" lookup db.primary
	run -0 fd-registry -n "${FD_ADDR[b]}" lookup db.primary
	jq -e '.value == "10.0.0.5:5432"' <<<"$output"
	# pub/sub across the two, over the nodes' https links
	fd_spawn sub fd-sub -n "${FD_ADDR[b]}" -c 1 -t 30s 'x.>'
	ps_wait_subs b 1
	ps_wait_interest a b 1
	run -0 fd-pub -n "${FD_ADDR[a]}" x.y 42
	fd_wait_until 20s _fd_gone "${FD_PID[sub]}"
	run -0 jq -e '.data == 42 and .topic == "x.y"' "${FD_OUT[sub]}"
}

@test "a node without the cluster's client certificate cannot join a mutual-TLS cluster" {
	export FD_TLS_CA=$FD_TLS/ca.pem FD_TLS_CERT=$FD_TLS/client.pem FD_TLS_KEY=$FD_TLS/client.key
	tls_node a --tls-ca "$FD_TLS/ca.pem" --tls-verify-client --profile local
	fd_tls_cert other-ca rogue
	fd_start_node r --tls-cert "$FD_TLS/rogue.pem" --tls-key "$FD_TLS/rogue.key" \
		--tls-ca "$FD_TLS/ca.pem" --profile local
	run -1 --separate-stderr fd-join -n "https://${FD_ADDR[r]}" --tls-ca "$FD_TLS/other-ca.pem" \
		--tls-cert "$FD_TLS/rogue.pem" --tls-key "$FD_TLS/rogue.key" "${FD_ADDR[a]}"
	jq -e '.ok == false' <<<"$output"
	[[ $output == *"client certificate required"* ]] || fail "join: $output"
	run -0 fd-node members -n "${FD_ADDR[a]}"
	assert_equal "$(grep -c '"alive"' <<<"$output")" 1
}

# served_cn NAME: the CN of the certificate NAME's node serves a new connection
served_cn() {
	timeout 10 openssl s_client -connect "${FD_ADDR[$1]}" -CAfile "$FD_TLS/ca.pem" </dev/null 2>/dev/null |
		openssl x509 -noout -subject | sed 's/^subject= *CN *= *//'
}
cn_is() { [ "$(served_cn "$1")" = "$2" ]; }

@test "SIGHUP reloads the certificate for new connections; a bad one is refused and the old one stays" {
	cp "$FD_TLS/node.pem" "$FD_TLS/served.pem"
	cp "$FD_TLS/node.key" "$FD_TLS/served.key"
	fd_start_node n1 --tls-cert "$FD_TLS/served.pem" --tls-key "$FD_TLS/served.key"
	run -0 served_cn n1
	assert_output node
	# renewed: same CA, another certificate and key
	fd_tls_cert ca renewed
	cp "$FD_TLS/renewed.pem" "$FD_TLS/served.pem"
	cp "$FD_TLS/renewed.key" "$FD_TLS/served.key"
	kill -HUP "${FD_PID[n1]}"
	fd_wait_until 10s cn_is n1 renewed
	run -0 grep -q "SIGHUP: TLS certificate '$FD_TLS/served.pem' reloaded" "${FD_ERR[n1]}"
	run -0 fd-node info -n "${FD_ADDR[n1]}" --tls-ca "$FD_TLS/ca.pem"
	# a key that is not the certificate's, then not a certificate at all
	cp "$FD_TLS/node.key" "$FD_TLS/served.key"
	kill -HUP "${FD_PID[n1]}"
	fd_wait_until 10s grep -q "SIGHUP: TLS certificate not reloaded, the old one stays: the certificate and key do not load" "${FD_ERR[n1]}"
	echo "not a certificate" >"$FD_TLS/served.pem"
	kill -HUP "${FD_PID[n1]}"
	fd_wait_until 10s grep -q "TLS certificate not reloaded, the old one stays: --tls-cert '$FD_TLS/served.pem': not a PEM file" "${FD_ERR[n1]}"
	run -0 served_cn n1
	assert_output renewed
	run -0 fd-node info -n "${FD_ADDR[n1]}" --tls-ca "$FD_TLS/ca.pem"
}

@test "bad TLS options: exit 2 with a message" {
	run -2 --separate-stderr fd-node --tls-cert "$FD_TMP/nope.pem"
	fd_assert_stderr_match "unable to read --tls-cert '$FD_TMP/nope.pem': No such file or directory"
	echo "not a certificate" >"$FD_TMP/bad.pem"
	run -2 --separate-stderr fd-node --tls-cert "$FD_TMP/bad.pem"
	fd_assert_stderr_match "--tls-cert '$FD_TMP/bad.pem': not a PEM file"
	run -2 --separate-stderr fd-node --tls-ca "$FD_TLS/ca.pem"
	fd_assert_stderr_match "need --tls-cert"
	run -2 --separate-stderr fd-node --tls-cert "$FD_TLS/node.pem" --tls-key "$FD_TLS/node.key" --tls-verify-client
	fd_assert_stderr_match "--tls-verify-client needs --tls-ca"
	# a key that is not the certificate's
	run -1 --separate-stderr fd-node --listen 127.0.0.1:0 --tls-cert "$FD_TLS/node.pem" --tls-key "$FD_TLS/client.key"
	fd_assert_stderr_match "the certificate and key do not load: The certificate and the given key do not match"
	run -2 --separate-stderr fd-node info --tls-key "$FD_TLS/client.key"
	fd_assert_stderr_match "a TLS key without a certificate"
}
