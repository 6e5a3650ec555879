#!/bin/sh
# SPDX-License-Identifier: MIT
# test-cli.sh: the calsync command line: output, exit codes, JSON.
# Usage: test-cli.sh /path/to/calsync VERSION   (meson passes both)
set -u

calsync=$1
version=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# run EXPECTED_STATUS ARGS...: runs calsync, keeps stdout and stderr in $tmp/out and $tmp/err.
run() {
	want=$1
	shift
	"$calsync" "$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	[ "$got" -eq "$want" ] || fail "calsync $*: exit status $got, expected $want"
}

# has FILE TEXT: FILE contains the fixed string TEXT.
has() {
	grep -qF -- "$2" "$tmp/$1" || fail "$1 of the last command lacks '$2': $(cat "$tmp/$1")"
}

empty() {
	[ ! -s "$tmp/$1" ] || fail "$1 of the last command is not empty: $(cat "$tmp/$1")"
}

for args in version --version; do
	run 0 $args
	head -n 1 "$tmp/out" | grep -q "^calsync $version\( (.*)\)\?\$" ||
		fail "calsync $args: first line is '$(head -n 1 "$tmp/out")'"
	for lib in libcurl libxml2 sqlite libmicrohttpd libuv jansson; do
		grep -q "^$lib [0-9][0-9.]*" "$tmp/out" ||
			fail "calsync $args: no '$lib' version line"
	done
	empty err
done

run 0 version --json
has out "\"version\": \"$version\""
has out '"libraries": {'
has out '"libxml2": "'
has out '"jansson": "'
if command -v python3 >/dev/null; then
	python3 -c 'import json, sys; d = json.load(sys.stdin); assert len(d["libraries"]) == 6' \
		<"$tmp/out" || fail "calsync version --json: not the expected JSON"
fi

for args in help --help -h; do
	run 0 $args
	has out "Usage: calsync <command>"
	has out "version"
	empty err
done

run 2
has err "Usage: calsync"
empty out

run 2 frobnicate
has err "unknown command 'frobnicate'"
has err "calsync --help"
empty out

run 2 --frobnicate
has err "unknown option '--frobnicate'"

run 2 version --yaml
has err "calsync version: unknown option '--yaml'"

run 2 help extra
has err "unexpected argument 'extra'"

if [ -w /dev/full ]; then
	"$calsync" version >/dev/full 2>"$tmp/err"
	[ $? -eq 1 ] || fail "calsync version >/dev/full: expected exit status 1"
	has err "cannot write to standard output"
fi

if [ "$failures" -gt 0 ]; then
	echo "$failures check(s) failed" >&2
	exit 1
fi
echo "all CLI checks passed"
