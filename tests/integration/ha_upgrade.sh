#!/usr/bin/env bash
# A rolling upgrade: two nodes of one build serve one database, then a newer build migrates its schema under them
# (played as that build's migration would commit it: a column added and the schema version moved past this build's,
# in one transaction). From then on the running nodes write nothing: each write transaction reads the version under
# the writers' lock, so the very next enrollment at either node is answered 503 with the reason, nothing of it is
# written, each node says so in one log line (schema_newer), and a node restarted is refused at start.
# On PostgreSQL with CAMTRUST_TEST_DB=postgresql under tests/helpers/pg.sh, else two processes on one SQLite file.
# Usage: ha_upgrade.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

LEASE_MS=2000 # node.lease_ms: a few lease ticks pass within the test
CA=$WORK/ca
ca_create "$CA" >/dev/null
sed -i "s/^node.lease_ms = .*/node.lease_ms = $LEASE_MS/" "$CA/camtrust-ca.conf"
station_with_order line-up UP1 UP2 UP3 UP4
. "$(dirname "$0")/ha_lib.sh"
enroll_at() { # enroll_at PORT SERIAL: that node enrolls SERIAL; prints the HTTP status ($WORK/SERIAL.out: the body)
  make_csr "$WORK/$2" "/serialNumber=$2/CN=x"
  PORT=$1 est_post simpleenroll "$WORK/$2.b64" "$WORK/$2.out" --cert "$WORK/station.pem" --key "$WORK/station.key"
}

start_node node-a
start_node node-b
check_eq "node-a enrolls" 200 "$(enroll_at "$PORT_node_a" UP1)"
check_eq "node-b enrolls" 200 "$(enroll_at "$PORT_node_b" UP2)"

version=$(sql "$CA/camtrust.db" "$(on_sqlite && echo 'pragma user_version' || echo 'select version from camtrust_schema')")
newer=$((version + 1))
if on_sqlite; then
  sqlite3 "$CA/camtrust.db" "PRAGMA busy_timeout = 10000; BEGIN IMMEDIATE;
    ALTER TABLE certificates ADD COLUMN newer_build INTEGER; PRAGMA user_version = $newer; COMMIT;"
else
  sql "$CA/camtrust.db" "BEGIN; SELECT pg_advisory_xact_lock(7162819382734521001);
    ALTER TABLE certificates ADD COLUMN newer_build BIGINT; UPDATE camtrust_schema SET version = $newer; COMMIT;" >/dev/null
fi
certs=$(sql "$CA/camtrust.db" "select count(*) from certificates")
check_eq "a newer build migrated (schema $version -> $newer): node-a's next enrollment answers 503" 503 \
  "$(enroll_at "$PORT_node_a" UP3)"
check "... with the reason" grep -q "database schema $newer is newer than this build ($version)" "$WORK/UP3.out"
check_eq "... node-b's too" 503 "$(enroll_at "$PORT_node_b" UP4)"
check_eq "... nothing of them was written" "$certs" "$(sql "$CA/camtrust.db" "select count(*) from certificates")"
sleep $((3 * LEASE_MS / 5 / 1000 + 1)) # a few lease ticks, each a write transaction refused
check_eq "... and again later" "503 503" "$(enroll_at "$PORT_node_a" UP3) $(enroll_at "$PORT_node_b" UP4)"
for n in node-a node-b; do
  check_eq "$n said it once (schema_newer), no lease error lines" "1 0" \
    "$(grep -c "event=schema_newer version=$newer build=$version" "$WORK/$n.log") $(grep -c 'event=lease ' "$WORK/$n.log")"
done
check_eq "... no certificate of UP3 or UP4 in the database" 0 \
  "$(sql "$CA/camtrust.db" "select count(*) from certificates where device_serial in ('UP3', 'UP4')")"
stop_bg
serve_refuses "a node of the older build restarted" "database schema $newer is newer than this build"
finish
