#!/usr/bin/env bash
# Revocation end to end: the real CA on a real token, revoked with the CLI, checked with openssl ocsp (with and
# without a nonce), openssl crl and curl over plain HTTP and HTTPS. Usage: revoke.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
DB=$CA/camtrust.db
ca_create "$CA" >/dev/null
# Anonymous refusals (bad OCSP requests below) are written as counts every audit.anonymous_interval_s and at stop:
# an interval of an hour writes them only at stop, so that the counts of refusals below do not depend on whether
# the 60 s of the default ended between them (under load it could). refusals.sh tests the interval itself.
sed -i 's/^audit.anonymous_interval_s = .*/audit.anonymous_interval_s = 3600/' "$CA/camtrust-ca.conf"
check "init makes a delegated OCSP signer certified by the device issuing CA" \
  openssl verify -CAfile "$CA/root.pem" -untrusted "$CA/device-issuing.pem" -purpose ocsphelper "$CA/ocsp-signer.pem"
OTEXT=$(openssl x509 -in "$CA/ocsp-signer.pem" -noout -text)
cp "$CA/ocsp-signer.pem" "$WORK/ocsp-before.pem"
check "... with EKU OCSPSigning and ocsp-nocheck" bash -c "grep -q 'OCSP Signing' <<<\"\$0\" && grep -q 'OCSP No Check' <<<\"\$0\"" "$OTEXT"

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/station.key" -subj "/CN=line1" -out "$WORK/station.csr" 2>/dev/null
"$CA_BIN" station add --dir "$CA" --name line1 --csr "$WORK/station.csr" --out "$WORK/station.pem" >/dev/null
printf 'CAM0001\nCAM0002\nCAM0003\n' >"$WORK/serials1.txt"
printf 'CAM0005\nCAM0006\n' >"$WORK/serials2.txt"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX100 --serials "$WORK/serials1.txt" >/dev/null
"$CA_BIN" order create --dir "$CA" --station line1 --model CX100 --serials "$WORK/serials2.txt" >/dev/null
WITH_HTTP=1 start_ca "$CA"
HTTP=http://127.0.0.1:$HTTP_PORT
for s in CAM0001 CAM0002 CAM0003 CAM0005 CAM0006; do
  make_csr "$WORK/$s" "/serialNumber=$s/CN=x"
  est_post simpleenroll "$WORK/$s.b64" "$WORK/$s.p7b64" --cert "$WORK/station.pem" --key "$WORK/station.key" >/dev/null
  base64 -d "$WORK/$s.p7b64" | openssl pkcs7 -inform DER -print_certs -out "$WORK/$s.pem" 2>/dev/null || true
done
check_eq "five cameras enrolled" 5 "$(sql "$DB" "select count(*) from certificates where profile = 'device'")"
TEXT=$(openssl x509 -in "$WORK/CAM0001.pem" -noout -text)
check "the device certificate names the CRL distribution point from the config" grep -q 'URI:http://127.0.0.1:8080/crl' <<<"$TEXT"
check "... and the OCSP responder from the config" grep -q 'OCSP - URI:http://127.0.0.1:8080/ocsp' <<<"$TEXT"

# ocsp CERTNAME [options]: openssl ocsp against the plain-HTTP responder; prints its output
ocsp() {
  local cert=$1; shift
  openssl ocsp -issuer "$CA/device-issuing.pem" -cert "$WORK/$cert.pem" -url "$HTTP/ocsp" -CAfile "$CA/root.pem" \
    -timeout 10 "$@" 2>&1 || true
}
OUT=$(ocsp CAM0001 -no_nonce)
check "openssl ocsp (no nonce): good, and the response verifies" bash -c "grep -q '^Response verify OK' <<<\"\$0\" && grep -q 'CAM0001.pem: good' <<<\"\$0\"" "$OUT"
OUT=$(ocsp CAM0001)
check "openssl ocsp (nonce): good, verified, nonce echoed" bash -c "grep -q '^Response verify OK' <<<\"\$0\" && grep -q 'CAM0001.pem: good' <<<\"\$0\" && ! grep -qiE 'no nonce|nonce verify' <<<\"\$0\"" "$OUT"

