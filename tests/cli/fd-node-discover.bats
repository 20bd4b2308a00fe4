#!/usr/bin/env bats
# shellcheck disable=SC2154  # stderr* come from bats run
# fd-node --discover: discovery inside the node's loop, and joins of what it
# finds at every poll (a node killed and started again is joined again with
# no command).

setup()
{
	load helpers/common
	fd_common_setup
	PEERS=$FD_TMP/peers
	ZONE=$FD_TMP/zone
}

teardown() { fd_common_teardown; }

# alive_count NAME N: node NAME sees exactly N alive members.
alive_count()
{
	fd_http GET "${FD_ADDR[$1]}" /v1/members >/dev/null || return 1
	[ "$(jq '[.members[] | select(.state == "alive")] | length' <<<"$HTTP_BODY")" -eq "$2" ]
}

# state_of NODE MEMBER STATE: NODE sees MEMBER in STATE.
state_of()
{
	fd_http GET "${FD_ADDR[$1]}" /v1/members >/dev/null || return 1
	[ "$(jq -r --arg m "$2" '.members[] | select(.name == $m) | .state' <<<"$HTTP_BODY")" = "$3" ]
}

# peers_file ADDR...: replaces the peer file in one step.
peers_file()
{
	printf '%s\n' "$@" >"$PEERS.tmp"
	mv "$PEERS.tmp" "$PEERS"
}

dns_server()
{
	fd_spawn dns dns-responder "$ZONE"
	fd_wait_until 10s test -s "${FD_OUT[dns]}"
	RESOLVER=127.0.0.1:$(head -n 1 "${FD_OUT[dns]}")
}

zone()
{
	printf '%s\n' "$@" >"$ZONE.tmp"
	mv "$ZONE.tmp" "$ZONE"
}

@test "--discover file: three nodes find each other; a node killed and back at another address is joined again with no command" {
	: >"$PEERS"
	local spec="file path=$PEERS interval=200ms"
	fd_start_node n1 --profile local --discover "$spec"
	fd_start_node n2 --profile local --discover "$spec"
	fd_start_node n3 --profile local --discover "$spec"
	peers_file "${FD_ADDR[n1]}" "${FD_ADDR[n2]}" "${FD_ADDR[n3]}"
	fd_wait_until 15s alive_count n1 3
	fd_wait_until 15s alive_count n2 3
	fd_wait_until 15s alive_count n3 3
	# Killed: failed everywhere. It comes back at another address (as a
	# recreated pod does), with no --join and no --discover of its own:
	# only the others' discovery can find it there.
	local old=${FD_PORT[n3]}
	fd_stop_node n3 KILL
	fd_wait_until 15s state_of n1 n3 failed
	fd_start_node n3 --profile local
	peers_file "${FD_ADDR[n1]}" "${FD_ADDR[n2]}" "${FD_ADDR[n3]}"
	fd_wait_until 15s state_of n1 n3 alive
	fd_wait_until 15s state_of n2 n3 alive
	fd_wait_until 15s alive_count n3 3
	grep -q "discover file: joined ${FD_ADDR[n3]} (n3)" "${FD_ERR[n1]}" "${FD_ERR[n2]}"
	# The old address leaves the desired set after down_after (3) polls.
	fd_wait_until 10s bash -c "curl -s --noproxy '*' http://${FD_ADDR[n1]}/v1/info |
		jq -e '.discover[0].peers == 3'"
	grep -q "discover file: peer down 127.0.0.1:$old" "${FD_ERR[n1]}"
	fd_http GET "${FD_ADDR[n1]}" /v1/info
	assert_equal "$(jq -r '.discover[0].strategy' <<<"$HTTP_BODY")" file
	[ "$(jq -r '.discover[0].polls' <<<"$HTTP_BODY")" -ge 2 ]
}

