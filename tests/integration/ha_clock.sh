#!/usr/bin/env bash
# Several nodes, one signer, and a node whose wall clock is off (a host NTP has not synchronised yet, a clock set by
# hand): tests/helpers/clockstep.c, preloaded into that node only, steps its wall clock by 10 minutes (its monotonic
# clock untouched). The signer lease runs on the database's clock (db/lease.c), so:
#  - a node whose clock is ahead does not take the lease of a live holder (it would have seen it expired), and
#  - when that node held the lease and died, a node with a right clock takes over within the lease (it would have
#    waited the 10 minutes by which the dead node's expiry lay ahead).
# PostgreSQL only (CAMTRUST_TEST_DB=postgresql under tests/helpers/pg.sh): the nodes on one SQLite file share one host.
# Usage: ha_clock.sh PATH/TO/camtrust-ca (CAMTRUST_TEST_CLOCKSTEP: the shim)
CA_BIN=$1
. "$(dirname "$0")/lib.sh"
if on_sqlite; then echo "# PostgreSQL only: nodes on one SQLite file share one host's clock"; exit 77; fi
STEP_S=600
LEASE_MS=2000 # node.lease_ms: a short lease, so that a takeover fits the test's time (its bound: 20 s waits)
CA=$WORK/ca
ca_create "$CA" >/dev/null
sed -i "s/^node.lease_ms = .*/node.lease_ms = $LEASE_MS/" "$CA/camtrust-ca.conf"
. "$(dirname "$0")/ha_lib.sh"
ahead=(LD_PRELOAD="$CAMTRUST_TEST_CLOCKSTEP" CLOCKSTEP_S=$STEP_S
       ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0)
check "the shim steps a process's wall clock by $STEP_S s" \
  bash -c "[ \$(( \$(env \"\${@}\" date +%s) - \$(date +%s) )) -ge $((STEP_S - 5)) ]" _ "${ahead[@]}"

start_node node-a
check "node-a (right clock) took the signer lease" grep -q 'event=node id="node-a" signer=yes' "$WORK/node-a.log"
NODE_ENV=("${ahead[@]}")
start_node node-b
NODE_ENV=()
check "node-b (clock $STEP_S s ahead) does not take node-a's live lease ($(grep -o 'event=node .*signer=[a-z]*' \
  "$WORK/node-b.log"))" grep -q 'event=node id="node-b" signer=no' "$WORK/node-b.log"
sleep $((3 * LEASE_MS / 5 / 1000 + 1)) # a few lease ticks
check "... nor later: node-a never lost it" bash -c "! grep -q 'event=lease_lost' '$WORK/node-a.log'"
check "... node-b never took it" bash -c "! grep -q 'event=lease_taken' '$WORK/node-b.log'"

# node-a dies: node-b (ahead) takes over once node-a's lease expired
kill -KILL "$PID_node_a"
{ wait "$PID_node_a"; } 2>/dev/null || true
check "node-a killed: node-b (ahead) takes the lease" wait_log node-b 'event=lease_taken lease=signer holder="node-b"'
# node-b dies holding it: node-a, started again with a right clock, takes over within the lease, not 10 min later
kill -KILL "$PID_node_b"
{ wait "$PID_node_b"; } 2>/dev/null || true
start_node node-a
check "node-b killed: node-a (right clock) takes the lease it held" \
  wait_log node-a 'event=lease_taken lease=signer holder="node-a" previous="node-b"'
stop_bg
check "audit verify passes" "$CA_BIN" audit verify --dir "$CA"
finish
