#!/usr/bin/env bash
# A viewer revoked after the operations issuing CA was rotated gets no key. Each generation signs its own CRL, and
# `camtrust-ca crl ops` writes the current one's: put beside viewers of the older generation, it judged none of
# them, and the camera went on wrapping every key for the revoked viewer, with no word (the CRL judged the current
# generation's viewers, so it passed as "the viewers' CA's"). Now a folder with CRLs must hold one of every
# viewer's issuing CA, or the camera refuses it in one line naming the viewer (and stops a stream). A real CA and
# key ceremony (rotation signed by the vault), viewers' keys in their own tokens, the real camera agent.
# Usage: viewer_generations.sh BUILD_DIR
. "$(dirname "$0")/build_lib.sh" "$1"
command -v ffmpeg >/dev/null || { echo "ffmpeg is required (deploy/install-deps test)"; exit 1; }

CA=$WORK/ca V=$WORK/vault
ca_create "$CA" >/dev/null
vault_quorum "$V"
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
fp() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
no_output() { [ ! -e "$1" ] && [ -z "$(ls "$1".* 2>/dev/null)" ]; }

# alice and bob certified by the first operations issuing CA; then it is rotated, carol certified by the second.
viewer_make alice bob
cp "$CA/ops-issuing.pem" "$WORK/ops1.pem"
ops_rotate "$WORK/ops2.pem"
viewer_make carol
check "bob is of the first generation, carol of the second (openssl)" bash -c "
  openssl verify -CAfile '$CA/ops-root.pem' -untrusted '$WORK/ops1.pem' '$WORK/bob.pem' &&
  openssl verify -CAfile '$CA/ops-root.pem' -untrusted '$WORK/ops2.pem' '$WORK/carol.pem' &&
  ! openssl verify -CAfile '$CA/ops-root.pem' -untrusted '$WORK/ops2.pem' '$WORK/bob.pem' 2>/dev/null"

CAM=$WORK/cam
viewer_camera "$CAM" SN7001
mkdir -p "$WORK/viewers"
rec() { "$AGENT_BIN" record --dir "$CAM" --viewers "$WORK/viewers" "$WORK/clip.h264" "$1"; } # rec OUT
cp "$WORK/alice.pem" "$WORK/bob.pem" "$WORK/carol.pem" "$WORK/viewers/"
rec "$WORK/before.mp4" >/dev/null
check "before any revocation bob decrypts" "$VIEW_BIN" decrypt --dir "$WORK/bob" "$WORK/before.mp4" "$WORK/bob0.mp4"

# The owner removes bob as the README says: revoke him, put the operations CRL in the folder.
"$CA_BIN" revoke --dir "$CA" "$(serial_of "$WORK/bob.pem")" --reason privilegeWithdrawn >/dev/null
"$CA_BIN" crl ops --dir "$CA" --out "$WORK/viewers/ops.crl" >/dev/null
check "crl ops is the second generation's (signed by it) and does not list bob" bash -c "
  openssl crl -inform DER -in '$WORK/viewers/ops.crl' -CAfile <(cat '$WORK/ops2.pem' '$CA/ops-root.pem') -noout 2>&1 |
    grep -q 'verify OK' &&
  ! openssl crl -inform DER -in '$WORK/viewers/ops.crl' -noout -text | grep -qi '$(serial_of "$WORK/bob.pem")'"
out=$(rec "$WORK/x.mp4" 2>&1) && rc=0 || rc=$?
rm -f "$WORK/bob.mp4"
[ -e "$WORK/x.mp4" ] && "$VIEW_BIN" decrypt --dir "$WORK/bob" "$WORK/x.mp4" "$WORK/bob.mp4" >/dev/null 2>&1 || true
check "the revoked bob gets no key of the new recording" no_output "$WORK/bob.mp4"
check "only the current generation's CRL: refused in one line naming a viewer of the older one (alice.pem)" bash -c \
  "[ $rc = 1 ] && [ \$(wc -l <<<\"\$0\") = 1 ] && grep -q 'alice.pem: no CRL of its issuing CA' <<<\"\$0\"" "$out"
check "  ... and no output is left" no_output "$WORK/x.mp4"

# With the first generation's CRL too, bob is left out (named), alice and carol watch.
"$CA_BIN" crl ops --generation 1 --dir "$CA" --out "$WORK/viewers/ops-1.crl" >/dev/null
out=$(rec "$WORK/after.mp4" 2>&1) && rc=0 || rc=$?
check "with both generations' CRLs it records, bob left out with a warning naming him" bash -c "[ $rc = 0 ] &&
  grep -q 'event=viewer_revoked viewer=\"bob\" file=\"bob.pem\".* crl=\"ops-1.crl\"' <<<\"\$0\"" "$out"
"$VIEW_BIN" keys --dir "$WORK/alice" "$WORK/after.mp4" >"$WORK/keys.out"
check "  ... alice and carol are the recipients, bob is not" bash -c "
  [ \$(awk '\$1 == \"kid\" {print \$4}' '$WORK/keys.out') = 2 ] && grep -q '$(fp "$WORK/alice.pem")' '$WORK/keys.out' &&
  grep -q '$(fp "$WORK/carol.pem")' '$WORK/keys.out' && ! grep -q '$(fp "$WORK/bob.pem")' '$WORK/keys.out'"
for v in alice carol; do
  check "  ... $v decrypts" "$VIEW_BIN" decrypt --dir "$WORK/$v" "$WORK/after.mp4" "$WORK/$v.mp4"
done
rm -f "$WORK/bob.mp4"
check "  ... bob's decrypt is refused, no output" bash -c "! '$VIEW_BIN' decrypt --dir '$WORK/bob' '$WORK/after.mp4' \
  '$WORK/bob.mp4' 2>/dev/null && [ ! -e '$WORK/bob.mp4' ]"

# Only the older generation's CRL, carol's generation without one: refused the same way, naming carol.
rm "$WORK/viewers/ops.crl"
out=$(rec "$WORK/x.mp4" 2>&1) && rc=0 || rc=$?
check "only the first generation's CRL: refused, naming carol.pem" bash -c \
  "[ $rc = 1 ] && grep -q 'carol.pem: no CRL of its issuing CA' <<<\"\$0\"" "$out"
# No CRL at all, once the camera took one: refused too (deleting the CRLs must not bring bob back;
# viewer_crl_memory.sh). A camera that never took a CRL records for all its viewers (media_encrypt.sh).
rm "$WORK/viewers/ops-1.crl"
out=$(rec "$WORK/none.mp4" 2>&1) && rc=0 || rc=$?
check "no CRL at all after the camera took some: refused, naming alice.pem, no output" bash -c "[ $rc = 1 ] &&
  grep -q 'alice.pem: no CRL of its issuing CA' <<<\"\$0\" && [ ! -e '$WORK/none.mp4' ]" "$out"
finish
