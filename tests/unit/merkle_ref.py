#!/usr/bin/env python3
"""An independent RFC 9162 reference (section 2.1, straight from the recursive definitions) for test_merkle:
prints, for trees of 1..N leaves (leaf i = b"leaf-<i>" * (i % 3 + 1)), every root, every audit path and every
consistency proof, one per line, hashes in hex:
  root N ROOT / path N M H1,H2,... / cons M N H1,H2,...
With "tiles S1 S2 ...": the C2SP tlog-tiles of the trees of those sizes (same leaves), straight from the spec's
definition (hash i of tile n at level l is MTH(D[(n*256+i)*256**l : (n*256+i+1)*256**l]); a partial tile at
level l has floor(s / 256**l) mod 256 hashes), one line per tile with the SHA-256 of its bytes, then tiles that
must not exist:  tile S PATH SHA256 / absent S PATH"""
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


def tile_path(level, n, width):
    """The spec's path: N in 3-digit groups, "x" before all but the last; ".p/W" for a partial tile."""
    groups = ["%03d" % (n % 1000)]
    n //= 1000
    while n:
        groups.insert(0, "x%03d" % (n % 1000))
        n //= 1000
    return "%s/%s%s" % (level, "/".join(groups), "" if width == 256 else ".p/%d" % width)


def tiles(sizes):
    leaves = [b"leaf-%d" % i * (i % 3 + 1) for i in range(max(sizes))]
    for s in sizes:
        d = leaves[:s]
        level = 0
        while 256 ** level <= s:
            span = 256 ** level
            count = s // span
            for n in range(count // 256 + 1):
                width = min(256, count - n * 256)
                if width == 0:
                    break
                data = b"".join(mth(d[(n * 256 + i) * span:(n * 256 + i + 1) * span]) for i in range(width))
                print("tile", s, tile_path(level, n, width), sha(data).hex())
            full, part = divmod(count, 256)
            print("absent", s, tile_path(level, full, 256))
            print("absent", s, tile_path(level, full, part + 1))
            level += 1
        print("absent", s, tile_path(level, 0, 1))


def main():
    if sys.argv[1] == "tiles":
        tiles([int(a) for a in sys.argv[2:]])
        return
    top = int(sys.argv[1])
    leaves = [b"leaf-%d" % i * (i % 3 + 1) for i in range(top)]
    for n in range(1, top + 1):
        d = leaves[:n]
        print("root", n, mth(d).hex())
        for m in range(n):
            print("path", n, m, ",".join(h.hex() for h in path(m, d)) or "-")
        for m in range(1, n + 1):
            print("cons", m, n, ",".join(h.hex() for h in subproof(m, d, True)) or "-")


if __name__ == "__main__":
    main()
