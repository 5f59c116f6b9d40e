#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-issue-12-http.sh: keycustody-http against hostile peers (issue 12, point 1), on
# loopback, each attack bounded in time and count: slow headers, an idle connection, a
# slow body, bodies sent before authentication, a connection flood (per address, in all,
# with the reserve still served), the descriptor limit (ulimit -n), and strict framing
# (conflicting Content-Length, Content-Length with chunked, a NUL in a header value,
# duplicate Authorization, too many header lines, unknown methods). Each limit must show
# in /metrics, and the shim must still answer afterwards.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
. "$here/http-common.sh"
for p in curl jq python3; do
	command -v $p >/dev/null 2>&1 || { echo "SKIP: $p missing"; exit 77; }
done
kc_setup || exit 1
tmp=$KC_TMP/http
mkdir -p "$tmp"
pid2=
cleanup()
{
	kc_stop_http
	if [ -n "$pid2" ]; then kill "$pid2" 2>/dev/null; wait "$pid2" 2>/dev/null; fi
	kc_cleanup
}
trap cleanup EXIT
# Small limits, so that every attack is quick; 127.0.0.2 is the operators' reserve.
kc_start_http "$tmp" --header-timeout-ms 1000 --body-timeout-ms 1500 \
    --max-connections 40 --max-connections-per-address 10 --reserved-connections 5 \
    --reserve 127.0.0.2 --max-headers 20 || exit 1
kc_raw_client "$tmp/raw.py"
raw() { python3 "$tmp/raw.py" "$KC_HTTP_PORT" "$@"; }
hex() { printf '%b' "$1" | od -An -v -tx1 | tr -d ' \n'; }
CSRS=/client/v4/zones/$KC_ZONE/custom_csrs
AUTH="Authorization: Bearer $KC_TOKEN_W"
limited() { kc_metric "keycustody_http_limited_total{limit=\"$1\"}"; }
# within WHAT OUT LIMIT: OUT is "closed SECONDS" with SECONDS <= LIMIT
within() {
	case $2 in
	"closed "*) if awk -v t="${2#closed }" -v l="$3" 'BEGIN { exit !(t <= l) }'; then
			ok "$1 (${2#closed } s)"
		else not_ok "$1: closed after ${2#closed } s, limit $3 s"; fi ;;
	*) not_ok "$1: $2" ;;
	esac
}

echo "# == deadlines"
# One header byte every 0.3 s: a timeout reset by every byte never fires; ours does.
out=$(raw drip "" "$(hex "GET /client/v4/healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")" 0.3 6)
within "slow headers are cut at the header deadline" "$out" 2.5
out=$(raw idle 6)
within "an idle connection is cut at the header deadline" "$out" 2.5
# An authenticated body of 100 bytes, one byte every 0.3 s: cut at the body deadline.
out=$(raw drip "$(hex "POST $CSRS HTTP/1.1\r\nHost: x\r\n$AUTH\r\nContent-Length: 100\r\n\r\n")" \
    "$(hex "{\"country\":\"US\",\"x\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")" 0.3 8)
case $out in "closed 0."*) not_ok "a slow body is cut by the header deadline: $out";;
*) within "a slow body is cut at the body deadline" "$out" 2.5;; esac
[ "$(limited header_timeout)" -ge 2 ] && ok "header timeouts counted" || not_ok "header timeouts counted: $(limited header_timeout)"
[ "$(limited body_timeout)" -ge 1 ] && ok "body timeouts counted" || not_ok "body timeouts counted: $(limited body_timeout)"

echo "# == authentication before the body"
# Headers only, a body of 500 kB announced and never sent: the answer comes at once.
check_eq "no credential: 400/9106 before the body" "HTTP/1.1 400 Bad Request|9106" \
    "$(raw send "$(hex "POST $CSRS HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n")" 1.5 |
    sed 's/|[^0-9]*"code":\([0-9]*\).*/|\1/')"
check_eq "unknown token: 403/10000 before the body" "HTTP/1.1 403 Forbidden|10000" \
    "$(raw send "$(hex "POST $CSRS HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Length: 500000\r\n\r\n")" 1.5 |
    sed 's/|[^0-9]*"code":\([0-9]*\).*/|\1/')"
check_eq "read-only credential: 403/10000 before the body" "HTTP/1.1 403 Forbidden|10000" \
    "$(raw send "$(hex "POST $CSRS HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $KC_TOKEN_R\r\nExpect: 100-continue\r\nContent-Length: 500000\r\n\r\n")" 1.5 |
    sed 's/|[^0-9]*"code":\([0-9]*\).*/|\1/')"
check_eq "no route: 400/7003 before the body" "HTTP/1.1 400 Bad Request|7003" \
    "$(raw send "$(hex "POST /client/v4/nope HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n")" 1.5 |
    sed 's/|[^0-9]*"code":\([0-9]*\).*/|\1/')"
