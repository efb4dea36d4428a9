#!/usr/bin/env python3
"""A root vault share file read with Python's cryptography (OpenSSL), independent of wolfSSL: PEM "CAMTRUST VAULT
SHARE" of magic CTVS, version, share number, K, N, vault ID (32), PBKDF2 iterations (big-endian), salt (16),
nonce (12) -- the GCM additional data -- then AES-256-GCM ciphertext (64) and tag (16).
  vault_share.py info SHARE                   prints "share N of K-of-N, I iterations"
  vault_share.py open SHARE PASSFILE          decrypts (exit 0) or fails
  vault_share.py forge SHARE PASSFILE OUT     re-encrypts a different share under the same header and passphrase"""
import base64
import os
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

LABEL = "CAMTRUST VAULT SHARE"


def read(path):
    text = open(path).read()
    body = text.split(f"-----BEGIN {LABEL}-----")[1].split(f"-----END {LABEL}-----")[0]
    raw = base64.b64decode("".join(body.split()))
    assert len(raw) == 152 and raw[:4] == b"CTVS" and raw[4] == 1, "not a version 1 share"
    return raw


def key(raw, passfile):
    passphrase = open(passfile, "rb").read().rstrip(b"\r\n")
    iterations = int.from_bytes(raw[40:44], "big")
    return PBKDF2HMAC(hashes.SHA256(), 32, raw[44:60], iterations).derive(passphrase)


def main():
    raw = read(sys.argv[2])
    if sys.argv[1] == "info":
        print(f"share {raw[5]} of {raw[6]}-of-{raw[7]}, {int.from_bytes(raw[40:44], 'big')} iterations")
        return 0
    aad, nonce = raw[:72], raw[60:72]
    k = AESGCM(key(raw, sys.argv[3]))
    share = k.decrypt(nonce, raw[72:], aad)
    if sys.argv[1] == "open":
        return 0
    forged = bytes(b ^ 0x5A for b in share)
    sealed = k.encrypt(nonce, forged, aad)
    body = base64.b64encode(aad + sealed).decode()
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    open(sys.argv[4], "w").write(f"-----BEGIN {LABEL}-----\n{lines}\n-----END {LABEL}-----\n")
    os.chmod(sys.argv[4], 0o600)
    return 0


sys.exit(main())
