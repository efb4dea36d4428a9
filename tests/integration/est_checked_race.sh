#!/usr/bin/env bash
# A station's request checked (station enabled, serial in an open order), then the station revoked, disabled, its own
# certificate revoked, or its order closed before the certificate is recorded: nothing is issued. The CA decides in the issuance's write
# transaction; before, a request in flight while an officer revoked a compromised station (revoke --station, which
# revokes what it enrolled) was issued after that revocation, a valid certificate of the revoked station.
# So is a camera's renewal whose identity certificate is revoked meanwhile. And the same request sent twice at once
# gets one certificate, both answers recorded (an issuance, a repeat). A camera's renewal of a media-signing certificate
# revoked meanwhile is refused as revocation is final (409), and of two renewals of one certificate at once the second
# is told it was renewed meanwhile (409; both were 404 "no current certificate ... to supersede").
# The interleaving is made with the failpoint hold `est:checked` (the request waits there until released).
# Usage: est_checked_race.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
DB=$CA/camtrust.db
ca_create "$CA" >/dev/null
station_with_order line1 CAM0001 CAM0002 CAM0003
mv "$WORK/station.pem" "$WORK/line1.pem"; mv "$WORK/station.key" "$WORK/line1.key"
station_with_order line2 CAM0101 CAM0102
mv "$WORK/station.pem" "$WORK/line2.pem"; mv "$WORK/station.key" "$WORK/line2.key"
station_with_order line3 CAM0201
mv "$WORK/station.pem" "$WORK/line3.pem"; mv "$WORK/station.key" "$WORK/line3.key"
station_with_order line4 CAM0301
mv "$WORK/station.pem" "$WORK/line4.pem"; mv "$WORK/station.key" "$WORK/line4.key"
for sn in CAM0001 CAM0002 CAM0003 CAM0101 CAM0201 CAM0301; do make_csr "$WORK/$sn" "/serialNumber=$sn/CN=x"; done
make_csr "$WORK/CAM0003-ms" "/serialNumber=CAM0003/CN=x"

RELEASE=$WORK/release
CAMTRUST_FAILPOINT=est:checked CAMTRUST_FAILPOINT_RELEASE=$RELEASE start_ca "$CA"
touch "$RELEASE"
check_eq "released, line1 enrolls CAM0001" 200 \
  "$(est_post simpleenroll "$WORK/CAM0001.b64" "$WORK/CAM0001.p7" --cert "$WORK/line1.pem" --key "$WORK/line1.key")"
base64 -d "$WORK/CAM0001.p7" | openssl pkcs7 -inform DER -print_certs -out "$WORK/CAM0001.pem" 2>/dev/null

# held OP CLIENT CSR ACTION...: a POST to OP by CLIENT ($WORK/CLIENT.pem and .key) of $WORK/CSR.b64, held once checked,
# ACTION run meanwhile, then released; prints the request's status (its answer in $WORK/CSR.out).
held() {
  local op=$1 client=$2 csr=$3 holds; shift 3
  rm -f "$RELEASE"
  holds=$(grep -c 'event=failpoint_held' "$WORK/server.log" || true)
  est_post "$op" "$WORK/$csr.b64" "$WORK/$csr.out" --cert "$WORK/$client.pem" --key "$WORK/$client.key" >"$WORK/$csr.status" &
  local pid=$! _
  for _ in $(seq 1 400); do # up to 20 s
    [ "$(grep -c 'event=failpoint_held' "$WORK/server.log" || true)" -gt "$holds" ] && break
    sleep 0.05
  done
  "$@" >/dev/null
  touch "$RELEASE"
  wait "$pid" || true
  cat "$WORK/$csr.status"
}
# at_once OP CLIENT NAME CSR1 CSR2: POSTs of $WORK/CSR1.b64 and $WORK/CSR2.b64 to OP by CLIENT, both held once checked,
# then released together; answers in $WORK/NAME.1.out and NAME.2.out, statuses in NAME.1.status and NAME.2.status.
at_once() {
  local op=$1 client=$2 name=$3 csrs=("$4" "$5") holds i _
  rm -f "$RELEASE"
  holds=$(grep -c 'event=failpoint_held' "$WORK/server.log" || true)
  for i in 1 2; do
    est_post "$op" "$WORK/${csrs[i - 1]}.b64" "$WORK/$name.$i.out" --cert "$WORK/$client.pem" --key "$WORK/$client.key" \
      >"$WORK/$name.$i.status" &
    BG_PIDS+=($!)
  done
  for _ in $(seq 1 400); do # up to 20 s: both held
    [ "$(grep -c 'event=failpoint_held' "$WORK/server.log" || true)" -ge $((holds + 2)) ] && break
    sleep 0.05
  done
  touch "$RELEASE"
  for i in "${BG_PIDS[@]}"; do wait "$i" || true; done
  BG_PIDS=()
}
valid_of() { sql "$DB" "select count(*) from certificates where device_serial = '$1' and status = 'valid'"; }
denied_of() { sql "$DB" "select count(*) from audit where subject = '$1' and action = 'est.enroll' and outcome = 'denied'"; }

