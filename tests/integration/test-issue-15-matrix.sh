#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-issue-15-matrix.sh: the daemon on other PKCS#11 implementations than SoftHSM2 as
# such, each started by this test in its temporary directory: SoftHSM2 behind p11-kit
# remoting (p11-kit server + p11-kit-client.so, the shape of a network HSM, with the server
# restarted under load), openCryptoki's soft token, tpm2-pkcs11 on swtpm. Every key type
# that the implementation offers runs create / verify / delete / restart; a section whose
# implementation this machine cannot run says why and is skipped (the test as a whole is
# skipped only when none could run). docs/COMPATIBILITY.md has the results.

. "$(dirname "$0")/common.sh"

P11KIT_CLIENT=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
RAN=0
SKIPPED=""

# Our objects in the token, as SoftHSM2 itself sees them.
objects() { kc_token_objects "$SOFTHSM" "$@"; }

hv() { ctl health | sed -n "s/^$1: *//p"; }

flow() { kc_custody_flow "$1" "$2" "$SOFTHSM"; }

# flow_all NAME: every key type the API has (as keycustodyctl's usage lists them): the
# whole flow for each type this token offers (health's "key types"), 1417 naming the
# reason for each it does not.
flow_all() {
	for kt in $("$top_builddir/keycustodyctl" --help 2>&1 |
	    sed -n 's/.*--key-type \([a-z0-9|]*\).*/\1/p' | head -1 | tr '|' ' '); do
		if grep -q "^[a-z ]*: *$kt \|^ *$kt " "$KC_TMP/health.$1"; then
			flow "$1" "$kt"
		else
			kc_csr "$kt" x.acme-corp.co.uk x.acme-corp.co.uk >"$KC_TMP/e.json" 2>&1
			check_eq "$1 $kt: not offered, refused with 1417" 1417 \
			    "$(jget '.errors[0].code' <"$KC_TMP/e.json")"
			echo "# $1 $kt: $(jget '.errors[0].message' <"$KC_TMP/e.json")"
		fi
	done
}

# KC_BENCH_SECS=N: each implementation's P-256 and RSA-2048 CSRs/s over the socket with
# bench/keycustody-bench (2 connections, N seconds), printed for docs/COMPATIBILITY.md.
bench_fig() {
	[ -n "${KC_BENCH_SECS:-}" ] || return 0
	for kt in p256v1 rsa2048; do
		grep -q "$kt " "$KC_TMP/health.$1" || continue
		"$top_builddir/bench/keycustody-bench" -s "$KEYCUSTODY_SOCKET" -c 2 \
		    -d "$KC_BENCH_SECS" -k $kt -T "$1-$kt" -z "$KC_ZONE2" 2>&1 |
		    sed "s/^/# bench $1 $kt: /"
	done
}

# --- SoftHSM2 behind p11-kit remoting ---------------------------------------------------

