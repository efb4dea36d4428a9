#!/usr/bin/env bash
# The issuance log as C2SP tlog-tiles, end to end: the real CA on a real token issues 300 certificates over EST;
# its hash tiles and entry bundles, fetched with curl over plain HTTP (no client certificate), are checked by an
# independent Python client (tiles_check.py): the tiles reproduce the root of the signed tree head of 300, the
# entry bundles hold exactly the certificates EST returned, in order. Caching headers, HTTPS, and a one-line
# refusal for every malformed path (400) and every tile beyond the log (404). Usage: tiles.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/tiles_lib.sh"
N=300

tiles_ca $N
header() { tr -d '\r' <"$WORK/h.txt" | sed -n "s/^$1: //Ip"; }
bad() { # bad "description" STATUS PATH "expected text"
  local code; code=$(curl -s -o "$WORK/bad.txt" -w '%{http_code}' --max-time 20 "$PLAIN/log/tile/$3" || true)
  check_eq "$1: $2" "$2" "$code"
  check "... saying '$4'" grep -qF "$4" "$WORK/bad.txt"
  check_eq "... in one line" 1 "$(wc -l <"$WORK/bad.txt")"
}

bad "the empty log has no tiles" 404 "0/000.p/1" "tile 0/000.p/1 is beyond the log (0 leaves)"
bad "... and no entries" 404 "entries/000.p/1" "tile entries/000.p/1 is beyond the log (0 leaves)"

xargs -P 8 -I{} bash -c 'enroll_one {}' <"$WORK/serials.txt"
# the certificates EST returned, in the log's order
mapfile -t CERTS < <(log_certs)
check_eq "$N certificates issued" $N "$(sql "$DB" "select count(*) from log_leaves")"
wait_sth $N
check_eq "the signed tree head covers all $N" $N "$(jq .tree_size "$WORK/sth.json")"
ROOT=$(jq -r .root_hash "$WORK/sth.json")

# A tree of 300 leaves: level 0 is one full tile and one of 44, level 1 one of width 1.
check_eq "GET /log/tile/0/000 (full) over plain HTTP: 200" 200 "$(tile 0/000)"
check_eq "... application/octet-stream" application/octet-stream "$(header content-type)"
check_eq "... immutable" "public, max-age=31536000, immutable" "$(header cache-control)"
check_eq "... 256 hashes" 8192 "$(stat -c %s "$T/0_000")"
check_eq "GET /log/tile/0/001.p/44 (partial): 200" 200 "$(tile 0/001.p/44)"
check_eq "... cached briefly only" "public, max-age=60" "$(header cache-control)"
check_eq "... 44 hashes" 1408 "$(stat -c %s "$T/0_001.p_44")"
check_eq "GET /log/tile/1/000.p/1: 200" 200 "$(tile 1/000.p/1)"
check_eq "GET /log/tile/entries/000: 200" 200 "$(tile entries/000)"
check_eq "... immutable" "public, max-age=31536000, immutable" "$(header cache-control)"
check_eq "GET /log/tile/entries/001.p/44: 200" 200 "$(tile entries/001.p/44)"
check_eq "the tiles reproduce the signed root of $N (independent Python client)" "$ROOT" "$($PY root $N "$T")"
check_eq "... which is the RFC 9162 root of the certificates EST returned" "$ROOT" "$($LOGPY root $N "${CERTS[@]}")"
check "the entry bundles hold exactly the issued certificates, in order, each hashing to its leaf" \
  $PY entries $N "$T" "${CERTS[@]}"

# An older tree (a client holding an older checkpoint) is reproduced from partial tiles of the same log.
for p in 0/000.p/5 entries/000.p/5; do tile "$p" >/dev/null; done
check_eq "0/000.p/5 is the first 5 hashes of 0/000" "$(head -c 160 "$T/0_000" | sha256sum)" "$(sha256sum <"$T/0_000.p_5")"
check_eq "... and reproduces the root of the first 5 certificates" "$($LOGPY root 5 "${CERTS[@]:0:5}")" "$($PY root 5 "$T")"
check "... entries/000.p/5 their entries" $PY entries 5 "$T" "${CERTS[@]:0:5}"

