#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-http-hostnames.sh: the custom hostname routes of keycustody-http over the real daemon,
# driven with curl (issue 4). A root CA and two intermediates made here with openssl sign the
# CSRs that the daemon returns; the root goes to the daemon as `trust_bundle`. Covers every
# result field, every code of API.md's custom hostname table, renewal with PATCH, and the
# seed's lifecycle down to the key leaving the token.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
. "$here/http-common.sh"
for p in curl jq openssl python3 pkcs11-tool; do
	command -v $p >/dev/null 2>&1 || { echo "SKIP: $p missing"; exit 77; }
done
tmp=$KC_TMP/hn
ca=$tmp/ca
mkdir -p "$ca/newcerts"
cleanup()
{
	kc_stop_http
	kc_cleanup
}
trap cleanup EXIT

# ossl WHAT ARGS...: openssl, which must succeed.
ossl()
{
	what=$1; shift
	openssl "$@" >"$tmp/ossl.out" 2>&1 && return 0
	echo "Bail out: openssl: $what"; sed 's/^/#   /' "$tmp/ossl.out"; exit 1
}

echo "# == test CAs: root (RSA), intermediates RSA (with O) and P-256 (CN only), a rogue CA"
printf '%s\n' 'basicConstraints=critical,CA:TRUE,pathlen:0' \
    'keyUsage=critical,keyCertSign,cRLSign' 'subjectKeyIdentifier=hash' \
    'authorityKeyIdentifier=keyid:always' >"$ca/inter.ext"
ossl root req -x509 -newkey rsa:2048 -nodes -keyout "$ca/root.key" -out "$ca/root.pem" \
    -days 3650 -sha256 -subj '/C=US/O=Acme Test Trust/CN=Acme Test Root CA' \
    -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'
ossl 'intermediate request' req -new -newkey rsa:2048 -nodes -keyout "$ca/inter.key" \
    -out "$ca/inter.csr" -subj '/C=US/O=Acme Corp Issuing/CN=Acme Issuing CA 1'
ossl intermediate x509 -req -in "$ca/inter.csr" -CA "$ca/root.pem" -CAkey "$ca/root.key" \
    -set_serial 4096 -days 1825 -sha256 -extfile "$ca/inter.ext" -out "$ca/inter.pem"
ossl 'EC intermediate request' req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$ca/inter-ec.key" -out "$ca/inter-ec.csr" -subj '/CN=Acme EC Issuing CA'
ossl 'EC intermediate' x509 -req -in "$ca/inter-ec.csr" -CA "$ca/root.pem" \
    -CAkey "$ca/root.key" -set_serial 4097 -days 1825 -sha256 -extfile "$ca/inter.ext" \
    -out "$ca/inter-ec.pem"
ossl 'rogue CA' req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$ca/rogue.key" -out "$ca/rogue.pem" -days 365 -sha256 \
    -subj '/C=US/O=Acme Corp Issuing/CN=Acme Issuing CA 1' \
    -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'
# `openssl ca` for a leaf with chosen dates (the expired one).
: >"$ca/index.txt"
echo 1000 >"$ca/serial"
cat >"$ca/ca.cnf" <<EOF
[ ca ]
default_ca = test
[ test ]
database = $ca/index.txt
new_certs_dir = $ca/newcerts
serial = $ca/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
countryName = optional
stateOrProvinceName = optional
localityName = optional
organizationName = optional
organizationalUnitName = optional
commonName = optional
EOF

kc_token
printf 'trust_bundle = %s\n' "$ca/root.pem" >>"$KC_TMP/keycustodyd.conf"
kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }
kc_start_http "$tmp" || exit 1

Z=$KC_ZONE
Z2=$KC_ZONE2
HN=/zones/$Z/custom_hostnames
CSRS=/zones/$Z/custom_csrs
R() { echo "Authorization: Bearer $KC_TOKEN_R"; }

# leaf_ext SANS: the extensions of a server certificate with these subjectAltNames.
leaf_ext()
{
	printf '%s\n' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' \
	    'extendedKeyUsage=serverAuth' "subjectAltName=$1" >"$tmp/leaf.ext"
}

# sign CSR_PEM OUT SANS DIGEST [CA]: a leaf for the CSR's key, issued by CA (inter, inter-ec
# or rogue; default inter) with a random serial; OUT gets the leaf, OUT.chain the leaf and
# the CA's certificate.
sign()
{
	_ca=${5:-inter}
	leaf_ext "$3"
	ossl "sign $2" x509 -req -in "$1" -CA "$ca/$_ca.pem" -CAkey "$ca/$_ca.key" \
	    -set_serial "0x$(openssl rand -hex 12)" -days 90 "-$4" -extfile "$tmp/leaf.ext" \
	    -out "$2"
	cat "$2" "$ca/$_ca.pem" >"$2.chain"
}

# csr_new ZONE TOKEN KEY_TYPE CN: create a CSR over HTTP; its id on stdout, PEM in $tmp/<id>.csr.
csr_new()
{
	b=$(jq -nc --arg cn "$4" --arg kt "$3" '{country: "US", state: "MA",
	    locality: "Boston", organization: "City of Boston", common_name: $cn,
	    sans: [$cn], key_type: $kt}')
	req POST "/zones/$1/custom_csrs" -H "Authorization: Bearer $2" --data-binary "$b"
	if [ "$st" != 201 ]; then
		echo "Bail out: CSR creation: $st $(head -c 300 "$tmp/body")" >&2; exit 1
	fi
	_id=$(jq -r .result.id "$tmp/body")
	jq -r .result.csr "$tmp/body" >"$tmp/$_id.csr"
	echo "$_id"
}

# hn_body HOSTNAME CSR_ID PEM_FILE [SSL_EXTRA]: a create body; SSL_EXTRA (JSON object)
# is merged into ssl.
hn_body()
{
	if [ $# -ge 4 ]; then _x=$4; else _x='{}'; fi
	jq -nc --arg h "$1" --arg id "$2" --rawfile c "$3" --argjson x "$_x" \
	    '{hostname: $h, ssl: ({custom_csr_id: $id, custom_certificate: $c} + $x)}'
}
hpost() { req POST "$HN" -H "$(W)" -H 'Content-Type: application/json' --data-binary "$1"; }
hpatch() { req PATCH "$HN/$1" -H "$(W)" -H 'Content-Type: application/json' --data-binary "$2"; }

# serial_dec PEM: the certificate's serial number in decimal.
serial_dec()
{
	python3 -c 'import sys; print(int(sys.argv[1].split("=", 1)[1], 16))' \
	    "$(openssl x509 -in "$1" -noout -serial)"
}

# not_after PEM: notAfter in RFC 3339, whole seconds.
not_after()
{
	python3 -c 'import sys, datetime
d = datetime.datetime.strptime(sys.argv[1].split("=", 1)[1], "%b %d %H:%M:%S %Y GMT")
print(d.strftime("%Y-%m-%dT%H:%M:%SZ"))' "$(openssl x509 -in "$1" -noout -enddate)"
}

# fingerprint PEM: SHA-256 fingerprint of the first certificate of PEM.
fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256 2>/dev/null; }

