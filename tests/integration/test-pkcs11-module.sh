#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-pkcs11-module.sh: keycustody-pkcs11.so (issue 16). Two hostnames (P-256 and
# RSA-2048) are uploaded with certificates from a CA made here, and a signer role given to
# www-data. pkcs11-tool lists and signs through the module as www-data (openssl verifies);
# a key without a hostname is not there; a uid without the role gets nothing. One
# long-lived process (p11-module-client) follows hostnames as they come and go, signs in
# a child of fork() and in threads, and keeps its handles across the daemon's restart;
# bad replies fail calls, never the process; p11-kit's proxy loads the module; GnuTLS's
# p11tool lists and test-signs by the same URIs. Then nginx,
# master as root and workers as www-data, serves both over TLS 1.2 and 1.3 with the module
# (contrib/nginx), curl verifying with the CA; a deleted hostname fails its handshake,
# workers without the role fail theirs, and nginx keeps serving across a daemon restart.
# Last, stunnel (contrib/stunnel) serves both by SNI after dropping to www-data.

. "$(dirname "$0")/common.sh"

[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (nginx's master, and runuser www-data)"; exit 77; }
id www-data >/dev/null 2>&1 || { echo "SKIP: no user www-data"; exit 77; }
if ! command -v nginx >/dev/null 2>&1; then
	"$top_srcdir/contrib/deps" >/dev/null 2>&1
	command -v nginx >/dev/null 2>&1 ||
	    { echo "SKIP: nginx missing and contrib/deps could not install it"; exit 77; }
fi
for t in openssl pkcs11-tool curl runuser setpriv python3; do
	command -v $t >/dev/null 2>&1 || { echo "SKIP: $t missing (contrib/deps)"; exit 77; }
done
ENGINES=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')
[ -f "$ENGINES/pkcs11.so" ] ||
    { echo "SKIP: libp11's engine missing (libengine-pkcs11-openssl)"; exit 77; }
MOD=$top_builddir/pkcs11/.libs/keycustody-pkcs11.so
[ -f "$MOD" ] || { echo "Bail out: $MOD not built"; exit 99; }
. "$top_srcdir/tests/integration/http-common.sh"	# kc_free_port

# www-data reaches the socket (group www-data) through directories it may only traverse;
# the token, the PIN and the store stay root's.
chmod 0711 "$KC_TMP"
mkdir -p "$KC_TMP/run"
chgrp www-data "$KC_TMP/run"
chmod 0710 "$KC_TMP/run"
KEYCUSTODY_SOCKET=$KC_TMP/run/kc.sock
export KEYCUSTODY_SOCKET

ca=$KC_TMP/ca
kc_test_ca "$ca"

kc_token
cat >>"$KC_TMP/keycustodyd.conf" <<EOC
trust_bundle = $ca/root.pem
socket_group = www-data
admin = root
signer = root $KC_ZONE
signer = www-data $KC_ZONE
EOC
kc_start_daemon || { echo "Bail out: daemon did not start"; exit 1; }

# In the sanitizer build the module links ASan's runtime, which must come first in the
# programs that load it (pkcs11-tool, openssl, nginx, stunnel): p11env preloads it into
# those alone (`env $p11env CMD`; empty otherwise). Their own leaks are not this test's
# (detect_leaks=0); a memory error inside the module still aborts its host, and the
# checks fail.
asan=$(ldd "$MOD" 2>/dev/null | awk '/libasan/ { print $3; exit }')
p11env=
if [ -n "$asan" ]; then
	p11env="LD_PRELOAD=$asan ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0"
	echo "# sanitizer build: $asan preloaded into the module's hosts"
fi

EC_HOST=ec.acme-corp.co.uk
RSA_HOST=rsa.acme-corp.co.uk
GONE_HOST=gone.acme-corp.co.uk

# upload NAME KEYTYPE HOST: a CSR, its certificate from the CA, the hostname bound to it.
# Leaves $ca/NAME.pem (the leaf) and NAME_KEYID (the key's CKA_ID, hex).
upload() {
	kc_csr "$2" "$3" "$3" >"$KC_TMP/$1.json" 2>&1 ||
	    { echo "Bail out: csr create $2: $(cat "$KC_TMP/$1.json")"; exit 1; }
	jget .csr <"$KC_TMP/$1.json" >"$ca/$1.csr"
	printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
	    "$3" >"$ca/$1.ext"
	openssl x509 -req -in "$ca/$1.csr" -CA "$ca/root.pem" -CAkey "$ca/root.key" \
	    -CAcreateserial -days 10 -sha256 -extfile "$ca/$1.ext" -out "$ca/$1.pem" \
	    >/dev/null 2>&1 || { echo "Bail out: sign $1"; exit 1; }
	chmod 0644 "$ca/$1.pem"
	ctl --json hostname create --zone "$KC_ZONE" --hostname "$3" \
	    --csr "$(jget .id <"$KC_TMP/$1.json")" --cert "$ca/$1.pem" >"$KC_TMP/$1.h.json" 2>&1
	[ "$(jget .ssl.status <"$KC_TMP/$1.h.json")" = active ] ||
	    { echo "Bail out: hostname $3: $(cat "$KC_TMP/$1.h.json")"; exit 1; }
	eval "$1_KEYID=$(jget .key_id <"$KC_TMP/$1.json")"
}
upload ec p256v1 $EC_HOST
upload rsa rsa2048 $RSA_HOST
upload gone p256v1 $GONE_HOST
# A second hostname on the P-256 key: a certificate of its own, the same key.
TWIN_HOST=twin.acme-corp.co.uk
printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    $TWIN_HOST >"$ca/twin.ext"
openssl x509 -req -in "$ca/ec.csr" -CA "$ca/root.pem" -CAkey "$ca/root.key" -CAcreateserial \
    -days 10 -sha256 -extfile "$ca/twin.ext" -out "$ca/twin.pem" >/dev/null 2>&1 &&
    chmod 0644 "$ca/twin.pem" &&
    ctl hostname create --zone "$KC_ZONE" --hostname $TWIN_HOST \
    --csr "$(jget .id <"$KC_TMP/ec.json")" --cert "$ca/twin.pem" >/dev/null 2>&1 ||
    { echo "Bail out: hostname $TWIN_HOST"; exit 1; }
# A key without a hostname: the module must not show it.
kc_csr p256v1 bare.acme-corp.co.uk bare.acme-corp.co.uk >"$KC_TMP/bare.json" 2>&1
bare_KEYID=$(jget .key_id <"$KC_TMP/bare.json")

# as_www CMD...: CMD as www-data, with the socket's path.
# shellcheck disable=SC2086
as_www() { runuser -u www-data -- env KEYCUSTODY_SOCKET="$KEYCUSTODY_SOCKET" $p11env "$@"; }
# as_nosigner CMD...: uid nobody in group www-data: it reaches the socket, has no role.
as_nosigner() {
	# shellcheck disable=SC2086
	setpriv --reuid=65534 --regid=33 --clear-groups -- \
	    env KEYCUSTODY_SOCKET="$KEYCUSTODY_SOCKET" $p11env "$@"
}
# shellcheck disable=SC2086
p11() { env $p11env pkcs11-tool --module "$MOD" "$@"; }

# --- pkcs11-tool ---
as_www pkcs11-tool --module "$MOD" --list-token-slots >"$KC_TMP/slots.txt" 2>&1
check "pkcs11-tool: the token is keycustody, no login required" \
    sh -c "grep -q 'token label *: keycustody' '$KC_TMP/slots.txt' &&
    ! grep -q 'login required' '$KC_TMP/slots.txt'"
as_www pkcs11-tool --module "$MOD" --list-objects >"$KC_TMP/objects.txt" 2>&1
for h in $EC_HOST $RSA_HOST $GONE_HOST; do
	check_eq "list-objects: $h has a private key, a public key and a certificate" 3 \
	    "$(grep -c "label: *$h\$" "$KC_TMP/objects.txt")"
done
check_eq "list-objects: the P-256 key's id is the daemon's key id, once per hostname" 6 \
    "$(grep -ic "ID: *$ec_KEYID\$" "$KC_TMP/objects.txt")"
check_eq "list-objects: the key's second hostname has its own three objects" 3 \
    "$(grep -c "label: *$TWIN_HOST\$" "$KC_TMP/objects.txt")"
check_eq "list-objects: a key without a hostname is not there" 0 \
    "$(grep -ic "ID: *$bare_KEYID\$" "$KC_TMP/objects.txt")"
check "list-objects: an EC private key, its curve" \
    grep -q 'EC_POINT 256 bits' "$KC_TMP/objects.txt"
check "list-objects: an RSA private key, its size" \
    grep -q 'RSA 2048 bits' "$KC_TMP/objects.txt"

head -c 1000 /dev/urandom >"$KC_TMP/data"
chmod 0644 "$KC_TMP/data"
openssl dgst -sha256 -binary "$KC_TMP/data" >"$KC_TMP/data.sha256"
chmod 0644 "$KC_TMP/data.sha256"
for n in ec rsa; do
	openssl x509 -in "$ca/$n.pem" -pubkey -noout >"$ca/$n.pub"
done
# sign NAME KEYID MECH IN [ARGS]: a signature by pkcs11-tool as www-data with the key of
# CKA_ID KEYID (pkcs11-tool picks a key for --sign by --id, not by --label), in
# $KC_TMP/NAME.sig.
sign() {
	n=$1 id=$2 m=$3 in=$4
	shift 4
	: >"$KC_TMP/$n.sig"
	chmod 0666 "$KC_TMP/$n.sig"
	as_www pkcs11-tool --module "$MOD" --sign --id "$id" -m "$m" -i "$in" \
	    -o "$KC_TMP/$n.sig" "$@" >"$KC_TMP/$n.sign.log" 2>&1
}
sign ec1 "$ec_KEYID" ECDSA-SHA256 "$KC_TMP/data" --signature-format openssl
check "sign ECDSA-SHA256 (hashed in the module), verified by openssl" \
    openssl dgst -sha256 -verify "$ca/ec.pub" -signature "$KC_TMP/ec1.sig" "$KC_TMP/data"
sign ec2 "$ec_KEYID" ECDSA "$KC_TMP/data.sha256" --signature-format openssl
check "sign ECDSA over a digest, verified by openssl" \
    openssl pkeyutl -verify -pubin -inkey "$ca/ec.pub" -in "$KC_TMP/data.sha256" \
    -sigfile "$KC_TMP/ec2.sig"
sign rsa1 "$rsa_KEYID" SHA256-RSA-PKCS "$KC_TMP/data"
check "sign SHA256-RSA-PKCS (hashed in the module), verified by openssl" \
    openssl dgst -sha256 -verify "$ca/rsa.pub" -signature "$KC_TMP/rsa1.sig" "$KC_TMP/data"
sign rsa2 "$rsa_KEYID" RSA-PKCS-PSS "$KC_TMP/data.sha256" --hash-algorithm SHA256 \
    --mgf MGF1-SHA256 --salt-len 32
check "sign RSA-PKCS-PSS over a digest, verified by openssl" \
    openssl pkeyutl -verify -pubin -inkey "$ca/rsa.pub" -in "$KC_TMP/data.sha256" \
    -sigfile "$KC_TMP/rsa2.sig" -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32 \
    -pkeyopt digest:sha256
sign rsa3 "$rsa_KEYID" RSA-PKCS "$KC_TMP/data.sha256"
check "sign RSA-PKCS over data that is no DigestInfo: refused (CKR_DATA_INVALID)" \
    grep -q CKR_DATA_INVALID "$KC_TMP/rsa3.sign.log"
sign ec3 "$ec_KEYID" ECDSA "$KC_TMP/data"
check "sign ECDSA over 1000 bytes: refused (CKR_DATA_LEN_RANGE)" \
    grep -q CKR_DATA_LEN_RANGE "$KC_TMP/ec3.sign.log"

as_nosigner pkcs11-tool --module "$MOD" --list-objects >"$KC_TMP/nosigner.txt" 2>&1
check_eq "a uid without the signer role sees no object" 0 \
    "$(grep -c 'label:' "$KC_TMP/nosigner.txt")"
check "a uid without the signer role cannot sign" sh -c "! setpriv --reuid=65534 \
    --regid=33 --clear-groups -- env KEYCUSTODY_SOCKET='$KEYCUSTODY_SOCKET' $p11env pkcs11-tool \
    --module '$MOD' --sign --id $ec_KEYID -m ECDSA -i '$KC_TMP/data.sha256' \
    -o /dev/null >/dev/null 2>&1"

# --- one long-lived process (tests/integration/p11-module-client.c) as www-data: the list
# follows the hostnames, fork() and threads sign; the daemon's restart comes below ---
CLIENT=$top_builddir/tests/integration/p11-module-client
CLIENT_PID=
mkfifo -m 0600 "$KC_TMP/client.in"
# setpriv execs: $! is the client itself.
setpriv --reuid=www-data --regid=www-data --init-groups -- env \
    KEYCUSTODY_SOCKET="$KEYCUSTODY_SOCKET" "$CLIENT" "$MOD" <"$KC_TMP/client.in" \
    >"$KC_TMP/client.out" 2>&1 &
CLIENT_PID=$!
exec 3>"$KC_TMP/client.in"
# client CMD: send CMD to the client, print its answer (the lines before its "done").
client() {
	before=$(grep -c '^done$' "$KC_TMP/client.out")
	echo "$*" >&3
	i=0
	while [ "$(grep -c '^done$' "$KC_TMP/client.out")" -le "$before" ]; do
		i=$((i + 1))
		[ $i -lt 600 ] || { echo "timeout"; return 1; }
		sleep 0.05
	done
	awk -v n="$before" '/^done$/ { c++; next } c == n' "$KC_TMP/client.out"
}
# Every process started since holds the fifo's write end too (fd 3): no end of file
# reaches the client, so it is stopped.
client_stop() {
	[ -n "$CLIENT_PID" ] || return 0
	exec 3>&-
	kill "$CLIENT_PID" 2>/dev/null
	wait "$CLIENT_PID" 2>/dev/null
	CLIENT_PID=
}
check_eq "one process: the private keys, one per hostname" \
    "$EC_HOST $GONE_HOST $RSA_HOST $TWIN_HOST" "$(client list | awk '{ print $3 }' | tr '\n' ' ' |
    sed 's/ $//')"
EC_HANDLE=$(client sign $EC_HOST | sed -n 's/^ok //p')
check "one process: a signature, verified" test -n "$EC_HANDLE"
upload new p256v1 new.acme-corp.co.uk
sleep 1.1	# the module's list is at most a second old
client list >"$KC_TMP/list-new.txt"
check "one process: a hostname uploaded since appears" \
    grep -q ' new.acme-corp.co.uk$' "$KC_TMP/list-new.txt"
case $(client sign new.acme-corp.co.uk) in
ok*)	ok "one process: and signs" ;;
*)	not_ok "one process: and signs" ;;
esac
ctl hostname delete --zone "$KC_ZONE" "$(jget .id <"$KC_TMP/new.h.json")" >/dev/null
check_eq "one process: a hostname deleted stops its key at once (CKR_KEY_HANDLE_INVALID)" \
    "error 0x60" "$(client sign new.acme-corp.co.uk)"
