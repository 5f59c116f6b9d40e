#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-issue-12-fairness.sh: one zone's flood of slow key creations does not starve the
# other zones (issue 12, point 2). The token is tests/p11-fault in front of SoftHSM2, each
# C_GenerateKeyPair delayed by 400 ms. For 12 s, 4 connections keep 8 creates each in
# flight in zone A, while one connection lists zone B, one request at a time, and another
# creates in zone B every half second. Zone B's lists must stay under a p99 of 2 s (before
# the fix, they waited behind the whole queue of zone A's creates: seconds each), its
# creates must succeed, and zone A is answered 429 with code 971 and Retry-After once it has
# zone_pending_creates (16) in flight.
# Then, with a small credential_pending_creates, one peer creating in 4 zones at once is
# answered 429 too, and zone_key_quota refuses the create past the quota with 403/1499.

. "$(dirname "$0")/common.sh"
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 missing"; exit 77; }
FAULT_SO="$top_builddir/tests/p11-fault/p11-fault.so"
[ -f "$FAULT_SO" ] || { echo "Bail out: $FAULT_SO not built (make check builds it)"; exit 99; }
RAW="$top_srcdir/tests/integration/kc-raw.py"
P11_FAULT_MODULE=$KC_MODULE
P11_FAULT_CONTROL="$KC_TMP/faults"
export P11_FAULT_MODULE P11_FAULT_CONTROL
KC_MODULE=$FAULT_SO
: >"$P11_FAULT_CONTROL"
ZONE_A=$KC_ZONE
ZONE_B=$KC_ZONE2

kc_token
# The admin is one credential (its uid): let only the zone limits apply in part 1.
cat >>"$KC_TMP/keycustodyd.conf" <<EOC
credential_creates = 2
credential_pending_creates = 1000
EOC
kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }
printf 'C_GenerateKeyPair delay 400\n' >"$KC_TMP/faults.new"
mv "$KC_TMP/faults.new" "$P11_FAULT_CONTROL"

statv() { sed -n "s/^stat|$1|//p" "$2"; }

# --- 1. zone A floods, zone B reads and creates ---
python3 "$RAW" fair "$KEYCUSTODY_SOCKET" "$ZONE_A" "$ZONE_B" 12 4 8 >"$KC_TMP/fair.out" 2>&1
sed 's/^/# /' "$KC_TMP/fair.out"
p99=$(statv b_list_p99_ms "$KC_TMP/fair.out")
lists=$(statv b_list_ok "$KC_TMP/fair.out")
echo "# zone B: ${lists:-0} lists during zone A's flood, p99 ${p99:-?} ms"
[ "${lists:-0}" -ge 20 ] && ok "zone B's lists were answered (${lists:-0})" ||
    not_ok "zone B got ${lists:-0} lists answered"
[ -n "$p99" ] && [ "$p99" -ge 0 ] && [ "$p99" -lt 2000 ] &&
    ok "zone B's list latency p99 ${p99} ms < 2000 ms" ||
    not_ok "zone B's list latency p99 ${p99:-?} ms (want < 2000 ms)"
bc=$(statv b_create_ok "$KC_TMP/fair.out")
[ "${bc:-0}" -ge 3 ] && ok "zone B's creates succeeded (${bc:-0})" ||
    not_ok "zone B got ${bc:-0} creates made"
bmax=$(statv b_create_max_ms "$KC_TMP/fair.out")
[ -n "$bmax" ] && [ "$bmax" -lt 5000 ] && ok "zone B's slowest create took ${bmax} ms (< 5 s)" ||
    not_ok "zone B's slowest create took ${bmax:-?} ms"
a429=$(statv a_create_429 "$KC_TMP/fair.out")
[ "${a429:-0}" -ge 1 ] && ok "zone A's flood is answered 429/971 with Retry-After (${a429})" ||
    not_ok "zone A got no 429"
aok=$(statv a_create_ok "$KC_TMP/fair.out")
[ "${aok:-0}" -ge 5 ] && ok "zone A still gets its share (${aok} created)" ||
    not_ok "zone A created ${aok:-0}"
other=$(grep -c '^stat|[ab]_\(create\|list\)_\(other\|error\)' "$KC_TMP/fair.out")
check_eq "every answer was a success, a 429 or a 503" 0 "$other"
ctl health | grep -E '^(key creation|log lines)' | sed 's/^/# health: /'
check "health counts the 429s" sh -c "'$KEYCUSTODYCTL' health |
    grep -q 'key creation: .* 0 waiting their turn, [1-9][0-9]* rate-limited'"
check "the 429s are logged, rate-limited" grep -q \
    "create_csr in zone $ZONE_A refused (429): its zone has 16 key creations in flight" \
    "$KC_TMP/keycustodyd.log"
: >"$P11_FAULT_CONTROL"
nz=$(ctl csr list --zone "$ZONE_A" | sed -n 's/.* \([0-9]*\) in all/\1/p')
check_eq "zone A holds exactly the creates answered ok" "${aok:-0}" "${nz:-?}"
kc_stop_daemon

# --- 2. one credential in many zones; a zone's quota ---
cat >>"$KC_TMP/keycustodyd.conf" <<EOC
credential_creates = 1
credential_pending_creates = 3
zone_key_quota = 2
EOC
kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }
printf 'C_GenerateKeyPair delay 300\n' >"$KC_TMP/faults.new"
mv "$KC_TMP/faults.new" "$P11_FAULT_CONTROL"
python3 - "$RAW" "$KEYCUSTODY_SOCKET" >"$KC_TMP/cred.out" 2>&1 <<'EOP'
import importlib.util, sys
sys.dont_write_bytecode = True	# srcdir may be read-only (distcheck)
spec = importlib.util.spec_from_file_location("raw", sys.argv[1])
raw = importlib.util.module_from_spec(spec)
spec.loader.exec_module(raw)
c = raw.Conn(sys.argv[2])
zones = ["%032x" % (0xa0 + i) for i in range(6)]
for i, z in enumerate(zones):
    c.s.sendall(raw.create_csr(i + 1, z, f"c{i}.acme-corp.co.uk"))
for _ in zones:
    rid, err = c.reply(30.0)
    print(f"answer|{rid}|{'ok' if err is None else '%d/%d/%s' % err}")
EOP
sed 's/^/# /' "$KC_TMP/cred.out"
check_eq "3 creates of one credential in flight, in 3 zones" 3 "$(grep -c '|ok$' "$KC_TMP/cred.out")"
check_eq "the next 3 are answered 429/971, Retry-After 1" 3 "$(grep -c '|7/971/1$' "$KC_TMP/cred.out")"
: >"$P11_FAULT_CONTROL"
KC_CSR_ZONE=$ZONE_B
export KC_CSR_ZONE
nb=$(ctl csr list --zone "$ZONE_B" | sed -n 's/.* \([0-9]*\) in all/\1/p')
echo "# zone B holds $nb CSRs, its quota is 2"
out=$(kc_csr p256v1 q.acme-corp.co.uk q.acme-corp.co.uk 2>&1)
check_eq "past zone_key_quota: 1499" 1499 "$(printf '%s' "$out" | jget '.errors[0].code')"
check "health counts it" sh -c "'$KEYCUSTODYCTL' health | grep -q 'rate-limited (429), 1 over quota'"

kc_done
