#!/usr/bin/env bash
# A key revoked for keyCompromise is trusted through none of its certificates: a camera renewed twice with the same
# key (EST simplereenroll), its oldest, superseded certificate revoked for keyCompromise with the CLI; the holder of
# the key then tries its current certificate. openssl ocsp and the next CRL say every one is revoked, the audit
# names each, audit verify rebuilds that state; another reason (superseded) spreads to nothing; an officer's
# revocation over the officer API spreads too; a database of a version before the spread (a compromised key's
# renewals left valid) has them revoked by serve's start. Usage: revoke_key.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
DB=$CA/camtrust.db
ca_create "$CA" >/dev/null
station_with_order line1 CAM0001 CAM0002 CAM0003 CAM0004 CAM0005
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/bob.key" -subj /CN=bob \
  -out "$WORK/bob.csr" 2>/dev/null
"$CA_BIN" officer add --dir "$CA" --name bob --role officer --csr "$WORK/bob.csr" --out "$WORK/bob.pem" >/dev/null
WITH_HTTP=1 start_ca "$CA"
HTTP=http://127.0.0.1:$HTTP_PORT

# to_pem P7B64 PEM: the certificate of an EST answer
to_pem() { base64 -d "$1" | openssl pkcs7 -inform DER -print_certs -out "$2" 2>/dev/null || true; }
hex() { openssl x509 -in "$WORK/$1.pem" -noout -serial | cut -d= -f2 | tr A-F a-f; }
# camera SERIAL NAME...: enrolled by the station as NAME1 with a new key, then renewed by its current certificate
# with that same key as NAME2, NAME3 ... ($WORK/NAME.pem; the key $WORK/NAME1.key)
camera() {
  local serial=$1 first=$2 prev=$2 name; shift 2
  make_csr "$WORK/$first" "/serialNumber=$serial/CN=x"
  est_post simpleenroll "$WORK/$first.b64" "$WORK/$first.p7" --cert "$WORK/station.pem" --key "$WORK/station.key" >/dev/null
  to_pem "$WORK/$first.p7" "$WORK/$first.pem"
  for name in "$@"; do
    make_csr "$WORK/$name" "/serialNumber=$serial/CN=x" -key "$WORK/$first.key"
    est_post simplereenroll "$WORK/$name.b64" "$WORK/$name.p7" --cert "$WORK/$prev.pem" --key "$WORK/$first.key" >/dev/null
    to_pem "$WORK/$name.p7" "$WORK/$name.pem"
    prev=$name
  done
}
# ocsp NAME [options]: openssl ocsp of $WORK/NAME.pem against the plain-HTTP responder
ocsp() {
  local name=$1; shift
  openssl ocsp -issuer "$CA/device-issuing.pem" -cert "$WORK/$name.pem" -url "$HTTP/ocsp" -CAfile "$CA/root.pem" \
    -timeout 10 -no_nonce "$@" 2>&1 || true
}
# ocsp_until NAME WORD: openssl ocsp until it says NAME is WORD (a running server notices another process's
# revocation within 50 ms; bounded at 5 s), its last output in OUT
ocsp_until() {
  for _ in $(seq 1 50); do
    OUT=$(ocsp "$1")
    grep -q "$1.pem: $2" <<<"$OUT" && return 0
    sleep 0.1
  done
}
crl_serials() { openssl crl -inform DER -in "$1" -noout -text | sed -n 's/ *Serial Number: //p' | tr 'A-F' 'a-f' | sort | paste -sd,; }
status() { sql "$DB" "select status || ':' || coalesce(cast(revocation_reason as text), '-') from certificates where cert_serial_hex='$(hex "$1")'"; }

