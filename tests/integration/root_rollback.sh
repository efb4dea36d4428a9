#!/usr/bin/env bash
# The online CA against an older word of its root vault. A rotate cut off between its key and its request (killed at
# the request's write, then by a real kill -9) writes the request again at the next rotate: the pending generation
# is certified and installed. A roots' CRL older than the one installed, or made from a ceremony record cut short
# (its revocation entry removed: the vault's next CRL reuses its number, or a later one leaves the revocation out),
# is refused by install in one line, the CA folder as it was, the revoked issuing CA still revoked.
# An install cut off after the database took the new generation (killed at its first file write, or before the chain
# and the certificates the new issuing CA signs) is completed by the same install run again.
# Usage: root_rollback.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

V=$WORK/vault CA=$WORK/ca
ca_create "$CA" >/dev/null
G1=$(openssl x509 -in "$CA/device-issuing.pem" -noout -serial | cut -d= -f2) # the first device issuing CA
Q=()
for i in 2 4 5; do Q+=(--share "$V/custodian-$i.share" --passphrase-file "$V.custodians/$i/passphrase"); done
. "$(dirname "$0")/../helpers/ca_refused.sh" # fingerprint, changed, refused
refused_ca() { refused "$1" "$2" "$CA" "${@:3}"; } # refused_ca "description" PATTERN args...: of the CA folder

# ---- a rotate cut off between its key and its request ----
rc=0; CAMTRUST_FAILPOINT=write:temp-written "$CA_BIN" rotate --dir "$CA" device-issuing >/dev/null 2>&1 || rc=$?
check_eq "rotate killed at its request's write: it died there" 137 "$rc"
check "... its key made, its request not written" test ! -e "$CA/device-issuing.csr"
temps() { (cd "$CA" && ls -d -- *.tmp.* 2>/dev/null | sed "s/\.$$\$/.LIVE/; s/\.[0-9]*\$/.DEAD/" | tr '\n' ' '); }
check_eq "... its temporary left in the CA folder" "device-issuing.csr.tmp.DEAD " "$(temps)"
: >"$CA/chain.pem.tmp.$$" # a live process's (this shell's) temporary: never removed
"$CA_BIN" audit verify --dir "$CA" >/dev/null
check_eq "a command that only reads (audit verify) leaves both" "chain.pem.tmp.LIVE device-issuing.csr.tmp.DEAD " \
  "$(temps)"
rc=0; "$CA_BIN" rotate --dir "$CA" device-issuing >"$WORK/out" 2>"$WORK/err" || rc=$?
check_eq "the next rotate writes the pending key's request (not 'pending already' with no request to take)" \
  "0 1" "$rc $(grep -c "$CA/device-issuing.csr" "$WORK/out")"
check_eq "... and removed the killed one's temporary, not the live process's" "chain.pem.tmp.LIVE " "$(temps)"
rm "$CA/chain.pem.tmp.$$"
refused_ca "... and a rotate after it is refused: the request is there" "pending already" rotate --dir "$CA" device-issuing
rc=0; CAMTRUST_FAILPOINT=write:temp-written "$CA_BIN" root sign --dir "$V" --csr "$CA/device-issuing.csr" \
  --profile device-issuing "${Q[@]}" --out "$WORK/dev2.pem" >/dev/null 2>&1 || rc=$?
check_eq "root sign killed at its record's write leaves its temporary in the vault" "137 1" \
  "$rc $(ls "$V"/ceremony.log.tmp.* | wc -l)"
"$CA_BIN" root sign --dir "$V" --csr "$CA/device-issuing.csr" --profile device-issuing "${Q[@]}" \
  --out "$WORK/dev2.pem" >/dev/null
check "... the next root sign removed it" bash -c "! ls '$V'/*.tmp.* 2>/dev/null"
check "the ceremony's certificate for it installs (the key the token made before the kill)" \
  "$CA_BIN" install --dir "$CA" --cert "$WORK/dev2.pem"
check_eq "the request written again is audited so (ca.rotate key=existing; the killed run audited nothing)" "1 1" \
  "$(sqlite3 "$CA/camtrust.db" "select count(*) from audit where action = 'ca.rotate'") \
$(sqlite3 "$CA/camtrust.db" "select count(*) from audit where action = 'ca.rotate' and detail like '%key=existing%'")"
# ... and by a real kill -9 whenever it lands (ops-issuing): the next rotate leaves a pending request either way.
"$CA_BIN" rotate --dir "$CA" ops-issuing >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 2000); do # until its request's temporary file appears (or it ends first)
  ls "$CA"/ops-issuing.csr.tmp.* >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.005
done
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
rc=0; "$CA_BIN" rotate --dir "$CA" ops-issuing >/dev/null 2>"$WORK/err" || rc=$?
check "after a kill -9 of rotate, the ops-issuing request is there (written again, or pending already)" bash -c \
  "test -s '$CA/ops-issuing.csr' && { [ $rc = 0 ] || grep -q 'pending already' '$WORK/err'; }"


