#!/usr/bin/env bats
# shellcheck disable=SC2154  # stderr* come from bats run
# fd-discover mdns and fd-node --announce mdns, inside a network namespace
# of each test's own (multicast on its loopback; nothing leaves the host).

setup()
{
	load helpers/common
	load helpers/netns
	fd_common_setup
	netns_setup
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

three_nodes()
{
	local i
	for i in 1 2 3; do
		ns_start_node "n$i" --announce mdns --meta "zone=z$i"
	done
}

@test "mdns: three nodes are found with no addresses given; meta from TXT" {
	three_nodes
	run -0 --separate-stderr in_ns fd-discover mdns --expect 3 --timeout 20s
	assert_equal "$(peers <<<"$output" | sort)" "$(printf 'up n%s %s\n' \
		1 "${FD_ADDR[n1]}" 2 "${FD_ADDR[n2]}" 3 "${FD_ADDR[n3]}")"
	assert_equal "$(jq -c 'select(.name == "n2") | .meta' <<<"$output")" \
		"{\"id\":\"${FD_ID[n2]}\",\"version\":\"$(cat "$FD_ROOT/VERSION")\",\"zone\":\"z2\"}"
	assert_equal "$(jq -r '.strategy' <<<"$output" | sort -u)" mdns
	# a one-shot run without --expect listens for --window, prints the set
	run -0 --separate-stderr in_ns fd-discover mdns --window 1500ms
	assert_equal "$(peers <<<"$output" | wc -l)" 3
	# the nodes show their responder in /v1/info
	run -0 in_ns curl -sS "http://${FD_ADDR[n1]}/v1/info"
	assert_equal "$(jq -c '.announce.mdns | [.instance, .state, .service]' <<<"$output")" \
		'["n1","ready","_fd._tcp.local"]'
}

@test "mdns: fd-discover mdns --watch | fd-join --expect 3 forms the cluster" {
	three_nodes
	mkfifo "$FD_TMP/peers"
	ns_spawn watch sh -c "exec fd-discover mdns --watch >'$FD_TMP/peers'"
	run -0 --separate-stderr in_ns timeout 30 fd-join -n "${FD_ADDR[n1]}" \
		--expect 3 --timeout 20s <"$FD_TMP/peers"
	run -0 in_ns fd-node members -n "${FD_ADDR[n3]}"
	assert_equal "$(jq -r 'select(.state == "alive") | .name' <<<"$output" | sort | tr '\n' ' ')" "n1 n2 n3 "
}

@test "mdns: fd-node --discover mdns joins the nodes that announce themselves" {
	three_nodes
	ns_start_node d --discover mdns
	fd_wait_until 20s sh -c "ip netns exec '$NETNS' fd-node members -n '${FD_ADDR[d]}' |
		jq -r 'select(.state == \"alive\") | .name' | sort | tr '\n' ' ' | grep -qx 'd n1 n2 n3 '"
	run -0 in_ns curl -sS "http://${FD_ADDR[d]}/v1/info"
	assert_equal "$(jq -c '.discover[0] | [.strategy, .peers, .joins_failed]' <<<"$output")" '["mdns",3,0]'
	# a node announcing later is joined too, within the same second or so
	ns_start_node n4 --announce mdns
	fd_wait_until 20s sh -c "ip netns exec '$NETNS' fd-node members -n '${FD_ADDR[n4]}' |
		jq -r 'select(.state == \"alive\") | .name' | sort | tr '\n' ' ' | grep -qx 'd n1 n2 n3 n4 '"
	run -2 --separate-stderr in_ns fd-node --discover 'mdns multicast_if=nosuch0'
	assert_equal "${stderr_lines[0]}" "fd-node: invalid --discover 'mdns multicast_if=nosuch0': invalid multicast_if: no such interface 'nosuch0'"
}

@test "mdns: a node's goodbye on stop brings 'down' (after --down-after)" {
	three_nodes
	ns_spawn watch fd-discover mdns --watch --interval 200ms --down-after 2
	fd_wait_until 20s has_events 3 up "${FD_OUT[watch]}"
	fd_stop_node n2
	assert_equal "${FD_EXIT[n2]}" 0
	grep -q "mDNS: goodbye sent for 'n2'" "${FD_ERR[n2]}"
	fd_wait_until 10s grep -q '"event":"down"' "${FD_OUT[watch]}"
	assert_equal "$(peers "${FD_OUT[watch]}" | grep '^down')" "down - ${FD_ADDR[n2]}"
	# it comes back under the same name when restarted
	ns_start_node n2b --name n2 --announce mdns
	fd_wait_until 20s grep -q "\"addr\":\"${FD_ADDR[n2b]}\"" "${FD_OUT[watch]}"
	kill -TERM "${FD_PID[watch]}"
	fd_wait_until 5s _fd_gone "${FD_PID[watch]}"
	run -0 wait "${FD_PID[watch]}"
}

@test "mdns: a name taken on the link is probed as 'name (2)' (RFC 6762 §9)" {
	ns_start_node a --name same --announce mdns
	run -0 in_ns fd-discover mdns --expect 1 --timeout 20s
	ns_start_node b --name same --announce mdns
	fd_wait_until 20s grep -q "mDNS: the name 'same' is taken on the link: probing for 'same (2)'" "${FD_ERR[b]}"
	run -0 --separate-stderr in_ns fd-discover mdns --expect 2 --timeout 20s
	assert_equal "$(peers <<<"$output" | LC_ALL=C sort)" "$(printf 'up same (2) %s\nup same %s' \
		"${FD_ADDR[b]}" "${FD_ADDR[a]}")"
	run -0 in_ns curl -sS "http://${FD_ADDR[b]}/v1/info"
	assert_equal "$(jq -c '.announce.mdns | [.instance, .renames]' <<<"$output")" '["same (2)",1]'
}

@test "mdns: bad options exit 2 with clear messages" {
	run -2 --separate-stderr in_ns fd-discover mdns --multicast-if nosuch0
	assert_equal "${stderr_lines[0]}" "fd-discover: invalid --multicast-if: no such interface 'nosuch0'"
	run -2 --separate-stderr in_ns fd-discover mdns --multicast-addr 224.0.0.9
	assert_equal "${stderr_lines[0]}" "fd-discover: mdns: the group is 224.0.0.251:5353; --multicast-addr, --multicast-port and --multicast-ttl are for gossip"
	run -2 --separate-stderr in_ns fd-discover mdns extra
	run -2 --separate-stderr in_ns fd-node --announce bonjour
	assert_equal "${stderr_lines[0]}" "fd-node: invalid --announce 'bonjour' (mdns, gossip, or both: mdns,gossip)"
	run -2 --separate-stderr in_ns fd-node --announce mdns --meta novalue
	assert_equal "${stderr_lines[0]}" "fd-node: invalid --meta 'novalue' (KEY=VALUE, at most 255 bytes)"
	run -2 --separate-stderr in_ns fd-node --announce mdns --meta id=x
	run -2 --separate-stderr in_ns fd-node --listen 127.0.0.1:0 --announce mdns \
		--name "$(printf 'n%.0s' {1..64})"
	assert_regex "${stderr_lines[-1]}" "^fd-node: --announce mdns: an mDNS instance name has 1 to 63 bytes .* \(pick a shorter --name\)$"
	run -2 --separate-stderr in_ns fd-node --announce mdns --multicast-if nosuch0
	assert_equal "${stderr_lines[0]}" "fd-node: invalid --multicast-if: no such interface 'nosuch0'"
}

@test "mdns: no multicast route is a clear error, exit 1" {
	netns_teardown
	netns_setup noroute
	local advice='no multicast route: add one, e.g. `ip route add 224.0.0.0/4 dev lo`, or pick --multicast-if'
	run -1 --separate-stderr in_ns fd-discover mdns
	assert_equal "$stderr" "fd-discover: mdns: unable to join 224.0.0.251:5353: $advice"
	run -1 --separate-stderr in_ns fd-node --listen 127.0.0.1:0 --announce mdns
	assert_equal "${stderr_lines[-1]}" "fd-node: --announce mdns: unable to join 224.0.0.251:5353: $advice"
	# naming the interface is enough
	ns_start_node n1 --announce mdns --multicast-if lo
	run -0 --separate-stderr in_ns fd-discover mdns --multicast-if lo --expect 1 --timeout 20s
	assert_equal "$(peers <<<"$output")" "up n1 ${FD_ADDR[n1]}"
}

# avahi in the test's namespace: a veth pair (avahi ignores loopback), a
# D-Bus system bus of the test's own, avahi-daemon with /run private to it.
avahi_setup()
{
	local d=$FD_TMP/avahi
	command -v avahi-daemon >/dev/null 2>&1 && command -v avahi-browse >/dev/null 2>&1 &&
		command -v avahi-publish >/dev/null 2>&1 && command -v dbus-daemon >/dev/null 2>&1 ||
		skip "avahi-daemon, avahi-utils or dbus-daemon not installed (scripts/install-deps)"
	mkdir -p "$d"
	in_ns ip link add fdav0 type veth peer name fdav1 ||
		skip "unable to create a veth pair in the namespace"
	in_ns ip link set fdav1 up
	in_ns ip link set fdav0 multicast on up
	in_ns ip addr add 10.213.7.1/24 dev fdav0
	in_ns ip route replace 224.0.0.0/4 dev fdav0
	cat >"$d/bus.conf" <<EOC
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$d/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
EOC
	printf '%s\n' '[server]' 'allow-interfaces=fdav0' 'use-ipv6=no' \
		'[publish]' 'publish-hinfo=no' 'publish-workstation=no' >"$d/avahi.conf"
	export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$d/bus
	ns_spawn dbus dbus-daemon --config-file="$d/bus.conf" --nofork
	fd_wait_until 10s test -S "$d/bus"
	ns_spawn avahi unshare -m sh -c "mount -t tmpfs tmpfs /run && mkdir /run/avahi-daemon &&
		exec avahi-daemon -f '$d/avahi.conf' --no-chroot --no-drop-root --no-rlimits"
	fd_wait_until 20s in_ns avahi-browse -t -p _fd._tcp
}

@test "mdns: avahi-browse resolves our announcement; we find avahi-publish's" {
	avahi_setup
	ns_start_node n1 --announce mdns --multicast-if fdav0 --meta zone=a
	fd_wait_until 20s sh -c "ip netns exec '$NETNS' avahi-browse -r -p -t -k _fd._tcp | grep -q '^=;fdav0;IPv4;n1;'"
	run -0 in_ns avahi-browse -r -p -t -k _fd._tcp
	run -0 grep '^=;fdav0;IPv4;n1;' <<<"$output"
	assert_regex "$output" "^=;fdav0;IPv4;n1;_fd._tcp;local;fd-${FD_ID[n1]:0:12}.local;127.0.0.1;${FD_PORT[n1]};"
	assert_regex "$output" "\"zone=a\""
	assert_regex "$output" "\"id=${FD_ID[n1]}\""
	# the other way round: a service avahi publishes is a peer for us
	ns_spawn pub avahi-publish -s av1 _fd._tcp 4999 "id=0123456789abcdef0123456789abcdef" zone=b
	run -0 --separate-stderr in_ns fd-discover mdns --multicast-if fdav0 --expect 2 --timeout 20s
	assert_equal "$(peers <<<"$output" | LC_ALL=C sort)" "$(printf 'up av1 10.213.7.1:4999\nup n1 %s' "${FD_ADDR[n1]}")"
	assert_equal "$(jq -cS 'select(.name == "av1") | .meta' <<<"$output")" \
		'{"id":"0123456789abcdef0123456789abcdef","zone":"b"}'
}