camera CAM0001 a1 a2 a3
check_eq "CAM0001 enrolled and renewed twice" "superseded:- superseded:- valid:-" "$(status a1) $(status a2) $(status a3)"
check "... each certificate of the same key" bash -c "for n in a2 a3; do
  [ \"\$(openssl x509 -in '$WORK/'\$n.pem -noout -pubkey)\" = \"\$(openssl x509 -in '$WORK/a1.pem' -noout -pubkey)\" ] || exit 1; done"
OUT=$(ocsp a3)
check "openssl ocsp: the current one is good" bash -c "grep -q '^Response verify OK' <<<\"\$0\" && grep -q 'a3.pem: good' <<<\"\$0\"" "$OUT"

# The oldest, superseded certificate revoked for keyCompromise: the renewals of that key with it.
out=$("$CA_BIN" revoke --dir "$CA" "$(hex a1)" --reason keyCompromise)
check_eq "revoke the superseded certificate for keyCompromise: says how many others of the key went with it" \
  "revoked 1 certificate (keyCompromise), and 2 other certificates of the same key" "$out"
check_eq "... all three revoked for keyCompromise in the database" "revoked:1 revoked:1 revoked:1" \
  "$(status a1) $(status a2) $(status a3)"
check_eq "... at the same time" 1 "$(sql "$DB" "select count(distinct revoked_at) from certificates where cert_serial_hex in ('$(hex a1)', '$(hex a2)', '$(hex a3)')")"
ocsp_until a3 revoked
check "openssl ocsp: the current certificate is revoked, reason keyCompromise, verified" bash -c "grep -q '^Response verify OK' <<<\"\$0\" &&
  grep -q 'a3.pem: revoked' <<<\"\$0\" && grep -q 'Reason: keyCompromise' <<<\"\$0\"" "$OUT"
OUT=$(ocsp a2)
check "... and so is the first renewal" bash -c "grep -q 'a2.pem: revoked' <<<\"\$0\" && grep -q 'Reason: keyCompromise' <<<\"\$0\"" "$OUT"
T1=$(ocsp a1 | sed -n 's/^[[:space:]]*Revocation Time: //p') T3=$(ocsp a3 | sed -n 's/^[[:space:]]*Revocation Time: //p')
check "... at the time of the revoked one ($T1)" bash -c "[ -n '$T1' ] && [ '$T1' = '$T3' ]"
for _ in $(seq 1 50); do # the served CRL follows the revocation as OCSP does
  curl -s -o "$WORK/crl.der" "$HTTP/crl"
  [ "$(crl_serials "$WORK/crl.der")" = "$(printf '%s\n' "$(hex a1)" "$(hex a2)" "$(hex a3)" | sed 's/^\(00\)*//' | sort | paste -sd,)" ] && break
  sleep 0.1
done
check "the next CRL verifies and lists the three" bash -c "openssl crl -inform DER -in '$WORK/crl.der' -CAfile '$CA/chain.pem' -verify -noout 2>&1 | grep -q 'verify OK' &&
  [ \"\$(openssl crl -inform DER -in '$WORK/crl.der' -noout -text | grep -c 'Key Compromise')\" = 3 ]"
check_eq "... the same serials as the database's revoked ones" \
  "$(sql "$DB" "select cert_serial_hex from certificates where status='revoked' and profile='device' order by 1" | sed 's/^\(00\)*//' | sort | paste -sd,)" \
  "$(crl_serials "$WORK/crl.der")"
check_eq "audited: the revocation counts them, each other certificate has its entry naming the key and why" \
  "1 $(printf '%s\n' "$(hex a2)" "$(hex a3)" | sort | paste -sd,)" \
  "$(sql "$DB" "select count(*) from audit where action='cert.revoke' and subject='$(hex a1)' and outcome='ok' and detail like '% same_key=2 reason=keyCompromise %'") $(sql "$DB" "select subject from audit where action='revoke.same_key' and actor='cli' and detail like '% with=$(hex a1)' and detail like '% key=%' order by subject" | paste -sd,)"
# The holder of the compromised key renews with the certificate that was current: refused, nothing recorded.
make_csr "$WORK/a4" "/serialNumber=CAM0001/CN=x" -key "$WORK/a1.key"
code=$(est_post simplereenroll "$WORK/a4.b64" "$WORK/a4.out" --cert "$WORK/a3.pem" --key "$WORK/a1.key")
check_eq "the compromised key renews with its once current certificate: 401" 401 "$code"
check "... which is no device's current certificate any more" grep -q 'not the current certificate of a device' "$WORK/a4.out"
check_eq "... nothing recorded" 3 "$(sql "$DB" "select count(*) from certificates where device_serial='CAM0001'")"
rc=0; out=$("$CA_BIN" revoke --dir "$CA" "$(hex a3)" --reason keyCompromise 2>&1) || rc=$?
check "revoking the renewal again: refused as already revoked (final, as before)" bash -c "[ $rc = 1 ] && grep -q 'already revoked' <<<\"\$0\"" "$out"

# Another reason spreads to nothing: the old certificate revoked as superseded, the renewal of its key stays good.
camera CAM0002 b1 b2
out=$("$CA_BIN" revoke --dir "$CA" "$(hex b1)" --reason superseded)
check_eq "revoke a superseded certificate as superseded: that one only" "revoked 1 certificate (superseded)" "$out"
ocsp_until b1 revoked
OUT=$(ocsp b2)
check "openssl ocsp: the renewal of the same key stays good" bash -c "grep -q '^Response verify OK' <<<\"\$0\" && grep -q 'b2.pem: good' <<<\"\$0\"" "$OUT"
curl -s -o "$WORK/crl2.der" "$HTTP/crl"
check "... and the CRL does not list it" bash -c "! openssl crl -inform DER -in '$WORK/crl2.der' -noout -text | grep -qi 'Serial Number: $(hex b2 | sed 's/^\(00\)*//')'"
check_eq "... valid in the database, no same-key entry" "valid:- 2" "$(status b2) $(sql "$DB" "select count(*) from audit where action='revoke.same_key'")"

# An officer over the officer API (mutual TLS, as the console does): the answer counts the others of the key.
camera CAM0003 c1 c2
code=$(curl -s -o "$WORK/body" -w '%{http_code}' --max-time 20 --cacert "$CA/ops-root.pem" --cert "$WORK/bob.pem" \
  --key "$WORK/bob.key" -H "Origin: https://localhost:$PORT" -H 'Content-Type: application/json' \
  -d "{\"serial\":\"$(hex c1)\",\"reason\":\"keyCompromise\"}" "https://localhost:$PORT/officer/api/revoke" || true)
check_eq "officer API revoke of the superseded certificate for keyCompromise: 200" 200 "$code"
check "... answering revoked 1, same_key 1" grep -q '^{"revoked":1,"same_key":1,' "$WORK/body"
ocsp_until c2 revoked
check "openssl ocsp: the renewal is revoked, reason keyCompromise" bash -c "grep -q '^Response verify OK' <<<\"\$0\" &&
  grep -q 'c2.pem: revoked' <<<\"\$0\" && grep -q 'Reason: keyCompromise' <<<\"\$0\"" "$OUT"
check_eq "... audited as the officer's" 1 "$(sql "$DB" "select count(*) from audit where action='revoke.same_key' and actor='officer:bob' and subject='$(hex c2)'")"

# A database of a version before the spread: a key revoked for keyCompromise, its renewals left valid. Made with the
# CA's own audit chain: the renewals' key hash hidden from the revocation by an SQL edit (another camera's key), then
# put back. serve's start revokes them as the revocation now would, before its first CRL and OCSP answer.
sql_write() { if on_sqlite; then sqlite3 "$DB" "$1"; else sql "$DB" "$1"; fi; }
key_of() { # key_of NAME... OTHER: the key hash of NAME's certificates set to OTHER's
  local from=${*: -1} in; in=$(for n in "${@:1:$#-1}"; do printf "'%s'," "$(hex "$n")"; done)
  sql_write "update certificates set spki_sha256 = (select spki_sha256 from certificates where cert_serial_hex = '$(hex "$from")') where cert_serial_hex in (${in%,})"
}
camera CAM0004 d1 d2 d3
cleanup_server
key_of d2 d3 b2
out=$("$CA_BIN" revoke --dir "$CA" "$(hex d1)" --reason keyCompromise)
check_eq "the old state: the first certificate revoked for keyCompromise alone" "revoked 1 certificate (keyCompromise)" "$out"
key_of d2 d3 d1
check_eq "... its renewals of that key left superseded and valid" "revoked:1 superseded:- valid:-" "$(status d1) $(status d2) $(status d3)"
check "... a state audit verify accepts (the chain is the CA's own, the tables agree with it)" "$CA_BIN" audit verify --dir "$CA"
same_key_entries=$(sql "$DB" "select count(*) from audit where action='revoke.same_key'")
WITH_HTTP=1 start_ca "$CA"
HTTP=http://127.0.0.1:$HTTP_PORT
check "serve's start says it revoked the 2 other certificates of the key" \
  bash -c "grep -q 'same_key_revoked.*certificates=2 ' <<<\"\$0\"" "$(start_lines)"
check_eq "... both revoked for keyCompromise, at one time" "revoked:1 revoked:1 revoked:1 1" \
  "$(status d1) $(status d2) $(status d3) $(sql "$DB" "select count(distinct revoked_at) from certificates where cert_serial_hex in ('$(hex d2)', '$(hex d3)')")"
OUT=$(ocsp d3)
check "openssl ocsp: the current renewal is revoked, reason keyCompromise, verified" bash -c "grep -q '^Response verify OK' <<<\"\$0\" &&
  grep -q 'd3.pem: revoked' <<<\"\$0\" && grep -q 'Reason: keyCompromise' <<<\"\$0\"" "$OUT"
OUT=$(ocsp d2)
check "... and so is the superseded one" bash -c "grep -q 'd2.pem: revoked' <<<\"\$0\" && grep -q 'Reason: keyCompromise' <<<\"\$0\"" "$OUT"
curl -s -o "$WORK/crl3.der" "$HTTP/crl"
check "the CRL verifies" bash -c "openssl crl -inform DER -in '$WORK/crl3.der' -CAfile '$CA/chain.pem' -verify -noout 2>&1 | grep -q 'verify OK'"
check_eq "... and lists the three" "d1 d2 d3" "$(for n in d1 d2 d3; do
  grep -q ",$(hex $n | sed 's/^\(00\)*//')," <<<",$(crl_serials "$WORK/crl3.der")," && printf '%s ' $n; done | sed 's/ $//')"
check_eq "audited as a revocation's: each with its revoke.same_key entry, the key and the revoked certificate" \
  "$(printf '%s\n' "$(hex d2)" "$(hex d3)" | sort | paste -sd,)" \
  "$(sql "$DB" "select subject from audit where action='revoke.same_key' and actor='ca' and detail like '% reason=keyCompromise code=1 %' and detail like '% key=%' and detail like '% with=$(hex d1)' order by subject" | paste -sd,)"
cleanup_server
check "audit verify accepts it: the state rebuilt from the audit has them revoked" "$CA_BIN" audit verify --dir "$CA"
start_ca "$CA"
check_eq "the next start finds nothing left: no entry written" "$((same_key_entries + 2)) 0" \
  "$(sql "$DB" "select count(*) from audit where action='revoke.same_key'") $(grep -c same_key_revoked "$WORK/server.log" || true)"
cleanup_server
# The same old state, its CRL written by the command line (no serve in between): the sweep runs there too, or the
# CRL would omit the key's other certificates.
start_ca "$CA"
camera CAM0005 e1 e2
cleanup_server
key_of e2 b2
"$CA_BIN" revoke --dir "$CA" "$(hex e1)" --reason keyCompromise >/dev/null
key_of e2 e1
"$CA_BIN" crl --dir "$CA" --out "$WORK/crl4.der" >/dev/null
check_eq "crl on the command line: the renewal of the key revoked first" "revoked:1 revoked:1" "$(status e1) $(status e2)"
check_eq "... and its CRL lists both" "e1 e2" "$(for n in e1 e2; do
  grep -q ",$(hex $n | sed 's/^\(00\)*//')," <<<",$(crl_serials "$WORK/crl4.der")," && printf '%s ' $n; done | sed 's/ $//')"

check "audit verify: chain intact and the state tables rebuilt from it match" "$CA_BIN" audit verify --dir "$CA"
if on_sqlite; then # the rebuild knows the renewal revoked from its own entry: put back to valid (triggers dropped)
  sqlite3 "$DB" "$(sql "$DB" "select 'DROP TRIGGER ' || name || ';' from sqlite_master where type = 'trigger'")
    update certificates set status = 'valid', revoked_at = null, revocation_reason = null where cert_serial_hex = '$(hex a3)'"
  verify_says "the renewal's revocation undone with sqlite3" "state tables BROKEN: certificate $(hex a3): revoked in the audit (keyCompromise"
fi
finish
