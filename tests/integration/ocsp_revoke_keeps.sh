#!/usr/bin/env bash
# A revocation of one camera costs the other cameras behind one address (a NAT) no signature: their kept OCSP answers
# are checked again (one look-up of each certificate's status) and sent as kept, while the revoked camera is answered
# revoked at once. Any revocation (the database's revocation epoch moved, by this node or another) dropped every kept
# answer: each camera behind the address then needed a signature from the address's budget
# (ocsp.signatures_per_minute) and most got tryLater, the revoked one too. Played here: 5 cameras whose answers are
# kept (each asked for once from its own address), asked for again from one address with a budget of 2; CAM0006
# revoked by the CLI (another process: the server learns of it by the epoch alone), then CAM0005. And the bound: one
# look-up per kept answer per revocation, whoever asks (a check held under way while the same camera asks again). A
# camera revoked while its kept answer's check is under way (held after its look-up, the node reading the epoch
# meanwhile): the answer is marked checked for the revocation the check began in, so it is checked again and answered
# revoked (marked for the newest, its kept 'good' was sent). On PostgreSQL, a check that cannot read the database
# (stopped while the check is held) sends no kept answer: the revoked camera's kept 'good' is not sent unchecked.
# Usage: ocsp_revoke_keeps.sh PATH/TO/camtrust-ca
CA_BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
CA=$WORK/ca
BUDGET=2 # one more every 30 s
NAT=127.0.0.50
ca_create "$CA" >/dev/null
sed -i "s/^ocsp.signatures_per_minute = .*/ocsp.signatures_per_minute = $BUDGET/" "$CA/camtrust-ca.conf"
station_with_order line1 CAM0001 CAM0002 CAM0003 CAM0004 CAM0005 CAM0006
WITH_HTTP=1 start_ca "$CA"
for i in 1 2 3 4 5 6; do
  s=CAM000$i
  make_csr "$WORK/$s" "/serialNumber=$s/CN=x"
  est_post simpleenroll "$WORK/$s.b64" "$WORK/$s.p7b64" --cert "$WORK/station.pem" --key "$WORK/station.key" >/dev/null
  base64 -d "$WORK/$s.p7b64" | openssl pkcs7 -inform DER -print_certs -out "$WORK/$s.pem" 2>/dev/null || true
  openssl ocsp -issuer "$CA/device-issuing.pem" -cert "$WORK/$s.pem" -no_nonce -reqout "$WORK/$s.req" >/dev/null 2>&1
