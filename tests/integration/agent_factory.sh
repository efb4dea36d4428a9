#!/usr/bin/env bash
# Factory mode over a real loopback socket, driven by a minimal station (factory_client): identity, CSRs made
# once and reused, bad input refused with nothing installed, install, lock. Usage: agent_factory.sh camtrust-agent factory_client
AGENT_BIN=$1 CLIENT_BIN=$2
SIM_BIN=$(dirname "$AGENT_BIN")/camtrust-agent-sim
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

make_ca "$WORK/ca" Test
make_ca "$WORK/other" Other
DEV=$WORK/dev
"$SIM_BIN" simulate --dir "$DEV" --serial CAM0300 --model CX300 --mac 00:11:22:33:44:55 --root "$WORK/ca/root.pem"
check "simulate refuses an existing device folder" bash -c "! '$SIM_BIN' simulate --dir '$DEV' --serial CAM0300 --model CX300 --root '$WORK/ca/root.pem' 2>/dev/null"
check "factory refuses a bad address" bash -c "! '$AGENT_BIN' factory --dir '$DEV' --listen nowhere 2>/dev/null"
start_agent factory "$DEV"
state() { "$CLIENT_BIN" "$ADDR" hello | sed -n 's/.*state="\([a-z]*\)".*/\1/p'; }
check "HELLO answers the identity" bash -c "'$CLIENT_BIN' '$ADDR' hello | grep -q 'serial=\"CAM0300\" model=\"CX300\" mac=\"00:11:22:33:44:55\" state=\"unprovisioned\"'"

mkdir -p "$WORK/csr1" "$WORK/csr2" "$WORK/good" "$WORK/bad"
"$CLIENT_BIN" "$ADDR" csrs "$WORK/csr1" >/dev/null
"$CLIENT_BIN" "$ADDR" csrs "$WORK/csr2" >/dev/null
for p in device media-signing; do
  check "the $p CSR verifies (openssl)" bash -c "openssl req -inform DER -in '$WORK/csr1/$p.csr.der' -noout -verify 2>&1 | grep -q OK"
  check "the $p CSR names the serial" bash -c "openssl req -inform DER -in '$WORK/csr1/$p.csr.der' -noout -subject | grep -q 'serialNumber = CAM0300'"
  check "a retry gets the same $p key" cmp <(openssl req -inform DER -in "$WORK/csr1/$p.csr.der" -noout -pubkey) <(openssl req -inform DER -in "$WORK/csr2/$p.csr.der" -noout -pubkey)
done
sign_both "$WORK/ca" "$WORK/csr1" CAM0300 "$WORK/good"
sign_both "$WORK/other" "$WORK/csr1" CAM0300 "$WORK/bad"
GOOD=(device="$WORK/good/device.chain" media-signing="$WORK/good/media-signing.chain")

out=$("$CLIENT_BIN" "$ADDR" install device="$WORK/bad/device.chain" media-signing="$WORK/good/media-signing.chain" || true)
check "a chain from another root is refused with a reason" grep -q 'status="CT_ERR_INTEGRITY" reason=".*pinned device root' <<<"$out"
out=$("$CLIENT_BIN" "$ADDR" install device="$WORK/good/media-signing.chain" media-signing="$WORK/good/device.chain" || true)
check "a certificate for another key is refused" grep -q 'reason=".*another key' <<<"$out"
# Chains that verify signature by signature but that a TLS client refuses (before, each was installed): through a
# CA made under the issuing CA (pathLen 0), through a CA without keyCertSign, a leaf whose keyUsage does not sign.
# signed_by CA KEY EXT OUT [IN]: IN (a CSR, default the device CSR) certified by CA with the extensions EXT.
openssl req -inform DER -in "$WORK/csr1/device.csr.der" -out "$WORK/bad/device.csr" 2>/dev/null
signed_by() {
  printf '%b' "$3" >"$4.ext"
  openssl x509 -req -in "${5:-$WORK/bad/device.csr}" -CA "$1" -CAkey "$2" -CAcreateserial -days 30 -extfile "$4.ext" \
    -out "$4" 2>/dev/null
}
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/bad/ca.key" -subj "/CN=Sub CA" \
  -out "$WORK/bad/ca.csr" 2>/dev/null
LEAF_EXT='basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n'
signed_by "$WORK/ca/issuing.pem" "$WORK/ca/issuing.key" 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n' \
  "$WORK/bad/sub.pem" "$WORK/bad/ca.csr"
signed_by "$WORK/bad/sub.pem" "$WORK/bad/ca.key" "$LEAF_EXT" "$WORK/bad/sub-leaf.pem"
signed_by "$WORK/ca/root.pem" "$WORK/ca/root.key" 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature\n' \
  "$WORK/bad/noku.pem" "$WORK/bad/ca.csr"
