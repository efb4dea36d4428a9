#!/usr/bin/env bash
# The factory station (camtrust-station, its own token) against the real CA on loopback, attacked through its own
# files and runs: two runs of one station at once must not put an older kept checkpoint back over a newer one; a
# report left with an unfinished line (a power cut, a full disk) must not have the next line glued to it; a CA
# address that answers a byte at a time must not hold the station past its timeout.
# Usage: station_attack.sh BUILD_DIR
BUILD=$1
CA_BIN=$BUILD/ca/camtrust-ca
STATION_BIN=$BUILD/provision/camtrust-station
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

CA=$WORK/ca
ST=$WORK/station
ca_create "$CA" >/dev/null
"$STATION_BIN" init --dir "$ST" --name line1 >/dev/null
"$CA_BIN" station add --dir "$CA" --name line1 --csr "$ST/station.csr" --out "$WORK/line1.pem" >/dev/null
"$STATION_BIN" install --dir "$ST" --cert "$WORK/line1.pem" --ca-root "$CA/ops-root.pem" --log-vkey "$CA/log.vkey" >/dev/null
station_root_crl_none "$ST"
station_with_order line9 CAM0001 CAM0002 CAM0003 # an openssl-keyed station that enrolls cameras with curl
WITH_HTTP=1 start_ca "$CA"
URL=https://localhost:$PORT

enroll() {
  make_csr "$WORK/$1" "/serialNumber=$1/CN=x"
  est_post simpleenroll "$WORK/$1.b64" "$WORK/$1.p7b64" --cert "$WORK/station.pem" --key "$WORK/station.key" >/dev/null
}
# wait_size N: until the CA's checkpoint covers N certificates (it signs one log.sth_delay_ms after a burst)
wait_size() {
  for _ in $(seq 1 100); do
    [ "$(curl -s --max-time 5 "http://127.0.0.1:$HTTP_PORT/log/checkpoint" | sed -n 2p)" = "$1" ] && return 0
    sleep 0.1
  done
  return 1
}
kept_size() { sed -n 2p "$ST/log/checkpoint.note"; }

# ---- two runs of one station at once: the kept checkpoint never goes back ----
enroll CAM0001; wait_size 1
"$STATION_BIN" log check --dir "$ST" --ca "$URL" >/dev/null 2>&1
check_eq "the station keeps the CA's checkpoint of size 1" 1 "$(kept_size)"
enroll CAM0002; wait_size 2
# run A verifies the checkpoint of size 2, then is held before it keeps it
CAMTRUST_FAILPOINT=station:log-verified CAMTRUST_FAILPOINT_RELEASE=$WORK/release \
  "$STATION_BIN" log check --dir "$ST" --ca "$URL" >/dev/null 2>"$WORK/a.err" &
A=$!
for _ in $(seq 1 200); do grep -q failpoint_held "$WORK/a.err" && break; sleep 0.05; done
check "run A holds between verifying size 2 and keeping it" grep -q failpoint_held "$WORK/a.err"
enroll CAM0003; wait_size 3
# run B sees size 3; it is given 5 s to finish on its own before A goes on
"$STATION_BIN" log check --dir "$ST" --ca "$URL" >"$WORK/b.out" 2>&1 &
B=$!
for _ in $(seq 1 100); do kill -0 "$B" 2>/dev/null || break; sleep 0.05; done
touch "$WORK/release"
rc_a=0; wait "$A" || rc_a=$?
rc_b=0; wait "$B" || rc_b=$?
check_eq "both runs succeed" "0 0" "$rc_a $rc_b"
check_eq "the kept checkpoint is the newest (3), not A's older one put back over B's" 3 "$(kept_size)"
check "B checked the CA's size 3 against what A kept, in turn" grep -q "size 3 consistent with the kept one (size 2)" "$WORK/b.out"

# ---- a report with an unfinished last line ----
R=$WORK/report.jsonl
printf '{"device":"127.0.0.1:1","serial":"X","status":"failed","reason":"r","ms":{}}\n{"device":"127.0.0.1:1","ser' >"$R"
rc=0
"$STATION_BIN" provision --dir "$ST" --ca "$URL" --report "$R" --device 127.0.0.1:1 --timeout-ms 2000 \
  >/dev/null 2>"$WORK/progress" || rc=$?
check_eq "a camera that is not there fails the run" 1 "$rc"
check_eq "the report holds the earlier line and the new one" 2 "$(wc -l <"$R")"
check "every line of the report is one JSON object" python3 -c '
import json, sys
for l in open(sys.argv[1]): json.loads(l)' "$R"
check "the station says it cut the unfinished line" grep -q "ended with an unfinished line (28 bytes" "$WORK/progress"
printf 'notes of the shift, not a report' >"$WORK/notes.txt"
cp "$WORK/notes.txt" "$WORK/notes.orig"
rc=0
"$STATION_BIN" provision --dir "$ST" --ca "$URL" --report "$WORK/notes.txt" --device 127.0.0.1:1 --timeout-ms 2000 \
  >/dev/null 2>"$WORK/progress" || rc=$?
check_eq "a --report whose tail is no report line is refused" 1 "$rc"
check "... and left as it was" cmp "$WORK/notes.txt" "$WORK/notes.orig"

# ---- a CA address that answers a byte at a time (0.2 s apart, within any per-read timeout) ----
python3 "$HERE/net_peer.py" --mode trickle >"$WORK/slow.out" 2>"$WORK/slow.err" &
BG_PIDS+=($!)
wait_listening "$WORK/slow.out" $!
rc=0
out=$(bounded 60 "$STATION_BIN" log check --dir "$ST" --ca "https://localhost:${ADDR##*:}" --timeout-ms 1000 2>&1) || rc=$?
check_eq "log check gives up at its --timeout-ms, not when the peer stops (exit 1, not killed)" 1 "$rc"
check "... saying the TLS handshake timed out" grep -q "TLS with the CA at https://localhost:${ADDR##*:} failed: timed out" <<<"$out"
rc=0
bounded 60 "$STATION_BIN" provision --dir "$ST" --ca "https://localhost:${ADDR##*:}" --device 127.0.0.1:1 \
  --timeout-ms 1000 --report "$WORK/slow.jsonl" >/dev/null 2>"$WORK/slow-progress" || rc=$?
check_eq "provision too ends on its own (exit 1)" 1 "$rc"

finish
