#!/usr/bin/env bash
# Every OCSP signature is within its client address's budget (ocsp.signatures_per_minute), a pre-signed answer's
# first one too. The issuance log lists every serial, each named by 4-8 CertIDs the responder keeps apart: one address
# cycling through more of them than the cache keeps missed it every time and made the token sign each, within no
# budget. Past its budget it gets tryLater (counted as ocsp.budget refusals), answers already kept are still sent to
# it, and another address is answered. And a GET with a body over server.max_body is refused before any work: it was
# answered (a nonce's signature, from the budget) before its answer was replaced by the 413.
# Usage: ocsp_miss_budget.sh PATH/TO/camtrust-ca
CA_BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
CA=$WORK/ca
DB=$CA/camtrust.db
BUDGET=5 # one more every 12 s
SLOTS=32 # a small cache (ocsp.cache_entries)
ca_create "$CA" >/dev/null
sed -i -e "s/^ocsp.signatures_per_minute = .*/ocsp.signatures_per_minute = $BUDGET/" \
  -e "s/^ocsp.cache_entries = .*/ocsp.cache_entries = $SLOTS/" \
  -e 's/^audit.anonymous_interval_s = .*/audit.anonymous_interval_s = 3600/' "$CA/camtrust-ca.conf"
CAMS=$(printf 'CAM%04d ' $(seq 1 8))
# shellcheck disable=SC2086 # (one argument each)
station_with_order line1 $CAMS
WITH_HTTP=1 start_ca "$CA"
for s in $CAMS; do
  make_csr "$WORK/$s" "/serialNumber=$s/CN=x"
  est_post simpleenroll "$WORK/$s.b64" "$WORK/$s.p7b64" --cert "$WORK/station.pem" --key "$WORK/station.key" >/dev/null
done
base64 -d "$WORK/CAM0008.p7b64" | openssl pkcs7 -inform DER -print_certs -out "$WORK/CAM0008.pem" 2>/dev/null || true
# The serials the issuance log lists (read here from the database), each in all its CertID forms.
sql "$DB" "select cert_serial_hex from certificates where device_serial like 'CAM%' order by device_serial" \
  >"$WORK/issued.txt"
openssl ocsp -issuer "$CA/device-issuing.pem" -serial 0x01 -no_nonce -reqout "$WORK/sha1.req" >/dev/null 2>&1
openssl ocsp -sha256 -issuer "$CA/device-issuing.pem" -serial 0x01 -no_nonce -reqout "$WORK/sha256.req" >/dev/null 2>&1
FORMS=$(python3 "$HERE/ocsp_certids.py" forms "$WORK/sha1.req" "$WORK/sha256.req" "$WORK/issued.txt" "$WORK/form")
check "8 issued serials give more CertIDs ($FORMS) than the cache keeps ($SLOTS)" test "$FORMS" -gt $SLOTS

# ask SOURCE REQUEST OUT: one POST of REQUEST to /ocsp from SOURCE (plain HTTP), its answer's body to OUT.1
ask() { bounded 60 python3 "$HERE/server_clients.py" ocsp "127.0.0.1:$HTTP_PORT" "$1" "$2" 1 "$3" || true; }
# results ADDRESS PATTERN: how many OCSP answers to ADDRESS the server's log gives a result matching PATTERN
results() {
  grep -c "path=\"/ocsp[^\"]*\" status=[0-9]* client=\"none\" result=\"$2\" .*addr=\"$1\"" "$WORK/server.log" || true
}

# ---- 127.0.0.2 cycles twice through every CertID (no nonce: each answer would be pre-signed and kept) ----
T0=$(date +%s)
for pass in 1 2; do
  for i in $(seq 1 "$FORMS"); do ask 127.0.0.2 "$WORK/form.$i" "$WORK/pass$pass.$i"; done