sleep 1.1
client list >"$KC_TMP/list-gone.txt"
check "one process: and it leaves the list" \
    sh -c "! grep -q ' new.acme-corp.co.uk\$' '$KC_TMP/list-gone.txt'"
check_eq "one process: a child of fork() signs on its own connection" "child ok" \
    "$(client fork $EC_HOST)"
check_eq "one process: 4 threads x 50 P-256 signatures, all verified" "threads 200 0" \
    "$(client threads $EC_HOST 4 50)"
check_eq "one process: 4 threads x 10 RSA-2048 signatures, all verified" "threads 40 0" \
    "$(client threads $RSA_HOST 4 10)"

# --- bad replies: a socket that answers garbage, a length over the cap, a response to
# another id or nothing at all; the module fails the call (CKR_DEVICE_ERROR), never the
# process ---
cat >"$KC_TMP/bad-daemon.py" <<'EOP'
import os, socket, struct, sys
path, mode = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o666)
s.listen(8)
while True:
    c, _ = s.accept()
    hdr = c.recv(4)
    if len(hdr) == 4:
        c.recv(struct.unpack(">I", hdr)[0])
    if mode == "garbage":
        c.sendall(struct.pack(">I", 40) + os.urandom(40))
    elif mode == "huge":
        c.sendall(struct.pack(">I", 0x7fffffff))
    elif mode == "wrong-id":	# Response{id=999999}: not the request's
        c.sendall(struct.pack(">I", 4) + bytes([0x08, 0xbf, 0x84, 0x3d]))
    c.close()
