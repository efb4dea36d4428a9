#!/usr/bin/env bash
# Another site's page in the officer's browser (Chromium, as console.sh): it cannot tell an officer from anyone by
# loading the console's script or style sheet, nor keep a handle on a console it opened to reload it (each load four
# budgeted, audited reads). Skips (exit 77) only when Chromium cannot start here, saying why.
# Usage: console_xsite.sh PATH/TO/camtrust-ca
CA_BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/officer_lib.sh"
. "$HERE/browser_lib.sh"
browser_setup || { echo "SKIP: $BROWSER_WHY"; exit 77; }
officer_setup

rc=0
URL="https://localhost:$PORT" CERT="$WORK/bob.pem" KEY="$WORK/bob.key" CHROMIUM="$CHROMIUM" NODE_DIR="$NODE_DIR" \
  bounded 60 node "$HERE/console_xsite.mjs" >"$WORK/browser.log" 2>&1 || rc=$?
sed 's/^/  browser: /' "$WORK/browser.log"
check_eq "the browser run finished within 60 s and every check in it passed" 0 "$rc"
check "it played both attacks" grep -q '^all browser checks passed' "$WORK/browser.log"
check_eq "the console's one load searched once, as officer:bob" 1 \
  "$(sql "$DB" "select count(*) from audit where actor = 'officer:bob' and action = 'officer.search' and outcome = 'ok'")"
kill -TERM "$SERVER_PID"; rc=0; wait "$SERVER_PID" || rc=$?; SERVER_PID=
check_eq "SIGTERM stops the server cleanly" 0 "$rc"
check_eq "the two loads of its files by the other site: counted as officer.csrf (written at stop)" 1 \
  "$(sql "$DB" "select count(*) from audit where action = 'officer.csrf' and actor = 'officer:bob' and detail like '2 refused from %: cross-origin request refused (Sec-Fetch-Site: cross-site)'")"
finish
