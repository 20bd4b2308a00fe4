#!/usr/bin/env bats
# shellcheck disable=SC2154  # $stderr comes from run
# fd-partition --backend netns: nodes in network namespaces the test makes
# (n1 in one, n2 and n3 on two addresses of another, joined by a veth
# pair), cut with nftables inside the namespaces: members fail, status
# reads the rules back, heal removes them, the nodes rejoin; rules expire.

setup() { load helpers/common; fd_common_setup; }
teardown() {
	fd_common_teardown
	local ns
	for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}

declare -ga NETNS=()

netns_setup() {
	[ "$(id -u)" = 0 ] || skip "network namespaces need root"
	command -v nft >/dev/null || skip "nft is not installed"
	local id=$$.$BATS_TEST_NUMBER
	NS1=fdp1.$id NS2=fdp2.$id
	ip netns add "$NS1" || skip "ip netns unavailable"
	NETNS+=("$NS1")
	ip netns add "$NS2"
	NETNS+=("$NS2")
	ip link add "fdpa.$$" netns "$NS1" type veth peer name "fdpb.$$" netns "$NS2"
	ip -n "$NS1" addr add 10.212.7.1/24 dev "fdpa.$$"
	ip -n "$NS2" addr add 10.212.7.2/24 dev "fdpb.$$"
	ip -n "$NS2" addr add 10.212.7.3/24 dev "fdpb.$$"
	for ns in "$NS1" "$NS2"; do ip -n "$ns" link set lo up; done
	ip -n "$NS1" link set "fdpa.$$" up
	ip -n "$NS2" link set "fdpb.$$" up
	ns_node "$NS1" n1 10.212.7.1
	ns_node "$NS2" n2 10.212.7.2 --join "${FD_ADDR[n1]}"
	ns_node "$NS2" n3 10.212.7.3 --join "${FD_ADDR[n1]}"
	NSOF=([n1]=$NS1 [n2]=$NS2 [n3]=$NS2)
	for n in n1 n2 n3; do fd_wait_until 15s sees "$n" 3; done
	N=(-n "${FD_ADDR[n1]}@$NS1" -n "${FD_ADDR[n2]}@$NS2" -n "${FD_ADDR[n3]}@$NS2")
}
declare -gA NSOF=()
# Off loopback a node needs a cluster key (or --insecure): one for all.
ns_node() {
	local ns=$1 name=$2 ip=$3
	shift 3
	[ -f "$FD_TMP/ns.key" ] || fd-node keygen "$FD_TMP/ns.key"
	fd_spawn "$name" ip netns exec "$ns" fd-node --name "$name" --listen "$ip:0" --profile local \
		--key-file "$FD_TMP/ns.key" "$@"
	fd_wait_identity "$name"
}
members() { ip netns exec "${NSOF[$1]}" fd-node members -n "${FD_ADDR[$1]}"; }
state_of() { members "$1" | jq -r --arg m "$2" 'select(.name == $m) | .state'; }
has_state() { [ "$(state_of "$1" "$2")" = "$3" ]; }
sees() { [ "$(members "$1" | jq -s '[.[] | select(.state == "alive")] | length')" = "$2" ]; }
nft_rules() { fd-partition "${N[@]}" --backend netns status | jq -s '[.[].rules | length] | add'; }
no_nft_rules() { [ "$(nft_rules)" = 0 ]; }

@test "netns: split n1 | n2,n3 with nftables; status finds the rules; heal; they rejoin" {
	netns_setup
	run -0 --separate-stderr fd-partition "${N[@]}" --backend netns --duration 60s split n1
	run -0 jq -e '.backend == "netns" and .groups == [["n1"], ["n2", "n3"]]' <<<"$output"
	# the node gates are untouched: the kernel drops the packets
	for n in n1 n2 n3; do
		run -0 ip netns exec "${NSOF[$n]}" curl -sf "http://${FD_ADDR[$n]}/v1/faults"
		run -0 jq -e '.rules == []' <<<"$output"
	done
	ip netns exec "$NS1" nft list table inet fd_partition | grep -q '10.212.7.2 . 10.212.7.1'
	fd_wait_until 15s has_state n1 n2 failed
	fd_wait_until 15s has_state n1 n3 failed
	fd_wait_until 15s has_state n2 n1 failed
	# n2 and n3 share a namespace and still see each other
	[ "$(state_of n2 n3)" = alive ]
	# status: from the tables, as a fresh fd-partition after a crash sees them
	run -0 fd-partition "${N[@]}" --backend netns status
	local st=$output
	run -0 jq -e -s 'map({(.node): (.rules | map(.peer + ":" + .direction + ":" + .action) | sort)}) | add == {"n1": ["n2:both:drop", "n3:both:drop"], "n2": ["n1:both:drop"], "n3": ["n1:both:drop"]}' <<<"$st"
	run -0 jq -e -s 'all(.[].rules[]; .expires_in > 0 and .expires_in <= 60)' <<<"$st"
	run -0 fd-partition "${N[@]}" --backend netns heal
	run -1 ip netns exec "$NS1" nft list table inet fd_partition
	no_nft_rules
	for n in n1 n2 n3; do fd_wait_until 30s sees "$n" 3; done
}

@test "netns: isolate one of two nodes sharing a namespace; rules expire by themselves" {
	netns_setup
	run -0 fd-partition "${N[@]}" --backend netns --duration 3s isolate n3
	fd_wait_until 15s has_state n2 n3 failed
	# the set elements time out in the kernel: nothing left to cut
	fd_wait_until 15s no_nft_rules
	for n in n1 n2 n3; do fd_wait_until 30s sees "$n" 3; done
	run -0 fd-partition "${N[@]}" --backend netns heal
}

@test "netns: bad input changes nothing" {
	netns_setup
	run -2 --separate-stderr fd-partition "${N[@]}" --backend netns slow --delay 100ms
	[[ $stderr == *"only drops and loses"*"nothing changed"* ]]
	run -2 --separate-stderr fd-partition -n "${FD_ADDR[n1]}@$NS1" -n "${FD_ADDR[n2]}" --backend netns split n1
	[[ $stderr == *"has no namespace"* ]]
	run -2 --separate-stderr fd-partition -n "${FD_ADDR[n1]}@bad/ns" --backend netns heal
	[[ $stderr == *"invalid namespace"* ]]
	run -2 --separate-stderr fd-partition "${N[@]}" --backend iptables heal
	run -1 --separate-stderr fd-partition -n "${FD_ADDR[n1]}@fdp-none.$$" --backend netns status
	[[ $stderr == *"no network namespace"* ]]
	run -2 --separate-stderr fd-partition "${N[@]}" --backend netns split n1 n9
	no_nft_rules
	# --dry-run prints the nft input and installs nothing
	run -0 fd-partition "${N[@]}" --backend netns --dry-run flaky --loss 25% n1
	run -0 jq -e --arg ns "$NS1" '.nft[$ns] | test("numgen random mod 1000000 < 250000")' <<<"$output"
	no_nft_rules
	# and through stdin: a "netns" field
	run -0 bash -c "printf '%s\n' '{\"addr\":\"${FD_ADDR[n1]}\",\"netns\":\"$NS1\"}' '{\"addr\":\"${FD_ADDR[n2]}\",\"netns\":\"$NS2\"}' | fd-partition --backend netns --dry-run isolate n1"
	run -0 jq -e '.groups == [["n1"], ["n2"]]' <<<"$output"
}
