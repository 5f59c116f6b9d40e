#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-http.sh: keycustody-http over the real daemon, driven with curl (issue 3): every route
# and error code of the custom CSR part of API.md, auth, limits, pagination, zones as
# tenants, 503 and reconnection, and `openssl req -verify` on every CSR returned.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
. "$here/http-common.sh"
for p in curl jq openssl python3; do
	command -v $p >/dev/null 2>&1 || { echo "SKIP: $p missing"; exit 77; }
done
kc_setup || exit 1
tmp=$KC_TMP/http
mkdir -p "$tmp"
cleanup()
{
	kc_stop_http
	[ -n "${pid2:-}" ] && kill "$pid2" 2>/dev/null
	kc_cleanup
}
trap cleanup EXIT
kc_start_http "$tmp" || exit 1

# ok/not_ok/kc_done come from common.sh; bad, req, W and expect from http-common.sh

# verify_csr FILE: the CSR object in FILE (jq path .result or given) verifies.
verify_csr()
{
	jq -r "${2-.result}.csr" "$1" >"$tmp/csr.pem"
	if openssl req -in "$tmp/csr.pem" -noout -verify >/dev/null 2>&1; then ok "openssl req -verify"; else
		bad "openssl req -verify failed for $(jq -r "${2-.result}.id" "$1")"; fi
}

Z=$KC_ZONE
Z2=$KC_ZONE2
CSRS=/zones/$Z/custom_csrs
body='{"country":"US","state":"MA","locality":"Boston","organization":"City of Boston","organizational_unit":"Championship Parade Detail","common_name":"app.acme-corp.co.uk","sans":["app.acme-corp.co.uk","www.acme-corp.co.uk","blog.acme-corp.co.uk","acme-corp.co.uk"],"key_type":"p256v1"}'
# with KEY=VALUE (JSON value) replaced in the good body
mk() { echo "$body" | jq -c ". + {$1}"; }
mkdel() { echo "$body" | jq -c "del(.$1)"; }

echo "# == health, metrics, routing"
req GET /healthz; expect 200 - healthz
jq -e '.status == "ok"' "$tmp/body" >/dev/null && ok || bad "healthz body"
st=$(curl -sS -o "$tmp/body" -w '%{http_code}' "${KC_HTTP_URL%/client/v4}/metrics")
[ "$st" = 200 ] && grep -q '^keycustody_http_requests_total{route="healthz",status="200"}' "$tmp/body" && ok || bad "metrics"
grep -q '^keycustody_http_in_flight ' "$tmp/body" && grep -q 'keycustody_http_daemon_duration_seconds_bucket' "$tmp/body" && ok || bad "metrics content"
req GET /nope -H "$(W)"; expect 400 7003 "unknown route"
jq -e '.errors[1].code == 7000 and .errors[1].message == "No route for that URI" and (.errors[0].message | test("^Could not route to /nope, perhaps your object identifier is invalid\\?$"))' "$tmp/body" >/dev/null && ok || bad "7003/7000 messages"
for zid in 023E105F4ECEF8AD9CA31A8372D0C353 023e105f4ecef8ad9ca31a8372d0c35 023e105f4ecef8ad9ca31a8372d0c353a xyz 023e105f4ecef8ad9ca31a8372d0c35g; do
	req GET /zones/$zid/custom_csrs -H "$(W)"; expect 400 7003 "bad zone id $zid"
done
req GET /zones/$Z/custom_csrs/a/b -H "$(W)"; expect 400 7003 "too deep a path"
req GET /zones/$Z/custom_hostnames_x -H "$(W)"; expect 400 7003 "unknown collection"
req PUT $CSRS -H "$(W)"; expect 405 - "PUT on the collection"
req PATCH $CSRS/00000000-0000-4000-8000-000000000000 -H "$(W)"; expect 405 - "PATCH on an item"
st=$(curl -sS -o "$tmp/body" -w '%{http_code}' -X GET "${KC_HTTP_URL%/client/v4}/")
[ "$st" = 400 ] && jq -e '.errors[0].code == 7003' "$tmp/body" >/dev/null && ok || bad "root path not JSON 400"

