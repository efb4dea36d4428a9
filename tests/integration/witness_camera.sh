#!/usr/bin/env bash
# A camera's identity proven in a tree only it sees: the attacker runs the CA (root on its host: copies its folder,
# token included, and serves the copy), a witness w1 (its own token) and a station requiring w1's cosignature
# (--witnesses 1) are honest. The station installs a camera only with a checkpoint the witness cosigned, as it
# keeps only such checkpoints itself: else the copy grown aside proves the camera's leaves to the station alone,
# the witness never sees them, and the log everyone else watches goes on without them, no one the wiser.
#   honest: the camera's checkpoint carries w1's cosignature; the camera boots.
#   hidden: the copy served while w1 cannot reach it: the camera is refused ("not witnessed"), not installed.
#   shown: the copy served to w1 too: the camera is installed (cosigned), and when the attacker goes back to the
#          log everyone watches and grows it with other certificates, w1 refuses it and reports it.
#   a station requiring no witness: the copy taken away before its look after the batch; the camera's checkpoint
#          joined its history, so its next log check finds the log everyone watches forked.
# Usage: witness_camera.sh BUILD_DIR
BUILD=$1
CA_BIN=$BUILD/ca/camtrust-ca
STATION_BIN=$BUILD/provision/camtrust-station
AGENT_BIN=$BUILD/device-agent/camtrust-agent
SIM_BIN=$BUILD/device-agent/camtrust-agent-sim
. "$(dirname "$0")/witness_lib.sh"

SIDE=$WORK/ca-side # the attacker's copy of the CA folder
ST=$WORK/station
mkdir -p "$WORK/cams"
witness_setup
"$STATION_BIN" init --dir "$ST" --name line1 >/dev/null
"$CA_BIN" station add --dir "$CA" --name line1 --csr "$ST/station.csr" --out "$WORK/line1.pem" >/dev/null
"$STATION_BIN" install --dir "$ST" --cert "$WORK/line1.pem" --ca-root "$CA/ops-root.pem" --log-vkey "$CA/log.vkey" \
  --witness-vkey "$W1/witness.vkey" --witnesses 1 >/dev/null
station_root_crl_none "$ST"
printf 'CAM001\nCAM002\nCAM003\n' >"$WORK/serials"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX1 --serials "$WORK/serials" >/dev/null
station_with_order line2 OTHER1 OTHER2 OTHER3 OTHER4 OTHER5 OTHER6 OTHER7 OTHER8 # certificates the log everyone watches gets instead

# A station pinning the log key that requires no witness: the checkpoints it hands to cameras join its history.
ST0=$WORK/station0
"$STATION_BIN" init --dir "$ST0" --name line3 >/dev/null
"$CA_BIN" station add --dir "$CA" --name line3 --csr "$ST0/station.csr" --out "$WORK/line3.pem" >/dev/null
"$STATION_BIN" install --dir "$ST0" --cert "$WORK/line3.pem" --ca-root "$CA/ops-root.pem" --log-vkey "$CA/log.vkey" >/dev/null
station_root_crl_none "$ST0"
printf 'CAM004\n' >"$WORK/serials0"
"$CA_BIN" order create --dir "$CA" --station line3 --model CX1 --serials "$WORK/serials0" >/dev/null

