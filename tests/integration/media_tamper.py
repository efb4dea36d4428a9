#!/usr/bin/env python3
"""Tampers with a signed H.264 Annex B clip the ways an attacker or a broken pipeline would, for media_sign.sh.
Works on NAL units; a GOP is the pictures from one IDR's first slice to the next; signature SEIs stay where they
are unless the operation is about them.

  media_tamper.py OP IN OUT [ARG...]
    flip N              flip one payload byte of picture N
    repeat-frame N      picture N twice in a row
    repeat-gop K        the pictures of GOP K again right after it (a replayed GOP, no signature of its own)
    repeat-gop-sei K    the same with a copy of GOP K's signature SEI after the copy
    cut-head K          remove the pictures of GOPs 0..K-1 (SEIs kept): a clip cut at its start
    drop-gop K          remove the pictures of GOP K (SEIs kept): GOPs cut out
    swap-gops K         exchange the pictures of GOPs K and K+1: GOPs reordered
    insert-gop K SRC    insert the pictures of GOP 0 of the unsigned clip SRC before GOP K
    splice-sei K OTHER  replace the signature SEI of GOP K by the one from OTHER (same clip, another camera)
    forge-sei K         flip a byte in the hash list of the signature SEI of GOP K
    oversized-sei       add an SEI with the media signing UUID of 200 kB
    garbage N           put 64 bytes of garbage between picture N and the NAL unit after it
    truncate FRACTION   keep the first FRACTION of the bytes
    drop-param T K      remove the parameter set of NAL type T (7 SPS, 8 PPS) that precedes GOP K's I-frame
    add-param K SRC     after the parameter sets before GOP K's I-frame, add SRC's first SPS (a rewritten one: the
                        original stays, the decoder takes the later)
    replace-param K SRC the SPS before GOP K's I-frame replaced by the one before SRC's GOP K
    insert-nal N T      after picture N, a NAL unit of type T (H.264 19 auxiliary, 20 SVC/MVC, 21 3D-AVC slice)
                        carrying that picture's slice
    pps-once            (unsigned clips) GOP 0's parameter sets get a second PPS, id 1 (the same but its id: the
                        pictures never name it), and the later GOPs send their SPS and that one only: the PPS the
                        pictures are decoded with (id 0) is sent once, before GOP 0
    add-group K         before the parameter sets of GOP K, a group of its SPS and a PPS id 0 whose pic_init_qp is
                        6 lower: a later group replaces it in the signed digest, yet a decoder keeps that PPS id 0
    qp-pps K            the PPS id 0 nearest before GOP K's I-frame, its pic_init_qp 6 lower
    pps-first           (unsigned clips) each PPS but the first moved before the SPS it follows: a group of the PPS,
                        then one of the SPS (the decoder ends up with both, as before; the first PPS needs its SPS)
    other-ids           (unsigned clips) after GOP 0's SPS and PPS, a second pair of ids 1 (the same but their ids:
                        the pictures never name them), a group of its own
  H.265 (a GOP from one IRAP picture's first slice to the next):
    hevc-pps-once       (unsigned clips) the later GOPs' PPS given id 1 (the pictures never name it): the PPS the
                        pictures are decoded with (id 0) is sent once, before GOP 0
    hevc-add-group K SRC before the VPS of GOP K, a group of that VPS, the SPS before SRC's GOP K and the PPS of GOP
                        K: the run's last group stays the signed one
"""
import sys

UUID = bytes.fromhex("005bc93f2d715e95ada4796f90877a6f")


def split(data):
    """NAL units without start codes (trailing zeros belong to the next start code)."""
    out, i, n = [], 0, len(data)
    starts = []
    while True:
        j = data.find(b"\x00\x00\x01", i)
        if j < 0:
            break
        starts.append(j + 3)
        i = j + 3
    for k, s in enumerate(starts):
        e = starts[k + 1] - 3 if k + 1 < len(starts) else n
        nal = data[s:e]
        out.append(nal.rstrip(b"\x00") if k + 1 < len(starts) else nal)
    return out


def join(nals):
    return b"".join(b"\x00\x00\x00\x01" + x for x in nals)


