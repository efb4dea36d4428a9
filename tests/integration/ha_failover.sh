#!/usr/bin/env bash
# High availability: two CA nodes serve one database at once (two processes on one SQLite file, WAL; on
# PostgreSQL with CAMTRUST_TEST_DB=postgresql under tests/helpers/pg.sh), both answering EST, OCSP, /crl and /log;
# one of them holds the signer lease. A load of enrollments is spread over both; the signer is killed with kill -9
# in the middle; the clients retry on the other node. Then: every certificate a client received is in the database
# and the issuance log exactly once, no serial twice, re-sent requests get the same certificate, audit verify
# passes, the lease moved (audited), the new signer signs a checkpoint of the whole log; a revocation is in both
# nodes' OCSP and CRL answers, and an older CRL put back in the database is not served; with no node able to sign,
# both answer /crl with 503.
# Usage: ha_failover.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

N=${HA_ENROLLMENTS:-48}   # enrollments in the load
WORKERS=6
LEASE_MS=2000             # node.lease_ms: a short lease, so that the takeover fits the test's time

CA=$WORK/ca
ca_create "$CA" >/dev/null
DB=$CA/camtrust.db
sed -i "s/^node.lease_ms = .*/node.lease_ms = $LEASE_MS/" "$CA/camtrust-ca.conf"
# dbq SQL: a look at the one database both nodes serve (and the attacker's edits): the SQLite file, or the
# PostgreSQL database db.url names (CAMTRUST_TEST_DB=postgresql). Rows as "a|b".
if grep -q '^db.backend = postgresql' "$CA/camtrust-ca.conf"; then
  DB_URL=$(sed -n 's/^db.url = //p' "$CA/camtrust-ca.conf")
  PSQL=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)/psql
  dbq() { "$PSQL" -X -qAt -v ON_ERROR_STOP=1 "$DB_URL" -c "$1"; }
  blob_sql() { echo "decode('$(xxd -p "$1" | tr -d '\n')', 'hex')"; } # a file's bytes as an SQL value
  echo "# on PostgreSQL: $DB_URL"
else
  dbq() { sqlite3 -cmd ".timeout 5000" "$DB" "$1"; }
  blob_sql() { echo "X'$(xxd -p "$1" | tr -d '\n')'"; }
fi
serials=(); for i in $(seq -w 1 "$N"); do serials+=("HA$i"); done
station_with_order line-ha "${serials[@]}"
for s in "${serials[@]}"; do make_csr "$WORK/$s" "/serialNumber=$s/CN=x"; done

# bad node ids: refused before anything is served, with one line
rc=0; out=$(bounded 30 "$CA_BIN" serve --dir "$CA" --listen 127.0.0.1:0 --http-listen '' --node-id 'node a;x' 2>&1) || rc=$?
check "serve --node-id 'node a;x' is refused with one line" \
  bash -c "[ $rc != 0 ] && grep -q \"node id 'node a;x': 1-63 letters\" <<<\"\$0\" && ! grep -q event=listening <<<\"\$0\"" "$out"
cp "$CA/camtrust-ca.conf" "$WORK/conf.saved"
sed -i 's|^node.id = .*|node.id = a/b|' "$CA/camtrust-ca.conf"
rc=0; out=$(bounded 30 "$CA_BIN" serve --dir "$CA" --listen 127.0.0.1:0 --http-listen '' 2>&1) || rc=$?
check "node.id = a/b in the config is refused" bash -c "[ $rc != 0 ] && grep -q 'config node.id' <<<\"\$0\"" "$out"
cp "$WORK/conf.saved" "$CA/camtrust-ca.conf"

. "$(dirname "$0")/ha_lib.sh"
start_node node-a
start_node node-b
check "node-a took the signer lease at start" grep -q 'event=node id="node-a" signer=yes' "$WORK/node-a.log"
check "node-b serves without it" grep -q 'event=node id="node-b" signer=no' "$WORK/node-b.log"