done
# ask SOURCE CAM OUT: CAM's request (no nonce) POSTed from SOURCE with curl, the answer's body to OUT
ask() {
  bounded 60 curl -s -o "$3" --interface "$1" -H 'Content-Type: application/ocsp-request' \
    --data-binary @"$WORK/$2.req" "http://127.0.0.1:$HTTP_PORT/ocsp" || true
}
# status_of ANSWER CAM: CAM's status in the answer as openssl reads it, verified against the responder chain, with
# its reason when revoked; else 'tryLater' or what openssl said first
status_of() {
  local out
  out=$(openssl ocsp -respin "$1" -issuer "$CA/device-issuing.pem" -cert "$WORK/$2.pem" -CAfile "$CA/root.pem" \
    -no_nonce 2>&1 || true)
  if grep -qi trylater <<<"$out"; then echo tryLater; return; fi
  grep -q '^Response verify OK' <<<"$out" || { echo "unverified: $(head -1 <<<"$out")"; return; }
  sed -n "s|^$WORK/$2.pem: ||p" <<<"$out"
  sed -n 's/^[[:space:]]*Reason: //p' <<<"$out"
}
# results CAM PATTERN: how many OCSP answers for CAM to the NAT's address the server's log gives a result matching
# PATTERN (the whole result: a signed answer's ends with its serial, a kept one's with "pre-signed...")
results() {
  grep -c "path=\"/ocsp\" status=200 client=\"none\" result=\"$2\" .*addr=\"$NAT\"" "$WORK/server.log" || true
}
serial_of() { openssl x509 -in "$WORK/$1.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }
# revoke CAM: by the CLI, another process; then past CA_REVOCATION_POLL_MS (50 ms), so that the next request reads the
# new epoch itself
revoke() {
  check "the CLI revokes $1 (keyCompromise)" bounded 60 "$CA_BIN" revoke --dir "$CA" "$(serial_of "$1")" \
    --reason keyCompromise
  sleep 0.2
}
# restart_held POINT CAM SOURCE: the server started again, each kept answer's check held at the failpoint POINT until
# the file $WORK/release.POINT exists; CAM's answer then signed and kept anew (asked from SOURCE, into kept.CAM)
restart_held() {
  cleanup_server
  rm -f "$WORK/release.$1" # (a section before may have let it go)
  export CAMTRUST_FAILPOINT=$1 CAMTRUST_FAILPOINT_RELEASE=$WORK/release.$1
  WITH_HTTP=1 start_ca "$CA"
  unset CAMTRUST_FAILPOINT CAMTRUST_FAILPOINT_RELEASE
  ask "$3" "$2" "$WORK/kept.$2"
  check_eq "$2's answer signed and kept anew (a new process)" good "$(status_of "$WORK/kept.$2" "$2")"
}
# held POINT: how many checks the failpoint POINT held (each logged)
held() { grep -c "event=failpoint_held point=\"$1\"" "$WORK/server.log" || true; }
# ask_held POINT CAM OUT: CAM asked from the NAT's address in the background (HELD_PID), until its check is held
ask_held() {
  ask $NAT "$2" "$3" &
  HELD_PID=$!; BG_PIDS+=("$HELD_PID")
  for _ in $(seq 1 200); do [ "$(held "$1")" -ge 1 ] && break; sleep 0.05; done
}

# ---- each camera's answer signed once and kept: asked for from its own address (its own budget) ----
for i in 1 2 3 4 5 6; do ask 127.0.0.1$i CAM000$i "$WORK/own$i"; done
for i in 1 2 3 4 5 6; do
  check_eq "CAM000$i, asked from its own address: good" good "$(status_of "$WORK/own$i" CAM000$i)"
done
# ... then from the NAT's address: the kept answers, no signature
for i in 1 2 3 4 5 6; do ask $NAT CAM000$i "$WORK/before$i"; done
same=0
for i in 1 2 3 4 5 6; do cmp -s "$WORK/own$i" "$WORK/before$i" && same=$((same + 1)); done
check_eq "the 6 cameras behind $NAT get their kept answers (the same bytes)" 6 "$same"
signed=0
for i in 1 2 3 4 5 6; do signed=$((signed + $(results "$(serial_of CAM000$i)" "good serial=$(serial_of CAM000$i)"))); done
check_eq "... as the log says: none signed for $NAT (its budget of $BUDGET whole)" 0 "$signed"

# ---- CAM0006 revoked: the 5 others still get their kept answers, CAM0006 is answered revoked ----
revoke CAM0006
for i in 1 2 3 4 5; do ask $NAT CAM000$i "$WORK/after$i"; done
for i in 1 2 3 4 5; do
  check_eq "after CAM0006's revocation, CAM000$i behind $NAT: good (was tryLater past the budget)" good \
    "$(status_of "$WORK/after$i" CAM000$i)"
  check "... the kept answer, the same bytes (no new signature)" cmp -s "$WORK/own$i" "$WORK/after$i"
  s=$(serial_of CAM000$i)
  check_eq "... as the log says: its status looked up again, once, the answer sent as kept" "1 0" \
    "$(results "$s" "good serial=$s pre-signed, status looked up again") $(results "$s" "good serial=$s")"
done
ask $NAT CAM0006 "$WORK/revoked1"
check_eq "CAM0006 behind $NAT: revoked (keyCompromise) at once, not its kept good nor tryLater" \
  "$(printf 'revoked\nkeyCompromise')" "$(status_of "$WORK/revoked1" CAM0006)"
check_eq "... signed anew for it (within $NAT's budget)" 1 "$(results "$(serial_of CAM0006)" "revoked serial=$(serial_of CAM0006)")"
# Asked again: current since their look-up, sent as kept without another one.
for i in 1 2 3 4 5; do ask $NAT CAM000$i "$WORK/again$i"; done
ask $NAT CAM0006 "$WORK/revoked2"
same=0
for i in 1 2 3 4 5; do cmp -s "$WORK/own$i" "$WORK/again$i" && same=$((same + 1)); done
check_eq "asked again, the 5 get the same kept answers" 5 "$same"
looked=0
for i in 1 2 3 4 5; do
  s=$(serial_of CAM000$i); looked=$((looked + $(results "$s" "good serial=$s pre-signed, status looked up again")))
done
check_eq "... with no further look-up (one per kept answer per revocation)" 5 "$looked"
check_eq "CAM0006 asked again: revoked" revoked "$(status_of "$WORK/revoked2" CAM0006 | head -1)"
check "... its answer kept too (the same bytes)" cmp -s "$WORK/revoked1" "$WORK/revoked2"

# ---- CAM0005 revoked as well: CAM0005 revoked at once, the others (CAM0006's revoked answer too) kept ----
revoke CAM0005
ask $NAT CAM0005 "$WORK/revoked5"
check_eq "CAM0005 behind $NAT: revoked at once, not its kept good" "$(printf 'revoked\nkeyCompromise')" \
  "$(status_of "$WORK/revoked5" CAM0005)"
ask $NAT CAM0006 "$WORK/revoked3"
check_eq "CAM0006 asked again: revoked" revoked "$(status_of "$WORK/revoked3" CAM0006 | head -1)"
check "... its kept answer, checked again, sent as kept (the same bytes)" cmp -s "$WORK/revoked1" "$WORK/revoked3"
for i in 1 2 3 4; do ask $NAT CAM000$i "$WORK/second$i"; done
same=0
for i in 1 2 3 4; do cmp -s "$WORK/own$i" "$WORK/second$i" && same=$((same + 1)); done
check_eq "CAM0001-CAM0004 behind $NAT get their kept answers again (the same bytes)" 4 "$same"
check_eq "in all, 2 answers signed for $NAT: the 2 revoked ones (no tryLater)" "2 0" \
  "$(grep -c "path=\"/ocsp\" status=200 client=\"none\" result=\"[a-z]* serial=[0-9a-f]*\" .*addr=\"$NAT\"" \
    "$WORK/server.log" || true) $(grep -c "result=\"tryLater.*addr=\"$NAT\"" "$WORK/server.log" || true)"

