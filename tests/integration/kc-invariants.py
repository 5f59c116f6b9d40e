#!/usr/bin/env python3
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# kc-invariants.py: the crash-consistency invariants of DESIGN.md section 3, checked against
# the stopped daemon's SQLite store, the token (pkcs11-tool) and the audit log. Used by
# test-crash.sh and test-shutdown.sh. Prints one "ok|<what>" or "fail|<what>: <why>" line per
# check (the shell turns them into TAP lines) and a "stat|<name>|<value>" line per figure.
#
# usage: kc-invariants.py --db STORE --module SO --label TOKEN --pin-file F --audit LOG
#            [--created FILE] [--deleted FILE] [--listed FILE] [--tmp DIR]
#   --created: lines "ZONE ID" of creates that got a success reply
#   --deleted: lines "ok ZONE ID" (delete answered success), "gone ZONE ID" (1419 after an
#              earlier attempt that got no answer: it may have completed), "lost ZONE ID"
#              (1419 on the first attempt: a create that succeeded vanished)
#              and "inuse ZONE ID" (409/1420: a hostname uses the CSR; it must stay)
#   --listed:  lines "ZONE ID" of every record that keycustodyctl csr list returned
#   --hn-tried:   lines "ZONE CSR HOST" of every hostname upload attempted
#   --hn-created: lines "ZONE HNID HOST CSR" of every upload that got a success reply
#   --hn-deleted: lines "ok|gone|lost|unfinished ZONE HNID" as for --deleted
#   --hn-csrgone: lines "ZONE CSR" of uploads answered 404/1431 (the CSR was deleted first)
import argparse
import base64
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile

STATE = {0: "creating", 1: "ready", 2: "deleting"}
LABEL_PREFIX = "keycustody:"


def out(kind, what):
    print(f"{kind}|{what}", flush=True)


class Checker:
    def __init__(self):
        self.failed = 0

    def check(self, cond, what, why=""):
        if cond:
            out("ok", what)
        else:
            self.failed += 1
            out("fail", f"{what}: {why}" if why else what)
        return cond


def pem_to_der(pem):
    body = "".join(l for l in pem.strip().splitlines() if not l.startswith("-----"))
    return base64.b64decode(body)