[ "$(limited refused_before_body)" -ge 4 ] && ok "refusals before the body counted" ||
    not_ok "refusals before the body counted: $(limited refused_before_body)"
req() { m=$1; p=$2; shift 2; st=$(curl -sS -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' -X "$m" "http://127.0.0.1:$KC_HTTP_PORT$p" "$@"); }
req POST $CSRS -H "$AUTH" -d '{"country":"USA"}'
expect 400 1405 "an authenticated body is still read and checked"

echo "# == framing"
# frame NAME STATUS CODE REQUEST
frame() {
	got=$(raw send "$(hex "$4")" 2 | sed 's/^HTTP\/1.1 \([0-9]*\) [^|]*|.*"code":\([0-9]*\).*/\1 \2/')
	check_eq "$1" "$2 $3" "$got"
}
frame "conflicting Content-Length: 400" 400 6003 \
    "POST $CSRS HTTP/1.1\r\nHost: x\r\n$AUTH\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}"
frame "Content-Length with chunked: 400" 400 6003 \
    "POST $CSRS HTTP/1.1\r\nHost: x\r\n$AUTH\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
frame "HEAD with a body (evhttp would read it as a request): 400" 400 6003 \
    "HEAD /client/v4/healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 27\r\n\r\nGET /client/v4/nope HTTP/1.1\r\n\r\n"
frame "a NUL in a header value: 400" 400 6003 \
    "GET /client/v4/healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n"
frame "duplicate Authorization: 400" 400 6003 \
    "GET $CSRS HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n$AUTH\r\n\r\n"
frame "a blank before the colon: 400" 400 6003 \
    "GET /client/v4/healthz HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\n"
many=$(i=0; while [ $i -lt 25 ]; do printf 'X-H%d: v\\r\\n' $i; i=$((i + 1)); done)
frame "more header lines than the cap: 431" 431 6003 \
    "GET /client/v4/healthz HTTP/1.1\r\n$many\r\n"
frame "an unknown method on a route: 405" 405 7001 \
    "FOO $CSRS HTTP/1.1\r\nHost: x\r\n$AUTH\r\n\r\n"
out=$(raw send "$(hex "FOO $CSRS HTTP/1.1\r\nHost: x\r\n\r\n")")
req GET /client/v4/healthz
case $(printf '%s' "$out" | cut -c1-12) in "HTTP/1.1 405") ok "405 again";; *) not_ok "405 again: $out";; esac
st=$(python3 - "$KC_HTTP_PORT" "$CSRS" <<'EOP'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"FOO " + sys.argv[2].encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
s.settimeout(3)
print(s.recv(4096).decode("latin-1").lower().replace("\r\n", "|"))
EOP
)
case $st in *"allow: get, post"*"x-should-retry: false"*|*"x-should-retry: false"*"allow: get, post"*)
	ok "the 405 names the methods, and is not retried";;
	*) not_ok "the 405 names the methods, and is not retried: $st";; esac
[ "$(limited framing)" -ge 5 ] && ok "framing refusals counted" || not_ok "framing refusals counted: $(limited framing)"
[ "$(limited method)" -ge 2 ] && ok "unknown methods counted" || not_ok "unknown methods counted: $(limited method)"
[ "$(limited header_count)" -ge 1 ] && ok "header line cap counted" || not_ok "header line cap counted"
req GET /client/v4/healthz
check_eq "healthz after the framing refusals" 200 "$st"

echo "# == connection flood"
# Idle connections stay until the header deadline: a shim with the default one.
kc_stop_http
kc_http_run "$tmp" --max-connections 40 --max-connections-per-address 10 \
    --reserved-connections 5 --reserve 127.0.0.2 || exit 1
# 30 from 127.0.0.1: 10 admitted (per address), 20 refused; held open meanwhile.
raw flood 127.0.0.1 30 6 >"$tmp/flood1" &
f1=$!
sleep 1
check_eq "per-address cap: 20 of 30 refused" 20 "$(head -1 "$tmp/flood1")"
# 30 more from three other addresses: 35 slots outside the reserve, 10 taken: 25 in.
raw flood 127.0.0.3 10 5 >"$tmp/flood3" &
f3=$!
raw flood 127.0.0.4 10 5 >"$tmp/flood4" &
f4=$!
raw flood 127.0.0.5 10 5 >"$tmp/flood5" &
f5=$!
sleep 1.5
n=$(($(head -1 "$tmp/flood3") + $(head -1 "$tmp/flood4") + $(head -1 "$tmp/flood5")))
check_eq "total cap: 5 of 30 refused, the reserve kept" 5 "$n"
check_eq "a client outside the reserve is refused now: 503, JSON 1503, Retry-After" \
    "HTTP/1.1 503 Service Unavailable|1503|1" \
    "$(python3 - "$KC_HTTP_PORT" <<'EOP'
