#!/usr/bin/env bash
# What camtrust-view live shows is what it verified. A falsifier writing the camera's storage starts a sample of a
# signed segment with an avcC record (4-byte NAL lengths: to the verifier a NAL unit of 16 MiB or more, its header
# invalid, passed over) holding an SPS that crops 32 columns: ffmpeg takes that sample for new parameter sets and
# shows the rest of the GOP cropped. The verifier noted a problem, but the viewer showed the segment as verified (exit
# 0); it is now not shown. So is one holding a NAL unit of a type H.264 leaves unspecified (30: an aggregator to
# ISO/IEC 14496-15 readers), which the verifier passed over without a word: the MP4 verifier's rule, now shared
# (ms_verifier_push_sample). A problem the verifier meets in a segment refuses that segment. A camera that restarts
# (kill -9, then its agent again: a new signing session) is told in one line, the new session verified on its own and
# shown; another camera's session spliced in as a restart is told so, its signer checked again, and not shown. The
# camera's own older recordings, replayed as a restart, rewound to the last segment shown, or numbered on after the
# segments shown, are signed before what was shown: `reordered`, not shown.
# Usage: live_tamper.sh BUILD_DIR
. "$(dirname "$0")/build_lib.sh" "$1"
. "$HERE/live_lib.sh"
live_setup CAM1601 CX16

# 3 GOPs of 30 pictures, a segment each, signed; served until the test ends.
ffmpeg -nostdin -loglevel error -f lavfi -i testsrc2=size=320x180:rate=30 -t 3 -c:v libx264 -preset ultrafast \
  -g 30 -bf 0 -pix_fmt yuv420p -f h264 "$WORK/src.h264"
mkfifo "$WORK/src.fifo"
"$AGENT_BIN" stream --dir "$CAM" --viewers "$WORK/viewers" --sign yes --segment-ms 1000 --window 10 \
  --in "$WORK/src.fifo" --listen 127.0.0.1:0 >"$WORK/stream.out" 2>"$WORK/stream.log" &
