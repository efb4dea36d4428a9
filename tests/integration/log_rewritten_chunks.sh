#!/usr/bin/env bash
# Someone who writes the CA's database (not its folder, not its token) rewrites every leaf of the issuance log while a
# request is between the check of the kept chunk roots at their edge and the read of the chunks after it (held there:
# failpoint log:chunks-read for the proof cache, tiles:chunks-read for the tile cache, until a file exists). Read
# apart, the node kept the roots of the rows that were, added the roots of the new rows after them and moved its edge
# onto the new rows: it served a consistency proof and a level-1 tile of a tree no database held, and went on serving
# them (the edge, now the new rows', never seen changed). Now each chunk is read with the edge before it in one query
# and taken only while that leaf is still the edge: the kept roots are dropped (one line) and computed from the rows.
# Usage: log_rewritten_chunks.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/tiles_lib.sh"
if ! on_sqlite; then echo "skipped: the rows are rewritten in the SQLite file"; exit 77; fi

# serve_held POINT: the CA served again, its requests held at failpoint POINT while $WORK/release is absent.
serve_held() {
  cleanup_server
  HOLD=$1
  touch "$WORK/release"
  CAMTRUST_FAILPOINT=$HOLD CAMTRUST_FAILPOINT_RELEASE=$WORK/release WITH_HTTP=1 start_ca "$CA"
  PLAIN=http://127.0.0.1:$HTTP_PORT
}
held() { grep -c "event=failpoint_held point=\"$HOLD\"" "$WORK/server.log" || true; }
# rewritten_under URL OUT: GET URL held at the hold point, every leaf rewritten meanwhile (one transaction), then let
# go; the body into OUT, the status printed.
rewritten_under() {
  local before pid
  before=$(held)
  rm -f "$WORK/release"
  curl -s -o "$2" -w '%{http_code}' --max-time 60 "$1" >"$WORK/status" &
  pid=$!
  for _ in $(seq 1 300); do [ "$(held)" -gt "$before" ] && break; sleep 0.05; done
  [ "$(held)" -gt "$before" ] || echo -n "not held: "
  db_edit "BEGIN IMMEDIATE; DROP TRIGGER IF EXISTS log_leaves_no_update; UPDATE log_leaves SET leaf_hash = randomblob(32);
    COMMIT"
  touch "$WORK/release"
  wait "$pid" || true
  cat "$WORK/status"
}
# hex_path PROOF.json: its consistency path, the hashes in hex one after the other.
hex_path() {
  python3 -c 'import base64, json, sys
print("".join(base64.b64decode(h).hex() for h in json.load(open(sys.argv[1]))["consistency_path"]))' "$1"
}
proof() { curl -s -o "$2" -w '%{http_code}' --max-time 60 "$PLAIN/log/proof/consistency?$1" || true; }

tiles_ca 1
# A lease tick of 120 s: the signer signs nothing over the rows planted and rewritten below (no tree head or checkpoint
# of them to fork: the node starts again over them).
sed -i 's/^node.lease_ms = .*/node.lease_ms = 600000/' "$CA/camtrust-ca.conf"
serve_held log:chunks-read
# Leaf hashes only (random ones, as tiles_rewritten.sh plants): proofs and hash tiles read nothing else.
db_edit "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2047)
  INSERT INTO log_leaves (leaf_index, cert_serial_hex, leaf_hash) SELECT i, printf('planted%06d', i), randomblob(32) FROM n"
check_eq "2048 leaves" 2048 "$(sql "$DB" "select count(*) from log_leaves")"

check_eq "a consistency proof 1 -> 1024 (the proof cache keeps chunk 0: its edge is leaf 1023)" 200 \
  "$(proof 'first=1&second=1024' "$WORK/warm.json")"
check_eq "the proof 1536 -> 2048, every leaf rewritten while it is held between the check of leaf 1023 and the read of \
chunk 1: 200" 200 "$(rewritten_under "$PLAIN/log/proof/consistency?first=1536&second=2048" "$WORK/proof.json")"
WANT=$(hex_root 1024 512)$(hex_root 1536 512)$(hex_root 0 1024)
check_eq "... the proof of the rows as they now are (MTH of leaves 1024-1535, 1536-2047, 0-1023), not one with the \
root of chunk 0 kept from the rows that were" "$WANT" "$(hex_path "$WORK/proof.json")"
check "... the kept roots dropped, one line" \
  grep -q 'event=tree_cache_dropped tree=log leaf=1023 reason=changed' "$WORK/server.log"
check_eq "asked again: the proof of the rows" "200 $WANT" \
  "$(proof 'first=1536&second=2048' "$WORK/again.json") $(hex_path "$WORK/again.json")"

serve_held tiles:chunks-read
check_eq "GET 1/000.p/1 (the tile cache keeps chunk 0 of 256 leaves: its edge is leaf 255)" 200 "$(tile 1/000.p/1)"
check_eq "GET 1/000.p/8, every leaf rewritten while it is held between the check of leaf 255 and the read of chunk 1: \
200" 200 "$(rewritten_under "$PLAIN/log/tile/1/000.p/8" "$T/1_000.p_8")"
WANT=$(for i in $(seq 0 7); do hex_root $((i * 256)) 256; done | tr -d '\n')
check_eq "... the roots of the rows as they now are, not the one of chunk 0 kept from the rows that were" "$WANT" \
  "$(hex_of "$T/1_000.p_8")"
check "... the kept hashes dropped, one line" \
  grep -q 'event=tree_cache_dropped tree=tiles leaf=255 reason=changed' "$WORK/server.log"
check_eq "asked again: the roots of the rows" "200 $WANT" "$(tile 1/000.p/8) $(hex_of "$T/1_000.p_8")"
finish