# enroll_at PORT SERIAL OUT: one EST enrollment at one node; prints the HTTP status (000: no answer), or "cut" when
# the answer broke off (a node killed between its status line and the end of its body: curl says 200 and fails).
enroll_at() {
  curl -s -o "$3" -w '%{http_code}' --max-time 20 --cacert "$CA/ops-root.pem" -H "Content-Type: application/pkcs10" \
    --data-binary "@$WORK/$2.b64" --cert "$WORK/station.pem" --key "$WORK/station.key" \
    "https://localhost:$1/.well-known/est/simpleenroll" >"$3.code" || echo cut >"$3.code"
  cat "$3.code"
}
# A client: its share of the serials, each first at its node (alternating), then at the other one on no answer
# or 5xx, a few rounds. Writes SERIAL.p7b64 and a line "SERIAL PORT" per certificate received.
client() {
  local w=$1 i s code ports try
  for ((i = w; i < N; i += WORKERS)); do
    s=${serials[$i]}
    if ((i % 2)); then ports=("$PORT_node_a" "$PORT_node_b"); else ports=("$PORT_node_b" "$PORT_node_a"); fi
    for try in 0 1 2 3 4 5; do
      code=$(enroll_at "${ports[$((try % 2))]}" "$s" "$WORK/$s.p7b64")
      if [ "$code" = 200 ]; then echo "$s ${ports[$((try % 2))]}" >>"$WORK/received.$w"; break; fi
      echo "$s try=$try port=${ports[$((try % 2))]} status=$code" >>"$WORK/retries.$w"
      sleep 0.2
    done
  done
}
CLIENT_PIDS=()
for ((w = 0; w < WORKERS; w++)); do client "$w" & CLIENT_PIDS+=($!); done
# kill -9 the signer once a third of the load is answered (bounded wait)
for _ in $(seq 1 600); do
  [ "$(cat "$WORK"/received.* 2>/dev/null | wc -l)" -ge $((N / 3)) ] && break
  sleep 0.05
done
kill -KILL "$PID_node_a"
KILLED_AT=$(date +%s.%N)
done_before_kill=$(cat "$WORK"/received.* 2>/dev/null | wc -l)
for pid in "${CLIENT_PIDS[@]}"; do wait "$pid" || echo "# a client ended with status $?"; done
wait "$PID_node_a" 2>/dev/null || true
echo "# $done_before_kill of $N answered when node-a was killed; $(cat "$WORK"/retries.* 2>/dev/null | wc -l) retries"
check_eq "every client got a certificate (retrying on the other node)" "$N" "$(cat "$WORK"/received.* | wc -l)"
check "... some of them from node-a before it died, the rest from node-b" \
  bash -c "grep -q ' $PORT_node_a\$' $WORK/received.* && grep -q ' $PORT_node_b\$' $WORK/received.*"

# the certificates received, by serial
: >"$WORK/received-serials"
for s in "${serials[@]}"; do
  base64 -d "$WORK/$s.p7b64" 2>/dev/null | openssl pkcs7 -inform DER -print_certs -out "$WORK/$s.pem" 2>/dev/null || true
  # (a missing certificate must fail the checks below, not end the script under pipefail)
  { openssl x509 -in "$WORK/$s.pem" -noout -serial 2>/dev/null || echo "missing-$s"; } | cut -d= -f2 | tr 'A-F' 'a-f' |
    sed 's/^\(00\)*//' >>"$WORK/received-serials"
done
check_eq "a certificate for each serial" "$N" "$(grep -c . "$WORK/received-serials")"
check_eq "no certificate serial twice among them" "$N" "$(sort -u "$WORK/received-serials" | grep -c .)"
in_db=0 in_log=0
while read -r cs; do
  [ "$(dbq "select count(*) from certificates where cert_serial_hex = '$cs'")" = 1 ] && in_db=$((in_db + 1))
  [ "$(dbq "select count(*) from log_leaves where cert_serial_hex = '$cs'")" = 1 ] && in_log=$((in_log + 1))
done <"$WORK/received-serials"
check_eq "each received certificate is in the database exactly once" "$N" "$in_db"
check_eq "... and in the issuance log exactly once" "$N" "$in_log"
check_eq "one current device certificate per device serial, none more" "$N|$N" \
  "$(dbq "select count(*), count(distinct device_serial) from certificates where profile = 'device'" )"
