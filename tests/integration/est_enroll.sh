#!/usr/bin/env bash
# End to end: a CA on a real SoftHSM token and a real SQLite file, served on loopback, enrolled by a station
# that uses nothing but openssl and curl. Usage: est_enroll.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
ca_create "$CA" >/dev/null
DB=$CA/camtrust.db
check "init writes root.pem, chain.pem, ops-root.pem and a config" test -s "$CA/root.pem" -a -s "$CA/chain.pem" -a -s "$CA/ops-root.pem" -a -s "$CA/camtrust-ca.conf"
check "init refuses to run twice" bash -c "! '$CA_BIN' init --dir '$CA'"
check "device issuing CA chains to the device root" openssl verify -CAfile "$CA/root.pem" "$CA/device-issuing.pem"
check "device issuing CA has pathlen 0" bash -c "openssl x509 -in '$CA/device-issuing.pem' -noout -text | grep -q 'CA:TRUE, pathlen:0'"
check "device root is a CA with keyCertSign and cRLSign" bash -c "openssl x509 -in '$CA/root.pem' -noout -text | grep -A1 'Key Usage' | grep -q 'Certificate Sign, CRL Sign'"
check "the device root does not certify the operations CA" bash -c "! openssl verify -CAfile '$CA/root.pem' '$CA/ops-issuing.pem'"
check "every default is written out in the config" grep -q '^device.domain = ' "$CA/camtrust-ca.conf"

# The CA's private keys cannot be read out of the token, by a tool that is not ours.
export SOFTHSM2_CONF=$CA/softhsm2.conf
PIN=$(cat "$CA/secrets/user.pin")
# (pkcs11-tool 0.23 exits 0 for EC private keys while writing nothing: judge by the file it writes.)
pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label camtrust-ca --login --pin "$PIN" --read-object --type privkey --label device-issuing -o "$WORK/stolen" >/dev/null 2>&1 || true
pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label camtrust-ca --login --pin "$PIN" --read-object --type pubkey --label device-issuing -o "$WORK/public" >/dev/null 2>&1 || true
check "pkcs11-tool cannot read the device issuing CA private key" test ! -s "$WORK/stolen"
check "... while it can read the public key (the check itself works)" test -s "$WORK/public"
check "the token marks CA keys sensitive and never extractable" bash -c "pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label camtrust-ca --login --pin '$PIN' --list-objects --type privkey 2>/dev/null | grep -A6 'label: *device-issuing' | grep -q 'never extractable'"
unset SOFTHSM2_CONF

# A station: its own key, its CSR certified by the operations CA.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/station.key" -subj "/CN=line1" -out "$WORK/station.csr" 2>/dev/null
"$CA_BIN" station add --dir "$CA" --name line1 --csr "$WORK/station.csr" --out "$WORK/station.pem" >/dev/null
check "station certificate chains to the operations root" openssl verify -CAfile "$CA/ops-root.pem" -untrusted "$WORK/station.pem" "$WORK/station.pem"
check "station certificate is for clientAuth" bash -c "openssl x509 -in '$WORK/station.pem' -noout -text | grep -q 'TLS Web Client Authentication'"
check "a second station with the same name is refused" bash -c "! '$CA_BIN' station add --dir '$CA' --name line1 --csr '$WORK/station.csr' --out '$WORK/x.pem' 2>/dev/null"
printf 'CAM0001\nCAM0002\nCAM0003\n# comment\n\nCAM0004\n' >"$WORK/serials.txt"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX100 --serials "$WORK/serials.txt" >/dev/null
check "order list shows the order with 4 serials" bash -c "'$CA_BIN' order list --dir '$CA' | grep -q 'open .*line1 .*CX100 .*0/4'"
printf 'CAM0005\nbad serial!\n' >"$WORK/bad-serials.txt"
check "an order with an invalid serial is refused" bash -c "! '$CA_BIN' order create --dir '$CA' --station line1 --model CX100 --serials '$WORK/bad-serials.txt' 2>/dev/null"
# The subject CN is "<model> <serial>", at most 63 characters here (X.520's ub-common-name is 64): an order past it was
# once created, and each of its enrollments answered 500.
printf 'LONG%030d\n' 1 >"$WORK/long-serials.txt"
rc=0; out=$("$CA_BIN" order create --dir "$CA" --station line1 --model "$(printf 'M%.0s' $(seq 1 40))" \
  --serials "$WORK/long-serials.txt" 2>&1) || rc=$?
