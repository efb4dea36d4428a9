#!/usr/bin/env bash
# Checkpoints the CA's own software never signs: the attacker is root on the CA host, so it can use the CA's token
# (pkcs11-tool on its SoftHSM token, the log-note key) and answer on the CA's address (a Python HTTP server here). The
# witness w1 (its own token) cosigned the real CA's checkpoint, which binds the audit chain (camtrust-audit N HASH).
# The attacker signs the same tree without that line: cosigned, it would leave w1 nothing to compare the next
# checkpoint's audit chain with, and a copy from before a revocation put back would then be cosigned too. A checkpoint
# of another log's origin, signed with the same key, is refused as well.
# Usage: witness_forged.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/witness_lib.sh"
witness_setup line1 CAM0001 CAM0002
WITH_HTTP=1 start_ca "$CA"
enroll CAM0001 CAM0002
start_witness
cosigned_two() {
  for _ in $(seq 1 150); do
    [ -e "$W1/state.note" ] && [ "$(sed -n 2p "$W1/state.note")" = 2 ] && return 0
    sleep 0.1
  done
  return 1
}
check "w1 cosigns the real checkpoint of 2 certificates" cosigned_two
stop_witness
cleanup_server
check "... which binds the audit chain" grep -q '^camtrust-audit [0-9]* ' "$W1/state.note"
cp "$W1/state.note" "$WORK/state.before"

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
# The attacker's answer on the CA's address: GET /log/checkpoint serves the note; any POST is taken (200).
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
# witness_once: one run of w1 against the attacker's answer; sets RC, the log in $WORK/w.log
witness_once() {
  RC=0; timeout 10 "$CA_BIN" witness --dir "$W1" --log "http://$ADDR" --vkey "$CA/log.vkey" --interval 0.2 \
    2>"$WORK/w.log" || RC=$?
}

# The same tree, signed by the CA's key, without the audit line.
sed -n '1,3p;/^camtrust-time /p' "$WORK/state.before" >"$WORK/noaudit.txt"
sign_note "$WORK/noaudit.txt" "$WORK/noaudit.note"
check "the attacker signs the same tree without the audit line with the CA's token" \
  bash -c "[ \"\$(grep -c '^— ' '$WORK/noaudit.note')\" = 1 ] && ! grep -q '^camtrust-audit' '$WORK/noaudit.note'"
fake_ca "$WORK/noaudit.note"
witness_once
check_eq "w1 refuses a checkpoint that drops the audit line its kept one has (exit 1)" 1 "$RC"
check "... saying why, one line" grep -q "event=witness_refused .*reason=\"the CA's checkpoint of size 2 binds no audit chain, the kept .*state.note does\"" "$WORK/w.log"
check "... cosigning nothing" bash -c "! grep -q witness_cosigned '$WORK/w.log' && cmp -s '$W1/state.note' '$WORK/state.before'"
stop_bg

# Another log's checkpoint (its origin line changed), signed by the same key: not this log's.
{ echo "camtrust.example.com/another-log"; sed -n '2,$p' "$WORK/state.before" | sed '/^$/,$d'; } >"$WORK/origin.txt"
sign_note "$WORK/origin.txt" "$WORK/origin.note"
fake_ca "$WORK/origin.note"
witness_once
check_eq "w1 refuses a checkpoint of another origin signed by the CA's key (exit 1)" 1 "$RC"
check "... saying why, one line" grep -q "event=witness_refused .*reason=\"the served checkpoint is not the log's: a checkpoint of log camtrust.example.com/another-log, not of camtrust.example.com/" "$WORK/w.log"
check "... cosigning nothing" bash -c "! grep -q witness_cosigned '$WORK/w.log' && cmp -s '$W1/state.note' '$WORK/state.before'"
stop_bg
finish
