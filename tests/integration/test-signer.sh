#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-signer.sh: the signer role of keycustodyd (issue 16), from the daemon's socket with
# a raw client (kc-raw.py keys|sign|signs) run as other uids (setpriv): only a signer
# grant lists keys and signs, each within its scope (a zone, or one hostname of it); only
# keys bound to a hostname sign, and deleting the hostname stops its key at once; the
# signatures (ECDSA, RSA PKCS#1 v1.5 over a DigestInfo, RSA-PSS) verify with openssl
# against the public key listed; bad input is refused; sign_rate holds a flood back; the
# totals reach the audit log (sign_totals) and the metrics.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/http-common.sh"
for p in openssl python3 setpriv; do
	command -v $p >/dev/null 2>&1 || { echo "SKIP: $p missing"; exit 77; }
done
# The other uids run the system's interpreter (root's PATH may name a private one).
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "SKIP: no $PY for the other uids"; exit 77; }
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (runs clients as other uids)"; exit 77; }
getent passwd nobody >/dev/null && getent passwd daemon >/dev/null &&
    getent group nogroup >/dev/null || { echo "SKIP: no nobody/daemon/nogroup"; exit 77; }

ca=$KC_TMP/ca
mkdir -p "$ca"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$ca/root.key" \
    -out "$ca/root.pem" -days 30 -sha256 -subj '/O=Acme Signer Test/CN=Acme Signer Root' \
    -addext 'basicConstraints=critical,CA:TRUE' \
    -addext 'keyUsage=critical,keyCertSign,cRLSign' >/dev/null 2>&1 ||
    { echo "Bail out: CA"; exit 1; }
kc_token
# Clients run as nobody (uid 65534) and daemon (uid 1), both with gid nogroup: the socket's
# group. root stays the default admin, without a signer grant.
chmod 0711 "$KC_TMP"
cat >>"$KC_TMP/keycustodyd.conf" <<EOC
trust_bundle = $ca/root.pem
socket_group = nogroup
signer = nobody $KC_ZONE/shop.acme-corp.co.uk
signer = daemon $KC_ZONE
sign_rate = 100
sign_audit_interval = 1
EOC
kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }
cp "$(dirname "$0")/kc-raw.py" "$KC_TMP/kc-raw.py"
chmod 0644 "$KC_TMP/kc-raw.py"
for u in nobody daemon; do mkdir -p "$KC_TMP/out-$u"; chmod 0777 "$KC_TMP/out-$u"; done

# as UID CMD ARGS...: the raw client's CMD on the daemon's socket as that uid, gid
# nogroup, no other group; raw_root CMD ARGS... as root.
as() {
	_uid=$1 _cmd=$2; shift 2
	setpriv --reuid="$_uid" --regid=nogroup --clear-groups "$PY" "$KC_TMP/kc-raw.py" \
	    "$_cmd" "$KEYCUSTODY_SOCKET" "$@"
}
raw_root() { _cmd=$1; shift; "$PY" "$KC_TMP/kc-raw.py" "$_cmd" "$KEYCUSTODY_SOCKET" "$@"; }
# unhex < HEX > BYTES
unhex() { python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().strip()))'; }

# sign NAME DAYS SANS CSRPEM: the CSR signed by the root.
sign() {
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
	    "$3" >"$ca/$1.ext"
	openssl x509 -req -in "$4" -CA "$ca/root.pem" -CAkey "$ca/root.key" \
	    -CAcreateserial -days "$2" -sha256 -extfile "$ca/$1.ext" -out "$ca/$1.pem" \
	    >/dev/null 2>&1
}
# bind HOSTNAME CSR CERT: a custom hostname; prints its id.
bind() {
	ctl --json hostname create --zone $KC_ZONE --hostname "$1" --csr "$2" --cert "$3" |
	    jget .id
}