EOP
for mode in garbage huge wrong-id close; do
	python3 "$KC_TMP/bad-daemon.py" "$KC_TMP/bad.sock" $mode &
	bad_pid=$!
	i=0
	while [ ! -S "$KC_TMP/bad.sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	printf 'list\nsign %s\nlist\n' $EC_HOST |
	    KEYCUSTODY_SOCKET=$KC_TMP/bad.sock "$CLIENT" "$MOD" >"$KC_TMP/bad.out" 2>&1
	check_eq "a daemon answering $mode: every call fails with CKR_DEVICE_ERROR, the process lives" \
	    "error 0x30,done,error 0x30,done,error 0x30,done" "$(tr '\n' ',' <"$KC_TMP/bad.out" |
	    sed 's/,$//')"
	kill $bad_pid 2>/dev/null
	wait $bad_pid 2>/dev/null
	rm -f "$KC_TMP/bad.sock"
done

# --- p11-kit: the module file of contrib/p11-kit, as a user's module, through the proxy ---
PROXY=$(pkg-config --variable=proxy_module p11-kit-1 2>/dev/null)
if [ -n "$asan" ]; then
	# p11-kit loads every module of the system too (tpm2-pkcs11, opensc...), and one of
	# them hangs under the preloaded ASan runtime: the production build runs these.
	echo "# sanitizer build: the p11-kit checks are left out"
