#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-metrics.sh: issue 18 point 3. After a few requests, every metric that docs/METRICS.md
# lists is on the shim's /metrics (the list is read from the doc, so the two cannot drift),
# counts equal the requests made and latency histogram counts the operations; an HSM fault
# (tests/p11-fault) moves the HSM state and the CKR error counter; the bearer token of
# metrics_token_file is enforced (401 without, 200 with) on metrics' own listener, which
# the API's listener leaves alone; with the daemon gone the page still answers, up 0.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
. "$here/http-common.sh"
for p in curl jq python3; do
	command -v $p >/dev/null 2>&1 || { echo "SKIP: $p missing"; exit 77; }
done
kc_fault_module
kc_setup || exit 1
tmp=$KC_TMP/http
mkdir -p "$tmp"
cleanup()
{
	kc_stop_http
	kc_cleanup
}
trap cleanup EXIT

DOC="$top_srcdir/docs/METRICS.md"
MTOKEN=metrics-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
(umask 077; printf '%s\n' "$MTOKEN" >"$tmp/metrics-token")
MPORT=$(kc_free_port)
kc_start_http "$tmp" --metrics-token-file "$tmp/metrics-token" \
    --metrics-listen 127.0.0.1 --metrics-port "$MPORT" || exit 1
MURL=http://127.0.0.1:$MPORT/metrics

# scrape: the metrics page, with the token, into $tmp/m; sets $st.
scrape()
{
	st=$(curl -sS -o "$tmp/m" -w '%{http_code}' -H "Authorization: Bearer $MTOKEN" "$MURL")
}
# m SAMPLE: the value of one sample line of the last scrape (empty when absent).
m() { awk -v k="$1" '$1 == k { v = $2 } END { print v }' "$tmp/m"; }
# check_m DESC SAMPLE WANT: the sample has exactly that value.
check_m() { check_eq "$1" "$3" "$(m "$2")"; }

