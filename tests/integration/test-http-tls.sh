#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-http-tls.sh: keycustody-http over TLS (issue 6, point 5), driven with curl and
# openssl s_client against certificates made here: the API unchanged over https (JSON,
# keep-alive, the 400/1400 of a 3 MiB body), TLS 1.2 at least and AEAD suites only, plain
# HTTP refused, no renegotiation, mutual TLS (no certificate, another CA's, the right one), the key file's
# mode, one-line start-up errors, and the configuration file (-f).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
. "$here/http-common.sh"
for p in curl jq openssl python3 timeout; do
	command -v $p >/dev/null 2>&1 || { echo "SKIP: $p missing"; exit 77; }
done
kc_setup || exit 1
tmp=$KC_TMP/http
pki=$KC_TMP/pki
mkdir -p "$tmp" "$pki"
cleanup()
{
	kc_stop_http
	kc_cleanup
}
trap cleanup EXIT

# ok/not_ok/kc_done come from common.sh; bad, req, W and expect from http-common.sh

# mkcert NAME ISSUER EXT: an EC P-256 key NAME.key (0600) and certificate NAME.pem issued
# by ISSUER (self-signed when ISSUER is -), with the extensions EXT (one per line).
mkcert()
{
	printf '%b\n' "$3" >"$pki/$1.ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$pki/$1.key" -out "$pki/$1.csr" -subj "/CN=kc-test $1" 2>/dev/null ||
	    return 1
	chmod 600 "$pki/$1.key"
	if [ "$2" = - ]; then
		openssl x509 -req -in "$pki/$1.csr" -key "$pki/$1.key" -days 2 \
		    -extfile "$pki/$1.ext" -out "$pki/$1.pem" 2>/dev/null
	else
		openssl x509 -req -in "$pki/$1.csr" -CA "$pki/$2.pem" -CAkey "$pki/$2.key" \
		    -CAcreateserial -days 2 -extfile "$pki/$1.ext" -out "$pki/$1.pem" 2>/dev/null
	fi
}
CA='basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign'
mkcert ca - "$CA" &&
    mkcert other-ca - "$CA" &&
    mkcert server ca 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth' &&
    mkcert client ca 'extendedKeyUsage=clientAuth' &&
    mkcert rogue other-ca 'extendedKeyUsage=clientAuth' ||
    { echo "Bail out: openssl could not make the test certificates"; exit 1; }

CSRS=/zones/$KC_ZONE/custom_csrs
body='{"country":"US","state":"MA","locality":"Boston","organization":"City of Boston","common_name":"tls.acme-corp.co.uk","sans":["tls.acme-corp.co.uk"],"key_type":"p256v1"}'

echo "# == start-up errors: one line, exit 1"
kc_http_creds "$tmp" || { echo "Bail out: credentials"; exit 1; }
# fails DESCRIPTION PATTERN ARGS...: the shim refuses to start: status 1, one line on
# standard error, matching PATTERN.
fails()
{
	d=$1; pat=$2; shift 2
	# timeout: a shim that starts instead of refusing fails the check, not the run.
	timeout 30 "$KC_HTTP" -d -l 127.0.0.1 -p "$(kc_free_port)" -s "$KEYCUSTODY_SOCKET" \
	    -c "$tmp/credentials" "$@" >"$tmp/fail.out" 2>"$tmp/fail.err" </dev/null
	rc=$?
	cat "$tmp/fail.out" "$tmp/fail.err" >>"$tmp/fail.all"
	n=$(wc -l <"$tmp/fail.err")
	if [ $rc -eq 1 ] && [ "$n" -eq 1 ] && grep -q -- "$pat" "$tmp/fail.err"; then
		ok "$d"
	else
		not_ok "$d: status $rc, $n line(s)"; sed 's/^/#   /' "$tmp/fail.err" | head -5
	fi
}
cp "$pki/server.key" "$pki/open.key"
chmod 644 "$pki/open.key"
fails "a key file with mode 0644" 'mode 644 lets others read it' \
    --tls-cert "$pki/server.pem" --tls-key "$pki/open.key"
chmod 640 "$pki/open.key"
fails "a key file with mode 0640" 'mode 640' \
    --tls-cert "$pki/server.pem" --tls-key "$pki/open.key"
fails "a certificate without its key" 'needs its key' --tls-cert "$pki/server.pem"
fails "a key without its certificate" 'needs its key' --tls-key "$pki/server.key"
fails "a client CA without TLS" 'client CA needs TLS' --tls-client-ca "$pki/ca.pem"
fails "a missing key file" 'TLS key .*No such file' \
    --tls-cert "$pki/server.pem" --tls-key "$pki/none.key"
