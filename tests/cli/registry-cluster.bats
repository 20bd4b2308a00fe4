#!/usr/bin/env bats
# shellcheck disable=SC2154  # $stderr comes from run
# The registry across real fd-node processes (through the HTTP API; the
# fd-registry command has its own file): replication of 100,000 names with a
# restart in the middle, concurrent writers, a late joiner, owner failure,
# conflicts after a partition (network namespaces), watch, bad input.

setup() { load helpers/common; fd_common_setup; }
teardown() {
	fd_common_teardown
	local ns
	for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}

declare -ga NETNS=()

# names NODE: how many names NODE holds.
names() { curl -sf "http://${FD_ADDR[$1]}/v1/info" | jq -r .registry.names; }
has_names() { [ "$(names "$1")" = "$2" ]; }
# digest NODE: a hash of everything NODE lists (name, value, owner id).
digest() { curl -sf "http://${FD_ADDR[$1]}/v1/registry" | jq -c '[.name, .value, .owner_id]' | sha256sum | cut -d' ' -f1; }

# converged COUNT NODE...: every NODE holds COUNT names, the same on all.
converged() {
	local count=$1 first=$2 d n
	shift
	for n in "$@"; do has_names "$n" "$count" || return 1; done
	d=$(digest "$first")
	for n in "$@"; do [ "$(digest "$n")" = "$d" ] || return 1; done
}

# gen FILE FROM TO PREFIX: ndjson registrations FROM..TO.
gen() { seq "$2" "$3" | awk -v p="$4" '{ printf "{\"name\":\"%s%06d\",\"value\":{\"n\":%d}}\n", p, $1, $1 }' >"$1"; }

# batch NODE FILE: registers every line of FILE through NODE in chunks of
# 1000; fails when any line was refused.
batch() {
	local node=$1 file=$2 dir chunk
	dir=$(mktemp -d "$FD_TMP/chunks.XXXX")
	split -l 1000 "$file" "$dir/c."
	for chunk in "$dir"/c.*; do
		curl -sf --data-binary @"$chunk" "http://${FD_ADDR[$node]}/v1/registry/batch" >"$chunk.out" || return 1
		if grep -q '"type":"error"' "$chunk.out"; then
			head -3 "$chunk.out" >&2
			return 1
		fi
	done
}

start3() {
	fd_start_node a --profile local
	fd_start_node b --profile local --join "${FD_ADDR[a]}"
	fd_start_node c --profile local --join "${FD_ADDR[a]}"
	for n in a b c; do fd_wait_until 10s bash -c "[ \$(fd-node members -n ${FD_ADDR[$n]} | grep -c '\"alive\"') = 3 ]"; done
}

@test "100,000 names registered through A are all on B and C, with C restarted in the middle" {
	start3
	gen "$FD_TMP/first" 1 50000 n
	gen "$FD_TMP/second" 50001 100000 n
	batch a "$FD_TMP/first"
	fd_stop_node c TERM
	fd_start_node c --profile local --join "${FD_ADDR[b]}"
	batch a "$FD_TMP/second"
	fd_wait_until 90s converged 100000 a b c
	run -0 bash -c "curl -sf 'http://${FD_ADDR[c]}/v1/registry?name=n077777' | jq -c .value"
	assert_output '{"n":77777}'
}

@test "three nodes registering 10,000 distinct names each, concurrently: all 30,000 everywhere" {
	start3
	local pids=() n
	for n in a b c; do
		gen "$FD_TMP/$n" 1 10000 "$n."
		batch "$n" "$FD_TMP/$n" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	fd_wait_until 60s converged 30000 a b c
}

@test "a third node joining a two-node cluster holding 50,000 names: nothing vanishes" {
	fd_start_node a --profile local
	fd_start_node b --profile local --join "${FD_ADDR[a]}"
	fd_wait_until 10s bash -c "[ \$(fd-node members -n ${FD_ADDR[b]} | grep -c '\"alive\"') = 2 ]"
	gen "$FD_TMP/half" 1 25000 a.
	batch a "$FD_TMP/half"
	gen "$FD_TMP/half" 1 25000 b.
	batch b "$FD_TMP/half"
	fd_wait_until 30s has_names b 50000
	fd_start_node c --profile local --join "${FD_ADDR[b]}"
	fd_wait_until 60s converged 50000 a b c
}

