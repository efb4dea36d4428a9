#!/usr/bin/env bash
# Offline roots end to end: a root vault (3 of 5 custodians, each in a folder of their own), the online CA's init
# (no root in its token), install with its refusals, provisioning through a station, rotation of the device issuing
# CA, more provisioning, both generations of cameras checked by openssl and curl and their recordings verified, then
# the old issuing CA revoked by a ceremony and refused by the verifiers. Usage: ceremony.sh BUILD_DIR
. "$(dirname "$0")/build_lib.sh" "$1"

agent() { # agent MODE NAME: camtrust-agent MODE (factory, serve) on a free port; sets ADDR
  : >"$WORK/cams/$2.$1.out" # (emptied before the child runs: wait_listening must not read a last run's line)
  "$AGENT_BIN" "$1" --dir "$WORK/cams/$2" --listen 127.0.0.1:0 >"$WORK/cams/$2.$1.out" 2>>"$WORK/agents.log" &
  BG_PIDS+=($!)
  wait_listening "$WORK/cams/$2.$1.out" $!
}
provision_cameras() { # provision_cameras NAME:SERIAL...: simulated cameras pinned to root.pem, provisioned by the station
  local devs=() n
  for n in "$@"; do
    "$SIM_BIN" simulate --dir "$WORK/cams/${n%%:*}" --serial "${n##*:}" --model CX1 --root "$CA/root.pem" >/dev/null
    agent factory "${n%%:*}"; devs+=(--device "$ADDR")
  done
  RC=0
  "$STATION_BIN" provision --dir "$ST" --ca "https://localhost:$PORT" --report "$WORK/report.jsonl" "${devs[@]}" \
    >"$WORK/summary" 2>&1 || RC=$?
  stop_bg
}
. "$HERE/../helpers/ca_refused.sh" # fingerprint, changed, refused
p11() { # p11 CADIR ARGS...: pkcs11-tool on the CA's own token
  SOFTHSM2_CONF=$1/softhsm2.conf pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label camtrust-ca \
    --login --pin "$(cat "$1/secrets/user.pin")" "${@:2}" 2>/dev/null
}
# cert_of NAME: the camera's device chain (credentials.pem: one chain per profile, leaf first, the device's first)
cert_of() { awk '/BEGIN CERT/{n++} n<=2 && n>0' "$WORK/cams/$1/credentials.pem"; }

# ---- the key ceremony: the vault, 3 of 5 custodians, each with a passphrase file in a folder of their own ----
V=$WORK/vault CA=$WORK/ca ST=$WORK/station
mkdir -p "$WORK/cams" "$V" && printf 'kdf.iterations = 100000\n' >"$V/vault.conf"
init_args=()
for i in 1 2 3 4 5; do
  mkdir -p "$WORK/custodian-$i" && printf 'passphrase of custodian %s\n' "$i" >"$WORK/custodian-$i/passphrase"
  init_args+=(--passphrase-file "$WORK/custodian-$i/passphrase")
done
"$CA_BIN" root init --dir "$V" --custodians 5 --quorum 3 "${init_args[@]}" >/dev/null
for i in 1 2 3 4 5; do mv "$V/custodian-$i.share" "$WORK/custodian-$i/"; done # each custodian takes theirs away
Q=()
for i in 1 3 5; do Q+=(--share "$WORK/custodian-$i/custodian-$i.share" --passphrase-file "$WORK/custodian-$i/passphrase"); done

# ---- the online CA: its keys, never a root's ----
rc=0; "$CA_BIN" init --dir "$CA" >"$WORK/init.out" || rc=$? # a failure says how (it failed once in CI, silently)
[ "$rc" = 0 ] || { echo "camtrust-ca init failed: exit $rc"; cat "$WORK/init.out"; exit 1; }
check "init names the two requests for the ceremony" grep -q "$CA/device-issuing.csr $CA/ops-issuing.csr" "$WORK/init.out"
check "... which openssl verifies" bash -c "openssl req -in '$CA/device-issuing.csr' -verify -noout && openssl req -in '$CA/ops-issuing.csr' -verify -noout"
check_eq "the CA's token holds only the online keys: no root" \
  "ca-tls device-issuing log-note log-signer ocsp-signer ops-issuing" \
  "$(p11 "$CA" --list-objects --type privkey | sed -n 's/^ *label: *//p' | sort | tr '\n' ' ' | sed 's/ $//')"