# Revoke one certificate by its serial as openssl prints it.
SERIAL=$(openssl x509 -in "$WORK/CAM0001.pem" -noout -serial | cut -d= -f2)
LOWER=$(tr 'A-F' 'a-f' <<<"$SERIAL")
check "camtrust-ca revoke SERIAL --reason keyCompromise" "$CA_BIN" revoke --dir "$CA" "$SERIAL" --reason keyCompromise
sleep 0.2 # the server notices another process's revocation within 50 ms
OUT=$(ocsp CAM0001 -no_nonce)
check "openssl ocsp: revoked, reason keyCompromise, verified" bash -c "grep -q '^Response verify OK' <<<\"\$0\" && grep -q 'CAM0001.pem: revoked' <<<\"\$0\" && grep -q 'Reason: keyCompromise' <<<\"\$0\"" "$OUT"
OUT=$(ocsp CAM0001)
check "... also with a nonce" bash -c "grep -q '^Response verify OK' <<<\"\$0\" && grep -q 'CAM0001.pem: revoked' <<<\"\$0\"" "$OUT"
OUT=$(ocsp CAM0002 -no_nonce)
check "another certificate stays good" grep -q 'CAM0002.pem: good' <<<"$OUT"
OUT=$(openssl ocsp -issuer "$CA/device-issuing.pem" -serial 0x1234567890 -url "$HTTP/ocsp" -CAfile "$CA/root.pem" -no_nonce 2>&1 || true)
check "a serial never issued here: unknown" bash -c "grep -q '^Response verify OK' <<<\"\$0\" && grep -q ': unknown' <<<\"\$0\"" "$OUT"
OUT=$(openssl ocsp -issuer "$CA/ops-issuing.pem" -cert "$WORK/station.pem" -url "$HTTP/ocsp" -CAfile "$CA/ops-root.pem" -no_nonce 2>&1 || true)
check "the station's certificate: good, answered by the operations issuing CA" \
  bash -c "grep -q '^Response verify OK' <<<\"\$0\" && grep -q 'station.pem: good' <<<\"\$0\"" "$OUT"
OUT=$(openssl ocsp -issuer "$CA/root.pem" -cert "$WORK/station.pem" -url "$HTTP/ocsp" -no_nonce 2>&1 || true)
check "a certificate of an issuer that is no issuing CA: unauthorized" grep -q 'unauthorized' <<<"$OUT"
# The CA's own certificates are certificates it issued: RFC 6960 leaves no room for "unknown" about them.
# own_ocsp FILE ISSUER ROOT [options]: openssl ocsp for one of them, asked of its issuing CA
own_ocsp() {
  openssl ocsp -issuer "$CA/$2" -cert "$1" -url "$HTTP/ocsp" -CAfile "$CA/$3" -timeout 10 -no_nonce "${@:4}" 2>&1 || true
}
for f in server.pem log.pem log-checkpoint.pem; do
  OUT=$(own_ocsp "$CA/$f" ops-issuing.pem ops-root.pem)
  check "the CA's own $f: good, answered by the operations issuing CA" \
    bash -c "grep -q '^Response verify OK' <<<\"\$0\" && grep -q '$f: good' <<<\"\$0\"" "$OUT"
done
OUT=$(own_ocsp "$CA/ocsp-signer.pem" device-issuing.pem root.pem)
check "the OCSP responder's own certificate: good, answered by the device issuing CA" \
  bash -c "grep -q '^Response verify OK' <<<\"\$0\" && grep -q 'ocsp-signer.pem: good' <<<\"\$0\"" "$OUT"
OUT=$(openssl ocsp -issuer "$CA/device-issuing.pem" -serial "0x$(openssl x509 -in "$CA/server.pem" -noout -serial | cut -d= -f2)" \
  -url "$HTTP/ocsp" -CAfile "$CA/root.pem" -no_nonce 2>&1 || true)
check "... the server's serial asked of the device issuing CA (not its issuer): unknown" \
  bash -c "grep -q '^Response verify OK' <<<\"\$0\" && grep -q ': unknown' <<<\"\$0\"" "$OUT"
check "... and none of them is a leaf of the issuance log (it lists what cameras and viewers hold)" \
  test "$(sql "$DB" "select count(*) from log_leaves l join certificates c using (cert_serial_hex) where c.profile like 'ca-%'")" = 0
# A revoked viewer is the operations issuing CA's: the device CA's responder and CRL know nothing of it.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/v.key" -subj /CN=viewer1 \
  -out "$WORK/v.csr" 2>/dev/null
