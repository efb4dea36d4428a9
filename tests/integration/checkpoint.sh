#!/usr/bin/env bash
# Checkpoints end to end (issue 11): the real CA on a real token signs C2SP checkpoints with its Ed25519 key; one
# is fetched with curl and kept, as a witness would, and checked by Python's `cryptography` against log.vkey.
# Then the attacker, with sqlite3 and the triggers dropped, forks the log or forges a checkpoint row: `audit verify
# (--checkpoint)` names what the database contradicts (the tail cut and older copies: attacker.sh).
# Usage: checkpoint.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
DB=$CA/camtrust.db
out=$(ca_create "$CA")
check_eq "init prints the verifier key it writes to log.vkey" \
  "checkpoint verifier key (log.vkey): $(cat "$CA/log.vkey")" "$(grep '^checkpoint verifier key' <<<"$out")"
check "... name+hash+base64, the name being the origin" \
  grep -qE '^camtrust\.example\.com/example-camera-maker/issuance\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$' "$CA/log.vkey"
check_eq "... and signs the empty log's checkpoint" "0|1" "$(sql "$DB" "select max(tree_size), count(*) from log_checkpoints")"

# Python verifies a note with a verifier key, as the C2SP spec says, without camtrust's code.
pyverify() { # pyverify NOTE VKEY -> prints the tree size
  python3 - "$1" "$2" <<'PY'
import base64, hashlib, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
note = open(sys.argv[1], "rb").read()
name, kid_hex, key = open(sys.argv[2]).read().strip().split("+", 2)
raw = base64.b64decode(key)
assert raw[0] == 1 and len(raw) == 33
kid = hashlib.sha256(name.encode() + b"\n\x01" + raw[1:]).digest()[:4]
assert kid.hex() == kid_hex
split = note.rindex(b"\n\n")
text, sigs = note[: split + 1], note[split + 2 :].decode().splitlines()
ok = False
for line in sigs:
    assert line.startswith("\u2014 ")
    signer, b64 = line[2:].split(" ")
    sig = base64.b64decode(b64)
    if signer == name and sig[:4] == kid:
        Ed25519PublicKey.from_public_bytes(raw[1:]).verify(sig[4:], text)
        ok = True
assert ok
lines = text.decode().split("\n")
assert lines[0] == name
print(lines[1])
PY
}

station_with_order line1 CAM0001 CAM0002 CAM0003 CAM0004 CAM0005
WITH_HTTP=1 start_ca "$CA"
URL=https://localhost:$PORT
get() { curl -s -o "$2" -w '%{http_code}' --max-time 20 --cacert "$CA/ops-root.pem" "$URL$1" || true; }
enroll() {
  make_csr "$WORK/$1" "/serialNumber=$1/CN=x"
  est_post simpleenroll "$WORK/$1.b64" "$WORK/$1.p7b64" --cert "$WORK/station.pem" --key "$WORK/station.key" >/dev/null
}
wait_size() { # wait_size N FILE: until GET /log/checkpoint covers N certificates
  for _ in $(seq 1 100); do
    get /log/checkpoint "$2" >/dev/null
    [ "$(sed -n 2p "$2")" = "$1" ] && return 0
    sleep 0.1
  done
}

enroll CAM0001; enroll CAM0002
wait_size 2 "$WORK/two.note"
check_eq "a checkpoint follows the issuances" 2 "$(sed -n 2p "$WORK/two.note")"
enroll CAM0003; enroll CAM0004; enroll CAM0005
wait_size 5 "$WORK/saved.note"
code=$(curl -s -D "$WORK/headers" -o "$WORK/saved.note" -w '%{http_code}' --max-time 20 --cacert "$CA/ops-root.pem" "$URL/log/checkpoint")
check_eq "GET /log/checkpoint without a client certificate: 200, five certificates" "200 5" "$code $(sed -n 2p "$WORK/saved.note")"
check "... text/plain" grep -qi '^content-type: text/plain' "$WORK/headers"
code=$(curl -s -o "$WORK/plain.note" -w '%{http_code}' --max-time 20 "http://127.0.0.1:$HTTP_PORT/log/checkpoint")
check_eq "... the same note over plain HTTP" "200" "$code"
check "... byte for byte" cmp "$WORK/saved.note" "$WORK/plain.note"
check_eq "Python's cryptography verifies it with log.vkey (C2SP signed-note, Ed25519)" 5 "$(pyverify "$WORK/saved.note" "$CA/log.vkey")"
check "... a signature line: em dash, space, origin, space, base64 of key ID and signature" \
  grep -qE "^— camtrust\.example\.com/example-camera-maker/issuance [A-Za-z0-9+/]{91}=$" "$WORK/saved.note"
