#!/usr/bin/env bash
# A forked log put right in place is signed again without a new certificate or a restart. Someone who writes the
# database rewrites a leaf below the signed tree (and the unsigned last one, which has the signer build its tree again
# from the rows): the node refuses, as log_rewritten_sth.sh plays. The operator then restores the right rows; the
# leaf the forked tree stops at was never touched, so looking at it alone each lease tick, the node refused until a new
# certificate or a restart (was). Now a forked tree is built again from the rows in full every log.fork_recheck_s:
# the node signs again (log_signing_resumed, a new tree head and checkpoint), nothing issued, not restarted.
# Usage: log_fork_repaired.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/tiles_lib.sh"
if ! on_sqlite; then echo "skipped: the rows are rewritten in the SQLite file"; exit 77; fi

# wait_line PATTERN: until the server's log has a line matching it (up to 30 s).
wait_line() { for _ in $(seq 1 300); do grep -q "$1" "$WORK/server.log" && return 0; sleep 0.1; done; }
kept_size() { sed -n 2p "$CA/checkpoint.note"; }
held() { grep -c 'event=failpoint_held point="log:signing-read"' "$WORK/server.log" || true; }
FORKED='event=log_sth error="the log.s first 2 leaves are not those of'
tiles_ca 3
cleanup_server # again with a lease tick of 200 ms, and a forked tree read again in full every second
sed -i 's/^node.lease_ms = .*/node.lease_ms = 1000/' "$CA/camtrust-ca.conf"
sed -i 's/^log.fork_recheck_s = .*/log.fork_recheck_s = 1/' "$CA/camtrust-ca.conf"
grep -q '^log.fork_recheck_s = 1$' "$CA/camtrust-ca.conf" || echo 'log.fork_recheck_s = 1' >>"$CA/camtrust-ca.conf"
touch "$WORK/release" # the signer passes its hold point at once: its passes are counted (held)
CAMTRUST_FAILPOINT=log:signing-read CAMTRUST_FAILPOINT_RELEASE=$WORK/release WITH_HTTP=1 start_ca "$CA"
PLAIN=http://127.0.0.1:$HTTP_PORT
export PORT
enroll_one CAM0001
enroll_one CAM0002
wait_sth 2
for _ in $(seq 1 150); do [ "$(kept_size)" = 2 ] && break; sleep 0.1; done
check_eq "a tree head and the checkpoint kept: 2" "2 2" "$(jq .tree_size "$WORK/sth.json") $(kept_size)"

# The newest checkpoint row taken away (the node refuses, as over a rolled-back database), one more issued: the
# signer's tree grows to 3 leaves, unsigned. Two passes of the signer since CAM0003 was logged: the first read it.
db_edit "BEGIN IMMEDIATE; CREATE TABLE attacker_saved AS SELECT * FROM log_checkpoints
  WHERE id = (SELECT max(id) FROM log_checkpoints); DROP TRIGGER log_checkpoints_no_delete;
  DELETE FROM log_checkpoints WHERE id = (SELECT max(id) FROM log_checkpoints); COMMIT"
enroll_one CAM0003
db_edit "CREATE TABLE right_leaves AS SELECT leaf_index, leaf_hash FROM log_leaves WHERE leaf_index IN (0, 2)"
check_eq "3 leaves, the right ones of 0 and 2 saved aside" "3 2" \
  "$(sql "$DB" "select count(*) from log_leaves") $(sql "$DB" "select count(*) from right_leaves")"
AFTER_ISSUE=$(held)
for _ in $(seq 1 150); do [ "$(held)" -ge $((AFTER_ISSUE + 2)) ] && break; sleep 0.1; done
check "its tree grown to 3 (the signer read the rows since)" test "$(held)" -ge $((AFTER_ISSUE + 2))
wait_line 'event=log_sth error=.*newest checkpoint'

# Leaf 0 (below the tree signed) and leaf 2 (the last, unsigned) rewritten, the checkpoint row back: the signer sees
# its last leaf changed, builds its tree again and finds the first 2 leaves are not those it signed.
db_edit "BEGIN IMMEDIATE; INSERT INTO log_checkpoints SELECT * FROM attacker_saved; DROP TRIGGER log_leaves_no_update;
  UPDATE log_leaves SET leaf_hash = randomblob(32) WHERE leaf_index IN (0, 2); COMMIT"
wait_line "$FORKED"
check "the rows forked: the node refuses, one line" test "$(grep -c "$FORKED" "$WORK/server.log")" = 1
check_eq "... no tree head past 2" 2 "$(sql "$DB" "select max(tree_size) from log_tree_heads")"

# The operator restores the right rows. Leaf 1, where the forked tree stops, never changed. Nothing issued, no restart.
db_edit "BEGIN IMMEDIATE; UPDATE log_leaves SET leaf_hash = (SELECT r.leaf_hash FROM right_leaves r
  WHERE r.leaf_index = log_leaves.leaf_index) WHERE leaf_index IN (0, 2); COMMIT"
wait_line 'event=log_signing_resumed after="the log.s first 2 leaves are not those of'
check "the rows put right: the node says it signs again" \
  grep -q 'event=log_signing_resumed after="the log.s first 2 leaves are not those of' "$WORK/server.log"
wait_sth 3
check_eq "... a tree head of 3 signed" 3 "$(jq .tree_size "$WORK/sth.json")"
for _ in $(seq 1 150); do [ "$(kept_size)" = 3 ] && break; sleep 0.1; done
check_eq "... and a checkpoint of 3 kept" 3 "$(kept_size)"
check_eq "... over the right rows: the log's leaves are the certificates'" "$(hex_root 0 2)" \
  "$(python3 -c 'import hashlib, sys
r = [hashlib.sha256(b"\x00" + open(f, "rb").read()).digest() for f in sys.argv[1:]]
print(hashlib.sha256(b"\x01" + r[0] + r[1]).hexdigest())' "$WORK/CAM0001.der" "$WORK/CAM0002.der")"
check_eq "... nothing issued meanwhile: 3 leaves" 3 "$(sql "$DB" "select count(*) from log_leaves")"
finish
