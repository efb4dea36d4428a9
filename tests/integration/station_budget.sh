#!/usr/bin/env bash
# A compromised (authenticated, enabled) factory station flooding the CA with enrollments it may not make: each
# refusal was an audit entry of its own (an fsync, a MAC in the token), and every start verifies them all. Each
# station has a budget of audited refusals (station.refusals_per_minute, as many at once): past it they are counted
# per kind (est.budget: how many, of what, from which station), the station is still told the precise reason,
# issuance is never limited, a clone (a serial issued for another key) is always an entry of its own, other stations
# keep their own budget, and the report says who went over. A station's counted refusals keep its name when other
# clients' counts have taken audit.anonymous_max_rows. A camera looping bad re-enrollments with its own certificate
# (or anyone holding its key) has a budget per certificate the same way (device.refusals_per_minute), its identity
# key sent for media-signing (409, one key one holder) too, but not another camera's key (a clone: an entry each,
# naming it). A camera is actor device:SERIAL: one whose serial is a station's name neither shares that station's
# counts nor adds to its line of the report.
# Usage: station_budget.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
DB=$CA/camtrust.db
ca_create "$CA" >/dev/null
sed -i 's/^station.refusals_per_minute = .*/station.refusals_per_minute = 5/' "$CA/camtrust-ca.conf"
# counted refusals written only at stop (not also at the 60 s of the default, under load), so their rows are two
sed -i 's/^audit.anonymous_interval_s = .*/audit.anonymous_interval_s = 3600/' "$CA/camtrust-ca.conf"
grep -q '^station.refusals_per_minute = 5$' "$CA/camtrust-ca.conf" || echo 'station.refusals_per_minute = 5' >>"$CA/camtrust-ca.conf"
# one shared row of counts: an anonymous client takes it first
sed -i 's/^audit.anonymous_max_rows = .*/audit.anonymous_max_rows = 1/' "$CA/camtrust-ca.conf"
sed -i 's/^device.refusals_per_minute = .*/device.refusals_per_minute = 5/' "$CA/camtrust-ca.conf"
grep -q '^device.refusals_per_minute = 5$' "$CA/camtrust-ca.conf" || echo 'device.refusals_per_minute = 5' >>"$CA/camtrust-ca.conf"
# line2's order holds a camera whose serial is line1, the other station's name
station_with_order line2 CAM0100 line1
mv "$WORK/station.pem" "$WORK/line2.pem"; mv "$WORK/station.key" "$WORK/line2.key"
station_with_order line1 CAM0001 CAM0002 CAM0003
for sn in CAM0001 CAM0002 CAM0003 CAM9001 CAM9002 CAM9003; do make_csr "$WORK/$sn" "/serialNumber=$sn/CN=x"; done
make_csr "$WORK/CAM0001-other" "/serialNumber=CAM0001/CN=x"
make_csr "$WORK/cam-line1" "/serialNumber=line1/CN=x"

# flood STATION COUNT CSR...: COUNT enrollments (EST_OP, default simpleenroll) over one keep-alive connection with
# STATION's certificate ($WORK/STATION.pem, .key), the CSRs in turn; prints each answer's status and body, one a line.
flood() {
  python3 - "$PORT" "$CA/ops-root.pem" "$WORK" "${EST_OP:-simpleenroll}" "$@" <<'EOF'
import http.client, ssl, sys
port, root, work, op = sys.argv[1:5]
station, count, csrs = sys.argv[5], int(sys.argv[6]), sys.argv[7:]
ctx = ssl.create_default_context(cafile=root)
ctx.load_cert_chain("%s/%s.pem" % (work, station), "%s/%s.key" % (work, station))
conn = http.client.HTTPSConnection("localhost", int(port), timeout=20, context=ctx)
bodies = [open("%s/%s.b64" % (work, c), "rb").read() for c in csrs]
for i in range(count):
    conn.request("POST", "/.well-known/est/" + op, body=bodies[i % len(bodies)],
                 headers={"Content-Type": "application/pkcs10"})
    r = conn.getresponse()
    print(r.status, r.read().decode(errors="replace").strip().replace("\n", " "))
EOF
}
# rows STATION ACTION: "entries|requests" of the station's denials of ACTION (a counted entry holds N requests).
rows() {
  sql "$DB" "select count(*) || '|' || coalesce(sum(case when detail like '% refused from %'
    then cast(substr(detail, 1, instr(detail, ' ') - 1) as integer) else 1 end), 0) from audit
    where actor = '$1' and action = '$2' and outcome = 'denied'"
}

