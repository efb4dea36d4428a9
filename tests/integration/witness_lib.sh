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
start_witness() { # (plain HTTP: a checkpoint proves itself)
  "$CA_BIN" witness --dir "$W1" --log "http://127.0.0.1:$HTTP_PORT" --vkey "$CA/log.vkey" --interval 0.2 \
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
