#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-hsm-health.sh: how the daemon reads a misbehaving token (docs/RELIABILITY.md), with
# tests/p11-fault in front of SoftHSM2:
#   1. an operation refused by a token that still answers is not an outage: the request
#      fails with 1503, the token stays up, nothing is re-initialized;
#   2. a frozen token is reported down within the probe timeout, requests fail fast
#      meanwhile, and it is up again once it answers;
#   3. after an outage the daemon is back within the retry cap (measured, printed);
#   4. a create whose key generation reply was lost while the token stays down is counted
#      live in health, and its key is destroyed once the token answers;
#   5. the module's C_Initialize arguments (module_args) reach it, after recovery too;
#   6. a module that needs shared memory and TCP is killed by the default sandbox and runs
#      under sandbox_allow = shm inet.

. "$(dirname "$0")/common.sh"

command -v sqlite3 >/dev/null 2>&1 || { echo "SKIP: sqlite3 missing"; exit 77; }

kc_fault_module
PROBE_TIMEOUT=1500		# ms, set below; the default is 3000
OUTAGE=${KC_OUTAGE_SECONDS:-16}	# long enough that the old 30 s back-off showed
MODULE_ARGS="configdir='sql:/nonexistent' flags=readOnly"

tok_count() {
	pkcs11-tool --module "$REAL_MODULE" --token-label "$KC_LABEL" --login --pin "$KC_PIN" \
	    --list-objects --type "$1" 2>/dev/null | grep -c 'label: *keycustody:'
}
db() { sqlite3 "file:$KC_TMP/keycustody.db?mode=ro" "$1"; }
hsm_state() { ctl --json health 2>/dev/null | jget '.hsm_state // .status'; }
health_line() { ctl health 2>/dev/null | sed -n "s/^$1: *//p"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
create() {
	kc_csr p256v1 "$1" "$1" >"$KC_TMP/create.out" 2>&1
	rc=$?
}
# wait_state STATE SECONDS: poll health every 0.1 s; sets $waited (ms) and returns 0 when
# the state was seen in time.
wait_state() {
	local t0 i=0
	t0=$(now_ms)
	while [ $i -lt $(($2 * 10)) ]; do
		if [ "$(hsm_state)" = "$1" ]; then
			waited=$(($(now_ms) - t0)); return 0
		fi
		sleep 0.1; i=$((i + 1))
	done
	waited=$(($(now_ms) - t0))
	return 1
}
agree() {
	local r k p nr i=0
	while [ "$(db 'SELECT count(*) FROM csrs WHERE state <> 1;')" != 0 ] && [ $i -lt 100 ]; do
		sleep 0.1; i=$((i + 1))
	done
	r=$(db 'SELECT count(*) FROM csrs;'); nr=$(db 'SELECT count(*) FROM csrs WHERE state <> 1;')
	k=$(tok_count privkey); p=$(tok_count pubkey)
	if [ "$nr" = 0 ] && [ "$r" = "$k" ] && [ "$r" = "$p" ]; then
		ok "$1: store and token agree ($r records, $k private and $p public keys)"
	else
		not_ok "$1: records $r (not ready $nr), private keys $k, public keys $p"
	fi
}

kc_token
cat >>"$KC_TMP/keycustodyd.conf" <<EOC
hsm_probe_timeout = $PROBE_TIMEOUT
module_args = $MODULE_ARGS
EOC
kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }
create ok0.acme-corp.co.uk
check_eq "a create through the fault module works" 0 "$rc"

# --- 1. a refusal is not an outage ---
n=0
for fn in C_GenerateKeyPair C_Sign; do
	n=$((n + 1))
	faults "$fn CKR_GENERAL_ERROR once"
	create refused$n.acme-corp.co.uk
	check_eq "$fn refused (CKR_GENERAL_ERROR): the create fails as unavailable" 3 "$rc"
	check "$fn refused: error code 1503" grep -q 1503 "$KC_TMP/create.out"
	check_eq "$fn refused: the token stays up" ok "$(hsm_state)"
	# (C_Sign also makes the audit log's MACs: whichever call it hit is logged.)
	check_eq "$fn refused: logged as a refusal" $n "$(grep -c \
	    ': CKR_GENERAL_ERROR; the token answers, so it refused' "$KC_TMP/keycustodyd.log")"
	faults
	create after-refusal$n.acme-corp.co.uk
	check_eq "$fn refused: the next create works" 0 "$rc"
done
case $(health_line "hsm history") in
"0 down, 0 recovered"*) ok "refusals: the token was never marked down nor re-initialized" ;;
*) not_ok "refusals: hsm history '$(health_line "hsm history")'" ;;
esac
check_eq "refusals: counted in health" "2 refusals, 0 late probes" "$(health_line "hsm answers")"
agree "after refusals"

# --- 2. a frozen token is down within the probe timeout ---
faults "C_GetSessionInfo delay 6000" "C_GenerateKeyPair delay 6000"
if wait_state down 6; then
	ok "frozen token: reported down after $waited ms"
	echo "# frozen token seen as down after $waited ms (probe every 1000 ms, timeout $PROBE_TIMEOUT ms)"
