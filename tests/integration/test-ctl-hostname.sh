#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-ctl-hostname.sh: the custom hostname commands of keycustodyctl, for operators: a CSR
# made by the daemon is signed by a CA made here, bound with `hostname create --cert`,
# listed, read, renewed with `hostname update`, refused when wrong, and deleted; the CSR can
# be deleted only after its last hostname.

. "$(dirname "$0")/common.sh"
command -v openssl >/dev/null 2>&1 || { echo "SKIP: openssl missing"; exit 77; }
ca=$KC_TMP/ca
mkdir -p "$ca"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$ca/root.key" \
    -out "$ca/root.pem" -days 30 -sha256 -subj '/O=Acme Ops Test/CN=Acme Ops Root' \
    -addext 'basicConstraints=critical,CA:TRUE' \
    -addext 'keyUsage=critical,keyCertSign,cRLSign' >/dev/null 2>&1 ||
    { echo "Bail out: CA"; exit 1; }
kc_token
printf 'trust_bundle = %s\n' "$ca/root.pem" >>"$KC_TMP/keycustodyd.conf"
kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }

# sign NAME DAYS SANS: the daemon's CSR signed by the root for DAYS days.
sign() {
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
	    "$3" >"$ca/$1.ext"
	openssl x509 -req -in "$ca/csr.pem" -CA "$ca/root.pem" -CAkey "$ca/root.key" \
	    -CAcreateserial -days "$2" -sha256 -extfile "$ca/$1.ext" -out "$ca/$1.pem" \
	    >/dev/null 2>&1
}

kc_csr p256v1 shop.acme-corp.co.uk shop.acme-corp.co.uk www.acme-corp.co.uk \
    >"$KC_TMP/csr.json" 2>&1
csr=$(jget .id <"$KC_TMP/csr.json")
jget .csr <"$KC_TMP/csr.json" >"$ca/csr.pem"
sign leaf 10 'DNS:shop.acme-corp.co.uk,DNS:www.acme-corp.co.uk'

ctl --json hostname create --zone $KC_ZONE --hostname shop.acme-corp.co.uk --csr "$csr" \
    --cert "$ca/leaf.pem" >"$KC_TMP/h1.json" 2>&1
check_eq "hostname create binds the certificate" active "$(jget .ssl.status <"$KC_TMP/h1.json")"
h1=$(jget .id <"$KC_TMP/h1.json")
check_eq "issuer without spaces" AcmeOpsTest "$(jget .ssl.issuer <"$KC_TMP/h1.json")"
check_eq "serial in decimal" \
    "$(openssl x509 -in "$ca/leaf.pem" -noout -serial | cut -d= -f2 |
    python3 -c 'import sys; print(int(sys.stdin.read().strip(), 16))')" \
    "$(jget .ssl.serial_number <"$KC_TMP/h1.json")"
ctl hostname create --zone $KC_ZONE --hostname www.acme-corp.co.uk --csr "$csr" \
    --cert - <"$ca/leaf.pem" >"$KC_TMP/h2.txt" 2>&1
check "a second hostname, certificate on standard input" grep -q '^status: *active' "$KC_TMP/h2.txt"
h2=$(sed -n 's/^id: *//p' "$KC_TMP/h2.txt")
check_eq "hostname list shows both" 2 "$(ctl --json hostname list --zone $KC_ZONE | jq length)"
check_eq "list filtered by hostname" "$h2" \
    "$(ctl --json hostname list --zone $KC_ZONE --hostname www.acme-corp.co.uk | jq -r '.[0].id')"
check_eq "hostname get" shop.acme-corp.co.uk \
    "$(ctl --json hostname get --zone $KC_ZONE "$h1" | jget .hostname)"

out=$(ctl --json hostname create --zone $KC_ZONE --hostname shop.acme-corp.co.uk \
    --csr "$csr" --cert "$ca/leaf.pem" 2>&1)
check_eq "a duplicate hostname is refused (1406)" 1406 "$(printf '%s' "$out" | jget '.errors[0].code')"
sign other 10 'DNS:other.acme-corp.co.uk'
out=$(ctl --json hostname create --zone $KC_ZONE --hostname api.acme-corp.co.uk --csr "$csr" \
    --cert "$ca/other.pem" 2>&1)
check_eq "a certificate not naming the hostname is refused (1446)" 1446 \
    "$(printf '%s' "$out" | jget '.errors[0].code')"