# The same request sent twice at once (a station that retried on a second connection), both checked before either
# is recorded: one certificate, both answered it, and both decisions in the audit (an issuance, a repeat).
at_once simpleenroll line1 CAM0003 CAM0003 CAM0003
check_eq "the same request twice at once: both 200, the same certificate" "200 200 1" \
  "$(cat "$WORK/CAM0003.1.status") $(cat "$WORK/CAM0003.2.status") $(cmp -s "$WORK"/CAM0003.{1,2}.out && echo 1)"
check_eq "... one certificate recorded, its issuance and the repeat audited" "1|1|1" \
  "$(valid_of CAM0003)|$(sql "$DB" "select count(*) from audit where subject = 'CAM0003' and action = 'cert.issue';
  select count(*) from audit where subject = 'CAM0003' and action = 'est.enroll' and outcome = 'repeated'" | paste -sd'|')"

# The camera's renewal of its media-signing certificate while its identity certificate, which authenticated it, is
# revoked (a stolen camera): no media-signing certificate for it after that revocation.
make_csr "$WORK/CAM0001-ms" "/serialNumber=CAM0001/CN=x"
status=$(held media-signing/simplereenroll CAM0001 CAM0001-ms "$CA_BIN" revoke --dir "$CA" \
  "$(openssl x509 -in "$WORK/CAM0001.pem" -noout -serial | cut -d= -f2)" --reason keyCompromise)
check_eq "a camera's renewal while its identity certificate was revoked: refused" 401 "$status"
check "... saying its certificate is no longer current" grep -q 'is not the current certificate of a device' \
  "$WORK/CAM0001-ms.out"
check_eq "... no valid certificate of CAM0001, the refusal counted" "0|1" \
  "$(valid_of CAM0001)|$(sql "$DB" "select count(*) from audit where subject = 'CAM0001' and outcome = 'denied'")"

# Two renewals of CAM0003's media-signing certificate at once (the camera retried on a second connection with a new
# key): one renews it, the other is told it was renewed meanwhile (409), not "no current media-signing certificate ...
# to supersede" (404, before).
status=$(est_post media-signing/simpleenroll "$WORK/CAM0003-ms.b64" "$WORK/CAM0003-ms.p7" --cert "$WORK/line1.pem" \
  --key "$WORK/line1.key")