else
	not_ok "frozen token: still '$(hsm_state)' after $waited ms"
fi
check "frozen token: down within probe interval + timeout + 1 s" \
    test "$waited" -lt $((1000 + PROBE_TIMEOUT + 1000))
t0=$(now_ms)
create frozen.acme-corp.co.uk
t1=$(now_ms)
check_eq "frozen token: a create fails as unavailable" 3 "$rc"
check "frozen token: it fails fast (under 1 s, not after the 6 s freeze)" \
    test $((t1 - t0)) -lt 1000
faults
if wait_state ok 10; then ok "frozen token: up again once it answers"; else
	not_ok "frozen token: '$(hsm_state)' 10 s after the freeze"; fi
check "frozen token: the late answer is logged" grep -q 'answered a probe after' \
    "$KC_TMP/keycustodyd.log"
case $(health_line "hsm answers") in
*" 0 late probes") not_ok "frozen token: no late probe counted" ;;
*) ok "frozen token: the late probe is counted ($(health_line "hsm answers"))" ;;
esac
agree "after the freeze"

# --- 3. the recovery delay after an outage ---
faults "C_GetSessionInfo CKR_DEVICE_ERROR always" "C_Initialize CKR_DEVICE_ERROR always" \
    "C_GenerateKeyPair CKR_DEVICE_ERROR always"
if wait_state down 5; then ok "outage: seen by the probe alone after $waited ms"; else
	not_ok "outage: not seen, '$(hsm_state)'"; fi
sleep "$OUTAGE"
check_eq "outage: still down after $OUTAGE s" down "$(hsm_state)"
faults
if wait_state ok 40; then
	ok "outage: back after the HSM returned"
	echo "# recovery delay after a $OUTAGE s outage: $waited ms (retry cap 2000 ms)"
else
	not_ok "outage: '$(hsm_state)' 40 s after the HSM returned"
fi
check "outage: back within the retry cap + 1.5 s (was up to 30 s)" test "$waited" -lt 3500
create after-outage.acme-corp.co.uk
check_eq "outage: creates work again" 0 "$rc"
agree "after the outage"

# --- 4. a key made behind a failed call, while the token stays down ---
faults "C_GenerateKeyPair CKR_DEVICE_ERROR always after" \
    "C_GetSessionInfo CKR_DEVICE_ERROR always" "C_Initialize CKR_DEVICE_ERROR always" \
    "C_FindObjectsInit CKR_DEVICE_ERROR always"
create lost.acme-corp.co.uk
check_eq "lost reply: the create fails as unavailable" 3 "$rc"
check_eq "lost reply: the key was made all the same" 1 \
    "$(db "SELECT count(*) FROM csrs WHERE state <> 1;")"
check_eq "lost reply: health counts it live" 1 "$(health_line "unresolved creates")"
check_eq "lost reply: health is not ok meanwhile" down "$(hsm_state)"
faults
wait_state ok 10 || not_ok "lost reply: token not back"
i=0
while [ "$(health_line "unresolved creates")" != 0 ] && [ $i -lt 50 ]; do
	sleep 0.1; i=$((i + 1))
done
check_eq "lost reply: resolved once the token answers" 0 "$(health_line "unresolved creates")"
check "lost reply: the key is destroyed (logged)" grep -q \
    'the token is back; the record and any key the failed key generation made are removed' \
    "$KC_TMP/keycustodyd.log"
agree "after the lost reply"

# --- 5. module arguments ---
n=$(grep -c "^C_Initialize reserved=$MODULE_ARGS pid=" "$P11_FAULT_LOG")
check "module_args reached C_Initialize at start-up and at each re-initialization ($n)" \
    test "$n" -ge 2

# --- 6. what the sandbox allows a module ---
kc_stop_daemon
if [ "${KC_SANDBOX:-enforce}" = enforce ]; then
	P11_FAULT_NEEDS="shm inet"
	export P11_FAULT_NEEDS
	kc_start_daemon || not_ok "sandbox: daemon did not start"
	create needs.acme-corp.co.uk
	wait "$DAEMON_PID" 2>/dev/null
	st=$?
	DAEMON_PID=
	check_eq "sandbox: a module using shm and TCP is killed (SIGSYS) by default" 159 "$st"
	echo "sandbox_allow = shm inet" >>"$KC_TMP/keycustodyd.conf"
	kc_start_daemon || not_ok "sandbox_allow: daemon did not start"
	create allowed.acme-corp.co.uk
	check_eq "sandbox_allow = shm inet: the same module works" 0 "$rc"
	check "sandbox_allow: named in the start-up log" grep -q \
	    'daemon profile + shm + inet' "$KC_TMP/keycustodyd.log"
	agree "after the sandbox runs"
	unset P11_FAULT_NEEDS
else
	ok "# SKIP sandbox allowances: sandbox is ${KC_SANDBOX} in this run"
fi

kc_done
