#!/usr/bin/env bash
# Signed video end to end: real clips from ffmpeg (libx264/libx265), cameras provisioned with real tokens
# (camtrust-agent factory + the test station, chains from an openssl CA), `camtrust-agent sign`, then
# `camtrust-verify` on the signed clips, on their remuxes and RTP round trip, on every kind of tampering, and on
# the clips ONVIF's reference framework signed. Usage: media_sign.sh camtrust-agent factory_client camtrust-verify
AGENT_BIN=$1 CLIENT_BIN=$2 VERIFY_BIN=$3
SIM_BIN=$(dirname "$AGENT_BIN")/camtrust-agent-sim
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/agent_lib.sh"
VECTORS=${CAMTRUST_ONVIF_VECTORS:-$HERE/../vectors/onvif-media-signing}
TAMPER="python3 $HERE/media_tamper.py"
command -v ffmpeg >/dev/null || { echo "ffmpeg is required (deploy/install-deps test)"; exit 1; }

# provision_camera DEVDIR SERIAL CADIR: a simulated camera with both chains installed.
provision_camera() {
  local dev=$1 serial=$2 ca=$3
  "$SIM_BIN" simulate --dir "$dev" --serial "$serial" --model CX500 --root "$ca/root.pem" >/dev/null
  mkdir -p "$dev.csr" "$dev.chains"
  start_agent factory "$dev"
  "$CLIENT_BIN" "$ADDR" csrs "$dev.csr" >/dev/null
  sign_both "$ca" "$dev.csr" "$serial" "$dev.chains"
  "$CLIENT_BIN" "$ADDR" install device="$dev.chains/device.chain" media-signing="$dev.chains/media-signing.chain" >/dev/null
  stop_factory
}
# verdict CLIP [ROOT]: the result line's first words and the exit status
verify_rc() { local rc=0; "$VERIFY_BIN" --root "${2:-$WORK/ca/root.pem}" "$1" >"$WORK/out" 2>&1 || rc=$?; echo "$rc"; }
status_of() { # status_of CLIP GOP: the status of that GOP in the human report
  "$VERIFY_BIN" --root "$WORK/ca/root.pem" "$1" 2>/dev/null | awk -v g="$2" '$1 == "GOP" && $2 == g {print $6; exit}'
}
has() { grep -q -- "$1" "$WORK/out"; }

make_ca "$WORK/ca" Test
make_ca "$WORK/other" Other
provision_camera "$WORK/cam1" CAM0501 "$WORK/ca"
provision_camera "$WORK/cam2" CAM0502 "$WORK/ca"
provision_camera "$WORK/cam3" CAM0503 "$WORK/other"
check_eq "three cameras provisioned" "provisioned provisioned provisioned" \
  "$(boot_state "$WORK/cam1") $(boot_state "$WORK/cam2") $(boot_state "$WORK/cam3")"

# ---- clips: 4 s, 30 fps, a GOP a second ----
SRC="-f lavfi -i testsrc2=size=640x360:rate=30 -t 4 -pix_fmt yuv420p"
ffmpeg -v error -y $SRC -c:v libx264 -g 30 "$WORK/clip.h264"
ffmpeg -v error -y $SRC -c:v libx264 -g 30 "$WORK/clip.mp4"
ffmpeg -v error -y $SRC -c:v libx265 -x265-params keyint=30:min-keyint=30:open-gop=0:bframes=0:log-level=error "$WORK/clip.h265"
ffmpeg -v error -y -i "$WORK/clip.h265" -c copy "$WORK/clip265.mp4"
# What most cameras send: the parameter sets again before every IRAP picture (the verifier follows them by id), with
# B-frames; rh.mp4 has them in its avcC too.
ffmpeg -v error -y $SRC -c:v libx264 -g 30 -x264-params repeat-headers=1 "$WORK/rh.mp4"
ffmpeg -v error -y $SRC -c:v libx265 -x265-params \
  keyint=30:min-keyint=30:open-gop=0:bframes=4:repeat-headers=1:log-level=error "$WORK/rh.h265"
check "an unprovisioned camera refuses to sign" bash -c "! '$SIM_BIN' simulate --dir '$WORK/raw' --serial RAW1 --model X --root '$WORK/ca/root.pem' >/dev/null || ! '$AGENT_BIN' sign --dir '$WORK/raw' '$WORK/clip.h264' '$WORK/raw.h264' 2>/dev/null"
for f in clip.h264 clip.mp4 clip.h265 clip265.mp4 rh.mp4 rh.h265; do
  out=$WORK/signed-$f
  check "sign $f" "$AGENT_BIN" sign --dir "$WORK/cam1" "$WORK/$f" "$out"
  check_eq "verify signed $f: exit 0" 0 "$(verify_rc "$out")"
  check "... 4 GOPs authentic, camera CAM0501 model CX500 named" bash -c "grep -q 'result: AUTHENTIC (4 authentic)' '$WORK/out' && grep -q 'serial \"CAM0501\", model \"CX500\"' '$WORK/out'"
  check_eq "ffmpeg decodes signed $f to the same frames (framemd5)" "$(frames "$WORK/$f" | md5sum)" "$(frames "$out" | md5sum)"
