#!/usr/bin/env bash
# A camera's viewers folder cannot bring a revoked viewer back. (1) The operations root's CRL, made at a ceremony
# revoking a compromised operations issuing CA, was refused by the camera ("not a CRL of the viewers' operations
# issuing CA"), so the viewers that CA certified kept getting keys; now it is taken and they are left out, each
# named. (2) The camera kept no record of the CRLs it took: an older CRL put back, or the CRL deleted, brought a
# revoked viewer back; now it remembers the newest CRL of each issuer (crl.seen in its folder) and refuses such a
# folder in one line. A real CA and key ceremony (vault), viewers' keys in their own tokens, the real camera agent.
# Usage: viewer_crl_memory.sh BUILD_DIR
. "$(dirname "$0")/build_lib.sh" "$1"
command -v ffmpeg >/dev/null || { echo "ffmpeg is required (deploy/install-deps test)"; exit 1; }

CA=$WORK/ca V=$WORK/vault VW=$WORK/viewers
ca_create "$CA" >/dev/null
vault_quorum "$V"
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
no_output() { [ ! -e "$1" ] && [ -z "$(ls "$1".* 2>/dev/null)" ]; }
# The camera orders CRLs of one issuer by thisUpdate (whole seconds): the next CRL must be made a second later.
next_second() { sleep 1; }

viewer_make alice bob
CAM=$WORK/cam
viewer_camera "$CAM" SN7101
mkdir -p "$VW"
cp "$WORK/alice.pem" "$WORK/bob.pem" "$VW/"
rec() { "$AGENT_BIN" record --dir "$CAM" --viewers "$VW" "$WORK/clip.h264" "$1"; } # rec OUT
# gets_key VIEWER FILE: the viewer decrypts FILE (a recording that exists)
gets_key() {
  rm -f "$WORK/$1.mp4"
  [ -e "$2" ] && "$VIEW_BIN" decrypt --dir "$WORK/$1" "$2" "$WORK/$1.mp4" >/dev/null 2>&1 && [ -s "$WORK/$1.mp4" ]
}
no_key() { ! gets_key "$@"; }
# refused_rec WHAT PATTERN: the recording is refused in one line matching PATTERN, bob and alice get nothing
refused_rec() {
  local out rc
  rm -f "$WORK/x.mp4"
  out=$(rec "$WORK/x.mp4" 2>&1) && rc=0 || rc=$?
  check "$1: refused in one line" bash -c "[ $rc = 1 ] && [ \$(wc -l <<<\"\$0\") = 1 ] && grep -q '$2' <<<\"\$0\"" \
    "$out"
  check "  ... no recording, no key for anyone" no_output "$WORK/x.mp4"
}

# ---- (2) an older CRL put back, or the CRL deleted ----
"$CA_BIN" crl ops --dir "$CA" --out "$WORK/plain.crl" >/dev/null
cp "$WORK/plain.crl" "$VW/ops.crl"
rec "$WORK/r0.mp4" >/dev/null
check "with the operations CRL revoking no one, bob decrypts" gets_key bob "$WORK/r0.mp4"
next_second
"$CA_BIN" revoke --dir "$CA" "$(serial_of "$WORK/bob.pem")" --reason privilegeWithdrawn >/dev/null
"$CA_BIN" crl ops --dir "$CA" --out "$VW/ops.crl" >/dev/null
rec "$WORK/r1.mp4" >/dev/null 2>&1 || true
check "bob revoked: alice decrypts the new recording" gets_key alice "$WORK/r1.mp4"
check "  ... bob gets no key" no_key bob "$WORK/r1.mp4"
check "the camera keeps its memory of the CRLs in its own folder" test -s "$CAM/crl.seen"
cp "$VW/ops.crl" "$WORK/revoking.crl"
cp "$WORK/plain.crl" "$VW/ops.crl"
refused_rec "the older CRL (revoking no one) put back" "ops.crl: CRL missing or older than one taken"
rm "$VW/ops.crl"
refused_rec "the CRL deleted" "alice.pem: no CRL of its issuing CA here"
# The issuing CA's certificate in bob's own file, its ECDSA signature (r, s) made (r, n - s): as valid, other bytes.
# The camera named an issuer by its certificate's last 32 bytes (the signature's), so this issuer was a new one
# with no memory, and the older CRL put back brought bob back; an issuer is its key (the SPKI's SHA-256).
python3 - "$WORK/bob.pem" "$VW/bob.pem" <<'PY'
import base64, re, sys
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
ORDER = {256: 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
         384: int("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf"
                  "581a0db248b0a77aecec196accc52973", 16)}
def tlv(tag, body):
    n, w = len(body), (len(body).bit_length() + 7) // 8
    return bytes([tag]) + (bytes([n]) if n < 128 else bytes([0x80 | w]) + n.to_bytes(w, "big")) + body
def elements(der):  # the DER elements of a SEQUENCE's body, each whole
    out, i = [], 0
    while i < len(der):
        n, j = der[i + 1], i + 2
        if n & 0x80: n, j = int.from_bytes(der[j:j + (n & 0x7F)], "big"), j + (n & 0x7F)
        out.append(der[i:j + n]); i = j + n
    return out
