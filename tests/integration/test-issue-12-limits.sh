#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-issue-12-limits.sh: the daemon's per-peer limits (issue 12, point 2).
# 1. A peer that sends 1,000 list requests (pages of 50 large CSRs, ~250 kB each) and never
#    reads a reply is cut off; the daemon's peak RSS grows by less than 48 MB (it grew by
#    about 250 MB before: every reply was kept for the peer).
# 2. As root (setpriv): a reader holding 30 connections gets only the slots that are not
#    reserved for the gateway and the admin; the admin's health still works (before, the
#    reader took every slot and health failed with "input/output error").
# 3. As root: a peer without a role connecting 2,000 times is logged at most
#    refusal_log_rate times a second; health counts the lines left out.

. "$(dirname "$0")/common.sh"
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 missing"; exit 77; }
RAW="$top_srcdir/tests/integration/kc-raw.py"
kc_token
cat >>"$KC_TMP/keycustodyd.conf" <<EOC
max_connections = 16
admin_connections = 2
gateway_connections = 2
connection_requests = 16
connection_unread = 1048576
connection_unread_timeout = 2
refusal_log_rate = 5
admin = 0
reader = bin
EOC
kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }

vm() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
hfield() { ctl health 2>/dev/null | sed -n "s/^$1: *//p"; }

# --- 1. the peer that never reads ---
sans=""
i=0
while [ $i -lt 40 ]; do
	sans="$sans san$i.a-rather-long-subject-alternative-name.acme-corp.co.uk"
	i=$((i + 1))
done
i=0
while [ $i -lt 50 ]; do
	# shellcheck disable=SC2086
	kc_csr p256v1 "big$i.acme-corp.co.uk" $sans >/dev/null 2>"$KC_TMP/c.err" ||
	    { not_ok "create CSR $i"; sed 's/^/#   /' "$KC_TMP/c.err"; break; }
	i=$((i + 1))
done
ctl csr list --zone "$KC_ZONE" --per-page 50 >/dev/null 2>&1   # the page cache is warm
hwm0=$(vm "$DAEMON_PID" VmHWM)
python3 "$RAW" unread "$KEYCUSTODY_SOCKET" "$KC_ZONE" 1000 15 >"$KC_TMP/unread.out" 2>&1
sed 's/^/# /' "$KC_TMP/unread.out"
hwm1=$(vm "$DAEMON_PID" VmHWM)
echo "# daemon peak RSS: $hwm0 kB before, $hwm1 kB after the non-reading peer"
[ $((hwm1 - hwm0)) -lt 49152 ] && ok "peak RSS grew by less than 48 MB ($((hwm1 - hwm0)) kB)" ||
    not_ok "peak RSS grew by $((hwm1 - hwm0)) kB"
after=$(sed -n 's/^stat|cut_off_after|//p' "$KC_TMP/unread.out")
case $after in
""|never) not_ok "the non-reading peer was not cut off within 15 s" ;;
*) ok "the non-reading peer was cut off (after ${after}s of trying to send more)" ;;
esac
check "the cut-off is logged" grep -q 'reply bytes unread for 2s; cutting it off' \
    "$KC_TMP/keycustodyd.log"
check_eq "health counts the cut-off" 1 \
    "$(hfield connections | sed -n 's/.*refused, \([0-9]*\) cut off.*/\1/p')"
check "the daemon still answers" ctl health

# --- 2 and 3 act as other users ---
if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null 2>&1; then
	echo "# parts 2 and 3 skipped: they need root and setpriv"
	kc_done
fi
chmod 0777 "$KC_TMP"
chmod 0666 "$KEYCUSTODY_SOCKET"
# The system's python: a per-user one (pyenv) may not be reachable for other users.
SYSPY=/usr/bin/python3
[ -x "$SYSPY" ] || SYSPY=python3
as() {	# as USER COMMAND...
	u=$1; shift
	setpriv --reuid="$u" --regid="$(id -g "$u")" --clear-groups "$@"
}

# --- 2. a reader holds every slot it can ---
as bin "$SYSPY" "$RAW" hold "$KEYCUSTODY_SOCKET" 30 6 >"$KC_TMP/hold.out" 2>&1 &
hold=$!
i=0
while ! grep -q '^stat|refused|' "$KC_TMP/hold.out" && [ $i -lt 100 ]; do
	sleep 0.1; i=$((i + 1))
done
sed 's/^/# /' "$KC_TMP/hold.out"
check_eq "the reader got the 12 slots that are not reserved" 12 \
    "$(sed -n 's/^stat|answered|//p' "$KC_TMP/hold.out")"
check "the admin's health works while the reader holds its slots" ctl health
check "the admin can list too" ctl csr list --zone "$KC_ZONE"
check "the refusal names the role and its limit" \
    grep -q 'role reader): 12 connections open, 12 the most for the role' \
    "$KC_TMP/keycustodyd.log"
hfield connections | sed 's/^/# health: /'
wait $hold

# --- 3. a peer without a role connects 2,000 times ---
n0=$(grep -c 'no role' "$KC_TMP/keycustodyd.log")
t0=$(date +%s)
as daemon "$SYSPY" "$RAW" refused "$KEYCUSTODY_SOCKET" 2000 >"$KC_TMP/refused.out" 2>&1
t1=$(date +%s)
sleep 1.1	# the next line says how many were left out
as daemon "$SYSPY" "$RAW" refused "$KEYCUSTODY_SOCKET" 1 >/dev/null 2>&1
sleep 0.2
n1=$(grep -c 'no role' "$KC_TMP/keycustodyd.log")
lines=$((n1 - n0)) most=$((5 * (t1 - t0 + 3)))
echo "# $lines 'no role' lines for 2001 refusals in $((t1 - t0 + 1)) s"
[ "$lines" -ge 1 ] && [ "$lines" -le "$most" ] &&
    ok "refusals are logged, at most 5 a second ($lines lines)" ||
    not_ok "$lines refusal lines for 2001 refusals (at most $most expected)"
check "the log says how many were left out" grep -q 'no role (.* more suppressed)' \
    "$KC_TMP/keycustodyd.log"
sup=$(hfield 'log lines suppressed')
[ "${sup:-0}" -ge 1900 ] && ok "health counts the suppressed lines ($sup)" ||
    not_ok "health counts ${sup:-no} suppressed lines"
check "the daemon still answers" ctl health

kc_done
