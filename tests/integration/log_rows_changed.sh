#!/usr/bin/env bash
# The 503s "ask again" of a request (or a signing) under which the log's rows change more than once: each needs the
# request held at a failpoint twice or more, one interleaving at each (ca_failpoint_step: the release file taken as
# each hold ends, made again for the next). (1) A tile request between its size read and its leaves: the log cut
# below the tile, then grown back before the request looks at the size again: 503 "the log changed while the tile
# was read", not a 404 for a tile the log holds, nor a 400. (2) A level-1 tile whose chunk roots are built: the edge
# leaf between two chunks rewritten under each of the three passes: 503 "the rows of the tiles tree changed while
# they were read". (3) The signer growing its tree: its last leaf rewritten under its read past it, then, built again
# from the rows, the leaf at the edge of its first 4096 rewritten under the next read: "the log's rows changed while
# they were read: nothing signed over them", and the log not read again before log.fork_recheck_s. Each time no hashes
# of rows that were are served or signed.
# Usage: log_rows_changed.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/tiles_lib.sh"
if ! on_sqlite; then echo "skipped: the rows are edited in the SQLite file"; exit 77; fi

held() { grep -c "event=failpoint_held point=\"$1\"" "$WORK/server.log" || true; }
# step POINT COUNT: the COUNT-th hold at POINT (since the server started) reached (up to 20 s); false if not.
step() { for _ in $(seq 1 400); do [ "$(held "$1")" -ge "$2" ] && return 0; sleep 0.05; done; return 1; }
release() { touch "$WORK/release"; }
# serve POINT: the CA served again with failpoint POINT, no release file (the first pass there is held).
serve() {
  cleanup_server
  rm -rf "$WORK/release"
  CAMTRUST_FAILPOINT=$1 CAMTRUST_FAILPOINT_RELEASE=$WORK/release WITH_HTTP=1 start_ca "$CA"
  PLAIN=http://127.0.0.1:$HTTP_PORT
  export PORT
}

tiles_ca 3
printf 'CAM0001\nCAM0002\n' | xargs -I{} bash -c 'enroll_one {}'
check_eq "2 certificates issued" 2 "$(sql "$DB" "select count(*) from log_leaves")"
# Leaves up to 512 planted (random hashes: hash tiles read nothing else); all kept aside, to be put back.
db_edit "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < 511)
  INSERT INTO log_leaves (leaf_index, cert_serial_hex, leaf_hash) SELECT i, printf('planted%06d', i), randomblob(32) FROM n;
  DROP TRIGGER log_leaves_no_delete; DROP TRIGGER log_leaves_no_update; CREATE TABLE kept AS SELECT * FROM log_leaves"

# ---- (1) the log cut, then grown back, under one tile request ----
serve tiles:read
tile 0/001 >"$WORK/status" &
PID=$!
step tiles:read 1
check "GET 0/001 (leaves 256-511) held after its size read (512)" test "$(held tiles:read)" -ge 1
db_edit "DELETE FROM log_leaves WHERE leaf_index >= 300"
release
step tiles:read 2
check "the log cut to 300 leaves, the request let go: the rows end before its tile, it is held again" \
  test "$(held tiles:read)" -ge 2
db_edit "INSERT INTO log_leaves SELECT * FROM kept WHERE leaf_index >= 300"
release
wait "$PID" || true
check_eq "the rows back before it looks at the size again: 503, ask again" \
  "503 503 the log changed while the tile was read: ask again" "$(cat "$WORK/status") $(cat "$T/0_001")"
release
check_eq "... asked again: 200, the leaves of its rows" "200 $(sql "$DB" "select lower(hex(leaf_hash)) from log_leaves
  where leaf_index between 256 and 511 order by leaf_index" | tr -d '\n')" "$(tile 0/001) $(hex_of "$T/0_001")"

# ---- (2) a level-1 tile's chunk roots: the edge leaf between its two chunks rewritten under every pass ----
serve tiles:read-past-edge
tile 1/000.p/2 >"$WORK/status" &
PID=$!
# Each chunk read held: leaf 255 (the first chunk's last) rewritten before each, so that it differs at each read of
# the second chunk, which reads it again; 3 passes of 2 chunks.
for k in 1 2 3 4 5 6; do
  step tiles:read-past-edge $k || break
  db_edit "UPDATE log_leaves SET leaf_hash = randomblob(32) WHERE leaf_index = 255"
  release
done
wait "$PID" || true
check_eq "the edge leaf rewritten under each of the 3 passes: 503, ask again" \
  "503 503 the rows of the tiles tree changed while they were read: ask again" \
  "$(cat "$WORK/status") $(cat "$T/1_000.p_2")"
