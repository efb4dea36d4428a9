#!/usr/bin/env bash
# The attacker of issue 11, in one place: write access to a real CA's camtrust.db (sqlite3, the triggers dropped),
# none to its token. Every kind of edit, the tail cut, an older copy put back, a fork shown to a station installed
# after it. Each case asserts who catches it, and each row of README's "what each attack leaves behind" table is
# asserted here, the "cannot see it" cells included: `audit verify` (with `--checkpoint` of an officer's kept
# checkpoint where only a kept head can show it), `serve` refusing to start, a station's `log check` / `log
# compare`, the witness (`camtrust-ca witness`). Usage: attacker.sh BUILD_DIR
BUILD=$1
CA_BIN=$BUILD/ca/camtrust-ca
STATION_BIN=$BUILD/provision/camtrust-station
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
FORGE="python3 $HERE/audit_forge.py"

CA=$WORK/ca
DB=$CA/camtrust.db
W1=$WORK/w1
ca_create "$CA" >/dev/null
"$CA_BIN" witness init --dir "$W1" --name witness.example.org/w1 >/dev/null
cp "$W1/witness.vkey" "$CA/witnesses.vkeys"
station_with_order line2 CAM0001 CAM0002 CAM0003 CAM0004 CAM0005 CAM0006 CAM0007 # enrolls with curl
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/x.key" -subj /CN=x -out "$WORK/x.csr" 2>/dev/null
"$CA_BIN" officer add --dir "$CA" --name alice --role auditor --csr "$WORK/x.csr" --out "$WORK/alice.pem" >/dev/null
"$CA_BIN" station add --dir "$CA" --name line3 --csr "$WORK/x.csr" --out "$WORK/line3.pem" >/dev/null
# Two factory stations with their own tokens: A witnesses from the start, B is installed only after the fork.
for s in A B; do
  "$STATION_BIN" init --dir "$WORK/st$s" --name "line$s" >/dev/null
  "$CA_BIN" station add --dir "$CA" --name "line$s" --csr "$WORK/st$s/station.csr" --out "$WORK/line$s.pem" >/dev/null
done
check "station A pins the log key and requires the witness's cosignature (--witnesses 1)" \
  "$STATION_BIN" install --dir "$WORK/stA" --cert "$WORK/lineA.pem" --ca-root "$CA/ops-root.pem" --log-vkey "$CA/log.vkey" \
  --witness-vkey "$W1/witness.vkey" --witnesses 1

