#!/usr/bin/env bats
# shellcheck disable=SC2154,SC2016  # stderr* come from bats run; $1 in bash -c is meant
# The kubernetes strategy against a fake API server on loopback
# (tests/tools/fake-k8s), which serves the files of $API/NS/{pods,endpoints}.json
# (swapped by the tests), checks the bearer token and fails on demand.

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
	DATA=$FD_ROOT/tests/data/k8s
}

teardown()
{
	spawn_stop_all
	fd_common_teardown
}

peers() { jq -r 'select(.type == "peer") | "\(.event) \(.addr) \(.name)"' "$@"; }

# fake_api: starts the fake API server; URL is its address.
fake_api()
{
	spawn api fake-k8s --token s3cret "$API"
	URL=http://$(spawn_identity api)
	[ "$URL" != http://null ]
}

# pod NAME PORT STATE: one pod (ready, notready, pending, terminating) on
# 127.0.0.1 with the container port "fd" = PORT, as a JSON line.
pod()
{
	jq -nc --arg n "$1" --argjson p "$2" --arg s "$3" '{
		metadata: ({name: $n, namespace: "prod", labels: {app: "fd"}} +
			(if $s == "terminating" then {deletionTimestamp: "2024-01-01T00:00:00Z"} else {} end)),
		spec: {nodeName: "w1", containers: [{name: "fd", ports: [{name: "fd", containerPort: $p}]}]},
		status: ({phase: (if $s == "pending" then "Pending" else "Running" end),
			conditions: [{type: "Ready", status: (if $s == "ready" or $s == "terminating" then "True" else "False" end)}]} +
			(if $s == "pending" then {} else {podIP: "127.0.0.1"} end))}'
}

# pods POD-LINE...: replaces the pod list in one step.
pods()
{
	printf '%s\n' "$@" | jq -s '{kind: "PodList", apiVersion: "v1", items: .}' >"$API/prod/pods.json.tmp"
	mv "$API/prod/pods.json.tmp" "$API/prod/pods.json"
}

@test "kubernetes: recorded answers; pods must be Running and Ready with an IP; endpoints without notReadyAddresses" {
	cp "$DATA/pods.json" "$DATA/endpoints.json" "$API/prod/"
	fake_api
	run -0 --separate-stderr fd-discover kubernetes --selector app=fd --sa-dir "$SA" \
		--api "$URL" --mode pods
	assert_equal "$stderr" ""
	assert_equal "$(peers <<<"$output")" "$(printf '%s\n' 'up 10.244.0.12:4380 fd-0' \
		'up [fd00::4]:7946 fd-4')"
	assert_equal "$(jq -c 'select(.name == "fd-0") | .meta' <<<"$output")" \
		'{"namespace":"prod","pod":"fd-0","node":"worker-a","ip":"10.244.0.12"}'
	run -0 --separate-stderr fd-discover kubernetes --selector app=fd --sa-dir "$SA" --api "$URL"
	assert_equal "$(peers <<<"$output")" "$(printf '%s\n' 'up 10.244.0.12:4380 fd-0' \
		'up 10.244.2.5:4380 fd-4' 'up 10.244.3.3:4380 null')"
	# --port wins over the named port; --basename names peers BASENAME@IP.
	run -0 --separate-stderr fd-discover kubernetes --selector app=fd --sa-dir "$SA" \
		--api "$URL" --mode pods --port 7000 --basename fd
	assert_equal "$(peers <<<"$output")" "$(printf '%s\n' 'up 10.244.0.12:7000 fd@10.244.0.12' \
		'up [fd00::4]:7000 fd@fd00::4')"
	# What the API server was asked: the selector, the namespace, the token.
	assert_equal "$(jq -c 'select(.type == "request") | [.path, .selector, .auth]' \
		"$SPAWN_DIR/api.out" | sort -u)" "$(printf '%s\n' \
		'["/api/v1/namespaces/prod/endpoints","app=fd",true]' \
		'["/api/v1/namespaces/prod/pods","app=fd",true]')"
}

