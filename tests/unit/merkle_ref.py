#!/usr/bin/env python3
"""An independent RFC 9162 reference (section 2.1, straight from the recursive definitions) for test_merkle:
prints, for trees of 1..N leaves (leaf i = b"leaf-<i>" * (i % 3 + 1)), every root, every audit path and every
consistency proof, one per line, hashes in hex:
  root N ROOT / path N M H1,H2,... / cons M N H1,H2,..."""
import hashlib
import sys


def sha(b):
    return hashlib.sha256(b).digest()


def mth(d):
    if not d:
        return sha(b"")
    if len(d) == 1:
        return sha(b"\x00" + d[0])
    k = split(len(d))
    return sha(b"\x01" + mth(d[:k]) + mth(d[k:]))


def split(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def path(m, d):
    if len(d) <= 1:
        return []
    k = split(len(d))
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m, d, b):
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = split(n)
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


def main():
    top = int(sys.argv[1])
    leaves = [b"leaf-%d" % i * (i % 3 + 1) for i in range(top)]
    for n in range(1, top + 1):
        d = leaves[:n]
        print("root", n, mth(d).hex())
        for m in range(n):
            print("path", n, m, ",".join(h.hex() for h in path(m, d)) or "-")
        for m in range(1, n + 1):
            print("cons", m, n, ",".join(h.hex() for h in subproof(m, d, True)) or "-")


main()
