#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-crash.sh: crash consistency (DESIGN.md section 3, issue 5 point 3). Concurrent CSR
# creates and deletes and custom hostname uploads and deletes (certificates signed here by a
# test CA for the CSRs' keys) in two zones run through keycustodyctl while the daemon is
# killed with SIGKILL at random moments and restarted; then the invariants are checked
# against the stopped daemon's store, the token and the audit log (kc-invariants.py): every
# ready record has both key objects and a CSR that verifies against the token's public key,
# no key with our label lacks a record, nothing is left creating/deleting, every
# acknowledged create is still there unless its delete was acknowledged, every acknowledged
# delete is gone, and the
# audit trail verifies and holds every acknowledged operation; every hostname references a
# ready CSR of its zone whose keys are in the token, its certificate carries that CSR's key,
# every acknowledged upload is still there unless its delete was acknowledged, and a CSR
# delete refused as in use (1420) concerns a CSR that a hostname upload was tried for.
# Second part: SoftHSM loses a key file behind the daemon's back; the restart reports it.
#
# Short variant: 6 kills (always on). KC_LONG_TESTS=1: KC_CRASH_KILLS (default 25) kills.

. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/reliability-common.sh"

if kc_long; then
	KILLS=${KC_CRASH_KILLS:-25}
else
	KILLS=${KC_CRASH_KILLS:-6}
fi
LOOP_PIDS=

kc_token
# A test CA: a root (the daemon's trust_bundle) and an intermediate that signs the leaves.
ca=$KC_TMP/ca
mkdir -p "$ca" "$KC_TMP/csr"
printf '%s\n' 'basicConstraints=critical,CA:TRUE,pathlen:0' \
    'keyUsage=critical,keyCertSign,cRLSign' >"$ca/inter.ext"
if ! { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$ca/root.key" -out "$ca/root.pem" -days 30 -sha256 \
    -subj '/O=Acme Test Trust/CN=Acme Crash Test Root' \
    -addext 'basicConstraints=critical,CA:TRUE' \
    -addext 'keyUsage=critical,keyCertSign,cRLSign' &&
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$ca/inter.key" -out "$ca/inter.csr" -subj '/O=Acme Corp Issuing/CN=Acme Crash CA' &&
    openssl x509 -req -in "$ca/inter.csr" -CA "$ca/root.pem" -CAkey "$ca/root.key" \
    -set_serial 4096 -days 30 -sha256 -extfile "$ca/inter.ext" -out "$ca/inter.pem"; } \
    >"$ca/ossl.out" 2>&1; then
	echo "Bail out: test CA"; sed 's/^/#   /' "$ca/ossl.out"; exit 1
fi
printf 'trust_bundle = %s\n' "$ca/root.pem" >>"$KC_TMP/keycustodyd.conf"
# SIGKILL leaves no chance to clean up: the loops must not outlive the test.
crash_cleanup() {
	: >"$KC_TMP/stop" 2>/dev/null
	for p in $LOOP_PIDS; do kill "$p" 2>/dev/null; done
	kc_cleanup
}
trap crash_cleanup EXIT

