#!/usr/bin/env bash
# Several nodes, one signer, and the unlucky operator: the second node's folder copied from the first with its
# node id (or started with the same --node-id), and `log sth` run in a folder whose config names a serving node's
# id. Each process is its own holder of the signer lease (db/lease.c: a take's stamp, not the name, holds it): the
# second process does not sign beside the first (signer=no, one warning line), the command is refused, no CRL
# ping-pong between them (crl_replaced) after a revocation, and when the first is killed the second takes over.
# On PostgreSQL with CAMTRUST_TEST_DB=postgresql under tests/helpers/pg.sh, else two processes on one SQLite file.
# Usage: ha_same_id.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

LEASE_MS=2000 # node.lease_ms: a short lease, so that the takeover fits the test's time
CA=$WORK/ca
ca_create "$CA" >/dev/null
sed -i "s/^node.lease_ms = .*/node.lease_ms = $LEASE_MS/" "$CA/camtrust-ca.conf"
station_with_order line-id SAME1
make_csr "$WORK/SAME1" "/serialNumber=SAME1/CN=x"

. "$(dirname "$0")/ha_lib.sh"
start_node first twin
check "the first process took the signer lease" grep -q 'event=node id="twin" signer=yes' "$WORK/first.log"
start_node second twin
check "the second process with the same node id does not sign beside it ($(grep -o 'event=node .*signer=[a-z]*' \
  "$WORK/second.log"))" grep -q 'event=node id="twin" signer=no' "$WORK/second.log"
check "... and says why, once" bash -c "[ \"\$(grep -c 'event=lease_same_id lease=signer holder=\"twin\"' \
  '$WORK/second.log')\" = 1 ]"

# A command in a folder whose config names the serving node's id: refused, it signs nothing beside it.
cp "$CA/camtrust-ca.conf" "$WORK/conf.saved"
sed -i 's/^node.id = .*/node.id = twin/' "$CA/camtrust-ca.conf"
rc=0; out=$("$CA_BIN" log sth --dir "$CA" 2>&1) || rc=$?
check "log sth with the serving node's id in the config is refused (exit $rc: $out)" \
  bash -c "[ $rc != 0 ] && grep -q 'signer lease is held by twin' <<<\"\$0\"" "$out"
cp "$WORK/conf.saved" "$CA/camtrust-ca.conf"
check "... the first process still holds the lease" bash -c "! grep -q 'event=lease_lost' '$WORK/first.log'"

# A revocation: both serve a CRL listing it, and it stays put (the first signs it; the second, not holding the lease,
# neither signs nor replaces it). Bounded waits.
code=$(curl -s -o "$WORK/SAME1.p7b64" -w '%{http_code}' --max-time 20 --cacert "$CA/ops-root.pem" \
  -H "Content-Type: application/pkcs10" --data-binary "@$WORK/SAME1.b64" --cert "$WORK/station.pem" \
  --key "$WORK/station.key" "https://localhost:$PORT_second/.well-known/est/simpleenroll") || true
check_eq "an enrollment at the second process" 200 "$code"
base64 -d "$WORK/SAME1.p7b64" | openssl pkcs7 -inform DER -print_certs -out "$WORK/SAME1.pem"
REV_SERIAL=$(openssl x509 -in "$WORK/SAME1.pem" -noout -serial | cut -d= -f2)
check "revoke it" "$CA_BIN" revoke --dir "$CA" "$REV_SERIAL" --reason keyCompromise
check "the first process's CRL lists it" crl_lists "$HTTP_first" "$WORK/first.crl"
check "the second process's CRL lists it" crl_lists "$HTTP_second" "$WORK/second.crl"
stored=$(sql "$CA/camtrust.db" "select count(*) from audit where action = 'crl.store'")
sleep $((3 * LEASE_MS / 5 / 1000 + 1)) # a few lease ticks: two signers would replace each other's CRL each tick
check "no process replaced the other's CRL (crl_replaced: $(cat "$WORK"/first.log "$WORK"/second.log |
  grep -c 'event=crl_replaced' || true))" bash -c "! grep -q 'event=crl_replaced' '$WORK/first.log' '$WORK/second.log'"
check_eq "... no CRL stored meanwhile (crl.store entries)" "$stored" \
  "$(sql "$CA/camtrust.db" "select count(*) from audit where action = 'crl.store'")"

# The first dies: the second (same id) takes the lease once it expired, and signs a checkpoint of the whole log.
kill -KILL "$PID_first"
{ wait "$PID_first"; } 2>/dev/null || true
wait_log second 'event=lease_taken' || true
check "the second process took the lease once the first's expired" \
  grep -q 'event=lease_taken lease=signer holder="twin" previous="twin"' "$WORK/second.log"
stop_bg
check "audit verify passes" "$CA_BIN" audit verify --dir "$CA"
finish
