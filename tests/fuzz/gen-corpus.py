#!/usr/bin/env python3
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# gen-corpus.py: writes the seed corpora of tests/fuzz/corpus/<target>/ (frames of every
# request type, JSON bodies, PEM chains, credentials files, configuration files) from
# tests/fuzz/material/. Encodes protobuf by hand (proto/keycustody.proto), so it needs
# nothing but Python 3. Run it again after changing the protocol; crashers are kept.
import hashlib
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
corpus = os.path.join(here, "corpus")

ZONE = "023e105f4ecef8ad9ca31a8372d0c353"
CSR_ID = "7b163417-1d2b-4c84-a38a-2fb7a0cd7752"
HOST_ID = "24c8c68e-bec2-49b6-868e-f06373780630"
HOST = "shop.keycustody-fuzz.com"


def material(name):
    with open(os.path.join(here, "material", name)) as f:
        return f.read()


LEAF = material("leaf.pem")
LEAF2 = material("leaf2.pem")
INT = material("int.pem")
CA = material("ca.pem")
SELF = material("self.pem")


def write(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- protobuf, by hand ---

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


def f_varint(num, v):
    return varint(num << 3) + varint(v)


def f_bytes(num, v):
    if isinstance(v, str):
        v = v.encode()
    return varint(num << 3 | 2) + varint(len(v)) + v


def msg(fields):
    """fields: list of (num, value): int -> varint, str/bytes -> length-delimited."""
    out = b""
    for num, v in fields:
        if v is None:
            continue
        if isinstance(v, bool):
            out += f_varint(num, int(v))
        elif isinstance(v, int):
            out += f_varint(num, v)
        else:
            out += f_bytes(num, v)
    return out


def request(rid, body_num, body, actor="fuzz-gateway", version=1):
    return msg([(1, version), (2, rid), (3, actor), (body_num, body)])


def frame(b):
    return len(b).to_bytes(4, "big") + b


# control byte: bits 0-1 role (0 none, 1 reader, 2 gateway, 3 admin), bits 2-6 faults,
# bit 7 the requests are abandoned (their deadline passed while a worker had them)
def ctl(role=3, faults=0, abandoned=False):
    return bytes([role | faults << 2 | (0x80 if abandoned else 0)])


READER, GATEWAY, ADMIN = 1, 2, 3
F_DOWN, F_KEYGEN, F_SIGN, F_DESTROY, F_ENGINE = 1, 2, 4, 8, 16


def create_csr(key_type="p256v1", **kw):
    f = dict(zone=ZONE, country="US", state="California", locality="San Francisco",
             organization="Keycustody Fuzz", ou=None, cn=HOST,
             sans=[HOST, "www.keycustody-fuzz.com"], key_type=key_type,
             name="fuzz", description="a fuzz seed")
    f.update(kw)
    fields = [(1, f["zone"]), (2, f["country"]), (3, f["state"]), (4, f["locality"]),
              (5, f["organization"]), (6, f["ou"]), (7, f["cn"])]
    fields += [(8, s) for s in f["sans"]]
    fields += [(9, f["key_type"]), (10, f["name"]), (11, f["description"])]
    return msg(fields)


def ssl(csr_id=CSR_ID, cert=LEAF, bundle="ubiquitous", key_given=None):
    return msg([(1, csr_id), (2, cert), (3, bundle), (4, key_given)])


def frames(ctrl, *reqs):
    return ctrl + b"".join(frame(r) for r in reqs)


def gen_frame():
    w = lambda n, d: write("frame", n, d)
    w("health", frames(ctl(READER), request(1, 100, b"", actor=None)))
    for kt in ("p256v1", "rsa2048", "rsa3072", "rsa4096", "p384v1", "dsa1024"):
        w("create-csr-" + kt, frames(ctl(), request(2, 300, create_csr(kt))))
    w("create-csr-ou", frames(ctl(GATEWAY), request(3, 300, create_csr(ou="Platform"))))
    w("create-csr-minimal", frames(ctl(), request(4, 300, msg([(1, ZONE)]))))
    w("create-csr-bad-zone", frames(ctl(), request(5, 300, create_csr(zone="nope"))))
    w("create-csr-bad-country", frames(ctl(), request(6, 300, create_csr(country="USA"))))
    w("create-csr-wildcard", frames(ctl(), request(7, 300, create_csr(
        cn="*.keycustody-fuzz.com", sans=["*.keycustody-fuzz.com"]))))
    w("create-csr-idn", frames(ctl(), request(8, 300, create_csr(
        sans=["xn--80ak6aa92e.com", "b\u00fccher.example"]))))
    w("create-csr-fault-keygen", frames(ctl(faults=F_KEYGEN), request(9, 300, create_csr())))
    w("create-csr-fault-sign", frames(ctl(faults=F_SIGN), request(10, 300, create_csr())))
    w("create-csr-fault-sign-destroy", frames(ctl(faults=F_SIGN | F_DESTROY),
                                              request(11, 300, create_csr())))
    w("create-csr-down", frames(ctl(faults=F_DOWN), request(12, 300, create_csr())))
    w("create-csr-engine", frames(ctl(faults=F_ENGINE), request(13, 300, create_csr())))
    w("create-csr-abandoned", frames(ctl(abandoned=True), request(14, 300, create_csr())))
    w("create-hostname-abandoned", frames(ctl(abandoned=True), request(15, 400, msg(
        [(1, ZONE), (2, "www.keycustody-fuzz.com"), (3, ssl())]))))
    w("delete-hostname-abandoned", frames(ctl(abandoned=True), request(16, 404, msg(
        [(1, ZONE), (2, HOST_ID)]))))
    w("list-csrs", frames(ctl(READER), request(20, 301, msg([(1, ZONE)]))))
    w("list-csrs-paged", frames(ctl(), request(21, 301, msg(
        [(1, ZONE), (2, 2), (3, 1), (4, True)]))))
    w("list-csrs-page0", frames(ctl(), request(22, 301, msg([(1, ZONE), (2, 0), (3, 0)]))))
    w("get-csr", frames(ctl(READER), request(30, 302, msg([(1, ZONE), (2, CSR_ID)]))))
    w("get-csr-bad-id", frames(ctl(), request(31, 302, msg([(1, ZONE), (2, "x")]))))
    w("delete-csr-in-use", frames(ctl(), request(40, 303, msg([(1, ZONE), (2, CSR_ID)]))))
    w("delete-hostname-then-csr", frames(
        ctl(), request(41, 404, msg([(1, ZONE), (2, HOST_ID)])),
        request(42, 303, msg([(1, ZONE), (2, CSR_ID)])),
        request(43, 302, msg([(1, ZONE), (2, CSR_ID)]))))
    w("delete-csr-fault-destroy", frames(
        ctl(faults=F_DESTROY), request(44, 404, msg([(1, ZONE), (2, HOST_ID)])),
        request(45, 303, msg([(1, ZONE), (2, CSR_ID)]))))
    w("create-hostname", frames(ctl(GATEWAY), request(50, 400, msg(
        [(1, ZONE), (2, "www.keycustody-fuzz.com"), (3, ssl())]))))
    w("create-hostname-chain", frames(ctl(), request(51, 400, msg(
        [(1, ZONE), (2, "api.keycustody-fuzz.com"), (3, ssl(cert=LEAF2 + INT))]))))
    w("create-hostname-dup", frames(ctl(), request(52, 400, msg(
        [(1, ZONE), (2, HOST), (3, ssl())]))))
    w("create-hostname-self-signed", frames(ctl(), request(53, 400, msg(
        [(1, ZONE), (2, "www.keycustody-fuzz.com"), (3, ssl(cert=SELF))]))))
    w("create-hostname-custom-key", frames(ctl(), request(54, 400, msg(
        [(1, ZONE), (2, "www.keycustody-fuzz.com"), (3, ssl(key_given=True))]))))
    w("create-hostname-bad-bundle", frames(ctl(), request(55, 400, msg(
        [(1, ZONE), (2, "www.keycustody-fuzz.com"), (3, ssl(bundle="fastest"))]))))
    w("create-hostname-not-covered", frames(ctl(), request(56, 400, msg(
        [(1, ZONE), (2, "other-domain.com"), (3, ssl())]))))
    w("create-hostname-reserved", frames(ctl(), request(57, 400, msg(
        [(1, ZONE), (2, "www.example.com"), (3, ssl())]))))
    w("create-hostname-no-ssl", frames(ctl(), request(58, 400, msg(
        [(1, ZONE), (2, "www.keycustody-fuzz.com")]))))
    w("update-hostname", frames(ctl(), request(60, 403, msg(
        [(1, ZONE), (2, HOST_ID), (3, ssl(cert=LEAF2 + INT, bundle="force"))]))))
    w("update-hostname-empty", frames(ctl(), request(61, 403, msg(
        [(1, ZONE), (2, HOST_ID), (3, msg([]))]))))
    w("list-hostnames", frames(ctl(READER), request(70, 401, msg([(1, ZONE)]))))
    w("list-hostnames-filters", frames(ctl(), request(71, 401, msg(
        [(1, ZONE), (2, 1), (3, 50), (4, False), (5, HOST), (6, CSR_ID)]))))
    w("get-hostname", frames(ctl(READER), request(80, 402, msg([(1, ZONE), (2, HOST_ID)]))))
    w("delete-hostname", frames(ctl(), request(90, 404, msg([(1, ZONE), (2, HOST_ID)]))))
    # refusals: role, actor, version, framing
    w("reader-creates", frames(ctl(READER), request(100, 300, create_csr())))
    w("none-role", frames(ctl(0), request(101, 100, b"")))
    w("gateway-no-actor", frames(ctl(GATEWAY), request(102, 302, msg(
        [(1, ZONE), (2, CSR_ID)]), actor=None)))
    w("bad-version", frames(ctl(), request(103, 100, b"", version=2)))
    w("no-body", frames(ctl(), msg([(1, 1), (2, 104)])))
    w("garbage-body", frames(ctl(), b"\xff\xff\xff\xff"))
    w("truncated", frames(ctl(), request(105, 301, msg([(1, ZONE)])))[:-3])
    w("too-big", ctl() + b"\x7f\xff\xff\xff" + b"x" * 16)
    w("stream", frames(ctl(),
                       request(110, 100, b""),
                       request(111, 300, create_csr()),
                       request(112, 301, msg([(1, ZONE), (3, 50)])),
                       request(113, 401, msg([(1, ZONE)])),
                       request(114, 402, msg([(1, ZONE), (2, HOST_ID)]))))


def gen_json():
    w = lambda n, d: write("json", n, d)
    w("csr-full", '{"country":"US","state":"California","locality":"San Francisco",'
      '"organization":"Acme","organizational_unit":"Platform","common_name":"' + HOST +
      '","sans":["' + HOST + '","www.keycustody-fuzz.com"],"key_type":"p256v1",'
      '"name":"fuzz","description":"a seed","scope":"unused"}')
    w("csr-minimal", '{"common_name":"a.com"}')
    w("csr-nulls", '{"country":null,"sans":null,"key_type":null}')
    w("csr-unicode", '{"common_name":"b\\u00fccher.de","description":"\\ud83d\\ude00 \\" \\\\ \\n"}')
    w("csr-wrong-type", '{"sans":"a.com"}')
    w("csr-dup", '{"name":"a","name":"b"}')
    w("deep", "[" * 40 + "]" * 40)
    w("deep-object", '{"a":' * 33 + "1" + "}" * 33)
    w("not-object", '["a"]')
    w("empty", "")
    w("hostname", '{"hostname":"' + HOST + '","ssl":{"custom_csr_id":"' + CSR_ID +
      '","custom_certificate":' + __import__("json").dumps(LEAF) +
      ',"bundle_method":"ubiquitous","type":"dv","settings":{"min_tls_version":"1.2"}}}')
    w("hostname-custom-key", '{"hostname":"a.com","ssl":{"custom_key":"-----BEGIN"}}')
    w("hostname-ssl-null", '{"hostname":"a.com","ssl":null}')
    w("hostname-ssl-wrong", '{"hostname":"a.com","ssl":[1]}')
    w("update", '{"ssl":{"custom_certificate":"x","bundle_method":"force"}}')
    w("fallback-origin", '{"origin":"Origin.' + HOST + '."}')
    w("fallback-origin-wrong", '{"origin":["a.com"]}')
    w("numbers", '{"common_name":1e999,"sans":[1,2.5,-0]}')
    w("timestamp-bytes", '\xff\xff\xff\xff\xff\xff\xff\x7f{"common_name":"x"}'.encode("latin-1"))


def gen_cert():
    w = lambda n, d: write("cert", n, d)
    w("leaf", LEAF)
    w("leaf-crlf", LEAF.replace("\n", "\r\n"))
    w("leaf2-int", LEAF2 + INT)
    w("leaf2-int-ca", LEAF2 + INT + CA)
    w("int-leaf2", INT + LEAF2)
    w("leaf2-missing-int", LEAF2)
    w("self-signed", SELF)
    w("ca-only", CA)
    w("two-leaves", LEAF + LEAF2)
    w("empty", "")
    w("blank", " \n\t\r\n")
    w("garbage", "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
    w("truncated", LEAF[: len(LEAF) // 2])
    w("no-end", LEAF.replace("-----END CERTIFICATE-----\n", ""))
    w("text-around", "subject=CN=x\n" + LEAF + "trailing text\n")
    w("private-key", material("key.pem"))
    w("many", LEAF + INT * 17)


def gen_cred():
    w = lambda n, d: write("cred", n, d)
    tok = hashlib.sha256(b"fuzz-token").hexdigest()
    key = hashlib.sha256(b"fuzz-key").hexdigest()
    z2 = "9a7806061c88ada191ed06f989cc3dac"
    w("sample", "# comment\n\nwriter token %s * write\n"
      "  reader\ttoken %s %s,%s read   # trailing\r\n"
      "ops key %s %s write ops@keycustody-fuzz.com\n" % (tok, tok, ZONE, z2, key, ZONE))
    w("token", "gw token %s %s write\n" % (tok, ZONE))
    w("key", "ops key %s * read Ops@Keycustody-Fuzz.com\n" % key)
    w("dup-name", "a token %s * read\na token %s * write\n" % (tok, tok))
    w("bad-hash", "a token abcd * read\n")
    w("bad-zone", "a token %s zone read\n" % tok)
    w("key-no-email", "a key %s * read\n" % key)
    w("long-name", "%s token %s * read\n" % ("n" * 70, tok))
    w("empty", "")
    w("no-newline", "a token %s * read" % tok)
    w("nul", b"a token " + tok.encode() + b" * read\x00\n")


def gen_conf():
    w = lambda n, d: write("conf", n, d)
    w("full", "# keycustodyd.conf\nmodule = /usr/lib/softhsm/libsofthsm2.so\n"
      "token_label = keycustody\npin_file = /etc/keycustody/pin\n"
      "socket = /run/keycustody/keycustodyd.sock\nstore = /var/lib/keycustody/k.db\n"
      "engine = /usr/lib/engines-3/pkcs11.so\naudit_log = /var/log/keycustody/audit.log\n"
      "signer = engine\nworkers = 4\nqueue_limit = 1000\nmax_connections = 64\n"
      "trust_system = no\ntrust_bundle = /etc/ssl/a.pem\ntrust_bundle = /etc/ssl/b.pem\n"
      "admin = root\ngateway = keycustody-http\nreader = @monitoring\nreader = 1000\n"
      "socket_group = keycustody\nuser = keycustody\ngroup = keycustody\n"
      "sandbox = log\nrequest_timeout = 30\n")
    w("sandbox-bad", "pin_file = /p\nsandbox = strict\n")
    w("sandbox-off", "pin_file = /p\nsandbox = off\nuser = nobody\n")
    w("minimal", "pin_file = /p\n")
    w("blank-and-comments", "\n   # nothing\n\t\n")
    w("bad-number", "workers = 0x10\n")
    w("too-many-workers", "workers = 65\n")
    w("huge-number", "queue_limit = 99999999999999999999999\n")
    w("negative", "max_connections = -1\n")
    w("bad-bool", "trust_system = maybe\n")
    w("bad-signer", "signer = hsm\n")
    w("unknown", "colour = blue\n")
    w("no-equals", "workers 4\n")
    w("empty-value", "module =\n")
    w("long-label", "pin_file = /p\ntoken_label = " + "t" * 40 + "\n")
    w("long-socket", "pin_file = /p\nsocket = /" + "s" * 120 + "\n")
    w("crlf", "pin_file = /p\r\nworkers = 2\r\n")
    w("no-newline", "pin_file = /p")


def gen_jsonw():
    # Programs for fuzz-jsonw.c: a hint byte, then one byte per writer call: 0 { 1 } 2 [ 3 ]
    # 4 key 5 string (each then a length byte and that many bytes), 6 int 7 uint (8 bytes,
    # big-endian), 8 true 9 false 10 null.
    def s(op, b):
        if isinstance(b, str):
            b = b.encode()
        return bytes([op, len(b)]) + b
    key = lambda b: s(4, b)
    val = lambda b: s(5, b)
    num = lambda op, n: bytes([op]) + (n & 0xffffffffffffffff).to_bytes(8, "big")
    w = lambda n, d: write("jsonw", n, bytes([0]) + d)
    w("csr", b"\x00" + key("id") + val(CSR_ID) + key("created_at") +
      val("2026-11-26T15:16:25Z") + key("sans") + b"\x02" + val(HOST) +
      val("*.keycustody-fuzz.com") + b"\x03" + key("csr") + val(LEAF[:250]) +
      key("key_missing") + b"\x08" + b"\x01")
    w("envelope", b"\x00" + key("result") + b"\x0a" + key("success") + b"\x09" +
      key("errors") + b"\x02\x00" + key("code") + num(6, 1400) + key("message") +
      val("Unable to decode the JSON request body.") + b"\x01\x03" + key("messages") +
      b"\x02\x03" + key("result_info") + b"\x00" + key("total_count") +
      num(7, 2 ** 53 + 1) + b"\x01\x01")
    w("strings", b"\x02" + val(bytes(range(1, 0x80))) + val(b"\xc3\xa9\xe2\x82\xac"
      b"\xf0\x9f\x94\x91\xe2\x80\xa8\xef\xbf\xbd") + val(b"\x80\xc0\x80\xc2\xe2\x82x"
      b"\xed\xa0\x80\xf0\x9f\x98\xf4\x90\x80\x80\xf5\xff") + val("") + b"\x03")
    w("keys", b"\x00" + key(b"\xff") + b"\x0a" + key(b"\xfe") + b"\x0a" +
      key("\"\\/\n") + b"\x08" + key("a") + b"\x0a" + key("a") + b"\x09\x01")
    w("numbers", b"\x02" + num(6, -2 ** 63) + num(6, -1) + num(6, 0) + num(6, 2 ** 63 - 1) +
      num(7, 0) + num(7, 10 ** 18) + num(7, 2 ** 64 - 1) + b"\x03")
    w("scalar", val("only a string"))
    w("deep", b"\x02" * 64 + b"\x03" * 64)
    w("too-deep", b"\x02" * 65 + b"\x03" * 65)
    w("key-in-array", b"\x02" + key("k") + b"\x0a\x03")
    w("value-without-key", b"\x00" + val("v") + b"\x01")
    w("two-values", b"\x08\x09")
    w("open", b"\x00" + key("k"))
    w("mismatch", b"\x00\x03")
    w("empty", b"")


gen_frame()
gen_json()
gen_cert()
gen_cred()
gen_conf()
gen_jsonw()
print("corpora written under", corpus)