rc=0; "$CA_BIN" serve --dir "$CA" --listen 127.0.0.1:0 >"$WORK/out" 2>"$WORK/err" || rc=$?
check_eq "serve refuses, in one line, until the ceremony's certificates are installed" \
  "1 1 awaits its key ceremony" "$rc $(grep -c . "$WORK/err") $(grep -o 'awaits its key ceremony' "$WORK/err")"
refused "the CA folder's token cannot certify an issuing CA (it is not a vault)" "is it a camtrust root vault" "$CA" \
  root sign --dir "$CA" --csr "$CA/device-issuing.csr" --profile device-issuing "${Q[@]}" --out "$WORK/x.pem"
check "... no file was written" test ! -e "$WORK/x.pem"

"$CA_BIN" root sign --dir "$V" --csr "$CA/device-issuing.csr" --profile device-issuing "${Q[@]}" --out "$WORK/dev1.pem" >/dev/null
"$CA_BIN" root sign --dir "$V" --csr "$CA/ops-issuing.csr" --profile ops-issuing "${Q[@]}" --out "$WORK/ops1.pem" >/dev/null
"$CA_BIN" root crl --dir "$V" --root device "${Q[@]}" --out "$WORK/root.crl" >/dev/null
"$CA_BIN" root crl --dir "$V" --root ops "${Q[@]}" --out "$WORK/ops-root.crl" >/dev/null

# usage_refused "description" OPTION DIR args...: an option the command does not take is not ignored: exit 2, one
# line on stderr naming it, nothing on stdout, no --out file, DIR unchanged (an operator believing it applied)
usage_refused() {
  local what=$1 opt=$2 dir=$3 before after rc=0; shift 3
  before=$(fingerprint "$dir")
  rm -f "$WORK/stray.out"
  "$CA_BIN" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  after=$(fingerprint "$dir")
  if [ "$rc" -eq 2 ] && [ "$(wc -l <"$WORK/err")" -eq 1 ] && grep -q -- "does not take $opt\$" "$WORK/err" &&
     [ ! -s "$WORK/out" ] && [ ! -e "$WORK/stray.out" ] && [ "$before" = "$after" ]; then ok "$what"
  else not_ok "$what (exit $rc, $dir $(changed "$before" "$after")): $(cat "$WORK/err")"; fi
}
usage_refused "root sign refuses --root (the profile picks the root), signing nothing" --root "$V" \
  root sign --dir "$V" --csr "$CA/ops-issuing.csr" --profile ops-issuing --root device "${Q[@]}" --out "$WORK/stray.out"
usage_refused "root crl refuses --profile (not a root's name), writing no CRL" --profile "$V" \
  root crl --dir "$V" --profile ops-issuing "${Q[@]}" --out "$WORK/stray.out"
usage_refused "root crl refuses --serial (a revocation is --revoke SERIAL)" --serial "$V" \
  root crl --dir "$V" --root ops --serial 01 --reason keyCompromise "${Q[@]}" --out "$WORK/stray.out"
usage_refused "root init refuses --share" --share "$V" \
  root init --dir "$V" --custodians 2 --quorum 2 --share "$WORK/custodian-1/custodian-1.share"
usage_refused "root verify refuses --out" --out "$V" root verify --dir "$V" --out "$WORK/stray.out"
usage_refused "root transcript refuses --out" --out "$V" root transcript --dir "$V" --out "$WORK/stray.out"

# ---- install's refusals: each one line, the CA folder unchanged ----
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/other.key" \
  -subj "/CN=Mallory Device Issuing CA" -out "$WORK/other.csr" 2>/dev/null
"$CA_BIN" root sign --dir "$V" --csr "$WORK/other.csr" --profile device-issuing "${Q[@]}" --out "$WORK/wrongkey.pem" >/dev/null
refused "install refuses a certificate for a key the CA did not ask for" "certifies a key this CA did not ask for" "$CA" \
  install --dir "$CA" --cert "$V/root.pem" "$V/ops-root.pem" "$WORK/wrongkey.pem" "$WORK/ops1.pem"
# Another root (a throwaway openssl one) certifying this CA's own request.
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$WORK/issuing.ext"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/evil.key" -subj "/CN=Evil Root" \
  -days 30 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out "$WORK/evil.pem" 2>/dev/null
