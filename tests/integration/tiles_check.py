#!/usr/bin/env python3
"""Independent checks of the CA's C2SP tlog-tiles for tiles.sh (hashlib only; the spec's rules, not the CA's code):
  tiles_check.py root SIZE DIR      print the base64 root of the tree of SIZE leaves computed from the tiles in
                                    DIR (files named as their paths, "/" as "_": 0_000, 0_001.p_44, 1_000.p_1),
                                    as a tiles client does: each full tile checked against its hash one level
                                    up, each complete 256^l-leaf subtree from its level-l hash, the rest from
                                    the RFC 9162 recursion
  tiles_check.py entries SIZE DIR CERT1.der ...
                                    exit 0 iff the entry bundles in DIR (entries_000, entries_001.p_44) hold
                                    exactly the given certificates in order, each with its 2-byte big-endian
                                    length, and each hashes to its hash in the level-0 tiles"""
import base64
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit"))
from merkle_ref import sha, tile_path  # noqa: E402  the spec's path encoding, written once for the tests


def tile_name(prefix, n, width):
    return tile_path(prefix, n, width).replace("/", "_")


def load_level(d, size, level):
    """The level's hashes a tree of SIZE leaves has, from its full tiles and its partial one."""
    count = size // 256 ** level
    out = []
    for n in range((count + 255) // 256):
        width = min(256, count - n * 256)
        data = open(os.path.join(d, tile_name(str(level), n, width)), "rb").read()
        if len(data) != 32 * width:
            sys.exit("tile %s: %d bytes, not %d" % (tile_name(str(level), n, width), len(data), 32 * width))
        out += [data[i:i + 32] for i in range(0, len(data), 32)]
    return out


def root(size, d):
    levels = []
    level = 0
    while 256 ** level <= size:
        levels.append(load_level(d, size, level))
        level += 1

    # A client trusts no tile on its own: each full tile must hash to its hash one level up.
    for lv in range(len(levels) - 1):
        for j, above in enumerate(levels[lv + 1]):
            row = levels[lv][j * 256:(j + 1) * 256]
            while len(row) > 1:
                row = [sha(b"\x01" + row[i] + row[i + 1]) for i in range(0, len(row), 2)]
            if row[0] != above:
                sys.exit("tile %s does not hash to hash %d of level %d" % (tile_name(str(lv), j, 256), j, lv + 1))

    def mth(start, n):
        for lv in range(len(levels) - 1, -1, -1):
            span = 256 ** lv
            if n == span and start % span == 0:
                return levels[lv][start // span]
        k = 1
        while k * 2 < n:
            k *= 2
        return sha(b"\x01" + mth(start, k) + mth(start + k, n - k))

    return mth(0, size) if size else sha(b"")


def entries(size, d, certs):
    leaves = load_level(d, size, 0)
    got = []
    for n in range((size + 255) // 256):
        width = min(256, size - n * 256)
        data = open(os.path.join(d, tile_name("entries", n, width)), "rb").read()
        pos, count = 0, 0
        while pos < len(data):
            length = int.from_bytes(data[pos:pos + 2], "big")
            if pos + 2 + length > len(data):
                sys.exit("bundle %d: entry %d runs past the end" % (n, count))
            got.append(data[pos + 2:pos + 2 + length])
            pos += 2 + length
            count += 1
        if count != width:
            sys.exit("bundle %d: %d entries, not %d" % (n, count, width))
    want = [open(c, "rb").read() for c in certs]
    if got != want:
        sys.exit("entry bundles differ from the issued certificates")
    for i, der in enumerate(got):
        if sha(b"\x00" + der) != leaves[i]:
            sys.exit("entry %d does not hash to its level-0 tile hash" % i)


def main():
    if sys.argv[1] == "root":
        print(base64.b64encode(root(int(sys.argv[2]), sys.argv[3])).decode())
    elif sys.argv[1] == "entries":
        entries(int(sys.argv[2]), sys.argv[3], sys.argv[4:])
    else:
        sys.exit("unknown command")


main()