check "... it binds the audit chain and the time" grep -qE '^camtrust-audit [0-9]+ [A-Za-z0-9+/]{43}=$' "$WORK/saved.note"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA/ops-root.pem" -X POST --data x "$URL/log/checkpoint")
check_eq "POST /log/checkpoint: 405" 405 "$code"
kill -TERM "$SERVER_PID"; rc=0; wait "$SERVER_PID" || rc=$?; SERVER_PID=
check_eq "SIGTERM stops the server cleanly" 0 "$rc"

out=$("$CA_BIN" log checkpoint --dir "$CA")
check_eq "camtrust-ca log checkpoint prints the newest (the one served)" "$(cat "$WORK/saved.note")" "$out"
check "log checkpoint --out saves it" "$CA_BIN" log checkpoint --dir "$CA" --out "$WORK/cli.note"
check "... the same bytes" cmp "$WORK/saved.note" "$WORK/cli.note"
check_eq "every checkpoint is kept and audited" \
  "$(sql "$DB" "select count(*) from log_checkpoints")" "$(sql "$DB" "select count(*) from audit where action = 'log.checkpoint'")"

out=$("$CA_BIN" audit verify --dir "$CA" --checkpoint "$WORK/saved.note" --checkpoint "$WORK/two.note")
check "audit verify --checkpoint: the untouched database extends both kept checkpoints" \
  grep -q "checkpoint $WORK/two.note extended: size 2" <<<"$out"
check "... the newest too" grep -q "checkpoint $WORK/saved.note extended: size 5" <<<"$out"

verify_fails() { # verify_fails "description" "expected text" [audit verify options...]
  local what=$1 want=$2 rc=0 out; shift 2
  out=$("$CA_BIN" audit verify --dir "$CA" "$@" 2>&1) || rc=$?
  check_eq "$what: exit 1" 1 "$rc"
  if grep -qF -- "$want" <<<"$out"; then ok "... saying '$want'"; else not_ok "... saying '$want' (got: $out)"; fi
}
verify_fails "a checkpoint checked with another log's verifier key" "is not signed by camtrust.example.com/example-camera-maker/issuance (key ID 99798d0c)" \
  --checkpoint "$WORK/saved.note" --vkey "$(dirname "$0")/../vectors/note/log.vkey"
sed 's/^5$/6/' "$WORK/saved.note" >"$WORK/edited.note"
verify_fails "a kept checkpoint edited (size 5 -> 6)" "checkpoint $WORK/edited.note" --checkpoint "$WORK/edited.note"
printf 'garbage\n' >"$WORK/garbage.note"
rc=0; out=$("$CA_BIN" audit verify --dir "$CA" --checkpoint "$WORK/garbage.note" 2>&1) || rc=$?
check_eq "a file that is no note: refused in one line naming it" \
  "1 camtrust-ca: checkpoint $WORK/garbage.note (size 0, audit entries 0): note has no blank line before its signatures" \
  "$rc $(grep '^camtrust-ca:' <<<"$out")"

# The rest plays the attacker who edits the SQLite file (sqlite3, triggers dropped): on SQLite only.
on_sqlite || { finish; exit $?; }
# The attacker: write access to camtrust.db, none to the token.
sqlite3 "$DB" ".backup '$WORK/good.db'"
NOTRIG=$(sql "$WORK/good.db" "select 'DROP TRIGGER ' || name || ';' from sqlite_master where type = 'trigger'")
restore() { cp "$1" "$DB"; rm -f "$DB-wal" "$DB-shm"; }

# The tail cut and older copies put back (the database alone still looks whole): attacker.sh.
S4=$(sql "$DB" "select cert_serial_hex from log_leaves where leaf_index = 3")

