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
