#!/usr/bin/env bash
# Independent witnesses end to end (issue 11): a witness process with its own folder and its own SoftHSM token
# polls the real CA over HTTPS (the server checked against the root pinned at witness init; a server under another
# root is refused), checks each checkpoint against the pinned log.vkey and against the last one it cosigned
# (consistency proof), and cosigns it (C2SP tlog-cosignature/v1); the CA keeps the cosignature and serves it on
# GET /log/checkpoint, where Python's `cryptography` verifies it. `audit verify --witnesses K` counts them.
# Then the attacker puts an older copy of the database back and grows another log from it, which the CA itself
# signs: the witness refuses to cosign, keeps the evidence, says why in one line, reports it (POST
# /log/witness-report) and exits 1; the CA checks the report against its own key and database, records it, and the
# officer API flags the witness. Reports that prove nothing (malformed, unsigned, consistent) are refused. A report
# deleted, added or edited in the database (sqlite3) is named by audit verify and stops the server.
# Usage: witness.sh PATH/TO/camtrust-ca
CA_BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/browser_lib.sh"

CA=$WORK/ca
DB=$CA/camtrust.db
ca_create "$CA" >/dev/null
W1=$WORK/w1
out=$("$CA_BIN" witness init --dir "$W1" --name witness.example.org/w1 --ca-root "$CA/ops-root.pem")
check "witness init --ca-root pins the CA server's root" cmp -s "$CA/ops-root.pem" "$W1/ca-root.pem"
check "witness init prints its verifier key, written to witness.vkey" grep -qxF "$(cat "$W1/witness.vkey")" <<<"$out"
check "... name+hash+base64 of 0x04 || key (cosignature/v1)" \
  grep -qE '^witness\.example\.org/w1\+[0-9a-f]{8}\+B[A-Za-z0-9+/]{43}$' "$W1/witness.vkey"
check "... its key lives in its own token" test -d "$W1/tokens"
rc=0; "$CA_BIN" witness init --dir "$W1" --name witness.example.org/w1 >/dev/null 2>&1 || rc=$?
check_eq "witness init twice: refused" 1 "$rc"
"$CA_BIN" witness init --dir "$WORK/w2" --name witness.example.org/w2 >/dev/null
cat "$W1/witness.vkey" "$WORK/w2/witness.vkey" >"$CA/witnesses.vkeys" # two configured, one of them runs
# The console requires both: the newest checkpoint, cosigned by w1 alone, is flagged as not witnessed.
sed -i 's/^log.witnesses_required = .*/log.witnesses_required = 2/' "$CA/camtrust-ca.conf"

station_with_order line1 CAM0001 CAM0002 CAM0003 CAM0004 CAM0005 CAM0006 CAM0007
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/alice.key" -subj "/CN=alice" \
  -out "$WORK/alice.csr" 2>/dev/null
"$CA_BIN" officer add --dir "$CA" --name alice --role auditor --csr "$WORK/alice.csr" --out "$WORK/alice.pem" >/dev/null
WITH_HTTP=1 start_ca "$CA"
URL=https://localhost:$PORT
HTTP=http://127.0.0.1:$HTTP_PORT
enroll() {
  make_csr "$WORK/$1" "/serialNumber=$1/CN=x"
  est_post simpleenroll "$WORK/$1.b64" "$WORK/$1.p7b64" --cert "$WORK/station.pem" --key "$WORK/station.key" >/dev/null
}
# wait_cosigned N FILE: until GET /log/checkpoint covers N certificates and carries w1's cosignature
wait_cosigned() {
  for _ in $(seq 1 150); do
    curl -s -o "$2" --max-time 5 "$HTTP/log/checkpoint" || true
    [ "$(sed -n 2p "$2")" = "$1" ] && grep -q '^— witness\.example\.org/w1 ' "$2" && return 0
    sleep 0.1
  done
  return 1
}
WPID=
stop_witness() { if [ -n "$WPID" ]; then kill -TERM "$WPID" 2>/dev/null || true; wait "$WPID" || true; WPID=; fi; }
trap 'stop_witness; cleanup_server; [ -n "${CAMTRUST_TEST_KEEP:-}" ] || rm -rf "$WORK"' EXIT
start_witness() {
  "$CA_BIN" witness --dir "$W1" --log "$URL" --vkey "$CA/log.vkey" --interval 0.2 2>>"$WORK/witness.log" &
  WPID=$!
}

