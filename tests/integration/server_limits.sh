#!/usr/bin/env bash
# The server under misbehaving clients, on loopback: one address floods it with connections that never finish a
# TLS handshake while a station keeps enrolling from another address; a SIGTERM that arrives while a request is
# under way still lets that request be answered (its certificate is not issued to nobody); requests held inside
# the server on 8 connections hold no other connection's (a failpoint holds them); many addresses fill the
# listener: a new client is refused at once, a station connected before still enrolls.
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

# ---- requests held on 8 connections hold no other connection's; many addresses fill the listener ----
# A listener of 16 connections at most, 4 per address; idle connections kept 30 s (longer than this part); none kept
# for stations (server.reserved_connections 0: libmicrohttpd refuses at the limit; server_flood_reserve.sh plays it).
sed -i -e 's/^server.max_connections = .*/server.max_connections = 16/' \
  -e 's/^server.reserved_connections = .*/server.reserved_connections = 0/' \
  -e 's/^server.per_ip_connections = .*/server.per_ip_connections = 4/' \
  -e 's/^server.idle_timeout = .*/server.idle_timeout = 30/' "$CA/camtrust-ca.conf"
for i in 4 5; do make_csr "$WORK/cam$i" "/serialNumber=CAM000$i/CN=x"; done
# A GET of /crl is held inside the server, in the thread serving its connection, until $WORK/release exists.
export CAMTRUST_FAILPOINT=serve:crl CAMTRUST_FAILPOINT_RELEASE=$WORK/release
start_ca "$CA"
unset CAMTRUST_FAILPOINT CAMTRUST_FAILPOINT_RELEASE
# wait_line FILE PATTERN: until FILE has a line matching PATTERN (at most 20 s).
wait_line() { for _ in $(seq 1 400); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; return 0; }
python3 "$CLIENTS" station "$PORT" "$CA" "$WORK/station.pem" "$WORK/station.key" "$WORK/station.out" \
  "$WORK/go1:$WORK/cam4.b64" "$WORK/go2:$WORK/cam5.b64" &
STATION_PID=$!; BG_PIDS+=("$STATION_PID")
wait_line "$WORK/station.out" '^ready'
check_eq "a station holds a keep-alive connection (its first request answered)" "ready HTTP/1.1 200 OK" \
  "$(grep -E '^(ready|error)' "$WORK/station.out")"
# One after another, each once the one before is held: a pool of up to 8 workers would have each worker held
# (a held worker accepts no connection), the station's among them.
CRL_PIDS=()
for i in $(seq 1 8); do
  curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 --interface "127.0.1.$i" --cacert "$CA/ops-root.pem" \
    "https://localhost:$PORT/crl" >"$WORK/crl$i.code" 2>/dev/null &
  CRL_PIDS+=($!); BG_PIDS+=($!)
  for _ in $(seq 1 200); do [ "$(grep -c 'event=failpoint_held' "$WORK/server.log")" -ge "$i" ] && break; sleep 0.05; done
done
check_eq "8 GETs of /crl, from 8 addresses, are held inside the server" 8 "$(grep -c 'event=failpoint_held' "$WORK/server.log")"
check_eq "while they are held, a new connection is answered" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
  --cacert "$CA/ops-root.pem" "https://localhost:$PORT/.well-known/est/cacerts" || true)"
touch "$WORK/go1"
wait_line "$WORK/station.out" '^\(enroll 1\|error\)'
check_eq "... and the station enrolls on its connection, opened before them" "enroll 1 HTTP/1.1 200 OK" \
  "$(grep -E '^(enroll 1|error)' "$WORK/station.out")"
touch "$WORK/release"
for pid in "${CRL_PIDS[@]}"; do wait "$pid" || true; done
check_eq "once let go, the 8 held requests are answered" "200 200 200 200 200 200 200 200" \
  "$(cat "$WORK"/crl[1-8].code | tr '\n' ' ' | sed 's/ $//')"
# A connection closed no longer counts against its address, one with a verified client certificate included (its
# check once overwrote the connection's count): more than server.per_ip_connections (4), one after another.
codes=$(for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code} ' --max-time 10 --interface 127.0.0.9 \
  --cacert "$CA/ops-root.pem" --cert "$WORK/station.pem" --key "$WORK/station.key" \
  "https://localhost:$PORT/.well-known/est/cacerts" || true; done)
check_eq "6 connections one after another from one address with a station's certificate are each answered" \
  "200 200 200 200 200 200" "${codes% }"
# Only the station's connection left (the server closes what the others' clients closed): the listener has 15 free.
for _ in $(seq 1 200); do
  [ "$(ss -Htn state established state close-wait "( sport = :$PORT )" | wc -l)" -le 1 ] && break; sleep 0.05
done
python3 "$CLIENTS" fill "$PORT" 127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6 4 "$WORK/go_fill" "$WORK/fill.out" &
FILL_PID=$!; BG_PIDS+=("$FILL_PID")
wait_line "$WORK/fill.out" '^held'
check_eq "5 addresses of 4 connections each, none of them over the per-address limit, take the 15 the station left" \
  "held 15" "$(grep '^held' "$WORK/fill.out")"
rc=0; curl -s -o /dev/null --max-time 10 --interface 127.0.0.9 --cacert "$CA/ops-root.pem" \
  "https://localhost:$PORT/.well-known/est/cacerts" || rc=$?
check "a new client is then refused at once, its connection closed (curl exit ${rc}: 35 or 56, not 28 for a wait)" \
  bash -c "[ '$rc' = 35 ] || [ '$rc' = 56 ]"
check "... and the server logs that it reached its connection limit" grep -q 'Server reached connection limit' "$WORK/server.log"
touch "$WORK/go2"
wait_line "$WORK/station.out" '^\(enroll 2\|error\)'
check_eq "the station, connected before, still enrolls on its connection" "enroll 2 HTTP/1.1 200 OK" \
  "$(grep -E '^(enroll 2|error)' "$WORK/station.out")"
base64 -d "$WORK/station.out.2" | openssl pkcs7 -inform DER -print_certs -out "$WORK/cam5.pem" 2>/dev/null || true
check_eq "... and gets the certificate the database recorded for CAM0005" \
  "$(sql "$DB" "select cert_serial_hex from certificates where device_serial='CAM0005'")" \
  "$(openssl x509 -in "$WORK/cam5.pem" -noout -serial 2>/dev/null | cut -d= -f2 | tr 'A-F' 'a-f')"
touch "$WORK/go_fill"
rc=0; wait "$STATION_PID" || rc=$?; wait "$FILL_PID" || rc=$?
check_eq "the station and the filling addresses ended" 0 "$rc"
code=000
for _ in $(seq 1 50); do # the server closes the filling connections as their client does; then there is room
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --interface 127.0.0.9 --cacert "$CA/ops-root.pem" \
    "https://localhost:$PORT/.well-known/est/cacerts" || true)
  [ "$code" = 200 ] && break; sleep 0.1
done
check_eq "once they let go, a new client is answered" 200 "$code"
[ "$failed" = 0 ] || tail -20 "$WORK/server.log"
finish
