#!/usr/bin/env bash
# Outside text reaching terminals: a station's CSRs whose serialNumber holds the C1 control CSI (0x9b, which xterm
# and VTE act on like ESC '[') in UTF-8 (U+009B, bytes c2 9b) and as a raw byte, each followed by "2J" (clear the
# screen), are refused (400), and the CSI reaches none of: the refusal the station reads, the CA's log line, the
# officer's `audit report` table. Only C0 controls were replaced before: the CSI got through to all three.
# Usage: terminal_text.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
ca_create "$CA" >/dev/null
station_with_order line1 CAM0001
start_ca "$CA"
# CSRs well signed by their own keys: subject serialNumber = UTF8String "CAM" U+009B "2J" / TeletexString "CAM" 0x9b
# "2J" (a byte that is not UTF-8), CN = "x".
python3 - "$WORK/utf8.der" "$WORK/raw.der" <<'PY'
import sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
def tlv(tag, body):
    n = len(body)
    return bytes([tag]) + (bytes([n]) if n < 0x80 else bytes([0x81, n]) if n < 0x100 else bytes([0x82, n >> 8, n & 0xff])) + body
for path, tag, serial in ((sys.argv[1], 0x0c, b"CAM\xc2\x9b2J"), (sys.argv[2], 0x14, b"CAM\x9b2J")):
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    attr = lambda oid, tag, value: tlv(0x31, tlv(0x30, bytes([0x06, 0x03, 0x55, 0x04, oid]) + tlv(tag, value)))
    cri = tlv(0x30, bytes([0x02, 0x01, 0x00]) + tlv(0x30, attr(5, tag, serial) + attr(3, 0x0c, b"x")) + spki + b"\xa0\x00")
    alg = tlv(0x30, bytes([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]))
    open(path, "wb").write(tlv(0x30, cri + alg + tlv(0x03, b"\x00" + key.sign(cri, ec.ECDSA(hashes.SHA256())))))
PY
# no_csi FILE: FILE holds no byte 0x9b (the CSI raw, or the second byte of its UTF-8 form), so no C1 CSI at all
no_csi() { ! LC_ALL=C grep -q $'\x9b' "$1"; }
for form in utf8 raw; do
  check "the $form CSR is well formed and signed (openssl)" openssl req -inform DER -in "$WORK/$form.der" -noout -verify
  base64 "$WORK/$form.der" >"$WORK/$form.b64"
  check_eq "a serialNumber with a CSI ($form): 400" 400 \
    "$(est_post simpleenroll "$WORK/$form.b64" "$WORK/$form.answer" --cert "$WORK/station.pem" --key "$WORK/station.key")"
  check "... the refusal the station reads names it" grep -q "serialNumber 'CAM?*2J' is not a device serial" "$WORK/$form.answer"
  check "... without the CSI" no_csi "$WORK/$form.answer"
done
check "the UTF-8 CSI as '??', the raw byte as '?'" bash -c \
  "grep -q \"'CAM??2J'\" '$WORK/utf8.answer' && grep -q \"'CAM?2J'\" '$WORK/raw.answer'"
cleanup_server
check "the CA's log lines name both refusals" bash -c "[ \$(grep -c 'CAM?*2J' '$WORK/server.log') -ge 2 ]"
check "... without the CSI" no_csi "$WORK/server.log"
"$CA_BIN" audit report --dir "$CA" >"$WORK/report.txt"
check "the officer's audit report lists both denials" bash -c "[ \$(grep -c 'CAM?*2J' '$WORK/report.txt') -ge 2 ]"
check "... without the CSI" no_csi "$WORK/report.txt"
check "the chain verifies" "$CA_BIN" audit verify --dir "$CA"
finish