check_eq "an order whose model and serial make a CN of 75 characters is refused, in one line, nothing created" \
  "1|1|1" "$rc|$(grep -c 'make a subject CN of 75 characters: at most 63' <<<"$out")|$(sql "$DB" "select count(*) from orders")"

start_ca "$CA"
STATION=(--cert "$WORK/station.pem" --key "$WORK/station.key")

# Enrollment as RFC 7030 describes it.
make_csr "$WORK/cam1" "/serialNumber=CAM0001/CN=anything/O=ignored"
check_eq "simpleenroll answers 200" 200 "$(est_post simpleenroll "$WORK/cam1.b64" "$WORK/cam1.p7b64" "${STATION[@]}")"
base64 -d "$WORK/cam1.p7b64" | openssl pkcs7 -inform DER -print_certs -out "$WORK/cam1.pem" 2>/dev/null || true
check "the answer is a certs-only PKCS#7 that openssl reads" test -s "$WORK/cam1.pem"
check "the device certificate verifies against root.pem with chain.pem" openssl verify -CAfile "$CA/root.pem" -untrusted "$CA/chain.pem" "$WORK/cam1.pem"
check "the device certificate does not verify against the operations root" bash -c "! openssl verify -CAfile '$CA/ops-root.pem' '$WORK/cam1.pem'"
TEXT=$(openssl x509 -in "$WORK/cam1.pem" -noout -text -nameopt RFC2253)
check "subject has serialNumber, CN = model + serial and O from config" grep -q 'Subject: O=Example Camera Maker,CN=CX100 CAM0001,serialNumber=CAM0001\|Subject: serialNumber=CAM0001,CN=CX100 CAM0001,O=Example Camera Maker' <<<"$TEXT"
check "subjectAltName is the serial-derived DNS name" grep -q 'DNS:cam0001.devices.example.com' <<<"$TEXT"
check "keyUsage is critical digitalSignature" bash -c "grep -A1 'X509v3 Key Usage: critical' <<<\"\$0\" | grep -q 'Digital Signature'" "$TEXT"
check "EKU is serverAuth and clientAuth" grep -q 'TLS Web Server Authentication, TLS Web Client Authentication' <<<"$TEXT"
check "AKI and SKI are present" bash -c "grep -q 'Authority Key Identifier' <<<\"\$0\" && grep -q 'Subject Key Identifier' <<<\"\$0\"" "$TEXT"
check "notAfter is 99991231235959Z" bash -c "openssl x509 -in '$WORK/cam1.pem' -noout -enddate | grep -q 'Dec 31 23:59:59 9999 GMT'"
SERIAL=$(openssl x509 -in "$WORK/cam1.pem" -noout -serial | cut -d= -f2)
check "the certificate serial is random, positive, at least 64 bits" test "${#SERIAL}" -ge 16
check "O=ignored from the CSR is not copied" bash -c "! grep -q ignored <<<\"\$0\"" "$TEXT"
check_eq "the certificate and its audit event are in the database" "1|1" \
  "$(sql "$DB" "select count(*) from certificates where device_serial='CAM0001'; select count(*) from audit where outcome='ok' and subject like '%CAM0001%';" | paste -sd'|')"

check_eq "a re-sent identical request answers 200" 200 "$(est_post simpleenroll "$WORK/cam1.b64" "$WORK/cam1-again.p7b64" "${STATION[@]}")"
base64 -d "$WORK/cam1-again.p7b64" | openssl pkcs7 -inform DER -print_certs -out "$WORK/cam1-again.pem" 2>/dev/null || true
check_eq "... with the same certificate" "$(openssl x509 -in "$WORK/cam1.pem" -noout -fingerprint)" "$(openssl x509 -in "$WORK/cam1-again.pem" -noout -fingerprint 2>&1)"

code=$(curl -s -o "$WORK/cacerts.b64" -w '%{http_code}' --cacert "$CA/ops-root.pem" "https://localhost:$PORT/.well-known/est/cacerts")
check_eq "cacerts answers 200 without a client certificate" 200 "$code"
check_eq "cacerts holds the device issuing CA and the device root" 2 "$(base64 -d "$WORK/cacerts.b64" | openssl pkcs7 -inform DER -print_certs 2>/dev/null | grep -c 'BEGIN CERTIFICATE')"
curl -s --cacert "$CA/ops-root.pem" "https://localhost:$PORT/.well-known/est/csrattrs" | base64 -d >"$WORK/csrattrs.der"
check "csrattrs asks for ecdsa-with-SHA256 and serialNumber" bash -c "openssl asn1parse -inform DER -in '$WORK/csrattrs.der' | grep -q ecdsa-with-SHA256 && openssl asn1parse -inform DER -in '$WORK/csrattrs.der' | grep -q serialNumber"
check "TLS 1.3 is served" bash -c "curl -s --tlsv1.3 --cacert '$CA/ops-root.pem' -o /dev/null https://localhost:$PORT/.well-known/est/cacerts"

