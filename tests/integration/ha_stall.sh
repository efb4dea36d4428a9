#!/usr/bin/env bash
# Several nodes on one PostgreSQL database, and a writer that holds the writers' lock and goes silent. Every write
# transaction takes one advisory lock; nothing bounded the wait for it, nor a session that held it and stalled, so one
# stalled holder stopped every node's writes (issuance, revocation, the lease) for ever. Played here:
#  - a psql session takes the lock and keeps its transaction open: an enrollment at node-a is answered 503 with the
#    reason (no libpq text) once its wait (3/5 of node.lease_ms) ran out, nothing of it written; a revocation by the
#    CLI is refused alike; the session gone, node-a enrolls again;
#  - node-b stalls inside an issuance holding the lock (failpoint db:issuance-written, then SIGSTOP): PostgreSQL ends
#    its session (idle 2/5 of the lease), node-a enrolls meanwhile, nothing of node-b's issuance is left; resumed,
#    node-b's stalled request gets a clean 503, and its next one reconnects and enrolls.
# PostgreSQL only (CAMTRUST_TEST_DB=postgresql under tests/helpers/pg.sh): SQLite has its own busy timeout.
# Usage: ha_stall.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"
if on_sqlite; then echo "# PostgreSQL only: the bounds are PostgreSQL's lock_timeout and idle session timeout"; exit 77; fi
LEASE_MS=5000 # node.lease_ms: a write waits 3 s for the lock, a stalled transaction is ended after 2 s idle
CA=$WORK/ca
ca_create "$CA" >/dev/null
sed -i "s/^node.lease_ms = .*/node.lease_ms = $LEASE_MS/" "$CA/camtrust-ca.conf"
station_with_order line-stall ST0 ST1 ST2 ST3
. "$(dirname "$0")/ha_lib.sh"
enroll_at() { # enroll_at PORT SERIAL [curl options]: that node enrolls SERIAL; prints the HTTP status (body: SERIAL.out)
  local port=$1 serial=$2; shift 2
  [ -e "$WORK/$serial.b64" ] || make_csr "$WORK/$serial" "/serialNumber=$serial/CN=x"
  PORT=$port est_post simpleenroll "$WORK/$serial.b64" "$WORK/$serial.out" --cert "$WORK/station.pem" \
    --key "$WORK/station.key" "$@"
}
written() { # written SERIAL: its certificates, log leaves and issuance audit entries
  sql "$CA/camtrust.db" "select (select count(*) from certificates where device_serial = '$1') || ' ' ||
    (select count(*) from log_leaves l join certificates c using (cert_serial_hex) where c.device_serial = '$1') || ' ' ||
    (select count(*) from audit where action = 'cert.issue' and subject = '$1')"
}

start_node node-a
NODE_ENV=(CAMTRUST_FAILPOINT=db:issuance-written CAMTRUST_FAILPOINT_RELEASE="$WORK/release")
start_node node-b
NODE_ENV=()
check_eq "node-a enrolls" 200 "$(enroll_at "$PORT_node_a" ST0)"
ST0_HEX=$(sql "$CA/camtrust.db" "select cert_serial_hex from certificates where device_serial = 'ST0'")

# A psql session holds the writers' lock in an open transaction (an operator's, a stuck tool's).
mkfifo "$WORK/psql.in"
psql -X -q -At "$(sed -n 's/^db.url = //p' "$CA/camtrust-ca.conf")" <"$WORK/psql.in" >"$WORK/psql.out" 2>&1 &
BG_PIDS+=("$!")
exec 3>"$WORK/psql.in"
echo "BEGIN; SELECT pg_advisory_xact_lock(7162819382734521001); SELECT 'locked';" >&3
for _ in $(seq 1 400); do grep -q '^locked$' "$WORK/psql.out" && break; sleep 0.05; done
check "a psql session holds the writers' lock" grep -q '^locked$' "$WORK/psql.out"
check_eq "... an enrollment at node-a meanwhile answers 503 (not a hang: curl's bound is 20 s)" 503 \
  "$(enroll_at "$PORT_node_a" ST1)"
check "... with the reason ($(cat "$WORK/ST1.out"))" grep -q 'PostgreSQL busy .*: ask again later' "$WORK/ST1.out"
check "... and nothing of libpq's text" bash -c "! grep -qiE 'timeout|canceling|statement' '$WORK/ST1.out'"
check "... which node-a's log has" grep -q 'event=db.unavailable backend=postgresql .*error="canceling statement due to lock timeout"' \
  "$WORK/node-a.log"
check_eq "... nothing of it written" "0 0 0" "$(written ST1)"
rc=0; out=$(bounded 30 "$CA_BIN" revoke --dir "$CA" "$ST0_HEX" --reason keyCompromise 2>&1) || rc=$?
check "a revocation by the CLI meanwhile is refused with the reason (exit $rc: $(tail -1 <<<"$out"))" \
  bash -c "[ $rc != 0 ] && [ $rc != 124 ] && grep -q 'PostgreSQL busy .*: ask again later' <<<\"\$0\"" "$out"
check_eq "... the certificate not revoked" 0 \
  "$(sql "$CA/camtrust.db" "select count(*) from certificates where cert_serial_hex = '$ST0_HEX' and revoked_at is not null")"
echo "COMMIT;" >&3
exec 3>&-
check_eq "the session gone, node-a enrolls again" 200 "$(enroll_at "$PORT_node_a" ST1)"

# node-b stalls inside an issuance, its rows written and the lock held, and is stopped there.
enroll_at "$PORT_node_b" ST2 --max-time 120 >"$WORK/ST2.status" &
stalled=$!
check "node-b holds inside its issuance" wait_log node-b 'event=failpoint_held point="db:issuance-written"'
# (resumed at exit too, if the test ends meanwhile: a stopped process ignores the SIGTERM stop_bg sends, and its wait
# would never end)
trap 'kill -CONT $stopped 2>/dev/null || true; stop_bg; cleanup_server; [ -n "${CAMTRUST_TEST_KEEP:-}" ] || rm -rf "$WORK"' EXIT
stopped=$PID_node_b
kill -STOP "$stopped"
status=
for _ in 1 2 3 4 5; do # each try: 200 once PostgreSQL ended node-b's session, 503 while its lock wait ran out first
  status=$(enroll_at "$PORT_node_a" ST3)
  [ "$status" = 503 ] || break
done
check_eq "node-b stopped holding the lock: PostgreSQL ends its session, node-a enrolls" 200 "$status"
touch "$WORK/release"
kill -CONT "$stopped"
stopped=
wait "$stalled" || true
check_eq "node-b resumed: its stalled request answers 503" 503 "$(cat "$WORK/ST2.status")"
check_eq "... nothing of its issuance is left" "0 0 0" "$(written ST2)"
check "... with the reason ($(cat "$WORK/ST2.out"))" grep -q 'PostgreSQL unavailable: ask again later' "$WORK/ST2.out"
check "... PostgreSQL ended its session (its log: idle-in-transaction timeout)" \
  grep -q 'terminating connection due to idle-in-transaction timeout' "$CAMTRUST_TEST_PG_BASE/data/server.log"
check_eq "... the request again: node-b reconnects and enrolls" 200 "$(enroll_at "$PORT_node_b" ST2)"
check "... (reconnected)" grep -q 'event=db.reconnected' "$WORK/node-b.log"
check_eq "... ST2 once: certificate, log leaf, audit entry" "1 1 1" "$(written ST2)"
stop_bg
check "audit verify" "$CA_BIN" audit verify --dir "$CA"
finish
