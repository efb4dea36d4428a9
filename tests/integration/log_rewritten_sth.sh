#!/usr/bin/env bash
# Someone who writes the CA's database (not its folder, not its token) makes a serving node read leaves it does not
# sign (the newest checkpoint row taken away for a while: the node refuses, as over a rolled-back database, after its
# tree grew), then rewrites leaves 1024-2046 (inside the proof cache's kept chunks, its edge leaf 99327 left alone) and
# the unsigned last one, puts the checkpoint row back and lets the node issue once more. The signing tree saw its last
# leaf changed and was built again from the rows, rewritten ones included; the rolled-back guard compared the kept
# checkpoint with the proof cache, whose chunk roots were still those of the leaves that were: it passed, and the node
# signed in the token a tree head of 100003 forking the one of 100001 it had signed. Now the tree itself must pass
# through the one it signed unchanged: refused, one line, said again only once a minute; built again from the rows only
# every log.fork_recheck_s, nothing read between, even with the leaf its tree stops at rewritten at every lease tick
# (was: each rewrite had the next tick read and hash the whole log again).
# Usage: log_rewritten_sth.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/tiles_lib.sh"
if ! on_sqlite; then echo "skipped: the rows are rewritten in the SQLite file"; exit 77; fi

# wait_line PATTERN: until the server's log has a line matching it (up to 15 s).
wait_line() { for _ in $(seq 1 150); do grep -q "$1" "$WORK/server.log" && return 0; sleep 0.1; done; }
kept_size() { sed -n 2p "$CA/checkpoint.note"; }
tiles_ca 3
cleanup_server # again with a lease tick of 200 ms: the signer looks at the log five times a second
sed -i 's/^node.lease_ms = .*/node.lease_ms = 1000/' "$CA/camtrust-ca.conf"
# A forked tree built again from the rows once an hour (the most allowed): never within this test, however slow.
sed -i 's/^log.fork_recheck_s = .*/log.fork_recheck_s = 3600/' "$CA/camtrust-ca.conf"
touch "$WORK/release" # the signer passes its hold point at once, until the rewrite below
CAMTRUST_FAILPOINT=log:signing-read CAMTRUST_FAILPOINT_RELEASE=$WORK/release WITH_HTTP=1 start_ca "$CA"
PLAIN=http://127.0.0.1:$HTTP_PORT
export PORT
# Leaf hashes only (random ones, as tiles_rewritten.sh plants): tree heads read nothing else.
db_edit "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
  INSERT INTO log_leaves (leaf_index, cert_serial_hex, leaf_hash) SELECT i, printf('planted%06d', i), randomblob(32) FROM n"
enroll_one CAM0001
wait_sth 100001
for _ in $(seq 1 150); do [ "$(kept_size)" = 100001 ] && break; sleep 0.1; done
R=$(jq -r .root_hash "$WORK/sth.json")
check_eq "a tree head and the checkpoint kept: 100001" "100001 100001" "$(jq .tree_size "$WORK/sth.json") $(kept_size)"
check_eq "a consistency proof (the proof cache holds chunks 0-96: its edge is leaf 99327)" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$PLAIN/log/proof/consistency?first=1&second=100001")"

db_edit "BEGIN IMMEDIATE; CREATE TABLE attacker_saved AS SELECT * FROM log_checkpoints
  WHERE id = (SELECT max(id) FROM log_checkpoints); DROP TRIGGER log_checkpoints_no_delete;
  DELETE FROM log_checkpoints WHERE id = (SELECT max(id) FROM log_checkpoints); COMMIT"
