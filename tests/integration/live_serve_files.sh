#!/usr/bin/env bash
# What `camtrust-agent stream` serves from its live folder, attacked: names that leave it (.., encoded, doubled
# slashes, seg-N out of range or signed) and links planted in it get 404; a FIFO planted under a live file's name
# (whoever can write the camera's flash) gets 404 at once. Before, opening the FIFO waited for a writer with no
# deadline: each request for it held a worker for good, 8 requests (4 from each of two addresses) stopped the
# camera's server, and SIGTERM then waited for them forever. The camera is provisioned through factory mode (its
# token real) and serves while it waits for its encoder (a FIFO no one writes: no video is needed here).
# Usage: live_serve_files.sh BUILD_DIR
. "$(dirname "$0")/build_lib.sh" "$1"
. "$HERE/agent_lib.sh"
STREAM=
trap '[ -n "$STREAM" ] && kill -KILL "$STREAM" 2>/dev/null; stop_factory; rm -rf "$WORK"' EXIT

make_ca "$WORK/dev" Test
make_ca "$WORK/ops" Ops
CAM=$WORK/cam NAME=cam1601.devices.example.com
"$SIM_BIN" simulate --dir "$CAM" --serial CAM1601 --model CX16 --root "$WORK/dev/root.pem" \
  --ops-root "$WORK/ops/root.pem" >/dev/null
factory_provision "$CAM" CAM1601 "$WORK/dev"
# One viewer (keyAgreement), certified under the pinned operations root: the viewers folder must load.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/ops/v.key" -subj "/CN=alice" \
  -out "$WORK/ops/v.csr" 2>/dev/null
printf 'keyUsage=critical,keyAgreement\n' >"$WORK/ops/v.ext"
openssl x509 -req -in "$WORK/ops/v.csr" -CA "$WORK/ops/issuing.pem" -CAkey "$WORK/ops/issuing.key" -CAcreateserial \
  -days 30 -extfile "$WORK/ops/v.ext" -out "$WORK/ops/v.leaf" 2>/dev/null
mkdir -p "$WORK/viewers" "$WORK/live"
cat "$WORK/ops/v.leaf" "$WORK/ops/issuing.pem" >"$WORK/viewers/alice.pem"

mkfifo "$WORK/src.fifo"
"$AGENT_BIN" stream --dir "$CAM" --viewers "$WORK/viewers" --live "$WORK/live" --in "$WORK/src.fifo" \
  --listen 127.0.0.1:0 >"$WORK/stream.out" 2>"$WORK/stream.log" &
STREAM=$!
for _ in $(seq 1 600); do grep -q '^listening on ' "$WORK/stream.out" && break; sleep 0.05; done
PORT=$(sed -n 's/^listening on .*://p' "$WORK/stream.out")
check "the camera serves while it waits for its encoder" test -n "$PORT"
# code PATH [FROM]: the HTTP status of GET PATH (curl's 000 when no answer came within 20 s).
code() {
  curl -s -o /dev/null -w '%{http_code}\n' --path-as-is --max-time 20 --interface "${2:-127.0.0.1}" \
    --cacert "$WORK/dev/root.pem" --resolve "$NAME:$PORT:127.0.0.1" "https://$NAME:$PORT$1" || true
}
printf 'secret\n' >"$WORK/outside.m4s"
ln -s "$WORK/outside.m4s" "$WORK/live/seg-000007.m4s"
ln -s "$CAM/credentials.pem" "$WORK/live/init.mp4"
for path in /live/../identity /live/%2e%2e/identity /live/..%2fidentity /live//index.m3u8 /live/./index.m3u8 \
  /live/seg-99999999999999999999999.m4s /live/seg--1.m4s /live/seg-.m4s /live/seg-000007.m4s /live/init.mp4 \
  "/live/index.m3u8%00" /live/credentials.pem; do
  check_eq "GET $path: 404" 404 "$(code "$path")"
done

# The FIFO under the playlist's name (the pipeline writes it by rename, which would replace it).
mkfifo "$WORK/live/index.m3u8"
ASKS=()
for i in 1 2 3 4 5 6 7 8; do
  code /live/index.m3u8 "127.0.0.$((1 + (i - 1) / 4))" >"$WORK/fifo.$i" &
  ASKS+=($!)
done
wait "${ASKS[@]}"
check_eq "8 requests for a FIFO in the live folder (4 each from two addresses): 404 each" \
  "404 404 404 404 404 404 404 404" "$(cat "$WORK"/fifo.? | tr '\n' ' ' | sed 's/ $//')"
check_eq "... and the camera still serves its page" 200 "$(code / 127.0.0.3)"
kill -TERM "$STREAM"
rc=0
bounded 30 bash -c "while kill -0 $STREAM 2>/dev/null; do sleep 0.1; done" || rc=$?
check_eq "... and ends on SIGTERM" 0 "$rc"
kill -KILL "$STREAM" 2>/dev/null || true # (one that did not end)
wait "$STREAM" 2>/dev/null || true
STREAM=
finish
