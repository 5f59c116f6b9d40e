#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-bench-smoke.sh: the bench/ tools run with tiny counts and print their result lines:
# p11-ceiling (CSRs, keygen-only and destroy), p11-sign, keycustody-bench over the socket and over
# HTTP (create/list/get, and issue 14's delete and mixed modes with uploads signed by a CA
# made here), baseline.sh and bench/run (with its scale section at tiny sizes). Works-or-not
# only: no timing is asserted (issues 7 and 14).

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/http-common.sh"

CEIL="$top_builddir/bench/p11-ceiling"
BENCH="$top_builddir/bench/keycustody-bench"
[ -x "$CEIL" ] && [ -x "$BENCH" ] || { echo "SKIP: bench tools not built"; exit 77; }

cleanup() { kc_stop_http; kc_cleanup; }
trap cleanup EXIT
command -v openssl >/dev/null || { echo "SKIP: openssl missing (contrib/deps)"; exit 77; }
kc_token
# The CA that signs the uploads' certificates (issue 14's mixed workload).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=keycustody bench CA" -keyout "$KC_TMP/ca.key" -out "$KC_TMP/ca.pem" \
    >/dev/null 2>&1 || { echo "Bail out: openssl could not make the CA"; exit 1; }
printf 'trust_bundle = %s\n' "$KC_TMP/ca.pem" >>"$KC_TMP/keycustodyd.conf"
kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }

# has_line FILE PATTERN KEY=VALUE...: FILE has a line matching PATTERN carrying each pair.
has_line() {
	f=$1 p=$2; shift 2
	l=$(grep "$p" "$f" | head -1)
	[ -n "$l" ] || return 1
	for kv in "$@"; do
		case " $l " in *" $kv "*) ;; *) return 1 ;; esac
	done
}

check "p11-ceiling: 2 key pairs" sh -c '"$0" -G -n 2 -T 2 -l bench-fill- -p "$1" -t "$2" \
    -m "$3" >"$4/ceil-g.out"' "$CEIL" "$KC_PIN" "$KC_LABEL" "$KC_MODULE" "$KC_TMP"
check "p11-ceiling: keygen-only line" has_line "$KC_TMP/ceil-g.out" '^CEILING ' ok=2 failed=0

# p11-sign (issue 16): one of those pairs through libp11's engine, logged in with the PIN file.
SIGN="$top_builddir/bench/p11-sign"
# The first of them by CKA_ID (the ID line after its bench-fill- label), as %xx in the URI.
fill=$(pkcs11-tool --module "$KC_MODULE" --token-label "$KC_LABEL" --login --pin "$KC_PIN" \
    --list-objects --type privkey 2>/dev/null |
    awk '/label: *bench-fill-/ { f = 1 } f && /ID:/ { print $2; exit }' | sed 's/../%&/g')
check "p11-sign: P-256 through the engine" sh -c '"$0" -m "$1" -p "$2" -d 0.3 -w 2 \
    -k "pkcs11:token=$3;id=$4;type=private" >"$5/sign.out"' "$SIGN" "$KC_MODULE" \
    "$KC_TMP/pin" "$KC_LABEL" "$fill" "$KC_TMP"
check "p11-sign: its result line" grep -q '^signs=[1-9][0-9]* failed=0 .* p99_ms=' \
    "$KC_TMP/sign.out"
check "p11-ceiling: 3 pairs made and destroyed" sh -c '"$0" -X -n 3 -T 1 -p "$1" -t "$2" \
    -m "$3" >"$4/ceil-x.out"' "$CEIL" "$KC_PIN" "$KC_LABEL" "$KC_MODULE" "$KC_TMP"
check "p11-ceiling: destroy line" has_line "$KC_TMP/ceil-x.out" '^DESTROY ' ok=3
check "p11-ceiling: 3 CSRs" sh -c '"$0" -n 3 -T 2 -p "$1" -t "$2" -m "$3" >"$4/ceil.out"' \
    "$CEIL" "$KC_PIN" "$KC_LABEL" "$KC_MODULE" "$KC_TMP"
