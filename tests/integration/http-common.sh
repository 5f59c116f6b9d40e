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
