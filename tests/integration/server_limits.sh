#!/usr/bin/env bash
# The server under misbehaving clients, on loopback: one address floods it with connections that never finish a
# TLS handshake while a station keeps enrolling from another address; and a SIGTERM that arrives while a
# request is under way still lets that request be answered (its certificate is not issued to nobody).
# Usage: server_limits.sh PATH/TO/camtrust-ca
CA_BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
CLIENTS=$HERE/server_clients.py

CA=$WORK/ca
DB=$CA/camtrust.db
ca_create "$CA" >/dev/null
# Idle connections (handshakes included) closed after 5 s: the flood ends within the test's bounds.
sed -i 's/^server.idle_timeout = .*/server.idle_timeout = 5/' "$CA/camtrust-ca.conf"
check "the config names the limits" bash -c "grep -q '^server.per_ip_connections = 32' '$CA/camtrust-ca.conf' && grep -q '^server.idle_timeout = 5' '$CA/camtrust-ca.conf' && grep -q '^server.drain_seconds = 10' '$CA/camtrust-ca.conf'"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/station.key" -subj "/CN=line1" \
  -out "$WORK/station.csr" 2>/dev/null
"$CA_BIN" station add --dir "$CA" --name line1 --csr "$WORK/station.csr" --out "$WORK/station.pem" >/dev/null
for i in $(seq 1 9); do echo "CAM000$i"; done >"$WORK/serials.txt"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX100 --serials "$WORK/serials.txt" >/dev/null
start_ca "$CA"
STATION=(--cert "$WORK/station.pem" --key "$WORK/station.key" --interface 127.0.0.1)

# ---- a flood from 127.0.0.2: 1,100 connections (past the old total of 1,000) that never finish a handshake ----
FLOOD=1100
python3 "$CLIENTS" flood "$PORT" "$FLOOD" "$WORK/flood.out" &
FLOOD_PID=$!
for _ in $(seq 1 200); do grep -q '^open' "$WORK/flood.out" 2>/dev/null && break; sleep 0.05; done
check "the flood opened its connections" grep -q '^open [1-9]' "$WORK/flood.out"
ok_count=0
for i in $(seq 1 20); do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$CA/ops-root.pem" "${STATION[@]}" \
    "https://localhost:$PORT/.well-known/est/cacerts" || true)
  [ "$code" = 200 ] && ok_count=$((ok_count + 1))
done
check_eq "during the flood, every one of 20 cacerts requests of the station is answered" 20 "$ok_count"
ok_count=0
for i in 1 2 3; do
  make_csr "$WORK/cam$i" "/serialNumber=CAM000$i/CN=x"
  [ "$(est_post simpleenroll "$WORK/cam$i.b64" "$WORK/cam$i.p7" "${STATION[@]}")" = 200 ] && ok_count=$((ok_count + 1))
done
check_eq "... and every one of 3 enrollments" 3 "$ok_count"
rc=0; timeout 40 tail --pid="$FLOOD_PID" -f /dev/null || rc=$?
wait "$FLOOD_PID" || rc=$?
check_eq "the flood script ended within its bounds" 0 "$rc"
held=$(sed -n 's/^held //p' "$WORK/flood.out")
check "the flooding address held at most server.per_ip_connections (32) connections (held ${held:-?})" \
  test "${held:-99999}" -le 32
check_eq "... and the server closed them all once idle (handshakes that never finish time out)" "closed_all yes" \
  "$(grep '^closed_all' "$WORK/flood.out")"
check_eq "the server still answers afterwards" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
  --cacert "$CA/ops-root.pem" "https://localhost:$PORT/.well-known/est/cacerts" || true)"

# ---- SIGTERM while a request is under way: it is answered, then the server stops ----
make_csr "$WORK/cam9" "/serialNumber=CAM0009/CN=x"
python3 "$CLIENTS" slow "$PORT" "$CA" "$WORK/station.pem" "$WORK/station.key" "$WORK/cam9.b64" "$WORK/go" \
  "$WORK/slow.out" &
SLOW_PID=$!
for _ in $(seq 1 200); do grep -q '^continued' "$WORK/slow.out" 2>/dev/null && break; sleep 0.05; done
check "a slow client's enrollment is under way (the server said 100 Continue)" grep -q '^continued' "$WORK/slow.out"
kill -TERM "$SERVER_PID"
for _ in $(seq 1 200); do grep -q 'event=draining' "$WORK/server.log" && break; sleep 0.05; done
check "SIGTERM: the server drains" grep -q 'event=draining requests=1 ' "$WORK/server.log"
rc=0; curl -s -o /dev/null --max-time 5 --cacert "$CA/ops-root.pem" "https://localhost:$PORT/.well-known/est/cacerts" || rc=$?
check_eq "... and refuses new connections at once (curl: couldn't connect)" 7 "$rc"
touch "$WORK/go" # now the slow client sends its body
rc=0; timeout 30 tail --pid="$SLOW_PID" -f /dev/null || rc=$?
wait "$SLOW_PID" || rc=$?
check_eq "the slow client finished" 0 "$rc"
check_eq "... with its answer: 200" "status HTTP/1.1 200 OK" "$(grep '^status' "$WORK/slow.out")"
base64 -d "$WORK/slow.out.body" | openssl pkcs7 -inform DER -print_certs -out "$WORK/cam9.pem" 2>/dev/null || true
check_eq "... the certificate the database recorded for CAM0009" \
  "$(sql "$DB" "select cert_serial_hex from certificates where device_serial='CAM0009'")" \
  "$(openssl x509 -in "$WORK/cam9.pem" -noout -serial 2>/dev/null | cut -d= -f2 | tr 'A-F' 'a-f')"
rc=0; wait "$SERVER_PID" || rc=$?; SERVER_PID=
check_eq "the server then stopped cleanly" 0 "$rc"
check "... within the drain time (no request cut)" bash -c "! grep -q 'event=drain_timeout' '$WORK/server.log'"
lines=$(grep -c 'event=http_library' "$WORK/server.log" || true)
check "the refused connections did not write a line each (${lines} lines for over 1,000), the rest counted" bash -c \
  "[ '$lines' -ge 1 ] && [ '$lines' -lt 100 ] && grep -q 'event=http_library msg=\"Server reached connection limit' '$WORK/server.log' && [ \$(grep -o 'left_out=[0-9]*' '$WORK/server.log' | awk -F= '{ n += \$2 } END { print n + 0 }') -ge 1000 ]"
[ "$failed" = 0 ] || tail -20 "$WORK/server.log"
finish