openssl x509 -req -in "$CA/device-issuing.csr" -CA "$WORK/evil.pem" -CAkey "$WORK/evil.key" -CAcreateserial -days 30 \
  -extfile "$WORK/issuing.ext" -out "$WORK/evil-dev.pem" 2>/dev/null
refused "install refuses this CA's own key certified by another root" "is not signed by any root given" "$CA" \
  install --dir "$CA" --cert "$V/root.pem" "$V/ops-root.pem" "$WORK/evil-dev.pem" "$WORK/ops1.pem"
refused "... and another root given with it" "a root that neither issuing CA chains to" "$CA" \
  install --dir "$CA" --cert "$V/root.pem" "$V/ops-root.pem" "$WORK/evil.pem" "$WORK/dev1.pem" "$WORK/ops1.pem"
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$WORK/nopathlen.ext"
openssl x509 -req -in "$CA/device-issuing.csr" -CA "$WORK/evil.pem" -CAkey "$WORK/evil.key" -CAcreateserial -days 30 \
  -extfile "$WORK/nopathlen.ext" -out "$WORK/nopathlen.pem" 2>/dev/null
refused "... a certificate outside the issuing profile (no pathLen 0)" "not an issuing CA certificate" "$CA" \
  install --dir "$CA" --cert "$V/root.pem" "$V/ops-root.pem" "$WORK/nopathlen.pem" "$WORK/ops1.pem"
refused "... only one of the two issuing CAs at first install" "the first install takes both" "$CA" \
  install --dir "$CA" --cert "$V/root.pem" "$V/ops-root.pem" "$WORK/dev1.pem"
: >"$WORK/evil.idx"; printf '01\n' >"$WORK/evil.crlnum"
printf '[ca]\ndefault_ca=c\n[c]\ndatabase=%s\ncrlnumber=%s\ndefault_md=sha256\ndefault_crl_days=30\n' \
  "$WORK/evil.idx" "$WORK/evil.crlnum" >"$WORK/evil.cnf"
openssl ca -config "$WORK/evil.cnf" -gencrl -keyfile "$WORK/evil.key" -cert "$WORK/evil.pem" -out "$WORK/evil.crl.pem" 2>/dev/null
openssl crl -in "$WORK/evil.crl.pem" -outform DER -out "$WORK/evil.crl"
refused "... a CRL from another root" "is not a CRL of this CA's roots" "$CA" \
  install --dir "$CA" --cert "$V/root.pem" "$V/ops-root.pem" "$WORK/dev1.pem" "$WORK/ops1.pem" --crl "$WORK/evil.crl"

check "install takes the ceremony's certificates and the roots' CRLs" "$CA_BIN" install --dir "$CA" \
  --cert "$V/root.pem" "$V/ops-root.pem" "$WORK/dev1.pem" "$WORK/ops1.pem" --crl "$WORK/root.crl" "$WORK/ops-root.crl"
check "... the server's certificate chains to the operations root" \
  openssl verify -CAfile "$CA/ops-root.pem" -untrusted "$CA/ops-issuing.pem" "$CA/server.pem"
check "... the OCSP responder's to the device root" \
  openssl verify -CAfile "$CA/root.pem" -untrusted "$CA/device-issuing.pem" "$CA/ocsp-signer.pem"
# By public key, whatever its label: no key in the CA's token is a root's (the device issuing CA's is the control).
spki() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -c1-64; }
token_keys=""
for label in $(p11 "$CA" --list-objects --type pubkey | sed -n 's/^ *label: *//p'); do
  p11 "$CA" --read-object --type pubkey --label "$label" -o "$WORK/pub.der" >/dev/null
  token_keys+=" $(sha256sum <"$WORK/pub.der" | cut -c1-64)"
done
check "the token's public keys read out (the device issuing CA's among them)" grep -q "$(spki "$CA/device-issuing.pem")" <<<"$token_keys"
check "... and neither root's key is among them" bash -c "! grep -qE '$(spki "$V/root.pem")|$(spki "$V/ops-root.pem")' <<<'$token_keys'"
refused "a second install of the same certificate is refused" "is installed already" "$CA" \
  install --dir "$CA" --cert "$WORK/dev1.pem"