STREAM=$!
for _ in $(seq 1 600); do grep -q '^listening on ' "$WORK/stream.out" && break; sleep 0.05; done
PORT=$(sed -n 's/^listening on .*://p' "$WORK/stream.out")
[ -n "$PORT" ] || { cat "$WORK/stream.log"; exit 1; }
cat "$WORK/src.h264" >"$WORK/src.fifo"
for _ in $(seq 1 600); do grep -q '^stream ended' "$WORK/stream.out" && break; sleep 0.05; done
cp -r "$CAM/live" "$WORK/first" # the camera's first session, as signed
# The ended stream, or the camera's files a falsifier rewrites, watched seconds to minutes after they were signed: a
# recording by then, watched with --max-age 600 (live_fresh.sh tests the default bound).
watch() { # watch NAME: alice watches the (ended) stream; the video in NAME.mp4, the report in NAME.rep; sets rc
  rc=0; "$VIEW_BIN" live --dir "$WORK/alice" --root "$WORK/dev/root.pem" --max-age 600 --connect "127.0.0.1:$PORT" \
    --out "$WORK/$1.mp4" "https://$NAME:$PORT/live/" >"$WORK/$1.rep" 2>&1 || rc=$?
}
widths() { # widths FILE: how many pictures ffmpeg decodes of each width ("90 320")
  ffprobe -v error -select_streams v -show_entries frame=width -of csv=p=0 "$1" | grep -o "^[0-9]\+" | sort |
    uniq -c | xargs
}
watch honest
check "the honest stream: 3 segments verified and shown (exit 0), 90 pictures 320 wide" bash -c "[ $rc = 0 ] &&
  grep -q 'live: 3 segments shown, 0 not shown' '$WORK/honest.rep' && [ \"\$0\" = '90 320' ]" \
  "$(widths "$WORK/honest.mp4")"

# ---- sample 10 of segment 1 starts with an avcC record whose SPS crops 32 columns ----
ffmpeg -nostdin -loglevel error -i "$WORK/src.h264" -c copy -bsf:v h264_metadata=crop_right=32 -f h264 "$WORK/crop.h264"
cp "$CAM/live/seg-000001.m4s" "$WORK/seg1.m4s"
python3 "$HERE/live_sample_edit.py" avcc-lead "$CAM/live/init.mp4" "$CAM/live/seg-000001.m4s" 10 "$WORK/crop.h264" \
  >/dev/null
cat "$CAM/live/init.mp4" "$CAM/live"/seg-*.m4s >"$WORK/stored.mp4"
"$VIEW_BIN" decrypt --dir "$WORK/alice" "$WORK/stored.mp4" "$WORK/stored-clear.mp4" >/dev/null
check_eq "the falsifier's sample is real: of the stored segments ffmpeg decodes 19 pictures cropped (288 wide)" \
  "19 288 70 320" "$(widths "$WORK/stored-clear.mp4")"
watch avcc
check "a sample ffmpeg takes for new parameter sets: segment 1 not shown (a problem, named), exit 1" bash -c "
  [ $rc = 1 ] &&
  grep -q '^segment 1: NOT SHOWN: invalid NAL unit header at frame 39' '$WORK/avcc.rep' &&
  grep -q 'live: 2 segments shown, 1 not shown' '$WORK/avcc.rep'"
check_eq "  ... the viewer's video: segments 0 and 2, 60 pictures, none cropped" "60 320" "$(widths "$WORK/avcc.mp4")"

# ---- segment 1 as signed again; sample 5 of segment 2 starts with a NAL unit of type 30 (H.264 leaves it
# unspecified; ISO/IEC 14496-15 readers take it for an aggregator of NAL units no signature covers) ----
cp "$WORK/seg1.m4s" "$CAM/live/seg-000001.m4s.x" && mv "$CAM/live/seg-000001.m4s.x" "$CAM/live/seg-000001.m4s"
python3 "$HERE/live_sample_edit.py" nal-lead "$CAM/live/init.mp4" "$CAM/live/seg-000002.m4s" 5 1e0000000465b8 >/dev/null
watch type30
check "a NAL unit of an unspecified type in a sample: segment 2 not shown, named as the MP4 verifier names it" bash -c "
  [ $rc = 1 ] && grep -q '^segment 2: NOT SHOWN: an MP4 video sample holds a NAL unit of type 30, which H.264 leaves' \
  '$WORK/type30.rep' && grep -q 'live: 2 segments shown, 1 not shown' '$WORK/type30.rep'"
kill -TERM "$STREAM"; wait "$STREAM" || true; STREAM=

# ---- the camera restarts mid-stream (its agent killed, started again: a new signing session, new keys, segments
# numbered from 0 again). The viewer took the next segment for the GOPs after the last one shown: `altered` (it does
# not link to it), and the new session's first segments were never fetched. A restart is now told in one line, and
# the new session verified on its own from its first picture. ----
ffmpeg -nostdin -loglevel error -f lavfi -i testsrc=size=320x180:rate=30 -t 3 -c:v libx264 -preset ultrafast -g 30 \
  -bf 0 -pix_fmt yuv420p -f h264 "$WORK/after.h264"
camera() { # camera INPUT LISTEN: the camera streams INPUT into $WORK/live2 (the FIFO held open); sets STREAM, PORT
  live_camera "$WORK/live2" "$2" 10
  # at the pace of a camera (30 pictures a second): its pictures' capture times are no later than its clock
  ffmpeg -nostdin -loglevel error -re -framerate 30 -i "$1" -c copy -f h264 - >&7
}
camera "$WORK/src.h264" 127.0.0.1:0 # 3 GOPs: segments 0 and 1 written, the third GOP's waits for more input
live_view restart
for _ in $(seq 1 600); do grep -q '^segment 1: shown' "$WORK/restart.rep" && break; sleep 0.05; done
live_camera_kill
camera "$WORK/after.h264" "127.0.0.1:$PORT"
exec 7>&-
rc=0; wait "$VIEWER" || rc=$?; VIEWER=
check "the camera restarted: told in one line, the new session's 3 segments verified on their own and shown (exit 0)" \
  bash -c "[ $rc = 0 ] && grep -q '^camera restarted: a new signing session from segment 0 (the playlist went back' \
  '$WORK/restart.rep' && [ \$(grep -c '^result: AUTHENTIC' '$WORK/restart.rep') = 2 ] &&
  grep -q 'live: 5 segments shown, 0 not shown' '$WORK/restart.rep'"
frames "$WORK/src.h264" >"$WORK/src.md5"
frames "$WORK/after.h264" >"$WORK/after.md5"
frames "$WORK/restart.mp4" >"$WORK/restart.md5"
check_eq "  ... the viewer's video: the first session's 60 pictures, then the new session's 90 (framemd5)" "150 same" \
  "$(wc -l <"$WORK/restart.md5") $(head -n 60 "$WORK/src.md5" | cat - "$WORK/after.md5" |
  cmp -s - "$WORK/restart.md5" && echo same)"