@test "kubernetes: a wrong token, a 500, an empty list are errors (exit 1), said on stderr and as error lines" {
	cp "$DATA/pods.json" "$API/prod/"
	fake_api
	echo wrong >"$BATS_TEST_TMPDIR/token"
	run -1 --separate-stderr fd-discover kubernetes --selector app=fd --namespace prod \
		--api "$URL" --token-file "$BATS_TEST_TMPDIR/token" --mode pods
	assert_equal "$stderr" "fd-discover: kubernetes API answered 401: Unauthorized"
	assert_equal "$(jq -c 'del(.ts)' <<<"$output")" \
		"{\"type\":\"error\",\"strategy\":\"kubernetes\",\"source\":\"$URL\",\"error\":\"kubernetes API answered 401: Unauthorized\"}"
	echo 500 >"$API/status"
	run -1 --separate-stderr fd-discover kubernetes --selector app=fd --sa-dir "$SA" --api "$URL" --mode pods
	assert_equal "$stderr" "fd-discover: kubernetes API answered 500: injected by the test"
	rm "$API/status"
	run -1 --separate-stderr fd-discover kubernetes --selector app=other --sa-dir "$SA" --api "$URL" --mode pods
	assert_equal "$stderr" "fd-discover: no pods match 'app=other' in namespace 'prod'"
	pods "$(pod a 1 notready)" "$(pod b 2 pending)" "$(pod c 3 terminating)"
	run -1 --separate-stderr fd-discover kubernetes --selector app=fd --sa-dir "$SA" --api "$URL" --mode pods
	assert_equal "$stderr" "fd-discover: no ready pods match 'app=fd' in namespace 'prod' (3 pods: 2 not ready, 1 terminating, 0 without an IP)"
	run -1 --separate-stderr fd-discover kubernetes --selector app=fd --sa-dir "$SA" --api "http://127.0.0.1:1"
	assert_regex "$stderr" "^fd-discover: kubernetes API http://127.0.0.1:1: .*"
}

@test "kubernetes --watch: not Ready is ignored; a 500 and an empty list remove nothing; a pod gone is down only after --down-after polls" {
	local out=$SPAWN_DIR/w.out
	pods "$(pod a 4001 ready)" "$(pod b 4002 notready)"
	fake_api
	spawn w fd-discover --watch --interval 100ms --down-after 3 kubernetes --selector app=fd \
		--sa-dir "$SA" --api "$URL" --mode pods
	fd_wait_until 10s has_lines "$out" 1 '.event == "up" and .name == "a"'
	pods "$(pod a 4001 ready)" "$(pod b 4002 ready)"
	fd_wait_until 10s has_lines "$out" 1 '.event == "up" and .name == "b"'
	# The API fails: one error line, nothing goes down.
	echo 500 >"$API/status"
	fd_wait_until 10s has_lines "$out" 1 '.type == "error"'
	sleep 0.5
	assert_equal "$(count_lines "$out" '.event == "down"')" 0
	assert_equal "$(count_lines "$out" '.type == "error"')" 1
	rm "$API/status"
	# An empty list (libcluster PR #82): nothing goes down either.
	pods
	fd_wait_until 10s has_lines "$out" 1 '.type == "error" and (.error | startswith("no pods match"))'
	sleep 0.5
	assert_equal "$(count_lines "$out" '.event == "down"')" 0
	# b goes away: down after three polls without it, with its name and meta.
	pods "$(pod a 4001 ready)"
	local t0=$EPOCHREALTIME ms
	fd_wait_until 10s has_lines "$out" 1 '.event == "down"'
	ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
	[ "$ms" -ge 180 ] || fail "down after $ms ms, expected three polls"
	assert_equal "$(jq -c 'select(.event == "down") | [.addr, .name, .meta.pod]' "$out")" \
		'["127.0.0.1:4002","b","b"]'
	spawn_stop w TERM
	assert_equal "${SPAWN_EXIT[w]}" 0
	assert_equal "$(peers "$out")" "$(printf '%s\n' 'up 127.0.0.1:4001 a' \
		'up 127.0.0.1:4002 b' 'down 127.0.0.1:4002 b')"
}

