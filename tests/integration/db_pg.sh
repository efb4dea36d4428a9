#!/usr/bin/env bash
# The PostgreSQL backend end to end (run under tests/helpers/pg.sh): a SQLite CA copied into PostgreSQL with
# `db migrate-to` and proved (audit verify before and after, the same checkpoint), killed inside its migrations and
# run again, then served from it; the password from a pipe (kept in the folder); refusals (a non-empty target, a password in the URL, another CA's database);
# PostgreSQL down at start and mid-request (503 with the reason, nothing half-written, the node serving again once it
# is back).
# Usage: pg.sh run db_pg.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"
unset CAMTRUST_TEST_DB # the CAs start on SQLite, as operators' do
PSQL=(psql -X -q -At -v ON_ERROR_STOP=1)
PW_ROLE="host=127.0.0.1 port=$(cat "$CAMTRUST_TEST_PG_BASE/port") user=camtrust_pw"
newdb() { # a database owned by the password role: its URL (no password in it)
  local name=mig_$RANDOM$RANDOM
  "${PSQL[@]}" "$CAMTRUST_TEST_PG dbname=postgres" -c "CREATE DATABASE $name OWNER camtrust_pw"
  echo "$PW_ROLE dbname=$name"
}
enroll() { # enroll SERIAL NAME: the station enrolls SERIAL; prints the HTTP status
  make_csr "$WORK/$2" "/serialNumber=$1/CN=x"
  est_post simpleenroll "$WORK/$2.b64" "$WORK/$2.out" --cert "$WORK/station.pem" --key "$WORK/station.key"
}

CA=$WORK/ca
ca_create "$CA" >/dev/null
station_with_order line1 CAM0001 CAM0002 CAM0003 CAM0004 CAM0005
start_ca "$CA"
check_eq "SQLite: a camera enrolls" 200 "$(enroll CAM0001 c1)"
check_eq "SQLite: another one" 200 "$(enroll CAM0002 c2)"
cleanup_server
"$CA_BIN" revoke --dir "$CA" "$(sql "$CA/camtrust.db" "select cert_serial_hex from certificates where device_serial = 'CAM0002'")" \
  --reason keyCompromise >/dev/null

# The copy.
URL=$(newdb)
cp "$CAMTRUST_TEST_PG_BASE/pw" "$WORK/pgpass" && chmod 600 "$WORK/pgpass"
rc=0; out=$("$CA_BIN" db migrate-to --dir "$CA" --url "$URL password=x" --password-file "$WORK/pgpass" 2>&1) || rc=$?
check "a password in --url is refused" bash -c "[ $rc != 0 ] && grep -q 'db.url holds a password' <<<\"\$0\"" "$out"
check "... the folder stays on SQLite" grep -q '^db.backend = sqlite' "$CA/camtrust-ca.conf"
# While the CA serves, what it issued after the copy would be lost: refused.
start_ca "$CA"
rc=0; out=$("$CA_BIN" db migrate-to --dir "$CA" --url "$URL" --password-file "$WORK/pgpass" 2>&1) || rc=$?
check "migrate-to while the CA serves is refused" bash -c "[ $rc != 0 ] && grep -q 'is being served: stop its server first' <<<\"\$0\"" "$out"
check_eq "... the target stays empty" 0 "$(PGPASSWORD=$(cat "$WORK/pgpass") "${PSQL[@]}" "$URL" -c "select count(*) from pg_tables where schemaname = current_schema()")"
cleanup_server
# Killed inside the target's migrations (failpoint "migration 9": its SQL ran, the process dies there): the schema
# and the copy are one transaction, so the target holds nothing and the run again below finds it empty.
rc=0; CAMTRUST_FAILPOINT="migration 9" "$CA_BIN" db migrate-to --dir "$CA" --url "$URL" --password-file "$WORK/pgpass" \
  >"$WORK/killed.out" 2>&1 || rc=$?
check_eq "migrate-to killed inside the target's migrations" 137 "$rc"
check "... the folder stays on SQLite" grep -q '^db.backend = sqlite' "$CA/camtrust-ca.conf"
check_eq "... the target holds no table" 0 "$(PGPASSWORD=$(cat "$WORK/pgpass") "${PSQL[@]}" "$URL" -c "select count(*) from pg_tables where schemaname = current_schema()")"
# (the newest checkpoint now: the server signed one at start over the revocation made while none ran)
"$CA_BIN" log checkpoint --dir "$CA" >"$WORK/ckpt.before"
# Held between its switch to PostgreSQL and the copy's proof (failpoint migrate-to:switched; a failed proof would switch
# the folder back to SQLite): a serve started then is refused, though the config file was replaced by the switch.
CAMTRUST_FAILPOINT=migrate-to:switched CAMTRUST_FAILPOINT_RELEASE=$WORK/release \
  "$CA_BIN" db migrate-to --dir "$CA" --url "$URL" --password-file "$WORK/pgpass" >"$WORK/migrate.out" 2>&1 &