p11kit_start() {
	rm -f "$KC_TMP/p11.sock"
	p11-kit server -f -n "$KC_TMP/p11.sock" --provider "$SOFTHSM" \
	    "pkcs11:token=$KC_LABEL" >>"$KC_TMP/p11kit.log" 2>&1 &
	P11KIT_PID=$!
	i=0; while [ ! -S "$KC_TMP/p11.sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
	[ -S "$KC_TMP/p11.sock" ]
}
# The server and the p11-kit-remote it forked for each client (the daemon's connection):
# as a network HSM going away, the connection dies with it.
p11kit_stop() {
	[ -n "${P11KIT_PID:-}" ] || return 0
	for c in $(ps -o pid= --ppid "$P11KIT_PID" 2>/dev/null); do kill -TERM "$c"; done
	kill -TERM "$P11KIT_PID" 2>/dev/null; wait "$P11KIT_PID" 2>/dev/null
	P11KIT_PID=
}

# load N: N creates (p256v1 and rsa2048 in turn), each line "RC SECONDS" in load.$1.
load() {
	n=0
	while [ $n -lt "$2" ]; do
		kt=rsa2048; [ $((n % 2)) -eq 0 ] && kt=p256v1
		t0=$(date +%s%N)
		kc_csr $kt "l$1-$n.acme-corp.co.uk" "l$1-$n.acme-corp.co.uk" >/dev/null 2>&1
		rc=$?
		echo "$rc $(( ($(date +%s%N) - t0) / 1000000 ))" >>"$KC_TMP/load.$1"
		n=$((n + 1))
	done
}

p11kit_section() {
	if ! command -v p11-kit >/dev/null 2>&1 || [ ! -f "$P11KIT_CLIENT" ]; then
		SKIPPED="$SKIPPED p11-kit(p11-kit or $P11KIT_CLIENT missing: contrib/deps)"
		return
	fi
	echo "# --- softhsm2 behind p11-kit remoting"
	kc_token
	p11kit_start || { not_ok "p11-kit: server did not start"; return; }
	P11_KIT_SERVER_ADDRESS="unix:path=$KC_TMP/p11.sock"
	export P11_KIT_SERVER_ADDRESS
	sed -i "s|^module = .*|module = $P11KIT_CLIENT|" "$KC_TMP/keycustodyd.conf"
	printf 'request_timeout = 10\nhsm_retry_max = 500\n' >>"$KC_TMP/keycustodyd.conf"
	kc_start_daemon || { not_ok "p11-kit: daemon did not start"; p11kit_stop; return; }
	RAN=$((RAN + 1))
	ctl health >"$KC_TMP/health.p11kit"
	check "p11-kit: health lists rsa2048 and p256v1" \
	    sh -c "grep -q 'rsa2048 ' $KC_TMP/health.p11kit && grep -q 'p256v1 ' $KC_TMP/health.p11kit"
	flow_all p11kit

	# The server restarted under load: every request answered within request_timeout
	# (plus the reply's way back), none half-made.
	rm -f "$KC_TMP"/load.*
	for w in 1 2 3; do load $w 8 & done
	sleep 1
	p11kit_stop
	sleep 0.5
	p11kit_start || not_ok "p11-kit: server did not start again"
	# The daemon and the server are jobs too: wait for the loads by their lines.
	i=0; while [ "$(cat "$KC_TMP"/load.* 2>/dev/null | wc -l)" -lt 24 ] && [ $i -lt 600 ]; do
		sleep 0.1; i=$((i + 1)); done
	check_eq "p11-kit restart: all 24 requests answered" 24 "$(cat "$KC_TMP"/load.* | wc -l)"
	slow=$(awk '$2 > 12000 { n++ } END { print n + 0 }' "$KC_TMP"/load.*)
	check_eq "p11-kit restart: none took longer than request_timeout" 0 "$slow"
	failed=$(awk '$1 != 0 { n++ } END { print n + 0 }' "$KC_TMP"/load.*)
	echo "# p11-kit restart: $failed of 24 creates failed during the restart"
	i=0; while [ "$(hv hsm)" != ok ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	check_eq "p11-kit restart: the token is back" ok "$(hv hsm)"
	check "p11-kit restart: creates work again" kc_csr p256v1 after.acme-corp.co.uk \
	    after.acme-corp.co.uk
	# Nothing half-made: after a restart of the daemon every record has its pair and
	# every pair of ours a record.
	kc_stop_daemon
	kc_start_daemon || { not_ok "p11-kit restart: daemon restart"; p11kit_stop; return; }
	check_eq "p11-kit restart: no record without its key" 0 "$(hv 'records missing key')"
	check_eq "p11-kit restart: no orphan key" 0 "$(hv 'orphan keys')"
	records=$(ctl --json csr list --zone "$KC_ZONE" --per-page 50 | jq length)
	check_eq "p11-kit restart: two objects per record in the token" \
	    $((records * 2)) "$(objects)"
	bench_fig p11kit
	kc_stop_daemon
	p11kit_stop
	unset P11_KIT_SERVER_ADDRESS
}

# --- openCryptoki's soft token ---------------------------------------------------------
#
# pkcsslotd and the library have their paths compiled in (/etc/opencryptoki,
# /var/lib/opencryptoki, /run/pkcsslotd.socket, /run/lock/opencryptoki) and talk over
# System V / POSIX shared memory. So the section runs in a mount namespace of its own
# (unshare -m, root only) with this test's directories bound over those paths and fresh
# /run and /dev/shm: the machine's own openCryptoki, if any, is never seen or touched.

OCK_LIB=/usr/lib/x86_64-linux-gnu/opencryptoki/libopencryptoki.so.0
OCK_SLOT=3
OCK_SO_PIN=87654321

# Runs inside the namespace: the token, pkcsslotd, the daemon, the flow.
ock_inner() {
	T="$KC_TMP/ock"
	mkdir -p "$T/etc" "$T/lib/swtok/TOK_OBJ"
	printf 'version opencryptoki-3.1\nslot %s\n{\nstdll = libpkcs11_sw.so\n}\n' \
	    "$OCK_SLOT" >"$T/etc/opencryptoki.conf"
	chgrp -R pkcs11 "$T/lib" && chmod -R 770 "$T/lib"
	mount --bind "$T/etc" /etc/opencryptoki &&
	mount --bind "$T/lib" /var/lib/opencryptoki &&
	mount -t tmpfs tmpfs /run &&
	mount -t tmpfs tmpfs /dev/shm || { not_ok "ock: mounts"; return; }
	mkdir -p /run/lock/opencryptoki
	chgrp pkcs11 /run/lock/opencryptoki && chmod 770 /run/lock/opencryptoki
	/usr/sbin/pkcsslotd || { not_ok "ock: pkcsslotd did not start"; return; }
	i=0; while [ ! -S /run/pkcsslotd.socket ] && [ $i -lt 100 ]; do sleep 0.05;
		i=$((i + 1)); done
	pkcs11-tool --module "$OCK_LIB" --slot "$OCK_SLOT" --init-token --label "$KC_LABEL" \
	    --so-pin "$OCK_SO_PIN" >/dev/null 2>&1 &&
	pkcs11-tool --module "$OCK_LIB" --slot "$OCK_SLOT" --login --login-type so \
	    --so-pin "$OCK_SO_PIN" --init-pin --pin "$KC_PIN" >/dev/null 2>&1 ||
	    { not_ok "ock: token init"; kill "$(cat /run/pkcsslotd.pid)"; return; }
	kc_token
	sed -i "s|^module = .*|module = $OCK_LIB|" "$KC_TMP/keycustodyd.conf"
	printf 'sandbox_allow = shm\n' >>"$KC_TMP/keycustodyd.conf"
	SOFTHSM="$OCK_LIB"
	if kc_start_daemon; then
		ctl health >"$KC_TMP/health.ock"
		sed -n '/^key types/,/^audit MAC/p' "$KC_TMP/health.ock" | sed 's/^/# /'
		check "ock: health lists rsa2048" grep -q 'rsa2048 ' "$KC_TMP/health.ock"
		flow_all ock
		bench_fig ock
		kc_stop_daemon
	else
		not_ok "ock: daemon did not start"
	fi
	kill "$(cat /run/pkcsslotd.pid)"
}

ock_section() {
	if [ ! -f "$OCK_LIB" ] || [ ! -x /usr/sbin/pkcsslotd ]; then
		SKIPPED="$SKIPPED opencryptoki(not installed: contrib/deps)"
		return
	fi
	if [ "$(id -u)" -ne 0 ] || ! unshare -m --propagation private true 2>/dev/null; then
		SKIPPED="$SKIPPED opencryptoki(needs root for a private mount namespace: its paths are compiled in)"
		return
	fi
	echo "# --- openCryptoki soft token (own mount namespace)"
	RAN=$((RAN + 1))
	unshare -m --propagation private env KC_OCK_INNER=1 KC_TMP_OUTER="$KC_TMP" \
	    sh "$0" >"$KC_TMP/ock.out" 2>&1
	rc=$?
	sed 's/^ok /ok-inner /; s/^not ok /not-ok-inner /' "$KC_TMP/ock.out" | sed 's/^/# /'
	check_eq "ock: every check passed inside the namespace" 0 "$rc"
}

# --- tpm2-pkcs11 on swtpm ----------------------------------------------------------------
#
# swtpm on two free loopback ports, tpm2-abrmd on a private D-Bus session bus (a TPM has a
# few object slots only: without a resource manager the tools and the module run out of
# them), the token made with tpm2_ptool in the test's directory.

TPM2_LIB=/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so
# tpm2-abrmd's objects per connection (default 27), low so that the creates below pass it
# three times over: tpm2-pkcs11 keeps each key it made loaded until the login ends.
TPM_MAX_TRANSIENTS=15
TPM_PIDS=""

# A free loopback port whose successor is free too (the swtpm TCTI finds the control
# port at port + 1).
free_port_pair() {
	python3 -c 'import socket
while True:
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1)); print(p); break
    except OSError:
        pass'
}
tpm_stop() {
	for p in $TPM_PIDS; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	TPM_PIDS=""
}

