#!/usr/bin/env bash
# A decision undone, the audit chain then grown past what the witness kept: the attacker runs the CA (root on its
# host: writes its folder and database, runs its commands, uses its token) but holds no witness's key. A certificate
# is revoked; the witness w1 (its own token) and the factory station line2 (its own token, pinning log.vkey) keep
# the checkpoint that binds it. An honest extension (another revocation) is cosigned and kept: the audit tree's
# consistency proof from the kept root to the new one holds. Then the attacker puts back the copy from before the
# revocations and makes other decisions (issuances: the issuance log grows as it honestly could) until the audit
# chain is longer than the one w1 and line2 kept: each entry is MACed in the token, so only the audit tree
# (camtrust-audit-root, /log/audit/proof/consistency) shows that the longer chain does not extend the kept one. w1
# refuses to cosign (one line, evidence, a report the CA records); line2's log check and log compare refuse too;
# audit verify --checkpoint names w1's kept checkpoint.
# First, the upgrade: w1 and line2 kept a checkpoint as the CA's software signed it before the audit tree (the same
# text without camtrust-audit-root, signed with the CA's token by pkcs11-tool); they go on with the CA's new ones.
# Usage: witness_audit_grown.sh BUILD_DIR
BUILD=$1
CA_BIN=$BUILD/ca/camtrust-ca
STATION_BIN=$BUILD/provision/camtrust-station
. "$(dirname "$0")/witness_lib.sh"
SERIALS=$(seq -f 'CAM%04g' 1 14)
# shellcheck disable=SC2086
witness_setup line1 $SERIALS
ST=$WORK/line2
"$STATION_BIN" init --dir "$ST" --name line2 >/dev/null
"$CA_BIN" station add --dir "$CA" --name line2 --csr "$ST/station.csr" --out "$WORK/line2.pem" >/dev/null
"$STATION_BIN" install --dir "$ST" --cert "$WORK/line2.pem" --ca-root "$CA/ops-root.pem" --log-vkey "$CA/log.vkey" \
  >/dev/null
log_check() { "$STATION_BIN" log check --dir "$ST" --ca "https://localhost:$PORT" --timeout-ms 10000; }

WITH_HTTP=1 start_ca "$CA"
enroll CAM0001 CAM0002
check "the CA signs a checkpoint of its 2 certificates" served_until has_size 2
cleanup_server
C1=$(sql "$DB" "select cert_serial_hex from certificates where device_serial = 'CAM0001'")
C2=$(sql "$DB" "select cert_serial_hex from certificates where device_serial = 'CAM0002'")
sqlite3 "$DB" ".backup '$WORK/before.db'" # the attacker's copy, before the revocation
BEFORE=$(sql "$DB" "select count(*) from audit")

# Before the upgrade: w1 cosigned, and line2 kept, the checkpoint as the older software signed it (no audit root),
# its database at the older build's schema version (migration 19 changes no table: the version alone).
sqlite3 "$DB" "PRAGMA user_version = 18"
sed '/^camtrust-audit-root /d;/^$/,$d' "$WORK/served.note" >"$WORK/old.txt"
sign_note "$WORK/old.txt" "$WORK/old.note"
check "a checkpoint as signed before the audit tree" bash -c "grep -q '^camtrust-audit ' '$WORK/old.note' && ! grep -q '^camtrust-audit-root' '$WORK/old.note'"
fake_ca "$WORK/old.note"
bounded 5 "$CA_BIN" witness --dir "$W1" --log "http://$ADDR" --vkey "$CA/log.vkey" --interval 0.2 2>"$WORK/w.log" || true
stop_bg
check "w1 cosigned it" bash -c "cmp -s <(sed '/^$/,\$d' '$W1/state.note') '$WORK/old.txt'"
mkdir -p "$ST/log"; cp "$WORK/old.note" "$ST/log/checkpoint.note"
cp "$WORK/old.note" "$CA/checkpoint.note" # the CA's own, as the older software kept it
check "audit verify --checkpoint: the database extends the checkpoint without an audit root" \
  "$CA_BIN" audit verify --dir "$CA" --checkpoint "$WORK/old.note"

# The revocation, kept by w1 and line2: the upgraded CA's checkpoints carry the audit root, which they keep.
"$CA_BIN" revoke --dir "$CA" "$C1" --reason keyCompromise >/dev/null
WITH_HTTP=1 start_ca "$CA" # (it refuses a database that does not extend checkpoint.note)
start_witness
check "w1 cosigns the checkpoint after the revocation (it kept one without an audit root)" served_until w1_cosigned_more "$BEFORE"
check "... which binds the audit tree's root" grep -q '^camtrust-audit-root ' "$WORK/served.note"
# A node of the older build still serving beside it would sign, holding the lease, a checkpoint without the root
# after this one (refused by w1 and line2 from then on; audit verify: checkpoints BROKEN). The
# upgraded build moved the schema version past the older build's, so such a node writes nothing (ha_upgrade).
check_eq "... after the upgrade moved the schema version past the older build's (18)" 19 \
  "$(sql "$DB" "pragma user_version")"