@test "kubernetes: usage errors" {
	run -2 --separate-stderr fd-discover kubernetes --sa-dir "$SA" --api http://127.0.0.1:1
	assert_equal "${stderr_lines[0]}" "fd-discover: kubernetes: kubernetes needs a label selector (selector=, e.g. app=fd)"
	run -2 --separate-stderr fd-discover kubernetes --selector a=b --namespace Bad_NS --api http://127.0.0.1:1
	assert_equal "${stderr_lines[0]}" "fd-discover: kubernetes: invalid namespace 'Bad_NS'"
	run -2 --separate-stderr fd-discover kubernetes --selector a=b --mode nodes
	assert_equal "${stderr_lines[0]}" "fd-discover: invalid --mode 'nodes' (endpoints, pods)"
	run -2 --separate-stderr env -u KUBERNETES_SERVICE_HOST fd-discover kubernetes --selector a=b --namespace x
	assert_equal "${stderr_lines[0]}" "fd-discover: kubernetes: no api= given and KUBERNETES_SERVICE_HOST is not set"
	run -2 --separate-stderr fd-discover kubernetes --selector a=b --sa-dir "$BATS_TEST_TMPDIR/none" --api http://127.0.0.1:1
	assert_regex "${stderr_lines[0]}" "no namespace= given and unable to read '.*/none/namespace'"
	run -2 --separate-stderr fd-discover kubernetes --selector a=b --namespace x --api ftp://x
	assert_equal "${stderr_lines[0]}" "fd-discover: kubernetes: invalid api 'ftp://x' (expected http[s]://HOST[:PORT])"
	run -2 --separate-stderr fd-discover kubernetes --selector a=b --namespace x --api http://h --ca-file /nonexistent
	assert_equal "${stderr_lines[0]}" "fd-discover: kubernetes: unable to read ca_file '/nonexistent': No such file or directory"
	run -2 --separate-stderr fd-discover kubernetes extra
	assert_equal "${stderr_lines[0]}" "fd-discover: kubernetes: no arguments expected (use --selector)"
}

