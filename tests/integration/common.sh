# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# common.sh: sourced by every integration test. Makes a fresh SoftHSM2 token in a temporary
# directory, starts and stops the real daemon on a temporary socket, and counts checks.
# Exit status follows automake: 0 pass, 1 fail, 77 skip.

set -u

: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
: "${KC_MODULE:=/usr/lib/softhsm/libsofthsm2.so}"
: "${KC_SIGNER:=direct}"
export top_builddir top_srcdir KC_MODULE

KEYCUSTODYD="$top_builddir/keycustodyd"
# KC_VALGRIND=1: the daemon runs under valgrind; any error or definite leak makes it exit
# non-zero, which kc_stop_daemon reports. The sandbox is off (valgrind's own mappings).
if [ -n "${KC_VALGRIND:-}" ]; then
	KC_WRAP="valgrind -q --error-exitcode=99 --leak-check=full"
	KC_WRAP="$KC_WRAP --errors-for-leak-kinds=definite --show-leak-kinds=definite"
	KC_WRAP="$KC_WRAP --suppressions=$top_srcdir/tests/valgrind.supp"
	KC_SANDBOX=off
fi
KEYCUSTODYCTL="$top_builddir/keycustodyctl"
KC_HTTP="$top_builddir/keycustody-http"
KC_ZONE=023e105f4ecef8ad9ca31a8372d0c353
KC_ZONE2=372e67954025e0ba6aaa6d586b9e0b59
: "${KC_PIN:=1234}"
KC_LABEL=kc-test

command -v softhsm2-util >/dev/null 2>&1 || { echo "SKIP: softhsm2-util missing"; exit 77; }
[ -f "$KC_MODULE" ] || { echo "SKIP: $KC_MODULE missing"; exit 77; }

KC_TMP=$(mktemp -d "${TMPDIR:-/tmp}/kc-test.XXXXXX")
export SOFTHSM2_CONF="$KC_TMP/softhsm2.conf"
KEYCUSTODY_SOCKET="$KC_TMP/kc.sock"
export KEYCUSTODY_SOCKET
DAEMON_PID=
KC_CHECKS=0
KC_FAILED=0

kc_cleanup() {
	kc_stop_daemon
	[ -n "${KC_KEEP_TMP:-}" ] || rm -rf "$KC_TMP"
}
trap kc_cleanup EXIT

# pass/fail bookkeeping: every check prints one line.
ok() { KC_CHECKS=$((KC_CHECKS + 1)); echo "ok $KC_CHECKS - $*"; }
not_ok() {
	KC_CHECKS=$((KC_CHECKS + 1)); KC_FAILED=$((KC_FAILED + 1))
	echo "not ok $KC_CHECKS - $*"
}
# check DESCRIPTION COMMAND...: the command must succeed.
check() { local d=$1; shift; if "$@" >"$KC_TMP/last.out" 2>&1; then ok "$d"; else
	not_ok "$d"; sed 's/^/#   /' "$KC_TMP/last.out" | head -20; fi; }
# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: expected '$2', got '$3'"; fi; }
kc_done() {
	kc_stop_daemon	# its exit status and sanitizer output count too
	echo "# $KC_CHECKS checks, $KC_FAILED failed"
	[ "$KC_FAILED" -eq 0 ] && [ "$KC_CHECKS" -gt 0 ]
	exit $?
}

# A fresh token: its own directory, label kc-test, user PIN 1234.
kc_token() {
	mkdir -p "$KC_TMP/tokens"
	printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
	    "$KC_TMP/tokens" >"$SOFTHSM2_CONF"
	softhsm2-util --init-token --free --label "$KC_LABEL" --pin "$KC_PIN" \
	    --so-pin 12345678 >/dev/null || { echo "Bail out: token init failed"; exit 1; }
	(umask 077; printf '%s\n' "$KC_PIN" >"$KC_TMP/pin")
	cat >"$KC_TMP/keycustodyd.conf" <<EOC
module = $KC_MODULE
token_label = $KC_LABEL
pin_file = $KC_TMP/pin
socket = $KEYCUSTODY_SOCKET
store = $KC_TMP/keycustody.db
workers = 2
csr_signer = $KC_SIGNER
audit_log = $KC_TMP/audit.log
sandbox = ${KC_SANDBOX:-enforce}
EOC
}

