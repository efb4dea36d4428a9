#!/usr/bin/env bash
# Officers end to end: certified from their own CSRs with a role, then the officer API over mutual TLS with
# curl (search, certificate detail, report, revocation by serial, order and station) and every refusal (no
# certificate, a station's certificate, an auditor revoking, malformed, oversized, unknown, already revoked):
# a status and a reason, audited, nothing changed. Then the CLI's audit search and report in every format.
# Usage: officer.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/officer_lib.sh"

officer_setup
check_eq "seven cameras enrolled" 7 "$(sql "$DB" "select count(*) from certificates where profile not in ('station', 'officer') and profile not like 'ca-%'")"
check_eq "two officers recorded with their roles" "alice|auditor|1,bob|officer|1" \
  "$(sql "$DB" "select name, role, enabled from officers order by name" | paste -sd,)"
check "an officer certificate chains to the operations root, for clientAuth" bash -c \
  "openssl verify -CAfile '$CA/ops-root.pem' -untrusted '$WORK/bob.pem' '$WORK/bob.pem' >/dev/null && openssl x509 -in '$WORK/bob.pem' -noout -text | grep -q 'TLS Web Client Authentication'"
new_client carol
out=$("$CA_BIN" officer add --dir "$CA" --name carol --role admin --csr "$WORK/carol.csr" --out "$WORK/carol.pem" 2>&1) || true
check "an unknown role is refused, naming the choices" grep -q "role 'admin' is not one of: auditor, officer" <<<"$out"
check "a taken officer name is refused" bash -c "! '$CA_BIN' officer add --dir '$CA' --name bob --role officer --csr '$WORK/carol.csr' --out '$WORK/x.pem' 2>/dev/null"

# call WHO METHOD PATH [curl options...]: prints "STATUS" and leaves the body in $WORK/body. A POST names this
# server as its Origin, as the console's own requests do (the browser adds it).
call() {
  local who=$1 method=$2 path=$3 auth=(); shift 3
  [ "$who" != none ] && auth=(--cert "$WORK/$who.pem" --key "$WORK/$who.key")
  [ "$method" = POST ] && auth+=(-H "Origin: https://localhost:$PORT")
  curl -s -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' --max-time 20 --cacert "$CA/ops-root.pem" \
    -X "$method" "${auth[@]}" "$@" "https://localhost:$PORT$path" || true
}
body_has() { grep -q "$1" "$WORK/body"; }
json() { python3 -c "import json,sys; d=json.load(open('$WORK/body')); print($1)"; }
denied() { audited_refusals "$DB"; } # (the anonymous 401s below are counted apart, at intervals: refusals.sh)
revoked() { sql "$DB" "select count(*) from certificates where status='revoked'"; }

S1=$(cert_serial CAM0001)

# Who may come in.
d0=$(denied)
check_eq "no client certificate: 401" 401 "$(call none GET /officer/api/search)"
check "... saying an officer certificate is required" body_has 'an officer client certificate is required'
check_eq "the console without a certificate: 401 too" 401 "$(call none GET /console/)"
check_eq "a station's certificate: 403" 403 "$(call line1 GET '/officer/api/search?device_serial=CAM0001')"
check "... stations cannot read" body_has 'stations cannot read'
check_eq "... nor open the console" 403 "$(call line1 GET /console/)"
check_eq "refused accesses are counted, not written one by one (below, and refusals.sh)" 0 "$(( $(denied) - d0 ))"

# An auditor reads.
check_eq "auditor: search by device serial, 200" 200 "$(call alice GET '/officer/api/search?device_serial=CAM0001')"
check_eq "... one certificate, the right one" "1 $S1 valid line1 CX100" \
  "$(json "d['total'], d['results'][0]['cert_serial'], d['results'][0]['status'], d['results'][0]['station'], d['results'][0]['model']")"