check_eq "... held 6 times, no more" 6 "$(held tiles:read-past-edge)"
check "... logged as its 503" \
  grep -q 'path="/log/tile/1/000.p/2" status=503' "$WORK/server.log"
db_edit "UPDATE log_leaves SET leaf_hash = (SELECT k.leaf_hash FROM kept k WHERE k.leaf_index = 255) WHERE leaf_index = 255"
mkdir "$WORK/release" # a folder: never taken (unlink fails on it), every later pass goes
check_eq "... asked again, the row put back: 200, the roots of its rows" "200 $(hex_root 0 256)$(hex_root 256 256)" \
  "$(tile 1/000.p/2) $(hex_of "$T/1_000.p_2")"

# ---- (3) the signer: its last leaf, then the edge of its first 4096 leaves, rewritten under its reads ----
db_edit "WITH RECURSIVE n(i) AS (SELECT 512 UNION ALL SELECT i + 1 FROM n WHERE i < 4999)
  INSERT INTO log_leaves (leaf_index, cert_serial_hex, leaf_hash) SELECT i, printf('planted%06d', i), randomblob(32) FROM n"
cleanup_server
sed -i 's/^node.lease_ms = .*/node.lease_ms = 1000/' "$CA/camtrust-ca.conf" # a lease tick of 200 ms
# the log read again in full, after the refusal below, only an hour later: never within this test, however slow
sed -i 's/^log.fork_recheck_s = .*/log.fork_recheck_s = 3600/' "$CA/camtrust-ca.conf"
rm -rf "$WORK/release"; mkdir "$WORK/release" # the start signs a tree head of 5000 through its reads at once
CAMTRUST_FAILPOINT=signing:read-past-edge CAMTRUST_FAILPOINT_RELEASE=$WORK/release WITH_HTTP=1 start_ca "$CA"
PLAIN=http://127.0.0.1:$HTTP_PORT
export PORT
wait_sth 5000
check_eq "a tree head of the 5000 leaves" 5000 "$(jq .tree_size "$WORK/sth.json")"
R=$(jq -r .root_hash "$WORK/sth.json")
for _ in $(seq 1 150); do [ "$(sed -n 2p "$CA/checkpoint.note")" = 5000 ] && break; sleep 0.1; done
rmdir "$WORK/release" # the signer's next read held
H=$(held signing:read-past-edge)
enroll_one CAM0003 # a tree head is due: the signer reads past its last leaf (4999)
step signing:read-past-edge $((H + 1))
check "the signer held at its read past its last leaf" test "$(held signing:read-past-edge)" -gt "$H"
db_edit "UPDATE log_leaves SET leaf_hash = randomblob(32) WHERE leaf_index = 4999"
release
step signing:read-past-edge $((H + 2)) # built again from the rows: their first 4096
release
step signing:read-past-edge $((H + 3)) # the next 4096 read with the edge, leaf 4095
db_edit "UPDATE log_leaves SET leaf_hash = randomblob(32) WHERE leaf_index = 4095"
mkdir "$WORK/release"
REFUSED='event=log_sth error="the log.s rows changed while they were read: nothing signed over them'
for _ in $(seq 1 200); do grep -q "$REFUSED" "$WORK/server.log" && break; sleep 0.1; done
check "its last leaf, then leaf 4095 rewritten under its reads: refused, one line" \
  test "$(grep -c "$REFUSED" "$WORK/server.log")" = 1
check_eq "... no tree head past 5000" 5000 "$(sql "$DB" "select max(tree_size) from log_tree_heads")"
curl -s -o "$WORK/sth.json" --max-time 20 "$PLAIN/log/sth" || true
check_eq "... the one served still the one of 5000" "5000 $R" "$(jq .tree_size "$WORK/sth.json") $(jq -r .root_hash "$WORK/sth.json")"
# ... and not read again before log.fork_recheck_s, as a forked tree (was: left to the next tick, which read and hashed
# the whole log again: someone rewriting leaves under every read had that done at every tick). Every pass goes now
# (the release a folder): each read would be a held line. Ticks counted by the signer lease's renewals, not the time.
expires() { sql "$DB" "select expires_ms from leases where name = 'signer'"; }
H=$(held signing:read-past-edge) LEASE=$(expires) TICKS=0
for _ in $(seq 1 300); do
  [ "$(expires)" != "$LEASE" ] && LEASE=$(expires) TICKS=$((TICKS + 1))
  [ $TICKS -ge 5 ] && break
  sleep 0.1
done
check "five more lease ticks" test $TICKS -ge 5
check_eq "... the log not read over them" "$H" "$(held signing:read-past-edge)"
check_eq "... still no tree head past 5000, the refusal said once" "5000 1" \
  "$(sql "$DB" "select max(tree_size) from log_tree_heads") $(grep -c 'event=log_sth error=' "$WORK/server.log")"
finish