# Refusals: each with its status, a one-line reason, an audit entry, and no certificate row.
rows_before=$(sql "$DB" "select count(*) from certificates")
denied_before=$(audited_refusals "$DB") # (the anonymous 401s below are counted apart, at intervals: refusals.sh)
make_csr "$WORK/cam2" "/serialNumber=CAM0002/CN=x"
check_eq "no client certificate: 401" 401 "$(est_post simpleenroll "$WORK/cam2.b64" "$WORK/r" )"
check "... with a one-line reason" bash -c "[ \$(wc -l <'$WORK/r') -eq 1 ] && grep -q 'client certificate' '$WORK/r'"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/rogue.key" -subj "/CN=line1" -days 1 -out "$WORK/rogue.pem" 2>/dev/null
check_eq "a self-signed look-alike station certificate: 401" 401 "$(est_post simpleenroll "$WORK/cam2.b64" "$WORK/r" --cert "$WORK/rogue.pem" --key "$WORK/rogue.key")"
check_eq "wrong content type: 415" 415 "$(EST_CONTENT_TYPE=application/json est_post simpleenroll "$WORK/cam2.b64" "$WORK/r" "${STATION[@]}")"
head -c 20000 /dev/zero | tr '\0' 'A' >"$WORK/big.b64"
check_eq "a body over the limit: 413" 413 "$(est_post simpleenroll "$WORK/big.b64" "$WORK/r" "${STATION[@]}")"
check_eq "... sent chunked (no length announced): 413 too (was: the connection closed, no answer)" 413 \
  "$(est_post simpleenroll "$WORK/big.b64" "$WORK/r" "${STATION[@]}" -H 'Transfer-Encoding: chunked')"
check "... with a one-line reason" bash -c "[ \$(wc -l <'$WORK/r') -eq 1 ] && grep -q 'request body larger than' '$WORK/r'"
printf 'not*base64!' >"$WORK/bad.b64"
check_eq "malformed base64: 400" 400 "$(est_post simpleenroll "$WORK/bad.b64" "$WORK/r" "${STATION[@]}")"
head -c 300 /dev/urandom | base64 >"$WORK/junk.b64"
check_eq "base64 of something that is not a CSR: 400" 400 "$(est_post simpleenroll "$WORK/junk.b64" "$WORK/r" "${STATION[@]}")"
cp "$WORK/cam2.der" "$WORK/badsig.der"
len=$(stat -c %s "$WORK/badsig.der"); printf '\x01' | dd of="$WORK/badsig.der" bs=1 seek=$((len - 5)) conv=notrunc 2>/dev/null
base64 "$WORK/badsig.der" >"$WORK/badsig.b64"
check_eq "a CSR whose signature does not verify: 400" 400 "$(est_post simpleenroll "$WORK/badsig.b64" "$WORK/r" "${STATION[@]}")"
check "... named as such" grep -qi 'signature' "$WORK/r"
make_csr "$WORK/rsa" "/serialNumber=CAM0002/CN=x" -newkey rsa:2048
check_eq "a weak key (RSA-2048): 400" 400 "$(est_post simpleenroll "$WORK/rsa.b64" "$WORK/r" "${STATION[@]}")"
make_csr "$WORK/noserial" "/CN=CAM0002"
check_eq "no subject serialNumber: 400" 400 "$(est_post simpleenroll "$WORK/noserial.b64" "$WORK/r" "${STATION[@]}")"
make_csr "$WORK/other" "/serialNumber=CAM9999/CN=x"
check_eq "a serial outside the order: 403" 403 "$(est_post simpleenroll "$WORK/other.b64" "$WORK/r" "${STATION[@]}")"
check "... named in the reason" grep -q CAM9999 "$WORK/r"
make_csr "$WORK/cam1b" "/serialNumber=CAM0001/CN=x"
check_eq "an issued serial with another key: 409" 409 "$(est_post simpleenroll "$WORK/cam1b.b64" "$WORK/r" "${STATION[@]}")"
check_eq "an unknown EST label: 404" 404 "$(est_post nosuchlabel/simpleenroll "$WORK/cam2.b64" "$WORK/r" "${STATION[@]}")"
hdrs=$(curl -s -D - -o /dev/null --cacert "$CA/ops-root.pem" "https://localhost:$PORT/.well-known/est/x%3Cb%3E"; \
  curl -s -D - -o /dev/null --cacert "$CA/ops-root.pem" "https://localhost:$PORT/crl")
