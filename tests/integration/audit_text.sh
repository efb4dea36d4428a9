#!/usr/bin/env bash
# Outside text that is not UTF-8 in what the audit keeps: a station's CSR whose serialNumber holds such bytes (a
# TeletexString of 0xff 0xfe and a terminal escape) is refused (400) and that refusal is audited, with the bytes as
# '?', on SQLite as on PostgreSQL (which refuses such bytes: the refusal went unaudited, "a denial not audited").
# Usage: audit_text.sh PATH/TO/camtrust-ca (under tests/helpers/pg.sh with CAMTRUST_TEST_DB=postgresql: PostgreSQL)
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
DB=$CA/camtrust.db
ca_create "$CA" >/dev/null
station_with_order line1 CAM0001
start_ca "$CA"
# The CSR, well signed by its own key: subject serialNumber = T61String "CAM" 0xff 0xfe ESC "[2J", CN = "x".
python3 - "$WORK/csr.der" <<'PY'
import sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
def tlv(tag, body):
    n = len(body)
    return bytes([tag]) + (bytes([n]) if n < 0x80 else bytes([0x81, n]) if n < 0x100 else bytes([0x82, n >> 8, n & 0xff])) + body
key = ec.generate_private_key(ec.SECP256R1())
spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
attr = lambda oid, tag, value: tlv(0x31, tlv(0x30, bytes([0x06, 0x03, 0x55, 0x04, oid]) + tlv(tag, value)))
cri = tlv(0x30, bytes([0x02, 0x01, 0x00]) + tlv(0x30, attr(5, 0x14, b"CAM\xff\xfe\x1b[2J") + attr(3, 0x0c, b"x")) + spki + b"\xa0\x00")
alg = tlv(0x30, bytes([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]))
open(sys.argv[1], "wb").write(tlv(0x30, cri + alg + tlv(0x03, b"\x00" + key.sign(cri, ec.ECDSA(hashes.SHA256())))))
PY
check "the CSR is well formed and signed (openssl)" openssl req -inform DER -in "$WORK/csr.der" -noout -verify
base64 "$WORK/csr.der" >"$WORK/csr.b64"
before=$(audited_refusals "$DB")
check_eq "a serialNumber that is not UTF-8: 400" 400 \
  "$(est_post simpleenroll "$WORK/csr.b64" "$WORK/r" --cert "$WORK/station.pem" --key "$WORK/station.key")"
check_eq "... the refusal audited at once" $((before + 1)) "$(audited_refusals "$DB")"
check_eq "... by the station, the bytes as '?' (the escape's own bytes are UTF-8: kept, the console and exports escape them)" \
  "line1|est.enroll|CAM??$(printf '\033')[2J|denied" \
  "$(sql "$DB" "select actor, action, subject, outcome from audit where outcome = 'denied' order by seq desc limit 1")"
check "... and no 'denial not audited' in the server's log" bash -c "! grep -q 'not audited' '$WORK/server.log'"
cleanup_server
check "the chain verifies" "$CA_BIN" audit verify --dir "$CA"
finish
