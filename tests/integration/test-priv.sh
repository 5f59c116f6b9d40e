#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-priv.sh: least privilege of the real programs. Started as root with user = nobody,
# keycustodyd ends up as nobody with no capability, no-new-privs, non-dumpable and under
# its seccomp filter, and still makes CSRs, rotates its audit log and restarts; the shim
# likewise with --user/--group, dropping before it connects to the daemon (issue 12: the
# daemon sees the shim's uid on its first connections, a socket it may not use stops it),
# and reloading its credentials on SIGHUP. Bad settings refuse to start. Needs root.

# Tools beyond common.sh's (contrib/deps installs them all): skip, not fail, without one.
for p in curl jq python3 timeout stat; do
	command -v $p >/dev/null 2>&1 || { echo "SKIP: $p missing"; exit 77; }
done
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
id nobody >/dev/null 2>&1 || { echo "SKIP: no user nobody"; exit 77; }
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
. "$here/http-common.sh"
NOBODY=$(id -u nobody)
NOGROUP=$(id -gn nobody)
# Creates no user or group (nobody is the system's). The shim is stopped on any exit, then
# common.sh's cleanup stops the daemon and removes KC_TMP.
hpid=
cleanup() {
	if [ -n "$hpid" ]; then kill "$hpid" 2>/dev/null; wait "$hpid" 2>/dev/null; fi
	hpid=
	kc_cleanup
}
trap cleanup EXIT

# status_field PID FIELD: a line of /proc/PID/status without its name, tabs squeezed.
status_field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" | tr -s '\t ' ' '; }

# check_confined NAME PID
check_confined() {
	check_eq "$1: uid real/effective/saved/fs is nobody" \
	    "$NOBODY $NOBODY $NOBODY $NOBODY" \
	    "$(status_field "$2" Uid)"
	check_eq "$1: gid is nobody's group" "$(id -g nobody) $(id -g nobody) $(id -g nobody) $(id -g nobody)" \
	    "$(status_field "$2" Gid)"
	check_eq "$1: no supplementary group but its own" "$(id -g nobody)" \
	    "$(status_field "$2" Groups | sed 's/ *$//')"
	check_eq "$1: no effective capability" 0000000000000000 "$(status_field "$2" CapEff)"
	check_eq "$1: no permitted capability" 0000000000000000 "$(status_field "$2" CapPrm)"
	check_eq "$1: no-new-privs" 1 "$(status_field "$2" NoNewPrivs)"
	check_eq "$1: seccomp filter mode" 2 "$(status_field "$2" Seccomp)"
	# Non-dumpable: the kernel makes /proc/PID/* root's, so nobody cannot ptrace it.
	check_eq "$1: non-dumpable (/proc/PID owned by root)" root \
	    "$(stat -c %U "/proc/$2/environ")"
}

kc_token
# Everything the daemon touches after the drop belongs to nobody; the PIN stays root's.
chown -R nobody:"$NOGROUP" "$KC_TMP/tokens"
chmod 0711 "$KC_TMP"
mkdir "$KC_TMP/state"
chown nobody:"$NOGROUP" "$KC_TMP/state"
sed -i -e "s|^store = .*|store = $KC_TMP/state/keycustody.db|" \
    -e "s|^audit_log = .*|audit_log = $KC_TMP/state/audit.log|" "$KC_TMP/keycustodyd.conf"
cp "$KC_TMP/keycustodyd.conf" "$KC_TMP/base.conf"
cat >>"$KC_TMP/keycustodyd.conf" <<EOC
user = nobody
group = $NOGROUP
sandbox = enforce
admin = 0
gateway = nobody
socket_group = $NOGROUP
EOC

kc_start_daemon || { echo "Bail out: daemon did not start as nobody"; exit 1; }
check_confined keycustodyd "$DAEMON_PID"
check "the drop is logged" grep -q 'running as nobody' "$KC_TMP/keycustodyd.log"
check "the sandbox is logged" \
    grep -q 'seccomp sandbox (daemon profile, enforce) installed' "$KC_TMP/keycustodyd.log"
check_eq "the store belongs to nobody" nobody "$(stat -c %U "$KC_TMP/state/keycustody.db")"
check_eq "the audit log belongs to nobody" nobody "$(stat -c %U "$KC_TMP/state/audit.log")"