check "... JSON answers with the console's security headers" bash -c \
  "grep -qi '^content-type: application/json' '$WORK/headers' && grep -qi \"^content-security-policy: default-src 'self'\" '$WORK/headers' && grep -qi '^x-content-type-options: nosniff' '$WORK/headers'"
check_eq "auditor: search by station and model" "3" "$(call alice GET '/officer/api/search?station=line1&model=CX100' >/dev/null; json "d['total']")"
check_eq "search by order" "2" "$(call alice GET '/officer/api/search?order=3' >/dev/null; json "d['total']")"
check_eq "search by certificate serial, as openssl prints it (upper case, colons)" "CAM0001" \
  "$(call alice GET "/officer/api/search?cert_serial=$(tr 'a-f' 'A-F' <<<"$S1" | sed 's/../&:/g; s/:$//')" >/dev/null; json "d['results'][0]['device_serial']")"
check_eq "search by time range: all of today, none before" "7 0" \
  "$(call alice GET "/officer/api/search?from=$(date -u +%F)" >/dev/null; a=$(json "d['total']"); call alice GET '/officer/api/search?to=2020-01-01' >/dev/null; echo "$a $(json "d['total']")")"
pages=$(for off in 0 2 4; do call alice GET "/officer/api/search?station=line1&limit=2&offset=$off" >/dev/null; json "' '.join(r['device_serial'] for r in d['results'])"; done | tr ' ' '\n' | sort -u | paste -sd,)
check_eq "limit and offset page through, each certificate once" "CAM0001,CAM0002,CAM0003,CAM0005,CAM0006" "$pages"
check_eq "a bad filter: 400" 400 "$(call alice GET '/officer/api/search?status=lost')"
check "... naming it" body_has "status 'lost' is not one of"
check_eq "a limit over the bound: 400" 400 "$(call alice GET '/officer/api/search?limit=100000')"
check_eq "auditor: certificate detail, 200" 200 "$(call alice GET "/officer/api/cert/$S1")"
check_eq "... decoded fields" "CAM0001|CX100 CAM0001|digitalSignature|serverAuth, clientAuth|DNS:cam0001.devices.example.com" \
  "$(json "'|'.join([d['subject_serial_number'], d['subject_cn'], d['key_usage'], d['ext_key_usage'], d['san']])")"
check_eq "... chain verified, two CA certificates, audit entry found, in the issuance log" "True 2 True True" \
  "$(json "d['chain_status'].startswith('verified'), len(d['chain']), d['audit_seq'] > 0, d['log_inclusion'].startswith('leaf ')")"
check "... its PEM is the certificate the camera got" bash -c \
  "python3 -c \"import json; print(json.load(open('$WORK/body'))['pem'], end='')\" | cmp -s - <(openssl x509 -in '$WORK/CAM0001.pem')"
check_eq "an unknown serial: 404" 404 "$(call alice GET /officer/api/cert/0123456789abcdef)"
# Two refusals of what the station asked for (a serial outside its orders): an entry each, for the report below.
make_csr "$WORK/outside" "/serialNumber=CAM9999/CN=x"
check_eq "a station enrolling a serial outside its orders, twice: 403, an entry each" "403 403 2" "$(d0=$(denied)
  for i in 1 2; do est_post simpleenroll "$WORK/outside.b64" /dev/null --cert "$WORK/line1.pem" --key "$WORK/line1.key"; echo -n ' '; done
  echo $(( $(denied) - d0 )))"
check_eq "auditor: report, 200" 200 "$(call alice GET /officer/api/report)"
check_eq "... issuance per station" "line1:5:0,line2:2:0" \
  "$(json "','.join('%s:%d:%d' % (s['station'], s['issued'], s['revoked']) for s in sorted(d['stations'], key=lambda s: s['station']))")"
check_eq "... per order (issued / serials)" "1:3/3,2:2/2,3:2/2" \
  "$(json "','.join('%d:%d/%d' % (o['order'], o['issued'], o['serials']) for o in sorted(d['orders'], key=lambda o: o['order']))")"