"$CA_BIN" viewer add --dir "$CA" --name viewer1 --csr "$WORK/v.csr" --out "$WORK/viewer1.pem" >/dev/null
VSERIAL=$(openssl x509 -in "$WORK/viewer1.pem" -noout -serial | cut -d= -f2)
"$CA_BIN" revoke --dir "$CA" "$VSERIAL" --reason keyCompromise >/dev/null
sleep 0.2
OUT=$(openssl ocsp -issuer "$CA/device-issuing.pem" -serial "0x$VSERIAL" -url "$HTTP/ocsp" -CAfile "$CA/root.pem" -no_nonce 2>&1 || true)
check "a revoked viewer's serial asked of the device CA: unknown" bash -c "grep -q '^Response verify OK' <<<\"\$0\" && grep -q ': unknown' <<<\"\$0\"" "$OUT"
"$CA_BIN" crl ops --dir "$CA" --out "$WORK/ops.crl" >/dev/null
check "... and the operations CRL lists it" bash -c "openssl crl -inform DER -in '$WORK/ops.crl' -noout -text | grep -qi 'Serial Number: $VSERIAL'"
curl -s -o "$WORK/ops-http.crl" "$HTTP/crl/ops"
check "GET /crl/ops (plain HTTP): the operations CRL, verified against its CA, listing the viewer" bash -c "
  openssl crl -inform DER -in '$WORK/ops-http.crl' -CAfile <(cat '$CA/ops-issuing.pem' '$CA/ops-root.pem') -verify -noout 2>&1 |
    grep -q 'verify OK' && openssl crl -inform DER -in '$WORK/ops-http.crl' -noout -text | grep -qi 'Serial Number: $VSERIAL'"
check "... and the device CRL does not list it" bash -c "! curl -s '$HTTP/crl' | openssl crl -inform DER -noout -text | grep -qi 'Serial Number: $VSERIAL'"

# Refusals of the CLI: a clear reason, audited, nothing changed.
revoked_before=$(sql "$DB" "select count(*) from certificates where status='revoked'")
denied_before=$(sql "$DB" "select count(*) from audit where outcome='denied'")
rc=0; out=$("$CA_BIN" revoke --dir "$CA" "$SERIAL" --reason keyCompromise 2>&1) || rc=$?
check_eq "revoking it again fails" 1 "$rc"
check "... saying it is already revoked" grep -q 'already revoked' <<<"$out"
out=$("$CA_BIN" revoke --dir "$CA" 0123456789abcdef --reason keyCompromise 2>&1) || true
check "an unknown serial is refused as such" grep -q 'no certificate with serial 0123456789abcdef' <<<"$out"
out=$("$CA_BIN" revoke --dir "$CA" "$SERIAL" --reason certificateHold 2>&1) || true
check "certificateHold is not a reason camtrust offers" grep -q "reason 'certificateHold' is not one of" <<<"$out"
out=$("$CA_BIN" revoke --dir "$CA" --order 77 --reason superseded 2>&1) || true
check "an unknown order is refused" grep -q 'no order 77' <<<"$out"
check_eq "every refusal was audited" 4 "$(( $(sql "$DB" "select count(*) from audit where outcome='denied'") - denied_before ))"
check_eq "refusals changed nothing" "$revoked_before" "$(sql "$DB" "select count(*) from certificates where status='revoked'")"
check "revoke without --reason is a usage error" bash -c "! '$CA_BIN' revoke --dir '$CA' '$SERIAL' 2>/dev/null"

# A whole order in one audited action.
out=$("$CA_BIN" revoke --dir "$CA" --order 2 --reason cessationOfOperation)
check_eq "revoke --order revokes its two certificates" "revoked 2 certificates (cessationOfOperation)" "$out"
check_eq "... in one audit event that counts them" 1 "$(sql "$DB" "select count(*) from audit where action='order.revoke' and outcome='ok' and detail like 'v=2 certificates=2 reason=cessationOfOperation %'")"
check_eq "... and the order is closed with it (audited)" "0 1" "$(sql "$DB" "select open from orders where id=2") $(sql "$DB" "select count(*) from audit where action='order.close' and subject='order 2' and detail='v=2 id=2 because=revoked'")"
sleep 0.2
OUT=$(ocsp CAM0006 -no_nonce)
check "openssl ocsp: the order's certificate is revoked (cessationOfOperation)" bash -c "grep -q 'CAM0006.pem: revoked' <<<\"\$0\" && grep -q 'Reason: cessationOfOperation' <<<\"\$0\"" "$OUT"

