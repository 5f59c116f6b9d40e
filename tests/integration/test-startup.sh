#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-startup.sh: start-up failures are clear and harmless (issue 5 point 5). Each bad
# configuration (missing module, wrong token label, wrong PIN, unreadable PIN file, PIN file
# readable by others, store not writable, socket taken by a live daemon) must give a
# non-zero exit and one clear log line naming the cause, and change nothing: no store file,
# no audit log, no socket left behind, the token's objects unchanged. A second daemon on a
# live daemon's socket must refuse without touching the first one's work in flight.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/reliability-common.sh"

kc_token
CONF=$KC_TMP/keycustodyd.conf
objcount() { p11tool --list-objects 2>/dev/null | grep -c '^[A-Z]'; }
KEYS0=$(objcount)

# try NAME PATTERN KEY=VALUE...: start with the config changed, expect failure.
try() {
	name=$1 pat=$2; shift 2
	cp "$CONF" "$KC_TMP/bad.conf"
	for kv in "$@"; do
		k=${kv%%=*} v=${kv#*=}
		grep -v "^$k =" "$KC_TMP/bad.conf" >"$KC_TMP/bad.tmp"
		echo "$k = $v" >>"$KC_TMP/bad.tmp"
		mv "$KC_TMP/bad.tmp" "$KC_TMP/bad.conf"
	done
	# The PIN must not be retried: a short timeout catches a daemon that hangs instead.
	timeout 20 "$KEYCUSTODYD" -d -f "$KC_TMP/bad.conf" >"$KC_TMP/bad.log" 2>&1
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 124 ]; then ok "$name: exit status $rc"
	else not_ok "$name: exit status $rc"; sed 's/^/#   /' "$KC_TMP/bad.log"; fi
	n=$(grep -ciE "$pat" "$KC_TMP/bad.log")
	if [ "$n" -eq 1 ]; then ok "$name: one log line says why: $(grep -iE "$pat" "$KC_TMP/bad.log" |
	    sed 's/^[^ ]* [^ ]* //')"
	else not_ok "$name: one log line matching /$pat/ (got $n)"; sed 's/^/#   /' "$KC_TMP/bad.log"; fi
	# Nothing else the operator must read: no warning besides the cause.
	extra=$(grep -viE "$pat" "$KC_TMP/bad.log" | grep -ciE 'warn|error|fail')
	check_eq "$name: no other warning" 0 "$extra"
	store=$(sed -n 's/^store = //p' "$KC_TMP/bad.conf")
	changed=
	[ -e "$store" ] && [ ! -d "$store" ] && changed="$changed store"
	[ -e "$KC_TMP/audit.log" ] && changed="$changed audit-log"
	[ -e "$KEYCUSTODY_SOCKET" ] && changed="$changed socket"
	[ "$(objcount)" = "$KEYS0" ] || changed="$changed token"
	check_eq "$name: nothing changed" "" "$changed"
	rm -f "$KC_TMP/keycustody.db" "$KC_TMP/keycustody.db-wal" "$KC_TMP/keycustody.db-shm" \
	    "$KC_TMP/audit.log"
}

try "missing module" '/nonexistent/libsofthsm2\.so' module=/nonexistent/libsofthsm2.so
try "wrong token label" 'no-such-token' token_label=no-such-token
printf '9999\n' >"$KC_TMP/badpin"; chmod 600 "$KC_TMP/badpin"
try "wrong PIN" 'PIN|CKR_PIN_INCORRECT|login' pin_file="$KC_TMP/badpin"
try "missing PIN file" 'nonexistent-pin' pin_file="$KC_TMP/nonexistent-pin"
mkdir "$KC_TMP/pindir"
try "PIN file is a directory" 'pindir' pin_file="$KC_TMP/pindir"
if [ "$(id -u)" != 0 ]; then
	cp "$KC_TMP/pin" "$KC_TMP/pin000"; chmod 000 "$KC_TMP/pin000"
	try "unreadable PIN file (mode 000)" 'pin000' pin_file="$KC_TMP/pin000"
else
	echo "# (root reads a mode-000 file: the unreadable case is covered by ENOENT/EISDIR)"
fi
cp "$KC_TMP/pin" "$KC_TMP/pin644"; chmod 644 "$KC_TMP/pin644"
try "PIN file mode 0644 refused" 'pin644' pin_file="$KC_TMP/pin644"
if [ "$(id -u)" = 0 ]; then
	# Issue 12: a PIN file owned by another user (not root, not the daemon's) is refused.
	cp "$KC_TMP/pin" "$KC_TMP/pin-nobody"; chmod 600 "$KC_TMP/pin-nobody"
	chown 65534 "$KC_TMP/pin-nobody"
	try "PIN file owned by another user refused" 'pin-nobody.*owned by uid 65534' \
	    pin_file="$KC_TMP/pin-nobody"
else
	echo "# (not root: cannot make a PIN file owned by another user)"
fi
try "store under a missing directory" 'no-such-dir' store="$KC_TMP/no-such-dir/kc.db"
mkdir "$KC_TMP/storedir"
try "store path is a directory" 'storedir' store="$KC_TMP/storedir"
if [ "$(id -u)" != 0 ]; then
	mkdir "$KC_TMP/rodir"; chmod 555 "$KC_TMP/rodir"
	try "store in a read-only directory" 'rodir' store="$KC_TMP/rodir/kc.db"
fi

# SoftHSM2 keeps no failure counter by default: the right PIN still works afterwards.
check "after the failures the right configuration starts" kc_start_daemon
KEYS0=$(objcount)

# --- socket taken by a live daemon, with work in flight in the first one ---
( kc_csr rsa4096 inflight.acme-corp.co.uk inflight.acme-corp.co.uk >"$KC_TMP/inflight.json" \
    2>&1; echo $? >"$KC_TMP/inflight.rc" ) &
cpid=$!
i=0
until grep -q create_csr.begin "$KC_TMP/audit.log" 2>/dev/null || [ $i -gt 100 ]; do
	sleep 0.02; i=$((i + 1))
done
cp "$KC_TMP/audit.log" "$KC_TMP/audit.before"
timeout 20 "$KEYCUSTODYD" -d -f "$CONF" >"$KC_TMP/second.log" 2>&1
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && ok "second daemon on a live socket: exit status $rc" ||
    not_ok "second daemon on a live socket: exit status $rc"
check_eq "second daemon: one clear log line" 1 \
    "$(grep -c 'another keycustodyd is already answering' "$KC_TMP/second.log")"
if grep -q 'reconcile\|audit:' "$KC_TMP/second.log"; then
	not_ok "second daemon refused before touching the store, audit log or token"
	sed 's/^/#   /' "$KC_TMP/second.log"
else ok "second daemon refused before touching the store, audit log or token"; fi
wait $cpid
check_eq "the first daemon's in-flight create succeeded" 0 "$(cat "$KC_TMP/inflight.rc")"
check "the first daemon keeps serving" ctl health
id=$(jq -r .id <"$KC_TMP/inflight.json" 2>/dev/null)
check "the in-flight CSR is there" ctl csr get --zone "$KC_ZONE" "$id"
kc_stop_daemon
check "audit trail verifies" ctl audit verify "$KC_TMP/audit.log"
invariants --created "$KC_TMP/created.none"

kc_done
