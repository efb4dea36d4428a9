#!/usr/bin/env bash
# End to end on loopback: the real CA (camtrust-ca serve), a real station (camtrust-station, its own token) and
# real simulated cameras (camtrust-agent factory, each with its own token), plus misbehaving cameras
# (fake_camera.py, a test peer speaking the factory frame format). Usage: provision.sh BUILD_DIR
BUILD=$1
CA_BIN=$BUILD/ca/camtrust-ca
STATION_BIN=$BUILD/provision/camtrust-station
AGENT_BIN=$BUILD/device-agent/camtrust-agent
SIM_BIN=$BUILD/device-agent/camtrust-agent-sim
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

# camera NAME SERIAL [ROOT [simulate options...]]: a simulated camera pinned to ROOT (default: the CA's device
# root) in factory mode; sets ADDR.
camera() {
  local name=$1 serial=$2 root=${3:-$CA/root.pem}
  "$SIM_BIN" simulate --dir "$WORK/cams/$name" --serial "$serial" --model CX1 --root "$root" "${@:4}" >/dev/null
  : >"$WORK/cams/$name.out" # (emptied before the child runs: wait_listening must not read a last run's line)
  "$AGENT_BIN" factory --dir "$WORK/cams/$name" --listen 127.0.0.1:0 >"$WORK/cams/$name.out" 2>>"$WORK/agents.log" &
  BG_PIDS+=($!)
  wait_listening "$WORK/cams/$name.out" $!
}

# fake_camera NAME MODE SERIAL [CSR_SERIAL] [extra args]: sets ADDR.
fake_camera() {
  : >"$WORK/$1.out"
  python3 "$HERE/fake_camera.py" --mode "$2" --serial "$3" ${4:+--csr-serial "$4"} "${@:5}" --log "$WORK/$1.log" \
    >"$WORK/$1.out" 2>>"$WORK/fakes.log" &
  BG_PIDS+=($!)
  wait_listening "$WORK/$1.out" $!
}

# provision REPORT ADDR...: runs the station (progress on stderr into $WORK/progress); sets RC.
provision() {
  local report=$1; shift
  local args=() a
  for a in "$@"; do args+=(--device "$a"); done
  RC=0
  "$STATION_BIN" provision --dir "$ST" --ca "https://localhost:$PORT" --report "$report" --jobs 3 --timeout-ms 5000 \
    "${args[@]}" >"$WORK/summary" 2>"$WORK/progress" || RC=$?
}

# field REPORT SERIAL KEY: the value of KEY in the report line of SERIAL (python3 parses the JSON)
field() {
  python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["serial"] == sys.argv[2]:
        print(r[sys.argv[3]])
EOF
}
count_status() { python3 -c 'import json,sys; print(sum(json.loads(l)["status"] == sys.argv[2] for l in open(sys.argv[1])))' "$1" "$2"; }
boot_rc() { local rc=0; "$AGENT_BIN" boot --dir "$WORK/cams/$1" >/dev/null 2>&1 || rc=$?; echo "$rc"; }
certs_for() { sql "$CA/camtrust.db" "select count(*) from certificates where device_serial='$1'"; }

# ---- a CA, a station registered with it, an order ----
CA=$WORK/ca
ST=$WORK/station
mkdir -p "$WORK/cams"
ca_create "$CA" >/dev/null
"$STATION_BIN" init --dir "$ST" --name line1 >/dev/null
check "station init wrote a CSR that openssl verifies" openssl req -in "$ST/station.csr" -verify -noout
"$CA_BIN" station add --dir "$CA" --name line1 --csr "$ST/station.csr" --out "$WORK/line1.pem" >/dev/null
check "install refuses the device root as the operations root" bash -c "! '$STATION_BIN' install --dir '$ST' --cert '$WORK/line1.pem' --ca-root '$CA/root.pem' 2>/dev/null"
check "station install" "$STATION_BIN" install --dir "$ST" --cert "$WORK/line1.pem" --ca-root "$CA/ops-root.pem"
station_root_crl_none "$ST"
printf 'CAM001\nCAM002\nCAM003\nCAM004\nCAM005\nDOWN01\nROGUE1\nFAKE01\nFAKE02\nFAKE03\nPOWER1\n' >"$WORK/serials"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX1 --serials "$WORK/serials" >/dev/null
start_ca "$CA"

