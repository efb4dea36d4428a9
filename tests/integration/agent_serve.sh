#!/usr/bin/env bash
# The camera's HTTPS server: curl with only the device root reaches it by its serial-derived name; a look-alike
# (self-signed, or issued by another CA, for the same name) is refused by the same curl.
# Usage: agent_serve.sh camtrust-agent factory_client
AGENT_BIN=$1 CLIENT_BIN=$2
SIM_BIN=$(dirname "$AGENT_BIN")/camtrust-agent-sim
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

make_ca "$WORK/ca" Test
make_ca "$WORK/other" Other
DEV=$WORK/dev NAME=cam0200.devices.example.com
"$SIM_BIN" simulate --dir "$DEV" --serial CAM0200 --model CX200 --root "$WORK/ca/root.pem"
check "serve refuses an unprovisioned camera" bash -c "! '$AGENT_BIN' serve --dir '$DEV' --listen 127.0.0.1:0 2>/dev/null"
factory_provision "$DEV" CAM0200 "$WORK/ca"

start_agent serve "$DEV"
PORT=${ADDR##*:}
get() { curl -sS --max-time 10 --cacert "$WORK/ca/root.pem" --resolve "$1:$2:127.0.0.1" "https://$1:$2/"; }
served() { get "$1" "$2" | grep -q "serial CAM0200"; } # served NAME PORT
refused() { ! get "$1" "$2" >/dev/null 2>&1; }
check "curl --cacert root.pem reaches the camera by its name" served $NAME $PORT
check "the connection is TLS 1.3" bash -c "curl -sS -o /dev/null -w '%{ssl_verify_result}' --tlsv1.3 --max-time 10 --cacert '$WORK/ca/root.pem' --resolve $NAME:$PORT:127.0.0.1 https://$NAME:$PORT/ | grep -qx 0"
check "TLS 1.2 is refused" bash -c "! curl -sS -o /dev/null --tls-max 1.2 --max-time 10 --cacert '$WORK/ca/root.pem' --resolve $NAME:$PORT:127.0.0.1 https://$NAME:$PORT/ 2>/dev/null"
check "another name is refused (the certificate names this camera only)" refused cam0999.devices.example.com $PORT
check "a client trusting another root refuses it" bash -c "! curl -sS --max-time 10 --cacert '$WORK/other/root.pem' --resolve $NAME:$PORT:127.0.0.1 https://$NAME:$PORT/ 2>/dev/null"
check "a non-GET gets 405" bash -c "curl -s -o /dev/null -w '%{http_code}' -X POST --max-time 10 --cacert '$WORK/ca/root.pem' --resolve $NAME:$PORT:127.0.0.1 https://$NAME:$PORT/ | grep -qx 405"
# A silent client is dropped after serve.timeout_ms and the camera still answers the next one.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
check "after a silent client, the next one is served" served $NAME $PORT
exec 3>&-
stop_factory

# Look-alikes for the same name, served by openssl s_server: self-signed, and issued by another CA.
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/fake.key" \
  -subj "/serialNumber=CAM0200/CN=CAM0200" -addext "subjectAltName=DNS:$NAME" -days 30 -out "$WORK/fake.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/other.key" \
  -subj "/serialNumber=CAM0200/CN=CAM0200" -outform DER -out "$WORK/other.csr.der" 2>/dev/null
sign_csr "$WORK/other" "$WORK/other.csr.der" CAM0200 "$WORK/other.chain"
for fake in self-signed other-ca; do
  if [ $fake = self-signed ]; then cert=$WORK/fake.pem key=$WORK/fake.key; else cert=$WORK/other.chain key=$WORK/other.key; fi
  P=$((20000 + RANDOM % 40000))
  openssl s_server -quiet -accept "127.0.0.1:$P" -cert "$cert" -key "$key" -cert_chain "$cert" -www </dev/null >/dev/null 2>&1 &
  FACTORY_PID=$!
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$P") 2>/dev/null && break; sleep 0.05; done
  check "the look-alike ($fake) answers a client that skips verification (the test is real)" \
    bash -c "curl -sk -o /dev/null --max-time 10 --resolve $NAME:$P:127.0.0.1 https://$NAME:$P/"
  out=$(curl -sS -o /dev/null --max-time 10 --cacert "$WORK/ca/root.pem" --resolve "$NAME:$P:127.0.0.1" "https://$NAME:$P/" 2>&1 || true)
  check "the look-alike ($fake) is refused by curl --cacert root.pem" grep -q 'certificate' <<<"$out"
  stop_factory
done
finish