kc_csr p256v1 shop.acme-corp.co.uk shop.acme-corp.co.uk www.acme-corp.co.uk >"$KC_TMP/ec.json"
kc_csr rsa2048 pay.acme-corp.co.uk pay.acme-corp.co.uk >"$KC_TMP/rsa.json"
kc_csr p256v1 idle.acme-corp.co.uk idle.acme-corp.co.uk >"$KC_TMP/idle.json"
EC=$(jget .id <"$KC_TMP/ec.json")
RSA=$(jget .id <"$KC_TMP/rsa.json")
EC_KID=$(jget .key_id <"$KC_TMP/ec.json")
RSA_KID=$(jget .key_id <"$KC_TMP/rsa.json")
IDLE_KID=$(jget .key_id <"$KC_TMP/idle.json")
jget .csr <"$KC_TMP/ec.json" >"$ca/ec.csr"
jget .csr <"$KC_TMP/rsa.json" >"$ca/rsa.csr"
sign ec 10 'DNS:shop.acme-corp.co.uk,DNS:www.acme-corp.co.uk' "$ca/ec.csr"
sign rsa 10 'DNS:pay.acme-corp.co.uk' "$ca/rsa.csr"
H_SHOP=$(bind shop.acme-corp.co.uk "$EC" "$ca/ec.pem")
H_WWW=$(bind www.acme-corp.co.uk "$EC" "$ca/ec.pem")
H_PAY=$(bind pay.acme-corp.co.uk "$RSA" "$ca/rsa.pem")
[ -n "$H_SHOP" ] && [ -n "$H_WWW" ] && [ -n "$H_PAY" ] && ok "three hostnames bound" ||
    not_ok "binding the hostnames"

echo "# == who may list"
raw_root keys "$KC_TMP/out-nobody" >"$KC_TMP/root.keys" 2>&1
check "an admin without a signer grant may not list signing keys" \
    grep -q '^error|4|10000|.*need the signer role' "$KC_TMP/root.keys"
as nobody keys "$KC_TMP/out-nobody" >"$KC_TMP/nobody.keys" 2>&1
check_eq "nobody (scope: shop) sees one key" 1 "$(grep -c '^key|' "$KC_TMP/nobody.keys")"
check_eq "... and only the shop certificate" "cert|$EC_KID|shop.acme-corp.co.uk|$KC_ZONE" \
    "$(grep '^cert|' "$KC_TMP/nobody.keys")"
as daemon keys "$KC_TMP/out-daemon" >"$KC_TMP/daemon.keys" 2>&1
check_eq "daemon (scope: the zone) sees both bound keys, not the idle one" \
    "$(printf 'key|%s|p256v1|%s\nkey|%s|rsa2048|%s\n' "$EC_KID" "$EC" "$RSA_KID" "$RSA" |
    sort | tr '\n' ' ')" "$(grep '^key|' "$KC_TMP/daemon.keys" | sort | tr '\n' ' ')"
check_eq "... with three certificates" 3 "$(grep -c '^cert|' "$KC_TMP/daemon.keys")"
openssl x509 -inform DER -in "$KC_TMP/out-daemon/pay.acme-corp.co.uk.der" -noout \
    -fingerprint -sha256 >"$KC_TMP/fp1" 2>/dev/null
openssl x509 -in "$ca/rsa.pem" -noout -fingerprint -sha256 >"$KC_TMP/fp2"
check "the listed certificate is the leaf uploaded" cmp -s "$KC_TMP/fp1" "$KC_TMP/fp2"
for k in "$EC_KID" "$RSA_KID"; do
	openssl pkey -pubin -inform DER -in "$KC_TMP/out-daemon/$k.spki" \
	    -out "$KC_TMP/$k.pub.pem" 2>/dev/null
done
openssl x509 -in "$ca/rsa.pem" -noout -pubkey >"$KC_TMP/rsa-cert.pub.pem"
check "the listed public key is the certificate's" \
    cmp -s "$KC_TMP/$RSA_KID.pub.pem" "$KC_TMP/rsa-cert.pub.pem"
as www-data keys "$KC_TMP/out-nobody" >"$KC_TMP/www.keys" 2>&1
check "a uid without any role is refused at connect" \
    grep -q 'ConnectionError\|ConnectionResetError\|BrokenPipe' "$KC_TMP/www.keys"

