#!/usr/bin/env bash
# An officer's own script against the officer API: every read is an audit entry (an fsync, a MAC in the token), so
# an auditor looping on GET /officer/api/checkpoint wrote some 800 entries a second. Each officer has a budget
# of reads (officer.requests_per_minute, as many at once): past it the answer is 429 with Retry-After and the
# refusals are counted (a bounded number of audit rows), not written one by one; other officers keep their own
# budget; the longest officer name has one too (its key was cut short: a fresh slot each request, no budget at all);
# a revocation is never budgeted (an officer whose script spent the budget can still revoke during an incident), but
# one too large to read (past its 4,096 bytes or server.max_body, POST or PUT) is counted, naming the bound applied,
# as is one sent with another method than POST.
# Usage: officer_budget.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/officer_lib.sh"

officer_setup
LONG=o$(printf 'x%.0s' $(seq 1 62)) # 63 characters, the longest name
new_client "$LONG"
"$CA_BIN" officer add --dir "$CA" --name "$LONG" --role auditor --csr "$WORK/$LONG.csr" --out "$WORK/$LONG.pem" >/dev/null
cleanup_server
sed -i 's/^officer.requests_per_minute = .*/officer.requests_per_minute = 20/' "$CA/camtrust-ca.conf"
grep -q '^officer.requests_per_minute = 20$' "$CA/camtrust-ca.conf" || echo 'officer.requests_per_minute = 20' >>"$CA/camtrust-ca.conf"
start_ca "$CA"

# reads WHO N: N reads of the checkpoint page on one connection; prints their statuses, one a line.
reads() {
  local urls=() i
  for i in $(seq 1 "$2"); do urls+=(-o /dev/null -w '%{http_code}\n' "https://localhost:$PORT/officer/api/checkpoint"); done
  curl -s --max-time 60 --cacert "$CA/ops-root.pem" --cert "$WORK/$1.pem" --key "$WORK/$1.key" "${urls[@]}" || true
}
entries() { sql "$DB" "select count(*) from audit where actor='officer:$1' and action='officer.read'"; }

before=$(entries alice)
reads alice 60 >"$WORK/alice.codes"
served=$(grep -c '^200$' "$WORK/alice.codes" || true)
refused=$(grep -c '^429$' "$WORK/alice.codes" || true)
# 20 at once, and one more each 3 s the loop may have taken under a loaded ASan build
check "60 reads at once: at most the budget (20, and a refill) are served" test "$served" -ge 20 -a "$served" -le 24
check_eq "the others are refused with 429" 60 "$((served + refused))"
check_eq "only the served reads are audit entries of their own" "$served" "$(($(entries alice) - before))"
body=$(curl -s --max-time 20 -D "$WORK/headers" --cacert "$CA/ops-root.pem" --cert "$WORK/alice.pem" \
  --key "$WORK/alice.key" "https://localhost:$PORT/officer/api/me")
check "a refusal says why, in the API's JSON" grep -q '"status":429,"error":"over officer.requests_per_minute (20): ask again later"' <<<"$body"
check "... and when to ask again (60 s / 20)" grep -qi '^Retry-After: 3' "$WORK/headers"
check_eq "another officer keeps a budget of its own" 20 "$(reads bob 20 | grep -c '^200$' || true)"
served=$(reads "$LONG" 60 | grep -c '^200$' || true)
check "an officer with a 63-character name has a budget too ($served of 60 served)" test "$served" -ge 20 -a "$served" -le 24
check_eq "bob, his reads spent, is refused a read" 429 "$(reads bob 1)"
S1=$(cert_serial CAM0001)
check_eq "... but revokes: revocations are not budgeted" 200 "$(curl -s --max-time 20 -o "$WORK/revoke.body" -w '%{http_code}' \
  --cacert "$CA/ops-root.pem" --cert "$WORK/bob.pem" --key "$WORK/bob.key" -H "Origin: https://localhost:$PORT" \
  -H 'Content-Type: application/json' -d "{\"serial\":\"$S1\",\"reason\":\"keyCompromise\"}" \
  "https://localhost:$PORT/officer/api/revoke")"
