#!/usr/bin/env bash
# Records the rebuild did not cover before (issue 11): an officer's role change, the renewed operational
# certificates, the checkpoint key's certificate. Each is played by an attacker with write access to the CA folder
# (not the token): `audit verify` names what differs. Usage: audit_records.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/officer_lib.sh" # CA, DB, new_client

ca_create "$CA" >/dev/null
for o in alice bob; do new_client "$o"; done
"$CA_BIN" officer add --dir "$CA" --name alice --role officer --csr "$WORK/alice.csr" --out "$WORK/alice.pem" >/dev/null
"$CA_BIN" officer add --dir "$CA" --name bob --role officer --csr "$WORK/bob.csr" --out "$WORK/bob.pem" >/dev/null

# expect_error WHAT LINE CMD...: fails with exactly one line, LINE, on stderr and nothing recorded.
expect_error() {
  local what=$1 line=$2 rc=0 err before after; shift 2
  before=$(sql "$DB" "select count(*) from audit")
  err=$("$@" 2>&1 >/dev/null) || rc=$?
  after=$(sql "$DB" "select count(*) from audit")
  if [ "$rc" -ne 0 ] && [ "$err" = "$line" ] && [ "$before" = "$after" ]; then ok "$what"
  else not_ok "$what (exit $rc, audit $before -> $after): $err"; fi
}

# ---- a station named as one of the CA's own audit actors ----
# (ca-server: the serving CA's CRLs and log heads, a name of letters and '-' that station add took before)
for own in cli ca-server; do
  new_client "$own"
  expect_error "a station named $own: one line, nothing recorded" \
    "camtrust-ca: station name '$own' is one of the CA's own audit actors (ca, ca-server, cli, unknown)" \
    "$CA_BIN" station add --dir "$CA" --name "$own" --csr "$WORK/$own.csr" --out "$WORK/$own.pem"
  check_eq "... and no such station" 0 "$(sql "$DB" "select count(*) from stations where name = '$own'")"
done

# ---- officer role ----
OUT=$("$CA_BIN" officer role --dir "$CA" --name bob --role auditor)
check_eq "officer role: bob made auditor" "officer bob is now auditor" "$OUT"
check_eq "... in the table" auditor "$(sql "$DB" "select role from officers where name = 'bob'")"
check_eq "... audited as officer.role, v=2" "v=2 role=auditor" \
  "$(sql "$DB" "select detail from audit where action = 'officer.role' and subject = 'bob' and actor = 'cli'")"
OUT=$("$CA_BIN" audit verify --dir "$CA" 2>&1) || true
check "... and audit verify stays clean" grep -q '^state tables match the audit: ' <<<"$OUT"
expect_error "an unknown officer: one line, nothing recorded" "camtrust-ca: no officer named 'carol'" \
  "$CA_BIN" officer role --dir "$CA" --name carol --role auditor
expect_error "a bad role: one line, nothing recorded" "camtrust-ca: role 'root' is not one of: auditor, officer" \
  "$CA_BIN" officer role --dir "$CA" --name bob --role root
expect_error "the role it has already: one line, nothing recorded" "camtrust-ca: officer bob is auditor already" \
  "$CA_BIN" officer role --dir "$CA" --name bob --role auditor
expect_error "a bad name: one line, nothing recorded" \
  "camtrust-ca: officer name 'b b': use 1-63 letters, digits, '-', '_', '.'" \
  "$CA_BIN" officer role --dir "$CA" --name 'b b' --role auditor
expect_error "no --role: one line, nothing recorded" "camtrust-ca: --role is required" \
  "$CA_BIN" officer role --dir "$CA" --name bob