@test "a failed owner's ephemeral names go everywhere; persistent ones stay" {
	start3
	curl -sf -X PUT "http://${FD_ADDR[c]}/v1/registry?name=eph" -d '{"value":1}' >/dev/null
	curl -sf -X PUT "http://${FD_ADDR[c]}/v1/registry?name=per" -d '{"value":2,"persistent":true}' >/dev/null
	fd_wait_until 10s has_names a 2
	fd_stop_node c KILL
	fd_wait_until 15s has_names a 1
	fd_wait_until 15s has_names b 1
	fd_http GET "${FD_ADDR[a]}" "/v1/registry?name=per"
	assert_equal "$HTTP_CODE" 200
	fd_http GET "${FD_ADDR[b]}" "/v1/registry?name=eph"
	assert_equal "$HTTP_CODE" 404
}

@test "lookup, wait, watch, owner-only unregister and --force" {
	start3
	fd_spawn watch curl -sN "http://${FD_ADDR[b]}/v1/registry/watch?prefix=svc."
	fd_spawn waiter curl -s "http://${FD_ADDR[c]}/v1/registry?name=svc.db&wait=10000"
	fd_wait_until 5s bash -c "ss -tn | grep -c ':${FD_PORT[b]} ' | grep -qv '^0$'"
	fd_http PUT "${FD_ADDR[a]}" "/v1/registry?name=svc.db" -d '{"value":"10.0.0.5:5432"}'
	assert_equal "$HTTP_CODE" 201
	fd_http PUT "${FD_ADDR[a]}" "/v1/registry?name=other" -d '{"value":1}'
	fd_http PUT "${FD_ADDR[a]}" "/v1/registry?name=svc.db" -d '{"value":"x"}'
	assert_equal "$HTTP_CODE" 409
	run -0 jq -e '.entry.value == "10.0.0.5:5432"' <<<"$HTTP_BODY"
	fd_wait_until 10s grep -q '"event":"registered"' "${FD_OUT[watch]}"
	fd_wait_until 10s grep -q '"value":"10.0.0.5:5432"' "${FD_OUT[waiter]}"
	# only the owner's node may unregister
	fd_http DELETE "${FD_ADDR[b]}" "/v1/registry?name=svc.db"
	assert_equal "$HTTP_CODE" 403
	run -0 jq -e '.error | test("owned by node .a.")' <<<"$HTTP_BODY"
	fd_http DELETE "${FD_ADDR[b]}" "/v1/registry?name=svc.db&force=1"
	assert_equal "$HTTP_CODE" 200
	fd_wait_until 10s grep -q '"event":"unregistered"' "${FD_OUT[watch]}"
	fd_wait_until 10s bash -c "curl -s -o /dev/null -w '%{http_code}' 'http://${FD_ADDR[a]}/v1/registry?name=svc.db' | grep -q 404"
	# the watcher saw only its prefix
	run grep -c '"name":"other"' "${FD_OUT[watch]}"
	assert_output 0
	fd_assert_jsonl "${FD_OUT[watch]}"
	fd_http GET "${FD_ADDR[c]}" "/v1/registry?name=nope&wait=100"
	assert_equal "$HTTP_CODE" 404
}