kc_csr p256v1 priv.acme-corp.co.uk priv.acme-corp.co.uk >"$KC_TMP/csr.json" 2>&1
check_eq "a CSR is made as nobody under the filter" true \
    "$(jget '.csr | startswith("-----BEGIN CERTIFICATE REQUEST-----")' <"$KC_TMP/csr.json")"
id=$(jget .id <"$KC_TMP/csr.json")
kc_csr rsa2048 priv2.acme-corp.co.uk priv2.acme-corp.co.uk >/dev/null 2>&1
check "RSA keygen works under the filter" ctl csr list --zone $KC_ZONE
check "health under the filter" ctl health

# SIGHUP rotates the audit log: rename and a new file, as nobody.
kill -HUP "$DAEMON_PID"
sleep 0.3
check "the daemon survives the audit rotation" kill -0 "$DAEMON_PID"
check "a request after the rotation" ctl csr get --zone $KC_ZONE "$id"
check "delete under the filter" ctl csr delete --zone $KC_ZONE "$id"

# The shim, started as root with --user nobody --group nogroup; the socket is root's,
# group nogroup, mode 0660: the shim reaches it by its group only.
# start_shim LOG ARGS...: start it on a free port; sets hpid and port.
start_shim() {
	log=$1; shift
	port=$(kc_free_port)
	"$KC_HTTP" -d --sandbox enforce -p "$port" -s "$KEYCUSTODY_SOCKET" \
	    -c "$KC_TMP/credentials" "$@" >"$log" 2>&1 &
	hpid=$!
}
if [ ! -x "$KC_HTTP" ]; then
	not_ok "no $KC_HTTP"
else
	check_eq "the daemon's socket is group $NOGROUP, mode 0660" "$NOGROUP 660" \
	    "$(stat -c '%G %a' "$KEYCUSTODY_SOCKET")"
	tok=$("$KC_HTTP" credential add --name w --zone '*' --access write \
	    -c "$KC_TMP/credentials") || not_ok "credential add"
	chmod 0644 "$KC_TMP/credentials"
	start_shim "$KC_TMP/http.log" --user nobody --group "$NOGROUP"
	i=0
	until curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 100 ] || break; sleep 0.05
	done
	check_confined keycustody-http "$hpid"
	st=$(curl -sS -o "$KC_TMP/body" -w '%{http_code}' -H "Authorization: Bearer $tok" \
	    "http://127.0.0.1:$port/client/v4/zones/$KC_ZONE/custom_csrs")
	check_eq "the shim answers a listing under the filter" 200 "$st"
	# Its first connection already: the daemon audits the shim's uid, never root's.
	st=$(curl -sS -o "$KC_TMP/body" -w '%{http_code}' -H "Authorization: Bearer $tok" \
	    -d '{"country":"US","state":"MA","locality":"Boston","organization":"A","common_name":"drop.acme-corp.co.uk","sans":["drop.acme-corp.co.uk"],"key_type":"p256v1"}' \
	    "http://127.0.0.1:$port/client/v4/zones/$KC_ZONE/custom_csrs")
	check_eq "the shim creates a CSR" 201 "$st"
	check_eq "the daemon saw the shim as uid nobody, pid $hpid, credential w" \
	    "$NOBODY $hpid w" \
	    "$(jq -r 'select(.op == "create_csr") | "\(.actor.uid) \(.actor.pid) \(.actor.credential)"' \
	    "$KC_TMP/state/audit.log" | tail -1)"
	st=$(curl -sS -o "$KC_TMP/body" -w '%{http_code}' "http://127.0.0.1:$port/nope")
	case $st in 4??) ok "an error reply under the filter ($st)" ;;
	*) not_ok "an error reply under the filter: $st" ;; esac
	# SIGHUP rereads the credentials file (edited in place, as credential add does).
	tok2=$("$KC_HTTP" credential add --name w2 --zone '*' --access read \
	    -c "$KC_TMP/credentials") || not_ok "credential add"
	kill -HUP "$hpid"
	i=0
	until grep -q 'credential(s) reloaded' "$KC_TMP/http.log"; do
		i=$((i + 1)); [ $i -lt 50 ] || break; sleep 0.05
	done
	check "the shim survives SIGHUP" kill -0 "$hpid"
	st=$(curl -sS -o "$KC_TMP/body" -w '%{http_code}' -H "Authorization: Bearer $tok2" \
	    "http://127.0.0.1:$port/client/v4/zones/$KC_ZONE/custom_csrs")
	check_eq "a credential added before SIGHUP is accepted" 200 "$st"
	check "the shim is still alive" kill -0 "$hpid"
	kill "$hpid"; wait "$hpid" 2>/dev/null
	hpid=
	kc_check_sanitizer_log "$KC_TMP/http.log" keycustody-http

	# A group that may not use the socket: a start-up error, not silent retries.
	other=$(getent group daemon >/dev/null && echo daemon || echo users)
	start_shim "$KC_TMP/http-denied.log" --user nobody --group "$other"
	i=0
	while kill -0 "$hpid" 2>/dev/null && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.05; done
	if kill -0 "$hpid" 2>/dev/null; then
		not_ok "the shim runs on with a socket it may not use (group $other)"
		kill "$hpid"
	elif grep -q 'Permission denied for uid' "$KC_TMP/http-denied.log"; then
		ok "a socket the shim may not use stops it, with the reason"
	else
		not_ok "the shim stopped without saying why"
		sed 's/^/#   /' "$KC_TMP/http-denied.log" | tail -5
	fi
	wait "$hpid" 2>/dev/null
	hpid=
