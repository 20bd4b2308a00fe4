#!/usr/bin/env bats
# shellcheck disable=SC2016,SC2154  # bash -c scripts in single quotes; $stderr comes from run
# The tree keeps its promises (DESIGN.md §1): every binary has a man page,
# bash and zsh completions and a bats file; every built binary answers
# --help and --version; the pages render cleanly.

setup() { load helpers/common; fd_common_setup; }
teardown() { fd_common_teardown; }

# The binaries the tree defines: one cmd/fd-*/ folder each.
commands()
{
	local d
	for d in "$FD_ROOT"/cmd/fd-*/; do
		[ -d "$d" ] || continue
		d=${d%/}
		echo "${d##*/}"
	done
}

@test "every cmd/fd-* has a man page, completions and a bats file" {
	local name missing=()
	while IFS= read -r name; do
		[ -f "$FD_ROOT/man/$name.1" ] || missing+=("man/$name.1")
		[ -f "$FD_ROOT/completions/bash/$name" ] || missing+=("completions/bash/$name")
		grep -q "complete .*[[:space:]]$name\$" "$FD_ROOT/completions/bash/$name" 2>/dev/null ||
			missing+=("a 'complete ... $name' line in completions/bash/$name")
		grep -Eqs "^#compdef(.*[[:space:]])?$name([[:space:]]|\$)" "$FD_ROOT"/completions/zsh/_* ||
			missing+=("a zsh completion (#compdef $name) in completions/zsh/")
		[ -f "$FD_ROOT/tests/cli/$name.bats" ] || missing+=("tests/cli/$name.bats")
	done < <(commands)
	[ ${#missing[@]} -eq 0 ] || fail "$(printf 'missing: %s\n' "${missing[@]}")"
}

@test "every man page in section 1 belongs to a binary of the tree" {
	local page name stray=()
	for page in "$FD_ROOT"/man/*.1; do
		[ -f "$page" ] || continue
		name=$(basename "$page" .1)
		[ -d "$FD_ROOT/cmd/$name" ] || stray+=("$page")
	done
	[ ${#stray[@]} -eq 0 ] || fail "$(printf 'no cmd/ folder for: %s\n' "${stray[@]}")"
}

@test "every man page renders without a warning" {
	command -v groff >/dev/null || skip "groff is not installed"
	local page
	for page in "$FD_ROOT"/man/*.[1-8]; do
		run --separate-stderr groff -man -ww -z "$page"
		[ "$status" -eq 0 ] && [ -z "$stderr" ] ||
			fail "$page: groff exit $status: $stderr"
	done
	# The pages name the sections people look for.
	for page in "$FD_ROOT"/man/*.1; do
		for section in NAME SYNOPSIS DESCRIPTION OPTIONS 'EXIT STATUS' ENVIRONMENT EXAMPLES 'SEE ALSO'; do
			grep -Eq "^\.SH \"?$section\"?\$" "$page" || fail "$page: no .SH $section"
		done
	done
}

@test "every built binary exists and answers --help (stdout, exit 0) and --version" {
	local name bin version
	version=$(cat "$FD_ROOT/VERSION")
	while IFS= read -r name; do
		bin=$FD_BUILD/bin/$name
		[ -x "$bin" ] || fail "$name is not built in $FD_BUILD/bin"
		run -0 --separate-stderr "$bin" --help
		[ -z "$stderr" ] || fail "$name --help wrote to stderr: $stderr"
		[[ ${lines[0]} == "usage: $name"* ]] || fail "$name --help: first line is '${lines[0]}'"
		run -0 --separate-stderr "$bin" --version
		assert_equal "$output" "$name $version"
	done < <(commands)
	# And nothing in bin/ that the tree does not define.
	for bin in "$FD_BUILD"/bin/*; do
		[ -e "$bin" ] || continue
		name=${bin##*/}
		[ -d "$FD_ROOT/cmd/$name" ] || fail "$bin: no cmd/$name folder"
	done
}

@test "the README lists every binary" {
	local name
	while IFS= read -r name; do
		grep -q "\b$name\b" "$FD_ROOT/README.md" || fail "README.md does not mention $name"
	done < <(commands)
}