check "line2 keeps it (log check; it kept one without an audit root)" log_check
check "... with the audit root" grep -q '^camtrust-audit-root ' "$ST/log/checkpoint.note"
KEPT1=$(audit_entries "$W1/state.note")

# An honest extension: another revocation; w1 and line2 check the audit tree's proof and go on.
stop_witness
cleanup_server
"$CA_BIN" revoke --dir "$CA" "$C2" --reason keyCompromise >/dev/null
WITH_HTTP=1 start_ca "$CA"
# w1 reaches the CA through a load balancer whose node is busy once: its first audit proof request is answered 503.
# Busy is not forked: w1 asks again at its next poll (it once took no proof for a fork, stopped and reported one).
: >"$WORK/witness.log"
busy_proxy /log/audit/proof/consistency
start_witness "http://$ADDR"
check "w1 cosigns the honest extension (a longer audit chain)" served_until w1_cosigned_more "$KEPT1"
check "... though the CA was busy once (503), which it took for no verdict" \
  grep -q 'event=witness_poll .*HTTP 503' "$WORK/witness.log"
check "... refusing nothing" bash -c "! grep -q -e witness_refused -e witness_reported '$WORK/witness.log'"
check "... its state now binds more audit entries" test "$(audit_entries "$W1/state.note")" -gt "$KEPT1"
check "line2 accepts it too" log_check
check "... keeping it" test "$(audit_entries "$ST/log/checkpoint.note")" -gt "$KEPT1"
check "... each checked with the audit tree's consistency proof" \
  test "$(grep -c 'path="/log/audit/proof/consistency" status=200 .*result="audit consistency ' "$WORK/server.log")" -ge 2
stop_witness
cleanup_server
KEPT_N=$(audit_entries "$W1/state.note")
check_eq "w1 and line2 keep the same audit length" "$KEPT_N" "$(audit_entries "$ST/log/checkpoint.note")"
stop_bg

# The copy put back (the attacker writes the folder: the CA's own checkpoint.note goes too), the revocations undone,
# and decisions made until the chain is longer than the one w1 and line2 kept.
cp "$WORK/before.db" "$DB"; rm -f "$DB-wal" "$DB-shm" "$CA/checkpoint.note"
WITH_HTTP=1 start_ca "$CA"
# shellcheck disable=SC2086
enroll $(sed -n '3,$p' <<<"$SERIALS")
check_eq "the revocations are undone" "0" "$(sql "$DB" "select count(*) from certificates where status = 'revoked'")"
check "the CA signs a checkpoint over a chain longer than the one w1 kept" served_until binds_more "$KEPT_N"
check "... and a larger tree" test "$(sed -n 2p "$WORK/served.note")" -gt "$(sed -n 2p "$W1/state.note")"
refused_once "the regrown chain" "the CA's audit chain forked: its [0-9]* entries do not extend the $KEPT_N of the kept .*state.note (the CA proves no path between their roots: rolled back and grown again)"
check "... and the CA records its report, naming the audit chain's fork" \
  grep -q "event=witness_reported answer=\"recorded witness report 1: fork: the witness found the CA's audit chain forked: this database does not extend" "$WORK/w.log"
EV=$(ls "$W1"/evidence/report-*.txt 2>/dev/null | head -1)
check "w1's evidence names the audit chain's fork (last line \"fork audit\"), with both checkpoints" \
  bash -c "[ -n '$EV' ] && [ \"\$(tail -1 '$EV')\" = 'fork audit' ] && [ \$(grep -c '^camtrust-audit-root ' '$EV') = 2 ]"
cp "$ST/log/checkpoint.note" "$WORK/station.before"
rc=0; out=$(log_check 2>&1) || rc=$?
check_eq "line2's log check refuses the regrown chain (exit 1)" 1 "$rc"
check "... saying why, one line" grep -q "the CA's audit chain forked: its [0-9]* entries do not extend the $KEPT_N of the kept .*checkpoint.note" <<<"$out"
check "... keeping its checkpoint" cmp -s "$ST/log/checkpoint.note" "$WORK/station.before"
rc=0; out=$("$STATION_BIN" log compare --dir "$ST" --checkpoint "$WORK/served.note" --ca "https://localhost:$PORT" 2>&1) ||
  rc=$?
check_eq "line2's log compare with the regrown chain's checkpoint: exit 1" 1 "$rc"
check "... naming both" grep -q "the CA's audit chain forked: .*checkpoint.note ($KEPT_N audit entries) and $WORK/served.note ([0-9]*) bind audit chains the CA proves no path between" <<<"$out"
cleanup_server
rc=0; out=$("$CA_BIN" audit verify --dir "$CA" --checkpoint "$WORK/state.before" 2>&1) || rc=$?
check_eq "audit verify --checkpoint w1's state: exit 1" 1 "$rc"
check "... naming it" grep -q "checkpoint $WORK/state.before (size [0-9]*, audit entries $KEPT_N): audit entry $KEPT_N is not the one it signed" <<<"$out"
finish
