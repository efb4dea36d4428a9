#!/usr/bin/env bash
# The factory station's device-root CRL (ca.root_crl) against the real CA and vault: a station.conf that names none
# is refused before any request unless it says `none`; the newest CRL the station took is kept per key that signed
# it, so whoever can replace ca.root_crl cannot first hand it a CRL of another key the CA serves (its issuing CA's,
# public at /crl) and then the root's older one (two steps that undid a revocation with one kept file).
# Usage: station_root_crl.sh BUILD_DIR
BUILD=$1
CA_BIN=$BUILD/ca/camtrust-ca
STATION_BIN=$BUILD/provision/camtrust-station
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

CA=$WORK/ca ST=$WORK/station V=$WORK/vault
ca_create "$CA" >/dev/null
vault_quorum "$V"
"$STATION_BIN" init --dir "$ST" --name line1 >/dev/null
"$CA_BIN" station add --dir "$CA" --name line1 --csr "$ST/station.csr" --out "$WORK/line1.pem" >/dev/null
"$STATION_BIN" install --dir "$ST" --cert "$WORK/line1.pem" --ca-root "$CA/ops-root.pem" >/dev/null
cp "$CA/root.crl" "$WORK/root1.crl" # the ceremony's first CRL (cRLNumber 1), as install keeps it
"$CA_BIN" root crl --dir "$V" --root device "${Q[@]}" --out "$WORK/root2.crl" >/dev/null
"$CA_BIN" crl device --dir "$CA" --out "$WORK/issuing.crl" >/dev/null # what the CA serves at /crl
start_ca "$CA"
KEY_HEX=$(openssl x509 -in "$CA/root.pem" -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum | cut -c1-64)
KEPT=$ST/log/root-$KEY_HEX.crl

# run: one provisioning run (no camera answers at 127.0.0.1:9); sets RC, stderr in $WORK/err
run() {
  RC=0
  rm -f "$WORK/report.jsonl"
  "$STATION_BIN" provision --dir "$ST" --ca "https://localhost:$PORT" --report "$WORK/report.jsonl" \
    --device 127.0.0.1:9 --timeout-ms 2000 >/dev/null 2>"$WORK/err" || RC=$?
}
set_crl() { sed -i "s|^ca.root_crl = .*|ca.root_crl = $1|" "$ST/station.conf"; }

# ---- no ca.root_crl: refused, unless the operator says none ----
run
check_eq "a station.conf without ca.root_crl: provision refused in one line, no camera asked" \
  "1 1 1 0" "$RC $(wc -l <"$WORK/err") $(grep -c 'sets no ca.root_crl .*ca.root_crl = none' "$WORK/err") \
$(cat "$WORK/report.jsonl" 2>/dev/null | wc -l)"
set_crl none
run
check_eq "ca.root_crl = none: the run goes on (the camera at :9 fails, a report line)" "1 0 1" "$RC $(grep -c \
  'ca.root_crl' "$WORK/err") $(grep -c '"device":"127.0.0.1:9".*"status":"failed"' "$WORK/report.jsonl" 2>/dev/null)"

# ---- the newest CRL per key ----
cp "$WORK/root2.crl" "$ST/root.crl" && set_crl root.crl
run
check "the root's CRL 2 taken and kept under its key's SHA-256 (log/root-HEX.crl)" cmp -s "$WORK/root2.crl" "$KEPT"
# Step 1: a CRL of another key the CA serves (its issuing CA's own CRL, public).
cp "$WORK/issuing.crl" "$ST/root.crl"
run
check "the issuing CA's CRL as ca.root_crl leaves the root's kept CRL as it was" cmp -s "$WORK/root2.crl" "$KEPT"
# Step 2: the root's older CRL put back.
cp "$WORK/root1.crl" "$ST/root.crl"
run
OLDER="^camtrust-station: ca.root_crl $ST/root.crl is older than the one this station took (log/root-$KEY_HEX.crl):"
check_eq "... then the root's older CRL is refused in one line" "1 1" \
  "$RC $(grep -c "$OLDER its cRLNumber 1 is not above" "$WORK/err")"
check "... and the newer one still kept" cmp -s "$WORK/root2.crl" "$KEPT"
# A station from before kept one log/root.crl: its first run per key still compares with it.
rm "$KEPT" && cp "$WORK/root2.crl" "$ST/log/root.crl"
run
check_eq "a station's earlier log/root.crl (CRL 2) still refuses CRL 1" "1 1" \
  "$RC $(grep -c 'is older than the one this station took' "$WORK/err")"
check "... and keeps nothing under the key" test ! -e "$KEPT"
cp "$WORK/root2.crl" "$ST/root.crl"
run
check "CRL 2 again is taken and kept under the key" cmp -s "$WORK/root2.crl" "$KEPT"
finish
