#!/usr/bin/env bash
# Someone who writes the CA's database (not its folder, not its token) rewrites audit rows under a serving node whose
# audit tree cache is warm: entries 1001-1024 (inside the first kept chunk of 1024) deleted and appended again with
# other content, every later entry left as it was (the entry checkpoint.note names among them, so its hash still
# matches). The node kept the chunk's root of the rows that were: it found the chain still what checkpoint.note bound
# and signed a checkpoint mixing that root with the rewritten rows. Now each use reads the leaf at the cache's edge
# again, drops the kept roots when it changed, finds the chain no longer the one it signed and refuses, one line.
# (The chain grows past a chunk by re-enrollments of one camera: each answered with the same certificate, audited.)
# Usage: witness_audit_cache.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/witness_lib.sh"
if ! on_sqlite; then echo "skipped: the rows are rewritten in the SQLite file"; exit 77; fi
witness_setup line1 CAM0001 CAM0002 CAM0003
WITH_HTTP=1 start_ca "$CA"
enroll CAM0001
# 1100 times the same request on one connection: the same certificate each time, one audit entry each
urls=()
for _ in $(seq 1100); do urls+=("https://localhost:$PORT/.well-known/est/simpleenroll"); done
curl -s -o /dev/null --max-time 120 --cacert "$CA/ops-root.pem" -H "Content-Type: application/pkcs10" \
  --data-binary "@$WORK/CAM0001.b64" --cert "$WORK/station.pem" --key "$WORK/station.key" "${urls[@]}" || true
check "the audit chain grew past one kept chunk (1024 entries)" \
  test "$(sql "$DB" "select count(*) from audit where action = 'est.enroll' and outcome = 'repeated'")" -ge 1000
enroll CAM0002
check "the CA signs a checkpoint of 2 certificates binding more than 1030 audit entries" \
  served_until eval 'has_size 2 && binds_more 1030'
KEPT=$(audit_entries "$CA/checkpoint.note")
check "... kept in checkpoint.note" test "$KEPT" -gt 1030
SIGNED=$(sql "$DB" "select count(*) from log_checkpoints")
KEPT_HASH=$(sql "$DB" "select hex(hash) from audit where seq = $KEPT")

# The rows rewritten under the serving node (the triggers dropped, as an attacker with the database's rights can).
sqlite3 "$DB" "$(sql "$DB" "select 'DROP TRIGGER ' || name || ';' from sqlite_master where type = 'trigger' and
  tbl_name = 'audit'") DELETE FROM audit WHERE seq BETWEEN 1001 AND 1024;
  WITH RECURSIVE n(i) AS (SELECT 1001 UNION ALL SELECT i + 1 FROM n WHERE i < 1024)
  INSERT INTO audit (seq, ts, actor, action, subject, outcome, detail, prev_hash, hash)
  SELECT i, 0, 'cli', 'cert.unrevoke', 'CAM0001', 'ok', 'forged', zeroblob(32), randomblob(32) FROM n"
check_eq "24 entries rewritten" 24 "$(sql "$DB" "select count(*) from audit where detail = 'forged'")"
check_eq "... entry $KEPT, which checkpoint.note names, untouched" "$KEPT_HASH" \
  "$(sql "$DB" "select hex(hash) from audit where seq = $KEPT")"
enroll CAM0003 # the log grew: the node would sign a checkpoint
refusal="the audit chain's first $KEPT entries have another root"
for _ in $(seq 150); do grep -q "event=log_sth .*$refusal" "$WORK/server.log" && break; sleep 0.1; done
check "the node refuses to sign over the rewritten chain, one line" grep -q "event=log_sth .*$refusal" "$WORK/server.log"
check "... it dropped the kept roots, naming the kept edge's entry as audit verify would (1024: leaf 1023)" \
  grep -q 'event=tree_cache_dropped tree=audit entry=1024 reason=changed' "$WORK/server.log"
check_eq "... and signed nothing after" "$SIGNED" "$(sql "$DB" "select count(*) from log_checkpoints")"
check "... serving still the checkpoint of 2" served_until has_size 2
finish