echo "# == authentication"
req GET $CSRS; expect 400 9106 "no credentials"
req GET $CSRS -H 'Authorization: Basic dXNlcjpwYXNz'; expect 400 6003 6111 "Basic auth"
req GET $CSRS -H 'Authorization: Bearer'; expect 400 6003 6111 "empty bearer"
req GET $CSRS -H "X-Auth-Email: $KC_EMAIL" -H 'X-Auth-Key;'; expect 400 6003 6103 "empty key"
req GET $CSRS -H "X-Auth-Key: $KC_KEY"; expect 400 6003 6102 "key without email"
req GET $CSRS -H "X-Auth-Email: not-an-email" -H "X-Auth-Key: $KC_KEY"; expect 400 6003 6102 "bad email"
req GET $CSRS -H 'Authorization: Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'; expect 403 10000 "unknown token"
req GET $CSRS -H "X-Auth-Email: $KC_EMAIL" -H 'X-Auth-Key: wrongwrongwrong'; expect 403 9103 "unknown key"
req GET $CSRS -H "X-Auth-Email: other@acme-corp.co.uk" -H "X-Auth-Key: $KC_KEY"; expect 403 9103 "key with another email"
req GET $CSRS -H "Authorization: Bearer $KC_TOKEN_W"; expect 200 - "bearer ok"
req GET $CSRS -H "X-Auth-Email: $KC_EMAIL" -H "X-Auth-Key: $KC_KEY"; expect 200 - "email/key ok"
req GET $CSRS -H "Authorization: Bearer $KC_TOKEN_R"; expect 200 - "reader may read"
req POST $CSRS -H "Authorization: Bearer $KC_TOKEN_R" -d "$body"; expect 403 10000 "reader may not write"
req GET /zones/$Z2/custom_csrs -H "Authorization: Bearer $KC_TOKEN_R"; expect 403 10000 "reader, other zone"
req GET $CSRS -H "Authorization: Bearer $KC_TOKEN_Z2"; expect 403 10000 "zone-2 token on zone 1"
grep -q "$KC_TOKEN_W" "$tmp/credentials" && bad "secret stored in clear" || ok
grep -q "$KC_TOKEN_W" "$tmp/http.log" && bad "secret logged" || ok

echo "# == create"
req POST $CSRS -H "$(W)" -H 'Content-Type: application/json' -d "$body"; expect 201 - "create p256v1"
cp "$tmp/body" "$tmp/p256.json"
jq -e '.success == true and .errors == [] and .messages == [] and (.result | has("zone_id") | not)
    and (.result.id | test("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"))
    and (.result.created_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"))
    and .result.key_type == "p256v1" and .result.country == "US" and .result.state == "MA"
    and .result.locality == "Boston" and .result.organization == "City of Boston"
    and .result.organizational_unit == "Championship Parade Detail"
    and .result.common_name == "app.acme-corp.co.uk" and (.result.sans | length) == 4
    and (.result.csr | startswith("-----BEGIN CERTIFICATE REQUEST-----\n"))
    and (.result.csr | endswith("-----END CERTIFICATE REQUEST-----\n"))' "$tmp/body" >/dev/null \
    && ok || bad "create result object"
verify_csr "$tmp/p256.json"
ID=$(jq -r .result.id "$tmp/p256.json")
req POST $CSRS -H "$(W)" -d "$(mkdel key_type | jq -c 'del(.organizational_unit) + {name: "demo", description: "d", unknown_field: {"x": [1, 2]}}')"
expect 201 - "create default key type, extras"
jq -e '.result.key_type == "rsa2048" and .result.name == "demo" and .result.description == "d" and ((.result.organizational_unit // "") == "")' "$tmp/body" >/dev/null && ok || bad "rsa2048 default / name / unknown ignored"
verify_csr "$tmp/body"
openssl req -in "$tmp/csr.pem" -noout -text 2>/dev/null | grep -q 'Public-Key: (2048 bit)' && ok || bad "rsa2048 key size"
for kt in rsa3072 p384v1; do
	req POST $CSRS -H "$(W)" -d "$(mk "key_type: \"$kt\"")"; expect 201 - "create $kt"; verify_csr "$tmp/body"
