#!/usr/bin/env bats
# shellcheck disable=SC2154,SC2016  # stderr* come from bats run; $1 in bash -c is meant
# fd-registry: command line, values, output, exit codes, batches, watch.
# The node is fd-node (its registry HTTP API, see man/fd-registry.1). With
# FD_REGISTRY_FAKE=1 the same tests run against tests/tools/fake-node's
# stand-in for that API instead (a few tests are only meaningful for one of
# the two and say so).

setup()
{
	load helpers/common
	fd_common_setup
	IN=$BATS_TEST_TMPDIR/in
	OUT=$BATS_TEST_TMPDIR/out
}

teardown() { fd_common_teardown; }

fake() { [ "${FD_REGISTRY_FAKE:-0}" = 1 ]; }

# start_node [NAME]: a node serving the registry API; NODE is its address.
start_node()
{
	local name=${1:-n1}
	if fake; then
		fd_spawn "$name" fake-node
		fd_wait_identity "$name"
	else
		fd_start_node "$name" --profile local
	fi
	NODE=${FD_ADDR[$name]}
}

# fd-registry, bounded: a client that wrongly hangs must not hang the suite.
reg() { timeout -k 2 "$FD_CMD_TIMEOUT" fd-registry "$@"; }

# The registry requests fake-node received ({"path":...,"lines":N}).
requests() { jq -c 'select(.type == "request") | {path, lines}' "${FD_OUT[n1]}"; }

assert_usage_line()
{
	local l
	for l in "${stderr_lines[@]}"; do
		[[ $l == 'usage: fd-registry '* ]] && return 0
	done
	echo "no usage line on stderr: $stderr" | fail
}

## Command line

@test "--help prints the usage on stdout and exits 0; --version" {
	run -0 --separate-stderr fd-registry --help
	assert_equal "$stderr" ""
	assert_line --index 0 --regexp '^usage: fd-registry register '
	assert_output --partial 'fd-registry watch'
	assert_output --partial '--on-conflict'
	run -0 fd-registry lookup -h
	assert_line --index 0 --regexp '^usage: fd-registry '
	run -0 fd-registry --version
	assert_equal "$output" "fd-registry $(cat "$FD_ROOT/VERSION")"
	run -0 fd-registry -V
	assert_equal "$output" "fd-registry $(cat "$FD_ROOT/VERSION")"
}

@test "no subcommand, an unknown one, or no NAME: usage errors" {
	run -2 --separate-stderr reg
	assert_equal "${stderr_lines[0]}" "fd-registry: no subcommand given"
	assert_usage_line
	run -2 --separate-stderr reg frobnicate x
	assert_equal "${stderr_lines[0]}" "fd-registry: unknown subcommand 'frobnicate'"
	for cmd in register lookup unregister; do
		run -2 --separate-stderr reg -n 127.0.0.1:1 "$cmd"
		assert_equal "${stderr_lines[0]}" "fd-registry: no NAME given"
		# The usage shown is the subcommand's.
		assert_regex "${stderr_lines[1]}" "^usage: fd-registry $cmd "
	done
	run -2 --separate-stderr reg lookup a b
	assert_equal "${stderr_lines[0]}" "fd-registry: unexpected argument 'b'"
	run -2 --separate-stderr reg register a 1 2
	assert_equal "${stderr_lines[0]}" "fd-registry: unexpected argument '2'"
	run -2 --separate-stderr reg list x
	assert_equal "${stderr_lines[0]}" "fd-registry: unexpected argument 'x'"
}

@test "an invalid NAME argument is a usage error and nothing is sent" {
	local long
	long=$(printf 'a%.0s' {1..256})
	# An unreachable node: had anything been sent, the exit would be 1.
	run -2 --separate-stderr reg -n 127.0.0.1:1 register ''
	assert_equal "${stderr_lines[0]}" "fd-registry: invalid name: empty"
	assert_usage_line
	run -2 --separate-stderr reg -n 127.0.0.1:1 lookup "$long"
	assert_equal "${stderr_lines[0]}" "fd-registry: invalid name: longer than 255 bytes"
	run -2 --separate-stderr reg -n 127.0.0.1:1 unregister $'a\tb'
	assert_equal "${stderr_lines[0]}" "fd-registry: invalid name: control character at byte 2"
	run -2 --separate-stderr reg -n 127.0.0.1:1 register $'a\x7f'
	assert_equal "${stderr_lines[0]}" "fd-registry: invalid name: control character at byte 2"
	run -2 --separate-stderr reg -n 127.0.0.1:1 lookup $'caf\xe9'
	assert_equal "${stderr_lines[0]}" "fd-registry: invalid name: invalid UTF-8"
	run -2 --separate-stderr reg -n 127.0.0.1:1 list --prefix $'a\nb'
	assert_equal "${stderr_lines[0]}" "fd-registry: invalid --prefix: control character at byte 2"
	# 255 bytes, spaces and non-ASCII are fine (and get as far as the node).
	run -1 reg -n 127.0.0.1:1 lookup "${long:1}"
	run -1 reg -n 127.0.0.1:1 lookup 'my service/é'
}