check "p11-ceiling: CSR line" has_line "$KC_TMP/ceil.out" '^CEILING ' ok=3 failed=0 \
    keygen_only=0

check "bench over the socket: 3 creates" sh -c '"$0" -s "$1" -c 2 -n 3 -k p256v1 \
    -p daemon="$2" -T smoke >"$3/b1.out"' "$BENCH" "$KEYCUSTODY_SOCKET" "$DAEMON_PID" "$KC_TMP"
check "bench over the socket: result line" has_line "$KC_TMP/b1.out" '^BENCH ' mode=socket \
    ok=3 errors=0
check "bench over the socket: RSS line" grep -q '^rss daemon ' "$KC_TMP/b1.out"
check "bench over the socket: CPU per request" grep -q '^cpu daemon .* us per request' \
    "$KC_TMP/b1.out"
check "bench over the socket: list/get" sh -c '"$0" -s "$1" -c 3 -n 20 -m list=1,get=1 \
    >"$2/b2.out"' "$BENCH" "$KEYCUSTODY_SOCKET" "$KC_TMP"
check "bench list/get: result line" has_line "$KC_TMP/b2.out" '^BENCH ' ok=20 errors=0
check "bench: 4 deletes of 4 CSRs made first" sh -c '"$0" -s "$1" -c 2 -n 4 -F 4 -m delete=1 \
    -p daemon="$2" >"$3/b5.out"' "$BENCH" "$KEYCUSTODY_SOCKET" "$DAEMON_PID" "$KC_TMP"
check "bench delete: result line" has_line "$KC_TMP/b5.out" '^BENCH ' prefill=4 ok=4 errors=0
check "bench delete: only deletes timed" grep -q '^delete  *4 *0 ' "$KC_TMP/b5.out"
check "bench: a mixed run with uploads" sh -c '"$0" -s "$1" -c 2 -n 30 -F 8 \
    -m create=1,delete=1,list=1,get=1,upload=1 -C "$2/ca.pem" -K "$2/ca.key" \
    >"$2/b6.out"' "$BENCH" "$KEYCUSTODY_SOCKET" "$KC_TMP"
check "bench mixed: result line" has_line "$KC_TMP/b6.out" '^BENCH ' ok=30 errors=0
check "bench mixed: uploads made" grep -q '^upload  *[1-9]' "$KC_TMP/b6.out"
check "bench mixed: the hostnames are stored" sh -c '"$0" hostname list --zone "$1" |
    grep -q "acme-corp.co.uk"' "$KEYCUSTODYCTL" "$KC_ZONE"
check "bench: uploads without a CA are refused" sh -c '"$0" -s "$1" -n 1 -m upload=1 \
    2>/dev/null; test $? -eq 2' "$BENCH" "$KEYCUSTODY_SOCKET"

kc_start_http "$KC_TMP" || { not_ok "keycustody-http did not start"; kc_done; }
base=${KC_HTTP_URL%/client/v4}
check "bench over HTTP: 2 creates, 10 list/get" sh -c '"$0" -u "$1" -a "$2" -c 2 -n 12 \
    -m create=1,list=2,get=2 -p shim="$3" >"$4/b3.out"' "$BENCH" "$base" "$KC_TOKEN_W" \
    "$KC_HTTP_PID" "$KC_TMP"
check "bench over HTTP: result line" has_line "$KC_TMP/b3.out" '^BENCH ' mode=http ok=12 \
    errors=0
check "bench over HTTP: deletes and uploads" sh -c '"$0" -u "$1" -a "$2" -c 2 -n 6 -F 4 \
    -m delete=1,upload=1 -C "$3/ca.pem" -K "$3/ca.key" >"$3/b7.out"' "$BENCH" "$base" \
    "$KC_TOKEN_W" "$KC_TMP"
check "bench over HTTP: deletes and uploads line" has_line "$KC_TMP/b7.out" '^BENCH ' \
    mode=http ok=6 errors=0
