# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# reliability-common.sh: helpers for test-crash.sh, test-shutdown.sh, test-startup.sh and
# test-load.sh; sourced after common.sh.

for t in python3 pkcs11-tool jq openssl curl; do
	command -v $t >/dev/null 2>&1 || { echo "SKIP: $t missing"; exit 77; }
done
python3 -c 'import sqlite3' 2>/dev/null || { echo "SKIP: python3 sqlite3 missing"; exit 77; }
INVARIANTS="$top_srcdir/tests/integration/kc-invariants.py"

# kc_long: whether the long variants run (KC_LONG_TESTS=1, or configure --enable-long-tests).
kc_long() { [ -n "${KC_LONG_TESTS:-}" ] && [ "$KC_LONG_TESTS" != 0 ]; }

# invariants [ARGS]: run kc-invariants.py on the stopped daemon's files, one TAP line each.
invariants() {
	python3 "$INVARIANTS" --db "$KC_TMP/keycustody.db" --module "$KC_MODULE" \
	    --label "$KC_LABEL" --pin-file "$KC_TMP/pin" --audit "$KC_TMP/audit.log" \
	    --tmp "$KC_TMP" "$@" >"$KC_TMP/inv.out" 2>"$KC_TMP/inv.err"
	while IFS='|' read -r kind what val; do
		case $kind in
		ok) ok "$what" ;;
		fail) not_ok "$what" ;;
		stat) echo "# $what: $val" ;;
		esac
	done <"$KC_TMP/inv.out"
	if [ -s "$KC_TMP/inv.err" ]; then
		not_ok "kc-invariants.py ran cleanly"; sed 's/^/#   /' "$KC_TMP/inv.err" | head -20
	fi
}

# list_all ZONE...: every record that csr list returns, "ZONE ID" a line.
list_all() {
	for z in "$@"; do
		p=1
		while :; do
			ctl --json csr list --zone "$z" --page $p --per-page 50 >"$KC_TMP/page.json" ||
			    return 1
			n=$(jq length <"$KC_TMP/page.json")
			jq -r --arg z "$z" '.[] | "\($z) \(.id)"' <"$KC_TMP/page.json"
			[ "$n" -lt 50 ] && break
			p=$((p + 1))
		done
	done
}

health_field() { ctl health 2>/dev/null | sed -n "s/^$1: *//p"; }

# start_degraded: kc_start_daemon for a daemon whose health is not "ok" (keycustodyctl
# health then exits non-zero): wait until it answers at all.
start_degraded() {
	"$KEYCUSTODYD" -d -f "$KC_TMP/keycustodyd.conf" >>"$KC_TMP/keycustodyd.log" 2>&1 &
	DAEMON_PID=$!
	i=0
	while [ $i -lt 200 ]; do
		ctl health 2>/dev/null | grep -q '^hsm:' && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || { DAEMON_PID=; return 1; }
		sleep 0.05; i=$((i + 1))
	done
	return 1
}


# start_or_reap: kc_start_daemon; when it fails on a daemon that runs but is not healthy,
# kill that daemon so that no instance outlives the test or shadows the next start.
start_or_reap() {
	kc_start_daemon && return 0
	if [ -n "$DAEMON_PID" ]; then
		kill -KILL "$DAEMON_PID" 2>/dev/null; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=
	fi
	return 1
}