# ---- five cameras, provisioned in one run ----
ADDRS=()
for i in 1 2 3 4 5; do camera cam$i CAM00$i; ADDRS+=("$ADDR"); done
check_eq "five cameras in factory mode" 5 "$(printf '%s\n' "${ADDRS[@]}" | grep -c '^127.0.0.1:')"
check_eq "a camera boots unprovisioned before" 3 "$(boot_rc cam1)"
R1=$WORK/run1.jsonl
provision "$R1" "${ADDRS[@]}"
check_eq "provision exits 0" 0 "$RC"
check_eq "the report has 5 provisioned lines" 5 "$(count_status "$R1" provisioned)"
check "every report line is JSON with device, serial and ms timings" python3 -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    assert r["device"].startswith("127.0.0.1:") and r["serial"].startswith("CAM00")
    assert all(r["ms"][k] > 0 for k in ("keygen", "ca", "install", "total")), r
' "$R1"
check "the summary counts them" grep -q '^5 cameras: 5 provisioned, 0 already provisioned, 0 failed in ' "$WORK/summary"
check "progress is one plain line per camera when stderr is not a terminal" test "$(grep -c ' provisioned (' "$WORK/progress")" -eq 5
ok_boots=0
for i in 1 2 3 4 5; do [ "$(boot_rc cam$i)" = 0 ] && ok_boots=$((ok_boots + 1)); done
check_eq "every camera's boot check passes" 5 "$ok_boots"
check_eq "the CA issued one certificate per serial and profile" 10 "$(sql "$CA/camtrust.db" "select count(*) from certificates where device_serial like 'CAM00%'")"

# ---- a re-run over the same cameras changes nothing ----
touch "$WORK/marker"
sleep 1
rows=$(sql "$CA/camtrust.db" "select count(*) from certificates")
R2=$WORK/run2.jsonl
provision "$R2" "${ADDRS[@]}"
check_eq "the re-run exits 0" 0 "$RC"
check_eq "the re-run reports 5 already-provisioned" 5 "$(count_status "$R2" already-provisioned)"
check_eq "the re-run issued nothing" "$rows" "$(sql "$CA/camtrust.db" "select count(*) from certificates")"
check_eq "the re-run wrote nothing on the cameras" "" "$(find "$WORK/cams" -type f -newer "$WORK/marker" ! -name '*.out')"

# ---- the CA is down: the camera stays unprovisioned, the report says why; a later run finishes it ----
camera down DOWN01; DOWN=$ADDR
cleanup_server
R3=$WORK/run3.jsonl
provision "$R3" "$DOWN"
check_eq "with the CA down, provision exits 1" 1 "$RC"
check "... the report says the CA is unreachable at its URL" grep -q "CA unreachable at https://localhost:$PORT" <<<"$(field "$R3" DOWN01 reason)"
check_eq "... the camera got no INSTALL and boots unprovisioned" 3 "$(boot_rc down)"
start_ca "$CA"
provision "$R3" "$DOWN" "${ADDRS[0]}"
check_eq "once the CA is back, the same run finishes it" "provisioned" "$(field "$R3" DOWN01 status | tail -1)"
check_eq "... and leaves the finished one alone" "already-provisioned" "$(field "$R3" CAM001 status)"

# ---- a camera whose serial is not in the order ----
camera notin NOTIN9; NOTIN=$ADDR
R4=$WORK/run4.jsonl
provision "$R4" "$NOTIN"
check_eq "a serial outside the order fails" failed "$(field "$R4" NOTIN9 status)"
check "... with the CA's 403 reason naming the serial" bash -c "grep -q 'HTTP 403' <<<\"\$0\" && grep -q NOTIN9 <<<\"\$0\"" "$(field "$R4" NOTIN9 reason)"
check_eq "... and the camera stays unprovisioned" 3 "$(boot_rc notin)"

