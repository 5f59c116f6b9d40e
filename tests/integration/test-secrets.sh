#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-secrets.sh: no secret leaks. The PIN arrives on a file descriptor (--pin-fd), never in
# argv or the environment; after a session of normal and failing requests, through the CLI
# and the HTTP shim, neither the PIN nor an API secret appears in any log, the audit log,
# any error message, the process's argv/environ, or the output of a forced crash; and the
# crash leaves no core file.

KC_PIN=kc-secret-pin-7f3a9c21e5d8b604	# not exported: the daemon must not inherit it
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
. "$here/http-common.sh"
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl missing"; exit 77; }
kc_token
# No pin_file: the PIN comes on descriptor 3, from a file the test then removes.
sed -i '/^pin_file/d' "$KC_TMP/keycustodyd.conf"
printf '%s\n' "$KC_PIN" >"$KC_TMP/pin.fd"
"$KEYCUSTODYD" -d -f "$KC_TMP/keycustodyd.conf" --pin-fd 3 3<"$KC_TMP/pin.fd" \
    >>"$KC_TMP/keycustodyd.log" 2>&1 &
DAEMON_PID=$!
rm -f "$KC_TMP/pin.fd"
i=0
until ctl health >/dev/null 2>&1 || [ $i -gt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "the daemon starts with --pin-fd" ctl health
cleanup() { kc_stop_http; kc_cleanup; }
trap cleanup EXIT
kc_start_http "$KC_TMP" || { echo "Bail out: shim did not start"; exit 1; }

out=$KC_TMP/outputs
: >"$out"
# Normal work and failures, through both front doors; every output is kept.
kc_csr p256v1 s.acme-corp.co.uk s.acme-corp.co.uk >>"$out" 2>&1
ctl csr create --zone $KC_ZONE --country XX1 >>"$out" 2>&1
ctl csr get --zone $KC_ZONE 00000000-0000-4000-8000-000000000000 >>"$out" 2>&1
for auth in "Authorization: Bearer $KC_TOKEN_W" "Authorization: Bearer wrong$KC_TOKEN_W" \
    "Authorization: Basic $KC_TOKEN_W"; do
	curl -sS -H "$auth" "$KC_HTTP_URL/zones/$KC_ZONE/custom_csrs" >>"$out" 2>&1
	curl -sS -H "$auth" -X POST -d '{"country":' \
	    "$KC_HTTP_URL/zones/$KC_ZONE/custom_csrs" >>"$out" 2>&1
done
curl -sS -H "X-Auth-Email: $KC_EMAIL" -H "X-Auth-Key: bad$KC_KEY" \
    "$KC_HTTP_URL/zones/$KC_ZONE/custom_csrs" >>"$out" 2>&1
curl -sS "$KC_HTTP_URL/../metrics" >>"$out" 2>&1

# The process's argv and environment.
tr '\0' '\n' </proc/$DAEMON_PID/cmdline >"$KC_TMP/cmdline"
tr '\0' '\n' </proc/$DAEMON_PID/environ >"$KC_TMP/environ" 2>/dev/null
tr '\0' '\n' </proc/$KC_HTTP_PID/cmdline >"$KC_TMP/http-cmdline"

# A forced crash: SIGABRT. No core file may appear, and its output is searched too.
cd "$KC_TMP" || exit 1
kill -ABRT "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
check "no core file after a crash" test -z "$(find "$KC_TMP" -name 'core*' -type f)"

leaks=0
for secret in "$KC_PIN" "$KC_TOKEN_W" "$KC_TOKEN_R" "$KC_KEY"; do
	for f in "$KC_TMP/keycustodyd.log" "$KC_TMP/http.log" "$KC_TMP/audit.log" "$out" \
	    "$KC_TMP/cmdline" "$KC_TMP/environ" "$KC_TMP/http-cmdline"; do
		if grep -qF -- "$secret" "$f" 2>/dev/null; then
			not_ok "a secret appears in $(basename "$f")"
			leaks=$((leaks + 1))
		fi
	done
done
[ $leaks -eq 0 ] && ok "no PIN or API secret in any log, output, argv or environment"
# The credentials file holds hashes only.
for secret in "$KC_TOKEN_W" "$KC_TOKEN_R" "$KC_KEY"; do
	grep -qF -- "$secret" "$KC_TMP/credentials" && not_ok "an API secret is stored in clear"
done
ok "the credentials file stores no secret in clear"
check_eq "the credentials file is mode 0600" 600 "$(stat -c %a "$KC_TMP/credentials")"

kc_done