elif command -v p11-kit >/dev/null 2>&1 && [ -f "$PROXY" ]; then
	P11HOME=$KC_TMP/home
	mkdir -p "$P11HOME/.config/pkcs11/modules"
	sed "s|@pkcs11libdir@|$(dirname "$MOD")|" "$top_srcdir/contrib/p11-kit/keycustody.module.in" \
	    >"$P11HOME/.config/pkcs11/modules/keycustody.module"
	chmod -R a+rX "$P11HOME"
	as_www env HOME="$P11HOME" p11-kit list-modules >"$KC_TMP/p11kit.txt" 2>&1
	check "p11-kit lists the module and its token" \
	    grep -q '^ *token: keycustody$' "$KC_TMP/p11kit.txt"
	as_www env HOME="$P11HOME" pkcs11-tool --module "$PROXY" --token-label keycustody \
	    --list-objects >"$KC_TMP/proxy.txt" 2>&1
	check_eq "through p11-kit-proxy: the objects of $EC_HOST" 3 \
	    "$(grep -c "label: *$EC_HOST\$" "$KC_TMP/proxy.txt")"
	: >"$KC_TMP/proxy.sig"
	chmod 0666 "$KC_TMP/proxy.sig"
	as_www env HOME="$P11HOME" pkcs11-tool --module "$PROXY" --token-label keycustody \
	    --sign --id "$rsa_KEYID" -m SHA256-RSA-PKCS -i "$KC_TMP/data" \
	    -o "$KC_TMP/proxy.sig" >/dev/null 2>&1
	check "through p11-kit-proxy: a signature openssl verifies" \
	    openssl dgst -sha256 -verify "$ca/rsa.pub" -signature "$KC_TMP/proxy.sig" "$KC_TMP/data"
