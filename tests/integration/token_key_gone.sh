#!/usr/bin/env bash
# A key deleted from the CA's token while the server runs (by another process: an operator's pkcs11-tool) is not
# used again by that server: no certificate is signed with the deleted issuing key, no audit entry is MACed with
# the deleted audit key. This is the guard for anything that would keep a key usable past its token object (e.g. a
# session copy of it made to spare SoftHSM's file reads). Usage: token_key_gone.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
ca_create "$CA" >/dev/null
DB=$CA/camtrust.db
station_with_order line1 GONE0001 GONE0002 GONE0003
STATION=(--cert "$WORK/station.pem" --key "$WORK/station.key")
export SOFTHSM2_CONF=$CA/softhsm2.conf
PIN=$(cat "$CA/secrets/user.pin")
# p11 ARGS...: pkcs11-tool on the CA's token, logged in (another process than the server)
p11() { pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label camtrust-ca --login --pin "$PIN" "$@"; }
certs_of() { sql "$DB" "select count(*) from certificates where device_serial='$1'"; }

start_ca "$CA"
# Several enrollments first: whatever the server keeps after its first signatures and MACs is made by now.
for s in GONE0001 GONE0002; do
  make_csr "$WORK/$s" "/serialNumber=$s/CN=x"
  check_eq "$s enrolls while its keys are in the token" 200 "$(est_post simpleenroll "$WORK/$s.b64" "$WORK/$s.out" "${STATION[@]}")"
done

# The device issuing CA's private key deleted from the token under the running server.
check "pkcs11-tool deletes the device issuing key" p11 --delete-object --type privkey --label device-issuing
p11 --list-objects --type privkey >"$WORK/privkeys" 2>/dev/null || true
check "... which is gone from the token (the operations issuing key is listed still)" \
  bash -c "! grep -q 'label: *device-issuing\$' '$WORK/privkeys' && grep -q 'label: *ops-issuing\$' '$WORK/privkeys'"
make_csr "$WORK/GONE0003" "/serialNumber=GONE0003/CN=x"
code=$(est_post simpleenroll "$WORK/GONE0003.b64" "$WORK/GONE0003.out" "${STATION[@]}")
check "the next enrollment is refused (answered $code)" test "$code" != 200
check_eq "... and no certificate was signed for it" 0 "$(certs_of GONE0003)"
check "the server still answers (cacerts)" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 --cacert '$CA/ops-root.pem' https://localhost:$PORT/.well-known/est/cacerts)\" = 200 ]"

# The audit key deleted too (same server: with a key gone it would not start again). A refusal (a serial in no order)
# needs no signature, only its audit entry's MAC: the refusal still stands, its entry cannot be written.
make_csr "$WORK/NOORDER1" "/serialNumber=NOORDER1/CN=x"
check_eq "with the audit key in the token a serial in no order is refused with 403" 403 \
  "$(est_post simpleenroll "$WORK/NOORDER1.b64" "$WORK/NOORDER1.out" "${STATION[@]}")"
check_eq "... and audited" 1 "$(sql "$DB" "select count(*) from audit where detail like '%NOORDER1%'")"
check "pkcs11-tool deletes the audit key" p11 --delete-object --type secrkey --label audit-mac
make_csr "$WORK/NOORDER2" "/serialNumber=NOORDER2/CN=x"
# The CA says every decision is recorded: a refusal it cannot record is not a plain refusal (403) but the CA saying
# it cannot serve (503), and nothing is issued.
check_eq "the next refusal, which cannot be recorded, is answered 503 (the CA cannot serve), not 403" 503 \
  "$(est_post simpleenroll "$WORK/NOORDER2.b64" "$WORK/NOORDER2.out" "${STATION[@]}")"
check "... saying why" grep -q '^503 the CA cannot record its refusal' "$WORK/NOORDER2.out"
check_eq "... no certificate for it" 0 "$(certs_of NOORDER2)"
check_eq "the next refusal's audit entry is not MACed with the deleted key" 0 \
  "$(sql "$DB" "select count(*) from audit where detail like '%NOORDER2%'")"
check "... the server says so" grep -q 'event=audit msg="a denial not audited" error="HMAC with key .audit-mac. in the token failed' "$WORK/server.log"
cleanup_server
unset SOFTHSM2_CONF
finish