# ---- a camera pinned to another root refuses the chain ----
camera rogue ROGUE1 "$CA/ops-root.pem"; ROGUE=$ADDR
R5=$WORK/run5.jsonl
provision "$R5" "$ROGUE"
check_eq "a camera pinned to another root fails" failed "$(field "$R5" ROGUE1 status)"
check "... the report says the camera refused the install" grep -q "refused the install" <<<"$(field "$R5" ROGUE1 reason)"
check_eq "... and it stays unprovisioned" 3 "$(boot_rc rogue)"

# ---- misbehaving cameras ----
fake_camera wrong wrong-serial FAKE01 FAKE02; WRONG=$ADDR
fake_camera trunc truncate FAKE03; TRUNC=$ADDR
R6=$WORK/run6.jsonl
provision "$R6" "$WRONG" "$TRUNC"
check_eq "a CSR for another serial fails" failed "$(field "$R6" FAKE01 status)"
check "... named as such" grep -q "camera FAKE01 answered a CSR for serial FAKE02" <<<"$(field "$R6" FAKE01 reason)"
check_eq "... nothing was enrolled for either serial" "0 0" "$(certs_for FAKE01) $(certs_for FAKE02)"
check_eq "a truncated answer fails" failed "$(field "$R6" FAKE03 status)"
check "... named as such" grep -q "no complete answer to GET_CSRS" <<<"$(field "$R6" FAKE03 reason)"
check "neither fake camera was sent an INSTALL" bash -c "! grep -q INSTALL '$WORK/wrong.log' '$WORK/trunc.log'"
check "the summary counts the failures" grep -q '^2 cameras: 0 provisioned, 0 already provisioned, 2 failed' "$WORK/summary"

# ---- a power cut right after the camera's rename: the station never hears the result ----
"$SIM_BIN" simulate --dir "$WORK/cams/power" --serial POWER1 --model CX1 --root "$CA/root.pem" >/dev/null
CAMTRUST_FAILPOINT=install:written "$AGENT_BIN" factory --dir "$WORK/cams/power" --listen 127.0.0.1:0 \
  >"$WORK/cams/power.out" 2>>"$WORK/agents.log" &
POWER_PID=$!
wait_listening "$WORK/cams/power.out" $POWER_PID
R8=$WORK/run8.jsonl
provision "$R8" "$ADDR"
rc=0; wait "$POWER_PID" || rc=$?
check_eq "the camera died right after installing" 137 "$rc"
check_eq "... the station reports it failed" failed "$(field "$R8" POWER1 status)"
check_eq "... yet it boots provisioned" 0 "$(boot_rc power)"
# (a new output file each start: the shell truncates a reused one in the child, after wait_listening may have read
# the old line)
"$AGENT_BIN" factory --dir "$WORK/cams/power" --listen 127.0.0.1:0 >"$WORK/cams/power2.out" 2>>"$WORK/agents.log" &
POWER_PID=$!
check "factory mode starts again on the locked camera" wait_listening "$WORK/cams/power2.out" $POWER_PID
provision "$R8" "$ADDR"
check_eq "the next run converges: exit 0" 0 "$RC"
check_eq "... the camera counts as provisioned" already-provisioned "$(field "$R8" POWER1 status | tail -1)"
check "... confirmed by the CA" grep -q "the CA confirms its certificates" <<<"$(field "$R8" POWER1 reason | tail -1)"
check_eq "... with no new certificate" 2 "$(certs_for POWER1)"
check "the summary counts it" grep -q '^1 camera: 0 provisioned, 1 already provisioned, 0 failed' "$WORK/summary"

