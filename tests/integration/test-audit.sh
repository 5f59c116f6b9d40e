#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-audit.sh: the daemon's audit trail: every operation leaves a hash-chained line
# (intent before the work, outcome after), `keycustodyctl audit verify` accepts the log as
# written and reports the first edited or removed line; the chain survives a restart and
# a rotation (SIGHUP).

# A PIN that cannot turn up in a hash or an id by chance (not exported).
KC_PIN=kc-audit-pin-5e0b71c94d2a
. "$(dirname "$0")/common.sh"
kc_setup

log=$KC_TMP/audit.log
kc_csr p256v1 audit.acme-corp.co.uk audit.acme-corp.co.uk >"$KC_TMP/c1.json" 2>&1
id=$(jget .id <"$KC_TMP/c1.json")
ctl csr create --zone $KC_ZONE --country US --state MA --locality Boston \
    --organization O --common-name x.acme-corp.co.uk --san x.example.com >/dev/null 2>&1
check "delete" ctl csr delete --zone $KC_ZONE "$id"

check_eq "first line is the genesis record" true "$(head -1 "$log" | jget .genesis)"
check_eq "create intent recorded" 1 "$(grep -c '"op":"create_csr.begin"' "$log")"
check_eq "create outcome recorded with the CSR id" "$id" \
    "$(grep '"op":"create_csr"' "$log" | head -1 | jget .id)"
check_eq "the actor's uid is recorded" "$(id -u)" \
    "$(grep '"op":"delete_csr"' "$log" | jget .actor.uid)"
check_eq "delete outcome ok" ok "$(grep '"op":"delete_csr"' "$log" | jget .result)"
check "audit verify accepts the log" ctl audit verify "$log"
if grep -q "$KC_PIN" "$log"; then not_ok "the PIN appears in the audit log"; else
	ok "no PIN in the audit log"; fi

# The chain continues across a restart.
kc_stop_daemon
kc_start_daemon || not_ok "restart"
kc_csr p256v1 audit2.acme-corp.co.uk audit2.acme-corp.co.uk >/dev/null 2>&1
check "after a restart the log still verifies" ctl audit verify "$log"

# Fail closed: when the audit log cannot be written, changes are refused and nothing is
# made; health says so; once it can be written again, changes go through.
if command -v prlimit >/dev/null 2>&1; then
	keys_before=$(p11tool --list-objects --type privkey 2>/dev/null | grep -c 'label: *keycustody:')
	prlimit --pid "$DAEMON_PID" --fsize="$(stat -c %s "$log")":unlimited
	out=$(kc_csr p256v1 refused.acme-corp.co.uk refused.acme-corp.co.uk 2>&1)
	check_eq "audit log unwritable: the create is refused (1503)" 1503 \
	    "$(printf '%s' "$out" | jget '.errors[0].code')"
	check_eq "audit log unwritable: no key was made" "$keys_before" \
	    "$(p11tool --list-objects --type privkey 2>/dev/null | grep -c 'label: *keycustody:')"
	check "audit log unwritable: health says so" sh -c \
	    "'$KEYCUSTODYCTL' health | grep -q 'audit log: *failing'"
	check_eq "audit log unwritable: not in the list" 0 "$(ctl --json csr list --zone $KC_ZONE |
	    jq '[.[] | select(.common_name == "refused.acme-corp.co.uk")] | length')"
	prlimit --pid "$DAEMON_PID" --fsize=unlimited:unlimited
	check "audit log writable again: the create goes through" \
	    kc_csr p256v1 again.acme-corp.co.uk again.acme-corp.co.uk
	check "audit log writable again: health ok" sh -c \
	    "'$KEYCUSTODYCTL' health | grep -q 'audit log: *ok'"
	check "the log still verifies after the refusal" ctl audit verify "$log"
else
	echo "# prlimit missing: fail-closed check skipped"
fi

# SIGHUP rotates the log; the rotated set verifies in order, and the new file links to it.
kill -HUP "$DAEMON_PID"
i=0
while [ "$(ls "$KC_TMP"/audit.log.* 2>/dev/null | wc -l)" -eq 0 ] && [ $i -lt 50 ]; do
	sleep 0.1; i=$((i + 1))
done
rotated=$(ls "$KC_TMP"/audit.log.* 2>/dev/null | head -1)
check "SIGHUP rotated the audit log" test -n "$rotated"
kc_csr p256v1 audit3.acme-corp.co.uk audit3.acme-corp.co.uk >/dev/null 2>&1
check_eq "the new file starts with a rotate record" rotate "$(head -1 "$log" | jget .op)"
check "the rotated set verifies in order" ctl audit verify "$rotated" "$log"
ctl audit verify "$log" "$rotated" >/dev/null 2>&1
check_eq "the wrong order is reported" 1 "$?"
log=$rotated
n=$(wc -l <"$log")

# Tampering is detected: an edited line, a removed line, a torn last line.
cp "$log" "$KC_TMP/edited.log"
sed -i '3s/"zone":"[0-9a-f]*"/"zone":"ffffffffffffffffffffffffffffffff"/' "$KC_TMP/edited.log"
out=$(ctl audit verify "$KC_TMP/edited.log" 2>&1)
check_eq "an edited line fails verification" 1 "$?"
case $out in *"line 3"*) ok "the edited line is named" ;; *) not_ok "edited: $out" ;; esac
sed '4d' "$log" >"$KC_TMP/removed.log"
ctl audit verify "$KC_TMP/removed.log" >/dev/null 2>&1
check_eq "a removed line fails verification" 1 "$?"
head -c -20 "$log" >"$KC_TMP/torn.log"
ctl audit verify "$KC_TMP/torn.log" >/dev/null 2>&1
check_eq "a torn last line fails verification" 1 "$?"
check_eq "the daemon's log was not changed by the checks" "$n" "$(wc -l <"$log")"

kc_done
