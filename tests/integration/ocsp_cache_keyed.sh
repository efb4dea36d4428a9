#!/usr/bin/env bash
# The OCSP responder's cache of pre-signed answers against CertIDs an attacker chose: an honest camera's answer,
# signed once and kept, is pushed out by no one's requests but those that happen to land where it is kept. The
# attacker cannot choose serials, but the issuance log lists them, and each is named by several CertIDs the responder
# answers alike and keeps apart (either hash, NULL or absent parameters, a spare leading zero). Under the cache's former
# public hash (FNV-1a) it picked, of 64 issued serials, 8 CertIDs whose answers went into the honest one's probe
# window (8 slots) and pushed it out: each honest request then cost a signature in the token, within no budget. Keyed
# (SipHash under a secret of the responder's), the 8 land anywhere: the honest answer stays pre-signed.
# Usage: ocsp_cache_keyed.sh PATH/TO/camtrust-ca (CAMTRUST_TEST_LOAD: the enrollment load generator)
CA_BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
[ -x "${CAMTRUST_TEST_LOAD:-}" ] || { echo "CAMTRUST_TEST_LOAD: the enrollment load generator is required"; exit 1; }
CLIENTS=$HERE/server_clients.py
CA=$WORK/ca
DB=$CA/camtrust.db
SLOTS=64 # a small cache (ocsp.cache_entries): 64 serials give the attacker enough CertIDs on one slot
ca_create "$CA" >/dev/null
sed -i "s/^ocsp.cache_entries = .*/ocsp.cache_entries = $SLOTS/" "$CA/camtrust-ca.conf"
check "the cache holds $SLOTS answers" grep -q "^ocsp.cache_entries = $SLOTS\$" "$CA/camtrust-ca.conf"
# shellcheck disable=SC2046 # (one argument each)
station_with_order line1 $(printf 'CAM%04d ' $(seq 1 64))
WITH_HTTP=1 start_ca "$CA"
LOAD_OUT=$("$CAMTRUST_TEST_LOAD" --mode est --host 127.0.0.1 --port "$PORT" --server-name localhost --conns 2 \
  --count 64 --serials "$WORK/serials.txt" --cert "$WORK/station.pem" --key "$WORK/station.key" \
  --cafile "$CA/ops-root.pem" --max-seconds 120 2>/dev/null || true)
check "64 certificates issued" grep -q ' ok=64 ' <<<" $LOAD_OUT "
# The serials the issuance log lists (read here from the database).
sql "$DB" "select cert_serial_hex from certificates where device_serial like 'CAM%'" >"$WORK/issued.txt"
openssl ocsp -issuer "$CA/device-issuing.pem" -serial 0x01 -no_nonce -reqout "$WORK/sha1.req" >/dev/null 2>&1
openssl ocsp -sha256 -issuer "$CA/device-issuing.pem" -serial 0x01 -no_nonce -reqout "$WORK/sha256.req" >/dev/null 2>&1
PICKED=$(python3 "$HERE/ocsp_certids.py" "$WORK/sha1.req" "$WORK/sha256.req" "$WORK/issued.txt" $SLOTS 8 \
  "$WORK/pick" || true)
check "under FNV-1a, 8 CertIDs of other serials share the honest camera's home slot ($PICKED)" test -s "$WORK/pick.8"
TARGET=$(cat "$WORK/pick.target.serial" 2>/dev/null || echo none)

# ask SOURCE REQUEST OUT: one POST of REQUEST to /ocsp from SOURCE (plain HTTP), its answer's body to OUT.1
ask() { bounded 60 python3 "$CLIENTS" ocsp "127.0.0.1:$HTTP_PORT" "$1" "$2" 1 "$3" || true; }
# answers SERIAL ADDRESS: the server's log lines for good answers of SERIAL to ADDRESS, as pre-signed or signed
answers() { grep -o "result=\"good serial=$1[^\"]*\" .*addr=\"$2\"" "$WORK/server.log" | sed 's/ ms=.*//' || true; }

ask 127.0.0.1 "$WORK/pick.target" "$WORK/honest1"
ask 127.0.0.1 "$WORK/pick.target" "$WORK/honest2"
check "the honest camera's answer is signed once, then sent again as it is (pre-signed)" \
  cmp -s "$WORK/honest1.1" "$WORK/honest2.1"
check_eq "... as the log says" "signed pre-signed" \
  "$(answers "$TARGET" 127.0.0.1 | sed 's/.* pre-signed"$/pre-signed/; s/.*"$/signed/' | paste -sd' ')"
for i in $(seq 1 8); do ask 127.0.0.2 "$WORK/pick.$i" "$WORK/attack$i"; done
check_eq "the attacker's 8 CertIDs each got a good answer, signed and kept (not unknown: cached like any)" 8 \
  "$(grep -c 'result="good serial=[0-9a-f]*".*addr="127.0.0.2"' "$WORK/server.log" || true)"
ask 127.0.0.1 "$WORK/pick.target" "$WORK/honest3"
check "the honest camera's answer is still the pre-signed one (was: pushed out, signed again)" \
  cmp -s "$WORK/honest1.1" "$WORK/honest3.1"
check "... as the log says (no second signature for it)" \
  test "$(answers "$TARGET" 127.0.0.1 | grep -vc 'pre-signed"$')" = 1
cleanup_server
finish
