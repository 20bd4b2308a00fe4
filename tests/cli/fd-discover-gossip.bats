#!/usr/bin/env bats
# shellcheck disable=SC2154  # stderr* come from bats run
# fd-discover gossip and fd-node --announce gossip, inside a network
# namespace of each test's own (multicast on its loopback; nothing leaves
# the host). Heartbeats are sealed with the cluster key.

setup()
{
	load helpers/common
	load helpers/netns
	fd_common_setup
	netns_setup
	KEY=$FD_TMP/key
	fd-node keygen "$KEY" 2>/dev/null
}

teardown()
{
	fd_common_teardown
	netns_teardown
}

# "event name addr" of the peer lines of FILE (or stdin)
peers() { jq -r 'select(.type == "peer") | "\(.event) \(.name // "-") \(.addr)"' "$@"; }
# has_events N EVENT FILE: FILE has at least N peer lines of that event
has_events() { [ "$(jq -r "select(.type == \"peer\" and .event == \"$2\") | .addr" "$3" | wc -l)" -ge "$1" ]; }
# info NAME JQ: a value from NAME's /v1/info
info() { in_ns curl -sS "http://${FD_ADDR[$1]}/v1/info" | jq -c "$2"; }

three_nodes()
{
	local i
	for i in 1 2 3; do
		ns_start_node "n$i" --announce gossip --key-file "$KEY" \
			--gossip-interval 200ms --meta "zone=z$i"
	done
}

@test "gossip: three nodes are found with no addresses given; heartbeats sealed" {
	three_nodes
	run -0 --separate-stderr in_ns fd-discover gossip --key-file "$KEY" --expect 3 --timeout 20s
	assert_equal "$stderr" ""
	assert_equal "$(peers <<<"$output" | sort)" "$(printf 'up n%s %s\n' \
		1 "${FD_ADDR[n1]}" 2 "${FD_ADDR[n2]}" 3 "${FD_ADDR[n3]}")"
	assert_equal "$(jq -c 'select(.name == "n3") | .meta' <<<"$output")" \
		"{\"id\":\"${FD_ID[n3]}\",\"version\":\"$(cat "$FD_ROOT/VERSION")\",\"zone\":\"z3\"}"
	# FD_KEY_FILE works as --key-file; a one-shot run lists after --window
	FD_KEY_FILE=$KEY run -0 --separate-stderr in_ns fd-discover gossip --window 1s
	assert_equal "$(peers <<<"$output" | wc -l)" 3
	assert_equal "$(info n1 '.announce.gossip | [.group, .port, .ttl, .sealed]')" \
		'["233.252.1.32",45892,1,true]'
}

@test "gossip: fd-discover gossip --watch | fd-join --expect 3 forms the cluster" {
	three_nodes
	mkfifo "$FD_TMP/peers"
	ns_spawn watch sh -c "exec fd-discover gossip --key-file '$KEY' --watch >'$FD_TMP/peers'"
	run -0 --separate-stderr in_ns timeout 30 fd-join -n "${FD_ADDR[n1]}" \
		--expect 3 --timeout 20s <"$FD_TMP/peers"
	run -0 in_ns fd-node members -n "${FD_ADDR[n2]}"
	assert_equal "$(jq -r 'select(.state == "alive") | .name' <<<"$output" | sort | tr '\n' ' ')" "n1 n2 n3 "
}

@test "gossip: a node with another key is ignored and counted" {
	three_nodes
	fd-node keygen "$FD_TMP/other" 2>/dev/null
	ns_start_node evil --announce gossip --key-file "$FD_TMP/other" --gossip-interval 200ms
	ns_spawn watch fd-discover gossip --key-file "$KEY" --watch --interval 200ms
	fd_wait_until 20s grep -q '"type":"error"' "${FD_OUT[watch]}"
	fd_wait_until 20s has_events 3 up "${FD_OUT[watch]}"
	run -0 jq -r 'select(.type == "error") | .error' "${FD_OUT[watch]}"
	assert_regex "${lines[0]}" "^ignored a datagram from [0-9.]+:45892: unknown key [0-9a-f]{8} \(bad key: [0-9]+ so far\)$"
	kill -TERM "${FD_PID[watch]}"
	fd_wait_until 5s _fd_gone "${FD_PID[watch]}"
	run -0 wait "${FD_PID[watch]}"
	assert_equal "$(peers "${FD_OUT[watch]}" | grep -c evil)" 0
	run -0 grep '^fd-discover: gossip: .* ignored (bad key [1-9]' "${FD_ERR[watch]}"
	# the nodes count them too, and say so in the log
	[ "$(info n1 .announce.gossip.ignored.bad_key)" -ge 1 ]
	grep -q 'gossip: ignored a datagram from .*: unknown key' "${FD_ERR[n1]}"
	# and the one-shot run ends with the sum on stderr
	run -0 --separate-stderr in_ns fd-discover gossip --key-file "$KEY" --window 1s
	assert_equal "$(peers <<<"$output" | wc -l)" 3
	assert_regex "$stderr" "^fd-discover: gossip: [0-9]+ datagrams received, [0-9]+ accepted, [0-9]+ ignored \(bad key [1-9][0-9]*, replayed 0, unsealed 0, sealed 0, malformed 0\)$"
}

@test "gossip: a replayed heartbeat is ignored and counted" {
	ns_start_node n1 --announce gossip --key-file "$KEY" --gossip-interval 200ms
	ns_spawn watch fd-discover gossip --key-file "$KEY" --watch --interval 200ms
	fd_wait_until 20s has_events 1 up "${FD_OUT[watch]}"
	run -0 in_ns timeout 10 mcast-replay 233.252.1.32 45892 2
	assert_equal "${lines[*]}" "captured 2 replayed 2"
	fd_wait_until 10s grep -q 'replayed (replayed: 1 so far)' "${FD_OUT[watch]}"
	fd_wait_until 10s test "$(info n1 .announce.gossip.ignored.replayed)" -ge 1
	assert_equal "$(info n1 .announce.gossip.ignored.bad_key)" 0
}

@test "gossip: leave on node stop brings 'down'; a restart is 'up' again" {
	three_nodes
	ns_spawn watch fd-discover gossip --key-file "$KEY" --watch --interval 200ms
	fd_wait_until 20s has_events 3 up "${FD_OUT[watch]}"
	fd_stop_node n2
	assert_equal "${FD_EXIT[n2]}" 0
	grep -q 'gossip: leave sent' "${FD_ERR[n2]}"
	fd_wait_until 5s has_events 1 down "${FD_OUT[watch]}"
	assert_equal "$(peers "${FD_OUT[watch]}" | grep '^down')" "down - ${FD_ADDR[n2]}"
	# killed without a word: down once its heartbeats are missed (3 x 200 ms)
	fd_stop_node n3 KILL
	fd_wait_until 10s has_events 2 down "${FD_OUT[watch]}"
	ns_start_node n2b --name n2 --announce gossip --key-file "$KEY" --gossip-interval 200ms
	fd_wait_until 10s grep -q "\"addr\":\"${FD_ADDR[n2b]}\"" "${FD_OUT[watch]}"
}

@test "gossip: without a key, refused unless --insecure; plain and sealed do not mix" {
	run -2 --separate-stderr in_ns fd-discover gossip
	assert_equal "${stderr_lines[0]}" "fd-discover: gossip: no key: give --key-file FILE (or FD_KEY_FILE), or --insecure for plain heartbeats"
	run -2 --separate-stderr in_ns fd-node --listen 127.0.0.1:0 --announce gossip
	assert_equal "${stderr_lines[-1]}" "fd-node: --announce gossip: no cluster key: give --key-file FILE (or FD_KEY_FILE), or --insecure for plain heartbeats"
	run -2 --separate-stderr in_ns fd-discover gossip --key-file "$KEY" --insecure
	chmod 644 "$KEY"
	run -2 --separate-stderr in_ns fd-discover gossip --key-file "$KEY"
	assert_regex "${stderr_lines[0]}" "key file '.*' is accessible to group or others \(mode 0644\): chmod 600 it"
	chmod 600 "$KEY"
	ns_start_node plain --announce gossip --insecure --gossip-interval 200ms
	ns_start_node sealed --announce gossip --key-file "$KEY" --gossip-interval 200ms
	run -0 --separate-stderr in_ns fd-discover gossip --insecure --expect 1 --timeout 20s
	assert_equal "$(peers <<<"$output")" "up plain ${FD_ADDR[plain]}"
	run -0 --separate-stderr in_ns fd-discover gossip --key-file "$KEY" --window 1s
	assert_equal "$(peers <<<"$output")" "up sealed ${FD_ADDR[sealed]}"
	assert_regex "$stderr" "ignored \(bad key 0, replayed 0, unsealed [1-9][0-9]*, sealed 0, malformed 0\)$"
	fd_wait_until 10s test "$(info plain .announce.gossip.ignored.sealed)" -ge 1
	assert_equal "$(info plain .announce.gossip.sealed)" false
}

@test "gossip: bad options exit 2 with clear messages" {
	run -2 --separate-stderr in_ns fd-discover gossip --insecure --multicast-addr 10.1.2.3
	assert_equal "${stderr_lines[0]}" "fd-discover: invalid --multicast-addr: '10.1.2.3' is not a multicast address (224.0.0.0/4)"
	run -2 --separate-stderr in_ns fd-discover gossip --insecure --multicast-addr nope
	assert_equal "${stderr_lines[0]}" "fd-discover: invalid --multicast-addr: 'nope' is not an IPv4 address"
	run -2 --separate-stderr in_ns fd-discover gossip --insecure --multicast-port 0
	assert_equal "${stderr_lines[0]}" "fd-discover: invalid --multicast-port '0' (1 to 65535)"
	run -2 --separate-stderr in_ns fd-discover gossip --insecure --multicast-ttl 0
	assert_equal "${stderr_lines[0]}" "fd-discover: invalid --multicast-ttl '0' (1 to 255)"
	run -2 --separate-stderr in_ns fd-discover gossip --insecure --multicast-if nosuch0
	assert_equal "${stderr_lines[0]}" "fd-discover: invalid --multicast-if: no such interface 'nosuch0'"
	run -2 --separate-stderr in_ns fd-discover gossip --insecure --multicast-if 10.9.9.9
	assert_equal "${stderr_lines[0]}" "fd-discover: invalid --multicast-if: no interface has address '10.9.9.9'"
	run -2 --separate-stderr in_ns fd-discover gossip --insecure --cluster 'a b'
	run -2 --separate-stderr in_ns fd-node --announce gossip --insecure --multicast-addr 239.1.1.300
	assert_equal "${stderr_lines[0]}" "fd-node: invalid --multicast-addr: '239.1.1.300' is not an IPv4 address"
	run -2 --separate-stderr in_ns fd-node --announce gossip --insecure --multicast-port 0
	assert_equal "${stderr_lines[0]}" "fd-node: invalid --multicast-port '0' (1 to 65535)"
	run -2 --separate-stderr in_ns fd-node --announce gossip --insecure --multicast-if nosuch0
	assert_equal "${stderr_lines[0]}" "fd-node: invalid --multicast-if: no such interface 'nosuch0'"
	run -2 --separate-stderr in_ns fd-node --announce gossip --insecure --gossip-interval 1ms
	assert_equal "${stderr_lines[0]}" "fd-node: invalid --gossip-interval '1ms' (100ms to 1h)"
}

@test "gossip: a port taken without SO_REUSEPORT, and no multicast route, are clear errors" {
	ns_spawn hold port-hold udp 45999
	fd_wait_until 10s test -s "${FD_OUT[hold]}"
	run -1 --separate-stderr in_ns fd-discover gossip --insecure --multicast-port 45999
	assert_equal "$stderr" "fd-discover: gossip: unable to bind UDP port 45999: in use by a socket without SO_REUSEPORT (another program, or another user's)"
	run -1 --separate-stderr in_ns fd-node --listen 127.0.0.1:0 --announce gossip --insecure --multicast-port 45999
	assert_equal "${stderr_lines[-1]}" "fd-node: --announce gossip: unable to bind UDP port 45999: in use by a socket without SO_REUSEPORT (another program, or another user's)"
	netns_teardown
	netns_setup noroute
	run -1 --separate-stderr in_ns fd-discover gossip --insecure
	assert_equal "$stderr" 'fd-discover: gossip: unable to join 233.252.1.32:45892: no multicast route: add one, e.g. `ip route add 224.0.0.0/4 dev lo`, or pick --multicast-if'
	# several on one port and group: shared (SO_REUSEADDR, SO_REUSEPORT)
	ns_start_node a --announce gossip --insecure --multicast-if lo
	ns_start_node b --announce gossip --insecure --multicast-if lo
	run -0 --separate-stderr in_ns fd-discover gossip --insecure --multicast-if lo --expect 2 --timeout 20s
}

@test "gossip: fd-node --discover gossip joins with the node's own key" {
	three_nodes
	ns_start_node d --discover gossip --key-file "$KEY"
	fd_wait_until 20s sh -c "ip netns exec '$NETNS' fd-node members -n '${FD_ADDR[d]}' |
		jq -r 'select(.state == \"alive\") | .name' | sort | tr '\n' ' ' | grep -qx 'd n1 n2 n3 '"
	assert_equal "$(info d '.discover[0] | [.strategy, .peers, .joins_failed]')" '["gossip",3,0]'
	# without a key of its own nor in the spec: refused before it starts
	run -2 --separate-stderr in_ns fd-node --listen 127.0.0.1:0 --discover gossip
	assert_equal "${stderr_lines[0]}" "fd-node: invalid --discover 'gossip': gossip needs a key: key_file=FILE (or the node's --key-file), or insecure=true for plain heartbeats"
}
