#!/bin/sh
# SPDX-License-Identifier: MIT
# test-hooks.sh: the default build's calsync has no test clock; the -Dtest_hooks=true one has.
# Usage: test-hooks.sh /path/to/calsync on|off   (meson passes the binary and -Dtest_hooks)
#
# "off" (the build that is installed and shipped): the binary holds no CALSYNC_TEST_CLOCK_FILE,
# and `calsync run` with that variable set and a clock file present neither reads it nor dies
# of SIGUSR2. "on": both the other way round, so this test fails whichever way the option and
# the code disagree.
set -u

calsync=$1
hooks=$2
tmp=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
failures=0

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# --- what the binary contains -------------------------------------------------------------
if grep -qF CALSYNC_TEST_CLOCK_FILE "$calsync"; then has_name=on; else has_name=off; fi
[ "$has_name" = "$hooks" ] ||
	fail "test_hooks=$hooks, but CALSYNC_TEST_CLOCK_FILE in $calsync: $has_name"

# --- what calsync run does with the variable set ------------------------------------------
# A server that refuses connections (port 9 on loopback) is enough: the daemon starts, retries
# its mailbox in the background and answers signals.
cat >"$tmp/calsync.xml" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <calendar_sync>
    <exchange><events><advise Object="EwsPull"/></events></exchange>
    <calsync>
      <ews url="http://127.0.0.1:9/EWS/Exchange.asmx"/>
      <account user="svc@contoso.example" auth="basic" password_env="CALSYNC_HOOKS_PASSWORD"/>
      <mailboxes><mailbox>alice@contoso.example</mailbox></mailboxes>
      <store path="$tmp/calsync.db"/>
      <output path="$tmp/presence.jsonl"/>
      <api enabled="false"/>
    </calsync>
  </calendar_sync>
</configuration>
XML
echo '{"frozen": 1000000000}' >"$tmp/clock.json"

CALSYNC_HOOKS_PASSWORD=x CALSYNC_TEST_CLOCK_FILE="$tmp/clock.json" CALSYNC_LOG_LEVEL=info \
	"$calsync" run -c "$tmp/calsync.xml" 2>"$tmp/err" &
pid=$!

# wait_log TEXT: up to 20 s for the log to contain TEXT; 1 when it never did.
wait_log() {
	for _ in $(seq 1 200); do
		grep -qF -- "$1" "$tmp/err" && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

if ! wait_log "calsync running"; then
	fail "calsync run did not start: $(cat "$tmp/err")"
else
	if [ "$hooks" = on ]; then
		grep -qF "test clock: offset 0 s, frozen" "$tmp/err" ||
			fail "test build: the clock file was not read at start: $(cat "$tmp/err")"
		n=$(grep -cF "test clock:" "$tmp/err")
		kill -USR2 "$pid"
		for _ in $(seq 1 200); do
			[ "$(grep -cF "test clock:" "$tmp/err")" -gt "$n" ] && break
			sleep 0.1
		done
		[ "$(grep -cF "test clock:" "$tmp/err")" -gt "$n" ] ||
			fail "test build: SIGUSR2 did not re-read the clock file"
	else
		# An ignored SIGUSR2 leaves no trace; one that were not ignored would kill calsync
		# before the SIGTERM that follows, and the exit status would say so.
		kill -USR2 "$pid"
	fi
	kill -TERM "$pid"
	wait "$pid"
	status=$?
	pid=
	[ "$status" -eq 0 ] || fail "calsync run: exit status $status after SIGUSR2 and SIGTERM"
	if [ "$hooks" = off ] && grep -qF "test clock" "$tmp/err"; then
		fail "default build: calsync read the test clock: $(cat "$tmp/err")"
	fi
fi

if [ "$failures" -gt 0 ]; then
	echo "$failures failure(s)" >&2
	exit 1
fi
echo "test-hooks: all checks passed (test_hooks=$hooks)"