# ---- a station, an order, two cameras from the first device issuing CA ----
"$STATION_BIN" init --dir "$ST" --name line1 >/dev/null
"$CA_BIN" station add --dir "$CA" --name line1 --csr "$ST/station.csr" --out "$WORK/line1.pem" >/dev/null
"$STATION_BIN" install --dir "$ST" --cert "$WORK/line1.pem" --ca-root "$CA/ops-root.pem" >/dev/null
cp "$WORK/root.crl" "$ST/root.crl" && sed -i 's/^ca.root_crl = .*/ca.root_crl = root.crl/' "$ST/station.conf"
printf 'CAM001\nCAM002\nCAM003\nCAM004\n' >"$WORK/serials"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX1 --serials "$WORK/serials" >/dev/null
WITH_HTTP=1 start_ca "$CA"
provision_cameras cam1:CAM001 cam2:CAM002
check_eq "the station provisions two cameras under the first device issuing CA" 0 "$RC"

# ---- rotation: a new device issuing CA, certified by the next ceremony, no camera touched ----
cleanup_server
"$CA_BIN" rotate --dir "$CA" device-issuing >"$WORK/out"
check "rotate writes the new key's request" grep -q "$CA/device-issuing.csr" "$WORK/out"
refused "a second rotate while one is pending is refused" "pending already" "$CA" rotate --dir "$CA" device-issuing
"$CA_BIN" root sign --dir "$V" --csr "$CA/device-issuing.csr" --profile device-issuing "${Q[@]}" --out "$WORK/dev2.pem" >/dev/null
check "install takes the new device issuing CA" "$CA_BIN" install --dir "$CA" --cert "$WORK/dev2.pem"
check_eq "the database records both generations" "device|1 device|2 ops|1" \
  "$(sql "$CA/camtrust.db" "select kind, generation from issuing_cas order by kind, generation" | tr '\n' ' ' | sed 's/ $//')"
WITH_HTTP=1 start_ca "$CA"
provision_cameras cam3:CAM003 cam4:CAM004
check_eq "the station provisions two more cameras after the rotation" 0 "$RC"
G1=$(sql "$CA/camtrust.db" "select id from issuing_cas where kind = 'device' and generation = 1")
G2=$(sql "$CA/camtrust.db" "select id from issuing_cas where kind = 'device' and generation = 2")
check_eq "each certificate records the issuing CA that signed it" "CAM001|$G1 CAM002|$G1 CAM003|$G2 CAM004|$G2" \
  "$(sql "$CA/camtrust.db" "select distinct device_serial, issuing_ca from certificates where device_serial like 'CAM%' order by 1" | tr '\n' ' ' | sed 's/ $//')"
curl -sf --max-time 10 --cacert "$CA/ops-root.pem" -o "$WORK/cacerts.p7" "https://localhost:$PORT/.well-known/est/cacerts"
check "cacerts serves the current chain (the new issuing CA)" bash -c \
  "base64 -d '$WORK/cacerts.p7' | openssl pkcs7 -inform DER -print_certs | grep -q 'G2 Device Issuing CA'"

# Both generations: chains (openssl), TLS (curl --cacert root.pem), OCSP, CRLs.
for n in 1 2 3 4; do
  cert_of cam$n >"$WORK/cam$n.chain"
  openssl x509 -in "$WORK/cam$n.chain" -out "$WORK/cam$n.pem"
  awk 'BEGIN{n=0} /BEGIN CERT/{n++} n==2' "$WORK/cam$n.chain" >"$WORK/cam$n.issuer.pem"
done
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256; }
export -f fp
check "generation 1 cameras chain to root.pem through the first issuing CA (openssl)" bash -c \
  "openssl verify -CAfile '$CA/root.pem' -untrusted '$WORK/cam1.chain' '$WORK/cam1.pem' && [ \"\$(fp '$WORK/cam1.issuer.pem')\" = \"\$(fp '$WORK/dev1.pem')\" ]"
check "generation 2 cameras through the new one" bash -c \
  "openssl verify -CAfile '$CA/root.pem' -untrusted '$WORK/cam3.chain' '$WORK/cam3.pem' && [ \"\$(fp '$WORK/cam3.issuer.pem')\" = \"\$(fp '$WORK/dev2.pem')\" ]"
tls_ok=0
for n in 1 3; do
  agent serve cam$n
  curl -sS --max-time 10 --cacert "$CA/root.pem" --resolve "cam00$n.devices.example.com:${ADDR##*:}:127.0.0.1" \
    "https://cam00$n.devices.example.com:${ADDR##*:}/" 2>/dev/null | grep -q "serial CAM00$n" && tls_ok=$((tls_ok + 1))