echo "# == signatures, verified with openssl"
printf 'the handshake transcript' >"$KC_TMP/msg"
D=$(openssl dgst -sha256 -binary "$KC_TMP/msg" | od -An -tx1 | tr -d ' \n')
printf '%s' "$D" | unhex >"$KC_TMP/digest"
as nobody sign "$EC_KID" 1 "$D" >"$KC_TMP/s-ec" 2>&1
# r || s (PKCS#11) to a DER Ecdsa-Sig-Value for openssl.
python3 - "$KC_TMP/s-ec" "$KC_TMP/s-ec.der" <<'EOF'
import sys
line = open(sys.argv[1]).read().strip()
if not line.startswith("ok|"):
    sys.exit(1)
raw = bytes.fromhex(line[3:])
def der_int(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80:
        b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b
h = len(raw) // 2
body = der_int(raw[:h]) + der_int(raw[h:])
open(sys.argv[2], "wb").write(b"\x30" + bytes([len(body)]) + body)
EOF
check "ECDSA (P-256) as nobody: a 64-byte r || s that verifies" \
    openssl pkeyutl -verify -pubin -inkey "$KC_TMP/$EC_KID.pub.pem" -in "$KC_TMP/digest" \
    -sigfile "$KC_TMP/s-ec.der"
DI=3031300d060960864801650304020105000420$D
as daemon sign "$RSA_KID" 2 "$DI" >"$KC_TMP/s-rsa" 2>&1
sed -n 's/^ok|//p' "$KC_TMP/s-rsa" | unhex >"$KC_TMP/s-rsa.bin"
check "RSA PKCS#1 v1.5 over a DigestInfo(SHA-256) as daemon: verifies" \
    openssl pkeyutl -verify -pubin -inkey "$KC_TMP/$RSA_KID.pub.pem" -in "$KC_TMP/digest" \
    -sigfile "$KC_TMP/s-rsa.bin" -pkeyopt digest:sha256
as daemon sign "$RSA_KID" 3 "$D" 3 3 32 >"$KC_TMP/s-pss" 2>&1
sed -n 's/^ok|//p' "$KC_TMP/s-pss" | unhex >"$KC_TMP/s-pss.bin"
check "RSA-PSS (SHA-256, MGF1 SHA-256, salt 32, as TLS 1.3) as daemon: verifies" \
    openssl pkeyutl -verify -pubin -inkey "$KC_TMP/$RSA_KID.pub.pem" -in "$KC_TMP/digest" \
    -sigfile "$KC_TMP/s-pss.bin" -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss \
    -pkeyopt rsa_pss_saltlen:32

echo "# == refused"
# refused NAME WANT UID ARGS...: the sign answers an error whose status|code is WANT.
refused() {
	_name=$1 _want=$2 _uid=$3; shift 3
	if [ "$_uid" = root ]; then raw_root sign "$@" >"$KC_TMP/r" 2>&1
	else as "$_uid" sign "$@" >"$KC_TMP/r" 2>&1; fi
	if grep -q "^error|$_want|" "$KC_TMP/r"; then ok "$_name"
	else not_ok "$_name: $(head -c 300 "$KC_TMP/r")"; fi
}
refused "nobody may not sign with pay's key (out of its scope)" 4 nobody "$RSA_KID" 2 "$DI"
refused "an admin without a signer grant may not sign" 4 root "$EC_KID" 1 "$D"
refused "a key without a hostname does not sign" 4 daemon "$IDLE_KID" 1 "$D"
refused "an unknown key does not sign" 4 daemon 00112233445566778899aabbccddeeff 1 "$D"
refused "a key id that is not 16 bytes" 1 daemon 0011 1 "$D"
refused "CKM_ECDSA over 31 bytes" 1 daemon "$EC_KID" 1 "$(printf '%s' "$D" | cut -c1-62)"
refused "CKM_RSA_PKCS over raw bytes (no DigestInfo): never raw RSA" 1 daemon "$RSA_KID" 2 "$D"
refused "an RSA mechanism on the EC key" 1 daemon "$EC_KID" 2 "$DI"
refused "ECDSA on the RSA key" 1 daemon "$RSA_KID" 1 "$D"
refused "PSS without its parameters" 1 daemon "$RSA_KID" 3 "$D"
refused "PSS with a digest of the wrong length" 1 daemon "$RSA_KID" 3 "$D" 4 4 48
refused "an unknown mechanism" 1 daemon "$RSA_KID" 9 "$D"
out=$(as nobody keys "$KC_TMP/out-nobody" 2>&1; true)
check "a signer-only peer may not make other requests (health through ctl is an admin's)" \
    sh -c "setpriv --reuid=nobody --regid=nogroup --clear-groups '$KEYCUSTODYCTL' health 2>&1 |
    grep -qi 'signer role may not\|not make health\|permission\|refused'"

echo "# == a deleted hostname stops its key at once"
check "delete shop" ctl hostname delete --zone $KC_ZONE "$H_SHOP"
refused "nobody (scope: shop) can no longer sign with the key" 4 nobody "$EC_KID" 1 "$D"
as nobody keys "$KC_TMP/out-nobody" >"$KC_TMP/nobody2.keys" 2>&1
check_eq "... nor list it" 0 "$(grep -c '^key|' "$KC_TMP/nobody2.keys")"
as daemon sign "$EC_KID" 1 "$D" >"$KC_TMP/s2" 2>&1
check "daemon (scope: the zone) still signs with it: www is still bound" grep -q '^ok|' "$KC_TMP/s2"

echo "# == sign_rate, totals"
sleep 1.1	# a full bucket
as daemon signs "$EC_KID" "$D" 400 >"$KC_TMP/flood" 2>&1
n_ok=$(sed -n 's/^stat|ok|//p' "$KC_TMP/flood")
n_lim=$(sed -n 's/^stat|rate_limited|//p' "$KC_TMP/flood")
echo "# flood of 400 at sign_rate 100: ${n_ok:-?} signed, ${n_lim:-?} rate limited"
[ "${n_lim:-0}" -gt 0 ] && [ "${n_ok:-0}" -ge 100 ] && [ "${n_ok:-0}" -lt 400 ] &&
    ok "sign_rate refuses what a flood asks beyond it (971), after a full bucket" ||
    not_ok "rate limit: ${n_ok:-?} ok, ${n_lim:-?} limited"
sleep 2.2
grep '"op":"sign_totals"' "$KC_TMP/audit.log" >"$KC_TMP/totals" || true
check "audit: periodic sign_totals records, per key and peer uid" \
    grep -q "\"uid\":1,.*\"key_id\":\"$EC_KID\".*\"signed\":[1-9]" "$KC_TMP/totals"
check "audit: nobody's refusals are counted too" \
    grep -q "\"uid\":65534,.*\"key_id\":\"$RSA_KID\".*\"refused\":[1-9]" "$KC_TMP/totals"
check_eq "audit: no line per signature (a few totals only)" yes \
    "$([ "$(wc -l <"$KC_TMP/totals")" -lt 20 ] && echo yes || echo no)"
check "audit trail verifies" ctl audit verify "$KC_TMP/audit.log"
mkdir -p "$KC_TMP/http"
kc_start_http "$KC_TMP/http" || { echo "Bail out: the shim did not start"; exit 1; }
curl -sS -o "$KC_TMP/metrics" "http://127.0.0.1:$KC_HTTP_PORT/metrics"
signed=$(awk -v k="keycustody_signatures_total{key_id=\"$EC_KID\",uid=\"1\",result=\"signed\"}" \
    '$1 == k { print $2 }' "$KC_TMP/metrics")
check_eq "metrics: the zone signer's signatures with the P-256 key" yes \
    "$([ "${signed:-0}" -ge 100 ] && echo yes || echo "no (${signed:-none})")"
check "metrics: nobody's refusals with pay's key" grep -q \
    "^keycustody_signatures_total{key_id=\"$RSA_KID\",uid=\"65534\",result=\"refused\"} [1-9]" \
    "$KC_TMP/metrics"
lim=$(awk '$1 == "keycustody_sign_rate_limited_total" { print $2 }' "$KC_TMP/metrics")
check_eq "metrics: sign_rate's refusals" "${n_lim:-?}" "${lim:-none}"
kc_stop_http
kc_done
