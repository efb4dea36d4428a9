#!/usr/bin/env bash
# A CA folder made before offline roots (tests/vectors/legacy-ca: its roots in its own token) keeps working: it
# opens, migrates, issues under its issuing CA (recorded as generation 1), serves; `audit verify` and the server's
# start-up warn once that its roots are online. Usage: legacy_roots.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"
tar -xzf "$(dirname "$0")/../vectors/legacy-ca/legacy-ca.tar.gz" -C "$WORK"
CA=$WORK/legacy-ca
sed -i "s|^directories.tokendir = .*|directories.tokendir = $CA/tokens|" "$CA/softhsm2.conf"
SOFTHSM2_CONF=$CA/softhsm2.conf pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label camtrust-ca --login \
  --pin "$(cat "$CA/secrets/user.pin")" --list-objects --type privkey 2>/dev/null >"$WORK/objects"
check "the fixture's token holds its roots (the state this covers)" grep -q "label: *device-root" "$WORK/objects"

rc=0; "$CA_BIN" audit verify --dir "$CA" >"$WORK/out" 2>"$WORK/err" || rc=$?
check_eq "audit verify of the old folder passes" 0 "$rc"
check_eq "... and warns once that its roots are online" 1 "$(grep -c '^WARNING: .*holds the device and operations root keys' "$WORK/out")"
check_eq "its issuing CAs are recorded as generation 1 from its folder" "device|1 ops|1" \
  "$(sql "$CA/camtrust.db" "select kind, generation from issuing_cas order by kind" | tr '\n' ' ' | sed 's/ $//')"
serial() { openssl x509 -in "$CA/$1" -noout -serial | cut -d= -f2 | tr A-F a-f; }
check_eq "the CA's own certificates in use are recorded at its first open (OCSP answers for them), generation 1" \
  "server.pem|ca-tls|valid|1 ocsp-signer.pem|ca-ocsp|valid|1 log.pem|ca-log|valid|1" \
  "$(for f in server.pem ocsp-signer.pem log.pem; do sql "$CA/camtrust.db" "select c.device_serial, c.profile, c.status,
     g.generation from certificates c join issuing_cas g on g.id = c.issuing_ca where c.cert_serial_hex = '$(serial $f)'"
     done | tr '\n' ' ' | sed 's/ $//')"

start_ca "$CA"
check_eq "the server warns once at start" 1 "$(grep -c 'event=roots_online' "$WORK/server.log")"
make_csr "$WORK/cam1" "/serialNumber=OLD001/CN=x"
check_eq "it still issues to its station's order" 200 \
  "$(est_post simpleenroll "$WORK/cam1.b64" "$WORK/cam1.p7b64" --cert "$WORK/station.pem" --key "$WORK/station.key")"
base64 -d "$WORK/cam1.p7b64" | openssl pkcs7 -inform DER -print_certs -out "$WORK/cam1.pem" 2>/dev/null
check "... a certificate that chains to its root.pem" openssl verify -CAfile "$CA/root.pem" -untrusted "$CA/chain.pem" "$WORK/cam1.pem"
check_eq "... recorded as signed by generation 1" "1" \
  "$(sql "$CA/camtrust.db" "select g.generation from certificates c join issuing_cas g on g.id = c.issuing_ca where c.device_serial = 'OLD001'")"
cleanup_server
check "a rotation works there too (a new key and request)" "$CA_BIN" rotate --dir "$CA" device-issuing
finish
