#!/usr/bin/env bash
# The listener's room for stations and officers, and slow readers, on loopback. (1) 6 addresses each hold their
# share of connections (4, 24 in all for a listener of 16) with TLS handshakes done without a client certificate,
# silent, each opened again once closed: a station (client certificate) is still answered and enrolls, an officer
# reads, the reserve (server.reserved_connections) closing the flood's oldest idle connection for each new one (was:
# the listener stayed full, every new connection refused). (2) A large answer (a full entry bundle of the issuance log,
# 256 certificates) read a little at a time, never silent for server.idle_timeout, is cut once it took longer than
# server.request_timeout and a second per 16 KiB (was: read on for minutes, a thread held); read as usual, it
# arrives whole. (3) A request whose body arrives whole just as the watchdog cuts it at server.request_timeout is
# cut and not acted on (a failpoint holds the watchdog there). (1b) As (1), the flood's handshakes done with a camera's
# certificate (it chains to the CA, but is no station's or officer's): a station still gets in (was: refused).
# (4) As (1) while a slow reader of (2) is cut: the cut is logged (was: hidden by the evictions' lines, one limit).
# Usage: server_flood_reserve.sh PATH/TO/camtrust-ca (CAMTRUST_TEST_LOAD: the enrollment load generator)
CA_BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
CLIENTS=$HERE/server_clients.py
[ -x "${CAMTRUST_TEST_LOAD:-}" ] || { echo "CAMTRUST_TEST_LOAD: the enrollment load generator is required"; exit 1; }

CA=$WORK/ca
CONF=$CA/camtrust-ca.conf
ca_create "$CA" >/dev/null
station_with_order line1 CAM0001 CAM0002
STATION=(--cert "$WORK/station.pem" --key "$WORK/station.key")
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/alice.key" -subj "/CN=alice" \
  -out "$WORK/alice.csr" 2>/dev/null
"$CA_BIN" officer add --dir "$CA" --name alice --role auditor --csr "$WORK/alice.csr" --out "$WORK/alice.pem" >/dev/null
# 16 connections, 4 per address, 4 kept for stations and officers; silent and unfinished requests kept 60 s (longer
# than this part): only the reserve closes a flooding connection.
sed -i -e 's/^server.max_connections = .*/server.max_connections = 16/' \
  -e 's/^server.per_ip_connections = .*/server.per_ip_connections = 4/' \
  -e 's/^server.reserved_connections = .*/server.reserved_connections = 4/' \
  -e 's/^server.idle_timeout = .*/server.idle_timeout = 60/' \
  -e 's/^server.request_timeout = .*/server.request_timeout = 60/' "$CONF"
check "the config names the reserve (4 here)" grep -q '^server.reserved_connections = 4$' "$CONF"
start_ca "$CA"

# hold_start NAME [CERT KEY]: 6 addresses, 4 connections each, hold the listener (with CERT, a client certificate);
# waits until the flood settled: HOLD_PID, and held, the most it held at once.
hold_start() {
  python3 "$CLIENTS" hold "$PORT" "$CA" 127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7 4 \
    "$WORK/stop_$1" "$WORK/$1.out" "${@:2}" &
  HOLD_PID=$!; BG_PIDS+=("$HOLD_PID")
  for _ in $(seq 1 400); do grep -q '^held' "$WORK/$1.out" 2>/dev/null && break; sleep 0.05; done
  held=$(sed -n 's/^held //p' "$WORK/$1.out")
}
# hold_stop NAME: stops that flood and waits for it (at most 90 s): rc, its exit; closed, the connections the server
# closed after their handshake.
hold_stop() {
  touch "$WORK/stop_$1"
  rc=0; timeout 90 tail --pid="$HOLD_PID" -f /dev/null || rc=$?; wait "$HOLD_PID" || rc=$?
  closed=$(sed -n 's/^closed //p' "$WORK/$1.out")
}

# ---- (1) many addresses, each at its limit, hold the listener ----
hold_start hold
# (the server counts a connection from its arrival, the client once its handshake ended and until it sees it closed:
# with new connections arriving all the time, one of the 12 may be in its handshake whenever the client counts (CI
# saw 11), or one just closed not seen yet (13))
check "6 addresses fill the listener to its 16 less its reserve of 4, give or take one (held ${held:-?})" \
  test "${held:-0}" -ge 11