@test "--discover file: a node that left and came back, the list unchanged, is joined again (libcluster #148)" {
	: >"$PEERS"
	local spec="file path=$PEERS interval=200ms"
	fd_start_node n1 --profile local --discover "$spec"
	fd_start_node n2 --profile local --discover "$spec"
	peers_file "${FD_ADDR[n1]}" "${FD_ADDR[n2]}"
	fd_wait_until 15s alive_count n1 2
	# It leaves: "left", which membership alone never retries. The list
	# does not change; the node starts again at its address, alone.
	local port=${FD_PORT[n2]}
	fd_stop_node n2 TERM
	fd_wait_until 15s state_of n1 n2 left
	: >"${FD_ERR[n1]}"
	fd_start_node n2 --profile local --listen "127.0.0.1:$port"
	fd_wait_until 15s state_of n1 n2 alive
	fd_wait_until 15s alive_count n2 2
	grep -q "discover file: joined 127.0.0.1:$port (n2)" "${FD_ERR[n1]}"
}

@test "--discover dns-srv through the test DNS server: SERVFAIL removes nothing; killed, back at another port, joined again" {
	: >"$ZONE"
	dns_server
	local spec="dns-srv name=_fd._tcp.fd.test resolver=$RESOLVER interval=200ms down_after=2"
	fd_start_node n1 --profile local --discover "$spec"
	fd_start_node n2 --profile local --discover "$spec"
	fd_start_node n3 --profile local --discover "$spec"
	zone "_fd._tcp.fd.test SRV 0 0 ${FD_PORT[n1]} n1.fd.test" "n1.fd.test A 127.0.0.1" \
		"_fd._tcp.fd.test SRV 0 0 ${FD_PORT[n2]} n2.fd.test" "n2.fd.test A 127.0.0.1" \
		"_fd._tcp.fd.test SRV 0 0 ${FD_PORT[n3]} n3.fd.test" "n3.fd.test A 127.0.0.1"
	fd_wait_until 15s alive_count n1 3
	fd_wait_until 15s alive_count n3 3
	# The DNS server fails: the sources keep their peers and say why.
	zone "_fd._tcp.fd.test servfail"
	fd_wait_until 10s bash -c "curl -s --noproxy '*' http://${FD_ADDR[n1]}/v1/info |
		jq -e '.discover[0].last_error | test(\"SERVFAIL\")'"
	fd_http GET "${FD_ADDR[n1]}" /v1/info
	assert_equal "$(jq -r '.discover[0].peers' <<<"$HTTP_BODY")" 3
	grep -q "discover dns-srv: unable to resolve '_fd._tcp.fd.test' (SRV): server failure (SERVFAIL) (peers kept: 3)" "${FD_ERR[n1]}"
	zone "_fd._tcp.fd.test SRV 0 0 ${FD_PORT[n1]} n1.fd.test" "n1.fd.test A 127.0.0.1" \
		"_fd._tcp.fd.test SRV 0 0 ${FD_PORT[n2]} n2.fd.test" "n2.fd.test A 127.0.0.1" \
		"_fd._tcp.fd.test SRV 0 0 ${FD_PORT[n3]} n3.fd.test" "n3.fd.test A 127.0.0.1"
	# Killed, back at another port: its SRV record follows it.
	fd_stop_node n3 KILL
	fd_wait_until 15s state_of n1 n3 failed
	fd_start_node n3 --profile local
	zone "_fd._tcp.fd.test SRV 0 0 ${FD_PORT[n1]} n1.fd.test" "n1.fd.test A 127.0.0.1" \
		"_fd._tcp.fd.test SRV 0 0 ${FD_PORT[n2]} n2.fd.test" "n2.fd.test A 127.0.0.1" \
		"_fd._tcp.fd.test SRV 0 0 ${FD_PORT[n3]} n3.fd.test" "n3.fd.test A 127.0.0.1"
	fd_wait_until 15s state_of n1 n3 alive
	fd_wait_until 15s state_of n2 n3 alive
	fd_wait_until 15s alive_count n3 3
	grep -q "discover dns-srv: joined ${FD_ADDR[n3]} (n3)" "${FD_ERR[n1]}" "${FD_ERR[n2]}"
}

