#!/usr/bin/env bash
# A decision undone under the witness's eyes: the attacker runs the CA (root on its host: writes its folder and
# database, runs its commands). A certificate is revoked and the witness w1 (its own token) cosigns the checkpoint
# that binds the revocation (camtrust-audit N HASH). The attacker puts back the copy from before the revocation,
# revokes another certificate in its place (one decision for one), and serves: the same tree, an audit chain as
# long as the one w1 kept, another hash for its entry N. Both checkpoints carry the CA's signature, so they prove the
# chain was rolled back and grown again: w1 refuses to cosign, keeps the evidence, reports it, and the CA records
# the report, each naming the audit chain's fork (the evidence carried the tree's proof, as if the tree had forked).
# (A station's log check refuses it too: the same check, common/http.)
# Usage: witness_audit.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/witness_lib.sh"
witness_setup line1 CAM0001 CAM0002
WITH_HTTP=1 start_ca "$CA"
enroll CAM0001 CAM0002
cleanup_server
check_eq "two certificates logged" 2 "$(sql "$DB" "select count(*) from log_leaves")"
C1=$(sql "$DB" "select cert_serial_hex from certificates where device_serial = 'CAM0001'")
C2=$(sql "$DB" "select cert_serial_hex from certificates where device_serial = 'CAM0002'")
sqlite3 "$DB" ".backup '$WORK/before.db'" # the attacker's copy, before the revocation
BEFORE=$(sql "$DB" "select count(*) from audit")

# The revocation, and w1 cosigning the checkpoint that binds it.
"$CA_BIN" revoke --dir "$CA" "$C1" --reason keyCompromise >/dev/null
WITH_HTTP=1 start_ca "$CA"
start_witness
check "w1 cosigns the checkpoint after the revocation" served_until binds_more "$BEFORE"
check "... (its cosignature served)" served_until w1_cosigned
stop_witness
cleanup_server
KEPT_N=$(audit_entries "$W1/state.note")
check "w1 keeps a checkpoint binding the revocation" test "$KEPT_N" -gt "$BEFORE"

# The copy put back (the attacker writes the folder: the CA's own checkpoint.note goes too), the revocation undone
# and another made in its place; the server signs the tree as it was, its audit chain grown again.
cp "$WORK/before.db" "$DB"; rm -f "$DB-wal" "$DB-shm" "$CA/checkpoint.note"
"$CA_BIN" revoke --dir "$CA" "$C2" --reason keyCompromise >/dev/null
check_eq "the revocation is undone" "0" "$(sql "$DB" "select count(*) from certificates where cert_serial_hex = '$C1' and status = 'revoked'")"
WITH_HTTP=1 start_ca "$CA"
check "the CA signs a checkpoint over the regrown chain" served_until binds_more "$BEFORE"
check_eq "... of the same tree, binding as many audit entries as w1 kept, with another hash" \
  "$(sed -n 2,3p "$W1/state.note" | tr '\n' ' ')$KEPT_N different" \
  "$(sed -n 2,3p "$WORK/served.note" | tr '\n' ' ')$(audit_entries "$WORK/served.note") $(
    [ "$(grep '^camtrust-audit ' "$WORK/served.note")" != "$(grep '^camtrust-audit ' "$W1/state.note")" ] && echo different)"
refused_once "the regrown chain" "the CA's audit chain forked: its checkpoint binds entry $KEPT_N to another hash than the kept .*state.note (rolled back and grown again)"
check "... and the CA records its report (a fork: both checkpoints carry its signature), naming the audit chain's" \
  grep -q "event=witness_reported answer=\"recorded witness report 1: fork: the CA's audit chain forked: two signed checkpoints bind audit entry $KEPT_N to different hashes" \
  "$WORK/w.log"
# The evidence w1 keeps says what forked (it carried the tree's proof, which holds, as if the tree had).
EV=$(ls "$W1"/evidence/report-*.txt 2>/dev/null | head -1)
check "w1's evidence names the audit chain's fork (last line \"fork audit\")" bash -c "[ -n '$EV' ] && [ \"\$(tail -1 '$EV')\" = 'fork audit' ]"
check "... carries both checkpoints (their audit lines)" bash -c "[ \$(grep -c '^camtrust-audit ' '$EV') = 2 ]"
check "... and no tree proof (its tree is no evidence of this fork)" grep -qx 'proof' "$EV"
check "the officer reads the report as the audit chain's fork" \
  grep -q "the CA's audit chain forked" <<<"$(sql "$DB" "select reason from log_witness_reports where id = 1")"
# The attacker deletes audit entry 3 under the serving CA (its triggers dropped): the audit tree's proof is refused,
# naming the entry as the audit table numbers it (was: "log leaf 2 is missing", the issuance log's words).
for t in audit_no_update audit_no_delete; do sqlite3 "$DB" "drop trigger $t"; done
N=$(sql "$DB" "select count(*) from audit")
sqlite3 "$DB" "delete from audit where seq = 3"
# (A 500: anyone is told the table's message and an incident, the server's log names the entry under it.)
curl -s -o "$WORK/gap" --max-time 20 "http://127.0.0.1:$HTTP_PORT/log/audit/proof/consistency?first=2&second=$((N - 1))" || true
INC=$(incident_of "$WORK/gap" 500 "integrity check failed")
check "an audit proof over a gap is refused: 500 and an incident ($(cat "$WORK/gap"))" test -n "$INC"
check "... the server's log names the audit entry missing under it" \
  grep -q 'status=500 .*result="audit entry 3 is missing"' <<<"$(incident_line "$INC")"
finish