# station_cacerts: the station's GET of cacerts, tried 5 times a second apart (each at most 10 s); its last status.
station_cacerts() {
  local code=000
  for _ in 1 2 3 4 5; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$CA/ops-root.pem" "${STATION[@]}" \
      "https://localhost:$PORT/.well-known/est/cacerts" || true)
    [ "$code" = 200 ] && break; sleep 1
  done
  echo "$code"
}
check_eq "meanwhile a station is answered (a connection of the flood closed to make room)" 200 "$(station_cacerts)"
make_csr "$WORK/cam1" "/serialNumber=CAM0001/CN=x"
code=000
for _ in 1 2 3 4 5; do
  code=$(est_post simpleenroll "$WORK/cam1.b64" "$WORK/cam1.p7" "${STATION[@]}")
  [ "$code" = 200 ] && break; sleep 1
done
check_eq "... and enrolls CAM0001" 200 "$code"
code=000
for _ in 1 2 3 4 5; do
  code=$(curl -s -o "$WORK/me.json" -w '%{http_code}' --max-time 10 --cacert "$CA/ops-root.pem" --cert "$WORK/alice.pem" \
    --key "$WORK/alice.key" "https://localhost:$PORT/officer/api/me" || true)
  [ "$code" = 200 ] && break; sleep 1
done
check_eq "... and an officer reads" 200 "$code"
check "the flood went on meanwhile" kill -0 "$HOLD_PID"
hold_stop hold
check_eq "the flooding client ended within its bounds" 0 "$rc"
check "the server closed flooding connections after their handshake (${closed:-?}), none idle or request timeout" \
  test "${closed:-0}" -ge 1
check "... and said why" grep -q "closing its oldest idle connection that is no station's or officer's" \
  "$WORK/server.log"

# ---- (1b) the same with a camera's certificate (any camera's owner has one): it chains to the CA, it is no
# station's or officer's. The reserve kept every such connection (trusted, as a station's): the flood held the
# whole listener, the station's connection was refused.
base64 -d "$WORK/cam1.p7" | openssl pkcs7 -inform DER -print_certs -out "$WORK/cam1.pem" 2>/dev/null
hold_start hold_cam "$WORK/cam1.pem" "$WORK/cam1.key"
check "6 addresses with a camera's certificate fill it as far, give or take one (held ${held:-?})" \
  test "${held:-0}" -ge 11
check_eq "meanwhile a station is answered (a camera's connection closed to make room)" 200 "$(station_cacerts)"
hold_stop hold_cam
check_eq "the camera's flooding client ended within its bounds" 0 "$rc"
check "... the server closed its connections after their handshake to keep the reserve (${closed:-?})" \
  test "${closed:-0}" -ge 1

# ---- (2) a large answer read slowly ----
# 256 certificates (the load generator: fresh keys, keep-alive connections) fill the log's first entry bundle.
cleanup_server
sed -i -e 's/^server.max_connections = .*/server.max_connections = 256/' \
  -e 's/^server.per_ip_connections = .*/server.per_ip_connections = 32/' \
  -e 's/^server.idle_timeout = .*/server.idle_timeout = 10/' \
  -e 's/^server.request_timeout = .*/server.request_timeout = 3/' "$CONF"
printf 'BIG%03d\n' $(seq 1 256) >"$WORK/big-serials.txt"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX100 --serials "$WORK/big-serials.txt" >/dev/null
WITH_HTTP=1 start_ca "$CA"
LOAD_OUT=$("$CAMTRUST_TEST_LOAD" --mode est --host 127.0.0.1 --port "$PORT" --server-name localhost --conns 4 \
  --count 256 --serials "$WORK/big-serials.txt" --cert "$WORK/station.pem" --key "$WORK/station.key" \
  --cafile "$CA/ops-root.pem" --max-seconds 120 2>/dev/null || true)
check "256 certificates issued for the log's first entry bundle" grep -q ' ok=256 ' <<<" $LOAD_OUT "
BUNDLE=http://127.0.0.1:$HTTP_PORT/log/tile/entries/000
code=000
for _ in $(seq 1 100); do
  code=$(curl -s -o "$WORK/bundle" -w '%{http_code}' --max-time 20 "$BUNDLE" || true)
  [ "$code" = 200 ] && break; sleep 0.2
done
size=$(stat -c %s "$WORK/bundle" 2>/dev/null || echo 0)
check "the full bundle is served, read as usual, whole (${size} bytes, over 100 KB)" \
  bash -c "[ '$code' = 200 ] && [ '$size' -gt 100000 ]"
# 512 bytes every 0.5 s, about 1 KB/s: the bundle would take minutes; the reader gives up at 60 s.
python3 "$CLIENTS" slowread "127.0.0.1:$HTTP_PORT" /log/tile/entries/000 512 0.5 60 "$WORK/slow.out"
check_eq "a reader taking a little at a time is told the whole length" "length $size" "$(grep '^length' "$WORK/slow.out")"
got=$(sed -n 's/^got //p' "$WORK/slow.out")
check_eq "... and cut off by the server (past server.request_timeout and a second per 16 KiB)" "ended closed" \
  "$(grep '^ended' "$WORK/slow.out")"