check_eq "... per day" "$(date -u +%F) 7" "$(json "d['days'][0]['day'], sum(x['issued'] for x in d['days'])")"
check_eq "... denials counted, the station's among them" "True line1" \
  "$(json "d['totals'][0]['denials'] >= 4, [s['station'] for s in d['stations'] if s['denied'] == 2][0]")"
check_eq "reads are audited as the officer" 1 "$(sql "$DB" "select count(*) from audit where actor='officer:alice' and action='officer.report' and outcome='ok'")"

# An auditor cannot revoke: 403, audited, nothing changed.
d0=$(denied); r0=$(revoked)
check_eq "auditor revoking: 403" 403 "$(call alice POST /officer/api/revoke -H 'Content-Type: application/json' -d "{\"serial\":\"$S1\",\"reason\":\"keyCompromise\"}")"
check "... auditors cannot revoke" body_has 'auditors cannot revoke'
check_eq "... audited as alice" 1 "$(( $(denied) - d0 ))"
check_eq "... nothing revoked" "$r0" "$(revoked)"

# Bad requests from an officer: a status and a reason, audited, nothing changed.
d0=$(denied)
check_eq "malformed JSON: 400" 400 "$(call bob POST /officer/api/revoke -H 'Content-Type: application/json' -d '{"serial": "ab"')"
check "... saying where" body_has 'malformed JSON at byte'
check_eq "unknown field: 400" 400 "$(call bob POST /officer/api/revoke -H 'Content-Type: application/json' -d '{"serial":"ab","reason":"keyCompromise","force":"yes"}')"
check_eq "two targets: 400" 400 "$(call bob POST /officer/api/revoke -H 'Content-Type: application/json' -d "{\"serial\":\"$S1\",\"order\":1,\"reason\":\"keyCompromise\"}")"
head -c 5000 /dev/zero | tr '\0' ' ' >"$WORK/big.json"
check_eq "oversized body: 413" 413 "$(call bob POST /officer/api/revoke -H 'Content-Type: application/json' --data-binary @"$WORK/big.json")"
check "... naming the revocation's bound" body_has 'request body larger than 4096 bytes'
head -c 40000 /dev/zero | tr '\0' ' ' >"$WORK/huge.json"
check_eq "a body over server.max_body: 413 too" 413 "$(call bob POST /officer/api/revoke -H 'Content-Type: application/json' --data-binary @"$WORK/huge.json")"
check_eq "... sent chunked (no length announced): 413 too (was: the connection closed, no answer)" 413 \
  "$(call bob POST /officer/api/revoke -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/huge.json")"
check "... with a one-line reason" bash -c "[ \$(wc -l <'$WORK/body') -le 1 ] && grep -q 'request body larger than' '$WORK/body'"
check_eq "wrong content type: 415" 415 "$(call bob POST /officer/api/revoke -H 'Content-Type: text/plain' -d "serial=$S1")"
check_eq "GET on revoke: 405" 405 "$(call bob GET /officer/api/revoke)"
check_eq "unknown serial: 404" 404 "$(call bob POST /officer/api/revoke -H 'Content-Type: application/json' -d '{"serial":"0123456789abcdef","reason":"keyCompromise"}')"
check "... no certificate with that serial" body_has 'no certificate with serial 0123456789abcdef'
check_eq "a reason RFC 5280 does not have: 400" 400 "$(call bob POST /officer/api/revoke -H 'Content-Type: application/json' -d "{\"serial\":\"$S1\",\"reason\":\"bored\"}")"
check_eq "an order id past int64: 400 (was: 404 'no order 9223372036854775807')" 400 \
  "$(call bob POST /officer/api/revoke -H 'Content-Type: application/json' -d '{"order":99999999999999999999999,"reason":"cessationOfOperation"}')"
check "... in one line naming the range" bash -c "[ \$(wc -l <'$WORK/body') -le 1 ] && grep -q \"order id '99999999999999999999999' must be 1..9223372036854775807\" '$WORK/body'"
check_eq "an order id with a sign: 400 (was: order 3 revoked)" 400 \
  "$(call bob POST /officer/api/revoke -H 'Content-Type: application/json' -d '{"order":"+3","reason":"cessationOfOperation"}')"