@test "options that do not apply, and bad option values, are usage errors" {
	run -2 --separate-stderr reg list --replace
	assert_equal "${stderr_lines[0]}" "fd-registry: option '--replace' does not apply to 'list'"
	run -2 --separate-stderr reg lookup x --force
	assert_equal "${stderr_lines[0]}" "fd-registry: option '--force' does not apply to 'lookup'"
	run -2 --separate-stderr reg watch --format table
	assert_equal "${stderr_lines[0]}" "fd-registry: option '--format' does not apply to 'watch'"
	run -2 --separate-stderr reg unregister --batch
	assert_equal "${stderr_lines[0]}" "fd-registry: option '--batch' does not apply to 'unregister'"
	run -2 --separate-stderr reg lookup x --format yaml
	assert_equal "${stderr_lines[0]}" "fd-registry: invalid --format 'yaml' (json, table)"
	run -2 --separate-stderr reg register x --on-conflict win
	assert_equal "${stderr_lines[0]}" "fd-registry: invalid --on-conflict 'win' (yield, keep)"
	run -2 --separate-stderr reg watch --count 0
	assert_equal "${stderr_lines[0]}" "fd-registry: invalid --count '0' (1 to 1000000000)"
	run -2 --separate-stderr reg lookup x --timeout 0
	assert_equal "${stderr_lines[0]}" "fd-registry: invalid --timeout '0'"
	run -2 --separate-stderr reg lookup x --wait soon
	assert_equal "${stderr_lines[0]}" "fd-registry: invalid --wait 'soon'"
	run -2 --separate-stderr reg lookup --batch --wait 1s
	assert_equal "${stderr_lines[0]}" "fd-registry: --wait does not apply to --batch"
	run -2 --separate-stderr reg register --batch x
	assert_equal "${stderr_lines[0]}" "fd-registry: unexpected argument 'x' (--batch reads stdin)"
	run -2 --separate-stderr reg register x --strict
	assert_equal "${stderr_lines[0]}" "fd-registry: --strict applies to --batch only"
	run -2 --separate-stderr reg --bogus list
	assert_equal "${stderr_lines[0]}" "fd-registry: unknown option '--bogus'"
	run -2 --separate-stderr reg list -n
	assert_equal "${stderr_lines[0]}" "fd-registry: option '-n' requires an argument"
	run -2 --separate-stderr reg list -n 'no port'
	assert_regex "${stderr_lines[0]}" "invalid node address"
}

@test "a value over 64 KiB, or not UTF-8: exit 7 with a clear message" {
	head -c 70000 /dev/zero | tr '\0' a >"$IN"
	run -7 --separate-stderr reg -n 127.0.0.1:1 register big "$(cat "$IN")"
	assert_equal "$stderr" "fd-registry: value larger than 65536 bytes"
	run -7 --separate-stderr reg -n 127.0.0.1:1 register big - <"$IN"
	assert_equal "$stderr" "fd-registry: value larger than 65536 bytes"
	run -7 --separate-stderr reg -n 127.0.0.1:1 register x $'\xff'
	assert_equal "$stderr" "fd-registry: value is not valid UTF-8"
}

## The node

@test "an unreachable node: exit 1 and 'unable to reach', for every subcommand" {
	local args
	for args in 'register x' 'lookup x' 'unregister x' 'list' 'watch' \
		'register --batch' 'lookup --batch'; do
		# shellcheck disable=SC2086  # word splitting of args is meant
		run -1 --separate-stderr reg -n 127.0.0.1:1 $args <<<'{"name":"a"}'
		assert_equal "$output" ""
		assert_regex "${stderr_lines[0]}" "^fd-registry: unable to reach '127\.0\.0\.1:1': "
	done
}

