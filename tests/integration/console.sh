#!/usr/bin/env bash
# The officer web console in a real browser: Debian's headless Chromium driven by Playwright (playwright-core
# from npm, launched on /usr/bin/chromium) with an officer's client certificate over mutual TLS. It searches
# for a camera, opens its certificate, revokes it through the typed confirmation, checks what the page shows,
# and takes a screenshot. Skips (exit 77) only when Chromium cannot start here, saying why.
# Usage: console.sh PATH/TO/camtrust-ca
CA_BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/officer_lib.sh"

. "$HERE/browser_lib.sh"
skip() { echo "SKIP: $*"; exit 77; }
browser_setup || skip "$BROWSER_WHY"

officer_setup
SERIAL=$(cert_serial CAM0002)
# A station that tries the console three times: refused, and listed among the denials the page shows.
for _ in 1 2 3; do
  code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA/ops-root.pem" --cert "$WORK/line1.pem" --key "$WORK/line1.key" \
    "https://localhost:$PORT/console/" || true)
  check_eq "a station's certificate does not open the console" 403 "$code"
done
# Refusals at the officer door are counted and written at the interval or when the server stops: restart it, so
# that the page lists this one.
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=
start_ca "$CA"
check_eq "the audit's only denial: one counted entry of the three refusals" "1 station:line1" \
  "$(sql "$DB" "select count(*) from audit where outcome='denied'") $(sql "$DB" "select actor from audit where outcome='denied' and detail like '3 refused from %'")"
check_eq "the camera to revoke has a valid certificate" valid "$(sql "$DB" "select status from certificates where cert_serial_hex='$SERIAL'")"

# Kept after the run (the work folder is removed): look at it.
SHOT=${CAMTRUST_TEST_TMP:-/tmp}/console-screenshot.png
rm -f "$SHOT"
rc=0
URL="https://localhost:$PORT" CERT="$WORK/bob.pem" KEY="$WORK/bob.key" DEVICE=CAM0002 SERIAL="$SERIAL" SHOT="$SHOT" \
  CHROMIUM="$CHROMIUM" NODE_DIR="$NODE_DIR" PROFILE="$WORK/profile" \
  bounded 60 node "$HERE/console.mjs" >"$WORK/browser.log" 2>&1 || rc=$?
sed 's/^/  browser: /' "$WORK/browser.log"
check_eq "the browser run finished within 60 s and every check in it passed" 0 "$rc"
check "it saw the search, the detail, the confirmation and the revoked status" grep -q '^all browser checks passed' "$WORK/browser.log"
check_eq "the revocation the browser asked for is recorded, as officer:bob" "revoked|1" \
  "$(sql "$DB" "select c.status, (select count(*) from audit where actor='officer:bob' and action='cert.revoke' and subject='$SERIAL' and outcome='ok') from certificates c where cert_serial_hex='$SERIAL'")"
check_eq "... and only that one" 1 "$(sql "$DB" "select count(*) from certificates where status='revoked'")"
check "a screenshot was taken" test -s "$SHOT"
check "... as a PNG" bash -c "head -c 8 '$SHOT' | od -An -tx1 | tr -d ' \n' | grep -q '^89504e470d0a1a0a'"
echo "screenshot: $SHOT"
kill -TERM "$SERVER_PID"; rc=0; wait "$SERVER_PID" || rc=$?; SERVER_PID=
check_eq "SIGTERM stops the server cleanly" 0 "$rc"
[ "$rc" = 0 ] || tail -40 "$WORK/server.log"
check_eq "another site's form post in the same browser revoked nothing, and was counted as officer.csrf (written at stop)" 1 \
  "$(sql "$DB" "select count(*) from audit where action='officer.csrf' and actor='officer:bob' and outcome='denied' and detail like '1 refused from %: cross-origin request refused%'")"
finish
