#!/usr/bin/env bash
# The CA's peers killed while their tokens open keep their keys: the factory station (its mTLS key) and a witness
# (its cosigning key), each in its own SoftHSM token. SoftHSM rewrites a token's token.object at every login
# (truncated, then written); killed in between, a station lost the key its certificate certifies (no provisioning
# until the CA certifies a new one) and a witness the key the CA and stations count cosignatures of. Killed exactly
# there (strace injects SIGKILL at that write), the next start opens the token from the copy kept beside it: the
# station provisions a real camera through the real CA (EST over mTLS with its token key), the witness cosigns the
# CA's checkpoint (its token's Ed25519 key). Usage: token_object_kill_peers.sh PATH/TO/camtrust-ca
CA_BIN=$1
BUILD=$(cd "$(dirname "$CA_BIN")/.." && pwd)
STATION_BIN=$BUILD/provision/camtrust-station
AGENT_BIN=$BUILD/device-agent/camtrust-agent
SIM_BIN=$BUILD/device-agent/camtrust-agent-sim
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/token_kill_lib.sh"

CA=$WORK/ca ST=$WORK/station W1=$WORK/w1
ca_create "$CA" >/dev/null
"$STATION_BIN" init --dir "$ST" --name line1 >/dev/null
"$CA_BIN" station add --dir "$CA" --name line1 --csr "$ST/station.csr" --out "$WORK/line1.pem" >/dev/null
"$STATION_BIN" install --dir "$ST" --cert "$WORK/line1.pem" --ca-root "$CA/ops-root.pem" >/dev/null
station_root_crl_none "$ST"
printf 'CAM0001\nCAM0002\n' >"$WORK/serials"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX1 --serials "$WORK/serials" >/dev/null
"$CA_BIN" witness init --dir "$W1" --name witness.example.org/w1 >/dev/null
cp "$W1/witness.vkey" "$CA/witnesses.vkeys"
WITH_HTTP=1 start_ca "$CA"
HTTP=http://127.0.0.1:$HTTP_PORT

# provisions SERIAL: a simulated camera in factory mode, provisioned by the station through the CA (exit 0: done)
provisions() {
  local cam=$WORK/$1 rc=0
  "$SIM_BIN" simulate --dir "$cam" --serial "$1" --model CX1 --root "$CA/root.pem" >/dev/null
  : >"$cam.out"
  "$AGENT_BIN" factory --dir "$cam" --listen 127.0.0.1:0 >"$cam.out" 2>>"$WORK/agents.log" &
  BG_PIDS+=($!)
  wait_listening "$cam.out" $! || return 1
  "$STATION_BIN" provision --dir "$ST" --ca "https://localhost:$PORT" --device "$ADDR" --report "$WORK/$1.jsonl" \
    --timeout-ms 10000 >/dev/null 2>"$WORK/$1.progress" || rc=$?
  stop_bg
  return $rc
}
# cosigns N: a witness run polling the CA's log until the served checkpoint covers N certificates and carries its
# cosignature (up to 15 s)
cosigns() {
  local found=1
  "$CA_BIN" witness --dir "$W1" --log "$HTTP" --vkey "$CA/log.vkey" --interval 0.2 2>>"$WORK/witness.log" &
  BG_PIDS+=($!)
  for _ in $(seq 1 150); do
    curl -s -o "$WORK/cp.note" --max-time 5 "$HTTP/log/checkpoint" || true
    if [ "$(sed -n 2p "$WORK/cp.note")" = "$1" ] && grep -q '^— witness\.example\.org/w1 ' "$WORK/cp.note"; then
      found=0; break
    fi
    sleep 0.1
  done
  stop_bg
  return $found
}

# ---- the station ----
STATION_OBJECT=$(token_object "$ST")
killed_at_token_write "the station's provision" "$STATION_OBJECT" \
  "$STATION_BIN" provision --dir "$ST" --ca "https://localhost:$PORT" --device 127.0.0.1:1
check "the next station run provisions a camera through the CA with its token key" provisions CAM0001
check "... and token.object is whole again" test -s "$STATION_OBJECT"
check "... with its copy beside it" cmp -s "$STATION_OBJECT" "$STATION_OBJECT~"

# ---- the witness ----
WITNESS_OBJECT=$(token_object "$W1")
killed_at_token_write "the witness's start" "$WITNESS_OBJECT" \
  "$CA_BIN" witness --dir "$W1" --log "$HTTP" --vkey "$CA/log.vkey" --interval 0.2
check "the next witness run cosigns the CA's checkpoint of 2 certificates with its token key" cosigns 2
check "... and token.object is whole again" test -s "$WITNESS_OBJECT"
finish