import json, socket, sys
s = socket.socket(); s.bind(("127.0.0.6", 0)); s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /client/v4/healthz HTTP/1.1\r\nHost: x\r\n\r\n"); s.settimeout(3)
out = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    out += b
head, _, body = out.decode("latin-1").partition("\r\n\r\n")
lines = head.split("\r\n")
ra = [l.split(":")[1].strip() for l in lines if l.lower().startswith("retry-after:")]
print("%s|%s|%s" % (lines[0], json.loads(body)["errors"][0]["code"], ra[0] if ra else ""))
EOP
)"
check_eq "the reserve (127.0.0.2) is served during the flood" 200 \
    "$(curl -sS -o /dev/null -w '%{http_code}' --interface 127.0.0.2 "$KC_HTTP_URL/healthz")"
conns=$(curl -sS --interface 127.0.0.2 "${KC_HTTP_URL%/client/v4}/metrics" |
    awk '$1 == "keycustody_http_connections" { print $2 }')
check_eq "open connections in /metrics" 36 "$conns"
wait $f1 $f3 $f4 $f5
[ "$(limited connections_per_address)" -ge 20 ] && ok "per-address refusals counted" ||
    not_ok "per-address refusals counted: $(limited connections_per_address)"
[ "$(limited connections)" -ge 6 ] && ok "total refusals counted" ||
    not_ok "total refusals counted: $(limited connections)"
req GET /client/v4/healthz
check_eq "healthz after the flood" 200 "$st"
check "the shim is alive" kill -0 "$KC_HTTP_PID"
n=$(grep -c 'connection refused' "$tmp/http.log")
[ "$n" -le 15 ] && ok "refusals logged at a limited rate ($n lines for 56)" ||
    not_ok "refusals logged at a limited rate: $n lines"

echo "# == the descriptor limit"
# A second shim with 64 descriptors and the default limits; 200 connections at once.
mkdir -p "$tmp/fd"
cp "$tmp/credentials" "$tmp/fd/credentials"
port2=$(kc_free_port)
(ulimit -n 64 && exec "$KC_HTTP" -d -l 127.0.0.1 -p "$port2" -s "$KEYCUSTODY_SOCKET" \
    -c "$tmp/fd/credentials" --sandbox "${KC_SANDBOX:-enforce}") >"$tmp/fd/http.log" 2>&1 &
pid2=$!
i=0
until curl -fsS -o /dev/null "http://127.0.0.1:$port2/client/v4/healthz" 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 100 ] || break; sleep 0.1
done
t0=$(kc_cpu_ticks $pid2)
python3 "$tmp/raw.py" "$port2" flood 127.0.0.1 200 3 >/dev/null &
f1=$!
sleep 1
python3 "$tmp/raw.py" "$port2" flood 127.0.0.7 100 2 >/dev/null &
f2=$!
wait $f1 $f2
t1=$(kc_cpu_ticks $pid2)
hz=$(getconf CLK_TCK)
[ $((t1 - t0)) -le $((hz / 2)) ] && ok "no busy loop at the descriptor limit ($((t1 - t0)) ticks in 3 s)" ||
    not_ok "busy loop at the descriptor limit: $((t1 - t0)) ticks in 3 s"
n=$(grep -c -i 'accept' "$tmp/fd/http.log")
[ "$n" -le 30 ] && ok "accept errors logged at a limited rate ($n lines)" ||
    not_ok "accept errors logged at a limited rate: $n lines"
grep -q 'max_connections lowered' "$tmp/fd/http.log" && ok "the cap is fitted to the descriptor limit" ||
    not_ok "the cap is not fitted to the descriptor limit"
i=0
until [ "$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port2/client/v4/healthz" 2>/dev/null)" = 200 ]; do
	i=$((i + 1)); [ $i -lt 30 ] || break; sleep 0.1
done
[ $i -lt 30 ] && ok "served again after the flood" || not_ok "not served again after the flood"
kill "$pid2"; wait "$pid2" 2>/dev/null
pid2=
kc_check_sanitizer_log "$tmp/fd/http.log" keycustody-http

# Failed logins are counted, by reason.
authfail() {
	curl -sS "${KC_HTTP_URL%/client/v4}/metrics" |
	    awk -v r="$1" '$1 == "keycustody_http_auth_failures_total{reason=\"" r "\"}" { print $2 }'
}
m0=$(authfail malformed) u0=$(authfail unknown)
for i in 1 2 3; do
	req GET "/client/v4/zones/$KC_ZONE/custom_csrs" -H "Authorization: Bearer wrongwrongwrongwrong$i"
done
req GET "/client/v4/zones/$KC_ZONE/custom_csrs" -H "Authorization: Basic abc"
check_eq "unknown tokens counted in /metrics" $((u0 + 3)) "$(authfail unknown)"
check_eq "malformed credentials counted in /metrics" $((m0 + 1)) "$(authfail malformed)"

kc_stop_http
kc_check_sanitizer_log "$tmp/http.log" keycustody-http
kc_done