done
stop_bg
check_eq "a camera of each generation serves TLS that curl --cacert root.pem accepts" 2 "$tls_ok"
ocsp() { # ocsp CAM ISSUER: the OCSP status line for the camera's certificate
  openssl ocsp -issuer "$2" -cert "$WORK/$1.pem" -url "http://127.0.0.1:$HTTP_PORT/ocsp" -CAfile "$CA/root.pem" 2>&1 |
    grep "$WORK/$1.pem"
}
check_eq "OCSP answers for a generation 1 certificate (by its issuer's key hash)" "$WORK/cam1.pem: good" "$(ocsp cam1 "$WORK/dev1.pem")"
check_eq "... and for a generation 2 one" "$WORK/cam3.pem: good" "$(ocsp cam3 "$WORK/dev2.pem")"
"$CA_BIN" revoke --dir "$CA" "$(openssl x509 -in "$WORK/cam2.pem" -noout -serial | cut -d= -f2)" --reason keyCompromise >/dev/null
"$CA_BIN" revoke --dir "$CA" "$(openssl x509 -in "$WORK/cam4.pem" -noout -serial | cut -d= -f2)" --reason keyCompromise >/dev/null
curl -sf --max-time 10 -o "$WORK/g1.crl" "http://127.0.0.1:$HTTP_PORT/crl"
curl -sf --max-time 10 -o "$WORK/g2.crl" "http://127.0.0.1:$HTTP_PORT/crl/device/2"
check "one CRL per generation, each signed by its issuing CA, each listing what it revoked" bash -c "
  openssl crl -inform DER -in '$WORK/g1.crl' -CAfile '$WORK/dev1.pem' -noout 2>&1 | grep -q 'verify OK' &&
  openssl crl -inform DER -in '$WORK/g2.crl' -CAfile '$WORK/dev2.pem' -noout 2>&1 | grep -q 'verify OK' &&
  openssl crl -inform DER -in '$WORK/g1.crl' -noout -text | grep -qi \"$(openssl x509 -in "$WORK/cam2.pem" -noout -serial | cut -d= -f2)\" &&
  openssl crl -inform DER -in '$WORK/g2.crl' -noout -text | grep -qi \"$(openssl x509 -in "$WORK/cam4.pem" -noout -serial | cut -d= -f2)\""
check "generation 2 certificates name their own CRL" bash -c \
  "openssl x509 -in '$WORK/cam3.pem' -noout -ext crlDistributionPoints | grep -q '/crl/device/2'"
check_eq "OCSP says revoked for a revoked camera of each generation" "2" \
  "$( (ocsp cam2 "$WORK/dev1.pem"; ocsp cam4 "$WORK/dev2.pem") | grep -c ': revoked')"
# The CLI writes any generation's CRL too (crl [device|ops] --generation N, as GET /crl/device/N), signed by it.
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
crl_by() { # crl_by CRL ISSUER SERIAL: the DER CRL verifies with ISSUER and lists SERIAL
  openssl crl -inform DER -in "$1" -CAfile "$2" -noout 2>&1 | grep -q 'verify OK' &&
    openssl crl -inform DER -in "$1" -noout -text | grep -qi "$3"
}
export -f crl_by
"$CA_BIN" crl device --generation 1 --dir "$CA" --out "$WORK/cli-g1.crl" >/dev/null
"$CA_BIN" crl --dir "$CA" --out "$WORK/cli-now.crl" >/dev/null
check "crl device --generation 1: the first issuing CA's CRL, listing its revoked camera (openssl crl -CAfile dev1.pem)" \
  crl_by "$WORK/cli-g1.crl" "$WORK/dev1.pem" "$(serial_of "$WORK/cam2.pem")"
check "... not signed by the current one" bash -c "! crl_by '$WORK/cli-g1.crl' '$WORK/dev2.pem' '$(serial_of "$WORK/cam2.pem")'"
check "crl without --generation: the current (2) one's" crl_by "$WORK/cli-now.crl" "$WORK/dev2.pem" "$(serial_of "$WORK/cam4.pem")"
for bad in 3 0 x; do
  rc=0; "$CA_BIN" crl device --generation $bad --dir "$CA" --out "$WORK/bad.crl" >"$WORK/out" 2>"$WORK/err" || rc=$?
  check_eq "crl --generation $bad: exit 1, one line, no file" "1 1 no" "$rc $(wc -l <"$WORK/err") $(test -e "$WORK/bad.crl" && echo yes || echo no)"
