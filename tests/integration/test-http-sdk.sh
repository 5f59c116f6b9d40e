#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-http-sdk.sh: the official Cloudflare TypeScript SDK (npm `cloudflare` 7, from the
# committed package.json and lock file) against keycustody-http over the real daemon; every
# CSR it received must pass `openssl req -verify` (issue 3).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
. "$here/http-common.sh"
for p in node npm curl openssl python3; do
	command -v $p >/dev/null 2>&1 || { echo "SKIP: $p missing"; exit 77; }
done
kc_setup || exit 1
tmp=$KC_TMP/sdk
mkdir -p "$tmp"
cleanup()
{
	kc_stop_http
	kc_cleanup
}
trap cleanup EXIT

# npm ci in a copy: the source tree may be read-only (make distcheck).
mkdir "$tmp/sdk" "$tmp/pem"
cp "$here/sdk/package.json" "$here/sdk/package-lock.json" "$here/sdk/test-sdk.mjs" "$tmp/sdk/"
(cd "$tmp/sdk" && npm ci --no-audit --no-fund --loglevel=error) || {
	echo "FAIL: npm ci (is the npm registry reachable?)"; exit 1; }

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