# Start the daemon in the foreground (background job); wait until it answers.
kc_start_daemon() {
	# shellcheck disable=SC2086
	${KC_WRAP:-} "$KEYCUSTODYD" -d -f "$KC_TMP/keycustodyd.conf" "$@" \
	    >>"$KC_TMP/keycustodyd.log" 2>&1 &
	DAEMON_PID=$!
	local i=0
	while [ $i -lt 600 ]; do
		if "$KEYCUSTODYCTL" health >/dev/null 2>&1; then return 0; fi
		if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
			echo "# keycustodyd exited; its log:"; sed 's/^/#   /' "$KC_TMP/keycustodyd.log"
			DAEMON_PID=; return 1
		fi
		sleep 0.05; i=$((i + 1))
	done
	echo "# keycustodyd did not answer"; return 1
}

# Stop the daemon with SIGTERM: it must exit 0, and (in the sanitizer build) without any
# AddressSanitizer, LeakSanitizer or UBSan report in its log.
kc_stop_daemon() {
	[ -n "$DAEMON_PID" ] || return 0
	kill -TERM "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	rc=$?
	DAEMON_PID=
	if [ "$rc" -ne 0 ]; then
		not_ok "keycustodyd exited with status $rc after SIGTERM"
		sed 's/^/#   /' "$KC_TMP/keycustodyd.log" | tail -30
	fi
	kc_check_sanitizer_log "$KC_TMP/keycustodyd.log" keycustodyd
}

# kc_check_sanitizer_log FILE NAME: fail on any sanitizer report in FILE.
kc_check_sanitizer_log() {
	if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$1" 2>/dev/null; then
		not_ok "$2: sanitizer report"
		grep -A30 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$1" |
		    sed 's/^/#   /' | head -60
	fi
}

kc_setup() {
	kc_token
	kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }
}

ctl() { "$KEYCUSTODYCTL" "$@"; }

# pkcs11-tool on the test token, logged in.
p11tool() {
	pkcs11-tool --module "$KC_MODULE" --token-label "$KC_LABEL" --login --pin "$KC_PIN" "$@"
}

# A JSON field with jq, or python when jq is missing.
jget() { jq -r "$1"; }

# kc_fault_module: the daemon is to load tests/p11-fault in front of SoftHSM2 (KC_MODULE
# becomes it; REAL_MODULE stays SoftHSM2, for pkcs11-tool and the fault module itself),
# with no fault yet. Call before kc_token. faults RULE... then replaces its control file
# (one rule per argument; no argument clears it); P11_FAULT_LOG lists what was injected.
kc_fault_module() {
	FAULT_SO="$top_builddir/tests/p11-fault/p11-fault.so"
	if [ ! -f "$FAULT_SO" ]; then
		echo "Bail out: $FAULT_SO not built (make check builds it)"
		exit 99
	fi
	REAL_MODULE=$KC_MODULE
	KC_MODULE=$FAULT_SO
	P11_FAULT_MODULE=$REAL_MODULE
	P11_FAULT_CONTROL="$KC_TMP/faults"
	P11_FAULT_LOG="$KC_TMP/faults.log"
	export P11_FAULT_MODULE P11_FAULT_CONTROL P11_FAULT_LOG
	: >"$P11_FAULT_CONTROL"
}
faults() {
	: >"$KC_TMP/faults.new"
	for rule in "$@"; do printf '%s\n' "$rule" >>"$KC_TMP/faults.new"; done
	mv "$KC_TMP/faults.new" "$P11_FAULT_CONTROL"
}