# HTTPS needs a pinned root: w2 pinned none.
rc=0; out=$("$CA_BIN" witness --dir "$WORK/w2" --log "$URL" --vkey "$CA/log.vkey" 2>&1) || rc=$?
check "a witness without a pinned root is refused https:// (one line)" grep -q "pins no root for the CA server" <<<"$out"
# A witness that pins another root (an openssl self-signed one) never trusts this server: it cosigns nothing.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/other.key" -subj "/CN=other root" \
  -days 30 -out "$WORK/other-root.pem" 2>/dev/null
"$CA_BIN" witness init --dir "$WORK/w3" --name witness.example.org/w3 --ca-root "$WORK/other-root.pem" >/dev/null
bounded 3 "$CA_BIN" witness --dir "$WORK/w3" --log "$URL" --vkey "$CA/log.vkey" --interval 0.2 2>"$WORK/w3.log" || true
check "a witness pinning another root refuses the server's certificate (TLS fails)" \
  grep -q 'event=witness_poll.*TLS with the CA at https://localhost:.* failed' "$WORK/w3.log"
check "... and cosigns nothing" test ! -e "$WORK/w3/state.note"

enroll CAM0001; enroll CAM0002
start_witness
check "the witness cosigns the checkpoint of 2 certificates over HTTPS; GET /log/checkpoint carries it" \
  wait_cosigned 2 "$WORK/two.note"
sqlite3 "$DB" ".backup '$WORK/old.db'" # the attacker's older copy: two certificates, cosigned
enroll CAM0003; enroll CAM0004
check "... and the next one (4 certificates, consistent with 2)" wait_cosigned 4 "$WORK/four.note"
stop_witness
check "the witness kept what it cosigned" grep -q '^— witness\.example\.org/w1 ' "$W1/state.note"

# Python checks the served cosignature with witness.vkey, from the C2SP spec alone.
python3 - "$WORK/four.note" "$W1/witness.vkey" "$CA/log.vkey" >"$WORK/py.out" 2>&1 <<'PY'
import base64, hashlib, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
note = open(sys.argv[1], "rb").read()
name, kid_hex, key = open(sys.argv[2]).read().strip().split("+", 2)
raw = base64.b64decode(key)
assert raw[0] == 4 and len(raw) == 33
assert hashlib.sha256(name.encode() + b"\n\x04" + raw[1:]).digest()[:4].hex() == kid_hex
log_name = open(sys.argv[3]).read().split("+")[0]
split = note.rindex(b"\n\n")
text, lines = note[: split + 1], note[split + 2 :].decode().splitlines()
signers = [l[2:].split(" ")[0] for l in lines]
assert signers[0] == log_name, signers  # the log's own signature first, then the cosignatures
found = 0
for line in lines:
    signer, b64 = line[2:].split(" ")
    sig = base64.b64decode(b64)
    if signer == name:
        assert len(sig) == 76 and sig[:4].hex() == kid_hex
        t = int.from_bytes(sig[4:12], "big")
        Ed25519PublicKey.from_public_bytes(raw[1:]).verify(sig[12:], b"cosignature/v1\ntime %d\n" % t + text)
        found += 1
assert found == 1
print("cosigned", text.decode().split("\n")[1])
PY
check_eq "Python's cryptography verifies the cosignature (cosignature/v1, key ID, timestamp)" "cosigned 4" "$(cat "$WORK/py.out")"

# The officer console's view: the newest checkpoint, each configured witness, the age of its cosignature.
code=$(curl -s -o "$WORK/api.json" -w '%{http_code}' --max-time 20 --cacert "$CA/ops-root.pem" --cert "$WORK/alice.pem" \
  --key "$WORK/alice.key" "https://localhost:$PORT/officer/api/checkpoint" || true)