# Three times tpm2-abrmd's --max-transients in creates, each CSR verified. The first time
# the token is full one create fails (1503: no PKCS#11 call tells a full token from one
# that refused once); the next makes the daemon log in again (which unloads the objects,
# daemon/hsm.c hsm_release()) and learn the limit; every create after it succeeds, because
# the daemon renews the login before the limit. The token stays up.
tpm2_many() {
	n=$((3 * TPM_MAX_TRANSIENTS)) i=0 bad=0 last_bad=-1
	while [ $i -lt $n ]; do
		if ! kc_csr p256v1 "m$i.acme-corp.co.uk" "m$i.acme-corp.co.uk" \
		    >"$KC_TMP/m.json" 2>&1 ||
		    ! jget .csr <"$KC_TMP/m.json" | openssl req -noout -verify >/dev/null 2>&1
		then
			bad=$((bad + 1)) last_bad=$i
			echo "# tpm2: create $i: $(jget '.errors[0].code' <"$KC_TMP/m.json")"
			[ $bad -le 3 ] || sed 's/^/#   /' "$KC_TMP/m.json" | head -5
		fi
		i=$((i + 1))
	done
	check "tpm2: $n creates past --max-transients=$TPM_MAX_TRANSIENTS: at most one failed" \
	    test "$bad" -le 1
	check "tpm2: ... and it was before the first third" test "$last_bad" -lt "$TPM_MAX_TRANSIENTS"
	check_eq "tpm2: health ok after them" ok \
	    "$(ctl --json health 2>/dev/null | jget ".hsm_state // .status")"
	rel=$(grep -c 'logged out and in again to unload its objects' "$KC_TMP/keycustodyd.log")
	echo "# tpm2: the daemon logged in again $rel times in $n creates, taking (ms):" \
	    $(sed -n 's/.*unload its objects (\([0-9]*\) ms).*/\1/p' "$KC_TMP/keycustodyd.log")
	check "tpm2: the login was renewed at least twice" test "$rel" -ge 2
}

