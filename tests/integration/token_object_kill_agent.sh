#!/usr/bin/env bash
# A camera killed while its token opens keeps its identity. SoftHSM rewrites the token's token.object at every
# login (truncated, then written): a camera losing power there lost the keys its certificates certify, and came back
# a camera that can prove nothing. Killed exactly there (strace injects SIGKILL at that write) as it boots and as it
# starts serving, its next start opens the token from the copy kept beside it and serves HTTPS with its device key,
# which curl checks against the device root. Usage: token_object_kill_agent.sh camtrust-agent factory_client
AGENT_BIN=$1 CLIENT_BIN=$2
SIM_BIN=$(dirname "$AGENT_BIN")/camtrust-agent-sim
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"
. "$(dirname "$0")/token_kill_lib.sh"

make_ca "$WORK/ca" Test
DEV=$WORK/dev NAME=cam0300.devices.example.com
"$SIM_BIN" simulate --dir "$DEV" --serial CAM0300 --model CX300 --root "$WORK/ca/root.pem"
factory_provision "$DEV" CAM0300 "$WORK/ca"
OBJECT=$(token_object "$DEV")
# serves: the camera starts serving and curl, trusting the device root only, reaches it by its name over TLS
serves() {
  start_agent serve "$DEV" || return 1
  curl -sS --max-time 10 --cacert "$WORK/ca/root.pem" --resolve "$NAME:${ADDR##*:}:127.0.0.1" "https://$NAME:${ADDR##*:}/" |
    grep -q "serial CAM0300"
  local rc=$?
  stop_factory
  return $rc
}
check "the provisioned camera serves HTTPS with its device key" serves
check "... and keeps a copy of its token.object beside it" test -s "$OBJECT~"

killed_at_token_write "the camera's boot" "$OBJECT" "$AGENT_BIN" boot --dir "$DEV"
check_eq "the next boot opens the token and says provisioned" provisioned "$(boot_state "$DEV")"
check "... and token.object is whole again" test -s "$OBJECT"

killed_at_token_write "the camera's serve" "$OBJECT" "$AGENT_BIN" serve --dir "$DEV" --listen 127.0.0.1:0
check "the next start serves HTTPS with its device key" serves
check "... and token.object is whole again" test -s "$OBJECT"
finish