# The CRL: served from memory over plain HTTP and HTTPS, and written by the CLI.
code=$(curl -s -o "$WORK/crl.der" -w '%{http_code} %{content_type}' "$HTTP/crl")
check_eq "GET /crl over plain HTTP: 200 application/pkix-crl" "200 application/pkix-crl" "$code"
check "openssl crl -verify accepts it against chain.pem" bash -c "openssl crl -inform DER -in '$WORK/crl.der' -CAfile '$CA/chain.pem' -verify -noout 2>&1 | grep -q 'verify OK'"
db_revoked=$(sql "$DB" "select cert_serial_hex from certificates where status='revoked' and profile <> 'viewer' order by 1" | paste -sd,)
crl_serials() { openssl crl -inform DER -in "$1" -noout -text | sed -n 's/ *Serial Number: //p' | tr 'A-F' 'a-f' | sort | paste -sd,; }
check_eq "the CRL lists exactly the revoked serials in the database" "$db_revoked" "$(crl_serials "$WORK/crl.der")"
check "the CRL carries the reason codes" bash -c "openssl crl -inform DER -in '$WORK/crl.der' -noout -text | grep -q 'Cessation Of Operation'"
curl -s --cacert "$CA/ops-root.pem" -o "$WORK/crl-tls.der" "https://localhost:$PORT/crl"
check_eq "GET /crl over HTTPS: the same revoked serials" "$db_revoked" "$(crl_serials "$WORK/crl-tls.der")"
check "camtrust-ca crl --out writes a CRL openssl verifies" bash -c "'$CA_BIN' crl --dir '$CA' --out '$WORK/cli.crl' >/dev/null && openssl crl -inform DER -in '$WORK/cli.crl' -CAfile '$CA/chain.pem' -verify -noout 2>&1 | grep -q 'verify OK'"
crl_number() { openssl crl -inform DER -in "$1" -noout -crlnumber | cut -d= -f2; }
check "... with a larger CRL number than the served one" test "$(( $(crl_number "$WORK/cli.crl") ))" -gt "$(( $(crl_number "$WORK/crl.der") ))"
check_eq "... and the same serials" "$db_revoked" "$(crl_serials "$WORK/cli.crl")"

# OCSP over GET, and bad input to the responder.
openssl ocsp -issuer "$CA/device-issuing.pem" -cert "$WORK/CAM0002.pem" -no_nonce -reqout "$WORK/req.der"
b64=$(base64 -w0 "$WORK/req.der" | sed 's|+|%2B|g; s|/|%2F|g; s|=|%3D|g')
curl -s -o "$WORK/get.der" "$HTTP/ocsp/$b64"
check "GET /ocsp/<base64>: a verified answer" bash -c "openssl ocsp -respin '$WORK/get.der' -issuer '$CA/device-issuing.pem' -cert '$WORK/CAM0002.pem' -CAfile '$CA/root.pem' -no_nonce 2>&1 | grep -q 'CAM0002.pem: good'"
denied_before=$(sql "$DB" "select count(*) from audit where outcome='denied' and action='ocsp.request'")
head -c 300 /dev/urandom >"$WORK/junk.der"
code=$(curl -s -o "$WORK/r" -w '%{http_code}' -H 'Content-Type: application/ocsp-request' --data-binary @"$WORK/junk.der" "$HTTP/ocsp")
check_eq "a malformed OCSP request: HTTP 200 (RFC 6960)" 200 "$code"
check_eq "... whose answer is malformedRequest" "30030a0101" "$(xxd -p "$WORK/r")"
check "... which openssl reads as such" bash -c "openssl ocsp -respin '$WORK/r' -resp_text -noverify 2>&1 | grep -q malformedrequest"
head -c 6000 /dev/zero >"$WORK/big.der"
code=$(curl -s -o "$WORK/r" -w '%{http_code}' -H 'Content-Type: application/ocsp-request' --data-binary @"$WORK/big.der" "$HTTP/ocsp")
check_eq "an oversized OCSP request: 413" 413 "$code"
check "... with a one-line reason" grep -q '413 OCSP request larger than' "$WORK/r"
code=$(curl -s -o "$WORK/r" -w '%{http_code}' -H 'Content-Type: text/plain' --data-binary @"$WORK/req.der" "$HTTP/ocsp")
check_eq "a wrong content type: 415" 415 "$code"
check_eq "bad OCSP requests are anonymous: counted, not written one by one while the server runs" 0 \
  "$(( $(sql "$DB" "select count(*) from audit where outcome='denied' and action='ocsp.request'") - denied_before ))"
