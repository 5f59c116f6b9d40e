#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-issue-14.sh: start-up learns the token in one scan (issue 14). A token holding
# debris (a key pair with neither label nor CKA_ID, as SoftHSM2 leaves after a SIGKILL
# inside C_GenerateKeyPair), a duplicate (two pairs of ours with one CKA_ID) and an
# incomplete pair (our private key without its public key): the daemon reports each in its
# log and in health, marks health degraded, and destroys none of them. Then creates beside
# deletes lose nothing, and deletes yield to creates within destroy_yield_max.

. "$(dirname "$0")/common.sh"

kc_token
p11() {
	pkcs11-tool --module "$KC_MODULE" --token-label "$KC_LABEL" --login --pin "$KC_PIN" \
	    "$@" >/dev/null 2>&1
}
# Key pairs only: the daemon adds its audit MAC key (a secret key) at its first start.
keyobjs() {
	pkcs11-tool --module "$KC_MODULE" --token-label "$KC_LABEL" --login --pin "$KC_PIN" \
	    --list-objects 2>/dev/null | grep -cE '(Private|Public) Key Object'
}
DUP=d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1 HALF=e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2
p11 --keypairgen --key-type EC:prime256v1 &&
p11 --keypairgen --key-type EC:prime256v1 --label keycustody:dup --id $DUP &&
p11 --keypairgen --key-type EC:prime256v1 --label keycustody:dup --id $DUP &&
p11 --keypairgen --key-type EC:prime256v1 --label keycustody:half --id $HALF &&
p11 --delete-object --type pubkey --id $HALF || { echo "Bail out: planting failed"; exit 1; }
OBJS=$(keyobjs)
check_eq "planted: 2 debris + 4 duplicate + 1 half" 7 "$OBJS"

# kc_start_daemon waits for health to say "ok": this token makes it say "degraded".
"$KEYCUSTODYD" -d -f "$KC_TMP/keycustodyd.conf" >>"$KC_TMP/keycustodyd.log" 2>&1 &
DAEMON_PID=$!
i=0
until ctl --json health 2>/dev/null | grep -q hsm_state; do
	i=$((i + 1))
	if [ $i -gt 600 ] || ! kill -0 "$DAEMON_PID" 2>/dev/null; then
		sed 's/^/#   /' "$KC_TMP/keycustodyd.log"; echo "Bail out: daemon did not start"
		exit 1
	fi
	sleep 0.05
done
LOG=$KC_TMP/keycustodyd.log
check_eq "log: two debris objects named" 2 "$(grep -c 'scan: debris:' "$LOG")"
check_eq "log: the duplicate named" 1 "$(grep -c "scan: duplicate: id $DUP" "$LOG")"
check_eq "log: the incomplete pair named" 1 \
    "$(grep -c "scan: incomplete pair: id $HALF has a private key" "$LOG")"
check_eq "log: one scan summary" 1 "$(grep -c 'hsm: scanned token' "$LOG")"
check_eq "log: reconcile reports them" 1 \
    "$(grep -c 'reconcile: the token holds 1 duplicate id(s), 1 incomplete pair(s) and 2 debris' "$LOG")"
scan=$(ctl health 2>/dev/null | sed -n 's/^token scan: *//p')
check_eq "health: token scan line" "1 pairs, 1 duplicate, 1 incomplete, 2 debris; 1 scans, 0 searches" "$scan"
state=$(ctl --json health 2>/dev/null | jget '.hsm_state // .status')
check_eq "health: degraded" degraded "$state"
kc_stop_daemon
check_eq "nothing destroyed" "$OBJS" "$(keyobjs)"

# Point 3: creates and deletes at once (keycustody-bench: 2 connections create, 2 delete
# what they made) lose nothing: no error, every record keeps both keys, no key is left
# without its record.
BENCH="$top_builddir/bench/keycustody-bench"
if [ -x "$BENCH" ]; then
	# Deletes yield to creates (point 4), here for at most 500 ms each.
	echo "destroy_yield_max = 500" >>"$KC_TMP/keycustodyd.conf"
	"$KEYCUSTODYD" -d -f "$KC_TMP/keycustodyd.conf" >>"$KC_TMP/keycustodyd.log" 2>&1 &
	DAEMON_PID=$!
	i=0
	until ctl --json health 2>/dev/null | grep -q hsm_state; do
		i=$((i + 1))
		[ $i -le 600 ] && kill -0 "$DAEMON_PID" 2>/dev/null || {
			echo "Bail out: daemon did not start again"; exit 1; }
		sleep 0.05
	done
	orphans=$(ctl --json health | jget '.orphan_keys // 0')
	"$BENCH" -s "$KEYCUSTODY_SOCKET" -c 2 -x 2 -F 10 -d 3 >"$KC_TMP/bench-cd.out" 2>&1
	line=$(grep '^BENCH ' "$KC_TMP/bench-cd.out")
	check "creates beside deletes: no error" sh -c 'case " $0 " in *" errors=0 "*) ;; *) exit 1 ;; esac' "$line"
	check "creates beside deletes: both ran" sh -c 'grep -q "^create  *[1-9]" "$0" &&
	    grep -q "^delete  *[1-9]" "$0"' "$KC_TMP/bench-cd.out"
	check_eq "creates beside deletes: no record without its key" 0 \
	    "$(ctl --json health | jget '.records_missing_key // 0')"
	check_eq "creates beside deletes: no new orphan key" "$orphans" \
	    "$(ctl --json health | jget '.orphan_keys // 0')"
	check_eq "creates beside deletes: two objects per listed CSR, plus the planted ones" \
	    $((OBJS + 2 * $(ctl csr list --zone "$KC_ZONE" --per-page 5 | sed -n 's/.* \([0-9]*\) in all$/\1/p'))) \
	    "$(keyobjs)"
	# Point 4: key destruction waits while creates are queued or running (SoftHSM2
	# re-reads its token under its lock on every C_DestroyObject), but no longer than
	# destroy_yield_max: a delete under continuous create load still finishes.
	yielded() { ctl health | sed -n 's/^key destruction: *\([0-9]*\) waited.*/\1/p'; }
	check "creates beside deletes: destructions yielded to creates" test "$(yielded)" -gt 0
	kc_csr p256v1 yield.acme-corp.co.uk yield.acme-corp.co.uk >"$KC_TMP/y.json" 2>&1
	id=$(jget .id <"$KC_TMP/y.json")
	y0=$(yielded)
	"$BENCH" -s "$KEYCUSTODY_SOCKET" -c 2 -m create=1 -d 4 >"$KC_TMP/bench-c.out" 2>&1 &
	BENCH_PID=$!
	sleep 1
	t0=$(date +%s%N)
	check "delete under create load: done" ctl csr delete --zone "$KC_ZONE" "$id"
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "# delete under create load: $ms ms (destroy_yield_max 500 ms)"
	check "delete under create load: within destroy_yield_max + 3 s" test "$ms" -lt 3500
	check "delete under create load: it yielded" test "$(yielded)" -gt "$y0"
	wait "$BENCH_PID"
	check "create load: no error" grep -q '^BENCH .* errors=0' "$KC_TMP/bench-c.out"
	check_eq "delete under create load: its record is gone" "" \
	    "$(ctl --json csr get --zone "$KC_ZONE" "$id" 2>/dev/null | jget '.id // empty')"
	kc_stop_daemon
else
	echo "# bench/keycustody-bench not built: creates beside deletes not run"
fi
kc_done
