#!/usr/bin/env bats
# shellcheck disable=SC2154,SC2016  # stderr* come from bats run; $1 in bash -c is meant
# fd-join against real fd-node clusters.

setup()
{
	load helpers/common
	load helpers/spawn
	fd_common_setup
	spawn_setup
}

teardown()
{
	spawn_stop_all
	fd_common_teardown
}

# node NAME: starts fd-node NAME on 127.0.0.1:0; ADDR[NAME], ID[NAME].
declare -gA ADDR=() ID=()
node()
{
	local name=$1
	spawn "$name" fd-node --name "$name" --listen 127.0.0.1:0
	ADDR[$name]=$(spawn_identity "$name")
	ID[$name]=$(head -n 1 "$SPAWN_DIR/$name.out" | jq -r .id)
	[ -n "${ADDR[$name]}" ] && [ "${ADDR[$name]}" != null ]
}

three_nodes()
{
	node n1
	node n2
	node n3
}

join() { timeout -k 2 30 fd-join "$@"; }

# alive_on NODE N: NODE sees at least N alive members.
alive_on()
{
	join -q -n "$1" --expect "$2" --timeout 1s </dev/null >/dev/null 2>&1
}

@test "cluster: one join line per peer with its name and id" {
	three_nodes
	run -0 --separate-stderr join -n "${ADDR[n1]}" "${ADDR[n2]}" "${ADDR[n3]}"
	assert_equal "$stderr" ""
	assert_equal "${#lines[@]}" 2
	assert_equal "${lines[0]}" "{\"type\":\"join\",\"addr\":\"${ADDR[n2]}\",\"ok\":true,\"name\":\"n2\",\"id\":\"${ID[n2]}\"}"
	assert_equal "${lines[1]}" "{\"type\":\"join\",\"addr\":\"${ADDR[n3]}\",\"ok\":true,\"name\":\"n3\",\"id\":\"${ID[n3]}\"}"
}

@test "cluster: --expect 3 waits until three members are alive" {
	three_nodes
	run -0 --separate-stderr join -n "${ADDR[n1]}" --expect 3 --timeout 20s "${ADDR[n2]}" "${ADDR[n3]}"
	assert_equal "$(jq -c 'select(.type == "result") | del(.elapsed)' <<<"$output")" \
		'{"type":"result","ok":true,"expect":3,"alive":3}'
	# Membership spreads: every node sees the three.
	fd_wait_until 20s alive_on "${ADDR[n2]}" 3
	fd_wait_until 20s alive_on "${ADDR[n3]}" 3
}

@test "cluster: joining an already-joined peer is ok" {
	three_nodes
	run -0 join -q -n "${ADDR[n1]}" "${ADDR[n2]}"
	run -0 --separate-stderr join -n "${ADDR[n1]}" "${ADDR[n2]}"
	assert_equal "$(jq -c '[.ok, .name]' <<<"$output")" '[true,"n2"]'
}

@test "cluster: fd-discover static ... | fd-join --expect" {
	three_nodes
	run -0 --separate-stderr bash -c 'fd-discover static "$2" "$3" | fd-join -n "$1" --expect 3 --timeout 20s' \
		_ "${ADDR[n1]}" "${ADDR[n2]}" "${ADDR[n3]}"
	assert_equal "$(jq -r 'select(.type == "join") | .name' <<<"$output" | tr '\n' ' ')" "n2 n3 "
	assert_equal "$(jq -c 'select(.type == "result") | .ok' <<<"$output")" true
}

@test "cluster: fd-discover file ... | fd-join, with FD_NODE" {
	three_nodes
	printf '# the others\n%s\n%s\n' "${ADDR[n2]}" "${ADDR[n3]}" >"$BATS_TEST_TMPDIR/peers"
	FD_NODE=${ADDR[n1]} run -0 --separate-stderr bash -c 'fd-discover file "$1" | fd-join -q --expect 3 --timeout 20s' \
		_ "$BATS_TEST_TMPDIR/peers"
	assert_equal "$(jq -c 'del(.elapsed)' <<<"$output")" '{"type":"result","ok":true,"expect":3,"alive":3}'
}

@test "cluster: an unreachable peer fails its join line, exit 1" {
	node n1
	node n2
	run -1 --separate-stderr join -n "${ADDR[n1]}" "${ADDR[n2]}" 127.0.0.1:1
	assert_equal "$(jq -c '[.addr, .ok]' <<<"${lines[0]}")" "[\"${ADDR[n2]}\",true]"
	assert_equal "$(jq -c '[.addr, .ok, (.error | type)]' <<<"${lines[1]}")" '["127.0.0.1:1",false,"string"]'
	assert_regex "$stderr" "^fd-join: unable to join '127\.0\.0\.1:1': .+"
}

@test "cluster: --expect more than there are: exit 5, members listed" {
	node n1
	node n2
	run -5 --separate-stderr join -q -n "${ADDR[n1]}" --expect 3 --timeout 1s "${ADDR[n2]}"
	assert_equal "$(jq -c '[.type, .ok, .expect, .alive]' <<<"$output")" '["result",false,3,2]'
	assert_equal "$(jq -c '.members | map([.name, .state]) | sort' <<<"$output")" \
		'[["n1","alive"],["n2","alive"]]'
	assert_equal "$stderr" "fd-join: only 2 of 3 members alive after 1s"
}

@test "cluster: a stopped peer is no longer counted alive" {
	three_nodes
	run -0 join -q -n "${ADDR[n1]}" --expect 3 --timeout 20s "${ADDR[n2]}" "${ADDR[n3]}"
	spawn_stop n3 KILL
	# Within the failure-detection time n1 stops counting n3 as alive.
	fd_wait_until 30s bash -c '! fd-join -q -n "$1" --expect 3 --timeout 200ms </dev/null' _ "${ADDR[n1]}"
}
