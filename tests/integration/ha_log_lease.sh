#!/usr/bin/env bash
# The signer lease moves back and forth between two nodes on one database while both run (SQLite file, or
# PostgreSQL under tests/helpers/pg.sh), each keeping in memory the last tree it signed: node-a signs 3 leaves,
# node-b 5, node-a 7 (over node-b's 5, past its own 3), node-b 8, node-a a checkpoint of node-b's 8 (its lease.take
# due): the log's fork check (the newest tree head recorded, the last tree this node signed) must refuse none of it.
# The lease is moved as a hung holder loses it, never stopping a node that may be inside a transaction: a row edit
# gives it to a node that does not sign, the losing node is stopped (SIGSTOP) once it says it lost it, the row
# freed for the other node to take, the stopped one continued.
# Usage: ha_log_lease.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

LEASE_MS=1500
CA=$WORK/ca
ca_create "$CA" >/dev/null
sed -i "s/^node.lease_ms = .*/node.lease_ms = $LEASE_MS/" "$CA/camtrust-ca.conf"
serials=(); for i in $(seq 1 9); do serials+=("LL$i"); done
station_with_order line-ll "${serials[@]}"
for s in "${serials[@]}"; do make_csr "$WORK/$s" "/serialNumber=$s/CN=x"; done
. "$(dirname "$0")/ha_lib.sh"

enroll_at() {
  curl -s -o "$WORK/$2.p7" -w '%{http_code}' --max-time 20 --cacert "$CA/ops-root.pem" -H "Content-Type: application/pkcs10" \
    --data-binary "@$WORK/$2.b64" --cert "$WORK/station.pem" --key "$WORK/station.key" \
    "https://localhost:$1/.well-known/est/simpleenroll" || true
}
# heads_at NODE SIZE: NODE's /log/checkpoint reaches SIZE and the newest tree head recorded is of SIZE (bounded wait)
heads_at() {
  local http_var=HTTP_${1//-/_} _
  for _ in $(seq 1 300); do
    [ "$(curl -s --max-time 5 "http://127.0.0.1:${!http_var}/log/checkpoint" | sed -n 2p)" = "$2" ] &&
      [ "$(sql "$CA/camtrust.db" "select tree_size from log_tree_heads order by id desc limit 1")" = "$2" ] && return 0
    sleep 0.1
  done
  return 1
}
# dbq SQL: a write to the database both nodes serve (lib.sh's sql only reads)
if grep -q '^db.backend = postgresql' "$CA/camtrust-ca.conf"; then
  dbq() { psql -X -qAt -v ON_ERROR_STOP=1 "$(sed -n 's/^db.url = //p' "$CA/camtrust-ca.conf")" -c "$1"; }
else
  dbq() { sqlite3 -cmd ".timeout 5000" "$CA/camtrust.db" "$1"; }
fi
# move_lease FROM TO: the signer lease from node FROM to node TO (both keep running, and their memory)
move_lease() {
  local from=PID_${1//-/_} n lost
  n=$(grep -c "event=lease_taken lease=signer holder=\"$2\"" "$WORK/$2.log" || true)
  lost=$(grep -c 'event=lease_lost lease=signer holder="node-x"' "$WORK/$1.log" || true)
  dbq "update leases set holder = 'node-x', expires_ms = 99999999999999 where name = 'signer'" >/dev/null
  for _ in $(seq 1 300); do
    [ "$(grep -c 'event=lease_lost lease=signer holder="node-x"' "$WORK/$1.log")" -gt "$lost" ] && break; sleep 0.05
  done
  [ "$(grep -c 'event=lease_lost lease=signer holder="node-x"' "$WORK/$1.log")" -gt "$lost" ] || return 1
  kill -STOP "${!from}"
  dbq "update leases set expires_ms = 0 where name = 'signer'" >/dev/null
  for _ in $(seq 1 300); do
    [ "$(grep -c "event=lease_taken lease=signer holder=\"$2\"" "$WORK/$2.log")" -gt "$n" ] && break; sleep 0.05
  done
  kill -CONT "${!from}"
  [ "$(grep -c "event=lease_taken lease=signer holder=\"$2\"" "$WORK/$2.log")" -gt "$n" ]
}
refusals() { cat "$WORK"/node-*.log | grep -c 'event=log_sth' || true; }

start_node node-a
start_node node-b
check "node-a signs" grep -q 'event=node id="node-a" signer=yes' "$WORK/node-a.log"
for s in LL1 LL2 LL3; do check_eq "enroll $s at node-a" 200 "$(enroll_at "$PORT_node_a" $s)"; done
check "node-a signed a tree head and checkpoint of 3 leaves" heads_at node-a 3

check "the lease moves to node-b" move_lease node-a node-b
for s in LL4 LL5; do check_eq "enroll $s at node-b" 200 "$(enroll_at "$PORT_node_b" $s)"; done
check "node-b signed a tree head and checkpoint of 5 leaves" heads_at node-b 5
check "the lease moves back to node-a" move_lease node-b node-a
for s in LL6 LL7; do check_eq "enroll $s at node-a" 200 "$(enroll_at "$PORT_node_a" $s)"; done
check "node-a (which last signed 3) signs 7 over node-b's 5" heads_at node-a 7
check "the lease moves back to node-b" move_lease node-a node-b
check_eq "enroll LL8 at node-b" 200 "$(enroll_at "$PORT_node_b" LL8)"
check "node-b (which last signed 5) signs 8 over node-a's 7" heads_at node-b 8
check "the lease moves back to node-a, nothing issued since" move_lease node-b node-a
# (its lease.take is audited: a checkpoint is due over the same tree) Counted up to that entry, not all the entries
# when counted: node-a's checkpoint (and its own log.checkpoint entry, which makes none due) may come first under load.
entries=$(sql "$CA/camtrust.db" "select max(seq) from audit where action = 'lease.take' and actor = 'node-a'")
covered() { [ "$(sql "$CA/camtrust.db" "select max(audit_entries) from log_checkpoints where tree_size = 8")" -ge "$entries" ]; }
for _ in $(seq 1 300); do covered && break; sleep 0.1; done
check "node-a (which last signed 7) signs a checkpoint of node-b's 8 binding its lease.take" covered
check_eq "no refusal to sign logged" 0 "$(refusals)"

stop_bg
check "audit verify passes" "$CA_BIN" audit verify --dir "$CA"
start_node node-b
check_eq "restarted node-b: enroll LL9" 200 "$(enroll_at "$PORT_node_b" LL9)"
check "... signs 9" heads_at node-b 9
check_eq "no refusal to sign logged" 0 "$(refusals)"
stop_bg
finish