# --- the credential and the listeners ---
st=$(curl -sS -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' "$MURL")
check_eq "metrics listener: no token is 401" 401 "$st"
grep -qi '^www-authenticate: bearer' "$tmp/hdr" && ok "401 names the Bearer scheme" ||
    not_ok "401 without WWW-Authenticate: Bearer"
st=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $MTOKEN-x" "$MURL")
check_eq "metrics listener: a wrong token is 401" 401 "$st"
st=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KC_TOKEN_W" "$MURL")
check_eq "metrics listener: an API token is not the metrics token (401)" 401 "$st"
scrape
check_eq "metrics listener: the token is 200" 200 "$st"
check_m "daemon up" keycustody_daemon_up 1
st=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $MTOKEN" \
    "http://127.0.0.1:$KC_HTTP_PORT/metrics")
check_eq "API listener: /metrics is not served there (its own listener is set)" 400 "$st"
st=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $MTOKEN" \
    "http://127.0.0.1:$MPORT/client/v4/healthz")
check_eq "metrics listener: serves nothing but /metrics" 400 "$st"

# --- a few requests ---
Z=$KC_ZONE
csr_body()
{
	printf '{"country":"US","state":"MA","locality":"Boston","organization":"City of Boston","common_name":"%s","sans":["%s"],"key_type":"%s"}' "$1" "$1" "$2"
}
ids=
for spec in m1.acme-corp.co.uk:p256v1 m2.acme-corp.co.uk:p256v1 m3.acme-corp.co.uk:rsa2048; do
	req POST /zones/$Z/custom_csrs -H "$(W)" -d "$(csr_body "${spec%%:*}" "${spec#*:}")"
	expect 201 - "create ${spec#*:} CSR"
	ids="$ids $(jq -r .result.id "$tmp/body")"
done
set -- $ids
req GET /zones/$Z/custom_csrs/$1 -H "$(W)"; expect 200 - "get CSR 1"
req GET /zones/$Z/custom_csrs/$2 -H "$(W)"; expect 200 - "get CSR 2"
req GET "/zones/$Z/custom_csrs?per_page=5" -H "$(W)"; expect 200 - "list CSRs"
req DELETE /zones/$Z/custom_csrs/$3 -H "$(W)"; expect 200 - "delete the RSA CSR"
scrape

# --- every name of the doc is on the page ---
names=$(sed -n 's/^| `\(keycustody_[a-z0-9_]*\)` | \([a-z]*\) |.*/\1:\2/p' "$DOC")
n=$(printf '%s\n' "$names" | grep -c .)
[ "$n" -ge 40 ] && ok "docs/METRICS.md lists $n metrics" ||
    not_ok "docs/METRICS.md: only $n metrics parsed"
missing=
for nt in $names; do
	name=${nt%%:*}
	type=${nt#*:}
	grep -q "^# TYPE $name $type\$" "$tmp/m" || { missing="$missing $name(TYPE)"; continue; }
	case $type in
	histogram) pat="^${name}_count[{ ]";;
	*) pat="^${name}[{ ]";;
	esac
	grep -q "$pat" "$tmp/m" || missing="$missing $name"
done
# keycustody_pkcs11_errors_total has no sample before the first error: checked below;
# keycustody_signatures_total none before the first signature (test-signer.sh checks it).
missing=$(printf '%s\n' $missing |
    grep -v '^keycustody_pkcs11_errors_total$\|^keycustody_signatures_total$' | tr '\n' ' ')
[ -z "$(echo $missing)" ] && ok "every metric of docs/METRICS.md is on /metrics" ||
    not_ok "missing from /metrics: $missing"
# The Grafana dashboard uses only names of the doc.
dash="$top_srcdir/contrib/grafana/keycustody.json"
unknown=
for name in $(grep -o 'keycustody_[a-z0-9_]*' "$dash" | sed 's/_\(bucket\|sum\|count\)$//' | sort -u); do
	printf '%s\n' "$names" | grep -q "^$name:" || unknown="$unknown $name"
done
[ -z "$unknown" ] && ok "contrib/grafana/keycustody.json uses only documented metrics" ||
    not_ok "dashboard names not in docs/METRICS.md:$unknown"
# Every sample is a number.
bad_lines=$(grep -v '^#' "$tmp/m" | awk '$NF !~ /^-?[0-9.e+]+$/ && $NF != "+Inf"' | head -3)
[ -z "$bad_lines" ] && ok "every sample has a numeric value" || not_ok "bad samples: $bad_lines"

# --- plausible values: counts equal the requests made ---
check_m "HSM state ok" 'keycustody_hsm_state{state="ok"}' 1
check_m "HSM state down 0" 'keycustody_hsm_state{state="down"}' 0
check_m "keys in custody: 3 made, 1 deleted" keycustody_keys_in_custody 2
check_m "store ok" keycustody_store_ok 1
check_m "audit ok" keycustody_audit_ok 1
check_m "no records missing their key" keycustody_records_missing_key 0
check_m "no orphans" keycustody_orphan_keys 0
check_m "no debris" 'keycustody_token_objects{kind="debris"}' 0
check_m "workers as configured" keycustody_workers 2
check_m "nothing in flight now" keycustody_requests_in_flight 0
check_m "queue empty" keycustody_queue_depth 0
check_m "shim: 3 creates answered 201" \
    'keycustody_http_requests_total{route="create_csr",status="201"}' 3
check_m "requests: 2 p256v1 creates" \
    'keycustody_request_duration_seconds_count{op="create_csr",key_type="p256v1"}' 2
check_m "requests: 1 rsa2048 create" \
    'keycustody_request_duration_seconds_count{op="create_csr",key_type="rsa2048"}' 1
check_m "requests: 2 gets" \
    'keycustody_request_duration_seconds_count{op="get_csr",key_type="none"}' 2
check_m "requests: 1 list" \
    'keycustody_request_duration_seconds_count{op="list_csrs",key_type="none"}' 1
check_m "requests: 1 delete" \
    'keycustody_request_duration_seconds_count{op="delete_csr",key_type="none"}' 1
check_m "requests: +Inf bucket = count" \
    'keycustody_request_duration_seconds_bucket{op="create_csr",key_type="p256v1",le="+Inf"}' 2
check_m "hsm: 2 p256v1 keygens" \
    'keycustody_hsm_operation_duration_seconds_count{op="keygen",key_type="p256v1"}' 2
check_m "hsm: 1 rsa2048 keygen" \
    'keycustody_hsm_operation_duration_seconds_count{op="keygen",key_type="rsa2048"}' 1
check_m "hsm: 2 p256v1 signatures" \
    'keycustody_hsm_operation_duration_seconds_count{op="sign",key_type="p256v1"}' 2
check_m "hsm: 1 destroy" \
    'keycustody_hsm_operation_duration_seconds_count{op="destroy",key_type="none"}' 1
# The RSA key generation takes longer than a P-256 one: the sums say so.
awk '$1 ~ /^keycustody_hsm_operation_duration_seconds_sum\{op="keygen",key_type="rsa2048"\}/ { r = $2 }
    $1 ~ /^keycustody_hsm_operation_duration_seconds_sum\{op="keygen",key_type="p256v1"\}/ { p = $2 }
    END { exit !(r > 0 && p > 0 && r > p / 2) }' "$tmp/m" &&
    ok "keygen latency sums are positive, RSA's the larger" ||
    not_ok "keygen sums: $(grep 'duration_seconds_sum{op="keygen"' "$tmp/m" | tr '\n' ' ')"
# Cumulative buckets never go down.
awk -F'[{} ]' '/^keycustody_[a-z_]*_bucket\{/ { key = $1 $2; sub(/,?le="[^"]*"/, "", key)
    if (key == last && $NF + 0 < prev) bad = 1; last = key; prev = $NF + 0 }
    END { exit bad }' "$tmp/m" && ok "histogram buckets are cumulative" ||
    not_ok "a histogram bucket went down"