# rand N: a number in [0, N).
rand() { echo $(($(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % $1)); }

# creator N ZONE: create CSRs until told to stop; log "ZONE ID" of every acknowledged one.
creator() {
	n=$1 zone=$2 i=0
	while [ ! -e "$KC_TMP/stop" ]; do
		i=$((i + 1))
		kt=p256v1
		[ $((i % 4)) -eq 0 ] && kt=rsa2048
		if KC_CSR_ZONE=$zone kc_csr $kt "c$n-$i.acme-corp.co.uk" "c$n-$i.acme-corp.co.uk" \
		    >"$KC_TMP/c$n.json" 2>"$KC_TMP/c$n.err"; then
			id=$(jq -r .id <"$KC_TMP/c$n.json")
			jq -r .csr <"$KC_TMP/c$n.json" >"$KC_TMP/csr/$id.pem"
			echo "$zone $id" >>"$KC_TMP/created"
		else
			code=$(jq -r '.errors[0].code // empty' <"$KC_TMP/c$n.json" 2>/dev/null)
			echo "${code:-no-answer}" >>"$KC_TMP/create-failures"
			sleep 0.05
		fi
	done
}

# deleter: delete every other acknowledged create, retrying one that got no answer.
# "ok" = acknowledged; "gone" = 1419 after an unanswered attempt (that one may have done
# it); "lost" = 1419 at the first attempt (an acknowledged create vanished: a bug);
# "inuse" = 409/1420, a hostname uses the CSR: a correct refusal, the CSR must stay.
deleter() {
	line=1
	while [ ! -e "$KC_TMP/stop" ]; do
		# Six creates behind, so that the uploader gets to some of these CSRs first.
		if [ -z "$(sed -n "$((line + 6))p" "$KC_TMP/created" 2>/dev/null)" ]; then
			sleep 0.05; continue
		fi
		rec=$(sed -n "${line}p" "$KC_TMP/created")
		zone=${rec% *} id=${rec#* }
		tries=0
		while :; do
			tries=$((tries + 1))
			if ctl --json csr delete --zone "$zone" "$id" >"$KC_TMP/d.json" 2>/dev/null; then
				echo "ok $zone $id" >>"$KC_TMP/deleted"; break
			fi
			code=$(jq -r '.errors[0].code // empty' <"$KC_TMP/d.json" 2>/dev/null)
			if [ "$code" = 1419 ]; then
				if [ $tries -eq 1 ]; then echo "lost $zone $id" >>"$KC_TMP/deleted"
				else echo "gone $zone $id" >>"$KC_TMP/deleted"; fi
				break
			fi
			if [ "$code" = 1420 ]; then
				echo "inuse $zone $id" >>"$KC_TMP/deleted"; break
			fi
			echo "${code:-no-answer}" >>"$KC_TMP/delete-failures"
			[ -e "$KC_TMP/stop" ] && { echo "unfinished $zone $id" >>"$KC_TMP/deleted"; break; }
			sleep 0.05
		done
		line=$((line + 2))
	done
}

# hdelete ZONE HNID: delete a hostname, retrying one that got no answer; logs to
# hn-deleted like the deleter ("ok", "gone" after an unanswered try, "lost", "unfinished").
hdelete() {
	hz=$1 hid=$2 htries=0
	while :; do
		htries=$((htries + 1))
		if ctl --json hostname delete --zone "$hz" "$hid" >"$KC_TMP/hd.json" 2>/dev/null
		then
			echo "ok $hz $hid" >>"$KC_TMP/hn-deleted"; return
		fi
		code=$(jq -r '.errors[0].code // empty' <"$KC_TMP/hd.json" 2>/dev/null)
		if [ "$code" = 1436 ]; then
			if [ $htries -eq 1 ]; then echo "lost $hz $hid" >>"$KC_TMP/hn-deleted"
			else echo "gone $hz $hid" >>"$KC_TMP/hn-deleted"; fi
			return
		fi
		echo "${code:-no-answer}" >>"$KC_TMP/hn-delete-failures"
		[ -e "$KC_TMP/stop" ] && { echo "unfinished $hz $hid" >>"$KC_TMP/hn-deleted"; return; }
		sleep 0.05
	done
}

# uploader: for two acknowledged creates in three (lines 1, 2, 4, 5, 7, ...: half of them
# are also the deleter's, which runs six creates behind), sign a certificate for
# hN.acme-corp.co.uk with the CSR's key and upload it; delete every third hostname uploaded.
# hn-tried: "ZONE CSR HOST" before each attempt; hn-created: "ZONE HNID HOST CSR" of every
# acknowledged upload; hn-csrgone: "ZONE CSR" for
# a 404/1431 (the deleter removed the CSR first).
uploader() {
	line=1 k=0
	printf '%s\n' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' \
	    'extendedKeyUsage=serverAuth' >"$KC_TMP/leaf.base"
	while [ ! -e "$KC_TMP/stop" ]; do
		rec=$(sed -n "${line}p" "$KC_TMP/created" 2>/dev/null)
		if [ -z "$rec" ]; then sleep 0.05; continue; fi
		line=$((line + 1))
		[ $((line % 3)) -eq 0 ] && line=$((line + 1))
		zone=${rec% *} csr=${rec#* }
		k=$((k + 1)) host=h$k.acme-corp.co.uk
		{ cat "$KC_TMP/leaf.base"; echo "subjectAltName=DNS:$host"; } >"$KC_TMP/leaf.ext"
		if ! openssl x509 -req -in "$KC_TMP/csr/$csr.pem" -CA "$ca/inter.pem" \
		    -CAkey "$ca/inter.key" -set_serial "0x$(openssl rand -hex 12)" -days 30 \
		    -sha256 -extfile "$KC_TMP/leaf.ext" -out "$KC_TMP/leaf.pem" \
		    >"$KC_TMP/sign.out" 2>&1; then
			echo "sign-failed" >>"$KC_TMP/hn-failures"; continue
		fi
		cat "$KC_TMP/leaf.pem" "$ca/inter.pem" >"$KC_TMP/chain.pem"
		echo "$zone $csr $host" >>"$KC_TMP/hn-tried"
		if ctl --json hostname create --zone "$zone" --hostname "$host" --csr "$csr" \
		    --cert "$KC_TMP/chain.pem" >"$KC_TMP/h.json" 2>/dev/null; then
			hid=$(jq -r .id <"$KC_TMP/h.json")
			echo "$zone $hid $host $csr" >>"$KC_TMP/hn-created"
			[ $((k % 3)) -eq 0 ] && hdelete "$zone" "$hid"
		else
			code=$(jq -r '.errors[0].code // empty' <"$KC_TMP/h.json" 2>/dev/null)
			echo "${code:-no-answer}" >>"$KC_TMP/hn-failures"
			[ "$code" = 1431 ] && echo "$zone $csr" >>"$KC_TMP/hn-csrgone"
			[ -z "$code" ] && sleep 0.05
		fi
	done
}

# lister: list both zones page by page, so that reads run against the kills too.
lister() {
	while [ ! -e "$KC_TMP/stop" ]; do
		ctl --json csr list --zone "$KC_ZONE" --per-page 50 >/dev/null 2>&1
		ctl --json csr list --zone "$KC_ZONE2" --per-page 50 --desc >/dev/null 2>&1
		sleep 0.1
	done
}

kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }
: >"$KC_TMP/created"
: >"$KC_TMP/deleted"
: >"$KC_TMP/hn-tried"; : >"$KC_TMP/hn-created"; : >"$KC_TMP/hn-deleted"; : >"$KC_TMP/hn-csrgone"
creator 1 "$KC_ZONE" & LOOP_PIDS="$LOOP_PIDS $!"
creator 2 "$KC_ZONE2" & LOOP_PIDS="$LOOP_PIDS $!"
creator 3 "$KC_ZONE" & LOOP_PIDS="$LOOP_PIDS $!"
deleter & LOOP_PIDS="$LOOP_PIDS $!"
uploader & LOOP_PIDS="$LOOP_PIDS $!"
lister & LOOP_PIDS="$LOOP_PIDS $!"

t0=$(date +%s)
kills=0 restarts=0
while [ $kills -lt $KILLS ]; do
	# 0.3 .. 2.3 s of work, then SIGKILL at that random moment.
	ms=$((300 + $(rand 2000)))
	sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
	kill -KILL "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
	kills=$((kills + 1))
	if start_or_reap; then restarts=$((restarts + 1)); else
		not_ok "restart after kill $kills"; break
	fi
done
: >"$KC_TMP/stop"
for p in $LOOP_PIDS; do wait "$p" 2>/dev/null; done
LOOP_PIDS=
# The last kill lands after the clients stopped: whatever was in flight is cut too.
kill -KILL "$DAEMON_PID" 2>/dev/null; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=
kills=$((kills + 1))
t1=$(date +%s)
check_eq "$kills SIGKILLs, every restart succeeded" "$((kills - 1))" "$restarts"
echo "# kills: $kills in $((t1 - t0)) s"
echo "# creates acknowledged: $(wc -l <"$KC_TMP/created")," \
    "deletes acknowledged: $(grep -c '^ok' "$KC_TMP/deleted")," \
    "deletes refused as in use (1420): $(grep -c '^inuse' "$KC_TMP/deleted")"
echo "# hostname uploads tried: $(wc -l <"$KC_TMP/hn-tried"), acknowledged:" \
    "$(wc -l <"$KC_TMP/hn-created"), hostname deletes acknowledged:" \
    "$(grep -c '^ok' "$KC_TMP/hn-deleted")"
echo "# hostname upload failures by kind: $(sort "$KC_TMP/hn-failures" 2>/dev/null |
    uniq -c | tr '\n' ' ')"
echo "# hostname delete failures by kind: $(sort "$KC_TMP/hn-delete-failures" 2>/dev/null |
    uniq -c | tr '\n' ' ')"
