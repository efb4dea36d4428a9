#!/usr/bin/env bash
# A camera that restarts (its agent killed, started again: a new signing session, segments numbered from 0 again)
# and writes more than a playlist window before the viewer polls again slides its playlist past the last segment the
# viewer fetched: the playlist neither goes back nor names that segment again, so the restart went unseen. The viewer
# took the new session's segments for the GOPs after the last one shown (which they do not link to) and refused them.
# Now a slide past the last segment fetched ends the session so far (its summary) and the segments after it are
# verified on their own from their first picture, as after any restart; when the new GOPs count from below the last
# one verified while signed after it (a new signing session), the line says the camera restarted. A camera restarted
# with another codec (H.265 after H.264 was shown) ends the watch in one line, rather than have each new segment
# refused while the viewer polls on. The real camera agent on loopback (provisioned through factory mode, its token
# real); the viewer held between two polls by a failpoint while the camera restarts.
# Also: a restart numbered up to exactly the segment after the last one fetched (told by its new init segment), and
# whoever writes the live folder cutting segments out with a slide, then renumbering those after (still counted).
# Usage: live_slide.sh BUILD_DIR
. "$(dirname "$0")/build_lib.sh" "$1"
. "$HERE/live_lib.sh"
live_setup CAM1801 CX18

# Before the restart, GOPs of 5 pictures (6 a segment): the new session's, of 30 (1 a segment), count from below them.
ffmpeg -nostdin -loglevel error -f lavfi -i testsrc2=size=320x180:rate=30 -t 3 -c:v libx264 -preset ultrafast \
  -g 5 -bf 0 -pix_fmt yuv420p -f h264 "$WORK/before.h264"
ffmpeg -nostdin -loglevel error -f lavfi -i testsrc=size=320x180:rate=30 -t 5 -c:v libx264 -preset ultrafast -g 30 \
  -bf 0 -pix_fmt yuv420p -f h264 "$WORK/after.h264"
camera() { live_camera "$WORK/live" "$1" "${2:-2}"; } # camera LISTEN [WINDOW]: into $WORK/live, 2 segments by default
camera 127.0.0.1:0
# at the pace of a camera; the FIFO held open: the last segment waits for more input
ffmpeg -nostdin -loglevel error -re -framerate 30 -i "$WORK/before.h264" -c copy -f h264 - >&7
CAMTRUST_FAILPOINT=live:polled CAMTRUST_FAILPOINT_RELEASE=$WORK/release live_view slide
for _ in $(seq 1 600); do grep -q 'failpoint_held' "$WORK/slide.rep" && break; sleep 0.05; done
shown=$(grep -c ': shown' "$WORK/slide.rep" || true)
live_camera_kill
camera "127.0.0.1:$PORT"
cat "$WORK/after.h264" >&7 # 5 segments at once: the playlist (2) slides past those fetched before
exec 7>&-
for _ in $(seq 1 600); do grep -q '^stream ended' "$WORK/stream.out" && break; sleep 0.05; done
touch "$WORK/release"
rc=0; wait "$VIEWER" || rc=$?; VIEWER=
check_eq "the viewer, held, had shown the first session's segments it fetched (1 or 2)" yes \
  "$([ "$shown" -ge 1 ] && [ "$shown" -le 2 ] && echo yes)"
check "the camera restarted past the playlist window: told in one line, the new session's segments 3-4 verified on \
their own and shown" bash -c "grep -q '^camera restarted: a new signing session (its GOP 4 signed after GOP \
[0-9]*) while the playlist slid past segments [12]-2, NOT SHOWN' '$WORK/slide.rep' &&
  grep -q '^segment 3: shown' '$WORK/slide.rep' && grep -q '^segment 4: shown' '$WORK/slide.rep' &&
  [ \$(grep -c '^result: AUTHENTIC' '$WORK/slide.rep') = 2 ] && ! grep -q 'NOT AUTHENTIC' '$WORK/slide.rep'"
