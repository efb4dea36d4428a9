import struct, sys
# strip.py INIT SEG: takes the parameter sets (H.264 types 7, 8) out of the segment's first sample, in place
init, seg = open(sys.argv[1], 'rb').read(), bytearray(open(sys.argv[2], 'rb').read())
def boxes(d, s, e):
    while s + 8 <= e:
        sz, t = struct.unpack('>I4s', d[s:s + 8])
        yield s, sz, t
        s += sz
def child(d, s, e, name):
    return next((o, z) for o, z, t in boxes(d, s, e) if t == name)
i = init.index(b'tenc') - 4
iv_size = init[i + 15]
moof, moof_sz = child(seg, 0, len(seg), b'moof')
mdat, mdat_sz = child(seg, 0, len(seg), b'mdat')
traf, traf_sz = child(seg, moof + 8, moof + moof_sz, b'traf')
trun, _ = child(seg, traf + 8, traf + traf_sz, b'trun')
senc, _ = child(seg, traf + 8, traf + traf_sz, b'senc')
flags = struct.unpack('>I', seg[trun + 8:trun + 12])[0] & 0xffffff
assert flags & 0x200 and flags & 0x1, hex(flags)
p = trun + 16 + 4 + (4 if flags & 0x4 else 0)
size_at = p + (4 if flags & 0x100 else 0)
data_off = struct.unpack('>i', seg[trun + 16:trun + 20])[0]
start = moof + data_off
size0 = struct.unpack('>I', seg[size_at:size_at + 4])[0]
# the first sample's NAL units, and where each subsample's clear bytes lie
nals, q = [], start
while q < start + size0:
    n = struct.unpack('>I', seg[q:q + 4])[0]
    nals.append((q - start, 4 + n, seg[q + 4] & 0x1f))
    q += 4 + n
cut = [(o, l) for o, l, t in nals if t in (7, 8)]
assert cut, nals
s0 = senc + 16 + iv_size
count = struct.unpack('>H', seg[s0:s0 + 2])[0]
subs = [list(struct.unpack('>HI', seg[s0 + 2 + 6 * k:s0 + 8 + 6 * k])) for k in range(count)]
for o, l in cut:
    at = 0
    for s in subs:
        if at <= o and o + l <= at + s[0]:
            s[0] -= l
            break
        at += s[0] + s[1]
    else:
        raise SystemExit('parameter set not in clear bytes')
for k, s in enumerate(subs):
    struct.pack_into('>HI', seg, s0 + 2 + 6 * k, *s)
removed = sum(l for o, l in cut)
struct.pack_into('>I', seg, size_at, size0 - removed)
struct.pack_into('>I', seg, mdat, mdat_sz - removed)
for o, l in sorted(cut, reverse=True):
    del seg[start + o:start + o + l]
open(sys.argv[2] + '.x', 'wb').write(seg)
import os
os.rename(sys.argv[2] + '.x', sys.argv[2])
print('removed', len(cut), 'parameter sets,', removed, 'bytes')
