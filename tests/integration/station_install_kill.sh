#!/usr/bin/env bash
# `camtrust-station install` changes the station's trust root and its certificate together or not at all. Written
# as two renames, a kill between them left a station trusting one CA's operations root with another CA's
# certificate (a re-install after a new key ceremony, or moving the station to another CA): killed at each step
# (failpoints, then real kill -9s), the next station command finds a whole pair, the old or the new, and no stage.
# The witnesses it is given (--witness-vkey) change with the pair: written after it, a kill between left the new
# root and certificate with the old witness list.
# Usage: station_install_kill.sh BUILD_DIR
BUILD=$(cd "$1" && pwd)
CA_BIN=$BUILD/ca/camtrust-ca
STATION_BIN=$BUILD/provision/camtrust-station
. "$(dirname "$0")/lib.sh"
cd "$WORK"

ca_create caA "$WORK/vaultA" >/dev/null
ca_create caB "$WORK/vaultB" >/dev/null
"$STATION_BIN" init --dir st --name line1 >/dev/null
"$CA_BIN" station add --dir caA --name line1 --csr st/station.csr --out a.pem >/dev/null
"$CA_BIN" station add --dir caB --name line1 --csr st/station.csr --out b.pem >/dev/null
# a witness key per CA (the vectors' key under two names): the list an install of CA X's pair gives is wX.vkey
python3 - "$(dirname "$0")/../vectors/note/witness.vkey" <<'EOF'
import base64, hashlib, sys
key = base64.b64decode(open(sys.argv[1]).read().strip().split("+")[2])
for x in "ab":
    name = "witness.example.org/" + x
    kid = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4].hex()
    open("w%s.vkey" % x, "w").write("%s+%s+%s\n" % (name, kid, base64.b64encode(key).decode()))
EOF
install() {
  "$STATION_BIN" install --dir st --cert "$1.pem" --ca-root "ca${1^^}/ops-root.pem" --witness-vkey "w$1.vkey"
}
fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256; }
# installed: which CA's pair the station holds (a, b), after its next command (here a log check with no CA to
# answer it: it first finishes or drops an install a kill cut short); "mixed" when its certificate does not chain
# to its root; "X with another witness list" when its witness list is not the one installed with CA X's pair.
installed() {
  local got
  "$STATION_BIN" log check --dir st --ca https://127.0.0.1:1 --timeout-ms 1000 >/dev/null 2>&1 || true
  if ! openssl verify -CAfile st/ops-root.pem -untrusted st/station.pem st/station.pem >/dev/null 2>&1; then
    got=mixed
  elif [ "$(fingerprint st/station.pem)" = "$(fingerprint a.pem)" ]; then got=a
  elif [ "$(fingerprint st/station.pem)" = "$(fingerprint b.pem)" ]; then got=b
  else got=unknown; fi
  if [ "${#got}" = 1 ] && ! cmp -s st/witnesses.vkeys "w$got.vkey"; then got="$got with another witness list"; fi
  echo "$got"
}

install a >/dev/null
check_eq "installed from CA A" a "$(installed)"
# Killed before the new pair is whole, the old one stays; killed once it is whole (moving it up), the new one.
for point in write:temp-written write:renamed stage:synced:a stage:moving:b; do
  want=${point##*:}; fp=${point%:[ab]}; [ "$want" = b ] || want=a
  install a >/dev/null
  rc=0; CAMTRUST_FAILPOINT=$fp install b >/dev/null 2>&1 || rc=$?
  check_eq "install of CA B's pair killed at $fp: it died there" 137 "$rc"
  check_eq "... the next command finds CA ${want^^}'s whole pair" "$want" "$(installed)"
  check "... and no stage left" bash -c "! ls -A st | grep -q '^\.init-'"
done
# Real kills, wherever they land once the install stages its files (kills while SoftHSM opens the token:
# token_object_kill.sh).
for delay in 0 0.002 0.005 0.01 0.02 0.05; do
  install a >/dev/null
  "$STATION_BIN" install --dir st --cert b.pem --ca-root caB/ops-root.pem --witness-vkey wb.vkey >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 400); do ls -A st | grep -q '^\.init-' && break; kill -0 $pid 2>/dev/null || break; sleep 0.005; done
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  got=$(installed)
  check "install killed -9 after ${delay} s: a whole pair ($got)" test "$got" = a -o "$got" = b
done
check_eq "install then works" b "$(install b >/dev/null && installed)"
finish
