#!/usr/bin/env bash
# attacker.sh's attacker on PostgreSQL: write access to the CA's database (psql as the CA's own role, the triggers
# off for the session: session_replication_role = replica) and its folder, none to its token. attacker_lib.sh's
# cases, as on SQLite: every edit and forged chain named by `audit verify` and by `serve` refusing to start, the tail
# cut and older copies put back (CREATE DATABASE ... TEMPLATE) caught by an officer's kept checkpoint, the CA's
# checkpoint.note, station A's `log check`, the witness and station B's `log compare`. Runs under
# tests/helpers/pg.sh with CAMTRUST_TEST_DB=postgresql. Usage: attacker_pg.sh BUILD_DIR
BUILD=$1
CA_BIN=$BUILD/ca/camtrust-ca
STATION_BIN=$BUILD/provision/camtrust-station
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/attacker_lib.sh"
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
# keep NAME: a copy of the database, ct_NAME, by CREATE DATABASE ... TEMPLATE (no client may be connected to the
# source); restore NAME puts it back, the CA's checkpoint.note removed.
keep() { psql_as "$ADMIN_URL" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS ct_$1" -c "CREATE DATABASE ct_$1 TEMPLATE $DBNAME"; }
restore() {
  rm -f "$CA/checkpoint.note"
  psql_as "$ADMIN_URL" -c "DROP DATABASE $DBNAME WITH (FORCE)" -c "CREATE DATABASE $DBNAME TEMPLATE ct_$1"
}
# sql_edit SQL: the attacker's statements in one transaction, the triggers (and foreign keys) off for the session.
sql_edit() { psql_as "$URL" <<<"SET session_replication_role = replica; BEGIN; $1; COMMIT;"; }

attacker_setup
attacker_history
rc=0; out=$(restore good && psql_as "$URL" -c "UPDATE audit SET detail = 'forged' WHERE seq = $MID" 2>&1) || rc=$?
check_eq "with the triggers on, psql's edit of the audit is refused" "1 audit log is append-only" \
  "$rc $(grep -o 'audit log is append-only' <<<"$out")"
chain_attacks
state_attacks
crl_attacks
forged_leaf_attack
tail_cut_attacks
older_copy_attacks
honest_back
finish