done
check "... naming the generation that is not installed" grep -q "no device issuing CA generation 3 is installed (current: 2)" <(
  "$CA_BIN" crl device --generation 3 --dir "$CA" --out "$WORK/bad.crl" 2>&1)

# ---- recordings of both generations verify; then the old issuing CA is revoked by a ceremony ----
ffmpeg -v error -y -f lavfi -i testsrc2=size=320x240:rate=30 -t 2 -pix_fmt yuv420p -c:v libx264 -g 30 "$WORK/clip.h264"
"$AGENT_BIN" sign --dir "$WORK/cams/cam1" "$WORK/clip.h264" "$WORK/rec1.h264" >/dev/null 2>&1
"$AGENT_BIN" sign --dir "$WORK/cams/cam3" "$WORK/clip.h264" "$WORK/rec3.h264" >/dev/null 2>&1
check "a generation 1 camera's recording verifies (camtrust-verify --root root.pem)" "$VERIFY_BIN" --root "$CA/root.pem" "$WORK/rec1.h264"
check "... and a generation 2 camera's" "$VERIFY_BIN" --root "$CA/root.pem" "$WORK/rec3.h264"
G1_SERIAL=$(openssl x509 -in "$WORK/dev1.pem" -noout -serial | cut -d= -f2)
"$CA_BIN" root crl --dir "$V" --revoke "$G1_SERIAL" --reason cACompromise "${Q[@]}" --out "$WORK/root2.crl" >/dev/null
check "the roots' new CRL lists the old issuing CA (openssl, checked with root.pem)" bash -c \
  "openssl crl -inform DER -in '$WORK/root2.crl' -CAfile '$CA/root.pem' -noout 2>&1 | grep -q 'verify OK' &&
   openssl crl -inform DER -in '$WORK/root2.crl' -noout -text | grep -qi '$G1_SERIAL'"
rc=0; "$VERIFY_BIN" --root "$CA/root.pem" --crl "$WORK/root2.crl" "$WORK/rec1.h264" >"$WORK/out" 2>&1 || rc=$?
check_eq "camtrust-verify given the roots' CRL refuses the old issuing CA's camera" 1 "$rc"
check "... naming the revoked issuing CA" grep -q "issuing CA" "$WORK/out"
check "... and still accepts the new one's" "$VERIFY_BIN" --root "$CA/root.pem" --crl "$WORK/root2.crl" "$WORK/rec3.h264"
rc=0; "$VIEW_BIN" verify --root "$CA/root.pem" --crl "$WORK/root2.crl" "$WORK/rec1.h264" >"$WORK/out" 2>&1 || rc=$?
check_eq "camtrust-view verify refuses it too" 1 "$rc"
check "openssl with both CRLs refuses the old generation's camera" bash -c "
  openssl crl -inform DER -in '$WORK/root2.crl' -out '$WORK/root2.crl.pem' && openssl crl -inform DER -in '$WORK/g1.crl' -out '$WORK/g1.crl.pem' &&
  ! openssl verify -crl_check_all -CAfile '$CA/root.pem' -untrusted '$WORK/dev1.pem' -CRLfile '$WORK/root2.crl.pem' -CRLfile '$WORK/g1.crl.pem' '$WORK/cam1.pem' 2>/dev/null"
check "install takes the roots' new CRL alone" "$CA_BIN" install --dir "$CA" --crl "$WORK/root2.crl"
check "... kept in the CA folder" cmp -s "$WORK/root2.crl" "$CA/root.crl"
G2_SERIAL=$(openssl x509 -in "$WORK/dev2.pem" -noout -serial | cut -d= -f2)
"$CA_BIN" root crl --dir "$V" --revoke "$G2_SERIAL" --reason superseded "${Q[@]}" --out "$WORK/root3.crl" >/dev/null
refused "install refuses a roots' CRL that revokes the current issuing CA" "revokes the current issuing CA" "$CA" \
  install --dir "$CA" --crl "$WORK/root3.crl"
