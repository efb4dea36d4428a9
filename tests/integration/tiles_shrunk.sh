#!/usr/bin/env bash
# The log shrinks (rolled back: an older copy put back, or rows deleted by someone who writes the database) while a
# tile request is between its read of the log's size and its read of the leaves (held there: failpoint
# tiles:size-read, until a file exists). The tile is then beyond the log as it is: a 404 naming the log's size, as
# tlog-tiles has it, not a 400 ("bad usage", "the tree is larger than the log") telling the client it asked wrongly.
# Played for a level-0 tile (read without the tile cache's lock), a level-1 tile (computed under it) and an entry
# bundle; each is served again once the rows are back.
# Usage: tiles_shrunk.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/tiles_lib.sh"
if ! on_sqlite; then echo "skipped: the rows are deleted in the SQLite file"; exit 77; fi

touch "$WORK/release" # every tile request passes the failpoint at once, but those below
export CAMTRUST_FAILPOINT=tiles:size-read CAMTRUST_FAILPOINT_RELEASE=$WORK/release
tiles_ca 2
unset CAMTRUST_FAILPOINT CAMTRUST_FAILPOINT_RELEASE
printf 'CAM0001\nCAM0002\n' | xargs -I{} bash -c 'enroll_one {}'
check_eq "2 certificates issued" 2 "$(sql "$DB" "select count(*) from log_leaves")"
# Leaves up to 512 planted (random hashes: hash tiles read nothing else); all kept aside, to be put back.
db_edit "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < 511)
  INSERT INTO log_leaves (leaf_index, cert_serial_hex, leaf_hash) SELECT i, printf('planted%06d', i), randomblob(32) FROM n;
  DROP TRIGGER log_leaves_no_delete; CREATE TABLE kept AS SELECT * FROM log_leaves"

held() { grep -c 'event=failpoint_held point="tiles:size-read"' "$WORK/server.log" || true; }
# shrunk_under PATH KEEP: GET PATH held after its size read, the log cut to its first KEEP leaves meanwhile, then let
# go; prints its status and body. The rows are put back after.
shrunk_under() {
  local before pid
  before=$(held)
  rm -f "$WORK/release"
  tile "$1" >"$WORK/status" &
  pid=$!
  for _ in $(seq 1 200); do [ "$(held)" -gt "$before" ] && break; sleep 0.05; done
  [ "$(held)" -gt "$before" ] || echo "not held"
  db_edit "DELETE FROM log_leaves WHERE leaf_index >= $2"
  touch "$WORK/release"
  wait "$pid" || true
  db_edit "INSERT INTO log_leaves SELECT * FROM kept WHERE leaf_index >= $2"
  echo "$(cat "$WORK/status") $(cat "$T/${1//\//_}")"
}

check_eq "GET 0/001 (leaves 256-511), the log cut to 300 leaves meanwhile: 404, beyond the log" \
  "404 404 tile 0/001 is beyond the log (300 leaves)" "$(shrunk_under 0/001 300)"
check_eq "... the rows back: 200" 200 "$(tile 0/001)"
check_eq "GET 1/000.p/2 (leaves 0-511), the log cut to 300 leaves meanwhile: 404, beyond the log" \
  "404 404 tile 1/000.p/2 is beyond the log (300 leaves)" "$(shrunk_under 1/000.p/2 300)"
check_eq "... the rows back: 200, the roots of its rows" "200 $(hex_root 0 256)$(hex_root 256 256)" \
  "$(tile 1/000.p/2) $(hex_of "$T/1_000.p_2")"
check_eq "GET entries/000.p/2, the log cut to 1 leaf meanwhile: 404, beyond the log" \
  "404 404 tile entries/000.p/2 is beyond the log (1 leaves)" "$(shrunk_under entries/000.p/2 1)"
check_eq "... the rows back: 200" 200 "$(tile entries/000.p/2)"
check "no request was a 400" bash -c '! grep -q "event=request .*status=400" "$0"' "$WORK/server.log"
finish