check_eq "the log's leaves are 0..n-1, one per certificate" "1" \
  "$(dbq "select case when count(*) = max(leaf_index) + 1 and count(*) = count(distinct cert_serial_hex) then 1 else 0 end from log_leaves")"

# every request sent again, to the surviving node (half of them were answered by node-a first)
same=0
for s in "${serials[@]}"; do
  code=$(enroll_at "$PORT_node_b" "$s" "$WORK/$s.again.p7b64")
  [ "$code" = 200 ] && cmp -s <(base64 -d "$WORK/$s.p7b64") <(base64 -d "$WORK/$s.again.p7b64") && same=$((same + 1))
done
check_eq "re-sent requests get the same certificate from the surviving node" "$N" "$same"

# the lease moved
for _ in $(seq 1 300); do grep -q 'event=lease_taken.*holder="node-b"' "$WORK/node-b.log" && break; sleep 0.05; done
check "node-b took the signer lease from node-a" grep -q 'event=lease_taken lease=signer holder="node-b" previous="node-a"' "$WORK/node-b.log"
TAKEN=$(sed -n 's/^ts=\([^ ]*\) .*event=lease_taken.*holder="node-b".*/\1/p' "$WORK/node-b.log" | head -1)
echo "# takeover: node-b took the lease $(awk -v a="$KILLED_AT" -v b="$(date -d "$TAKEN" +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s after kill -9 of node-a (node.lease_ms=$LEASE_MS)"
check_eq "the database names node-b the holder" "node-b" "$(dbq "select holder from leases where name = 'signer'")"
check_eq "the takeover is audited (lease.take, actor node-b, previous node-a)" 1 \
  "$(dbq "select count(*) from audit where action = 'lease.take' and actor = 'node-b' and detail like '%previous=node-a%'")"

# the new signer signs a checkpoint of the whole log (its tick notices issuances it did not make)
leaves=$(dbq "select count(*) from log_leaves")
size=0
for _ in $(seq 1 300); do
  size=$(curl -s --max-time 5 "http://127.0.0.1:$HTTP_node_b/log/checkpoint" | sed -n 2p) || true
  [ "$size" = "$leaves" ] && break; sleep 0.05
done
check_eq "node-b serves a checkpoint of the whole log" "$leaves" "$size"

# node-a comes back (same node id): it serves, node-b keeps signing
start_node node-a
check "node-a serves again, not as the signer (it says: $(grep -o 'event=node .*signer=[a-z]*' "$WORK/node-a.log" |
  head -1); node-b's lease: $(grep -o 'event=lease[a-z_]* .*' "$WORK/node-b.log" | tail -1))" \
  grep -q 'event=node id="node-a" signer=no' "$WORK/node-a.log"
s=${serials[0]}
code=$(enroll_at "$PORT_node_a" "$s" "$WORK/$s.third.p7b64")
check "a re-sent request to the restarted node-a: the same certificate (status $code)" \
  bash -c "[ '$code' = 200 ] && cmp -s <(base64 -d '$WORK/$s.p7b64') <(base64 -d '$WORK/$s.third.p7b64')"

