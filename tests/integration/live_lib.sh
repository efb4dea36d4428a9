# Shared by the live-video tests that play against one camera (after build_lib.sh): the agent helpers, ffmpeg, the
# EXIT trap stopping the camera (STREAM) and the viewer (VIEWER) the test started, and live_setup.
. "$HERE/agent_lib.sh"
command -v ffmpeg >/dev/null || { echo "ffmpeg is required (deploy/install-deps test)"; exit 1; }
STREAM= VIEWER=
trap 'for p in $STREAM $VIEWER; do kill -TERM "$p" 2>/dev/null || true; done; stop_factory
  [ -n "${CAMTRUST_TEST_KEEP:-}" ] || rm -rf "$WORK"' EXIT

# live_setup SERIAL MODEL: a CA ($CA) that certified viewer alice, a device CA ($WORK/dev), camera SERIAL provisioned
# through factory mode in $CAM (NAME: its host name), and a viewers folder $WORK/viewers holding alice.
live_setup() {
  CA=$WORK/ca
  ca_create "$CA" >/dev/null
  viewer_make alice
  make_ca "$WORK/dev" Test
  CAM=$WORK/cam NAME=$(tr 'A-Z' 'a-z' <<<"$1").devices.example.com
  "$SIM_BIN" simulate --dir "$CAM" --serial "$1" --model "$2" --root "$WORK/dev/root.pem" \
    --ops-root "$CA/ops-root.pem" >/dev/null
  factory_provision "$CAM" "$1" "$WORK/dev"
  mkdir -p "$WORK/viewers"
  cp "$WORK/alice.pem" "$WORK/viewers/"
}

# live_camera LIVE LISTEN WINDOW: the camera streams, signed, what is written to $WORK/src.fifo (made if need be;
# held open on fd 7 once the camera listens: close it to end the input) into the folder LIVE, 1 s segments, WINDOW of
# them in its playlist, served on LISTEN; sets STREAM and PORT.
live_camera() {
  [ -p "$WORK/src.fifo" ] || mkfifo "$WORK/src.fifo"
  # Emptied here: the child's own redirection truncates it only once the child runs, and until then the camera
  # before it (a restart) still says where it listened (live_slide once took that line, then read no port).
  : >"$WORK/stream.out"
  "$AGENT_BIN" stream --dir "$CAM" --viewers "$WORK/viewers" --sign yes --segment-ms 1000 --window "$3" \
    --in "$WORK/src.fifo" --live "$1" --listen "$2" >"$WORK/stream.out" 2>"$WORK/stream.log" 7>&- &
  STREAM=$!
  for _ in $(seq 1 600); do grep -q '^listening on ' "$WORK/stream.out" && break; sleep 0.05; done
  PORT=$(sed -n 's/^listening on .*://p' "$WORK/stream.out")
  [ -n "$PORT" ] || { cat "$WORK/stream.log"; exit 1; }
  exec 7>"$WORK/src.fifo"
}

# live_view NAME [OPTION...]: alice watches the camera on $PORT in the background (VIEWER), the video in NAME.mp4 and
# the report in NAME.rep.
live_view() {
  local name=$1; shift
  "$VIEW_BIN" live --dir "$WORK/alice" --root "$WORK/dev/root.pem" --connect "127.0.0.1:$PORT" "$@" \
    --out "$WORK/$name.mp4" "https://$NAME:$PORT/live/" >"$WORK/$name.rep" 2>&1 7>&- &
  VIEWER=$!
}

# live_camera_kill: the camera killed (kill -9) mid-stream, its input closed.
live_camera_kill() {
  kill -9 "$STREAM"; wait "$STREAM" 2>/dev/null || true
  exec 7>&-
}