# A factory reset makes new keys: the CA keeps refusing a second key for an issued serial (an officer revokes
# and reopens it first).
kill -TERM "$POWER_PID"; wait "$POWER_PID" || true
"$AGENT_BIN" reset --dir "$WORK/cams/power"
"$AGENT_BIN" factory --dir "$WORK/cams/power" --listen 127.0.0.1:0 >"$WORK/cams/power3.out" 2>>"$WORK/agents.log" &
BG_PIDS+=($!)
wait_listening "$WORK/cams/power3.out" $!
provision "$R8" "$ADDR"
check "after a reset, provisioning the serial again is refused with 409" grep -q "HTTP 409" <<<"$(field "$R8" POWER1 reason | tail -1)"
check_eq "... and the camera stays unprovisioned" 3 "$(boot_rc power)"

# A camera that claims to be provisioned with another camera's (public) certificates, without their keys.
fake_camera liar claims-provisioned CAM001 "" --installed "$WORK/cams/cam1/credentials.pem"; LIAR=$ADDR
R9=$WORK/run9.jsonl
provision "$R9" "$LIAR"
check_eq "a camera showing certificates whose keys it lacks fails" failed "$(field "$R9" CAM001 status)"
check "... the CA refused its key (409)" grep -q "HTTP 409" <<<"$(field "$R9" CAM001 reason)"
check "... and no INSTALL was sent" bash -c "! grep -q INSTALL '$WORK/liar.log'"

# A device that claims CAM001's serial, shows its certificates and replays CSRs the genuine camera signed earlier
# (captured on the factory LAN): without a challenge (as an exchange with an older station, or an older agent's),
# and with an earlier exchange's nonce. Neither proves it holds the keys now: refused before the CA is asked.
audit_rows() { sql "$CA/camtrust.db" "select count(*) from audit"; }
fake_camera replay replay CAM001 "" --installed "$WORK/cams/cam1/credentials.pem" --capture "${ADDRS[0]}"; REPLAY=$ADDR
fake_camera stale replay CAM001 "" --installed "$WORK/cams/cam1/credentials.pem" --capture "${ADDRS[0]}" \
  --capture-nonce 00112233445566778899aabbccddeeff; STALE=$ADDR
rows=$(audit_rows)
R10=$WORK/run10.jsonl
provision "$R10" "$REPLAY"
check_eq "a device replaying a provisioned camera's CSRs without a challenge fails the run" 1 "$RC"
check_eq "... is not counted provisioned" failed "$(field "$R10" CAM001 status)"
check "... refused for CSRs without the station's challenge" grep -q "camera CAM001 answered a device CSR without the station's challenge" <<<"$(field "$R10" CAM001 reason)"
R11=$WORK/run11.jsonl
provision "$R11" "$STALE"
check_eq "a device replaying CSRs over an earlier exchange's nonce fails the run" 1 "$RC"
check_eq "... is not counted provisioned" failed "$(field "$R11" CAM001 status)"
check "... refused for another challenge than this run's" grep -q "camera CAM001 answered a device CSR for another challenge than this run's" <<<"$(field "$R11" CAM001 reason)"
check "... the summary counts it failed" grep -q '^1 camera: 0 provisioned, 0 already provisioned, 1 failed' "$WORK/summary"
check_eq "... nothing reached the CA (no audit entry)" "$rows" "$(audit_rows)"
check "... and no INSTALL was sent" bash -c "! grep -q INSTALL '$WORK/replay.log' '$WORK/stale.log'"
R12=$WORK/run12.jsonl
provision "$R12" "${ADDRS[0]}"
check_eq "the genuine camera, signing this run's nonce, still counts as already provisioned" "0 already-provisioned" \
  "$RC $(field "$R12" CAM001 status)"

# ---- bad input to the station itself ----
printf '# cameras\n\n%s  # first\n' "${ADDRS[0]}" >"$WORK/devices.txt"
check "a devices file with comments works" "$STATION_BIN" provision --dir "$ST" --ca "https://localhost:$PORT" --devices "$WORK/devices.txt" --report "$WORK/r7.jsonl"
check "provision without cameras is a usage error" bash -c "! '$STATION_BIN' provision --dir '$ST' --ca 'https://localhost:$PORT' 2>/dev/null"
check "a CA URL that is not https is refused" bash -c "! '$STATION_BIN' provision --dir '$ST' --ca 'http://localhost:$PORT' --device '${ADDRS[0]}' 2>/dev/null"

