#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-issue-15.sh: the token is asked, not assumed. SoftHSM2 behind tests/p11-fault plays
# the limits other implementations have (Debian 12: tpm2-pkcs11, openCryptoki's soft token,
# a token without HMAC or without the key-history attributes), and for each the flow that
# matters runs end to end or is refused with a message that names the reason: create,
# the CSR verifies, delete removes both objects, a restart reconciles. The real other
# implementations are in test-issue-15-matrix.sh.

. "$(dirname "$0")/common.sh"
kc_fault_module

# Mechanism and attribute numbers (PKCS#11 2.40).
CKM_RSA_PKCS=0x1
CKM_SHA256_RSA_PKCS=0x40
CKM_EC_KEY_PAIR_GEN=0x1040
CKM_ECDSA_SHA256=0x1044
CKM_SHA256_HMAC=0x251
CKA_SENSITIVE=0x103
CKA_ENCRYPT=0x104
CKA_VERIFY=0x10a
CKA_NEVER_EXTRACTABLE=0x164
CKA_ALWAYS_SENSITIVE=0x165

# Our objects in the token, through SoftHSM2 itself (not the fault module's view).
objects() { kc_token_objects "$REAL_MODULE" "$@"; }

# fresh NAME [CONF-LINE...]: stop the daemon, a new token, store and audit log, the lines
# added to the configuration; the daemon is not started.
fresh() {
	kc_stop_daemon
	echo "# --- $1"
	shift
	rm -rf "$KC_TMP/tokens" "$KC_TMP/keycustody.db"* "$KC_TMP/audit.log"*
	: >"$KC_TMP/keycustodyd.log"
	kc_token
	for l in "$@"; do printf '%s\n' "$l" >>"$KC_TMP/keycustodyd.conf"; done
}

health_line() { ctl health 2>/dev/null | grep -A4 "^$1" | grep -m1 -- "$2"; }

flow() { kc_custody_flow "$1" "$2" "$REAL_MODULE"; }

# --- SoftHSM2 as it is: every type, its own SHA-256 RSA mechanism.
fresh softhsm2
kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }
check "softhsm2: health lists rsa2048 with CKM_SHA256_RSA_PKCS" \
    sh -c "\"$KEYCUSTODYCTL\" health | grep -q 'rsa2048 *CKM_SHA256_RSA_PKCS'"
check "softhsm2: health lists p256v1" \
    sh -c "\"$KEYCUSTODYCTL\" health | grep -Eq 'p256v1 *CKM_ECDSA'"
check "softhsm2: health names the audit MAC mechanism" \
    sh -c "\"$KEYCUSTODYCTL\" health | grep -q '^audit MAC: *CKM_SHA256_HMAC'"
ctl csr create --help >"$KC_TMP/help.out" 2>&1
check_eq "softhsm2: csr create --help exits 0" 0 "$?"
check "softhsm2: csr create --help lists the token's types" \
    grep -q '^  p384v1 *signed with CKM_ECDSA' "$KC_TMP/help.out"
flow softhsm2 p256v1
flow softhsm2 rsa2048

# --- tpm2-pkcs11's limits: no hashing mechanisms, no usage flags on public keys.
export P11_FAULT_HIDE_MECHS="$CKM_SHA256_RSA_PKCS,$CKM_ECDSA_SHA256"
export P11_FAULT_REFUSE_PUB="$CKA_VERIFY,$CKA_ENCRYPT"
fresh tpm2-like
kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }
check "tpm2-like: rsa2048 signed with CKM_RSA_PKCS over a DigestInfo" \
    sh -c "\"$KEYCUSTODYCTL\" health | grep -q 'rsa2048 *CKM_RSA_PKCS over a DigestInfo'"
flow tpm2-like rsa2048
flow tpm2-like p256v1
check "tpm2-like: the bare public template was used" \
    grep -q 'refused the public rsa2048 template' "$KC_TMP/keycustodyd.log"