done
# The budget grows by one every 60/BUDGET s: what the time taken allows beyond it.
REFILL=$((($(date +%s) - T0 + 1) * BUDGET / 60))
SIGNED=$(results 127.0.0.2 'good serial=[0-9a-f]*')
KEPT=$(results 127.0.0.2 'good serial=[0-9a-f]* pre-signed')
LATER=$(results 127.0.0.2 'tryLater: over ocsp.signatures_per_minute')
check "the token signed at most the budget for 127.0.0.2 ($SIGNED signed of $((2 * FORMS)) requests, refill $REFILL)" \
  test "$SIGNED" -ge $BUDGET -a "$SIGNED" -le $((BUDGET + REFILL))
check_eq "every other request got a kept answer or tryLater ($KEPT kept, $LATER tryLater)" $((2 * FORMS)) \
  $((SIGNED + KEPT + LATER))
same=0
for i in $(seq 1 $BUDGET); do cmp -s "$WORK/pass1.$i.1" "$WORK/pass2.$i.1" && same=$((same + 1)); done
check_eq "the $BUDGET answers signed first are sent again as kept on the second pass, past the budget" $BUDGET $same
printf '\060\003\012\001\003' >"$WORK/trylater.der" # an OCSPResponse of status tryLater (3)
later_bodies=$(for f in "$WORK"/pass[12].*.1; do if cmp -s "$f" "$WORK/trylater.der"; then echo "$f"; fi; done)
check_eq "the answers' bodies agree: $LATER are tryLater" "$LATER" "$(grep -c . <<<"$later_bodies" || true)"
check "... as openssl reads them" \
  bash -c "openssl ocsp -respin '$(head -1 <<<"$later_bodies")' -resp_text -noverify 2>&1 | grep -qi trylater"

# ---- meanwhile another address is answered ----
openssl ocsp -issuer "$CA/device-issuing.pem" -cert "$WORK/CAM0008.pem" -no_nonce -reqout "$WORK/honest.req" 2>/dev/null
ask 127.0.0.3 "$WORK/honest.req" "$WORK/honest"
check "127.0.0.3's request is answered good, an answer that verifies" \
  bash -c "openssl ocsp -respin '$WORK/honest.1' -issuer '$CA/device-issuing.pem' -cert '$WORK/CAM0008.pem' \
    -CAfile '$CA/root.pem' -no_nonce 2>&1 | grep -q 'CAM0008.pem: good'"

# ---- a GET with a body over server.max_body (16384) is refused before any work: no budget used ----
openssl ocsp -issuer "$CA/device-issuing.pem" -cert "$WORK/CAM0008.pem" -reqout "$WORK/nonce.req" 2>/dev/null
b64=$(base64 -w0 "$WORK/nonce.req" | sed 's|+|%2B|g; s|/|%2F|g; s|=|%3D|g')
head -c 16385 /dev/zero >"$WORK/big"
codes=
for _ in $(seq 0 $BUDGET); do
  codes="$codes $(bounded 30 curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.4 -X GET \
    -H 'Content-Type: application/ocsp-request' --data-binary @"$WORK/big" \
    "http://127.0.0.1:$HTTP_PORT/ocsp/$b64" || true)"
done
check_eq "$((BUDGET + 1)) GETs of a nonce request with a body over the limit: 413 each" \
  "$(printf ' 413%.0s' $(seq 0 $BUDGET))" "$codes"
ask 127.0.0.4 "$WORK/nonce.req" "$WORK/after"
check_eq "127.0.0.4's budget is whole after them: its nonce is echoed (was: left out, over budget)" 1 \
  "$(results 127.0.0.4 'good serial=[0-9a-f]* nonce')"

# ---- the refusals, counted per address, are in the audit once the server stops ----
cleanup_server
check_eq "the audit counts each tryLater (127.0.0.2's) as an ocsp.budget refusal" "$LATER" \
  "$(anonymous_refusals "$DB" ocsp.budget)"
check_eq "... and each oversized GET (127.0.0.4's) as an ocsp.request refusal" $((BUDGET + 1)) \
  "$(anonymous_refusals "$DB" ocsp.request)"
finish
