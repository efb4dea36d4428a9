# Shared by attacker.sh (SQLite) and attacker_pg.sh (PostgreSQL), after lib.sh: the attacker of README's "what each
# attack leaves behind", who can write the CA's database and its folder but not use its token, and who catches each
# attack. The caller sets CA, DB, STATION_BIN, makes the CA (ca_create) and defines:
#   keep NAME     a copy of the database as it stands (the CA stopped)
#   restore NAME  that copy put back, the CA's own checkpoint.note removed (the attacker writes the folder too)
#   sql_edit SQL  the attacker's statements, the triggers off
# then runs attacker_setup, attacker_history and the cases (chain_attacks, state_attacks, crl_attacks, forged_leaf_attack,
# tail_cut_attacks, older_copy_attacks, honest_back).
W1=$WORK/w1

# enroll SERIAL...: each camera enrolled over EST by station line2 (attacker_setup's) with curl.
enroll() { for s in "$@"; do
  make_csr "$WORK/$s" "/serialNumber=$s/CN=x"
  est_post simpleenroll "$WORK/$s.b64" "$WORK/$s.p7b64" --cert "$WORK/station.pem" --key "$WORK/station.key" >/dev/null
done; }
# The witness w1 polls the CA's plain HTTP log routes in the background (the only background process here).
start_witness() {
  "$CA_BIN" witness --dir "$W1" --log "$HTTP" --vkey "$CA/log.vkey" --interval 0.2 2>"$WORK/witness.log" &
  BG_PIDS+=($!)
}
stop_witness() { stop_bg; }
serve() { cleanup_server; WITH_HTTP=1 start_ca "$CA"; HTTP=http://127.0.0.1:$HTTP_PORT; }
cosigned() { # cosigned N: until the served checkpoint covers N certificates and carries w1's cosignature
  for _ in $(seq 1 150); do
    curl -s -o "$WORK/cp.note" --max-time 5 "$HTTP/log/checkpoint" || true
    [ "$(sed -n 2p "$WORK/cp.note")" = "$1" ] && grep -q '^— witness\.example\.org/w1 ' "$WORK/cp.note" && return 0
    sleep 0.1
  done
  return 1
}
signed() { # signed N: until the served checkpoint ($WORK/cp.note) covers N certificates
  for _ in $(seq 1 100); do
    curl -s -o "$WORK/cp.note" --max-time 5 "$HTTP/log/checkpoint" || true
    [ "$(sed -n 2p "$WORK/cp.note")" = "$1" ] && return 0
    sleep 0.1
  done
  return 1
}
log_check() { # log_check A|B [TIMEOUT_MS]: station A's or B's log check of the served CA; sets RC and OUT
  RC=0; OUT=$("$STATION_BIN" log check --dir "$WORK/st$1" --ca "https://localhost:$PORT" --timeout-ms "${2:-5000}" 2>&1) || RC=$?
}
witness_refuses() { # witness_refuses: one poll of the served log; it must refuse to cosign (exit 1, one line)
  local rc=0
  bounded 30 "$CA_BIN" witness --dir "$W1" --log "$HTTP" --vkey "$CA/log.vkey" --interval 0.2 2>"$WORK/w.log" || rc=$?
  [ "$rc" = 1 ] && grep -q 'event=witness_refused' "$WORK/w.log" && ! grep -q witness_cosigned "$WORK/w.log"
}
# verify_blind WHAT: audit verify alone passes (the database is whole, only a kept checkpoint contradicts it).
verify_blind() {
  local rc=0 out; out=$("$CA_BIN" audit verify --dir "$CA" 2>&1) || rc=$?
  if [ "$rc" = 0 ]; then ok "$1: audit verify alone cannot see it (exit 0)"; else not_ok "$1: audit verify alone (exit $rc): $out"; fi
}
# attack WHAT TEXT EDIT...: on a fresh copy of the good database, the command EDIT (sql_edit, forge, or a function),
# then audit verify and the server both name TEXT.
attack() {
  local what=$1 text=$2; shift 2
  restore good
  "$@"
  verify_says "$what" "$text"
  serve_refuses "$what" "$text"
}
# forge CMD ARGS: audit_forge.py's forged chain (see there): the audit's rows read with sql, the SQL it prints run
# with sql_edit.
forge() {
  local dialect=sqlite rows q="json_group_array(json_array(seq, ts, actor, action, subject, outcome, detail, hex(hash)))"
  if ! on_sqlite; then
    dialect=postgresql q="json_agg(json_build_array(seq, ts, actor, action, subject, outcome, detail, encode(hash, 'hex')))"
  fi
  rows=$(sql "$DB" "select $q from (select * from audit order by seq) a")
  sql_edit "$(python3 "$(dirname "${BASH_SOURCE[0]}")/audit_forge.py" "$dialect" "$@" <<<"$rows")"
}

# attacker_setup: on the CA: station line2 with an order of CAM0001-7, officer alice (an auditor), station line3;
# the witness w1 ($W1, listed in the CA's witnesses.vkeys); two factory stations with their own tokens: A pins the
# log key and requires w1's cosignature from the start, B is installed only after the fork.
attacker_setup() {
  station_with_order line2 CAM0001 CAM0002 CAM0003 CAM0004 CAM0005 CAM0006 CAM0007
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/x.key" -subj /CN=x -out "$WORK/x.csr" 2>/dev/null
  "$CA_BIN" officer add --dir "$CA" --name alice --role auditor --csr "$WORK/x.csr" --out "$WORK/alice.pem" >/dev/null
  # (its own key: one key, one holder)
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/x3.key" -subj /CN=x -out "$WORK/x3.csr" 2>/dev/null
  "$CA_BIN" station add --dir "$CA" --name line3 --csr "$WORK/x3.csr" --out "$WORK/line3.pem" >/dev/null
  "$CA_BIN" witness init --dir "$W1" --name witness.example.org/w1 >/dev/null
  cp "$W1/witness.vkey" "$CA/witnesses.vkeys"
  local s
  for s in A B; do
    "$STATION_BIN" init --dir "$WORK/st$s" --name "line$s" >/dev/null
    station_root_crl_none "$WORK/st$s"
    "$CA_BIN" station add --dir "$CA" --name "line$s" --csr "$WORK/st$s/station.csr" --out "$WORK/line$s.pem" >/dev/null
  done
  check "station A pins the log key and requires the witness's cosignature (--witnesses 1)" \
    "$STATION_BIN" install --dir "$WORK/stA" --cert "$WORK/lineA.pem" --ca-root "$CA/ops-root.pem" --log-vkey "$CA/log.vkey" \
    --witness-vkey "$W1/witness.vkey" --witnesses 1
}

# attacker_history: CAM0001-2 enrolled, the checkpoint of 2 kept ($WORK/two.note) and last week's copy (keep old);
# CAM0003-4 enrolled, cosigned by w1, station A keeps the checkpoint of 4; then revoke_and_keep (keep unrevoked: the
# copy before the revocation; KEPT: the officer's checkpoint, binding audit entries KEPT_SEQ), keep good. Sets MID
# (the first cert.issue entry) and LAST (the newest entry) of the good database.
attacker_history() {
  serve
  enroll CAM0001 CAM0002
  check "the CA signs the log of 2 certificates" signed 2
  cp "$WORK/cp.note" "$WORK/two.note" # an older checkpoint someone kept
  cleanup_server
  keep old # last week's copy
  serve
  start_witness
  enroll CAM0003 CAM0004
  check "the witness cosigns the log of 4" cosigned 4
  log_check A
  check_eq "station A keeps the CA's checkpoint of 4, cosigned" \
    "0 log checkpoint of size 4 kept (the first), cosigned by 1 of 1 witnesses (1 required)" "$RC $OUT"
  stop_witness
  cleanup_server
  check_eq "4 cameras enrolled" 4 "$(sql "$DB" "select count(*) from log_leaves")"
  revoke_and_keep keep unrevoked
  local out
  out=$("$CA_BIN" audit verify --dir "$CA" --checkpoint "$KEPT" 2>&1) || true
  check "the untouched CA verifies, state and log included" grep -q '^state tables match the audit: ' <<<"$out"
  check "... and extends the officer's checkpoint" grep -q "^checkpoint $KEPT extended: size 4" <<<"$out"
  KEPT_SEQ=$(sed -n "s|^checkpoint $KEPT extended: size 4, audit entries \\([0-9]*\\).*|\\1|p" <<<"$out")
  keep good
  LAST=$(sql "$DB" "select max(seq) from audit")
  MID=$(sql "$DB" "select min(seq) from audit where action = 'cert.issue'")
  [ -n "$MID" ] && [ "$MID" -lt "$LAST" ] || { echo "no cert.issue entry before the last ($MID, $LAST)"; exit 1; }
}

# revoke_and_keep COPY...: on the CA (CAM0001 and CAM0002 enrolled, station line3 added): sets C1 and C2 (their
# certificates), runs COPY (a copy of the database before the revocation), revokes C1 (keyCompromise, at REVOKED_AT),
# disables line3, issues a device CRL (its number: CRL), signs a tree head and keeps the officer's checkpoint KEPT, as
# an officer does off the CA host.
revoke_and_keep() {
  C1=$(sql "$DB" "select cert_serial_hex from certificates where device_serial = 'CAM0001' and profile = 'device'")
  C2=$(sql "$DB" "select cert_serial_hex from certificates where device_serial = 'CAM0002' and profile = 'device'")
  "$@" # the copy from before the revocation
  "$CA_BIN" revoke --dir "$CA" "$C1" --reason keyCompromise >/dev/null
  "$CA_BIN" station disable --dir "$CA" line3 >/dev/null
  "$CA_BIN" crl device --dir "$CA" --out "$WORK/device.crl" >/dev/null
  # An officer keeps a checkpoint off the CA host: signed now, it binds the audit chain with the revocation.
  "$CA_BIN" log sth --dir "$CA" >/dev/null
  "$CA_BIN" log checkpoint --dir "$CA" --out "$WORK/officer.note"
  KEPT=$WORK/officer.note
  CRL=$(sql "$DB" "select crl_number from revocation_state")
  REVOKED_AT=$(date -u -d "@$(sql "$DB" "select revoked_at from certificates where cert_serial_hex = '$C1'")" +%Y-%m-%dT%H:%M:%SZ)
}

# ---- the audit chain: only the token's MAC key writes an entry ----
chain_attacks() {
  local mac="MAC does not match (not written by this CA's key"
  attack "an audit entry edited, chain left" "entry $MID: $mac" sql_edit "UPDATE audit SET detail = 'forged' WHERE seq = $MID"
  attack "an audit entry edited, every later hash recomputed" "entry $MID: $mac: a plain SHA-256 hash" \
    edit_rechain "$MID"
  attack "an audit entry deleted, chain left" "entry $MID missing (deleted)" sql_edit "DELETE FROM audit WHERE seq = $MID"
  attack "an audit entry deleted, later ones renumbered, chain recomputed" "entry $MID: $mac" forge delete "$MID"
  attack "a forged entry inserted, chain recomputed" "entry $MID: $mac" forge insert "$MID"
  attack "a forged entry appended, chain recomputed" "entry $((LAST + 1)): $mac" forge append
  attack "every entry rehashed without the key" "no entry is MACed with this CA's audit key" forge rechain 1
  attack "the chain emptied" "the audit has no audit.state entry to rebuild from" sql_edit "DELETE FROM audit"
  # The state replay reads the rows beside the chain's check, before their MACs are judged: a NULL where the schema
  # (edited around, as the file's writer can) says NOT NULL must be named as the forgery it is, not crash the CA.
  if on_sqlite; then
    attack "an entry's action made NULL around the schema" "entry $MID: $mac" sql_edit "PRAGMA writable_schema = ON;
      UPDATE sqlite_master SET sql = replace(sql, 'action TEXT NOT NULL', 'action TEXT') WHERE name = 'audit';
      PRAGMA writable_schema = RESET; UPDATE audit SET action = NULL WHERE seq = $MID"
  fi
}
edit_rechain() { sql_edit "UPDATE audit SET detail = 'forged' WHERE seq = $1"; forge rechain "$1"; }

# state_attacks: each edit of the state the audit rebuilds. The CA: certificate C1 revoked (keyCompromise at
# REVOKED_AT), C2 valid, station line3 disabled, officer alice an auditor, order 1 of 7 serials CAM0001-7, device CRL
# number CRL.
state_attacks() {
  attack "a certificate un-revoked" \
    "certificate $C1: revoked in the audit (keyCompromise at $REVOKED_AT), valid in the table (un-revoked?)" \
    sql_edit "UPDATE certificates SET status = 'valid', revoked_at = NULL, revocation_reason = NULL WHERE cert_serial_hex = '$C1'"
  attack "a revocation deleted with its row" "certificate $C1: revoked in the audit (entry " \
    sql_edit "DELETE FROM certificates WHERE cert_serial_hex = '$C1'"
  attack "a certificate revoked in the table alone" "certificate $C2: valid in the audit, revoked in the table" \
    sql_edit "UPDATE certificates SET status = 'revoked', revoked_at = 1, revocation_reason = 1 WHERE cert_serial_hex = '$C2'"
  attack "a disabled station re-enabled" "station line3: disabled in the audit, enabled in the table" \
    sql_edit "UPDATE stations SET enabled = 1 WHERE name = 'line3'"
  attack "an auditor made officer" "officer alice: auditor in the audit, officer in the table" \
    sql_edit "UPDATE officers SET role = 'officer' WHERE name = 'alice'"
  attack "a serial added to an order" "order 1: 7 serials in the audit, 8 in the table (added or removed?)" \
    sql_edit "INSERT INTO order_serials (order_id, serial) VALUES (1, 'CAM0666')"
  attack "a serial removed from an order" "order 1: 7 serials in the audit, 6 in the table (added or removed?)" \
    sql_edit "DELETE FROM order_serials WHERE serial = 'CAM0007'"
  attack "a CRL number lowered" "device CRL number: $CRL in the audit, $((CRL - 1)) in the table" \
    sql_edit "UPDATE revocation_state SET crl_number = crl_number - 1"
  # One key, one holder (certified_keys): a claim deleted or moved would let the key be certified for another serial.
  attack "a certified key's claim deleted" \
    "certificate $C2 (CAM0002 device): its public key has no claim in certified_keys (deleted?)" \
    sql_edit "DELETE FROM certified_keys WHERE cert_serial_hex = '$C2'"
  attack "a certified key's claim moved to another serial" \
    "certificate $C2 (CAM0002 device) first certified its public key, certified_keys names certificate $C2 (CAM0666 device)" \
    sql_edit "UPDATE certified_keys SET device_serial = 'CAM0666' WHERE cert_serial_hex = '$C2'"
  attack "a certified key's claim moved to another certificate" \
    "certificate $C2 (CAM0002 device) first certified its public key, certified_keys names certificate $C1 (CAM0002 device)" \
    sql_edit "UPDATE certified_keys SET cert_serial_hex = '$C1' WHERE cert_serial_hex = '$C2'"
  attack "a claim for a key no certificate has" \
    "certified_keys claims a key for certificate 0badc0de (CAM0666 device), which no certificate of that key is" \
    sql_edit "INSERT INTO certified_keys (spki_sha256, device_serial, profile, cert_serial_hex)
      VALUES ($(blob_hex "$(printf '%064d' 7)"), 'CAM0666', 'device', '0badc0de')"
}
# blob_hex HEX: those bytes as an SQL value in the database's dialect.
blob_hex() { if on_sqlite; then echo "X'$1'"; else echo "decode('$1', 'hex')"; fi; }
# stored_crl: the device issuing CA's CRL stored for the other nodes (crls_signed), as hex.
stored_crl() {
  local hex=hex; on_sqlite || hex=encode
  sql "$DB" "select $hex(der$(on_sqlite || echo ", 'hex'")) from crls_signed
    where issuing_ca = (select id from issuing_cas where kind = 'device' and generation = 1)"
}
# stored_crl_lists SERIAL: until the stored device CRL lists that certificate (bounded wait).
stored_crl_lists() {
  local text
  for _ in $(seq 1 200); do
    text=$(stored_crl | xxd -r -p | openssl crl -inform DER -noout -text 2>/dev/null) || true
    grep -qi "serial number: \(00\)*$1\$" <<<"$text" && return 0
    sleep 0.1
  done
  return 1
}

# ---- the CRL stored for the other nodes (crls_signed): the good database's was signed before C1's revocation (made
# with the CLI, no server running): lagging, not replayed. ----
crl_attacks() {
  restore good
  check "a stored CRL signed before a revocation made with no server running: audit verify passes" \
    "$CA_BIN" audit verify --dir "$CA"
  local old; old=$(stored_crl)
  [ -n "$old" ] || { echo "no stored device CRL"; exit 1; }
  serve
  check "... the server starts and stores a CRL listing $C1" stored_crl_lists "$C1"
  cleanup_server
  keep resigned
  # The attacker puts the older CRL (genuinely signed, before the revocation, not past its nextUpdate) back.
  restore resigned
  sql_edit "UPDATE crls_signed SET der = $(blob_hex "$old")
    WHERE issuing_ca = (SELECT id FROM issuing_cas WHERE kind = 'device' AND generation = 1)"
  local want="does not list certificate $C1, revoked at $REVOKED_AT: the signer stored number"
  verify_says "an older CRL put back after a revocation" "$want"
  serve_refuses "an older CRL put back after a revocation" "$want"
}

# A certificate row and its leaf appended after the newest tree head: the server once signed a head over it.
forged_leaf_attack() {
  attack "a forged certificate row and leaf after the newest tree head" \
    "certificate 0badc0de: not in the audit, valid in the table (inserted?)" forged_leaf
  check_eq "... and no checkpoint was signed over it" "$HEADS" "$(sql "$DB" "select count(*) from log_checkpoints")"
}
forged_leaf() { # the edit (HEADS: the checkpoints before it): C2's row and leaf copied as certificate 0badc0de
  HEADS=$(sql "$DB" "select count(*) from log_checkpoints")
  sql_edit "INSERT INTO certificates (cert_serial_hex, device_serial, profile, subject, not_before, not_after, spki_sha256, der, issued_at)
      SELECT '0badc0de', 'CAM0005', 'device', subject, not_before, not_after, spki_sha256, der, issued_at FROM certificates WHERE cert_serial_hex = '$C2';
    INSERT INTO log_leaves (leaf_index, cert_serial_hex, leaf_hash)
      SELECT (SELECT count(*) FROM log_leaves), '0badc0de', leaf_hash FROM log_leaves WHERE cert_serial_hex = '$C2';"
}

# tail_cut_sql N: the SQL that cuts the CA's log (DB) to its first N certificates, their keys' claims, tree heads,
# checkpoints and cosignatures, and its audit from the first entry naming a certificate cut: what is left is whole.
tail_cut_sql() {
  local cut
  cut=$(sql "$DB" "select min(a.seq) from audit a, log_leaves l where l.leaf_index >= $1
    and (a.subject like '%' || l.cert_serial_hex || '%' or a.detail like '%' || l.cert_serial_hex || '%')")
  [ -n "$cut" ] || { echo "tail_cut_sql: no audit entry names certificate $1" >&2; return 1; }
  echo "DELETE FROM certified_keys WHERE cert_serial_hex IN (SELECT cert_serial_hex FROM log_leaves WHERE leaf_index >= $1);
    DELETE FROM certificates WHERE cert_serial_hex IN (SELECT cert_serial_hex FROM log_leaves WHERE leaf_index >= $1);
    DELETE FROM log_leaves WHERE leaf_index >= $1;
    DELETE FROM log_tree_heads WHERE tree_size > $1;
    DELETE FROM log_checkpoints WHERE tree_size > $1;
    DELETE FROM log_cosignatures WHERE checkpoint_id NOT IN (SELECT id FROM log_checkpoints);
    DELETE FROM audit WHERE seq >= $cut;"
}

# ---- the tail cut: certificates, leaves, tree heads, checkpoints, audit entries; what is left is whole (cut before
# the revocation, whose state would otherwise still show) ----
tail_cut_attacks() {
  restore unrevoked
  sql_edit "$(tail_cut_sql 3)"
  check_eq "the tail cut leaves 3 certificates in the log" 3 "$(sql "$DB" "select count(*) from log_leaves")"
  verify_blind "the tail cut"
  check "... which checks a whole log of 3" grep -q '^issuance log intact: 3 leaves' <<<"$("$CA_BIN" audit verify --dir "$CA" 2>&1)"
  verify_says "the tail cut" \
    "checkpoint $KEPT (size 4, audit entries $KEPT_SEQ): the audit chain has no entry $KEPT_SEQ (truncated or rolled back)" \
    --checkpoint "$KEPT"
  verify_says "... an older kept checkpoint still holds, the newer is named" "checkpoint CONTRADICTED: checkpoint $KEPT" \
    --checkpoint "$WORK/two.note" --checkpoint "$KEPT"
  serve
  signed 3 || true
  log_check A
  check_eq "the tail cut: station A's log check fails" 1 "$RC"
  check "... naming its kept checkpoint" grep -q "the CA's log shrank: its checkpoint has size 3, the kept $WORK/stA/log/checkpoint.note has 4" <<<"$OUT"
  check "the tail cut: the witness refuses to cosign" witness_refuses
  cleanup_server
}

# ---- older copies put back ----
older_copy_attacks() {
  # The copy from before the revocation: the revocation undone, the log unchanged.
  restore unrevoked
  verify_blind "the copy from before a revocation put back"
  verify_says "the copy from before a revocation put back" "checkpoint $KEPT (size 4, audit entries" --checkpoint "$KEPT"
  serve
  start_witness
  log_check A
  check_eq "... station A cannot see it: its checkpoint predates the revocation (log check passes)" 0 "$RC"
  stop_witness
  check "... nor can the witness: it refuses nothing (station A's check needed its cosignature)" \
    bash -c "! grep -q witness_refused '$WORK/witness.log'"
  cleanup_server

  # Last week's copy put back, the CA's own checkpoint.note left in its folder (an operator's mistake): the CA names
  # it and does not serve (backup.sh: restore flags it, an officer's acceptance is audited).
  restore good
  serve
  cleanup_server # the server kept the newest checkpoint in checkpoint.note
  cp "$CA/checkpoint.note" "$WORK/ca-checkpoint.note"
  restore old
  cp "$WORK/ca-checkpoint.note" "$CA/checkpoint.note"
  verify_says "last week's copy put back, checkpoint.note left" \
    "checkpoint kept by the CA CONTRADICTED: the database is older than checkpoint.note (size 4"
  serve_refuses "last week's copy put back, checkpoint.note left" "the database is older than checkpoint.note (size 4"

  # Last week's copy put back, then grown with other certificates: a fork the CA itself signs.
  restore old
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
  # (the kept checkpoint binds the revocation and what followed it, which the regrown copy lacks: named first; the
  # regrown chain is shorter, or as long or longer when the served CA appended more entries since (a CRL, a lease, a
  # tree head): then another hash at that length, or no audit proof from the kept root to it)
  check "the fork: station A's log check fails on the audit chain (shorter, or longer and not extending): $OUT" \
    grep -Eq "^camtrust-station: the CA's audit chain (shrank: [0-9]* entries, the kept .* has [0-9]* \(truncated or rolled back\)|forked: )" <<<"$OUT"
  check "the fork: the witness refuses to cosign" witness_refuses
  # B knows the witness's key (to check its state.note) but requires no cosignature yet.
  "$STATION_BIN" install --dir "$WORK/stB" --cert "$WORK/lineB.pem" --ca-root "$CA/ops-root.pem" --log-vkey "$CA/log.vkey" \
    --witness-vkey "$W1/witness.vkey" >/dev/null
  log_check B
  check_eq "the fork: station B, installed after it, cannot tell alone (log check passes)" 0 "$RC"
  "$STATION_BIN" log show --dir "$WORK/stA" --out "$WORK/A.note"
  check "station A exports its kept checkpoint (log show)" cmp "$WORK/A.note" "$WORK/stA/log/checkpoint.note"
  local rc=0 out
  out=$("$STATION_BIN" log compare --dir "$WORK/stB" --checkpoint "$WORK/A.note" --ca "https://localhost:$PORT" 2>&1) || rc=$?
  # (which of the fork's signs is named first depends on how many audit entries the regrown CA has written by
  # then, its checkpoints' own included: more than A's checkpoint binds, as many, or fewer; each is a fork)
  fork_named() { # fork_named OUT A B: one line, the fork named with both checkpoints
    [ "$(wc -l <<<"$1")" = 1 ] && grep -qE "^camtrust-station: the CA's (log|audit chain) forked: $2 \(size 4\) (binds more audit entries than|and) $3 \(size 5\)" <<<"$1"
  }
  check_eq "the fork: station B compares with station A's checkpoint: exit 1" 1 "$rc"
  check "... one line naming both" fork_named "$out" "$WORK/A.note" "$WORK/stB/log/checkpoint.note"
  rc=0; out=$("$STATION_BIN" log compare --dir "$WORK/stB" --checkpoint "$W1/state.note" --ca "https://localhost:$PORT" 2>&1) || rc=$?
  check_eq "the fork: station B compares with the witness's checkpoint (state.note): exit 1" 1 "$rc"
  check "... one line naming both" fork_named "$out" "$W1/state.note" "$WORK/stB/log/checkpoint.note"
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
  cleanup_server
}

# The honest database back: each checker is satisfied again (the detections above are not stuck failures), once the
# two that took the copy from before the revocation for the history (older_copy_attacks: they could not tell) have
# seen the switch back: the good chain, longer, does not extend the one they kept (the audit tree's proof fails).
honest_back() {
  restore good
  check "the good database: audit verify --checkpoint passes" "$CA_BIN" audit verify --dir "$CA" --checkpoint "$KEPT"
  serve
  log_check A
  check_eq "... station A, which kept the unrevoked copy's checkpoint, sees two histories: exit 1" 1 "$RC"
  check "... naming the audit chain forked" grep -q "the CA's audit chain forked: its [0-9]* entries do not extend" <<<"$OUT"
  check "... and so does the witness, which cosigned it" witness_refuses
  # Their operators, having reviewed it (the witness's evidence), start them afresh.
  rm -f "$WORK/stA/log/checkpoint.note" "$W1/state.note"
  start_witness
  log_check A 30000 # waits for the witness's cosignature: longer on a loaded machine
  check_eq "... started afresh: station A's log check passes (the witness cosigns its newest checkpoint)" 0 "$RC"
  stop_witness
  local rc=0
  "$STATION_BIN" log compare --dir "$WORK/stA" --checkpoint "$W1/state.note" >/dev/null 2>&1 || rc=$?
  check_eq "... station A and the witness hold one history (same size, same root: no CA needed)" 0 "$rc"
  cleanup_server
}
