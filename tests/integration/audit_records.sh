#!/usr/bin/env bash
# Records the rebuild did not cover before (issue 11): an officer's role change, the renewed operational
# certificates, the checkpoint key's certificate. Each is played by an attacker with write access to the CA folder
# (not the token): `audit verify` names what differs. Usage: audit_records.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
DB=$CA/camtrust.db
"$CA_BIN" init --dir "$CA" >/dev/null
for o in alice bob; do
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/$o.key" -subj "/CN=$o" -out "$WORK/$o.csr" 2>/dev/null
done
"$CA_BIN" officer add --dir "$CA" --name alice --role officer --csr "$WORK/alice.csr" --out "$WORK/alice.pem" >/dev/null
"$CA_BIN" officer add --dir "$CA" --name bob --role officer --csr "$WORK/bob.csr" --out "$WORK/bob.pem" >/dev/null

# expect_error WHAT LINE CMD...: fails with exactly one line, LINE, on stderr and nothing recorded.
expect_error() {
  local what=$1 line=$2 rc=0 err before after; shift 2
  before=$(sql "$DB" "select count(*) from audit")
  err=$("$@" 2>&1 >/dev/null) || rc=$?
  after=$(sql "$DB" "select count(*) from audit")
  if [ "$rc" -ne 0 ] && [ "$err" = "$line" ] && [ "$before" = "$after" ]; then ok "$what"
  else not_ok "$what (exit $rc, audit $before -> $after): $err"; fi
}

# ---- officer role ----
OUT=$("$CA_BIN" officer role --dir "$CA" --name bob --role auditor)
check_eq "officer role: bob made auditor" "officer bob is now auditor" "$OUT"
check_eq "... in the table" auditor "$(sql "$DB" "select role from officers where name = 'bob'")"
check_eq "... audited as officer.role, v=2" "v=2 role=auditor" \
  "$(sql "$DB" "select detail from audit where action = 'officer.role' and subject = 'bob' and actor = 'cli'")"
OUT=$("$CA_BIN" audit verify --dir "$CA" 2>&1) || true
check "... and audit verify stays clean" grep -q '^state tables match the audit: ' <<<"$OUT"
expect_error "an unknown officer: one line, nothing recorded" "camtrust-ca: no officer named 'carol'" \
  "$CA_BIN" officer role --dir "$CA" --name carol --role auditor
expect_error "a bad role: one line, nothing recorded" "camtrust-ca: role 'root' is not one of: auditor, officer" \
  "$CA_BIN" officer role --dir "$CA" --name bob --role root
expect_error "the role it has already: one line, nothing recorded" "camtrust-ca: officer bob is auditor already" \
  "$CA_BIN" officer role --dir "$CA" --name bob --role auditor
expect_error "a bad name: one line, nothing recorded" \
  "camtrust-ca: officer name 'b b': use 1-63 letters, digits, '-', '_', '.'" \
  "$CA_BIN" officer role --dir "$CA" --name 'b b' --role auditor
expect_error "no --role: one line, nothing recorded" "camtrust-ca: --role is required" \
  "$CA_BIN" officer role --dir "$CA" --name bob

# The attacker makes the auditor an officer again in the table alone.
sqlite3 "$DB" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
cp "$DB" "$WORK/pristine.db"
sqlite3 "$DB" "UPDATE officers SET role = 'officer' WHERE name = 'bob'"
rc=0; OUT=$("$CA_BIN" audit verify --dir "$CA" 2>&1) || rc=$?
if [ "$rc" -ne 0 ] && grep -qF "state tables BROKEN: officer bob: auditor in the audit, officer in the table" <<<"$OUT"
then ok "an auditor made officer in the table after officer.role: named"
else not_ok "role edit after officer.role (exit $rc): $OUT"; fi
cp "$WORK/pristine.db" "$DB"; rm -f "$DB-wal" "$DB-shm"
# ... and the role change back to officer recorded, then the table edited to auditor: named the other way.
"$CA_BIN" officer role --dir "$CA" --name bob --role officer >/dev/null
sqlite3 "$DB" "UPDATE officers SET role = 'auditor' WHERE name = 'bob'"
rc=0; OUT=$("$CA_BIN" audit verify --dir "$CA" 2>&1) || rc=$?
if [ "$rc" -ne 0 ] && grep -qF "state tables BROKEN: officer bob: officer in the audit, auditor in the table" <<<"$OUT"
then ok "the newest role change is the one compared"
else not_ok "role after two changes (exit $rc): $OUT"; fi
sqlite3 "$DB" "UPDATE officers SET role = 'officer' WHERE name = 'bob'"

finish
