#!/usr/bin/env python3
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# kc-raw.py: a raw client of the daemon's socket for the limit tests of issue 12
# (test-issue-12-limits.sh, test-issue-12-fairness.sh). Frames are a 4-byte big-endian
# length and a protobuf message, encoded here by hand (proto/keycustody.proto).
#
# unread SOCK ZONE COUNT SECONDS: send COUNT list requests (50 a page), never read a reply,
#   then wait up to SECONDS for the daemon to cut the connection off. Prints
#   "stat|sent|N" and "stat|cut_off_after|S" (or "stat|cut_off_after|never").
# hold SOCK COUNT SECONDS: open COUNT connections, ask health on each, hold them SECONDS.
#   Prints "stat|answered|N" and "stat|refused|N" once they are counted, then holds.
# refused SOCK COUNT: connect COUNT times (each closed by the daemon at once, no role).
# keys SOCK OUTDIR: the signer's keys (issue 16, test-signer.sh): "key|ID|TYPE|CSR" and
#   "cert|ID|HOSTNAME|ZONE" lines; OUTDIR/ID.spki (DER) and OUTDIR/HOSTNAME.der written.
#   Or "error|STATUS|CODE|MESSAGE".
# sign SOCK ID MECH DATA [HASH MGF SALT]: one signature (MECH 1 ECDSA, 2 RSA PKCS#1 v1.5,
#   3 PSS with the SignHash numbers and salt length), ID and DATA in hex: "ok|SIG" (hex),
#   or "error|STATUS|CODE|MESSAGE".
# signs SOCK ID DATA COUNT: COUNT ECDSA signatures pipelined on one connection: prints
#   "stat|ok|N", "stat|rate_limited|N" and "stat|other|N".
# fair SOCK ZONE_A ZONE_B SECONDS CONNS DEPTH: CONNS connections each keep DEPTH creates
#   of ZONE_A in flight for SECONDS while one connection lists ZONE_B, one request at a
#   time, and another creates in ZONE_B now and then. Prints "stat|name|value" lines:
#   answers by kind and the latencies of ZONE_B's requests (p50, p99, max in ms).
import os
import select
import socket
import struct
import sys
import threading
import time

VERSION = 1


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, v):
    if isinstance(v, int):
        return varint(num << 3) + varint(v)
    if isinstance(v, str):
        v = v.encode()
    return varint(num << 3 | 2) + varint(len(v)) + v


def request(rid, body_num, body):
    return field(1, VERSION) + field(2, rid) + field(body_num, body)


def frame(b):
    return struct.pack(">I", len(b)) + b


def health(rid):
    return frame(request(rid, 100, b""))


def list_csrs(rid, zone):
    return frame(request(rid, 301, field(1, zone) + field(3, 50)))


def create_csr(rid, zone, cn):
    body = (field(1, zone) + field(2, "US") + field(3, "MA") + field(4, "Boston") +
            field(5, "City of Boston") + field(7, cn) + field(8, cn) + field(9, "p256v1"))
    return frame(request(rid, 300, body))


def signer_keys(rid):
    return frame(request(rid, 500, b""))


def sign(rid, key_id, mech, data, pss=None):
    body = field(1, key_id) + field(2, mech) + field(3, data)
    if pss is not None:
        body += field(4, pss[0]) + field(5, pss[1]) + field(6, pss[2])
    return frame(request(rid, 501, body))


def parse(buf):
    """A message as {field number: [values]} (varints as ints, the rest as bytes)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(buf, i)
        elif wt == 2:
            n, i = read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        else:
            raise ValueError(f"wire type {wt}")
        out.setdefault(num, []).append(v)
    return out


def read_varint(buf, i):
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = b""

    def message(self, timeout=30.0):
        """The next Response, parsed ({field: [values]})."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    m, self.buf = parse(self.buf[4:4 + n]), self.buf[4 + n:]
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply")
            self.s.settimeout(left)
            data = self.s.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.buf += data

    def reply(self, timeout=30.0):
        """The next Response as (id, error or None), error = (status, code, retry_after)."""
        m = self.message(timeout)
        err = None
        if 2 in m:
            e = parse(m[2][0])
            err = (e.get(1, [0])[0], e.get(2, [0])[0], e.get(4, [None])[0])
        return m[1][0], err

    def call(self, f, timeout=30.0):
        self.s.sendall(f)
        return self.reply(timeout)

    def call_msg(self, f, timeout=30.0):
        """Send f; the Response parsed."""
        self.s.sendall(f)
        return self.message(timeout)


def print_error(m):
    e = parse(m[2][0])
    msg = e.get(3, [b""])[0].decode(errors="replace")
    print(f"error|{e.get(1, [0])[0]}|{e.get(2, [0])[0]}|{msg}", flush=True)


def cmd_keys(path, outdir):
    m = Conn(path).call_msg(signer_keys(1))
    if 2 in m:
        print_error(m)
        return
    for k in parse(m.get(500, [b""])[0]).get(1, []):
        k = parse(k)
        kid = k[1][0].hex()
        print(f"key|{kid}|{k[3][0].decode()}|{k[2][0].decode()}", flush=True)
        with open(os.path.join(outdir, kid + ".spki"), "wb") as f:
            f.write(k[4][0])
        for c in k.get(5, []):
            c = parse(c)
            host = c[1][0].decode()
            print(f"cert|{kid}|{host}|{c[2][0].decode()}", flush=True)
            with open(os.path.join(outdir, host + ".der"), "wb") as f:
                f.write(c[4][0])


def cmd_sign(path, key_id, mech, data, *pss):
    p = tuple(int(x) for x in pss) if pss else None
    m = Conn(path).call_msg(sign(1, bytes.fromhex(key_id), int(mech), bytes.fromhex(data), p))
    if 2 in m:
        print_error(m)
        return
    print("ok|" + parse(m[501][0])[1][0].hex(), flush=True)


