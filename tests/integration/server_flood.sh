#!/usr/bin/env bash
# The server under clients that send without end, on loopback: from two addresses, 8 connections each POST chunked
# bodies that never end (one address to /ocsp over plain HTTP, the other to EST simpleenroll over HTTPS), again and
# again; each is cut off past server.max_body (not read to its end: its connection's thread is free again), while
# an OCSP client and a station are still answered.
# Usage: server_flood.sh PATH/TO/camtrust-ca
CA_BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
CLIENTS=$HERE/server_clients.py

CA=$WORK/ca
ca_create "$CA" >/dev/null
station_with_order line1 CAM0001 CAM0002
WITH_HTTP=1 start_ca "$CA"
STATION=(--cert "$WORK/station.pem" --key "$WORK/station.key")
make_csr "$WORK/cam1" "/serialNumber=CAM0001/CN=x"
check_eq "a station enrolls CAM0001" 200 "$(est_post simpleenroll "$WORK/cam1.b64" "$WORK/cam1.p7" "${STATION[@]}")"
base64 -d "$WORK/cam1.p7" | openssl pkcs7 -inform DER -print_certs -out "$WORK/cam1.pem" 2>/dev/null || true
ocsp_status() {
  openssl ocsp -issuer "$CA/device-issuing.pem" -cert "$WORK/cam1.pem" -url "http://127.0.0.1:$HTTP_PORT/ocsp" \
    -CAfile "$CA/root.pem" -timeout 20 2>/dev/null | sed -n 's/^.*cam1.pem: //p'
}
check_eq "an OCSP client gets CAM0001's status over plain HTTP" good "$(ocsp_status)"

# ---- chunked bodies without end: 8 connections from each of two addresses, one after another until stopped ----
python3 "$CLIENTS" chunked "127.0.0.1:$HTTP_PORT" 127.0.0.2 /ocsp PLAIN "$CA" 8 "$WORK/stop" "$WORK/plain.out" &
PLAIN_PID=$!; BG_PIDS+=("$PLAIN_PID")
python3 "$CLIENTS" chunked "127.0.0.1:$PORT" 127.0.0.3 /.well-known/est/simpleenroll TLS "$CA" 8 "$WORK/stop" \
  "$WORK/tls.out" &
TLS_PID=$!; BG_PIDS+=("$TLS_PID")
for _ in $(seq 1 200); do
  grep -q '^streaming' "$WORK/plain.out" 2>/dev/null && grep -q '^streaming' "$WORK/tls.out" 2>/dev/null && break
  sleep 0.05
done
check "both addresses are sending their endless bodies" \
  bash -c "grep -q '^streaming' '$WORK/plain.out' && grep -q '^streaming' '$WORK/tls.out'"
check_eq "meanwhile an OCSP client is answered" good "$(ocsp_status)"
make_csr "$WORK/cam2" "/serialNumber=CAM0002/CN=x"
check_eq "... and a station enrolls CAM0002" 200 "$(est_post simpleenroll "$WORK/cam2.b64" "$WORK/cam2.p7" "${STATION[@]}")"
sleep 2 # (let each attacking connection run into its end or its cap of 64 MiB: no timing is checked)
touch "$WORK/stop"
rc=0
timeout 90 tail --pid="$PLAIN_PID" -f /dev/null || rc=$?; timeout 90 tail --pid="$TLS_PID" -f /dev/null || rc=$?
wait "$PLAIN_PID" || rc=$?; wait "$TLS_PID" || rc=$?
check_eq "the attacking clients ended within their bounds" 0 "$rc"
for side in plain tls; do
  closed=$(sed -n 's/^closed //p' "$WORK/$side.out"); capped=$(sed -n 's/^capped //p' "$WORK/$side.out")
  check "$side: the server cut off the endless bodies (${closed:-?} connections closed)" test "${closed:-0}" -ge 8
  check_eq "$side: ... each before 64 MiB of it (none read on and on)" 0 "${capped:-?}"
done
check "the refusals are logged as 413 (OCSP)" grep -q 'method="POST" path="/ocsp" status=413' "$WORK/server.log"
check "... and as 413 (EST)" grep -q 'method="POST" path="/.well-known/est/simpleenroll" status=413' "$WORK/server.log"
check_eq "afterwards, an OCSP client is answered" good "$(ocsp_status)"
check_eq "... and the station" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 --cacert "$CA/ops-root.pem" \
  "${STATION[@]}" "https://localhost:$PORT/.well-known/est/cacerts" || true)"
[ "$failed" = 0 ] || tail -20 "$WORK/server.log"
finish