check "... not a number" body_has "order id '+3' is not a number"
check_eq "every bad request was audited (the two too large to read and the GET counted: below)" 8 "$(( $(denied) - d0 ))"
check_eq "... and nothing was revoked" "$r0" "$(revoked)"

# Another site's page, visited by an officer: the browser sends the officer's certificate with whatever the page
# asks for. What it can send without asking (a form) and anything it names as its origin change nothing.
d0=$(denied); r0=$(revoked)
S2=$(cert_serial CAM0002)
xsite() { # xsite PATH [curl options...]: bob's certificate, sent from another site's page
  local path=$1; shift
  curl -s -o "$WORK/body" -w '%{http_code}' --max-time 20 --cacert "$CA/ops-root.pem" --cert "$WORK/bob.pem" \
    --key "$WORK/bob.key" -H 'Origin: https://evil.example' -H 'Sec-Fetch-Site: cross-site' "$@" \
    "https://localhost:$PORT$path" || true
}
check_eq "a form posted from another site: 403" 403 "$(xsite /officer/api/revoke -d "station=line1&reason=keyCompromise")"
check "... saying why" body_has 'cross-origin request refused (Sec-Fetch-Site: cross-site)'
check_eq "... JSON from another site: 403 too" 403 "$(xsite /officer/api/revoke -H 'Content-Type: application/json' -d "{\"serial\":\"$S2\",\"reason\":\"keyCompromise\"}")"
check_eq "... this server's Origin and a second one: 403" 403 "$(call bob POST /officer/api/revoke -H 'Origin: https://evil.example' -H 'Content-Type: application/json' -d "{\"serial\":\"$S2\",\"reason\":\"keyCompromise\"}")"
check_eq "... a revocation that names no origin at all: 403" 403 "$(curl -s -o "$WORK/body" -w '%{http_code}' --cacert "$CA/ops-root.pem" --cert "$WORK/bob.pem" --key "$WORK/bob.key" -H 'Content-Type: application/json' -d "{\"serial\":\"$S2\",\"reason\":\"keyCompromise\"}" "https://localhost:$PORT/officer/api/revoke")"
check "... saying what to send" body_has 'must send Origin: https://localhost:'
check_eq "... another site reading the API: 403" 403 "$(xsite '/officer/api/search?station=line1')"
# A page can send these as fast as the browser will: 200 more, each naming another origin of the page's site.
python3 - "$PORT" "$CA/ops-root.pem" "$WORK/bob.pem" "$WORK/bob.key" >"$WORK/xsite.out" <<'PY'
import http.client, ssl, sys
port, root, cert, key = sys.argv[1:]
ctx = ssl.create_default_context(cafile=root)
ctx.load_cert_chain(cert, key)
conn = http.client.HTTPSConnection("localhost", int(port), timeout=10, context=ctx)
refused = 0
for i in range(200):
    conn.request("GET", "/officer/api/search?station=line1", headers={"Origin": "https://a%d.evil.example" % i})
    r = conn.getresponse()
    r.read()
    refused += r.status == 403
print(refused)
PY
check_eq "... 200 more from other origins of that site: 403 each" 200 "$(cat "$WORK/xsite.out")"
check_eq "none is written at once: they are counted" 0 "$(( $(denied) - d0 ))"
check_eq "... and nothing was revoked" "$r0" "$(revoked)"
# A read whose body passed server.max_body: the server answers 413 whatever the route did, so the route must not
# read, nor audit a read nobody is sent (was: an officer.read entry, and the report's, for each).
reads() { sql "$DB" "select count(*) from audit where actor='officer:alice' and action in ('officer.read','officer.report')"; }
d0=$(denied); a0=$(reads)
check_eq "a certificate read with a body announced past server.max_body: 413" 413 \
  "$(call alice GET "/officer/api/cert/$S1" --data-binary @"$WORK/huge.json")"
