# Shared by the witness attack tests (witness_camera, witness_audit, witness_forged), sourced with CA_BIN set (it
# sources lib.sh): the CA folder $CA, the witness w1 ($W1, its own token) listed in the CA's witnesses.vkeys, w1
# polling the CA serving now over plain HTTP in the background, and certificates enrolled by the station of
# station_with_order.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CA=$WORK/ca
DB=$CA/camtrust.db
W1=$WORK/w1
WPID=
# witness_setup [STATION SERIAL...]: makes the CA and w1, lists w1 in the CA's witnesses.vkeys; with STATION,
# station_with_order STATION SERIAL... (for enroll).
witness_setup() {
  ca_create "$CA" >/dev/null
  "$CA_BIN" witness init --dir "$W1" --name witness.example.org/w1 >/dev/null
  cp "$W1/witness.vkey" "$CA/witnesses.vkeys"
  if [ $# -gt 0 ]; then station_with_order "$@"; fi
}
start_witness() { # [URL] (plain HTTP: a checkpoint proves itself; URL: the CA's, or one in front of it)
  "$CA_BIN" witness --dir "$W1" --log "${1:-http://127.0.0.1:$HTTP_PORT}" --vkey "$CA/log.vkey" --interval 0.2 \
    2>>"$WORK/witness.log" &
  WPID=$!
}
stop_witness() { if [ -n "$WPID" ]; then kill -TERM "$WPID" 2>/dev/null || true; wait "$WPID" || true; WPID=; fi; }
trap 'stop_witness; stop_bg; cleanup_server; [ -n "${CAMTRUST_TEST_KEEP:-}" ] || rm -rf "$WORK"' EXIT
# enroll SERIAL...: one certificate each, through EST as the station of station_with_order (curl).
enroll() {
  local s
  for s in "$@"; do
    make_csr "$WORK/$s" "/serialNumber=$s/CN=x"
    est_post simpleenroll "$WORK/$s.b64" "$WORK/$s.p7" --cert "$WORK/station.pem" --key "$WORK/station.key" >/dev/null
  done
}
# served_until PREDICATE [ARGS...]: fetches GET /log/checkpoint (plain HTTP) into $WORK/served.note until PREDICATE
# ARGS... holds (bounded); the predicates below look at it.
served_until() {
  for _ in $(seq 1 150); do
    curl -s --max-time 5 -o "$WORK/served.note" "http://127.0.0.1:$HTTP_PORT/log/checkpoint" || true
    "$@" && return 0
    sleep 0.1
  done
  return 1
}
audit_entries() { sed -n 's/^camtrust-audit \([0-9]*\) .*/\1/p' "$1"; } # audit_entries NOTE: the length it binds
binds_more() { [ "$(audit_entries "$WORK/served.note")" -gt "$1" ] 2>/dev/null; } # binds_more N: > N audit entries
w1_cosigned() { grep -q '^— witness\.example\.org/w1 ' "$WORK/served.note"; }
w1_cosigned_more() { binds_more "$1" && w1_cosigned; }
has_size() { [ "$(sed -n 2p "$WORK/served.note")" = "$1" ]; }
# refused_once WHAT REASON: one run of w1 against the CA serving now (its state.note copied to $WORK/state.before
# first, its log in $WORK/w.log): it must exit 1 with REASON (a grep pattern) in one line and cosign nothing.
refused_once() {
  local rc=0
  cp "$W1/state.note" "$WORK/state.before"
  bounded 30 "$CA_BIN" witness --dir "$W1" --log "http://127.0.0.1:$HTTP_PORT" --vkey "$CA/log.vkey" --interval 0.2 \
    2>"$WORK/w.log" || rc=$?
  check_eq "w1 refuses to cosign $1 (exit 1)" 1 "$rc"
  check "... saying why, one line" grep -q "event=witness_refused .*reason=\"$2\"" "$WORK/w.log"
  check "... cosigning nothing" bash -c "! grep -q witness_cosigned '$WORK/w.log' && cmp -s '$W1/state.note' '$WORK/state.before'"
}
# sign_note TEXTFILE OUT: a signed note of TEXTFILE by the CA's checkpoint key, in its token (pkcs11-tool, Ed25519;
# by its ID: found by its label, pkcs11-tool may pick the public key of that label first and fail)
sign_note() {
  SOFTHSM2_CONF=$CA/softhsm2.conf pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label camtrust-ca \
    --login --pin "$(cat "$CA/secrets/user.pin")" --sign --mechanism EDDSA --id ca20 \
    -i "$1" -o "$WORK/sig.bin" >/dev/null 2>&1
  python3 - "$1" "$WORK/sig.bin" "$CA/log.vkey" "$2" <<'PY'
import base64, sys
text, sig = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
name, kid, _ = open(sys.argv[3]).read().strip().split("+", 2)
assert len(sig) == 64
line = "\u2014 %s %s\n" % (name, base64.b64encode(bytes.fromhex(kid) + sig).decode())
open(sys.argv[4], "wb").write(text + b"\n" + line.encode())
PY
}
# fake_ca NOTE: the attacker's answer on the CA's address (sets ADDR): GET /log/checkpoint serves the note; any POST
# is taken (200).
fake_ca() {
  : >"$WORK/fake.out"
  python3 -u - "$1" >"$WORK/fake.out" 2>>"$WORK/fake.log" <<'PY' &
import http.server, sys
note = open(sys.argv[1], "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    def answer(self, body, status=200):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.answer(note) if self.path == "/log/checkpoint" else self.answer(b"not here\n", 404)
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.answer(b"ok\n")
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print("listening on 127.0.0.1:%d" % s.server_port, flush=True)
s.serve_forever()
PY
  BG_PIDS+=($!)
  wait_listening "$WORK/fake.out" $!
}
# busy_proxy PATH: in front of the CA serving now over plain HTTP (sets ADDR), as a load balancer whose node is busy
# once: the first GET of PATH is answered 503, every other request is passed on to the CA as it is.
busy_proxy() {
  : >"$WORK/proxy.out"
  python3 -u - "$1" "$HTTP_PORT" >"$WORK/proxy.out" 2>>"$WORK/proxy.log" <<'PY' &
import http.server, sys, urllib.error, urllib.request
busy, port, state = sys.argv[1], int(sys.argv[2]), {"refused": 0}
class H(http.server.BaseHTTPRequestHandler):
    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def forward(self, body=None):
        if self.command == "GET" and self.path.split("?")[0] == busy and not state["refused"]:
            state["refused"] = 1
            return self.answer(503, b"busy: ask again later\n")
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, self.path), data=body, method=self.command)
        if body is not None: req.add_header("Content-Type", self.headers.get("Content-Type", "text/plain"))
        try:
            with urllib.request.urlopen(req, timeout=10) as r: self.answer(r.status, r.read())
        except urllib.error.HTTPError as e: self.answer(e.code, e.read())
    def do_GET(self): self.forward()
    def do_POST(self): self.forward(self.rfile.read(int(self.headers.get("Content-Length", 0))))
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print("listening on 127.0.0.1:%d" % s.server_port, flush=True)
s.serve_forever()
PY
  BG_PIDS+=($!)
  wait_listening "$WORK/proxy.out" $!
}
