#!/usr/bin/env bash
# A viewer removed from the camera's viewers folder mid-stream gets no key of the pictures taken after: the camera
# starts a new segment (a new key, wrapped for the new list) at the next GOP, whatever the segment length. Before,
# the segment under way kept its key, wrapped for him, up to its end: with --segment-ms 60000 he got a minute of
# video more. The real camera agent (provisioned through factory mode, its token real) streams from a FIFO the
# test writes in two parts, the removal between them; viewers certified by a real CA, their keys in their tokens.
# Usage: live_removal.sh BUILD_DIR
. "$(dirname "$0")/build_lib.sh" "$1"
. "$HERE/agent_lib.sh"
command -v ffmpeg >/dev/null || { echo "ffmpeg is required (deploy/install-deps test)"; exit 1; }
STREAM=
trap '[ -n "$STREAM" ] && kill -TERM "$STREAM" 2>/dev/null; stop_factory; [ -n "${CAMTRUST_TEST_KEEP:-}" ] ||
  rm -rf "$WORK"' EXIT

wait_for() { # wait_for FILE PATTERN: until FILE exists (PATTERN '') or holds a line matching PATTERN (at most 30 s)
  for _ in $(seq 1 600); do
    if [ -z "$2" ]; then [ -e "$1" ] && return 0; else grep -q "$2" "$1" 2>/dev/null && return 0; fi
    sleep 0.05
  done
  return 1
}

CA=$WORK/ca
ca_create "$CA" >/dev/null
viewer_make alice bob
make_ca "$WORK/dev" Test
CAM=$WORK/cam
"$SIM_BIN" simulate --dir "$CAM" --serial CAM1501 --model CX15 --root "$WORK/dev/root.pem" \
  --ops-root "$CA/ops-root.pem" >/dev/null
factory_provision "$CAM" CAM1501 "$WORK/dev"
mkdir -p "$WORK/viewers"
cp "$WORK/alice.pem" "$WORK/bob.pem" "$WORK/viewers/"

# 5 GOPs of 30 pictures, cut before the third GOP's IDR picture (and the parameter sets leading it, if any).
ffmpeg -nostdin -loglevel error -f lavfi -i testsrc2=size=320x180:rate=30 -t 5 -c:v libx264 -preset ultrafast \
  -g 30 -bf 0 -pix_fmt yuv420p -f h264 "$WORK/src.h264"
python3 - "$WORK/src.h264" "$WORK/a.h264" "$WORK/b.h264" <<'PY'
import re, sys
b = open(sys.argv[1], "rb").read()
starts = [m.start() for m in re.finditer(b"\x00\x00\x01", b)]
idr = [s for s in starts if b[s + 3] & 0x1f == 5 and b[s + 4] & 0x80]  # first slice of an IDR picture
cut = idr[2]
prev = [s for s in starts if s < cut]
while prev and b[prev[-1] + 3] & 0x1f in (6, 7, 8, 9):  # SEI, SPS, PPS, AUD of the same access unit
    cut = prev.pop()
while cut > 0 and b[cut - 1] == 0:
    cut -= 1
open(sys.argv[2], "wb").write(b[:cut]); open(sys.argv[3], "wb").write(b[cut:])
PY

mkfifo "$WORK/src.fifo"
"$AGENT_BIN" stream --dir "$CAM" --viewers "$WORK/viewers" --segment-ms 60000 --in "$WORK/src.fifo" \
  --listen 127.0.0.1:0 >"$WORK/stream.out" 2>"$WORK/stream.log" &
STREAM=$!
wait_for "$WORK/stream.out" '^listening on ' || { cat "$WORK/stream.log"; exit 1; }
exec 7>"$WORK/src.fifo"
cat "$WORK/a.h264" >&7
# The first GOP is encrypted (the second's IDR read) once init.mp4 is written: bob is removed after that.
wait_for "$CAM/live/init.mp4" '' || { cat "$WORK/stream.log"; exit 1; }
mv "$WORK/viewers/bob.pem" "$WORK/bob.removed.pem"
check "the camera saw bob's removal" wait_for "$WORK/stream.log" 'event=viewers_changed viewers=1'
cat "$WORK/b.h264" >&7
exec 7>&-
check "the stream ended (its input closed)" wait_for "$WORK/stream.out" '^stream ended: 150 frames'
kill -TERM "$STREAM"; wait "$STREAM" || true; STREAM=

# What each viewer can decrypt of what the camera published: init.mp4 and the segments that name it a recipient.
share() { # share VIEWER OUT: init.mp4 + the segments listing VIEWER, decrypted by VIEWER into OUT
  local s
  cp "$CAM/live/init.mp4" "$WORK/$1.enc.mp4"
  for s in "$CAM"/live/seg-*.m4s; do
    cat "$CAM/live/init.mp4" "$s" >"$WORK/one.mp4"
    "$VIEW_BIN" keys --dir "$WORK/$1" "$WORK/one.mp4" | grep -q '(this viewer)' && cat "$s" >>"$WORK/$1.enc.mp4"
  done
  "$VIEW_BIN" decrypt --dir "$WORK/$1" "$WORK/$1.enc.mp4" "$2" >/dev/null 2>&1 || rm -f "$2"
}
frames "$WORK/src.h264" >"$WORK/src.md5"
share alice "$WORK/alice.mp4"
frames "$WORK/alice.mp4" >"$WORK/alice.md5"
check_eq "alice decrypts all 150 pictures, exactly the source" "150 same" \
  "$(wc -l <"$WORK/alice.md5") $(cmp -s "$WORK/src.md5" "$WORK/alice.md5" && echo same)"
share bob "$WORK/bob.mp4"
frames "$WORK/bob.mp4" >"$WORK/bob.md5"
bob=$(wc -l <"$WORK/bob.md5")
check "bob decrypts only pictures given to the camera before his removal ($bob of the first 60)" \
  bash -c "[ $bob -ge 30 ] && [ $bob -le 60 ] && head -n $bob '$WORK/src.md5' | cmp -s - '$WORK/bob.md5'"
check "  ... the segment he has ended at a GOP, long before its 60 s" \
  bash -c "[ \$(ls '$CAM'/live/seg-*.m4s | wc -l) -ge 2 ]"
finish
