#!/usr/bin/env bash
# A unique rule refusing a request's row (PostgreSQL's SQLSTATE 23505, SQLite's UNIQUE constraint) is a 409 to its
# client: the detail told is "exists already", not the database's text, which names the schema's constraints, indexes
# and tables; that text is the operator's, in the server's log (event=db.exists). Played by someone who writes the
# database: a unique index of a chosen name on the issuance log's rows (one row at most), then a station's
# enrollment, whose log row it refuses; and the CLI's refusal of an order listing a serial twice, which names the rule's
# refusal itself. Run on SQLite and on PostgreSQL (pg.sh run, CAMTRUST_TEST_DB=postgresql).
# Usage: db_exists.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
ca_create "$CA" >/dev/null
station_with_order line1 EXI0001 EXI0002
STATION=(--cert "$WORK/station.pem" --key "$WORK/station.key")
start_ca "$CA"
make_csr "$WORK/EXI0001" "/serialNumber=EXI0001/CN=x"
check_eq "a station enrolls a camera" 200 "$(est_post simpleenroll "$WORK/EXI0001.b64" "$WORK/EXI0001.out" "${STATION[@]}")"
INDEX="CREATE UNIQUE INDEX secret_one_leaf ON log_leaves ((cert_serial_hex IS NOT NULL))"
if on_sqlite; then sqlite3 "$CA/camtrust.db" "$INDEX"; else sql "$CA/camtrust.db" "$INDEX" >/dev/null; fi
make_csr "$WORK/EXI0002" "/serialNumber=EXI0002/CN=x"
code=$(est_post simpleenroll "$WORK/EXI0002.b64" "$WORK/EXI0002.out" "${STATION[@]}")
check "the next enrollment, its log row refused by the index: 409 saying it exists already ($code $(head -c 200 "$WORK/EXI0002.out"))" \
  bash -c '[ "$0" = 409 ] && grep -q "^409 .*exists already" "$1"' "$code" "$WORK/EXI0002.out"
check "... naming none of the schema's names" bash -c '! grep -qiE "secret_one_leaf|log_leaves|constraint|duplicate" "$0"' \
  "$WORK/EXI0002.out"
check "... which the server's log has" grep -q 'event=db.exists .*secret_one_leaf' "$WORK/server.log"
check_eq "... nothing recorded for it" 0 "$(sql "$CA/camtrust.db" "select count(*) from certificates where device_serial = 'EXI0002'")"
# A refusal its caller names (an order listing a serial twice: the order's serials' primary key) is that caller's
# message alone: the unique rule's text is no news to the operator (nor the log's, which the next line would repeat).
printf 'EXI0003\nEXI0003\n' >"$WORK/twice.txt"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX100 --serials "$WORK/twice.txt" >"$WORK/twice.out" 2>&1 || true
check "an order listing a serial twice: the CLI says so ($(tr '\n' ' ' <"$WORK/twice.out"))" \
  grep -q "serial 'EXI0003' is listed twice" "$WORK/twice.out"
check "... and no db.exists line" bash -c '! grep -q "event=db.exists" "$0"' "$WORK/twice.out"
cleanup_server
finish