frames "$WORK/after.h264" >"$WORK/after.md5"
frames "$WORK/slide.mp4" >"$WORK/slide.md5"
check_eq "  ... the viewer's video: the first session's pictures shown, then the new session's last 60 (framemd5)" \
  "$((shown * 30 + 60)) same" "$(wc -l <"$WORK/slide.md5") $(tail -n 60 "$WORK/after.md5" |
  cmp -s - <(tail -n 60 "$WORK/slide.md5") && echo same)"
check "  ... exit 1: the segments gone before they were fetched were not shown" bash -c "[ $rc = 1 ]"
kill -TERM "$STREAM"; wait "$STREAM" || true; STREAM=

# ---- no restart: the viewer falls behind (held after its first poll) while the camera streams 8 s on past its window. The segments gone are
# not shown; those after are verified on their own from their first picture and shown (their first GOP links to one
# the viewer never got); before, the first was refused (`missing: 5 GOP(s) cut out`). ----
ffmpeg -nostdin -loglevel error -f lavfi -i testsrc2=size=320x180:rate=30 -t 8 -c:v libx264 -preset ultrafast \
  -g 30 -bf 0 -pix_fmt yuv420p -f h264 "$WORK/long.h264"
rm -rf "$WORK/live" "$WORK/release"
camera 127.0.0.1:0
CAMTRUST_FAILPOINT=live:polled CAMTRUST_FAILPOINT_RELEASE=$WORK/release live_view behind
ffmpeg -nostdin -loglevel error -re -framerate 30 -i "$WORK/long.h264" -c copy -f h264 - >&7 &
FEED=$!
for _ in $(seq 1 600); do grep -q 'failpoint_held' "$WORK/behind.rep" && break; sleep 0.05; done
wait "$FEED"
exec 7>&-
for _ in $(seq 1 600); do grep -q '^stream ended' "$WORK/stream.out" && break; sleep 0.05; done
touch "$WORK/release"
rc=0; wait "$VIEWER" || rc=$?; VIEWER=
check "the viewer fell behind the camera's window: the segments gone told (no restart), segments 6-7 verified on \
their own and shown, exit 1" bash -c "[ $rc = 1 ] && grep -q '^segments [1-5]-5: NOT SHOWN: gone from the playlist before \
they were fetched (the viewer fell behind, or the camera restarted); verified on its own from segment 6' \
  '$WORK/behind.rep' && grep -q '^segment 6: shown' '$WORK/behind.rep' && grep -q '^segment 7: shown' '$WORK/behind.rep' &&
  ! grep -q 'camera restarted:' '$WORK/behind.rep' && ! grep -q 'NOT AUTHENTIC' '$WORK/behind.rep'"
kill -TERM "$STREAM"; wait "$STREAM" || true; STREAM=