fails "a missing certificate" "TLS certificate $pki/none.pem" \
    --tls-cert "$pki/none.pem" --tls-key "$pki/server.key"
fails "a key of another certificate" 'does not match the certificate' \
    --tls-cert "$pki/server.pem" --tls-key "$pki/client.key"
cp "$pki/server.pem" "$pki/server.pem.key"; chmod 600 "$pki/server.pem.key"
fails "a certificate given as the key" 'no usable PEM private key' \
    --tls-cert "$pki/server.pem" --tls-key "$pki/server.pem.key"
openssl ec -in "$pki/server.key" -aes256 -passout pass:secret -out "$pki/enc.key" 2>/dev/null
chmod 600 "$pki/enc.key"
fails "an encrypted key (no prompt)" 'no usable PEM private key' \
    --tls-cert "$pki/server.pem" --tls-key "$pki/enc.key"
fails "a client CA file without certificates" 'TLS client CA' \
    --tls-cert "$pki/server.pem" --tls-key "$pki/server.key" --tls-client-ca "$pki/server.ext"
keyline=$(sed -n 2p "$pki/server.key")
grep -q -e 'PRIVATE KEY' -e "$keyline" "$tmp/fail.all" &&
    not_ok "key material in an error" || ok "no key material in the errors"

echo "# == TLS: the API over https"
KC_HTTP_SCHEME=https
KC_CURL_TLS="--cacert $pki/ca.pem"
export KC_HTTP_SCHEME KC_CURL_TLS
kc_http_run "$tmp" --tls-cert "$pki/server.pem" --tls-key "$pki/server.key" ||
    { echo "Bail out: the TLS shim did not start"; exit 1; }
grep -q "port $KC_HTTP_PORT (TLS)" "$tmp/http.log" && ok "the log says TLS" || bad "log: no TLS"
req GET /healthz; expect 200 - "healthz over TLS"
req POST $CSRS -H "$(W)" -d "$body"; expect 201 - "create over TLS"
id=$(jq -r .result.id "$tmp/body")
req GET $CSRS -H "$(W)"; expect 200 - "list over TLS"
jq -e --arg id "$id" '[.result[].id] | index($id) != null' "$tmp/body" >/dev/null &&
    ok "the new CSR is listed" || bad "the new CSR is not listed"
req GET $CSRS/$id -H "Authorization: Bearer $KC_TOKEN_R"; expect 200 - "get, read token"
req GET /nope -H "$(W)"; expect 400 7003 "unknown route over TLS"
req DELETE $CSRS/$id -H "$(W)"; expect 200 - "delete over TLS"
# shellcheck disable=SC2086
st=$(curl -sS $KC_CURL_TLS -o "$tmp/body" -w '%{http_code}' "${KC_HTTP_URL%/client/v4}/metrics")
[ "$st" = 200 ] && grep -q '^keycustody_http_requests_total{route="create_csr",status="201"} 1' \
    "$tmp/body" && ok "metrics over TLS" || bad "metrics over TLS: $st"
# Keep-alive: three requests on one connection, one TLS handshake.
# shellcheck disable=SC2086
n=$(curl -sS $KC_CURL_TLS -o /dev/null -o /dev/null -o /dev/null -w '%{num_connects}\n' \
    -H "$(W)" "$KC_HTTP_URL$CSRS" "$KC_HTTP_URL/healthz" "$KC_HTTP_URL$CSRS" | tr '\n' ' ')
[ "$n" = "1 0 0 " ] && ok "keep-alive over TLS" || not_ok "keep-alive over TLS: connects $n"
# shellcheck disable=SC2086
v=$(curl -sS $KC_CURL_TLS -o /dev/null -w '%{http_code}' --tls-max 1.2 "$KC_HTTP_URL/healthz")
check_eq "TLS 1.2 is accepted" 200 "$v"

echo "# == over 1 MiB over TLS: JSON 400/1400, the answer not lost"
python3 -c 'import sys; sys.stdout.write("{\"x\":\"" + "a" * (3 << 20) + "\"}")' >"$tmp/3m.json"
req POST $CSRS -H "$(W)" --data-binary @"$tmp/3m.json"; expect 400 1400 "a body of 3 MiB"
req POST $CSRS -H "$(W)" -H 'Expect:' --data-binary @"$tmp/3m.json"
expect 400 1400 "a body of 3 MiB, no Expect"
req POST $CSRS -H "$(W)" -H 'Transfer-Encoding: chunked' --data-binary @"$tmp/3m.json"
expect 400 1400 "a chunked body of 3 MiB"
grep -qi '^connection: close' "$tmp/hdr" && ok "connection: close" || bad "no connection: close"
req GET /healthz; expect 200 - "healthz after the big bodies"