# Create a CSR over the CLI: kc_csr KEYTYPE CN [SAN...] -> JSON on stdout.
kc_csr() {
	local kt=$1 cn=$2; shift 2
	local sans="" s
	for s in "$@"; do sans="$sans --san $s"; done
	# shellcheck disable=SC2086
	ctl --json csr create --zone "${KC_CSR_ZONE:-$KC_ZONE}" --country US --state MA \
	    --locality Boston --organization 'City of Boston' --common-name "$cn" $sans \
	    --key-type "$kt"
}

# kc_token_objects MODULE [ID]: how many of our objects (of key ID) the token lists.
kc_token_objects() {
	pkcs11-tool --module "$1" --token-label "$KC_LABEL" --login \
	    --pin "$KC_PIN" --list-objects 2>/dev/null | grep -c "label: *keycustody:${2:-}"
}

# kc_custody_flow NAME KEYTYPE MODULE: the custody flow on the running daemon's token
# (MODULE, for pkcs11-tool): create, the CSR verifies, the pair is in the token, delete
# removes both, and a second key survives a restart (reconciled: no record without its
# key, no orphan), after which a new key of the type signs.
kc_custody_flow() {
	name=$1 kt=$2 mod=$3
	if ! kc_csr "$kt" shop.acme-corp.co.uk shop.acme-corp.co.uk >"$KC_TMP/f.json" \
	    2>"$KC_TMP/f.err"; then
		not_ok "$name $kt: csr create: $(cat "$KC_TMP/f.err" "$KC_TMP/f.json")"
		return
	fi
	id=$(jget .id <"$KC_TMP/f.json")
	jget .csr <"$KC_TMP/f.json" >"$KC_TMP/f.csr"
	check "$name $kt: CSR verifies" openssl req -in "$KC_TMP/f.csr" -noout -verify
	check_eq "$name $kt: private and public key in the token" 2 "$(kc_token_objects "$mod" "$id")"
	check "$name $kt: csr delete" ctl csr delete --zone "$KC_ZONE" "$id"
	check_eq "$name $kt: delete removed both objects" 0 "$(kc_token_objects "$mod" "$id")"
	if kc_csr "$kt" keep.acme-corp.co.uk keep.acme-corp.co.uk >"$KC_TMP/k.json" 2>&1; then
		kid=$(jget .id <"$KC_TMP/k.json")
		kc_stop_daemon
		kc_start_daemon || { not_ok "$name $kt: restart"; return; }
		check_eq "$name $kt: after restart, no record without its key" 0 \
		    "$(ctl health | sed -n 's/^records missing key: *//p')"
		check_eq "$name $kt: after restart, no orphan key" 0 \
		    "$(ctl health | sed -n 's/^orphan keys: *//p')"
		check "$name $kt: the kept CSR is still served" \
		    ctl csr get --zone "$KC_ZONE" "$kid"
		check "$name $kt: after the restart a new key of the type signs" \
		    sh -c "\"$KEYCUSTODYCTL\" --json csr create --zone $KC_ZONE --country US \
		    --state MA --locality Boston --organization O --common-name a.acme-corp.co.uk \
		    --san a.acme-corp.co.uk --key-type $kt | jq -r .csr |
		    openssl req -noout -verify"
	else
		not_ok "$name $kt: second csr create: $(cat "$KC_TMP/k.json")"
	fi
}

# kc_test_ca DIR: a P-256 root CA for test certificates, DIR/root.key and DIR/root.pem
# (world-readable, for tests whose other users verify with it); bails out on failure.
kc_test_ca() {
	mkdir -p "$1"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$1/root.key" -out "$1/root.pem" -days 30 -sha256 \
	    -subj '/O=Keycustody Test/CN=Keycustody Test Root' \
	    -addext 'basicConstraints=critical,CA:TRUE' \
	    -addext 'keyUsage=critical,keyCertSign,cRLSign' >/dev/null 2>&1 ||
	    { echo "Bail out: test CA"; exit 1; }
	chmod 0644 "$1/root.pem"
}
