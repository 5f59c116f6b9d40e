#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-issue-12-audit.sh: the audit trail against an operator who can write the log file
# (issue 12 point 3). Every record carries an HMAC made with a key held in the token and the
# head is anchored in the store: a log cut short while the daemon runs, or rewritten with
# one hostname's records removed and the unkeyed chain recomputed, is refused at the next
# start (and by keycustodyd --verify-audit), until the operator accepts it, which is itself
# recorded; a rotated file whose predecessor is missing does not verify without --after;
# hostname records name the hostname, the CSR and the certificate's fingerprint; a
# credential name is taken from the gateway role only.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/http-common.sh"
command -v openssl >/dev/null 2>&1 || { echo "SKIP: openssl missing"; exit 77; }
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (roles by uid)"; exit 77; }
command -v setpriv >/dev/null 2>&1 || { echo "SKIP: setpriv missing"; exit 77; }

ca=$KC_TMP/ca
mkdir -p "$ca"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$ca/root.key" \
    -out "$ca/root.pem" -days 30 -sha256 -subj '/O=Acme Audit Test/CN=Acme Audit Root' \
    -addext 'basicConstraints=critical,CA:TRUE' \
    -addext 'keyUsage=critical,keyCertSign,cRLSign' >/dev/null 2>&1 ||
    { echo "Bail out: CA"; exit 1; }
kc_token
cat >>"$KC_TMP/keycustodyd.conf" <<EOC
trust_bundle = $ca/root.pem
admin = 0
gateway = nobody
EOC
log=$KC_TMP/audit.log
kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }
chmod 0711 "$KC_TMP"
chmod 0666 "$KEYCUSTODY_SOCKET"

# The MAC key: a secret key in the token, never a key pair that reconciliation counts.
p11tool --list-objects --type secrkey >"$KC_TMP/secret.out" 2>&1
check "the token holds the audit MAC key" grep -q 'label: *keycustody-audit-mac' "$KC_TMP/secret.out"
check "the MAC key is sensitive and never extractable" grep -q \
    'Access: *sensitive, always sensitive, never extractable, local' "$KC_TMP/secret.out"
check_eq "it is no key pair: no private key of that label" 0 \
    "$(p11tool --list-objects --type privkey 2>/dev/null | grep -c 'keycustody-audit-mac')"
check_eq "health counts no orphan key" 0 "$(ctl --json health | jq '.orphan_keys // 0')"

# A CSR and a hostname, made by the admin (root).
kc_csr p256v1 shop.acme-corp.co.uk shop.acme-corp.co.uk >"$KC_TMP/csr.json" 2>&1
csr=$(jget .id <"$KC_TMP/csr.json")
jget .csr <"$KC_TMP/csr.json" >"$ca/csr.pem"
printf 'subjectAltName=DNS:shop.acme-corp.co.uk\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    >"$ca/leaf.ext"
openssl x509 -req -in "$ca/csr.pem" -CA "$ca/root.pem" -CAkey "$ca/root.key" \
    -CAcreateserial -days 10 -sha256 -extfile "$ca/leaf.ext" -out "$ca/leaf.pem" \
    >/dev/null 2>&1
ctl --json hostname create --zone $KC_ZONE --hostname shop.acme-corp.co.uk --csr "$csr" \
    --cert "$ca/leaf.pem" >"$KC_TMP/h.json" 2>&1
host=$(jget .id <"$KC_TMP/h.json")
check "hostname created" test -n "$host"
fp=$(openssl x509 -in "$ca/leaf.pem" -outform DER | sha256sum | cut -d' ' -f1)
rec=$(grep '"op":"create_hostname"' "$log")
check_eq "hostname record: the hostname" shop.acme-corp.co.uk "$(printf '%s' "$rec" | jget .hostname)"
check_eq "hostname record: the CSR id" "$csr" "$(printf '%s' "$rec" | jget .csr_id)"
check_eq "hostname record: the certificate's SHA-256" "$fp" "$(printf '%s' "$rec" | jget .cert_sha256)"
check "every record carries a MAC" sh -c "! grep -v '\"mac\":\"[0-9a-f]\{64\}\"}\$' '$log'"

