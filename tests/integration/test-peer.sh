#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-peer.sh: peer authorization on the daemon's socket. Each connection's SO_PEERCRED
# uid/gid maps to a role (admin, gateway, reader); anyone else is refused at connect; a
# reader cannot write; a gateway must name the acting credential. Needs root (to act as
# other users through setpriv).

. "$(dirname "$0")/common.sh"
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v setpriv >/dev/null 2>&1 || { echo "SKIP: setpriv missing"; exit 77; }
kc_token
cat >>"$KC_TMP/keycustodyd.conf" <<EOC
admin = 0
gateway = nobody
reader = @bin
EOC
kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }
check_eq "the socket is mode 0660" 660 "$(stat -c %a "$KEYCUSTODY_SOCKET")"
# Let every user reach the socket, so that SO_PEERCRED is what decides.
chmod 0777 "$KC_TMP"
chmod 0666 "$KEYCUSTODY_SOCKET"

as() {	# as USER COMMAND...
	u=$1; shift
	setpriv --reuid="$u" --regid="$(id -g "$u")" --clear-groups "$@"
}

# uid 1 (daemon) has no role: refused at connect, with a log line.
as daemon "$KEYCUSTODYCTL" health >"$KC_TMP/none.out" 2>&1
check_eq "a peer without a role is refused" 3 "$?"
check "the refusal is logged with the uid" \
    grep -q 'refusing connection from uid 1 .*no role' "$KC_TMP/keycustodyd.log"

# bin is a reader through its group: health and list work, create does not.
check "a reader may ask for health" as bin "$KEYCUSTODYCTL" health
check "a reader may list" as bin "$KEYCUSTODYCTL" csr list --zone $KC_ZONE
out=$(as bin "$KEYCUSTODYCTL" --json csr create --zone $KC_ZONE --country US --state MA \
    --locality Boston --organization O --common-name r.acme-corp.co.uk \
    --san r.acme-corp.co.uk --key-type p256v1 2>&1)
check_eq "a reader may not create" 10000 "$(printf '%s' "$out" | jget '.errors[0].code')"

# nobody is a gateway: without naming the acting credential it is refused.
out=$(as nobody "$KEYCUSTODYCTL" --json csr create --zone $KC_ZONE --country US \
    --state MA --locality Boston --organization O --common-name g.acme-corp.co.uk \
    --san g.acme-corp.co.uk --key-type p256v1 2>&1)
check_eq "a gateway must name the actor" 10000 "$(printf '%s' "$out" | jget '.errors[0].code')"

# root is admin.
check "the admin may create" kc_csr p256v1 a.acme-corp.co.uk a.acme-corp.co.uk
nkeys=$(p11tool --list-objects --type privkey 2>/dev/null | grep -c 'label: *keycustody:')
check_eq "refused requests made no key" 1 "$nkeys"
check "the daemon still answers" ctl health

kc_done