migrate=$!
for _ in $(seq 1 600); do grep -q 'event=failpoint_held' "$WORK/migrate.out" && break; sleep 0.05; done
check "db migrate-to (run again) held after its switch" grep -q '^db.backend = postgresql' "$CA/camtrust-ca.conf"
serve_refuses "... a serve started meanwhile" "is being restored or migrated: serve after that"
touch "$WORK/release"
rc=0; wait "$migrate" || rc=$?
out=$(cat "$WORK/migrate.out")
check_eq "db migrate-to (run again): exit 0" 0 "$rc"
check "... audit verify of the original" bash -c "grep -A1 'the CA in SQLite' <<<\"\$0\" | grep -q 'audit log intact'" "$out"
check "... and of the copy" bash -c "sed -n '/the copy in PostgreSQL/,\$p' <<<\"\$0\" | grep -q 'issuance log intact'" "$out"
check "... the same newest checkpoint" grep -q 'the same newest checkpoint' <<<"$out"
check "... the folder now names PostgreSQL" grep -q '^db.backend = postgresql' "$CA/camtrust-ca.conf"
check "... and the password file, not the password" bash -c "grep -q '^db.password_file = .*pgpass' '$CA/camtrust-ca.conf' && ! grep -qF \"\$(cat '$WORK/pgpass')\" '$CA/camtrust-ca.conf'"
check_eq "... every certificate copied" "$(sqlite3 -readonly "$CA/camtrust.db" "select count(*) from certificates")" \
  "$(PGPASSWORD=$(cat "$WORK/pgpass") "${PSQL[@]}" "$URL" -c "select count(*) from certificates")"
check_eq "... every audit entry, and one of the migration" "$(( $(sqlite3 -readonly "$CA/camtrust.db" "select count(*) from audit") + 1 ))" \
  "$(PGPASSWORD=$(cat "$WORK/pgpass") "${PSQL[@]}" "$URL" -c "select count(*) from audit")"
check "... audited with the rows copied" grep -q "^db.migrate_to|postgresql|rows=[0-9]* from=sqlite$" \
  <<<"$(PGPASSWORD=$(cat "$WORK/pgpass") "${PSQL[@]}" -F'|' "$URL" -c "select action, subject, detail from audit order by seq desc limit 1")"
"$CA_BIN" log checkpoint --dir "$CA" >"$WORK/ckpt.after"
check "log checkpoint from PostgreSQL is the one SQLite had" cmp -s "$WORK/ckpt.before" "$WORK/ckpt.after"
start_ca "$CA"
check_eq "PostgreSQL: a camera enrolls" 200 "$(enroll CAM0003 c3)"
check_eq "... a re-sent request gets the same certificate" 200 "$(est_post simpleenroll "$WORK/c3.b64" "$WORK/c3b.out" --cert "$WORK/station.pem" --key "$WORK/station.key")"
check "... byte for byte" cmp -s "$WORK/c3.out" "$WORK/c3b.out"

# PostgreSQL down mid-request: 503 with the reason, nothing written; back: the same node serves again.
certs=$(sql "$CA/camtrust.db" "select count(*) from certificates"); leaves=$(sql "$CA/camtrust.db" "select count(*) from log_leaves")
"$CAMTRUST_TEST_PG_CTL" stop
check_eq "PostgreSQL stopped: enrollment answers 503" 503 "$(enroll CAM0004 c4)"
check "... with the reason" grep -q 'PostgreSQL unavailable' "$WORK/c4.out"
check "... and nothing of libpq's text: no host, address or port ($(cat "$WORK/c4.out"))" \
  bash -c "! grep -qiE 'connection to server|127\.0\.0\.1|port|refused|socket' '$WORK/c4.out'"
