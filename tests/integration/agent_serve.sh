#!/usr/bin/env bash
# The camera's HTTPS server: curl with only the device root reaches it by its serial-derived name; a look-alike
# (self-signed, or issued by another CA, for the same name) is refused by the same curl. Persistent connections are
# re-used by curl and bounded (requests, idle time, workers).
# Usage: agent_serve.sh camtrust-agent factory_client
AGENT_BIN=$1 CLIENT_BIN=$2
SIM_BIN=$(dirname "$AGENT_BIN")/camtrust-agent-sim
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

make_ca "$WORK/ca" Test
make_ca "$WORK/other" Other
DEV=$WORK/dev NAME=cam0200.devices.example.com
"$SIM_BIN" simulate --dir "$DEV" --serial CAM0200 --model CX200 --root "$WORK/ca/root.pem"
check "serve refuses an unprovisioned camera" bash -c "! '$AGENT_BIN' serve --dir '$DEV' --listen 127.0.0.1:0 2>/dev/null"
factory_provision "$DEV" CAM0200 "$WORK/ca"

start_agent serve "$DEV"
PORT=${ADDR##*:}
get() { curl -sS --max-time 10 --cacert "$WORK/ca/root.pem" --resolve "$1:$2:127.0.0.1" "https://$1:$2/"; }
served() { get "$1" "$2" | grep -q "serial CAM0200"; } # served NAME PORT
refused() { ! get "$1" "$2" >/dev/null 2>&1; }
check "curl --cacert root.pem reaches the camera by its name" served $NAME $PORT
check "the connection is TLS 1.3" bash -c "curl -sS -o /dev/null -w '%{ssl_verify_result}' --tlsv1.3 --max-time 10 --cacert '$WORK/ca/root.pem' --resolve $NAME:$PORT:127.0.0.1 https://$NAME:$PORT/ | grep -qx 0"
check "TLS 1.2 is refused" bash -c "! curl -sS -o /dev/null --tls-max 1.2 --max-time 10 --cacert '$WORK/ca/root.pem' --resolve $NAME:$PORT:127.0.0.1 https://$NAME:$PORT/ 2>/dev/null"
check "another name is refused (the certificate names this camera only)" refused cam0999.devices.example.com $PORT
check "a client trusting another root refuses it" bash -c "! curl -sS --max-time 10 --cacert '$WORK/other/root.pem' --resolve $NAME:$PORT:127.0.0.1 https://$NAME:$PORT/ 2>/dev/null"
check "a non-GET gets 405" bash -c "curl -s -o /dev/null -w '%{http_code}' -X POST --max-time 10 --cacert '$WORK/ca/root.pem' --resolve $NAME:$PORT:127.0.0.1 https://$NAME:$PORT/ | grep -qx 405"
# Request smuggling: a GET announcing a body (Content-Length, Transfer-Encoding; any case) whose "body", sent once
# the answer is in, is a request of its own. A proxy in front takes it for the first request's body; the camera
# must answer no more than that first request (before, the body, never read, was taken for the next request: the
# request in it was answered, a chunked one got a 405). smuggle HEADER: prints how many answers came on the
# connection before the camera closed it.
smuggle() {
  python3 - "$NAME" "$PORT" "$WORK/ca/root.pem" "$1" <<'PY'
import socket, ssl, sys
name, port, root, field = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
inner = ("GET /index.html HTTP/1.1\r\nHost: %s\r\n\r\n" % name).encode()
s = ssl.create_default_context(cafile=root).wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30),
                                                         server_hostname=name)
s.sendall(("GET / HTTP/1.1\r\nHost: %s\r\n%s\r\n\r\n" % (name, field.replace("N", str(len(inner))))).encode())
data = b""
while data.count(b"</html>") < 1:
    data += s.recv(4096)
s.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(inner), inner) if "chunked" in field else inner)
try:
    while True:
        got = s.recv(4096)
        if not got:
            break
        data += got