def kind(nal):
    t = nal[0] & 0x1F
    if t in (1, 5):
        return "pic"
    if t == 6 and UUID in nal[:64]:
        return "sig"
    return "other"


def gops(nals):
    """Index ranges [start, end) of the pictures of each GOP (first IDR slice to the next), other NALs inside."""
    starts = [i for i, x in enumerate(nals) if x[0] & 0x1F == 5 and x[1] & 0x80]
    return [(s, starts[k + 1] if k + 1 < len(starts) else len(nals)) for k, s in enumerate(starts)]


def pictures(nals, lo, hi):
    return [i for i in range(lo, hi) if kind(nals[i]) == "pic"]


def gop_pictures(nals, k):
    lo, hi = gops(nals)[k]
    return [nals[i] for i in pictures(nals, lo, hi)]


def without_pictures(nals, lo, hi):
    return nals[:lo] + [nals[i] for i in range(lo, hi) if kind(nals[i]) != "pic"] + nals[hi:]


def sig_seis(nals):
    """Signature SEIs (not the certificate SEI) in stream order: the k-th signs GOP k."""
    return [i for i, x in enumerate(nals) if kind(x) == "sig" and x[x.find(UUID) + 16] & 0x80 == 0]


def hash_list_span(nal):
    """[start, end) in the escaped NAL bytes of the hash list TLV's hashes (after its version byte)."""
    raw, where, zeros = [], [], 0
    for k, x in enumerate(nal):  # the RBSP and, for each of its bytes, where it stands in the NAL unit
        if zeros >= 2 and x == 3:
            zeros = 0
            continue
        raw.append(x)
        where.append(k)
        zeros = zeros + 1 if x == 0 else 0
    t = bytes(raw).find(UUID) + 17  # the UUID, then the reserved byte
    while t + 3 <= len(raw):
        tag, length = raw[t], raw[t + 1] << 8 | raw[t + 2]
        if tag == 2:
            return where[t + 4], where[t + 3 + length - 1] + 1
        t += 3 + length
    sys.exit("no hash list in the signature SEI")


def param_before(nals, k, t):
    """Index of the NAL unit of type t nearest before GOP k's I-frame."""
    lo = gops(nals)[k][0]
    return max(i for i in range(lo) if nals[i][0] & 0x1F == t)


def unescape(b):
    out, zeros = bytearray(), 0
    for x in b:
        if zeros >= 2 and x == 3:
            zeros = 0
            continue
        out.append(x)
        zeros = zeros + 1 if x == 0 else 0
    return bytes(out)


def escape(b):
    out, zeros = bytearray(), 0
    for x in b:
        if zeros >= 2 and x <= 3:
            out.append(3)
            zeros = 0
        out.append(x)
        zeros = zeros + 1 if x == 0 else 0
    return bytes(out)


def ue_bits(v):
    b = bin(v + 1)[2:]
    return "0" * (len(b) - 1) + b


def rbsp_bits(nal):
    return "".join(f"{x:08b}" for x in unescape(nal[1:])).rstrip("0")[:-1]  # without rbsp_trailing_bits