code=$(curl -s -o /dev/null -w '%{http_code}' "$HTTP/.well-known/est/cacerts")
check_eq "plain HTTP serves nothing but /crl and /ocsp" 404 "$code"

# A whole station: what is left of its certificates.
out=$("$CA_BIN" revoke --dir "$CA" --station line1 --reason affiliationChanged)
check_eq "revoke --station revokes the rest" "revoked 2 certificates (affiliationChanged)" "$out"
check_eq "every camera certificate is revoked now" 5 "$(sql "$DB" "select count(*) from certificates where status='revoked' and profile <> 'viewer'")"
check_eq "... and the station is disabled with it (audited)" "0 1" "$(sql "$DB" "select enabled from stations where name='line1'") $(sql "$DB" "select count(*) from audit where action='station.disable' and subject='line1'")"
sleep 0.2
curl -s -o "$WORK/crl2.der" "$HTTP/crl"
check_eq "the served CRL follows" "$(sql "$DB" "select cert_serial_hex from certificates where status='revoked' and profile <> 'viewer' order by 1" | paste -sd,)" "$(crl_serials "$WORK/crl2.der")"
OUT=$(ocsp CAM0002)
check "openssl ocsp with a nonce sees that too" bash -c "grep -q '^Response verify OK' <<<\"\$0\" && grep -q 'CAM0002.pem: revoked' <<<\"\$0\" && grep -q 'Reason: affiliationChanged' <<<\"\$0\"" "$OUT"

check "log lines name the OCSP answers" grep -q 'path="/ocsp" status=200 client="none" result="revoked serial=' "$WORK/server.log"
kill -TERM "$SERVER_PID"; rc=0; wait "$SERVER_PID" || rc=$?; SERVER_PID=
check_eq "SIGTERM stops the server cleanly" 0 "$rc"
[ "$rc" = 0 ] || tail -40 "$WORK/server.log"