# ---- whoever writes the camera's live folder cuts segments 2-4 out of what alice watches: having fetched 0-1, she is
# served a playlist slid past them (from 5), then, before her next poll, one gone back to 2 naming segments 5 and 6
# there. Before, the segments gone were counted from that second playlist (none: `segments 2-1`), so the cut went
# uncounted: every segment `shown`, exit 0 (a playlist gone back further wrapped the count around). Now the segments
# the slid playlist skipped are NOT SHOWN, whatever the playlist says after. (--max-age 0: the test's pace is not
# what is checked; the failpoint holds the viewer once it saw the slide.) ----
rm -rf "$WORK/live" "$WORK/release"
camera 127.0.0.1:0 10
cat "$WORK/long.h264" >&7 # 8 GOPs of 30: segments 0-6 out, the last one waiting for more input
for _ in $(seq 1 600); do grep -q '^seg-000006' "$WORK/live/index.m3u8" 2>/dev/null && break; sleep 0.05; done
cp "$WORK/live/index.m3u8" "$WORK/full.m3u8"
forge() { # forge SEQ [end] SEGMENT...: the live folder's playlist, numbered from SEQ, naming the camera's SEGMENTs
  local seq=$1 end=; shift
  [ "$1" = end ] && { end=1; shift; }
  { sed -n '1,/^#EXT-X-MAP/p' "$WORK/full.m3u8" | sed "s/^#EXT-X-MEDIA-SEQUENCE:.*/#EXT-X-MEDIA-SEQUENCE:$seq/"
    for n in "$@"; do awk -v f="$(printf 'seg-%06d.m4s' "$n")" '
      /^#EXT-X-MAP/ { on = 1; next } !on { next } { b = b $0 "\n" } !/^#/ { if ($0 == f) printf "%s", b; b = "" }' \
      "$WORK/full.m3u8"; done
    [ -z "$end" ] || echo '#EXT-X-ENDLIST'; } >"$WORK/live/index.m3u8.x"
  mv "$WORK/live/index.m3u8.x" "$WORK/live/index.m3u8"
}
forge 0 0 1
CAMTRUST_FAILPOINT=live:slid CAMTRUST_FAILPOINT_RELEASE=$WORK/release live_view cut --max-age 0
for _ in $(seq 1 600); do grep -q '^segment 1: shown' "$WORK/cut.rep" && break; sleep 0.05; done
forge 5 5 6
for _ in $(seq 1 600); do grep -q 'failpoint_held' "$WORK/cut.rep" && break; sleep 0.05; done
forge 2 end 5 6
touch "$WORK/release"
rc=0; wait "$VIEWER" || rc=$?; VIEWER=
check "segments 2-4 cut out by a playlist slid past them, then gone back to renumber those after: the 3 segments gone \
NOT SHOWN, exit 1" bash -c "[ $rc = 1 ] && grep -q '^segments 2-4: NOT SHOWN: gone from the playlist before they \
were fetched' '$WORK/cut.rep' && grep -q '^live: 4 segments shown, 3 not shown' '$WORK/cut.rep'"
exec 7>&-
kill -TERM "$STREAM"; wait "$STREAM" || true; STREAM=

# held_at_2 NAME FIRST NEXT [restart]: the camera streams FIRST (paced; its segment 2 waits for more input), alice
# watches (NAME) and is held after her first poll (segments 0-1 fetched); the camera (restarted, with `restart`) is
# given NEXT at once, up to its segment 3 (its playlist: segments 2-3 alone); alice released, the input closed (segment
# 4, the playlist closed). Sets held (the segments alice had shown when held) and rc (her exit status).
held_at_2() {
  local name=$1 first=$2 next=$3 restart=${4:-}
  rm -rf "$WORK/live" "$WORK/release"
  camera 127.0.0.1:0
  ffmpeg -nostdin -loglevel error -re -framerate 30 -i "$first" -c copy -f h264 - >&7
  for _ in $(seq 1 600); do grep -q '^seg-000001' "$WORK/live/index.m3u8" 2>/dev/null && break; sleep 0.05; done
  CAMTRUST_FAILPOINT=live:polled CAMTRUST_FAILPOINT_RELEASE=$WORK/release live_view "$name"
  for _ in $(seq 1 600); do grep -q 'failpoint_held' "$WORK/$name.rep" && break; sleep 0.05; done
  held=$(grep -c ': shown' "$WORK/$name.rep" || true)
  if [ -n "$restart" ]; then live_camera_kill; camera "127.0.0.1:$PORT"; fi
  cat "$next" >&7
  for _ in $(seq 1 600); do grep -qx '#EXT-X-MEDIA-SEQUENCE:2' "$WORK/live/index.m3u8" 2>/dev/null &&
    grep -q '^seg-000003' "$WORK/live/index.m3u8" && break; sleep 0.05; done
  touch "$WORK/release"
  for _ in $(seq 1 600); do grep -q '^segment 3: ' "$WORK/$name.rep" && break; sleep 0.05; done
  exec 7>&-
  rc=0; wait "$VIEWER" || rc=$?; VIEWER=
  kill -TERM "$STREAM"; wait "$STREAM" || true; STREAM=
}

