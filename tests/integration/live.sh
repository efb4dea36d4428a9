#!/usr/bin/env bash
# Live protected video (issue 14): ffmpeg -re feeds ~10 s of testsrc2 into `camtrust-agent stream`; alice and bob
# watch at once with `camtrust-view live` and decode exactly the source frames of the segments they got; carol,
# not a recipient, gets nothing; bob, removed from the viewers folder mid-stream, loses the key from the next
# segment on; a look-alike camera (self-signed, same name) and another name are refused, and so is the video of a
# real camera serving another camera's signed segments; a segment altered on the camera is reported and not
# shown; a copy mirrored with curl verifies with camtrust-verify and decrypts later; `live --crl` (the device
# root's CRL or the issuing CA's) refuses a revoked camera before any request and a revoked signer's segments;
# kill -9 mid-stream leaves only whole segments in the recording, which rotates by size; an H.265 (libx265) stream
# watched live decodes exactly its source frames, every signature verified; so does a stream whose SPS changes in band.
# Usage: live.sh BUILD_DIR
. "$(dirname "$0")/build_lib.sh" "$1"
. "$HERE/agent_lib.sh"
command -v ffmpeg >/dev/null || { echo "ffmpeg is required (deploy/install-deps test)"; exit 1; }

PIDS=() SILENT=
stop_all() { local p; for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; PIDS=(); }
trap 'stop_all; stop_factory; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT

# wait_for FILE PATTERN [tenths]: until FILE holds a line matching PATTERN.
wait_for() {
  local i
  for i in $(seq 1 "${3:-300}"); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# ---- viewers certified by the operations CA; a camera provisioned by the device CA ----
CA=$WORK/ca
ca_create "$CA" >/dev/null
viewer_make alice bob carol
make_ca "$WORK/dev" Test
CAM=$WORK/cam NAME=cam1401.devices.example.com
"$SIM_BIN" simulate --dir "$CAM" --serial CAM1401 --model CX14 --root "$WORK/dev/root.pem" \
  --ops-root "$CA/ops-root.pem" >/dev/null
sed -i 's/^serve.timeout_ms = .*/serve.timeout_ms = 2000/' "$CAM/agent.conf" # silent clients go sooner
mkdir -p "$WORK/viewers"
cp "$WORK/alice.pem" "$WORK/bob.pem" "$WORK/viewers/"
check "stream refuses an unprovisioned camera" bash -c "'$AGENT_BIN' stream --dir '$CAM' --viewers '$WORK/viewers' \
  --listen 127.0.0.1:0 </dev/null 2>&1 | grep -q 'not serving: the camera is unprovisioned'"
factory_provision "$CAM" CAM1401 "$WORK/dev"
for bad in "--listen" "--listen 127.0.0.1:0 --window 0" "--listen 127.0.0.1:0 --segment-ms 10" \
  "--listen 127.0.0.1:0 --record-max-kb 10"; do
  rc=0; "$AGENT_BIN" stream --dir "$CAM" --viewers "$WORK/viewers" $bad </dev/null >/dev/null 2>&1 || rc=$?
  check_eq "stream $bad: usage (exit 2)" 2 "$rc"
done
for bad in http://$NAME:1/live/ https://$NAME/live/ "https://$NAME:1/live/../x/" https://$NAME:1/live; do
  out=$("$VIEW_BIN" live --dir "$WORK/alice" --root "$WORK/dev/root.pem" "$bad" 2>&1) && rc=0 || rc=$?
  check "view live $bad: refused with one line" bash -c "[ $rc = 1 ] && [ \$(wc -l <<<\"\$0\") = 1 ] && \
    grep -q 'URL' <<<\"\$0\"" "$out"
done

# ---- the live stream: 10 s at 30 fps, a GOP and a segment per second ----
mkfifo "$WORK/src.fifo"
"$AGENT_BIN" stream --dir "$CAM" --viewers "$WORK/viewers" --sign yes --segment-ms 1000 --window 30 \
  --in "$WORK/src.fifo" --listen 127.0.0.1:0 >"$WORK/stream.out" 2>"$WORK/stream.log" &
PIDS+=($!)
wait_for "$WORK/stream.out" '^listening on ' 100 || { cat "$WORK/stream.log"; exit 1; }
PORT=$(sed -n 's/^listening on .*://p' "$WORK/stream.out")
URL=https://$NAME:$PORT/live/
live() { # live VIEWER OUT REPORT [url]: camtrust-view live in the background
  "$VIEW_BIN" live --dir "$WORK/$1" --root "$WORK/dev/root.pem" --connect "127.0.0.1:$PORT" --out "$2" "${4:-$URL}" \
    >"$3" 2>&1 &
}
# The encoder starts once the camera listens (the agent opens the FIFO first); a copy of its output is kept.
(ffmpeg -nostdin -loglevel error -re -f lavfi -i testsrc2=size=320x180:rate=30 -t 10 -c:v libx264 -preset ultrafast \
  -g 30 -bf 0 -pix_fmt yuv420p -f h264 - | tee "$WORK/src.h264" >"$WORK/src.fifo") &
live alice "$WORK/alice.mp4" "$WORK/alice.rep"; A=$!
live bob "$WORK/bob.mp4" "$WORK/bob.rep"; B=$!
live carol "$WORK/carol.mp4" "$WORK/carol.rep"; C=$!
# bob is removed (his certificate taken out of the folder) once the camera has made two segments. (Not once bob has
# shown two: a viewer slowed by load, far behind the real-time camera, would be removed after the last segment.)
for _ in $(seq 1 300); do [ -e "$CAM/live/seg-000001.m4s" ] && break; sleep 0.05; done
mv "$WORK/viewers/bob.pem" "$WORK/bob.removed.pem"
rc=0; wait $A || rc=$?
check "alice watched the whole stream: every segment verified and shown (exit 0)" bash -c "[ $rc = 0 ] && \
  grep -q 'result: AUTHENTIC (10 authentic)' '$WORK/alice.rep' && grep -q 'live: 10 segments shown, 0 not shown' '$WORK/alice.rep'"
check "  ... the report is camtrust-verify's, the camera named" grep -q 'camera: serial "CAM1401"' "$WORK/alice.rep"
check_eq "  ... the clear video --out wrote is its owner's only (0600)" 600 "$(stat -c %a "$WORK/alice.mp4")"
frames "$WORK/src.h264" >"$WORK/src.md5"
frames "$WORK/alice.mp4" >"$WORK/alice.md5"
check_eq "alice decodes exactly the 300 source frames (framemd5)" "300 same" \
  "$(wc -l <"$WORK/alice.md5") $(cmp -s "$WORK/src.md5" "$WORK/alice.md5" && echo same)"
wait $B || true
shown=$(grep -c ': shown' "$WORK/bob.rep" || true)
check "bob, removed mid-stream: segments before shown, then refused for want of a key, never shown again" bash -c "
  [ $shown -ge 2 ] && [ $shown -lt 10 ] && grep -q \"NOT SHOWN: viewer 'bob' is not among\" '$WORK/bob.rep' &&
  ! sed -n '/NOT SHOWN/,\$p' '$WORK/bob.rep' | grep -q ': shown'"
frames "$WORK/bob.mp4" >"$WORK/bob.md5"
check_eq "  ... bob decodes exactly the source frames of the segments he got" "$((shown * 30)) same" \
  "$(wc -l <"$WORK/bob.md5") $(head -n $((shown * 30)) "$WORK/src.md5" | cmp -s - "$WORK/bob.md5" && echo same)"
check "  ... the camera took the change from the next segment" grep -q 'event=viewers_changed viewers=1' "$WORK/stream.log"
wait $C || true
check "carol (not a recipient) gets nothing: no segment shown, no output" bash -c "
  grep -q 'live: 0 segments shown, 10 not shown' '$WORK/carol.rep' && [ ! -s '$WORK/carol.mp4' ]"
wait_for "$WORK/stream.out" '^stream ended: 300 frames, 10 segments' 100
check "the input ended: the playlist is closed, the camera still serves it" bash -c "curl -sS --max-time 10 \
  --cacert '$WORK/dev/root.pem' --resolve $NAME:$PORT:127.0.0.1 ${URL}index.m3u8 | grep -q '^#EXT-X-ENDLIST'"

# ---- bounded: more silent clients than workers hold no one for longer than serve.timeout_ms ----
# 10 silent connections from 127.0.0.1-3 (4, 4 and 2: no more than one address may hold) take all 8 workers, 2 wait;
# held open (by a background python) until the client from 127.0.0.4 is done.
python3 - "$PORT" "$WORK/silent.ready" <<'PY' &
import socket, sys, time
conns = [socket.create_connection(("127.0.0.1", int(sys.argv[1])), source_address=("127.0.0.%d" % (1 + i // 4), 0))
         for i in range(10)]
open(sys.argv[2], "w").write("ready\n")
time.sleep(60)
PY
SILENT=$!
PIDS+=($SILENT)
wait_for "$WORK/silent.ready" ready 100
check "10 silent connections (8 workers): the next client is still served (deadline per connection)" bash -c \
  "curl -sS --max-time 20 --interface 127.0.0.4 --cacert '$WORK/dev/root.pem' --resolve $NAME:$PORT:127.0.0.1 \
   ${URL}index.m3u8 | grep -q EXTM3U"
kill "$SILENT" 2>/dev/null || true
wait "$SILENT" 2>/dev/null || true
unset 'PIDS[-1]'

# ---- a recorder mirrors the files (curl over HTTPS): it stores encrypted, signed segments ----
get() { curl -sS --max-time 10 --cacert "$WORK/dev/root.pem" --resolve "$NAME:$PORT:127.0.0.1" "$URL$1"; }
mkdir -p "$WORK/mirror"
get index.m3u8 >"$WORK/mirror/index.m3u8"
for f in init.mp4 $(grep -v '^#' "$WORK/mirror/index.m3u8"); do get "$f" >"$WORK/mirror/$f"; done
cat "$WORK/mirror/init.mp4" "$WORK/mirror"/seg-*.m4s >"$WORK/mirror.mp4"
check "the mirror holds the camera's files byte for byte (one encryption, served to all)" bash -c \
  "cat '$CAM/live/init.mp4' '$CAM/live'/seg-*.m4s | cmp -s - '$WORK/mirror.mp4'"
rc=0; "$VERIFY_BIN" --root "$WORK/dev/root.pem" "$WORK/mirror.mp4" >"$WORK/cv.out" 2>&1 || rc=$?
check "camtrust-verify finds the mirrored copy authentic without any key" bash -c "[ $rc = 0 ] && \
  grep -q 'result: AUTHENTIC (10 authentic)' '$WORK/cv.out'"
cat "$WORK/mirror/init.mp4" "$WORK/mirror/seg-000000.m4s" "$WORK/mirror/seg-000001.m4s" >"$WORK/first2.mp4"
rc=0; "$VERIFY_BIN" --root "$WORK/dev/root.pem" "$WORK/first2.mp4" >"$WORK/cv.out" 2>&1 || rc=$?
check "each segment carries its own GOPs' signatures (the first two alone: 2 authentic, none waiting)" bash -c \
  "[ $rc = 0 ] && grep -q 'result: AUTHENTIC (2 authentic)' '$WORK/cv.out'"
"$VIEW_BIN" decrypt --dir "$WORK/alice" "$WORK/mirror.mp4" "$WORK/later.mp4" >/dev/null
check "alice decrypts the mirrored copy later: the source frames" cmp -s <(frames "$WORK/later.mp4") "$WORK/src.md5"
check "carol cannot decrypt the mirrored copy" bash -c "! '$VIEW_BIN' decrypt --dir '$WORK/carol' '$WORK/mirror.mp4' \
  '$WORK/carol-later.mp4' 2>/dev/null"
check "the camera serves nothing outside its live files" bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' \
  --max-time 10 --cacert '$WORK/dev/root.pem' --resolve $NAME:$PORT:127.0.0.1 '${URL}../agent.conf') = 404 ] && \
  [ \$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert '$WORK/dev/root.pem' \
  --resolve $NAME:$PORT:127.0.0.1 '${URL}seg-1.m4s.tmp') = 404 ]"

# ---- a segment altered on the camera's storage: reported, not shown; the others still are ----
# (The ended stream, watched from here on, is a recording by now: watched with --max-age 600, wide enough for a loaded
# machine; live_fresh.sh tests the default bound.)
python3 - "$CAM/live/seg-000004.m4s" <<'PY'
import os, sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[b.index(b'mdat') + 4000] ^= 0x01  # inside the IDR slice (encrypted or clear, it is hashed)
open(sys.argv[1] + '.x', 'wb').write(b)
os.rename(sys.argv[1] + '.x', sys.argv[1])
PY
rc=0; "$VIEW_BIN" live --dir "$WORK/alice" --root "$WORK/dev/root.pem" --max-age 600 --connect "127.0.0.1:$PORT" \
  --out "$WORK/t.mp4" "$URL" >"$WORK/t.rep" 2>&1 || rc=$?
check "the altered segment is reported (altered) and not shown, exit 1" bash -c "[ $rc = 1 ] && \
  grep -Eq 'frames +120-149 .* altered' '$WORK/t.rep' && grep -q '^segment 4: NOT SHOWN: not authentic' '$WORK/t.rep'"
frames "$WORK/t.mp4" >"$WORK/t.md5"
check_eq "  ... the other nine are shown: the source frames without those of segment 4" "270 same" \
  "$(wc -l <"$WORK/t.md5") $(sed '121,150d' "$WORK/src.md5" | cmp -s - "$WORK/t.md5" && echo same)"

# ---- look-alikes: another name on the real camera; a self-signed certificate for this name ----
rc=0; "$VIEW_BIN" live --dir "$WORK/alice" --root "$WORK/dev/root.pem" --connect "127.0.0.1:$PORT" \
  --out "$WORK/n.mp4" "https://cam9999.devices.example.com:$PORT/live/" >"$WORK/n.rep" 2>&1 || rc=$?
check "the real camera asked for under another serial's name: refused" bash -c "[ $rc = 1 ] && \
  grep -q 'refused' '$WORK/n.rep' && [ ! -s '$WORK/n.mp4' ]"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/fake.key" \
  -subj "/serialNumber=CAM1401/CN=CAM1401" -addext "subjectAltName=DNS:$NAME" -days 30 -out "$WORK/fake.pem" 2>/dev/null
mkdir -p "$WORK/fake/live" && cp "$WORK/mirror"/* "$WORK/fake/live/"
P=$((20000 + RANDOM % 40000))
(cd "$WORK/fake" && exec openssl s_server -quiet -accept "127.0.0.1:$P" -cert "$WORK/fake.pem" -key "$WORK/fake.key" \
  -WWW </dev/null >/dev/null 2>&1) &
PIDS+=($!)
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$P") 2>/dev/null && break; sleep 0.05; done
check "the look-alike serves the stream to a client that skips verification (the test is real)" bash -c \
  "curl -sk --max-time 10 --resolve $NAME:$P:127.0.0.1 https://$NAME:$P/live/index.m3u8 | grep -q EXTM3U"
rc=0; "$VIEW_BIN" live --dir "$WORK/alice" --root "$WORK/dev/root.pem" --connect "127.0.0.1:$P" \
  --out "$WORK/f.mp4" "https://$NAME:$P/live/" >"$WORK/f.rep" 2>&1 || rc=$?
check "the look-alike (self-signed, same name) is refused: nothing read, nothing shown" bash -c "[ $rc = 1 ] && \
  grep -q 'not a camera of this device root' '$WORK/f.rep' && [ ! -s '$WORK/f.mp4' ] && ! grep -q '^GOP' '$WORK/f.rep'"
# A look-alike with a valid certificate of its own (camera CAM1402, provisioned under the same root) serving
# CAM1401's signed segments as its own: its TLS passes, the video is refused from the first segment on.
CAM2=$WORK/cam2
"$SIM_BIN" simulate --dir "$CAM2" --serial CAM1402 --model CX14 --root "$WORK/dev/root.pem" \
  --ops-root "$CA/ops-root.pem" >/dev/null
factory_provision "$CAM2" CAM1402 "$WORK/dev"
mkdir -p "$WORK/look" && cp "$WORK/mirror"/* "$WORK/look/" && mkfifo "$WORK/never.fifo" # no encoder: it only serves
"$AGENT_BIN" stream --dir "$CAM2" --viewers "$WORK/viewers" --in "$WORK/never.fifo" --live "$WORK/look" \
  --listen 127.0.0.1:0 >"$WORK/look.out" 2>"$WORK/look.log" &
PIDS+=($!)
wait_for "$WORK/look.out" '^listening on ' 100 || { cat "$WORK/look.log"; exit 1; }
P=$(sed -n 's/^listening on .*://p' "$WORK/look.out") NAME2=cam1402.devices.example.com
check "the look-alike CAM1402 serves CAM1401's segments under its own valid certificate (curl verifies it)" bash -c \
  "curl -sS --max-time 10 --cacert '$WORK/dev/root.pem' --resolve $NAME2:$P:127.0.0.1 https://$NAME2:$P/live/index.m3u8 |
  grep -q EXTM3U"
rc=0; "$VIEW_BIN" live --dir "$WORK/alice" --root "$WORK/dev/root.pem" --connect "127.0.0.1:$P" \
  --out "$WORK/m.mp4" "https://$NAME2:$P/live/" >"$WORK/m.rep" 2>&1 || rc=$?
check "a camera serving another camera's signed segments: refused from the first segment, nothing shown" bash -c "
  [ $rc = 1 ] && grep -q '^segment 0: NOT SHOWN: not authentic: .*signed by camera \"CAM1401\", not by \"cam1402\"' \
  '$WORK/m.rep' && grep -q 'live: 0 segments shown, 10 not shown' '$WORK/m.rep' && [ ! -s '$WORK/m.mp4' ]"
# The same certified camera hoarding the viewer's memory: an unsigned segment (its GOP, which no signature closes,
# keeps every later segment waiting), then segments of 255 MiB (zeros, sparse files) held while they wait. The
# viewer stops, in one line, once 512 MiB are held; it took them all (up to 64 segments of 256 MiB: 16 GiB).
ffmpeg -nostdin -loglevel error -f lavfi -i testsrc2=size=320x180:rate=30 -t 1 -c:v libx264 -preset ultrafast -g 30 \
  -bf 0 -pix_fmt yuv420p -f h264 "$WORK/hog.h264"
"$AGENT_BIN" record --dir "$CAM2" --viewers "$WORK/viewers" --segment-ms 1000 --cmaf yes "$WORK/hog.h264" \
  "$WORK/hog" >/dev/null
rm -f "$WORK/look"/* && cp "$WORK/hog/init.mp4" "$WORK/hog/seg-000000.m4s" "$WORK/look/"
{ sed '/^seg-/q' "$WORK/hog/index.m3u8"
  for i in 1 2 3 4; do
    truncate -s $((255 << 20)) "$WORK/look/seg-00000$i.m4s"
    printf '#EXTINF:1.000,\nseg-00000%s.m4s\n' "$i"
  done
  echo '#EXT-X-ENDLIST'; } >"$WORK/look/index.m3u8"
rc=0; "$VIEW_BIN" live --dir "$WORK/alice" --root "$WORK/dev/root.pem" --connect "127.0.0.1:$P" \
  --out "$WORK/h.mp4" "https://$NAME2:$P/live/" >"$WORK/h.rep" 2>&1 || rc=$?
check "a camera making the viewer hold segments no signature covers: it stops at 512 MiB held, nothing shown" \
  bash -c "[ $rc = 1 ] && grep -q 'segment 3: more than 512 MiB of segments held without a signature' '$WORK/h.rep' &&
  [ ! -s '$WORK/h.mp4' ]"
# The same camera naming a segment with terminal controls (ESC, the C1 CSI as a byte and in UTF-8): refused in one
# line that shows them as '?', none of them reaching the viewer's terminal.
printf '#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:1.000,\nseg\033[2J\302\23331m\233X.m4s\n' >"$WORK/look/index.m3u8"
rc=0; "$VIEW_BIN" live --dir "$WORK/alice" --root "$WORK/dev/root.pem" --connect "127.0.0.1:$P" \
  --out "$WORK/c.mp4" "https://$NAME2:$P/live/" >"$WORK/c.rep" 2>&1 || rc=$?
check "a playlist naming a segment with terminal controls: refused, the name shown with '?' for them" bash -c \
  "[ $rc != 0 ] && grep -qF \"segment URI 'seg?[2J??31m?X.m4s' is not a plain file name\" '$WORK/c.rep'"
check "  ... no byte of them reaches the viewer's terminal" bash -c \
  "! LC_ALL=C grep -q \$'[\\x1b\\x80-\\xff]' '$WORK/c.rep'"
stop_all

# ---- a viewer joining late (the first segments gone from the playlist) still identifies the camera ----
# (The CRLs of the --crl checks below, made before this stream: their revocations predate its recording.)
CRL_BY=root make_crl "$WORK/dev" "$WORK/root-none.crl"
CRL_BY=root make_crl "$WORK/dev" "$WORK/root-revokes-issuing.crl" "$WORK/dev/issuing.pem"
make_crl "$WORK/dev" "$WORK/revokes-device.crl" "$CAM.chains/device.chain"
make_crl "$WORK/dev" "$WORK/revokes-signer.crl" "$CAM.chains/media-signing.chain"
make_ca "$WORK/other" Other
make_crl "$WORK/other" "$WORK/other.crl"
mkfifo "$WORK/late.fifo"
"$AGENT_BIN" stream --dir "$CAM" --viewers "$WORK/viewers" --sign yes --segment-ms 1000 --window 2 \
  --in "$WORK/late.fifo" --live "$WORK/live3" --listen 127.0.0.1:0 >"$WORK/s3.out" 2>"$WORK/s3.log" &
PIDS+=($!)
wait_for "$WORK/s3.out" '^listening on ' 100
PORT=$(sed -n 's/^listening on .*://p' "$WORK/s3.out") URL=https://$NAME:$(sed -n 's/^listening on .*://p' "$WORK/s3.out")/live/
ffmpeg -nostdin -loglevel error -f lavfi -i testsrc2=size=320x180:rate=30 -t 4 -c:v libx264 -preset ultrafast -g 30 \
  -bf 0 -pix_fmt yuv420p -f h264 - 2>/dev/null | tee "$WORK/late.h264" >"$WORK/late.fifo"
wait_for "$WORK/s3.out" '^stream ended' 100
rc=0; "$VIEW_BIN" live --dir "$WORK/alice" --root "$WORK/dev/root.pem" --max-age 600 --connect "127.0.0.1:$PORT" \
  --out "$WORK/late.mp4" "$URL" >"$WORK/late.rep" 2>&1 || rc=$?
check "a late viewer (segments 2-3 only): the camera identified (its certificate repeated per segment), both shown" \
  bash -c "[ $rc = 0 ] && grep -q '^segment 2: shown' '$WORK/late.rep' && grep -q 'camera: serial \"CAM1401\"' \
  '$WORK/late.rep' && grep -q 'result: AUTHENTIC (2 authentic)' '$WORK/late.rep'"
frames "$WORK/late.h264" >"$WORK/late.src"
frames "$WORK/late.mp4" >"$WORK/late.md5"
check_eq "  ... and decodes exactly the source frames 60-119" "60 same" \
  "$(wc -l <"$WORK/late.md5") $(sed -n '61,120p' "$WORK/late.src" | cmp -s - "$WORK/late.md5" && echo same)"

# ---- --crl, as camtrust-view verify --crl takes it: the device root's CRL (a ceremony revoking the issuing CA) or
# the issuing CA's; the camera's TLS certificate is judged by it before any request, each signer's chain too ----
crl_live() { # crl_live NAME CRL: alice watches the closed stream with --crl CRL; sets rc
  rc=0; "$VIEW_BIN" live --dir "$WORK/alice" --root "$WORK/dev/root.pem" --crl "$2" --connect "127.0.0.1:$PORT" \
    --max-age 600 --out "$WORK/$1.mp4" "$URL" >"$WORK/$1.rep" 2>&1 || rc=$?
}
crl_live crl-none "$WORK/root-none.crl"
check "--crl with the device root's CRL revoking nothing: watched as before, the root's CRL applied" bash -c "
  [ $rc = 0 ] && grep -q 'live: 2 segments shown, 0 not shown' '$WORK/crl-none.rep' &&
  grep -q \"issuing CA not revoked (root's CRL\" '$WORK/crl-none.rep' && [ -s '$WORK/crl-none.mp4' ]"
for c in root-revokes-issuing:'issuing CA (by the root' revokes-device:'revoked at' other:'CRL is not from'; do
  crl_live "crl-${c%%:*}" "$WORK/${c%%:*}.crl"
  check "--crl ${c%%:*}.crl: the camera is refused before any request (nothing read, nothing shown)" bash -c "
    [ $rc = 1 ] && grep -q \"certificate is refused: .*${c#*:}\" '$WORK/crl-${c%%:*}.rep' &&
    ! grep -Eq '^(GOP|segment)' '$WORK/crl-${c%%:*}.rep' && [ ! -s '$WORK/crl-${c%%:*}.mp4' ]"
done
crl_live crl-signer "$WORK/revokes-signer.crl"
check "--crl revoking only the media-signing certificate: served, but no segment shown (untrusted)" bash -c "
  [ $rc = 1 ] && grep -q 'live: 0 segments shown, 2 not shown' '$WORK/crl-signer.rep' &&
  grep -q '^segment 2: NOT SHOWN: not authentic: .*untrusted' '$WORK/crl-signer.rep' && [ ! -s '$WORK/crl-signer.mp4' ]"
S3=${PIDS[-1]}; unset 'PIDS[-1]'
kill -TERM "$S3"; rc=0; wait "$S3" || rc=$?
check_eq "the camera that served them (handshakes in its 8 workers) stops cleanly at SIGTERM (exit 0, and no leak)" \
  0 "$rc"
stop_all

# ---- the recording: kill -9 mid-stream leaves whole segments only; it rotates by size ----
mkfifo "$WORK/enc.fifo"
"$AGENT_BIN" stream --dir "$CAM" --viewers "$WORK/viewers" --segment-ms 1000 --window 3 --in "$WORK/enc.fifo" \
  --record "$WORK/rec" --record-max-kb 400 --live "$WORK/live2" --listen 127.0.0.1:0 >"$WORK/s2.out" 2>"$WORK/s2.log" &
KPID=$!
ffmpeg -nostdin -loglevel error -re -f lavfi -i testsrc2=size=320x180:rate=30 -t 20 -c:v libx264 -preset ultrafast \
  -g 30 -bf 0 -pix_fmt yuv420p -f h264 -y "$WORK/enc.fifo" 2>/dev/null &
FPID=$!
wait_for "$WORK/live2/index.m3u8" 'seg-000007.m4s' 150
kill -9 $KPID; wait $KPID 2>/dev/null || true
kill $FPID 2>/dev/null || true; wait $FPID 2>/dev/null || true
RUN=$(ls -d "$WORK/rec"/*/ | head -1)
whole=0 broken=0
for s in "$RUN"seg-*.m4s; do
  cat "$RUN/init.mp4" "$s" >"$WORK/one.mp4"
  if "$VIEW_BIN" decrypt --dir "$WORK/alice" "$WORK/one.mp4" "$WORK/one.clear.mp4" 2>/dev/null | grep -q ': 30 frames$'; then
    whole=$((whole + 1)); else broken=$((broken + 1)); fi
  rm -f "$WORK/one.clear.mp4"
done
check "after kill -9: every segment of the recording is whole (30 frames each, decrypts)" bash -c "[ $whole -ge 2 ] && [ $broken = 0 ]"
check "  ... the live playlist named a sliding window of 3 (EXT-X-MEDIA-SEQUENCE moved on)" bash -c "
  [ \$(grep -c '^seg-' '$WORK/live2/index.m3u8') = 3 ] && ! grep -q '^#EXT-X-MEDIA-SEQUENCE:0$' '$WORK/live2/index.m3u8' &&
  ! grep -q ENDLIST '$WORK/live2/index.m3u8'"
check "  ... the recording was rotated by size (oldest segments gone, at most 400 KiB + the newest)" bash -c "
  [ ! -e '${RUN}seg-000000.m4s' ] && [ \$(cat '$RUN'seg-*.m4s | wc -c) -le \$((400 * 1024 + 262144)) ]"
# ---- H.265 (libx265): the same pipeline, watched live; exactly the source frames, every signature verified ----
mkfifo "$WORK/hevc.fifo"
"$AGENT_BIN" stream --dir "$CAM" --viewers "$WORK/viewers" --sign yes --segment-ms 1000 --window 10 \
  --in "$WORK/hevc.fifo" --live "$WORK/live4" --listen 127.0.0.1:0 >"$WORK/s4.out" 2>"$WORK/s4.log" &
PIDS+=($!)
wait_for "$WORK/s4.out" '^listening on ' 100 || { cat "$WORK/s4.log"; exit 1; }
PORT=$(sed -n 's/^listening on .*://p' "$WORK/s4.out") URL=https://$NAME:$(sed -n 's/^listening on .*://p' "$WORK/s4.out")/live/
live alice "$WORK/hevc.mp4" "$WORK/hevc.rep"; H=$!
# B-frames (presented in their own order), closed GOPs: leading pictures are not signable (below).
ffmpeg -nostdin -loglevel error -re -f lavfi -i testsrc2=size=320x180:rate=30 -t 3 -c:v libx265 -preset ultrafast \
  -g 30 -bf 2 -x265-params log-level=error:open-gop=0 -pix_fmt yuv420p -f hevc - 2>/dev/null |
  tee "$WORK/src.hevc" >"$WORK/hevc.fifo"
rc=0; wait $H || rc=$?
check "H.265: alice watched it live, every segment verified and shown (exit 0)" bash -c "[ $rc = 0 ] && \
  grep -q 'result: AUTHENTIC (3 authentic)' '$WORK/hevc.rep' && grep -q 'live: 3 segments shown, 0 not shown' '$WORK/hevc.rep'"
frames "$WORK/src.hevc" >"$WORK/hevc.src"
frames "$WORK/hevc.mp4" >"$WORK/hevc.md5"
check_eq "  ... and decodes exactly the 90 source frames (framemd5)" "90 same" \
  "$(wc -l <"$WORK/hevc.md5") $(cmp -s "$WORK/hevc.src" "$WORK/hevc.md5" && echo same)"
ffmpeg -nostdin -loglevel error -f lavfi -i testsrc2=size=320x180:rate=30 -t 2 -c:v libx265 -preset ultrafast -g 30 \
  -bf 2 -x265-params log-level=error -pix_fmt yuv420p -f hevc "$WORK/open.hevc" 2>/dev/null
rc=0; "$AGENT_BIN" stream --dir "$CAM" --viewers "$WORK/viewers" --sign yes --live "$WORK/live5" \
  --listen 127.0.0.1:0 <"$WORK/open.hevc" >/dev/null 2>"$WORK/open.log" || rc=$?
check "H.265 open GOPs (x265's default, RASL pictures): signing refused with one clear line, exit 1" bash -c "
  [ $rc = 1 ] && grep -q 'NAL unit type 9 (leading, layer or auxiliary pictures) cannot be' '$WORK/open.log' &&
  grep -q 'encode closed GOPs' '$WORK/open.log'"
# ---- an encoder that changes its SPS at an I-frame (here a cropping: another picture size) sends the new one in
# band, while the stream's sample entry (avc3) keeps the first. A player reads the sample entry once, and the camera
# signed it once; the viewer handed it to the verifier again before every segment, which took it for a set in effect
# before the segment's own: segments 2-3 were not shown (`... differ from those signed`; a recording signed before,
# version 1: `SPS id 0 sent twice with different contents`).
ffmpeg -nostdin -loglevel error -f lavfi -i testsrc2=size=320x180:rate=30 -t 3 -c:v libx264 -preset ultrafast -g 30 \
  -bf 0 -pix_fmt yuv420p -f h264 "$WORK/change-a.h264"
ffmpeg -nostdin -loglevel error -i "$WORK/change-a.h264" -c copy -bsf:v h264_metadata=crop_right=32 -f h264 \
  "$WORK/change-b.h264"
python3 -c 'import sys
a, b = (open(f, "rb").read() for f in sys.argv[1:3])
second = lambda d: d.index(b"\x00\x00\x00\x01\x67", d.index(b"\x00\x00\x00\x01\x67") + 1)  # GOP 2: its SPS
open(sys.argv[3], "wb").write(a[:second(a)] + b[second(b):])' "$WORK/change-a.h264" "$WORK/change-b.h264" \
  "$WORK/change.h264"
mkfifo "$WORK/change.fifo"
"$AGENT_BIN" stream --dir "$CAM" --viewers "$WORK/viewers" --sign yes --segment-ms 1000 --window 10 \
  --in "$WORK/change.fifo" --live "$WORK/live6" --listen 127.0.0.1:0 >"$WORK/s6.out" 2>"$WORK/s6.log" &
PIDS+=($!)
wait_for "$WORK/s6.out" '^listening on ' 100 || { cat "$WORK/s6.log"; exit 1; }
P6=$(sed -n 's/^listening on .*://p' "$WORK/s6.out")
cat "$WORK/change.h264" >"$WORK/change.fifo"
wait_for "$WORK/s6.out" '^stream ended' 100
rc=0; "$VIEW_BIN" live --dir "$WORK/alice" --root "$WORK/dev/root.pem" --max-age 600 --connect "127.0.0.1:$P6" \
  --out "$WORK/change.mp4" "https://$NAME:$P6/live/" >"$WORK/change.rep" 2>&1 || rc=$?
check "an SPS changed in band at GOP 2 (the sample entry keeps the first): the 3 segments verified and shown" \
  bash -c "[ $rc = 0 ] && grep -q 'result: AUTHENTIC (3 authentic)' '$WORK/change.rep' && \
  grep -q 'live: 3 segments shown, 0 not shown' '$WORK/change.rep'"
frames "$WORK/change.h264" >"$WORK/change.src"
frames "$WORK/change.mp4" >"$WORK/change.md5"
check_eq "  ... and decodes exactly the 90 source frames, cropped from frame 30 on (framemd5)" "90 same" \
  "$(wc -l <"$WORK/change.md5") $(cmp -s "$WORK/change.src" "$WORK/change.md5" && echo same)"
# ... that stream on a camera whose storage a falsifier writes: segment 1 (the first with the cropping SPS) damaged,
# so not shown, and segment 2's parameter sets (the same as segment 1's) taken out of its first sample. The player of
# what the viewer shows has never seen the cropping SPS (segment 0's and the sample entry's are in effect): it must not
# be shown pictures the verifier judged with that SPS.
python3 - "$WORK/live6/seg-000001.m4s" <<'PY'
import os, sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[b.index(b'mdat') + 4000] ^= 0x01
open(sys.argv[1] + '.x', 'wb').write(b)
os.rename(sys.argv[1] + '.x', sys.argv[1])
PY
python3 "$HERE/live_sample_edit.py" strip-sets "$WORK/live6/init.mp4" "$WORK/live6/seg-000002.m4s" >/dev/null
rc=0; "$VIEW_BIN" live --dir "$WORK/alice" --root "$WORK/dev/root.pem" --max-age 600 --connect "127.0.0.1:$P6" \
  --out "$WORK/strip.mp4" "https://$NAME:$P6/live/" >"$WORK/strip.rep" 2>&1 || rc=$?
frames "$WORK/strip.mp4" >"$WORK/strip.md5"
check "segment 1 damaged, segment 2's parameter sets taken out: segment 2 not shown, or shown as signed" bash -c "
  [ $rc = 1 ] && grep -q '^segment 1: NOT SHOWN' '$WORK/strip.rep' && { sed -n '1,30p' '$WORK/change.src' |
  cmp -s - '$WORK/strip.md5' || sed -n '1,30p;61,90p' '$WORK/change.src' | cmp -s - '$WORK/strip.md5'; }"
stop_all
finish