signed_by "$WORK/bad/noku.pem" "$WORK/bad/ca.key" "$LEAF_EXT" "$WORK/bad/noku-leaf.pem"
signed_by "$WORK/ca/issuing.pem" "$WORK/ca/issuing.key" 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyAgreement\n' \
  "$WORK/bad/ka-leaf.pem"
cat "$WORK/bad/sub-leaf.pem" "$WORK/bad/sub.pem" "$WORK/ca/issuing.pem" >"$WORK/bad/pathlen.chain"
cat "$WORK/bad/noku-leaf.pem" "$WORK/bad/noku.pem" >"$WORK/bad/noku.chain"
cat "$WORK/bad/ka-leaf.pem" "$WORK/ca/issuing.pem" >"$WORK/bad/ka.chain"
check "(the test is real: openssl verify refuses the pathLen chain)" bash -c "! openssl verify -CAfile '$WORK/ca/root.pem' \
  -untrusted '$WORK/ca/issuing.pem' -untrusted '$WORK/bad/sub.pem' '$WORK/bad/sub-leaf.pem' >/dev/null 2>&1"
for bad in "pathlen:certificate 3 is not a CA for this chain" "noku:certificate 2 is not a CA for this chain" \
  "ka:the leaf is a CA or may not sign"; do
  out=$("$CLIENT_BIN" "$ADDR" install device="$WORK/bad/${bad%%:*}.chain" media-signing="$WORK/good/media-signing.chain" || true)
  check "a device chain '${bad%%:*}' is refused: ${bad#*:}" grep -q "status=\"CT_ERR_INTEGRITY\" reason=\"profile device: ${bad#*:}\"" <<<"$out"
done
check "a truncated INSTALL frame is dropped" "$CLIENT_BIN" "$ADDR" truncate 300 "${GOOD[@]}"
printf 'GET / HTTP/1.1\r\n\r\n' >"$WORK/junk"
check "a frame with a bad magic gets ERROR" bash -c "'$CLIENT_BIN' '$ADDR' raw '$WORK/junk' | grep -q 'type=7 reason=\"not a factory frame'"
check_eq "after all that: still unprovisioned" unprovisioned "$(state)"
check "nothing was installed" test ! -e "$DEV/credentials.pem"

check "the good chains install" "$CLIENT_BIN" "$ADDR" install "${GOOD[@]}"
check_eq "HELLO now says provisioned" provisioned "$(state)"
check "HELLO now shows the two installed certificates" bash -c "'$CLIENT_BIN' '$ADDR' hello | grep -q 'profile=\"device\" tag8=<[0-9]* bytes> profile=\"media-signing\" tag8=<'"
mkdir -p "$WORK/csr3"
"$CLIENT_BIN" "$ADDR" csrs "$WORK/csr3" >/dev/null
for p in device media-signing; do
  check "once locked, GET_CSRS answers for the installed $p key (no new key)" cmp <(openssl req -inform DER -in "$WORK/csr1/$p.csr.der" -noout -pubkey) <(openssl req -inform DER -in "$WORK/csr3/$p.csr.der" -noout -pubkey)
done
check "INSTALL is refused once locked" bash -c "! '$CLIENT_BIN' '$ADDR' install ${GOOD[*]}"
check "openssl verifies the installed credentials" openssl verify -CAfile "$WORK/ca/root.pem" -untrusted "$WORK/ca/issuing.pem" "$DEV/credentials.pem"
kill -TERM "$FACTORY_PID"; rc=0; wait "$FACTORY_PID" || rc=$?; FACTORY_PID=
check_eq "SIGTERM ends factory mode with status 0" 0 "$rc"
check "boot says provisioned" bash -c "'$AGENT_BIN' boot --dir '$DEV' | grep -q '^provisioned serial=CAM0300 model=CX300 identity=\"CAM0300\" notAfter='"
start_agent factory "$DEV"
check_eq "factory mode starts on a locked camera, which says it is provisioned" provisioned "$(state)"
check "... and still refuses INSTALL" bash -c "! '$CLIENT_BIN' '$ADDR' install ${GOOD[*]}"
stop_factory
# A camera whose credentials were tampered with says so.
sed -i 's/^MII/MIJ/' "$DEV/credentials.pem"
check "boot reports a tampered camera as broken" bash -c "'$AGENT_BIN' boot --dir '$DEV' | grep -q '^broken: '"
check "... and exits 1" bash -c "'$AGENT_BIN' boot --dir '$DEV' >/dev/null; test \$? -eq 1"
finish
