#!/usr/bin/env bash
# How many witnesses a station requires (install --witnesses K of N witness keys): an honest witness cosigns one of
# two forked histories at most, so with K at or below half (2K <= N) a CA can show one fork to some witnesses and
# stations and another to the rest, each fork gathering its K cosignatures, and only stations comparing what they
# kept (log compare) see it. Install says so in one warning line (and still installs); K above half says nothing.
# Usage: station_witness_quorum.sh BUILD_DIR
BUILD=$1
CA_BIN=$BUILD/ca/camtrust-ca
STATION_BIN=$BUILD/provision/camtrust-station
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

CA=$WORK/ca ST=$WORK/station
ca_create "$CA" >/dev/null
for w in w1 w2; do "$CA_BIN" witness init --dir "$WORK/$w" --name "witness.example.org/$w" >/dev/null; done
"$STATION_BIN" init --dir "$ST" --name line1 >/dev/null
"$CA_BIN" station add --dir "$CA" --name line1 --csr "$ST/station.csr" --out "$WORK/line1.pem" >/dev/null
# install K [--witness-vkey ...]: the station installed requiring K; sets RC, its stderr in $WORK/err.
install() {
  local k=$1; shift
  RC=0
  "$STATION_BIN" install --dir "$ST" --cert "$WORK/line1.pem" --ca-root "$CA/ops-root.pem" --log-vkey "$CA/log.vkey" \
    "$@" --witnesses "$k" >/dev/null 2>"$WORK/err" || RC=$?
}
required() { sed -n 's/^log.witnesses_required = //p' "$ST/station.conf"; }
BOTH=(--witness-vkey "$WORK/w1/witness.vkey" --witness-vkey "$WORK/w2/witness.vkey")

install 1 "${BOTH[@]}"
check_eq "1 of 2 witnesses: installed" "0 1" "$RC $(required)"
check_eq "... with one warning line on stderr" 1 "$(wc -l <"$WORK/err")"
check "... saying K is not above half and what is" grep -qx "camtrust-station: warning: 1 of 2 witnesses is not above half: two forks of the log could each gather 1 cosignature from witnesses apart, seen only when stations compare (log compare); --witnesses 2 is above half" "$WORK/err"
install 2 "${BOTH[@]}"
check_eq "2 of 2: installed, nothing said" "0 2 0" "$RC $(required) $(wc -c <"$WORK/err")"
install 1
check_eq "K alone (the two keys kept) back to 1: installed, warned again" "0 1 1" \
  "$RC $(required) $(grep -c '^camtrust-station: warning: 1 of 2 witnesses is not above half' "$WORK/err")"
install 1 --witness-vkey "$WORK/w1/witness.vkey"
check_eq "1 of 1: installed, nothing said" "0 1 0" "$RC $(required) $(wc -c <"$WORK/err")"
install 0 "${BOTH[@]}"
check_eq "none required: installed, nothing said" "0 0 0" "$RC $(required) $(wc -c <"$WORK/err")"
finish
