#!/usr/bin/env bash
# Anonymous refusals are audited as counts, not one row each: a flood of malformed OCSP requests and of EST
# requests without a station certificate, from two loopback addresses, against the real server; refusals of an
# authenticated station are still one row each; one address cannot push the others out (Content-Types of its choice
# are one key, not 256); the audit chain stays intact. Usage: refusals.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
DB=$CA/camtrust.db
ca_create "$CA" >/dev/null
set_conf() { sed -i "s|^$1 = .*|$1 = $2|" "$CA/camtrust-ca.conf"; }
set_conf audit.anonymous_interval_s 1
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/station.key" -subj "/CN=line1" \
  -out "$WORK/station.csr" 2>/dev/null
"$CA_BIN" station add --dir "$CA" --name line1 --csr "$WORK/station.csr" --out "$WORK/station.pem" >/dev/null
printf 'CAM0001\n' >"$WORK/serials.txt"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX100 --serials "$WORK/serials.txt" >/dev/null
make_csr "$WORK/outside" "/serialNumber=CAM9999/CN=x"

# flood KIND COUNT SOURCE: COUNT refused requests over keep-alive connections from address SOURCE; prints how many
# were answered with the expected refusal status.
flood() {
  python3 - "$@" "$PORT" "$HTTP_PORT" "$CA/ops-root.pem" "$WORK/outside.b64" <<'EOF'
import http.client, ssl, sys
kind, count, source, port, http_port, root, csr = sys.argv[1], int(sys.argv[2]), sys.argv[3], *sys.argv[4:]
if kind == "ocsp":  # a malformed OCSP request over plain HTTP: 200 with an OCSP malformedRequest (RFC 6960)
    conn = http.client.HTTPConnection("127.0.0.1", int(http_port), timeout=10, source_address=(source, 0))
    path, body, ctype, want = "/ocsp", b"\x30\x03\x02\x01\x01", "application/ocsp-request", 200
else:  # an EST enrollment without a client certificate: 401 ("types": each with a Content-Type of its own, 415;
    # "station": with the station's certificate, 403 once it is disabled)
    ctx = ssl.create_default_context(cafile=root)
    if kind == "station": ctx.load_cert_chain(csr.replace("outside.b64", "station.pem"), csr.replace("outside.b64", "station.key"))
    conn = http.client.HTTPSConnection("127.0.0.1", int(port), timeout=10, context=ctx, source_address=(source, 0))
    path, body, ctype, want = "/.well-known/est/simpleenroll", open(csr, "rb").read(), "application/pkcs10", 401
    want = {"types": 415, "station": 403}.get(kind, want)
refused = 0
for i in range(count):
    if kind == "types": ctype = "application/x-type-%d" % i
    conn.request("POST", path, body=body, headers={"Content-Type": ctype})
    r = conn.getresponse()
    data = r.read()
    refused += r.status == want and (kind != "ocsp" or data == b"\x30\x03\x0a\x01\x01")
print(refused)
EOF
}
# anonymous ACTION SOURCE: the refusals counted in the audit rows of that action from that address.
anonymous() {
  sql "$DB" "select coalesce(sum(cast(substr(detail, 1, instr(detail, ' ') - 1) as integer)), 0) from audit
             where action = '$1' and actor = 'anonymous:$2' and outcome = 'denied'"
}
stop_ca() { kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=; }

WITH_HTTP=1 start_ca "$CA"
before=$(sql "$DB" "select count(*) from audit")
check_eq "300 malformed OCSP requests from 127.0.0.1 are answered malformedRequest" 300 "$(flood ocsp 300 127.0.0.1)"
check_eq "40 EST requests without a client certificate from 127.0.0.1 are refused (401)" 40 "$(flood est 40 127.0.0.1)"
check_eq "25 more from 127.0.0.2" 25 "$(flood est 25 127.0.0.2)"
for i in 1 2 3; do
  st=$(est_post simpleenroll "$WORK/outside.b64" "$WORK/out$i" --cert "$WORK/station.pem" --key "$WORK/station.key")
  check_eq "the station's enrollment of a serial outside its order is refused ($i)" 403 "$st"