# camera NAME SERIAL: a simulated camera pinning the device root and the log key, in factory mode; sets ADDR.
camera() {
  "$SIM_BIN" simulate --dir "$WORK/cams/$1" --serial "$2" --model CX1 --root "$CA/root.pem" --log-vkey "$CA/log.vkey" >/dev/null
  : >"$WORK/cams/$1.out"
  "$AGENT_BIN" factory --dir "$WORK/cams/$1" --listen 127.0.0.1:0 >"$WORK/cams/$1.out" 2>>"$WORK/agents.log" &
  BG_PIDS+=($!)
  wait_listening "$WORK/cams/$1.out" $!
}
# provision REPORT ADDR: one camera, through the CA serving now; sets RC.
provision() {
  RC=0
  "$STATION_BIN" provision --dir "$ST" --ca "https://localhost:$PORT" --report "$1" --timeout-ms 3000 --device "$2" \
    >/dev/null 2>"$WORK/progress" || RC=$?
}
field() { python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if json.loads(l).get("serial") == sys.argv[2]][0][sys.argv[3]])' "$@"; }
boot_rc() { local rc=0; "$AGENT_BIN" boot --dir "$WORK/cams/$1" >/dev/null 2>&1 || rc=$?; echo "$rc"; }
cosigned_note() { sed -n '/^# log checkpoint$/,$p' "$WORK/cams/$1/credentials.pem" | grep -q '^— witness\.example\.org/w1 '; }
# signed_over N [w1]: the CA serves a checkpoint of N leaves (it signs one log.sth_delay_ms after a burst), with w1's
# cosignature when asked (bounded)
signed_over() {
  for _ in $(seq 1 100); do
    curl -s --max-time 5 -o "$WORK/served.note" "http://127.0.0.1:$HTTP_PORT/log/checkpoint" || true
    [ "$(sed -n 2p "$WORK/served.note")" = "$1" ] && { [ -z "${2:-}" ] || grep -q "^— witness\.example\.org/$2 " "$WORK/served.note"; } &&
      return 0
    sleep 0.1
  done
  return 1
}
# ---- honest: the camera's checkpoint is witnessed ----
WITH_HTTP=1 start_ca "$CA"
start_witness
camera cam1 CAM001; A1=$ADDR
provision "$WORK/r1.jsonl" "$A1"
check_eq "honest: the camera is provisioned (exit 0)" "0 provisioned" "$RC $(field "$WORK/r1.jsonl" CAM001 status)"
check "... with a checkpoint w1 cosigned, kept in its credentials" cosigned_note cam1
check_eq "... and it boots" 0 "$(boot_rc cam1)"
stop_witness
cleanup_server
LEAVES=$(sql "$CA/camtrust.db" "select count(*) from log_leaves")

# ---- hidden: the attacker serves a copy of the CA, grown aside, which w1 cannot reach ----
cp -a "$CA" "$SIDE"
WITH_HTTP=1 start_ca "$SIDE"
# (the copy's start signs a checkpoint of the same tree, its audit chain grown: w1 may see that one, which holds
# nothing new, and the station's check before the batch needs its cosignature)
start_witness
check "w1 cosigns the copy's first checkpoint (the same tree)" signed_over "$LEAVES" w1
stop_witness
camera cam2 CAM002; A2=$ADDR
provision "$WORK/r2.jsonl" "$A2"
check "the copy issued CAM002's certificates (leaves only the station sees)" \
  test "$(sql "$SIDE/camtrust.db" "select count(*) from certificates where device_serial = 'CAM002'")" -gt 0
check_eq "hidden: the camera is not installed with a checkpoint no witness cosigned (exit 1, failed)" \
  "1 failed" "$RC $(field "$WORK/r2.jsonl" CAM002 status)"
check "... the reason names the missing witness" grep -q "not witnessed: the CA's checkpoint of size [0-9]* for the camera's proofs has 0 of the 1 cosignatures required (1 witnesses configured; missing: witness.example.org/w1)" \
  <<<"$(field "$WORK/r2.jsonl" CAM002 reason)"
check_eq "... and the camera stays unprovisioned" 3 "$(boot_rc cam2)"

# ---- shown: the copy served to w1 too; then the log everyone watches grows with other certificates ----
start_witness
camera cam3 CAM003; A3=$ADDR
provision "$WORK/r3.jsonl" "$A3"
check_eq "shown: once w1 cosigns the copy's checkpoint, the camera is provisioned" \
  "0 provisioned" "$RC $(field "$WORK/r3.jsonl" CAM003 status)"
