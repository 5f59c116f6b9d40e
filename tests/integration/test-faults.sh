#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-faults.sh: the failure model (DESIGN section 5, issue 5) against the real daemon,
# whose PKCS#11 module is tests/p11-fault in front of SoftHSM2. A per-module error marks
# the token down, fails requests fast with 1503 and is repaired by re-initializing the
# module; a per-session error is repaired transparently; a wrong PIN stops the start with
# one clear line and changes nothing; a slow HSM makes the client time out and leaves
# nothing half-made. After every phase the store and the token agree: every record is
# ready, and records == private keys == public keys.

. "$(dirname "$0")/common.sh"

command -v sqlite3 >/dev/null 2>&1 || { echo "SKIP: sqlite3 missing"; exit 77; }

kc_fault_module
# A PIN that cannot occur by chance in a log.
KC_PIN=kc-Pin-7f3q9Zr

# Faults injected so far with this FUNCTION and KIND ("CKR_..." or "delay").
injected() {
	[ -f "$P11_FAULT_LOG" ] || { echo 0; return; }
	awk -v f="$1" -v k="$2" '$1 == f && ($2 == k || index($2, k "=") == 1) { n++ }
	    END { print n + 0 }' "$P11_FAULT_LOG"
}

tok() {
	pkcs11-tool --module "$REAL_MODULE" --token-label "$KC_LABEL" --login \
	    --pin "$KC_PIN" "$@"
}
# Our objects of one type (privkey or pubkey) in the token.
tok_count() {
	tok --list-objects --type "$1" 2>/dev/null | grep -c 'label: *keycustody:'
}
db() { sqlite3 "file:$KC_TMP/keycustody.db?mode=ro" "$1"; }
records() { db "SELECT count(*) FROM csrs;"; }
records_not_ready() { db "SELECT count(*) FROM csrs WHERE state <> 1;"; }
listed() {
	ctl csr list --zone "$KC_ZONE" | sed -n 's/.* \([0-9]*\) in all/\1/p'
}
hsm_state() {
	ctl --json health 2>/dev/null | jget '.hsm_state // .status'
}

# agree WHAT: store and token agree; no record left creating or deleting. A create that
# could not tell whether it made a key waits until the token answers again (the recovery
# thread, every 0.25 s): up to 10 s are given for that.
agree() {
	local r k p l nr i=0
	while [ "$(records_not_ready)" != 0 ] && [ $i -lt 100 ]; do
		sleep 0.1; i=$((i + 1))
	done
	r=$(records); nr=$(records_not_ready); l=$(listed)
	k=$(tok_count privkey); p=$(tok_count pubkey)
	if [ "$nr" = 0 ] && [ "$r" = "$k" ] && [ "$r" = "$p" ] && [ "$r" = "$l" ]; then
		ok "$1: store and token agree ($r records, $k private and $p public keys)"
	else
		not_ok "$1: records $r (listed $l, not ready $nr), private keys $k, public keys $p"
	fi
}

# create CN: one P-256 CSR; its exit status and output are kept in $rc and create.out.
create() {
	kc_csr p256v1 "$1" "$1" >"$KC_TMP/create.out" 2>&1
	rc=$?
}

kc_token
kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }
log_lines() { wc -l <"$KC_TMP/keycustodyd.log"; }

create ok0.acme-corp.co.uk
check_eq "a create through the fault module works" 0 "$rc"
agree "start"

# --- 1. an outage: C_GenerateKeyPair -> CKR_DEVICE_ERROR, and the token answers no probe ---
# (A CKR_DEVICE_ERROR from a token that still answers is a refusal: test-hsm-health.sh.)
# C_Initialize fails as well until the rules are cleared, so the token stays down while we
# look at it.
faults "C_GenerateKeyPair CKR_DEVICE_ERROR once" "C_GetSessionInfo CKR_DEVICE_ERROR always" \
    "C_Initialize CKR_DEVICE_ERROR always"