@test "cluster: fd-discover kubernetes ... | fd-join --expect 3 with three fd-nodes" {
	local n addr lines=()
	for n in n1 n2 n3; do
		spawn "$n" fd-node --name "$n" --listen 127.0.0.1:0 --profile local
		addr=$(spawn_identity "$n")
		[ -n "$addr" ] && [ "$addr" != null ]
		eval "ADDR_$n=\$addr"
		lines+=("$(pod "$n" "${addr##*:}" ready)")
	done
	lines+=("$(pod n4 1 notready)")
	pods "${lines[@]}"
	fake_api
	run -0 --separate-stderr timeout 40 bash -c \
		'fd-discover kubernetes --selector app=fd --sa-dir "$2" --api "$3" --mode pods |
			fd-join -n "$1" --expect 3 --timeout 20s' _ "$ADDR_n1" "$SA" "$URL"
	assert_equal "$(jq -c 'select(.type == "result") | [.ok, .alive]' <<<"$output")" '[true,3]'
	assert_equal "$(jq -c 'select(.type == "join") | .ok' <<<"$output" | sort -u)" true
}

# alive_count ADDR N: the node at ADDR sees exactly N alive members.
alive_count()
{
	fd_http GET "$1" /v1/members >/dev/null || return 1
	[ "$(jq '[.members[] | select(.state == "alive")] | length' <<<"$HTTP_BODY")" -eq "$2" ]
}

@test "fd-node --discover kubernetes: nodes join what the API lists; a 500 removes nothing; a killed pod recreated elsewhere is joined again" {
	local spec="kubernetes selector=app=fd mode=pods sa_dir=$SA interval=200ms down_after=2"
	: >"$API/prod/pods.json"
	fake_api
	spec="$spec api=$URL"
	fd_start_node n1 --profile local --discover "$spec"
	fd_start_node n2 --profile local --discover "$spec"
	fd_start_node n3 --profile local --discover "$spec"
	pods "$(pod n1 "${FD_PORT[n1]}" ready)" "$(pod n2 "${FD_PORT[n2]}" ready)" \
		"$(pod n3 "${FD_PORT[n3]}" ready)" "$(pod n9 1 notready)"
	fd_wait_until 15s alive_count "${FD_ADDR[n1]}" 3
	fd_wait_until 15s alive_count "${FD_ADDR[n3]}" 3
	echo 500 >"$API/status"
	fd_wait_until 10s bash -c "curl -s --noproxy '*' http://${FD_ADDR[n1]}/v1/info |
		jq -e '.discover[0].last_error == \"kubernetes API answered 500: injected by the test\"'"
	fd_http GET "${FD_ADDR[n1]}" /v1/info
	assert_equal "$(jq -c '.discover[0] | [.strategy, .peers]' <<<"$HTTP_BODY")" '["kubernetes",3]'
	rm "$API/status"
	# Killed; the pod is recreated with another address (here: port), and
	# the new instance has no discovery of its own.
	fd_stop_node n3 KILL
	fd_wait_until 15s bash -c "curl -s --noproxy '*' http://${FD_ADDR[n1]}/v1/members |
		jq -e '.members[] | select(.name == \"n3\") | .state == \"failed\"'"
	fd_start_node n3 --profile local
	pods "$(pod n1 "${FD_PORT[n1]}" ready)" "$(pod n2 "${FD_PORT[n2]}" ready)" \
		"$(pod n3 "${FD_PORT[n3]}" ready)" "$(pod n9 1 notready)"
	fd_wait_until 20s alive_count "${FD_ADDR[n3]}" 3
	fd_wait_until 20s alive_count "${FD_ADDR[n1]}" 3
	grep -q "discover kubernetes: joined ${FD_ADDR[n3]} (n3)" "${FD_ERR[n1]}" "${FD_ERR[n2]}"
	# The fake saw the token on every request.
	assert_equal "$(jq -r 'select(.type == "request") | .auth' "$SPAWN_DIR/api.out" | sort -u)" true
}

# complete_words WORD...: what the bash completion offers for the last word.
complete_words()
{
	# shellcheck source=/dev/null
	source "$FD_ROOT/completions/bash/fd-discover"
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	_fd_discover fd-discover "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	printf '%s\n' "${COMPREPLY[@]}"
}

@test "bash completion: kubernetes, its options, --auto and --config" {
	run -0 complete_words fd-discover k
	assert_output kubernetes
	run -0 complete_words fd-discover --mode ''
	assert_equal "$(sort <<<"$output" | tr '\n' ' ')" 'endpoints pods '
	run -0 complete_words fd-discover --sel
	assert_output --selector
	run -0 complete_words fd-discover --au
	assert_output --auto
	run -0 complete_words fd-discover --ex
	assert_equal "$(sort <<<"$output" | tr '\n' ' ')" '--exec-timeout --expect --explain '
	touch "$BATS_TEST_TMPDIR/topo.json"
	run -0 complete_words fd-discover --config "$BATS_TEST_TMPDIR/top"
	assert_output "$BATS_TEST_TMPDIR/topo.json"
	# After --selector SEL the strategy is still to come.
	run -0 complete_words fd-discover --selector app=fd kub
	assert_output kubernetes
	command -v zsh >/dev/null || skip "zsh is not installed"
	run -0 zsh -n "$FD_ROOT/completions/zsh/_fd-discover"
}