# The attacker makes the auditor an officer again in the table alone.
sqlite3 "$DB" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
cp "$DB" "$WORK/pristine.db"
sqlite3 "$DB" "UPDATE officers SET role = 'officer' WHERE name = 'bob'"
rc=0; OUT=$("$CA_BIN" audit verify --dir "$CA" 2>&1) || rc=$?
if [ "$rc" -ne 0 ] && grep -qF "state tables BROKEN: officer bob: auditor in the audit, officer in the table" <<<"$OUT"
then ok "an auditor made officer in the table after officer.role: named"
else not_ok "role edit after officer.role (exit $rc): $OUT"; fi
cp "$WORK/pristine.db" "$DB"; rm -f "$DB-wal" "$DB-shm"
# ... and the role change back to officer recorded, then the table edited to auditor: named the other way.
"$CA_BIN" officer role --dir "$CA" --name bob --role officer >/dev/null
sqlite3 "$DB" "UPDATE officers SET role = 'auditor' WHERE name = 'bob'"
rc=0; OUT=$("$CA_BIN" audit verify --dir "$CA" 2>&1) || rc=$?
if [ "$rc" -ne 0 ] && grep -qF "state tables BROKEN: officer bob: officer in the audit, auditor in the table" <<<"$OUT"
then ok "the newest role change is the one compared"
else not_ok "role after two changes (exit $rc): $OUT"; fi
sqlite3 "$DB" "UPDATE officers SET role = 'officer' WHERE name = 'bob'"

# ---- renewed certificates against the newest renewal in the audit ----
# verify_names WHAT LINE: `audit verify` fails naming LINE (after "CA certificates BROKEN: "), the server refuses to
# start with it.
verify_names() {
  local what=$1 line=$2 rc=0 out
  out=$("$CA_BIN" audit verify --dir "$CA" 2>&1) || rc=$?
  if [ "$rc" -eq 1 ] && grep -qF "CA certificates BROKEN: $line" <<<"$out" && grep -q '^state tables match' <<<"$out"
  then ok "$what: audit verify names it"
  else not_ok "$what: audit verify (exit $rc): $out"; fi
  rc=0; out=$(bounded 30 "$CA_BIN" serve --dir "$CA" --listen 127.0.0.1:0 --http-listen '' 2>&1) || rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -qF "camtrust-ca: $line" <<<"$out" && ! grep -q 'event=listening' <<<"$out"
  then ok "$what: the server refuses to start"
  else not_ok "$what: serve (exit $rc): $out"; fi
}
OUT=$("$CA_BIN" audit verify --dir "$CA" 2>&1) || true
check "init recorded every certificate file: audit verify compares them" \
  grep -q '^CA certificates match the audit: 8 files; log-checkpoint.pem certifies the key of log.vkey$' <<<"$OUT"
for f in server.pem log.pem; do cp "$CA/$f" "$WORK/old-$f"; done
"$CA_BIN" renew --dir "$CA" tls >/dev/null
"$CA_BIN" renew --dir "$CA" log >/dev/null
OUT=$("$CA_BIN" audit verify --dir "$CA" 2>&1) || true
check "renewed tls and log: the renewed files match the newest renewals" grep -q '^CA certificates match the audit: 8 files' <<<"$OUT"
serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/^00//'; }
for f in server.pem log.pem; do
  NEW=$(serial "$CA/$f"); OLD=$(serial "$WORK/old-$f")
  SEQ=$(sql "$DB" "select max(seq) from audit where action = 'ca.renew' and subject = '$f'")
  cp "$CA/$f" "$WORK/new-$f"; cp "$WORK/old-$f" "$CA/$f"
  verify_names "the $f from before the renewal put back" \
    "$f: certificate $OLD in use, the audit's newest is $NEW (entry $SEQ, ca.renew): an older one put back?"
  cp "$WORK/new-$f" "$CA/$f"
done
check "the renewed files put back verify" "$CA_BIN" audit verify --dir "$CA"

# ---- the checkpoint key, certified by the operations issuing CA ----
CP=$CA/log-checkpoint.pem
openssl x509 -in "$CP" -noout -text >"$WORK/cp.txt"
check "log-checkpoint.pem: an Ed25519 key (openssl x509)" grep -q 'Public Key Algorithm: ED25519' "$WORK/cp.txt"
check "... signed ECDSA by the operations issuing CA" grep -q 'Issuer: .*Operations Issuing CA' "$WORK/cp.txt"
check_eq "... key usage critical, digitalSignature only" "Digital Signature" \
  "$(grep -A1 'X509v3 Key Usage: critical' "$WORK/cp.txt" | tail -1 | sed 's/^ *//')"