# check_hostname FILE HOSTNAME CSR_ID LEAF ISSUER SIGNATURE HOSTS_JSON BUNDLE: every field of
# the custom hostname object at .result of FILE.
check_hostname()
{
	_f=$1
	jq -e --arg h "$2" --arg csr "$3" --arg serial "$(serial_dec "$4")" \
	    --arg exp "$(not_after "$4")" --arg issuer "$5" --arg sig "$6" --argjson hosts "$7" \
	    --arg bm "$8" '
	    def uuid: test("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
	    .success == true and .errors == [] and .messages == [] and
	    (.result | keys_unsorted) == ["id", "hostname", "created_at", "ssl"] and
	    (.result.id | uuid) and .result.hostname == $h and
	    (.result.created_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$")) and
	    (.result.ssl | keys_unsorted) == ["id", "type", "method", "status", "bundle_method",
	        "custom_csr_id", "issuer", "serial_number", "signature", "uploaded_on",
	        "expires_on", "hosts", "custom_certificate", "certificate_chain"] and
	    (.result.ssl.id | uuid) and .result.ssl.id != .result.id and
	    .result.ssl.type == "dv" and .result.ssl.method == "http" and
	    .result.ssl.status == "active" and .result.ssl.bundle_method == $bm and
	    .result.ssl.custom_csr_id == $csr and .result.ssl.issuer == $issuer and
	    (.result.ssl.issuer | test(" ") | not) and
	    .result.ssl.serial_number == $serial and .result.ssl.signature == $sig and
	    (.result.ssl.uploaded_on | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$")) and
	    .result.ssl.expires_on == $exp and .result.ssl.hosts == $hosts and
	    (.result.ssl.custom_certificate | startswith("-----BEGIN CERTIFICATE-----\n"))' \
	    "$_f" >/dev/null || { bad "$2: result fields"; return; }
	ok "$2: every result field"
	# custom_certificate: the upload, byte for byte (the leaf and its intermediate)
	jq -j .result.ssl.custom_certificate "$_f" >"$tmp/uploaded.pem"
	cmp -s "$tmp/uploaded.pem" "$4.chain" && ok "$2: custom_certificate is the upload" ||
	    bad "$2: custom_certificate differs from the upload"
	jq -r .result.ssl.certificate_chain "$_f" >"$tmp/stored.pem"
	if [ "$(fingerprint "$tmp/stored.pem")" = "$(fingerprint "$4")" ] &&
	    [ "$(grep -c 'BEGIN CERTIFICATE' "$tmp/stored.pem")" = 2 ]; then
		ok "$2: stored chain is the leaf then the intermediate"
	else
		bad "$2: stored chain"
	fi
	# uploaded_on: now, give or take a minute
	jq -r .result.ssl.uploaded_on "$_f" | python3 -c 'import sys, datetime
t = datetime.datetime.strptime(sys.stdin.read().strip(), "%Y-%m-%dT%H:%M:%S.%fZ")
sys.exit(abs((datetime.datetime.utcnow() - t).total_seconds()) > 60)' &&
	    ok "$2: uploaded_on is now" || bad "$2: uploaded_on"
}

echo "# == CSRs: P-256 and RSA-2048 in zone 1, another P-256 key in zone 1, one in zone 2"
CSR_EC=$(csr_new "$Z" "$KC_TOKEN_W" p256v1 shop.acme-corp.co.uk) || exit 1
CSR_RSA=$(csr_new "$Z" "$KC_TOKEN_W" rsa2048 pay.acme-corp.co.uk) || exit 1
CSR_EC2=$(csr_new "$Z" "$KC_TOKEN_W" p256v1 other.acme-corp.co.uk) || exit 1
CSR_Z2=$(csr_new "$Z2" "$KC_TOKEN_Z2" p256v1 shop.acme-corp.co.uk) || exit 1
ok "4 CSRs created"

echo "# == routing, methods, authentication"
req GET "$HN" -H "$(W)"; expect 200 - "empty list"
jq -e '.result == [] and .result_info == {"page":1,"per_page":20,"count":0,"total_count":0,"total_pages":0}' \
    "$tmp/body" >/dev/null && ok "empty list result_info" || bad "empty list result_info"
req PUT "$HN" -H "$(W)"; expect 405 - "PUT on the collection"
grep -qi '^allow: GET, POST' "$tmp/hdr" && ok "Allow: GET, POST" || bad "Allow header"
req POST "$HN/00000000-0000-4000-8000-000000000000" -H "$(W)" -d '{}'; expect 405 - "POST on an item"
grep -qi '^allow: GET, PATCH, DELETE' "$tmp/hdr" && ok "Allow: GET, PATCH, DELETE" || bad "Allow header"
req GET "$HN/a/b" -H "$(W)"; expect 400 7003 "too deep a path"
req GET "/zones/0123/custom_hostnames" -H "$(W)"; expect 400 7003 "bad zone id"
req GET "$HN"; expect 400 9106 "no credentials"
req GET "$HN" -H 'Authorization: Bearer nope-nope-nope'; expect 403 10000 "unknown token"
req GET "$HN" -H "Authorization: Bearer $KC_TOKEN_Z2"; expect 403 10000 "zone-2 token on zone 1"
req GET "$HN" -H "$(R)"; expect 200 - "reader lists"
req POST "$HN" -H "$(R)" -d '{}'; expect 403 10000 "reader may not create"
req PATCH "$HN/00000000-0000-4000-8000-000000000000" -H "$(R)" -d '{}'; expect 403 10000 "reader may not update"
req DELETE "$HN/00000000-0000-4000-8000-000000000000" -H "$(R)"; expect 403 10000 "reader may not delete"
for bid in not-a-uuid 12345 7B163417-1D2B-4C84-A38A-2FB7A0CD7752 "$CSR_EC-0"; do
	req GET "$HN/$bid" -H "$(W)"; expect 400 1435 "get malformed id $bid"
	req PATCH "$HN/$bid" -H "$(W)" -d '{}'; expect 400 1435 "patch malformed id $bid"
	req DELETE "$HN/$bid" -H "$(W)"; expect 400 1435 "delete malformed id $bid"
done
jq -e '.errors[0].message == "The custom hostname ID is invalid. Check your input and try again."' \
    "$tmp/body" >/dev/null && ok "1435 message" || bad "1435 message"
# Issue 13: Cloudflare's sub-resources that are not served are unknown routes, not ids.
for m in GET PUT PATCH DELETE; do
	req $m "$HN/quota" -H "$(W)" -d '{}'; expect 400 7003 "$m quota: no route"
done

echo "# == the zone's fallback origin (issue 13)"
FO=$HN/fallback_origin
fput() { req PUT "$FO" -H "$(W)" -H 'Content-Type: application/json' --data-binary "$1"; }
# Before one is set: Cloudflare's 404/1551, as for any record that is not there.
req GET "$FO" -H "$(W)"; expect 404 1551 "fallback origin: get before set"
jq -e '.errors[0].message == "Fallback origin not found."' "$tmp/body" >/dev/null &&
    ok "1551 message" || bad "1551 message"
req DELETE "$FO" -H "$(W)"; expect 404 1551 "fallback origin: delete before set"
req PATCH "$FO" -H "$(W)" -d '{}'; expect 405 - "fallback origin: PATCH"
grep -qi '^allow: GET, PUT, DELETE' "$tmp/hdr" && ok "Allow: GET, PUT, DELETE" || bad "Allow header"
req POST "$FO" -H "$(W)" -d '{}'; expect 405 - "fallback origin: POST"
req PUT "$FO" -H "$(R)" -d '{"origin":"origin.acme-corp.co.uk"}'; expect 403 10000 "reader may not set it"
req GET "$FO" -H "Authorization: Bearer $KC_TOKEN_Z2"; expect 403 10000 "zone-2 token on zone 1's"
for b in '{}' '{"origin":""}' '{"origin":null}'; do
	fput "$b"; expect 400 1415 "fallback origin: none in $b"
done
fput '{"origin":"no spaces.acme-corp.co.uk"}'; expect 400 1415 "fallback origin: syntax"
fput '{"origin":"192.0.2.1"}'; expect 400 1415 "fallback origin: an IP address"
fput '{"origin":"*.acme-corp.co.uk"}'; expect 400 1420 "fallback origin: wildcard"
fput '{"origin":"origin.test"}'; expect 400 1417 "fallback origin: reserved TLD"
fput '{"origin":"fallback.example.com"}'; expect 400 1419 "fallback origin: example.com"
fput '{"origin":"co.uk"}'; expect 400 1418 "fallback origin: a public suffix"
fput '{"origin":"bücher.acme-corp.co.uk"}'; expect 400 1416 "fallback origin: non-ASCII"
fput '{"origin":7}'; expect 400 1400 "fallback origin: not a string"
fput 'nope'; expect 400 1400 "fallback origin: not JSON"
req GET "$FO" -H "$(W)"; expect 404 1551 "fallback origin: still none after refusals"
# Set: stored folded, status "active" (stored), created_at = updated_at, errors empty.
fput '{"origin":"Origin.ACME-corp.co.uk."}'; expect 200 - "fallback origin: set"
jq -e '.success == true and .result.origin == "origin.acme-corp.co.uk" and
    .result.status == "active" and .result.errors == [] and
    (.result.created_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{6}Z$")) and
    .result.created_at == .result.updated_at' "$tmp/body" >/dev/null &&
    ok "set: origin folded, active, times" || bad "set result"
c1=$(jq -r .result.created_at "$tmp/body")
req GET "$FO" -H "$(R)"; expect 200 - "fallback origin: reader gets it"
jq -e --arg c "$c1" '.result == {"origin":"origin.acme-corp.co.uk","status":"active",
    "created_at":$c,"updated_at":$c,"errors":[]}' "$tmp/body" >/dev/null &&
    ok "get: as set" || bad "get result"
req GET "/zones/$Z2/custom_hostnames/fallback_origin" -H "Authorization: Bearer $KC_TOKEN_Z2"; expect 404 1551 "zone 2 has none"
sleep 0.01
fput '{"origin":"fallback.acme-corp.co.uk"}'; expect 200 - "fallback origin: replaced"
jq -e --arg c "$c1" '.result.origin == "fallback.acme-corp.co.uk" and
    .result.created_at == $c and .result.updated_at > $c' "$tmp/body" >/dev/null &&
    ok "replace: created_at kept, updated_at later" || bad "replace result"
u2=$(jq -r .result.updated_at "$tmp/body")
fput '{"origin":"*.acme-corp.co.uk"}'; expect 400 1420 "fallback origin: bad replacement"
req GET "$FO" -H "$(W)"; expect 200 - "fallback origin: get after a refused replacement"
jq -e '.result.origin == "fallback.acme-corp.co.uk"' "$tmp/body" >/dev/null &&
    ok "a refused PUT changes nothing" || bad "refused PUT changed it"
# Delete: the record removed, without status (it is gone, not pending), then none.
req DELETE "$FO" -H "$(W)"; expect 200 - "fallback origin: delete"
jq -e --arg c "$c1" --arg u "$u2" '.success == true and .result == {"origin":
    "fallback.acme-corp.co.uk","created_at":$c,"updated_at":$u,"errors":[]}' \
    "$tmp/body" >/dev/null && ok "delete: the removed record" || bad "delete result"
req GET "$FO" -H "$(W)"; expect 404 1551 "fallback origin: get after delete"
req DELETE "$FO" -H "$(W)"; expect 404 1551 "fallback origin: delete again"
grep -c '"op":"update_fallback_origin"' "$KC_TMP/audit.log" | grep -qx 2 &&
    grep -q '"op":"delete_fallback_origin".*"hostname":"fallback.acme-corp.co.uk"' \
    "$KC_TMP/audit.log" && ok "fallback origin writes audited" || bad "audit records"
req GET "$HN/3f1e4b2a-9c1d-4e7f-8a2b-5c6d7e8f9a0b" -H "$(W)"; expect 404 1436 "unknown id"
jq -e '.errors[0].message == "The custom hostname was not found."' "$tmp/body" >/dev/null &&
    ok "1436 message" || bad "1436 message"
for q in per_page=4 per_page=51 page=0 page=x direction=up; do
	req GET "$HN?$q" -H "$(W)"; expect 400 6008 11000 "list $q"
done

echo "# == P-256 key, leaf from the RSA intermediate (SHA-384), intermediate in the chain"
sign "$tmp/$CSR_EC.csr" "$tmp/ec.pem" 'DNS:shop.acme-corp.co.uk,DNS:*.shop.acme-corp.co.uk' sha384
hpost "$(hn_body shop.acme-corp.co.uk "$CSR_EC" "$tmp/ec.pem.chain")"; expect 201 - "upload P-256"
cp "$tmp/body" "$tmp/hn-ec.json"
check_hostname "$tmp/hn-ec.json" shop.acme-corp.co.uk "$CSR_EC" "$tmp/ec.pem" AcmeCorpIssuing \
    SHA384WithRSA '["shop.acme-corp.co.uk","*.shop.acme-corp.co.uk"]' ubiquitous
HN_EC=$(jq -r .result.id "$tmp/hn-ec.json")
req GET "$HN/$HN_EC" -H "$(R)"; expect 200 - "get (reader)"
jq -e --slurpfile c "$tmp/hn-ec.json" '.result == $c[0].result' "$tmp/body" >/dev/null &&
    ok "get equals create" || bad "get differs from create"
req GET "/zones/$Z2/custom_hostnames/$HN_EC" -H "Authorization: Bearer $KC_TOKEN_Z2"
expect 404 1436 "another zone's hostname id"
req PATCH "/zones/$Z2/custom_hostnames/$HN_EC" -H "Authorization: Bearer $KC_TOKEN_Z2" -d '{}'
expect 404 1436 "another zone's hostname id (patch)"
req DELETE "/zones/$Z2/custom_hostnames/$HN_EC" -H "Authorization: Bearer $KC_TOKEN_Z2"
expect 404 1436 "another zone's hostname id (delete)"

echo "# == wildcards (RFC 6125): one label under *.shop"
hpost "$(hn_body a.shop.acme-corp.co.uk "$CSR_EC" "$tmp/ec.pem.chain" '{"bundle_method":"force"}')"
expect 201 - "a.shop covered by *.shop"
jq -e '.result.ssl.bundle_method == "force"' "$tmp/body" >/dev/null && ok "bundle_method force" ||
    bad "bundle_method force"
HN_A=$(jq -r .result.id "$tmp/body")
hpost "$(hn_body a.b.shop.acme-corp.co.uk "$CSR_EC" "$tmp/ec.pem.chain")"
expect 400 1446 "a.b.shop not covered by *.shop"

echo "# == RSA-2048 key, leaf from the P-256 intermediate (issuer from its CN)"
sign "$tmp/$CSR_RSA.csr" "$tmp/rsa.pem" 'DNS:pay.acme-corp.co.uk' sha256 inter-ec
hpost "$(hn_body pay.acme-corp.co.uk "$CSR_RSA" "$tmp/rsa.pem.chain" '{"bundle_method":"optimal"}')"
expect 201 - "upload RSA-2048"
cp "$tmp/body" "$tmp/hn-rsa.json"
check_hostname "$tmp/hn-rsa.json" pay.acme-corp.co.uk "$CSR_RSA" "$tmp/rsa.pem" \
    AcmeECIssuingCA ECDSAWithSHA256 '["pay.acme-corp.co.uk"]' optimal
HN_RSA=$(jq -r .result.id "$tmp/hn-rsa.json")

echo "# == list, pagination, filters"
req GET "$HN" -H "$(W)"; expect 200 - "list"
jq -e --arg a "$HN_EC" --arg b "$HN_A" --arg c "$HN_RSA" '[.result[].id] == [$a, $b, $c] and
    .result_info == {"page":1,"per_page":20,"count":3,"total_count":3,"total_pages":1}' \
    "$tmp/body" >/dev/null && ok "list: 3, created_at ascending" || bad "list"
req GET "$HN?direction=desc" -H "$(W)"; expect 200 - "list desc"
jq -e --arg a "$HN_EC" --arg c "$HN_RSA" '.result[0].id == $c and .result[2].id == $a' \
    "$tmp/body" >/dev/null && ok "desc order" || bad "desc order"
req GET "$HN?per_page=5&page=2" -H "$(W)"; expect 200 - "page past the end"
jq -e '.result == [] and .result_info.total_count == 3 and .result_info.count == 0' \
    "$tmp/body" >/dev/null && ok "empty page past the end" || bad "page past the end"
req GET "$HN?hostname=pay.acme-corp.co.uk" -H "$(W)"; expect 200 - "filter hostname"
jq -e --arg c "$HN_RSA" '[.result[].id] == [$c] and .result_info.total_count == 1' \
    "$tmp/body" >/dev/null && ok "hostname filter" || bad "hostname filter"
req GET "$HN?custom_csr_id=$CSR_EC" -H "$(W)"; expect 200 - "filter custom_csr_id"
jq -e --arg a "$HN_EC" --arg b "$HN_A" '[.result[].id] == [$a, $b]' "$tmp/body" >/dev/null &&
    ok "custom_csr_id filter" || bad "custom_csr_id filter"
req GET "$HN?hostname=nope.acme-corp.co.uk" -H "$(W)"; expect 200 - "filter, no match"
jq -e '.result == [] and .result_info.total_count == 0' "$tmp/body" >/dev/null &&
    ok "filter without a match" || bad "filter without a match"

echo "# == issue 13: case, trailing dot, every list filter of the SDK"
hpost "$(hn_body SHOP.ACME-CORP.CO.UK "$CSR_EC" "$tmp/ec.pem.chain")"
expect 409 1406 "upper case is the same hostname"
hpost "$(hn_body shop.acme-corp.co.uk. "$CSR_EC" "$tmp/ec.pem.chain")"
expect 409 1406 "a trailing dot is the same hostname"
req GET "$HN?hostname=PAY.Acme-Corp.co.uk." -H "$(W)"; expect 200 - "filter hostname, any case"
jq -e --arg c "$HN_RSA" '[.result[].id] == [$c]' "$tmp/body" >/dev/null &&
    ok "hostname filter folds case and dot" || bad "hostname filter case"
# name [ids...]: the query answers exactly these ids, in this order.
lists() {
	q=$1; shift
	req GET "$HN?$q" -H "$(W)"; expect 200 - "list $q"
	want=$(printf '%s\n' "$@" | jq -R . | jq -sc .)
	[ $# -eq 0 ] && want='[]'
	jq -e --argjson w "$want" '[.result[].id] == $w and .result_info.total_count == ($w | length)' \
	    "$tmp/body" >/dev/null && ok "$q" || bad "$q: want $want"
}
lists "hostname.exact=Shop.acme-corp.co.uk" "$HN_EC"
lists "hostname.contain=SHOP" "$HN_EC" "$HN_A"
req GET "$HN?hostname.contain=_" -H "$(W)"; expect 400 1437 "hostname.contain with _"
jq -e '.errors[0].message | startswith("Invalid hostname.contain query parameter. The hostname.contain query parameter has to be smaller than 256 characters in length, cannot be IP addresses")' \
    "$tmp/body" >/dev/null && ok "1437: Cloudflare's hostname.contain message" || bad "1437 message"
req GET "$HN?hostname.contain=192.0.2.1" -H "$(W)"; expect 400 1437 "hostname.contain an IP address"
lists "hostname.contain=shop&hostname.startsWith=shop" "$HN_EC"
lists "hostname.contain=shop&hostname.startsWith=a." "$HN_A"
lists "hostname=shop.acme-corp.co.uk&hostname.exact=Shop.Acme-Corp.co.uk" "$HN_EC"
lists "hostname=shop.acme-corp.co.uk&hostname.exact=pay.acme-corp.co.uk"
lists "certificate_authority=google"
lists "hostname.startsWith=a." "$HN_A"
lists "hostname.startsWith=shop" "$HN_EC"
lists "id=$HN_A" "$HN_A"
lists "ssl=1" "$HN_EC" "$HN_A" "$HN_RSA"
lists "ssl=0"
lists "ssl_status=active" "$HN_EC" "$HN_A" "$HN_RSA"
lists "ssl_status=expired"
lists "ssl_status=pending_validation"
lists "wildcard=false" "$HN_EC" "$HN_A" "$HN_RSA"
lists "wildcard=true"
lists "order=ssl" "$HN_EC" "$HN_A" "$HN_RSA"
lists "order=ssl_status&direction=desc" "$HN_RSA" "$HN_A" "$HN_EC"
lists "hostname.contain=acme&custom_csr_id=$CSR_EC&per_page=5" "$HN_EC" "$HN_A"
for q in "id=$HN_A&hostname=pay.acme-corp.co.uk" "id=$HN_A&hostname.exact=x.co.uk" \
    "id=$HN_A&custom_csr_id=$CSR_RSA" "id=$HN_A&ssl=1" "id=$HN_A&wildcard=false" \
    "id=$HN_A&certificate_authority=google" "id=$HN_A&custom_origin_server=o.acme-corp.co.uk"; do
	req GET "$HN?$q" -H "$(W)"; expect 400 1438 "combined: $q"
	jq -e '.errors[0].message == "Cannot specify other filter parameters in addition to `id`. Only one must be specified. Check your input and try again."' \
	    "$tmp/body" >/dev/null && ok "1438 message" || bad "1438 message"
done
lists "id=$HN_A&order=ssl_status&direction=desc&per_page=5" "$HN_A"
req GET "$HN?id=not-a-uuid" -H "$(W)"; expect 400 1435 "id filter malformed"
for q in ssl=2 ssl_status=bogus wildcard=maybe order=name hostname_status=active \
    certificate_authority=digicert "custom_origin_server=$(printf 'o%.0s' $(seq 1 260))" \
    "hostname.contain=$(printf 'a%.0s' $(seq 1 260))"; do
	req GET "$HN?$q" -H "$(W)"; expect 400 1437 "refused: ${q%%=*}"
	jq -e '.errors[0].message | endswith("Check your input and try again.")' "$tmp/body" \
	    >/dev/null && ok "${q%%=*}: message ending" || bad "${q%%=*}: message ending"
done

req GET "/zones/$Z2/custom_hostnames" -H "Authorization: Bearer $KC_TOKEN_Z2"; expect 200 - "zone 2"
jq -e '.result == []' "$tmp/body" >/dev/null && ok "zone 2 sees none of zone 1" || bad "zone 2 list"

echo "# == malformed bodies (1400)"
hpost '{"hostname":'; expect 400 1400 "truncated JSON"
jq -e '.errors[0].message == "Unable to decode the JSON request body. Check your input and try again."' "$tmp/body" >/dev/null &&
    ok "1400 message" || bad "1400 message"
hpost '[]'; expect 400 1400 "array body"
hpost '{"hostname":"x.acme-corp.co.uk","hostname":"y.acme-corp.co.uk"}'; expect 400 1400 "duplicate key"
hpost '{"hostname":42}'; expect 400 1400 "hostname a number"
hpost '{"hostname":"x.acme-corp.co.uk","ssl":"x"}'; expect 400 1400 "ssl a string"
hpost "{\"hostname\":\"x.acme-corp.co.uk\",\"ssl\":{\"custom_csr_id\":[\"$CSR_EC\"]}}"
expect 400 1400 "custom_csr_id an array"
hpost "{\"hostname\":\"x.acme-corp.co.uk\",\"ssl\":{\"custom_csr_id\":\"$CSR_EC\",\"custom_certificate\":7}}"
expect 400 1400 "custom_certificate a number"
hpost "{\"hostname\":\"x.acme-corp.co.uk\",\"ssl\":{\"custom_csr_id\":\"$CSR_EC\",\"bundle_method\":true}}"
expect 400 1400 "bundle_method a boolean"
hpatch "$HN_EC" '{"ssl":'; expect 400 1400 "PATCH truncated JSON"
hpatch "$HN_EC" '{"ssl":[]}'; expect 400 1400 "PATCH ssl an array"

echo "# == hostname rules (1407..1411)"
good=$tmp/ec.pem.chain
hpost "$(hn_body 'bad!name.acme-corp.co.uk' "$CSR_EC" "$good")"; expect 400 1407 "hostname with !"
hpost "$(hn_body '-a.acme-corp.co.uk' "$CSR_EC" "$good")"; expect 400 1407 "label starting with -"
hpost "$(hn_body '192.0.2.1' "$CSR_EC" "$good")"; expect 400 1407 "IP address"
hpost "$(hn_body '' "$CSR_EC" "$good")"; expect 400 1407 "empty hostname"
hpost "$(jq -nc --arg id "$CSR_EC" --rawfile c "$good" '{ssl: {custom_csr_id: $id, custom_certificate: $c}}')"
expect 400 1407 "no hostname"
hpost "$(hn_body 'bücher.acme-corp.co.uk' "$CSR_EC" "$good")"; expect 400 1408 "non-ASCII"
hpost "$(hn_body 'shop.acme.test' "$CSR_EC" "$good")"; expect 400 1409 "reserved TLD .test"
hpost "$(hn_body 'localhost' "$CSR_EC" "$good")"; expect 400 1409 "localhost"
jq -e '.errors[0].message | startswith("Reserved top domain custom hostnames") and endswith(" Check your input and try again.")' \
    "$tmp/body" >/dev/null && ok "1409 message" || bad "1409 message"
hpost "$(hn_body 'co.uk' "$CSR_EC" "$good")"; expect 400 1410 "a public suffix"
jq -e '.errors[0].message | startswith("Unable to parse custom hostname - ") and endswith(". Check your input and try again.")' "$tmp/body" \
    >/dev/null && ok "1410 carries the reason" || bad "1410 message"
hpost "$(hn_body 'shop.example.com' "$CSR_EC" "$good")"; expect 400 1411 "example.com"
hpost "$(hn_body 'www.example.org' "$CSR_EC" "$good")"; expect 400 1411 "example.org"

echo "# == the custom CSR (1430, 1431)"
hpost "$(hn_body x.shop.acme-corp.co.uk not-a-uuid "$good")"; expect 400 1430 "malformed csr id"
jq -e '.errors[0].message == "The custom CSR ID is invalid. Check your input and try again."' "$tmp/body" >/dev/null &&
    ok "1430 message" || bad "1430 message"
hpost '{"hostname":"x.shop.acme-corp.co.uk"}'; expect 400 1430 "no ssl at all"
hpost "$(hn_body x.shop.acme-corp.co.uk 3f1e4b2a-9c1d-4e7f-8a2b-5c6d7e8f9a0b "$good")"
expect 404 1431 "unknown csr"
jq -e '.errors[0].message == "The custom CSR was not found."' "$tmp/body" >/dev/null &&
    ok "1431 message" || bad "1431 message"
hpost "$(hn_body x.shop.acme-corp.co.uk "$CSR_Z2" "$good")"; expect 404 1431 "another zone's csr"

echo "# == the certificate (1427, 1434, 1426, 1445, 1444, 1429, 1447, 1441, 1446, 1449)"
hpost "{\"hostname\":\"x.shop.acme-corp.co.uk\",\"ssl\":{\"custom_csr_id\":\"$CSR_EC\"}}"
expect 400 1427 "no certificate"
hpost "{\"hostname\":\"x.shop.acme-corp.co.uk\",\"ssl\":{\"custom_csr_id\":\"$CSR_EC\",\"custom_certificate\":\"\"}}"
expect 400 1427 "empty certificate"
jq -e '.errors[0].message == "The certificate that you uploaded is empty. Check your input and try again."' "$tmp/body" \
    >/dev/null && ok "1427 message" || bad "1427 message"
hpost "{\"hostname\":\"x.shop.acme-corp.co.uk\",\"ssl\":{\"custom_csr_id\":\"$CSR_EC\",\"custom_certificate\":\" \\n\\t\"}}"
expect 400 1427 "blank certificate"
hpost "$(hn_body x.shop.acme-corp.co.uk "$CSR_EC" "$good" '{"custom_key":"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"}')"
expect 400 1434 "custom_key given"
hpost "$(hn_body x.shop.acme-corp.co.uk "$CSR_EC" "$good" '{"custom_key":null}')"
expect 400 1434 "custom_key null"
printf 'hello\n' >"$tmp/junk.pem"
hpost "$(hn_body x.shop.acme-corp.co.uk "$CSR_EC" "$tmp/junk.pem")"; expect 400 1426 "not PEM"
printf -- '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n' >"$tmp/junk.pem"
hpost "$(hn_body x.shop.acme-corp.co.uk "$CSR_EC" "$tmp/junk.pem")"; expect 400 1426 "bad base64"
head -c 300 "$tmp/ec.pem" >"$tmp/junk.pem"
hpost "$(hn_body x.shop.acme-corp.co.uk "$CSR_EC" "$tmp/junk.pem")"; expect 400 1426 "truncated PEM"
jq -e '.errors[0].message == "The certificate that you uploaded cannot be parsed. Check your input and try again."' \
    "$tmp/body" >/dev/null && ok "1426 message" || bad "1426 message"
cat "$ca/inter.pem" "$ca/root.pem" >"$tmp/cas.pem"
hpost "$(hn_body x.shop.acme-corp.co.uk "$CSR_EC" "$tmp/cas.pem")"; expect 400 1445 "only CA certificates"
cat "$tmp/ec.pem" "$tmp/rsa.pem" "$ca/inter.pem" >"$tmp/two.pem"
hpost "$(hn_body x.shop.acme-corp.co.uk "$CSR_EC" "$tmp/two.pem")"; expect 400 1444 "two leaves"
sign "$tmp/$CSR_EC2.csr" "$tmp/ec2.pem" 'DNS:x.shop.acme-corp.co.uk' sha256
hpost "$(hn_body x.shop.acme-corp.co.uk "$CSR_EC" "$tmp/ec2.pem.chain")"
expect 400 1429 "certificate for another key of the zone"
jq -e '.errors[0].message == "The private key you uploaded does not match the certificate. Check your input and try again."' \
    "$tmp/body" >/dev/null && ok "1429 message" || bad "1429 message"
sign "$tmp/$CSR_EC.csr" "$tmp/sha1.pem" 'DNS:x.shop.acme-corp.co.uk' sha1
hpost "$(hn_body x.shop.acme-corp.co.uk "$CSR_EC" "$tmp/sha1.pem.chain")"; expect 400 1447 "SHA-1 signed"
sign "$tmp/$CSR_EC.csr" "$tmp/rogue-leaf.pem" 'DNS:x.shop.acme-corp.co.uk' sha256 rogue
hpost "$(hn_body x.shop.acme-corp.co.uk "$CSR_EC" "$tmp/rogue-leaf.pem.chain")"
expect 400 1441 "CA not trusted"
bundle_msg='The certificate that you uploaded is having trouble bundling against the public trust store.'
jq -e --arg m "$bundle_msg" '.errors[0].message | startswith($m + " (") and endswith(")." + " Check your input and try again.")' \
    "$tmp/body" >/dev/null && ok "1441 with the reason appended" || bad "1441 message"
hpost "$(hn_body x.shop.acme-corp.co.uk "$CSR_EC" "$tmp/rogue-leaf.pem")"
expect 400 1441 "untrusted CA, leaf alone"
hpost "$(hn_body x.shop.acme-corp.co.uk "$CSR_EC" "$tmp/ec.pem")"
expect 400 1441 "trusted CA but the intermediate left out"
leaf_ext 'DNS:x.shop.acme-corp.co.uk'
ossl 'expired leaf' ca -batch -config "$ca/ca.cnf" -cert "$ca/inter.pem" -keyfile "$ca/inter.key" \
    -in "$tmp/$CSR_EC.csr" -out "$tmp/expired.pem" -notext -startdate 20200101000000Z \
    -enddate 20210101000000Z -extfile "$tmp/leaf.ext"
cat "$tmp/expired.pem" "$ca/inter.pem" >"$tmp/expired.pem.chain"
hpost "$(hn_body x.shop.acme-corp.co.uk "$CSR_EC" "$tmp/expired.pem.chain")"; expect 400 1441 "expired"
jq -e '.errors[0].message | test("expired")' "$tmp/body" >/dev/null &&
    ok "1441 says expired" || bad "1441 expired reason"
# Self-signed by the CSR's own key: only the token can sign with it (libp11's engine).
leaf_ext 'DNS:x.shop.acme-corp.co.uk'
if PKCS11_MODULE_PATH=$KC_MODULE openssl x509 -req -in "$tmp/$CSR_EC.csr" -engine pkcs11 \
    -keyform engine -signkey "pkcs11:token=$KC_LABEL;object=keycustody:$CSR_EC;type=private;pin-value=$KC_PIN" \
    -days 30 -sha256 -extfile "$tmp/leaf.ext" -out "$tmp/self.pem" >"$tmp/ossl.out" 2>&1; then
	hpost "$(hn_body x.shop.acme-corp.co.uk "$CSR_EC" "$tmp/self.pem")"; expect 400 1441 "self-signed"
	jq -e '.errors[0].message | test("self.signed")' "$tmp/body" >/dev/null &&
	    ok "1441 says self-signed" || bad "1441 self-signed reason"
else
	ok "self-signed # SKIP no pkcs11 engine: $(head -c 120 "$tmp/ossl.out" | tr '\n' ' ')"
fi
hpost "$(hn_body other.acme-corp.co.uk "$CSR_EC" "$good")"; expect 400 1446 "hostname not covered"
jq -e '.errors[0].message == "The certificate that you uploaded does not include the custom hostname - other.acme-corp.co.uk. Review your input and try again."' \
    "$tmp/body" >/dev/null && ok "1446 message" || bad "1446 message"
hpost "$(hn_body shop.acme-corp.co.uk "$CSR_RSA" "$tmp/rsa.pem.chain")"
expect 400 1446 "a certificate of another hostname"
hpost "$(hn_body b.shop.acme-corp.co.uk "$CSR_EC" "$good" '{"bundle_method":"fastest"}')"
expect 400 1449 "bad bundle_method"
hpost "$(hn_body b.shop.acme-corp.co.uk "$CSR_EC" "$good" '{"bundle_method":""}')"
expect 400 1449 "empty bundle_method"
hpost "$(hn_body shop.acme-corp.co.uk "$CSR_EC" "$good")"; expect 409 1406 "duplicate hostname"
jq -e '.errors[0].message == "Duplicate custom hostname found."' "$tmp/body" >/dev/null &&
    ok "1406 message" || bad "1406 message"
req GET "$HN" -H "$(W)"
jq -e '.result_info.total_count == 3' "$tmp/body" >/dev/null &&
    ok "no rejected upload was stored" || bad "rejected uploads stored"
# Unknown fields are ignored, as the SDK and curl scripts send some.
hpost "$(hn_body c.shop.acme-corp.co.uk "$CSR_EC" "$good" '{"method":"http","type":"dv","settings":{"min_tls_version":"1.2"}}' |
    jq -c '. + {custom_origin_server: "origin.acme-corp.co.uk", custom_metadata: {a: "b"}}')"
expect 201 - "unknown fields ignored"
HN_C=$(jq -r .result.id "$tmp/body")

echo "# == PATCH: renewal with a new certificate for the same key"
sign "$tmp/$CSR_EC.csr" "$tmp/ec-renew.pem" 'DNS:shop.acme-corp.co.uk' sha256
sleep 1
hpatch "$HN_EC" "$(jq -nc --rawfile c "$tmp/ec-renew.pem.chain" '{ssl: {custom_certificate: $c}}')"
expect 202 - "renewal"
cp "$tmp/body" "$tmp/hn-renew.json"
check_hostname "$tmp/hn-renew.json" shop.acme-corp.co.uk "$CSR_EC" "$tmp/ec-renew.pem" \
    AcmeCorpIssuing SHA256WithRSA '["shop.acme-corp.co.uk"]' ubiquitous
jq -e --slurpfile o "$tmp/hn-ec.json" '.result.id == $o[0].result.id and
    .result.created_at == $o[0].result.created_at and .result.hostname == $o[0].result.hostname and
    .result.ssl.serial_number != $o[0].result.ssl.serial_number and
    .result.ssl.uploaded_on > $o[0].result.ssl.uploaded_on' "$tmp/hn-renew.json" >/dev/null &&
    ok "renewal keeps id, hostname, created_at; new serial and uploaded_on" || bad "renewal fields"
req GET "$HN/$HN_EC" -H "$(W)"
jq -e --slurpfile n "$tmp/hn-renew.json" '.result == $n[0].result' "$tmp/body" >/dev/null &&
    ok "get after renewal" || bad "get after renewal"
hpatch "$HN_EC" "$(jq -nc --rawfile c "$tmp/junk.pem" '{ssl: {custom_certificate: $c}}')"
expect 400 1426 "renewal with a broken certificate"
hpatch "$HN_EC" "$(jq -nc --rawfile c "$tmp/ec2.pem.chain" '{ssl: {custom_certificate: $c}}')"
expect 400 1429 "renewal with another key's certificate"
hpatch "$HN_EC" '{"ssl":{"custom_certificate":""}}'; expect 400 1427 "renewal with an empty certificate"
hpatch "$HN_EC" '{"ssl":{"custom_csr_id":"'"$CSR_EC"'"}}'; expect 400 1427 "new csr id without a certificate"
hpatch "$HN_EC" "$(jq -nc --rawfile c "$tmp/ec-renew.pem.chain" '{ssl: {custom_certificate: $c, custom_key: "k"}}')"
expect 400 1434 "renewal with a custom_key"
hpatch "$HN_EC" "$(jq -nc --rawfile c "$tmp/ec-renew.pem.chain" '{ssl: {custom_certificate: $c, custom_csr_id: "nope"}}')"
expect 400 1430 "renewal, malformed csr id"
hpatch "$HN_EC" "$(jq -nc --rawfile c "$tmp/ec-renew.pem.chain" --arg id "$CSR_Z2" '{ssl: {custom_certificate: $c, custom_csr_id: $id}}')"
expect 404 1431 "renewal, another zone's csr"
hpatch "$HN_EC" "$(jq -nc --rawfile c "$tmp/ec-renew.pem.chain" '{ssl: {custom_certificate: $c, bundle_method: "slow"}}')"
expect 400 1449 "renewal, bad bundle_method"
req GET "$HN/$HN_EC" -H "$(W)"
jq -e --slurpfile n "$tmp/hn-renew.json" '.result == $n[0].result' "$tmp/body" >/dev/null &&
    ok "rejected renewals changed nothing" || bad "rejected renewal changed the record"
# Moving to another custom CSR of the zone: its certificate must cover the hostname.
sign "$tmp/$CSR_EC2.csr" "$tmp/ec2-shop.pem" 'DNS:shop.acme-corp.co.uk' sha512
hpatch "$HN_EC" "$(jq -nc --rawfile c "$tmp/ec2-shop.pem.chain" --arg id "$CSR_EC2" '{ssl: {custom_certificate: $c, custom_csr_id: $id, bundle_method: "force"}}')"
expect 202 - "move to another CSR of the zone"
jq -e --arg id "$CSR_EC2" '.result.ssl.custom_csr_id == $id and .result.ssl.signature == "SHA512WithRSA"
    and .result.ssl.bundle_method == "force"' "$tmp/body" >/dev/null && ok "moved" || bad "move"
hpatch 3f1e4b2a-9c1d-4e7f-8a2b-5c6d7e8f9a0b "$(jq -nc --rawfile c "$tmp/ec-renew.pem.chain" '{ssl: {custom_certificate: $c}}')"
expect 404 1436 "renewal of an unknown hostname"

echo "# == PATCH changes what is sent and only that (issue 13 point 3)"
req GET "$HN/$HN_EC" -H "$(W)"; cp "$tmp/body" "$tmp/pp-0.json"
# same(): everything but the named top-level and ssl members is as in pp-0.json.
same() {
	jq -e --slurpfile o "$tmp/pp-0.json" --argjson top "$1" --argjson s "$2" '
	    (.result | del(.[$top[]]) | .ssl |= del(.[$s[]])) ==
	    ($o[0].result | del(.[$top[]]) | .ssl |= del(.[$s[]]))' "$tmp/body" >/dev/null
}
hpatch "$HN_EC" '{}'; expect 202 - "PATCH {} accepted"
same '[]' '[]' && ok "PATCH {} changed nothing" || bad "PATCH {} changed the record"
hpatch "$HN_EC" '{"ssl":{}}'; expect 202 - "PATCH ssl {} accepted"
same '[]' '[]' && ok "PATCH ssl {} changed nothing" || bad "PATCH ssl {} changed the record"
hpatch "$HN_EC" '{"custom_metadata":{"customer_id":"12345","redirect":"on"}}'
expect 202 - "metadata-only PATCH"
jq -e '.result.custom_metadata == {"customer_id":"12345","redirect":"on"}' "$tmp/body" >/dev/null &&
    same '["custom_metadata"]' '[]' && ok "metadata stored, nothing else changed" || bad "metadata PATCH"
hpatch "$HN_EC" '{"custom_origin_server":"Origin.Acme-Corp.co.uk.","custom_origin_sni":"sni.acme-corp.co.uk"}'
expect 202 - "origin-only PATCH"
jq -e '.result.custom_origin_server == "origin.acme-corp.co.uk" and
    .result.custom_origin_sni == "sni.acme-corp.co.uk" and .result.custom_metadata.customer_id == "12345"' \
    "$tmp/body" >/dev/null && same '["custom_metadata","custom_origin_server","custom_origin_sni"]' '[]' &&
    ok "origin stored folded, metadata kept" || bad "origin PATCH"
# The custom_origin_server filter: exact, folded as the origins are stored (HN_C was
# posted with this origin; HN_EC is now bound to another CSR).
lists "custom_origin_server=origin.acme-corp.co.uk" "$HN_EC" "$HN_C"
lists "custom_origin_server=ORIGIN.acme-corp.co.uk." "$HN_EC" "$HN_C"
lists "custom_origin_server=origin.acme-corp.co.uk&hostname.startsWith=shop" "$HN_EC"
lists "custom_origin_server=origin.acme-corp.co.uk&hostname.startsWith=a."
lists "custom_origin_server=acme-corp.co.uk"
lists "custom_origin_server=origin.acme-corp.co.uk&custom_csr_id=$CSR_EC&ssl_status=active" "$HN_C"
hpatch "$HN_EC" '{"ssl":{"bundle_method":"optimal"}}'; expect 202 - "bundle_method-only PATCH"
jq -e '.result.ssl.bundle_method == "optimal"' "$tmp/body" >/dev/null &&
    same '["custom_metadata","custom_origin_server","custom_origin_sni"]' '["bundle_method"]' &&
    ok "bundle_method stored, certificate kept" || bad "bundle_method PATCH"
hpatch "$HN_EC" '{"ssl":{"method":"txt","type":"dv"}}'; expect 202 - "re-validation PATCH (txt)"
jq -e '.result.ssl.method == "txt" and .result.ssl.type == "dv"' "$tmp/body" >/dev/null &&
    same '["custom_metadata","custom_origin_server","custom_origin_sni"]' '["bundle_method","method"]' &&
    ok "method stored" || bad "method PATCH"
hpatch "$HN_EC" '{"ssl":{"method":"http","type":"dv","wildcard":false,"settings":{"min_tls_version":"1.2","http2":"on","ciphers":["ECDHE-RSA-AES128-GCM-SHA256"]}}}'
expect 202 - "re-validation PATCH with wildcard and settings"
cp "$tmp/body" "$tmp/pp-1.json"
jq -e '.result.ssl.method == "http" and .result.ssl.wildcard == false and
    .result.ssl.settings == {"min_tls_version":"1.2","http2":"on","ciphers":["ECDHE-RSA-AES128-GCM-SHA256"]}' \
    "$tmp/body" >/dev/null && ok "wildcard and settings stored" || bad "settings PATCH"
for b in '{"ssl":{"method":"carrier-pigeon","type":"dv"}}:1432' '{"ssl":{"method":"http","type":"ev"}}:1433' \
    '{"ssl":{"settings":{"http2":"maybe"}}}:1422' '{"ssl":{"settings":{"tls_1_3":1}}}:1424' \
    '{"ssl":{"settings":{"min_tls_version":"1.4"}}}:1425' '{"ssl":{"settings":{"ciphers":"x"}}}:1442' \
    '{"ssl":{"settings":{"min_tls_version":"1.3","ciphers":["x"]}}}:1443' \
    '{"ssl":{"settings":{"colour":"blue"}}}:1434' '{"ssl":{"custom_key":"k"}}:1434' \
    '{"custom_origin_server":"*.origin.acme-corp.co.uk"}:1420' '{"custom_origin_server":"a b"}:1415' \
    '{"custom_origin_server":"origin.test"}:1417' '{"custom_origin_sni":"co.uk"}:1418' \
    '{"custom_origin_server":"origin.example.com"}:1419' '{"custom_origin_server":"ö.acme-corp.co.uk"}:1416'; do
	hpatch "$HN_EC" "${b%:*}"; expect 400 "${b##*:}" "PATCH ${b%:*}"
done
for b in '{"custom_metadata":{"a":1}}' '{"custom_metadata":"x"}' '{"ssl":{"wildcard":"yes"}}' \
    '{"ssl":{"settings":[]}}' '{"ssl":{"method":7}}'; do
	hpatch "$HN_EC" "$b"; expect 400 1400 "PATCH $b (wrong type)"
done
hpatch "$HN_EC" "$(python3 -c 'import json; print(json.dumps({"custom_metadata": {"k": "v" * 5000}}))')"
expect 400 1401 "metadata over 4096 bytes"
req GET "$HN/$HN_EC" -H "$(W)"
jq -e --slurpfile n "$tmp/pp-1.json" '.result == $n[0].result' "$tmp/body" >/dev/null &&
    ok "refused PATCHes changed nothing; GET echoes every field" || bad "GET after PATCHes"
req GET "$HN?id=$HN_EC" -H "$(W)"
jq -e --slurpfile n "$tmp/pp-1.json" '.result == [$n[0].result]' "$tmp/body" >/dev/null &&
    ok "list echoes every field" || bad "list echo"
hpatch "$HN_EC" '{"custom_origin_server":"","custom_origin_sni":"","custom_metadata":{}}'
expect 202 - "origin cleared"
jq -e '(.result | has("custom_origin_server") | not) and (.result | has("custom_origin_sni") | not) and
    .result.custom_metadata == {}' "$tmp/body" >/dev/null && ok "origin and metadata cleared" || bad "clear"
hpost "$(hn_body meta.shop.acme-corp.co.uk "$CSR_EC" "$good" '{"method":"email","wildcard":true}' |
    jq -c '. + {custom_origin_server: "origin.acme-corp.co.uk", custom_metadata: {a: "b"}}')"
if [ "$st" = 201 ]; then
	jq -e '.result.ssl.method == "email" and .result.ssl.wildcard == true and
	    .result.custom_origin_server == "origin.acme-corp.co.uk" and .result.custom_metadata == {a: "b"}' \
	    "$tmp/body" >/dev/null && ok "POST stores the optional fields" || bad "POST optional fields"
	req DELETE "$HN/$(jq -r .result.id "$tmp/body")" -H "$(W)"
else
	echo "# (POST of meta.shop skipped: $st)"
fi
hpost "$(hn_body bad.shop.acme-corp.co.uk "$CSR_EC" "$good" '{"method":"pigeon"}')"
expect 400 1432 "POST with a bad method"

echo "# == the seed's lifecycle: CSR, CA signs, two hostnames, CSR in use, deletes, key gone"
SEED=$(csr_new "$Z" "$KC_TOKEN_W" p256v1 app.acme-corp.co.uk) || exit 1
sign "$tmp/$SEED.csr" "$tmp/seed.pem" 'DNS:app.acme-corp.co.uk,DNS:www.acme-corp.co.uk' sha256
hpost "$(hn_body app.acme-corp.co.uk "$SEED" "$tmp/seed.pem.chain")"; expect 201 - "seed: app"
H1=$(jq -r .result.id "$tmp/body")
hpost "$(hn_body www.acme-corp.co.uk "$SEED" "$tmp/seed.pem.chain")"; expect 201 - "seed: www"
H2=$(jq -r .result.id "$tmp/body")
p11tool --list-objects --type privkey 2>/dev/null | grep -q "label: *keycustody:$SEED\$" &&
    ok "seed: key in the token" || bad "seed: key not in the token"
req DELETE "$CSRS/$SEED" -H "$(W)"; expect 409 1420 "seed: CSR delete refused while in use"
jq -e '.errors[0].message | startswith("The custom CSR is associated with an active certificate pack.")' \
    "$tmp/body" >/dev/null && ok "1420 message" || bad "1420 message"
req GET "$CSRS/$SEED" -H "$(W)"; expect 200 - "seed: CSR still there"
p11tool --list-objects --type privkey 2>/dev/null | grep -q "label: *keycustody:$SEED\$" &&
    ok "seed: key still in the token" || bad "seed: key destroyed by a refused delete"
req DELETE "$HN/$H1" -H "$(R)"; expect 403 10000 "seed: reader may not delete"
req DELETE "$HN/$H1" -H "$(W)"
if [ "$st" = 200 ] && grep -qi '^content-type: application/json' "$tmp/hdr" &&
    jq -e --arg id "$H1" '. == {"id": $id}' "$tmp/body" >/dev/null; then
	ok "seed: delete app, bare {\"id\"} body"
else
	bad "seed: delete app: $st"
fi
req DELETE "$CSRS/$SEED" -H "$(W)"; expect 409 1420 "seed: CSR delete still refused (www)"
req DELETE "$HN/$H2" -H "$(W)"
[ "$st" = 200 ] && jq -e --arg id "$H2" '. == {"id": $id}' "$tmp/body" >/dev/null &&
    ok "seed: delete www, bare body" || bad "seed: delete www: $st"
req DELETE "$HN/$H2" -H "$(W)"; expect 404 1436 "seed: delete twice"
req GET "$HN/$H1" -H "$(W)"; expect 404 1436 "seed: get after delete"
req DELETE "$CSRS/$SEED" -H "$(W)"; expect 200 - "seed: CSR delete succeeds"
jq -e --arg id "$SEED" '.result == {"id": $id}' "$tmp/body" >/dev/null &&
    ok "seed: CSR delete result" || bad "seed: CSR delete result"
if p11tool --list-objects >"$tmp/objects" 2>&1 && ! grep -q "keycustody:$SEED" "$tmp/objects"; then
	ok "seed: pkcs11-tool no longer lists the key"
else
	bad "seed: key still listed (or pkcs11-tool failed)"
fi
grep -q "keycustody:$CSR_EC\$" "$tmp/objects" && ok "other keys untouched" || bad "other keys gone"

echo "# == bundle_method: a leaf alone, completed from an intermediate the trust store knows"
kc_stop_daemon
printf 'trust_bundle = %s\n' "$ca/inter.pem" >>"$KC_TMP/keycustodyd.conf"
kc_start_daemon || { echo "Bail out: daemon did not restart"; exit 1; }
sign "$tmp/$CSR_EC.csr" "$tmp/alone.pem" 'DNS:alone.shop.acme-corp.co.uk' sha256
hpost "$(hn_body alone.shop.acme-corp.co.uk "$CSR_EC" "$tmp/alone.pem" '{"bundle_method":"force"}')"
expect 400 1441 "force: a leaf alone is not completed"
hpost "$(hn_body alone.shop.acme-corp.co.uk "$CSR_EC" "$tmp/alone.pem")"
expect 201 - "ubiquitous: a leaf alone is completed from the known intermediate"
HN_ALONE=$(jq -r .result.id "$tmp/body")
cp "$tmp/body" "$tmp/alone.json"
jq -r .result.ssl.certificate_chain "$tmp/body" >"$tmp/alone.stored"
[ "$(grep -c 'BEGIN CERTIFICATE' "$tmp/alone.stored")" = 2 ] &&
    openssl verify -CAfile "$ca/root.pem" -untrusted "$tmp/alone.stored" "$tmp/alone.stored" \
    >/dev/null 2>&1 && ok "the chain built is the leaf and its intermediate, and verifies" ||
    bad "stored chain: $(grep -c 'BEGIN CERTIFICATE' "$tmp/alone.stored") certificates"
jq -j .result.ssl.custom_certificate "$tmp/body" | cmp -s - "$tmp/alone.pem" &&
    ok "custom_certificate is the leaf alone, as uploaded" || bad "custom_certificate not the upload"
# A bundle_method PATCH rebuilds the chain from the upload, with the upload's checks.
hpatch "$HN_ALONE" '{"ssl":{"bundle_method":"force"}}'
expect 400 1441 "bundle_method force on a leaf alone: no chain, refused"
req GET "$HN/$HN_ALONE" -H "$(W)"
jq -e --slurpfile o "$tmp/alone.json" '.result == $o[0].result' "$tmp/body" >/dev/null &&
    ok "the refused re-bundle changed nothing" || bad "refused re-bundle changed the record"
hpatch "$HN_ALONE" '{"ssl":{"bundle_method":"optimal"}}'
expect 202 - "bundle_method optimal: re-bundled"
jq -e --slurpfile o "$tmp/alone.json" '.result.ssl.bundle_method == "optimal" and
    .result.ssl.certificate_chain == $o[0].result.ssl.certificate_chain and
    .result.ssl.uploaded_on == $o[0].result.ssl.uploaded_on and
    .result.ssl.custom_certificate == $o[0].result.ssl.custom_certificate' "$tmp/body" \
    >/dev/null && ok "optimal completes the same chain; uploaded_on and the upload kept" ||
    bad "re-bundle optimal"
# With the intermediate gone from the trust store, a re-bundle finds no path: refused,
# and the chain stored before stays.
kc_stop_daemon
sed -i "\|^trust_bundle = $ca/inter.pem\$|d" "$KC_TMP/keycustodyd.conf"
kc_start_daemon || { echo "Bail out: daemon did not restart"; exit 1; }
kc_http_wait "$tmp/http.log" || { echo "Bail out: the shim did not recover"; exit 1; }
hpatch "$HN_ALONE" '{"ssl":{"bundle_method":"ubiquitous"}}'
expect 400 1441 "re-bundle without the intermediate in the trust store"
req GET "$HN/$HN_ALONE" -H "$(W)"
jq -e '.result.ssl.bundle_method == "optimal"' "$tmp/body" >/dev/null &&
    cmp -s "$tmp/alone.stored" "$(jq -r .result.ssl.certificate_chain "$tmp/body" >"$tmp/alone.now"; echo "$tmp/alone.now")" &&
    ok "the refused re-bundle kept the chain" || bad "refused re-bundle changed the chain"
req DELETE "$HN/$HN_ALONE" -H "$(W)"; expect 200 - "delete the completed hostname"

echo "# == deleting the rest; the CSRs they used become deletable"
for id in "$HN_EC" "$HN_A" "$HN_RSA" "$HN_C"; do
	req DELETE "$HN/$id" -H "$(W)"
	[ "$st" = 200 ] && jq -e --arg id "$id" '. == {"id": $id}' "$tmp/body" >/dev/null &&
	    ok "delete $id" || bad "delete $id: $st"
done
req GET "$HN" -H "$(W)"
jq -e '.result == [] and .result_info.total_count == 0' "$tmp/body" >/dev/null &&
    ok "no hostname left" || bad "hostnames left"
for id in "$CSR_EC" "$CSR_EC2" "$CSR_RSA"; do
	req DELETE "$CSRS/$id" -H "$(W)"; expect 200 - "CSR $id deletable"
done
kill -0 "$KC_HTTP_PID" 2>/dev/null && ok "shim alive" || bad "shim died"
command -v kc_check_sanitizer_log >/dev/null && kc_check_sanitizer_log "$tmp/http.log" keycustody-http

kc_done
