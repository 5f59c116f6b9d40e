# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# http-common.sh: helpers for the keycustody-http integration tests; sourced after common.sh
# (kc_setup: token, daemon, KEYCUSTODY_SOCKET; KC_HTTP, KC_ZONE, KC_ZONE2, KC_TMP), and the
# request and check helpers that the curl tests share.

# A free TCP port on 127.0.0.1.
kc_free_port()
{
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# kc_start_http DIR [ARGS...]: write credentials under DIR (kc_http_creds), then start the
# shim on a free port with ARGS added (kc_http_run).
kc_start_http()
{
	kc_http_creds "$1" && kc_http_run "$@"
}

# kc_http_creds DIR: write the test credentials to DIR/credentials, once per DIR.
# Exports KC_ZONE, KC_ZONE2, KC_TOKEN_W (write, all zones), KC_TOKEN_R (read, KC_ZONE),
# KC_TOKEN_Z2 (write, KC_ZONE2 only) and KC_EMAIL/KC_KEY (write, KC_ZONE).
kc_http_creds()
{
	http=${KC_HTTP:-${top_builddir:-.}/keycustody-http}
	creds=$1/credentials
	KC_ZONE=${KC_ZONE:-023e105f4ecef8ad9ca31a8372d0c353}
	KC_ZONE2=${KC_ZONE2:-372e67954025e0ba6aaa6d586b9e0b59}
	KC_EMAIL=ops@acme-corp.co.uk
	KC_TOKEN_W=$("$http" credential add --name test-writer --zone '*' --access write -c "$creds") || return 1
	KC_TOKEN_R=$("$http" credential add --name test-reader --zone $KC_ZONE --access read -c "$creds") || return 1
	KC_TOKEN_Z2=$("$http" credential add --name test-zone2 --zone $KC_ZONE2 --access write -c "$creds") || return 1
	KC_KEY=$("$http" credential add --name test-key --zone $KC_ZONE --access write --email $KC_EMAIL -c "$creds") || return 1
	export KC_ZONE KC_ZONE2 KC_TOKEN_W KC_TOKEN_R KC_TOKEN_Z2 KC_EMAIL KC_KEY
}

# kc_http_run DIR [ARGS...]: start the shim with DIR/credentials on a free port of
# 127.0.0.1, ARGS added (options after these override them), log in DIR/http.log, and wait
# until /healthz answers. With KC_HTTP_SCHEME=https, the URL is https and the probes add
# $KC_CURL_TLS (--cacert FILE, a client certificate...; no blanks in the paths).
# Exports KC_HTTP_URL (base .../client/v4), KC_HTTP_PORT and KC_HTTP_PID.
kc_http_run()
{
	dir=$1
	shift
	http=${KC_HTTP:-${top_builddir:-.}/keycustody-http}
	KC_HTTP_PORT=$(kc_free_port)
	"$http" -d -l 127.0.0.1 -p "$KC_HTTP_PORT" -s "$KEYCUSTODY_SOCKET" -c "$dir/credentials" \
	    --sandbox "${KC_SANDBOX:-enforce}" "$@" >"$dir/http.log" 2>&1 &
	KC_HTTP_PID=$!
	KC_HTTP_URL=${KC_HTTP_SCHEME:-http}://127.0.0.1:$KC_HTTP_PORT/client/v4
	export KC_HTTP_URL KC_HTTP_PORT KC_HTTP_PID
	kc_http_wait "$dir/http.log"
}

# kc_http_wait LOG: wait until the shim KC_HTTP_PID answers KC_HTTP_URL/healthz.
kc_http_wait()
{
	i=0
	# shellcheck disable=SC2086
	until curl -fsS ${KC_CURL_TLS:-} -o /dev/null "$KC_HTTP_URL/healthz" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 $KC_HTTP_PID 2>/dev/null; then
			echo "keycustody-http did not come up:" >&2
			cat "$1" >&2
			return 1
		fi
		sleep 0.1
	done
}

kc_stop_http()
{
	if [ -n "${KC_HTTP_PID:-}" ]; then
		kill "$KC_HTTP_PID" 2>/dev/null
		wait "$KC_HTTP_PID" 2>/dev/null
		KC_HTTP_PID=
	fi
}

# The checks below write the answer of the last request to $tmp/body and its headers to
# $tmp/hdr: the test sets tmp. ok/not_ok come from common.sh.
bad() { not_ok "$*"; echo "#   body: $(head -c 600 "$tmp/body" | tr '\n' ' ')"; }

# req METHOD PATH [curl args]: sets $st; body in $tmp/body, headers in $tmp/hdr. Over TLS,
# $KC_CURL_TLS is added, as in kc_http_run.
req()
{
	m=$1; p=$2; shift 2
	# shellcheck disable=SC2086
	st=$(curl -sS ${KC_CURL_TLS:-} -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' -X "$m" \
	    "$KC_HTTP_URL$p" "$@")
}
W() { echo "Authorization: Bearer $KC_TOKEN_W"; }

# expect STATUS CODE [CHAIN] DESCRIPTION: check status, first error code (and chain code),
# the envelope and the headers that every answer must carry.
expect()
{
	want=$1; code=$2; shift 2
	chain=
	case "${1:-}" in [0-9]*) chain=$1; shift;; esac
	desc="$*"
	if [ "$st" != "$want" ]; then bad "$desc: status $st, want $want"; return; fi
	if ! grep -qi '^content-type: application/json' "$tmp/hdr"; then bad "$desc: content-type"; return; fi
	if [ "$want" -ge 400 ] && [ "$want" -lt 500 ] && ! grep -qi '^x-should-retry: false' "$tmp/hdr"; then
		bad "$desc: x-should-retry missing"; return
	fi
	if [ "$code" != - ]; then
		got=$(jq -r '.errors[0].code' "$tmp/body" 2>/dev/null)
		[ "$got" = "$code" ] || { bad "$desc: code $got, want $code"; return; }
		jq -e '.success == false and .result == null and (.messages | type == "array")' \
		    "$tmp/body" >/dev/null || { bad "$desc: failure envelope"; return; }
	fi
	if [ -n "$chain" ]; then
		got=$(jq -r '.errors[0].error_chain[0].code' "$tmp/body")
		[ "$got" = "$chain" ] || { bad "$desc: chain $got, want $chain"; return; }
	fi
	ok "$desc"
}

# kc_metric NAME_AND_LABELS: the value of one line of the shim's /metrics (0 when absent),
# e.g. kc_metric 'keycustody_http_limited_total{limit="framing"}'.
kc_metric()
{
	# shellcheck disable=SC2086
	curl -sS ${KC_CURL_TLS:-} "${KC_HTTP_URL%/client/v4}/metrics" |
	    awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }'
}