@test "bad names and values: clear errors, nothing stored" {
	fd_start_node a --profile local
	local long
	long=$(head -c 256 /dev/zero | tr '\0' x)
	fd_http PUT "${FD_ADDR[a]}" "/v1/registry?name=" -d '{"value":1}'
	assert_equal "$HTTP_CODE" 400
	fd_http PUT "${FD_ADDR[a]}" "/v1/registry?name=$long" -d '{"value":1}'
	assert_equal "$HTTP_CODE" 400
	fd_http PUT "${FD_ADDR[a]}" "/v1/registry?name=a%01b" -d '{"value":1}'
	assert_equal "$HTTP_CODE" 400
	fd_http PUT "${FD_ADDR[a]}" "/v1/registry?name=a%ffb" -d '{"value":1}'
	assert_equal "$HTTP_CODE" 400
	fd_http PUT "${FD_ADDR[a]}" "/v1/registry?name=ok" -d '{"value": }'
	assert_equal "$HTTP_CODE" 400
	fd_http PUT "${FD_ADDR[a]}" "/v1/registry?name=ok" -d '{"value":1,"on_conflict":"fight"}'
	assert_equal "$HTTP_CODE" 400
	head -c 70000 /dev/zero | tr '\0' x | jq -Rc '{value: .}' >"$FD_TMP/big"
	fd_http PUT "${FD_ADDR[a]}" "/v1/registry?name=ok" --data-binary @"$FD_TMP/big"
	assert_equal "$HTTP_CODE" 413
	fd_assert_json_error
	run -0 names a
	assert_output 0
	fd_http GET "${FD_ADDR[a]}" "/v1/registry?name=ok"
	assert_equal "$HTTP_CODE" 404
	printf '{"name":"good","value":1}\nnot json\n{"value":2}\n{"name":"good","value":3}\n' >"$FD_TMP/lines"
	fd_http POST "${FD_ADDR[a]}" /v1/registry/batch --data-binary @"$FD_TMP/lines"
	assert_equal "$HTTP_CODE" 200
	run -0 jq -r -s 'map(if .type == "error" then "\(.line):\(.status)" else .name end) | join(",")' <<<"$HTTP_BODY"
	assert_output 'good,2:400,3:400,4:409'
	run -0 names a
	assert_output 1
}

# A partition that both sides can write through: a in one network
# namespace, b and c in another, joined by a veth pair the test cuts.
netns_setup() {
	[ "$(id -u)" = 0 ] || skip "network namespaces need root"
	local id=$$.$BATS_TEST_NUMBER
	NS1=fd1.$id NS2=fd2.$id
	ip netns add "$NS1" || skip "ip netns unavailable"
	NETNS+=("$NS1")
	ip netns add "$NS2"
	NETNS+=("$NS2")
	ip link add "fdv1.$$" netns "$NS1" type veth peer name "fdv2.$$" netns "$NS2"
	ip -n "$NS1" addr add 10.211.7.1/24 dev "fdv1.$$"
	ip -n "$NS2" addr add 10.211.7.2/24 dev "fdv2.$$"
	for ns in "$NS1" "$NS2"; do ip -n "$ns" link set lo up; done
	ip -n "$NS1" link set "fdv1.$$" up
	ip -n "$NS2" link set "fdv2.$$" up
}
in1() { ip netns exec "$NS1" "$@"; }
in2() { ip netns exec "$NS2" "$@"; }
# Off loopback a node needs a cluster key (or --insecure): one for all.
ns_node() {
	local ns=$1 name=$2 ip=$3
	shift 3
	[ -f "$FD_TMP/ns.key" ] || fd-node keygen "$FD_TMP/ns.key"
	fd_spawn "$name" ip netns exec "$ns" fd-node --name "$name" --listen "$ip:0" --profile local \
		--key-file "$FD_TMP/ns.key" "$@"
	fd_wait_identity "$name"
}