echo "# == what TLS refuses"
st=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$KC_HTTP_PORT/client/v4/healthz" \
    2>"$tmp/curl.err")
rc=$?
[ $rc -ne 0 ] && [ "$st" = 000 ] && ok "plain HTTP to the TLS port fails (curl $rc)" ||
    not_ok "plain HTTP to the TLS port: curl $rc, status $st"
# shellcheck disable=SC2086
curl -sS $KC_CURL_TLS -o /dev/null --tls-max 1.1 "$KC_HTTP_URL/healthz" 2>"$tmp/curl.err"
rc=$?
[ $rc -eq 35 ] && ok "curl --tls-max 1.1: handshake failure" ||
    not_ok "curl --tls-max 1.1: curl $rc $(cat "$tmp/curl.err")"
# The server's refusal, not the client's: a client that offers TLS 1.1 at any security
# level gets the server's protocol_version alert.
echo Q | timeout 30 openssl s_client -connect "127.0.0.1:$KC_HTTP_PORT" -tls1_1 \
    -cipher 'DEFAULT:@SECLEVEL=0' >"$tmp/s_client.out" 2>&1
grep -qi 'alert protocol version' "$tmp/s_client.out" &&
    ok "TLS 1.1: the server answers protocol_version" ||
    { not_ok "TLS 1.1 not refused by the server"; sed 's/^/#   /' "$tmp/s_client.out" | head -8; }
# shellcheck disable=SC2086
curl -sS $KC_CURL_TLS -o /dev/null --tls-max 1.2 --ciphers ECDHE-ECDSA-AES128-SHA \
    "$KC_HTTP_URL/healthz" 2>"$tmp/curl.err"
rc=$?
[ $rc -eq 35 ] && ok "TLS 1.2 with a CBC suite is refused" ||
    not_ok "TLS 1.2 with a CBC suite: curl $rc"
# A TLS 1.2 client asking to renegotiate gets the no_renegotiation alert.
(sleep 0.5; echo R; sleep 1) | timeout 30 openssl s_client -connect "127.0.0.1:$KC_HTTP_PORT" -tls1_2 \
    -CAfile "$pki/ca.pem" >"$tmp/s_client.out" 2>&1
grep -q 'no renegotiation' "$tmp/s_client.out" && ok "renegotiation is refused" ||
    { not_ok "renegotiation not refused"; sed 's/^/#   /' "$tmp/s_client.out" | tail -5; }
# No client certificate asked without --tls-client-ca: a client that has one still works.
# shellcheck disable=SC2086
v=$(curl -sS $KC_CURL_TLS --cert "$pki/rogue.pem" --key "$pki/rogue.key" -o /dev/null \
    -w '%{http_code}' "$KC_HTTP_URL/healthz")
check_eq "a client certificate is not needed without a client CA" 200 "$v"
kc_stop_http
grep -q -e BEGIN -e PRIVATE -e "$keyline" "$tmp/http.log" && not_ok "key material in the log" ||
    ok "no key material in the log"
kc_check_sanitizer_log "$tmp/http.log" keycustody-http

echo "# == mutual TLS, from a configuration file (options override it)"
port=$(kc_free_port)
cat >"$tmp/http.conf" <<EOF
# keycustody-http test configuration
listen = 127.0.0.1
port = 1
socket = $KEYCUSTODY_SOCKET
credentials = $tmp/credentials
tls_cert = $pki/server.pem
tls_key  =   $pki/server.key
tls_client_ca = $pki/ca.pem	# the gateway's CA
metrics = no
connections = 2
timeout_ms = 30000
EOF
out=$("$KC_HTTP" -n -f "$tmp/http.conf" 2>&1)
check_eq "-n with the file" "configuration OK: 4 credential(s), TLS with client certificates" "$out"
"$KC_HTTP" -d -f "$tmp/http.conf" -p "$port" >"$tmp/http.log" 2>&1 &
KC_HTTP_PID=$!
KC_HTTP_URL=https://127.0.0.1:$port/client/v4
KC_HTTP_PORT=$port
KC_CURL_TLS="--cacert $pki/ca.pem --cert $pki/client.pem --key $pki/client.key"
kc_http_wait "$tmp/http.log" || { echo "Bail out: the mTLS shim did not start"; exit 1; }
grep -q "port $port (TLS, client certificates required)" "$tmp/http.log" &&
    ok "-p overrides the file's port" || bad "log: $(tail -1 "$tmp/http.log")"