create down1.acme-corp.co.uk
check_eq "DEVICE_ERROR: create fails as unavailable (exit 3)" 3 "$rc"
check "DEVICE_ERROR: error code 1503" grep -q 1503 "$KC_TMP/create.out"
check_eq "DEVICE_ERROR: health reports down" down "$(hsm_state)"
check "DEVICE_ERROR: the daemon logged it" grep -q \
    'CKR_DEVICE_ERROR; token "kc-test" marked down' "$KC_TMP/keycustodyd.log"
t0=$(date +%s%N)
create down2.acme-corp.co.uk
t1=$(date +%s%N)
check_eq "while down: create fails as unavailable" 3 "$rc"
check "while down: it fails fast (under 1 s)" test $(((t1 - t0) / 1000000)) -lt 1000
sleep 1
create down3.acme-corp.co.uk
check_eq "recovery failing (C_Initialize): still unavailable" 3 "$rc"
check_eq "recovery failing: still down" down "$(hsm_state)"
check "a failed re-initialization is logged with its cause" grep -q \
    're-initializing token "kc-test" failed (attempt [0-9]*): C_Initialize: CKR_DEVICE_ERROR' \
    "$KC_TMP/keycustodyd.log"
agree "while down"

faults
i=0 rc=1
while [ $i -lt 40 ]; do
	create back$i.acme-corp.co.uk
	[ "$rc" = 0 ] && break
	[ "$rc" = 3 ] || break
	sleep 0.25; i=$((i + 1))
done
check_eq "after the fault clears: creates succeed again" 0 "$rc"
check_eq "after recovery: health ok" ok "$(hsm_state)"
check "recovery is logged" grep -q 'token "kc-test" is back after' "$KC_TMP/keycustodyd.log"
# The token's history is in health: it went down at least once and came back.
hist=$(ctl health 2>/dev/null | sed -n 's/^hsm history: *//p')
case $hist in
[1-9]*" down, "[1-9]*" recovered"*) ok "health shows the outage and the recovery ($hist)" ;;
*) not_ok "health shows the outage and the recovery: '$hist'" ;;
esac
# Both workers: each reopens its session in the new module epoch.
for i in 1 2 3 4; do create again$i.acme-corp.co.uk; [ "$rc" = 0 ] || break; done
check_eq "after recovery: both workers' sessions work" 0 "$rc"
agree "after recovery"

# --- 2. per-session: C_Sign -> CKR_SESSION_HANDLE_INVALID once ---
faults "C_Sign CKR_SESSION_HANDLE_INVALID once"
create session.acme-corp.co.uk
check_eq "SESSION_HANDLE_INVALID on C_Sign: create still succeeds" 0 "$rc"
check_eq "the fault was injected" 1 "$(injected C_Sign CKR_SESSION_HANDLE_INVALID)"
check "the session was reopened" grep -q \
    'CKR_SESSION_HANDLE_INVALID: reopening the session' "$KC_TMP/keycustodyd.log"
check_eq "a per-session error does not mark the token down" ok "$(hsm_state)"
faults "C_GenerateKeyPair CKR_USER_NOT_LOGGED_IN once"
create notloggedin.acme-corp.co.uk
check_eq "USER_NOT_LOGGED_IN on C_GenerateKeyPair: create still succeeds" 0 "$rc"
faults
agree "after session faults"

# --- 3. per-module under load: CKR_GENERAL_ERROR on every 3rd C_GenerateKeyPair ---
faults "C_GenerateKeyPair CKR_GENERAL_ERROR every 3"
n_ok=0 n_unavail=0 n_other=0 i=0
while [ $i -lt 20 ]; do
	create gen$i.acme-corp.co.uk
	case $rc in
	0) n_ok=$((n_ok + 1)) ;;
	3) n_unavail=$((n_unavail + 1))
	   # Let the backoff (0.5 s) pass so that the next create re-initializes the module.
	   sleep 0.6 ;;
	*) n_other=$((n_other + 1)); sed 's/^/#   /' "$KC_TMP/create.out" ;;
	esac
	i=$((i + 1))
