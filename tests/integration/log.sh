#!/usr/bin/env bash
# The issuance log end to end: the real CA on a real token; tree heads, inclusion and consistency proofs fetched
# with curl (no client certificate) and checked by an independent Python implementation of RFC 9162 and by
# openssl (signatures, the log certificate's chain); a device's proof file checked offline; audit verify naming
# each kind of tampering exactly. Usage: log.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"
PY="python3 $(dirname "$0")/log_check.py"

CA=$WORK/ca
DB=$CA/camtrust.db
ca_create "$CA" >/dev/null
check "init makes log.pem, certified by the operations issuing CA" \
  openssl verify -CAfile "$CA/ops-root.pem" -untrusted "$CA/ops-issuing.pem" "$CA/log.pem"
check_eq "... and signs the empty log's tree head" "0" "$(sql "$DB" "select tree_size from log_tree_heads")"
openssl x509 -in "$CA/log.pem" -pubkey -noout >"$WORK/logpub.pem"

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/station.key" -subj "/CN=line1" -out "$WORK/station.csr" 2>/dev/null
"$CA_BIN" station add --dir "$CA" --name line1 --csr "$WORK/station.csr" --out "$WORK/station.pem" >/dev/null
printf 'CAM0001\nCAM0002\nCAM0003\nCAM0004\nCAM0005\n' >"$WORK/serials.txt"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX100 --serials "$WORK/serials.txt" >/dev/null
WITH_HTTP=1 start_ca "$CA"
URL=https://localhost:$PORT
get() { curl -s -o "$2" -w '%{http_code}' --max-time 20 --cacert "$CA/ops-root.pem" "$URL$1" || true; }

check_eq "GET /log/sth without a client certificate: 200" 200 "$(get /log/sth "$WORK/sth0.json")"
check_eq "... the empty tree" 0 "$(jq .tree_size "$WORK/sth0.json")"

for s in CAM0001 CAM0002 CAM0003 CAM0004 CAM0005; do
  make_csr "$WORK/$s" "/serialNumber=$s/CN=x"
  est_post simpleenroll "$WORK/$s.b64" "$WORK/$s.p7b64" --cert "$WORK/station.pem" --key "$WORK/station.key" >/dev/null
  base64 -d "$WORK/$s.p7b64" | openssl pkcs7 -inform DER -print_certs 2>/dev/null | openssl x509 -outform DER -out "$WORK/$s.der"
done
check_eq "five cameras enrolled, five leaves in issuance order" "0 1 2 3 4" \
  "$(sql "$DB" "select l.leaf_index from log_leaves l join certificates c using (cert_serial_hex) order by c.rowid" | paste -sd' ')"
for _ in $(seq 1 50); do
  get /log/sth "$WORK/sth.json" >/dev/null
  [ "$(jq .tree_size "$WORK/sth.json")" = 5 ] && break
  sleep 0.1
done
check_eq "a tree head follows the burst of issuances (log.sth_delay_ms)" 5 "$(jq .tree_size "$WORK/sth.json")"
check "... at most one per burst (here: one per enrollment, plus the empty log's)" test "$(sql "$DB" "select count(*) from log_tree_heads")" -le 6
ROOT=$(jq -r .root_hash "$WORK/sth.json")
check_eq "its root is the RFC 9162 root of the five certificates (independent Python)" \
  "$($PY root 5 "$WORK"/CAM000{1,2,3,4,5}.der)" "$ROOT"
$PY tbs "$WORK/sth.json" "$WORK/tbs.bin"; $PY sig "$WORK/sth.json" "$WORK/sig.der"
check "openssl verifies its signature with the key of log.pem" \
  openssl dgst -sha256 -verify "$WORK/logpub.pem" -signature "$WORK/sig.der" "$WORK/tbs.bin"