check_eq "GET /officer/api/checkpoint (an auditor): 200" 200 "$code"
check_eq "... the newest checkpoint, w1 cosigned it (age >= 0), w2 did not: 1 of the 2 required" \
  "4 w1:True:True w2:False 1/2" "$(python3 -c "
import json; d = json.load(open('$WORK/api.json'))
print(d['tree_size'], ' '.join('%s:%s' % (w['name'].split('/')[-1], w['cosigned']) + (':%s' % (w['age_s'] >= 0) if w['cosigned'] else '') for w in d['witnesses']),
      '%d/%d' % (d['witnessed'], d['witnesses_required']))")"
check_eq "... without an officer's certificate: 401" 401 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 \
  --cacert "$CA/ops-root.pem" "https://localhost:$PORT/officer/api/checkpoint" || true)"
post() { curl -s -o "$WORK/post.out" -w '%{http_code}' --max-time 5 --data-binary "@$1" "$HTTP/log/cosignature" || true; }
# What the witness POSTs: the checkpoint's text, a blank line and its own line (the last of its state.note, which
# keeps the CA's signature too).
submission() { sed '/^$/q' "$1"; tail -n 1 "$1"; }
check_eq "the witness keeps the checkpoint as served (the CA's signature) with its cosignature last" \
  "camtrust.example.com/example-camera-maker/issuance witness.example.org/w1" \
  "$(sed -n '/^$/,$p' "$W1/state.note" | sed -n '2p;$p' | cut -d' ' -f2 | tr '\n' ' ' | sed 's/ $//')"
submission "$W1/state.note" >"$WORK/submission.note"
# The witness's own submission again: accepted, nothing new kept.
check_eq "the same cosignature POSTed again: 200, kept once" "200 1" \
  "$(post "$WORK/submission.note") $(sql "$DB" "select count(*) from log_cosignatures where line like '%w1 %' and checkpoint_id = (select max(id) from log_checkpoints)")"
# A cosignature by a witness the CA does not know (a fresh key under w1's name): 403, nothing kept.
before=$(sql "$DB" "select count(*) from log_cosignatures")
python3 - "$W1/state.note" >"$WORK/stranger.note" <<'PY'
import base64, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
note = open(sys.argv[1], "rb").read()
text = note[: note.rindex(b"\n\n") + 1]
k = Ed25519PrivateKey.from_private_bytes(b"\x09" * 32)
raw = b"\x01\x02\x03\x04" + (1800000000).to_bytes(8, "big") + k.sign(b"cosignature/v1\ntime 1800000000\n" + text)
sys.stdout.buffer.write(text + b"\n\xe2\x80\x94 witness.example.org/w1 " + base64.b64encode(raw) + b"\n")
PY
check_eq "an unknown witness's cosignature: 403" 403 "$(post "$WORK/stranger.note")"
check "... one line saying so" grep -q "not a cosignature by a configured witness" "$WORK/post.out"
# w1's line on another checkpoint text (size changed): it does not verify.
sed 's/^4$/5/' "$W1/state.note" >"$WORK/edited.note"
check_eq "w1's cosignature moved to another checkpoint text: 403" 403 "$(post "$WORK/edited.note")"
check "... 'does not verify'" grep -q "does not verify" "$WORK/post.out"
check_eq "... nothing kept" "$before" "$(sql "$DB" "select count(*) from log_cosignatures")"
check_eq "GET /log/cosignature: 405" 405 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$HTTP/log/cosignature")"
check_eq "every kept cosignature is audited" "$(sql "$DB" "select count(*) from log_cosignatures")" \
  "$(sql "$DB" "select count(*) from audit where action = 'log.cosignature'")"
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=

out=$("$CA_BIN" audit verify --dir "$CA" --witnesses 1)
check "audit verify --witnesses 1: the newest checkpoint is cosigned by 1 of 2" \
  grep -q "^checkpoint witnessed: 1 of 2 configured witnesses" <<<"$out"