tpm2_section() {
	for b in swtpm tpm2-abrmd tpm2_ptool dbus-daemon; do
		if ! command -v $b >/dev/null 2>&1 && [ ! -x /usr/sbin/$b ]; then
			SKIPPED="$SKIPPED tpm2-pkcs11($b missing: contrib/deps)"
			return
		fi
	done
	[ -f "$TPM2_LIB" ] || { SKIPPED="$SKIPPED tpm2-pkcs11($TPM2_LIB missing)"; return; }
	echo "# --- tpm2-pkcs11 on swtpm ($KC_TMP)"
	T="$KC_TMP/tpm"
	mkdir -p "$T/state" "$T/store"
	port=$(free_port_pair); ctrl=$((port + 1))
	swtpm socket --tpm2 --tpmstate dir="$T/state" \
	    --server type=tcp,port="$port",bindaddr=127.0.0.1 \
	    --ctrl type=tcp,port="$ctrl",bindaddr=127.0.0.1 \
	    --flags not-need-init,startup-clear >"$T/swtpm.log" 2>&1 &
	TPM_PIDS="$TPM_PIDS $!"
	python3 -c 'import socket, sys, time
for i in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close(); break
    except OSError:
        time.sleep(0.1)' "$port"
	cat >"$T/bus.conf" <<EOB
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=$T/bus</listen>
<policy context="default"><allow send_destination="*" eavesdrop="true"/>
<allow eavesdrop="true"/><allow own="*"/><allow user="*"/></policy></busconfig>
EOB
	dbus-daemon --config-file="$T/bus.conf" --nofork >"$T/dbus.log" 2>&1 &
	TPM_PIDS="$TPM_PIDS $!"
	i=0; while [ ! -S "$T/bus" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	DBUS_SESSION_BUS_ADDRESS="unix:path=$T/bus"
	TPM2TOOLS_TCTI="tabrmd:bus_type=session"
	TPM2_PKCS11_TCTI="tabrmd:bus_type=session"
	TPM2_PKCS11_STORE="$T/store"
	export DBUS_SESSION_BUS_ADDRESS TPM2TOOLS_TCTI TPM2_PKCS11_TCTI TPM2_PKCS11_STORE
	tpm2-abrmd --session --allow-root --max-transients=$TPM_MAX_TRANSIENTS --tcti="swtpm:host=127.0.0.1,port=$port" \
	    >"$T/abrmd.log" 2>&1 &
	TPM_PIDS="$TPM_PIDS $!"
	sleep 1
	i=0; while ! timeout 5 tpm2_getcap properties-fixed >/dev/null 2>&1 &&
	    [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
	RAN=$((RAN + 1))
	# The audit MAC key: tpm2-pkcs11 has no CKM_GENERIC_SECRET_KEY_GEN, so it is made in
	# the TPM by tpm2_ptool, with the label and CKA_ID the daemon looks for.
	if ! tpm2_ptool init --path "$T/store" >"$T/ptool.log" 2>&1 ||
	    ! tpm2_ptool addtoken --pid=1 --sopin=12345678 --userpin="$KC_PIN" \
	    --label="$KC_LABEL" --path "$T/store" >>"$T/ptool.log" 2>&1 ||
	    ! tpm2_ptool addkey --label "$KC_LABEL" --key-label keycustody-audit-mac \
	    --id keycustody-audit-mac-v1 --userpin "$KC_PIN" --algorithm hmac:sha256 \
	    --path "$T/store" >>"$T/ptool.log" 2>&1; then
		not_ok "tpm2: token setup: $(tail -3 "$T/ptool.log")"
		sed 's/^/#   abrmd: /' "$T/abrmd.log" | head -12
		tpm_stop
		return
	fi
	kc_token
	sed -i "s|^module = .*|module = $TPM2_LIB|" "$KC_TMP/keycustodyd.conf"
	rm -f "$KC_TMP/keycustody.db"* "$KC_TMP/audit.log"*
	SOFTHSM_SAVED=$SOFTHSM
	SOFTHSM=$TPM2_LIB
	if kc_start_daemon; then
		ctl health >"$KC_TMP/health.tpm2"
		sed -n '/^key types/,/^audit MAC/p' "$KC_TMP/health.tpm2" | sed 's/^/# /'
		check "tpm2: health lists rsa2048 and p256v1" sh -c \
		    "grep -q 'rsa2048 ' $KC_TMP/health.tpm2 && grep -q 'p256v1 ' $KC_TMP/health.tpm2"
		flow_all tpm2
		tpm2_many
		bench_fig tpm2
		kc_stop_daemon
	else
		not_ok "tpm2: daemon did not start"
	fi
	SOFTHSM=$SOFTHSM_SAVED
	tpm_stop
	unset DBUS_SESSION_BUS_ADDRESS TPM2TOOLS_TCTI TPM2_PKCS11_TCTI TPM2_PKCS11_STORE
}

if [ -n "${KC_OCK_INNER:-}" ]; then
	ock_inner
	kc_done
fi

# SoftHSM2 itself, for comparison (figures only; test-issue-15.sh has its checks).
softhsm_bench() {
	[ -n "${KC_BENCH_SECS:-}" ] || return 0
	kc_token
	kc_start_daemon || return 0
	ctl health >"$KC_TMP/health.softhsm2"
	bench_fig softhsm2
	kc_stop_daemon
	rm -rf "$KC_TMP/tokens" "$KC_TMP/keycustody.db"* "$KC_TMP/audit.log"*
}

# without_module_leaks SECTION: run it with LeakSanitizer off in the sanitizer build.
# openCryptoki and tpm2-pkcs11 leak inside themselves (key generation and signing
# allocations they never free), and their frames cannot be told apart once C_Finalize has
# unloaded them, so no suppression can name them; AddressSanitizer's other checks stay on,
# and our own code's leaks are checked by every SoftHSM2 and p11-kit run of the suite.
without_module_leaks() {
	saved_asan=${ASAN_OPTIONS-}
	ASAN_OPTIONS="${saved_asan:+$saved_asan:}detect_leaks=0"	# the last one counts
	export ASAN_OPTIONS
	"$1"
	if [ -n "$saved_asan" ]; then
		ASAN_OPTIONS=$saved_asan
		export ASAN_OPTIONS
	else
		unset ASAN_OPTIONS
	fi
}

trap 'p11kit_stop; tpm_stop; kc_cleanup' EXIT
softhsm_bench
[ -n "${KC_MATRIX_ONLY:-}" ] || { p11kit_section; without_module_leaks ock_section; }
without_module_leaks tpm2_section

echo "# skipped:${SKIPPED:- none}"
if [ "$RAN" -eq 0 ]; then
	echo "SKIP: no implementation could run:$SKIPPED"
	exit 77
fi
kc_done