done
gen_faults=$(injected C_GenerateKeyPair CKR_GENERAL_ERROR)
echo "# 20 creates under GENERAL_ERROR every 3rd: $n_ok ok, $n_unavail unavailable," \
    "$n_other other; $gen_faults faults injected"
check_eq "GENERAL_ERROR: every create succeeded or failed as unavailable" 0 "$n_other"
check "GENERAL_ERROR: faults were injected" test "$gen_faults" -ge 5
# A create that arrives while the recovery thread is re-initializing the module is also
# answered unavailable (it never waits on a recovery in progress): at most one such per fault.
check "GENERAL_ERROR: an unavailable for each injected fault, at most one more each" \
    test "$n_unavail" -ge "$gen_faults" -a "$n_unavail" -le $((2 * gen_faults))
check_eq "GENERAL_ERROR: the rest succeeded" $((20 - n_unavail)) "$n_ok"
faults
agree "after GENERAL_ERROR every 3rd"

# --- 4. a slow HSM: C_Sign delayed 2000 ms, the client gives up after 1 s ---
faults "C_Sign delay 2000"
before=$(records)
t0=$(date +%s%N)
ctl -T 1 --json csr create --zone "$KC_ZONE" --country US --state MA --locality Boston \
    --organization 'City of Boston' --common-name slow.acme-corp.co.uk \
    --san slow.acme-corp.co.uk --key-type p256v1 >"$KC_TMP/slow.out" 2>&1
rc=$?
t1=$(date +%s%N)
check_eq "C_Sign delayed 2 s, ctl -T 1: fails" 3 "$rc"
check "... with a timeout" grep -qi 'timed out' "$KC_TMP/slow.out"
check "... after about 1 s, not 2" test $(((t1 - t0) / 1000000)) -lt 1900
check_eq "while the late call runs: health ok" ok "$(hsm_state)"
faults
# Wait for the late call to come back: the record is either ready (the daemon's deadline
# is longer) or gone (it discarded the result and destroyed the key), never in between.
i=0
while [ $i -lt 100 ]; do
	[ "$(records_not_ready)" = 0 ] && break
	sleep 0.1; i=$((i + 1))
done
after=$(records)
echo "# slow create: records before $before, after $after (the late result was" \
    "$([ "$after" -gt "$before" ] && echo kept || echo discarded))"
check_eq "after the late call: health ok" ok "$(hsm_state)"
agree "after the late call"
create afterslow.acme-corp.co.uk
check_eq "after the late call: creates work" 0 "$rc"

# --- 4b. a key made behind a failed call (issue 19, point 2) ---
# The reply of C_GenerateKeyPair is lost after the token made the pair. A refused operation
# (FUNCTION_FAILED, the token stays up): the daemon finds the pair by its CKA_ID and
# destroys it at once. A module failure (DEVICE_ERROR, the token goes down and stays down):
# the record waits as creating, never listed, until the token is back, and then goes with
# its key; a daemon stopped meanwhile leaves it to the next start-up's reconciliation.
faults "C_GenerateKeyPair CKR_FUNCTION_FAILED once after"
create lost1.acme-corp.co.uk
check "a lost keygen reply: the create fails" test "$rc" -ne 0
check_eq "a lost keygen reply: the call was made and its reply replaced" 1 \
    "$(injected C_GenerateKeyPair CKR_FUNCTION_FAILED)"
faults
check_eq "a lost keygen reply with the token up: nothing waits" 0 "$(records_not_ready)"
agree "a lost keygen reply with the token up: its key is gone at once"

# The token marked down still answers the search that destroys the pair (the daemon tries
# at once, with the session it has); a search that fails too makes the create wait.
faults "C_GenerateKeyPair CKR_DEVICE_ERROR once after" "C_Initialize CKR_DEVICE_ERROR always"
create lost2a.acme-corp.co.uk
check_eq "a lost keygen reply, token marked down: create fails as unavailable" 3 "$rc"
check_eq "a lost keygen reply, token marked down: the pair is destroyed at once" 0 \
    "$(records_not_ready)"