@test "split {a} | {b, c}, register x on both sides, heal: one winner everywhere, a conflict event, the loser yields" {
	netns_setup
	ns_node "$NS1" a 10.211.7.1
	ns_node "$NS2" b 10.211.7.2 --join "${FD_ADDR[a]}"
	ns_node "$NS2" c 10.211.7.2 --join "${FD_ADDR[a]}"
	fd_wait_until 10s bash -c "[ \"\$(ip netns exec $NS1 fd-node members -n ${FD_ADDR[a]} | grep -c '\"alive\"')\" = 3 ]"
	fd_spawn watch ip netns exec "$NS2" curl -sN "http://${FD_ADDR[b]}/v1/registry/watch"
	# cut the link: each side sees the other fail
	ip -n "$NS1" link set "fdv1.$$" down
	fd_wait_until 15s bash -c "[ \"\$(ip netns exec $NS2 fd-node members -n ${FD_ADDR[b]} | jq -r 'select(.name == \"a\") | .state')\" = failed ]"
	fd_wait_until 15s bash -c "[ \"\$(ip netns exec $NS1 fd-node members -n ${FD_ADDR[a]} | jq -r 'select(.name == \"b\") | .state')\" = failed ]"
	in1 curl -sf -X PUT "http://${FD_ADDR[a]}/v1/registry?name=x" -d '{"value":"from a"}' >/dev/null
	in2 curl -sf -X PUT "http://${FD_ADDR[b]}/v1/registry?name=x" -d '{"value":"from b"}' >/dev/null
	# heal: the failed members are retried and the two sides merge
	ip -n "$NS1" link set "fdv1.$$" up
	fd_wait_until 30s bash -c "[ \"\$(ip netns exec $NS1 fd-node members -n ${FD_ADDR[a]} | grep -c '\"alive\"')\" = 3 ]"
	fd_wait_until 30s grep -q '"event":"conflict"' "${FD_OUT[watch]}"
	# every node reports the same single winner, and the loser's entry is gone
	local w
	fd_wait_until 30s bash -c "[ \"\$(ip netns exec $NS1 curl -sf http://${FD_ADDR[a]}/v1/registry?name=x | jq -r '.conflicts | length')\" = 0 ]"
	w=$(in1 curl -sf "http://${FD_ADDR[a]}/v1/registry?name=x" | jq -r .owner)
	for n in b c; do
		fd_wait_until 30s bash -c "[ \"\$(ip netns exec $NS2 curl -sf http://${FD_ADDR[$n]}/v1/registry?name=x | jq -r '.owner + \":\" + (.conflicts | length | tostring)')\" = '$w:0' ]"
	done
	run -0 jq -e -s 'map(select(.event == "conflict")) | .[0] | .winner.owner_id != .loser.owner_id' "${FD_OUT[watch]}"
}

@test "/v1/info registry.digest: one value on replicas holding the same, another when one lacks a name" {
	fd_start_node a --profile local
	fd_start_node b --profile local --join "${FD_ADDR[a]}"
	fd_wait_until 10s bash -c "[ \$(fd-node members -n ${FD_ADDR[b]} | grep -c alive) = 2 ]"
	info_digest() { curl -sf "http://${FD_ADDR[$1]}/v1/info" | jq -r .registry.digest; }
	run -0 info_digest a
	[[ $output =~ ^[0-9a-f]{16}$ ]]
	local empty=$output
	gen "$FD_TMP/r.jsonl" 1 500 d
	batch a "$FD_TMP/r.jsonl"
	fd_wait_until 20s converged 500 a b
	fd_wait_until 10s bash -c "[ \"\$(curl -sf http://${FD_ADDR[a]}/v1/info | jq -r .registry.digest)\" = \"\$(curl -sf http://${FD_ADDR[b]}/v1/info | jq -r .registry.digest)\" ]"
	run -0 info_digest a
	[ "$output" != "$empty" ]
	local full=$output
	# b cut off from a: a name unregistered on a leaves the two apart
	curl -sf -X PUT "http://${FD_ADDR[a]}/v1/faults" -d '{"tag":"t","rules":[{"peer":"b","duration":60}]}' >/dev/null
	curl -sf -X PUT "http://${FD_ADDR[b]}/v1/faults" -d '{"tag":"t","rules":[{"peer":"a","duration":60}]}' >/dev/null
	curl -sf -X DELETE "http://${FD_ADDR[a]}/v1/registry?name=d000007" >/dev/null
	run -0 info_digest a
	[ "$output" != "$full" ]
	run -0 info_digest b
	[ "$output" = "$full" ]
	for n in a b; do curl -sf -X DELETE "http://${FD_ADDR[$n]}/v1/faults?tag=t" >/dev/null; done
	fd_wait_until 30s converged 499 a b
	fd_wait_until 10s bash -c "[ \"\$(curl -sf http://${FD_ADDR[a]}/v1/info | jq -r .registry.digest)\" = \"\$(curl -sf http://${FD_ADDR[b]}/v1/info | jq -r .registry.digest)\" ]"
}