enroll() { for s in "$@"; do
  make_csr "$WORK/$s" "/serialNumber=$s/CN=x"
  est_post simpleenroll "$WORK/$s.b64" "$WORK/$s.p7b64" --cert "$WORK/station.pem" --key "$WORK/station.key" >/dev/null
done; }
WPID=
stop_witness() { if [ -n "$WPID" ]; then kill -TERM "$WPID" 2>/dev/null || true; wait "$WPID" || true; WPID=; fi; }
trap 'stop_witness; cleanup_server; rm -rf "$WORK"' EXIT
start_witness() { "$CA_BIN" witness --dir "$W1" --log "$HTTP" --vkey "$CA/log.vkey" --interval 0.2 2>"$WORK/witness.log" & WPID=$!; }
serve() { cleanup_server; SERVER_PID=; WITH_HTTP=1 start_ca "$CA"; HTTP=http://127.0.0.1:$HTTP_PORT; }
cosigned() { # cosigned N: until the served checkpoint covers N certificates and carries w1's cosignature
  for _ in $(seq 1 150); do
    curl -s -o "$WORK/cp.note" --max-time 5 "$HTTP/log/checkpoint" || true
    [ "$(sed -n 2p "$WORK/cp.note")" = "$1" ] && grep -q '^— witness\.example\.org/w1 ' "$WORK/cp.note" && return 0
    sleep 0.1
  done
  return 1
}
signed() { # signed N: until the served checkpoint covers N certificates
  for _ in $(seq 1 100); do
    [ "$(curl -s --max-time 5 "$HTTP/log/checkpoint" | sed -n 2p)" = "$1" ] && return 0
    sleep 0.1
  done
  return 1
}
log_check() { # log_check A|B: sets RC and OUT
  RC=0; OUT=$("$STATION_BIN" log check --dir "$WORK/st$1" --ca "https://localhost:$PORT" --timeout-ms "${2:-5000}" 2>&1) || RC=$?
}
witness_refuses() { # witness_refuses: one poll of the served log; it must refuse to cosign (exit 1, one line)
  local rc=0
  timeout 30 "$CA_BIN" witness --dir "$W1" --log "$HTTP" --vkey "$CA/log.vkey" --interval 0.2 2>"$WORK/w.log" || rc=$?
  [ "$rc" = 1 ] && grep -q 'event=witness_refused' "$WORK/w.log" && ! grep -q witness_cosigned "$WORK/w.log"
}

serve
start_witness
enroll CAM0001 CAM0002
check "the witness cosigns the log of 2 certificates" cosigned 2
cp "$WORK/cp.note" "$WORK/two.note" # an older checkpoint someone kept
sqlite3 "$DB" ".backup '$WORK/old.db'" # last week's copy
enroll CAM0003 CAM0004
check "... and of 4" cosigned 4
log_check A
check_eq "station A keeps the CA's checkpoint of 4, cosigned" \
  "0 log checkpoint of size 4 kept (the first), cosigned by 1 of 1 witnesses (1 required)" "$RC $OUT"
stop_witness
cleanup_server
revoke_and_keep sqlite3 "$DB" ".backup '$WORK/unrevoked.db'"
REVOKED_AT=$(sql "$DB" "select strftime('%Y-%m-%dT%H:%M:%SZ', revoked_at, 'unixepoch') from certificates where cert_serial_hex = '$C1'")
out=$("$CA_BIN" audit verify --dir "$CA" --checkpoint "$KEPT" 2>&1) || true
check "the untouched CA verifies, state and log included" grep -q '^state tables match the audit: ' <<<"$out"
check "... and extends the officer's checkpoint" grep -q "^checkpoint $KEPT extended: size 4" <<<"$out"
sqlite3 "$DB" ".backup '$WORK/good.db'"
NOTRIG=$(sql "$DB" "select 'DROP TRIGGER ' || name || ';' from sqlite_master where type = 'trigger'")
LAST=$(sql "$DB" "select max(seq) from audit")
MID=$(sql "$DB" "select min(seq) from audit where action = 'cert.issue'")
# The attacker writes the folder too: a copy is put back with the CA's own checkpoint.note removed (its row below:
# left in place, that file alone names the copy).
restore() { rm -f "$DB-wal" "$DB-shm" "$CA/checkpoint.note"; cp "$1" "$DB"; }

# verify_blind WHAT: audit verify alone passes (the database is whole, only a kept checkpoint contradicts it).
verify_blind() {
  local rc=0 out; out=$("$CA_BIN" audit verify --dir "$CA" 2>&1) || rc=$?
  if [ "$rc" = 0 ]; then ok "$1: audit verify alone cannot see it (exit 0)"; else not_ok "$1: audit verify alone (exit $rc): $out"; fi
}
# attack WHAT TEXT EDIT...: on a fresh copy of the good database, the command EDIT (sql, forge, or a function),
# then audit verify and the server both name TEXT.
sql_edit() { sqlite3 "$DB" "$NOTRIG $1"; }
forge() { $FORGE "$DB" "$@"; }
attack() {
  local what=$1 text=$2; shift 2
  restore "$WORK/good.db"
  "$@"
  verify_says "$what" "$text"
  serve_refuses "$what" "$text"
}

# ---- the audit chain: only the token's MAC key writes an entry ----
MAC="MAC does not match (not written by this CA's key"
attack "an audit entry edited, chain left" "entry $MID: $MAC" sql_edit "UPDATE audit SET detail = 'forged' WHERE seq = $MID"
edit_rechain() { sql_edit "UPDATE audit SET detail = 'forged' WHERE seq = $MID"; forge rechain "$MID"; }
attack "an audit entry edited, every later hash recomputed" "entry $MID: $MAC: a plain SHA-256 hash" edit_rechain
attack "an audit entry deleted, chain left" "entry $MID missing (deleted)" sql_edit "DELETE FROM audit WHERE seq = $MID"
attack "an audit entry deleted, later ones renumbered, chain recomputed" "entry $MID: $MAC" forge delete "$MID"
attack "a forged entry inserted, chain recomputed" "entry $MID: $MAC" forge insert "$MID"
attack "a forged entry appended, chain recomputed" "entry $((LAST + 1)): $MAC" forge append
attack "every entry rehashed without the key" "no entry is MACed with this CA's audit key" forge rechain 1
attack "the chain emptied" "the audit has no audit.state entry to rebuild from" sql_edit "DELETE FROM audit"

# ---- the state the CA acts on, rebuilt from the audit ----
state_attacks
# A certificate row and its leaf appended after the newest tree head: the server once signed a head over it.
heads=$(sql "$WORK/good.db" "select count(*) from log_checkpoints")
attack "a forged certificate row and leaf after the newest tree head" \
  "certificate 0badc0de: not in the audit, valid in the table (inserted?)" sql_edit \
  "INSERT INTO certificates (cert_serial_hex, device_serial, profile, subject, not_before, not_after, spki_sha256, der, issued_at)
     SELECT '0badc0de', 'CAM0005', 'device', subject, not_before, not_after, spki_sha256, der, issued_at FROM certificates WHERE cert_serial_hex = '$C2';
   INSERT INTO log_leaves (leaf_index, cert_serial_hex, leaf_hash) SELECT 4, '0badc0de', leaf_hash FROM log_leaves WHERE cert_serial_hex = '$C2';"
check_eq "... and no checkpoint was signed over it" "$heads" "$(sql "$DB" "select count(*) from log_checkpoints")"

# ---- the tail cut: certificates, leaves, tree heads, checkpoints, audit entries; what is left is whole (cut
# before the revocation, whose state would otherwise still show) ----
restore "$WORK/unrevoked.db"
CUT_SQL=$(tail_cut_sql 3)
sqlite3 "$DB" "$NOTRIG $CUT_SQL"
verify_blind "the tail cut"
verify_says "the tail cut" "checkpoint $KEPT (size 4, audit entries" --checkpoint "$KEPT"
verify_says "... an older kept checkpoint still holds, the newer is named" "checkpoint CONTRADICTED: checkpoint $KEPT" \
  --checkpoint "$WORK/two.note" --checkpoint "$KEPT"
serve
signed 3 || true
log_check A
check_eq "the tail cut: station A's log check fails" 1 "$RC"
check "... naming its kept checkpoint" grep -q "the CA's log shrank: its checkpoint has size 3, the kept $WORK/stA/log/checkpoint.note has 4" <<<"$OUT"
check "the tail cut: the witness refuses to cosign" witness_refuses

# ---- the copy from before the revocation put back: the revocation undone, the log unchanged ----
cleanup_server
restore "$WORK/unrevoked.db"
verify_blind "the copy from before a revocation put back"
verify_says "the copy from before a revocation put back" "checkpoint $KEPT (size 4, audit entries" --checkpoint "$KEPT"
serve
start_witness
log_check A
check_eq "... station A cannot see it: its checkpoint predates the revocation (log check passes)" 0 "$RC"
stop_witness
check "... nor can the witness: it refuses nothing (station A's check needed its cosignature)" \
  bash -c "! grep -q witness_refused '$WORK/witness.log'"

# ---- last week's copy put back, the CA's own checkpoint.note left in its folder (an operator's mistake): the CA
# names it and does not serve (backup.sh: restore flags it, an officer's acceptance is audited) ----
cleanup_server
restore "$WORK/good.db"
serve
cleanup_server # the server kept the newest checkpoint in checkpoint.note
rm -f "$DB-wal" "$DB-shm"; cp "$WORK/old.db" "$DB"
verify_says "last week's copy put back, checkpoint.note left" \
  "checkpoint kept by the CA CONTRADICTED: the database is older than checkpoint.note (size 4"
serve_refuses "last week's copy put back, checkpoint.note left" "the database is older than checkpoint.note (size 4"

# ---- last week's copy put back, then grown with other certificates: a fork the CA itself signs ----
restore "$WORK/old.db"
verify_blind "last week's copy put back"
verify_says "last week's copy put back" "checkpoint $KEPT (size 4" --checkpoint "$KEPT"
serve
signed 2 || true
log_check A
check "last week's copy: station A's log check fails, the log shrank" \
  grep -q "^camtrust-station: the CA's log shrank: its checkpoint has size 2, the kept .* has 4" <<<"$OUT"
check "last week's copy: the witness refuses to cosign" witness_refuses
enroll CAM0005 CAM0006 CAM0007
check "the fork: the CA signs the regrown log of 5 (other certificates than the first history's 3 and 4)" signed 5
verify_says "the fork" "checkpoint $KEPT (size 4" --checkpoint "$KEPT"
log_check A
check "the fork: station A's log check fails, not consistent with its kept checkpoint" \
  grep -q "^camtrust-station: the CA's log forked: its checkpoint of size 5 is not consistent with the kept .* (size 4)" <<<"$OUT"
check "the fork: the witness refuses to cosign" witness_refuses
# B knows the witness's key (to check its state.note) but requires no cosignature yet.
"$STATION_BIN" install --dir "$WORK/stB" --cert "$WORK/lineB.pem" --ca-root "$CA/ops-root.pem" --log-vkey "$CA/log.vkey" \
  --witness-vkey "$W1/witness.vkey" >/dev/null
log_check B
check_eq "the fork: station B, installed after it, cannot tell alone (log check passes)" 0 "$RC"
"$STATION_BIN" log show --dir "$WORK/stA" --out "$WORK/A.note"
check "station A exports its kept checkpoint (log show)" cmp "$WORK/A.note" "$WORK/stA/log/checkpoint.note"
rc=0; out=$("$STATION_BIN" log compare --dir "$WORK/stB" --checkpoint "$WORK/A.note" --ca "https://localhost:$PORT" 2>&1) || rc=$?
check_eq "the fork: station B compares with station A's checkpoint: exit 1, one line naming both" \
  "1 camtrust-station: the CA's log forked: $WORK/A.note (size 4) and $WORK/stB/log/checkpoint.note (size 5) are not consistent (the CA proves no path between them)" \
  "$rc $out"
rc=0; out=$("$STATION_BIN" log compare --dir "$WORK/stB" --checkpoint "$W1/state.note" --ca "https://localhost:$PORT" 2>&1) || rc=$?
check "the fork: station B compares with the witness's checkpoint (state.note): exit 1" \
  test "$rc $(grep -c "the CA's log forked: $W1/state.note (size 4) and" <<<"$out")" = "1 1"
"$STATION_BIN" install --dir "$WORK/stB" --cert "$WORK/lineB.pem" --ca-root "$CA/ops-root.pem" --witnesses 1 >/dev/null
log_check B 500
check_eq "the fork: station B requiring the witness refuses it, naming who is missing" \
  "1 camtrust-station: not witnessed: the CA's checkpoint of size 5 has 0 of the 1 cosignatures required (1 witnesses configured; missing: witness.example.org/w1)" \
  "$RC $OUT"
rc=0; "$STATION_BIN" provision --dir "$WORK/stB" --ca "https://localhost:$PORT" --device 127.0.0.1:9 --timeout-ms 500 \
  --report "$WORK/B.jsonl" >/dev/null 2>"$WORK/B.err" || rc=$?
check_eq "... and provisions nothing on it: exit 1, a report line" "1 log-unwitnessed before the batch" \
  "$rc $(python3 -c 'import json, sys; r = [json.loads(l) for l in open(sys.argv[1])]; print(r[0]["status"], r[0]["when"], len(r))' "$WORK/B.jsonl" | sed 's/ 1$//')"
check "... one clear error" grep -q "^camtrust-station: provisioning stopped before the batch: not witnessed: " "$WORK/B.err"

# The honest database back: each checker is satisfied again (the detections above are not stuck failures).
cleanup_server
restore "$WORK/good.db"
check "the good database: audit verify --checkpoint passes" "$CA_BIN" audit verify --dir "$CA" --checkpoint "$KEPT"
serve
start_witness
log_check A 30000 # waits for the witness's cosignature: longer on a loaded machine
check_eq "... station A's log check passes (the witness cosigns its newest checkpoint)" 0 "$RC"
stop_witness
rc=0; out=$("$STATION_BIN" log compare --dir "$WORK/stA" --checkpoint "$W1/state.note" 2>&1) || rc=$?
check_eq "... station A and the witness hold one history (same size, same root: no CA needed)" 0 "$rc"
finish
