import os, struct, sys
# live_sample_edit.py strip-sets INIT SEG: takes the parameter sets (H.264 types 7, 8) out of the segment's first
#   sample, in place.
# live_sample_edit.py avcc-lead INIT SEG N ANNEXB: starts sample N with an avcC record of ANNEXB's first SPS and PPS
#   (4-byte NAL lengths: its first 4 bytes, version 1, profile, 0, level, are a NAL unit's length, 16 MiB or more, to
#   a verifier; ffmpeg takes a sample starting so for new parameter sets), in place; the lead is clear bytes.
# live_sample_edit.py nal-lead INIT SEG N HEX: starts sample N with the NAL unit HEX (clear), in place.
init, seg = open(sys.argv[2], 'rb').read(), bytearray(open(sys.argv[3], 'rb').read())
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
assert trun < senc  # what grows in senc moves no trun field
flags = struct.unpack('>I', seg[trun + 8:trun + 12])[0] & 0xffffff
assert flags & 0x200 and flags & 0x1, hex(flags)
count = struct.unpack('>I', seg[trun + 12:trun + 16])[0]
entry = 4 * bin(flags & 0xf00).count('1')
first = trun + 20 + (4 if flags & 0x4 else 0)
size_at = [first + entry * k + (4 if flags & 0x100 else 0) for k in range(count)]
sizes = [struct.unpack('>I', seg[a:a + 4])[0] for a in size_at]
data_off = struct.unpack('>i', seg[trun + 16:trun + 20])[0]
entries = [senc + 16]  # each sample's senc entry: IV, subsample count, (clear, encrypted) pairs
for k in range(count):
    e = entries[-1] + iv_size
    entries.append(e + 2 + 6 * struct.unpack('>H', seg[e:e + 2])[0])

def grow(n):  # n bytes inserted into the traf's senc: the boxes holding it, and the data offset
    for box in (moof, traf, senc):
        struct.pack_into('>I', seg, box, struct.unpack('>I', seg[box:box + 4])[0] + n)
    struct.pack_into('>i', seg, trun + 16, data_off + n)

if sys.argv[1] == 'strip-sets':
    start, size0 = moof + data_off, sizes[0]
    # the first sample's NAL units, and where each subsample's clear bytes lie
    nals, q = [], start
    while q < start + size0:
        n = struct.unpack('>I', seg[q:q + 4])[0]
        nals.append((q - start, 4 + n, seg[q + 4] & 0x1f))
        q += 4 + n
    cut = [(o, l) for o, l, t in nals if t in (7, 8)]
    assert cut, nals
    s0 = entries[0] + iv_size
    n_subs = struct.unpack('>H', seg[s0:s0 + 2])[0]
    subs = [list(struct.unpack('>HI', seg[s0 + 2 + 6 * k:s0 + 8 + 6 * k])) for k in range(n_subs)]
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
    struct.pack_into('>I', seg, size_at[0], size0 - removed)
    struct.pack_into('>I', seg, mdat, mdat_sz - removed)
    for o, l in sorted(cut, reverse=True):
        del seg[start + o:start + o + l]
    print('removed', len(cut), 'parameter sets,', removed, 'bytes')
else:
    n = int(sys.argv[4])
    if sys.argv[1] == 'nal-lead':
        nal = bytes.fromhex(sys.argv[5])
        lead = struct.pack('>I', len(nal)) + nal
    else:
        annexb = open(sys.argv[5], 'rb').read()
        units = [u.lstrip(b'\0') for u in annexb.split(b'\0\0\1')]
        sps = next(u for u in units if u and u[0] & 0x1f == 7)
        pps = next(u for u in units if u and u[0] & 0x1f == 8)
        record = (bytes([1, sps[1], 0, sps[3], 0xff, 0xe1]) + struct.pack('>H', len(sps)) + sps + b'\1' +
                  struct.pack('>H', len(pps)) + pps)
        lead = record + bytes(4 + struct.unpack('>I', record[:4])[0] - len(record))  # the record, then zeros
    clear = [(min(65535, len(lead) - k), 0) for k in range(0, len(lead), 65535)]
    e = entries[n] + iv_size
    struct.pack_into('>H', seg, e, struct.unpack('>H', seg[e:e + 2])[0] + len(clear))
    seg[e + 2:e + 2] = b''.join(struct.pack('>HI', *c) for c in clear)
    grow(6 * len(clear))
    at = moof + data_off + 6 * len(clear) + sum(sizes[:n])
    seg[at:at] = lead
    struct.pack_into('>I', seg, size_at[n], sizes[n] + len(lead))
    mdat += 6 * len(clear)
    struct.pack_into('>I', seg, mdat, mdat_sz + len(lead))
    print('sample', n, 'starts with', len(lead), 'bytes more')
open(sys.argv[3] + '.x', 'wb').write(seg)
os.rename(sys.argv[3] + '.x', sys.argv[3])