# ---- one look-up per kept answer per revocation, whoever asks: the check held under way (failpoint ocsp:recheck,
# logged at each check), the same camera asks again meanwhile from the NAT's address, its budget spent ----
restart_held ocsp:recheck CAM0001 127.0.0.11
checks() { held ocsp:recheck; }
revoke CAM0004
ask_held ocsp:recheck CAM0001 "$WORK/held"
check_eq "after CAM0004's revocation CAM0001's kept answer is being checked (held there)" 1 "$(checks)"
# Meanwhile the NAT's budget is spent (nonce requests, signed each), and CAM0001 asks again 3 times.
openssl ocsp -issuer "$CA/device-issuing.pem" -cert "$WORK/CAM0002.pem" -reqout "$WORK/nonce.req" >/dev/null 2>&1
T0=$(date +%s)
for _ in $(seq 1 $BUDGET); do ask $NAT nonce "$WORK/spend"; done
for i in 1 2 3; do ask $NAT CAM0001 "$WORK/meanwhile$i"; done
REFILL=$((($(date +%s) - T0 + 1) * BUDGET / 60)) # the budget grows by one every 30 s: 0 unless this machine is slow
later=0
for i in 1 2 3; do if [ "$(status_of "$WORK/meanwhile$i" CAM0001)" = tryLater ]; then later=$((later + 1)); fi; done
check "CAM0001 asks again meanwhile: tryLater past the budget ($later of 3), not the kept answer unchecked" \
  test "$later" -ge $((3 - REFILL))