# a revocation by another process: in both nodes' OCSP answers, and in both nodes' CRLs (node-a serves the one
# node-b signed); bounded waits
REV=${serials[1]}
REV_SERIAL=$(openssl x509 -in "$WORK/$REV.pem" -noout -serial | cut -d= -f2)
FIRST_REV_SERIAL=$REV_SERIAL
curl -s --max-time 5 -o "$WORK/pre.crl" "http://127.0.0.1:$HTTP_node_b/crl"
check "revoke $REV" "$CA_BIN" revoke --dir "$CA" "$REV_SERIAL" --reason keyCompromise
# The attacker writes the database but cannot use the token: it puts the CRL from before the revocation (genuinely
# signed, still valid) back in crls_signed. node-a, which has not served the newer one, refuses it for the
# revocation it lacks (503, one log line); once it served the newer one, also for its lower cRLNumber. The signer
# notices within a tick and stores a new one (then node-a serves that: the only other right answer).
check "node-b (the signer) signed a CRL listing $REV" crl_lists "$HTTP_node_b" "$WORK/good.crl"
DEVICE_CA=$(dbq "select id from issuing_cas where kind = 'device' and generation = 1")
put_crl() { dbq "update crls_signed set der = $(blob_sql "$1") where issuing_ca = $DEVICE_CA"; }
# replay WHY: puts the pre-revocation CRL back, asks node-a for /crl: 503 saying WHY (one log line), or a CRL
# listing $REV (the signer was quicker); then, within bounded waits, the signer has replaced it and node-a serves it.
replay() {
  local code lists=0
  put_crl "$WORK/pre.crl"
  code=$(curl -s -o "$WORK/replay.out" -w '%{http_code}' --max-time 5 "http://127.0.0.1:$HTTP_node_a/crl") || true
  openssl crl -inform DER -in "$WORK/replay.out" -noout -text 2>/dev/null | grep -q "Serial Number: $REV_SERIAL" && lists=1
  echo "# node-a's answer to /crl right after the older CRL was put back: $code"
  check "node-a does not serve the older CRL put back: 503 saying '$1', or the CRL listing $REV" \
    bash -c "[ '$code' = 503 ] && grep -qi -- \"\$0\" '$WORK/replay.out' || [ '$code/$lists' = 200/1 ]" "$1"
  [ "$code" = 503 ] && check_eq "... and one log line" 1 "$(grep -ci "event=crl_refused.*$1" "$WORK/node-a.log")"
  check "... the signer (node-b) stored a new one, node-a serves it" crl_lists "$HTTP_node_a" "$WORK/replay.out"
  check "... node-b logged that the stored CRL was replaced" grep -q 'event=crl_replaced generation=1 kind=device' "$WORK/node-b.log"
}
replay "does not list certificate $(sed 's/^\(00\)*//' <<<"$REV_SERIAL"), revoked"
for node in node_a node_b; do
  http_var=HTTP_$node; ocsp_out=
  for _ in $(seq 1 400); do
    ocsp_out=$(openssl ocsp -issuer "$CA/device-issuing.pem" -cert "$WORK/$REV.pem" -url "http://127.0.0.1:${!http_var}/ocsp" \
      -CAfile "$CA/root.pem" -no_nonce -timeout 5 2>&1 || true)
    grep -q ': revoked' <<<"$ocsp_out" && break; sleep 0.05
  done
  check "${node//_/-}: OCSP says $REV is revoked (response verified)" \
    bash -c "grep -q '^Response verify OK' <<<\"\$0\" && grep -q ': revoked' <<<\"\$0\"" "$ocsp_out"
  check "${node//_/-}: its CRL lists $REV" crl_lists "${!http_var}" "$WORK/$node.crl"
  check "${node//_/-}: the CRL verifies against the device issuing CA" \
    openssl crl -inform DER -in "$WORK/$node.crl" -CAfile <(cat "$CA/device-issuing.pem" "$CA/root.pem") -noout
done
check "node-a serves the CRL node-b signed" cmp -s "$WORK/node_a.crl" "$WORK/node_b.crl"
replay "older than number"
# a CRL the signer never made (the operations issuing CA's): node-a asks for it, serves it within a tick
code=
for _ in $(seq 1 200); do
  code=$(curl -s -o "$WORK/ops.crl" -w '%{http_code}' --max-time 5 "http://127.0.0.1:$HTTP_node_a/crl/ops") || true
  [ "$code" = 200 ] && break; sleep 0.05
done
check_eq "node-a: /crl/ops, signed by node-b on node-a's asking" 200 "$code"
check "... verifies against the operations issuing CA" \
  openssl crl -inform DER -in "$WORK/ops.crl" -CAfile <(cat "$CA/ops-issuing.pem" "$CA/ops-root.pem") -noout