def cmd_signs(path, key_id, data, count):
    c, n = Conn(path), int(count)
    c.s.sendall(b"".join(sign(i + 1, bytes.fromhex(key_id), 1, bytes.fromhex(data))
                         for i in range(n)))
    ok = limited = other = 0
    for _ in range(n):
        _, err = c.reply()
        if err is None:
            ok += 1
        elif err[1] == 971:
            limited += 1
        else:
            other += 1
    stat("ok", ok)
    stat("rate_limited", limited)
    stat("other", other)


def stat(k, v):
    print(f"stat|{k}|{v}", flush=True)


def cmd_unread(path, zone, count, seconds):
    c = Conn(path)
    c.s.setblocking(False)
    frames = [list_csrs(i + 1, zone) for i in range(int(count))]
    data, off = b"".join(frames), 0
    t_end = time.monotonic() + float(seconds)
    # Send while the daemon takes them; it stops reading once replies pile up.
    while off < len(data) and time.monotonic() < t_end:
        try:
            off += c.s.send(data[off:])
        except BlockingIOError:
            select.select([], [c.s], [], 0.1)
        except (BrokenPipeError, ConnectionResetError):
            break
    sent, end = 0, 0
    for f in frames:
        end += len(f)
        if end > off:
            break
        sent += 1
    stat("sent", sent)
    t0 = time.monotonic()
    while time.monotonic() < t_end:
        try:
            # A frame reaches the daemon, or fails once it has closed the connection.
            c.s.send(health(999999))
        except BlockingIOError:
            pass
        except (BrokenPipeError, ConnectionResetError):
            stat("cut_off_after", round(time.monotonic() - t0, 1))
            return
        time.sleep(0.2)
    stat("cut_off_after", "never")


def cmd_hold(path, count, seconds):
    conns, answered, refused = [], 0, 0
    for i in range(int(count)):
        try:
            c = Conn(path)
            c.call(health(i + 1), 5.0)
            conns.append(c)
            answered += 1
        except (ConnectionError, OSError, TimeoutError):
            refused += 1
    stat("answered", answered)
    stat("refused", refused)
    time.sleep(float(seconds))


def cmd_refused(path, count):
    n = 0
    for _ in range(int(count)):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            n += 1
        except OSError:
            pass
        s.close()
    stat("connected", n)


def pct(v, p):
    if not v:
        return -1
    v = sorted(v)
    return round(v[min(len(v) - 1, int(len(v) * p))] * 1000)


def cmd_fair(path, zone_a, zone_b, seconds, conns, depth):
    lock = threading.Lock()
    counts = {}
    lat_list, lat_create = [], []
    t_end = time.monotonic() + float(seconds)

    def count(k):
        with lock:
            counts[k] = counts.get(k, 0) + 1

    def kind(err):
        if err is None:
            return "ok"
        st, code, ra = err
        if st == 7 and code == 971 and ra:
            return "429"
        if st == 5 and code == 1503 and ra:
            return "503"
        return f"other_{st}_{code}"

    def flood(n):
        c, rid, inflight = Conn(path), n * 1000000, 0
        try:
            while time.monotonic() < t_end:
                while inflight < int(depth):
                    rid += 1
                    c.s.sendall(create_csr(rid, zone_a, f"a{rid}.acme-corp.co.uk"))
                    inflight += 1
                _, err = c.reply(60.0)
                inflight -= 1
                count("a_create_" + kind(err))
                if err is not None and err[0] == 7:
                    time.sleep(0.01)	# a client that honours 429 a little
            while inflight > 0:
                _, err = c.reply(60.0)
                inflight -= 1
                count("a_create_" + kind(err))
        except Exception as e:  # noqa: BLE001 - every failure is a finding
            count(f"a_error_{type(e).__name__}")

    def lister():
        c, rid = Conn(path), 0
        while time.monotonic() < t_end:
            rid += 1
            t0 = time.monotonic()
            try:
                _, err = c.call(list_csrs(rid, zone_b), 60.0)
            except Exception as e:  # noqa: BLE001
                count(f"b_list_error_{type(e).__name__}")
                return
            lat_list.append(time.monotonic() - t0)
            count("b_list_" + kind(err))
            time.sleep(0.02)

    def creator():
        c, rid = Conn(path), 0
        while time.monotonic() < t_end:
            rid += 1
            t0 = time.monotonic()
            try:
                _, err = c.call(create_csr(rid, zone_b, f"b{rid}.acme-corp.co.uk"), 60.0)
            except Exception as e:  # noqa: BLE001
                count(f"b_create_error_{type(e).__name__}")
                return
            lat_create.append(time.monotonic() - t0)
            count("b_create_" + kind(err))
            time.sleep(0.5)

    ts = [threading.Thread(target=flood, args=(n,)) for n in range(int(conns))]
    ts += [threading.Thread(target=lister), threading.Thread(target=creator)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for k in sorted(counts):
        stat(k, counts[k])
    stat("b_list_p50_ms", pct(lat_list, 0.50))
    stat("b_list_p99_ms", pct(lat_list, 0.99))
    stat("b_list_max_ms", pct(lat_list, 1.0))
    stat("b_create_max_ms", pct(lat_create, 1.0))


def main():
    cmds = {"unread": cmd_unread, "hold": cmd_hold, "refused": cmd_refused, "fair": cmd_fair,
            "keys": cmd_keys, "sign": cmd_sign, "signs": cmd_signs}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit("usage: kc-raw.py unread|hold|refused|fair|keys|sign|signs SOCK ...")
    cmds[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