except (ssl.SSLError, ConnectionError):
    pass
print(data.count(b"HTTP/1.1 "))
PY
}
check_eq "a GET with 'content-length' and a request as its body: 1 answer, then closed" 1 "$(smuggle 'content-length: N')"
check_eq "a GET with 'Transfer-Encoding: chunked' and a request as its body: 1 answer, then closed" 1 \
  "$(smuggle 'Transfer-Encoding: chunked')"
# The same behind what a proxy may read otherwise than the camera: a line ended by a bare LF (RFC 9112 lets a
# recipient take it for a line's end: the next line is then a Content-Length), or blanks before the colon. Before,
# the camera saw no body announced and answered the smuggled request too (2 answers).
check_eq "a bare LF before 'content-length' (a body to a proxy): 1 answer, then closed" 1 \
  "$(smuggle $'X-Padding: 1\ncontent-length: N')"
check_eq "a bare LF before 'Transfer-Encoding: chunked': 1 answer, then closed" 1 \
  "$(smuggle $'X-Padding: 1\nTransfer-Encoding: chunked')"
check_eq "'Content-Length : N' (a blank before the colon): 1 answer, then closed" 1 "$(smuggle 'Content-Length : N')"
# A silent client is dropped after serve.timeout_ms and the camera still answers the next one.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
check "after a silent client, the next one is served" served $NAME $PORT
exec 3>&-

# HTTP/1.1 persistent connections, bounded: at most 100 requests on one, idle at most serve.timeout_ms, and an idle
# one gives its worker up to a client waiting for one. conns N [curl options]: N requests of / in one curl; prints
# how many connections it opened and how many answers named the camera.
conns() {
  local n=$1 urls=(); shift
  for _ in $(seq 1 "$n"); do urls+=("https://$NAME:$PORT/"); done
  curl -sS --max-time 60 --cacert "$WORK/ca/root.pem" --resolve "$NAME:$PORT:127.0.0.1" -w '\nconnects=%{num_connects}\n' \
    "$@" "${urls[@]}" >"$WORK/conns.out" 2>&1 || true
  echo "$(grep -c '^connects=1$' "$WORK/conns.out") $(grep -c 'serial CAM0200' "$WORK/conns.out")"
}
curl -sv --max-time 10 --cacert "$WORK/ca/root.pem" --resolve "$NAME:$PORT:127.0.0.1" -o /dev/null -o /dev/null \
  "https://$NAME:$PORT/" "https://$NAME:$PORT/index.html" 2>"$WORK/curl-v.err" || true
check "curl -v: the second request re-uses the connection of the first" grep -q 'Re-using existing connection' "$WORK/curl-v.err"
check_eq "3 requests: 1 connection, 3 answers" "1 3" "$(conns 3)"
check_eq "101 requests: the 100th answer closes the connection, the 101st opens a second" "2 101" "$(conns 101)"
check_eq "a client's 'Connection: close' is honoured: 2 requests, 2 connections" "2 2" "$(conns 2 -H 'Connection: close')"
check_eq "HTTP/1.0: one request per connection" "2 2" "$(conns 2 --http1.0)"
stop_factory