check_eq "an error answer and a CRL each say X-Content-Type-Options: nosniff (no browser sniffs HTML out of them)" 2 \
  "$(grep -ci '^x-content-type-options: nosniff' <<<"$hdrs")"
check_eq "GET on simpleenroll: 405" 405 "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA/ops-root.pem" "${STATION[@]}" "https://localhost:$PORT/.well-known/est/simpleenroll")"
# One key, one holder: a station that reuses a camera's key for another serial is refused, naming the holder.
make_csr "$WORK/reuse" "/serialNumber=CAM0003/CN=x" -key "$WORK/cam1.key"
check_eq "another serial with an issued camera's key: 409" 409 "$(est_post simpleenroll "$WORK/reuse.b64" "$WORK/r" "${STATION[@]}")"
check "... the reason names the holder, in one line" bash -c "[ \$(wc -l <'$WORK/r') -eq 1 ] && grep -q \"already certified for serial 'CAM0001' (device certificate\" '$WORK/r'"
"$CA_BIN" station disable --dir "$CA" line1 >/dev/null
check_eq "a disabled station, on its next request: 403" 403 "$(est_post simpleenroll "$WORK/cam2.b64" "$WORK/r" "${STATION[@]}")"
"$CA_BIN" station enable --dir "$CA" line1 >/dev/null
check_eq "refusals left no certificate row" "$rows_before" "$(sql "$DB" "select count(*) from certificates")"
check_eq "every refusal of the station was audited at once (but the disabled one's: counted, refusals.sh)" 7 "$(( $(audited_refusals "$DB") - denied_before ))"
check_eq "the re-enabled station enrolls again" 200 "$(est_post simpleenroll "$WORK/cam2.b64" "$WORK/cam2.p7b64" "${STATION[@]}")"

# The media-signing profile: its own key and certificate per serial, for signing recordings, not for TLS.
make_csr "$WORK/cam2mi" "/serialNumber=CAM0002/CN=x" -key "$WORK/cam2.key"
rows_before=$(sql "$DB" "select count(*) from certificates; select count(*) from log_leaves" | paste -sd'|')
check_eq "a media-signing certificate for the camera's identity key: 409" 409 "$(est_post media-signing/simpleenroll "$WORK/cam2mi.b64" "$WORK/r" "${STATION[@]}")"
check "... naming the identity certificate that holds it" grep -q "already certified for serial 'CAM0002' (device certificate" "$WORK/r"
check_eq "... audited, with no certificate row nor log leaf" "1|$rows_before" \
  "$(sql "$DB" "select count(*) from audit where outcome='denied' and action='est.enroll' and detail like '%already certified%' and subject='CAM0002'; select count(*) from certificates; select count(*) from log_leaves" | paste -sd'|')"
check_eq "the identity request re-sent still gets its certificate: 200" 200 "$(est_post simpleenroll "$WORK/cam2.b64" "$WORK/cam2-again.p7b64" "${STATION[@]}")"
fp_of() { base64 -d "$1" | openssl pkcs7 -inform DER -print_certs 2>/dev/null | openssl x509 -noout -fingerprint 2>&1; }
check_eq "... the same one" "$(fp_of "$WORK/cam2.p7b64")" "$(fp_of "$WORK/cam2-again.p7b64")"
make_csr "$WORK/cam2m" "/serialNumber=CAM0002/CN=x"
check_eq "media-signing/simpleenroll answers 200" 200 "$(est_post media-signing/simpleenroll "$WORK/cam2m.b64" "$WORK/cam2m.p7b64" "${STATION[@]}")"
base64 -d "$WORK/cam2m.p7b64" | openssl pkcs7 -inform DER -print_certs -out "$WORK/cam2m.pem" 2>/dev/null || true
MTEXT=$(openssl x509 -in "$WORK/cam2m.pem" -noout -text 2>&1)
check "the media-signing certificate chains to the device root" openssl verify -CAfile "$CA/root.pem" -untrusted "$CA/chain.pem" "$WORK/cam2m.pem"
check "... has critical digitalSignature and no serverAuth" bash -c "grep -A1 'Key Usage: critical' <<<\"\$0\" | grep -q 'Digital Signature' && ! grep -q 'TLS Web Server' <<<\"\$0\"" "$MTEXT"
make_csr "$WORK/cam2m2" "/serialNumber=CAM0002/CN=x"
check_eq "a second media-signing key for the serial: 409" 409 "$(est_post media-signing/simpleenroll "$WORK/cam2m2.b64" "$WORK/r" "${STATION[@]}")"

