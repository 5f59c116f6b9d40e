#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-shutdown.sh: graceful shutdown and restart (issue 5 point 4).
# 1. SIGTERM while RSA-4096 creates are in flight: the daemon stops accepting at once,
#    answers every request it had taken (success, or a clean error), exits 0, and the store,
#    the token and the audit log agree afterwards (kc-invariants.py); the next start has
#    nothing to reconcile.
# 2. The HTTP shim rides through a daemon restart: while the daemon is down every answer is
#    an explicit 503 (code 1503, Retry-After), and it recovers by itself once the daemon is
#    back, without being restarted.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/reliability-common.sh"
. "$(dirname "$0")/http-common.sh"

NCREATE=4
kc_setup

# --- 1. SIGTERM with work in flight ---
i=0
while [ $i -lt $NCREATE ]; do
	i=$((i + 1))
	( kc_csr rsa4096 "t$i.acme-corp.co.uk" "t$i.acme-corp.co.uk" >"$KC_TMP/t$i.json" \
	    2>"$KC_TMP/t$i.err"; echo $? >"$KC_TMP/t$i.rc" ) &
done
# Wait until the daemon has taken all of them (queue depth), at least one key being made.
i=0
while [ $i -lt 100 ]; do
	q=$(health_field queue | sed 's: */.*::')
	[ "${q:-0}" -ge $NCREATE ] && break
	sleep 0.02; i=$((i + 1))
done
echo "# queue depth when SIGTERM was sent: ${q:-?}"
kill -TERM "$DAEMON_PID"
sleep 0.2
if kill -0 "$DAEMON_PID" 2>/dev/null; then
	ok "daemon still draining 0.2 s after SIGTERM"
	if ctl health >/dev/null 2>&1; then not_ok "new connections refused while draining"
	else ok "new connections refused while draining"; fi
else
	echo "# (the daemon finished before the probe: RSA-4096 generation was quick)"
fi
wait "$DAEMON_PID"
rc=$?
DAEMON_PID=
check_eq "daemon exits 0 after SIGTERM with work in flight" 0 "$rc"
wait
answered=0 succeeded=0
: >"$KC_TMP/created"
i=0
while [ $i -lt $NCREATE ]; do
	i=$((i + 1))
	if [ "$(cat "$KC_TMP/t$i.rc")" = 0 ]; then
		succeeded=$((succeeded + 1)); answered=$((answered + 1))
		echo "$KC_ZONE $(jq -r .id <"$KC_TMP/t$i.json")" >>"$KC_TMP/created"
	elif [ -s "$KC_TMP/t$i.json" ] &&
	    jq -e '.errors[0].code' "$KC_TMP/t$i.json" >/dev/null 2>&1; then
		answered=$((answered + 1))
		echo "# create $i failed cleanly: $(tr -d '\n' <"$KC_TMP/t$i.json" | head -c 300)"
	else
		echo "# create $i: no answer: $(cat "$KC_TMP/t$i.err" "$KC_TMP/t$i.json")"
	fi
done
check_eq "every in-flight create was answered" $NCREATE $answered
echo "# in-flight creates finished before exit: $succeeded of $NCREATE"
check "log: stopped accepting on the signal" grep -q 'signal 15: no new connections' \
    "$KC_TMP/keycustodyd.log"
check "audit trail verifies" ctl audit verify "$KC_TMP/audit.log"
invariants --created "$KC_TMP/created"
: >"$KC_TMP/keycustodyd.log"
kc_start_daemon || { echo "Bail out: restart"; exit 1; }
if grep -q 'reconcile: \(unfinished\|half-deleted\)' "$KC_TMP/keycustodyd.log"; then
	not_ok "nothing to reconcile after a clean shutdown"
else ok "nothing to reconcile after a clean shutdown"; fi
# Every ready record is a key in custody, acknowledged or not (the invariants above proved
# each has its pair); the acknowledged ones are among them.
ready=$(sed -n 's/^stat|records_ready|//p' "$KC_TMP/inv.out")
check_eq "keys in custody after restart" "${ready:-?}" "$(health_field 'keys in custody')"

# --- 2. The shim rides through a daemon restart ---
tmp=$KC_TMP
kc_start_http "$KC_TMP" || { echo "Bail out: shim did not start"; exit 1; }
CSRS=/zones/$KC_ZONE/custom_csrs
req GET "$CSRS" -H "$(W)"; expect 200 - "list through the shim"
kc_stop_daemon
req GET "$CSRS" -H "$(W)"; expect 503 1503 "daemon stopped: 503/1503"
grep -qi '^retry-after: [0-9]' "$tmp/hdr" && ok "Retry-After with the daemon stopped" ||
    bad "Retry-After missing"
req POST "$CSRS" -H "$(W)" -d '{"country":"US","state":"MA","locality":"Boston","organization":"O","common_name":"s.acme-corp.co.uk","sans":["s.acme-corp.co.uk"],"key_type":"p256v1"}'
expect 503 1503 "create with the daemon stopped: 503/1503"
req GET /healthz; check_eq "healthz with the daemon stopped" 503 "$st"
# Clients keep calling across the restart: only 200 or 503/1503 may come back.
: >"$KC_TMP/statuses"
(
	while [ ! -e "$KC_TMP/stop-poll" ]; do
		s=$(curl -sS -o "$KC_TMP/poll.json" -D "$KC_TMP/poll.hdr" -w '%{http_code}' \
		    -H "$(W)" "$KC_HTTP_URL$CSRS")
		c=$(jq -r '.errors[0].code // "-"' <"$KC_TMP/poll.json" 2>/dev/null)
		ra=-; grep -qi '^retry-after: [0-9]' "$KC_TMP/poll.hdr" && ra=retry-after
		echo "$s $c $ra" >>"$KC_TMP/statuses"
		sleep 0.02
	done
) &
poll=$!
sleep 0.5
t0=$(date +%s%N)
kc_start_daemon || not_ok "daemon restart"
# The shim reconnects by itself: the first 200 after the daemon is up.
i=0
until tail -1 "$KC_TMP/statuses" | grep -q '^200 '; do
	sleep 0.05; i=$((i + 1)); [ $i -gt 200 ] && break
done
t1=$(date +%s%N)
sleep 0.3
: >"$KC_TMP/stop-poll"; wait $poll
echo "# statuses across the restart: $(sort "$KC_TMP/statuses" | uniq -c | tr '\n' ';')"
echo "# shim recovered $(((t1 - t0) / 1000000)) ms after the daemon answered"
check "only 200 or 503/1503 with Retry-After across the restart" \
    awk '!(($1 == 200 && $2 == "-") || ($1 == 503 && $2 == 1503 && $3 == "retry-after")) \
    { print; bad = 1 } END { exit bad }' "$KC_TMP/statuses"
check "503s seen while the daemon was down" grep -q '^503 1503' "$KC_TMP/statuses"
check "the shim recovered by itself" sh -c "tail -1 '$KC_TMP/statuses' | grep -q '^200 '"
req POST "$CSRS" -H "$(W)" -d '{"country":"US","state":"MA","locality":"Boston","organization":"O","common_name":"s.acme-corp.co.uk","sans":["s.acme-corp.co.uk"],"key_type":"p256v1"}'
expect 201 - "create through the shim after the restart"
kill -0 "$KC_HTTP_PID" 2>/dev/null && ok "the shim was never restarted" || not_ok "shim died"
kc_stop_http
kc_check_sanitizer_log "$KC_TMP/http.log" keycustody-http

kc_done