@test "FD_NODE is the default node" {
	FD_NODE=127.0.0.1:1 run -1 --separate-stderr reg lookup x
	assert_regex "${stderr_lines[0]}" "^fd-registry: unable to reach '127\.0\.0\.1:1': "
	start_node
	FD_NODE=$NODE run -0 reg register env.x 1
	FD_NODE=$NODE run -0 reg lookup env.x
	assert_equal "$(jq -c .value <<<"$output")" 1
}

## register, lookup, unregister

@test "register: JSON values stay JSON, anything else is a string, none is null" {
	start_node
	run -0 --separate-stderr reg -n "$NODE" register svc.db 10.0.0.5:5432
	assert_equal "$stderr" ""
	assert_equal "$(jq -c '[.type, .name, .value, .persistent, .created]' <<<"$output")" \
		'["entry","svc.db","10.0.0.5:5432",false,true]'
	assert_equal "$(jq -r '.owner | length > 0' <<<"$output")" true
	assert_equal "$(jq -r '.owner_id | test("^[0-9a-f]{16}$")' <<<"$output")" true
	reg -n "$NODE" register v.obj '{"port": 5432, "tags": ["a"]}' >/dev/null
	reg -n "$NODE" register v.num 42 >/dev/null
	reg -n "$NODE" register v.str '"quoted"' >/dev/null
	reg -n "$NODE" register v.none >/dev/null
	reg -n "$NODE" register v.bad '{"unclosed": 1' >/dev/null
	printf '{"from": "stdin"}\n' | reg -n "$NODE" register v.stdin - >/dev/null
	printf 'two words\n' | reg -n "$NODE" register v.text - >/dev/null
	printf 'keep\n\n' | reg -n "$NODE" register v.nl - >/dev/null
	run -0 reg -n "$NODE" list --prefix v.
	assert_equal "$(jq -c '[.name, .value]' <<<"$output" | paste -sd ' ')" \
		'["v.bad","{\"unclosed\": 1"] ["v.nl","keep\n"] ["v.none",null] ["v.num",42] ["v.obj",{"port":5432,"tags":["a"]}] ["v.stdin",{"from":"stdin"}] ["v.str","quoted"] ["v.text","two words"]'
}

@test "register: a taken name is exit 4 (stdout empty); --replace replaces" {
	start_node
	reg -n "$NODE" register svc.db one >/dev/null
	run -4 --separate-stderr reg -n "$NODE" register svc.db two
	assert_equal "$output" ""
	assert_regex "$stderr" "^fd-registry: name 'svc\.db' is already registered by node '[^']+' \(use --replace\)$"
	run -0 --separate-stderr reg -n "$NODE" register --replace svc.db two
	assert_equal "$(jq -c '[.value, .replaced]' <<<"$output")" '["two",true]'
	run -0 reg -n "$NODE" lookup svc.db
	assert_equal "$(jq -c .value <<<"$output")" '"two"'
	run -0 reg -n "$NODE" register --persistent -q svc.p
	assert_equal "$output" ""
	run -0 reg -n "$NODE" lookup svc.p
	assert_equal "$(jq -c .persistent <<<"$output")" true
}

@test "lookup: exit 3 when absent; --wait waits for the name, or exits 5" {
	start_node
	run -3 --separate-stderr reg -n "$NODE" lookup nothing.here
	assert_equal "$output" ""
	assert_equal "$stderr" "fd-registry: 'nothing.here' is not registered"
	run -5 --separate-stderr reg -n "$NODE" lookup --wait 300ms nothing.here
	assert_equal "$stderr" "fd-registry: 'nothing.here' was not registered within 300ms"
	(sleep 0.5 && fd-registry -n "$NODE" register -q late.name '"hi"') 3>&- &
	bg=$!
	run -0 --separate-stderr reg -n "$NODE" lookup --wait 10s late.name
	assert_equal "$(jq -c '[.name, .value]' <<<"$output")" '["late.name","hi"]'
	wait "$bg"
}

@test "lookup --format table: a header and one row" {
	start_node
	reg -n "$NODE" register svc.web '{"port":80}' >/dev/null
	run -0 --separate-stderr reg -n "$NODE" lookup -f table svc.web
	assert_equal "${#lines[@]}" 2
	assert_regex "${lines[0]}" '^NAME +OWNER +PERSISTENT +VALUE$'
	assert_regex "${lines[1]}" '^svc\.web +[^ ]+ +no +\{"port":80\}$'
}