def token_objects(a, pin):
    """{(class, id_hex): label} for every key object on the token."""
    r = subprocess.run(["pkcs11-tool", "--module", a.module, "--token-label", a.label,
                        "--login", "--pin", pin, "--list-objects"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("pkcs11-tool --list-objects: " + r.stderr.strip())
    objs = []
    cur = None
    for line in r.stdout.splitlines():
        if line and not line[0].isspace():
            # Every unindented line starts an object ("Data object 56" too: SoftHSM can
            # show a file torn by a kill as an object with garbage attributes).
            m = re.match(r"^(Private Key|Public Key|Secret Key|Certificate) Object", line)
            cur = {"class": m.group(1) if m else "other: " + line.strip(), "label": None,
                   "id": None}
            objs.append(cur)
            continue
        if cur is None:
            continue
        m = re.match(r"^\s+label:\s*(.*)$", line)
        if m:
            cur["label"] = m.group(1).strip()
        m = re.match(r"^\s+ID:\s*([0-9a-fA-F]*)\s*$", line)
        if m:
            cur["id"] = m.group(1).lower()
    return objs


def read_pubkey(a, pin, key_id_hex, tmp):
    f = os.path.join(tmp, f"pub-{key_id_hex}.der")
    r = subprocess.run(["pkcs11-tool", "--module", a.module, "--token-label", a.label,
                        "--login", "--pin", pin, "--read-object", "--type", "pubkey",
                        "--id", key_id_hex, "-o", f], capture_output=True, text=True)
    if r.returncode != 0 or not os.path.exists(f):
        return None
    with open(f, "rb") as fh:
        return fh.read()


def csr_verify(pem, tmp, rid):
    f = os.path.join(tmp, f"csr-{rid}.pem")
    with open(f, "w") as fh:
        fh.write(pem)
    v = subprocess.run(["openssl", "req", "-in", f, "-noout", "-verify"],
                       capture_output=True, text=True)
    p = subprocess.run(["openssl", "req", "-in", f, "-noout", "-pubkey"],
                       capture_output=True, text=True)
    pub = pem_to_der(p.stdout) if p.returncode == 0 else None
    return v.returncode == 0, pub


def read_pairs(path, nfields):
    res = []
    if path and os.path.exists(path):
        with open(path) as fh:
            for line in fh:
                f = line.split()
                if len(f) == nfields:
                    res.append(f)
    return res


def cert_pubkey(pem, tmp, hid):
    """DER SubjectPublicKeyInfo of the first certificate in pem, or None."""
    f = os.path.join(tmp, f"cert-{hid}.pem")
    with open(f, "w") as fh:
        fh.write(pem)
    p = subprocess.run(["openssl", "x509", "-in", f, "-noout", "-pubkey"],
                       capture_output=True, text=True)
    return pem_to_der(p.stdout) if p.returncode == 0 and p.stdout.strip() else None


def check_hostnames(a, c, recs, priv, pub, tok_pubs, tmp, deleted, inuse):
    """The custom hostname invariants against the store and what the uploader was told."""
    db = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True)
    hrows = db.execute("SELECT id, zone_id, hostname, csr_id, certificate_pem "
                       "FROM custom_hostnames").fetchall()
    db.close()
    hosts = {h[0]: h for h in hrows}
    out("stat", f"hostnames|{len(hrows)}")

    # Every hostname references a ready CSR of its own zone.
    bad = []
    for hid, z, name, csr, _ in hrows:
        r = recs.get(csr)
        if r is None:
            bad.append(f"{name}: CSR {csr} has no record")
        elif r[1] != z:
            bad.append(f"{name} in {z}: CSR {csr} is in zone {r[1]}")
        elif r[2] != 1:
            bad.append(f"{name}: CSR {csr} is {STATE.get(r[2], r[2])}")
    c.check(not bad, "every hostname references a ready CSR of its zone", "; ".join(bad[:10]))

    # No CSR that a hostname references is missing its key (either object).
    nokey = sorted({f"{csr} ({'private' if csr not in priv else 'public'})"
                    for _, _, _, csr, _ in hrows if csr not in priv or csr not in pub})
    c.check(not nokey, "no CSR that a hostname references is missing a key object",
            ", ".join(nokey[:10]))

    # The stored certificate carries the CSR's key: the one stored and the token's.
    badkey = []
    nmatched = 0
    for hid, _, name, csr, pem in hrows:
        r = recs.get(csr)
        cp = cert_pubkey(pem or "", tmp, hid)
        if cp is None:
            badkey.append(f"{name}: stored certificate does not parse")
        elif r is None:
            continue  # reported above
        elif cp != bytes(r[4] or b""):
            badkey.append(f"{name}: certificate key != CSR {csr}'s stored key")
        elif tok_pubs.get(csr) is not None and cp != tok_pubs[csr]:
            badkey.append(f"{name}: certificate key != CSR {csr}'s token key")
        else:
            nmatched += 1
    out("stat", f"hostname_certificates_matched|{nmatched}")
    c.check(not badkey, "every stored certificate's public key is its CSR's key",
            "; ".join(badkey[:10]))

    tried = read_pairs(a.hn_tried, 3)
    created = read_pairs(a.hn_created, 4)
    hdel = read_pairs(a.hn_deleted, 3)
    csrgone = read_pairs(a.hn_csrgone, 2)
    ok_del = {d[2] for d in hdel if d[0] == "ok"}
    maybe_del = {d[2] for d in hdel if d[0] in ("gone", "unfinished")}
    lost = [d[2] for d in hdel if d[0] == "lost"]
    out("stat", f"hostname_uploads_tried|{len(tried)}")
    out("stat", f"hostname_uploads_acknowledged|{len(created)}")
    out("stat", f"hostname_deletes_acknowledged|{len(ok_del)}")

    # Every acknowledged upload is still there, as acknowledged, unless deleted.
    missing = [f"{name} ({hid})" for _, hid, name, _ in created
               if hid not in ok_del and hid not in maybe_del and hid not in hosts]
    c.check(not missing and not lost, "every acknowledged hostname upload is still there "
            "(unless deleted)", f"{len(missing) + len(lost)} vanished: "
            f"{', '.join((missing + lost)[:10])}")
    wrong = [f"{name}: stored as {hosts[hid][1]} {hosts[hid][2]} {hosts[hid][3]}"
             for z, hid, name, csr in created
             if hid in hosts and (hosts[hid][1], hosts[hid][2], hosts[hid][3]) != (z, name, csr)]
    c.check(not wrong, "acknowledged uploads are stored with their zone, hostname and CSR",
            "; ".join(wrong[:10]))
    back = [hid for hid in ok_del if hid in hosts]
    c.check(not back, "every acknowledged hostname delete is gone", ", ".join(back[:10]))

    # Nothing stored that no upload asked for: every hostname was tried, with its CSR.
    tried_set = {(z, csr, h) for z, csr, h in tried}
    unasked = [f"{h[2]} ({h[3]})" for h in hrows if (h[1], h[3], h[2]) not in tried_set]
    c.check(not unasked, "every stored hostname comes from an upload attempt",
            ", ".join(unasked[:10]))

    # A CSR delete refused as in use (1420) concerns a CSR an upload was tried for, and
    # that CSR is still ready; a 1431 answer concerns a CSR whose delete was attempted.
    tried_csrs = {csr for _, csr, _ in tried}
    bad1420 = [csr for csr in inuse if csr not in tried_csrs]
    gone1420 = [csr for csr in inuse if csr not in recs or recs[csr][2] != 1]
    c.check(not bad1420 and not gone1420, "every CSR delete refused as in use (1420) had a "
            "hostname upload and is still ready", f"no upload: {bad1420[:5]}, "
            f"not ready: {gone1420[:5]}")
    del_tried = {d[2] for d in deleted if d[0] in ("ok", "gone", "unfinished")}
    bad1431 = [csr for _, csr in csrgone if csr not in del_tried]
    c.check(not bad1431, "every upload answered 1431 (CSR not found) was for a deleted CSR",
            ", ".join(bad1431[:10]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--module", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--pin-file", required=True)
    ap.add_argument("--audit", required=True)
    ap.add_argument("--created")
    ap.add_argument("--deleted")
    ap.add_argument("--listed")
    ap.add_argument("--tmp")
    ap.add_argument("--hn-tried")
    ap.add_argument("--hn-created")
    ap.add_argument("--hn-deleted")
    ap.add_argument("--hn-csrgone")
    a = ap.parse_args()
    c = Checker()
    tmp = a.tmp or tempfile.mkdtemp()
    with open(a.pin_file) as fh:
        pin = fh.read().strip()

    # The store, read directly (the daemon is stopped).
    db = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True)
    rows = db.execute("SELECT id, zone_id, state, hex(key_id), pubkey, csr_pem, key_type "
                      "FROM csrs").fetchall()
    # The per-zone totals that list pages report (schema 3: zone_counts, kept by triggers in
    # the transaction of each change) agree with the rows they count.
    has_counts = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                            "name = 'zone_counts'").fetchone()[0] == 1
    if has_counts:
        off = db.execute(
            "SELECT zone_id, sum(r), sum(h) FROM ("
            " SELECT zone_id, csrs_ready AS r, hostnames AS h FROM zone_counts"
            " UNION ALL SELECT zone_id, -count(*), 0 FROM csrs WHERE state = 1 GROUP BY zone_id"
            " UNION ALL SELECT zone_id, 0, -count(*) FROM custom_hostnames GROUP BY zone_id)"
            " GROUP BY zone_id HAVING sum(r) <> 0 OR sum(h) <> 0").fetchall()
    db.close()
    if has_counts:
        c.check(not off, "every zone's list totals (zone_counts) match its ready CSRs and "
                "hostnames", "; ".join(f"{z}: ready {r:+d}, hostnames {h:+d}"
                                       for z, r, h in off[:10]))
    recs = {r[0]: r for r in rows}
    bystate = {}
    for r in rows:
        bystate.setdefault(STATE.get(r[2], str(r[2])), []).append(r[0])
    out("stat", f"records|{len(rows)}")
    for s, ids in sorted(bystate.items()):
        out("stat", f"records_{s}|{len(ids)}")
    unfinished = [f"{rid} ({STATE.get(recs[rid][2], recs[rid][2])})" for rid in recs
                  if recs[rid][2] != 1]
    c.check(not unfinished, "no record left creating or deleting in the store",
            ", ".join(unfinished[:10]))

    # The token.
    objs = token_objects(a, pin)
    ours = [o for o in objs if (o["label"] or "").startswith(LABEL_PREFIX)]
    out("stat", f"token_objects_ours|{len(ours)}")
    out("stat", f"token_objects_other|{len(objs) - len(ours)}")
    priv = {}
    pub = {}
    for o in ours:
        rid = o["label"][len(LABEL_PREFIX):]
        (priv if o["class"] == "Private Key" else pub).setdefault(rid, []).append(o)
    other = [o for o in ours if o["class"] not in ("Private Key", "Public Key")]
    c.check(not other, "only key pairs carry our label", str(other[:5]))

    # Every ready record: both key objects, with the record's key id, exactly one each.
    bad = []
    for rid, r in recs.items():
        if r[2] != 1:
            continue
        kid = r[3].lower()
        for cls, d in (("private", priv), ("public", pub)):
            got = d.get(rid, [])
            if len(got) != 1:
                bad.append(f"{rid}: {len(got)} {cls} key object(s)")
            elif got[0]["id"] != kid:
                bad.append(f"{rid}: {cls} key CKA_ID {got[0]['id']} != record {kid}")
    c.check(not bad, "every ready record has exactly one private and one public key object "
            "with its key id", "; ".join(bad[:10]))

    # No key with our label lacks a record (orphans), by label and by CKA_ID.
    kids = {r[3].lower() for r in rows}
    orph = sorted({o["label"] for o in ours
                   if o["label"][len(LABEL_PREFIX):] not in recs or o["id"] not in kids})
    c.check(not orph, "no key labelled keycustody:* lacks a record",
            f"{len(orph)} orphan(s): {', '.join(orph[:10])}")

    # Every ready record's CSR verifies, and its key is the token's public key (and the
    # store's copy of it).
    badcsr = []
    nverified = 0
    tok_pubs = {}
    for rid, r in recs.items():
        if r[2] != 1:
            continue
        if not r[5]:
            badcsr.append(f"{rid}: no CSR")
            continue
        ok_sig, csr_pub = csr_verify(r[5], tmp, rid)
        if not ok_sig:
            badcsr.append(f"{rid}: openssl req -verify fails")
            continue
        tok_pub = read_pubkey(a, pin, r[3].lower(), tmp)
        tok_pubs[rid] = tok_pub
        if tok_pub is None:
            badcsr.append(f"{rid}: public key not readable from the token")
        elif tok_pub != csr_pub:
            badcsr.append(f"{rid}: CSR public key != token public key")
        elif bytes(r[4] or b"") != tok_pub:
            badcsr.append(f"{rid}: stored public key != token public key")
        else:
            nverified += 1
    out("stat", f"csrs_verified|{nverified}")
    c.check(not badcsr, "every ready record's CSR verifies and carries the token's public key",
            "; ".join(badcsr[:10]))

    # What the clients were told.
    created = read_pairs(a.created, 2)
    deleted = read_pairs(a.deleted, 3)
    ok_del = {d[2] for d in deleted if d[0] == "ok"}
    maybe_del = {d[2] for d in deleted if d[0] in ("gone", "unfinished")}
    lost = [d[2] for d in deleted if d[0] == "lost"]
    inuse = {d[2] for d in deleted if d[0] == "inuse"}
    out("stat", f"creates_acknowledged|{len(created)}")
    out("stat", f"deletes_acknowledged|{len(ok_del)}")
    out("stat", f"deletes_unanswered_then_gone|{len(maybe_del)}")
    if a.hn_created:
        out("stat", f"deletes_refused_in_use|{len(inuse)}")
    if a.created:
        missing = [rid for _, rid in created
                   if rid not in ok_del and rid not in maybe_del
                   and (rid not in recs or recs[rid][2] != 1)]
        c.check(not missing and not lost, "every acknowledged create is still there "
                "(unless deleted)", f"{len(missing) + len(lost)} vanished: "
                f"{', '.join((missing + lost)[:10])}")
        wrongzone = [f"{rid} in {recs[rid][1]}, created in {z}" for z, rid in created
                     if rid in recs and recs[rid][1] != z]
        c.check(not wrongzone, "acknowledged creates are in the zone they were created in",
                "; ".join(wrongzone[:10]))
    if a.deleted:
        back = [rid for rid in ok_del if rid in recs]
        c.check(not back, "every acknowledged delete is gone (record)", ", ".join(back[:10]))
        keys_back = [rid for rid in ok_del if rid in priv or rid in pub]
        c.check(not keys_back, "every acknowledged delete is gone (key objects)",
                ", ".join(keys_back[:10]))
    if a.listed:
        listed = {rid for _, rid in read_pairs(a.listed, 2)}
        ready = {rid for rid, r in recs.items() if r[2] == 1}
        c.check(listed == ready, "csr list over all zones shows exactly the ready records",
                f"listed-only {sorted(listed - ready)[:5]}, store-only "
                f"{sorted(ready - listed)[:5]}")

    if a.hn_created:
        check_hostnames(a, c, recs, priv, pub, tok_pubs, tmp, deleted, inuse)

    # The audit trail: every acknowledged create has its create_csr ok line, every
    # acknowledged delete its delete_csr ok line.
    ops = {}
    with open(a.audit, errors="replace") as fh:
        for line in fh:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("result") == "ok" and ev.get("id"):
                ops.setdefault(ev["op"], set()).add(ev["id"])
    if a.created:
        noaud = [rid for _, rid in created if rid not in ops.get("create_csr", set())]
        c.check(not noaud, "every acknowledged create has its create_csr audit record",
                ", ".join(noaud[:10]))
    if a.deleted:
        noaud = [rid for rid in ok_del if rid not in ops.get("delete_csr", set())]
        c.check(not noaud, "every acknowledged delete has its delete_csr audit record",
                ", ".join(noaud[:10]))
    # Nothing ready without a create_csr.begin (made outside the audited path).
    unaud = [rid for rid, r in recs.items() if rid not in ops.get("create_csr.begin", set())]
    c.check(not unaud, "every record has a create_csr.begin audit record",
            ", ".join(unaud[:10]))
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