fi

kc_stop_daemon
kc_start_daemon || not_ok "restart as nobody"
check "records survive a restart as nobody" ctl csr list --zone $KC_ZONE
kc_stop_daemon

# A group named in groups = survives the drop (openCryptoki's pkcs11, tpm2-pkcs11's tss);
# nothing else does.
if extra=$(getent group users | cut -d: -f3) && [ -n "$extra" ]; then
	cp "$KC_TMP/keycustodyd.conf" "$KC_TMP/nogroups.conf"
	echo "groups = users" >>"$KC_TMP/keycustodyd.conf"
	kc_start_daemon || not_ok "start with groups = users"
	check_eq "groups = users: kept through the drop, and only it" \
	    "$(printf '%s\n' "$(id -g nobody)" "$extra" | sort -n | tr '\n' ' ')" \
	    "$(status_field "$DAEMON_PID" Groups | tr ' ' '\n' | grep . | sort -n | tr '\n' ' ')"
	check "groups = users: the drop is logged with it" \
	    grep -q 'running as nobody (uid [0-9]*, gid [0-9]*, 1 supplementary group)' \
	    "$KC_TMP/keycustodyd.log"
	check "groups = users: a CSR is made" kc_csr p256v1 grp.acme-corp.co.uk grp.acme-corp.co.uk
	kc_stop_daemon
	mv "$KC_TMP/nogroups.conf" "$KC_TMP/keycustodyd.conf"
else
	ok "# SKIP groups: no group users on this machine"
fi

# Refusals: each must stop start-up with a message, not run without the protection.
refuse() {	# refuse DESCRIPTION PATTERN EXTRA-CONFIG-LINE...
	d=$1 pat=$2; shift 2
	cp "$KC_TMP/base.conf" "$KC_TMP/bad.conf"
	for l in "$@"; do printf '%s\n' "$l" >>"$KC_TMP/bad.conf"; done
	if timeout 30 "$KEYCUSTODYD" -d -f "$KC_TMP/bad.conf" >"$KC_TMP/bad.log" 2>&1; then
		not_ok "$d: started"
	elif grep -q "$pat" "$KC_TMP/bad.log"; then
		ok "$d"
	else
		not_ok "$d: no \"$pat\" in"; sed 's/^/#   /' "$KC_TMP/bad.log" | tail -5
	fi
}
refuse "an unknown sandbox mode is refused" 'sandbox' 'sandbox = maybe'
refuse "an unknown user is refused" 'no such user' 'user = kc-no-such-user'
refuse "user root is refused" 'is root' 'user = root'
refuse "an unknown supplementary group is refused" 'no such group' 'user = nobody' \
    'groups = kc-no-such-group'
refuse "groups without user is refused" 'groups is set but user is not' 'groups = users'
refuse "group without user is refused" 'group' "group = $NOGROUP"

kc_done
