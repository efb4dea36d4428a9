#!/usr/bin/env python3
"""Independent checks of the CA's issuance log answers for log.sh (RFC 9162, hashlib only):
  log_check.py tbs STH.json OUT          write the 51 signed bytes of a tree head (TreeHeadDataV2 layout)
  log_check.py sig STH.json OUT          write its signature (DER) for openssl dgst -verify
  log_check.py inclusion CERT.der PROOF.json STH.json   exit 0 iff the audit path leads to the tree head's root
  log_check.py consistency PROOF.json ROOT1_B64 ROOT2_B64
  log_check.py root N CERT1.der ...      print the base64 root of the first N certificates
  log_check.py audit_root N < HEX        print the base64 root of the audit tree of the first N entries, their stored
                                         hashes one per line in hex, in order (leaf i: entry i + 1's hash)"""
import base64
import hashlib
import json
import sys


def sha(b):
    return hashlib.sha256(b).digest()


def node(a, b):
    return sha(b"\x01" + a + b)


def mth(d):
    if not d:
        return sha(b"")
    if len(d) == 1:
        return sha(b"\x00" + d[0])
    k = 1
    while k * 2 < len(d):
        k *= 2
    return node(mth(d[:k]), mth(d[k:]))


def verify_inclusion(leaf_hash, index, size, path, root):  # RFC 9162 2.1.3.2
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, path, r1, r2):  # RFC 9162 2.1.4.2
    if first == second:
        return not path and r1 == r2
    if not path:
        return False
    if first & (first - 1) == 0:
        path = [r1] + path
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == r1 and sr == r2 and sn == 0


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    b64 = base64.b64decode
    if cmd in ("tbs", "sig"):
        h = json.load(open(args[0]))
        out = (h["timestamp"].to_bytes(8, "big") + h["tree_size"].to_bytes(8, "big") + b"\x20" + b64(h["root_hash"])
               + b"\x00\x00") if cmd == "tbs" else b64(h["signature"])
        open(args[1], "wb").write(out)
    elif cmd == "inclusion":
        leaf = sha(b"\x00" + open(args[0], "rb").read())
        p, h = json.load(open(args[1])), json.load(open(args[2]))
        ok = (b64(p["leaf_hash"]) == leaf and p["tree_size"] == h["tree_size"] and
              verify_inclusion(leaf, p["leaf_index"], p["tree_size"], [b64(x) for x in p["audit_path"]],
                               b64(h["root_hash"])))
        sys.exit(0 if ok else 1)
    elif cmd == "consistency":
        p = json.load(open(args[0]))
        ok = verify_consistency(p["first"], p["second"], [b64(x) for x in p["consistency_path"]], b64(args[1]), b64(args[2]))
        sys.exit(0 if ok else 1)
    elif cmd == "root":
        n = int(args[0])
        print(base64.b64encode(mth([open(f, "rb").read() for f in args[1:1 + n]])).decode())
    elif cmd == "audit_root":
        hashes = [bytes.fromhex(line.strip()) for line in sys.stdin if line.strip()]
        print(base64.b64encode(mth(hashes[:int(args[0])])).decode())


main()