echo "# create failures by kind: $(sort "$KC_TMP/create-failures" 2>/dev/null | uniq -c |
    tr '\n' ' ')"
echo "# delete failures by kind: $(sort "$KC_TMP/delete-failures" 2>/dev/null | uniq -c |
    tr '\n' ' ')"
grep -c 'reconcile: unfinished record' "$KC_TMP/keycustodyd.log" |
    sed 's/^/# unfinished creates undone at start-up: /'
grep -c 'reconcile: half-deleted record' "$KC_TMP/keycustodyd.log" |
    sed 's/^/# half-done deletes finished at start-up: /'

# Restart: reconciliation runs, then the daemon must report a clean token.
if start_or_reap; then
	check_eq "health after the last restart: orphan keys" 0 "$(health_field 'orphan keys')"
	check_eq "health after the last restart: records missing key" 0 \
	    "$(health_field 'records missing key')"
	check_eq "health after the last restart: hsm ok" ok "$(health_field hsm)"
	list_all "$KC_ZONE" "$KC_ZONE2" >"$KC_TMP/listed" || not_ok "csr list"
	kc_stop_daemon
else
	not_ok "final restart"
fi
check "audit trail verifies" ctl audit verify "$KC_TMP/audit.log"
invariants --created "$KC_TMP/created" --deleted "$KC_TMP/deleted" --listed "$KC_TMP/listed" \
    --hn-tried "$KC_TMP/hn-tried" --hn-created "$KC_TMP/hn-created" \
    --hn-deleted "$KC_TMP/hn-deleted" --hn-csrgone "$KC_TMP/hn-csrgone"