out=$(ctl --json csr delete --zone $KC_ZONE "$csr" 2>&1)
check_eq "the CSR cannot go while hostnames use it (1420)" 1420 \
    "$(printf '%s' "$out" | jget '.errors[0].code')"

# Renewal: a new certificate for the same key.
sign renewed 20 'DNS:shop.acme-corp.co.uk,DNS:www.acme-corp.co.uk'
ctl --json hostname update --zone $KC_ZONE --cert "$ca/renewed.pem" "$h1" >"$KC_TMP/u.json" 2>&1
check_eq "hostname update renews the certificate" \
    "$(openssl x509 -in "$ca/renewed.pem" -noout -serial | cut -d= -f2 |
    python3 -c 'import sys; print(int(sys.stdin.read().strip(), 16))')" \
    "$(jget .ssl.serial_number <"$KC_TMP/u.json")"

check "hostname delete" ctl hostname delete --zone $KC_ZONE "$h1"
check_eq "the bare {\"id\"} with --json" "$h2" \
    "$(ctl --json hostname delete --zone $KC_ZONE "$h2" | jget .id)"
check "then the CSR can be deleted" ctl csr delete --zone $KC_ZONE "$csr"
check_eq "and its key is gone from the token" 0 \
    "$(p11tool --list-objects 2>/dev/null | grep -c "label: *keycustody:$csr\$")"

# The zone's fallback origin: get (none yet), set (checked and folded as the API's), get,
# delete, then none again; a bad origin is refused with the API's code.
ctl --json fallback-origin get --zone $KC_ZONE >"$KC_TMP/fo0.json" 2>&1
check_eq "fallback-origin get: none yet (1551)" 1551 "$(jget '.errors[0].code' <"$KC_TMP/fo0.json")"
ctl --json fallback-origin set --zone $KC_ZONE Fallback.Acme-Corp.co.uk. >"$KC_TMP/fo1.json" 2>&1
check_eq "fallback-origin set: stored in lower case, no trailing dot"     fallback.acme-corp.co.uk "$(jget .origin <"$KC_TMP/fo1.json")"
check_eq "fallback-origin get: what was set" fallback.acme-corp.co.uk     "$(ctl --json fallback-origin get --zone $KC_ZONE | jget .origin)"
ctl fallback-origin get --zone $KC_ZONE >"$KC_TMP/fo.txt" 2>&1
check "fallback-origin get: the text form names the origin" \
    grep -q '^origin: *fallback.acme-corp.co.uk$' "$KC_TMP/fo.txt"
ctl --json fallback-origin set --zone $KC_ZONE 'not a hostname' >"$KC_TMP/fo2.json" 2>&1
check "fallback-origin set: a bad origin is refused with an API error"     jq -e '.success == false and (.errors[0].code | type) == "number"' "$KC_TMP/fo2.json"
check_eq "fallback-origin delete answers the origin deleted" fallback.acme-corp.co.uk     "$(ctl --json fallback-origin delete --zone $KC_ZONE | jget .origin)"
ctl --json fallback-origin get --zone $KC_ZONE >"$KC_TMP/fo3.json" 2>&1
check_eq "fallback-origin get after delete: none (1551)" 1551 \
    "$(jget '.errors[0].code' <"$KC_TMP/fo3.json")"
check_eq "audit: fallback origin set and delete recorded" 1 \
    "$(grep '"op":"update_fallback_origin","' "$KC_TMP/audit.log" | grep -c '"result":"ok"')"

# Every hostname change is in the audit trail, which still verifies.
check_eq "audit: both hostname creates recorded as ok" 2 \
    "$(grep '"op":"create_hostname","' "$KC_TMP/audit.log" | grep -c '"result":"ok"')"
check_eq "audit: the duplicate recorded with its code" 1 \
    "$(grep '"op":"create_hostname","' "$KC_TMP/audit.log" | grep -c '"code":1406')"
check_eq "audit: the renewal recorded" 1 "$(grep -c '"op":"update_hostname","' "$KC_TMP/audit.log")"
check_eq "audit: both hostname deletes recorded" 2 \
    "$(grep -c '"op":"delete_hostname","' "$KC_TMP/audit.log")"
check "audit: the log verifies" ctl audit verify "$KC_TMP/audit.log"

kc_done