check_eq "line1 enrolls CAM0003's media-signing certificate" 200 "$status"
base64 -d "$WORK/CAM0003.1.out" | openssl pkcs7 -inform DER -print_certs -out "$WORK/CAM0003-id.pem" 2>/dev/null
cp "$WORK/CAM0003.key" "$WORK/CAM0003-id.key"
media_valid() { sql "$DB" "select cert_serial_hex from certificates where device_serial = 'CAM0003' and
  profile = 'media-signing' and status = 'valid'"; }
for i in 1 2 3; do make_csr "$WORK/CAM0003-r$i" "/serialNumber=CAM0003/CN=x"; done
at_once media-signing/simplereenroll CAM0003-id CAM0003-r CAM0003-r1 CAM0003-r2
check_eq "two renewals of one media-signing certificate at once: one 200, one 409" "200 409" \
  "$(printf '%s\n' "$(cat "$WORK/CAM0003-r.1.status")" "$(cat "$WORK/CAM0003-r.2.status")" | sort | paste -sd' ')"
check "... saying it was renewed meanwhile" grep -q "^409 the media-signing certificate [0-9a-f]* of serial 'CAM0003' \
was renewed meanwhile: renew the current one\$" "$WORK"/CAM0003-r.{1,2}.out
check_eq "... one valid media-signing certificate of CAM0003" 1 "$(media_valid | wc -l)"

# CAM0003's renewal of its media-signing certificate while that certificate is revoked: refused as revocation is final
# (409), not "no current media-signing certificate ... to supersede" (404, before).
status=$(held media-signing/simplereenroll CAM0003-id CAM0003-r3 "$CA_BIN" revoke --dir "$CA" "$(media_valid)" \
  --reason keyCompromise)
check_eq "a renewal while the certificate it renews was revoked: 409" 409 "$status"
check "... saying revocation is final" grep -q "^409 the media-signing certificate [0-9a-f]* of serial 'CAM0003' was \
revoked meanwhile and revocation is final: a renewal cannot replace it\$" "$WORK/CAM0003-r3.out"
check_eq "... no valid media-signing certificate of CAM0003, the refusal audited" "0|1" "$(media_valid | wc -l)|$(sql \
  "$DB" "select count(*) from audit where subject = 'CAM0003' and outcome = 'denied' and detail like '%revoked meanwhile%'")"

status=$(held simpleenroll line1 CAM0002 "$CA_BIN" revoke --dir "$CA" --station line1 --reason keyCompromise)
check_eq "the station revoked while its request was in flight: 403" 403 "$status"
check "... saying its station is disabled" grep -q 'station line1 is disabled' "$WORK/CAM0002.out"
check_eq "... no certificate of CAM0002, and none of line1's valid" "0|0" \
  "$(sql "$DB" "select count(*) from certificates where device_serial = 'CAM0002'; select count(*) from certificates c
  join stations s on s.id = c.station_id where s.name = 'line1' and c.status = 'valid'" | paste -sd'|')"
check_eq "... the refusal audited as the station's" 1 "$(denied_of CAM0002)"

status=$(held simpleenroll line2 CAM0101 "$CA_BIN" order close "$(sql "$DB" "select o.id from orders o join stations s on
  s.id = o.station_id where s.name = 'line2'")" --dir "$CA")
check_eq "the order closed while a request for its serial was in flight: 403" 403 "$status"
check "... saying the order is closed" grep -q 'is closed' "$WORK/CAM0101.out"
check_eq "... no certificate, the refusal audited" "0|1" "$(valid_of CAM0101)|$(denied_of CAM0101)"

status=$(held simpleenroll line3 CAM0201 "$CA_BIN" station disable --dir "$CA" line3)
check_eq "the station disabled while its request was in flight: 403" 403 "$status"
check_eq "... no certificate, the refusal audited" "0|1" "$(valid_of CAM0201)|$(denied_of CAM0201)"

status=$(held simpleenroll line4 CAM0301 "$CA_BIN" revoke --dir "$CA" \
  "$(openssl x509 -in "$WORK/line4.pem" -noout -serial | cut -d= -f2)" --reason keyCompromise)
check_eq "the station's own certificate revoked while its request was in flight: 403" 403 "$status"
check "... saying so" grep -q '^403 the certificate of station line4 is revoked$' "$WORK/CAM0301.out"
check_eq "... no certificate, the refusal audited" "0|1" "$(valid_of CAM0301)|$(denied_of CAM0301)"

"$CA_BIN" station enable --dir "$CA" line3 >/dev/null
touch "$RELEASE"
check_eq "enabled again, line3 enrolls CAM0201" 200 \
  "$(est_post simpleenroll "$WORK/CAM0201.b64" "$WORK/out" --cert "$WORK/line3.pem" --key "$WORK/line3.key")"
cleanup_server
check "audit verify: intact" "$CA_BIN" audit verify --dir "$CA"
finish