def nal_of(nal, bs):
    bs += "1"
    bs += "0" * (-len(bs) % 8)
    return nal[:1] + escape(int(bs, 2).to_bytes(len(bs) // 8, "big"))


def sps_with_id(nal, sps_id):
    """An H.264 SPS with another seq_parameter_set_id (after profile, flags and level: 24 bits)."""
    bs = rbsp_bits(nal)
    z = bs.index("1", 24) - 24
    return nal_of(nal, bs[:24] + ue_bits(sps_id) + bs[24 + 2 * z + 1:])


def pps_edit(nal, pps_id=None, qp_delta=0, sps_id=None):
    """An H.264 PPS with another pic_parameter_set_id, seq_parameter_set_id and/or pic_init_qp_minus26 (7.3.2.2),
    re-escaped."""
    bs = "".join(f"{x:08b}" for x in unescape(nal[1:])).rstrip("0")[:-1]  # without rbsp_trailing_bits
    pos = 0

    def ue():
        nonlocal pos
        z = bs.index("1", pos) - pos
        v = int(bs[pos + z:pos + 2 * z + 1], 2) - 1
        pos += 2 * z + 1
        return v

    old_id = ue()
    after_id = pos
    old_sps = ue()  # seq_parameter_set_id
    after_sps = pos
    pos += 2  # entropy_coding_mode_flag, bottom_field_pic_order_in_frame_present_flag
    assert ue() == 0, "slice groups"
    ue(), ue()  # num_ref_idx_l0/l1_default_active_minus1
    pos += 3  # weighted_pred_flag, weighted_bipred_idc
    before_qp = pos
    k = ue()
    qp = (k + 1) // 2 if k & 1 else -(k // 2)
    qp += qp_delta
    new = ue_bits(old_id if pps_id is None else pps_id) + ue_bits(old_sps if sps_id is None else sps_id) + \
        bs[after_sps:before_qp] + \
        ue_bits(2 * qp - 1 if qp > 0 else -2 * qp) + bs[pos:] + "1"
    new += "0" * (-len(new) % 8)
    return nal[:1] + escape(int(new, 2).to_bytes(len(new) // 8, "big"))


def is_pps0(nal):
    return nal[0] & 0x1F == 8 and nal[1] & 0x80  # pic_parameter_set_id ue(v) 0: the bit 1


def hevc_type(nal):
    return nal[0] >> 1 & 0x3F


def hevc_gops(nals):
    """Indexes of the first slice of each H.265 IRAP picture."""
    return [i for i, x in enumerate(nals) if 16 <= hevc_type(x) <= 21 and x[2] & 0x80]


def hevc_param_before(nals, k, t):
    """Index of the H.265 NAL unit of type t nearest before GOP k's IRAP picture."""
    return max(i for i in range(hevc_gops(nals)[k]) if hevc_type(nals[i]) == t)


def hevc_pps_id(nal, pps_id):
    """An H.265 PPS with another pps_pic_parameter_set_id (its first field), re-escaped."""
    bs = rbsp_bits(nal[1:])
    z = bs.index("1")
    return nal[:1] + nal_of(nal[1:], ue_bits(pps_id) + bs[2 * z + 1:])


def main():
    op, src, dst = sys.argv[1:4]
    args = sys.argv[4:]
    data = open(src, "rb").read()
    nals = split(data)
    if op == "flip":
        idx = [i for i, x in enumerate(nals) if kind(x) == "pic"][int(args[0])]
        b = bytearray(nals[idx])
        b[len(b) // 2] ^= 0x10
        nals[idx] = bytes(b)
    elif op == "repeat-frame":
        idx = [i for i, x in enumerate(nals) if kind(x) == "pic"][int(args[0])]
        nals.insert(idx + 1, nals[idx])
    elif op in ("repeat-gop", "repeat-gop-sei"):
        k = int(args[0])
        copy = gop_pictures(nals, k) + ([nals[sig_seis(nals)[k]]] if op == "repeat-gop-sei" else [])
        _, hi = gops(nals)[k]
        nals = nals[:hi] + copy + nals[hi:]
    elif op == "cut-head":
        nals = without_pictures(nals, gops(nals)[0][0], gops(nals)[int(args[0])][0])
    elif op == "drop-gop":
        lo, hi = gops(nals)[int(args[0])]
        nals = without_pictures(nals, lo, hi)
    elif op == "swap-gops":
        k = int(args[0])
        g = gops(nals)
        a, b = gop_pictures(nals, k), gop_pictures(nals, k + 1)
        pics = pictures(nals, g[k][0], g[k + 1][1])
        for i, nal in zip(pics, b + a):
            nals[i] = nal
    elif op == "insert-gop":
        other = split(open(args[1], "rb").read())
        lo, _ = gops(nals)[int(args[0])]
        nals = nals[:lo] + gop_pictures(other, 0) + nals[lo:]
    elif op == "splice-sei":
        k = int(args[0])
        other = split(open(args[1], "rb").read())
        nals[sig_seis(nals)[k]] = other[sig_seis(other)[k]]
    elif op == "forge-sei":
        i = sig_seis(nals)[int(args[0])]
        b = bytearray(nals[i])
        # inside the hash list (TLV tag 2), from its middle on, a byte whose flip neither makes nor breaks an
        # emulation prevention sequence (00 00 0x): the SEI still parses, and only what it signs changes
        lo, hi = hash_list_span(b)
        pos = (lo + hi) // 2
        while b[pos] < 4 or b[pos] ^ 1 < 4 or 0 in b[pos - 2:pos]:
            pos += 1
        assert pos < hi, "no byte of the hash list can be flipped safely"
        b[pos] ^= 0x01
        nals[i] = bytes(b)
    elif op == "oversized-sei":
        payload = UUID + b"\x00" + b"\x55" * 200000
        size = len(payload)
        hdr = b"\x06\x05" + b"\xff" * (size // 255) + bytes([size % 255])
        nals.insert(3, hdr + payload + b"\x80")
    elif op == "garbage":
        idx = [i for i, x in enumerate(nals) if kind(x) == "pic"][int(args[0])]
        nals[idx] = nals[idx] + b"\x00\x00\x05garbage-between-nal-units" * 2
    elif op == "drop-param":
        del nals[param_before(nals, int(args[1]), int(args[0]))]
    elif op == "add-param":
        other = split(open(args[1], "rb").read())
        nals.insert(gops(nals)[int(args[0])][0], next(x for x in other if x[0] & 0x1F == 7))
    elif op == "replace-param":
        k = int(args[0])
        other = split(open(args[1], "rb").read())
        nals[param_before(nals, k, 7)] = other[param_before(other, k, 7)]
    elif op == "insert-nal":
        idx = [i for i, x in enumerate(nals) if kind(x) == "pic"][int(args[0])]
        t = int(args[1])
        ext = b"\x80\x00\x00" if t in (20, 21) else b""  # the 3-byte SVC/MVC NAL header extension
        nals.insert(idx + 1, bytes([0x60 | t]) + ext + nals[idx][1:])
    elif op == "pps-once":
        g = gops(nals)
        for k in reversed(range(len(g))):
            i = param_before(nals, k, 8)
            decoy = pps_edit(nals[i], pps_id=1)
            if k == 0:
                nals.insert(i + 1, decoy)
            else:
                nals[i] = decoy
    elif op == "add-group":
        k = int(args[0])
        pps0 = next(x for x in nals if is_pps0(x))
        i = param_before(nals, k, 7)
        nals[i:i] = [nals[i], pps_edit(pps0, qp_delta=-6)]
    elif op == "qp-pps":
        lo = gops(nals)[int(args[0])][0]
        i = max(i for i in range(lo) if is_pps0(nals[i]))
        nals[i] = pps_edit(nals[i], qp_delta=-6)
    elif op == "pps-first":
        first = next(i for i, x in enumerate(nals) if x[0] & 0x1F == 8)
        for i in reversed(range(first + 1, len(nals))):
            if nals[i][0] & 0x1F == 8 and nals[i - 1][0] & 0x1F == 7:
                nals[i - 1], nals[i] = nals[i], nals[i - 1]
    elif op == "other-ids":
        i = param_before(nals, 0, 8)
        nals[i + 1:i + 1] = [sps_with_id(nals[param_before(nals, 0, 7)], 1), pps_edit(nals[i], pps_id=1, sps_id=1)]
    elif op == "hevc-pps-once":
        for k in range(1, len(hevc_gops(nals))):
            i = hevc_param_before(nals, k, 34)
            nals[i] = hevc_pps_id(nals[i], 1)
    elif op == "hevc-add-group":
        k = int(args[0])
        other = split(open(args[1], "rb").read())
        v = hevc_param_before(nals, k, 32)
        nals[v:v] = [nals[v], other[hevc_param_before(other, k, 33)], nals[hevc_param_before(nals, k, 34)]]
    elif op == "truncate":
        open(dst, "wb").write(data[: int(len(data) * float(args[0]))])
        return
    else:
        sys.exit("unknown operation " + op)
    open(dst, "wb").write(join(nals))


if __name__ == "__main__":
    main()