aw=$(m keycustody_audit_write_duration_seconds_count)
[ "${aw:-0}" -ge 4 ] && ok "audit writes counted ($aw for 3 creates and a delete)" ||
    not_ok "audit writes: $aw"
check_m "no audit write failed" keycustody_audit_write_failures_total 0
check_m "no CKR error yet" 'keycustody_pkcs11_errors_total{ckr="CKR_DEVICE_ERROR"}' ""
check_m "no reconciliation at a clean start" keycustody_reconciled_records_total 0
scans=$(m 'keycustody_hsm_events_total{event="scan"}')
[ "${scans:-0}" -ge 1 ] && ok "the start-up token scan is counted" || not_ok "scans: $scans"

# --- an HSM fault moves the state and the CKR counter ---
faults "C_GenerateKeyPair CKR_DEVICE_ERROR always" "C_GetSessionInfo CKR_DEVICE_ERROR always" \
    "C_Initialize CKR_DEVICE_ERROR always"
req POST /zones/$Z/custom_csrs -H "$(W)" -d "$(csr_body m4.acme-corp.co.uk p256v1)"
check_eq "create during the fault: 503" 503 "$st"
scrape
check_m "fault: HSM state down" 'keycustody_hsm_state{state="down"}' 1
check_m "fault: HSM state ok 0" 'keycustody_hsm_state{state="ok"}' 0
de=$(m 'keycustody_pkcs11_errors_total{ckr="CKR_DEVICE_ERROR"}')
[ "${de:-0}" -ge 1 ] && ok "fault: CKR_DEVICE_ERROR counted ($de)" ||
    not_ok "fault: CKR_DEVICE_ERROR count '$de'"
mf=$(m 'keycustody_hsm_events_total{event="module_failure"}')
[ "${mf:-0}" -ge 1 ] && ok "fault: a module failure counted" || not_ok "module failures: $mf"
grep -q '^# TYPE keycustody_pkcs11_errors_total counter$' "$tmp/m" &&
    ok "keycustody_pkcs11_errors_total has its TYPE line" ||
    not_ok "keycustody_pkcs11_errors_total TYPE missing"
faults
i=0
while [ $i -lt 100 ]; do
	scrape
	[ "$(m 'keycustody_hsm_state{state="ok"}')" = 1 ] && break
	sleep 0.2; i=$((i + 1))
done
check_m "after the fault: HSM state ok again" 'keycustody_hsm_state{state="ok"}' 1
rec=$(m 'keycustody_hsm_events_total{event="recovery"}')
[ "${rec:-0}" -ge 1 ] && ok "after the fault: a recovery counted" || not_ok "recoveries: $rec"

# --- the daemon gone: the page answers with the shim's figures, up 0 ---
kc_stop_daemon
scrape
check_eq "daemon down: /metrics still 200" 200 "$st"
check_m "daemon down: keycustody_daemon_up 0" keycustody_daemon_up 0
grep -q '^keycustody_http_requests_total{' "$tmp/m" && ok "daemon down: shim figures present" ||
    not_ok "daemon down: shim figures missing"
grep -q '^keycustody_hsm_state' "$tmp/m" && not_ok "daemon down: stale daemon figures shown" ||
    ok "daemon down: no daemon figures (nothing cached)"

kc_stop_http
kc_done