code=$(curl -s -o "$WORK/plain.json" -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/log/sth")
check_eq "... also served over plain HTTP" "200 $ROOT" "$code $(jq -r .root_hash "$WORK/plain.json")"

# Inclusion proofs for every certificate, checked independently.
all=1
for s in CAM0001 CAM0002 CAM0003 CAM0004 CAM0005; do
  serial=$(openssl x509 -inform DER -in "$WORK/$s.der" -noout -serial | cut -d= -f2)
  [ "$(get "/log/proof/inclusion?serial=$serial" "$WORK/inc.json")" = 200 ] || all=0
  $PY inclusion "$WORK/$s.der" "$WORK/inc.json" "$WORK/sth.json" || all=0
done
check_eq "an inclusion proof per certificate verifies against the signed root" 1 "$all"
S3=$(openssl x509 -inform DER -in "$WORK/CAM0003.der" -noout -serial | cut -d= -f2)
get "/log/proof/inclusion?serial=$S3&tree_size=3" "$WORK/inc3.json" >/dev/null
check_eq "... in an older tree too (tree_size=3)" "2 3" "$(jq -r '"\(.leaf_index) \(.tree_size)"' "$WORK/inc3.json")"

# Consistency proofs between every pair of sizes.
all=1
for m in 1 2 3 4 5; do
  for n in $(seq "$m" 5); do
    [ "$(get "/log/proof/consistency?first=$m&second=$n" "$WORK/cons.json")" = 200 ] || all=0
    $PY consistency "$WORK/cons.json" "$($PY root "$m" "$WORK"/CAM000{1,2,3,4,5}.der)" \
      "$($PY root "$n" "$WORK"/CAM000{1,2,3,4,5}.der)" || all=0
  done
done
check_eq "consistency proofs for every 1 <= first <= second <= 5 verify" 1 "$all"

# Bad requests: a one-line reason each.
bad() { # bad "description" STATUS PATH [expected text]
  local code; code=$(get "$3" "$WORK/bad.txt")
  check_eq "$1: $2" "$2" "$code"
  if [ -n "${4:-}" ]; then check "... saying '$4'" grep -q "$4" "$WORK/bad.txt"; fi
}
bad "no serial" 400 "/log/proof/inclusion" "parameter serial is required"
bad "a serial that is not hex" 400 "/log/proof/inclusion?serial=xyz" "is not a certificate serial"
bad "a serial of 5000 characters" 400 "/log/proof/inclusion?serial=$(head -c 5000 /dev/zero | tr '\0' a)" "too long"
bad "an unknown serial" 404 "/log/proof/inclusion?serial=0badc0de" "no certificate with serial 0badc0de"
bad "tree_size not a number" 400 "/log/proof/inclusion?serial=$S3&tree_size=3x" "must be a decimal number"
bad "tree_size with 40 digits" 400 "/log/proof/inclusion?serial=$S3&tree_size=1234567890123456789012345678901234567890" "too long"
bad "a tree that does not hold the leaf" 400 "/log/proof/inclusion?serial=$S3&tree_size=2" "not in a tree of 2 leaves"
bad "a tree larger than the log" 400 "/log/proof/inclusion?serial=$S3&tree_size=99" "larger than the log"
bad "first=0" 400 "/log/proof/consistency?first=0&second=3" "need 1 <= first <= second"
bad "first > second" 400 "/log/proof/consistency?first=4&second=3"
bad "second beyond the log" 400 "/log/proof/consistency?first=1&second=6" "larger than the log"
bad "no second" 400 "/log/proof/consistency?first=1" "parameter second is required"
# Absurd sizes are refused against the log's size before anything is reserved for them (they once reserved
# 8.7 GB, or answered 500).
bad "second=2^38" 400 "/log/proof/consistency?first=1&second=274877906944" "second=274877906944 is larger than the log (5 certificates)"
bad "second=2^63-1" 400 "/log/proof/consistency?first=1&second=9223372036854775807" "larger than the log"
bad "first and second both past the log" 400 "/log/proof/consistency?first=9223372036854775807&second=9223372036854775807" "larger than the log"
bad "tree_size=2^63-1" 400 "/log/proof/inclusion?serial=$S3&tree_size=9223372036854775807" "tree_size=9223372036854775807 is larger than the log"
bad "tree_size=2^38" 400 "/log/proof/inclusion?serial=$S3&tree_size=274877906944" "larger than the log"
bad "an unknown log route" 404 "/log/nothing"

# The audit tree (checkpoints' camtrust-audit-root): its root and its consistency proofs, checked against the stored
# hashes of the audit entries by the same independent Python (leaf i: entry i + 1's hash).
get /log/checkpoint "$WORK/ckpt.note" >/dev/null
AN=$(sed -n 's/^camtrust-audit \([0-9]*\) .*/\1/p' "$WORK/ckpt.note")
sql "$DB" "select $(on_sqlite && echo "hex(hash)" || echo "encode(hash, 'hex')") from audit order by seq" >"$WORK/audit.hex"
audit_root() { $PY audit_root "$1" <"$WORK/audit.hex"; }
check_eq "the checkpoint's audit root is the RFC 9162 root of its $AN audit entries' hashes (independent Python)" \
  "$(audit_root "$AN")" "$(sed -n 's/^camtrust-audit-root //p' "$WORK/ckpt.note")"
all=1
for m in 1 2 $((AN / 2)) $((AN - 1)) "$AN"; do
  [ "$(get "/log/audit/proof/consistency?first=$m&second=$AN" "$WORK/acons.json")" = 200 ] || all=0
  $PY consistency "$WORK/acons.json" "$(audit_root "$m")" "$(audit_root "$AN")" || all=0
done
check_eq "audit tree consistency proofs from 1, 2, $((AN / 2)), $((AN - 1)) and $AN entries to $AN verify" 1 "$all"
bad "audit: first=0" 400 "/log/audit/proof/consistency?first=0&second=3" "need 1 <= first <= second"
bad "audit: first > second" 400 "/log/audit/proof/consistency?first=4&second=3" "need 1 <= first <= second"
bad "audit: second past the chain" 400 "/log/audit/proof/consistency?first=1&second=9223372036854775807" \
  "second=9223372036854775807 is larger than the audit chain"
bad "audit: second not a number" 400 "/log/audit/proof/consistency?first=1&second=3x" "must be a decimal number"
bad "audit: no first" 400 "/log/audit/proof/consistency?second=3" "parameter first is required"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA/ops-root.pem" -X POST --data x "$URL/log/sth")
check_eq "POST /log/sth: 405" 405 "$code"

# The device's own proof, kept and checked offline with log.pem alone.
check "camtrust-ca log proof writes CAM0003's proof" "$CA_BIN" log proof --dir "$CA" --serial "$S3" --out "$WORK/cam3.proof"
out=$("$CA_BIN" log verify-proof --proof "$WORK/cam3.proof" --log-cert "$CA/log.pem")
check "log verify-proof: valid, naming the certificate and its leaf" grep -q "proof valid: certificate .* (CAM0003) is leaf 2 of the tree of 5 leaves" <<<"$out"
openssl x509 -in "$CA/log.pem" -outform DER -out "$WORK/log.der"
check "... with a DER log certificate too" "$CA_BIN" log verify-proof --proof "$WORK/cam3.proof" --log-cert "$WORK/log.der"
rc=0; out=$("$CA_BIN" log verify-proof --proof "$WORK/cam3.proof" --log-cert "$CA/ocsp-signer.pem") || rc=$?
check_eq "another key's certificate: INVALID, exit 1" "1 proof INVALID: tree head signature does not verify with the log key" "$rc $out"
base64 -d <(grep -v -- '-----' "$WORK/cam3.proof") >"$WORK/cam3.der"
python3 -c "import sys; d=bytearray(open(sys.argv[1],'rb').read()); d[-5]^=1; open(sys.argv[2],'wb').write(d)" "$WORK/cam3.der" "$WORK/bad.der"
{ echo "-----BEGIN CAMTRUST LOG PROOF-----"; base64 -w64 "$WORK/bad.der"; echo "-----END CAMTRUST LOG PROOF-----"; } >"$WORK/bad.proof"
rc=0; out=$("$CA_BIN" log verify-proof --proof "$WORK/bad.proof" --log-cert "$CA/log.pem") || rc=$?
check_eq "a proof with one bit of its audit path flipped: INVALID" 1 "$rc"
check "... saying the path does not lead to the root" grep -q "audit path does not lead from leaf 2" <<<"$out"

heads=$(sql "$DB" "select count(*) from log_tree_heads")
rc=0; out=$("$CA_BIN" log sth --dir "$CA" 2>&1) || rc=$?
check "log sth while a node serves: refused, naming the signer" grep -q "^camtrust-ca: the signer lease is held by " <<<"$out"
check_eq "... exit 1, one line, no tree head" "1 1 $heads" "$rc $(wc -l <<<"$out") $(sql "$DB" "select count(*) from log_tree_heads")"
kill -TERM "$SERVER_PID"; rc=0; wait "$SERVER_PID" || rc=$?; SERVER_PID=
check_eq "SIGTERM stops the server cleanly" 0 "$rc"
check "the server logged each log request" grep -q 'path="/log/proof/inclusion" status=200 client="none" result="inclusion leaf=' "$WORK/server.log"
out=$("$CA_BIN" log sth --dir "$CA")
check "camtrust-ca log sth signs one on demand" grep -q "^tree head [0-9]*: size 5, timestamp [0-9]*, root " <<<"$out"
check_eq "... audited" 1 "$(sql "$DB" "select count(*) from audit where action='log.sth' and actor='cli' and detail like 'size=5 %'")"
out=$("$CA_BIN" audit verify --dir "$CA")
check "audit verify: both intact" grep -q "issuance log intact: 5 leaves, [0-9]* tree heads verified" <<<"$out"

# The rest plays the attacker who edits the SQLite file (sqlite3, triggers dropped): on SQLite only.
on_sqlite || { finish; exit $?; }
# Tampering, each on a fresh copy of the good database: audit verify names the first divergence and exits 1.
sqlite3 "$DB" ".backup '$WORK/good.db'"
leaf_serial() { sql "$WORK/good.db" "select cert_serial_hex from log_leaves where leaf_index = $1"; }
LAST_HEAD=$(sql "$WORK/good.db" "select max(id) from log_tree_heads")
NOTRIG="DROP TRIGGER log_leaves_no_update; DROP TRIGGER log_leaves_no_delete; DROP TRIGGER log_tree_heads_no_update; DROP TRIGGER log_tree_heads_no_delete;"
tamper() { # tamper "description" SQL "expected line"
  cp "$WORK/good.db" "$DB"; rm -f "$DB-wal" "$DB-shm"
  sqlite3 "$DB" "$NOTRIG $2"
  local rc=0 out; out=$("$CA_BIN" audit verify --dir "$CA" 2>&1) || rc=$?
  check_eq "$1" "1 issuance log BROKEN: $3" "$rc $(grep 'issuance log BROKEN' <<<"$out")"
}
tamper "a certificate's DER edited" "UPDATE certificates SET der = der || x'00' WHERE cert_serial_hex = '$(leaf_serial 2)'" \
  "log leaf 2: hash does not match certificate $(leaf_serial 2) (edited)"
tamper "a leaf deleted" "DELETE FROM log_leaves WHERE leaf_index = 3" "log leaf 3 missing (deleted)"
leaf_hex() { sql "$WORK/good.db" "select hex(leaf_hash) from log_leaves where leaf_index = $1"; }
tamper "two leaves swapped (reordered)" "UPDATE log_leaves SET cert_serial_hex = 'tmp' WHERE leaf_index = 1;
  UPDATE log_leaves SET cert_serial_hex = '$(leaf_serial 1)', leaf_hash = x'$(leaf_hex 1)' WHERE leaf_index = 2;
  UPDATE log_leaves SET cert_serial_hex = '$(leaf_serial 2)', leaf_hash = x'$(leaf_hex 2)' WHERE leaf_index = 1;" \
  "log leaf 2: certificate $(leaf_serial 1) was issued before the certificate of leaf 1 (reordered)"
tamper "the newest leaf deleted" "DELETE FROM log_leaves WHERE leaf_index = 4" "certificate $(leaf_serial 4) missing from the log"
tamper "a tree head's root forged" "UPDATE log_tree_heads SET root_hash = zeroblob(32) WHERE id = $LAST_HEAD" \
  "tree head $LAST_HEAD (size 5): root does not match the leaves"
tamper "a tree head's timestamp moved" "UPDATE log_tree_heads SET timestamp_ms = timestamp_ms + 1 WHERE id = $LAST_HEAD" \
  "tree head $LAST_HEAD: signature does not verify"
tamper "a forged tree head added" "INSERT INTO log_tree_heads (tree_size, timestamp_ms, root_hash, signature) SELECT tree_size, timestamp_ms + 5, root_hash, signature FROM log_tree_heads WHERE id = $LAST_HEAD" \
  "tree head $((LAST_HEAD + 1)): signature does not verify"
cp "$WORK/good.db" "$DB"; rm -f "$DB-wal" "$DB-shm"
check "the good database verifies again" "$CA_BIN" audit verify --dir "$CA"
finish
