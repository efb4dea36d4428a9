#!/usr/bin/env bash
# camtrust-view live shows as live only video signed moments ago by the viewer's clock (--max-age, 30 s by default).
# The first GOP watched is compared with nothing before it: whoever can write the camera's live folder served the
# camera's own older recording (its valid signatures, over 30 s old) from the start, and the viewer showed every
# segment `verified` as the camera's live video (exit 0). It is now `stale` (its signing time and age in one line),
# not shown; so is video signed without a clock (time 0), which cannot show it is live, unless --max-age 0. The real
# camera agent (provisioned through factory mode, its token real) streams and serves on loopback; the replays are
# recordings the same camera signed with `record --start` (its first second certified, or no clock), written into
# its live folder. (Its certificates start when the test makes them: the old recording is left to age past the
# default bound, the wall clock waited for, a few seconds past what the test does meanwhile.)
# Usage: live_fresh.sh BUILD_DIR
. "$(dirname "$0")/build_lib.sh" "$1"
. "$HERE/live_lib.sh"
live_setup CAM1701 CX17

# 3 GOPs of 30 pictures, a segment each
ffmpeg -nostdin -loglevel error -f lavfi -i testsrc2=size=320x180:rate=30 -t 3 -c:v libx264 -preset ultrafast \
  -g 30 -bf 0 -pix_fmt yuv420p -f h264 "$WORK/src.h264"
# The camera's own recordings of it: one signed from the first second of its media-signing certificate (its GOPs
# signed then and in the 2 seconds after), one signed without a clock (before 2000: time 0 to a verifier), one
# signed by the camera's clock set an hour ahead (by hand, or by a forged NTP answer), within its certificate.
since=$(date -d "$(openssl x509 -noout -startdate -in "$CAM.chains/media-signing.chain" | cut -d= -f2)" +%s)
for rec in old:$((since + 1)) noclock:1 ahead:$(($(date +%s) + 3600)); do
  "$AGENT_BIN" record --dir "$CAM" --viewers "$WORK/viewers" --segment-ms 1000 --sign yes --start "${rec#*:}" \
    --cmaf yes "$WORK/src.h264" "$WORK/${rec%%:*}" >/dev/null
done

# ---- the camera streams it live (paced as a camera's encoder), alice watching with the default bound; its encoder
# starts over 30 s after the agent's stream (as a camera's pipeline may): before, live GOPs were stamped with the
# stream's start plus frames/fps, so this honest video was 30 s old from its first GOP (and an encoder a little
# slower than --fps, or dropping frames at night, drifted past the bound the same way) ----
live_camera "$WORK/live" 127.0.0.1:0 10
started=$(date +%s)
while [ "$(date +%s)" -le $((started + 31)) ]; do sleep 0.5; done
view() { # view NAME [OPTION...]: alice watches the camera; the video in NAME.mp4, the report in NAME.rep
  local name=$1; shift
  "$VIEW_BIN" live --dir "$WORK/alice" --root "$WORK/dev/root.pem" --connect "127.0.0.1:$PORT" "$@" \
    --out "$WORK/$name.mp4" "https://$NAME:$PORT/live/" >"$WORK/$name.rep" 2>&1
}
view live 7>&- & VIEWER=$!
ffmpeg -nostdin -loglevel error -re -framerate 30 -i "$WORK/src.h264" -c copy -f h264 - >&7
exec 7>&- # the input ends: the playlist is closed
rc=0; wait "$VIEWER" || rc=$?; VIEWER=
check "the camera live (its encoder started 31 s after the stream), watched with the default bound: its 3 segments \
verified and shown (exit 0)" bash -c "
  [ $rc = 0 ] && grep -q 'result: AUTHENTIC (3 authentic)' '$WORK/live.rep' &&
  grep -q 'live: 3 segments shown, 0 not shown' '$WORK/live.rep'"