# The OCSP responder's certificate (a year by default) is renewed in place: same token key, fresh validity; the
# restarted server signs with it. Roots and issuing CAs are not renewable.
old_serial=$(openssl x509 -in "$CA/ocsp-signer.pem" -noout -serial)
out=$("$CA_BIN" renew --dir "$CA" ocsp)
check "renew ocsp: done, with its new notAfter" grep -q '^renewed ocsp: valid until 20' <<<"$out"
check "... a new certificate (serial)" bash -c "[ \"\$(openssl x509 -in '$CA/ocsp-signer.pem' -noout -serial)\" != '$old_serial' ]"
check "... for the same key, still an OCSP signer under the device issuing CA" bash -c "
  openssl verify -CAfile '$CA/root.pem' -untrusted '$CA/device-issuing.pem' -purpose ocsphelper '$CA/ocsp-signer.pem' &&
  [ \"\$(openssl x509 -in '$CA/ocsp-signer.pem' -noout -pubkey)\" = \"\$(openssl x509 -in '$WORK/ocsp-before.pem' -noout -pubkey)\" ]"
check_eq "... audited" 1 "$(sql "$DB" "select count(*) from audit where action='ca.renew' and subject='ocsp-signer.pem'")"
out=$("$CA_BIN" renew --dir "$CA" root 2>&1) && rc=0 || rc=$?
check "renew root: refused (a key ceremony, not a renewal)" bash -c "[ $rc != 0 ] && grep -q 'not renewable' <<<\"\$0\"" "$out"
WITH_HTTP=1 start_ca "$CA"
HTTP=http://127.0.0.1:$HTTP_PORT
OUT=$(ocsp CAM0003 -no_nonce -resp_text)
awk '/BEGIN CERT/,/END CERT/' <<<"$OUT" | sed -n '/BEGIN/,/END/p;/END/q' >"$WORK/responder.pem"
failed_before=$failed
check "the restarted server answers with the renewed responder certificate" bash -c "grep -q 'Response verify OK' <<<\"\$0\" &&
  cmp -s '$WORK/responder.pem' '$CA/ocsp-signer.pem'" "$OUT"
[ "$failed" = "$failed_before" ] || # (failed once under load: what openssl and the server said)
  { grep -v '^[A-Za-z0-9+/=]*$' <<<"$OUT" | head -30; tail -5 "$WORK/server.log"; } | sed 's/^/# /'
OUT=$(own_ocsp "$CA/ocsp-signer.pem" device-issuing.pem root.pem)
check "... which it answers for: good" bash -c "grep -q '^Response verify OK' <<<\"\$0\" && grep -q 'ocsp-signer.pem: good' <<<\"\$0\"" "$OUT"
OUT=$(own_ocsp "$WORK/ocsp-before.pem" device-issuing.pem root.pem)
check "... and for the one it replaced (superseded, not revoked): good" \
  bash -c "grep -q '^Response verify OK' <<<\"\$0\" && grep -q 'ocsp-before.pem: good' <<<\"\$0\"" "$OUT"
cleanup_server
check_eq "each bad OCSP request is counted in the audit once the server stops" 3 "$(anonymous_refusals "$DB" ocsp.request)"

# Issue 10: the database is private; revocation is final (re-provisioning is an officer's act); serials are one
# case-insensitively; a station's certificate is revoked like any other and refused at once by the running server.
WITH_HTTP=1 start_ca "$CA"
HTTP=http://127.0.0.1:$HTTP_PORT
if on_sqlite; then
  check_eq "the database, its WAL and shared-memory files are 0600 while serving" "600 600 600" \
    "$(stat -c %a "$DB" "$DB-wal" "$DB-shm" | paste -sd' ')"
fi
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/line2.key" -subj "/CN=line2" -out "$WORK/line2.csr" 2>/dev/null
"$CA_BIN" station add --dir "$CA" --name line2 --csr "$WORK/line2.csr" --out "$WORK/line2.pem" >/dev/null
out=$("$CA_BIN" order create --dir "$CA" --station line2 --model CX100 --serials <(printf 'CAM0100\nCAM0101\n') 2>&1)
check "order create --serials <(...) reads the pipe" grep -q '^order [0-9]* created for station line2' <<<"$out"
rc=0; out=$("$CA_BIN" order create --dir "$CA" --station line2 --model CX100 --serials <(printf 'cam0101\n') 2>&1) || rc=$?
check "a serial differing only by case from an ordered one is refused" bash -c "[ $rc != 0 ] && grep -q \"'cam0101' differs only by case from 'CAM0101'\" <<<\"\$0\"" "$out"
enroll2() { # enroll2 SERIAL KEYNAME: POSTs a fresh CSR as station line2, prints the status
  make_csr "$WORK/$2" "/serialNumber=$1/CN=x"
  est_post simpleenroll "$WORK/$2.b64" "$WORK/$2.out" --cert "$WORK/line2.pem" --key "$WORK/line2.key"
}
check_eq "CAM0100 enrolled" 200 "$(enroll2 CAM0100 c100a)"
base64 -d "$WORK/c100a.out" | openssl pkcs7 -inform DER -print_certs -out "$WORK/c100a.pem" 2>/dev/null
"$CA_BIN" revoke --dir "$CA" "$(openssl x509 -in "$WORK/c100a.pem" -noout -serial)" --reason keyCompromise >/dev/null
check_eq "the revoked serial with a new key: 409" 409 "$(enroll2 CAM0100 c100b)"
check "... saying revocation is final" grep -q 'revocation is final' "$WORK/c100b.out"
check_eq "... audited, no certificate recorded" "1 1" "$(sql "$DB" "select count(*) from audit where action='est.enroll' and outcome='denied' and actor='line2' and subject='CAM0100'") $(sql "$DB" "select count(*) from certificates where device_serial='CAM0100'")"
out=$("$CA_BIN" order reprovision --dir "$CA" --station line2 --model CX100 --serial CAM0100)
check "order reprovision: the serial may be issued once more" grep -q 'CAM0100 may be issued once more' <<<"$out"
# ... but never with the key revoked for keyCompromise (RFC 5280 reason 1): not for its serial, nor for another one.
enroll_key() { # enroll_key SERIAL KEYNAME OUT: POSTs a CSR of the key $WORK/KEYNAME.key as station line2
  make_csr "$WORK/$3" "/serialNumber=$1/CN=x" -key "$WORK/$2.key"
  est_post simpleenroll "$WORK/$3.b64" "$WORK/$3.out" --cert "$WORK/line2.pem" --key "$WORK/line2.key"
}
check_eq "the re-provisioned serial with its compromised key: 403" 403 "$(enroll_key CAM0100 c100a c100a-again)"
check "... saying the key was revoked for keyCompromise" grep -q 'this public key was revoked for keyCompromise' "$WORK/c100a-again.out"
check_eq "... audited, no certificate recorded" "1 1" "$(sql "$DB" "select count(*) from audit where action='est.enroll' and outcome='denied' and actor='line2' and subject='CAM0100' and detail like '%revoked for keyCompromise%'") $(sql "$DB" "select count(*) from certificates where device_serial='CAM0100'")"
check_eq "the compromised key for another serial: 403 too" 403 "$(enroll_key CAM0101 c100a c100a-other)"
check "... saying why" grep -q 'revoked for keyCompromise' "$WORK/c100a-other.out"
check_eq "... nothing recorded for that serial" 0 "$(sql "$DB" "select count(*) from certificates where device_serial='CAM0101'")"
check_eq "... and it is, with a new key" 200 "$(enroll2 CAM0100 c100c)"
base64 -d "$WORK/c100c.out" | openssl pkcs7 -inform DER -print_certs -out "$WORK/c100c.pem" 2>/dev/null
make_csr "$WORK/c100a-renew" "/serialNumber=CAM0100/CN=x" -key "$WORK/c100a.key"
check_eq "simplereenroll with the compromised key, by the device's new certificate: 403" 403 \
  "$(est_post simplereenroll "$WORK/c100a-renew.b64" "$WORK/c100a-renew.out" --cert "$WORK/c100c.pem" --key "$WORK/c100c.key")"
check "... saying why" grep -q 'this public key was revoked for keyCompromise' "$WORK/c100a-renew.out"
check_eq "... audited as the device, its certificate still the current one, nothing recorded" "1 valid 2" \
  "$(sql "$DB" "select count(*) from audit where action='est.enroll' and outcome='denied' and actor='device:CAM0100' and detail like '%revoked for keyCompromise%'") $(sql "$DB" "select status from certificates where cert_serial_hex='$(openssl x509 -in "$WORK/c100c.pem" -noout -serial | cut -d= -f2 | tr A-F a-f)'") $(sql "$DB" "select count(*) from certificates where device_serial='CAM0100'")"
make_csr "$WORK/c100d" "/serialNumber=CAM0100/CN=x"
check_eq "... with a new key it renews: 200" 200 \
  "$(est_post simplereenroll "$WORK/c100d.b64" "$WORK/c100d.out" --cert "$WORK/c100c.pem" --key "$WORK/c100c.key")"
check_eq "CAM0101 (case variant of nothing issued) still enrolls before the station is revoked" 200 "$(enroll2 CAM0101 c101a)"
out=$("$CA_BIN" revoke --dir "$CA" "$(openssl x509 -in "$WORK/line2.pem" -noout -serial)" --reason keyCompromise)
check_eq "revoke a station's own certificate by serial" "revoked 1 certificate (keyCompromise)" "$out"
check_eq "the running server refuses that station at once: 403" 403 "$(enroll2 CAM0101 c101b)"
check "... saying its certificate is revoked" grep -q 'is revoked' "$WORK/c101b.out"
LINE2=$(openssl x509 -in "$WORK/line2.pem" -noout -serial | cut -d= -f2 | tr A-F a-f | sed 's/^\(00\)*//')
for _ in $(seq 1 50); do
  curl -s -o "$WORK/ops2.crl" "$HTTP/crl/ops"
  openssl crl -inform DER -in "$WORK/ops2.crl" -noout -text | grep -qi "serial number: $LINE2" && break
  sleep 0.1
done
check "the served operations CRL lists the station's certificate" bash -c "openssl crl -inform DER -in '$WORK/ops2.crl' -noout -text | grep -qi 'serial number: $LINE2'"
# The CA's own server certificate revoked (its key compromised): OCSP and the operations CRL say so.
out=$("$CA_BIN" revoke --dir "$CA" "$(openssl x509 -in "$CA/server.pem" -noout -serial | cut -d= -f2)" --reason keyCompromise 2>&1) || true
check_eq "revoke the CA's own server certificate by serial" "revoked 1 certificate (keyCompromise)" "$out"
sleep 0.2
OUT=$(own_ocsp "$CA/server.pem" ops-issuing.pem ops-root.pem)
check "openssl ocsp: the server's certificate revoked, reason keyCompromise, verified" bash -c "grep -q '^Response verify OK' <<<\"\$0\" &&
  grep -q 'server.pem: revoked' <<<\"\$0\" && grep -q 'Reason: keyCompromise' <<<\"\$0\"" "$OUT"
TLS=$(openssl x509 -in "$CA/server.pem" -noout -serial | cut -d= -f2 | tr A-F a-f | sed 's/^\(00\)*//')
curl -s -o "$WORK/ops3.crl" "$HTTP/crl/ops"
check "... and the served operations CRL lists it" bash -c "openssl crl -inform DER -in '$WORK/ops3.crl' -noout -text | grep -qi 'serial number: $TLS'"
cleanup_server

# A full disk: the database on a small tmpfs filled to the last byte (mounting needs root; skipped otherwise). The
# enrollment fails with 500 and leaves nothing; its refusal is audited if the database can still write, else the
# failed audit is logged; with space again the CA goes on and its chain is intact.
if on_sqlite && [ "$(id -u)" = 0 ] && mkdir -p "$WORK/full" && mount -t tmpfs -o size=4m tmpfs "$WORK/full" 2>/dev/null; then
  trap 'cleanup_server; umount "$WORK/full" 2>/dev/null || true; rm -rf "$WORK"' EXIT
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/line3.key" -subj "/CN=line3" -out "$WORK/line3.csr" 2>/dev/null
  "$CA_BIN" station add --dir "$CA" --name line3 --csr "$WORK/line3.csr" --out "$WORK/line3.pem" >/dev/null
  "$CA_BIN" order create --dir "$CA" --station line3 --model CX100 --serials <(printf 'CAM0300\nCAM0301\n') >/dev/null
  cp "$DB" "$WORK/full/camtrust.db"
  cp "$CA/camtrust-ca.conf" "$WORK/conf.saved"
  cp "$CA/checkpoint.note" "$WORK/kept.saved" # the copy's checkpoints are kept there too: put back with the config
  sed -i "s|^database *=.*|database = $WORK/full/camtrust.db|" "$CA/camtrust-ca.conf"
  start_ca "$CA"
  enroll3() { make_csr "$WORK/$2" "/serialNumber=$1/CN=x"; est_post simpleenroll "$WORK/$2.b64" "$WORK/$2.out" --cert "$WORK/line3.pem" --key "$WORK/line3.key"; }
  check_eq "a station enrolls with the database on the small disk" 200 "$(enroll3 CAM0300 c300)"
  dd if=/dev/zero of="$WORK/full/filler" bs=4k 2>/dev/null || true
  check_eq "the disk is full: 500" 500 "$(enroll3 CAM0301 c301a)"
  audited=$(sql "$WORK/full/camtrust.db" "select count(*) from audit where outcome='denied' and subject='CAM0301'")
  check "... audited, or the failed audit logged" bash -c "[ '$audited' = 1 ] || grep -q 'a denial not audited' '$WORK/server.log'"
  rm -f "$WORK/full/filler"
  check_eq "space again: the same serial enrolls" 200 "$(enroll3 CAM0301 c301b)"
  check_eq "... one certificate, nothing partial" "1 1" "$(sql "$WORK/full/camtrust.db" "select count(*) from certificates where device_serial='CAM0301'") $(sql "$WORK/full/camtrust.db" "select count(*) from log_leaves l join certificates c using (cert_serial_hex) where c.device_serial='CAM0301'")"
  cleanup_server
  check "... and the audit chain and issuance log are intact" "$CA_BIN" audit verify --dir "$CA"
  cp "$WORK/conf.saved" "$CA/camtrust-ca.conf"
  cp "$WORK/kept.saved" "$CA/checkpoint.note"
  umount "$WORK/full"
  trap 'cleanup_server; rm -rf "$WORK"' EXIT
else
  echo "ok - # SKIP disk full: cannot mount a tmpfs here (needs root)"
fi

check "audit verify: intact" "$CA_BIN" audit verify --dir "$CA"
# The CA's own certificates are rebuilt from the audit like every other: one revoked put back to valid is named.
if on_sqlite; then
  TLS_ROW=$(openssl x509 -in "$CA/server.pem" -noout -serial | cut -d= -f2 | tr A-F a-f)
  NOTRIG=$(sql "$DB" "select 'DROP TRIGGER ' || name || ';' from sqlite_master where type = 'trigger'") # as an attacker would
  sqlite3 "$DB" "$NOTRIG update certificates set status = 'valid', revoked_at = null, revocation_reason = null
    where cert_serial_hex = '$TLS_ROW'"
  rc=0; out=$("$CA_BIN" audit verify --dir "$CA" 2>&1) || rc=$?
  check "the server certificate's revocation undone with sqlite3: audit verify names it" \
    bash -c "[ $rc = 1 ] && grep -q 'state tables BROKEN: .*$TLS_ROW' <<<\"\$0\"" "$out"
fi
finish