# The actor's credential: from the gateway role only. A shim connected as root is admin.
mkdir -p "$KC_TMP/shim"
kc_start_http "$KC_TMP/shim" || { echo "Bail out: shim"; exit 1; }
body='{"country":"US","state":"MA","locality":"Boston","organization":"O","common_name":"adm.acme-corp.co.uk","sans":["adm.acme-corp.co.uk"],"key_type":"p256v1"}'
curl -fsS -H "Authorization: Bearer $KC_TOKEN_W" -H 'Content-Type: application/json' \
    -d "$body" "$KC_HTTP_URL/zones/$KC_ZONE/custom_csrs" >"$KC_TMP/adm.json" 2>&1
check_eq "through an admin connection: created" true "$(jget .success <"$KC_TMP/adm.json")"
check_eq "an admin's credential name is not taken as the actor" null \
    "$(grep '"op":"create_csr"' "$log" | tail -1 | jget .actor.credential)"
kc_stop_http
chown nobody "$KC_TMP/shim/credentials"
chmod 0755 "$KC_TMP/shim"
# The shim started as the gateway's user (its own --user drop is issue 12 point 4, not here).
printf '#!/bin/sh\nexec setpriv --reuid=nobody --regid=%s --clear-groups %s "$@"\n' \
    "$(id -g nobody)" "$(cd "${top_builddir:-.}" && pwd)/keycustody-http" >"$KC_TMP/shim-nobody"
chmod 0755 "$KC_TMP/shim-nobody"
KC_HTTP=$KC_TMP/shim-nobody kc_http_run "$KC_TMP/shim" ||
    { echo "Bail out: shim as nobody"; exit 1; }
body='{"country":"US","state":"MA","locality":"Boston","organization":"O","common_name":"gw.acme-corp.co.uk","sans":["gw.acme-corp.co.uk"],"key_type":"p256v1"}'
curl -fsS -H "Authorization: Bearer $KC_TOKEN_W" -H 'Content-Type: application/json' \
    -d "$body" "$KC_HTTP_URL/zones/$KC_ZONE/custom_csrs" >"$KC_TMP/gw.json" 2>&1
check_eq "through the gateway: created" true "$(jget .success <"$KC_TMP/gw.json")"
check_eq "the gateway's credential name is the actor" test-writer \
    "$(grep '"op":"create_csr"' "$log" | tail -1 | jget .actor.credential)"
kc_stop_http

# Online verification through the daemon's key.
kc_verify() { "$KEYCUSTODYD" -f "$KC_TMP/keycustodyd.conf" --verify-audit "$@" >"$KC_TMP/v.out" 2>&1; }
check "keycustodyd --verify-audit accepts the live log" kc_verify
check "it checked every MAC and reached the anchor" sh -c \
    "grep -q 'reaches the store.s anchor' '$KC_TMP/v.out' && grep -q \"$(wc -l <"$log") lines, $(wc -l <"$log") MACs checked\" '$KC_TMP/v.out'"
ctl audit verify "$log" >"$KC_TMP/off.out" 2>&1
check "offline verify says it could not check the MACs" grep -q 'MACs NOT checked' "$KC_TMP/off.out"

# 1. Cut the last records while the daemon runs, then restart: refused.
good=$KC_TMP/good.log
cp "$log" "$good"
n=$(wc -l <"$log")
head -n $((n - 2)) "$good" >"$log"
kc_stop_daemon
timeout 20 "$KEYCUSTODYD" -d -f "$KC_TMP/keycustodyd.conf" >"$KC_TMP/cut.out" 2>&1
check_eq "a truncated log: the daemon refuses to start" 1 "$?"
check "a truncated log: it says records were cut" grep -q "2 record(s) were cut from its end" "$KC_TMP/cut.out"
kc_verify
check_eq "a truncated log: --verify-audit fails" 1 "$?"
check "a truncated log: --verify-audit says why" grep -q 'cut from its end' "$KC_TMP/v.out"
check_eq "a truncated log: the refusal changed nothing" $((n - 2)) "$(wc -l <"$log")"

