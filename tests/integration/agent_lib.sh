# Shared by the device-agent integration tests (after lib.sh): a test device CA made with openssl (independent
# of camtrust's own CA code), simulated cameras, factory mode on a free loopback port, the test station.
# Tests set AGENT_BIN (camtrust-agent) and CLIENT_BIN (factory_client) first.

# make_ca DIR NAME: DIR/root.pem (self-signed) and DIR/issuing.pem (pathlen 0) with their keys.
make_ca() {
  local d=$1 name=$2
  mkdir -p "$d"
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/root.key" \
    -subj "/CN=$name Device Root" -days 3650 -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign -out "$d/root.pem" 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/issuing.key" \
    -subj "/CN=$name Device Issuing" -out "$d/issuing.csr" 2>/dev/null
  printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$d/issuing.ext"
  openssl x509 -req -in "$d/issuing.csr" -CA "$d/root.pem" -CAkey "$d/root.key" -CAcreateserial -days 3650 \
    -extfile "$d/issuing.ext" -out "$d/issuing.pem" 2>/dev/null
}

# make_crl CADIR OUT [CHAIN...]: a CRL of CADIR's issuing CA (openssl ca) listing the leaf of each CHAIN given;
# with CRL_BY=root, the root's CRL instead (what a key ceremony signs: give it issuing.pem to revoke the issuing CA);
# with CRL_REASON=keyCompromise (any RFC 5280 name), the entries carry that reasonCode.
make_crl() {
  local d=$1 out=$2 by=${CRL_BY:-issuing} chain reason=(); shift 2
  [ -n "${CRL_REASON:-}" ] && reason=(-crl_reason "$CRL_REASON")
  printf 'dir=%s\ndatabase=%s/index.txt\n[ca]\ndefault_ca=c\n[c]\ndatabase=%s/index.txt\ndefault_md=sha256\ndefault_crl_days=30\n' \
    "$d/crl" "$d/crl" "$d/crl" >"$d/crl.cnf"
  mkdir -p "$d/crl" && : >"$d/crl/index.txt"
  for chain in "$@"; do
    openssl x509 -in "$chain" -out "$d/crl/leaf.pem" 2>/dev/null
    openssl ca -config "$d/crl.cnf" -keyfile "$d/$by.key" -cert "$d/$by.pem" -revoke "$d/crl/leaf.pem" "${reason[@]}" 2>/dev/null
  done
  openssl ca -config "$d/crl.cnf" -keyfile "$d/$by.key" -cert "$d/$by.pem" -gencrl -out "$out" 2>/dev/null
}

# sign_csr CADIR CSRDER SERIAL OUTCHAIN [days]: the leaf for a DER CSR, then the issuing CA, in OUTCHAIN.
sign_csr() {
  local d=$1 csr=$2 serial=$3 out=$4 days=${5:-365}
  local lower
  lower=$(tr 'A-Z' 'a-z' <<<"$serial")
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:%s.devices.example.com\n' "$lower" >"$out.ext"
  openssl req -inform DER -in "$csr" -out "$out.csr" 2>/dev/null
  openssl x509 -req -in "$out.csr" -CA "$d/issuing.pem" -CAkey "$d/issuing.key" -CAcreateserial -days "$days" \
    -extfile "$out.ext" -out "$out.leaf" 2>/dev/null
  cat "$out.leaf" "$d/issuing.pem" >"$out"
}

# sign_both CADIR CSRDIR SERIAL OUTDIR: OUTDIR/device.chain and OUTDIR/media-signing.chain
sign_both() {
  local p
  for p in device media-signing; do sign_csr "$1" "$2/$p.csr.der" "$3" "$4/$p.chain"; done
}

# factory_provision DEVDIR SERIAL CADIR: a simulated camera's two chains, signed by CADIR, installed through
# factory mode by the test station (CSRs in DEVDIR.csr, chains in DEVDIR.chains).
factory_provision() {
  local dev=$1 serial=$2 ca=$3
  mkdir -p "$dev.csr" "$dev.chains"
  start_agent factory "$dev"
  "$CLIENT_BIN" "$ADDR" csrs "$dev.csr" >/dev/null
  sign_both "$ca" "$dev.csr" "$serial" "$dev.chains"
  "$CLIENT_BIN" "$ADDR" install device="$dev.chains/device.chain" media-signing="$dev.chains/media-signing.chain" >/dev/null
  stop_factory
}

FACTORY_PID=
stop_factory() {
  if [ -n "$FACTORY_PID" ] && kill -0 "$FACTORY_PID" 2>/dev/null; then kill -TERM "$FACTORY_PID"; fi
  if [ -n "$FACTORY_PID" ]; then wait "$FACTORY_PID" 2>/dev/null || true; fi
  FACTORY_PID=
}
trap 'stop_factory; cleanup_server; rm -rf "$WORK"' EXIT

# start_agent CMD DEVDIR [env...]: runs `camtrust-agent CMD --dir DEVDIR --listen 127.0.0.1:0` in the background,
# waits for its "listening on" line; sets ADDR and FACTORY_PID. Returns non-zero if it exits instead.
start_agent() {
  local cmd=$1 dev=$2; shift 2
  local out=$WORK/agent.$$.$RANDOM.out
  env "$@" "$AGENT_BIN" "$cmd" --dir "$dev" --listen 127.0.0.1:0 >"$out" 2>>"$WORK/agent.log" &
  FACTORY_PID=$!
  for _ in $(seq 1 200); do
    if grep -q '^listening on ' "$out"; then
      ADDR=$(sed -n 's/^listening on //p' "$out")
      return 0
    fi
    kill -0 "$FACTORY_PID" 2>/dev/null || { wait "$FACTORY_PID" 2>/dev/null || true; FACTORY_PID=; return 1; }
    sleep 0.05
  done
  return 1
}

# boot_state DEVDIR: the first word of `camtrust-agent boot` (provisioned/unprovisioned/broken:)
boot_state() { "$AGENT_BIN" boot --dir "$1" 2>/dev/null | awk '{print $1; exit}'; }