check "... which the server's log has" grep -q 'event=db.unavailable backend=postgresql .*error=".*127\.0\.0\.1' "$WORK/server.log"
"$CAMTRUST_TEST_PG_CTL" start
check_eq "... nothing of it was written" "$certs $leaves" \
  "$(sql "$CA/camtrust.db" "select count(*) from certificates") $(sql "$CA/camtrust.db" "select count(*) from log_leaves")"
check_eq "PostgreSQL back: the same request enrolls" 200 "$(enroll CAM0004 c4b)"
check_eq "... one certificate for that serial, logged once" "1 1" \
  "$(sql "$CA/camtrust.db" "select count(*) from certificates where device_serial = 'CAM0004'") $(sql "$CA/camtrust.db" "select count(*) from log_leaves l join certificates c using (cert_serial_hex) where c.device_serial = 'CAM0004'")"
cleanup_server
check "audit verify on PostgreSQL" "$CA_BIN" audit verify --dir "$CA"

# PostgreSQL down at start: one clear line, nothing served.
"$CAMTRUST_TEST_PG_CTL" stop
serve_refuses "PostgreSQL stopped" "cannot connect to PostgreSQL"
"$CAMTRUST_TEST_PG_CTL" start

# A non-empty target is refused, and another CA's folder pointed at this database too.
CA2=$WORK/ca2
ca_create "$CA2" >/dev/null
rc=0; out=$("$CA_BIN" db migrate-to --dir "$CA2" --url "$URL" --password-file "$WORK/pgpass" 2>&1) || rc=$?
check "migrate-to into a database that holds a CA is refused" bash -c "[ $rc != 0 ] && grep -q 'not empty' <<<\"\$0\"" "$out"
check "... the folder stays on SQLite" grep -q '^db.backend = sqlite' "$CA2/camtrust-ca.conf"
cp "$CA2/camtrust-ca.conf" "$WORK/ca2.conf"
sed -i -e 's|^db.backend = .*|db.backend = postgresql|' -e "s|^db.url = .*|db.url = $URL|" \
  -e "s|^db.password_file = .*|db.password_file = $WORK/pgpass|" "$CA2/camtrust-ca.conf"
CA_SAVED=$CA; CA=$CA2
audit=$(sql "$CA_SAVED/camtrust.db" "select count(*) from audit")
serve_refuses "another CA's folder on this database" "this database belongs to CA $(cat "$CA_SAVED/ca-id")"
check_eq "... which wrote nothing into it" "$audit" "$(sql "$CA_SAVED/camtrust.db" "select count(*) from audit")"
CA=$CA_SAVED

# The password from a pipe (`--password-file <(vault read ...)`), as the other secret files take it: it was refused
# (realpath found no file), and its name (/dev/fd/N) would mean nothing to the server. Kept in the folder instead.
CA3=$WORK/ca3
ca_create "$CA3" >/dev/null
URL3=$(newdb)
# (run as root, in a folder of another user's as deploy/'s User=camtrust: the files it writes there are that user's)
OWNER=4242
[ "$(id -u)" = 0 ] && chown -R "$OWNER:$OWNER" "$CA3"
rc=0; out=$("$CA_BIN" db migrate-to --dir "$CA3" --url "$URL3" --password-file <(cat "$WORK/pgpass") 2>&1) || rc=$?
check_eq "migrate-to with the password from a pipe: exit 0" 0 "$rc"
[ "$rc" = 0 ] || echo "$out"
check "... proved (the same newest checkpoint)" grep -q 'the same newest checkpoint' <<<"$out"
check_eq "... the config names the password kept in the folder, not the pipe" "db.password_file = secrets/db.password" \
  "$(grep '^db.password_file' "$CA3/camtrust-ca.conf")"
check_eq "... which holds the password, owner only" "600 $(cat "$WORK/pgpass")" \
  "$(stat -c %a "$CA3/secrets/db.password") $(cat "$CA3/secrets/db.password")"
if [ "$(id -u)" = 0 ]; then
  check_eq "... the config it rewrote as root is the folder's owner's, owner only" "$OWNER:$OWNER 600" \
    "$(stat -c '%u:%g %a' "$CA3/camtrust-ca.conf")"
  check_eq "... and so is the password it kept" "$OWNER:$OWNER" "$(stat -c '%u:%g' "$CA3/secrets/db.password")"
fi
CA=$CA3
start_ca "$CA3"
check_eq "... and the CA serves from PostgreSQL with it" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 \
  --cacert "$CA3/ops-root.pem" "https://localhost:$PORT/.well-known/est/cacerts")"
cleanup_server
CA=$CA_SAVED
finish