@test "names with spaces, '&', '=', '/', '%' and non-ASCII round-trip" {
	local name
	start_node
	for name in 'a b' 'x&y=z' 'p/q?r' '100%' 'café ☕' '+plus'; do
		run -0 reg -n "$NODE" register "$name" "\"$name\""
		run -0 reg -n "$NODE" lookup "$name"
		assert_equal "$(jq -r .name <<<"$output")" "$name"
		run -0 reg -n "$NODE" unregister -q "$name"
	done
}

@test "unregister: the record, then exit 3; -q prints nothing" {
	start_node
	reg -n "$NODE" register gone.soon >/dev/null
	run -0 --separate-stderr reg -n "$NODE" unregister gone.soon
	assert_equal "$(jq -c '[.type, .name, .unregistered]' <<<"$output")" '["entry","gone.soon",true]'
	run -3 --separate-stderr reg -n "$NODE" unregister gone.soon
	assert_equal "$stderr" "fd-registry: 'gone.soon' is not registered"
	run -3 reg -n "$NODE" lookup gone.soon
	reg -n "$NODE" register gone.again >/dev/null
	run -0 reg -n "$NODE" unregister -q gone.again
	assert_equal "$output" ""
}

@test "unregister of another node's name: exit 1 (403) unless --force [fake-node]" {
	fake || skip "fake-node only: the two-node version runs against fd-node"
	start_node
	reg -n "$NODE" register foreign.x >/dev/null
	run -1 --separate-stderr reg -n "$NODE" unregister foreign.x
	assert_equal "$stderr" "fd-registry: unable to unregister 'foreign.x': 'foreign.x' is owned by node 'n2' (use --force)"
	run -0 reg -n "$NODE" unregister --force foreign.x
}

@test "unregister of another node's name: exit 1 (403) unless --force [two fd-nodes]" {
	fake && skip "fd-node only"
	start_node n1
	fd_start_node n2 --profile local --join "${FD_ADDR[n1]}"
	reg -n "${FD_ADDR[n2]}" register owned.by.n2 >/dev/null
	fd_wait_until 10s reg -n "${FD_ADDR[n1]}" lookup owned.by.n2
	run -1 --separate-stderr reg -n "${FD_ADDR[n1]}" unregister owned.by.n2
	assert_equal "$stderr" "fd-registry: unable to unregister 'owned.by.n2': 'owned.by.n2' is owned by node 'n2' (use --force)"
	run -0 reg -n "${FD_ADDR[n1]}" unregister --force owned.by.n2
}

## list

@test "list: every entry sorted by name, --prefix, --format table" {
	start_node
	run -0 --separate-stderr reg -n "$NODE" list
	assert_equal "$output" ""
	run -0 reg -n "$NODE" list -f table
	assert_regex "$output" '^NAME +OWNER +PERSISTENT +VALUE$'
	for n in svc.b svc.a other.z svc.c; do
		reg -n "$NODE" register -q "$n" "\"v-$n\""
	done
	run -0 --separate-stderr reg -n "$NODE" list
	assert_equal "$(jq -r .name <<<"$output" | paste -sd ' ')" 'other.z svc.a svc.b svc.c'
	fd_assert_jsonl <(printf '%s\n' "$output")
	run -0 reg -n "$NODE" list --prefix svc.
	assert_equal "$(jq -r .name <<<"$output" | paste -sd ' ')" 'svc.a svc.b svc.c'
	run -0 reg -n "$NODE" list -p nothing
	assert_equal "$output" ""
	run -0 reg -n "$NODE" list -p svc. -f table
	assert_equal "${#lines[@]}" 4
	assert_regex "${lines[1]}" '^svc\.a +[^ ]+ +no +"v-svc\.a"$'
}

@test "list | head -1 ends quietly with 0" {
	start_node
	seq 1 3000 | awk '{ printf "{\"name\":\"h.%d\",\"value\":%d}\n", $1, $1 }' >"$IN"
	reg -n "$NODE" register -q --batch <"$IN"
	run -0 --separate-stderr bash -c 'fd-registry -n "$1" list | head -1; exit "${PIPESTATUS[0]}"' _ "$NODE"
	assert_equal "$stderr" ""
	assert_equal "$(jq -r .name <<<"$output")" h.1
}

## register --batch, lookup --batch

