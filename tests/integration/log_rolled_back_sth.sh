#!/usr/bin/env bash
# Someone who writes the CA's database (not its folder, not its token) rolls the issuance log back under a serving
# node (as an older copy put back would: leaves 30-39 gone), and the node issues 20 other certificates. The signing
# path kept its tree's right edge (40 leaves) and only read the leaves past it: it signed, with the token, a tree
# head of 50 over the 40 leaves that were plus the 10 last new ones, a tree no database ever held (the checkpoint
# after it was refused, the tree head was not). Now it reads its last leaf again first, as the proofs' and tiles'
# caches do, builds the tree again from the rows when it changed (one warning line), and signs no tree head over the
# rolled-back database, as it signs no checkpoint there: the tree of the rows would not extend the one of 40 signed.
# Usage: log_rolled_back_sth.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/tiles_lib.sh"
if ! on_sqlite; then echo "skipped: the rows are deleted in the SQLite file"; exit 77; fi

tiles_ca 60
head -n 40 "$WORK/serials.txt" | xargs -P 8 -I{} bash -c 'enroll_one {}'
wait_sth 40
mapfile -t CERTS < <(log_certs)
rows_root() { $LOGPY root "$1" "${CERTS[@]}" | tr -d '\n'; }
sth_root() { jq -r .root_hash "$WORK/sth.json"; }
check_eq "the tree head of 40: the root of the rows" "40 $(rows_root 40)" "$(jq .tree_size "$WORK/sth.json") $(sth_root)"

db_edit "DROP TRIGGER log_leaves_no_delete; DELETE FROM log_leaves WHERE leaf_index >= 30"
sed -n 41,60p "$WORK/serials.txt" | xargs -P 8 -I{} bash -c 'enroll_one {}'
check_eq "the log rolled back to 30 and grown to 50 by 20 other certificates" 50 \
  "$(sql "$DB" "select count(*) from log_leaves")"
R40=$(sth_root)
for _ in $(seq 1 150); do grep -q 'event=log_sth error=' "$WORK/server.log" && break; sleep 0.1; done
curl -s -o "$WORK/sth.json" --max-time 20 "$PLAIN/log/sth" || true
check_eq "the node signed no tree head over the rolled-back database: the one served is still of the 40 that were" \
  "40 $R40" "$(jq .tree_size "$WORK/sth.json") $(sth_root)"
check_eq "... and none is recorded past it" 40 "$(sql "$DB" "select max(tree_size) from log_tree_heads")"
openssl x509 -in "$CA/log.pem" -pubkey -noout >"$WORK/logpub.pem"
$LOGPY tbs "$WORK/sth.json" "$WORK/tbs.bin"; $LOGPY sig "$WORK/sth.json" "$WORK/sig.der"
check "... that one signed in the token (openssl verifies it with the key of log.pem)" \
  openssl dgst -sha256 -verify "$WORK/logpub.pem" -signature "$WORK/sig.der" "$WORK/tbs.bin"
# (leaf 39 gone, or already another: the signer may look while the 20 are being issued)
check "the node said it built its tree again" \
  grep -Eq 'event=tree_cache_dropped tree=signing leaf=39 reason=(changed|gone)' "$WORK/server.log"
# (the tree built again passes through the one of 40 it signed, not as it was: that is said first when it is seen first)
check "... and said why: the database is older than the kept checkpoint, or the tree of 40 is not the one signed" \
  grep -Eq "event=log_sth error=\"(the database is older than checkpoint.note|the log's first 40 leaves are not those of)" \
  "$WORK/server.log"
finish