done
check_eq "an unsigned clip is reported unsigned (exit 1)" 1 "$(verify_rc "$WORK/clip.mp4")"
check "... every GOP unsigned" has "result: NOT AUTHENTIC (4 unsigned)"
"$VERIFY_BIN" --json --root "$WORK/ca/root.pem" "$WORK/signed-clip.mp4" >"$WORK/report.json" || true
check "--json is one JSON document with per-GOP frames, times and the camera" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["authentic"] and len(r["gops"]) == 4 and r["camera"]["serial"] == "CAM0501", r
g = r["gops"][1]
assert g["status"] == "authentic" and g["first_frame"] == 30 and g["last_frame"] == 59 and g["t_start"] > 0.9, g
' "$WORK/report.json"

# ---- the SEIs survive ffmpeg: remuxing both ways, MPEG-TS, RTP ----
S=$WORK/signed-clip.h264
ffmpeg -v error -y -i "$S" -c copy "$WORK/remux.mp4"
check_eq "Annex B remuxed to MP4 by ffmpeg verifies" 0 "$(verify_rc "$WORK/remux.mp4")"
ffmpeg -v error -y -i "$WORK/signed-clip.mp4" -c copy -bsf:v h264_mp4toannexb -f h264 "$WORK/remux.h264"
check_eq "MP4 remuxed to Annex B by ffmpeg verifies" 0 "$(verify_rc "$WORK/remux.h264")"
ffmpeg -v error -y -i "$WORK/signed-clip.h265" -c copy -f mpegts "$WORK/remux.ts"
ffmpeg -v error -y -i "$WORK/remux.ts" -c copy "$WORK/remux265.mp4"
check_eq "H.265 through MPEG-TS and back to MP4 verifies" 0 "$(verify_rc "$WORK/remux265.mp4")"
# RTP: ffmpeg writes the SDP, a receiver depacketizes to Annex B (it ends 1.5 s after the last packet), the
# sender paces the signed MP4 in real time over loopback UDP.
RTP_PORT=$((20000 + RANDOM % 20000 * 2))
ffmpeg -v error -y -i "$WORK/signed-clip.mp4" -c copy -t 0 -f rtp -sdp_file "$WORK/rtp.sdp" "rtp://127.0.0.1:$RTP_PORT" >/dev/null 2>&1 || true
timeout 60 ffmpeg -v error -y -protocol_whitelist file,udp,rtp -rw_timeout 1500000 -analyzeduration 500000 \
  -i "$WORK/rtp.sdp" -c copy -bsf:v dump_extra -f h264 "$WORK/rtp.h264" 2>/dev/null &
RX=$!
# The sender starts once the receiver's socket is bound (else the first packets, the parameter sets and the first
# GOP, are lost): a fixed second was not always enough under load, where ffmpeg took 1.2-1.6 s to bind.
for _ in $(seq 1 600); do
  ss -Hunl "sport = :$RTP_PORT" | grep -q . && break
  kill -0 "$RX" 2>/dev/null || break
  sleep 0.05
done
ffmpeg -v error -re -i "$WORK/signed-clip.mp4" -c copy -f rtp "rtp://127.0.0.1:$RTP_PORT" >/dev/null 2>&1 || true
wait $RX 2>/dev/null || true
check_eq "RTP packetization and depacketization by ffmpeg (loopback), SDP parameter sets in band: still verifies" \
  0 "$(verify_rc "$WORK/rtp.h264")"
# Without them (ffmpeg's plain RTP to Annex B) a player takes them from the SDP, which no signature covers.
ffmpeg -v error -y -i "$WORK/rtp.h264" -c copy -bsf:v "filter_units=remove_types=7|8" "$WORK/rtp-noparams.h264"
check_eq "... the same without parameter sets: exit 1" 1 "$(verify_rc "$WORK/rtp-noparams.h264")"
check "... named" has "GOP 1 .*no parameter sets (SPS/PPS/VPS) in the clip before its pictures"