done
stop_ca
added=$(sql "$DB" "select count(*) from audit where seq > $before and actor like 'anonymous:%'")
check "365 anonymous refusals take a handful of audit rows, not one each ($added)" test "$added" -ge 3 -a "$added" -le 24
check_eq "... the OCSP rows from 127.0.0.1 count all 300" 300 "$(anonymous ocsp.request 127.0.0.1)"
check_eq "... the EST rows from 127.0.0.1 count all 40" 40 "$(anonymous est.enroll 127.0.0.1)"
check_eq "... and those from 127.0.0.2 all 25" 25 "$(anonymous est.enroll 127.0.0.2)"
check "... each with its reason" test -n "$(sql "$DB" "select 1 from audit where actor = 'anonymous:127.0.0.2'
  and detail like '% refused from %: no TLS client certificate was presented'")"
check_eq "the authenticated station's three refusals are three rows of their own" 3 \
  "$(sql "$DB" "select count(*) from audit where seq > $before and actor = 'line1' and outcome = 'denied'")"
check "the audit chain is intact" "$CA_BIN" audit verify --dir "$CA"

# A flood from many addresses: at most audit.anonymous_max_rows rows per interval, the rest in one overflow row.
set_conf audit.anonymous_interval_s 60
set_conf audit.anonymous_max_rows 2
WITH_HTTP=1 start_ca "$CA"
before=$(sql "$DB" "select max(seq) from audit")
for s in 1 2 3 4 5; do flood ocsp 4 "127.0.0.$((s + 10))" >/dev/null; done
stop_ca
check_eq "20 refusals from 5 addresses with 2 rows allowed: 2 rows and an overflow row" 3 \
  "$(sql "$DB" "select count(*) from audit where seq > $before and actor like 'anonymous:%'")"
check_eq "... which together count all 20" 20 "$(sql "$DB" "select sum(cast(substr(detail, 1, instr(detail, ' ') - 1)
  as integer)) from audit where seq > $before and actor like 'anonymous:%'")"
check_eq "... the overflow row counts the 12 it could not key" 12 "$(anonymous audit.overflow '*')"

# One address cannot take the others' rows: 256 Content-Types of its choice are one kind of refusal (the reason is
# fixed), and however many kinds it finds it keys at most 8 of them (ca_refusals.c; the rest in an overflow row of
# its own: the unit test). A second address then still has its row, and the log names it.
set_conf audit.anonymous_max_rows 16
WITH_HTTP=1 start_ca "$CA"
before=$(sql "$DB" "select max(seq) from audit")
check_eq "256 EST requests from 127.0.0.1, each with another Content-Type, are refused (415)" 256 "$(flood types 256 127.0.0.1)"
for i in 1 2 3; do
  curl -s -o /dev/null --max-time 10 --interface 127.0.0.9 --cacert "$CA/ops-root.pem" "https://localhost:$PORT/officer/api/search" || true
done
stop_ca
check_eq "... they take one row of the 16, counting all 256, with a fixed reason" "1|256|1" \
  "$(sql "$DB" "select count(*), sum(cast(substr(detail, 1, instr(detail, ' ') - 1) as integer)),
  sum(case when detail like '%: content type must be application/pkcs10' then 1 else 0 end) from audit where seq > $before and actor = 'anonymous:127.0.0.1'")"
check_eq "then 127.0.0.9's three refusals have a row of their own" 3 "$(anonymous officer.access 127.0.0.9)"
check_eq "... and nothing went to the overflow row" 0 "$(sql "$DB" "select count(*) from audit where seq > $before and actor = 'anonymous:*'")"
check_eq "the log line of each request names the address" 3 "$(grep -c 'path="/officer/api/search" status=401 .* addr="127.0.0.9"' "$WORK/server.log")"

# A disabled station (its certificate revoked: a stolen key still works at TLS) is no longer authenticated: its
# refusals are counted under its name, not an entry each.
"$CA_BIN" station disable --dir "$CA" line1 >/dev/null
WITH_HTTP=1 start_ca "$CA"
before=$(sql "$DB" "select max(seq) from audit")
check_eq "40 enrollments by the disabled station are refused (403)" 40 "$(flood station 40 127.0.0.1)"
stop_ca
check_eq "... one entry, naming it, counting all 40" "1|40" "$(sql "$DB" "select count(*) || '|' ||
  sum(cast(substr(detail, 1, instr(detail, ' ') - 1) as integer)) from audit where seq > $before and actor = 'line1'
  and action = 'est.enroll' and detail like '% refused from %: station line1 is disabled'")"

check "the audit chain is still intact" "$CA_BIN" audit verify --dir "$CA"
finish