rc=0; out=$("$CA_BIN" audit verify --dir "$CA" --witnesses 2 2>&1) || rc=$?
check_eq "audit verify --witnesses 2: exit 1" 1 "$rc"
check_eq "... one line naming the missing witness" 1 "$(grep -c 'checkpoint NOT WITNESSED: .*has 1 of the 2 cosignatures required.*missing: witness.example.org/w2' <<<"$out")"

out=$("$CA_BIN" audit verify --dir "$CA" --witnesses 1 --checkpoint "$WORK/two.note" --checkpoint "$WORK/four.note")
check "audit verify --witnesses 1 --checkpoint F...: each kept checkpoint carries w1's cosignature" \
  test "$(grep -c "^checkpoint witnessed: 1 of 2 configured witnesses cosigned $WORK/\(two\|four\).note" <<<"$out")" = 2
grep -v '^— witness' "$WORK/four.note" >"$WORK/bare.note"
rc=0; out=$("$CA_BIN" audit verify --dir "$CA" --witnesses 1 --checkpoint "$WORK/bare.note" 2>&1) || rc=$?
check_eq "a kept checkpoint without cosignatures: exit 1, one line naming it" "1 1" \
  "$rc $(grep -c "checkpoint NOT WITNESSED: checkpoint $WORK/bare.note has 0 of the 1 cosignatures required" <<<"$out")"
python3 - "$WORK/four.note" >"$WORK/forged.note" <<'PY'
import sys
lines = open(sys.argv[1], "rb").read().split(b"\n")
i = next(n for n, l in enumerate(lines) if l.startswith("\u2014 witness.example.org/w1 ".encode()))
l = bytearray(lines[i]); l[-6] = ord("A") if l[-6] != ord("A") else ord("B"); lines[i] = bytes(l)  # the signature's last bytes
sys.stdout.buffer.write(b"\n".join(lines))
PY
rc=0; out=$("$CA_BIN" audit verify --dir "$CA" --witnesses 1 --checkpoint "$WORK/forged.note" 2>&1) || rc=$?
check_eq "a kept checkpoint whose cosignature was altered: exit 1, 'does not verify'" "1 1" \
  "$rc $(grep -c "checkpoint NOT WITNESSED: checkpoint $WORK/forged.note: the cosignature by witness.example.org/w1 does not verify" <<<"$out")"

# The attacker: the older copy put back, and another log grown from it (CAM0005..7 instead of CAM0003..4).
# The CA signs it (it has its key); only someone who kept a head can tell.
cp "$WORK/old.db" "$DB"; rm -f "$DB-wal" "$DB-shm" "$CA/checkpoint.note" # the attacker writes the folder
WITH_HTTP=1 start_ca "$CA"
HTTP=http://127.0.0.1:$HTTP_PORT
# wait_size N FILE: until GET /log/checkpoint covers N certificates
wait_size() {
  for _ in $(seq 1 100); do
    curl -s -o "$2" --max-time 5 "$HTTP/log/checkpoint" || true
    [ "$(sed -n 2p "$2")" = "$1" ] && return 0; sleep 0.1
  done
}
enroll CAM0005; enroll CAM0006; wait_size 4 "$WORK/fork4.note"
check "the forked log signs another tree of 4 certificates" bash -c "[ \"\$(sed -n 3p '$WORK/fork4.note')\" != \"\$(sed -n 3p '$WORK/four.note')\" ]"
enroll CAM0007; wait_size 5 "$WORK/fork.note"
check_eq "the forked log has its own signed checkpoint (5 certificates)" 5 "$(sed -n 2p "$WORK/fork.note")"
URL=https://localhost:$PORT
rc=0
bounded 60 "$CA_BIN" witness --dir "$W1" --log "$URL" --vkey "$CA/log.vkey" --interval 0.2 2>"$WORK/refused.log" || rc=$?
check_eq "the witness refuses to cosign the fork and exits 1" 1 "$rc"
check_eq "... one clear line naming the fork and the evidence" 1 "$(grep -c 'event=witness_refused.*forked: its checkpoint of size 5 is not consistent with the kept .*state.note (size 4).*evidence=.*/evidence/report-' "$WORK/refused.log")"
check "... it cosigned nothing" test "$(grep -c witness_cosigned "$WORK/refused.log")" = 0
EVIDENCE=$(ls "$W1"/evidence/report-*.txt 2>/dev/null | head -1)
check "... the evidence is in its folder: both signed checkpoints and the proof it was given" \
  bash -c "grep -q '^camtrust witness report v1\$' '$EVIDENCE' && grep -q '^kept ' '$EVIDENCE' && grep -q '^served ' '$EVIDENCE' && grep -q '^proof [A-Za-z0-9+/=]' '$EVIDENCE'"
