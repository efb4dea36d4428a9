#!/usr/bin/env bash
# Only the CA can write an audit entry: each entry is HMAC-SHA256'd in the token (key audit-mac), made sensitive
# and never extractable. A CA folder made before keying is sealed at its first open (and an entry forged before or
# after the seal is caught); kill -9 during enrollments leaves a chain that verifies. The attacks on a keyed chain
# (edited, inserted, appended, deleted entries, the chain recomputed) are in attacker.sh.
# Usage: audit_mac.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"
FORGE="python3 $(dirname "$0")/audit_forge.py"

CA=$WORK/ca
DB=$CA/camtrust.db
ca_create "$CA" >/dev/null
out=$("$CA_BIN" audit verify --dir "$CA")
check "a new CA's chain is MACed from entry 1" grep -q "^audit log intact: [0-9]* entries, each MACed in the token from entry 1$" <<<"$out"
p11() { SOFTHSM2_CONF=$1/softhsm2.conf pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label camtrust-ca \
          --login --pin "$(cat "$1/secrets/user.pin")" "${@:2}" 2>/dev/null; }
keyinfo=$(p11 "$CA" --list-objects --type secrkey)
check "the audit key is a 256-bit generic secret in the token" grep -q "Generic secret length 32" <<<"$keyinfo"
check "... labelled audit-mac" grep -q "label: *audit-mac" <<<"$keyinfo"
check "... sensitive and never extractable" grep -q "Access: *sensitive, always sensitive, never extractable" <<<"$keyinfo"

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/station.key" -subj "/CN=line1" -out "$WORK/station.csr" 2>/dev/null
"$CA_BIN" station add --dir "$CA" --name line1 --csr "$WORK/station.csr" --out "$WORK/station.pem" >/dev/null
seq -f 'CAM%04g' 1 40 >"$WORK/serials.txt"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX100 --serials "$WORK/serials.txt" >/dev/null
for s in $(seq -f 'CAM%04g' 1 40); do make_csr "$WORK/$s" "/serialNumber=$s/CN=x"; done

# kill -9 in the middle of a burst of enrollments: whatever was committed was MACed in its own transaction.
start_ca "$CA"
for s in $(seq -f 'CAM%04g' 1 40); do
  est_post simpleenroll "$WORK/$s.b64" "$WORK/$s.p7" --cert "$WORK/station.pem" --key "$WORK/station.key" >/dev/null &
done
for _ in $(seq 1 200); do # killed once a few are committed, while the rest are under way
  [ "$(sql "$DB" "select count(*) from certificates where profile = 'device'")" -ge 3 ] && break
  sleep 0.05
done
kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
wait
n=$(sql "$DB" "select count(*) from certificates where profile = 'device'")
echo "# $n of 40 enrollments committed before kill -9"
out=$("$CA_BIN" audit verify --dir "$CA")
check "after kill -9 during enrollments the chain verifies, no officer needed" grep -q "^audit log intact" <<<"$out"
start_ca "$CA"
check "... and the server starts again" grep -q "event=audit_verified" "$WORK/server.log"
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=
# Edited, inserted, appended, deleted entries, chain recomputed or not, and the server's refusal: attacker.sh.

# The audit key gone from the token of a keyed folder: the database says the chain is MACed, so no new key is made
# in its place (a process that did not see the key would otherwise make a second one and seal with it).
NOKEY=$WORK/nokey
cp -a "$CA" "$NOKEY"
sed -i "s#$CA#$NOKEY#g" "$NOKEY/softhsm2.conf"
p11 "$NOKEY" --delete-object --type secrkey --label audit-mac >/dev/null
rc=0; out=$("$CA_BIN" audit verify --dir "$NOKEY" 2>&1) || rc=$?
check_eq "a keyed chain whose key is gone: audit verify refuses" "1 camtrust-ca: the audit chain is MACed but its key 'audit-mac' is not in the token" "$rc $(grep -v '^ts=' <<<"$out")"
check_eq "... and makes no key in its place" "" "$(p11 "$NOKEY" --list-objects --type secrkey | grep audit-mac || true)"
MAC_BAD="MAC does not match (not written by this CA's key)"