check "bench over HTTP: a read-only token is refused, and counted" sh -c '"$0" -u "$1" \
    -a "$2" -n 2 >"$3/b4.out"; test $? -eq 1' "$BENCH" "$base" "$KC_TOKEN_R" "$KC_TMP"
check "bench: errors by HTTP status" grep -q '^error http:403 ' "$KC_TMP/b4.out"
kc_stop_http

if command -v pkcs11-tool >/dev/null 2>&1 && [ -f "${KC_ENGINE:-/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so}" ]; then
	check "baseline.sh: 1 CSR" sh -c '"$0" -n 1 -p "$1" -t "$2" -m "$3" >"$4/base.out"' \
	    "$top_srcdir/bench/baseline.sh" "$KC_PIN" "$KC_LABEL" "$KC_MODULE" "$KC_TMP"
	check "baseline.sh: result line" has_line "$KC_TMP/base.out" '^BASELINE ' ok=1 failed=0
else
	echo "# pkcs11-tool or libp11's engine missing: baseline.sh not run"
fi

kc_stop_daemon
check "bench/run: one tiny case" sh -c 'TMPDIR="$1" "$0" -B "$2" -d 1 -k p256v1 -f 3 \
    -s direct -b 1 -L 3 -o "$1/run.out" >"$1/run.log" 2>&1' "$top_srcdir/bench/run" \
    "$KC_TMP" "$top_builddir"
check "bench/run: the ratio table" grep -q '^p256v1 *3 direct ' "$KC_TMP/run.out"
check "bench/run: the list/get table" grep -q '^socket ' "$KC_TMP/run.out"
check "bench/run --scale: two tiny sizes" sh -c 'TMPDIR="$1" "$0" -B "$2" --scale "3 5" \
    --scale-only -d 1 -N 4 -r 1 -o "$1/scale.out" >"$1/scale.log" 2>&1' "$top_srcdir/bench/run" \
    "$KC_TMP" "$top_builddir"
check "bench/run --scale: start-up and RSS per size" sh -c 'grep -q "^SCALE size=5 startup_s=[0-9.]* .*rss_kb=[0-9][0-9]* destroy_p50_ms=[0-9.]* destroy_cpu_us=[0-9.]*$" "$0/scale.out"' "$KC_TMP"
for op in create delete upload list get mix; do
	# The scale table's rows have 6 fields; keycustody-bench's own tables, 8.
	check "bench/run --scale: $op at both sizes" sh -c 'test "$(awk -v op="$1" \
	    "\$1 == op && (\$2 == 3 || \$2 == 5) && NF == 6" "$0/scale.out" | wc -l)" -eq 2' \
	    "$KC_TMP" "$op"
done
check "bench/run --scale: creates beside deletes" sh -c 'awk "\$1 == 5 && NF == 6 &&
    \$2 > 0 && \$5 > 0 { f = 1 } END { exit !f }" "$0/scale.out"' "$KC_TMP"
check "bench/run --scale: no token search" sh -c 'test "$(grep -c "^SCALE_HEALTH .* 0 searches$" \
    "$0/scale.out")" -eq 2' "$KC_TMP"
check "bench/ab: one tiny round, this build against itself" sh -c '"$0" -r 1 -d 1 -c 2 \
    -f 3 -L 3 -o "$1/ab.out" "$2" "$2" >"$1/ab.log" 2>&1' "$top_srcdir/bench/ab" "$KC_TMP" \
    "$top_builddir"
check "bench/ab: a row per build and path" sh -c 'test "$(grep -c "^[AB] *1 \(socket\|http\) " \
    "$0/ab.out")" -eq 4' "$KC_TMP"
check "bench/ab: the medians" grep -q '^http *shim_us ' "$KC_TMP/ab.out"
[ "$KC_FAILED" -eq 0 ] || sed 's/^/#   /' "$KC_TMP/run.log" "$KC_TMP/scale.log" \
    "$KC_TMP/ab.log" | tail -40
kc_done
