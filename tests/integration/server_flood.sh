#!/usr/bin/env bash
# The server under clients that send without end or a byte at a time, on loopback: from two addresses, 8 connections
# each POST chunked bodies that never end (one address to /ocsp over plain HTTP, the other to EST simpleenroll over
# HTTPS), again and again (the HTTPS one, refused past its rate of new connections, again too); each is cut off past
# server.max_body and 1 MiB more (not read to its end: its connection's thread is free again), while an OCSP client
# and a station are still answered. Then 4 addresses fill the listener with TLS
# connections whose request headers come a byte every 2 s, never silent for the idle timeout: each is cut off at
# server.request_timeout, and a station gets in. (A TLS handshake sent so is cut off at the idle timeout already.)
# Around them: a chunked CSR below the bound is answered; a body-less route's past it is refused, logged as its 413; a
# request held inside the server (failpoint serve:crl, a slow answer) past the request timeout is answered, not cut; a keep-alive
# connection waits for its next request as long as server.idle_timeout, above server.request_timeout, lets it.
# Usage: server_flood.sh PATH/TO/camtrust-ca
CA_BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
CLIENTS=$HERE/server_clients.py

CA=$WORK/ca
ca_create "$CA" >/dev/null
station_with_order line1 CAM0001 CAM0002 CAM0003 CAM0004
# The HTTPS flood below opens far more connections than its address's rate of new ones allows: refused past it, it
# comes again (as an attacker does), and goes on while the station is served.
sed -i -e 's/^server.per_ip_connects_per_second = .*/server.per_ip_connects_per_second = 10/' \
  -e 's/^server.per_ip_connects_burst = .*/server.per_ip_connects_burst = 20/' "$CA/camtrust-ca.conf"
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
# The cut is past the bound only: a CSR sent chunked (no length announced) is answered as ever.
make_csr "$WORK/cam3" "/serialNumber=CAM0003/CN=x"
check_eq "a station's CSR sent chunked, below server.max_body, is answered" 200 \
  "$(est_post simpleenroll "$WORK/cam3.b64" "$WORK/cam3.p7" "${STATION[@]}" -H 'Transfer-Encoding: chunked')"
# A route that reads no body is refused past the bound too: a 413, not its answer (was: logged as a 200 never sent).
head -c 40000 /dev/zero | tr '\0' A >"$WORK/big"
curl -s -o /dev/null --max-time 20 -X GET -H 'Transfer-Encoding: chunked' --data-binary "@$WORK/big" \
  "http://127.0.0.1:$HTTP_PORT/crl" || true
check "a GET of /crl with a chunked body past the bound is logged as its 413" \
  grep -q 'method="GET" path="/crl" status=413' "$WORK/server.log"
check "... not as a 200 never sent" bash -c "! grep -q 'method=\"GET\" path=\"/crl\" status=200' '$WORK/server.log'"

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
check_eq "... and a station enrolls CAM0002" 200 \
  "$(est_post simpleenroll "$WORK/cam2.b64" "$WORK/cam2.p7" "${STATION[@]}")"
check "the HTTPS flood went on meanwhile, past its rate of new connections (was: its clients gave up)" \
  kill -0 "$TLS_PID"
sleep 2 # (let each attacking connection run into its end or its cap of 64 MiB: no timing is checked)
touch "$WORK/stop"
rc=0
timeout 90 tail --pid="$PLAIN_PID" -f /dev/null || rc=$?
timeout 90 tail --pid="$TLS_PID" -f /dev/null || rc=$?
wait "$PLAIN_PID" || rc=$?; wait "$TLS_PID" || rc=$?
check_eq "the attacking clients ended within their bounds" 0 "$rc"
for side in plain tls; do
  closed=$(sed -n 's/^closed //p' "$WORK/$side.out"); capped=$(sed -n 's/^capped //p' "$WORK/$side.out")
  check "$side: the server cut off the endless bodies (${closed:-?} connections closed)" test "${closed:-0}" -ge 8
  check_eq "$side: ... each before 64 MiB of it (none read on and on)" 0 "${capped:-?}"
done
check "tls: ... the rest refused before any handshake ($(sed -n 's/^refused //p' "$WORK/tls.out"))" \
  test "$(sed -n 's/^refused //p' "$WORK/tls.out")" -ge 1
check "the refusals are logged as 413 (OCSP)" grep -q 'method="POST" path="/ocsp" status=413' "$WORK/server.log"
check "... and as 413 (EST)" grep -q 'method="POST" path="/.well-known/est/simpleenroll" status=413' "$WORK/server.log"
check_eq "afterwards, an OCSP client is answered" good "$(ocsp_status)"
check_eq "... and the station" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 --cacert "$CA/ops-root.pem" \
  "${STATION[@]}" "https://localhost:$PORT/.well-known/est/cacerts" || true)"