# ---- the station as a witness of the CA's log (issue 11) ----
check_eq "a station that pins no log key says once that it witnesses nothing" 1 \
  "$(grep -c 'pins no log key: it witnesses nothing' "$WORK/progress")"
rc=0; "$STATION_BIN" log check --dir "$ST" --ca "https://localhost:$PORT" >/dev/null 2>"$WORK/err" || rc=$?
check_eq "... and log check fails without one" 1 "$rc"
printf 'camtrust.example.com/x+00000000+AQ==\n' >"$WORK/bad.vkey"
check "install refuses a malformed log key" bash -c "! '$STATION_BIN' install --dir '$ST' --cert '$WORK/line1.pem' --ca-root '$CA/ops-root.pem' --log-vkey '$WORK/bad.vkey' 2>/dev/null"
check "install --log-vkey pins the CA's verifier key" \
  "$STATION_BIN" install --dir "$ST" --cert "$WORK/line1.pem" --ca-root "$CA/ops-root.pem" --log-vkey "$CA/log.vkey"
check "... a copy in the station folder" cmp "$CA/log.vkey" "$ST/log.vkey"
KEPT=$ST/log/checkpoint.note
# log_check: runs `log check`; sets RC and OUT (stdout and stderr).
log_check() { RC=0; OUT=$("$STATION_BIN" log check --dir "$ST" --ca "https://localhost:$PORT" --timeout-ms 5000 2>&1) || RC=$?; }
# kept_covers: log check until the kept checkpoint covers every leaf of the CA's log (the CA signs one
# log.sth_delay_ms after a burst; bounded).
kept_covers() {
  local n
  n=$(sql "$CA/camtrust.db" "select count(*) from log_leaves")
  for _ in $(seq 1 50); do
    log_check
    [ "$RC" = 0 ] && [ "$(sed -n 2p "$KEPT")" = "$n" ] && return 0
    sleep 0.1
  done
  return 1
}
check "log check keeps the CA's checkpoint once it covers the log" kept_covers
check "... verified with the pinned key, the first one kept" grep -q "kept (the first)\|consistent with the kept" <<<"$OUT"
sqlite3 "$CA/camtrust.db" ".backup '$WORK/old.db'" # an older copy, before the next batch
K0=$(sed -n 2p "$KEPT")

# A second station, not a witness, for the fork below (openssl key, enrolls with curl).
station_with_order line2 FORK01 FORK02 FORK03 FORK04 FORK05 FORK06 FORK07 FORK08
printf 'WIT001\nWIT002\nWIT003\nWIT004\nWIT005\nWIT006\n' >"$WORK/wserials"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX1 --serials "$WORK/wserials" >/dev/null
sqlite3 "$CA/camtrust.db" ".backup '$WORK/old.db'" # an older copy, with the second station, before the batch
camera wit1 WIT001; A1=$ADDR
camera wit2 WIT002; A2=$ADDR
RW=$WORK/witness.jsonl
provision "$RW" "$A1" "$A2"
check_eq "a witnessing station provisions: exit 0" 0 "$RC"
check_eq "... two cameras" 2 "$(count_status "$RW" provisioned)"
check "honest growth: log check accepts the larger checkpoint" kept_covers
check "... consistent with the kept one" grep -q "consistent with the kept one (size" <<<"$OUT"
K1=$(sed -n 2p "$KEPT")
check "... and keeps the newer one" test "$K1" -gt "$K0"
cp "$KEPT" "$WORK/kept.note"
sqlite3 "$CA/camtrust.db" ".backup '$WORK/good.db'"