check "... before the end of it (${got:-?} of $size bytes)" test "${got:-$size}" -lt "$size"
check "... and the server said why" grep -q 'An answer was not read within its time' "$WORK/server.log"
code=$(curl -s -o "$WORK/bundle2" -w '%{http_code}' --max-time 20 "$BUNDLE" || true)
check "afterwards the bundle is read whole as before" bash -c "[ '$code' = 200 ] && cmp -s '$WORK/bundle' '$WORK/bundle2'"

# ---- (3) a request whole just as the watchdog cuts it: cut and not acted on, or answered, never both ----
# The watchdog holds (failpoint serve:cut) once it has found the request past server.request_timeout (3 s), before it
# cuts; meanwhile the request's body arrives whole. It was answered and acted on (CAM0002 issued) and then cut: the
# station had no answer for a certificate issued.
cleanup_server
export CAMTRUST_FAILPOINT=serve:cut CAMTRUST_FAILPOINT_RELEASE=$WORK/release_cut
start_ca "$CA"
unset CAMTRUST_FAILPOINT CAMTRUST_FAILPOINT_RELEASE
make_csr "$WORK/cam2" "/serialNumber=CAM0002/CN=x"
python3 "$CLIENTS" slow "$PORT" "$CA" "$WORK/station.pem" "$WORK/station.key" "$WORK/cam2.b64" "$WORK/go_late" \
  "$WORK/late.out" &
LATE_PID=$!; BG_PIDS+=("$LATE_PID")
for _ in $(seq 1 400); do grep -q 'point="serve:cut"' "$WORK/server.log" && break; sleep 0.05; done
check "a station's enrollment is under way, its body not sent, and the watchdog about to cut it" \
  bash -c "grep -q '^continued' '$WORK/late.out' && grep -q 'point=\"serve:cut\"' '$WORK/server.log'"
touch "$WORK/go_late"
for _ in $(seq 1 200); do [ -e "$WORK/late.out.sent" ] && break; sleep 0.05; done
sleep 1 # (the body reaches the server: no timing is checked)
touch "$WORK/release_cut"
rc=0; timeout 60 tail --pid="$LATE_PID" -f /dev/null || rc=$?; wait "$LATE_PID" || rc=$?
check_eq "the late client ended" 0 "$rc"
check "its connection was cut (no answer)" bash -c "! grep -q '^status HTTP' '$WORK/late.out'"
check_eq "... and its request not acted on: no certificate for CAM0002" 0 \
  "$(sql "$CA/camtrust.db" "select count(*) from certificates where device_serial='CAM0002'")"
check_eq "the station then enrolls CAM0002" 200 "$(est_post simpleenroll "$WORK/cam2.b64" "$WORK/cam2.p7" "${STATION[@]}")"

# ---- (4) a slow answer cut during a flood the reserve evicts: the log limiter was one for every kind, so the
# eviction lines (many a second) hid the watchdog's line; each kind has its own now.
cleanup_server
sed -i -e 's/^server.max_connections = .*/server.max_connections = 16/' \
  -e 's/^server.per_ip_connections = .*/server.per_ip_connections = 4/' \
  -e 's/^server.idle_timeout = .*/server.idle_timeout = 60/' "$CONF"
WITH_HTTP=1 start_ca "$CA"
hold_start hold4
for _ in $(seq 1 400); do grep -q 'closing its oldest idle connection' "$WORK/server.log" && break; sleep 0.05; done
check "a flood the reserve evicts from" grep -q 'closing its oldest idle connection' "$WORK/server.log"
python3 "$CLIENTS" slowread "127.0.0.1:$HTTP_PORT" /log/tile/entries/000 512 0.5 60 "$WORK/slow4.out"
check_eq "meanwhile a slow reader is cut off" "ended closed" "$(grep '^ended' "$WORK/slow4.out")"
check "the flood went on meanwhile" kill -0 "$HOLD_PID"
hold_stop hold4
check_eq "the flooding client ended within its bounds" 0 "$rc"
check "... and the server said why, its line not hidden by the evictions'" \
  grep -q 'An answer was not read within its time' "$WORK/server.log"
cleanup_server
check "the evictions left out are counted as theirs at stop" \
  grep -q 'msg="messages left out" kind=reserve left_out=[1-9]' "$WORK/server.log"
[ "$failed" = 0 ] || tail -20 "$WORK/server.log"
finish