# A camera's first media-signing certificate is a station's, in an open order: its identity certificate alone (no
# station, no order: one an officer closed, a station disabled) does not get one by re-enrolling (it once did, 200).
make_csr "$WORK/cam1m" "/serialNumber=CAM0001/CN=x"
check_eq "media-signing/simplereenroll of a camera that has no media-signing certificate: 403" 403 \
  "$(est_post media-signing/simplereenroll "$WORK/cam1m.b64" "$WORK/cam1m.out" --cert "$WORK/cam1.pem" --key "$WORK/cam1.key")"
check_eq "... in one line saying where its first comes from, audited, no row" "1|1|0" "$(grep -c \
  "^403 serial 'CAM0001' has no media-signing certificate to renew: its first is a station's (simpleenroll in an open order)\$" \
  "$WORK/cam1m.out")|$(sql "$DB" "select count(*) from audit where actor = 'device:CAM0001' and outcome = 'denied'
  and detail like 'serial ''CAM0001'' has no media-signing certificate to renew%'; select count(*) from certificates
  where device_serial = 'CAM0001' and profile = 'media-signing'" | paste -sd'|')"
# ... while a camera that has one (CAM0002, above) renews it with its identity certificate
base64 -d "$WORK/cam2.p7b64" | openssl pkcs7 -inform DER -print_certs -out "$WORK/cam2.pem" 2>/dev/null || true
make_csr "$WORK/cam2m3" "/serialNumber=CAM0002/CN=x"
check_eq "media-signing/simplereenroll of a camera that has one: 200" 200 \
  "$(est_post media-signing/simplereenroll "$WORK/cam2m3.b64" "$WORK/r" --cert "$WORK/cam2.pem" --key "$WORK/cam2.key")"
check_eq "... superseding it" "superseded|1 valid|1" "$(sql "$DB" "select status, count(*) from certificates
  where device_serial = 'CAM0002' and profile = 'media-signing' group by status order by status" | paste -sd' ')"

# Re-enrollment: the device re-keys with its current certificate.
make_csr "$WORK/cam1-rekey" "/serialNumber=CAM0001/CN=x"
check_eq "simplereenroll with the device's certificate: 200" 200 "$(est_post simplereenroll "$WORK/cam1-rekey.b64" "$WORK/cam1-rekey.p7b64" --cert "$WORK/cam1.pem" --key "$WORK/cam1.key")"
base64 -d "$WORK/cam1-rekey.p7b64" | openssl pkcs7 -inform DER -print_certs -out "$WORK/cam1-rekey.pem" 2>/dev/null || true
check "the new certificate verifies" openssl verify -CAfile "$CA/root.pem" -untrusted "$CA/chain.pem" "$WORK/cam1-rekey.pem"
check_eq "the old certificate is superseded" "superseded" "$(sql "$DB" "select status from certificates where cert_serial_hex=lower('$SERIAL') or upper(cert_serial_hex)=upper('$SERIAL')")"
check_eq "the superseded certificate can no longer re-enroll: 401" 401 "$(est_post simplereenroll "$WORK/cam1-rekey.b64" "$WORK/r" --cert "$WORK/cam1.pem" --key "$WORK/cam1.key")"
make_csr "$WORK/steal" "/serialNumber=CAM0003/CN=x"
check_eq "a device cannot re-enroll another serial: 403" 403 "$(est_post simplereenroll "$WORK/steal.b64" "$WORK/r" --cert "$WORK/cam1-rekey.pem" --key "$WORK/cam1-rekey.key")"

# Paths as sent, not as a careless decoder reads them: an escaped NUL does not end the path (it once made
# "simpleenroll%00" enroll), a raw control character is refused, and HEAD is GET without the body.
make_csr "$WORK/cam3" "/serialNumber=CAM0003/CN=x"
check_eq "simpleenroll%00: 404, nothing issued" "404 0" \
  "$(est_post 'simpleenroll%00' "$WORK/cam3.b64" "$WORK/r" "${STATION[@]}") $(sql "$DB" "select count(*) from certificates where device_serial='CAM0003'")"