done
req POST $CSRS -H "X-Auth-Email: $KC_EMAIL" -H "X-Auth-Key: $KC_KEY" -d "$body"; expect 201 - "create with email/key"

echo "# == create: malformed bodies (1400)"
req POST $CSRS -H "$(W)" -d '{"country":'; expect 400 1400 "truncated JSON"
jq -e '.errors[0].message == "Unable to decode the JSON request body. Check your input and try again."' "$tmp/body" >/dev/null && ok || bad "1400 message"
req POST $CSRS -H "$(W)"; expect 400 1400 "empty body"
req POST $CSRS -H "$(W)" -d '[1,2]'; expect 400 1400 "array body"
req POST $CSRS -H "$(W)" -d '"str"'; expect 400 1400 "string body"
req POST $CSRS -H "$(W)" -d '{"country":"US","country":"FR"}'; expect 400 1400 "duplicate key"
for f in country state locality organization organizational_unit common_name key_type name description; do
	req POST $CSRS -H "$(W)" -d "$(mk "$f: 42")"; expect 400 1400 "$f as number"
	req POST $CSRS -H "$(W)" -d "$(mk "$f: [\"x\"]")"; expect 400 1400 "$f as array"
done
req POST $CSRS -H "$(W)" -d "$(mk 'sans: "app.acme-corp.co.uk"')"; expect 400 1400 "sans as string"
req POST $CSRS -H "$(W)" -d "$(mk 'sans: ["app.acme-corp.co.uk", 7]')"; expect 400 1400 "sans with a number"
req POST $CSRS -H "$(W)" -d "$(mk 'sans: {"a": 1}')"; expect 400 1400 "sans as object"
deep=$(python3 -c 'print("{\"x\":" + "[" * 100 + "]" * 100 + "}")')
req POST $CSRS -H "$(W)" -d "$deep"; expect 400 1400 "deep nesting"
python3 -c 'import json,sys; b=json.loads(sys.argv[1]); b["description"]="x"*(1024*1024+10); print(json.dumps(b))' "$body" >"$tmp/big.json"
req POST $CSRS -H "$(W)" --data-binary @"$tmp/big.json"; expect 400 1400 "body over 1 MiB"
printf '{"country":"US","x":"\\u0000"}' >"$tmp/nul.json"
req POST $CSRS -H "$(W)" --data-binary @"$tmp/nul.json"; expect 400 1400 "NUL in a string"

echo "# == bodies over 1 MiB, and requests that evhttp refuses by itself: JSON all the same"
python3 -c 'import sys; sys.stdout.write("{\"x\":\"" + "a" * (3 << 20) + "\"}")' >"$tmp/3m.json"
python3 -c 'import sys; sys.stdout.write("{\"x\":\"" + "a" * (3 << 19) + "\"}")' >"$tmp/1.5m.json"
req POST $CSRS -H "$(W)" --data-binary @"$tmp/3m.json"; expect 400 1400 "a body of 3 MiB"
req POST $CSRS -H "$(W)" -H 'Expect:' --data-binary @"$tmp/3m.json"; expect 400 1400 "a body of 3 MiB, no Expect"
req POST $CSRS -H "$(W)" --data-binary @"$tmp/1.5m.json"; expect 400 1400 "a body of 1.5 MiB"
req POST $CSRS -H "$(W)" -H 'Transfer-Encoding: chunked' --data-binary @"$tmp/3m.json"
expect 400 1400 "chunked 3 MiB body"
req POST $CSRS -H "$(W)" -H 'Transfer-Encoding: chunked' --data-binary @"$tmp/1.5m.json"
expect 400 1400 "chunked 1.5 MiB body"
req POST /zones/$Z/custom_hostnames -H "$(W)" --data-binary @"$tmp/3m.json"
expect 400 1400 "a body of 3 MiB, custom hostnames"
req PATCH /zones/$Z/custom_hostnames/00000000-0000-4000-8000-000000000000 -H "$(W)" \
    -H 'Transfer-Encoding: chunked' --data-binary @"$tmp/3m.json"
