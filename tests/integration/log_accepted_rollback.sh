#!/usr/bin/env bash
# An older copy of the database put back and accepted (restore --accept-rollback), on SQLite (backup, restore --from)
# and on PostgreSQL (a copy of the database taken with no node running, named by db.url as a restore would leave it):
# the CA signs again afterwards, over other certificates at the leaves the copy lacks: the log's fork check (the
# newest tree head recorded, the last tree this node signed) takes the accepted log as the one to extend, and the
# server started on it refuses nothing.
# Usage: log_accepted_rollback.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
ca_create "$CA" >/dev/null
serials=(); for i in $(seq 1 8); do serials+=("AR$i"); done
station_with_order line-ar "${serials[@]}"
for s in "${serials[@]}"; do make_csr "$WORK/$s" "/serialNumber=$s/CN=x"; done
enroll() { est_post simpleenroll "$WORK/$1.b64" "$WORK/$1.p7" --cert "$WORK/station.pem" --key "$WORK/station.key"; }
newest() { sql "$CA/camtrust.db" "select tree_size from log_tree_heads order by id desc limit 1"; }
# signs SIZE: the newest tree head recorded reaches SIZE (bounded wait)
signs() { for _ in $(seq 1 200); do [ "$(newest)" = "$1" ] && return 0; sleep 0.1; done; return 1; }
on_pg() { grep -q '^db.backend = postgresql' "$CA/camtrust-ca.conf"; }

WITH_HTTP=1 start_ca "$CA"
for s in AR1 AR2; do check_eq "enroll $s" 200 "$(enroll $s)"; done
check "a tree head of 2" signs 2
cleanup_server
if on_pg; then
  COPY=$("$CAMTRUST_TEST_PG_CTL" createdb "$(sed -n 's/^db.url = .*dbname=//p' "$CA/camtrust-ca.conf")")
else
  "$CA_BIN" backup --dir "$CA" --out "$WORK/b1.db" >/dev/null
fi
WITH_HTTP=1 start_ca "$CA"
for s in AR3 AR4 AR5; do check_eq "enroll $s" 200 "$(enroll $s)"; done
check "a tree head of 5" signs 5
cleanup_server

if on_pg; then
  sed -i "s|^db.url = .*|db.url = $COPY|" "$CA/camtrust-ca.conf"
else
  rc=0; "$CA_BIN" restore --dir "$CA" --from "$WORK/b1.db" >/dev/null || rc=$?
  check_eq "the copy of 2 restored: flagged (exit 1)" 1 "$rc"
fi
serve_refuses "the copy of 2 put back" "restore --accept-rollback"
check "an officer accepts it" "$CA_BIN" restore --dir "$CA" --accept-rollback
check_eq "... the newest tree head recorded: 2" 2 "$(newest)"
WITH_HTTP=1 start_ca "$CA"
for s in AR6 AR7 AR8; do check_eq "enroll $s on the accepted log" 200 "$(enroll $s)"; done
check "the CA signs a tree head of 5 again, over other certificates at leaves 2-4" signs 5
check "... and its checkpoint" test "$(curl -s --max-time 5 "http://127.0.0.1:$HTTP_PORT/log/checkpoint" | sed -n 2p)" = 5
check_eq "... no refusal to sign logged" 0 "$(grep -c 'event=log_sth' "$WORK/server.log" || true)"
cleanup_server
check "audit verify passes" "$CA_BIN" audit verify --dir "$CA"
finish