check "... it reported it to the CA, which recorded it" grep -q 'event=witness_reported answer="recorded witness report 1: fork:' "$WORK/refused.log"
check_eq "the CA recorded the report: kind fork, w1 (by its cosignature on the kept checkpoint), sizes 4 and 5" \
  "fork|witness.example.org/w1|4|5" "$(sql "$DB" "select kind, witness, kept_size, served_size from log_witness_reports")"
check "... with the reason from its own database" \
  test "$(sql "$DB" "select count(*) from log_witness_reports where reason like 'this database does not extend the kept checkpoint (size 4): %'")" = 1
check_eq "... and one audit event" 1 "$(sql "$DB" "select count(*) from audit where action = 'log.witness_report' and outcome = 'ok'")"
check "... and one log line" grep -q 'event=log_witness_report id=1 new=1 witness="\?witness.example.org/w1"\? kind=fork' "$WORK/server.log"
report() { curl -s -o "$WORK/report.out" -w '%{http_code}' --max-time 5 --data-binary "@$1" "$HTTP/log/witness-report" || true; }
check_eq "the same report again: 200, kept once" "200 1" "$(report "$EVIDENCE") $(sql "$DB" "select count(*) from log_witness_reports")"
check "... 'already recorded'" grep -q '^already recorded witness report 1: fork' "$WORK/report.out"
# The same finding in other bytes (another proof, a signature line the CA does not know added to a note: neither is
# what the CA judges): kept once too. Else anyone could add reports and audit entries without end, and push the
# witness's own report out of the officer's view.
python3 - "$EVIDENCE" "$WORK" <<'PY'
import base64, os, sys
ev, work = sys.argv[1:3]
b = open(ev, "rb").read()
magic, rest = b.split(b"\n", 1)
def part(rest, word):
    line, rest = rest.split(b"\n", 1)
    w, n = line.split(b" ")
    assert w == word
    return rest[:int(n)], rest[int(n):]
kept, rest = part(rest, b"kept")
served, proof = part(rest, b"served")
def report(kept, served, proof):
    return magic + b"\nkept %d\n%sserved %d\n%s%s" % (len(kept), kept, len(served), served, proof)
for i in range(3):
    other = b"proof " + base64.b64encode(os.urandom(32)) + b"\n"
    open(work + "/variant%d.report" % i, "wb").write(report(kept, served, other))
extra = "\u2014 someone.example/x ".encode() + base64.b64encode(os.urandom(68)) + b"\n"
open(work + "/variant3.report", "wb").write(report(kept, served + extra, proof))
PY
variants=""
for i in 0 1 2 3; do variants="$variants $(report "$WORK/variant$i.report")$(grep -c '^already recorded witness report 1: fork' "$WORK/report.out" || true)"; done
check_eq "the same finding with another proof (3 times) or an unknown signature line added: 200 'already recorded' each" \
  " 2001 2001 2001 2001" "$variants"
check_eq "... still one report and one audit event" "1 1" \
  "$(sql "$DB" "select count(*) from log_witness_reports") $(sql "$DB" "select count(*) from audit where action = 'log.witness_report'")"

# The officer API flags the witness that reported; w2, configured but never cosigning, is flagged as stale.
code=$(curl -s -o "$WORK/api2.json" -w '%{http_code}' --max-time 20 --cacert "$CA/ops-root.pem" --cert "$WORK/alice.pem" \
  --key "$WORK/alice.key" "https://localhost:$PORT/officer/api/checkpoint" || true)