expect 400 1400 "chunked 3 MiB body, custom hostname PATCH"
req POST $CSRS -H "$(W)" -H 'Transfer-Encoding: chunked' -d "$(mkdel country)"
expect 400 1405 "a small chunked body reaches the daemon"
# Raw requests: each answer must be JSON, with x-should-retry: false on a 4xx.
cat >"$tmp/raw.py" <<'EOF'
import json, socket, sys
port, zone = int(sys.argv[1]), sys.argv[2].encode()
# A request with a body is authenticated before its body is read (issue 12): these carry
# a credential so that what they test comes next.
auth = b"Authorization: Bearer " + sys.argv[3].encode() + b"\r\n"
cases = [
    ("malformed request line", b"BLAH\r\n\r\n", 400, 6003),
    ("header block over the limit", b"GET /client/v4/healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
        + b"a" * 20000 + b"\r\n\r\n", 431, 6003),
    ("bad Content-Length", b"POST /client/v4/zones/" + zone + b"/custom_csrs HTTP/1.1\r\n"
        b"Host: x\r\n" + auth + b"Content-Length: abc\r\n\r\n{}", 400, 6003),
    ("unknown Expect", b"POST /client/v4/zones/" + zone + b"/custom_csrs HTTP/1.1\r\n"
        b"Host: x\r\n" + auth + b"Expect: tea\r\nContent-Length: 2\r\n\r\n{}", 417, 6003),
    ("corrupt chunk", b"POST /client/v4/zones/" + zone + b"/custom_csrs HTTP/1.1\r\n"
        b"Host: x\r\n" + auth + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400, 1400),
    ("HTTP/1.0 body over 1 MiB", b"POST /client/v4/zones/" + zone + b"/custom_csrs HTTP/1.0\r\n"
        + auth + b"Content-Length: 3000000\r\n\r\n" + b"a" * 3000000, 400, 1400),
    ("pipelined after a good request", b"GET /client/v4/healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /client/v4/zones/" + zone + b"/custom_csrs HTTP/1.1\r\nHost: x\r\n"
        + auth + b"Content-Length: 3000000\r\n\r\n" + b"a" * 3000000, 400, 1400),
]
failed = 0
for name, data, status, code in cases:
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10)
    out = b""
    try:
        s.sendall(data)
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except OSError:
        pass
    s.close()
    last = out[out.rfind(b"HTTP/1."):]
    head, _, body = last.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").lower().split("\r\n")
    try:
        got = (int(lines[0].split()[1]), json.loads(body)["errors"][0]["code"])
        good = (got == (status, code) and "content-type: application/json" in lines
                and "x-should-retry: false" in lines)
    except (ValueError, IndexError, KeyError):
        got, good = None, False
    print("%s - %s: %r" % ("ok" if good else "FAIL", name, got if good else out[:300]))
    failed += not good
sys.exit(failed != 0)
EOF
port=${KC_HTTP_URL#http://127.0.0.1:}
python3 "$tmp/raw.py" "${port%%/*}" "$Z" "$KC_TOKEN_W" >"$tmp/raw.out" 2>&1
while read -r line; do
	case $line in ok*) ok "${line#ok - }";; *) not_ok "$line";; esac
done <"$tmp/raw.out"
req GET /healthz; expect 200 - "healthz after the refused requests"

echo "# == create: validation by the daemon (1405..1417)"
req POST $CSRS -H "$(W)" -d "$(mkdel country)"; expect 400 1405 "no country"
req POST $CSRS -H "$(W)" -d "$(mk 'country: "USA"')"; expect 400 1405 "country of 3 letters"
req POST $CSRS -H "$(W)" -d "$(mk 'country: "us"')"; expect 201 - "lower-case country"
jq -e '.result.country == "us"' "$tmp/body" >/dev/null && ok "country echoed as sent" ||
    bad "country not echoed as sent"
jq -r .result.csr "$tmp/body" | openssl req -noout -subject -nameopt sep_comma_plus 2>/dev/null |
    grep -q 'C=US' && ok "CSR subject country upper case" || bad "CSR subject country"
