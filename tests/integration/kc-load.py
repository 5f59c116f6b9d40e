#!/usr/bin/env python3
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# kc-load.py: the load driver of test-load.sh. Keep-alive HTTP/1.1 clients (one thread
# each) against keycustody-http; every answer is checked: the right success, or an explicit
# 503 with error code 1503 and Retry-After; malformed requests get their 4xx.
#
# mixed BASE TOKEN ZONE SECONDS CLIENTS: creates (p256v1), lists, gets, deletes, plus one
#   client sending malformed requests (bad JSON, bad auth, oversized body). Prints
#   "stat|name|value" lines, "bad|what" for every wrong answer, and the ids created and
#   not deleted as "live|id".
# reads BASE TOKEN ZONE COUNT CLIENTS: COUNT list/get requests, then "stat|..." lines.
import http.client
import json
import random
import sys
import threading
import time
from urllib.parse import urlparse

lock = threading.Lock()
stats = {}
bad = []
live = set()


def stat(k, n=1):
    with lock:
        stats[k] = stats.get(k, 0) + n


def wrong(what):
    with lock:
        if len(bad) < 50:
            bad.append(what)
        stats["wrong"] = stats.get("wrong", 0) + 1


class Client:
    def __init__(self, base, token):
        u = urlparse(base)
        self.host, self.port, self.prefix = u.hostname, u.port, u.path
        self.token = token
        self.conn = None

    def req(self, method, path, body=None, headers=None, auth=True):
        h = {"Content-Type": "application/json"}
        if auth:
            h["Authorization"] = "Bearer " + self.token
        h.update(headers or {})
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                self.conn.request(method, self.prefix + path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, r.getheader("Retry-After"), data
            except (http.client.HTTPException, OSError):
                # The shim may close an idle or refused connection: reconnect once.
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise RuntimeError("unreachable")


def envelope(data):
    try:
        return json.loads(data)
    except ValueError:
        return None


def check(kind, status, ra, data, want_status, want_code=None):
    """Count the answer; True when it is the wanted success."""
    j = envelope(data)
    if status == 503:
        code = j and j.get("errors") and j["errors"][0].get("code")
        if code == 1503 and ra:
            stat(f"{kind}_503")
            return False
        wrong(f"{kind}: 503 without code 1503/Retry-After: {data[:200]!r}")
        return False
    if status != want_status or j is None:
        wrong(f"{kind}: status {status}, want {want_status}: {data[:200]!r}")
        return False
    if want_code is not None:
        code = j.get("errors") and j["errors"][0].get("code")
        if code != want_code or j.get("success") is not False:
            wrong(f"{kind}: code {code}, want {want_code}")
            return False
    elif j.get("success") is not True:
        wrong(f"{kind}: success is not true")
        return False
    stat(f"{kind}_ok")
    return True


def body(i):
    cn = f"load{i}.acme-corp.co.uk"
    return json.dumps({"country": "US", "state": "MA", "locality": "Boston",
                       "organization": "City of Boston", "common_name": cn, "sans": [cn],
                       "key_type": "p256v1"})


def worker(base, token, zone, deadline, n):
    c = Client(base, token)
    mine = []
    csrs = f"/zones/{zone}/custom_csrs"
    i = 0
    while time.time() < deadline:
        i += 1
        op = random.random()
        try:
            if op < 0.30 or not mine:
                st, ra, d = c.req("POST", csrs, body(f"{n}-{i}"))
                if check("create", st, ra, d, 201):
                    rid = json.loads(d)["result"]["id"]
                    mine.append(rid)
                    with lock:
                        live.add(rid)
            elif op < 0.55:
                st, ra, d = c.req("GET", f"{csrs}?per_page=5&page={random.randint(1, 3)}")
                check("list", st, ra, d, 200)
            elif op < 0.85:
                rid = random.choice(mine)
                st, ra, d = c.req("GET", f"{csrs}/{rid}")
                if check("get", st, ra, d, 200) and json.loads(d)["result"]["id"] != rid:
                    wrong(f"get {rid}: another record came back")
            else:
                rid = mine.pop(random.randrange(len(mine)))
                st, ra, d = c.req("DELETE", f"{csrs}/{rid}")
                if check("delete", st, ra, d, 200):
                    with lock:
                        live.discard(rid)
                elif st == 503:
                    mine.append(rid)	# not done: try again later
        except Exception as e:  # noqa: BLE001 - every failure is a finding
            wrong(f"client {n}: {type(e).__name__}: {e}")
            time.sleep(0.05)


def malformed(base, token, zone, deadline):
    c = Client(base, token)
    csrs = f"/zones/{zone}/custom_csrs"
    big = b'{"country":"' + b"x" * (1024 * 1024 + 10) + b'"}'
    cases = [
        ("bad_json", lambda: c.req("POST", csrs, '{"country":'), 400, 1400),
        ("array_body", lambda: c.req("POST", csrs, "[1,2]"), 400, 1400),
        ("no_auth", lambda: c.req("GET", csrs, auth=False), 400, 9106),
        ("bad_token", lambda: c.req("GET", csrs, auth=False, headers={
            "Authorization": "Bearer " + "A" * 40}), 403, 10000),
        ("basic_auth", lambda: c.req("GET", csrs, auth=False, headers={
            "Authorization": "Basic dXNlcjpwYXNz"}), 400, 6003),
        ("oversized", lambda: c.req("POST", csrs, big), 400, 1400),
        ("bad_zone", lambda: c.req("GET", "/zones/nope/custom_csrs"), 400, 7003),
        ("bad_id", lambda: c.req("GET", f"{csrs}/not-a-uuid"), 400, 1418),
    ]
    while time.time() < deadline:
        kind, f, st_want, code = random.choice(cases)
        try:
            st, ra, d = f()
            check("malformed_" + kind, st, ra, d, st_want, code)
        except Exception as e:  # noqa: BLE001
            wrong(f"malformed {kind}: {type(e).__name__}: {e}")
            time.sleep(0.05)
        time.sleep(0.002)	# a stream, not a flood: the CPUs are shared with the shim


def mixed(base, token, zone, seconds, clients):
    deadline = time.time() + seconds
    ts = [threading.Thread(target=worker, args=(base, token, zone, deadline, n))
          for n in range(clients)]
    ts.append(threading.Thread(target=malformed, args=(base, token, zone, deadline)))
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    stats["seconds"] = round(time.time() - t0, 1)


def reads(base, token, zone, count, clients):
    # Some records to get.
    c = Client(base, token)
    csrs = f"/zones/{zone}/custom_csrs"
    st, ra, d = c.req("GET", f"{csrs}?per_page=50")
    ids = [r["id"] for r in json.loads(d)["result"]] if st == 200 else []
    if not ids:
        wrong("reads: no record to get")
        return
    left = [count]

    def run():
        cl = Client(base, token)
        while True:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            try:
                if random.random() < 0.5:
                    st, ra, d = cl.req("GET", f"{csrs}?per_page=5")
                    check("list", st, ra, d, 200)
                else:
                    st, ra, d = cl.req("GET", f"{csrs}/{random.choice(ids)}")
                    check("get", st, ra, d, 200)
            except Exception as e:  # noqa: BLE001
                wrong(f"reads: {type(e).__name__}: {e}")
    t0 = time.time()
    ts = [threading.Thread(target=run) for _ in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    stats["seconds"] = round(time.time() - t0, 2)


def main():
    mode = sys.argv[1]
    if mode == "mixed":
        mixed(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), int(sys.argv[6]))
    else:
        reads(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    for k in sorted(stats):
        print(f"stat|{k}|{stats[k]}")
    for b in bad:
        print(f"bad|{b}")
    for rid in sorted(live):
        print(f"live|{rid}")


if __name__ == "__main__":
    main()
