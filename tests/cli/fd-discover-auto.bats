#!/usr/bin/env bats
# shellcheck disable=SC2154  # stderr* come from bats run
# fd-discover --auto, FD_DISCOVER, --explain and --config: choosing the
# strategy from the environment or a libcluster-style topology.

setup()
{
	load helpers/common
	load helpers/spawn
	fd_common_setup
	spawn_setup
	API=$BATS_TEST_TMPDIR/api
	SA=$BATS_TEST_TMPDIR/sa
	mkdir -p "$API/prod" "$SA"
	echo prod >"$SA/namespace"
	echo s3cret >"$SA/token"
	cp "$FD_ROOT/tests/data/k8s/pods.json" "$FD_ROOT/tests/data/k8s/endpoints.json" "$API/prod/"
	unset FD_DISCOVER KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT
	NOSA=$BATS_TEST_TMPDIR/no-sa
}

teardown()
{
	spawn_stop_all
	fd_common_teardown
	if declare -F netns_teardown >/dev/null; then
		netns_teardown
	fi
}

peers() { jq -r 'select(.type == "peer") | "\(.event) \(.addr) \(.strategy)"' "$@"; }

fake_api()
{
	spawn api fake-k8s --token s3cret "$API"
	URL=http://$(spawn_identity api)
	[ "$URL" != http://null ]
}

# explained: stderr's JSON lines as "type check result" (choice: strategy).
explained()
{
	local l
	for l in "${stderr_lines[@]}"; do
		jq -r 'if .type == "check" then "check \(.check) \(.result)"
			else "choice \(.strategy)" end' <<<"$l"
	done
}

@test "--auto: a service account (fake) → kubernetes, the selector from this pod's labels; --explain says why" {
	fake_api
	run -0 --separate-stderr env HOSTNAME=fd-0 fd-discover --auto --explain --sa-dir "$SA" \
		--api "$URL" --mode pods
	assert_equal "$(peers <<<"$output")" "$(printf '%s\n' 'up 10.244.0.12:4380 kubernetes' \
		'up [fd00::4]:7946 kubernetes')"
	# Every stderr line is one JSON object with a type and a ts.
	local l
	for l in "${stderr_lines[@]}"; do
		jq -e 'type == "object" and (.type == "check" or .type == "choice") and (.ts | type == "string")' \
			<<<"$l" >/dev/null || fail "not an explain line: $l"
	done
	assert_equal "$(explained)" "$(printf '%s\n' 'check FD_DISCOVER unset' \
		'check service_account found' 'check KUBERNETES_SERVICE_HOST unset' \
		'check pod_labels app=fd' 'choice kubernetes')"
	assert_equal "$(jq -r 'select(.type == "choice") | .spec' <<<"${stderr_lines[4]}")" \
		"kubernetes selector=app=fd mode=pods api=$URL sa_dir=$SA"
	assert_regex "$(jq -r 'select(.type == "choice") | .why' <<<"${stderr_lines[4]}")" \
		"service account token"
	# --selector given: no lookup; without --explain, stderr is quiet.
	run -0 --separate-stderr fd-discover --auto --sa-dir "$SA" --api "$URL" --selector app=fd
	assert_equal "$stderr" ""
	assert_equal "$(peers <<<"$output" | wc -l)" 3
	# A pod without an app label: said plainly, exit 2.
	run -2 --separate-stderr env HOSTNAME=nope fd-discover --auto --sa-dir "$SA" --api "$URL"
	assert_equal "$stderr" "fd-discover: --auto: kubernetes: no --selector given, and asking for the labels of pod 'nope' failed: kubernetes API answered 404: pods \"nope\" not found"
}

@test "--auto: KUBERNETES_SERVICE_HOST alone also means kubernetes" {
	run -2 --separate-stderr env KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=1 \
		fd-discover --auto --explain --sa-dir "$NOSA" --selector app=fd
	assert_equal "$(explained | head -n 3)" "$(printf '%s\n' 'check FD_DISCOVER unset' \
		'check service_account absent' 'check KUBERNETES_SERVICE_HOST set')"
	assert_equal "${stderr_lines[-1]}" \
		"fd-discover: --auto: no namespace= given and unable to read '$NOSA/namespace': No such file or directory"
}

@test "--auto: FD_DISCOVER comes first; options on the command line win over its settings" {
	run -0 --separate-stderr env FD_DISCOVER="static addrs=a:1,b:2" fd-discover --auto --explain
	assert_equal "$(peers <<<"$output")" "$(printf '%s\n' 'up a:1 static' 'up b:2 static')"
	assert_equal "$(explained)" "$(printf '%s\n' 'check FD_DISCOVER set' 'choice static')"
	# Even inside Kubernetes.
	local list=$BATS_TEST_TMPDIR/list
	echo 10.0.0.1:4380 >"$list"
	run -0 --separate-stderr env FD_DISCOVER="provider=file path=$list" KUBERNETES_SERVICE_HOST=10.96.0.1 \
		fd-discover --auto --sa-dir "$SA"
	assert_equal "$(peers <<<"$output")" "up 10.0.0.1:4380 file"
	# --port on the command line wins over port= in the spec.
	printf '%s\n' 'fd.test A 127.0.0.1' >"$BATS_TEST_TMPDIR/zone"
	spawn dns dns-responder "$BATS_TEST_TMPDIR/zone"
	fd_wait_until 10s test -s "$SPAWN_DIR/dns.out"
	run -0 --separate-stderr env FD_DISCOVER="dns name=fd.test port=1 resolver=127.0.0.1:$(head -n 1 "$SPAWN_DIR/dns.out")" \
		fd-discover --auto --explain --port 2
	assert_equal "$(peers <<<"$output")" "up 127.0.0.1:2 dns"
	assert_regex "$(jq -r 'select(.type == "choice") | .spec' <<<"${stderr_lines[-1]}")" " port=2( |$)"
}

@test "--auto: a bad FD_DISCOVER is a usage error naming the problem" {
	run -2 --separate-stderr env FD_DISCOVER="dns name" fd-discover --auto
	assert_equal "${stderr_lines[0]}" "fd-discover: invalid FD_DISCOVER 'dns name': invalid spec: 'name' is not key=value"
	run -2 --separate-stderr env FD_DISCOVER="dns nme=x" fd-discover --auto
	assert_equal "${stderr_lines[0]}" "fd-discover: FD_DISCOVER: unknown key 'nme' for dns (known: name, port, resolver, basename, interval, down_after)"
	run -2 --separate-stderr env FD_DISCOVER="static addrs=a:x" fd-discover --auto
	assert_equal "${stderr_lines[0]}" "fd-discover: FD_DISCOVER: invalid address 'a:x' (expected HOST[:PORT])"
	run -3 --separate-stderr env FD_DISCOVER="consul tag=x" fd-discover --auto
	assert_equal "${stderr_lines[0]}" "fd-discover: FD_DISCOVER: strategy 'consul' is not available in this fd-discover"
	run -2 --separate-stderr fd-discover --auto static a
	assert_equal "${stderr_lines[0]}" "fd-discover: unexpected argument 'static' (--auto chooses the strategy)"
	run -2 --separate-stderr fd-discover --auto --config x
	run -2 --separate-stderr fd-discover --topology x static a
}

@test "--auto: with nothing else to go by, mdns (peers announce themselves)" {
	# mdns sends multicast: only in a network namespace of the test's own
	load helpers/netns
	netns_setup
	ns_start_node n1 --announce mdns
	run -0 --separate-stderr in_ns fd-discover --auto --explain --sa-dir "$NOSA" --expect 1 --timeout 20s
	assert_equal "$(jq -r 'select(.type == "peer") | "\(.event) \(.name) \(.addr) \(.strategy)"' <<<"$output")" \
		"up n1 ${FD_ADDR[n1]} mdns"
	assert_equal "$(explained)" "$(printf '%s\n' 'check FD_DISCOVER unset' \
		'check service_account absent' 'check KUBERNETES_SERVICE_HOST unset' \
		'check strategy available' 'choice mdns')"
	# gossip through FD_DISCOVER, with the key from --key-file
	fd-node keygen "$BATS_TEST_TMPDIR/key" 2>/dev/null
	ns_start_node n2 --announce gossip --key-file "$BATS_TEST_TMPDIR/key"
	run -0 --separate-stderr in_ns env FD_DISCOVER=gossip fd-discover --auto \
		--key-file "$BATS_TEST_TMPDIR/key" --expect 1 --timeout 20s
	assert_equal "$(jq -r 'select(.type == "peer") | "\(.name) \(.strategy)"' <<<"$output")" "n2 gossip"
	# without one, refused (or insecure=true)
	run -2 --separate-stderr in_ns env FD_DISCOVER=gossip fd-discover --auto
	assert_equal "${stderr_lines[0]}" "fd-discover: FD_DISCOVER: gossip needs a key: key_file=FILE (or the node's --key-file), or insecure=true for plain heartbeats"
}

@test "--explain with a strategy given: one choice line" {
	run -0 --separate-stderr fd-discover --explain static a:1
	assert_equal "${#stderr_lines[@]}" 1
	assert_equal "$(jq -c 'del(.ts)' <<<"$stderr")" \
		'{"type":"choice","strategy":"static","why":"given on the command line: nothing to choose"}'
}

@test "--config: a libcluster Kubernetes topology against the fake API" {
	fake_api
	cat >"$BATS_TEST_TMPDIR/topo.json" <<EOF
{"topologies": {"k8s": {"strategy": "Cluster.Strategy.Kubernetes", "config": {
	"kubernetes_selector": "app=fd", "kubernetes_namespace": "prod",
	"kubernetes_ip_lookup_mode": "pods", "kubernetes_node_basename": "fd",
	"kubernetes_service_account_path": "$SA", "kubernetes_master": "$URL",
	"mode": "ip", "polling_interval": 10000}}}}
EOF
	run -0 --separate-stderr fd-discover --config "$BATS_TEST_TMPDIR/topo.json" --explain
	assert_equal "$(jq -r 'select(.type == "peer") | "\(.addr) \(.name)"' <<<"$output")" \
		"$(printf '%s\n' '10.244.0.12:4380 fd@10.244.0.12' '[fd00::4]:7946 fd@fd00::4')"
	assert_equal "$(explained)" "$(printf '%s\n' 'check config read' 'check topology translated' 'choice kubernetes')"
	assert_equal "$(jq -r 'select(.type == "choice") | .spec' <<<"${stderr_lines[2]}")" \
		"kubernetes selector=app=fd namespace=prod mode=pods basename=fd sa_dir=$SA api=$URL interval=10000ms"
}

@test "--config: Epmd hosts, several topologies with --topology, short names" {
	cat >"$BATS_TEST_TMPDIR/topo.json" <<'EOF'
{"topologies": {
	"a": {"strategy": "Elixir.Cluster.Strategy.Epmd", "config": {"hosts": ["n1@127.0.0.1:4001", "n2@127.0.0.1:4002"]}},
	"b": {"strategy": "static", "config": {"addrs": "127.0.0.1:5001"}}}}
EOF
	run -2 --separate-stderr fd-discover --config "$BATS_TEST_TMPDIR/topo.json"
	assert_equal "${stderr_lines[0]}" "fd-discover: '$BATS_TEST_TMPDIR/topo.json' has 2 topologies (a, b): choose one with --topology"
	run -0 --separate-stderr fd-discover --config "$BATS_TEST_TMPDIR/topo.json" --topology a
	assert_equal "$(peers <<<"$output")" "$(printf '%s\n' 'up 127.0.0.1:4001 static' 'up 127.0.0.1:4002 static')"
	run -0 --separate-stderr fd-discover --config "$BATS_TEST_TMPDIR/topo.json" --topology b
	assert_equal "$(peers <<<"$output")" "up 127.0.0.1:5001 static"
	run -2 --separate-stderr fd-discover --config "$BATS_TEST_TMPDIR/topo.json" --topology c
	assert_equal "${stderr_lines[0]}" "fd-discover: no topology 'c' in '$BATS_TEST_TMPDIR/topo.json' (it has: a, b)"
}

@test "--config: unknown options and strategies are reported with their names (exit 7), not ignored" {
	local f=$BATS_TEST_TMPDIR/topo.json
	echo '{"topologies": {"k": {"strategy": "Cluster.Strategy.Kubernetes", "config": {"kubernetes_selector": "app=fd", "kubernetes_selectr": "x"}}}}' >"$f"
	run -7 --separate-stderr fd-discover --config "$f"
	assert_equal "${stderr_lines[0]}" "fd-discover: $f: topology 'k': unknown option 'kubernetes_selectr' for kubernetes (known: selector, namespace, mode, port, port_name, api, token_file, ca_file, sa_dir, basename, cached, interval, down_after)"
	echo '{"topologies": {"k": {"strategy": "Cluster.Strategy.Consul"}}}' >"$f"
	run -7 --separate-stderr fd-discover --config "$f"
	assert_equal "${stderr_lines[0]}" "fd-discover: $f: topology 'k': unknown strategy 'Cluster.Strategy.Consul'"
	echo '{"topologies": {"k": {"strategy": "Cluster.Strategy.Rancher"}}}' >"$f"
	run -7 --separate-stderr fd-discover --config "$f"
	assert_regex "${stderr_lines[0]}" "has no fd equivalent"
	echo '{"topologies": {"k": {"strategy": "Cluster.Strategy.Kubernetes", "config": {"mode": "dns", "kubernetes_selector": "a=b"}}}}' >"$f"
	run -7 --separate-stderr fd-discover --config "$f"
	assert_regex "${stderr_lines[0]}" "option 'mode' of Cluster.Strategy.Kubernetes: 'dns' is not supported"
	echo '{"topologies": {"d": {"strategy": "DNSPoll", "config": {"query": "fd.test", "polling_interval": -5}}}}' >"$f"
	run -7 --separate-stderr fd-discover --config "$f"
	assert_equal "${stderr_lines[0]}" "fd-discover: $f: topology 'd': invalid interval '-5ms' (a duration from 10ms to 86400s)"
	echo '{"topologies": {"g": {"strategy": "Gossip", "config": {"multicast_addr": "230.1.1.251", "secret": "pw"}}}}' >"$f"
	run -7 --separate-stderr fd-discover --config "$f"
	assert_equal "${stderr_lines[0]}" "fd-discover: $f: topology 'g': secret= (libcluster's shared password) is not supported: heartbeats are sealed with the cluster key (key_file=)"
	echo '{"topologies": {"k": {"strategy": "static"}}, "extra": 1}' >"$f"
	run -7 --separate-stderr fd-discover --config "$f"
	assert_equal "${stderr_lines[0]}" "fd-discover: $f: unknown field 'extra' (topologies)"
	echo '{"topologies": ' >"$f"
	run -7 --separate-stderr fd-discover --config "$f"
	assert_regex "${stderr_lines[0]}" "^fd-discover: $f: invalid JSON"
	run -1 --separate-stderr fd-discover --config "$BATS_TEST_TMPDIR/none.json"
	assert_regex "${stderr_lines[0]}" "unable to read '.*none.json': No such file or directory"
}
