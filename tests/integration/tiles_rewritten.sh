#!/usr/bin/env bash
# Someone who writes the CA's database (not its folder, not its token) rolls the issuance log back under a serving
# node whose tile cache is warm (as an older copy put back would: leaves 200-299 gone), and the node issues 100 other
# certificates into those places. The node kept the level-1 hash of the rows that were: it served tile 1/000.p/1
# from it, which still agreed with the honest tree head of 300 while the level-0 tile and the entries (read from the
# rows) no longer did, a tree that is none. Now each tile above level 0 reads the leaf at the kept hashes' edge again
# first, drops them when it changed (one warning line) and serves the tiles of the rows the node has: they reproduce
# the root of the certificates now in the log, and a client holding the honest tree head finds they do not match it.
# Usage: tiles_rewritten.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/tiles_lib.sh"
if ! on_sqlite; then echo "skipped: the rows are rewritten in the SQLite file"; exit 77; fi
N=300

tiles_ca 400
head -n $N "$WORK/serials.txt" | xargs -P 8 -I{} bash -c 'enroll_one {}'
check_eq "$N certificates issued" $N "$(sql "$DB" "select count(*) from log_leaves")"
wait_sth $N
check_eq "the signed tree head covers all $N" $N "$(jq .tree_size "$WORK/sth.json")"
ROOT=$(jq -r .root_hash "$WORK/sth.json")
for p in 0/000 0/001.p/44 1/000.p/1; do check_eq "GET $p: 200" 200 "$(tile "$p")"; done
check_eq "the tiles reproduce the signed root of $N (the tile cache now warm)" "$ROOT" "$($PY root $N "$T")"
cp "$T/1_000.p_1" "$WORK/level1.before"

# The log rolled back to 200 leaves under the serving node (the trigger dropped, as an attacker with the database's
# rights can), then 100 other cameras enrolled: leaves 200-299 are now other certificates.
db_edit "DROP TRIGGER log_leaves_no_delete; DELETE FROM log_leaves WHERE leaf_index >= 200"
check_eq "the log rolled back to 200 leaves" 200 "$(sql "$DB" "select count(*) from log_leaves")"
tail -n 100 "$WORK/serials.txt" | xargs -P 8 -I{} bash -c 'enroll_one {}'
check_eq "... and grown to $N again by 100 other certificates" "$N|100" \
  "$(sql "$DB" "select count(*), sum(c.device_serial > 'CAM0300') from log_leaves l
    join certificates c on c.cert_serial_hex = l.cert_serial_hex")"
mapfile -t CERTS < <(log_certs)
NOW_ROOT=$($LOGPY root $N "${CERTS[@]}")
check "... another tree than the signed one" test "$NOW_ROOT" != "$ROOT"

for p in 0/000 0/001.p/44 1/000.p/1; do check_eq "GET $p again: 200" 200 "$(tile "$p")"; done
check "1/000.p/1 is no longer the hash kept from the rows that were" \
  test "$(sha256sum <"$T/1_000.p_1")" != "$(sha256sum <"$WORK/level1.before")"
rc=0; out=$($PY root $N "$T" 2>&1) || rc=$?
check_eq "the tiles are one tree: the root of the certificates the log now holds (independent Python client)" \
  "0 $NOW_ROOT" "$rc $out"
check "... which a client holding the signed tree head of $N finds is not its root" test "$out" != "$ROOT"
check "the node said it dropped the kept hashes, one line" \
  grep -q 'event=tree_cache_dropped tree=tiles leaf=255 reason=changed' "$WORK/server.log"
SERVED=$(sha256sum <"$T/1_000.p_1")
check_eq "GET 1/000.p/1 once more: the same hash (computed again once, then kept)" \
  "200 $SERVED" "$(tile 1/000.p/1) $(sha256sum <"$T/1_000.p_1")"
check_eq "... dropped once only" 1 "$(grep -c 'event=tree_cache_dropped tree=tiles' "$WORK/server.log")"

# Level 2 is computed from level 1 and kept too: it must go with it. The log grown past 65536 leaves by rows planted
# in the file (random hashes; tiles read only leaf hashes), tile 2/000.p/1 served (levels 1 and 2 kept), then the
# last 256 of its leaves edited in place (the kept edge among them).
db_edit "WITH RECURSIVE n(i) AS (SELECT $N UNION ALL SELECT i + 1 FROM n WHERE i < 65791)
  INSERT INTO log_leaves (leaf_index, cert_serial_hex, leaf_hash) SELECT i, printf('planted%06d', i), randomblob(32) FROM n"
check_eq "GET 2/000.p/1 of a log of 65792 leaves: 200" 200 "$(tile 2/000.p/1)"
BEFORE=$(hex_root 0 65536)
check_eq "... the root of the first 65536 leaves" "$BEFORE" "$(hex_of "$T/2_000.p_1")"
db_edit "DROP TRIGGER log_leaves_no_update; UPDATE log_leaves SET leaf_hash = randomblob(32)
  WHERE leaf_index BETWEEN 65280 AND 65535"
AFTER=$(hex_root 0 65536)
check "leaves 65280-65535 edited in the database: another root" test "$AFTER" != "$BEFORE"
check_eq "GET 2/000.p/1 again: the root of the leaves as they now are" "200 $AFTER" \
  "$(tile 2/000.p/1) $(hex_of "$T/2_000.p_1")"
check "... the kept hashes dropped, one line" \
  grep -q 'event=tree_cache_dropped tree=tiles leaf=65535 reason=changed' "$WORK/server.log"
finish