start_ca "$CA"
check_eq "line1 enrolls CAM0001" 200 "$(est_post simpleenroll "$WORK/CAM0001.b64" "$WORK/out1" --cert "$WORK/station.pem" --key "$WORK/station.key")"
before=$(sql "$DB" "select max(seq) from audit")
check_eq "an anonymous client is refused (no client certificate) and takes the one shared row of counts" 401 \
  "$(est_post simpleenroll "$WORK/CAM9001.b64" "$WORK/anon.out")"
# 60 requests: serials outside its order (three of them) and CAM0001 again with another key
flood station 60 CAM9001 CAM9002 CAM9003 CAM0001-other >"$WORK/flood.out"
check_eq "the 45 serials outside the order are refused (403)" 45 "$(grep -c '^403 ' "$WORK/flood.out" || true)"
check_eq "the 15 CAM0001 with another key are refused (409)" 15 "$(grep -c '^409 ' "$WORK/flood.out" || true)"
check "past the budget the station is still told the precise reason" \
  grep -q 'serial CAM9003 is not in an open order of station line1' <(tail -n 2 "$WORK/flood.out")
check_eq "issuance is never limited: line1 enrolls CAM0002 past its budget" 200 \
  "$(est_post simpleenroll "$WORK/CAM0002.b64" "$WORK/out2" --cert "$WORK/station.pem" --key "$WORK/station.key")"
check_eq "... and CAM0003" 200 "$(flood station 1 CAM0003 | cut -d' ' -f1)"
check_eq "another station keeps its own budget: line2's three refusals are three entries of its own" "3|3" \
  "$(flood line2 3 CAM9001 >/dev/null; rows line2 est.enroll)"
