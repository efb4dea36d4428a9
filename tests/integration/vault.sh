#!/usr/bin/env bash
# The offline root vault end to end: a 2-of-3 ceremony with passphrase files, issuing CAs certified and checked by
# openssl, the roots' CRLs checked by openssl crl -CAfile, every refusal (too few shares, a wrong passphrase, a share
# of another vault, a tampered or forged share, a CSR asking more than its profile) leaving the vault, its token and
# its record byte for byte as they were, an edited, deleted or reordered record entry caught, and a vault.conf
# naming another PKCS#11 module than the record's init entry refused before the PIN is rebuilt.
# Usage: vault.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"
HERE=$(dirname "$0")

V=$WORK/vault
# The operator's config written before init (any PKCS#11 module could be named here): the fewest PBKDF2 iterations a
# vault takes, so that the test spends its time on ceremonies rather than on key stretching (the other vault below
# keeps the default).
mkdir -p "$V" && printf 'kdf.iterations = 100000\n' >"$V/vault.conf"
for i in 1 2 3; do printf 'custodian %s passphrase\n' "$i" >"$WORK/pass$i"; done
"$CA_BIN" root init --dir "$V" --custodians 3 --quorum 2 --passphrase-file "$WORK/pass1" \
  --passphrase-file "$WORK/pass2" --passphrase-file "$WORK/pass3" >"$WORK/out" 2>&1 || { cat "$WORK/out"; exit 1; }
check "root init keeps the operator's config" grep -q '^kdf.iterations = 100000' "$V/vault.conf"
check "root init writes both roots and one share per custodian" \
  test -s "$V/root.pem" -a -s "$V/ops-root.pem" -a -s "$V/custodian-1.share" -a -s "$V/custodian-3.share"
check "... no PIN file anywhere in the vault" bash -c "! grep -rlE '^[0-9a-f]{64}$' '$V' --exclude-dir=tokens"
check "... the share files are for their custodian only (0600)" test "$(stat -c %a "$V/custodian-2.share")" = 600
check "the device root is a self-signed CA for certificates and CRLs" \
  bash -c "openssl verify -x509_strict -CAfile '$V/root.pem' '$V/root.pem' &&
           openssl x509 -in '$V/root.pem' -noout -ext keyUsage | grep -q 'Certificate Sign, CRL Sign'"
check "... and so is the operations root" openssl verify -x509_strict -CAfile "$V/ops-root.pem" "$V/ops-root.pem"
check "the ceremony record verifies from the start" "$CA_BIN" root verify --dir "$V"
rc=0; "$CA_BIN" root init --dir "$V" --custodians 3 --quorum 2 >"$WORK/out" 2>&1 || rc=$?
check "init over an existing vault is refused" test "$rc" -ne 0
K=$WORK/killed
mkdir -p "$K" && cp "$V/vault.conf" "$K/vault.conf"
rc=0; CAMTRUST_FAILPOINT=root-init:shares "$CA_BIN" root init --dir "$K" --custodians 2 --quorum 2 \
  --passphrase-file "$WORK/pass1" --passphrase-file "$WORK/pass2" >/dev/null 2>&1 || rc=$?
check_eq "root init killed once the shares are written" 137 "$rc"
check_eq "... leaves the vault folder as it was (its config only)" "vault.conf" "$(ls "$K")"
check "... and the next init makes it whole" bash -c "'$CA_BIN' root init --dir '$K' --custodians 2 --quorum 2 \
  --curve P-384 --passphrase-file '$WORK/pass1' --passphrase-file '$WORK/pass2' >/dev/null &&
  '$CA_BIN' root verify --dir '$K' && test \$(ls -d '$WORK'/killed.init-* 2>/dev/null | wc -l) -eq 0"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout /dev/null -out "$WORK/k.csr" \
  -subj "/CN=Example Camera Maker Operations Issuing CA" 2>/dev/null
"$CA_BIN" root sign --dir "$K" --csr "$WORK/k.csr" --profile ops-issuing --share "$K/custodian-2.share" \
  --passphrase-file <(cat "$WORK/pass2") --share "$K/custodian-1.share" --passphrase-file "$WORK/pass1" \
  --out "$WORK/k.pem" >/dev/null # a passphrase through a pipe: it need never be written to a disk
