#!/usr/bin/env bash
# A request body too large is refused before any work, whatever the route: a GET of /crl whose CRL a revocation made
# stale, sent with a body past server.max_body (announced or chunked) or any body at all (a GET takes none, RFC 9110
# 9.3.1), gets its 413 and no CRL is signed for it (was: the CRL re-signed, a cRLNumber taken and a crl.issue audit
# entry written, then the 413); so do a GET of the log's checkpoint and of EST cacerts. The same GET without a body
# then signs it, listing the revocation. Usage: server_body_first.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
DB=$CA/camtrust.db
ca_create "$CA" >/dev/null
station_with_order line1 CAM0001
# A lease tick of 120 s (node.lease_ms / 5): the signer's tick also re-signs a stale CRL, and must not do it between
# the revocation and the checks below (they take seconds).
sed -i 's/^node.lease_ms = .*/node.lease_ms = 600000/' "$CA/camtrust-ca.conf"
WITH_HTTP=1 start_ca "$CA"
HTTP=http://127.0.0.1:$HTTP_PORT
make_csr "$WORK/cam1" "/serialNumber=CAM0001/CN=x"
check_eq "a station enrolls CAM0001" 200 \
  "$(est_post simpleenroll "$WORK/cam1.b64" "$WORK/cam1.p7" --cert "$WORK/station.pem" --key "$WORK/station.key")"
base64 -d "$WORK/cam1.p7" | openssl pkcs7 -inform DER -print_certs -out "$WORK/cam1.pem" 2>/dev/null || true
SERIAL=$(openssl x509 -in "$WORK/cam1.pem" -noout -serial | cut -d= -f2)
check_eq "the CRL is served" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$HTTP/crl")"

# get URL [curl options...]: a GET's status
get() { local url=$1; shift; curl -s -o "$WORK/answer" -w '%{http_code}' --max-time 20 -X GET "$@" "$url" || true; }
signed() { sql "$DB" "select count(*) from audit where action = 'crl.issue'"; }
head -c 40000 /dev/zero | tr '\0' A >"$WORK/big"

check "camtrust-ca revoke CAM0001 (the CRL kept is stale now)" "$CA_BIN" revoke --dir "$CA" "$SERIAL" --reason keyCompromise
n0=$(signed)
check_eq "a GET of /crl with a body announced past server.max_body: 413" 413 "$(get "$HTTP/crl" --data-binary @"$WORK/big")"
check "... naming the bound" grep -q '^413 request body larger than 0 bytes$' "$WORK/answer"
check_eq "... no CRL signed for it" "$n0" "$(signed)"
check_eq "the same body sent chunked (no length announced): 413" 413 \
  "$(get "$HTTP/crl" -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/big")"
check_eq "... no CRL signed for it" "$n0" "$(signed)"
check_eq "a GET of /crl with a body of 10 bytes (a GET takes none): 413" 413 "$(get "$HTTP/crl" --data-binary 0123456789)"
check_eq "... no CRL signed for it" "$n0" "$(signed)"
check_eq "a GET of /log/checkpoint with a body past the bound: 413" 413 \
  "$(get "$HTTP/log/checkpoint" --data-binary @"$WORK/big")"
check_eq "a GET of EST cacerts with a body past the bound: 413" 413 \
  "$(get "https://localhost:$PORT/.well-known/est/cacerts" --cacert "$CA/ops-root.pem" --data-binary @"$WORK/big")"
check_eq "... no CRL signed meanwhile" "$n0" "$(signed)"
check "each refusal logged as a 413" test "$(grep -c 'method="GET" path="[^"]*" status=413' "$WORK/server.log")" -ge 5

# What could have failed: the same GET without a body signs the stale CRL anew, with the revocation.
check_eq "a GET of /crl without a body: 200" 200 "$(get "$HTTP/crl")"
check_eq "... a CRL signed for it" "$((n0 + 1))" "$(signed)"
check "... listing CAM0001's serial" bash -c "openssl crl -inform DER -in '$WORK/answer' -noout -text | grep -qi 'Serial Number: $SERIAL'"
finish