# ---- the camera restarts while alice, having fetched segments 0-1, is held, and writes exactly up to segment 3 (its
# playlist of 2: segments 2-3): the playlist neither went back nor slid past segment 2, nor names the last segment
# fetched; before, its segments were taken for the GOPs after those shown (`reordered: signed as GOP 3, found after
# GOP 12`), none shown. The new init segment (its first key's ID) tells the restart. ----
held_at_2 exact "$WORK/before.h264" "$WORK/after.h264" restart
check_eq "the viewer, held, had shown segments 0-1 of the first session" 2 "$held"
check "the camera restarted and numbered up to the segment after the last one fetched: told by its new init segment, \
segments 2-4 verified on their own and shown (exit 0)" bash -c "[ $rc = 0 ] &&
  grep -q '^camera restarted: a new signing session from segment 2 (a new init segment)' '$WORK/exact.rep' &&
  grep -q '^live: 5 segments shown, 0 not shown' '$WORK/exact.rep' && ! grep -q 'NOT AUTHENTIC' '$WORK/exact.rep'"

# ---- no restart: the same, the camera's session going on (its next 2 segments written while alice is held): its
# init segment unchanged, segments 2-4 shown in the same session ----
for clip in src3:3 more:2; do # one encoder's settings: the second goes on from the first as one stream
  ffmpeg -nostdin -loglevel error -f lavfi -i testsrc2=size=320x180:rate=30 -t "${clip#*:}" -c:v libx264 \
    -preset ultrafast -g 30 -bf 0 -pix_fmt yuv420p -f h264 "$WORK/${clip%%:*}.h264"
done
held_at_2 same "$WORK/src3.h264" "$WORK/more.h264"
check "  ... the camera's session going on so (alice held after segments 0-1): no restart, segments 2-4 shown in the \
same session (exit 0)" bash -c "[ $held = 2 ] && [ $rc = 0 ] && ! grep -q 'camera restarted' '$WORK/same.rep' &&
  [ \$(grep -c '^result: AUTHENTIC' '$WORK/same.rep') = 1 ] &&
  grep -q '^live: 5 segments shown, 0 not shown' '$WORK/same.rep'"

# ---- the camera restarts with another codec (H.264, then H.265: a new init segment). The video shown is one track a
# player of --out reads on; the viewer refused each new segment (`unreadable: the camera restarted with H.265 video`)
# and polled on for more of them. It now ends there, in one line (exit 1). ----
ffmpeg -nostdin -loglevel error -f lavfi -i testsrc2=size=320x180:rate=30 -t 3 -c:v libx265 -preset ultrafast -g 30 \
  -bf 2 -x265-params log-level=error:open-gop=0 -pix_fmt yuv420p -f hevc "$WORK/after.hevc"
rm -rf "$WORK/live"
camera 127.0.0.1:0 10
ffmpeg -nostdin -loglevel error -re -framerate 30 -i "$WORK/after.h264" -c copy -f h264 - >&7 # the last GOP waits
live_view codec
for _ in $(seq 1 600); do grep -q '^segment 0: shown' "$WORK/codec.rep" && break; sleep 0.05; done
live_camera_kill
camera "127.0.0.1:$PORT" 10
cat "$WORK/after.hevc" >&7 # 3 segments, and the playlist closed
exec 7>&-
rc=0; wait "$VIEWER" || rc=$?; VIEWER=
check "the camera restarted with H.265 after H.264 was shown: told, then the watch ends in one line (exit 1)" bash -c "
  [ $rc = 1 ] && grep -q '^camera restarted: a new signing session from segment 0' '$WORK/codec.rep' &&
  tail -n 1 '$WORK/codec.rep' | grep -q '^camtrust-view: .*the camera restarted with H.265 video, not H.264: another \
stream (watch it anew)\$' && ! grep -q 'NOT SHOWN' '$WORK/codec.rep'"
finish
