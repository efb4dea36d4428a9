#!/usr/bin/env bash
# Folders that survive a kill and work from anywhere. `camtrust-ca init`, `camtrust-station init` and
# `camtrust-agent simulate` build in a staging folder (DIR.init-PID) renamed to DIR when whole: killed at any step
# (failpoints, then a real kill -9) they leave no DIR, and the next run works and removes the stale stage. Their
# SoftHSM configs hold absolute token paths: folders made with a relative --dir work from any working directory.
# Usage: init_kill.sh BUILD_DIR
BUILD=$(cd "$1" && pwd)
CA_BIN=$BUILD/ca/camtrust-ca
STATION_BIN=$BUILD/provision/camtrust-station
AGENT_BIN=$BUILD/device-agent/camtrust-agent
SIM_BIN=$BUILD/device-agent/camtrust-agent-sim
. "$(dirname "$0")/lib.sh"
cd "$WORK"

# killed_at BIN POINT FOLDER ARGS...: runs BIN ARGS with the failpoint; checks it died there and left no FOLDER.
killed_at() {
  local bin=$1 point=$2 folder=$3 rc=0; shift 3
  CAMTRUST_FAILPOINT=$point "$bin" "$@" >/dev/null 2>&1 || rc=$?
  check_eq "$(basename "$bin") $1 killed at $point: it died there" 137 "$rc"
  check "... and left no $folder folder" test ! -e "$folder"
}

# ---- the CA ----
for point in write:temp-written init:token init:keys init:certificates init:database init:relocated stage:synced; do
  killed_at "$CA_BIN" $point ca init --dir ca
done
check "the killed inits left their stages beside it" bash -c "ls -d ca.init-* >/dev/null"
check "init then works (relative --dir)" "$CA_BIN" init --dir ca
check "... and removed the stale stages" bash -c "! ls -d ca.init-* 2>/dev/null"
check "its SoftHSM config names the token store by an absolute path" grep -q "^directories.tokendir = $WORK/ca/tokens\$" ca/softhsm2.conf
check "a second init is refused" bash -c "! '$CA_BIN' init --dir ca 2>/dev/null"
check "init refuses a folder holding other files" bash -c "mkdir junk && touch junk/x && ! '$CA_BIN' init --dir junk 2>/dev/null && test -e junk/x"
# A config written first (another HSM, other settings) is kept, also through a killed init.
mkdir preset
printf 'subject.organization = Preset Org\n' >preset/camtrust-ca.conf
rc=0; CAMTRUST_FAILPOINT=init:certificates "$CA_BIN" init --dir preset >/dev/null 2>&1 || rc=$?
check_eq "init with a preset config killed at init:certificates: it died there" 137 "$rc"
check "... and left the folder as it was" bash -c "test \"\$(ls preset)\" = camtrust-ca.conf"
check "init in a folder holding only its config" "$CA_BIN" init --dir preset
check "... keeps that config" grep -q "Preset Org" <(openssl req -in preset/device-issuing.csr -noout -subject)

# Used from elsewhere: serve, and a station of a relative folder, from /.
ca_create ca >/dev/null # the key ceremony for it
cd /
start_ca "$WORK/ca"
check "the CA made with a relative --dir serves from another directory" \
  curl -sf --max-time 20 --cacert "$WORK/ca/ops-root.pem" -o /dev/null "https://localhost:$PORT/.well-known/est/cacerts"
cleanup_server
check "... and its audit verifies" "$CA_BIN" audit verify --dir "$WORK/ca"
cd "$WORK"

# ---- a real kill -9 during init (whenever it lands: DIR is absent or a whole CA, never half) ----
"$CA_BIN" init --dir ca9 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 400); do ls -d ca9.init-*/tokens >/dev/null 2>&1 && break; kill -0 $pid 2>/dev/null || break; sleep 0.01; done
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
if [ -e ca9 ]; then
  check "killed -9 after its rename: a whole CA" "$CA_BIN" audit verify --dir ca9
else
  check "killed -9: no ca9 folder, and init then works" "$CA_BIN" init --dir ca9
fi
check "no stage is left after that" bash -c "! ls -d ca9.init-* 2>/dev/null"

# ---- a folder the system made for a service (/var/lib/NAME: the parent is not writable): staged inside it ----
if [ "$(id -u)" = 0 ]; then
  # The test folder is private to root: this part lives in a world-traversable one of its own.
  SYS=$(mktemp -d /tmp/camtrust-sys.XXXXXX)
  trap 'cleanup_server; rm -rf "$WORK" "$SYS"' EXIT
  chmod 755 "$SYS"
  ln -s "$SYS" sys
  mkdir sys/ca && chown nobody sys/ca
  AS_SERVICE="setpriv --reuid=nobody --regid=nogroup --clear-groups"
  rc=0; $AS_SERVICE env CAMTRUST_FAILPOINT=init:certificates "$CA_BIN" init --dir "$SYS/ca" >/dev/null 2>&1 || rc=$?
  check_eq "init by a service user in a folder it may not leave, killed at init:certificates: it died there" 137 "$rc"
  check "... leaving only a hidden stage inside the folder" bash -c "test -z \"\$(ls sys/ca)\" && ls -A sys/ca | grep -q '^\.init-[0-9]*\$'"
  rc=0; $AS_SERVICE env CAMTRUST_FAILPOINT=stage:moving "$CA_BIN" init --dir "$SYS/ca" >/dev/null 2>&1 || rc=$?
  check_eq "init again, killed half-way through moving the whole CA up: it died there" 137 "$rc"
  check "... the CA is not there yet (no database)" test ! -e sys/ca/camtrust.db
  check "the next init finishes that move (the CA was whole) and says so" \
    bash -c "$AS_SERVICE '$CA_BIN' init --dir '$SYS/ca' 2>&1 | grep -q 'already holds a CA'"
  check "... no stage is left" bash -c "! ls -A sys/ca | grep -q '^\.init-'"
  check "... and that CA verifies" $AS_SERVICE "$CA_BIN" audit verify --dir "$SYS/ca"
fi

# ---- the station ----
for point in write:temp-written init:keys stage:synced; do
  killed_at "$STATION_BIN" $point st init --dir st --name line1
done
check "station init then works (relative --dir)" "$STATION_BIN" init --dir st --name line1
check "... and removed the stale stages" bash -c "! ls -d st.init-* 2>/dev/null"
"$CA_BIN" station add --dir ca --name line1 --csr st/station.csr --out line1.pem >/dev/null
cd /
check "the station's token opens from another directory (install)" \
  "$STATION_BIN" install --dir "$WORK/st" --cert "$WORK/line1.pem" --ca-root "$WORK/ca/ops-root.pem"
cd "$WORK"

# ---- a simulated camera ----
for point in write:temp-written init:token stage:synced; do
  killed_at "$SIM_BIN" $point cam simulate --dir cam --serial CAM1 --model CX1 --root ca/root.pem
done
check "simulate then works (relative --dir)" "$SIM_BIN" simulate --dir cam --serial CAM1 --model CX1 --root ca/root.pem
check "... and removed the stale stages" bash -c "! ls -d cam.init-* 2>/dev/null"
cd /
rc=0; "$AGENT_BIN" boot --dir "$WORK/cam" >/dev/null 2>&1 || rc=$?
check_eq "the camera's token opens from another directory (boot: unprovisioned, 3)" 3 "$rc"
cd "$WORK"
finish