else
	echo "# p11-kit or its proxy module missing: the p11-kit checks are left out"
fi

# --- nginx: master root, workers www-data, keys by hostname through the engine ---
NGX=$KC_TMP/nginx
mkdir -p "$NGX/tmp"
chown www-data "$NGX/tmp"
sed -e "s|/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so|$ENGINES/pkcs11.so|" \
    -e "s|/usr/lib/x86_64-linux-gnu/pkcs11/keycustody-pkcs11.so|$MOD|" \
    "$top_srcdir/contrib/nginx/openssl-pkcs11.cnf" >"$NGX/openssl.cnf"
chmod 0644 "$NGX/openssl.cnf"

# The CSR's module_key_uri (by CKA_ID) through libp11's engine, as www-data.
: >"$KC_TMP/uri.sig"
chmod 0666 "$KC_TMP/uri.sig"
as_www env OPENSSL_CONF="$NGX/openssl.cnf" openssl pkeyutl -engine pkcs11 -keyform engine \
    -inkey "$(jget .module_key_uri <"$KC_TMP/ec.json")" -sign -in "$KC_TMP/data.sha256" \
    -out "$KC_TMP/uri.sig" >/dev/null 2>&1
check "the CSR's module_key_uri signs through libp11's engine (openssl pkeyutl)" \
    openssl pkeyutl -verify -pubin -inkey "$ca/ec.pub" -in "$KC_TMP/data.sha256" \
    -sigfile "$KC_TMP/uri.sig"