# ---- tampering, each reported precisely ----
tamper() { $TAMPER "$@" >/dev/null; }
tamper flip "$S" "$WORK/t-flip.h264" 45
check_eq "one byte flipped in frame 45: exit 1" 1 "$(verify_rc "$WORK/t-flip.h264")"
check "... GOP 2 altered, frame 45 named, the other GOPs authentic" bash -c "grep -q '^GOP 2 .*altered.*frames 45-45' '$WORK/out' && grep -q '3 authentic, 1 altered' '$WORK/out'"
tamper drop-gop "$S" "$WORK/t-drop.h264" 1
verify_rc "$WORK/t-drop.h264" >/dev/null
check "a GOP cut out: reported missing (signed GOP 2)" grep -q 'missing .*1 GOP(s) cut out.*signed GOPs 2-2' "$WORK/out"
tamper swap-gops "$S" "$WORK/t-swap.h264" 1
verify_rc "$WORK/t-swap.h264" >/dev/null
check "two GOPs swapped: both reported reordered" bash -c "[ \$(grep -c ' reordered ' '$WORK/out') -eq 2 ]"
tamper insert-gop "$S" "$WORK/t-insert.h264" 2 "$WORK/clip.h264"
verify_rc "$WORK/t-insert.h264" >/dev/null
check "an unsigned GOP inserted: reported inserted, frames 60-89" grep -q '^GOP 3 .*frames *60-89 .*inserted' "$WORK/out"
"$AGENT_BIN" sign --dir "$WORK/cam2" "$WORK/clip.h264" "$WORK/cam2.h264" >/dev/null 2>&1
tamper splice-sei "$S" "$WORK/t-splice.h264" 1 "$WORK/cam2.h264"
verify_rc "$WORK/t-splice.h264" >/dev/null
check "a valid signature of another camera spliced in: inserted, signed by CAM0502" grep -q '^GOP 2 .*inserted .*signed by another camera (serial "CAM0502"' "$WORK/out"
tamper forge-sei "$S" "$WORK/t-forge.h264" 2
verify_rc "$WORK/t-forge.h264" >/dev/null
check "a forged signature SEI: GOP 3 altered, the SEI does not verify" grep -q '^GOP 3 .*altered .*signature SEI does not verify' "$WORK/out"
# Repeats are insertions, named as such (the old code: "reordered", "unsigned", "reordered").
tamper repeat-frame "$S" "$WORK/t-rframe.h264" 45
verify_rc "$WORK/t-rframe.h264" >/dev/null
check "a picture repeated: GOP 2 inserted, the repeat named" grep -q '^GOP 2 .*inserted .*1 picture NAL unit(s) repeated (frame 46 is one)' "$WORK/out"
tamper repeat-gop "$S" "$WORK/t-rgop.h264" 1
verify_rc "$WORK/t-rgop.h264" >/dev/null
check "a GOP replayed after itself: inserted, a repeat" bash -c "grep -q '^GOP 3 .*inserted .*a repeat of the GOP before it' '$WORK/out' && grep -q '4 authentic, 1 inserted' '$WORK/out'"
tamper repeat-gop-sei "$S" "$WORK/t-rgops.h264" 1
verify_rc "$WORK/t-rgops.h264" >/dev/null
check "... with a copy of its signature too: inserted, a repeat of signed GOP 2" grep -q '^GOP 3 .*inserted .*a repeat of signed GOP 2, the GOP before it' "$WORK/out"
# A clip cut at its start verifies (by design), and says which part of the recording it is.
tamper cut-head "$S" "$WORK/t-head.h264" 2
check_eq "a clip cut at its start (2 GOPs) verifies" 0 "$(verify_rc "$WORK/t-head.h264")"
check "... and says the 2 GOPs before are not in it, and that a cut at the end cannot be told" \
  grep -q '^signed GOPs: 3-4 .*the 2 GOP(s) before are not in this clip); whether it went on after GOP 4 cannot be told' "$WORK/out"
check "the whole clip says it is from the recording's start" grep -q '^signed GOPs: 1-4 .*(from its start)' \
  <("$VERIFY_BIN" --root "$WORK/ca/root.pem" "$S")
# --serial: a clip another camera of the same maker signed, presented as this one's.
rc=0; "$VERIFY_BIN" --root "$WORK/ca/root.pem" --serial CAM0501 "$WORK/cam2.h264" >"$WORK/out" 2>&1 || rc=$?
check_eq "--serial CAM0501 on cam2's clip: exit 1" 1 "$rc"
check "... every GOP inserted, both serials named" bash -c "grep -q '4 inserted' '$WORK/out' && \
  grep -q 'signed by camera \"CAM0502\", not by \"CAM0501\" (--serial)' '$WORK/out'"
check_eq "--serial cam0501 (any case) on its own clip: exit 0" 0 \
  "$("$VERIFY_BIN" --root "$WORK/ca/root.pem" --serial cam0501 "$S" >/dev/null 2>&1; echo $?)"
tamper oversized-sei "$S" "$WORK/t-big.h264"
check_eq "an oversized SEI: exit 1, no crash" 1 "$(verify_rc "$WORK/t-big.h264")"
check "... named as such" has "oversized SEI NAL unit of"
tamper garbage "$S" "$WORK/t-garbage.h264" 70
verify_rc "$WORK/t-garbage.h264" >/dev/null
check "garbage between NAL units: the GOP holding it is altered (frame 70)" grep -q '^GOP 3 .*altered.*frames 70-70' "$WORK/out"
tamper truncate "$S" "$WORK/t-trunc.h264" 0.6
check_eq "a truncated stream: exit 1, no crash" 1 "$(verify_rc "$WORK/t-trunc.h264")"
check "... its last GOP unsigned: the signature would follow the end" has "its signature would follow the end of the clip"
head -c 200000 "$WORK/signed-clip.mp4" >"$WORK/t-trunc.mp4"
rc=$(verify_rc "$WORK/t-trunc.mp4")
check "a truncated MP4 is refused or reported, never a crash (exit 1 or 3)" bash -c "[ '$rc' = 1 ] || [ '$rc' = 3 ]"
check_eq "a chain from another root: exit 1" 1 "$(verify_rc "$S" "$WORK/other/root.pem")"
check "... every GOP untrusted, the chain named as not verifying" bash -c "grep -q '4 untrusted' '$WORK/out' && grep -q 'does not verify to the root' '$WORK/out'"
"$AGENT_BIN" sign --dir "$WORK/cam3" "$WORK/clip.h264" "$WORK/cam3.h264" >/dev/null 2>&1
check_eq "a camera of another maker's root, verified against ours: exit 1" 1 "$(verify_rc "$WORK/cam3.h264")"
check_eq "... and it verifies against its own root" 0 "$(verify_rc "$WORK/cam3.h264" "$WORK/other/root.pem")"

