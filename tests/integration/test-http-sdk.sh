#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-http-sdk.sh: the official Cloudflare TypeScript SDK (npm `cloudflare` 7, from the
# committed package.json and lock file) against keycustody-http over the real daemon; every
# CSR it received must pass `openssl req -verify` (issue 3). Then its custom hostnames, with
# certificates from a CA made here that the daemon trusts (issue 4).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
. "$here/http-common.sh"
for p in node npm curl openssl python3; do
	command -v $p >/dev/null 2>&1 || { echo "SKIP: $p missing"; exit 77; }
done
tmp=$KC_TMP/sdk
ca=$tmp/ca
mkdir -p "$ca"
cleanup()
{
	kc_stop_http
	kc_cleanup
}
trap cleanup EXIT

# npm ci in a copy: the source tree may be read-only (make distcheck).
mkdir "$tmp/sdk" "$tmp/pem"
cp "$here/sdk/package.json" "$here/sdk/package-lock.json" "$here/sdk/test-sdk.mjs" \
    "$here/sdk/test-sdk-hostnames.mjs" "$tmp/sdk/"
(cd "$tmp/sdk" && npm ci --no-audit --no-fund --loglevel=error) || {
	echo "FAIL: npm ci (is the npm registry reachable?)"; exit 1; }

# A root for the daemon's trust_bundle, and the intermediate that signs for the customer.
printf '%s\n' 'basicConstraints=critical,CA:TRUE,pathlen:0' \
    'keyUsage=critical,keyCertSign,cRLSign' >"$ca/inter.ext"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$ca/root.key" -out "$ca/root.pem" \
    -days 3650 -sha256 -subj '/O=Acme Test Trust/CN=Acme Test Root CA' \
    -addext 'basicConstraints=critical,CA:TRUE' \
    -addext 'keyUsage=critical,keyCertSign,cRLSign' >"$tmp/ossl.out" 2>&1 &&
openssl req -new -newkey rsa:2048 -nodes -keyout "$ca/inter.key" -out "$ca/inter.csr" \
    -subj '/O=Acme Corp Issuing/CN=Acme Issuing CA 1' >>"$tmp/ossl.out" 2>&1 &&
openssl x509 -req -in "$ca/inter.csr" -CA "$ca/root.pem" -CAkey "$ca/root.key" \
    -set_serial 4096 -days 1825 -sha256 -extfile "$ca/inter.ext" -out "$ca/inter.pem" \
    >>"$tmp/ossl.out" 2>&1 || { echo "FAIL: test CA"; cat "$tmp/ossl.out"; exit 1; }
kc_token
printf 'trust_bundle = %s\n' "$ca/root.pem" >>"$KC_TMP/keycustodyd.conf"
kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }

kc_start_http "$tmp" || exit 1
# Zone 2 is empty and only this test uses it: the list must see exactly its 12 CSRs.
(cd "$tmp/sdk" && KC_ZONE=$KC_ZONE2 KC_TOKEN=$KC_TOKEN_Z2 KC_SDK_OUT="$tmp/pem" \
    node test-sdk.mjs) || exit 1
n=0
for f in "$tmp"/pem/*.pem; do
	openssl req -in "$f" -noout -verify >/dev/null 2>&1 || { echo "FAIL: $f"; exit 1; }
	n=$((n + 1))
done
[ "$n" -eq 12 ] || { echo "FAIL: $n CSRs saved, want 12"; exit 1; }
echo "sdk: $n CSRs verified with openssl"
# Zone 1: custom hostnames for a CSR of its own.
(cd "$tmp/sdk" && KC_TOKEN=$KC_TOKEN_W KC_CA_DIR=$ca node test-sdk-hostnames.mjs) || exit 1
