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

PLAYWRIGHT_VERSION=1.65.1
CHROMIUM=/usr/bin/chromium
skip() { echo "SKIP: $*"; exit 77; }

# The test's own packages: Debian's chromium, and playwright-core in a folder of this build (kept between runs).
if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = 0 ]; then "$HERE/../../deploy/install-deps" test >/dev/null || true; fi
  [ -x "$CHROMIUM" ] || skip "$CHROMIUM is not installed (deploy/install-deps test installs Debian's chromium)"
fi
probe=$(timeout 30 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$WORK/probe-profile" \
  --dump-dom 'data:text/html,<p>chromium-starts</p>' 2>&1) || true
grep -q chromium-starts <<<"$probe" || skip "chromium cannot start headless here: $(tail -3 <<<"$probe")"
command -v node >/dev/null && command -v npm >/dev/null || { echo "node and npm are needed (Debian: nodejs, npm)"; exit 1; }
NODE_DIR=${CAMTRUST_TEST_TMP:-/tmp}/console-node
if [ ! -f "$NODE_DIR/node_modules/playwright-core/package.json" ] ||
   ! grep -q "\"version\": \"$PLAYWRIGHT_VERSION\"" "$NODE_DIR/node_modules/playwright-core/package.json"; then
  mkdir -p "$NODE_DIR"
  # playwright-core downloads no browser: it drives the Debian one.
  (cd "$NODE_DIR" && timeout 120 npm install --no-audit --no-fund --loglevel=error "playwright-core@$PLAYWRIGHT_VERSION") \
    >"$WORK/npm.log" 2>&1 || { echo "npm install playwright-core failed:"; tail -20 "$WORK/npm.log"; exit 1; }
fi

officer_setup
SERIAL=$(cert_serial CAM0002)
# A station that tries the console: refused, and listed among the denials the page shows.
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA/ops-root.pem" --cert "$WORK/line1.pem" --key "$WORK/line1.key" \
  "https://localhost:$PORT/console/" || true)
check_eq "a station's certificate does not open the console" 403 "$code"
check_eq "the camera to revoke has a valid certificate" valid "$(sql "$DB" "select status from certificates where cert_serial_hex='$SERIAL'")"

# Kept after the run (the work folder is removed): look at it.
SHOT=${CAMTRUST_TEST_TMP:-/tmp}/console-screenshot.png
rm -f "$SHOT"
rc=0
URL="https://localhost:$PORT" CERT="$WORK/bob.pem" KEY="$WORK/bob.key" DEVICE=CAM0002 SERIAL="$SERIAL" SHOT="$SHOT" \
  CHROMIUM="$CHROMIUM" NODE_DIR="$NODE_DIR" PROFILE="$WORK/profile" \
  timeout 60 node "$HERE/console.mjs" >"$WORK/browser.log" 2>&1 || rc=$?
sed 's/^/  browser: /' "$WORK/browser.log"
check_eq "the browser run finished within 60 s and every check in it passed" 0 "$rc"
check "it saw the search, the detail, the confirmation and the revoked status" grep -q '^all browser checks passed' "$WORK/browser.log"
check_eq "the revocation the browser asked for is recorded, as officer:bob" "revoked|1" \
  "$(sql "$DB" "select c.status, (select count(*) from audit where actor='officer:bob' and action='cert.revoke' and subject='$SERIAL' and outcome='ok') from certificates c where cert_serial_hex='$SERIAL'")"
check_eq "... and only that one" 1 "$(sql "$DB" "select count(*) from certificates where status='revoked'")"
check_eq "another site's form post in the same browser revoked nothing, and was audited as officer.csrf" 1 \
  "$(sql "$DB" "select count(*) from audit where action='officer.csrf' and actor='officer:bob' and outcome='denied' and detail like 'cross-origin request refused%'")"
check "a screenshot was taken" test -s "$SHOT"
check "... as a PNG" bash -c "head -c 8 '$SHOT' | od -An -tx1 | tr -d ' \n' | grep -q '^89504e470d0a1a0a'"
echo "screenshot: $SHOT"
kill -TERM "$SERVER_PID"; rc=0; wait "$SERVER_PID" || rc=$?; SERVER_PID=
check_eq "SIGTERM stops the server cleanly" 0 "$rc"
[ "$rc" = 0 ] || tail -40 "$WORK/server.log"
finish
