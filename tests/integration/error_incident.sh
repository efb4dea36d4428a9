#!/usr/bin/env bash
# A 500 tells its client nothing of the CA's insides: the attacker (or an accident) breaks the CA under its running
# server (its device issuing key deleted from the token with pkcs11-tool, a table of its SQLite file renamed), then
# calls it as anyone can (the log's proofs and tiles, over plain HTTP and HTTPS; OCSP), as a station (EST enrollment)
# and as an officer (the console's API). Each 500 body is the error table's message and an incident; no PKCS#11 code, SQLite
# text, table name, label or path of the CA folder. The server's log has the detail under that incident, once, at
# error level. A 4xx still names what the client got wrong.
# Usage: error_incident.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"
if ! on_sqlite; then echo "ok - # SKIP the attack renames a table of the SQLite file"; exit 77; fi

CA=$WORK/ca
ca_create "$CA" >/dev/null
DB=$CA/camtrust.db
station_with_order line1 ERR0001 ERR0002
STATION=(--cert "$WORK/station.pem" --key "$WORK/station.key")
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/bob.key" -subj "/CN=bob" \
  -out "$WORK/bob.csr" 2>/dev/null
"$CA_BIN" officer add --dir "$CA" --name bob --role officer --csr "$WORK/bob.csr" --out "$WORK/bob.pem" >/dev/null
export SOFTHSM2_CONF=$CA/softhsm2.conf
PIN=$(cat "$CA/secrets/user.pin")
p11() { pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label camtrust-ca --login --pin "$PIN" "$@"; }

# told WHAT BODYFILE STATUS MESSAGE DETAIL: the body is "STATUS MESSAGE: incident ID in the CA's log" and nothing of
# DETAIL (a regex of the internal text) nor of the CA folder; the server's log has one line naming ID, at error
# level, with DETAIL. Sets INC to ID.
told() {
  local what=$1 body=$2 status=$3 message=$4 detail=$5 line
  INC=$(incident_of "$body" "$status" "$message")
  check "$what: the body is the table's message and an incident ($(head -c 120 "$body"))" test -n "$INC"
  check "... and tells nothing of the CA's insides" bash -c "! grep -qiE '$detail|$WORK|camtrust-ca|ckr|sqlite' '$body'"
  line=$(incident_line "$INC")
  check_eq "... the server's log names the incident once" 1 "$(incident_count "$INC")"
  check "... at error level, with the detail ($line)" \
    bash -c 'grep -qE " level=error event=request .*status=$1 .*result=\".*($2)" <<<"$0"' "$line" "$status" "$detail"
}

WITH_HTTP=1 start_ca "$CA"
make_csr "$WORK/ERR0001" "/serialNumber=ERR0001/CN=x"
check_eq "a station enrolls while the token has its keys" 200 \
  "$(est_post simpleenroll "$WORK/ERR0001.b64" "$WORK/ERR0001.out" "${STATION[@]}")"

# The device issuing key deleted from the token under the running server: the station's next enrollment is a 500
# whose detail is the token's failure (a PKCS#11 return code).
check "pkcs11-tool deletes the device issuing key" p11 --delete-object --type privkey --label device-issuing
make_csr "$WORK/ERR0002" "/serialNumber=ERR0002/CN=x"
check_eq "the station's enrollment: 500" 500 "$(est_post simpleenroll "$WORK/ERR0002.b64" "$WORK/ERR0002.out" "${STATION[@]}")"
told "... EST" "$WORK/ERR0002.out" 500 "[a-zA-Z ]*" "CKR|PKCS|device-issuing"
EST_INC=$INC

# The OCSP responder's key deleted too: a request with a nonce (signed for it alone) is answered internalError, which
# carries no text (RFC 6960). The token's failure is told in the server's ocsp_sign line; the request's own line names
# the same incident first (at error level), so that with requests at once an operator knows which detail is whose.
base64 -d "$WORK/ERR0001.out" | openssl pkcs7 -inform DER -print_certs -out "$WORK/ERR0001.pem" 2>/dev/null || true
check "pkcs11-tool deletes the OCSP responder's key" p11 --delete-object --type privkey --label ocsp-signer
openssl ocsp -issuer "$CA/device-issuing.pem" -cert "$WORK/ERR0001.pem" -url "http://127.0.0.1:$HTTP_PORT/ocsp" \
  -respout "$WORK/ocsp.der" >/dev/null 2>&1 || true
check_eq "an OCSP request: internalError, nothing else (30 03 0a 01 02)" 30030a0102 "$(xxd -p "$WORK/ocsp.der" 2>/dev/null)"
sign_line=$(grep '^ts=[^ ]* level=error event=ocsp_sign ' "$WORK/server.log" || true)
OCSP_INC=$(sed -n 's/^ts=[^ ]* level=error event=ocsp_sign incident=\([0-9a-f]\{16\}\) .*/\1/p' <<<"$sign_line")
check "... the server's ocsp_sign line names an incident first, then the token's failure ($sign_line)" \
  bash -c '[ -n "$1" ] && grep -qE " error=\".*(CKR|PKCS|ocsp-signer|key)" <<<"$0"' "$sign_line" "$OCSP_INC"