# --- SoftHSM loses a key file behind the daemon's back ---
tokdir=$(dirname "$(ls "$KC_TMP"/tokens/*/token.object)")
start_or_reap || { echo "Bail out: daemon did not start"; exit 1; }
ls "$tokdir" | grep '\.object$' | sort >"$KC_TMP/objs.before"
kc_csr p256v1 lose.acme-corp.co.uk lose.acme-corp.co.uk >"$KC_TMP/lose.json" 2>&1 ||
    not_ok "create the CSR whose key file goes missing: $(cat "$KC_TMP/lose.json")"
ls "$tokdir" | grep '\.object$' | sort >"$KC_TMP/objs.after"
lose_id=$(jq -r .id <"$KC_TMP/lose.json")
kc_stop_daemon
# The two new object files are the pair; the private one is the one that says so.
new=$(comm -13 "$KC_TMP/objs.before" "$KC_TMP/objs.after")
check_eq "the create added two object files" 2 "$(echo "$new" | grep -c .)"
privf=
for f in $new; do
	cp "$tokdir/$f" "$KC_TMP/save-$f"
	rm -f "$tokdir/$f"
	if ! p11tool --list-objects --type privkey 2>/dev/null |
	    grep -q "label: *keycustody:$lose_id\$"; then
		privf=$f
	fi
	cp "$KC_TMP/save-$f" "$tokdir/$f"
done
if [ -n "$privf" ]; then
	ok "found the private key's file: $privf"
	rm -f "$tokdir/$privf" "$tokdir/${privf%.object}.lock"
	start_degraded || { echo "Bail out: daemon did not start"; exit 1; }
	check_eq "health: records missing key" 1 "$(health_field 'records missing key')"
	check_eq "health: hsm degraded, not ok" degraded "$(health_field hsm)"
	st=$(ctl --json health | jq -r .status)
	[ "$st" != ok ] && ok "health --json status is not ok ($st)" ||
	    not_ok "health --json status is ok with a key missing"
	check "daemon log reports the record with no key" \
	    grep -q 'record(s) have no key in the token' "$KC_TMP/keycustodyd.log"
	# The record is not served as healthy: flagged, and no certificate can be bound to it.
	ctl --json csr get --zone "$KC_ZONE" "$lose_id" >"$KC_TMP/lose-get.json" 2>&1
	check_eq "the record is served flagged key_missing" true \
	    "$(jq -r .key_missing <"$KC_TMP/lose-get.json")"
	# Newest first: the long run leaves more than a page of older records in the zone.
	ctl --json csr list --zone "$KC_ZONE" --per-page 50 --desc >"$KC_TMP/lose-list.json" 2>&1
	check_eq "the listing flags it too" true "$(jq -r --arg id "$lose_id" \
	    '.[] | select(.id == $id) | .key_missing' <"$KC_TMP/lose-list.json")"
	printf 'not a certificate' >"$KC_TMP/lose.pem"
	out=$(ctl --json hostname create --zone "$KC_ZONE" --hostname lose.acme-corp.co.uk \
	    --csr "$lose_id" --cert "$KC_TMP/lose.pem" 2>&1)
	check_eq "no certificate can be bound to it (409/1490)" 1490 \
	    "$(printf '%s' "$out" | jq -r '.errors[0].code')"
	kc_stop_daemon
else
	not_ok "found the private key's file"
fi

kc_done