# 2. Remove the hostname's records and recompute the unkeyed chain: refused too.
python3 - "$good" "$log" <<'PY'
import hashlib, json, sys
src, dst = sys.argv[1], sys.argv[2]
out, prev, seq = [], None, 0
for line in open(src).read().splitlines():
    o = json.loads(line)
    if o.get("op", "").endswith("hostname") or o.get("op", "").endswith("hostname.begin"):
        continue
    seq += 1
    if seq > 1:
        o["seq"] = seq
        o["prev"] = prev
        line = json.dumps(o, separators=(",", ":"))
    prev = hashlib.sha256(line.encode()).hexdigest()
    out.append(line)
open(dst, "w").write("\n".join(out) + "\n")
PY
check "a re-chained log passes the offline (unkeyed) check" ctl audit verify "$log"
timeout 20 "$KEYCUSTODYD" -d -f "$KC_TMP/keycustodyd.conf" >"$KC_TMP/rw.out" 2>&1
check_eq "a re-chained log: the daemon refuses to start" 1 "$?"
check "a re-chained log: refused loudly" grep -q 'REFUSING TO START' "$KC_TMP/rw.out"
kc_verify
check_eq "a re-chained log: --verify-audit fails" 1 "$?"
check "a re-chained log: --verify-audit names a wrong MAC" grep -q 'wrong MAC' "$KC_TMP/v.out"
# Even with the store's anchor moved to the forged head, the last record's MAC is wrong.
last=$(tail -1 "$log" | tr -d '\n' | sha256sum | cut -d' ' -f1)
sqlite3 "$KC_TMP/keycustody.db" "UPDATE audit_anchor SET seq = $(wc -l <"$log"), hash = '$last'"
timeout 20 "$KEYCUSTODYD" -d -f "$KC_TMP/keycustodyd.conf" >"$KC_TMP/rw2.out" 2>&1
check_eq "re-chained log and anchor moved: still refused" 1 "$?"
check "re-chained log and anchor moved: a wrong MAC" grep -q 'wrong MAC' "$KC_TMP/rw2.out"

# 3. The operator accepts: the log moves aside, a new chain records the acceptance.
kc_start_daemon --accept-audit-log || not_ok "start with --accept-audit-log"
check "the acceptance is logged loudly" grep -q 'ACCEPTED by the operator' "$KC_TMP/keycustodyd.log"
check_eq "the new chain's genesis records the acceptance" true \
    "$(head -1 "$log" | jq '.genesis == true and (.accepted.reason | length > 0)')"
aside=$KC_TMP/$(head -1 "$log" | jget .accepted.file)
check "the rejected log is kept as evidence" test -s "$aside"
kc_csr p256v1 after.acme-corp.co.uk after.acme-corp.co.uk >/dev/null 2>&1
check "the new chain verifies online" kc_verify
kc_stop_daemon

# 4. A gap in rotated files: refused offline and online unless --after names the anchor.
kc_start_daemon || not_ok "restart"
kill -HUP "$DAEMON_PID"
i=0
while [ "$(ls "$KC_TMP"/audit.log.2* 2>/dev/null | grep -vc "$aside")" -eq 0 ] && [ $i -lt 50 ]; do
	sleep 0.1; i=$((i + 1))
done
rotated=$(ls "$KC_TMP"/audit.log.2* | grep -v "$aside" | head -1)
kc_csr p256v1 rot.acme-corp.co.uk rot.acme-corp.co.uk >/dev/null 2>&1
ctl audit verify "$log" >"$KC_TMP/gap.out" 2>&1
check_eq "a gap (earlier file missing): offline verify fails" 1 "$?"
check "a gap: it says the earlier files are missing" grep -q 'earlier files are missing' "$KC_TMP/gap.out"
kc_verify "$log"
check_eq "a gap: --verify-audit fails" 1 "$?"
prevhash=$(tail -1 "$rotated" | tr -d '\n' | sha256sum | cut -d' ' -f1)
check "with --after the previous file's last hash: offline OK" ctl audit verify --after "$prevhash" "$log"
check "with --after: --verify-audit OK" kc_verify --after "$prevhash" "$log"
check "the whole set in order verifies online" kc_verify "$rotated" "$log"
wrong=$(printf '%s' "$prevhash" | tr '0-9a-f' '1-9a-f0')
ctl audit verify --after "$wrong" "$log" >/dev/null 2>&1
check_eq "a wrong --after hash fails" 1 "$?"

kc_done