check_eq "simpleenroll%00x and %0a: 404 too" "404 404" \
  "$(est_post 'simpleenroll%00x' "$WORK/cam3.b64" "$WORK/r" "${STATION[@]}") $(est_post 'simpleenroll%0a' "$WORK/cam3.b64" "$WORK/r" "${STATION[@]}")"
check_eq "... while an escaped ordinary letter still names the route (simpleenrol%6C): 200" 200 \
  "$(est_post 'simpleenrol%6C' "$WORK/cam3.b64" "$WORK/r" "${STATION[@]}")"
code=$(curl -s -o "$WORK/r" -w '%{http_code}' --cacert "$CA/ops-root.pem" --request-target $'/.well-known/est/cacerts\x01' "https://localhost:$PORT/" || true)
check_eq "a raw control character in the path: 400" 400 "$code"
check "... saying so" grep -q 'control character in the URL' "$WORK/r"
code=$(curl -s -o "$WORK/r" -w '%{http_code}' --cacert "$CA/ops-root.pem" --request-target $'/log/proof/inclusion?serial=ab\x01cd' "https://localhost:$PORT/" || true)
check_eq "... or in a query argument: 400" 400 "$code"
head_of() { # head_of PATH: "STATUS CONTENT-LENGTH BYTES-OF-BODY" of a HEAD request
  curl -s --head -o "$WORK/head" -w '%{http_code} %{size_download}' --cacert "$CA/ops-root.pem" "https://localhost:$PORT$1" |
    { read -r code _; echo "$code $(grep -i '^content-length:' "$WORK/head" | tr -dc 0-9) $(sed -n '/^\r$/,$p' "$WORK/head" | tail -n +2 | wc -c)"; }
}
check_eq "HEAD cacerts: 200, the length of the GET answer, no body" "200 $(stat -c %s "$WORK/cacerts.b64") 0" "$(head_of /.well-known/est/cacerts)"
check_eq "HEAD of csrattrs, /crl and /log/sth: 200 each" "200 200 200" \
  "$(for p in /.well-known/est/csrattrs /crl /log/sth; do head_of "$p" | cut -d' ' -f1; done | paste -sd' ')"
check_eq "HEAD simpleenroll: 405 as GET is" 405 "$(head_of /.well-known/est/simpleenroll | cut -d' ' -f1)"

# The request log line: every value from outside quoted, so that a path cannot write fields of its own.
curl -s -o /dev/null --cacert "$CA/ops-root.pem" --request-target '/x status=200 result="forged" client=\"a' "https://localhost:$PORT/" || true
line=$(grep 'event=request' "$WORK/server.log" | grep 'forged' | tail -1)
check_eq "a path with spaces and quotes is one quoted field: path, then the real status" \
  '/x status=200 result="forged" client=\"a|404|1' \
  "$(python3 - "$line" <<'PY'
import re, sys
# logfmt: key=value, a value either bare or in double quotes with \" and \\ escaped
fields = re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', sys.argv[1])
unquote = lambda v: re.sub(r'\\(.)', r'\1', v[1:-1]) if v.startswith('"') else v
d = {k: unquote(v) for k, v in fields}
print("%s|%s|%d" % (d.get("path"), d.get("status"), [k for k, _ in fields].count("status")))
PY
)"

requests=$(grep -c 'event=request' "$WORK/server.log")
check "one structured log line per request" test "$requests" -ge 25
check "log lines carry status and reason" grep -q 'status=409 client="line1" result="' "$WORK/server.log"
kill -TERM "$SERVER_PID"; rc=0; wait "$SERVER_PID" || rc=$?; SERVER_PID=
check_eq "SIGTERM stops the server cleanly" 0 "$rc"
[ "$rc" = 0 ] || tail -60 "$WORK/server.log"

# load_run COUNT SERIALS [BENCH OPTIONS]: the enrollment bench's load (8 keep-alive connections, fresh keys) against
# the CA, its result line in LOAD_OUT; load_field KEY: one value of it.
load_run() {
  LOAD_OUT=$("$CAMTRUST_TEST_LOAD" --mode est --host 127.0.0.1 --port "$PORT" --server-name localhost --conns 8 \
    --count "$1" --serials "$2" --cert "$WORK/station.pem" --key "$WORK/station.key" --cafile "$CA/ops-root.pem" \
    "${@:3}" 2>/dev/null || true)
}
load_field() { tr ' ' '\n' <<<"$LOAD_OUT" | sed -n "s/^$1=//p"; }

