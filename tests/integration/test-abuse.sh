#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-abuse.sh: protocol abuse on the daemon's socket. A truncated frame, an oversized
# length, the wrong version, an unknown request type and garbage protobuf each get the
# connection closed (or a versioned error), and the daemon still answers the next client.

. "$(dirname "$0")/common.sh"
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 missing"; exit 77; }
kc_setup

# raw NAME HEXBYTES: send bytes, print what the daemon does: "closed", "answer" or "open".
raw() {
	python3 - "$KEYCUSTODY_SOCKET" "$2" <<'EOP'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(bytes.fromhex(sys.argv[2]))
s.settimeout(2.0)
try:
    data = s.recv(65536)
    print("closed" if data == b"" else "answer:" + data.hex())
except socket.timeout:
    print("open")
EOP
}

frame() {	# frame HEXBODY -> length-prefixed hex
	printf '%08x%s' $(($(printf '%s' "$1" | wc -c) / 2)) "$1"
}

# Request{version=1, id=2, health{}}: 08 01 10 02 a2 06 00
health_body=08011002a20600
check_eq "a well-formed health request is answered" "answer" \
    "$(raw ok "$(frame $health_body)" | cut -d: -f1)"
check_eq "oversized length: closed" closed "$(raw big 7fffffff00)"
# 2^31 and 2^32 - 1: the sign bit set (issue 12: a signed shift in the refusal's log line,
# which the sanitizer build reports at the daemon's exit).
check_eq "length 2^31: closed" closed "$(raw big31 8000000000)"
check_eq "length 2^32 - 1: closed" closed "$(raw big32 ffffffff00)"
check "the refusal names the whole length" \
    grep -q 'frame of 2147483648 bytes exceeds' "$KC_TMP/keycustodyd.log"
check "the refusal names 2^32 - 1" \
    grep -q 'frame of 4294967295 bytes exceeds' "$KC_TMP/keycustodyd.log"
check_eq "length just over 1 MiB: closed" closed "$(raw big2 00100001)"
check_eq "garbage protobuf: closed" closed "$(raw garbage "$(frame ffffffffffffffff)")"
# Request{version=1, id=3, field 999 (unknown), no body}: 08 01 10 03 ba 3e 00
check_eq "unknown request type: closed" closed "$(raw unknown "$(frame 08011003ba3e00)")"
# Request{version=1, id=4} without any body.
check_eq "request without a body: closed" closed "$(raw nobody "$(frame 08011004)")"
# Version 99: a versioned error naming the id, then the connection is closed.
out=$(raw version "$(frame 08631005a20600)")
case $out in answer:*) ok "wrong version: an error reply before closing" ;;
*) not_ok "wrong version: $out" ;; esac
# A truncated frame: the header promises 100 bytes, 3 arrive; the daemon waits, unharmed.
check_eq "truncated frame: the daemon waits for the rest" open "$(raw trunc 00000064080110)"
check "the daemon still answers the next client" ctl health
check "the daemon process is alive" kill -0 "$DAEMON_PID"

# Many connections that vanish at once.
python3 - "$KEYCUSTODY_SOCKET" <<'EOP'
import socket, sys
socks = []
for i in range(100):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    s.sendall(bytes.fromhex("0000000708011002a2"))  # cut mid-frame
    socks.append(s)
for s in socks:
    s.close()
EOP
check "after 100 vanished clients the daemon answers" ctl health

kc_done
