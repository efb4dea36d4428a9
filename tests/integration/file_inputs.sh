#!/usr/bin/env bash
# Files handed to the programs by an unlucky operator or someone who can write where they look: a FIFO named as a
# certificate or CRL (--root, --crl, --ca-root, ca.root_crl) is refused in one line instead of holding the command
# forever (ct_file_read: regular files only; the lists --serials and the station's --devices still read a pipe); and
# the sweep of what killed writers left (X.tmp.PID of a dead PID) removes only their regular files, never an
# operator's folder of that name with all in it, while a killed init's stage folder (X.init-PID) still goes.
# Usage: file_inputs.sh BUILD_DIR
. "$(dirname "$0")/build_lib.sh" "$1"

CA=$WORK/ca ST=$WORK/station CAM=$WORK/cam
DEAD=999999999 # above any pid_max: no process has it
ca_create "$CA" >/dev/null
"$STATION_BIN" init --dir "$ST" --name line1 >/dev/null
"$CA_BIN" station add --dir "$CA" --name line1 --csr "$ST/station.csr" --out "$WORK/line1.pem" >/dev/null
mkfifo "$WORK/planted.fifo"

# fifo_refused "description" PROGRAM ARGS...: exit 1 (EXIT_RC when set; not 124: killed by the guard's timeout), one
# line naming the FIFO
fifo_refused() {
  local what=$1 rc=0; shift
  bounded 30 "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  if [ "$rc" = "${EXIT_RC:-1}" ] && [ "$(grep -vc '^ts=' "$WORK/err")" = 1 ] &&
    grep -q "cannot read $WORK/planted.fifo: not a regular file" "$WORK/err"
  then ok "$what"
  else not_ok "$what (exit $rc): $(head -c 300 "$WORK/err")"; fi
}
fifo_refused "camtrust-ca install --crl FIFO: refused in one line, not waited on" \
  "$CA_BIN" install --dir "$CA" --crl "$WORK/planted.fifo"
fifo_refused "camtrust-ca install --cert FIFO" "$CA_BIN" install --dir "$CA" --cert "$WORK/planted.fifo"
fifo_refused "camtrust-station install --ca-root FIFO" \
  "$STATION_BIN" install --dir "$ST" --cert "$WORK/line1.pem" --ca-root "$WORK/planted.fifo"
"$STATION_BIN" install --dir "$ST" --cert "$WORK/line1.pem" --ca-root "$CA/ops-root.pem" >/dev/null
sed -i "s|^ca.root_crl = .*|ca.root_crl = $WORK/planted.fifo|" "$ST/station.conf"
fifo_refused "camtrust-station provision with ca.root_crl naming a FIFO" \
  "$STATION_BIN" provision --dir "$ST" --ca https://127.0.0.1:9 --device 127.0.0.1:9 --report "$WORK/r.jsonl"
fifo_refused "camtrust-agent-sim simulate --root FIFO" \
  "$SIM_BIN" simulate --dir "$WORK/cam-fifo" --serial CAM0001 --model CX1 --root "$WORK/planted.fifo"
printf 'not a recording\n' >"$WORK/rec.mp4"
EXIT_RC=3 fifo_refused "camtrust-verify --root FIFO (its exit status for an error: 3)" \
  "$VERIFY_BIN" --root "$WORK/planted.fifo" "$WORK/rec.mp4"
fifo_refused "camtrust-view verify --root FIFO" "$VIEW_BIN" verify --root "$WORK/planted.fifo" "$WORK/rec.mp4"
rc=0
out=$("$CA_BIN" order create --dir "$CA" --station line1 --model CX1 --serials <(printf 'CAM0001\n') 2>&1) || rc=$?
check_eq "--serials still reads a pipe (<(...))" "0 1" "$rc $(grep -c '^order [0-9]* created' <<<"$out")"
station_root_crl_none "$ST"
rm -f "$WORK/r.jsonl"
rc=0; bounded 60 "$STATION_BIN" provision --dir "$ST" --ca https://127.0.0.1:9 --devices <(printf '127.0.0.1:9\n') \
  --report "$WORK/r.jsonl" >/dev/null 2>"$WORK/err" || rc=$?
check_eq "camtrust-station provision --devices reads a pipe (<(...)): the camera at :9 tried (fails), no refusal" \
  "0 1" "$(grep -c 'not a regular file' "$WORK/err") $(grep -c '"device":"127.0.0.1:9".*"status":"failed"' \
  "$WORK/r.jsonl" 2>/dev/null)"

# ---- the sweep of what killed writers left ----
# plant DIR: plants in DIR a dead writer's temporary (a file) and an operator's folder named like one, with a
# file in it
plant() {
  mkdir -p "$1/notes.tmp.$DEAD" && echo "the operator's notes" >"$1/notes.tmp.$DEAD/keep.txt"
  echo 'half written' >"$1/credentials.pem.tmp.$DEAD"
}
swept() { # swept "description" DIR: the temporary gone, the folder and its file kept
  local tmp=gone notes=lost
  [ ! -e "$2/credentials.pem.tmp.$DEAD" ] || tmp=left
  [ "$(cat "$2/notes.tmp.$DEAD/keep.txt" 2>/dev/null)" != "the operator's notes" ] || notes=kept
  check_eq "$1" "gone kept" "$tmp $notes"
}
plant "$CA"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX1 --serials <(printf 'CAM0002\n') >/dev/null
swept "camtrust-ca (a command that writes its folder): a dead writer's temporary removed, an operator's folder \
notes.tmp.$DEAD kept with its file" "$CA"
"$SIM_BIN" simulate --dir "$CAM" --serial CAM0001 --model CX1 --root "$CA/root.pem" >/dev/null
plant "$CAM"
rc=0; "$AGENT_BIN" boot --dir "$CAM" >/dev/null 2>&1 || rc=$?
check_eq "camtrust-agent boot: unprovisioned (3)" 3 "$rc"
swept "... the agent at its start: the same" "$CAM"
# A file system whose folders do not say what an entry is (readdir's DT_UNKNOWN: ext2 without its filetype feature,
# XFS formatted with ftype=0): the sweep still tells the temporary from the folder (as root with a loop mount; else
# skipped).
NOFT=$WORK/noft
mkdir -p "$NOFT"
if [ "$(id -u)" = 0 ] && truncate -s 16M "$WORK/noft.img" && mkfs.ext2 -q -F -O ^filetype "$WORK/noft.img" 2>/dev/null &&
  mount -o loop "$WORK/noft.img" "$NOFT" 2>/dev/null; then
  # (nothing here may stop the script before the umount: the EXIT trap's rm -rf would stop at the mount)
  "$SIM_BIN" simulate --dir "$NOFT/cam" --serial CAM0001 --model CX1 --root "$CA/root.pem" >/dev/null || true
  plant "$NOFT/cam" || true
  rc=0; "$AGENT_BIN" boot --dir "$NOFT/cam" >/dev/null 2>&1 || rc=$?
  swept "... on a file system without entry types (ext2 -O ^filetype): the same (boot: $rc)" "$NOFT/cam"
  umount "$NOFT"
else
  echo "skipped: the sweep on a file system without entry types (needs root, mkfs.ext2 and a loop mount)"
fi
# A killed init's stage (a folder beside the new one, ours) still goes at the next init.
mkdir -p "$WORK/st2.init-$DEAD" && : >"$WORK/st2.init-$DEAD/station.conf"
"$STATION_BIN" init --dir "$WORK/st2" --name line2 >/dev/null
check "a killed station init's stage folder st2.init-$DEAD is removed by the next init" test ! -e "$WORK/st2.init-$DEAD"
finish