call alice GET /officer/api/report -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/huge.json" >/dev/null
check_eq "... and a report with a chunked one: no read audited" "$a0" "$(reads)"
check_eq "... counted, not written at once" 0 "$(( $(denied) - d0 ))"
check_eq "the same read without a body: 200, audited" "200 $((a0 + 1))" "$(call alice GET "/officer/api/cert/$S1") $(reads)"
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=
start_ca "$CA" # the counts are written at the interval and when the server stops
# counted ACTOR: "rows|refusals" of ACTOR's counted refusals (the detail starts with the count).
counted() {
  sql "$DB" "select count(*) || '|' || coalesce(sum(cast(substr(detail, 1, instr(detail, ' ') - 1) as integer)), 0)
             from audit where actor = '$1' and outcome = 'denied' and detail like '% refused from %'"
}
check_eq "the station's two refused accesses: one entry counting both, naming it" "1|2" "$(counted station:line1)"
check_eq "bob's 205 cross-site refusals, 3 bodies too large and a GET on revoke: 8 kinds and one overflow entry, counting all 209, naming him" \
  "9|209" "$(counted officer:bob)"
check_eq "... as officer.revoke, officer.csrf and officer.body (and audit.overflow for the kinds past 8)" \
  "officer.revoke:1,officer.csrf:6,officer.body:1,audit.overflow:1" \
  "$(sql "$DB" "select action || ':' || count(*) from audit where actor = 'officer:bob' and detail like '% refused from %' group by action order by action desc" | paste -sd,)"
check "... the reason of each kind kept" test -n "$(sql "$DB" "select 1 from audit where actor = 'officer:bob' and action = 'officer.csrf'
  and detail like '3 refused from % to %: cross-origin request refused (Sec-Fetch-Site: cross-site)'")"
check_eq "alice's two reads with too large a body: one officer.body entry counting both" "officer.body|2" \
  "$(sql "$DB" "select action || '|' || substr(detail, 1, instr(detail, ' ') - 1) from audit where actor = 'officer:alice'
                and outcome = 'denied' and detail like '% refused from %: request body larger than % bytes'")"
d0=$(denied)
check_eq "a form body from this server's own origin: 415 (JSON only)" 415 "$(call bob POST /officer/api/revoke -H 'Content-Type: application/x-www-form-urlencoded' -d 'order=2&reason=cessationOfOperation')"
check "... saying so" body_has "content type must be application/json, not 'application/x-www-form-urlencoded'"
check_eq "... audited, nothing revoked" "1 $r0" "$(( $(denied) - d0 )) $(revoked)"
check_eq "the browser's same-origin word is enough (no Origin on the request)" 404 "$(call bob PUT /officer/api/revoke -X POST -H 'Sec-Fetch-Site: same-origin' -H 'Content-Type: application/json' -d '{"serial":"0123456789abcdef","reason":"keyCompromise"}')"

# Revocation by an officer: one serial, an order, a station.
check_eq "officer revokes a serial: 200" 200 "$(call bob POST /officer/api/revoke -H 'Content-Type: application/json' -d "{\"serial\":\"$S1\",\"reason\":\"keyCompromise\"}")"
check_eq "... one certificate" "1 certificate" "$(json "d['revoked'], d['scope']")"
check_eq "... recorded as revoked with its reason" "revoked|1" "$(sql "$DB" "select status, revocation_reason from certificates where cert_serial_hex='$S1'")"
check_eq "... audited as officer:bob" 1 "$(sql "$DB" "select count(*) from audit where actor='officer:bob' and action='cert.revoke' and outcome='ok'")"
sleep 0.2
curl -s -o "$WORK/crl.der" "https://localhost:$PORT/crl" --cacert "$CA/ops-root.pem"
check "... and on the served CRL" bash -c "openssl crl -inform DER -in '$WORK/crl.der' -noout -text | tr 'A-F' 'a-f' | grep -qi 'serial number: $S1'"
check_eq "already revoked: 409" 409 "$(call bob POST /officer/api/revoke -H 'Content-Type: application/json' -d "{\"serial\":\"$S1\",\"reason\":\"keyCompromise\"}")"
check "... saying so" body_has 'already revoked'
check_eq "officer revokes an order: 200" 200 "$(call bob POST /officer/api/revoke -H 'Content-Type: application/json' -d '{"order":2,"reason":"cessationOfOperation"}')"
check_eq "... its two certificates in one audited action" "2 1" \
  "$(json "d['revoked']") $(sql "$DB" "select count(*) from audit where actor='officer:bob' and action='order.revoke' and detail like 'v=2 certificates=2 %'")"