check_eq "GET /officer/api/checkpoint after the report: 200" 200 "$code"
check_eq "... w1 reported 1 inconsistency, w2 never cosigned (stale); the report is listed" \
  "5 w1:reported=1 w2:reported=0:stale=True fork:witness.example.org/w1:4:5" "$(python3 -c "
import json; d = json.load(open('$WORK/api2.json'))
w = {x['name'].split('/')[-1]: x for x in d['witnesses']}
r = d['reports'][0]
print(d['tree_size'], 'w1:reported=%d' % w['w1']['reported'], 'w2:reported=%d:stale=%s' % (w['w2']['reported'], w['w2']['stale']),
      '%s:%s:%d:%d' % (r['kind'], r['witness'], r['kept_size'], r['served_size']))")"

# ... and so does the console, in a real browser (skipped, saying why, where Chromium cannot run).
if browser_setup; then
  rc=0
  URL="https://localhost:$PORT" CERT="$WORK/alice.pem" KEY="$WORK/alice.key" CHROMIUM="$CHROMIUM" NODE_DIR="$NODE_DIR" \
    SHOT="${CAMTRUST_TEST_TMP:-/tmp}/console-witness.png" bounded 60 node "$HERE/console_log.mjs" >"$WORK/browser.log" 2>&1 || rc=$?
  sed 's/^/  browser: /' "$WORK/browser.log"
  check_eq "the console flags w1 (reported) and w2 (never cosigned) and lists the report" 0 "$rc"
else
  echo "SKIP (browser part): $BROWSER_WHY"
fi

# Reports that prove nothing: refused in one line, nothing recorded.
printf 'camtrust witness report v1\nkept 5\nhello' >"$WORK/bad.report"
check_eq "a malformed report: 400" 400 "$(report "$WORK/bad.report")"
check "... one line saying what a report is" grep -q 'not a witness report' "$WORK/report.out"
python3 - "$EVIDENCE" "$WORK/two.note" "$WORK/fork.note" "$WORK" <<'PY'
import sys
ev, two, fork, work = sys.argv[1:5]
def report(kept, served, proof=b"proof\n"):
    return b"camtrust witness report v1\nkept %d\n%sserved %d\n%s%s" % (len(kept), kept, len(served), served, proof)
k, s = open(two, "rb").read(), open(fork, "rb").read()
open(work + "/consistent.report", "wb").write(report(k, s))  # both of the forked database's own history
f = bytearray(s); i = f.index(b"\n\n") - 3; f[i] = ord("1") if f[i] != ord("1") else ord("2")  # its time edited
open(work + "/unsigned.report", "wb").write(report(k, bytes(f)))
open(work + "/big.report", "wb").write(report(k, s, b"proof" + b" " + b"A" * 20000 + b"\n"))
PY
before=$(sql "$DB" "select count(*) from log_witness_reports")
check_eq "a report of two checkpoints this log extends (consistent): 400" 400 "$(report "$WORK/consistent.report")"
check "... 'not an inconsistency'" grep -q 'not an inconsistency: this CA.s log extends both checkpoints (sizes 2 and 5)' "$WORK/report.out"
check_eq "a report whose served checkpoint is not signed by the CA's log key: 403" 403 "$(report "$WORK/unsigned.report")"
check "... 'not one this CA's log key signed'" grep -q "the served checkpoint is not one this CA's log key signed" "$WORK/report.out"
check_eq "a report over the size bound: 413" 413 "$(report "$WORK/big.report")"
check_eq "GET /log/witness-report: 405" 405 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$HTTP/log/witness-report")"
check_eq "... nothing recorded for any of them" "$before" "$(sql "$DB" "select count(*) from log_witness_reports")"
# Two signed trees of one size with different roots prove a fork by themselves (here: the original 4, the fork's 4).
python3 - "$WORK/four.note" "$WORK/fork4.note" >"$WORK/same-size.report" <<'PY'
import sys
k, s = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
sys.stdout.buffer.write(b"camtrust witness report v1\nkept %d\n%sserved %d\n%sproof\n" % (len(k), k, len(s), s))
PY
check_eq "a report of two signed trees of 4 leaves with different roots: 200, recorded" "200 2" \
  "$(report "$WORK/same-size.report") $(sql "$DB" "select count(*) from log_witness_reports")"