# Entry bundles compressed at the HTTP layer (tlog-tiles: SHOULD), gzip when the client accepts it.
check_eq "entries sent as they are when gzip is not asked for: no Content-Encoding" "" "$(header content-encoding)"
check_eq "... Vary: Accept-Encoding (caches keep both)" Accept-Encoding "$(header vary)"
gz() { # gz PATH ACCEPT-ENCODING: the raw body into $WORK/gz.bin, headers into $WORK/h.txt; prints the status
  curl -s -D "$WORK/h.txt" -o "$WORK/gz.bin" -w '%{http_code}' --max-time 20 -H "Accept-Encoding: $2" "$PLAIN/log/tile/$1" || true
}
check_eq "Accept-Encoding: gzip: entries/000 200" 200 "$(gz entries/000 gzip)"
check_eq "... Content-Encoding: gzip" gzip "$(header content-encoding)"
check_eq "... Vary: Accept-Encoding" Accept-Encoding "$(header vary)"
check_eq "... still immutable" "public, max-age=31536000, immutable" "$(header cache-control)"
check_eq "... gunzip gives the bundle's bytes" "$(sha256sum <"$T/entries_000")" "$(gunzip -c "$WORK/gz.bin" | sha256sum)"
check "... smaller than the bundle" test "$(stat -c %s "$WORK/gz.bin")" -lt "$(stat -c %s "$T/entries_000")"
check_eq "a client that asks (curl --compressed) gets the same bundle" "$(sha256sum <"$T/entries_001.p_44")" \
  "$(curl -s --compressed --max-time 20 "$PLAIN/log/tile/entries/001.p/44" | sha256sum)"
check_eq "gzip;q=0: sent as it is" "200 $(sha256sum <"$T/entries_000")" "$(gz entries/000 'gzip;q=0, *') $(sha256sum <"$WORK/gz.bin")"
check_eq "... no Content-Encoding" "" "$(header content-encoding)"
check_eq "hash tiles are not compressed (random bytes)" "200 " "$(gz 0/000 gzip) $(header content-encoding)"
check_eq "an error is sent as it is" "404 " "$(gz entries/009 gzip) $(header content-encoding)"
code=$(curl -s -o "$WORK/https.bin" -w '%{http_code}' --max-time 20 --cacert "$CA/ops-root.pem" --compressed \
  "https://localhost:$PORT/log/tile/entries/000" || true)
check_eq "over HTTPS too" "200 $(sha256sum <"$T/entries_000")" "$code $(sha256sum <"$WORK/https.bin")"

code=$(curl -s -o "$WORK/https.bin" -w '%{http_code}' --max-time 20 --cacert "$CA/ops-root.pem" \
  "https://localhost:$PORT/log/tile/0/001.p/44" || true)
check_eq "over HTTPS too, the same bytes" "200 $(sha256sum <"$T/0_001.p_44")" "$code $(sha256sum <"$WORK/https.bin")"
code=$(curl -s -I -o "$WORK/head.txt" -w '%{http_code}' --max-time 20 "$PLAIN/log/tile/0/000" || true)
check_eq "HEAD answers as GET, without the body" "200 8192" "$code $(tr -d '\r' <"$WORK/head.txt" | sed -n 's/^content-length: //Ip')"
code=$(curl -s -o "$WORK/bad.txt" -w '%{http_code}' --max-time 20 -X POST --data x "$PLAIN/log/tile/0/000" || true)
check_eq "POST: 405" 405 "$code"