# ---- the falsifier writes a recording of the camera's into its live folder, each file whole; the real camera
# serves it ----
put_all() { # put_all DIR: DIR's init segment, segments and playlist, in the camera's live folder
  local f
  for f in init.mp4 seg-000000.m4s seg-000001.m4s seg-000002.m4s index.m3u8; do
    cp "$1/$f" "$WORK/live/$f.x" && mv "$WORK/live/$f.x" "$WORK/live/$f"
  done
}
put_all "$WORK/noclock"
rc=0; view noclock || rc=$?
check "a recording signed without a clock (time 0): cannot be shown to be live, not shown (exit 1)" bash -c "
  [ $rc = 1 ] && grep -q '^segment 0: NOT SHOWN: not authentic: frames 0-29 untrusted: signed without a clock' \
  '$WORK/noclock.rep' && grep -q 'live: 0 segments shown, 3 not shown' '$WORK/noclock.rep' && [ ! -s '$WORK/noclock.mp4' ]"
rc=0; view noclock-unbounded --max-age 0 || rc=$?
check "  ... --max-age 0 shows it (exit 0)" bash -c "
  [ $rc = 0 ] && grep -q 'live: 3 segments shown, 0 not shown' '$WORK/noclock-unbounded.rep'"

# Before, only video older than the bound was refused: video dated ahead of the viewer's clock passed as live until
# that date, however long it had been held back (recorded while the camera's clock was wrong, served later).
put_all "$WORK/ahead"
rc=0; view ahead || rc=$?
check "a recording signed by the camera's clock an hour ahead of the viewer's: cannot be shown to be live, not shown \
(exit 1)" bash -c "[ $rc = 1 ] && grep -q '^segment 0: NOT SHOWN: not authentic: frames 0-29 untrusted: signed at \
[0-9T:-]*Z, [0-9]* s after the viewer.s clock (--max-age 30): the camera.s clock is ahead of the viewer.s, cannot be \
shown to be live' '$WORK/ahead.rep' && grep -q '^result: NOT AUTHENTIC (3 untrusted)' '$WORK/ahead.rep' &&
  grep -q 'live: 0 segments shown, 3 not shown' '$WORK/ahead.rep' && [ ! -s '$WORK/ahead.mp4' ]"
rc=0; view ahead-unbounded --max-age 0 || rc=$?
check "  ... --max-age 0 (no bound) shows it (exit 0)" bash -c "
  [ $rc = 0 ] && grep -q 'live: 3 segments shown, 0 not shown' '$WORK/ahead-unbounded.rep'"

for bad in -1 x 30s 86401 99999999999999999999 ''; do
  rc=0; view "bad" --max-age "$bad" || rc=$?
  check "--max-age '$bad': refused in one line (exit 2), nothing fetched" bash -c "[ $rc = 2 ] &&
    [ \$(wc -l <'$WORK/bad.rep') = 1 ] && grep -q 'max-age takes whole seconds' '$WORK/bad.rep' && [ ! -e '$WORK/bad.mp4' ]"
done
# ---- the older recording, once older than the default bound (its last GOP signed 3 s after the certificate) ----
while [ "$(date +%s)" -le $((since + 3 + 30 + 1)) ]; do sleep 0.5; done
put_all "$WORK/old"
rc=0; view old || rc=$?
check "the camera's own recording, over 30 s old, served from the start: stale, its signing time and age, not shown" \
  bash -c "[ $rc = 1 ] && grep -q '^segment 0: NOT SHOWN: not authentic: frames 0-29 reordered: stale: signed at \
[0-9T:-]*Z, [0-9]* s before the viewer.s clock (--max-age 30): an older recording, not live' '$WORK/old.rep' &&
  grep -q '^result: NOT AUTHENTIC (3 reordered)' '$WORK/old.rep' &&
  grep -q 'live: 0 segments shown, 3 not shown' '$WORK/old.rep' && [ ! -s '$WORK/old.mp4' ]"
age=$(sed -n 's/^segment 0: NOT SHOWN: .*, \([0-9]*\) s before the viewer.s clock.*/\1/p' "$WORK/old.rep")
check "  ... its age is the recording's: more than 30 s" bash -c "[ '${age:-0}' -gt 30 ]"
rc=0; view old-unbounded --max-age 0 || rc=$?
check "  ... the recording is the camera's, valid: --max-age 0 (no bound) shows its 3 segments (exit 0)" bash -c "
  [ $rc = 0 ] && grep -q 'live: 3 segments shown, 0 not shown' '$WORK/old-unbounded.rep'"

finish