check "... as a fork the notes alone prove" grep -q '^recorded witness report 2: fork: two signed trees of 4 leaves with different roots' "$WORK/report.out"
# A rollback: the log served a smaller tree after a larger one this database no longer holds (sizes 4, then 2).
python3 - "$WORK/four.note" "$WORK/two.note" >"$WORK/rollback.report" <<'PY'
import sys
k, s = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
sys.stdout.buffer.write(b"camtrust witness report v1\nkept %d\n%sserved %d\n%sproof\n" % (len(k), k, len(s), s))
PY
check_eq "a report of a smaller tree served after a larger one this database does not extend: 200, a rollback" \
  "200 rollback|4|2" "$(report "$WORK/rollback.report") $(sql "$DB" "select kind, kept_size, served_size from log_witness_reports where id = 3")"
curl -s -o "$WORK/fork2.note" --max-time 5 "$HTTP/log/checkpoint" || true
check "... the CA serves no cosignature of the fork" test "$(grep -c '^— witness' "$WORK/fork2.note")" = 0
check_eq "... and recorded none" 0 "$(sql "$DB" "select count(*) from log_cosignatures where checkpoint_id = (select max(id) from log_checkpoints)")"
check_eq "... its state still holds the tree of 4 it cosigned" 4 "$(sed -n 2p "$W1/state.note")"
check_eq "w1's cosignature of the original tree of 4, POSTed to the forked CA: 404 (it signed no such checkpoint)" \
  404 "$(submission "$W1/state.note" >"$WORK/sub4.note"; post "$WORK/sub4.note")"
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=
check "the recorded reports leave the database's own records intact (audit verify)" "$CA_BIN" audit verify --dir "$CA"

# The reports are state the console acts on, rebuilt from the audit like the rest: someone with sqlite3 (the triggers
# dropped) who deletes, adds or edits one is named by audit verify, and the server refuses to start.
sqlite3 "$DB" ".backup '$WORK/good.db'"
NOTRIG=$(sql "$DB" "select 'DROP TRIGGER ' || name || ';' from sqlite_master where type = 'trigger'")
report_attack() { # report_attack WHAT TEXT SQL: on a fresh copy of the good database
  rm -f "$DB-wal" "$DB-shm"; cp "$WORK/good.db" "$DB"
  sqlite3 "$DB" "$NOTRIG $3"
  verify_says "$1" "$2"
  serve_refuses "$1" "$2"
}
report_attack "w1's report deleted (its 'reported' flag hidden)" \
  "witness report 1: in the audit (entry " "DELETE FROM log_witness_reports WHERE id = 1"
report_attack "a report added" "witness report 4: not in the audit, in the table (inserted?)" \
  "INSERT INTO log_witness_reports (received, witness, kind, kept_size, served_size, reason, report)
     SELECT received, witness, kind, kept_size, served_size, reason, report || ' ' FROM log_witness_reports WHERE id = 1"
report_attack "a report's witness edited" "witness report 1: its witness in the table is not the one the audit recorded" \
  "UPDATE log_witness_reports SET witness = 'witness.example.org/w2' WHERE id = 1"
report_attack "a rollback made a fork" "witness report 3: its kind in the table is not the one the audit recorded" \
  "UPDATE log_witness_reports SET kind = 'fork' WHERE id = 3"
report_attack "a report's text edited" "witness report 2: its report text in the table is not the one the audit recorded" \
  "UPDATE log_witness_reports SET report = report || ' ' WHERE id = 2"
rm -f "$DB-wal" "$DB-shm"; cp "$WORK/good.db" "$DB"
finish
