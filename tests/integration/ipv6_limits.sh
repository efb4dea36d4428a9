#!/usr/bin/env bash
# Per-address limits key an IPv6 client by its /64 (it has 2^64 addresses): connections per address
# (server.per_ip_connections), the OCSP signature budget and the counted refusals, on a CA listening on ::1. Two
# addresses of one /64 (loopback aliases this test adds when it may: root and `ip`) count as one client; an address
# of another /64 does not; log lines still name the whole address. A dual-stack listener's IPv4 clients (IPv4-mapped
# addresses) are each keyed as their IPv4 address.
# Usage: ipv6_limits.sh PATH/TO/camtrust-ca
CA_BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
CLIENTS=$HERE/server_clients.py

# Loopback aliases: two addresses of one /64 (A1, A2) and two of others (B; K, which has the camera's answer kept),
# removed at exit.
A1=fd63:7a7e:0:1::1 A2=fd63:7a7e:0:1::2 B=fd63:7a7e:0:2::1 K=fd63:7a7e:0:3::1
if ! ipv6_aliases $A1 $A2 $B $K; then
  echo "# no IPv6 loopback aliases here (not root, or no ip): one /64 only (::1), the keying in tests/unit/test_ca.c"
  A1=::1 A2=::1 B= K=
fi

CA=$WORK/ca
DB=$CA/camtrust.db
ca_create "$CA" >/dev/null
# 4 connections per address; a budget of 1 OCSP signature a minute; refusal counts written only at stop.
sed -i -e 's/^server.per_ip_connections = .*/server.per_ip_connections = 4/' \
  -e 's/^ocsp.signatures_per_minute = .*/ocsp.signatures_per_minute = 1/' \
  -e 's/^audit.anonymous_interval_s = .*/audit.anonymous_interval_s = 3600/' "$CA/camtrust-ca.conf"
station_with_order line1 CAM0001
CA_HOST='[::1]' WITH_HTTP=1 start_ca "$CA"
check "the CA listens on ::1" grep -q 'event=listening url=https://\[::1\]:' "$WORK/server.log"
make_csr "$WORK/cam" "/serialNumber=CAM0001/CN=x"
check_eq "a station enrolls over IPv6" 200 "$(est_post simpleenroll "$WORK/cam.b64" "$WORK/cam.p7" -6 \
  --cert "$WORK/station.pem" --key "$WORK/station.key")"
base64 -d "$WORK/cam.p7" | openssl pkcs7 -inform DER -print_certs -out "$WORK/cam.pem" 2>/dev/null || true

# ---- connections: A1 and A2 hold 4 together; B holds its own 4 meanwhile ----
python3 "$CLIENTS" fill "[::1]:$HTTP_PORT" "$A1,$A2" 4 "$WORK/go_a" "$WORK/fill_a.out" &
FILL_A=$!; BG_PIDS+=("$FILL_A")
for _ in $(seq 1 400); do grep -q '^held' "$WORK/fill_a.out" 2>/dev/null && break; sleep 0.05; done
check_eq "8 connections from two addresses of one /64: the server keeps 4 (server.per_ip_connections)" "held 4" \
  "$(grep '^held' "$WORK/fill_a.out")"
if [ -n "$B" ]; then
  python3 "$CLIENTS" fill "[::1]:$HTTP_PORT" "$B" 4 "$WORK/go_b" "$WORK/fill_b.out" &
  FILL_B=$!; BG_PIDS+=("$FILL_B")
  for _ in $(seq 1 400); do grep -q '^held' "$WORK/fill_b.out" 2>/dev/null && break; sleep 0.05; done
  check_eq "meanwhile an address of another /64 holds its own 4" "held 4" "$(grep '^held' "$WORK/fill_b.out")"
fi
check "the refused connections are logged (at most once a second)" \
  grep -q 'event=http_library msg="Server reached connection limit of one client address' "$WORK/server.log"
touch "$WORK/go_a" "$WORK/go_b"
stop_bg

