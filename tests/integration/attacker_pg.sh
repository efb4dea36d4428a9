#!/usr/bin/env bash
# attacker.sh's attacker on PostgreSQL: write access to the CA's database (psql as the CA's own role, the triggers
# off for the session: session_replication_role = replica), none to its token. The same edits, each on a fresh copy
# of the good database, named by `audit verify` and by `serve` refusing to start; the tail cut, which only an
# officer's kept checkpoint shows. (The forged chains, stations and witness stay in attacker.sh: they play the same
# code.) Runs under tests/helpers/pg.sh with CAMTRUST_TEST_DB=postgresql. Usage: attacker_pg.sh CA_BIN
CA_BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
if [ "${CAMTRUST_TEST_DB:-}" != postgresql ] || [ -z "${CAMTRUST_TEST_PG:-}" ]; then
  echo "SKIP: needs tests/helpers/pg.sh run and CAMTRUST_TEST_DB=postgresql"; exit 77
fi

CA=$WORK/ca
DB=$CA/camtrust.db # only names the folder for lib.sh's sql, which reads the config
ca_create "$CA" >/dev/null
CONF=$CA/camtrust-ca.conf
URL=$(sed -n 's/^db.url = //p' "$CONF")
PWF=$(sed -n 's/^db.password_file = //p' "$CONF")
DBNAME=$(sed -n 's/.*dbname=\([^ ]*\).*/\1/p' <<<"$URL")
[ -n "$DBNAME" ] || { echo "no dbname in db.url: $URL"; exit 1; }
ADMIN_URL=${URL/dbname=$DBNAME/dbname=postgres}
# psql_as URL: psql as the CA's own role (its password file, if any); SQL on stdin or -c.
psql_as() { local url=$1; shift; PGPASSWORD=$([ -n "$PWF" ] && cat "$PWF") psql -X -q -v ON_ERROR_STOP=1 "$url" "$@"; }
# Copies of the database by CREATE DATABASE ... TEMPLATE (no client may be connected to the source).
keep() { psql_as "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1 TEMPLATE $DBNAME"; }
# The attacker writes the folder too: the CA's own checkpoint.note goes with the copy put back (as attacker.sh).
restore() {
  rm -f "$CA/checkpoint.note"
  psql_as "$ADMIN_URL" -c "DROP DATABASE $DBNAME WITH (FORCE)" -c "CREATE DATABASE $DBNAME TEMPLATE $1"
}

station_with_order line2 CAM0001 CAM0002 CAM0003 CAM0004 CAM0005 CAM0006 CAM0007
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/x.key" -subj /CN=x -out "$WORK/x.csr" 2>/dev/null
"$CA_BIN" officer add --dir "$CA" --name alice --role auditor --csr "$WORK/x.csr" --out "$WORK/alice.pem" >/dev/null
"$CA_BIN" station add --dir "$CA" --name line3 --csr "$WORK/x.csr" --out "$WORK/line3.pem" >/dev/null
enroll() { for s in "$@"; do
  make_csr "$WORK/$s" "/serialNumber=$s/CN=x"
  est_post simpleenroll "$WORK/$s.b64" "$WORK/$s.p7b64" --cert "$WORK/station.pem" --key "$WORK/station.key" >/dev/null
done; }
start_ca "$CA"
enroll CAM0001 CAM0002 CAM0003 CAM0004
cleanup_server
check_eq "4 cameras enrolled" 4 "$(sql "$DB" "select count(*) from log_leaves")"
revoke_and_keep keep ct_unrevoked
REVOKED_AT=$(sql "$DB" "select to_char(to_timestamp(revoked_at) at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
                        from certificates where cert_serial_hex = '$C1'")
out=$("$CA_BIN" audit verify --dir "$CA" --checkpoint "$KEPT" 2>&1) || true
check "the untouched CA verifies, state and log included" grep -q '^state tables match the audit: ' <<<"$out"
check "... and extends the officer's checkpoint" grep -q "^checkpoint $KEPT extended: size 4" <<<"$out"
KEPT_SEQ=$(sed -n "s|^checkpoint $KEPT extended: size 4, audit entries \\([0-9]*\\).*|\\1|p" <<<"$out") # the entries it binds
keep ct_good
LAST=$(sql "$DB" "select max(seq) from audit")
MID=$(sql "$DB" "select min(seq) from audit where action = 'cert.issue'")
[ -n "$MID" ] && [ "$MID" -lt "$LAST" ] || { echo "no cert.issue entry before the last ($MID, $LAST)"; exit 1; }

verify_blind() { # verify_blind WHAT: audit verify alone passes (only a kept checkpoint contradicts the database)
  local rc=0 out; out=$("$CA_BIN" audit verify --dir "$CA" 2>&1) || rc=$?
  if [ "$rc" = 0 ]; then ok "$1: audit verify alone cannot see it (exit 0)"; else not_ok "$1: audit verify alone (exit $rc): $out"; fi
}
# sql_edit SQL: the attacker's statements in one transaction, the triggers (and foreign keys) off for the session.
sql_edit() { psql_as "$URL" <<<"SET session_replication_role = replica; BEGIN; $1; COMMIT;"; }
# attack WHAT TEXT EDIT...: on a fresh copy of the good database, EDIT, then audit verify and the server name TEXT.
attack() {
  local what=$1 text=$2; shift 2
  restore ct_good
  "$@"
  verify_says "$what" "$text"
  serve_refuses "$what" "$text"
}

rc=0; out=$(restore ct_good && psql_as "$URL" -c "UPDATE audit SET detail = 'forged' WHERE seq = $MID" 2>&1) || rc=$?
check_eq "with the triggers on, psql's edit of the audit is refused" "1 audit log is append-only" \
  "$rc $(grep -o 'audit log is append-only' <<<"$out")"

# ---- the audit chain: only the token's MAC key writes an entry ----
MAC="MAC does not match (not written by this CA's key"
attack "an audit entry edited" "entry $MID: $MAC" sql_edit "UPDATE audit SET detail = 'forged' WHERE seq = $MID"
attack "an audit entry deleted" "entry $MID missing (deleted)" sql_edit "DELETE FROM audit WHERE seq = $MID"
attack "the chain emptied" "the audit has no audit.state entry to rebuild from" sql_edit "DELETE FROM audit"

# ---- the state the CA acts on, rebuilt from the audit ----
state_attacks

# ---- the tail cut: certificates, leaves, tree heads, checkpoints, audit entries; what is left is whole (cut
# before the revocation, whose state would otherwise still show) ----
restore ct_unrevoked
CUT_SQL=$(tail_cut_sql 3)
sql_edit "$CUT_SQL"
check_eq "the tail cut leaves 3 certificates in the log" 3 "$(sql "$DB" "select count(*) from log_leaves")"
verify_blind "the tail cut"
check "... which checks a whole log of 3" grep -q '^issuance log intact: 3 leaves' <<<"$("$CA_BIN" audit verify --dir "$CA" 2>&1)"
verify_says "the tail cut" \
  "checkpoint $KEPT (size 4, audit entries $KEPT_SEQ): the audit chain has no entry $KEPT_SEQ (truncated or rolled back)" --checkpoint "$KEPT"

# The honest database back: the detections above are not stuck failures.
restore ct_good
check "the good database: audit verify --checkpoint passes" "$CA_BIN" audit verify --dir "$CA" --checkpoint "$KEPT"
finish
