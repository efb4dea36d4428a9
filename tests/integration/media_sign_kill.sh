#!/usr/bin/env bash
# `camtrust-agent sign` killed (kill -9, as a power cut would stop it) while it writes: the output's name holds the
# previous signed file or nothing, never part of one; the next sign removes what the killed one left beside it and
# writes a whole file. A long clip (a GOP per picture: a token signature each) keeps the signer writing for a while;
# the kill comes once the output has bytes on disk (under the final name or a temporary beside it).
# Usage: media_sign_kill.sh camtrust-agent factory_client camtrust-verify
AGENT_BIN=$1 CLIENT_BIN=$2 VERIFY_BIN=$3
SIM_BIN=$(dirname "$AGENT_BIN")/camtrust-agent-sim
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/agent_lib.sh"
command -v ffmpeg >/dev/null || { echo "ffmpeg is required (deploy/install-deps test)"; exit 1; }

make_ca "$WORK/ca" Test
"$SIM_BIN" simulate --dir "$WORK/cam" --serial CAM0601 --model CX600 --root "$WORK/ca/root.pem" >/dev/null
factory_provision "$WORK/cam" CAM0601 "$WORK/ca"
check_eq "the camera is provisioned" provisioned "$(boot_state "$WORK/cam")"

ffmpeg -v error -y -f lavfi -i testsrc2=size=160x90:rate=30 -t 2 -pix_fmt yuv420p -c:v libx264 -g 30 "$WORK/short.h264"
ffmpeg -v error -y -f lavfi -i testsrc2=size=320x180:rate=30 -frames:v 6000 -pix_fmt yuv420p -c:v libx264 -g 1 \
  -preset ultrafast "$WORK/long.h264"
OUT=$WORK/rec/signed.h264
mkdir -p "$WORK/rec"
check "a short clip signed to OUT" "$AGENT_BIN" sign --dir "$WORK/cam" "$WORK/short.h264" "$OUT"
cp "$OUT" "$WORK/previous.h264"

# written OUT-or-temporary: whether the signer has put bytes on disk yet
written() {
  local f
  for f in "$OUT" "$OUT".tmp.*; do
    if [ -f "$f" ] && [ "$f" != "$OUT" -o "$(stat -c %s "$f")" != "$(stat -c %s "$WORK/previous.h264")" ] &&
       [ -s "$f" ]; then return 0; fi
  done
  return 1
}
# sign_killed: signs the long clip to OUT and kills -9 the signer once it has written; prints yes when the kill
# found it still running (the clip was long enough), no otherwise.
sign_killed() {
  local pid killed=no
  "$AGENT_BIN" sign --dir "$WORK/cam" "$WORK/long.h264" "$OUT" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    written && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
  done
  if kill -KILL "$pid" 2>/dev/null; then killed=yes; fi
  wait "$pid" 2>/dev/null || true
  echo "$killed"
}
check_eq "the signer was killed while writing (the clip is long enough)" yes "$(sign_killed)"
check "after kill -9 mid-sign, OUT is still the previous signed file (no partial one under its name)" \
  cmp "$OUT" "$WORK/previous.h264"
check "... which still verifies" "$VERIFY_BIN" --root "$WORK/ca/root.pem" "$OUT"
ls "$WORK/rec" >"$WORK/left"
check "... the killed signer's temporary is beside it ($(tr '\n' ' ' <"$WORK/left"))" grep -q '^signed\.h264\.tmp\.[0-9]*$' "$WORK/left"

# The same with no previous file: nothing under the name.
rm -f "$OUT"
check_eq "a second signer killed while writing" yes "$(sign_killed)"
check "with no previous OUT, kill -9 mid-sign leaves no OUT" test ! -e "$OUT"

# The next sign clears what the killed ones left (their process is gone) and writes a whole file.
check "signing again succeeds" "$AGENT_BIN" sign --dir "$WORK/cam" "$WORK/short.h264" "$OUT"
check "... the result verifies" "$VERIFY_BIN" --root "$WORK/ca/root.pem" "$OUT"
check_eq "... and no temporary is left beside it" "signed.h264" "$(ls "$WORK/rec" | tr '\n' ' ' | sed 's/ $//')"
finish