# ---- the falsifier replays the camera's own first session of this test (its valid signatures, seconds older) as a
# restart would: told as a restart, but its GOPs were signed before those shown before it: `reordered` (an older
# recording replayed, not live), none of it shown; and so when it then plays the last segment shown again as a new
# session (its GOP signed in the same second as the last one shown, being it), exit 1. Before, each replay was shown
# `verified` as the camera's live video (exit 0), and the last second could be looped so forever. ----
put() { cp "$1" "$WORK/live2/$2.x" && mv "$WORK/live2/$2.x" "$WORK/live2/$2"; } # put FILE NAME: whole, as the camera
watch_open() { # watch_open NAME: the camera's playlist left open, alice watches it (VIEWER) until segment 2 is shown
  sed '/ENDLIST/d' "$WORK/live2/index.m3u8" >"$WORK/open.m3u8" && put "$WORK/open.m3u8" index.m3u8
  "$VIEW_BIN" live --dir "$WORK/alice" --root "$WORK/dev/root.pem" --connect "127.0.0.1:$PORT" --out "$WORK/$1.mp4" \
    --max-age 600 "https://$NAME:$PORT/live/" >"$WORK/$1.rep" 2>&1 &
  VIEWER=$!
  for _ in $(seq 1 600); do grep -q '^segment 2: shown' "$WORK/$1.rep" && break; sleep 0.05; done
}
cp -r "$WORK/live2" "$WORK/live2.b"
watch_open replay
cp "$WORK/live2/seg-000002.m4s" "$WORK/last.m4s"
for f in init.mp4 seg-000000.m4s seg-000001.m4s seg-000002.m4s; do put "$WORK/first/$f" "$f"; done
sed '/ENDLIST/d' "$WORK/first/index.m3u8" >"$WORK/open.m3u8" && put "$WORK/open.m3u8" index.m3u8
for _ in $(seq 1 600); do grep -q '^segment 1: NOT SHOWN' "$WORK/replay.rep" && break; sleep 0.05; done
# the last segment shown, alone in a playlist as segment 0 (with its key line; the init segment: the camera's)
put "$WORK/last.m4s" seg-000000.m4s
{ sed -n '1,/^#EXT-X-MAP/p' "$WORK/live2.b/index.m3u8"; grep -B2 '^seg-000002' "$WORK/live2.b/index.m3u8" |
  sed 's/seg-000002/seg-000000/'; echo '#EXT-X-ENDLIST'; } >"$WORK/rewind.m3u8"
put "$WORK/live2.b/init.mp4" init.mp4
put "$WORK/rewind.m3u8" index.m3u8
rc=0; wait "$VIEWER" || rc=$?; VIEWER=
check "the camera's first session, then its last segment shown, replayed as restarts: told, reordered, not shown (exit 1)" \
  bash -c "[ $rc = 1 ] && [ \$(grep -c '^camera restarted: a new signing session from segment 0' '$WORK/replay.rep') = 2 ] &&
  grep -q '^segment 0: NOT SHOWN: not authentic: frames 0-29 reordered: signed no later than the camera.s GOP 3 \
verified before it (signed at .*): an older recording replayed, not live' '$WORK/replay.rep' &&
  grep -q '^result: NOT AUTHENTIC (3 reordered)' '$WORK/replay.rep' &&
  grep -q '^result: NOT AUTHENTIC (1 reordered)' '$WORK/replay.rep' &&
  grep -q 'live: 3 segments shown, 4 not shown' '$WORK/replay.rep'"
