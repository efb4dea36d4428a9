#!/usr/bin/env bash
# The state tables rebuilt from the audit (issue 11): an attacker with write access to camtrust.db (not the token)
# edits the tables with sqlite3, the triggers that forbid it dropped first. `audit verify` names each edited row in
# one line and the server refuses to start; an untouched CA verifies. Usage: audit_state.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
DB=$CA/camtrust.db
ca_create "$CA" >/dev/null
for s in line1 line2; do
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/$s.key" -subj "/CN=$s" -out "$WORK/$s.csr" 2>/dev/null
  "$CA_BIN" station add --dir "$CA" --name "$s" --csr "$WORK/$s.csr" --out "$WORK/$s.pem" >/dev/null
done
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/alice.key" -subj "/CN=alice" -out "$WORK/alice.csr" 2>/dev/null
"$CA_BIN" officer add --dir "$CA" --name alice --role auditor --csr "$WORK/alice.csr" --out "$WORK/alice.pem" >/dev/null
printf 'CAM0001\nCAM0002\nCAM0003\n' >"$WORK/serials.txt"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX100 --serials "$WORK/serials.txt" >/dev/null
start_ca "$CA"
for s in CAM0001 CAM0002; do
  make_csr "$WORK/$s" "/serialNumber=$s/CN=x"
  est_post simpleenroll "$WORK/$s.b64" "$WORK/$s.p7b64" --cert "$WORK/line1.pem" --key "$WORK/line1.key" >/dev/null
done
cleanup_server
check_eq "two cameras enrolled" 2 "$(sql "$DB" "select count(*) from certificates where profile = 'device'")"
C1=$(sql "$DB" "select cert_serial_hex from certificates where device_serial = 'CAM0001' and profile = 'device'")
C2=$(sql "$DB" "select cert_serial_hex from certificates where device_serial = 'CAM0002' and profile = 'device'")
"$CA_BIN" revoke --dir "$CA" "$C1" --reason keyCompromise >/dev/null
"$CA_BIN" station disable --dir "$CA" line2 >/dev/null
"$CA_BIN" crl device --dir "$CA" --out "$WORK/device.crl" >/dev/null
CRL=$(sql "$DB" "select crl_number from revocation_state")
REVOKED_AT=$(sql "$DB" "select strftime('%Y-%m-%dT%H:%M:%SZ', revoked_at, 'unixepoch') from certificates where cert_serial_hex = '$C1'")

OUT=$("$CA_BIN" audit verify --dir "$CA" 2>&1) || true
check "an untouched CA verifies: the state tables match the audit" grep -q '^state tables match the audit: ' <<<"$OUT"
check "... and the issuance log still verifies after it" grep -q '^issuance log intact' <<<"$OUT"

# A pristine copy to put back before each edit (the WAL folded in first).
sqlite3 "$DB" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
cp "$DB" "$WORK/pristine.db"

# tamper WHAT SQL LINE: puts the pristine database back, edits it with sqlite3, then expects `audit verify` to fail
# with LINE (after "state tables BROKEN: ") and `serve` to refuse to start with it.
tamper() {
  local what=$1 edit=$2 line=$3 out rc
  rm -f "$DB-wal" "$DB-shm"
  cp "$WORK/pristine.db" "$DB"
  sqlite3 "$DB" "$edit"
  rc=0; out=$("$CA_BIN" audit verify --dir "$CA" 2>&1) || rc=$?
  if [ "$rc" -ne 0 ] && grep -qF "state tables BROKEN: $line" <<<"$out"; then ok "$what: audit verify names it"
  else not_ok "$what: audit verify (exit $rc): $out"; fi
  rc=0; out=$(timeout 30 "$CA_BIN" serve --dir "$CA" --listen 127.0.0.1:0 --http-listen '' 2>&1) || rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -qF "camtrust-ca: state differs from the audit: $line" <<<"$out" &&
    ! grep -q 'event=listening' <<<"$out"; then ok "$what: the server refuses to start"
  else not_ok "$what: serve (exit $rc): $out"; fi
}

tamper "a certificate un-revoked" \
  "DROP TRIGGER certificates_revocation_final; UPDATE certificates SET status = 'valid', revoked_at = NULL, revocation_reason = NULL WHERE cert_serial_hex = '$C1'" \
  "certificate $C1: revoked in the audit (keyCompromise at $REVOKED_AT), valid in the table (un-revoked?)"
tamper "a revocation deleted (with its row)" \
  "DELETE FROM certificates WHERE cert_serial_hex = '$C1'" \
  "certificate $C1: revoked in the audit (entry "
tamper "a certificate revoked in the table alone" \
  "UPDATE certificates SET status = 'revoked', revoked_at = 1, revocation_reason = 1 WHERE cert_serial_hex = '$C2'" \
  "certificate $C2: valid in the audit, revoked in the table"
tamper "a disabled station re-enabled" \
  "UPDATE stations SET enabled = 1 WHERE name = 'line2'" \
  "station line2: disabled in the audit, enabled in the table"
tamper "an auditor made officer" \
  "UPDATE officers SET role = 'officer' WHERE name = 'alice'" \
  "officer alice: auditor in the audit, officer in the table"
tamper "a serial added to an order" \
  "DROP TRIGGER order_serials_one_open; INSERT INTO order_serials (order_id, serial) VALUES (1, 'CAM0666')" \
  "order 1: 3 serials in the audit, 4 in the table (added or removed?)"
tamper "a CRL number lowered" \
  "UPDATE revocation_state SET crl_number = crl_number - 1" \
  "device CRL number: $CRL in the audit, $((CRL - 1)) in the table"
tamper "a forged certificate row" \
  "INSERT INTO certificates (cert_serial_hex, device_serial, profile, subject, not_before, not_after, spki_sha256, der, issued_at) SELECT '0badc0de', 'CAM0003', 'device', subject, not_before, not_after, spki_sha256, der, issued_at FROM certificates WHERE cert_serial_hex = '$C2'" \
  "certificate 0badc0de: not in the audit, valid in the table (inserted?)"

# Put back, the CA serves again and verifies.
rm -f "$DB-wal" "$DB-shm"
cp "$WORK/pristine.db" "$DB"
check "the database put back verifies" "$CA_BIN" audit verify --dir "$CA"
finish