check_eq "officer revokes a station's output: 200" 200 "$(call bob POST /officer/api/revoke -H 'Content-Type: application/json' -d '{"station":"line2","reason":"affiliationChanged"}')"
check_eq "... two certificates" 2 "$(json "d['revoked']")"
check_eq "five revoked in all, two left valid" "5 2" "$(revoked) $(sql "$DB" "select count(*) from certificates where status='valid' and profile not in ('station', 'officer') and profile not like 'ca-%'")"
check_eq "search by status sees them" 5 "$(call alice GET '/officer/api/search?status=revoked' >/dev/null; json "d['total']")"
check_eq "the report counts revocations by reason" "affiliationChanged:2,cessationOfOperation:2,keyCompromise:1" \
  "$(call alice GET /officer/api/report >/dev/null; json "','.join('%s:%d' % (r['reason'], r['revoked']) for r in sorted(d['reasons'], key=lambda r: r['reason']))")"
check_eq "... and lists the three revocation actions" 3 "$(json "len(d['revocations'])")"

# The CA's own certificates (TLS identity, OCSP signer, log and checkpoint keys) are the operator's to revoke, from the
# command line: a revocation from an officer's browser (any compromised workstation) must not take the CA down.
d0=$(denied); r0=$(revoked)
for p in ca-tls ca-ocsp; do
  own=$(sql "$DB" "select cert_serial_hex from certificates where profile='$p' and status='valid'")
  check_eq "an officer revoking the CA's own $p certificate: 403 (was: 200, revoked)" 403 \
    "$(call bob POST /officer/api/revoke -H 'Content-Type: application/json' -d "{\"serial\":\"$own\",\"reason\":\"cACompromise\"}")"
  check "... naming the command that does" body_has "the operator revokes it, with camtrust-ca revoke --dir DIR $own --reason REASON"
done
check_eq "... each audited as a refusal of officer:bob, nothing revoked" "2 2 $r0" \
  "$(( $(denied) - d0 )) $(sql "$DB" "select count(*) from audit where actor='officer:bob' and action='cert.revoke' and outcome='denied' and detail like '%the CA''s own%'") $(revoked)"
check_eq "... the CA still answers over its TLS identity" 200 "$(call bob GET /officer/api/me)"
# Another officer's certificate stays an officer's to revoke: a compromised officer must be stopped at once.
"$CA_BIN" officer add --dir "$CA" --name carol --role officer --csr "$WORK/carol.csr" --out "$WORK/carol.pem" >/dev/null
check_eq "officer carol reads" 200 "$(call carol GET /officer/api/me)"
carol_serial=$(openssl x509 -in "$WORK/carol.pem" -noout -serial | cut -d= -f2)
check_eq "bob revokes officer carol's certificate: 200" 200 \
  "$(call bob POST /officer/api/revoke -H 'Content-Type: application/json' -d "{\"serial\":\"$carol_serial\",\"reason\":\"keyCompromise\"}")"
check_eq "... carol is refused from her next request" 403 "$(call carol GET /officer/api/me)"