# ---- the OCSP budget: A1 spends it, A2 (same /64) finds it spent, B has its own ----
openssl ocsp -issuer "$CA/device-issuing.pem" -cert "$WORK/cam.pem" -reqout "$WORK/nonce.req" 2>/dev/null
WANT=$(openssl ocsp -reqin "$WORK/nonce.req" -req_text | grep -A1 'OCSP Nonce' | tail -1 | tr -d ' ')
# answer_nonce FILE: "good NONCE" when the answer verifies and says good, with the nonce it echoes (or none)
answer_nonce() {
  local out
  out=$(openssl ocsp -respin "$1" -issuer "$CA/device-issuing.pem" -cert "$WORK/cam.pem" -CAfile "$CA/root.pem" \
    -no_nonce -resp_text 2>&1 || true)
  grep -q 'Response verify OK' <<<"$out" && grep -q 'cam.pem: good' <<<"$out" && printf 'good ' || printf 'bad '
  { grep -A1 'OCSP Nonce' <<<"$out" || echo none; } | tail -1 | tr -d ' '
}
# keep_answer HOST:PORT ADDRESS: the camera's answer without a nonce asked from ADDRESS, so kept: past its budget a
# client gets the kept answer, its nonce left out (with none kept, tryLater: every signature is budgeted).
openssl ocsp -issuer "$CA/device-issuing.pem" -cert "$WORK/cam.pem" -no_nonce -reqout "$WORK/plain.req" 2>/dev/null
keep_answer() { python3 "$CLIENTS" ocsp "$1" "$2" "$WORK/plain.req" 1 "$WORK/kept"; }
A2_GETS="good none"
if [ -n "$K" ]; then keep_answer "[::1]:$HTTP_PORT" "$K"; else A2_GETS="bad none"; fi # (one /64: its budget is A1's)
python3 "$CLIENTS" ocsp "[::1]:$HTTP_PORT" "$A1" "$WORK/nonce.req" 1 "$WORK/a1"
python3 "$CLIENTS" ocsp "[::1]:$HTTP_PORT" "$A2" "$WORK/nonce.req" 1 "$WORK/a2"
check_eq "the first nonce request of the /64 gets its nonce (the budget: 1)" "good $WANT" "$(answer_nonce "$WORK/a1.1")"
check_eq "the next, from another address of that /64, gets the kept answer without the nonce" "$A2_GETS" \
  "$(answer_nonce "$WORK/a2.1")"
if [ -n "$B" ]; then
  python3 "$CLIENTS" ocsp "[::1]:$HTTP_PORT" "$B" "$WORK/nonce.req" 1 "$WORK/b"
  check_eq "an address of another /64 still gets its nonce" "good $WANT" "$(answer_nonce "$WORK/b.1")"
fi
[ -z "$K" ] || check "log lines still name the whole address" \
  grep -q "path=\"/ocsp\" status=200 .*nonce left out.*addr=\"$A2\"" "$WORK/server.log"
# Malformed requests (counted refusals) from both addresses of the /64
for a in $A1 $A2; do
  curl -s -o /dev/null -g --interface "$a" -H 'Content-Type: application/ocsp-request' --data-binary 'x' \
    "http://[::1]:$HTTP_PORT/ocsp" || true
done

# ---- the refusals are counted per /64 ----
cleanup_server
PREFIX=${A1%::1}::/64
[ "$A1" = ::1 ] && PREFIX=::/64
check_eq "the over-budget answer is counted for anonymous:$PREFIX" 1 \
  "$(sql "$DB" "select count(*) from audit where action = 'ocsp.budget' and actor = 'anonymous:$PREFIX'")"
check_eq "... the malformed requests of both addresses in one count of that actor" "2 refused" \
  "$(sql "$DB" "select detail from audit where action = 'ocsp.request' and actor = 'anonymous:$PREFIX'" | cut -d' ' -f1-2)"
check_eq "no refusal is counted under a whole IPv6 address" 0 \
  "$(sql "$DB" "select count(*) from audit where actor like 'anonymous:%' and actor not like '%/64'")"

# ---- a dual-stack listener: its IPv4 clients arrive IPv4-mapped (::ffff:127.0.0.2), each keyed as its IPv4 address
# (not all of them as the /64 ::/64) ----
CA_HOST='[::ffff:127.0.0.1]' WITH_HTTP=1 start_ca "$CA"
python3 "$CLIENTS" fill "127.0.0.1:$HTTP_PORT" 127.0.0.2,127.0.0.3 4 "$WORK/go_m" "$WORK/fill_m.out" &
FILL_M=$!; BG_PIDS+=("$FILL_M")
for _ in $(seq 1 400); do grep -q '^held' "$WORK/fill_m.out" 2>/dev/null && break; sleep 0.05; done
check_eq "two IPv4 clients of an IPv6 socket hold 4 connections each" "held 8" "$(grep '^held' "$WORK/fill_m.out")"
touch "$WORK/go_m"
stop_bg
keep_answer "127.0.0.1:$HTTP_PORT" 127.0.0.4
python3 "$CLIENTS" ocsp "127.0.0.1:$HTTP_PORT" 127.0.0.2 "$WORK/nonce.req" 2 "$WORK/m2"
python3 "$CLIENTS" ocsp "127.0.0.1:$HTTP_PORT" 127.0.0.3 "$WORK/nonce.req" 1 "$WORK/m3"
check_eq "127.0.0.2 spends its OCSP budget: its first answer echoes the nonce, ..." "good $WANT" "$(answer_nonce "$WORK/m2.1")"
check_eq "... its second does not (the kept answer)" "good none" "$(answer_nonce "$WORK/m2.2")"
check_eq "127.0.0.3 has a budget of its own" "good $WANT" "$(answer_nonce "$WORK/m3.1")"
check "log lines name the address as the socket saw it" grep -q 'path="/ocsp" status=200 .*addr="::ffff:127.0.0.2"' \
  "$WORK/server.log"
cleanup_server
check_eq "the refusal is counted for anonymous:127.0.0.2" 1 \
  "$(sql "$DB" "select count(*) from audit where action = 'ocsp.budget' and actor = 'anonymous:127.0.0.2'")"
finish
