#!/usr/bin/env python3
"""Helpers of the live benchmark (tests/bench/live/run).

pace CLIP FPS SECONDS LOG   writes CLIP's pictures (Annex B, one slice a picture) to stdout at FPS, looping it for
                            SECONDS; LOG gets "frame time" when each picture's last byte has been handed over
sink LOG                    reads a fragmented MP4 from stdin (camtrust-view live --out -), discards it; LOG gets
                            "frame time" for every picture once the fragment holding it has been written whole
stats IN OUT                glass-to-viewer latency per picture (OUT time - IN time): count, p50, p99, max in ms
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'integration'))
from media_tamper import split  # noqa: E402  (one Annex B splitter for the test tools)


def pictures(data):
    """The clip as one Annex B chunk per picture (its NAL units up to its slice; one slice a picture)."""
    nals = split(data)
    hevc = any(((n[0] >> 1) & 0x3f) in (32, 33, 34) for n in nals[:4] if n)
    out, cur = [], b''
    for n in nals:
        if not n:
            continue
        cur += b'\x00\x00\x00\x01' + n
        t = (n[0] >> 1) & 0x3f if hevc else n[0] & 0x1f
        if (hevc and t < 32) or (not hevc and t in (1, 5)):
            out.append(cur)
            cur = b''
    return out


def pace(clip, fps, seconds, log):
    pics = pictures(open(clip, 'rb').read())
    out = sys.stdout.buffer
    total = int(float(seconds) * float(fps))
    t0 = time.monotonic()
    with open(log, 'w') as lg:
        for f in range(total):
            k = f % len(pics)
            due = t0 + f / float(fps)
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            out.write(pics[k])
            out.flush()
            lg.write('%d %.6f\n' % (f, time.time()))


def boxes(buf, start, end):
    i = start
    while i + 8 <= end:
        size = int.from_bytes(buf[i:i + 4], 'big')
        typ = buf[i + 4:i + 8]
        if size < 8 or i + size > end:
            return
        yield typ, i, size
        i += size


def sink(log):
    buf = bytearray()
    done = 0      # bytes parsed
    frame = 0
    pending = None  # samples of the last moof, waiting for its mdat
    with open(log, 'w') as lg:
        while True:
            chunk = os.read(0, 1 << 20)
            if not chunk:
                break
            buf += chunk
            now = time.time()
            while done + 8 <= len(buf):
                size = int.from_bytes(buf[done:done + 4], 'big')
                if size < 8 or done + size > len(buf):
                    break
                typ = bytes(buf[done + 4:done + 8])
                if typ == b'moof':
                    for t, o, s in boxes(buf, done + 8, done + size):
                        if t == b'traf':
                            for t2, o2, s2 in boxes(buf, o + 8, o + s):
                                if t2 == b'trun':
                                    pending = int.from_bytes(buf[o2 + 12:o2 + 16], 'big')
                elif typ == b'mdat' and pending:
                    for _ in range(pending):
                        lg.write('%d %.6f\n' % (frame, now))
                        frame += 1
                    pending = None
                done += size


def stats(a, b):
    tin = dict(l.split() for l in open(a))
    lat = sorted((float(t) - float(tin[f])) * 1000 for f, t in (l.split() for l in open(b)) if f in tin)
    if not lat:
        print('frames=0')
        return
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    print('frames=%d p50_ms=%.0f p99_ms=%.0f max_ms=%.0f' % (len(lat), q(0.5), q(0.99), lat[-1]))


if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'pace':
        pace(*sys.argv[2:6])
    elif cmd == 'sink':
        sink(sys.argv[2])
    elif cmd == 'stats':
        stats(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