held() { grep -c 'event=failpoint_held point="log:signing-read"' "$WORK/server.log" || true; }
enroll_one CAM0002
# Its tree grown to 100002 before the rewrite below (else the rewritten leaves are all past or below its last leaf,
# 100000, which it keeps: it signed 100003 in 1 run of 2 of ctest under load): two more passes of the signer at its
# hold point (not held yet) since CAM0002 was logged; the first read the rows after it, the second began once the
# first was done. The refusal line cannot say so: said once, not again at each tick.
AFTER_ISSUE=$(held)
for _ in $(seq 1 150); do [ "$(held)" -ge $((AFTER_ISSUE + 2)) ] && break; sleep 0.1; done
check "its tree grown to 100002 (the signer read the rows since)" test "$(held)" -ge $((AFTER_ISSUE + 2))
wait_line 'event=log_sth error=.*newest checkpoint'
check "the newest checkpoint row taken away: the node refuses" \
  grep -q 'event=log_sth error=.*newest checkpoint' "$WORK/server.log"

# The rewrite lands while the signer is between its look at its tree and its read of the rows (held there: failpoint
# log:signing-read, at the next lease tick), and a certificate is issued meanwhile: a signer reading its last leaf
# apart from the leaves after it pushed the new leaf onto the leaves that were and signed that mixed tree (100003),
# which no database held. Each edit is one transaction, as an attacker would make it: a tick between the checkpoint
# row put back and the rewrite would honestly sign the 100002 leaves that were.
BEFORE_HOLD=$(held)
rm -f "$WORK/release"
for _ in $(seq 1 150); do [ "$(held)" -gt "$BEFORE_HOLD" ] && break; sleep 0.1; done
check "the signer held at its next lease tick, between its tree and the rows" test "$(held)" -gt "$BEFORE_HOLD"
db_edit "BEGIN IMMEDIATE; INSERT INTO log_checkpoints SELECT * FROM attacker_saved; DROP TRIGGER log_leaves_no_update;
  UPDATE log_leaves SET leaf_hash = randomblob(32) WHERE leaf_index BETWEEN 1024 AND 2046 OR leaf_index = 100001;
  COMMIT"
enroll_one CAM0003
touch "$WORK/release"
check_eq "rows rewritten, the checkpoint row back, one more issued: 100003 leaves" 100003 \
  "$(sql "$DB" "select count(*) from log_leaves")"
wait_line 'event=tree_cache_dropped tree=signing leaf=100001 reason=changed'
no_sth_past 100001 "$R"

# The refusal stands each lease tick, at the cost of no read: not the log's 100003 rows (about 6 MB), not even when
# the leaf its tree stops at (100000: where it forked) is rewritten at every tick (was: each rewrite seen at the next
# tick, the whole log read and hashed again, so someone who writes the database had the node do it five times a second);
# and it is said once, not at every tick (five a second: a log flooded for ever). Ticks counted by the signer lease's
# renewals (its expires_ms moves on, then the signer looks), the bytes the server process read (/proc/PID/io rchar)
# over them, not the time.
rchar() { sed -n 's/^rchar: //p' "/proc/$SERVER_PID/io"; }
refusals() { grep -c 'event=log_sth error=' "$WORK/server.log"; }
expires() { sql "$DB" "select expires_ms from leases where name = 'signer'"; }
BEFORE=$(rchar) SEEN=$(refusals) LEASE=$(expires) TICKS=0
for _ in $(seq 1 300); do
  if [ "$(expires)" != "$LEASE" ]; then
    LEASE=$(expires) TICKS=$((TICKS + 1))
    db_edit "UPDATE log_leaves SET leaf_hash = randomblob(32) WHERE leaf_index = 100000"
  fi
  [ $TICKS -ge 5 ] && break
  sleep 0.1
done
READ=$(($(rchar) - BEFORE))
check "five more lease ticks, leaf 100000 rewritten at each" test $TICKS -ge 5
check "... reading less than 1 MB together, not the log each ($READ bytes)" test "$READ" -lt 1000000
check "... its tree not built again (its last leaf not even read)" \
  bash -c "! grep -q 'event=tree_cache_dropped tree=signing leaf=100000' '$WORK/server.log'"
check_eq "... and still no tree head past 100001" 100001 "$(sql "$DB" "select max(tree_size) from log_tree_heads")"
# (one more line allowed: the same refusal is said again once a minute)
check "the refusal said once over those ticks, not at each (lines before: $SEEN, now: $(refusals))" \
  test "$(refusals)" -le $((SEEN + 1))
finish