# A crash after a batch of issuances is committed, before its sync (where a power cut would lose it): nobody in
# that batch, neither the leader nor those waiting on it, has an answer yet. Eight keep-alive connections (the
# enrollment bench's load) so that batches hold several requests; the failpoint takes the first batch of two or more.
printf 'CRASH%03d\n' $(seq 1 400) >"$WORK/crash-serials.txt"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX100 --serials "$WORK/crash-serials.txt" >/dev/null
export CAMTRUST_FAILPOINT=db:issuance-unsynced
start_ca "$CA"
unset CAMTRUST_FAILPOINT
load_run 400 "$WORK/crash-serials.txt"
rc=0; kill -0 "$SERVER_PID" 2>/dev/null && kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || rc=$?; SERVER_PID=
check_eq "a crash between a batch's commit and its sync: the server died there" 137 "$rc"
answered=$(load_field ok)
recorded=$(sql "$DB" "select count(*) from certificates where device_serial like 'CRASH%'")
check "... the batch was recorded, none of it answered ($recorded recorded, ${answered:-?} answered)" \
  test "$((recorded - ${answered:-recorded}))" -ge 2
start_ca "$CA"
make_csr "$WORK/crash400" "/serialNumber=CRASH400/CN=x"
check_eq "... restarted, it issues again" 200 "$(est_post simpleenroll "$WORK/crash400.b64" "$WORK/r" "${STATION[@]}")"
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=