S1=$(serial_of CAM0001)
check_eq "... as the log says: no answer for it sent as kept while its check is under way" 0 \
  "$(grep -c "result=\"good serial=$S1 pre-signed" "$WORK/server.log" || true)"
check_eq "... and no other look-up of its status" 1 "$(checks)"
touch "$WORK/release.ocsp:recheck"
wait "$HELD_PID" || true
check_eq "the check done, the held request gets the kept answer: good" good "$(status_of "$WORK/held" CAM0001)"
check "... the same bytes" cmp -s "$WORK/kept.CAM0001" "$WORK/held"
ask $NAT CAM0001 "$WORK/after_check"
check "CAM0001 asks again: the kept answer (the same bytes)" cmp -s "$WORK/kept.CAM0001" "$WORK/after_check"
check_eq "... with no other look-up: one for this revocation" 1 "$(checks)"

# ---- a revocation read while a check is under way (its look-up done, the answer not yet marked checked): the mark
# is for the revocation the check began in, so the revoked camera's kept good is checked again, not sent ----
restart_held ocsp:recheck-looked-up CAM0003 127.0.0.13
revoke CAM0001
ask_held ocsp:recheck-looked-up CAM0003 "$WORK/marking"
check_eq "after CAM0001's revocation CAM0003's kept answer is checked (held after its look-up: good)" 1 \
  "$(held ocsp:recheck-looked-up)"
revoke CAM0003
ask 127.0.0.16 CAM0006 "$WORK/reader" # a request of another camera: the node reads the epoch that revoked CAM0003
check_eq "... meanwhile CAM0003 revoked, and another camera answered: the node has read the epoch that revoked it" revoked \
  "$(status_of "$WORK/reader" CAM0006 | head -1)"
touch "$WORK/release.ocsp:recheck-looked-up"
wait "$HELD_PID" || true
check_eq "the held check ends: its answer as looked up before the revocation (good)" good \
  "$(status_of "$WORK/marking" CAM0003)"
ask $NAT CAM0003 "$WORK/marked"
check_eq "CAM0003 asks again: revoked, not its kept good marked checked after the node read its revocation" \
  "$(printf 'revoked\nkeyCompromise')" "$(status_of "$WORK/marked" CAM0003)"

# ---- a check that cannot read the database sends nothing kept (PostgreSQL: stopped while the check is held): the
# revoked camera's kept 'good' is not sent unchecked, to an address past its budget either ----
if ! on_sqlite; then
  restart_held ocsp:recheck CAM0002 127.0.0.12
  revoke CAM0002
  for _ in $(seq 1 $BUDGET); do ask $NAT nonce "$WORK/spend_down"; done # the NAT's budget spent
  ask_held ocsp:recheck CAM0002 "$WORK/down"
  check_eq "after CAM0002's revocation its kept answer is being checked (held there)" 1 "$(checks)"
  "$CAMTRUST_TEST_PG_CTL" stop
  touch "$WORK/release.ocsp:recheck"
  wait "$HELD_PID" || true
  "$CAMTRUST_TEST_PG_CTL" start
  down=$(status_of "$WORK/down" CAM0002 | sed -n 1p)
  check "PostgreSQL stopped under the check: CAM0002 behind $NAT is not sent its kept good ($down)" \
    test -n "$down" -a "$down" != good
  S2=$(serial_of CAM0002)
  check_eq "... as the log says: no answer for it sent as kept" 0 \
    "$(grep -c "result=\"good serial=$S2 pre-signed" "$WORK/server.log" || true)"
  # (asked until answered, each time from another address: the node's first reads after the restart may fail)
  for i in $(seq 21 40); do
    ask 127.0.0.$i CAM0002 "$WORK/up2"
    up=$(status_of "$WORK/up2" CAM0002 | sed -n 1p)
    [ "$up" = revoked ] || [ "$up" = good ] && break
    sleep 0.2
  done
  check_eq "PostgreSQL back: CAM0002 asked from another address is revoked" revoked "$up"
fi
cleanup_server
check "the audit chain is intact" "$CA_BIN" audit verify --dir "$CA"
finish
