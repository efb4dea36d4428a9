#!/usr/bin/env bash
# The unlucky operator names a read-only server in db.url: a hot standby of the CA's PostgreSQL (streaming
# replication from the server tests/helpers/pg.sh started, made here with pg_basebackup). camtrust writes, and a
# standby may lag: every connection goes to a server that takes writes (libpq target_session_attrs=read-write).
#  - serve and revoke against the standby alone: refused at start with one line, nothing served;
#  - a URL naming the standby first and the primary second (a node's list of both database hosts): the primary is
#    used, a camera enrolls, the node's reads see it at once.
# PostgreSQL only. Usage: pg.sh run ha_standby.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"
if on_sqlite; then echo "# PostgreSQL only"; exit 77; fi
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }
PRIMARY_PORT=$(cat "$CAMTRUST_TEST_PG_BASE/port")
SB=$CAMTRUST_TEST_PG_BASE/standby
standby_stop() { as_pg "$PG_BIN/pg_ctl" -D "$SB" -m immediate stop >/dev/null 2>&1 || true; }
trap 'standby_stop; stop_bg; cleanup_server; [ -n "${CAMTRUST_TEST_KEEP:-}" ] || rm -rf "$WORK"' EXIT

CA=$WORK/ca
ca_create "$CA" >/dev/null
station_with_order line-sb SB1
DB_URL=$(sed -n 's/^db.url = //p' "$CA/camtrust-ca.conf")
DB_NAME=${DB_URL##*dbname=}

# The standby: a base backup of the primary (-R: standby.signal and primary_conninfo), on its own port.
echo "host replication all 127.0.0.1/32 trust" >>"$CAMTRUST_TEST_PG_BASE/data/pg_hba.conf"
psql -X -q -At "$CAMTRUST_TEST_PG dbname=postgres" -c "select pg_reload_conf()" >/dev/null
mkdir "$SB" && chown "$(as_pg id -u)" "$SB" 2>/dev/null || true
chmod 700 "$SB"
# (-c fast: a spread checkpoint made it wait 100 s)
as_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" -U camtrust -D "$SB" -R -X stream -c fast >/dev/null 2>&1
started=0
for _ in 1 2 3 4 5; do
  SB_PORT=$((20000 + RANDOM % 40000))
  if as_pg "$PG_BIN/pg_ctl" -D "$SB" -l "$SB/server.log" -w -t 30 -o "-c listen_addresses=127.0.0.1 -p $SB_PORT \
      -c unix_socket_directories='$SB' -c fsync=off" start >/dev/null 2>&1; then started=1; break; fi
done
check_eq "a hot standby of the CA's database runs" 1 "$started"
check_eq "... in recovery (read-only)" t \
  "$(psql -X -q -At "host=127.0.0.1 port=$SB_PORT user=camtrust dbname=$DB_NAME" -c 'select pg_is_in_recovery()')"

# db.url names the standby alone: serve and revoke refused at start, one line each
sed -i "s|^db.url = .*|db.url = host=127.0.0.1 port=$SB_PORT user=camtrust dbname=$DB_NAME|" "$CA/camtrust-ca.conf"
rc=0; out=$(bounded 60 "$CA_BIN" serve --dir "$CA" --listen 127.0.0.1:0 --http-listen '' 2>&1) || rc=$?
check "serve against the standby is refused at start, with one line (exit $rc: $(grep -v '^ts=.*level=info' <<<"$out" |
  head -3))" bash -c "[ $rc != 0 ] && ! grep -q event=listening <<<\"\$0\" &&
  grep -q 'read-only\|hot standby' <<<\"\$0\"" "$out"
rc=0; out=$("$CA_BIN" order create --dir "$CA" --station line-sb --model CX100 --serials <(echo SB2) 2>&1) || rc=$?
check "a command that writes (order create) is refused with one line (exit $rc: $out)" \
  bash -c "[ $rc != 0 ] && grep -q 'read-only\|hot standby' <<<\"\$0\"" "$out"

# db.url names both, the standby first: the primary is used
sed -i "s|^db.url = .*|db.url = host=127.0.0.1,127.0.0.1 port=$SB_PORT,$PRIMARY_PORT user=camtrust dbname=$DB_NAME|" \
  "$CA/camtrust-ca.conf"
start_ca "$CA"
make_csr "$WORK/SB1" "/serialNumber=SB1/CN=x"
check_eq "the standby named first, the primary second: a camera enrolls" 200 \
  "$(est_post simpleenroll "$WORK/SB1.b64" "$WORK/SB1.out" --cert "$WORK/station.pem" --key "$WORK/station.key")"
check_eq "... recorded on the primary" 1 \
  "$(psql -X -q -At "$DB_URL" -c "select count(*) from certificates where device_serial = 'SB1'")"
cleanup_server
check "audit verify passes" "$CA_BIN" audit verify --dir "$CA"
finish