check "--curve P-384: P-384 roots, certificates signed with ecdsa-with-SHA384, the record verifies" bash -c "
  openssl x509 -in '$K/ops-root.pem' -noout -text | grep -q 'NIST CURVE: P-384' &&
  openssl verify -x509_strict -CAfile '$K/ops-root.pem' '$WORK/k.pem' &&
  openssl x509 -in '$WORK/k.pem' -noout -text | grep -q 'Signature Algorithm: ecdsa-with-SHA384' &&
  '$CA_BIN' root verify --dir '$K'"

# sha of every file of the vault, its token store included: "the vault, its token and its record as they were"
fingerprint() { (cd "$V" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum; }
share() { echo "--share $V/custodian-$1.share --passphrase-file ${2:-$WORK/pass$1}"; }
# refused "description" PATTERN args...: exit 1, one line on stderr matching PATTERN, nothing written, vault unchanged
refused() {
  local what=$1 pattern=$2 before after rc=0; shift 2
  before=$(fingerprint)
  rm -f "$WORK/refused.out"
  "$CA_BIN" "$@" --out "$WORK/refused.out" >"$WORK/out" 2>"$WORK/err" || rc=$?
  after=$(fingerprint)
  if [ "$rc" -eq 1 ] && [ "$(wc -l <"$WORK/err")" -eq 1 ] && grep -q -- "$pattern" "$WORK/err" &&
     [ "$before" = "$after" ] && [ ! -e "$WORK/refused.out" ]; then ok "$what"
  else not_ok "$what (exit $rc, vault $( [ "$before" = "$after" ] && echo unchanged || echo CHANGED)): $(cat "$WORK/err")"; fi
}

csr() { # csr NAME SUBJECT [openssl req options]
  local name=$1 subj=$2; shift 2
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/$name.key" -subj "$subj" \
    -out "$WORK/$name.csr" "$@" 2>/dev/null
}
csr dev "/CN=Example Camera Maker Device Issuing CA"
csr ops "/CN=Example Camera Maker Operations Issuing CA"

# shellcheck disable=SC2046
"$CA_BIN" root sign --dir "$V" --csr "$WORK/dev.csr" --profile device-issuing $(share 1) $(share 3) \
  --out "$WORK/dev.pem" >"$WORK/out" 2>&1 || cat "$WORK/out"
check "root sign (shares 1 and 3) certifies the device issuing CA under root.pem" \
  openssl verify -x509_strict -CAfile "$V/root.pem" "$WORK/dev.pem"
TEXT=$(openssl x509 -in "$WORK/dev.pem" -noout -text)
check "... as a CA with pathLen 0, keyCertSign and cRLSign, AKI and SKI" bash -c \
  "grep -q 'CA:TRUE, pathlen:0' <<<\"\$0\" && grep -q 'Certificate Sign, CRL Sign' <<<\"\$0\" &&
   grep -q 'Authority Key Identifier' <<<\"\$0\" && grep -q 'Subject Key Identifier' <<<\"\$0\"" "$TEXT"
check "... for the key of the request" bash -c "diff <(openssl x509 -in '$WORK/dev.pem' -noout -pubkey) \
  <(openssl req -in '$WORK/dev.csr' -noout -pubkey)"
check "... that can issue a device certificate openssl accepts" bash -c "
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout '$WORK/cam.key' -subj /CN=cam \
    -out '$WORK/cam.csr' 2>/dev/null &&
  openssl x509 -req -in '$WORK/cam.csr' -CA '$WORK/dev.pem' -CAkey '$WORK/dev.key' -CAcreateserial -days 1 \
    -out '$WORK/cam.pem' 2>/dev/null &&
  openssl verify -CAfile '$V/root.pem' -untrusted '$WORK/dev.pem' '$WORK/cam.pem'"
"$CA_BIN" root sign --dir "$V" --csr "$WORK/ops.csr" --profile ops-issuing $(share 2) $(share 3) \
  --out "$WORK/ops.pem" >"$WORK/out" 2>&1 || cat "$WORK/out"
check "root sign --profile ops-issuing certifies under ops-root.pem" openssl verify -CAfile "$V/ops-root.pem" "$WORK/ops.pem"
check "... and not under the device root" bash -c "! openssl verify -CAfile '$V/root.pem' '$WORK/ops.pem' 2>/dev/null"

# ---- refusals: nothing is written, nothing is tried on the token ----
refused "one share of a 2-of-3 vault is refused" "needs 2 of its 3" \
  root sign --dir "$V" --csr "$WORK/dev.csr" --profile device-issuing $(share 1)
refused "a wrong passphrase is refused, naming the share" "custodian-2.share: wrong passphrase" \
  root sign --dir "$V" --csr "$WORK/dev.csr" --profile device-issuing $(share 2 "$WORK/pass3") $(share 1)
refused "the same share twice is refused" "given twice" \
  root sign --dir "$V" --csr "$WORK/dev.csr" --profile device-issuing $(share 1) $(share 1)
cp "$V/custodian-2.share" "$WORK/tampered.share"
python3 - "$WORK/tampered.share" <<'EOF'
import base64, sys
lines = open(sys.argv[1]).read().split("\n")
raw = bytearray(base64.b64decode("".join(lines[1:-2])))
raw[100] ^= 1  # inside the encrypted share
body = base64.b64encode(bytes(raw)).decode()
open(sys.argv[1], "w").write(lines[0] + "\n" + "\n".join(body[i:i + 64] for i in range(0, len(body), 64)) + "\n" + lines[-2] + "\n")
EOF
refused "a share with one bit changed is refused" "tampered.share: wrong passphrase, or the share file was changed" \
  root sign --dir "$V" --csr "$WORK/dev.csr" --profile device-issuing --share "$WORK/tampered.share" \
  --passphrase-file "$WORK/pass2" $(share 1)
# A custodian who knows their passphrase re-encrypts a share of their own making (python's cryptography, not
# wolfSSL: the file format checked independently): the encryption is valid, the PIN it rebuilds is not.
python3 "$HERE/vault_share.py" forge "$V/custodian-2.share" "$WORK/pass2" "$WORK/forged.share"
check "an independent reader decrypts a share with its passphrase" python3 "$HERE/vault_share.py" open \
  "$V/custodian-2.share" "$WORK/pass2"
refused "a forged share (valid encryption, wrong share) is refused before any login" "do not rebuild this vault's PIN" \
  root sign --dir "$V" --csr "$WORK/dev.csr" --profile device-issuing $(share 1) --share "$WORK/forged.share" \
  --passphrase-file "$WORK/pass2"
OTHER=$WORK/other-vault
printf 'other one passphrase\n' >"$WORK/opass"
"$CA_BIN" root init --dir "$OTHER" --custodians 2 --quorum 2 --passphrase-file "$WORK/opass" \
  --passphrase-file "$WORK/opass" >/dev/null
check_eq "a vault's shares are stretched with 600000 PBKDF2 iterations by default" "share 1 of 2-of-2, 600000 iterations" \
  "$(python3 "$HERE/vault_share.py" info "$OTHER/custodian-1.share")"
refused "a share of another vault is refused" "custodian-1.share is a share of another vault" \
  root sign --dir "$V" --csr "$WORK/dev.csr" --profile device-issuing --share "$OTHER/custodian-1.share" \
  --passphrase-file "$WORK/opass" $(share 2)

# csr_refused "description" PATTERN EXTENSION: a device issuing CA's request asking EXTENSION too is refused
csr_refused() {
  csr asks "/CN=Example Camera Maker Device Issuing CA" -addext "$3"
  refused "$1" "$2" root sign --dir "$V" --csr "$WORK/asks.csr" --profile device-issuing $(share 1) $(share 2)
}
csr_refused "a CSR asking pathLen 1 is refused" "basicConstraints other than CA with pathLen 0" \
  "basicConstraints=critical,CA:TRUE,pathlen:1"
csr_refused "a CSR asking a CA without a path length limit is refused" "pathLen 0" "basicConstraints=critical,CA:TRUE"
csr_refused "a CSR asking digitalSignature too is refused" "key usages beyond keyCertSign and cRLSign" \
  "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
csr_refused "a CSR asking not to be a CA is refused" "not CA" "basicConstraints=critical,CA:FALSE"
csr_refused "a CSR asking another extension is refused" "extensions or attributes" "subjectAltName=DNS:evil.example"
csr okext "/CN=Example Camera Maker Device Issuing CA" -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
  -addext "keyUsage=critical,keyCertSign,cRLSign"
refused "a device issuing CA's request on the ops-issuing profile is refused" "does not end in 'Operations Issuing CA'" \
  root sign --dir "$V" --csr "$WORK/okext.csr" --profile ops-issuing $(share 1) $(share 2)
openssl req -new -key "$WORK/dev.key" -subj "/CN=X Operations Issuing CA" -out "$WORK/dev-as-ops.csr" 2>/dev/null
refused "a key certified as device-issuing is refused as ops-issuing" "already certified as device-issuing" \
  root sign --dir "$V" --csr "$WORK/dev-as-ops.csr" --profile ops-issuing $(share 1) $(share 2)
openssl req -in "$WORK/dev.csr" -outform DER -out "$WORK/bad.der" 2>/dev/null
python3 -c "import sys; b=bytearray(open(sys.argv[1],'rb').read()); b[-5]^=1; open(sys.argv[1],'wb').write(b)" "$WORK/bad.der"
refused "a CSR whose signature does not verify (no proof of possession) is refused" "signature does not verify" \
  root sign --dir "$V" --csr "$WORK/bad.der" --profile device-issuing $(share 1) $(share 2)
"$CA_BIN" root sign --dir "$V" --csr "$WORK/okext.csr" --profile device-issuing $(share 1) $(share 2) \
  --out "$WORK/okext.pem" >/dev/null 2>&1
check "a CSR asking exactly what the profile gives is signed" openssl verify -CAfile "$V/root.pem" "$WORK/okext.pem"

# ---- the roots' CRLs ----
"$CA_BIN" root crl --dir "$V" $(share 1) $(share 2) --out "$WORK/root1.crl" >/dev/null
check "root crl: the device root's CRL verifies with openssl crl -CAfile root.pem" \
  openssl crl -inform DER -in "$WORK/root1.crl" -CAfile "$V/root.pem" -noout
NEXT=$(openssl crl -inform DER -in "$WORK/root1.crl" -noout -nextupdate | cut -d= -f2)
check "... with a nextUpdate a year away" test "$(( $(date -d "$NEXT" +%s) - $(date +%s) ))" -gt $((360 * 86400))
SERIAL=$(openssl x509 -in "$WORK/dev.pem" -noout -serial | cut -d= -f2)
refused "revoking a serial this vault never signed is refused" "never signed" \
  root crl --dir "$V" $(share 1) $(share 2) --revoke 0badc0de --reason keyCompromise
"$CA_BIN" root crl --dir "$V" $(share 2) $(share 3) --revoke "$SERIAL" --reason cACompromise --out "$WORK/root2.crl" >/dev/null
check "root crl --revoke: the issuing CA is listed, CRL number 2" bash -c "
  openssl crl -inform DER -in '$WORK/root2.crl' -CAfile '$V/root.pem' -noout -text >'$WORK/crl.txt' &&
  grep -qi 'Serial Number: $SERIAL' '$WORK/crl.txt' && grep -A1 'CRL Number' '$WORK/crl.txt' | grep -q '2' &&
  grep -q 'CA Compromise' '$WORK/crl.txt'"
for n in 1 2; do openssl crl -inform DER -in "$WORK/root$n.crl" -out "$WORK/root$n.crl.pem"; done
check "with the first CRL, openssl checks the issuing CA with -crl_check and accepts it" \
  openssl verify -crl_check -CAfile <(cat "$V/root.pem" "$WORK/root1.crl.pem") "$WORK/dev.pem"
OUT=$(openssl verify -crl_check -CAfile <(cat "$V/root.pem" "$WORK/root2.crl.pem") "$WORK/dev.pem" 2>&1 || true)
check "... with the new one, openssl refuses it as revoked" grep -q "certificate revoked" <<<"$OUT"
refused "revoking it twice is refused" "already revoked" \
  root crl --dir "$V" $(share 1) $(share 2) --revoke "$SERIAL" --reason keyCompromise
"$CA_BIN" root crl --dir "$V" --root ops $(share 1) $(share 3) --out "$WORK/ops.crl" >/dev/null
check "root crl --root ops: the operations root's CRL verifies with ops-root.pem" \
  openssl crl -inform DER -in "$WORK/ops.crl" -CAfile "$V/ops-root.pem" -noout

# Passphrases typed on a terminal: asked once the prompt is shown, never echoed.
# Whoever can write vault.conf names a PKCS#11 module of their own (here a copy of SoftHSM's, at a path they own): at
# the next ceremony it would be handed the PIN the shares rebuild, and could pass it on to the real token unseen. The
# init entry (signed by the device root) names the module and token: any other is refused before any passphrase.
cp /usr/lib/softhsm/libsofthsm2.so "$WORK/their-module.so"
cp "$V/vault.conf" "$WORK/vault.conf.good"
printf 'hsm.module = %s\n' "$WORK/their-module.so" >>"$V/vault.conf"
refused "a vault.conf naming another PKCS#11 module is refused: the PIN goes to the module the record names" \
  "the ceremony record's init names" \
  root sign --dir "$V" --csr "$WORK/dev.csr" --profile device-issuing $(share 1) $(share 2)
cp "$WORK/vault.conf.good" "$V/vault.conf"
check "the record's init entry names the module and token" grep -q "^seq=1 .* module=.*libsofthsm2.so token=camtrust-vault " \
  "$V/ceremony.log"
# A relative module path names no one file: whatever the working directory of a later ceremony holds would pass as
# the recorded module. Refused at init, the folder as it was.
R=$WORK/relative
mkdir -p "$R" "$WORK/lib" && printf 'kdf.iterations = 100000\nhsm.module = lib/pkcs11.so\n' >"$R/vault.conf"
cp /usr/lib/softhsm/libsofthsm2.so "$WORK/lib/pkcs11.so"
rc=0; (cd "$WORK" && "$CA_BIN" root init --dir "$R" --custodians 2 --quorum 2 --passphrase-file "$WORK/pass1" \
  --passphrase-file "$WORK/pass2") >"$WORK/out" 2>&1 || rc=$?
check_eq "root init refuses a relative hsm.module (the record would name no one module), its folder as it was" \
  "1 1 vault.conf" "$rc $(grep -c 'hsm.module must be an absolute path' "$WORK/out") $(ls "$R")"

python3 "$HERE/vault_tty.py" "3=custodian 3 passphrase" "1=custodian 1 passphrase" -- "$CA_BIN" root crl --dir "$V" \
  --root ops --share "$V/custodian-3.share" --share "$V/custodian-1.share" --out "$WORK/tty.crl" >"$WORK/tty.txt" 2>&1 || true
check "passphrases typed on the terminal after their prompts work" bash -c \
  "grep -q 'exit 0' '$WORK/tty.txt' && openssl crl -inform DER -in '$WORK/tty.crl' -CAfile '$V/ops-root.pem' -noout"
check "... and are not echoed" bash -c "grep -q 'passphrase of share 1' '$WORK/tty.txt' && ! grep -q 'custodian 1 passphrase' '$WORK/tty.txt'"

# ---- the ceremony record ----
OUT=$("$CA_BIN" root verify --dir "$V")
check_eq "root verify: every action is in the record" "ceremony record intact: 9 entries" "$(cut -d, -f1 <<<"$OUT")"
T=$("$CA_BIN" root transcript --dir "$V")
check "root transcript lists each action with the shares used and what went in and out" bash -c "
  grep -q 'entry 1 .* init, signed by the device root' <<<\"\$0\" &&
  grep -q 'entry 2 .* init, signed by the ops root' <<<\"\$0\" && grep -q 'entry 3 .* sign, signed by the device root' <<<\"\$0\" && grep -q 'shares  *1,3' <<<\"\$0\" &&
  grep -q 'cn  *Example Camera Maker Device Issuing CA' <<<\"\$0\" && grep -q 'csr_sha256' <<<\"\$0\" &&
  grep -q 'revoke  *$(tr 'A-F' 'a-f' <<<"$SERIAL")' <<<\"\$0\" && grep -q 'signature  *date' <<<\"\$0\"" "$T"
cp "$V/ceremony.log" "$WORK/record.good"
tampered_record() { # tampered_record "description" PATTERN: root verify says BROKEN, root sign refuses
  local out rc=0
  out=$("$CA_BIN" root verify --dir "$V" 2>&1) || rc=$?
  if [ "$rc" -eq 1 ] && grep -q "BROKEN: .*$2" <<<"$out"; then ok "$1"; else not_ok "$1 (exit $rc: $out)"; fi
  refused "... and no ceremony goes on over it" "ceremony record" \
    root sign --dir "$V" --csr "$WORK/dev.csr" --profile device-issuing $(share 1) $(share 2)
  cp "$WORK/record.good" "$V/ceremony.log"
}
sed -i '5s/shares=1,2/shares=2,3/' "$V/ceremony.log"
tampered_record "an edited entry is caught" "entry 5: the device root's signature does not verify"
sed -i '3d' "$V/ceremony.log"
tampered_record "a deleted entry is caught" "entry 3: out of sequence"
sed -i '2{h;d};3{G}' "$V/ceremony.log"
tampered_record "reordered entries are caught" "entry 2: out of sequence"
sed -i '4s/seq=4/seq=3/' "$V/ceremony.log"
tampered_record "an entry renumbered is caught" "entry 4: out of sequence"
check "the record restored verifies again" "$CA_BIN" root verify --dir "$V"
finish