# The station given the roots' CRL (ca.root_crl): certificates of a revoked issuing CA are refused.
printf 'CAM005\nCAM006\n' >"$WORK/serials2"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX1 --serials "$WORK/serials2" >/dev/null
cp "$WORK/root2.crl" "$ST/root.crl" && sed -i 's/^ca.root_crl = .*/ca.root_crl = root.crl/' "$ST/station.conf"
# A run killed while it keeps the CRL leaves its temporary in log/; the next run removes it, not a live process's.
rc=0; CAMTRUST_FAILPOINT=write:temp-written "$STATION_BIN" provision --dir "$ST" --ca "https://localhost:$PORT" \
  --report "$WORK/report.jsonl" --device 127.0.0.1:9 >/dev/null 2>&1 || rc=$?
check_eq "a station run killed at its write of log/root-HEX.crl leaves its temporary" "137 1" \
  "$rc $(ls "$ST"/log/root-*.crl.tmp.* | wc -l)"
: >"$ST/log/checkpoint.note.tmp.$$" # a live process's (this shell's): never removed
provision_cameras cam5:CAM005
check_eq "a station given the roots' CRL (the old issuing CA revoked) provisions from the current one" 0 "$RC"
ROOT_KEPT=$ST/log/root-$(openssl x509 -in "$CA/root.pem" -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum | cut -c1-64).crl
check "... and keeps it, the newest CRL of the root's key it took (log/root-HEX.crl)" cmp -s "$WORK/root2.crl" "$ROOT_KEPT"
check_eq "... the killed run's temporary removed, the live process's kept" "checkpoint.note.tmp.$$" \
  "$(cd "$ST/log" && ls -- *.tmp.* | tr '\n' ' ' | sed 's/ $//')"
rm "$ST/log/checkpoint.note.tmp.$$"
# Whoever can replace ca.root_crl puts the ceremony's first CRL back (from before the revocation): the station
# refuses it in one line before it asks any camera, issues nothing, and keeps the newer one.
older_refused() { # older_refused "description" NAME:SERIAL: provisioning refused, the serial not issued
  provision_cameras "$2"
  check_eq "$1" "1 1 0" "$RC $(grep -c "^camtrust-station: ca.root_crl $ST/root.crl is older than the one this \
station took (log/root-[0-9a-f]*.crl): its cRLNumber [0-9]* is not above" "$WORK/summary") $(sql "$CA/camtrust.db" \
    "select count(*) from certificates where device_serial = '${2##*:}'")"
}
cp "$WORK/root.crl" "$ST/root.crl"
older_refused "the station refuses the roots' older CRL (the old issuing CA not yet revoked), issuing nothing" \
  cam6x:CAM006
check "... the newer one still kept" cmp -s "$WORK/root2.crl" "$ROOT_KEPT"
cp "$WORK/root3.crl" "$ST/root.crl"
provision_cameras cam6:CAM006
check_eq "... and refuses what a revoked issuing CA signed" "1 1" \
  "$RC $(grep -c 'issuing CA that the root.s CRL (ca.root_crl) revokes' "$WORK/report.jsonl")"
# Rotating the operations issuing CA: the server's and the log signer's certificates come from the new one; the
# station certified by the old one keeps provisioning (and trusts the new server chain through ops-root.pem).
cleanup_server
"$CA_BIN" rotate --dir "$CA" ops-issuing >/dev/null
"$CA_BIN" root sign --dir "$V" --csr "$CA/ops-issuing.csr" --profile ops-issuing "${Q[@]}" --out "$WORK/ops2.pem" >/dev/null
"$CA_BIN" install --dir "$CA" --cert "$WORK/ops2.pem" >/dev/null
check "after an operations rotation the server's and log signer's certificates come from the new issuing CA" bash -c "
  openssl verify -CAfile '$CA/ops-root.pem' -untrusted '$WORK/ops2.pem' '$CA/server.pem' '$CA/log.pem' &&
  ! openssl verify -CAfile '$CA/ops-root.pem' -untrusted '$WORK/ops1.pem' '$CA/server.pem' 2>/dev/null"