@test "register --batch: one result per good line, in order; bad lines warned and skipped (exit 7)" {
	start_node
	cat >"$IN" <<-'EOF'
		{"name":"b.1","value":1}
		{"name":"b.2"}
		not json

		{"value":3}
		{"name":"","value":4}
		{"name":"b.5","replace":"yes"}
		{"name":"b.6","value":{"deep":[1,2]},"persistent":true}
		[1]
	EOF
	run -7 --separate-stderr reg -n "$NODE" register --batch <"$IN"
	assert_equal "$(jq -c '[.name, .value, .persistent]' <<<"$output" | paste -sd ' ')" \
		'["b.1",1,false] ["b.2",null,false] ["b.6",{"deep":[1,2]},true]'
	assert_equal "${stderr_lines[0]}" "fd-registry: stdin: line 3: invalid JSON: null expected"
	assert_equal "${stderr_lines[1]}" 'fd-registry: stdin: line 5: no "name" string in the record'
	assert_equal "${stderr_lines[2]}" "fd-registry: stdin: line 6: invalid name: empty"
	assert_equal "${stderr_lines[3]}" 'fd-registry: stdin: line 7: "replace" is not a boolean'
	assert_equal "${stderr_lines[4]}" "fd-registry: stdin: line 9: expected a JSON object"
	assert_equal "${#stderr_lines[@]}" 5
}

@test "register --batch: taken names are error records with stdin's line number; exit 4 beats 7" {
	start_node
	reg -n "$NODE" register -q t.taken
	printf '{"name":"t.new"}\n{"name":"t.taken","value":2}\nbad\n' >"$IN"
	run -4 --separate-stderr reg -n "$NODE" register --batch <"$IN"
	assert_equal "${#lines[@]}" 2
	assert_equal "$(jq -c '[.type, .name]' <<<"${lines[0]}")" '["entry","t.new"]'
	assert_equal "$(jq -c '[.type, .line, .name, .status]' <<<"${lines[1]}")" '["error",2,"t.taken",409]'
	fd_assert_stderr_match "^fd-registry: stdin: line 2: .*already registered"
	fd_assert_stderr_match "^fd-registry: stdin: line 3: invalid JSON: "
	# --replace (option or per line) replaces; -q prints nothing.
	printf '{"name":"t.taken","value":3}\n' | reg -n "$NODE" register --batch --replace -q
	run -0 reg -n "$NODE" lookup t.taken
	assert_equal "$(jq -c .value <<<"$output")" 3
	printf '{"name":"t.taken","value":4,"replace":true}\n' >"$IN"
	run -0 reg -n "$NODE" register --batch <"$IN"
	assert_equal "$(jq -c '[.value, .replaced]' <<<"$output")" '[4,true]'
}

@test "register --batch --strict stops at the first bad line" {
	start_node
	printf '{"name":"s.1"}\nbad\n{"name":"s.3"}\n' >"$IN"
	run -7 --separate-stderr reg -n "$NODE" register --batch --strict <"$IN"
	fd_assert_stderr_match "^fd-registry: stdin: line 2: invalid JSON: "
	run -3 reg -n "$NODE" lookup s.3
}

@test "register --batch: a value over 64 KiB in a line is skipped with exit 7" {
	start_node
	{
		printf '{"name":"big.1","value":"'
		head -c 70000 /dev/zero | tr '\0' a
		printf '"}\n{"name":"small.1","value":1}\n'
	} >"$IN"
	run -7 --separate-stderr reg -n "$NODE" register --batch <"$IN"
	assert_equal "$(jq -r .name <<<"$output")" small.1
	assert_equal "$stderr" "fd-registry: stdin: line 1: value larger than 65536 bytes"
}

@test "lookup --batch: plain names and {\"name\"} lines, one line each in order, absent ones found:false" {
	start_node
	reg -n "$NODE" register -q l.a '"A"'
	reg -n "$NODE" register -q l.b '"B"'
	printf 'l.b\n{"name":"l.a"}\nl.none\n{"nope":1}\n  l.a  \n' >"$IN"
	run -7 --separate-stderr reg -n "$NODE" lookup --batch <"$IN"
	assert_equal "${#lines[@]}" 4
	assert_equal "$(jq -c '[.name, .value]' <<<"${lines[0]}")" '["l.b","B"]'
	assert_equal "$(jq -c '[.name, .value]' <<<"${lines[1]}")" '["l.a","A"]'
	assert_equal "${lines[2]}" '{"type":"entry","name":"l.none","found":false}'
	assert_equal "$(jq -c '[.name, .value]' <<<"${lines[3]}")" '["l.a","A"]'
	assert_equal "$stderr" 'fd-registry: stdin: line 4: no "name" string in the record'
	printf 'l.a\nl.none\n' | reg -n "$NODE" lookup --batch -f table >"$OUT"
	run cat "$OUT"
	assert_equal "${#lines[@]}" 3
	assert_regex "${lines[2]}" '^l\.none +- +- +\(not found\)$'
}

