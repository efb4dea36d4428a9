#!/usr/bin/env bash
# Someone who writes the CA's database (not its folder, not its token) makes a serving node read leaves it does not
# sign (the newest checkpoint row taken away for a while: the node refuses, as over a rolled-back database, after its
# tree grew), then rewrites leaves 1024-2046 (inside the proof cache's kept chunks, its edge leaf 2047 left alone) and
# the unsigned last one, puts the checkpoint row back and lets the node issue once more. The signing tree saw its last
# leaf changed and was built again from the rows, rewritten ones included; the rolled-back guard compared the kept
# checkpoint with the proof cache, whose chunk roots were still those of the leaves that were: it passed, and the node
# signed in the token a tree head of 2103 forking the one of 2101 it had signed. Now the tree itself must pass through
# the one it signed unchanged: refused, one line.
# Usage: log_rewritten_sth.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/tiles_lib.sh"
if ! on_sqlite; then echo "skipped: the rows are rewritten in the SQLite file"; exit 77; fi

# wait_line PATTERN: until the server's log has a line matching it (up to 15 s).
wait_line() { for _ in $(seq 1 150); do grep -q "$1" "$WORK/server.log" && return 0; sleep 0.1; done; }
kept_size() { sed -n 2p "$CA/checkpoint.note"; }
tiles_ca 3
# Leaf hashes only (random ones, as tiles_rewritten.sh plants): tree heads read nothing else.
sqlite3 "$DB" "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2099)
  INSERT INTO log_leaves (leaf_index, cert_serial_hex, leaf_hash) SELECT i, printf('planted%06d', i), randomblob(32) FROM n"
enroll_one CAM0001
wait_sth 2101
for _ in $(seq 1 150); do [ "$(kept_size)" = 2101 ] && break; sleep 0.1; done
R=$(jq -r .root_hash "$WORK/sth.json")
check_eq "a tree head and the checkpoint kept: 2101" "2101 2101" "$(jq .tree_size "$WORK/sth.json") $(kept_size)"
check_eq "a consistency proof (the proof cache holds chunks 0 and 1)" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$PLAIN/log/proof/consistency?first=1&second=2101")"

sqlite3 "$DB" "CREATE TABLE attacker_saved AS SELECT * FROM log_checkpoints WHERE id = (SELECT max(id) FROM log_checkpoints);
  DROP TRIGGER log_checkpoints_no_delete; DELETE FROM log_checkpoints WHERE id = (SELECT max(id) FROM log_checkpoints)"
enroll_one CAM0002
wait_line 'event=log_sth error=.*newest checkpoint'
check "the newest checkpoint row taken away: the node refuses (its tree grew to 2102 meanwhile)" \
  grep -q 'event=log_sth error=.*newest checkpoint' "$WORK/server.log"

sqlite3 "$DB" "INSERT INTO log_checkpoints SELECT * FROM attacker_saved; DROP TRIGGER log_leaves_no_update;
  UPDATE log_leaves SET leaf_hash = randomblob(32) WHERE leaf_index BETWEEN 1024 AND 2046 OR leaf_index = 2101"
enroll_one CAM0003
check_eq "rows rewritten, the checkpoint row back, one more issued: 2103 leaves" 2103 \
  "$(sql "$DB" "select count(*) from log_leaves")"
wait_line 'event=tree_cache_dropped tree=signing leaf=2101 reason=changed'
for _ in $(seq 1 150); do
  grep -q 'leaves are not those of' "$WORK/server.log" && break
  [ "$(sql "$DB" "select max(tree_size) from log_tree_heads")" != 2101 ] && break
  sleep 0.1
done
curl -s -o "$WORK/sth.json" --max-time 20 "$PLAIN/log/sth" || true
check_eq "no tree head signed over the rewritten rows: the one served is still the one of 2101" "2101 $R" \
  "$(jq .tree_size "$WORK/sth.json") $(jq -r .root_hash "$WORK/sth.json")"
check_eq "... and none recorded past it" 2101 "$(sql "$DB" "select max(tree_size) from log_tree_heads")"
check "the node said why, one line" \
  grep -q "event=log_sth error=\"the log's first 2101 leaves are not those of the newest tree head recorded" \
  "$WORK/server.log"
finish