# A CA folder made before keying: no audit-mac key, a chain of plain SHA-256, and no checkpoints yet (they came
# later, and bind the audit chain's head): made here from a new one.
unkeyed() {
  p11 "$1" --delete-object --type secrkey --label audit-mac >/dev/null
  sqlite3 "$1/camtrust.db" "DROP TRIGGER log_checkpoints_no_delete; DELETE FROM log_checkpoints"
  rm -f "$1/checkpoint.note" # the checkpoint the CA keeps in its folder came after the keyed chain
  $FORGE "$1/camtrust.db" rechain 1
}
OLD=$WORK/old
ca_create "$OLD" >/dev/null
unkeyed "$OLD"
N=$(sql "$OLD/camtrust.db" "select max(seq) from audit")
check_eq "an unkeyed CA folder: no audit key" "" "$(p11 "$OLD" --list-objects --type secrkey | grep audit-mac || true)"
out=$("$CA_BIN" audit verify --dir "$OLD")
check_eq "its first open seals the chain; verify: SHA-256 before the seal, MACs from it" \
  "audit log intact: $((N + 1)) entries, each MACed in the token from entry $((N + 1))" "$(head -1 <<<"$out")"
check_eq "... the seal is an audit.keyed entry naming the key" "camtrust-db|audit.keyed|audit-mac" \
  "$(sql "$OLD/camtrust.db" "select actor, action, subject from audit where seq = $((N + 1))")"
check "... and the key is now in the token" grep -q "label: *audit-mac" <<<"$(p11 "$OLD" --list-objects --type secrkey)"
"$CA_BIN" audit verify --dir "$OLD" >/dev/null
check_eq "... sealed once" 1 "$(sql "$OLD/camtrust.db" "select count(*) from audit where action = 'audit.keyed'")"
sqlite3 "$OLD/camtrust.db" ".backup '$WORK/old-good.db'"
$FORGE "$OLD/camtrust.db" append
rc=0; out=$("$CA_BIN" audit verify --dir "$OLD" 2>&1) || rc=$?
check_eq "an unkeyed entry after the seal is caught" \
  "1 audit log BROKEN: entry $((N + 2)): MAC does not match (not written by this CA's key: a plain SHA-256 hash after entry $((N + 1)) began the keyed chain)" \
  "$rc $(grep BROKEN <<<"$out")"
cp "$WORK/old-good.db" "$OLD/camtrust.db"; rm -f "$OLD/camtrust.db-wal" "$OLD/camtrust.db-shm"
sqlite3 "$OLD/camtrust.db" "DROP TRIGGER IF EXISTS audit_no_update; UPDATE audit SET detail = 'forged' WHERE seq = 3"
$FORGE "$OLD/camtrust.db" rechain 3 "$N"
rc=0; out=$("$CA_BIN" audit verify --dir "$OLD" 2>&1) || rc=$?
check_eq "an entry before the seal edited, its SHA-256 chain recomputed up to the seal: the seal's MAC catches it" \
  "1 audit log BROKEN: entry $((N + 1)): $MAC_BAD" "$rc $(grep BROKEN <<<"$out")"
$FORGE "$OLD/camtrust.db" rechain 3
rc=0; out=$("$CA_BIN" audit verify --dir "$OLD" 2>&1) || rc=$?
check_eq "... recomputed through the seal and on: no entry is MACed any more" \
  "1 audit log BROKEN: no entry is MACed with this CA's audit key (the chain was rewritten, or its keyed entries deleted)" \
  "$rc $(grep BROKEN <<<"$out")"

# Several processes opening the same unkeyed folder at once (a server and commands): the key is made under the
# database's write lock, so there is one key and one seal, and every one of them verifies.
# Six processes open one unkeyed folder at once, twenty times over: one makes the key and seals; the others must see
# that key even when their token module read the token's files while it was being made (SoftHSM then misses it, or
# the user PIN), and never make a second key.
OLD2=$WORK/old2
ca_create "$OLD2" >/dev/null
unkeyed "$OLD2"
intact=0; keys=0; seals=0
for r in $(seq 1 20); do
  R=$WORK/round$r
  cp -a "$OLD2" "$R"
  sed -i "s#$OLD2#$R#g" "$R/softhsm2.conf"
  for i in 1 2 3 4 5 6; do ("$CA_BIN" audit verify --dir "$R" >"$R/par$i.txt" 2>&1; echo "rc=$?" >>"$R/par$i.txt") & done
  wait
  intact=$((intact + $(cat "$R"/par?.txt | grep -c '^rc=0$')))
  grep -h 'BROKEN\|camtrust-ca:\|^rc=[1-9]' "$R"/par?.txt | sort | uniq -c | sed "s/^/# round $r: /" || true
  keys=$((keys + $(p11 "$R" --list-objects --type secrkey | grep -c 'label: *audit-mac')))
  seals=$((seals + $(sql "$R/camtrust.db" "select count(*) from audit where action = 'audit.keyed'")))
done
check_eq "six concurrent first opens, 20 times: all intact" 120 "$intact"
check_eq "... one audit key in the token each time" 20 "$keys"
check_eq "... one seal each time" 20 "$seals"
finish
