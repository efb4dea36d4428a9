# Shared by officer.sh and console.sh (after lib.sh): a CA with two stations, three orders, seven enrolled
# cameras, an auditor (alice) and a security officer (bob), served on loopback. Sets CA, DB.
CA=$WORK/ca
DB=$CA/camtrust.db

# new_client NAME: a key and CSR made by openssl, as a station or an officer makes them in its own token.
new_client() {
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/$1.key" -subj "/CN=$1" \
    -out "$WORK/$1.csr" 2>/dev/null
}

# enroll STATION SERIAL: one camera certificate over EST, kept as $WORK/SERIAL.pem.
enroll() {
  make_csr "$WORK/$2" "/serialNumber=$2/CN=x"
  est_post simpleenroll "$WORK/$2.b64" "$WORK/$2.p7b64" --cert "$WORK/$1.pem" --key "$WORK/$1.key" >/dev/null
  base64 -d "$WORK/$2.p7b64" | openssl pkcs7 -inform DER -print_certs -out "$WORK/$2.pem" 2>/dev/null || true
}

officer_setup() {
  ca_create "$CA" >/dev/null
  for s in line1 line2; do
    new_client "$s"
    "$CA_BIN" station add --dir "$CA" --name "$s" --csr "$WORK/$s.csr" --out "$WORK/$s.pem" >/dev/null
  done
  printf 'CAM0001\nCAM0002\nCAM0003\n' >"$WORK/o1.txt"
  printf 'CAM0005\nCAM0006\n' >"$WORK/o2.txt"
  printf 'CAM0010\nCAM0011\n' >"$WORK/o3.txt"
  "$CA_BIN" order create --dir "$CA" --station line1 --model CX100 --serials "$WORK/o1.txt" >/dev/null
  "$CA_BIN" order create --dir "$CA" --station line1 --model CX200 --serials "$WORK/o2.txt" >/dev/null
  "$CA_BIN" order create --dir "$CA" --station line2 --model CX100 --serials "$WORK/o3.txt" >/dev/null
  new_client alice
  new_client bob
  "$CA_BIN" officer add --dir "$CA" --name alice --role auditor --csr "$WORK/alice.csr" --out "$WORK/alice.pem" >/dev/null
  "$CA_BIN" officer add --dir "$CA" --name bob --role officer --csr "$WORK/bob.csr" --out "$WORK/bob.pem" >/dev/null
  start_ca "$CA"
  for s in CAM0001 CAM0002 CAM0003 CAM0005 CAM0006; do enroll line1 "$s"; done
  for s in CAM0010 CAM0011; do enroll line2 "$s"; done
}

# cert_serial DEVICE: the certificate serial (lower-case hex) the CA recorded for a device.
cert_serial() { sql "$DB" "select cert_serial_hex from certificates where device_serial='$1'"; }