cp "$WORK/root2.crl" "$ST/root.crl"
printf 'CAM007\n' >"$WORK/serials3"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX1 --serials "$WORK/serials3" >/dev/null
WITH_HTTP=1 start_ca "$CA"
older_refused "a station that took root3.crl (it revokes the current issuing CA) refuses root2.crl after it" cam7x:CAM007
sed -i 's/^ca.root_crl = .*/ca.root_crl = none/' "$ST/station.conf" # (the current issuing CA revoked: no roots' CRL)
provision_cameras cam7:CAM007
check_eq "... and the station certified by the old one still provisions" 0 "$RC"
"$CA_BIN" revoke --dir "$CA" "$(serial_of "$WORK/line1.pem")" --reason superseded >/dev/null
"$CA_BIN" crl ops --generation 1 --dir "$CA" --out "$WORK/cli-ops1.crl" >/dev/null
"$CA_BIN" crl ops --generation 2 --dir "$CA" --out "$WORK/cli-ops2.crl" >/dev/null
check "crl ops --generation 1 after the operations rotation: the old one's, listing its revoked station" \
  crl_by "$WORK/cli-ops1.crl" "$WORK/ops1.pem" "$(serial_of "$WORK/line1.pem")"
check "... crl ops --generation 2: the new one's, signed by it" bash -c \
  "openssl crl -inform DER -in '$WORK/cli-ops2.crl' -CAfile '$WORK/ops2.pem' -noout 2>&1 | grep -q 'verify OK'"
# OCSP answers for the operations issuing CA's certificates too, each generation signing for what it issued.
ocsp_ops() { # ocsp_ops NAME ISSUER: "verified <status line>" for $WORK/NAME.pem, the answer checked with ops-root.pem
  openssl ocsp -issuer "$2" -cert "$WORK/$1.pem" -url "http://127.0.0.1:$HTTP_PORT/ocsp" -CAfile "$CA/ops-root.pem" \
    >"$WORK/ocsp.out" 2>&1
  printf '%s %s' "$(grep -c '^Response verify OK' "$WORK/ocsp.out")" "$(grep "$WORK/$1.pem" "$WORK/ocsp.out")"
}
check_eq "OCSP for the revoked station of the old operations issuing CA: revoked, signed by it (openssl ocsp)" \
  "1 $WORK/line1.pem: revoked" "$(ocsp_ops line1 "$WORK/ops1.pem")"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/bob.key" -subj /CN=bob \
  -out "$WORK/bob.csr" 2>/dev/null
"$CA_BIN" officer add --dir "$CA" --name bob --role auditor --csr "$WORK/bob.csr" --out "$WORK/bob.pem" >/dev/null
check_eq "... and for an officer of the new one: good" "1 $WORK/bob.pem: good" "$(ocsp_ops bob "$WORK/ops2.pem")"
cleanup_server
check "the audit of all this verifies" "$CA_BIN" audit verify --dir "$CA"
# Someone who can write the database moves a revoked certificate to the other generation (it would drop out of its
# issuer's CRL and OCSP): the state rebuilt from the audit catches it, and the server refuses to start.
sqlite3 "$CA/camtrust.db" "DROP TRIGGER certificates_revocation_final;
  UPDATE certificates SET issuing_ca = $G1 WHERE device_serial = 'CAM004'"
rc=0; "$CA_BIN" audit verify --dir "$CA" >"$WORK/out" 2>&1 || rc=$?
check_eq "a certificate moved to another issuing CA generation in the table is caught by audit verify" \
  "1 state tables BROKEN: certificate" "$rc $(grep -o '^state tables BROKEN: certificate' "$WORK/out")"
check "... naming what changed" grep -q "its issuing CA generation in the table is not the one the audit recorded" "$WORK/out"
# ... or adds an issuing CA generation of its own: this CA's key certified by another root. Refused at open.
openssl x509 -in "$WORK/evil-dev.pem" -outform DER -out "$WORK/evil-dev.der"
sqlite3 "$CA/camtrust.db" "INSERT INTO issuing_cas (kind, generation, key_uri, cert_der, cert_sha256, installed_at)
  VALUES ('device', 9, 'pkcs11:object=device-issuing;type=private', readfile('$WORK/evil-dev.der'), randomblob(32), strftime('%s', 'now'))"
rc=0; "$CA_BIN" serve --dir "$CA" --listen 127.0.0.1:0 >"$WORK/out" 2>"$WORK/err" || rc=$?
check_eq "an issuing CA generation added to the database around the CA is refused (not signed by root.pem)" \
  "1 1" "$rc $(grep -c 'generation 9 in the database is not signed by root.pem' "$WORK/err")"
check "the ceremony record of all this verifies" "$CA_BIN" root verify --dir "$V"
finish