check "... its checkpoint carries w1's cosignature" cosigned_note cam3
stop_witness
cleanup_server
check_eq "the log everyone watches never saw the copy's leaves" "$LEAVES" "$(sql "$CA/camtrust.db" "select count(*) from log_leaves")"
WITH_HTTP=1 start_ca "$CA"
enroll OTHER1 OTHER2 OTHER3 OTHER4 OTHER5 OTHER6 # more leaves than the copy's
check "the log everyone watches grows past the copy, signed" signed_over $((LEAVES + 6))
check "... larger than the copy's newest checkpoint w1 keeps" test "$(sed -n 2p "$W1/state.note")" -lt $((LEAVES + 6))
: >"$WORK/witness.log"
rc=0; bounded 30 "$CA_BIN" witness --dir "$W1" --log "http://127.0.0.1:$HTTP_PORT" --vkey "$CA/log.vkey" --interval 0.2 \
  2>"$WORK/witness.log" || rc=$?
check_eq "... w1 refuses the log everyone watches once it is not consistent with the copy it cosigned (exit 1)" 1 "$rc"
# (its tree forked from the copy's; which it names first depends on whose audit chain grew more)
check "... saying why, one line" grep -Eq "event=witness_refused .*reason=\"the CA's (log forked|audit chain (shrank|forked))" \
  "$WORK/witness.log"
check "... and the CA records the report" grep -Eq 'event=witness_reported answer="recorded witness report 1: (fork|rollback)' \
  "$WORK/witness.log"

# ---- a station requiring no witness: the copy served for one camera, then taken away before the station looks
# again after the batch (held there: the attacker has all the time it needs); the camera's checkpoint is the
# station's history, so the log everyone watches is found forked from it ----
RC=0; "$STATION_BIN" log check --dir "$ST0" --ca "https://localhost:$PORT" >/dev/null 2>&1 || RC=$?
check_eq "station 0 keeps the checkpoint of the log everyone watches" "0 $((LEAVES + 6))" "$RC $(sed -n 2p "$ST0/log/checkpoint.note")"
cleanup_server
cp -a "$CA" "$WORK/ca-side2"
WITH_HTTP=1 start_ca "$WORK/ca-side2"
camera cam4 CAM004; A4=$ADDR
: >"$WORK/progress4"
CAMTRUST_FAILPOINT=station:batch-done CAMTRUST_FAILPOINT_RELEASE=$WORK/release "$STATION_BIN" provision --dir "$ST0" \
  --ca "https://localhost:$PORT" --report "$WORK/r4.jsonl" --timeout-ms 3000 --device "$A4" >/dev/null 2>"$WORK/progress4" &
SPID=$!
held() { for _ in $(seq 1 300); do grep -q 'event=failpoint_held' "$WORK/progress4" && return 0; sleep 0.1; done; return 1; }
check "the station provisioned the camera through the copy (held after the batch)" held
cleanup_server # the copy taken away: the station's look after the batch finds the CA unreachable (said, not stopping)
touch "$WORK/release"
RC=0; wait "$SPID" || RC=$?
check_eq "... the camera is provisioned with the copy's checkpoint" "provisioned" "$(field "$WORK/r4.jsonl" CAM004 status)"
check_eq "... and boots" 0 "$(boot_rc cam4)"
WITH_HTTP=1 start_ca "$CA"
enroll OTHER7 OTHER8
check "the log everyone watches grows, signed" signed_over $((LEAVES + 8))
RC=0; OUT=$("$STATION_BIN" log check --dir "$ST0" --ca "https://localhost:$PORT" 2>&1) || RC=$?
check_eq "station 0's log check refuses it: forked from the checkpoint it handed the camera (exit 1)" 1 "$RC"
echo "$OUT" >"$WORK/st0.out"
check "... saying so, one line" grep -Eq "^camtrust-station: the CA's (log|audit chain) forked: .* the kept $ST0/log/checkpoint.note" <<<"$OUT"
finish