# GnuTLS (p11tool, gnutls-bin): the same URIs, as www-data; --test-sign signs with the
# private key and verifies with the public key of that object.
if command -v p11tool >/dev/null 2>&1; then
	as_www p11tool --provider "$MOD" --list-privkeys "pkcs11:token=keycustody" \
	    >"$KC_TMP/gnutls.txt" 2>&1
	check "GnuTLS (p11tool) lists the private keys by hostname" sh -c \
	    "grep -q 'object=$EC_HOST' '$KC_TMP/gnutls.txt' &&
	    grep -q 'object=$RSA_HOST' '$KC_TMP/gnutls.txt'"
	for h in "$EC_HOST" "$RSA_HOST"; do
		as_www p11tool --provider "$MOD" --test-sign \
		    "pkcs11:token=keycustody;object=$h;type=private" >"$KC_TMP/gnutls-$h.txt" 2>&1
		check "GnuTLS (p11tool --test-sign) signs and verifies with $h" \
		    grep -q '^Verifying against public key in the token\.\.\. ok' \
		    "$KC_TMP/gnutls-$h.txt"
	done
else
	echo "# p11tool (gnutls-bin) missing: the GnuTLS checks are left out"
fi

# ngx_conf NAME USER PORT HOST...: nginx.conf from contrib/nginx/keycustody.conf, its
# server block repeated per HOST, paths under $NGX.
ngx_conf() {
	name=$1 user=$2 port=$3
	shift 3
	python3 - "$top_srcdir/contrib/nginx/keycustody.conf" "$NGX/$name.conf" "$NGX" "$user" \
	    "$port" "$ca" "$@" <<'EOP'
import re, sys
src, dst, ngx, user, port, ca, hosts = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], \
    sys.argv[5], sys.argv[6], sys.argv[7:]
text = open(src).read()
m = re.search(r"\n\tserver \{.*?\n\t\}\n", text, re.S)
block = m.group(0)
servers = ""
for h in hosts:
    name = h.split(".")[0]
    servers += block.replace("shop.example.com.pem", name + ".pem") \
        .replace("shop.example.com", h).replace("/etc/keycustody/certs", ca) \
        .replace("listen 443 ssl", "listen 127.0.0.1:%s ssl" % port)
text = text[:m.start()] + servers + text[m.end():]
text = text.replace("user www-data;", "user %s;" % user) \
    .replace("worker_processes auto;", "worker_processes 2;") \
    .replace("/run/nginx-keycustody.pid", ngx + "/" + dst.split("/")[-1] + ".pid") \
    .replace("/var/log/nginx/", ngx + "/" + dst.split("/")[-1] + "-")
text = text.replace("http {\n", "http {\n\tclient_body_temp_path %s/tmp/body;\n"
    "\tproxy_temp_path %s/tmp/proxy;\n\tfastcgi_temp_path %s/tmp/fastcgi;\n"
    "\tuwsgi_temp_path %s/tmp/uwsgi;\n\tscgi_temp_path %s/tmp/scgi;\n" % ((ngx,) * 5))
open(dst, "w").write(text)
EOP
}