# ---- revocation: a CRL of the issuing CA listing cam1's media-signing certificate ----
make_crl "$WORK/ca" "$WORK/empty.crl"
make_crl "$WORK/ca" "$WORK/revoked.crl" "$WORK/cam1.chains/media-signing.chain"
rc=0; "$VERIFY_BIN" --root "$WORK/ca/root.pem" --crl "$WORK/empty.crl" "$S" >"$WORK/out" 2>&1 || rc=$?
check_eq "with a CRL not listing the camera: exit 0" 0 "$rc"
check "... revocation reported as checked" has "revocation: not revoked (CRL of"
rc=0; "$VERIFY_BIN" --root "$WORK/ca/root.pem" --crl "$WORK/revoked.crl" "$S" >"$WORK/out" 2>&1 || rc=$?
check_eq "a clip recorded before the revocation still verifies (exit 0)" 0 "$rc"
check "... the revocation is named" has "revocation: revoked at"
"$AGENT_BIN" sign --dir "$WORK/cam1" --start $(($(date +%s) + 3600)) "$WORK/clip.h264" "$WORK/later.h264" >/dev/null 2>&1
rc=0; "$VERIFY_BIN" --root "$WORK/ca/root.pem" --crl "$WORK/revoked.crl" "$WORK/later.h264" >"$WORK/out" 2>&1 || rc=$?
check_eq "a clip recorded after the revocation: exit 1" 1 "$rc"
check "... GOPs untrusted, the revocation named" bash -c "grep -q '4 untrusted' '$WORK/out' && grep -q 'was revoked at' '$WORK/out'"
# A key revoked for keyCompromise signs with any date it likes: a clip dated before the revocation is not
# evidence either (the old code judged it by its SEI date: AUTHENTIC).
CRL_REASON=keyCompromise make_crl "$WORK/ca" "$WORK/compromised.crl" "$WORK/cam1.chains/media-signing.chain"
rc=0; "$VERIFY_BIN" --root "$WORK/ca/root.pem" --crl "$WORK/compromised.crl" "$S" >"$WORK/out" 2>&1 || rc=$?
check_eq "a clip dated before a keyCompromise revocation: exit 1" 1 "$rc"
check "... every GOP untrusted, whatever its date, the reason named" bash -c "grep -q '4 untrusted' '$WORK/out' && \
  grep -q 'revoked for keyCompromise at .*nothing it signed is trusted, whatever its date' '$WORK/out'"
# A CRL that is neither the signer's issuing CA's nor the root's checks nothing: asked for, it is not passed over
# (the old code: AUTHENTIC, exit 0, "revocation: not checked").
make_crl "$WORK/other" "$WORK/other.crl"
rc=0; "$VERIFY_BIN" --root "$WORK/ca/root.pem" --crl "$WORK/other.crl" "$S" >"$WORK/out" 2>&1 || rc=$?
check_eq "a CRL of another CA given: exit 1" 1 "$rc"
check "... every GOP untrusted, revocation named as not checkable" bash -c "grep -q '4 untrusted' '$WORK/out' && \
  grep -q 'untrusted  revocation not checked: the CRL is not from the signing certificate.s issuer (nor the root.s)' '$WORK/out'"
CRL_REASON=superseded make_crl "$WORK/ca" "$WORK/superseded.crl" "$WORK/cam1.chains/media-signing.chain"
check_eq "... superseded (no compromise): a clip from before still verifies" 0 \
  "$("$VERIFY_BIN" --root "$WORK/ca/root.pem" --crl "$WORK/superseded.crl" "$S" >/dev/null 2>&1; echo $?)"

