#!/usr/bin/env bash
# A viewer whose certificate expires while the camera streams gets no key after that: the viewers folder, unchanged,
# is read again each minute, and an expired certificate in it stops the stream (as any folder that no longer loads
# does) rather than go on wrapping keys for it. Before, the camera wrapped every new segment's key for it until the
# folder changed. The operations CA is openssl's (a certificate that expires in seconds); the camera is provisioned
# through factory mode, its token real; ffmpeg feeds `camtrust-agent stream` in real time.
# Usage: live_expiry.sh BUILD_DIR
BUILD=$1
AGENT_BIN=$BUILD/device-agent/camtrust-agent
SIM_BIN=$BUILD/device-agent/camtrust-agent-sim
CLIENT_BIN=$BUILD/tests/factory_client
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/agent_lib.sh"
command -v ffmpeg >/dev/null || { echo "ffmpeg is required (deploy/install-deps test)"; exit 1; }
STREAM=
trap '[ -n "$STREAM" ] && kill -TERM "$STREAM" 2>/dev/null; stop_factory; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT

# viewer OPSDIR NAME ENDDATE: OPSDIR/NAME.pem, a viewer certificate (keyAgreement only) then its issuing CA,
# valid until ENDDATE (YYYYMMDDHHMMSSZ), for a fresh P-256 key.
viewer() {
  local d=$1 v=$2
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/$v.key" -subj "/CN=$v" \
    -out "$d/$v.csr" 2>/dev/null
  printf 'keyUsage=critical,keyAgreement\n' >"$d/viewer.ext"
  mkdir -p "$d/db" && touch "$d/db/index.txt"
  printf '[ca]\ndefault_ca=c\n[c]\ndatabase=%s/db/index.txt\nnew_certs_dir=%s/db\nserial=%s/db/serial\n'`
         `'default_md=sha256\npolicy=p\nunique_subject=no\n[p]\ncommonName=supplied\n' "$d" "$d" "$d" >"$d/ca.cnf"
  [ -e "$d/db/serial" ] || echo 01 >"$d/db/serial"
  openssl ca -batch -config "$d/ca.cnf" -cert "$d/issuing.pem" -keyfile "$d/issuing.key" -in "$d/$v.csr" \
    -startdate 20200101000000Z -enddate "$3" -extfile "$d/viewer.ext" -notext -out "$d/$v.leaf" 2>/dev/null
  cat "$d/$v.leaf" "$d/issuing.pem" >"$d/$v.pem"
}

make_ca "$WORK/dev" Test
make_ca "$WORK/ops" Ops
CAM=$WORK/cam
"$SIM_BIN" simulate --dir "$CAM" --serial CAM1501 --model CX15 --root "$WORK/dev/root.pem" \
  --ops-root "$WORK/ops/root.pem" >/dev/null
factory_provision "$CAM" CAM1501 "$WORK/dev"
check_eq "the camera is provisioned" provisioned "$(boot_state "$CAM")"
# carol's certificate expires 10 s after it is made, once the stream runs.
EXPIRES=$(($(date +%s) + 10))
viewer "$WORK/ops" alice "$(date -u -d '+1 year' +%Y%m%d%H%M%SZ)"
viewer "$WORK/ops" carol "$(date -u -d "@$EXPIRES" +%Y%m%d%H%M%SZ)"
mkdir -p "$WORK/viewers"
cp "$WORK/ops/alice.pem" "$WORK/ops/carol.pem" "$WORK/viewers/"

# 100 s of real-time input: the expiry plus the next minute's reading, with room for a loaded machine.
mkfifo "$WORK/src.fifo"
"$AGENT_BIN" stream --dir "$CAM" --viewers "$WORK/viewers" --segment-ms 1000 --window 200 --in "$WORK/src.fifo" \
  --listen 127.0.0.1:0 >"$WORK/stream.out" 2>"$WORK/stream.log" &
STREAM=$!
(ffmpeg -nostdin -loglevel error -re -f lavfi -i testsrc2=size=160x90:rate=15 -t 100 -c:v libx264 -preset ultrafast \
  -g 15 -bf 0 -pix_fmt yuv420p -f h264 - >"$WORK/src.fifo" 2>/dev/null || true) &
FEED=$!
check "the stream starts with both viewers" bash -c "for _ in \$(seq 1 200); do
  grep -q 'event=streaming .*viewers=2' '$WORK/stream.log' && exit 0; sleep 0.05; done; exit 1"
# Until the stream stops, or ends with its input (it then serves on until stopped: the old behaviour), 150 s at most.
for _ in $(seq 1 1500); do
  kill -0 "$STREAM" 2>/dev/null || break
  grep -q '^stream ended' "$WORK/stream.out" && break
  sleep 0.1
done
ended=$(date +%s)
kill -TERM "$STREAM" 2>/dev/null || true
rc=0; wait "$STREAM" || rc=$?
STREAM=
kill "$FEED" 2>/dev/null || true
check "the stream stopped (exit 1), not at the end of its input" bash -c "[ $rc = 1 ] && \
  ! grep -q '^stream ended' '$WORK/stream.out'"
check "... within a minute of carol's expiry" bash -c "[ $ended -le $((EXPIRES + 62)) ]"
check "... naming her certificate as expired" grep -q 'carol.pem.*expired' "$WORK/stream.log"
# Segments are written whole (synced, renamed): the last one was made before the next minute's reading.
last=$(ls "$CAM/live"/seg-*.m4s | tail -1)
check "no segment (its key wrapped for carol) was made after that reading" bash -c \
  "[ \$(stat -c %Y '$last') -le $((EXPIRES + 61)) ]"
# (The old camera wrapped the key of a segment made 90 s after her expiry for her: her certificate's hash was in its
# pssh.)
finish