# wait_listen PID PORT: wait (10 s at most) until something listens on 127.0.0.1:PORT,
# while process PID lives.
wait_listen() {
	i=0
	while [ $i -lt 100 ]; do
		ss -ltn 2>/dev/null | grep -q "127.0.0.1:$2 " && return 0
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

NGINX_PID=
# ngx_start NAME PORT: nginx in the foreground on $NGX/NAME.conf; waits until it listens.
ngx_start() {
	# OPENSSL_CONF for nginx alone (the daemon, restarted below, must not load the engine).
	# shellcheck disable=SC2086
	env $p11env OPENSSL_CONF="$NGX/openssl.cnf" nginx -p "$NGX" -c "$NGX/$1.conf" \
	    -e "$NGX/$1-startup.log" \
	    -g 'daemon off;' \
	    >>"$NGX/$1.out" 2>&1 &
	NGINX_PID=$!
	wait_listen "$NGINX_PID" "$2" && return 0
	echo "# nginx $1 did not start:"
	sed 's/^/#   /' "$NGX/$1.out" "$NGX/$1-startup.log" "$NGX/$1.conf-error.log" 2>/dev/null |
	    tail -30
	return 1
}
ngx_stop() {
	[ -n "$NGINX_PID" ] || return 0
	kill -TERM "$NGINX_PID" 2>/dev/null
	wait "$NGINX_PID" 2>/dev/null
	NGINX_PID=
}
trap 'client_stop; ngx_stop; kc_cleanup' EXIT

# fetch HOST PORT TLS: curl over TLS version TLS (1.2 or 1.3), the chain verified with the
# test CA; prints the body.
fetch() {
	curl -sS --max-time 20 --cacert "$ca/root.pem" --resolve "$1:$2:127.0.0.1" \
	    --tlsv"$3" --tls-max "$3" "https://$1:$2/" 2>"$KC_TMP/curl.err"
}

PORT=$(kc_free_port)
ngx_conf main www-data "$PORT" $EC_HOST $RSA_HOST $GONE_HOST $TWIN_HOST
if ngx_start main "$PORT"; then
	ok "nginx starts with the keys through the module (master root)"
	check_eq "the workers run as www-data" "www-data" \
	    "$(ps -o user= --ppid "$NGINX_PID" | sort -u | tr -d ' ')"
	# $TWIN_HOST: libp11 finds the key by the label of its second private key object.
	for h in $EC_HOST $RSA_HOST $TWIN_HOST; do
		for v in 1.2 1.3; do
			check_eq "$h over TLS $v: chain verified, signed through the module" "$h" \
			    "$(fetch $h "$PORT" $v)"
		done
	done
	check "TLS 1.2 with RSA PKCS#1 v1.5 (CKM_RSA_PKCS, a DigestInfo)" sh -c "
	    echo | openssl s_client -connect 127.0.0.1:$PORT -servername $RSA_HOST -tls1_2 \
	    -sigalgs RSA+SHA256 -CAfile '$ca/root.pem' -verify_return_error 2>&1 |
	    grep -q 'Verify return code: 0'"
	check_eq "$GONE_HOST serves before its deletion" $GONE_HOST "$(fetch $GONE_HOST "$PORT" 1.3)"

	ctl hostname delete --zone "$KC_ZONE" "$(jget .id <"$KC_TMP/gone.h.json")" >/dev/null
	check "a deleted hostname fails its handshake (TLS 1.3)" \
	    sh -c "! curl -sS --max-time 20 --cacert '$ca/root.pem' --resolve \
	    $GONE_HOST:$PORT:127.0.0.1 --tlsv1.3 https://$GONE_HOST:$PORT/"
	check "a deleted hostname fails its handshake (TLS 1.2)" \
	    sh -c "! curl -sS --max-time 20 --cacert '$ca/root.pem' --resolve \
	    $GONE_HOST:$PORT:127.0.0.1 --tlsv1.2 --tls-max 1.2 https://$GONE_HOST:$PORT/"
	check_eq "the other hostnames still serve" $EC_HOST "$(fetch $EC_HOST "$PORT" 1.3)"

	kc_stop_daemon
	kc_start_daemon || { not_ok "daemon restart"; kc_done; }
	for h in $EC_HOST $RSA_HOST; do
		check_eq "after a daemon restart $h still serves (TLS 1.3)" "$h" \
		    "$(fetch $h "$PORT" 1.3)"
		check_eq "after a daemon restart $h still serves (TLS 1.2)" "$h" \
		    "$(fetch $h "$PORT" 1.2)"
	done
	check "nginx's master survived it all" kill -0 "$NGINX_PID"
	check_eq "after a daemon restart the long-lived process signs, with the same handle" \
	    "ok $EC_HANDLE" "$(client sign $EC_HOST)"
else
	not_ok "nginx starts with the keys through the module (master root)"
fi
ngx_stop

# Workers as a uid without the signer role: the master (root) loads the key, every
# handshake then fails in the workers.
PORT2=$(kc_free_port)
ngx_conf nosigner nobody "$PORT2" $EC_HOST
sed -i 's/^user nobody;/user nobody www-data;/' "$NGX/nosigner.conf"
if ngx_start nosigner "$PORT2"; then
	check "workers without the signer role fail the handshake" \
	    sh -c "! curl -sS --max-time 20 --cacert '$ca/root.pem' --resolve \
	    $EC_HOST:$PORT2:127.0.0.1 --tlsv1.3 https://$EC_HOST:$PORT2/"
else
	not_ok "nginx with workers as nobody starts"
fi
ngx_stop

# --- stunnel (contrib/stunnel): keys loaded as root, then setuid www-data; one thread a
# connection. The module reconnects as the new uid, so the daemon sees www-data ---
if command -v stunnel >/dev/null 2>&1; then
	ST=$KC_TMP/stunnel
	mkdir -p "$ST"
	# st_conf NAME USER PORT: contrib/stunnel/keycustody.conf for this test: the two
	# hostnames, stunnel answering each with its name (exec echo), in the foreground.
	st_conf() {
		python3 - "$top_srcdir/contrib/stunnel/keycustody.conf" "$ST/$1.conf" "$2" "$3" \
		    "$MOD" "$ca" "$RSA_HOST" "$EC_HOST" <<'EOP'
import sys
src, dst, user, port, mod, ca, rsa, ec = sys.argv[1:]
t = open(src).read()
t = t.replace("setuid = www-data", "foreground = yes\nsetuid = " + user)
t = t.replace("pid = /run/stunnel-keycustody.pid", "pid =")
t = t.replace("/usr/lib/x86_64-linux-gnu/pkcs11/keycustody-pkcs11.so", mod)
t = t.replace("accept = :::443", "accept = 127.0.0.1:" + port)
t = t.replace("/etc/keycustody/certs/shop.example.com.pem", ca + "/rsa.pem")
t = t.replace("/etc/keycustody/certs/www.example.com.pem", ca + "/ec.pem")
t = t.replace("shop.example.com", rsa).replace("www.example.com", ec)
parts = t.split("\n[")
out = parts[0]
for part in parts[1:]:
    host = rsa if part.startswith("tls]") else ec
    out += "\n[" + part.replace("connect = 127.0.0.1:8080",
        "exec = /bin/echo\nexecArgs = echo " + host)
open(dst, "w").write(out)
EOP
	}
	ST_PID=
	# st_start NAME PORT: stunnel on $ST/NAME.conf; waits until it listens.
	st_start() {
		# shellcheck disable=SC2086
		env $p11env KEYCUSTODY_SOCKET="$KEYCUSTODY_SOCKET" stunnel "$ST/$1.conf" \
		    >"$ST/$1.log" 2>&1 &
		ST_PID=$!
		wait_listen "$ST_PID" "$2" && return 0
		sed 's/^/#   /' "$ST/$1.log" | tail -20
		return 1
	}
	st_stop() {
		[ -n "$ST_PID" ] || return 0
		kill "$ST_PID" 2>/dev/null
		wait "$ST_PID" 2>/dev/null
		ST_PID=
	}
	trap 'st_stop; client_stop; ngx_stop; kc_cleanup' EXIT
	# st_fetch HOST PORT 2|3: the name stunnel answers over TLS 1.2 or 1.3, chain verified.
	# Nothing is sent (a byte for echo, which does not read, would reset its socket and
	# lose the answer), and -ign_eof reads until stunnel closes.
	st_fetch() {
		openssl s_client -connect "127.0.0.1:$2" -servername "$1" -tls1_"$3" \
		    -CAfile "$ca/root.pem" -verify_return_error -quiet -ign_eof </dev/null \
		    2>/dev/null | tail -1
	}
	SPORT=$(kc_free_port)
	st_conf main www-data "$SPORT"
	if st_start main "$SPORT"; then
		check_eq "stunnel runs as www-data after loading the keys" www-data \
		    "$(ps -o user= -p "$ST_PID" | tr -d ' ')"
		for h in $EC_HOST $RSA_HOST; do
			for v in 2 3; do
				check_eq "stunnel: $h over TLS 1.$v (SNI), chain verified" "$h" \
				    "$(st_fetch $h "$SPORT" $v)"
			done
		done
	else
		not_ok "stunnel starts with the keys through the module"
	fi
	st_stop
	SPORT2=$(kc_free_port)
	st_conf nosigner nobody "$SPORT2"
	if st_start nosigner "$SPORT2"; then
		check_eq "stunnel dropped to a uid without the role: handshakes fail" "" \
		    "$(st_fetch $EC_HOST "$SPORT2" 3)"
	else
		not_ok "stunnel (setuid nobody) starts"
	fi
	st_stop
else
	echo "# stunnel missing (contrib/deps installs stunnel4): its checks are left out"
fi

client_stop
kc_done
