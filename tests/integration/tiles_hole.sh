#!/usr/bin/env bash
# A cost attack on a log with a hole. Someone who writes the CA's database once leaves a row missing deep in the
# log (or a damaged copy is put back). Then anyone, with no rights at all, asks again and again for a hash tile
# whose leaves run past the hole. Each answer is a 500 (the log is broken). But the kept hashes were only noted
# when a growth succeeded completely, so every request read every row up to the hole again (about 11 MB here, all
# 196,000 of them) and threw away the hashes it had computed. Now each chunk's hash is kept as soon as it is
# computed: a request after the first reads only the chunk with the hole. The bytes the server process read
# (/proc/PID/io rchar) are counted, not the time taken. Then the hole is filled: the tiles hold the hashes of the
# rows as they now are.
# Usage: tiles_hole.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/tiles_lib.sh"
if ! on_sqlite; then echo "skipped: the rows are written into the SQLite file"; exit 77; fi
LEAVES=200000 HOLE=196000

tiles_ca 1
# A lease tick of 120 s: the signer's own read of the rows planted below (up to the hole, 11 MB, at its next tick: every
# 2 s by default) is not counted as the tile requests' (under load it spanned both counts: 3 MB over the three below).
cleanup_server
sed -i 's/^node.lease_ms = .*/node.lease_ms = 600000/' "$CA/camtrust-ca.conf"
WITH_HTTP=1 start_ca "$CA"
PLAIN=http://127.0.0.1:$HTTP_PORT
# Leaf hashes only (random ones, as tiles_rewritten.sh plants): hash tiles read nothing else.
db_edit "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $LEAVES - 1)
  INSERT INTO log_leaves (leaf_index, cert_serial_hex, leaf_hash) SELECT i, printf('planted%06d', i), randomblob(32) FROM n;
  DROP TRIGGER log_leaves_no_delete; DELETE FROM log_leaves WHERE leaf_index = $HOLE"
rchar() { sed -n 's/^rchar: //p' "/proc/$SERVER_PID/io"; }

# 2/000.p/3 needs leaves 0-196607: the hole (196000) is among them.
BEFORE=$(rchar)
check_eq "GET 2/000.p/3 over the hole: 500" 500 "$(tile 2/000.p/3)"
FIRST=$(($(rchar) - BEFORE))
check "... the first one read the rows up to the hole (more than 5 MB: $FIRST bytes)" test "$FIRST" -gt 5000000
BEFORE=$(rchar)
for i in 1 2 3; do check_eq "GET 2/000.p/3 again ($i): 500" 500 "$(tile 2/000.p/3)"; done
AGAIN=$(($(rchar) - BEFORE))
check "... three more read less than 1 MB together, not the rows up to the hole each ($AGAIN bytes)" \
  test "$AGAIN" -lt 1000000
check "... the server says which leaf is missing" grep -q "log leaf $HOLE is missing" "$WORK/server.log"

# The hashes kept before the hole are those of the rows; once the hole is filled, so are the ones past it.
check_eq "GET 2/000.p/2 (before the hole): the roots of its rows" "200 $(hex_root 0 65536)$(hex_root 65536 65536)" \
  "$(tile 2/000.p/2) $(hex_of "$T/2_000.p_2")"
db_edit "INSERT INTO log_leaves (leaf_index, cert_serial_hex, leaf_hash) VALUES ($HOLE, 'filled', randomblob(32))"
check_eq "the hole filled: GET 2/000.p/3 holds the roots of the rows as they now are" \
  "200 $(hex_root 0 65536)$(hex_root 65536 65536)$(hex_root 131072 65536)" "$(tile 2/000.p/3) $(hex_of "$T/2_000.p_3")"
check_eq "GET 1/003.p/1 (leaves 196608-196863): its root" "200 $(hex_root 196608 256)" \
  "$(tile 1/003.p/1) $(hex_of "$T/1_003.p_1")"
check_eq "nothing was dropped (no row under the kept hashes changed)" 0 "$(grep -c 'event=tree_cache_dropped' "$WORK/server.log" || true)"
finish
