#!/usr/bin/env bash
# OCSP answers signed for one request alone (a nonce, several certificates, an unknown serial) are within a budget
# per client address (ocsp.signatures_per_minute): one address floods nonce requests; past its budget it gets the
# pre-signed answer without its nonce (still a valid signed good or revoked answer), tryLater where there is none,
# each counted as a refusal of that address in the audit; another address still gets its nonce meanwhile.
# Usage: ocsp_budget.sh PATH/TO/camtrust-ca
CA_BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
CLIENTS=$HERE/server_clients.py

CA=$WORK/ca
DB=$CA/camtrust.db
ca_create "$CA" >/dev/null
check "init writes the budget: 120 signatures a minute per address" \
  grep -q '^ocsp.signatures_per_minute = 120$' "$CA/camtrust-ca.conf"
# A budget of 5 (one more every 12 s); the refusal counts written only at stop.
BUDGET=5
sed -i -e "s/^ocsp.signatures_per_minute = .*/ocsp.signatures_per_minute = $BUDGET/" \
  -e 's/^audit.anonymous_interval_s = .*/audit.anonymous_interval_s = 3600/' "$CA/camtrust-ca.conf"
station_with_order line1 CAM0001 CAM0002
WITH_HTTP=1 start_ca "$CA"
for s in CAM0001 CAM0002; do
  make_csr "$WORK/$s" "/serialNumber=$s/CN=x"
  est_post simpleenroll "$WORK/$s.b64" "$WORK/$s.p7b64" --cert "$WORK/station.pem" --key "$WORK/station.key" >/dev/null
  base64 -d "$WORK/$s.p7b64" | openssl pkcs7 -inform DER -print_certs -out "$WORK/$s.pem" 2>/dev/null || true
done
"$CA_BIN" revoke --dir "$CA" "$(openssl x509 -in "$WORK/CAM0002.pem" -noout -serial | cut -d= -f2)" \
  --reason keyCompromise >/dev/null
# (the server notices another process's revocation within 50 ms; asked from 127.0.0.1, without a nonce)
for _ in $(seq 1 100); do
  openssl ocsp -issuer "$CA/device-issuing.pem" -cert "$WORK/CAM0002.pem" -url "http://127.0.0.1:$HTTP_PORT/ocsp" \
    -CAfile "$CA/root.pem" -no_nonce 2>&1 | grep -q 'CAM0002.pem: revoked' && break
  sleep 0.1
done
# ... and the good one's, kept too: past its budget 127.0.0.2 is sent the kept answers (an answer not kept yet would
# be signed within its budget as well: ocsp_miss_budget.sh)
openssl ocsp -issuer "$CA/device-issuing.pem" -cert "$WORK/CAM0001.pem" -url "http://127.0.0.1:$HTTP_PORT/ocsp" \
  -CAfile "$CA/root.pem" -no_nonce >/dev/null 2>&1

req() { openssl ocsp -issuer "$CA/device-issuing.pem" "$@" 2>/dev/null; }
req -cert "$WORK/CAM0001.pem" -reqout "$WORK/good.req"       # with a nonce (openssl's default)
req -cert "$WORK/CAM0002.pem" -reqout "$WORK/revoked.req"
req -cert "$WORK/CAM0001.pem" -cert "$WORK/CAM0002.pem" -no_nonce -reqout "$WORK/two.req"
req -serial 0x1234567890 -no_nonce -reqout "$WORK/unknown.req"
# read_answer FILE CERT: openssl's reading of an answer, verified against the responder chain (root.pem), and its
# text (the nonce compared below: openssl ocsp -respin would compare it with one of its own making)
read_answer() {
  openssl ocsp -respin "$1" -issuer "$CA/device-issuing.pem" -cert "$WORK/$2.pem" -CAfile "$CA/root.pem" -no_nonce \
    -resp_text 2>&1 || true
}
# nonce_of TEXT: the OCSP Nonce extension's value in openssl's text of a request or answer
nonce_of() { { grep -A1 'OCSP Nonce' <<<"$1" || true; } | tail -1 | tr -d ' '; }
# tally PREFIX N CERT STATUS REQUEST: sets VALID (answers that verify and say STATUS), NONCE (those echoing
# REQUEST's nonce), FIRST_NONCE (how many of the first ones in a row do), TRY_LATER
tally() {
  local i out run=1 want
  want=$(nonce_of "$(openssl ocsp -reqin "$5" -req_text 2>/dev/null)")
  VALID=0 NONCE=0 FIRST_NONCE=0 TRY_LATER=0
  for i in $(seq 1 "$2"); do
    out=$(read_answer "$1.$i" "$3")
    if grep -q 'Response verify OK' <<<"$out" && grep -q "$3.pem: $4" <<<"$out"; then VALID=$((VALID + 1)); fi
    if [ -n "$want" ] && [ "$(nonce_of "$out")" = "$want" ]; then
      NONCE=$((NONCE + 1)); [ $run = 1 ] && FIRST_NONCE=$((FIRST_NONCE + 1))
    else run=0; fi
    if grep -qi 'trylater' <<<"$out"; then TRY_LATER=$((TRY_LATER + 1)); fi
  done
}