# A fork: leaf 3 becomes another certificate, its leaf hash recomputed, the heads above it dropped; the audit
# chain is left whole, so only the tree shows it.
restore "$WORK/good.db"
sqlite3 "$DB" "$NOTRIG DELETE FROM log_checkpoints WHERE tree_size > 3; DELETE FROM log_tree_heads WHERE tree_size > 3;"
python3 - "$DB" "$S4" <<'PY'
import hashlib, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
der = bytes(db.execute("select der from certificates where cert_serial_hex = ?", (sys.argv[2],)).fetchone()[0]) + b"\0"
db.execute("update certificates set der = ? where cert_serial_hex = ?", (der, sys.argv[2]))
db.execute("update log_leaves set leaf_hash = ? where cert_serial_hex = ?", (hashlib.sha256(b"\0" + der).digest(), sys.argv[2]))
db.commit()
PY
verify_fails "a forked log (leaf 3 another certificate, its leaf recomputed): named" \
  "checkpoint $WORK/saved.note (size 5" --checkpoint "$WORK/saved.note"
verify_fails "... its first 5 leaves have another root" "the log's first 5 leaves have another root" --checkpoint "$WORK/saved.note"

# A checkpoint row forged in the database (the newest one's note with its size raised): no one without the token
# can sign it, and audit verify checks every kept checkpoint.
restore "$WORK/good.db"
NEXT=$(( $(sql "$DB" "select max(id) from log_checkpoints") + 1 ))
sqlite3 "$DB" "$NOTRIG INSERT INTO log_checkpoints (tree_size, audit_entries, note)
  SELECT 6, audit_entries, replace(note, char(10) || '5' || char(10), char(10) || '6' || char(10))
  FROM log_checkpoints ORDER BY id DESC LIMIT 1;"
verify_fails "a forged checkpoint row: audit verify (no --checkpoint) names it" \
  "checkpoints BROKEN: checkpoint $NEXT (size 6): the signature by camtrust.example.com/example-camera-maker/issuance does not verify"

restore "$WORK/good.db"
out=$("$CA_BIN" audit verify --dir "$CA")
check "audit verify checks every kept checkpoint" grep -qE "^checkpoints intact: [0-9]+ verified with log.vkey" <<<"$out"
check "the untouched database verifies against the kept checkpoint again" \
  "$CA_BIN" audit verify --dir "$CA" --checkpoint "$WORK/saved.note"

MODULE=/usr/lib/softhsm/libsofthsm2.so
p11() { SOFTHSM2_CONF=$CA/softhsm2.conf pkcs11-tool --module "$MODULE" --token-label camtrust-ca --login \
  --pin "$(cat "$CA/secrets/user.pin")" "$@" 2>/dev/null; }
# A tool that is not ours sees the checkpoint key as the token keeps it: signing only, never extractable.
p11 --list-objects --type privkey | grep -A3 'label: *log-note$' >"$WORK/p11.txt" || true
check "the checkpoint key in the token: usage sign only" grep -qE '^ *Usage: *sign$' "$WORK/p11.txt"
check "... sensitive and never extractable" grep -qE '^ *Access: *sensitive, always sensitive, never extractable' "$WORK/p11.txt"

# A CA folder made before checkpoints: no Ed25519 key, no log.vkey. The next open makes both.
p11 --delete-object --type privkey --label log-note >/dev/null; p11 --delete-object --type pubkey --label log-note >/dev/null
rc=0; out=$("$CA_BIN" log checkpoint --dir "$CA" 2>&1) || rc=$?
check_eq "the checkpoint key gone while log.vkey remains: refused, not replaced" 1 "$rc"
check "... saying to restore the token" grep -q "restore the token" <<<"$out"
rm "$CA/log.vkey" "$CA/checkpoint.note" # neither was there before checkpoints
check "an older folder (no key, no log.vkey): the next open makes the key" "$CA_BIN" log sth --dir "$CA"
check "... writes log.vkey" test -s "$CA/log.vkey"
check_eq "... audited with its verifier key" "$(cat "$CA/log.vkey")" "$(sql "$DB" "select detail from audit where action = 'log.note_key'")"
"$CA_BIN" log checkpoint --dir "$CA" >"$WORK/new.note" 2>/dev/null
check_eq "... and signs with it (Python verifies)" 5 "$(pyverify "$WORK/new.note" "$CA/log.vkey")"
finish