req POST $CSRS -H "$(W)" -d "$(mkdel state)"; expect 400 1406 "no state"
req POST $CSRS -H "$(W)" -d "$(mkdel locality)"; expect 400 1407 "no locality"
req POST $CSRS -H "$(W)" -d "$(mkdel organization)"; expect 400 1408 "no organization"
req POST $CSRS -H "$(W)" -d "$(mkdel common_name)"; expect 400 1409 "no common name"
req POST $CSRS -H "$(W)" -d "$(mk "common_name: \"$(printf 'a%.0s' $(seq 65))\"")"; expect 400 1410 "common name of 65"
req POST $CSRS -H "$(W)" -d "$(mkdel sans)"; expect 400 1411 "no sans"
req POST $CSRS -H "$(W)" -d "$(mk 'sans: []')"; expect 400 1411 "empty sans"
req POST $CSRS -H "$(W)" -d "$(mk 'sans: ["bad!name.acme-corp.co.uk"]')"; expect 400 1412 "SAN with !"
req POST $CSRS -H "$(W)" -d "$(mk 'sans: ["-a.acme-corp.co.uk"]')"; expect 400 1412 "SAN label starting with -"
req POST $CSRS -H "$(W)" -d "$(mk 'sans: ["192.0.2.1"]')"; expect 400 1412 "IP SAN"
many=$(python3 -c 'import json; print(json.dumps(["h%d.acme-corp.co.uk" % i for i in range(151)]))')
req POST $CSRS -H "$(W)" -d "$(mk "sans: $many")"; expect 400 1412 "too many SANs (151)"
req POST $CSRS -H "$(W)" -d "$(mk 'sans: ["bücher.acme-corp.co.uk"]')"; expect 400 1413 "non-ASCII SAN"
req POST $CSRS -H "$(W)" -d "$(mk 'sans: ["www.acme.test"]')"; expect 400 1414 "reserved TLD"
req POST $CSRS -H "$(W)" -d "$(mk 'sans: ["localhost"]')"; expect 400 1414 "localhost"
req POST $CSRS -H "$(W)" -d "$(mk 'sans: ["www.example.com"]')"; expect 400 1416 "example.com"
req POST $CSRS -H "$(W)" -d "$(mk 'sans: ["co.uk"]')"; expect 400 1415 "public suffix"
req POST $CSRS -H "$(W)" -d "$(mk 'sans: ["*.shop.acme-corp.co.uk"]')"; expect 201 - "wildcard SAN"
req POST $CSRS -H "$(W)" -d "$(mk 'key_type: "dsa1024"')"; expect 400 1417 "bad key type"
jq -e '.errors[0].message | (contains("rsa2048") and contains("p256v1") and contains("rsa4096") and contains("p384v1"))' "$tmp/body" >/dev/null && ok || bad "1417 names the key types"
req POST $CSRS -H "$(W)" -d "$(mk 'state: "M\u0001A"')"; expect 400 1406 "control character"

echo "# == list and pagination"
for pp in 4 51 0 abc -5 5.5 ''; do
	req GET "$CSRS?per_page=$pp" -H "$(W)"; expect 400 6008 11000 "per_page=$pp"
done
jq -e '.errors[0].message == "Invalid request parameters" and .errors[0].error_chain[0].message == "per_page variable must be a number between 5 and 50"' "$tmp/body" >/dev/null && ok || bad "6008 messages"
for pg in 0 -1 x 1.5; do
	req GET "$CSRS?page=$pg" -H "$(W)"; expect 400 6008 11000 "page=$pg"
done
req GET "$CSRS?direction=sideways" -H "$(W)"; expect 400 6008 - "direction"
# zone 2 starts empty: 12 CSRs there, then pages of 5
for i in $(seq 12); do
	req POST /zones/$Z2/custom_csrs -H "Authorization: Bearer $KC_TOKEN_Z2" -d "$(mk "common_name: \"h$i.acme-corp.co.uk\"")"
	[ "$st" = 201 ] && ok || bad "zone 2 create $i ($st)"
	verify_csr "$tmp/body"
