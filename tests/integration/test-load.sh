#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-load.sh: load through the HTTP shim (issue 5 point 6), driven by kc-load.py.
# 1. Mixed: concurrent keep-alive clients create (p256v1), list, get and delete for a bounded
#    time while another sends malformed requests (bad JSON, bad auth, a body over 1 MiB, bad
#    ids). Every answer must be the right one or an explicit 503 (code 1503, Retry-After);
#    the acknowledged creates minus the acknowledged deletes are exactly the records listed.
# 2. Memory: the RSS of the daemon and of the shim after 100,000 list/get requests stays
#    within 10% of what it was after the first 10,000 (warm-up: allocator arenas, SQLite
#    page cache, libevent buffers and the shim's connection pool have reached their size by
#    then; a leak of even 100 bytes a request would add ~9 MB over the next 90,000).
# Short: 20 s mixed, 8 clients. KC_LONG_TESTS=1: 120 s mixed, 16 clients, 300,000 reads.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/reliability-common.sh"
. "$(dirname "$0")/http-common.sh"

# Under AddressSanitizer freed memory waits in a quarantine (256 MB by default) before it is
# reused, so RSS keeps climbing for as long as the quarantine fills and point 2 would measure
# ASan, not us. A small quarantine is full within the warm-up; use-after-free is still caught
# within its 16 MB (the rest of the suite keeps the default).
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"
export ASAN_OPTIONS

LOAD="$top_srcdir/tests/integration/kc-load.py"
if kc_long; then SECS=120 CLIENTS=16 READS=300000; else SECS=20 CLIENTS=8 READS=100000; fi
WARM=10000

kc_setup
trap 'kc_stop_http; kc_cleanup' EXIT
kc_start_http "$KC_TMP" || { echo "Bail out: shim did not start"; exit 1; }

# report FILE WHAT: TAP lines from a kc-load.py run.
report() {
	grep '^stat|' "$1" | cut -d'|' -f2- | sed "s/^/# $2: /; s/|/ = /"
	nbad=$(grep -c '^bad|' "$1")
	if [ "$nbad" -eq 0 ]; then ok "$2: every answer right or an explicit 503/1503"
	else not_ok "$2: $nbad wrong answers"; grep '^bad|' "$1" | head -10 | sed 's/^bad|/#   /'; fi
}
rss() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }

# --- 1. mixed load ---
python3 "$LOAD" mixed "$KC_HTTP_URL" "$KC_TOKEN_W" "$KC_ZONE" "$SECS" "$CLIENTS" \
    >"$KC_TMP/mixed.out" 2>"$KC_TMP/mixed.err" || not_ok "kc-load.py mixed ran"
[ -s "$KC_TMP/mixed.err" ] && sed 's/^/#   /' "$KC_TMP/mixed.err" | head
report "$KC_TMP/mixed.out" "mixed load"
grep '^live|' "$KC_TMP/mixed.out" | cut -d'|' -f2 | sort >"$KC_TMP/live"
list_all "$KC_ZONE" | cut -d' ' -f2 | sort >"$KC_TMP/listed"
creates=$(sed -n 's/^stat|create_ok|//p' "$KC_TMP/mixed.out")
deletes=$(sed -n 's/^stat|delete_ok|//p' "$KC_TMP/mixed.out")
echo "# acknowledged: ${creates:-0} creates, ${deletes:-0} deletes; listed: $(wc -l <"$KC_TMP/listed")"
check_eq "acknowledged creates minus deletes = records present" \
    "$((${creates:-0} - ${deletes:-0}))" "$(wc -l <"$KC_TMP/listed")"
check "exactly the acknowledged, undeleted records are present" cmp "$KC_TMP/live" "$KC_TMP/listed"
[ "${creates:-0}" -gt 0 ] && ok "creates succeeded under load" || not_ok "no create succeeded"
check "daemon still healthy" ctl health
kill -0 "$KC_HTTP_PID" 2>/dev/null && ok "shim still running" || not_ok "shim died"

# --- 2. memory after 100,000 list/get requests ---
python3 "$LOAD" reads "$KC_HTTP_URL" "$KC_TOKEN_W" "$KC_ZONE" "$WARM" "$CLIENTS" \
    >"$KC_TMP/warm.out" 2>&1
report "$KC_TMP/warm.out" "first $WARM reads"
d0=$(rss "$DAEMON_PID") h0=$(rss "$KC_HTTP_PID")
python3 "$LOAD" reads "$KC_HTTP_URL" "$KC_TOKEN_W" "$KC_ZONE" "$((READS - WARM))" "$CLIENTS" \
    >"$KC_TMP/reads.out" 2>&1
report "$KC_TMP/reads.out" "next $((READS - WARM)) reads"
d1=$(rss "$DAEMON_PID") h1=$(rss "$KC_HTTP_PID")
echo "# RSS daemon: $d0 kB after $WARM, $d1 kB after $READS requests"
echo "# RSS shim:   $h0 kB after $WARM, $h1 kB after $READS requests"
# within 10%: 10 * new <= 11 * old
[ $((10 * d1)) -le $((11 * d0)) ] && ok "daemon RSS within 10% ($d0 -> $d1 kB)" ||
    not_ok "daemon RSS grew more than 10% ($d0 -> $d1 kB)"
[ $((10 * h1)) -le $((11 * h0)) ] && ok "shim RSS within 10% ($h0 -> $h1 kB)" ||
    not_ok "shim RSS grew more than 10% ($h0 -> $h1 kB)"

kc_stop_http
kc_check_sanitizer_log "$KC_TMP/http.log" keycustody-http
kc_stop_daemon
check "audit trail verifies" ctl audit verify "$KC_TMP/audit.log"
kc_done