line=$(incident_line "$OCSP_INC")
check "... the request's own line names the same incident, at error level ($line)" \
  bash -c 'grep -qE " level=error event=request incident=$1 method=\"POST\" path=\"/ocsp\" status=200 .*result=\"internalError" <<<"$0"' \
  "$line" "$OCSP_INC"
check_eq "... once" 1 "$(incident_count "$OCSP_INC")"
check "... an incident of its own" bash -c "[ -n '$OCSP_INC' ] && [ '$EST_INC' != '$OCSP_INC' ]"

# Tables of the database renamed (its file writable by the attacker): the log's proofs and tiles are 500s whose
# detail is SQLite's text, to anyone, over plain HTTP and HTTPS; so is the officers' search.
sqlite3 "$DB" "alter table log_leaves rename to log_leaves_gone; alter table orders rename to orders_gone"
code=$(curl -s -o "$WORK/inclusion" -w '%{http_code}' --max-time 20 "http://127.0.0.1:$HTTP_PORT/log/proof/inclusion?serial=01" || true)
check_eq "anyone's inclusion proof (plain HTTP): 500" 500 "$code"
told "... /log/proof/inclusion" "$WORK/inclusion" 500 "database error" "no such table|log_leaves"
code=$(curl -s -o "$WORK/tile" -w '%{http_code}' --max-time 20 --cacert "$CA/ops-root.pem" \
  "https://localhost:$PORT/log/tile/0/000.p/1" || true)
check_eq "anyone's tile (HTTPS, no client certificate): 500" 500 "$code"
told "... /log/tile" "$WORK/tile" 500 "database error" "no such table|log_leaves"
check "each 500 has an incident of its own" bash -c "[ '$EST_INC' != '$INC' ]"

# The officer's console shows the API's "error": the same words, as JSON.
code=$(curl -s -o "$WORK/officer" -w '%{http_code}' --max-time 20 --cacert "$CA/ops-root.pem" \
  --cert "$WORK/bob.pem" --key "$WORK/bob.key" "https://localhost:$PORT/officer/api/search" || true)
check_eq "the officer API's search: 500" 500 "$code"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print("%d %s" % (d["status"], d["error"]))' \
  "$WORK/officer" >"$WORK/officer.text" 2>/dev/null || true
told "... its JSON error" "$WORK/officer.text" 500 "database error" "no such table|orders"

# A client cannot write an incident of its own into the log: its quoted path names one (a 404), the operator's grep
# still finds the one line the server wrote under it.
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 \
  "http://127.0.0.1:$HTTP_PORT/x%20ts=0%20level=error%20event=request%20incident=$INC%20" || true)
check_eq "a path naming that incident: 404" 404 "$code"
check_eq "... the server's log still has one line under the incident" 1 "$(incident_count "$INC")"

# Nor push it out of the log: a long method and path to the officer door, whose identification fails with a long
# detail (a view over a table of a 200-character name in place of the officers: SQLite's text names that table), make
# a line longer than ct_log's 1024 bytes, which cut the incident and the detail off its end.
LONG=$(printf 't%.0s' $(seq 1 200))
sqlite3 "$DB" "alter table officers rename to officers_gone;
  create view officers as select * from officers_gone where (select count(*) from $LONG) >= 0"
code=$(curl -s -o "$WORK/door" -w '%{http_code}' --max-time 20 -X "$(printf 'M%.0s' $(seq 1 400))" --cacert "$CA/ops-root.pem" \
  --cert "$WORK/bob.pem" --key "$WORK/bob.key" "https://localhost:$PORT/officer/$(printf 'p%.0s' $(seq 1 400))" || true)
check_eq "the officer door, a long method and path, the officers' table broken: 500" 500 "$code"
told "... /officer" "$WORK/door" 500 "database error" "no such table: main\\.$LONG\""
check "... the line is whole" bash -c 'grep -q " addr=\"127.0.0.1\"\$" <<<"$0"' "$(incident_line "$INC")"

# A client's own mistake is still named to it (no incident).
code=$(curl -s -o "$WORK/bad" -w '%{http_code}' --max-time 20 "http://127.0.0.1:$HTTP_PORT/log/proof/consistency?first=0&second=1" || true)
check "a bad request: 400 naming the parameter, no incident ($(cat "$WORK/bad"))" \
  bash -c "[ '$code' = 400 ] && grep -q '^400 .*first' '$WORK/bad' && ! grep -q incident '$WORK/bad'"
cleanup_server
unset SOFTHSM2_CONF
finish
