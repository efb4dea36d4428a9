#!/usr/bin/env bash
# A request body too large is refused before any work, whatever the route: a GET of a CRL that no node has signed yet
# (the operations CRL, signed on its first request: GET /crl/ops), sent with a body past server.max_body (announced or
# chunked) or any body at all (a GET takes none, RFC 9110 9.3.1), gets its 413 and no CRL is signed for it (was: the
# CRL signed, a cRLNumber taken, stored and audited, then the 413); so do a HEAD of it, a GET of the log's checkpoint
# and of EST cacerts. The same GET without a body then signs it. Nothing else signs that CRL meanwhile: the signer's
# tick signs only a CRL some node has stored (crl_adopt), so no check below depends on when the tick comes (a stale
# device CRL, the earlier form of this test, was re-signed by any tick that came within the checks).
# Usage: server_body_first.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
DB=$CA/camtrust.db
ca_create "$CA" >/dev/null
WITH_HTTP=1 start_ca "$CA"
HTTP=http://127.0.0.1:$HTTP_PORT

# get URL [curl options...]: a GET's status
get() { local url=$1; shift; curl -s -o "$WORK/answer" -w '%{http_code}' --max-time 20 -X GET "$@" "$url" || true; }
# A body announced past the bound, from a client that waits for 100-continue, is answered before it is sent (no 100
# comes), however long the server takes; one sent at once (SENT) is read and dropped (up to 1 MiB), then answered.
ANNOUNCED=(-H 'Expect: 100-continue' --expect100-timeout 30 --data-binary @"$WORK/big")
SENT=(-H 'Expect:' --data-binary @"$WORK/big")
OPS="(select id from issuing_cas where kind = 'ops')"
stored() { sql "$DB" "select count(*) from crls_signed where issuing_ca = $OPS"; }
signed() { sql "$DB" "select count(*) from audit where action = 'crl.issue'"; }
head -c 40000 /dev/zero | tr '\0' A >"$WORK/big"
n0=$(signed)
check_eq "no operations CRL signed yet" 0 "$(stored)"

check_eq "a GET of /crl/ops with a body announced past server.max_body: 413" 413 \
  "$(get "$HTTP/crl/ops" "${ANNOUNCED[@]}")"
check "... naming the bound" grep -q '^413 request body larger than 0 bytes$' "$WORK/answer"
check_eq "... no CRL signed for it" "0 $n0" "$(stored) $(signed)"
check_eq "the same body sent chunked (no length announced): 413" 413 \
  "$(get "$HTTP/crl/ops" -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/big")"
check_eq "... no CRL signed for it" "0 $n0" "$(stored) $(signed)"
check_eq "a GET of /crl/ops with a body of 10 bytes (a GET takes none): 413" 413 \
  "$(get "$HTTP/crl/ops" --data-binary 0123456789)"
check_eq "... no CRL signed for it" "0 $n0" "$(stored) $(signed)"
check_eq "... sent chunked: 413" 413 "$(get "$HTTP/crl/ops" -H 'Transfer-Encoding: chunked' --data-binary 0123456789)"
check_eq "... no CRL signed for it" "0 $n0" "$(stored) $(signed)"
# (read to its end and dropped: its connection serves the next request, no new one opened)
check_eq "... its connection kept: the next request on it answered" "413 1 200 0" "$(curl -s -o /dev/null \
  -w '%{http_code} %{num_connects} ' --max-time 20 -X GET -H 'Transfer-Encoding: chunked' --data-binary 0123456789 \
  "$HTTP/crl/ops" --next -s -o /dev/null -w '%{http_code} %{num_connects}' --max-time 20 "$HTTP/log/checkpoint" || true)"
check_eq "... no CRL signed for it" "0 $n0" "$(stored) $(signed)"
check_eq "a HEAD of /crl/ops with a body of 10 bytes: 413" 413 \
  "$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 -X HEAD --data-binary 0123456789 "$HTTP/crl/ops" || true)"
check_eq "... no CRL signed for it" "0 $n0" "$(stored) $(signed)"
check_eq "a GET of /log/checkpoint with a body past the bound: 413" 413 \
  "$(get "$HTTP/log/checkpoint" "${ANNOUNCED[@]}")"
check_eq "a GET of EST cacerts with a body past the bound: 413" 413 \
  "$(get "https://localhost:$PORT/.well-known/est/cacerts" --cacert "$CA/ops-root.pem" "${ANNOUNCED[@]}")"
# Before, a body sent at once was answered before it was read and its connection closed on the unread bytes: the
# reset lost the 413 before the client read it ('broken pipe', 000) in 5-30% of tries over TLS.
answers=""
for _ in $(seq 1 20); do
  answers+="$(get "https://localhost:$PORT/.well-known/est/cacerts" --cacert "$CA/ops-root.pem" "${SENT[@]}") "
done
check_eq "a GET of EST cacerts with a body past the bound sent at once (no Expect), 20 times over TLS: 20 413s" \
  "$(printf '413 %.0s' $(seq 1 20))" "$answers"
check_eq "a GET of /crl/ops with a body past the bound sent at once: 413, and its connection serves the next request" \
  "413 1 200 0" "$(curl -s -o /dev/null -w '%{http_code} %{num_connects} ' --max-time 20 -X GET "${SENT[@]}" \
  "$HTTP/crl/ops" --next -s -o /dev/null -w '%{http_code} %{num_connects}' --max-time 20 "$HTTP/log/checkpoint" || true)"
check_eq "... no CRL signed for it" "0 $n0" "$(stored) $(signed)"
check "each refusal logged as a 413" test "$(grep -c 'method="[A-Z]*" path="[^"]*" status=413' "$WORK/server.log")" -ge 8

# What could have failed: the same GET without a body signs the operations CRL.
check_eq "a GET of /crl/ops without a body: 200" 200 "$(get "$HTTP/crl/ops")"
check_eq "... a CRL signed and stored for it" "1 $((n0 + 1))" "$(stored) $(signed)"
check "... the operations CRL" bash -c "openssl crl -inform DER -in '$WORK/answer' -noout -issuer | grep -qi 'operations'"
finish
