# shellcheck shell=bash
# shellcheck disable=SC2034  # NETNS is the interface
# A network namespace of the test's own for multicast tests: multicast must
# never leave the machine, so every mdns/gossip test runs in one.
#
#   netns_setup [noroute]  creates namespace $NETNS (unique name), brings its
#                          lo up with multicast on and, unless noroute, a
#                          route for 224.0.0.0/4 on lo; skips the test when
#                          namespaces cannot be made (not root, no ip)
#   in_ns CMD...           runs CMD in the namespace
#   ns_start_node NAME ARG...
#                          fd_start_node in the namespace (FD_ADDR etc.)
#   ns_spawn NAME CMD...   fd_spawn in the namespace
#   netns_teardown         deletes the namespace (after fd_common_teardown
#                          has stopped what ran in it)

netns_setup()
{
	command -v ip >/dev/null 2>&1 || skip "ip (iproute2) is not installed"
	[ "$(id -u)" -eq 0 ] || skip "network namespaces need root"
	NETNS=fdt-$$-${BATS_TEST_NUMBER}-$RANDOM
	if ! ip netns add "$NETNS" 2>"$FD_TMP/netns.err"; then
		NETNS=
		skip "unable to create a network namespace: $(cat "$FD_TMP/netns.err")"
	fi
	ip -n "$NETNS" link set lo up
	ip -n "$NETNS" link set lo multicast on
	if [ "${1:-}" != noroute ]; then
		ip -n "$NETNS" route add 224.0.0.0/4 dev lo
	fi
}

in_ns()
{
	ip netns exec "$NETNS" "$@"
}

ns_spawn()
{
	local name=$1
	shift
	fd_spawn "$name" ip netns exec "$NETNS" "$@"
}

ns_start_node()
{
	local name=$1
	shift
	_fd_node_args "$name" "$@"
	ns_spawn "$name" fd-node "${_FD_ARGS[@]}"
	fd_wait_identity "$name"
}

netns_teardown()
{
	if [ -n "${NETNS:-}" ]; then
		ip netns del "$NETNS" 2>/dev/null || true
	fi
}
