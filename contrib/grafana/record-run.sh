#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# record-run.sh OUTDIR [SECONDS]: a real run to draw docs/metrics-dashboard.png from. Starts
# keycustodyd (over tests/p11-fault in front of a fresh SoftHSM2 token) and keycustody-http
# as the integration tests do, drives CSR creates, gets and deletes for SECONDS (default
# 60), makes the token fail (CKR_DEVICE_ERROR) through the middle fifth, and saves a scrape
# of /metrics every 2 s as OUTDIR/<unix time>.prom. Run from a build directory:
#   top_builddir=$PWD top_srcdir=.. sh ../contrib/grafana/record-run.sh /tmp/run
#   python3 ../contrib/grafana/plot-run.py /tmp/run ../docs/metrics-dashboard.png
set -u
out=${1:?usage: record-run.sh OUTDIR [SECONDS]}
secs=${2:-60}
here=${top_srcdir:?set top_srcdir and top_builddir}/tests/integration
. "$here/common.sh"
. "$here/http-common.sh"
mkdir -p "$out"
kc_fault_module
kc_setup || exit 1
tmp=$KC_TMP/http
mkdir -p "$tmp"
trap 'kc_stop_http; kc_cleanup' EXIT
kc_start_http "$tmp" || exit 1
murl=${KC_HTTP_URL%/client/v4}/metrics
body='{"country":"US","state":"MA","locality":"Boston","organization":"City of Boston","common_name":"run.acme-corp.co.uk","sans":["run.acme-corp.co.uk"],"key_type":"%s"}'

start=$(date +%s)
(
	n=0
	while [ $(( $(date +%s) - start )) -lt "$secs" ]; do
		n=$((n + 1))
		kt=p256v1
		[ $((n % 5)) -eq 0 ] && kt=rsa2048
		id=$(curl -sS -H "Authorization: Bearer $KC_TOKEN_W" -d "$(printf "$body" $kt)" \
		    "$KC_HTTP_URL/zones/$KC_ZONE/custom_csrs" | jq -r '.result.id // empty')
		[ -n "$id" ] || { sleep 0.3; continue; }
		curl -sS -o /dev/null -H "Authorization: Bearer $KC_TOKEN_W" \
		    "$KC_HTTP_URL/zones/$KC_ZONE/custom_csrs/$id"
		[ $((n % 3)) -eq 0 ] && curl -sS -o /dev/null -X DELETE \
		    -H "Authorization: Bearer $KC_TOKEN_W" "$KC_HTTP_URL/zones/$KC_ZONE/custom_csrs/$id"
		sleep 0.1
	done
) &
load=$!
fault_on=$((secs * 2 / 5))
fault_off=$((secs * 3 / 5))
while kill -0 $load 2>/dev/null; do
	now=$(date +%s)
	t=$((now - start))
	if [ $t -ge $fault_on ] && [ $t -lt $fault_off ]; then
		faults "C_GenerateKeyPair CKR_DEVICE_ERROR always" \
		    "C_GetSessionInfo CKR_DEVICE_ERROR always" "C_Initialize CKR_DEVICE_ERROR always"
	else
		faults
	fi
	curl -sS -o "$out/$now.prom" "$murl"
	sleep 2
done
wait $load
kc_stop_http
echo "$(ls "$out" | wc -l) scrapes in $out"