# ---- an install cut off after the database took the new generation: the same install run again completes it ----
"$CA_BIN" root sign --dir "$V" --csr "$CA/ops-issuing.csr" --profile ops-issuing "${Q[@]}" --out "$WORK/ops2.pem" >/dev/null
rc=0; CAMTRUST_FAILPOINT=write:temp-written "$CA_BIN" install --dir "$CA" --cert "$WORK/ops2.pem" >/dev/null 2>&1 || rc=$?
check_eq "install of the operations issuing CA killed at its first file write: it died there" 137 "$rc"
check "the same install run again completes it (not 'installed already' with the folder half done)" \
  "$CA_BIN" install --dir "$CA" --cert "$WORK/ops2.pem"
check "... the server's and log signer's certificates now from the new operations issuing CA" \
  openssl verify -CAfile "$CA/ops-root.pem" -untrusted "$WORK/ops2.pem" "$CA/server.pem" "$CA/log.pem"
check "... ops-issuing.pem is it, its request answered (removed)" bash -c \
  "cmp -s <(openssl x509 -in '$CA/ops-issuing.pem') <(openssl x509 -in '$WORK/ops2.pem') && test ! -e '$CA/ops-issuing.csr'"
refused_ca "... and a third run is refused: installed already" "is installed already" install --dir "$CA" --cert "$WORK/ops2.pem"
"$CA_BIN" rotate --dir "$CA" device-issuing >/dev/null
"$CA_BIN" root sign --dir "$V" --csr "$CA/device-issuing.csr" --profile device-issuing "${Q[@]}" \
  --out "$WORK/dev3.pem" >/dev/null
rc=0; CAMTRUST_FAILPOINT=install:generations "$CA_BIN" install --dir "$CA" --cert "$WORK/dev3.pem" >/dev/null 2>&1 || rc=$?
check_eq "install of the device issuing CA killed after its generation and file, before the chain and OCSP signer" \
  137 "$rc"
check "the same install run again completes it" "$CA_BIN" install --dir "$CA" --cert "$WORK/dev3.pem"
check "... chain.pem and the OCSP responder's certificate from the new device issuing CA" bash -c \
  "cmp -s <(openssl x509 -in '$CA/chain.pem') <(openssl x509 -in '$WORK/dev3.pem') &&
   openssl verify -CAfile '$CA/root.pem' -untrusted '$WORK/dev3.pem' '$CA/ocsp-signer.pem'"
start_ca "$CA"
curl -sf --max-time 20 --cacert "$CA/ops-root.pem" "https://localhost:$PORT/.well-known/est/cacerts" >"$WORK/cacerts" || true
cleanup_server
check "the CA serves after both, cacerts naming the new device issuing CA" bash -c \
  "base64 -d '$WORK/cacerts' | openssl pkcs7 -inform DER -print_certs | grep -q 'G3 Device Issuing CA'"
check "... and its audit verifies" "$CA_BIN" audit verify --dir "$CA"

# ---- the roots' CRLs: never an older word ----
"$CA_BIN" root crl --dir "$V" --root device "${Q[@]}" --out "$WORK/plain.crl" >/dev/null
check "install takes the roots' next CRL" "$CA_BIN" install --dir "$CA" --crl "$WORK/plain.crl"
cp "$V/ceremony.log" "$WORK/ceremony.before-revocation"
"$CA_BIN" root crl --dir "$V" --revoke "$G1" --reason cACompromise "${Q[@]}" --out "$WORK/revoking.crl" >/dev/null
check "... and the one revoking the first device issuing CA" "$CA_BIN" install --dir "$CA" --crl "$WORK/revoking.crl"
check "the same CRL again (an install run twice) is taken" "$CA_BIN" install --dir "$CA" --crl "$WORK/revoking.crl"
refused_ca "install refuses the older CRL (its revocation undone)" "is not newer than the installed root.crl" \
  install --dir "$CA" --crl "$WORK/plain.crl"
refused_ca "install refuses two CRLs of one root (the last given would be kept)" "two CRLs of one root" \
  install --dir "$CA" --crl "$WORK/revoking.crl" "$WORK/plain.crl"
# Someone cuts the vault's record back to before the revocation: the record alone cannot tell (README), and the
# vault's next CRL has the revocation's number without it.
cp "$WORK/ceremony.before-revocation" "$V/ceremony.log"
check "the cut record still verifies on its own (only the paper head shows it)" "$CA_BIN" root verify --dir "$V"
"$CA_BIN" root crl --dir "$V" --root device "${Q[@]}" --out "$WORK/cut1.crl" >/dev/null
refused_ca "install refuses the CRL of the cut record (the revoked CRL's number again, without the revocation)" \
  "is not newer than the installed root.crl" install --dir "$CA" --crl "$WORK/cut1.crl"
"$CA_BIN" root crl --dir "$V" --root device "${Q[@]}" --out "$WORK/cut2.crl" >/dev/null
refused_ca "... and the next one (a higher number, the revocation left out)" \
  "no longer revokes serial ${G1,,}, which the earlier one revokes" install --dir "$CA" --crl "$WORK/cut2.crl"
check "the installed roots' CRL still revokes the first device issuing CA" cmp -s "$WORK/revoking.crl" "$CA/root.crl"
finish