unset P11_FAULT_HIDE_MECHS P11_FAULT_REFUSE_PUB

# --- openCryptoki's soft token: EC listed, but its generation refused.
export P11_FAULT_REFUSE_GEN="$CKM_EC_KEY_PAIR_GEN"
fresh ock-like
kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }
kc_csr p256v1 shop.acme-corp.co.uk shop.acme-corp.co.uk >"$KC_TMP/e.json" 2>&1
check_eq "ock-like: p256v1 refused with the API's key-type error" 1417 \
    "$(jget '.errors[0].code' <"$KC_TMP/e.json")"
msg=$(jget '.errors[0].message' <"$KC_TMP/e.json")
case $msg in
*"'rsa2048', 'rsa3072', 'rsa4096' or 'p384v1'"*CKR_MECHANISM_INVALID*) ok "ock-like: the message names what the token offers, and why" ;;
*) not_ok "ock-like: message: $msg" ;;
esac
check_eq "ock-like: nothing left in the token" 0 "$(objects)"
check "ock-like: health lists p256v1 as not offered" \
    sh -c "\"$KEYCUSTODYCTL\" health | grep -q 'p256v1: C_GenerateKeyPair: CKR_MECHANISM_INVALID'"
flow ock-like rsa2048
unset P11_FAULT_REFUSE_GEN

# --- EC not even listed: refused before the token is asked.
export P11_FAULT_HIDE_MECHS="$CKM_EC_KEY_PAIR_GEN"
fresh no-ec
kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }
kc_csr p384v1 shop.acme-corp.co.uk shop.acme-corp.co.uk >"$KC_TMP/e.json" 2>&1
check_eq "no-ec: p384v1 refused with 1417" 1417 "$(jget '.errors[0].code' <"$KC_TMP/e.json")"
check "no-ec: the message says the token offers no CKM_EC_KEY_PAIR_GEN" \
    grep -q 'offers no CKM_EC_KEY_PAIR_GEN' "$KC_TMP/e.json"
check_eq "no-ec: nothing left in the token" 0 "$(objects)"
check "no-ec: the token was not asked to generate it" \
    sh -c "! grep -q 'C_GenerateKeyPair' \"$KC_TMP/keycustodyd.log\""
check "no-ec: health lists p384v1 as not offered" \
    sh -c "\"$KEYCUSTODYCTL\" health | grep -q 'p384v1: the token offers no CKM_EC_KEY_PAIR_GEN'"
unset P11_FAULT_HIDE_MECHS

# --- A token that cannot make a sensitive private key: refused, never weakened.
export P11_FAULT_REFUSE_PRIV="$CKA_SENSITIVE"
fresh no-sensitive
kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }
kc_csr rsa2048 shop.acme-corp.co.uk shop.acme-corp.co.uk >"$KC_TMP/e.json" 2>&1
check_eq "no-sensitive: refused with 1417" 1417 "$(jget '.errors[0].code' <"$KC_TMP/e.json")"
check "no-sensitive: the message says why" \
    grep -q 'refuses a private key that is sensitive, not extractable and sign-only' \
    "$KC_TMP/e.json"
check_eq "no-sensitive: nothing left in the token" 0 "$(objects)"
unset P11_FAULT_REFUSE_PRIV

