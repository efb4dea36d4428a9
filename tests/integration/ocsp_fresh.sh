#!/usr/bin/env bash
# A revocation reaches the OCSP answers within CA_REVOCATION_POLL_MS (50 ms) even while another thread holds the
# CRL's lock (re-signing or judging a CRL): the revocation epoch is read under its own lock. Played with a thread held
# inside the server with the CRL's lock taken, right after it took over a new epoch (failpoint revocation:follow, held
# until a file exists: an OCSP request's, or the lease tick's): a certificate whose answer was kept as good is revoked
# by another process meanwhile; OCSP must say revoked before the held thread is let go.
# Usage: ocsp_fresh.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
ca_create "$CA" >/dev/null
station_with_order line1 CAM0001 CAM0002
export CAMTRUST_FAILPOINT=revocation:follow CAMTRUST_FAILPOINT_RELEASE=$WORK/release
WITH_HTTP=1 start_ca "$CA"
unset CAMTRUST_FAILPOINT CAMTRUST_FAILPOINT_RELEASE
for s in CAM0001 CAM0002; do
  make_csr "$WORK/$s" "/serialNumber=$s/CN=x"
  est_post simpleenroll "$WORK/$s.b64" "$WORK/$s.p7b64" --cert "$WORK/station.pem" --key "$WORK/station.key" >/dev/null
  base64 -d "$WORK/$s.p7b64" | openssl pkcs7 -inform DER -print_certs -out "$WORK/$s.pem" 2>/dev/null || true
done
serial_of() { openssl x509 -in "$WORK/$1.pem" -noout -serial | cut -d= -f2; }
# status_of CERT: what the server's OCSP answer (no nonce: the kept one when there is one) says, verified
status_of() {
  openssl ocsp -issuer "$CA/device-issuing.pem" -cert "$WORK/$1.pem" -url "http://127.0.0.1:$HTTP_PORT/ocsp" \
    -CAfile "$CA/root.pem" -no_nonce 2>&1 | sed -n "s|^$WORK/$1.pem: ||p"
}
# wait_status CERT STATUS: until the answer says STATUS (at most 5 s); prints the last answer
wait_status() {
  local st=
  for _ in $(seq 1 50); do st=$(status_of "$1"); [ "$st" = "$2" ] && break; sleep 0.1; done
  echo "$st"
}
check_eq "CAM0002 is good (its answer kept)" good "$(wait_status CAM0002 good)"
# The first revocation; the next OCSP request (or the lease tick) takes the new epoch over and is held there.
"$CA_BIN" revoke --dir "$CA" "$(serial_of CAM0001)" --reason keyCompromise >/dev/null
status_of CAM0001 >"$WORK/held.out" &
HELD_PID=$!; BG_PIDS+=("$HELD_PID")
for _ in $(seq 1 200); do grep -q 'event=failpoint_held point="revocation:follow"' "$WORK/server.log" && break; sleep 0.05; done
check "a thread is held inside the server, the CRL's lock taken" \
  grep -q 'event=failpoint_held point="revocation:follow"' "$WORK/server.log"
check_eq "... CAM0002 still good meanwhile, its answer kept again" good "$(status_of CAM0002)"
# The second revocation, while that thread is held.
"$CA_BIN" revoke --dir "$CA" "$(serial_of CAM0002)" --reason keyCompromise >/dev/null
check_eq "CAM0002 revoked by another process while the CRL's lock is held: OCSP says revoked (not the kept good)" revoked \
  "$(wait_status CAM0002 revoked)"
touch "$WORK/release"
wait "$HELD_PID" || true
check_eq "the OCSP request for CAM0001 says revoked" revoked "$(cat "$WORK/held.out")"
for _ in $(seq 1 100); do
  curl -s -o "$WORK/crl.der" "http://127.0.0.1:$HTTP_PORT/crl" &&
    [ "$(openssl crl -inform DER -in "$WORK/crl.der" -noout -text 2>/dev/null | grep -c 'Serial Number:')" = 2 ] && break
  sleep 0.1
done
check_eq "once let go, the CRL lists both" 2 \
  "$(openssl crl -inform DER -in "$WORK/crl.der" -noout -text 2>/dev/null | grep -c 'Serial Number:')"
cleanup_server
check "audit verify passes" "$CA_BIN" audit verify --dir "$CA"
finish