# The attacker (or a hung node) holds the lease and signs nothing: no node serves a CRL lacking a revocation
# longer than node.lease_ms + two ticks; both answer 503 with the reason instead, and OCSP still says revoked.
dbq "update leases set holder = 'node-x', expires_ms = 99999999999999 where name = 'signer'"
for _ in $(seq 1 200); do grep -q 'event=lease_lost' "$WORK/node-b.log" && break; sleep 0.05; done
check "node-b notices it lost the lease" grep -q 'event=lease_lost lease=signer holder="node-x"' "$WORK/node-b.log"
REV2=${serials[2]}
check "revoke $REV2 while no node may sign" "$CA_BIN" revoke --dir "$CA" "$(openssl x509 -in "$WORK/$REV2.pem" -noout -serial | cut -d= -f2)" --reason superseded
for node in node_a node_b; do # each counts from when it saw the revocation (within a tick): bounded waits
  http_var=HTTP_$node; code=
  for _ in $(seq 1 400); do
    code=$(curl -s -o "$WORK/stale.txt" -w '%{http_code}' --max-time 5 "http://127.0.0.1:${!http_var}/crl") || true
    [ "$code" = 503 ] && break; sleep 0.05
  done
  check_eq "${node//_/-}: /crl answers 503 once the kept CRL lacks the revocation past the bound" 503 "$code"
  check "... saying why" grep -q 'lacks revocations made' "$WORK/stale.txt"
done
ocsp_out=$(openssl ocsp -issuer "$CA/device-issuing.pem" -cert "$WORK/$REV2.pem" -url "http://127.0.0.1:$HTTP_node_a/ocsp"   -CAfile "$CA/root.pem" -no_nonce -timeout 5 2>&1 || true)
check "... while OCSP says revoked" grep -q ': revoked' <<<"$ocsp_out"
dbq "update leases set expires_ms = 0 where name = 'signer'"
crl_ok=0
for _ in $(seq 1 400); do
  curl -s --max-time 5 -o "$WORK/after.crl" "http://127.0.0.1:$HTTP_node_a/crl" || true
  openssl crl -inform DER -in "$WORK/after.crl" -noout -text 2>/dev/null | grep -qi "Serial Number: $(openssl x509 -in "$WORK/$REV2.pem" -noout -serial | cut -d= -f2)" && { crl_ok=1; break; }
  sleep 0.05
done
check_eq "the lease free again: a node takes it and node-a's CRL lists $REV2" 1 "$crl_ok"

# stop both cleanly; the whole record verifies
stop_bg
check "audit verify passes" "$CA_BIN" audit verify --dir "$CA"
check_eq "the stopped signer let its lease go" 0 "$(dbq "select expires_ms from leases where name = 'signer'")"

# The stored CRL judged by audit verify and at start, with no node running. A revocation from the CLI while no node
# runs leaves the stored CRL lagging (signed before it), not replayed: audit verify passes, a node starts and re-signs.
REV3=${serials[3]}
REV3_SERIAL=$(openssl x509 -in "$WORK/$REV3.pem" -noout -serial | cut -d= -f2)
check "revoke $REV3 from the CLI, no node running" "$CA_BIN" revoke --dir "$CA" "$REV3_SERIAL" --reason keyCompromise
check "... the stored CRL lags it: audit verify passes" "$CA_BIN" audit verify --dir "$CA"
start_node node-a
REV_SERIAL=$REV3_SERIAL
check "... node-a starts, signs anew and serves a CRL listing $REV3" crl_lists "$HTTP_node_a" "$WORK/lag.crl"
stop_bg
check "... audit verify passes" "$CA_BIN" audit verify --dir "$CA"
# The attacker puts the CRL from before the revocations back (genuinely signed, not past its nextUpdate), no node
# running: audit verify fails naming the first certificate it lacks, and no node starts.
dbq "select $(if grep -q '^db.backend = postgresql' "$CA/camtrust-ca.conf"; then echo "encode(der, 'hex')"; else echo "hex(der)"; fi) from crls_signed where issuing_ca = $DEVICE_CA" | xxd -r -p >"$WORK/newest.crl"
put_crl "$WORK/pre.crl"
WANT="does not list certificate $(sed 's/^\(00\)*//' <<<"$FIRST_REV_SERIAL" | tr 'A-F' 'a-f'), revoked at"
verify_says "an older CRL put back with no node running" "$WANT"
serve_refuses "an older CRL put back with no node running" "$WANT"
put_crl "$WORK/newest.crl"
check "the newest CRL put back: audit verify passes" "$CA_BIN" audit verify --dir "$CA"
finish