# ---- slow clients: 4 addresses fill the listener with request headers sent a byte every 2 s (within the idle timeout)
# A listener of 16 connections, 4 per address; silent for 5 s closes a connection, a request not whole within 8 s too.
# None kept for stations (server.reserved_connections 0, server_flood_reserve.sh plays it): the watchdog alone frees it.
cleanup_server
sed -i -e 's/^server.max_connections = .*/server.max_connections = 16/' \
  -e 's/^server.reserved_connections = .*/server.reserved_connections = 0/' \
  -e 's/^server.per_ip_connections = .*/server.per_ip_connections = 4/' \
  -e 's/^server.idle_timeout = .*/server.idle_timeout = 5/' \
  -e 's/^server.request_timeout = .*/server.request_timeout = 8/' "$CA/camtrust-ca.conf"
check "the config names the request timeout (set to 8 s here)" \
  grep -q '^server.request_timeout = 8$' "$CA/camtrust-ca.conf"
# A GET of /crl is held inside the server (a slow answer) until $WORK/release exists.
export CAMTRUST_FAILPOINT=serve:crl CAMTRUST_FAILPOINT_RELEASE=$WORK/release
start_ca "$CA"
unset CAMTRUST_FAILPOINT CAMTRUST_FAILPOINT_RELEASE
python3 "$CLIENTS" trickle "$PORT" "$CA" 127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5 4 "$WORK/stop_trickle" \
  "$WORK/trickle.out" &
TRICKLE_PID=$!; BG_PIDS+=("$TRICKLE_PID")
for _ in $(seq 1 400); do grep -q '^held' "$WORK/trickle.out" 2>/dev/null && break; sleep 0.05; done
check_eq "4 addresses trickling request headers hold the listener's 16 connections" "held 16" \
  "$(grep '^held' "$WORK/trickle.out")"
# The station retries for up to 40 s; the trickling clients would go on for 60 s (30 bytes) unless cut off.
code=000
for _ in $(seq 1 40); do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$CA/ops-root.pem" "${STATION[@]}" \
    "https://localhost:$PORT/.well-known/est/cacerts" || true)
  [ "$code" = 200 ] && break; sleep 1
done
check_eq "a station is answered while they trickle (their connections cut at server.request_timeout)" 200 "$code"
touch "$WORK/stop_trickle"
rc=0; timeout 90 tail --pid="$TRICKLE_PID" -f /dev/null || rc=$?; wait "$TRICKLE_PID" || rc=$?
check_eq "the trickling client ended within its bounds" 0 "$rc"
check_eq "the server cut every trickling connection before its last byte" "cut 16 open 0" \
  "$(grep -E '^(cut|open)' "$WORK/trickle.out" | tr '\n' ' ' | sed 's/ $//')"
# A request whole and answered slowly is no request still arriving: held past server.request_timeout, it is answered
# (it was cut: the watchdog's clock stopped only once its answer was being made, after the hold).
curl -s -o /dev/null -w '%{http_code}' --max-time 60 --cacert "$CA/ops-root.pem" "https://localhost:$PORT/crl" \
  >"$WORK/held.code" 2>/dev/null &
HELD_PID=$!; BG_PIDS+=("$HELD_PID")
for _ in $(seq 1 400); do grep -q 'event=failpoint_held' "$WORK/server.log" && break; sleep 0.05; done
check "a GET of /crl is held inside the server" grep -q 'event=failpoint_held' "$WORK/server.log"
sleep 10 # (past the request timeout of 8 s: no timing is checked)
touch "$WORK/release"
wait "$HELD_PID" || true
check_eq "... and answered once let go, after longer than server.request_timeout" 200 "$(cat "$WORK/held.code")"

# ---- an operator keeps idle connections longer than a request may take to arrive (idle 12 s, request 3 s) ----
cleanup_server
sed -i -e 's/^server.idle_timeout = .*/server.idle_timeout = 12/' \
  -e 's/^server.request_timeout = .*/server.request_timeout = 3/' "$CA/camtrust-ca.conf"
start_ca "$CA"
make_csr "$WORK/cam4" "/serialNumber=CAM0004/CN=x"
python3 "$CLIENTS" station "$PORT" "$CA" "$WORK/station.pem" "$WORK/station.key" "$WORK/keep.out" \
  "$WORK/go_keep:$WORK/cam4.b64" &
KEEP_PID=$!; BG_PIDS+=("$KEEP_PID")
for _ in $(seq 1 400); do grep -q '^\(ready\|error\)' "$WORK/keep.out" 2>/dev/null && break; sleep 0.05; done
check_eq "a station's keep-alive connection is answered" "ready HTTP/1.1 200 OK" \
  "$(grep -E '^(ready|error)' "$WORK/keep.out")"
sleep 6 # (silent longer than the request timeout, within the idle timeout: no timing is checked)
touch "$WORK/go_keep"
wait "$KEEP_PID" || true
check_eq "... and, silent past server.request_timeout but within server.idle_timeout, enrolls on it" \
  "enroll 1 HTTP/1.1 200 OK" "$(grep -E '^(enroll 1|error)' "$WORK/keep.out")"
[ "$failed" = 0 ] || tail -20 "$WORK/server.log"
finish
