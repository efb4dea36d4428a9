#!/usr/bin/env bash
# An officer's own script against the officer API: every read is an audit entry (an fsync, a MAC in the token), so
# an auditor looping on GET /officer/api/checkpoint wrote some 800 entries a second. Each officer has a budget
# (officer.requests_per_minute, as many at once): past it the answer is 503 and the refusals are counted (a bounded
# number of audit rows), not written one by one; other officers keep their own budget.
# Usage: officer_budget.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/officer_lib.sh"

officer_setup
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
refused=$(grep -c '^503$' "$WORK/alice.codes" || true)
# 20 at once, and one more each 3 s the loop may have taken under a loaded ASan build
check "60 reads at once: at most the budget (20, and a refill) are served" test "$served" -ge 20 -a "$served" -le 24
check_eq "the others are refused with 503" 60 "$((served + refused))"
check_eq "only the served reads are audit entries of their own" "$served" "$(($(entries alice) - before))"
body=$(curl -s --max-time 20 --cacert "$CA/ops-root.pem" --cert "$WORK/alice.pem" --key "$WORK/alice.key" \
  "https://localhost:$PORT/officer/api/me")
check "a refusal says why, in the API's JSON" grep -q '"status":503,"error":"over officer.requests_per_minute (20): ask again later"' <<<"$body"
check_eq "another officer keeps a budget of its own" 20 "$(reads bob 20 | grep -c '^200$' || true)"
cleanup_server # the counted refusals are written at stop
check "alice's refusals are one counted audit entry" test "$(sql "$DB" "select count(*) from audit where actor='officer:alice' and action='officer.budget' and detail like '% refused from %'")" -ge 1
check "the audit chain verifies" "$CA_BIN" audit verify --dir "$CA"
finish