# Beyond the log: 404, never a tile that would have to change later.
bad "the full tile of a partial one" 404 "0/001" "tile 0/001 is beyond the log ($N leaves)"
bad "wider than the log" 404 "0/001.p/45" "tile 0/001.p/45 is beyond the log"
bad "past the end" 404 "0/002.p/1" "beyond the log"
bad "level 1 full" 404 "1/000" "tile 1/000 is beyond the log"
bad "level 2" 404 "2/000.p/1" "beyond the log"
bad "level 63" 404 "63/000.p/1" "beyond the log"
bad "entries past the end" 404 "entries/001" "tile entries/001 is beyond the log"
bad "the largest index" 404 "0/x018/x446/x744/x073/x709/x551/615" "beyond the log"
# Malformed: 400, each with its reason.
bad "an index not in 3-digit groups" 400 "0/1" "index groups must be 3 digits"
bad "a leading x000 group" 400 "0/x000/001" "leading x000 group"
bad "a group without x" 400 "0/001/002" "index group without its x prefix"
bad "x on the last group" 400 "0/x001" "x prefix on the last index group"
bad "width 0" 400 "0/000.p/0" "width 0 is out of range (1..255)"
bad "width 256" 400 "0/000.p/256" "width 256 is out of range (1..255)"
bad "a width with a leading zero" 400 "0/000.p/05" "width has a leading zero"
bad "level 64" 400 "64/000" "level 64 is out of range (0..63)"
bad "a level with a leading zero" 400 "00/000" "level has a leading zero"
bad "an index past 2^64" 400 "0/x018/x446/x744/x073/x709/x551/616" "index is too large"
bad "a trailing slash" 400 "0/000/" "index group without its x prefix"
bad "text after the width" 400 "0/000.p/5.gz" "unexpected text after the width"
bad "a long path" 400 "0/$(head -c 3000 /dev/zero | tr '\0' 0)" "too long"
bad "a bare prefix" 400 "" "level must be a decimal number"

# The rest plays the attacker who edits the SQLite file (sqlite3, triggers dropped): on SQLite only.
on_sqlite || { finish; exit $?; }
# The attacker with write access to the database (triggers dropped) edits the log under the running server: the
# server serves what the database holds, and any client of the tiles sees it disagree with the signed tree head.
cp "$T/0_000" "$WORK/0_000.before"
sqlite3 "$DB" "drop trigger log_leaves_no_update; update log_leaves set leaf_hash = zeroblob(32) where leaf_index = 3"
check_eq "a leaf hash edited in the database: 0/000 changes" 200 "$(tile 0/000)"
check "... and differs from what was served before" test "$(sha256sum <"$T/0_000")" != "$(sha256sum <"$WORK/0_000.before")"
rc=0; out=$($PY root $N "$T" 2>&1) || rc=$?
check_eq "... which a tiles client catches" "1 tile 0_000 does not hash to hash 0 of level 1" "$rc $out"
cp "$WORK/0_000.before" "$T/0_000"
serial=$(sql "$DB" "select cert_serial_hex from log_leaves where leaf_index = 7")
python3 -c "import sys; d=bytearray(open(sys.argv[1],'rb').read()); d[-5]^=1; open(sys.argv[2],'wb').write(d)" \
  "${CERTS[7]}" "$WORK/tampered.der"
sqlite3 "$DB" "update certificates set der = readfile('$WORK/tampered.der') where cert_serial_hex = '$serial'"
check_eq "a certificate edited in the database: entries/000 still served" 200 "$(tile entries/000)"
rc=0; out=$($PY entries $N "$T" "${CERTS[@]}" 2>&1) || rc=$?
check_eq "... and caught: it is not what was issued" "1 entry bundles differ from the issued certificates" "$rc $out"
rc=0; out=$($PY entries $N "$T" "${CERTS[@]:0:7}" "$WORK/tampered.der" "${CERTS[@]:8}" 2>&1) || rc=$?
check_eq "... the bundle serves the edited bytes, which no longer hash to leaf 7 of the level-0 tile" \
  "1 entry 7 does not hash to its level-0 tile hash" "$rc $out"

check "the server logs each tile request in one line" grep -q 'path="/log/tile/0/001.p/44" status=200' "$WORK/server.log"
kill -TERM "$SERVER_PID"; rc=0; wait "$SERVER_PID" || rc=$?; SERVER_PID=
check_eq "SIGTERM stops the server cleanly" 0 "$rc"
finish
