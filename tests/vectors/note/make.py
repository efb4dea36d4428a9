#!/usr/bin/env python3
"""Writes the signed-note vectors of tests/unit/test_note.c, independently of camtrust's C code: Ed25519 from
Python's `cryptography` (Debian python3-cryptography), the formats from c2sp.org/signed-note and
c2sp.org/tlog-checkpoint. Ed25519 is deterministic and the seeds are fixed, so the output never changes:
    python3 tests/vectors/note/make.py tests/vectors/note"""
import base64
import hashlib
import os
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ORIGIN = "camtrust.example.com/example-camera-maker/issuance"


def key(seed_byte, name):
    k = Ed25519PrivateKey.from_private_bytes(bytes([seed_byte]) * 32)
    pub = k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    kid = hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]
    return k, pub, kid, name


def vkey(k):
    _, pub, kid, name = k
    return "%s+%s+%s" % (name, kid.hex(), base64.b64encode(b"\x01" + pub).decode())


def sig_line(k, text, kid=None):
    priv, _, own_kid, name = k
    s = priv.sign(text)
    return "\u2014 %s %s\n" % (name, base64.b64encode((kid or own_kid) + s).decode())


def checkpoint(origin, size, root, audit=(7, b"\x5a" * 32), time_ms=1764756000123):
    t = "%s\n%d\n%s\n" % (origin, size, base64.b64encode(root).decode())
    t += "camtrust-audit %d %s\n" % (audit[0], base64.b64encode(audit[1]).decode())
    t += "camtrust-time %d\n" % time_ms
    return t.encode()


def main(out):
    log = key(1, ORIGIN)
    impostor = key(2, ORIGIN)  # same name, another key: another key ID
    witness = key(3, "witness.example.org/w1")
    root = hashlib.sha256(b"root of 5 leaves").digest()
    text = checkpoint(ORIGIN, 5, root)
    files = {
        "log.vkey": vkey(log) + "\n",
        "checkpoint.note": text + b"\n" + sig_line(log, text).encode(),
        # a witness's signature first: unknown signers are skipped, ours still verifies
        "cosigned.note": text + b"\n" + sig_line(witness, text).encode() + sig_line(log, text).encode(),
        "other-origin.note": checkpoint("camtrust.example.com/other/issuance", 5, root) + b"\n"
        + sig_line(log, checkpoint("camtrust.example.com/other/issuance", 5, root)).encode(),
        "unknown-signer.note": text + b"\n" + sig_line(witness, text).encode(),
        "wrong-key-id.note": text + b"\n" + sig_line(impostor, text).encode(),
        # our name and key ID, but the signature of other text: must fail, not be skipped
        "bad-signature.note": text + b"\n" + sig_line(log, checkpoint(ORIGIN, 6, root)).encode(),
        "empty-tree.note": checkpoint(ORIGIN, 0, hashlib.sha256(b"").digest()) + b"\n"
        + sig_line(log, checkpoint(ORIGIN, 0, hashlib.sha256(b"").digest())).encode(),
    }
    # cosignature/v1 (c2sp.org/tlog-cosignature): the witness signs "cosignature/v1\ntime T\n" || text
    wpriv, wpub, _, wname = witness
    wkid = hashlib.sha256(wname.encode() + b"\n\x04" + wpub).digest()[:4]

    def cosig(t, kid=wkid, signed_t=None, signed_text=text, priv=wpriv):
        msg = b"cosignature/v1\ntime %d\n" % (t if signed_t is None else signed_t) + signed_text
        raw = kid + t.to_bytes(8, "big") + priv.sign(msg)
        return "\u2014 %s %s\n" % (wname, base64.b64encode(raw).decode())

    t = 1764756000
    files.update({
        "witness.vkey": "%s+%s+%s\n" % (wname, wkid.hex(), base64.b64encode(b"\x04" + wpub).decode()),
        "cosig.line": cosig(t),
        # the log's signature and the witness's cosignature on one note
        "cosigned-v1.note": text + b"\n" + sig_line(log, text).encode() + cosig(t).encode(),
        "cosig-wrong-key-id.line": cosig(t, kid=bytes(4)),
        "cosig-wrong-time.line": cosig(t + 1, signed_t=t),  # the time field says t+1, the signature is of t
        "cosig-other-text.line": cosig(t, signed_text=checkpoint(ORIGIN, 6, root)),
        "cosig-other-key.line": cosig(t, priv=impostor[0]),  # right name and key ID, another key's signature
    })
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