# ---- 127.0.0.2 floods: 30 nonce requests for a good certificate, 10 for a revoked one, 3 for two certificates,
# 3 for an unknown serial ----
T0=$(date +%s)
FLOOD=30
python3 "$CLIENTS" ocsp "127.0.0.1:$HTTP_PORT" 127.0.0.2 "$WORK/good.req" $FLOOD "$WORK/flood"
python3 "$CLIENTS" ocsp "127.0.0.1:$HTTP_PORT" 127.0.0.2 "$WORK/revoked.req" 10 "$WORK/rflood"
python3 "$CLIENTS" ocsp "127.0.0.1:$HTTP_PORT" 127.0.0.2 "$WORK/two.req" 3 "$WORK/two"
python3 "$CLIENTS" ocsp "127.0.0.1:$HTTP_PORT" 127.0.0.2 "$WORK/unknown.req" 3 "$WORK/unknown"
# The budget grows by one every 60/BUDGET s: what the time taken allows beyond it (0 unless this machine is slow).
REFILL=$((($(date +%s) - T0 + 1) * BUDGET / 60))
tally "$WORK/flood" $FLOOD CAM0001 good "$WORK/good.req"
check_eq "every one of the $FLOOD answers is a signed 'good' that verifies against the responder chain" $FLOOD "$VALID"
check "the first $BUDGET answers echo the nonce (the budget), then they stop (${FIRST_NONCE} did)" \
  test "$FIRST_NONCE" -ge $BUDGET -a "$FIRST_NONCE" -le $((BUDGET + REFILL))
GIVEN=$NONCE
check "past the budget, answers carry no nonce ($((FLOOD - NONCE)) of $FLOOD)" test "$NONCE" -le $((BUDGET + REFILL))
OVER=$((FLOOD - NONCE))
tally "$WORK/rflood" 10 CAM0002 revoked "$WORK/revoked.req"
check_eq "the 10 answers for the revoked certificate are signed 'revoked' answers that verify" 10 "$VALID"
check "... without the nonce (the budget spent: $NONCE of 10 echo it)" test "$NONCE" -le "$REFILL"
GIVEN=$((GIVEN + NONCE)); OVER=$((OVER + 10 - NONCE))
tally "$WORK/two" 3 CAM0001 good "$WORK/two.req"
check "requests for two certificates (no pre-signed form) get tryLater, not a signature ($TRY_LATER of 3)" \
  test "$TRY_LATER" -ge $((3 - REFILL))
GIVEN=$((GIVEN + 3 - TRY_LATER)); OVER=$((OVER + TRY_LATER))
tally "$WORK/unknown" 3 CAM0001 unknown "$WORK/unknown.req"
check "... so do requests for an unknown serial (signed per request: $TRY_LATER of 3)" test "$TRY_LATER" -ge $((3 - REFILL))
GIVEN=$((GIVEN + 3 - TRY_LATER)); OVER=$((OVER + TRY_LATER))
check "in all the token signed at most the budget for 127.0.0.2 ($GIVEN of 46 requests)" \
  test "$GIVEN" -le $((BUDGET + REFILL))

# ---- meanwhile another address keeps its own budget ----
python3 "$CLIENTS" ocsp "127.0.0.1:$HTTP_PORT" 127.0.0.3 "$WORK/good.req" 1 "$WORK/other"
python3 "$CLIENTS" ocsp "127.0.0.1:$HTTP_PORT" 127.0.0.3 "$WORK/two.req" 1 "$WORK/other_two"
tally "$WORK/other" 1 CAM0001 good "$WORK/good.req"
check_eq "127.0.0.3 still gets its nonce echoed, in a 'good' answer that verifies" "1 1" "$VALID $NONCE"
OUT=$(openssl ocsp -respin "$WORK/other_two.1" -issuer "$CA/device-issuing.pem" -cert "$WORK/CAM0001.pem" \
  -cert "$WORK/CAM0002.pem" -CAfile "$CA/root.pem" -no_nonce 2>&1 || true)
check "... and its answer for two certificates (good, revoked), not tryLater" \
  bash -c "grep -q 'Response verify OK' <<<\"\$0\" && grep -q 'CAM0001.pem: good' <<<\"\$0\" && grep -q 'CAM0002.pem: revoked' <<<\"\$0\"" "$OUT"
check "the log line names the answer whose nonce was left out" grep -q 'path="/ocsp" status=200 client="none" result="good serial=[0-9a-f]* nonce left out (over budget) pre-signed".*addr="127.0.0.2"' "$WORK/server.log"

# ---- the refusals, counted per address, are in the audit once the server stops ----
cleanup_server
check_eq "the audit counts every request past the budget as an ocsp.budget refusal of anonymous:127.0.0.2" "$OVER" \
  "$(sql "$DB" "select coalesce(sum(cast(substr(detail, 1, instr(detail, ' ') - 1) as integer)), 0) from audit
                where action = 'ocsp.budget' and actor = 'anonymous:127.0.0.2' and outcome = 'denied'")"
check_eq "... in two entries (left out nonces, tryLater), not one per request" 2 \
  "$(sql "$DB" "select count(*) from audit where action = 'ocsp.budget'")"
check_eq "... which say why" 2 "$(sql "$DB" "select count(*) from audit where action = 'ocsp.budget' and
  (detail like '%: over ocsp.signatures_per_minute: answered without its nonce (pre-signed)'
   or detail like '%: over ocsp.signatures_per_minute: tryLater')")"
check "the audit chain is intact" "$CA_BIN" audit verify --dir "$CA"
finish
