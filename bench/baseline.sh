#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# baseline.sh: what a user scripts without keycustody: per CSR, `pkcs11-tool --keypairgen`
# then `openssl req -new -engine pkcs11` with the new key's RFC 7512 URI; reports CSRs/s
# as a table line and one BASELINE key=value line.
#
# usage: baseline.sh [-n count] [-k p256v1|rsa2048] [-m module] [-t token-label] [-p pin]
# SOFTHSM2_CONF must name the token's configuration.

set -u
count=10
kt=p256v1
module=${KC_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
label=kc-test
pin=1234
while getopts n:k:m:t:p: o; do
	case $o in
	n) count=$OPTARG ;;
	k) kt=$OPTARG ;;
	m) module=$OPTARG ;;
	t) label=$OPTARG ;;
	p) pin=$OPTARG ;;
	*) echo "usage: $0 [-n count] [-k p256v1|rsa2048] [-m module] [-t label] [-p pin]" >&2
	   exit 2 ;;
	esac
done
case $kt in
p256v1) p11kt=EC:prime256v1 ;;
rsa2048) p11kt=rsa:2048 ;;
*) echo "baseline.sh: key type $kt: only p256v1 and rsa2048" >&2; exit 2 ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kc-baseline.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
subj='/C=US/ST=MA/L=Boston/O=City of Boston/OU=Championship Parade Detail/CN=app.acme-corp.co.uk'
san='subjectAltName=DNS:app.acme-corp.co.uk,DNS:www.acme-corp.co.uk,DNS:blog.acme-corp.co.uk,DNS:acme-corp.co.uk'

now() { date +%s.%N; }
ok=0 failed=0
t0=$(now)
i=0
while [ $i -lt "$count" ]; do
	i=$((i + 1))
	id=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
	pct=$(echo "$id" | sed 's/../%&/g')
	if pkcs11-tool --module "$module" --token-label "$label" --login --pin "$pin" \
	    --keypairgen --key-type "$p11kt" --id "$id" --label "baseline-$id" \
	    --usage-sign >"$tmp/keygen.log" 2>&1 &&
	    OPENSSL_CONF=/dev/null PKCS11_MODULE_PATH="$module" openssl req -new \
	    -engine pkcs11 -keyform engine \
	    -key "pkcs11:token=$label;id=$pct;type=private;pin-value=$pin" \
	    -subj "$subj" -addext "$san" -sha256 -out "$tmp/req.pem" >"$tmp/req.log" 2>&1 &&
	    grep -q 'BEGIN CERTIFICATE REQUEST' "$tmp/req.pem"; then
		ok=$((ok + 1))
	else
		failed=$((failed + 1))
		[ $failed -eq 1 ] && sed 's/^/baseline.sh: /' "$tmp/keygen.log" "$tmp/req.log" >&2
	fi
done
t1=$(now)
secs=$(echo "$t0 $t1" | awk '{ printf "%.3f", $2 - $1 }')
rate=$(echo "$ok $secs" | awk '{ printf "%.2f", ($2 > 0 ? $1 / $2 : 0) }')
echo "baseline: $kt, pkcs11-tool + openssl req -engine pkcs11: $ok CSRs in $secs s = $rate/s, $failed failed"
echo "BASELINE key=$kt ok=$ok failed=$failed secs=$secs rate=$rate"
[ $ok -gt 0 ]