# kc_cpu_ticks PID: user + system CPU time of PID so far, in clock ticks.
kc_cpu_ticks()
{
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# kc_raw_client FILE: write a small Python raw-socket client for the shim to FILE.
# python3 FILE PORT CMD ... (see its text); every call is bounded in time and count.
kc_raw_client()
{
	cat >"$1" <<'EOP'
import socket, sys, time

port = int(sys.argv[1])

def conn(src="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(1.0)		# a full backlog drops SYNs: do not wait for retries
    s.connect(("127.0.0.1", port))
    s.settimeout(None)
    return s

def closed_within(s, limit):
    """Seconds until the peer closed s (reading and dropping), None if still open."""
    t0 = time.monotonic()
    s.settimeout(0.1)
    while time.monotonic() - t0 < limit:
        try:
            if s.recv(65536) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            pass
        except OSError:
            return time.monotonic() - t0
    return None

def answer(s, limit=3.0):
    """The first answer's status line and body (b"" if none came within limit)."""
    s.settimeout(limit)
    out = body = b""
    try:
        while b"\r\n\r\n" not in out:
            b = s.recv(65536)
            if not b:
                break
            out += b
        head, _, body = out.partition(b"\r\n\r\n")
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":")[1])
                while len(body) < n:
                    b = s.recv(65536)
                    if not b:
                        break
                    body += b
    except OSError:
        pass
    return out.split(b"\r\n", 1)[0].decode("latin-1"), body

def drip(prefix, data, every, limit):
    """Send prefix, then data a byte at a time every `every` s; print how long until
    the close."""
    s = conn()
    s.sendall(prefix)
    t0 = time.monotonic()
    s.settimeout(every)
    for i in range(len(data)):
        try:
            s.send(data[i:i + 1])
            if s.recv(65536) == b"":
                break
        except socket.timeout:
            pass
        except OSError:
            break
        if time.monotonic() - t0 > limit:
            print("open")
            return
    print("closed %.1f" % (time.monotonic() - t0))

cmd = sys.argv[2]
if cmd == "idle":			# idle LIMIT: a connection that sends nothing
    t = closed_within(conn(), float(sys.argv[3]))
    print("open" if t is None else "closed %.1f" % t)
elif cmd == "drip":			# drip PREFIX-HEX HEX EVERY LIMIT
    drip(bytes.fromhex(sys.argv[3]), bytes.fromhex(sys.argv[4]), float(sys.argv[5]),
        float(sys.argv[6]))
elif cmd == "send":			# send HEX [WAIT]: one request, print "status|body"
    s = conn()
    s.sendall(bytes.fromhex(sys.argv[3]))
    st, body = answer(s, float(sys.argv[4]) if len(sys.argv) > 4 else 3.0)
    print("%s|%s" % (st, body.decode("latin-1").strip()))
elif cmd == "flood":			# flood SRC N HOLD: N connections from SRC, hold HOLD s
    socks, refused = [], 0
    for i in range(int(sys.argv[4])):
        try:
            socks.append(conn(sys.argv[3]))
        except OSError:
            refused += 1
    time.sleep(0.3)
    for s in socks:
        s.settimeout(0.01)
        try:
            b = s.recv(4096)
            if b == b"" or b.startswith(b"HTTP/1.1 503"):
                refused += 1
        except socket.timeout:
            pass
        except OSError:
            refused += 1
    print(refused)
    sys.stdout.flush()
    time.sleep(float(sys.argv[5]))
EOP
}