# ---- parameter sets: ONVIF Media Signing hashes pictures only; camtrust signs each GOP's SPS/PPS/VPS too ----
# A frame cropping rewritten in the SPS (ffmpeg's h264_metadata / hevc_metadata, pictures untouched) hides part of
# every picture: in the stream (Annex B), in the MP4 sample entry (avcC/hvcC). The old code: AUTHENTIC, exit 0.
width() { ffprobe -v error -select_streams v:0 -show_entries stream=width -of csv=p=0 "$1"; }
for f in clip.h264:h264_metadata clip.mp4:h264_metadata clip.h265:hevc_metadata clip265.mp4:hevc_metadata; do
  clip=${f%%:*} bsf=${f#*:}
  ffmpeg -v error -y -i "$WORK/signed-$clip" -c copy -bsf:v "$bsf=crop_right=64" "$WORK/crop-$clip"
  check_eq "signed $clip with its SPS cropping rewritten: a viewer sees 576 of 640 columns" 576 \
    "$(width "$WORK/crop-$clip")"
  check_eq "... exit 1" 1 "$(verify_rc "$WORK/crop-$clip")"
  check "... every GOP altered, the parameter sets named" bash -c "grep -q '(4 altered)' '$WORK/out' && \
    grep -q '^GOP 1 .*altered .*the parameter sets (SPS/PPS/VPS) its pictures are decoded with differ' '$WORK/out'"
done
ffmpeg -v error -y -i "$S" -c copy -bsf:v h264_metadata=crop_right=64 "$WORK/crop.h264"
tamper replace-param "$S" "$WORK/t-psrep.h264" 2 "$WORK/crop.h264"
check_eq "GOP 3's SPS replaced by a cropping one: exit 1" 1 "$(verify_rc "$WORK/t-psrep.h264")"
check "... GOP 3 altered, named by its parameter sets, the others authentic" bash -c "grep -q '3 authentic, 1 altered' \
  '$WORK/out' && grep -q '^GOP 3 .*altered .*parameter sets' '$WORK/out'"
tamper add-param "$S" "$WORK/t-psadd.h264" 1 "$WORK/crop.h264"
verify_rc "$WORK/t-psadd.h264" >/dev/null
check "a cropping SPS added after GOP 2's own: GOP 2 altered" bash -c "grep -q '3 authentic, 1 altered' '$WORK/out' && \
  grep -q '^GOP 2 .*altered .*parameter sets' '$WORK/out'"
tamper drop-param "$S" "$WORK/t-psdrop.h264" 8 3
verify_rc "$WORK/t-psdrop.h264" >/dev/null
check "GOP 4's PPS removed: GOP 4 altered" bash -c "grep -q '3 authentic, 1 altered' '$WORK/out' && \
  grep -q '^GOP 4 .*altered .*parameter sets' '$WORK/out'"

# A decoder keeps every parameter set it was sent, by kind and id, until one with that id replaces it: not only the
# last group before a picture. once.h264: the PPS the pictures are decoded with (id 0) sent once, before GOP 1, the
# later groups sending the SPS and another PPS (id 1). The old code covered the last group only: AUTHENTIC.
tamper pps-once "$WORK/clip.h264" "$WORK/once.h264"
check_eq "a stream whose PPS id 0 is sent once, before GOP 1: ffmpeg decodes it as the original" \
  "$(frames "$WORK/clip.h264" | md5sum)" "$(frames "$WORK/once.h264" | md5sum)"
"$AGENT_BIN" sign --dir "$WORK/cam1" "$WORK/once.h264" "$WORK/signed-once.h264" >/dev/null 2>&1
check_eq "... signed, it verifies (GOP 1, verified, covers that PPS for the GOPs after it)" 0 \
  "$(verify_rc "$WORK/signed-once.h264")"
tamper add-group "$WORK/signed-once.h264" "$WORK/t-group.h264" 2
gop3() { frames "$1" | sed -n 61,90p | md5sum; }
check "a group of the SPS and a PPS id 0 of another QP before GOP 3's own (which replaces it in the signed digest): \
ffmpeg shows GOP 3 otherwise" bash -c "[ '$(gop3 "$WORK/signed-once.h264")' != '$(gop3 "$WORK/t-group.h264")' ]"
check_eq "... exit 1" 1 "$(verify_rc "$WORK/t-group.h264")"
check "... GOPs 3 and 4 altered, the PPS named" bash -c "grep -q '2 authentic, 2 altered' '$WORK/out' && grep -q \
  '^GOP 3 .*altered .*the parameter sets (SPS/PPS/VPS) its pictures are decoded with differ' '$WORK/out' && grep -q \
  '^GOP 4 .*altered .*parameter set (PPS id 0, sent before frame 60) that no verified signature covers' '$WORK/out'"
tamper qp-pps "$WORK/signed-once.h264" "$WORK/t-qp.h264" 0
check_eq "GOP 1's PPS id 0 given another QP: exit 1" 1 "$(verify_rc "$WORK/t-qp.h264")"
check "... every GOP decoded with it altered, not GOP 1 alone" bash -c "grep -q '(4 altered)' '$WORK/out' && \
  grep -q '^GOP 4 .*altered .*(PPS id 0, sent before frame 0)' '$WORK/out'"
# The camera covers every parameter set of a run in effect, not only its last group: a PPS sent before its SPS
# (two groups: the PPS, then the SPS), or a second SPS/PPS pair of other ids in a row. The old code signed the last
# group only: the camera's own clips never verified (every GOP altered).
ffmpeg -v error -y $SRC -c:v libx264 -g 30 -x264-params repeat-headers=1 "$WORK/rh.h264"
tamper pps-first "$WORK/rh.h264" "$WORK/first.h264"
tamper other-ids "$WORK/clip.h264" "$WORK/ids.h264"
for f in first ids; do
  check_eq "$f.h264 (PPS before SPS / a second pair of other ids): ffmpeg decodes it as the original" \
    "$(frames "$WORK/clip.h264" | md5sum)" "$(frames "$WORK/$f.h264" | md5sum)"
  check "... signed" "$AGENT_BIN" sign --dir "$WORK/cam1" "$WORK/$f.h264" "$WORK/signed-$f.h264"
  check_eq "... it verifies: exit 0" 0 "$(verify_rc "$WORK/signed-$f.h264")"
  check "... 4 GOPs authentic" has "result: AUTHENTIC (4 authentic)"
done
# Two different groups of the same ids in a row (a PPS id 0 of another QP, then the one the pictures are decoded with):
# both signed, the decoder ends up with the second.
tamper add-group "$WORK/rh.h264" "$WORK/twice.h264" 2
check "twice.h264 signed" "$AGENT_BIN" sign --dir "$WORK/cam1" "$WORK/twice.h264" "$WORK/signed-twice.h264"
check_eq "... it verifies: exit 0" 0 "$(verify_rc "$WORK/signed-twice.h264")"
tamper qp-pps "$WORK/signed-first.h264" "$WORK/t-first.h264" 2
check_eq "signed first.h264, the PPS id 0 before GOP 3's SPS given another QP: exit 1" 1 \
  "$(verify_rc "$WORK/t-first.h264")"
check "... GOP 3 altered, the others authentic" bash -c "grep -q '3 authentic, 1 altered' '$WORK/out' && \
  grep -q '^GOP 3 .*altered .*parameter set' '$WORK/out'"
tamper qp-pps "$WORK/signed-ids.h264" "$WORK/t-ids.h264" 0
check_eq "signed ids.h264, its PPS id 0 (the first pair's, the pictures') given another QP: exit 1" 1 \
  "$(verify_rc "$WORK/t-ids.h264")"
check "... every GOP altered" grep -q '(4 altered)' "$WORK/out"
# A group added before a run's own, whose SPS is another (the run's last group, the signed one, sets it back): the
# verifier took the digest camtrust signed before (the last group of each run) for any recording, so added groups
# went unseen. A decoder does not end up as it was: ffmpeg drops the PPSs that named the SPS replaced, here the PPS
# id 0 sent once, before GOP 1, that the later pictures are decoded with. Recordings signed since carry the digest
# as version 2 of its TLV: only version 1 (made before) has the old one accepted. The old code: AUTHENTIC.
tamper hevc-pps-once "$WORK/rh.h265" "$WORK/once.h265"
check "once.h265 (its PPS id 0 sent once, before GOP 1) signed" \
  "$AGENT_BIN" sign --dir "$WORK/cam1" "$WORK/once.h265" "$WORK/signed-once.h265"
check_eq "... it verifies: exit 0" 0 "$(verify_rc "$WORK/signed-once.h265")"
ffmpeg -v error -y -i "$WORK/signed-once.h265" -c copy -bsf:v hevc_metadata=crop_right=64 "$WORK/crop-once.h265"
tamper hevc-add-group "$WORK/signed-once.h265" "$WORK/t-hgroup.h265" 2 "$WORK/crop-once.h265"
check_eq "... a group of its VPS, a cropping SPS and its PPS added before GOP 3's own: ffmpeg shows 60 of the 120 \
pictures" 60 "$(frames "$WORK/t-hgroup.h265" | wc -l)"
check_eq "... exit 1" 1 "$(verify_rc "$WORK/t-hgroup.h265")"
check "... GOP 3 altered, named by its parameter sets" \
  grep -q '^GOP 3 .*altered .*the parameter sets (SPS/PPS/VPS) its pictures are decoded with differ' "$WORK/out"

# H.264 NAL units 19-21 (auxiliary pictures, SVC/MVC layers, 3D-AVC views) carry pictures that a player decoding them
# shows, and ONVIF Media Signing hashes none. The old code passed them over: AUTHENTIC, and the camera signed them.
for t in 19 20 21; do
  tamper insert-nal "$S" "$WORK/t-nal$t.h264" 45 $t
  check_eq "a NAL unit of type $t inserted after frame 45: exit 1" 1 "$(verify_rc "$WORK/t-nal$t.h264")"
  check "... GOP 2 inserted, the types named" bash -c "grep -q '3 authentic, 1 inserted' '$WORK/out' && grep -q \
    '^GOP 2 .*inserted .*1 picture NAL unit(s) of a type the format does not sign (H.264 auxiliary pictures' '$WORK/out'"
done
tamper insert-nal "$WORK/clip.h264" "$WORK/ext.h264" 45 20
rc=0; "$AGENT_BIN" sign --dir "$WORK/cam1" "$WORK/ext.h264" "$WORK/signed-ext.h264" >"$WORK/out" 2>&1 || rc=$?
check "the camera refuses to sign a stream holding one, naming it" bash -c "[ $rc -ne 0 ] && \
  grep -q 'NAL unit type 20 .*cannot be signed' '$WORK/out' && [ ! -e '$WORK/signed-ext.h264' ]"

# ---- ONVIF's reference framework: its clips verify, a flipped byte does not ----
for f in test_signed_h264 test_signed_h265; do
  check_eq "ONVIF reference clip $f.mp4 verifies authentic" 0 "$(verify_rc "$VECTORS/$f.mp4" "$VECTORS/ca.pem")"
  check "... its certificates judged at the recording time (they expired since)" has "MP4 creation time"
done
python3 - "$VECTORS/test_signed_h264.mp4" "$WORK/onvif-flip.mp4" <<'EOF'
import struct, sys
d = bytearray(open(sys.argv[1], "rb").read())
# the first IDR slice's NAL unit: the first 4-byte length prefix followed by 0x65 inside mdat
m = d.find(b"mdat")
i = d.find(b"\x65\x88", m)
d[i + 500] ^= 0x01
open(sys.argv[2], "wb").write(d)
EOF
check_eq "the ONVIF clip with one payload byte flipped: exit 1" 1 "$(verify_rc "$WORK/onvif-flip.mp4" "$VECTORS/ca.pem")"
check "... GOP 1 altered" grep -q '^GOP 1 .*altered' "$WORK/out"
check_eq "the unsigned ONVIF clip is unsigned" 1 "$(verify_rc "$VECTORS/test_h264.mp4" "$VECTORS/ca.pem")"

# ---- what a player takes from an MP4 besides the samples: samples untouched, what it shows is not ----
# t-edits.mp4: an edit list that reorders the presentation. t-entry.mp4: the cropping avcC (crop-clip.mp4's) as a
# second sample entry, which stsc names for every sample; the signed first one stays. t-lead.mp4: a packager's clear
# lead: the first entry again as `encv` (with its `sinf`) for the samples; t-lead-crop.mp4: the same made of the
# cropping entry. t-avcc.mp4: signed-ib.mp4 (avc1, parameter sets in the samples too) with crop-ib.mp4's avcC.
ffmpeg -v error -y -i "$WORK/clip.h264" -c copy "$WORK/ib.mp4"
check "sign an avc1 MP4 whose samples carry parameter sets too" "$AGENT_BIN" sign --dir "$WORK/cam1" "$WORK/ib.mp4" \
  "$WORK/signed-ib.mp4"
check_eq "... it verifies" 0 "$(verify_rc "$WORK/signed-ib.mp4")"
ffmpeg -v error -y -i "$WORK/signed-ib.mp4" -c copy -bsf:v h264_metadata=crop_right=64 "$WORK/crop-ib.mp4"
python3 - "$WORK/signed-clip.mp4" "$WORK/t-edits.mp4" "$WORK/crop-clip.mp4" "$WORK/t-entry.mp4" "$WORK/t-lead.mp4" \
  "$WORK/t-lead-crop.mp4" "$WORK/signed-ib.mp4" "$WORK/crop-ib.mp4" "$WORK/t-avcc.mp4" "$WORK/t-lead-avc3.mp4" \
  "$WORK/t-avcc-pps.mp4" "$HERE" <<'EOF2'
import struct, sys
sys.path.insert(0, sys.argv[12])
from media_tamper import pps_edit
d = bytearray(open(sys.argv[1], "rb").read())
def boxes(off, end):
    while off + 8 <= end:
        size, typ = struct.unpack(">I4s", d[off:off + 8]); hdr = 8
        if size == 1: size, hdr = struct.unpack(">Q", d[off + 8:off + 16])[0], 16
        yield typ, off, size, hdr; off += size
def child(b, name): return next(x for x in boxes(b[1] + b[3], b[1] + b[2]) if x[0] == name)
moov = next(x for x in boxes(0, len(d)) if x[0] == b"moov")  # after mdat (ffmpeg's layout): no offset moves
trak = child(moov, b"trak"); mvhd = child(moov, b"mvhd"); mdhd = child(child(trak, b"mdia"), b"mdhd")
mts, tts = (struct.unpack(">I", d[b[1] + 20:b[1] + 24])[0] for b in (mvhd, mdhd))
# seconds 2-4 first, then 0-2
elst = struct.pack(">I", 2) + struct.pack(">IiHH", 2 * mts, 2 * tts, 1, 0) + struct.pack(">IiHH", 2 * mts, 0, 1, 0)
elst = struct.pack(">I4sI", 12 + len(elst), b"elst", 0) + elst
edts = struct.pack(">I4s", 8 + len(elst), b"edts") + elst
old = [x for x in boxes(trak[1] + 8, trak[1] + trak[2]) if x[0] == b"edts"]
at, cut = (old[0][1], old[0][2]) if old else (child(trak, b"tkhd")[1] + child(trak, b"tkhd")[2], 0)
d[at:at + cut] = edts
for b in (trak, moov): struct.pack_into(">I", d, b[1], b[2] + len(edts) - cut)
open(sys.argv[2], "wb").write(d)
def stbl_of(): # the boxes from moov down to stbl
    path = [next(x for x in boxes(0, len(d)) if x[0] == b"moov")]
    for name in (b"trak", b"mdia", b"minf", b"stbl"): path.append(child(path[-1], name))
    return path
def first_entry(name): # the boxes from moov down to the first sample entry of file `name`
    global d
    d = bytearray(open(name, "rb").read())
    path = stbl_of()
    path.append(child(path[-1], b"stsd"))
    return path + [next(boxes(path[-1][1] + 16, path[-1][1] + path[-1][2]))]
def entry_of(name, encrypted, original=b"avc1"):
    e = first_entry(name)[-1]
    e = bytes(d[e[1]:e[1] + e[2]])
    if not encrypted: return e
    box = lambda t, b: struct.pack(">I4s", 8 + len(b), t) + b
    tenc = box(b"tenc", bytes(6) + b"\x01\x08" + bytes(range(16)))  # version, flags, reserved, protected, IV size, KID
    sinf = box(b"sinf", box(b"frma", original) + box(b"schm", bytes(4) + b"cenc" + struct.pack(">I", 0x10000)) +
               box(b"schi", tenc))
    return struct.pack(">I4s", len(e) + len(sinf), b"encv") + e[8:] + sinf
def second_entry(entry, out):
    path = first_entry(sys.argv[1])[:-1]
    stsd, stsc = path[-1], child(path[-2], b"stsc")
    for i in range(struct.unpack(">I", d[stsc[1] + 12:stsc[1] + 16])[0]):
        struct.pack_into(">I", d, stsc[1] + 24 + 12 * i, 2)  # sample_description_index
    struct.pack_into(">I", d, stsd[1] + 12, 2)
    d[stsd[1] + stsd[2]:stsd[1] + stsd[2]] = entry  # moov after mdat: no chunk offset moves
    for b in path: struct.pack_into(">I", d, b[1], b[2] + len(entry))
    open(out, "wb").write(d)
second_entry(entry_of(sys.argv[3], False), sys.argv[4])
second_entry(entry_of(sys.argv[1], True), sys.argv[5])
second_entry(entry_of(sys.argv[3], True), sys.argv[6])
second_entry(entry_of(sys.argv[1], True, b"avc3"), sys.argv[10])
avc_c = lambda e: next(x for x in boxes(e[1] + e[3] + 78, e[1] + e[2]) if x[0] == b"avcC")  # after the entry's fields
avcc = avc_c(first_entry(sys.argv[8])[-1])
avcc = bytes(d[avcc[1]:avcc[1] + avcc[2]])
path = first_entry(sys.argv[7])
old = avc_c(path[-1])
d[old[1]:old[1] + old[2]] = avcc
for b in path: struct.pack_into(">I", d, b[1], b[2] + len(avcc) - old[2])
open(sys.argv[9], "wb").write(d)
# signed-ib.mp4's avcC with a PPS id 0 of another QP before its own: two different PPS id 0
path = first_entry(sys.argv[7])
old = avc_c(path[-1])
c = bytes(d[old[1] + 8:old[1] + old[2]])
sps_len = struct.unpack(">H", c[6:8])[0]
at = 8 + sps_len  # numOfPictureParameterSets (one SPS)
pps = c[at + 3:at + 3 + struct.unpack(">H", c[at + 1:at + 3])[0]]
alt = pps_edit(pps, qp_delta=-6)
c = c[:at] + bytes([c[at] + 1]) + struct.pack(">H", len(alt)) + alt + c[at + 1:]
d[old[1]:old[1] + old[2]] = struct.pack(">I4s", 8 + len(c), b"avcC") + c
for b in path: struct.pack_into(">I", d, b[1], b[2] + 8 + len(c) - old[2])
open(sys.argv[11], "wb").write(d)
EOF2
first=$(frames "$WORK/signed-clip.mp4" | grep -nxF -- "$(frames "$WORK/t-edits.mp4" | head -1)" | cut -d: -f1 | head -1)
check "... ffmpeg presents it reordered: its first frame is one of the third second's (frame ${first:-none})" \
  bash -c "[ '${first:-0}' -ge 50 ] && [ '${first:-0}' -le 70 ]"
check_eq "an edit list reordering the presentation: exit 1 (the old code: AUTHENTIC)" 1 "$(verify_rc "$WORK/t-edits.mp4")"
check "... named as the problem" has "problem: the MP4 edit list has 2 edits: a player presents the pictures in another order"
check_eq "a second sample entry with a cropping SPS, named for every sample: ffmpeg shows 576 of 640 columns" 576 \
  "$(width "$WORK/t-entry.mp4")"
check_eq "... exit 1 (the old code: AUTHENTIC, the first entry's parameter sets being the signed ones)" 1 \
  "$(verify_rc "$WORK/t-entry.mp4")"
check "... named as the problem" has "problem: the MP4 video track has 2 sample entries: a player may decode"
# A packager's clear lead: an `avc1` entry beside an `encv` one that is the same but for its encryption. The old code:
# "2 sample entries", exit 1.
check_eq "a second sample entry the same as the first but encrypted (encv, sinf): exit 0" 0 \
  "$(verify_rc "$WORK/t-lead.mp4")"
check_eq "... made of the cropping entry: exit 1" 1 "$(verify_rc "$WORK/t-lead-crop.mp4")"
check "... named as the problem" has "problem: the MP4 video track has 2 sample entries: a player may decode"
check_eq "... the same as the first, encrypted, but its frma naming avc3 (not the first's avc1): exit 1 (the old code: \
AUTHENTIC)" 1 "$(verify_rc "$WORK/t-lead-avc3.mp4")"
check "... named as the problem" has "problem: the MP4 video track has 2 sample entries: a player may decode"
# An avcC holding two different PPS id 0 (the altered one first; ffmpeg takes the last): which one a player decodes
# with is the player's. The old code: AUTHENTIC.
check_eq "signed-ib.mp4 with a PPS id 0 of another QP before its avcC's own: exit 1" 1 \
  "$(verify_rc "$WORK/t-avcc-pps.mp4")"
check "... named as the problem" has \
  "problem: the MP4 sample entry (avcC/hvcC) holds two different parameter sets PPS id 0"
# Some players decode an avc1 track with the avcC's parameter sets alone (ffmpeg does once the samples' own are left
# out): its avcC must be the samples' own. The old code: AUTHENTIC (the samples' ones were the last, the signed ones).
ffmpeg -v error -y -i "$WORK/t-avcc.mp4" -c copy -bsf:v "filter_units=remove_types=7|8" "$WORK/avcc-only.mp4"
check_eq "signed-ib.mp4 with a cropping avcC: a player that decodes with the avcC alone shows 576 of 640 columns" 576 \
  "$(width "$WORK/avcc-only.mp4")"
check_eq "... exit 1" 1 "$(verify_rc "$WORK/t-avcc.mp4")"
check "... named as the problem" has "problem: the MP4 sample entry's parameter set (avcC/hvcC: SPS id 0) differs from"
finish
