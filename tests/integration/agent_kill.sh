#!/usr/bin/env bash
# Kill test: the agent is killed at every step of an install (failpoints named by CAMTRUST_FAILPOINT, where the
# process _exit(137)s); `camtrust-agent boot` must then find the old state or the new one, never a half, and a
# re-run of factory mode completes. Usage: agent_kill.sh camtrust-agent factory_client
AGENT_BIN=$1 CLIENT_BIN=$2
SIM_BIN=$(dirname "$AGENT_BIN")/camtrust-agent-sim
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

make_ca "$WORK/ca" Test
DEV=$WORK/dev
"$SIM_BIN" simulate --dir "$DEV" --serial CAM0100 --model CX100 --root "$WORK/ca/root.pem"
mkdir -p "$WORK/csr" "$WORK/chains"
start_agent factory "$DEV"
"$CLIENT_BIN" "$ADDR" csrs "$WORK/csr" >/dev/null
stop_factory
sign_both "$WORK/ca" "$WORK/csr" CAM0100 "$WORK/chains"
INSTALL=(device="$WORK/chains/device.chain" media-signing="$WORK/chains/media-signing.chain")

# Before the rename the device is still unprovisioned; from the rename on it is provisioned.
for point in install:verified write:temp-written write:temp-synced write:renamed install:written; do
  case $point in install:verified | write:temp-*) want=unprovisioned ;; *) want=provisioned ;; esac
  if [ "$want" = unprovisioned ]; then
    start_agent factory "$DEV" CAMTRUST_FAILPOINT="$point"
    "$CLIENT_BIN" "$ADDR" install "${INSTALL[@]}" >/dev/null 2>&1 || true
    rc=0; wait "$FACTORY_PID" 2>/dev/null || rc=$?; FACTORY_PID=
    check_eq "killed at $point: the agent died there" 137 "$rc"
    if [ "$point" = write:temp-written ]; then
      check "killed at $point: its temporary file is left" bash -c "ls '$DEV' | grep -q '^credentials.pem.tmp.[0-9]*$'"
    fi
    check_eq "killed at $point: boot says $want" "$want" "$(boot_state "$DEV")"
    check "killed at $point: no credentials file" test ! -e "$DEV/credentials.pem"
    check "killed at $point: the next start removed any temporary file" bash -c "! ls '$DEV' | grep -q '\.tmp\.'"
  else
    # A fresh device for each kill after the rename (the first one is locked by then).
    D=$WORK/dev-$point
    "$SIM_BIN" simulate --dir "$D" --serial CAM0100 --model CX100 --root "$WORK/ca/root.pem"
    start_agent factory "$D"
    mkdir -p "$D.csr" "$D.chains"
    "$CLIENT_BIN" "$ADDR" csrs "$D.csr" >/dev/null
    stop_factory
    sign_both "$WORK/ca" "$D.csr" CAM0100 "$D.chains"
    start_agent factory "$D" CAMTRUST_FAILPOINT="$point"
    "$CLIENT_BIN" "$ADDR" install device="$D.chains/device.chain" media-signing="$D.chains/media-signing.chain" \
      >/dev/null 2>&1 || true
    rc=0; wait "$FACTORY_PID" 2>/dev/null || rc=$?; FACTORY_PID=
    check_eq "killed at $point: the agent died there" 137 "$rc"
    check_eq "killed at $point: boot says $want" "$want" "$(boot_state "$D")"
    # The station never heard the result: factory mode must still start and show what was installed.
    start_agent factory "$D"
    check "killed at $point: factory mode starts again and says provisioned" bash -c "'$CLIENT_BIN' '$ADDR' hello | grep -q 'state=\"provisioned\" profile=\"device\" tag8='"
    stop_factory
  fi
done

# The re-run completes, with the same keys (the CSRs of the first run are still good).
start_agent factory "$DEV"
check_eq "the re-run's HELLO says unprovisioned" unprovisioned "$("$CLIENT_BIN" "$ADDR" hello | sed -n 's/.*state="\([a-z]*\)".*/\1/p')"
check "the re-run installs" "$CLIENT_BIN" "$ADDR" install "${INSTALL[@]}"
stop_factory
check_eq "boot after the re-run says provisioned" provisioned "$(boot_state "$DEV")"
check "boot exits 0 when provisioned" "$AGENT_BIN" boot --dir "$DEV"

# Factory reset unlocks it again.
check "reset" "$AGENT_BIN" reset --dir "$DEV"
check_eq "after reset: unprovisioned" unprovisioned "$(boot_state "$DEV")"
rc=0; "$AGENT_BIN" boot --dir "$DEV" >/dev/null 2>&1 || rc=$?
check_eq "boot exits 3 when unprovisioned" 3 "$rc"
finish