done
L2="/zones/$Z2/custom_csrs"
T2="Authorization: Bearer $KC_TOKEN_Z2"
req GET "$L2?per_page=5" -H "$T2"; expect 200 - "page 1"
jq -e '(.result | length) == 5 and .result_info == {"page":1,"per_page":5,"count":5,"total_count":12,"total_pages":3}' "$tmp/body" >/dev/null && ok || bad "result_info page 1"
first=$(jq -r '.result[0].id' "$tmp/body")
req GET "$L2?per_page=5&page=3" -H "$T2"; expect 200 - "page 3"
jq -e '(.result | length) == 2 and .result_info.count == 2 and .result_info.page == 3' "$tmp/body" >/dev/null && ok || bad "page 3"
req GET "$L2?per_page=5&page=4" -H "$T2"; expect 200 - "page past the end"
jq -e '.result == [] and .result_info.count == 0 and .result_info.total_count == 12' "$tmp/body" >/dev/null && ok || bad "empty page"
req GET "$L2" -H "$T2"; expect 200 - "default per_page"
jq -e '.result_info.per_page == 20 and (.result | length) == 12' "$tmp/body" >/dev/null && ok || bad "default per_page 20"
jq -e '[.result[].created_at] == ([.result[].created_at] | sort)' "$tmp/body" >/dev/null && ok || bad "created_at ascending"
jq -r '.result[].common_name' "$tmp/body" >"$tmp/asc"
req GET "$L2?per_page=50&direction=desc" -H "$T2"; expect 200 - "direction=desc"
jq -r '.result[].common_name' "$tmp/body" | tac | cmp -s - "$tmp/asc" && ok || bad "desc is reversed asc"
jq -r '.result[] | @base64' "$tmp/body" | while read -r o; do
	echo "$o" | base64 -d >"$tmp/one.json"; verify_csr "$tmp/one.json" ""
done
req GET "$CSRS?per_page=50" -H "$(W)"; expect 200 - "zone 1 list"
jq -e --arg f "$first" '[.result[].id] | index($f) == null' "$tmp/body" >/dev/null && ok || bad "zone 2 CSR listed in zone 1"

echo "# == list order (Cloudflare's name, created_at; account_tag refused)"
# In zone 2 (12 unnamed CSRs): a NULL name sorts first.
for n in zeta alpha mid; do
	req POST "$L2" -H "$T2" -d "$(mk "name: \"$n\"")"; expect 201 - "named CSR $n"
done
req GET "$L2?per_page=50&order=name" -H "$T2"; expect 200 - "order=name"
jq -e '[.result[] | select(.name != null) | .name] == ["alpha","mid","zeta"]' "$tmp/body" >/dev/null &&
    ok "order=name sorts by name" || bad "order=name"
req GET "$L2?per_page=50&order=name&direction=desc" -H "$T2"; expect 200 - "order=name desc"
jq -e '[.result[] | select(.name != null) | .name] == ["zeta","mid","alpha"]' "$tmp/body" >/dev/null &&
    ok "order=name desc" || bad "order=name desc"
req GET "$L2?per_page=50&order=created_at" -H "$T2"; expect 200 - "order=created_at"
jq -e '[.result[] | select(.name != null) | .name] == ["zeta","alpha","mid"]' "$tmp/body" >/dev/null &&
    ok "order=created_at" || bad "order=created_at"
for o in account_tag bogus; do
	req GET "$CSRS?order=$o" -H "$(W)"; expect 400 6008 "order=$o refused"
done
jq -e '.errors[0].error_chain[0] == {"code":11000,"message":"order variable must be name or created_at"}' \
    "$tmp/body" >/dev/null && ok "order error chain" || bad "order error chain"

echo "# == get and delete"
req GET $CSRS/$ID -H "$(W)"; expect 200 - "get"
if jq -e --arg l "$KC_LABEL" '(.result.key_uri | startswith("pkcs11:token=" + $l + ";id=%")
    and endswith(";type=private")) and (.result.key_id | test("^[0-9a-f]{32}$")) and
    .result.module_key_uri == "pkcs11:token=keycustody;id=" +
    (.result.key_uri | sub(".*;id="; "") | sub(";type=private"; "")) + ";type=private"' \
    "$tmp/body" >/dev/null; then ok "get: key_uri, module_key_uri and key_id (extensions)"