@test "--discover static: a node joins the ones listed, and keeps trying one that is not up yet" {
	fd_start_node n1 --profile local
	fd_hold_port tcp
	local port=$FD_HELD_PORT
	kill "$FD_HELD_PID"
	fd_start_node n2 --profile local \
		--discover "static addrs=${FD_ADDR[n1]},127.0.0.1:$port interval=200ms"
	fd_wait_until 15s alive_count n1 2
	fd_start_node n3 --profile local --listen "127.0.0.1:$port"
	fd_wait_until 15s alive_count n3 3
	fd_wait_until 15s alive_count n1 3
}

@test "--discover exec: a slow command does not hold the node's loop" {
	peers_file 127.0.0.1:1
	fd_start_node n1 --profile local \
		--discover "exec cmd='sleep 2; cat $PEERS' interval=100ms timeout=10s"
	local t0=$EPOCHREALTIME ms
	fd_http GET "${FD_ADDR[n1]}" /healthz
	assert_equal "$HTTP_CODE" 200
	ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
	[ "$ms" -lt 1500 ] || fail "/healthz took $ms ms while the command ran"
	fd_wait_until 10s bash -c "curl -s --noproxy '*' http://${FD_ADDR[n1]}/v1/info |
		jq -e '.discover[0].peers == 1 and .discover[0].up == [\"127.0.0.1:1\"]'"
}

@test "--discover dns: a server that does not answer does not hold the node's loop" {
	zone "fd.test drop"
	dns_server
	fd_start_node n1 --profile local --discover "dns name=fd.test resolver=$RESOLVER interval=100ms"
	local t0=$EPOCHREALTIME ms
	fd_http GET "${FD_ADDR[n1]}" /healthz
	ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
	[ "$ms" -lt 1000 ] || fail "/healthz took $ms ms while DNS did not answer"
	fd_wait_until 10s bash -c "curl -s --noproxy '*' http://${FD_ADDR[n1]}/v1/info |
		jq -e '.discover[0].last_error == \"unable to resolve '\"'\"'fd.test'\"'\"' (A): timed out\"'"
}

@test "--discover: a bad spec is a usage error, before anything starts" {
	run -2 --separate-stderr fd-node --name x --listen 127.0.0.1:0 --discover "nope a=b"
	assert_equal "${stderr_lines[0]}" \
		"fd-node: invalid --discover 'nope a=b': unknown strategy 'nope' (known: static, file, exec, dns, dns-srv, kubernetes)"
	run -2 --separate-stderr fd-node --name x --listen 127.0.0.1:0 --discover "dns nam=x"
	assert_regex "${stderr_lines[0]}" "unknown key 'nam' for dns \\(known: name, port, resolver, basename, interval, down_after\\)"
	run -2 --separate-stderr fd-node --name x --listen 127.0.0.1:0 --discover "dns name=x interval=0"
	assert_regex "${stderr_lines[0]}" "invalid interval '0'"
	run -2 --separate-stderr fd-node --name x --listen 127.0.0.1:0 --discover "static addrs=a:1,b:x"
	assert_equal "${stderr_lines[0]}" \
		"fd-node: invalid --discover 'static addrs=a:1,b:x': invalid address 'b:x' (expected HOST[:PORT])"
	run -2 --separate-stderr fd-node --name x --listen 127.0.0.1:0 --discover "exec cmd='x"
	assert_regex "${stderr_lines[0]}" "unclosed quote"
	run -2 --separate-stderr fd-node --name x --listen 127.0.0.1:0 --discover "kubernetes namespace=x api=http://127.0.0.1:1"
	assert_regex "${stderr_lines[0]}" "kubernetes needs a label selector"
}