for f in init.mp4 seg-000000.m4s seg-000001.m4s seg-000002.m4s index.m3u8; do put "$WORK/live2.b/$f" "$f"; done

# ---- no restart told: the falsifier goes on numbering the playlist with segments of another, older recording of the
# same camera whose GOP counters run past those shown (GOPs of 10 pictures, signed from the second its certificate
# starts). The first GOP that does not link is `altered`; the GOPs after it linked among themselves and were shown
# `verified` (older video as the camera's live). They were signed before the GOPs shown before them: `reordered`,
# not shown. ----
ffmpeg -nostdin -loglevel error -f lavfi -i testsrc2=size=320x180:rate=30 -t 3 -c:v libx264 -preset ultrafast \
  -g 10 -bf 0 -pix_fmt yuv420p -f h264 "$WORK/short.h264"
since=$(date -d "$(openssl x509 -noout -startdate -in "$CAM.chains/media-signing.chain" | cut -d= -f2)" +%s)
"$AGENT_BIN" record --dir "$CAM" --viewers "$WORK/viewers" --segment-ms 1000 --sign yes --start $((since + 1)) \
  --cmaf yes "$WORK/short.h264" "$WORK/older" >/dev/null
watch_open goon
put "$WORK/older/seg-000001.m4s" seg-000003.m4s
put "$WORK/older/seg-000002.m4s" seg-000004.m4s
{ cat "$WORK/open.m3u8"; grep -B2 '^seg-00000[12]' "$WORK/older/index.m3u8" | grep -v '^--' |
  sed 's/seg-000001/seg-000003/; s/seg-000002/seg-000004/'; echo '#EXT-X-ENDLIST'; } >"$WORK/goon.m3u8"
put "$WORK/goon.m3u8" index.m3u8
rc=0; wait "$VIEWER" || rc=$?; VIEWER=
check "an older recording of the camera's numbered on after the segments shown: reordered, not shown (exit 1)" bash -c "
  [ $rc = 1 ] && ! grep -q '^camera restarted' '$WORK/goon.rep' &&
  grep -q '^segment 4: NOT SHOWN: not authentic: frames 120-129 reordered: signed no later than' '$WORK/goon.rep' &&
  grep -q 'live: 3 segments shown, 2 not shown' '$WORK/goon.rep'"
rm -f "$WORK/live2/seg-000003.m4s" "$WORK/live2/seg-000004.m4s"
put "$WORK/live2.b/index.m3u8" index.m3u8

# ---- a falsifier writing the camera's storage splices in a session signed by another camera (CAM1602, certified
# by the same root) as a restart would: told as a restart, and that session's signer is checked again (it must be
# the camera serving the stream): nothing of it shown. Before, the viewer, past those segment numbers, fetched
# nothing of it and ended with no word (exit 0). ----
CAM2=$WORK/cam2
"$SIM_BIN" simulate --dir "$CAM2" --serial CAM1602 --model CX16 --root "$WORK/dev/root.pem" \
  --ops-root "$CA/ops-root.pem" >/dev/null
factory_provision "$CAM2" CAM1602 "$WORK/dev"
"$AGENT_BIN" record --dir "$CAM2" --viewers "$WORK/viewers" --segment-ms 1000 --sign yes --start "$(date +%s)" \
  --cmaf yes "$WORK/after.h264" "$WORK/other" >/dev/null
watch_open splice
for f in init.mp4 seg-000000.m4s seg-000001.m4s seg-000002.m4s index.m3u8; do put "$WORK/other/$f" "$f"; done
rc=0; wait "$VIEWER" || rc=$?; VIEWER=
check "another camera's session spliced in: told as a restart, its signer checked again, none of it shown (exit 1)" \
  bash -c "[ $rc = 1 ] && grep -q '^camera restarted: a new signing session from segment 0' '$WORK/splice.rep' &&
  grep -q '^segment 0: NOT SHOWN: not authentic: .*signed by camera \"CAM1602\", not by \"cam1601\"' \
  '$WORK/splice.rep' && grep -q 'live: 3 segments shown, 3 not shown' '$WORK/splice.rep'"
finish