faults
agree "a lost keygen reply, token marked down"
i=0
while [ "$(hsm_state)" != ok ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check_eq "a lost keygen reply, token marked down: the token is back" ok "$(hsm_state)"
faults "C_GenerateKeyPair CKR_DEVICE_ERROR once after" "C_Initialize CKR_DEVICE_ERROR always" \
    "C_FindObjectsInit CKR_DEVICE_ERROR always"
create lost2.acme-corp.co.uk
check_eq "a lost keygen reply, token down: create fails as unavailable (exit 3)" 3 "$rc"
sleep 1.5	# the recovery thread tries, and fails, meanwhile
check_eq "a lost keygen reply, token down: its record waits as creating" 1 \
    "$(records_not_ready)"
check_eq "a lost keygen reply, token down: its key is in the token" \
    "$(($(records)))" "$(tok_count privkey)"
check_eq "a lost keygen reply, token down: it is not listed" "$(($(records) - 1))" \
    "$(listed)"
faults
agree "a lost keygen reply: once the token is back, the record and its key are gone"
check "the removal is logged" grep -q 'the token is back; the record and any key' \
    "$KC_TMP/keycustodyd.log"

faults "C_GenerateKeyPair CKR_DEVICE_ERROR once after" "C_Initialize CKR_DEVICE_ERROR always" \
    "C_FindObjectsInit CKR_DEVICE_ERROR always"
create lost3.acme-corp.co.uk
check_eq "a lost keygen reply before a stop: its record waits" 1 "$(records_not_ready)"
kc_stop_daemon
faults
kc_start_daemon || not_ok "restart after the lost keygen reply"
check "the restart removed the waiting record with its key" grep -q \
    'reconcile: unfinished record' "$KC_TMP/keycustodyd.log"
agree "after the lost keygen replies"

# --- 5. login-fatal: C_Login -> CKR_PIN_INCORRECT at start ---
kc_stop_daemon
snap() {
	find "$KC_TMP/tokens" "$KC_TMP"/keycustody.db* -type f 2>/dev/null | sort |
	    xargs sha256sum
}
snap >"$KC_TMP/snap.before"
faults "C_Login CKR_PIN_INCORRECT always"
start=$(($(log_lines) + 1))
timeout 20 "$KEYCUSTODYD" -d -f "$KC_TMP/keycustodyd.conf" >>"$KC_TMP/keycustodyd.log" 2>&1
rc=$?
tail -n +"$start" "$KC_TMP/keycustodyd.log" >"$KC_TMP/pinfail.log"
check "PIN_INCORRECT at start: the daemon exits non-zero" test "$rc" -ne 0 -a "$rc" -ne 124
check_eq "PIN_INCORRECT at start: one log line mentions the PIN" 1 \
    "$(grep -c PIN "$KC_TMP/pinfail.log")"
check "PIN_INCORRECT at start: it says incorrect" grep -q 'PIN incorrect' \
    "$KC_TMP/pinfail.log"
check_eq "PIN_INCORRECT at start: the login was tried once" 1 \
    "$(injected C_Login CKR_PIN_INCORRECT)"
snap >"$KC_TMP/snap.after"
check "PIN_INCORRECT at start: token and store unchanged" cmp "$KC_TMP/snap.before" \
    "$KC_TMP/snap.after"
sed 's/^/#   /' "$KC_TMP/pinfail.log"
faults
kc_start_daemon || not_ok "restart after the PIN fault"
check_eq "restarted with the fault gone: health ok" ok "$(hsm_state)"
agree "at the end"

check "no log line holds the PIN" sh -c "! grep -F -q -- '$KC_PIN' '$KC_TMP/keycustodyd.log'"

echo "# faults injected, per function and kind:"
if [ -s "$P11_FAULT_LOG" ]; then
	awk '{ sub(/=.*/, "", $2); print $1, $2 }' "$P11_FAULT_LOG" | sort | uniq -c |
	    sed 's/^ */#   /'
fi
check_eq "the fault module read every control line" 0 \
    "$(grep -c 'control line' "$P11_FAULT_LOG" 2>/dev/null || true)"

kc_done