req GET /healthz; expect 200 - "healthz with the client certificate"
req POST $CSRS -H "$(W)" -d "$body"; expect 201 - "create with the client certificate"
req GET $CSRS -H "$(W)"; expect 200 - "list with the client certificate"
req GET /metrics; expect 400 7003 "metrics = no"
st=$(curl -sS --cacert "$pki/ca.pem" -o /dev/null -w '%{http_code}' "$KC_HTTP_URL/healthz" \
    2>"$tmp/curl.err")
rc=$?
[ $rc -ne 0 ] && [ "$st" = 000 ] && ok "no client certificate: refused (curl $rc)" ||
    not_ok "no client certificate: curl $rc, status $st"
st=$(curl -sS --cacert "$pki/ca.pem" --cert "$pki/rogue.pem" --key "$pki/rogue.key" \
    -o /dev/null -w '%{http_code}' "$KC_HTTP_URL/healthz" 2>"$tmp/curl.err")
rc=$?
[ $rc -ne 0 ] && [ "$st" = 000 ] && ok "another CA's client certificate: refused (curl $rc)" ||
    not_ok "another CA's client certificate: curl $rc, status $st"
# The server's certificate is not a client one (serverAuth only), though the CA signed it.
st=$(curl -sS --cacert "$pki/ca.pem" --cert "$pki/server.pem" --key "$pki/server.key" \
    -o /dev/null -w '%{http_code}' "$KC_HTTP_URL/healthz" 2>"$tmp/curl.err")
rc=$?
[ $rc -ne 0 ] && [ "$st" = 000 ] && ok "a certificate without clientAuth: refused (curl $rc)" ||
    not_ok "a certificate without clientAuth: curl $rc, status $st"
req POST $CSRS -H "$(W)" --data-binary @"$tmp/3m.json"; expect 400 1400 "a body of 3 MiB under mutual TLS"
req GET /healthz; expect 200 - "still serving"
kc_stop_http
kc_check_sanitizer_log "$tmp/http.log" keycustody-http

echo "# == configuration file errors: one line naming the file and line"
cfgfails()
{
	d=$1; pat=$2
	timeout 30 "$KC_HTTP" -n -f "$tmp/bad.conf" >"$tmp/fail.out" 2>"$tmp/fail.err"
	rc=$?
	n=$(wc -l <"$tmp/fail.err")
	if [ $rc -eq 1 ] && [ "$n" -eq 1 ] && grep -q -- "$pat" "$tmp/fail.err"; then
		ok "$d"
	else
		not_ok "$d: status $rc, $n line(s)"; sed 's/^/#   /' "$tmp/fail.err" | head -5
	fi
}
printf 'credentials = %s\n\nlisten_on = 0.0.0.0\n' "$tmp/credentials" >"$tmp/bad.conf"
cfgfails "an unknown setting" "bad.conf:3: unknown setting \"listen_on\""
printf 'metrics = maybe\n' >"$tmp/bad.conf"
cfgfails "metrics neither yes nor no" "bad.conf:1: metrics must be yes or no"
printf 'port = 99999\n' >"$tmp/bad.conf"
cfgfails "a port out of range" "bad.conf:1: port must be a number between 1 and 65535"
printf '# c\nport 8080\n' >"$tmp/bad.conf"
cfgfails "a line without =" 'bad.conf:2: expected "key = value"'
printf 'tls_cert =\n' >"$tmp/bad.conf"
cfgfails "an empty value" 'bad.conf:1: tls_cert: empty value'
printf 'credentials = %s\ntls_cert = %s\n' "$tmp/credentials" "$pki/server.pem" >"$tmp/bad.conf"
cfgfails "-n checks TLS too" 'needs its key'
printf 'credentials = %s\ntls_cert = %s\ntls_key = %s\n' "$tmp/credentials" \
    "$pki/server.pem" "$pki/open.key" >"$tmp/bad.conf"
cfgfails "-n checks the key's mode" 'mode 640'
rm -f "$tmp/bad.conf"
cfgfails "a missing file" 'bad.conf: No such file'

kc_done