@test "--batch answers each line while stdin is idle (a slow producer is not stalled)" {
	start_node
	{
		printf '{"name":"idle.1"}\n'
		sleep 3
		printf '{"name":"idle.2"}\n'
	} | fd-registry -n "$NODE" register --batch >"$OUT" 3>&- &
	bg=$!
	fd_wait_until 2s grep -q idle.1 "$OUT"
	run grep -c idle.2 "$OUT"
	assert_output 0
	wait "$bg"
	run -0 grep -c . "$OUT"
	assert_output 2
}

@test "--batch at volume: 20000 names registered and looked up, in chunks" {
	start_node
	seq 1 20000 | awk '{ printf "{\"name\":\"vol.%d\",\"value\":\"10.0.0.5:%d\"}\n", $1, $1 }' >"$IN"
	reg -n "$NODE" register --batch <"$IN" >"$OUT"
	run -0 jq -s 'map(select(.created == true)) | length' "$OUT"
	assert_output 20000
	seq 1 20000 | sed 's/^/vol./' | reg -n "$NODE" lookup --batch >"$OUT"
	run -0 jq -rs '[.[] | .value] | (length|tostring) + " " + .[0] + " " + .[19999]' "$OUT"
	assert_output '20000 10.0.0.5:1 10.0.0.5:20000'
	if fake; then
		# No request per line: chunks of at most 1000 records.
		run -0 bash -c "jq -s 'map(select(.path == \"/v1/registry/batch\")) | (length <= 40) and (map(.lines) | add == 20000)' <<<\"\$1\"" _ "$(requests)"
		assert_output true
	fi
}

## watch

@test "watch --count: events as they happen, then exit 0" {
	start_node
	fd_spawn watch fd-registry -n "$NODE" watch --count 3 --prefix w.
	sleep 0.5
	reg -n "$NODE" register -q w.1 '"one"'
	reg -n "$NODE" register -q other.1
	reg -n "$NODE" register -q --replace w.1 '"two"'
	reg -n "$NODE" unregister -q w.1
	fd_wait_until 10s _fd_gone "${FD_PID[watch]}"
	run -0 wait "${FD_PID[watch]}"
	run -0 jq -c '[.type, .event, .name]' "${FD_OUT[watch]}"
	assert_equal "$(paste -sd ' ' <<<"$output")" \
		'["event","registered","w.1"] ["event","updated","w.1"] ["event","unregistered","w.1"]'
	run -0 jq -r 'select(.event == "updated") | .value' "${FD_OUT[watch]}"
	assert_output two
}

@test "watch --timeout: exit 5 with fewer than --count events, 0 without --count" {
	start_node
	run -5 --separate-stderr reg -n "$NODE" watch --count 1 --timeout 500ms
	assert_equal "$output" ""
	assert_equal "$stderr" "fd-registry: only 0 of 1 events within 500ms"
	run -0 --separate-stderr reg -n "$NODE" watch --timeout 300ms
	assert_equal "$stderr" ""
}

@test "watch | head -1 ends quietly with 0" {
	start_node
	(sleep 0.5 && fd-registry -n "$NODE" register -q h.1) 3>&- &
	bg=$!
	run -0 --separate-stderr timeout 10 bash -c 'fd-registry -n "$1" watch | head -1; exit "${PIPESTATUS[0]}"' _ "$NODE"
	assert_equal "$stderr" ""
	assert_equal "$(jq -c '[.event, .name]' <<<"$output")" '["registered","h.1"]'
	wait "$bg"
}

@test "watch: the node going away mid-stream is exit 1 with a message" {
	start_node
	fd_spawn watch fd-registry -n "$NODE" watch
	sleep 0.5
	reg -n "$NODE" register -q before.kill
	fd_wait_until 5s grep -q before.kill "${FD_OUT[watch]}"
	kill -KILL "${FD_PID[n1]}"
	fd_wait_until 5s _fd_gone "${FD_PID[watch]}"
	run -1 wait "${FD_PID[watch]}"
	run cat "${FD_ERR[watch]}"
	assert_regex "$output" "^fd-registry: (connection to '[^']+' lost: .*|'[^']+' ended the watch)$"
}