# --- A token that keeps every key loaded until the login ends (tpm2-pkcs11 behind
# tpm2-abrmd, whose limit fails C_GenerateKeyPair with CKR_GENERAL_ERROR while the token
# answers): one failure is answered 1503; a second in a row makes the daemon log out and
# in again and retry, and learn how many pairs a login takes. A failure on its own
# changes nothing.
fresh keep-loaded
kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }
made=0
# creates N PREFIX: N creates, each CSR verified; made counts them.
creates() {
	i=0 bad=0
	while [ $i -lt "$1" ]; do
		if kc_csr p256v1 "$2$i.acme-corp.co.uk" "$2$i.acme-corp.co.uk" >"$KC_TMP/c.json" \
		    2>&1 && jget .csr <"$KC_TMP/c.json" | openssl req -noout -verify 2>/dev/null
		then
			made=$((made + 1))
		else
			bad=$((bad + 1)); sed 's/^/#   /' "$KC_TMP/c.json"
		fi
		i=$((i + 1))
	done
	check_eq "keep-loaded: $1 creates ($2*), each CSR verifies" 0 "$bad"
}
# failed_create NAME: one create, answered 1503.
failed_create() {
	kc_csr p256v1 "$1.acme-corp.co.uk" "$1.acme-corp.co.uk" >"$KC_TMP/c.json" 2>&1
	check_eq "keep-loaded: $1: answered 1503" 1503 "$(jget '.errors[0].code' <"$KC_TMP/c.json")"
}
renewals() { grep -c "$1" "$KC_TMP/keycustodyd.log"; }
creates 4 a
faults "C_GenerateKeyPair CKR_GENERAL_ERROR once"
failed_create lone
creates 2 b
check_eq "keep-loaded: a failure on its own renews no login" 0 \
    "$(renewals 'logged out and in again')"
faults "C_GenerateKeyPair CKR_GENERAL_ERROR once"
failed_create first
faults "C_GenerateKeyPair CKR_GENERAL_ERROR once"
creates 1 second
check_eq "keep-loaded: the second failure in a row: logged in again, after 6 pairs" 1 \
    "$(renewals 'failed two key generations in a row after 6 key pairs in this login; logged out and in again')"
check_eq "keep-loaded: ... and the number learnt" 1 \
    "$(renewals 'renewing the login every 6 key pairs')"
faults
creates 10 c
check_eq "keep-loaded: 10 creates after it: the login renewed before 6 pairs, twice" 2 \
    "$(renewals 'is near its limit of loaded objects after 5 key pairs in this login; logged out')"
check_eq "keep-loaded: the token holds both keys of each created pair" $((2 * made)) \
    "$(objects)"
check_eq "keep-loaded: health ok" ok "$(ctl --json health 2>/dev/null | jget '.hsm_state // .status')"

# --- No key history attributes: refused by default, kept when configured, said in health.
export P11_FAULT_NO_ATTRS="$CKA_ALWAYS_SENSITIVE,$CKA_NEVER_EXTRACTABLE"
fresh no-history
# start_fails NAME GREP: the daemon must exit non-zero within 10 s, its log matching GREP.
start_fails() {
	"$KEYCUSTODYD" -d -f "$KC_TMP/keycustodyd.conf" >"$KC_TMP/fail.log" 2>&1 &
	pid=$!
	i=0; while kill -0 $pid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	if kill -0 $pid 2>/dev/null; then
		not_ok "$1: the daemon started"; kill -TERM $pid; wait $pid
		return
	fi
	wait $pid && not_ok "$1: exit status 0" || ok "$1: the daemon refuses to start"
	check "$1: it says why" grep -q "$2" "$KC_TMP/fail.log"
}
start_fails no-history "CKA_ALWAYS_SENSITIVE unreadable"
printf 'accept_missing_key_history = yes\n' >>"$KC_TMP/keycustodyd.conf"
kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }
check "no-history: accepted when configured, and health says what is missing" \
    sh -c "\"$KEYCUSTODYCTL\" health | grep -q '^key history: .*CKA_ALWAYS_SENSITIVE CKA_NEVER_EXTRACTABLE'"
flow no-history p256v1
unset P11_FAULT_NO_ATTRS

# --- No HMAC: the audit log cannot be sealed in the token; the daemon does not start.
export P11_FAULT_HIDE_MECHS="$CKM_SHA256_HMAC"
fresh no-hmac
start_fails no-hmac "cannot sign with CKM_SHA256_HMAC"
unset P11_FAULT_HIDE_MECHS

kc_done
