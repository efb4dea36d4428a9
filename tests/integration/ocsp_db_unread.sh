#!/usr/bin/env bash
# The OCSP responder and a database it cannot read, played with failpoints (the rest of the database answers):
#  - a kept answer is dropped when the revocation epoch cannot be read. The responder learns of revocations (another
#    node's, the CLI's) only through the database's revocation epoch; a failed read was logged and the kept answers
#    stayed: a node that could not read its database (PostgreSQL out of reach, SQLite busy) sent a revoked camera's
#    kept 'good' for half of ocsp.validity_hours, to an address past its budget too. Every epoch read failing
#    (ocsp:epoch-read-fails): a camera's answer kept, the camera revoked by the CLI (another process), then asked
#    again from the address that had it kept (its budget spent) and from another;
#  - past its budget an address's requests read nothing of the database: each was looked up (a query per CertID, up
#    to 8, of the database all nodes share) before the budget was asked. Every look-up failing (ocsp:look-up-fails):
#    the first requests, within the budget, fail on it (internalError), the others are tryLater without reading it.
# Usage: ocsp_epoch_unread.sh PATH/TO/camtrust-ca
CA_BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
CA=$WORK/ca
BUDGET=3
ca_create "$CA" >/dev/null
sed -i -e "s/^ocsp.signatures_per_minute = .*/ocsp.signatures_per_minute = $BUDGET/" "$CA/camtrust-ca.conf"
station_with_order line1 CAM0001 CAM0002
CAMTRUST_FAILPOINT=ocsp:epoch-read-fails WITH_HTTP=1 start_ca "$CA"
for s in CAM0001 CAM0002; do
  make_csr "$WORK/$s" "/serialNumber=$s/CN=x"
  est_post simpleenroll "$WORK/$s.b64" "$WORK/$s.p7b64" --cert "$WORK/station.pem" --key "$WORK/station.key" >/dev/null
  base64 -d "$WORK/$s.p7b64" | openssl pkcs7 -inform DER -print_certs -out "$WORK/$s.pem" 2>/dev/null || true
done
req() { openssl ocsp -issuer "$CA/device-issuing.pem" "$@" 2>/dev/null; }
req -cert "$WORK/CAM0001.pem" -no_nonce -reqout "$WORK/cam1.req"
req -cert "$WORK/CAM0002.pem" -reqout "$WORK/cam2.req" # a nonce: signed per request
# ask SOURCE REQUEST OUT COUNT: COUNT POSTs of REQUEST from SOURCE on one connection, the bodies to OUT.1 ...
ask() { bounded 60 python3 "$HERE/server_clients.py" ocsp "127.0.0.1:$HTTP_PORT" "$1" "$2" "${4:-1}" "$3" || true; }
# status_of ANSWER: CAM0001's status in it as openssl reads it, verified against the responder chain; else its text
status_of() {
  openssl ocsp -respin "$1" -issuer "$CA/device-issuing.pem" -cert "$WORK/CAM0001.pem" -CAfile "$CA/root.pem" \
    -no_nonce 2>&1 | sed -n 's/^.*CAM0001.pem: \([a-z]*\).*$/\1/p; s/^.*\(trylater\).*$/\1/ip' | head -1 || true
}

ask 127.0.0.2 "$WORK/cam1.req" "$WORK/before"
check_eq "CAM0001 asks for its status: good, an answer that verifies" good "$(status_of "$WORK/before.1")"
check "... while every read of the revocation epoch fails (the failpoint took effect)" \
  grep -q 'event=revocation_refresh error="cannot read the epoch (failpoint)"' "$WORK/server.log"
ask 127.0.0.2 "$WORK/cam2.req" "$WORK/spend" $BUDGET # 127.0.0.2's budget spent on nonces
check "127.0.0.2's budget is spent" grep -q 'result="tryLater: over ocsp.signatures_per_minute".*addr="127.0.0.2"' \
  "$WORK/server.log"

SERIAL=$(openssl x509 -in "$WORK/CAM0001.pem" -noout -serial | cut -d= -f2)
check "the CLI revokes CAM0001 (another process: the server learns of it by the epoch alone)" \
  bounded 60 "$CA_BIN" revoke --dir "$CA" "$SERIAL" --reason keyCompromise
sleep 0.2 # past CA_REVOCATION_POLL_MS: the next request reads the epoch itself (and fails to)
ask 127.0.0.2 "$WORK/cam1.req" "$WORK/spent" 3
for i in 1 2 3; do
  st=$(status_of "$WORK/spent.$i")
  check "CAM0001 asks again from 127.0.0.2 (its budget spent): not the kept 'good' ($i: ${st:-no answer})" \
    test -n "$st" -a "$st" != good
done
ask 127.0.0.3 "$WORK/cam1.req" "$WORK/other"
check_eq "... and from 127.0.0.3: revoked, an answer that verifies" revoked "$(status_of "$WORK/other.1")"
check "... signed anew, not a kept answer" bash -c "! grep -q 'addr=\"127.0.0.3\".*pre-signed\|pre-signed.*addr=\"127.0.0.3\"' '$WORK/server.log'"

# ---- past its budget, no look-ups ----
cleanup_server
CAMTRUST_FAILPOINT=ocsp:look-up-fails WITH_HTTP=1 start_ca "$CA"
ask 127.0.0.4 "$WORK/cam2.req" "$WORK/flood" $((BUDGET + 3))
# results ADDRESS PATTERN: how many OCSP answers to ADDRESS the server's log gives a result matching PATTERN
results() { grep -c "path=\"/ocsp\" status=[0-9]* client=\"none\" result=\"$2.*addr=\"$1\"" "$WORK/server.log" || true; }
check_eq "127.0.0.4's first $BUDGET requests, within its budget, fail on the database (internalError)" $BUDGET \
  "$(results 127.0.0.4 internalError)"
check_eq "... its 3 others are tryLater, the database not read for them" 3 "$(results 127.0.0.4 'tryLater: over')"
finish