pems = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n", open(sys.argv[1]).read(), re.S)
issuing = x509.load_pem_x509_certificate(pems[1].encode())
der = issuing.public_bytes(serialization.Encoding.DER)
tbs, alg, _ = elements(der[2 + (der[1] & 0x7F if der[1] & 0x80 else 0):])
r, s = decode_dss_signature(issuing.signature)
order = ORDER[384 if issuing.signature_hash_algorithm.name == "sha384" else 256]
new = tlv(0x30, tbs + alg + tlv(0x03, b"\0" + encode_dss_signature(r, order - s)))
lines = re.findall(".{1,64}", base64.b64encode(new).decode())
pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"
open(sys.argv[2], "w").write(pems[0] + pem)
PY
awk 'n==1{print} /END CERT/{n++}' "$VW/bob.pem" >"$WORK/issuing-resigned.pem"
check "the re-signed issuing CA certificate differs and verifies under the operations root (openssl)" bash -c "
  ! cmp -s '$VW/bob.pem' '$WORK/bob.pem' &&
  openssl verify -CAfile '$CA/ops-root.pem' '$WORK/issuing-resigned.pem' | grep -q ': OK'"
cp "$WORK/plain.crl" "$VW/ops.crl"
refused_rec "the older CRL put back, bob's issuing CA certificate re-signed" "ops.crl: CRL missing or older than one"
cp "$WORK/bob.pem" "$VW/bob.pem"
cp "$WORK/revoking.crl" "$VW/ops.crl"
rec "$WORK/r2.mp4" >/dev/null 2>&1 || true
check "the newest CRL back: it records again, alice decrypts" gets_key alice "$WORK/r2.mp4"
check "  ... bob does not" no_key bob "$WORK/r2.mp4"

# ---- (1) the operations root's CRL, revoking the first operations issuing CA at a ceremony ----
OPS1=$(serial_of "$CA/ops-issuing.pem")
"$CA_BIN" root crl --dir "$V" --root ops "${Q[@]}" --out "$WORK/root-plain.crl" >/dev/null
cp "$WORK/root-plain.crl" "$VW/ops-root.crl"
rec "$WORK/r3.mp4" >/dev/null 2>&1 || true
check "the operations root's CRL (revoking nothing) is taken: alice decrypts" gets_key alice "$WORK/r3.mp4"
ops_rotate "$WORK/ops2.pem"
viewer_make carol
cp "$WORK/carol.pem" "$VW/"
"$CA_BIN" crl ops --dir "$CA" --out "$VW/ops-2.crl" >/dev/null
next_second
"$CA_BIN" root crl --dir "$V" --root ops --revoke "$OPS1" --reason cACompromise "${Q[@]}" \
  --out "$VW/ops-root.crl" >/dev/null
check "the ceremony's CRL revokes the first operations issuing CA (openssl)" bash -c "
  openssl crl -inform DER -in '$VW/ops-root.crl' -noout -text | grep -qi 'Serial Number: $OPS1'"
out=$(rec "$WORK/r4.mp4" 2>&1) && rc=0 || rc=$?
check "with the root's CRL it records, alice (first generation) left out with a line naming her" bash -c "[ $rc = 0 ] &&
  grep -q 'event=viewer_revoked viewer=\"alice\" file=\"alice.pem\".* crl=\"ops-root.crl\"' <<<\"\$0\"" "$out"
check "  ... carol (second generation) decrypts" gets_key carol "$WORK/r4.mp4"
check "  ... alice gets no key" no_key alice "$WORK/r4.mp4"
cp "$VW/ops-root.crl" "$WORK/root-revoking.crl"
cp "$WORK/root-plain.crl" "$VW/ops-root.crl"
refused_rec "the root's older CRL put back" "ops-root.crl: CRL missing or older than one taken"
rm "$VW/ops-root.crl"
refused_rec "the root's CRL deleted" "viewers: CRL missing or older than one taken"
# Two recordings at once (a camera records while it streams): the first, held by strace as it writes its memory of
# the newer CRL, has taken it; the older CRL put back meanwhile must not be taken by the second.
CAM2=$WORK/cam2 VW2=$WORK/viewers2
viewer_camera "$CAM2" SN7102
mkdir -p "$VW2"
cp "$WORK/alice.pem" "$WORK/bob.pem" "$VW2/"
cp "$WORK/revoking.crl" "$VW2/ops.crl"
ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 strace -f -qq -o /dev/null -e trace=rename,renameat,renameat2 \
  -e inject=rename,renameat,renameat2:delay_enter=3000000 \
  "$AGENT_BIN" record --dir "$CAM2" --viewers "$VW2" "$WORK/clip.h264" "$WORK/c1.mp4" >/dev/null 2>&1 &
first=$!
for _ in $(seq 1 600); do ls "$CAM2"/crl.seen.tmp.* >/dev/null 2>&1 && break; sleep 0.05; done
check "the first recording is writing its memory of the CRLs" bash -c "ls '$CAM2'/crl.seen.tmp.* >/dev/null 2>&1"
cp "$WORK/plain.crl" "$VW2/ops.crl"
out=$("$AGENT_BIN" record --dir "$CAM2" --viewers "$VW2" "$WORK/clip.h264" "$WORK/c2.mp4" 2>&1) && rc=0 || rc=$?
wait "$first" || true
check "the second, started meanwhile with the older CRL, waits for it and is refused" bash -c "[ $rc = 1 ] &&
  grep -q 'ops.crl: CRL missing or older than one taken' <<<\"\$0\"" "$out"
check "  ... bob gets no key" no_key bob "$WORK/c2.mp4"
check "  ... the first recorded: alice decrypts it" gets_key alice "$WORK/c1.mp4"
check "  ... bob does not" no_key bob "$WORK/c1.mp4"
finish