# A disabled officer is refused from its next request.
"$CA_BIN" officer disable --dir "$CA" bob >/dev/null
check_eq "disabled officer: 403" 403 "$(call bob GET /officer/api/search)"
"$CA_BIN" officer enable --dir "$CA" bob >/dev/null
check_eq "enabled again: 200" 200 "$(call bob GET /officer/api/me)"
check_eq "... who am I" "bob officer" "$(json "d['name'], d['role']")"
check_eq "the console page is served to officers" 200 "$(call alice GET /console/)"
check "... as HTML with no inline script" bash -c "grep -q '<script src=\"/console/app.js\"' '$WORK/body' && ! grep -q '<script>' '$WORK/body'"
check_eq "... and its script" 200 "$(call alice GET /console/app.js)"
check_eq "plain unknown officer routes: 404" 404 "$(call alice GET /officer/api/nothing)"

# DNS rebinding: another site's name made to resolve to this server, its certificate accepted for that name (-k: the
# officer clicked through the warning). To the browser the page is then same-origin: only the Host tells.
check_eq "a revocation under another site's name, by its own origin: 403 (was: revoked)" 403 \
  "$(curl -s -o "$WORK/body" -w '%{http_code}' -k --resolve "evil.example:$PORT:127.0.0.1" --cert "$WORK/bob.pem" \
     --key "$WORK/bob.key" -H "Origin: https://evil.example:$PORT" -H 'Sec-Fetch-Site: same-origin' \
     -H 'Content-Type: application/json' -d "{\"serial\":\"$S2\",\"reason\":\"keyCompromise\"}" \
     "https://evil.example:$PORT/officer/api/revoke" || true)"
check "... naming the Host and the settings" body_has "Host 'evil.example:$PORT' is not one of this CA's names (server.names, server.ips)"
check_eq "... nothing revoked" valid "$(sql "$DB" "select status from certificates where cert_serial_hex='$S2'")"
check_eq "this CA's address (server.ips) and its name written absolute are its own" "200 200" \
  "$(call bob GET /officer/api/me -H "Host: 127.0.0.1:$PORT") $(call bob GET /officer/api/me -H "Host: localhost.:$PORT")"

# The CLI: audit search and report, in every format.
out=$("$CA_BIN" audit search --dir "$CA" --device-serial CAM0002 --format csv)
check_eq "audit search --format csv: a header and one row" 2 "$(printf '%s\n' "$out" | wc -l)"
check "... RFC 4180 lines (CRLF)" bash -c "printf '%s' \"\$0\" | head -1 | grep -q \$'^cert_serial,device_serial,.*subject\r\$'" "$out"
check "... the row names the device and its order" grep -q ",CAM0002,device,line1,1,CX100,valid," <<<"$out"
out=$("$CA_BIN" audit search --dir "$CA" --status revoked --format json)
check_eq "audit search --format json: parses, five revoked" 5 "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])' <<<"$out")"
out=$("$CA_BIN" audit search --dir "$CA" --station line1)
check "audit search (table) names its columns and count" bash -c "grep -q '^cert_serial ' <<<\"\$0\" && grep -q '^5 of 5 shown' <<<\"\$0\"" "$out"
out=$("$CA_BIN" audit report --dir "$CA" --format json)
check_eq "audit report --format json: the same numbers" "7 5" "$(python3 -c 'import json,sys; d=json.load(sys.stdin)["totals"][0]; print(d["issued"], d["revoked"])' <<<"$out")"
out=$("$CA_BIN" audit report --dir "$CA" --format csv)
check "audit report --format csv: one block per section" bash -c "grep -q \$'^station,issued,revoked,denied,denied_entries,over_budget\r' <<<\"\$0\" && grep -q \$'^seq,time,actor,action,subject,detail\r' <<<\"\$0\"" "$out"
check "... with the denials' reasons quoted when they hold commas" grep -q ',officer.revoke,,"unknown field .force. (serial, order, station, reason)"' <<<"$out"
check "a bad --format is refused" bash -c "! '$CA_BIN' audit report --dir '$CA' --format xml 2>/dev/null"
check "a bad --from is refused" bash -c "'$CA_BIN' audit search --dir '$CA' --from yesterday 2>&1 | grep -q \"from 'yesterday'\""

