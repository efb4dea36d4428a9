#!/usr/bin/env bash
# Someone who writes the CA's database (not its folder, not its token) first keeps checkpoints from being recorded (a
# trigger of theirs refuses the table's inserts: checkpoint.note stays at 40 while tree heads go on to 50), then rolls
# the issuance log back past the checkpoint kept (leaves 45-49 gone) and lets the node issue 10 other certificates.
# The rolled-back guard compares with checkpoint.note only, which the rows still extend: the node signed, in the
# token, a tree head of 55 that forks the one of 50 it had signed (two views of the log, both signed). Now a tree head
# must extend the newest one recorded and the last one the node signed: refused, one line; and still when the tree
# heads past 40 are deleted from the database too (the node remembers the one it signed; seen when it builds its tree
# again from the rows, every log.fork_recheck_s: 1 s here).
# Usage: log_forked_sth.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/tiles_lib.sh"
if ! on_sqlite; then echo "skipped: the rows are deleted in the SQLite file"; exit 77; fi

kept_size() { sed -n 2p "$CA/checkpoint.note"; }
tiles_ca 61
cleanup_server # again with a forked tree built again from the rows every second
sed -i 's/^log.fork_recheck_s = .*/log.fork_recheck_s = 1/' "$CA/camtrust-ca.conf"
WITH_HTTP=1 start_ca "$CA"
PLAIN=http://127.0.0.1:$HTTP_PORT
export PORT
head -n 40 "$WORK/serials.txt" | xargs -P 8 -I{} bash -c 'enroll_one {}'
wait_sth 40
for _ in $(seq 1 150); do [ "$(kept_size)" = 40 ] && break; sleep 0.1; done
check_eq "the tree head and the checkpoint kept in the folder: 40" "40 40" "$(jq .tree_size "$WORK/sth.json") $(kept_size)"

db_edit "CREATE TRIGGER attacker_no_checkpoint BEFORE INSERT ON log_checkpoints
  BEGIN SELECT RAISE(ABORT, 'refused'); END"
sed -n 41,50p "$WORK/serials.txt" | xargs -P 8 -I{} bash -c 'enroll_one {}'
wait_sth 50
R50=$(jq -r .root_hash "$WORK/sth.json")
check_eq "checkpoints no longer recorded: a tree head of 50 signed, checkpoint.note still 40" "50 40" \
  "$(jq .tree_size "$WORK/sth.json") $(kept_size)"

db_edit "DROP TRIGGER log_leaves_no_delete; DELETE FROM log_leaves WHERE leaf_index >= 45"
sed -n 51,60p "$WORK/serials.txt" | xargs -P 8 -I{} bash -c 'enroll_one {}'
check_eq "the log rolled back to 45 and grown to 55 by 10 other certificates" 55 \
  "$(sql "$DB" "select count(*) from log_leaves")"
no_sth_past 50 "$R50"

# (leaf 49 changed again; the tree the node found forked is built again from the rows within log.fork_recheck_s)
db_edit "DROP TRIGGER log_tree_heads_no_delete; DELETE FROM log_tree_heads WHERE tree_size > 40;
  DROP TRIGGER log_leaves_no_update; UPDATE log_leaves SET leaf_hash = randomblob(32) WHERE leaf_index = 49"
enroll_one CAM0061
for _ in $(seq 1 150); do
  grep -q 'leaves are not those of the last tree this node signed' "$WORK/server.log" && break
  [ "$(sql "$DB" "select max(tree_size) from log_tree_heads")" != 40 ] && break
  sleep 0.1
done
check_eq "the tree heads past 40 deleted too, one more issued: still none signed over the forked rows" 40 \
  "$(sql "$DB" "select max(tree_size) from log_tree_heads")"
check "... the node remembers the one of 50 it signed, one line" \
  grep -q "event=log_sth error=\"the log's first 50 leaves are not those of the last tree this node signed" \
  "$WORK/server.log"
finish