check "... no CA, no extended key usage" bash -c "! grep -qE 'CA:TRUE|Extended Key Usage' '$WORK/cp.txt'"
check "... openssl verify -x509_strict with ops-root.pem and ops-issuing.pem" \
  openssl verify -x509_strict -CAfile "$CA/ops-root.pem" -untrusted "$CA/ops-issuing.pem" "$CP"
# The key it certifies is log.vkey's: name+id+base64(0x01 || key) (the base64 may hold '+' too).
VKEY_KEY=$(sed 's/^[^+]*+[^+]*+//' "$CA/log.vkey" | base64 -d | tail -c 32 | od -An -tx1 | tr -d ' \n')
CERT_KEY=$(openssl x509 -in "$CP" -noout -pubkey | openssl pkey -pubin -outform DER | tail -c 32 | od -An -tx1 | tr -d ' \n')
check_eq "... the key of log.vkey" "$VKEY_KEY" "$CERT_KEY"
check "... recorded in the audit at init" test "$(sql "$DB" "select count(*) from audit where action = 'ca.cert' and subject = 'log-checkpoint.pem'")" = 1

# A CA folder without it (made before): the next open certifies the key, audited.
rm "$CP"
check "a folder without log-checkpoint.pem: the next open certifies the key again and verifies" "$CA_BIN" audit verify --dir "$CA"
check "... written" openssl verify -CAfile "$CA/ops-root.pem" -untrusted "$CA/ops-issuing.pem" "$CP"
check_eq "... and audited" 2 "$(sql "$DB" "select count(*) from audit where action = 'ca.cert' and subject = 'log-checkpoint.pem'")"
# ... six processes opening it at once: one certifies and records, every one verifies.
rm "$CP"
for i in 1 2 3 4 5 6; do ("$CA_BIN" audit verify --dir "$CA" >"$WORK/par$i.txt" 2>&1; echo "rc=$?" >>"$WORK/par$i.txt") & done
wait
check_eq "six concurrent opens without it: all verify" 6 "$(cat "$WORK"/par?.txt | grep -c '^rc=0$')"
grep -L '^rc=0$' "$WORK"/par?.txt | xargs -r cat # one failed once under load: say how, if it does again
check_eq "... certified once" 3 "$(sql "$DB" "select count(*) from audit where action = 'ca.cert' and subject = 'log-checkpoint.pem'")"
cp "$CP" "$WORK/good-cp.pem"
# The attacker puts another certificate of the same CA in its place.
cp "$CA/log.pem" "$CP"
verify_names "log-checkpoint.pem replaced by another certificate of the CA" \
  "log-checkpoint.pem: certificate $(serial "$CA/log.pem") in use, the audit's newest is $(serial "$WORK/good-cp.pem")"
cp "$WORK/good-cp.pem" "$CP"
# The token's checkpoint key lost and a new one made (as for a folder made before checkpoints): the certificate no
# longer certifies the key of log.vkey, which audit verify says until the file is removed (then certified again).
MODULE=/usr/lib/softhsm/libsofthsm2.so
p11() { SOFTHSM2_CONF=$CA/softhsm2.conf pkcs11-tool --module "$MODULE" --token-label camtrust-ca --login \
  --pin "$(cat "$CA/secrets/user.pin")" "$@" 2>/dev/null; }
p11 --delete-object --type privkey --label log-note >/dev/null; p11 --delete-object --type pubkey --label log-note >/dev/null
rm "$CA/log.vkey"
rc=0; OUT=$("$CA_BIN" audit verify --dir "$CA" 2>&1) || rc=$?
if [ "$rc" -eq 1 ] && grep -qF "CA certificates BROKEN: log-checkpoint.pem does not certify the key of log.vkey" <<<"$OUT"
then ok "a new checkpoint key: the old certificate does not certify it, named"
else not_ok "new checkpoint key (exit $rc): $OUT"; fi
rm "$CP"
OUT=$("$CA_BIN" audit verify --dir "$CA" 2>&1) || true
check "... removed: the next open certifies the new key" grep -q '^CA certificates match the audit: 8 files' <<<"$OUT"

finish