# A power cut. A killed process loses nothing it wrote (the page cache keeps it): the crash above cannot show that an
# answer left before its data was on disk. tests/helpers/powercut.c, preloaded, keeps every write to the database
# and its WAL in memory until an fsync/fdatasync of the file: a kill -9 then loses what was not synced, as a power
# cut does. SQLite only (PostgreSQL's server syncs its own commits).
if on_sqlite; then
  # The shim first: a row committed, then kill -9, with SQLite syncing or not (NORMAL leaves the WAL unsynced at
  # commit, hence the CA's own fdatasync).
  powercut_rows() { # powercut_rows SYNCHRONOUS PRELOAD: the rows left
    local d=$WORK/pc-self; rm -rf "$d"; mkdir "$d"
    sqlite3 "$d/t.db" "PRAGMA journal_mode=WAL; CREATE TABLE t(v)" >/dev/null
    printf 'PRAGMA synchronous=%s;\nINSERT INTO t VALUES(1);\n.shell kill -9 $PPID\n' "$1" |
      LD_PRELOAD=$2 POWERCUT_PATH=$d/t.db sqlite3 "$d/t.db" >/dev/null 2>&1 || true
    sqlite3 "$d/t.db" "SELECT count(*) FROM t"
  }
  check_eq "power-cut shim: synchronous=OFF, kill -9: the commit lost under the shim, kept without it (a process crash)" \
    "0 1" "$(powercut_rows OFF "$CAMTRUST_TEST_POWERCUT") $(powercut_rows OFF '')"
  check_eq "... NORMAL: lost; FULL: kept" "0 1" \
    "$(powercut_rows NORMAL "$CAMTRUST_TEST_POWERCUT") $(powercut_rows FULL "$CAMTRUST_TEST_POWERCUT")"

  # The CA under load, on a slow disk (2 ms a write, 10 ms once the cut began: commits take long enough for batches
  # of several issuances to form); the 20th sync made by a request (a connection thread of libmicrohttpd's, "MHD-connection": a group
  # commit's, not the log signer's) hangs, as on a disk losing power while it writes, and so does every later sync;
  # a second later the shim kills the CA with SIGKILL: whatever was answered meanwhile, before its sync, would be
  # lost. Should that sync never come (a CA that does not sync), the test cuts the power itself after 300 answers.
  printf 'PWR%03d\n' $(seq 1 401) >"$WORK/pwr-serials.txt"
  "$CA_BIN" order create --dir "$CA" --station line1 --model CX100 --serials "$WORK/pwr-serials.txt" >/dev/null
  LD_PRELOAD=$CAMTRUST_TEST_POWERCUT POWERCUT_PATH=$DB POWERCUT_AT_SYNC=20 POWERCUT_THREAD=MHD-connection POWERCUT_WRITE_US=2000 POWERCUT_DELAY_MS=1000 \
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 start_ca "$CA"
  : >"$WORK/pwr-answered.txt"
  load_run 400 "$WORK/pwr-serials.txt" --answered "$WORK/pwr-answered.txt" &
  LOAD_PID=$!
  for _ in $(seq 1 1200); do # up to 60 s (the loop ends when the shim kills the CA; an ASan load on a loaded machine
    # made its 400 CSRs and first batches slowly enough once that 30 s ended it before any answer)
    kill -0 "$SERVER_PID" 2>/dev/null && kill -0 "$LOAD_PID" 2>/dev/null || break
    [ "$(wc -l <"$WORK/pwr-answered.txt")" -lt 300 ] || kill -KILL "$SERVER_PID" 2>/dev/null || true
    sleep 0.05
  done
  kill -KILL "$SERVER_PID" 2>/dev/null || true # (a load that could not run: no cut by the shim, said below)
  rc=0; wait "$SERVER_PID" || rc=$?; SERVER_PID=
  wait "$LOAD_PID" || true
  answered=$(wc -l <"$WORK/pwr-answered.txt")
  check "the power cut came mid-load: the CA was killed ($rc) with $answered of 400 answered" \
    test "$rc" = 137 -a "$answered" -gt 0 -a "$answered" -lt 400
  cut=$(grep -o 'power cut at sync 20: [0-9]* bytes' "$WORK/server.log" || true)
  check "... at a request's 20th sync, the writes not synced dropped (${cut:-no cut by the shim})" test -n "$cut"
  # Without the shim. (|| : start_ca ends the script silently, set -e inside it, when the server cannot start.)
  restarted=0; start_ca "$CA" >/dev/null || restarted=$?
  check_eq "... restarted without it, the CA serves" "0 " "$restarted $(grep -m1 -o 'reason=.*' "$WORK/server.log" || true)"
  missing="nothing answered"
  [ "$answered" -eq 0 ] || missing=$(sql "$DB" "SELECT s FROM (SELECT column1 AS s FROM (VALUES $(sed "s/.*/('&')/" \
    "$WORK/pwr-answered.txt" | paste -sd,))) WHERE NOT EXISTS
    (SELECT 1 FROM certificates c JOIN log_leaves l ON l.cert_serial_hex = c.cert_serial_hex JOIN audit a ON
     a.action = 'cert.issue' AND a.outcome = 'ok' AND a.subject = c.device_serial WHERE c.device_serial = s)" | paste -sd' ')
  check_eq "... every certificate answered 200 is in the database, its log leaf and audit entry too" \
    "" "$missing"
  check "... audit verify: intact" "$CA_BIN" audit verify --dir "$CA"
  make_csr "$WORK/pwr401" "/serialNumber=PWR401/CN=x"
  check_eq "... it issues again" 200 "$(est_post simpleenroll "$WORK/pwr401.b64" "$WORK/r" "${STATION[@]}")"
  [ "$restarted" = 0 ] || { finish || exit 1; }
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=
fi
# Every commit's sync fails: no answer is 200, neither the leaders' nor those that waited on them, though the
# commits were made (a re-sent request then gets the certificate recorded).
printf 'SYNC%03d\n' $(seq 1 64) >"$WORK/sync-serials.txt"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX100 --serials "$WORK/sync-serials.txt" >/dev/null
export CAMTRUST_FAILPOINT=db:issuance-sync-fails
start_ca "$CA"
unset CAMTRUST_FAILPOINT
load_run 64 "$WORK/sync-serials.txt"
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=
check_eq "every sync failing: no request answered 200" 0 "$(load_field ok)"
check_eq "... each answered an error" 64 "$(load_field failed)"
check "... though the commits were made" test "$(sql "$DB" "select count(*) from certificates where device_serial like 'SYNC%'")" -gt 0

check "audit verify: intact" "$CA_BIN" audit verify --dir "$CA"
# An attacker with the database file edits history: the chain names the entry (the file: SQLite only).
if on_sqlite; then
  for t in $(sqlite3 "$DB" "select name from sqlite_master where type='trigger' and tbl_name='audit'"); do sqlite3 "$DB" "drop trigger $t"; done
  sqlite3 "$DB" "update audit set detail='nothing to see' where seq=3;"
  out=$("$CA_BIN" audit verify --dir "$CA" || true)
  check "audit verify names the edited entry" grep -q 'entry 3' <<<"$out"
  check "audit verify exits non-zero on a broken chain" bash -c "! '$CA_BIN' audit verify --dir '$CA' >/dev/null"
fi
finish