# keep_idle N WAIT CMD...: N keep-alive connections (4 from each of 127.0.0.1, 127.0.0.2...: what one address may
# hold), each answered once and then idle; runs CMD; prints CMD's exit status and how many of the N the camera has
# closed WAIT seconds later.
keep_idle() {
  python3 - "$NAME" "${ADDR##*:}" "$WORK/ca/root.pem" "$@" <<'PY'
import socket, ssl, subprocess, sys, time
name, port, root, n, wait, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), sys.argv[6:]
ctx = ssl.create_default_context(cafile=root)
conns = []
for i in range(n):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.0.%d" % (1 + i // 4), 0)),
                        server_hostname=name)
    s.sendall(("GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % name).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0])
    while len(body) < length:
        body += s.recv(4096)
    assert b"serial CAM0200" in body and b"connection: close" not in head.lower(), head
    conns.append(s)
rc = subprocess.call(cmd) if cmd else 0
closed, end = 0, time.monotonic() + wait
for s in conns:
    try:
        s.settimeout(max(0.1, end - time.monotonic()))
        closed += s.recv(1) == b""
    except (ssl.SSLError, ConnectionError):
        closed += 1
    except socket.timeout:
        pass
print(rc, closed)
PY
}
sed -i 's/^serve.timeout_ms = .*/serve.timeout_ms = 1000/' "$DEV/agent.conf"
start_agent serve "$DEV"
check_eq "a kept connection left idle is closed (serve.timeout_ms)" "0 1" "$(keep_idle 1 20)"
stop_factory
# Idle connections on every worker, none closing on its own for 30 s: the next client is still served at once.
sed -i 's/^serve.timeout_ms = .*/serve.timeout_ms = 30000/' "$DEV/agent.conf"
start_agent serve "$DEV"
PORT=${ADDR##*:}
out=$(keep_idle 8 1 curl -sS -o /dev/null --max-time 15 --interface 127.0.0.3 --cacert "$WORK/ca/root.pem" \
  --resolve "$NAME:$PORT:127.0.0.1" "https://$NAME:$PORT/")
check "8 idle kept connections (8 workers): a 9th client is served, idle ones gave way ($out: exit, closed)" \
  bash -c "[ '${out% *}' = 0 ] && [ '${out#* }' -ge 1 ]"

# One address opens 8 connections and never sends a byte (not even a TLS hello): it holds 4 workers (its limit) for
# serve.timeout_ms (30 s), its other 4 connections are closed at once, and a client from another address is served
# meanwhile. silent N WAIT CMD...: N such connections from 127.0.0.1; prints how many of them the camera closed
# within WAIT seconds, then (all N still open on this side) runs CMD and prints its exit status.
# SILENT_TO (default 127.0.0.1) is the camera's address; with SILENT_FROM (addresses), N connections from each.
cat >"$WORK/silent.py" <<'PY'
import os, socket, subprocess, sys, time
port, n, wait, cmd = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
to = os.environ.get("SILENT_TO", "127.0.0.1")
conns = [socket.create_connection((to, port), timeout=10, source_address=(src, 0) if src else None)
         for src in (os.environ.get("SILENT_FROM") or "").split() or [None] for _ in range(n)]
closed, end = 0, time.monotonic() + wait
for s in conns:
    try:
        s.settimeout(max(0.1, end - time.monotonic()))
        closed += s.recv(1) == b""
    except ConnectionError:
        closed += 1
    except socket.timeout:
        pass
print(closed, subprocess.call(cmd))
PY
silent() { python3 "$WORK/silent.py" "$PORT" "$@"; }
out=$(silent 8 5 curl -sS -o /dev/null --max-time 10 --interface 127.0.0.2 --cacert "$WORK/ca/root.pem" \
  --resolve "$NAME:$PORT:127.0.0.1" "https://$NAME:$PORT/")
check_eq "8 silent connections from one address: 4 closed at once (it holds 4 workers at most)" 4 "${out% *}"
check_eq "... and a client from another address is served meanwhile (curl exit 0)" 0 "${out#* }"
check "... the refusals are logged" grep -q 'connection_refused.*per_address_limit' "$WORK/agent.log"
# A client connecting in a loop while its address holds 4 workers: 40 refusals, at most 2 log lines (one a minute,
# with the count; before, one line each filled the camera's log).
before=$(grep -c connection_refused "$WORK/agent.log")
out=$(silent 4 0 python3 -c "
import socket
for _ in range(40):
    s = socket.create_connection(('127.0.0.1', $PORT), timeout=10)
    s.settimeout(10)
    try:
        s.recv(1)
    except OSError:
        pass
    s.close()")
check "40 connections refused in a loop: at most 2 more log lines ($(($(grep -c connection_refused "$WORK/agent.log") - before)))" \
  bash -c "[ '${out#* }' = 0 ] && [ \$((\$(grep -c connection_refused '$WORK/agent.log') - $before)) -le 2 ]"
stop_factory

# IPv6 on the camera's LAN: clients of one /64 (as every SLAAC client of a LAN is) count one by one. In a network
# namespace of this test's own (root), two addresses of one /64 on its loopback: 4 silent connections from each are
# all held (8 workers); keyed by /64 as before, the second 4 were closed at once.
if unshare -n true 2>/dev/null && command -v ip >/dev/null && command -v nsenter >/dev/null; then
  unshare -n sleep 300 &
  NS_PID=$!
  for _ in $(seq 1 100); do
    [ "$(readlink /proc/$NS_PID/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break
    sleep 0.05
  done
  nsenter -t $NS_PID -n sh -c 'ip link set lo up && ip addr add fd00:c::1/64 dev lo nodad &&
    ip addr add fd00:c::2/64 dev lo nodad'
  nsenter -t $NS_PID -n "$AGENT_BIN" serve --dir "$DEV" --listen '[fd00:c::1]:0' >"$WORK/v6.out" 2>>"$WORK/agent.log" &
  FACTORY_PID=$!
  for _ in $(seq 1 200); do grep -q '^listening on ' "$WORK/v6.out" && break; sleep 0.05; done
  PORT6=$(sed -n 's/^listening on .*://p' "$WORK/v6.out")
  out=$(nsenter -t $NS_PID -n env SILENT_TO=fd00:c::1 SILENT_FROM="fd00:c::2 fd00:c::1" \
    python3 "$WORK/silent.py" "$PORT6" 4 5 true)
  check_eq "IPv6: 4 silent connections from each of two addresses of one /64: none closed (8 workers held)" 0 "${out% *}"
  stop_factory
  kill $NS_PID 2>/dev/null; wait $NS_PID 2>/dev/null || true
else
  echo "# no network namespace here (unshare -n): the IPv6 keying is not exercised"
fi

# Look-alikes for the same name, served by openssl s_server: self-signed, and issued by another CA.
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/fake.key" \
  -subj "/serialNumber=CAM0200/CN=CAM0200" -addext "subjectAltName=DNS:$NAME" -days 30 -out "$WORK/fake.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/other.key" \
  -subj "/serialNumber=CAM0200/CN=CAM0200" -outform DER -out "$WORK/other.csr.der" 2>/dev/null
sign_csr "$WORK/other" "$WORK/other.csr.der" CAM0200 "$WORK/other.chain"
for fake in self-signed other-ca; do
  if [ $fake = self-signed ]; then cert=$WORK/fake.pem key=$WORK/fake.key; else cert=$WORK/other.chain key=$WORK/other.key; fi
  # A random port another test may hold: s_server then exits while the probe reaches the other; so another port.
  for _ in 1 2 3 4 5; do
    P=$((20000 + RANDOM % 40000))
    openssl s_server -quiet -accept "127.0.0.1:$P" -cert "$cert" -key "$key" -cert_chain "$cert" -www </dev/null >/dev/null 2>&1 &
    FACTORY_PID=$!
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$P") 2>/dev/null && break; sleep 0.05; done
    kill -0 "$FACTORY_PID" 2>/dev/null && break
    wait "$FACTORY_PID" 2>/dev/null || true
  done
  check "the look-alike ($fake) answers a client that skips verification (the test is real)" \
    bash -c "curl -sk -o /dev/null --max-time 10 --resolve $NAME:$P:127.0.0.1 https://$NAME:$P/"
  out=$(curl -sS -o /dev/null --max-time 10 --cacert "$WORK/ca/root.pem" --resolve "$NAME:$P:127.0.0.1" "https://$NAME:$P/" 2>&1 || true)
  check "the look-alike ($fake) is refused by curl --cacert root.pem" grep -q 'certificate' <<<"$out"
  stop_factory
done
finish