check_eq "... and the certificate is revoked" revoked "$(sql "$DB" "select status from certificates where device_serial='CAM0001'")"
# A looping script posting (or putting) revocations too large to read: each was an audit entry with its fsync, not
# budgeted. Counted now, as the reads' bodies past server.max_body: no entry at once, one at stop.
head -c 5000 /dev/zero | tr '\0' ' ' >"$WORK/big.json"   # past the revocation's 4,096 bytes
head -c 40000 /dev/zero | tr '\0' ' ' >"$WORK/huge.json" # past server.max_body (16,384)
# revokes METHOD BODYFILE N: N revocations with that body on one connection; prints their statuses, one a line.
# (Expect: 100-continue: a body refused for its announced length is not sent, so the refusal is not lost to a reset
# of a connection closed with a body unread)
revokes() {
  local urls=() i
  for i in $(seq 1 "$3"); do urls+=(-o "$WORK/revoke.body" -w '%{http_code}\n' "https://localhost:$PORT/officer/api/revoke"); done
  curl -s --max-time 60 --cacert "$CA/ops-root.pem" --cert "$WORK/bob.pem" --key "$WORK/bob.key" -X "$1" \
    -H 'Expect: 100-continue' -H "Origin: https://localhost:$PORT" -H 'Content-Type: application/json' --data-binary @"$2" "${urls[@]}" || true
}
bob_entries() { sql "$DB" "select count(*) from audit where actor='officer:bob'"; }
before=$(bob_entries)
check_eq "20 revocations past 4,096 bytes: 413 each" 20 "$(revokes POST "$WORK/big.json" 20 | grep -c '^413$' || true)"
check "... naming the bound applied" grep -q '"error":"request body larger than 4096 bytes"' "$WORK/revoke.body"
check_eq "10 past server.max_body, and 10 PUT: 413 each" 20 \
  "$( (revokes POST "$WORK/huge.json" 10; revokes PUT "$WORK/huge.json" 10) | grep -c '^413$' || true)"
# A looping script sending its revocations (of a normal size) with PUT or PATCH: no read, so no read budget, and each
# "revoke takes POST" was an audit entry with its fsync. Counted now, as the other gates' refusals.
printf '{"serial":"%s","reason":"keyCompromise"}' "$(cert_serial CAM0002)" >"$WORK/small.json"
check_eq "20 revocations by PUT and PATCH: 405 each" 20 \
  "$( (revokes PUT "$WORK/small.json" 10; revokes PATCH "$WORK/small.json" 10) | grep -c '^405$' || true)"
check "... saying revoke takes POST" grep -q '"error":"revoke takes POST"' "$WORK/revoke.body"
check_eq "... none written at once" "$before" "$(bob_entries)"
cleanup_server # the counted refusals are written at stop
check_eq "bob's 20 by another method are one counted officer.revoke entry" "1|20" "$(sql "$DB" "select count(*) || '|' ||
  coalesce(sum(cast(substr(detail, 1, instr(detail, ' ') - 1) as integer)), 0) from audit where actor='officer:bob'
  and action='officer.revoke' and detail like '% refused from %: revoke takes POST'")"
check_eq "... and the certificate is not revoked" valid "$(sql "$DB" "select status from certificates where device_serial='CAM0002'")"
check_eq "bob's 40 are one counted officer.body entry" "1|40" "$(sql "$DB" "select count(*) || '|' ||
  coalesce(sum(cast(substr(detail, 1, instr(detail, ' ') - 1) as integer)), 0) from audit where actor='officer:bob'
  and action='officer.body' and detail like '% refused from %: request body larger than 4096 bytes'")"
# server.max_body below the revocation's own bound: that is the bound applied, and the one named
sed -i 's/^server.max_body = .*/server.max_body = 2048/' "$CA/camtrust-ca.conf"
grep -q '^server.max_body = 2048$' "$CA/camtrust-ca.conf" || echo 'server.max_body = 2048' >>"$CA/camtrust-ca.conf"
head -c 3000 /dev/zero | tr '\0' ' ' >"$WORK/mid.json"
start_ca "$CA"
check_eq "with server.max_body = 2048, a revocation of 3,000 bytes: 413" 413 "$(revokes POST "$WORK/mid.json" 1)"
check "... naming server.max_body's 2048 bytes, the bound applied (not 4096)" \
  grep -q '"error":"request body larger than 2048 bytes"' "$WORK/revoke.body"
cleanup_server # the counted refusals are written at stop
check "alice's refusals are one counted audit entry" test "$(sql "$DB" "select count(*) from audit where actor='officer:alice' and action='officer.budget' and detail like '% refused from %'")" -ge 1
check "the audit chain verifies" "$CA_BIN" audit verify --dir "$CA"
finish