# The attacker with write access to camtrust.db: the tail cut (the last camera's certificates, their leaves, the
# tree heads and checkpoints above the cut, the audit tail), the server restarted.
cleanup_server
DB=$CA/camtrust.db
NOTRIG=$(sql "$DB" "select 'DROP TRIGGER ' || name || ';' from sqlite_master where type = 'trigger'")
CUTLEAF=$(( K1 - 2 ))
# (the audit records each issuance in the transaction that logs it: its entries are in leaf order)
CUT=$(sql "$DB" "select min(a.seq) from audit a, log_leaves l where l.leaf_index >= $CUTLEAF
  and (a.subject like '%' || l.cert_serial_hex || '%' or a.detail like '%' || l.cert_serial_hex || '%')")
sqlite3 "$DB" "$NOTRIG
  DELETE FROM certified_keys WHERE cert_serial_hex IN (SELECT cert_serial_hex FROM log_leaves WHERE leaf_index >= $CUTLEAF);
  DELETE FROM certificates WHERE cert_serial_hex IN (SELECT cert_serial_hex FROM log_leaves WHERE leaf_index >= $CUTLEAF);
  DELETE FROM log_leaves WHERE leaf_index >= $CUTLEAF;
  DELETE FROM log_tree_heads WHERE tree_size > $CUTLEAF;
  DELETE FROM log_checkpoints WHERE tree_size > $CUTLEAF;
  DELETE FROM audit WHERE seq >= $CUT;"
rm -f "$DB-wal" "$DB-shm" "$CA/checkpoint.note" # the attacker writes the folder: the CA's own kept checkpoint goes too
start_ca "$CA"
log_check
check_eq "a CA whose database lost its tail: log check fails" 1 "$RC"
check "... naming the kept checkpoint" grep -q "the CA's log shrank: its checkpoint has size $CUTLEAF, the kept $KEPT has $K1" <<<"$OUT"
check "... one line" test "$(wc -l <<<"$OUT")" = 1
check "... the kept checkpoint is not replaced" cmp "$KEPT" "$WORK/kept.note"
camera wit3 WIT003; A3=$ADDR
RS=$WORK/shrunk.jsonl
provision "$RS" "$A3"
check_eq "provisioning against it stops: exit 1" 1 "$RC"
check "... with a report line" python3 -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert [x["status"] for x in r] == ["log-inconsistent"], r
assert "the CA'"'"'s log shrank" in r[0]["reason"], r' "$RS"
check "... and one clear error" grep -q "^camtrust-station: provisioning stopped before the batch: the CA's log shrank" "$WORK/progress"
check_eq "... the camera stays unprovisioned" 3 "$(boot_rc wit3)"

# A fork: the older copy put back and regrown with other certificates (a second station enrolls), so the CA
# itself signs checkpoints as large as the kept one over other leaves.
cleanup_server
cp "$WORK/old.db" "$DB"; rm -f "$DB-wal" "$DB-shm" "$CA/checkpoint.note"
start_ca "$CA"
# Until it is larger than the kept checkpoint (each answer's status kept: a loaded machine may answer one late).
N=0
for s in FORK01 FORK02 FORK03 FORK04 FORK05 FORK06 FORK07 FORK08; do
  make_csr "$WORK/$s" "/serialNumber=$s/CN=x"
  est_post simpleenroll "$WORK/$s.b64" "$WORK/$s.p7b64" --cert "$WORK/station.pem" --key "$WORK/station.key" \
    >>"$WORK/fork-statuses"; echo >>"$WORK/fork-statuses"
  N=$(sql "$DB" "select count(*) from log_leaves")
  [ "$N" -gt "$K1" ] && break
done
[ "$N" -gt "$K1" ] || { echo "# enrollment statuses: $(tr '\n' ' ' <"$WORK/fork-statuses")"; tail -5 "$WORK/server.log"; }
check "the forked log regrew past the kept checkpoint" test "$N" -gt "$K1"
forked_signed() {
  for _ in $(seq 1 50); do
    [ "$(curl -s --max-time 5 --cacert "$CA/ops-root.pem" "https://localhost:$PORT/log/checkpoint" | sed -n 2p)" = "$N" ] && return 0
    sleep 0.1
  done
  return 1
}
check "... the CA signed a checkpoint over it" forked_signed
log_check
check_eq "a forked log: log check fails" 1 "$RC"
check "... not consistent with the kept checkpoint, named" \
  grep -q "the CA's log forked: its checkpoint of size $N is not consistent with the kept $KEPT (size $K1)" <<<"$OUT"
check "... the kept checkpoint is not replaced" cmp "$KEPT" "$WORK/kept.note"
# ... and a network that cuts the station's first connection to it: the witness before the batch cannot be made
# (said, not stopping), but no camera is handed a checkpoint the kept one contradicts.
python3 "$HERE/net_peer.py" --mode cut-first --to "$PORT" >"$WORK/cut.out" 2>>"$WORK/fakes.log" &
BG_PIDS+=($!)
wait_listening "$WORK/cut.out" $!
RF=$WORK/forked.jsonl
rc=0
"$STATION_BIN" provision --dir "$ST" --ca "https://localhost:${ADDR##*:}" --device "$A3" --report "$RF" \
  --timeout-ms 5000 >/dev/null 2>"$WORK/progress" || rc=$?
check_eq "provisioning through it against the fork: exit 1" 1 "$rc"
check "... the witness before the batch was not made" grep -q "the CA's log not witnessed before the batch" "$WORK/progress"
check_eq "... the camera fails" failed "$(field "$RF" WIT003 status)"
check "... because the checkpoint for its proofs forks from the kept one" \
  grep -q "the CA's log forked: its checkpoint of size [0-9]* is not consistent with the kept $KEPT (size $K1)" <<<"$(field "$RF" WIT003 reason)"
check_eq "... it got no INSTALL and boots unprovisioned" 3 "$(boot_rc wit3)"

# The honest database back: the station accepts its growth again.
cleanup_server
cp "$WORK/good.db" "$DB"; rm -f "$DB-wal" "$DB-shm" "$CA/checkpoint.note" # (the fork's, kept while it served)
start_ca "$CA"
camera wit4 WIT004; A4=$ADDR
RH=$WORK/honest.jsonl
provision "$RH" "$A4"
check_eq "the honest log again: provisioning goes on" 0 "$RC"
check "... log check accepts its growth" kept_covers
check "... and keeps the newer checkpoint" test "$(sed -n 2p "$KEPT")" -gt "$K1"

# A checkpoint not signed by the pinned key (a station pinning another log's key sees the CA's so), and a kept
# checkpoint edited in the station folder: each refused in one line, nothing kept.
cp "$KEPT" "$WORK/kept.note"; cp "$ST/log.vkey" "$WORK/pinned.vkey"
rm "$KEPT"; cp "$HERE/../vectors/note/log.vkey" "$ST/log.vkey"
log_check
check_eq "a checkpoint by another key than the pinned one: refused" 1 "$RC"
check "... saying so" grep -q "^camtrust-station: the CA's checkpoint: .*is not signed by" <<<"$OUT"
check "... nothing kept" test ! -e "$KEPT"
cp "$WORK/pinned.vkey" "$ST/log.vkey"
sed '2s/.*/1/' "$WORK/kept.note" >"$KEPT"
log_check
check_eq "a kept checkpoint edited (size 1): refused" 1 "$RC"
check "... naming it" grep -q "^camtrust-station: the kept $KEPT: " <<<"$OUT"
cp "$WORK/kept.note" "$KEPT"
log_check
check_eq "restored, log check passes again" 0 "$RC"

# ---- cameras keep their identity's inclusion proofs and the checkpoint, and boot only a logged identity ----
camera wit5 WIT005 "$CA/root.pem" --log-vkey "$CA/log.vkey"; A5=$ADDR
RL=$WORK/logged.jsonl
provision "$RL" "$A5"
check_eq "a camera pinning the log key is provisioned by a witnessing station" provisioned "$(field "$RL" WIT005 status)"
CREDS=$WORK/cams/wit5/credentials.pem
check "... it keeps the checkpoint beside its chains" grep -q '^# log checkpoint$' "$CREDS"
check "... and a proof per certificate" test "$(grep -c '^# log proof ' "$CREDS")" = 2
boot_out() { "$AGENT_BIN" boot --dir "$WORK/cams/$1" 2>&1 || true; }
check "... and boots, the proofs checked offline" grep -q '^provisioned serial=WIT005' <<<"$(boot_out wit5)"
cp "$CREDS" "$WORK/creds.good"
python3 - "$CREDS" <<'PY'
import base64, sys
p = sys.argv[1]
lines = open(p).read().split("\n")
for i, l in enumerate(lines):
    if l.startswith("# log proof device "):
        raw = bytearray(base64.b64decode(l.split(" ")[4]))
        raw[-1] ^= 1  # one bit of the audit path
        lines[i] = "# log proof device " + base64.b64encode(bytes(raw)).decode()
open(p, "w").write("\n".join(lines))
PY
check "an identity whose inclusion proof does not verify does not boot" \
  grep -q '^.*broken: profile device: the certificate is not proven in the log' <<<"$(boot_out wit5)"
sed '/^# log /,$d' "$WORK/creds.good" >"$CREDS"
check "... nor one without its proofs" grep -q 'broken: no log checkpoint' <<<"$(boot_out wit5)"
cp "$WORK/creds.good" "$CREDS"
check "... restored, it boots" grep -q '^provisioned serial=WIT005' <<<"$(boot_out wit5)"
check_eq "a camera made before (no log key) boots as before" 0 "$(boot_rc wit4)"
check "... saying its logging is not checked" grep -q "no log key pinned" <<<"$(boot_out wit4)"
check "... a camera pinning the key does not say so" bash -c "! grep -q 'no log key pinned' <<<\"\$1\"" _ "$(boot_out wit5)"
mv "$ST/log.vkey" "$WORK/st.vkey"
camera wit6 WIT006 "$CA/root.pem" --log-vkey "$CA/log.vkey"; A6=$ADDR
RN=$WORK/unlogged.jsonl
provision "$RN" "$A6"
check "a camera pinning the log key refuses an install without proofs" grep -q "refused the install.*no log checkpoint" <<<"$(field "$RN" WIT006 reason)"
check_eq "... and stays unprovisioned" 3 "$(boot_rc wit6)"
mv "$WORK/st.vkey" "$ST/log.vkey"

# ---- two cameras of one run name one serial (a clone, a rogue device, unprogrammed fuses) ----
printf 'DUP001\nUNIQ01\n' >"$WORK/dup-serials"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX1 --serials "$WORK/dup-serials" >/dev/null
camera dupa DUP001; DA=$ADDR
camera dupb dup001; DB=$ADDR # serials are one case-insensitively
camera uniq UNIQ01; DU=$ADDR
RD=$WORK/dup.jsonl
provision "$RD" "$DA" "$DU" "$DB"
check_eq "two cameras naming one serial: the run exits 1" 1 "$RC"
check_eq "... neither got a certificate (the CA would have given it to the first that asked)" 0 "$(certs_for DUP001)"
check_eq "... both fail" "failed failed" "$(field "$RD" DUP001 status) $(field "$RD" dup001 status)"
check "... saying why, naming the other camera" grep -q "serial DUP001 is named by the cameras at $DA and $DB: neither is provisioned" <<<"$(field "$RD" DUP001 reason)"
check_eq "... both boot unprovisioned" "3 3" "$(boot_rc dupa) $(boot_rc dupb)"
check_eq "... the other camera of the run is provisioned" provisioned "$(field "$RD" UNIQ01 status)"
provision "$WORK/twice.jsonl" "$DU" "$DU"
check_eq "one camera listed twice is no clash: exit 0, already provisioned twice" "0 2" \
  "$RC $(count_status "$WORK/twice.jsonl" already-provisioned)"
stop_bg
finish
