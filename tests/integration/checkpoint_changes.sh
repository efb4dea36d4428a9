#!/usr/bin/env bash
# Checkpoints after changes that grow no log: a revocation (or a station disabled) is bound by a signed checkpoint
# soon after, with the server running (its lease tick) or not (the server signs one at start, before it serves), and
# a witness cosigns it. The attacker then plays the lost disk: the CA's database gone, the copy from before the
# revocation restored onto the folder as it was backed up, with the witness's state.note: ROLLED BACK (without a
# checkpoint over the revocation the witness's checkpoint is one the copy extends, and the revocation is undone
# silently). An idle server signs no checkpoint (the checkpoints' and the cosignatures' own audit entries call for
# none). SQLite and PostgreSQL; the restore on SQLite only (restore --from is SQLite's).
# Usage: checkpoint_changes.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
DB=$CA/camtrust.db
ca_create "$CA" >/dev/null
W1=$WORK/w1
"$CA_BIN" witness init --dir "$W1" --name witness.example.org/w1 >/dev/null
cp "$W1/witness.vkey" "$CA/witnesses.vkeys"
sed -i 's/^node.lease_ms = .*/node.lease_ms = 1000/' "$CA/camtrust-ca.conf" # a lease tick of 200 ms
station_with_order line1 CAM0001 CAM0002 CAM0003
WITH_HTTP=1 start_ca "$CA"
HTTP=http://127.0.0.1:$HTTP_PORT
enroll() {
  make_csr "$WORK/$1" "/serialNumber=$1/CN=x"
  est_post simpleenroll "$WORK/$1.b64" "$WORK/$1.p7b64" --cert "$WORK/station.pem" --key "$WORK/station.key" >/dev/null
  base64 -d "$WORK/$1.p7b64" | openssl pkcs7 -inform DER -print_certs 2>/dev/null | openssl x509 -noout -serial |
    cut -d= -f2
}
start_witness() {
  "$CA_BIN" witness --dir "$W1" --log "$HTTP" --vkey "$CA/log.vkey" --interval 0.2 2>>"$WORK/witness.log" &
  BG_PIDS+=($!)
}
audit_entries() { sed -n 4p "$1" | awk '$1 == "camtrust-audit" { print $2 }'; }
# wait_covered SEQ FILE: until GET /log/checkpoint binds audit entry SEQ and carries w1's cosignature (at most 30 s)
wait_covered() {
  for _ in $(seq 1 300); do
    curl -s -o "$2" --max-time 5 "$HTTP/log/checkpoint" || true
    [ "$(audit_entries "$2")" -ge "$1" ] 2>/dev/null && grep -q '^— witness\.example\.org/w1 ' "$2" && return 0
    sleep 0.1
  done
  return 1
}
checkpoints() { sql "$DB" "select count(*) from log_checkpoints"; }

SERIAL1=$(enroll CAM0001)
SERIAL2=$(enroll CAM0002)
start_witness
check "the witness cosigns the checkpoint of two cameras" wait_covered "$(sql "$DB" "select max(seq) from audit where action = 'cert.issue'")" "$WORK/two.note"
check_eq "... a checkpoint of 2 certificates" 2 "$(sed -n 2p "$WORK/two.note")"
if on_sqlite; then # the copy an operator takes now, with the folder as it is (its checkpoint.note)
  "$CA_BIN" backup --dir "$CA" --out "$WORK/before.db" >/dev/null
  cp "$CA/checkpoint.note" "$WORK/before-checkpoint.note"
fi

# ---- (1) a revocation while the server runs: a checkpoint binds it, and the witness cosigns it ----
"$CA_BIN" revoke "$SERIAL1" --dir "$CA" --reason keyCompromise >/dev/null
REVOKED=$(sql "$DB" "select max(seq) from audit where action = 'cert.revoke'")
check "a revocation with the server running: a checkpoint binding its audit entry ($REVOKED), cosigned by the witness" \
  wait_covered "$REVOKED" "$WORK/revoked.note"
check_eq "... over the same log (the revocation grew none)" 2 "$(sed -n 2p "$WORK/revoked.note")"
check "... which the database extends (audit verify --checkpoint)" "$CA_BIN" audit verify --dir "$CA" --checkpoint "$WORK/revoked.note"

# ---- no storm: idle (the witness polling on), the server signs no checkpoint over ten lease ticks and more ----
sleep 1
before=$(checkpoints)
sleep 3
check_eq "an idle server signs no checkpoint (the checkpoints' and the cosignatures' own entries call for none)" \
  "$before" "$(checkpoints)"
check "... and logged no signing error" bash -c "! grep -q 'event=log_sth' '$WORK/server.log'"

# ---- (3) a revocation and a station disabled while no server runs: the server's first checkpoint binds them ----
stop_bg
cleanup_server
"$CA_BIN" revoke "$SERIAL2" --dir "$CA" --reason keyCompromise >/dev/null
"$CA_BIN" station disable line1 --dir "$CA" >/dev/null
CHANGED=$(sql "$DB" "select max(seq) from audit where action = 'station.disable'")
check "... (no checkpoint binds them yet)" test "$(sql "$DB" "select max(audit_entries) from log_checkpoints")" -lt "$CHANGED"
WITH_HTTP=1 start_ca "$CA"
HTTP=http://127.0.0.1:$HTTP_PORT
curl -s -o "$WORK/first.note" --max-time 5 "$HTTP/log/checkpoint"
check "changes made with no server running: the first checkpoint the server serves binds them (signed at start)" \
  test "$(audit_entries "$WORK/first.note")" -ge "$CHANGED"
start_witness
check "... and the witness cosigns it" wait_covered "$CHANGED" "$WORK/changed.note"
stop_bg
cleanup_server
check "the witness kept it" test "$(audit_entries "$W1/state.note")" -ge "$CHANGED"

# ---- (2) the lost disk: the database gone, the copy from before the revocations restored with the folder as backed
# up; the witness's checkpoint names the rollback ----
if on_sqlite; then
  mkdir "$WORK/lost"
  mv "$DB" "$WORK/lost/"
  mv "$DB"-* "$WORK/lost/" 2>/dev/null || true
  cp "$WORK/before-checkpoint.note" "$CA/checkpoint.note"
  rc=0; out=$("$CA_BIN" restore --dir "$CA" --from "$WORK/before.db" --checkpoint "$W1/state.note" 2>&1) || rc=$?
  check_eq "the copy from before the revocations, restored with the witness's state.note: exit 1, one line naming the rollback" \
    "1 1" "$rc $(grep -c "^ROLLED BACK: the checkpoint kept in $W1/state.note (size 2, audit entries $(audit_entries "$W1/state.note")): .*(truncated or rolled back)" <<<"$out")"
  serve_refuses "... the restored copy" "restore --accept-rollback"
fi
finish
