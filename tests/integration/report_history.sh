#!/usr/bin/env bash
# The officer report with no range (the console asks for it so) over a long history: more stations, orders and
# (station, day) rows than a report holds, and audit text made of the characters that grow most when escaped. The
# answer stays far under its 4 MiB bound (each section is cut at its number of rows: measured ~1.7 MB as JSON with
# the longest text), and says which sections were cut ("limited") rather than seem whole. A synthetic history
# written into the real SQLite file (no chain: only the command line's report reads it, serve would refuse it).
# Usage: report_history.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

on_sqlite || { echo "ok - (a synthetic SQLite history: skipped with $CAMTRUST_TEST_DB)"; finish; exit; }
CA=$WORK/ca
ca_create "$CA" >/dev/null
python3 - "$CA/camtrust.db" <<'EOF'
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
c = db.cursor()
t0 = 1700000000
name = lambda i: ("S%05d" % i) + "x" * 57  # the longest station name (63)
for i in range(300):
    c.execute("insert into stations(name, enabled, cert_sha256, cert_serial_hex, cert_der, created_at)"
              " values (?, 1, ?, ?, x'00', ?)", (name(i), os.urandom(32), os.urandom(16).hex(), t0))
sid = [r[0] for r in c.execute("select id from stations")]
for j in range(600):
    c.execute("insert into orders(station_id, model, open, created_at) values (?, ?, 1, ?)", (sid[j % len(sid)], "M" * 63, t0))
oid = [r[0] for r in c.execute("select id from orders")]
n = 0
for day in range(4):  # 4 days x 300 stations: 1200 (day, station) rows
    for s in sid:
        n += 1
        c.execute("insert into certificates(cert_serial_hex, device_serial, profile, subject, not_before, not_after,"
                  " station_id, order_id, spki_sha256, der, issued_at) values (?, ?, 'device', 'x', ?, ?, ?, ?, ?, x'00', ?)",
                  ("%032x" % n, "D%08d" % n, t0, t0 + 10**9, s, oid[n % len(oid)], os.urandom(32), t0 + day * 86400 + 60))
ctl = "".join(chr(1 + i % 30) for i in range(600))  # control characters: 6 bytes each in JSON
seq = c.execute("select max(seq) from audit").fetchone()[0]
for k in range(150):
    for outcome, action in (("denied", "est.enroll" + ctl[:200]), ("ok", ctl[:200] + ".revoke")):
        seq += 1
        c.execute("insert into audit values (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                  (seq, t0 + 120, ctl[:300], action, ctl, outcome, ctl, os.urandom(32), os.urandom(32)))
db.commit()
EOF

for f in json csv table; do
  rc=0; "$CA_BIN" audit report --dir "$CA" --format $f >"$WORK/report.$f" 2>"$WORK/report.$f.err" || rc=$?
  check_eq "the report with no range ($f) is answered" 0 "$rc"
  size=$(stat -c %s "$WORK/report.$f")
  check "... well within its 4 MiB bound ($size bytes)" test "$size" -gt 100000 -a "$size" -lt 3145728
done
check_eq "it says which sections were cut, at how many rows" \
  "stations:200 orders:500 days:1000 denials:100 revocations:100" \
  "$(python3 -c 'import json, sys; print(" ".join("%s:%d" % (l["section"], l["shown"]) for l in json.load(sys.stdin)["limited"]))' <"$WORK/report.json")"
check "... so does the table, in words" grep -q '^days: only the first 1000 rows shown (newest or largest first)$' "$WORK/report.table"
check "... and the CSV, as a block of its own" grep -q $'^section,shown\r$' "$WORK/report.csv"
out=$("$CA_BIN" audit report --dir "$CA" --format json --from 2023-11-15T00:00:00Z --to 2023-11-16T00:00:00Z)
check_eq "a day's range holds 300 (day, station) rows: days is not cut" "300 stations orders" \
  "$(python3 -c 'import json, sys; d = json.load(sys.stdin); print(len(d["days"]), " ".join(l["section"] for l in d["limited"]))' <<<"$out")"
# A day with exactly 100 denials and 100 revocations, as many as a report shows: all shown, and not called cut.
python3 - "$CA/camtrust.db" <<'EOF'
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
c = db.cursor()
seq = c.execute("select max(seq) from audit").fetchone()[0]
for k in range(100):
    for outcome, action in (("denied", "est.enroll"), ("ok", "cert.revoke")):
        seq += 1
        c.execute("insert into audit values (?, ?, 'x', ?, 'x', ?, 'x', ?, ?, NULL)",
                  (seq, 1700000000 + 10 * 86400, action, outcome, os.urandom(32), os.urandom(32)))
db.commit()
EOF
out=$("$CA_BIN" audit report --dir "$CA" --format json --from 2023-11-24T00:00:00Z --to 2023-11-25T00:00:00Z)
check_eq "exactly 100 denials and revocations: all shown, neither section called cut" "100 100 stations orders" \
  "$(python3 -c 'import json, sys; d = json.load(sys.stdin); print(len(d["denials"]), len(d["revocations"]), " ".join(l["section"] for l in d["limited"]))' <<<"$out")"
finish