# A viewer's name is any name its owner chose, a camera's serial any label a customer's order lists: an order's
# revocation takes its cameras' renewals (matched by device serial), never a viewer that bears one as its name.
printf 'CAM0020\n' >"$WORK/o4.txt"
"$CA_BIN" order create --dir "$CA" --station line1 --model CX300 --serials "$WORK/o4.txt" >/dev/null
enroll line1 CAM0020
new_client CAM0020-viewer
"$CA_BIN" viewer add --dir "$CA" --name CAM0020 --csr "$WORK/CAM0020-viewer.csr" --out "$WORK/CAM0020-viewer.pem" >/dev/null
o4=$(sql "$DB" "select order_id from certificates where device_serial='CAM0020' and profile='device'")
check_eq "officer revokes the order of camera CAM0020: 200, one certificate (was: 2, viewer CAM0020's too)" "200 1" \
  "$(call bob POST /officer/api/revoke -H 'Content-Type: application/json' -d "{\"order\":$o4,\"reason\":\"cessationOfOperation\"}") $(json "d['revoked']")"
check_eq "... viewer CAM0020 keeps its certificate" "valid" "$(sql "$DB" "select status from certificates where device_serial='CAM0020' and profile='viewer'")"

# The report counts refused requests, not audit entries: one station refused 7 times is one counted entry of 7.
report_denials() { # totals' denials and denial_entries, station line2's denied and denied_entries
  "$CA_BIN" audit report --dir "$CA" --format json | python3 -c 'import json, sys
d = json.load(sys.stdin); t = d["totals"][0]; s = [x for x in d["stations"] if x["station"] == "line2"][0]
print(t["denials"], t["denial_entries"], s["denied"], s["denied_entries"])'
}
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID= # its counts so far written
before=$(report_denials) || before="no report"
start_ca "$CA"
for _ in 1 2 3 4 5 6 7; do call line2 GET /officer/api/search >/dev/null; done

kill -TERM "$SERVER_PID"; rc=0; wait "$SERVER_PID" || rc=$?; SERVER_PID=
check_eq "SIGTERM stops the server cleanly" 0 "$rc"
[ "$rc" = 0 ] || tail -40 "$WORK/server.log"
check_eq "7 refusals of one station are audited as one counted entry of 7" 1 \
  "$(sql "$DB" "select count(*) from audit where actor='station:line2' and outcome='denied' and detail like '7 refused from %stations cannot read%'")"
after=$(report_denials) || after="no report"
check_eq "the report: 7 more denied requests in 1 more entry, in the totals and on the station's row" "7 1 7 1" \
  "$(python3 -c 'import sys; a, b = sys.argv[1].split(), sys.argv[2].split(); print(*(int(y) - int(x) for x, y in zip(a, b)))' "$before" "$after" 2>&1)"
out=$("$CA_BIN" audit report --dir "$CA" --format json)
check_eq "... the newest denial listed holds 7 requests" "station:line2 7" \
  "$(python3 -c 'import json, sys; e = json.load(sys.stdin)["denials"][0]; print(e["actor"], e["requests"])' <<<"$out" 2>&1)"
read -r denials entries _ <<<"$after"
out=$("$CA_BIN" audit report --dir "$CA")
check "... the table says it in words: '$denials refused requests in $entries audit entries'" \
  grep -qx "$denials refused requests in $entries audit entries" <<<"$out"
out=$("$CA_BIN" audit report --dir "$CA" --format csv)
check "... the CSV keeps its columns and adds the entries after them" bash -c \
  "grep -q \$'^issued,revoked,denials,revocation_actions,denial_entries\r' <<<\"\$0\" && grep -q \$'^seq,time,actor,action,subject,detail,requests\r' <<<\"\$0\"" "$out"
check "audit verify: intact" "$CA_BIN" audit verify --dir "$CA"
finish
