#!/usr/bin/env bash
# The CA checks each signature the token makes before anyone relies on it (the re-check of every new certificate):
# a token whose private key under the issuing CA's label is another key than the issuing CA certificate's (the key
# swapped by someone with the token's PIN; the public object, which the CA compares with the certificate at start,
# left as it was) signs certificates that verify under no issuing CA. The CA refuses each issuance and records
# nothing of it: no certificate, no log leaf, no cert.issue audit entry, nothing answered. The guard for anything that
# takes the re-check's public key from elsewhere than the certificate the CA serves (the token's private key, or a
# copy made without checking it against the certificate). Usage: token_key_swapped.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
ca_create "$CA" >/dev/null
DB=$CA/camtrust.db
station_with_order line1 SWAP0001 SWAP0002
STATION=(--cert "$WORK/station.pem" --key "$WORK/station.key")
export SOFTHSM2_CONF=$CA/softhsm2.conf
PIN=$(cat "$CA/secrets/user.pin")
# p11 ARGS...: pkcs11-tool on the CA's token, logged in (another process than the server)
p11() { pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label camtrust-ca --login --pin "$PIN" "$@"; }
# id_of TYPE LABEL: the hex CKA_ID of the one object of this type and label
id_of() {
  p11 --list-objects --type "$1" 2>/dev/null |
    awk -v want="$2" '/^[A-Za-z]/{label=""} /label:/{sub(/^[ \t]*label:[ \t]*/, ""); label=$0} /ID:/ && label == want {print $2}'
}
count() { sql "$DB" "$1"; }

start_ca "$CA"
make_csr "$WORK/SWAP0001" "/serialNumber=SWAP0001/CN=x"
check_eq "SWAP0001 enrolls while the token holds the issuing CA's key" 200 \
  "$(est_post simpleenroll "$WORK/SWAP0001.b64" "$WORK/SWAP0001.out" "${STATION[@]}")"
cleanup_server

# The swap: a new key pair labelled device-issuing; its public object deleted, the issuing CA's private key deleted,
# and the new private key given the old key's id, so that the token pairs it with the old public object.
OLD_ID=$(id_of privkey device-issuing)
check "the issuing key has an id ($OLD_ID)" test -n "$OLD_ID"
check "pkcs11-tool makes another P-256 key pair labelled device-issuing" \
  p11 --keypairgen --key-type EC:prime256v1 --label device-issuing --id 5a5a5a5a
check "... deletes its public object" p11 --delete-object --type pubkey --id 5a5a5a5a
check "... deletes the issuing CA's private key" p11 --delete-object --type privkey --id "$OLD_ID"
check "... and gives the new private key the old key's id" p11 --set-id "$OLD_ID" --id 5a5a5a5a --type privkey
check_eq "the token's device-issuing private key now has the old id" "$OLD_ID" "$(id_of privkey device-issuing)"
check_eq "... and its public object is the issuing CA certificate's key still" "$OLD_ID" "$(id_of pubkey device-issuing)"

CERTS=$(count "select count(*) from certificates")
LEAVES=$(count "select count(*) from log_leaves")
ISSUED=$(count "select count(*) from audit where action = 'cert.issue'")
start_ca "$CA"
make_csr "$WORK/SWAP0002" "/serialNumber=SWAP0002/CN=x"
code=$(est_post simpleenroll "$WORK/SWAP0002.b64" "$WORK/SWAP0002.out" "${STATION[@]}")
check "the next enrollment is refused with a 5xx, the CA's own failure (answered $code)" bash -c "[[ '$code' == 5?? ]]"
check "... the body names no certificate" bash -c "! grep -q 'BEGIN\|MII' '$WORK/SWAP0002.out'"
check "... the server says the token's signature does not verify" \
  grep -q "the token's signature on the new certificate does not verify" "$WORK/server.log"
check_eq "... no certificate recorded" "$CERTS" "$(count "select count(*) from certificates")"
check_eq "... none for SWAP0002" 0 "$(count "select count(*) from certificates where device_serial = 'SWAP0002'")"
check_eq "... no log leaf" "$LEAVES" "$(count "select count(*) from log_leaves")"
check_eq "... no cert.issue audit entry" "$ISSUED" "$(count "select count(*) from audit where action = 'cert.issue'")"
cleanup_server
unset SOFTHSM2_CONF
finish