cleanup_server # the counted refusals are written at stop
audited=$(sql "$DB" "select count(*) from audit where seq > $before and actor = 'line1' and action = 'est.enroll'
  and outcome = 'denied' and subject <> 'CAM0001'")
# 5 at once, and one more each 12 s that 60 requests may have taken under a loaded ASan build
check "45 refusals outside the order: at most the budget (5, and a refill) are entries of their own ($audited)" \
  test "$audited" -ge 5 -a "$audited" -le 8
# a clone (the serial with another key) is what a compromised station hides among junk: never only counted
check_eq "the 15 clones of CAM0001 are 15 entries of their own, naming the serial, whatever the budget" 15 \
  "$(sql "$DB" "select count(*) from audit where seq > $before and actor = 'line1' and action = 'est.enroll'
  and outcome = 'denied' and subject = 'CAM0001' and detail like '%CAM0001%for another key%'")"
counted=$(rows line1 est.budget)
check_eq "the others are counted: one kind (outside the order), every request" "1|$((45 - audited))" "$counted"
station_audited=$audited
check_eq "... saying what was refused, from which station, past which budget" 1 "$(sql "$DB" "select count(*) from audit
  where actor = 'line1' and action = 'est.budget' and
  detail like '% refused from %: serial number is not in an open order of this station (past station.refusals_per_minute, 5)'")"
check_eq "... under its own name though the anonymous client took audit.anonymous_max_rows (no anonymous:* row)" \
  "1|0" "$(sql "$DB" "select count(*) from audit where actor like 'anonymous:%' and actor <> 'anonymous:*';
  select count(*) from audit where actor = 'anonymous:*'" | paste -sd'|')"

# A camera (or anyone holding its key) looping bad re-enrollments with its own certificate: the budget is per
# certificate (device.refusals_per_minute, 5), the camera is still told why, re-enrollment itself is never limited.
base64 -d "$WORK/out1" | openssl pkcs7 -inform DER -print_certs -out "$WORK/cam1.pem" 2>/dev/null
cp "$WORK/CAM0001.key" "$WORK/cam1.key"
make_csr "$WORK/CAM0001-renew" "/serialNumber=CAM0001/CN=x"
start_ca "$CA"
check_eq "line2 enrolls the camera whose serial is line1" 200 "$(est_post simpleenroll "$WORK/cam-line1.b64" \
  "$WORK/out-line1" --cert "$WORK/line2.pem" --key "$WORK/line2.key")"
base64 -d "$WORK/out-line1" | openssl pkcs7 -inform DER -print_certs -out "$WORK/cam-line1.pem" 2>/dev/null
before=$(sql "$DB" "select max(seq) from audit")
EST_OP=simplereenroll flood cam1 30 CAM9001 >"$WORK/reflood.out"
EST_OP=simplereenroll flood cam-line1 30 CAM9001 >"$WORK/reflood-line1.out"
check_eq "camera line1's 30 re-enrollments of another serial are refused (403)" 30 \
  "$(grep -c '^403 ' "$WORK/reflood-line1.out" || true)"
check_eq "30 re-enrollments of another serial are refused (403)" 30 "$(grep -c '^403 ' "$WORK/reflood.out" || true)"
check "past the budget the camera is still told the precise reason" \
  grep -q 'device CAM0001 may renew only its own serial, not CAM9001' <(tail -n 1 "$WORK/reflood.out")
check_eq "re-enrollment is never limited: the camera re-enrolls past its budget" 200 \
  "$(est_post simplereenroll "$WORK/CAM0001-renew.b64" "$WORK/renew.out" --cert "$WORK/cam1.pem" \
     --key "$WORK/cam1.key")"
cleanup_server
audited=$(sql "$DB" "select count(*) from audit where seq > $before and actor = 'device:CAM0001'
  and action = 'est.enroll' and outcome = 'denied'")
check "30 refusals: at most the budget (5, and a refill) are entries of their own ($audited)" \
  test "$audited" -ge 5 -a "$audited" -le 8
cam_counted=$((30 - audited))
check_eq "the others are counted in one entry of the camera, past device.refusals_per_minute" "1|$cam_counted" \
  "$(rows device:CAM0001 est.budget)"
check_eq "... saying what was refused" 1 "$(sql "$DB" "select count(*) from audit where actor = 'device:CAM0001' and
  action = 'est.budget' and detail like '% refused from %: forbidden (past device.refusals_per_minute, 5)'")"
check_eq "the successful re-enrollment is audited as issued" 1 "$(sql "$DB" "select count(*) from audit
  where seq > $before and actor = 'device:CAM0001' and outcome = 'ok'")"
# (its counts past the budget share the one row of audit.anonymous_max_rows that device:CAM0001 took: anonymous:*)
line1_cam=$(sql "$DB" "select count(*) from audit where seq > $before and actor = 'device:line1' and
  action = 'est.enroll' and outcome = 'denied' and detail like 'device line1 may renew only its own serial%'")
check "camera line1 is its own actor: its refusals within its budget are device:line1's ($line1_cam)" \
  test "$line1_cam" -ge 5 -a "$line1_cam" -le 8
check_eq "... and none is station line1's" 0 "$(sql "$DB" "select count(*) from audit where seq > $before and
  actor = 'line1'")"
# what an officer sees: the report of the console (the officer API), from the server
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/alice.key" -subj "/CN=alice" \
  -out "$WORK/alice.csr" 2>/dev/null
"$CA_BIN" officer add --dir "$CA" --name alice --role auditor --csr "$WORK/alice.csr" --out "$WORK/alice.pem" >/dev/null
start_ca "$CA"
report=$(curl -s --max-time 20 --cacert "$CA/ops-root.pem" --cert "$WORK/alice.pem" --key "$WORK/alice.key" \
  "https://localhost:$PORT/officer/api/report")
cleanup_server
check_eq "the officer's report counts line1's refusals past its budget" "$((45 - station_audited)) 60 0" "$(python3 -c '
import json, sys
s = {r["station"]: r for r in json.load(sys.stdin)["stations"]}
print(s["line1"]["over_budget"], s["line1"]["denied"], s["line2"]["over_budget"])' <<<"$report" 2>&1)"
check_eq "... and lists the camera's counted entry among its denials, with its requests" "$cam_counted" "$(python3 -c '
import json, sys
print(*[d["requests"] for d in json.load(sys.stdin)["denials"]
        if d["actor"] == "device:CAM0001" and d["action"] == "est.budget"])
' <<<"$report" 2>&1)"

# The camera sends its identity key for a media-signing certificate, in a loop: each is refused (409, one key one
# holder) and was an entry of its own, whatever the budget. Now within device.refusals_per_minute like the others.
base64 -d "$WORK/renew.out" | openssl pkcs7 -inform DER -print_certs -out "$WORK/cam1b.pem" 2>/dev/null
cp "$WORK/CAM0001-renew.key" "$WORK/cam1b.key"
start_ca "$CA"
before=$(sql "$DB" "select max(seq) from audit")
EST_OP=media-signing/simplereenroll flood cam1b 30 CAM0001-renew >"$WORK/msflood.out"
check_eq "30 media-signing re-enrollments of its identity key are refused (409)" 30 \
  "$(grep -c '^409 ' "$WORK/msflood.out" || true)"
check "past the budget the camera is still told the precise reason" \
  grep -q "this public key is already certified for serial 'CAM0001' (device certificate" <(tail -n 1 "$WORK/msflood.out")
cleanup_server
audited=$(sql "$DB" "select count(*) from audit where seq > $before and actor = 'device:CAM0001'
  and action = 'est.enroll' and outcome = 'denied' and detail like '%already certified for serial%'")
check "30 refusals of a key certified already: at most the budget (5, and a refill) are entries of their own ($audited)" \
  test "$audited" -ge 5 -a "$audited" -le 8
check_eq "the others are counted in one entry of the camera, past device.refusals_per_minute" "1|$((30 - audited))" \
  "$(sql "$DB" "select count(*) || '|' || coalesce(sum(cast(substr(detail, 1, instr(detail, ' ') - 1) as integer)), 0)
  from audit where seq > $before and actor = 'device:CAM0001' and action = 'est.budget' and
  detail like '% refused from %: already exists (past device.refusals_per_minute, 5)'")"

# Its budget spent on that loop, the camera (or whoever holds its key) sends a CSR of its serial with another camera's
# key (CAM0002's: a clone, or two cameras that made one key): each refusal is an entry of its own naming CAM0002, as a
# station's is, not a count that loses the serial.
make_csr "$WORK/cam1-clone" "/serialNumber=CAM0001/CN=x" -key "$WORK/CAM0002.key"
start_ca "$CA"
before=$(sql "$DB" "select max(seq) from audit")
EST_OP=media-signing/simplereenroll flood cam1b 30 CAM0001-renew cam1-clone >"$WORK/cloneflood.out"
check_eq "30 re-enrollments, half with CAM0002's key, are refused (409)" 30 "$(grep -c '^409 ' "$WORK/cloneflood.out" || true)"
cleanup_server
check_eq "each of the 15 with CAM0002's key is an entry of its own naming CAM0002" 15 "$(sql "$DB" "select count(*)
  from audit where seq > $before and actor = 'device:CAM0001' and action = 'est.enroll' and outcome = 'denied' and
  detail like '%already certified for serial ''CAM0002''%'")"
check "the audit chain verifies" "$CA_BIN" audit verify --dir "$CA"
finish