else bad "get: key_uri/key_id: $(jq -c '[.result.key_uri, .result.module_key_uri, .result.key_id]' "$tmp/body")"; fi
jq -e --slurpfile c "$tmp/p256.json" '.result == $c[0].result' "$tmp/body" >/dev/null && ok || bad "get equals create"
req GET $CSRS/$ID -H "Authorization: Bearer $KC_TOKEN_R"; expect 200 - "reader gets"
for bid in not-a-uuid 12345 "$(echo "$ID" | tr a-f A-F)" "${ID}0"; do
	req GET "$CSRS/$bid" -H "$(W)"; expect 400 1418 "get malformed id $bid"
	req DELETE "$CSRS/$bid" -H "$(W)"; expect 400 1418 "delete malformed id $bid"
done
jq -e '.errors[0].message == "The custom CSR ID is invalid. Check your input and try again."' "$tmp/body" >/dev/null && ok || bad "1418 message"
req GET $CSRS/3f1e4b2a-9c1d-4e7f-8a2b-5c6d7e8f9a0b -H "$(W)"; expect 404 1419 "unknown id"
jq -e '.errors[0].message == "The custom CSR was not found."' "$tmp/body" >/dev/null && ok || bad "1419 message"
req GET $CSRS/$first -H "$(W)"; expect 404 1419 "other zone's id (get)"
req DELETE $CSRS/$first -H "$(W)"; expect 404 1419 "other zone's id (delete)"
req GET $L2/$first -H "$T2"; expect 200 - "still there in its zone"
req DELETE $CSRS/$ID -H "Authorization: Bearer $KC_TOKEN_R"; expect 403 10000 "reader may not delete"
req DELETE $CSRS/$ID -H "$(W)"; expect 200 - "delete"
jq -e --arg id "$ID" '.result == {"id": $id} and .success == true' "$tmp/body" >/dev/null && ok || bad "delete result"
req GET $CSRS/$ID -H "$(W)"; expect 404 1419 "get after delete"
req DELETE $CSRS/$ID -H "$(W)"; expect 404 1419 "delete twice"

echo "# == client gone mid-request, then the shim still answers"
curl -sS -o /dev/null --max-time 0.05 -X POST "$KC_HTTP_URL$CSRS" -H "$(W)" -d "$(mk 'key_type: "rsa4096"')" 2>/dev/null
sleep 0.2
req GET /healthz; expect 200 - "healthz after a client left"
kill -0 "$KC_HTTP_PID" 2>/dev/null && ok || bad "shim died"

echo "# == daemon unreachable: 503/1503 with Retry-After, then reconnection"
port2=$(kc_free_port)
"$KC_HTTP" -d -p "$port2" -s "$tmp/later.sock" -c "$tmp/credentials" >"$tmp/http2.log" 2>&1 &
pid2=$!
U2=http://127.0.0.1:$port2/client/v4
i=0; until curl -s -o /dev/null "$U2/healthz" || [ $i -gt 50 ]; do i=$((i + 1)); sleep 0.1; done
st=$(curl -sS -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' "$U2$CSRS" -H "$(W)")
expect 503 1503 "daemon down"
grep -qi '^retry-after: [0-9]' "$tmp/hdr" && ok || bad "Retry-After missing"
st=$(curl -sS -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' "$U2/healthz")
[ "$st" = 503 ] && ok || bad "healthz with the daemon down: $st"
ln -s "$KEYCUSTODY_SOCKET" "$tmp/later.sock"
i=0; st=0
while [ "$st" != 200 ] && [ $i -lt 80 ]; do
	sleep 0.1; i=$((i + 1))
	st=$(curl -sS -o "$tmp/body" -w '%{http_code}' "$U2$CSRS" -H "$(W)")
done
[ "$st" = 200 ] && ok || bad "no reconnection after the daemon came up ($st)"
kill "$pid2"; wait "$pid2" 2>/dev/null; pid2=

kc_done
