# Shared by the tiles tests (sourced after CA_BIN is set): the CA they serve tiles from and how they fetch them.
. "$(dirname "$0")/lib.sh"
PY="python3 $(dirname "$0")/tiles_check.py"
LOGPY="python3 $(dirname "$0")/log_check.py"
CA=$WORK/ca
DB=$CA/camtrust.db
# db_edit SQL: the database edited directly, as someone who can write its file (not through the CA): under a running CA,
# waiting for the write lock as any SQLite client does (the signer may hold it: "database is locked" failed a run).
db_edit() { sqlite3 -cmd ".timeout 10000" "$DB" "$@"; }
T=$WORK/tiles

# tiles_ca N: a CA with station line1 and an order of CAM0001..CAM<N> (in $WORK/serials.txt), served with plain HTTP
# (PLAIN); tiles fetched into $T.
tiles_ca() {
  ca_create "$CA" >/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/station.key" -subj "/CN=line1" -out "$WORK/station.csr" 2>/dev/null
  "$CA_BIN" station add --dir "$CA" --name line1 --csr "$WORK/station.csr" --out "$WORK/station.pem" >/dev/null
  for i in $(seq 1 "$1"); do printf 'CAM%04d\n' "$i"; done >"$WORK/serials.txt"
  "$CA_BIN" order create --dir "$CA" --station line1 --model CX100 --serials "$WORK/serials.txt" >/dev/null
  WITH_HTTP=1 start_ca "$CA"
  PLAIN=http://127.0.0.1:$HTTP_PORT
  mkdir -p "$T"
  export WORK CA PORT
}

# tile PATH: fetches /log/tile/PATH over plain HTTP into $T/<PATH with / as _>, headers into $WORK/h.txt; prints
# the status.
tile() { curl -s -D "$WORK/h.txt" -o "$T/${1//\//_}" -w '%{http_code}' --max-time 20 "$PLAIN/log/tile/$1" || true; }

# enroll_one SERIAL: enrolls it over EST with a fresh key (the CA certifies a key for one serial only); its
# certificate into $WORK/SERIAL.der. Run eight at a time (xargs -P 8 -I{} bash -c 'enroll_one {}'): the log's
# order is then the order the CA recorded them in.
enroll_one() {
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -subj "/serialNumber=$1/CN=x" \
    -outform DER 2>/dev/null | base64 >"$WORK/$1.b64"
  est_post simpleenroll "$WORK/$1.b64" "$WORK/$1.p7b64" --cert "$WORK/station.pem" --key "$WORK/station.key" >/dev/null
  base64 -d "$WORK/$1.p7b64" | openssl pkcs7 -inform DER -print_certs 2>/dev/null | openssl x509 -outform DER -out "$WORK/$1.der"
}
export -f enroll_one est_post

# log_certs: the certificates enroll_one kept, in the log's order as the database holds it, one path a line.
log_certs() {
  sql "$DB" "select '$WORK/' || c.device_serial || '.der' from log_leaves l
    join certificates c on c.cert_serial_hex = l.cert_serial_hex order by l.leaf_index"
}

# wait_sth N: the signed tree head, once it covers N leaves (up to 15 s), into $WORK/sth.json.
wait_sth() {
  for _ in $(seq 1 150); do
    curl -s -o "$WORK/sth.json" --max-time 20 "$PLAIN/log/sth" || true
    [ "$(jq .tree_size "$WORK/sth.json")" = "$1" ] && return 0
    sleep 0.1
  done
}

# hex_root FIRST COUNT: the root of the perfect tree (COUNT a power of two) over the leaf hashes of the rows from
# leaf FIRST, as the database now holds them, in hex.
hex_root() {
  sql "$DB" "select hex(leaf_hash) from log_leaves where leaf_index >= $1 order by leaf_index limit $2" | python3 -c '
import hashlib, sys
r = [bytes.fromhex(h) for h in sys.stdin.read().split()]
while len(r) > 1:
    r = [hashlib.sha256(b"\x01" + r[i] + r[i + 1]).digest() for i in range(0, len(r), 2)]
print(r[0].hex())'
}
# hex_of FILE: its bytes in hex.
hex_of() { python3 -c 'import sys; print(open(sys.argv[1], "rb").read().hex())' "$1"; }

# no_sth_past SIZE ROOT: once the node refused a tree head or recorded one past SIZE (up to 15 s), that it signed
# none past the one of SIZE leaves with ROOT (served, the newest recorded) and said why in one line.
no_sth_past() {
  for _ in $(seq 1 150); do
    grep -q 'leaves are not those of' "$WORK/server.log" && break
    [ "$(sql "$DB" "select max(tree_size) from log_tree_heads")" != "$1" ] && break
    sleep 0.1
  done
  curl -s -o "$WORK/sth.json" --max-time 20 "$PLAIN/log/sth" || true
  check_eq "no tree head signed over the rows: the one served is still the one of $1" "$1 $2" \
    "$(jq .tree_size "$WORK/sth.json") $(jq -r .root_hash "$WORK/sth.json")"
  check_eq "... and none recorded past it" "$1" "$(sql "$DB" "select max(tree_size) from log_tree_heads")"
  check "the node said why, one line" \
    grep -q "event=log_sth error=\"the log's first $1 leaves are not those of the newest tree head recorded" \
    "$WORK/server.log"
}
