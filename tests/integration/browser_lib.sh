# The browser tests' own packages (sourced after lib.sh): Debian's chromium, and playwright-core in a folder of
# this build (kept between runs; it downloads no browser: it drives the Debian one). browser_setup sets CHROMIUM and
# NODE_DIR, or returns 1 with the reason in BROWSER_WHY when Chromium cannot run here (the caller skips).
PLAYWRIGHT_VERSION=1.65.1
CHROMIUM=/usr/bin/chromium
NODE_DIR=${CAMTRUST_TEST_TMP:-/tmp}/console-node

browser_setup() {
  local here probe lock
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  if [ ! -x "$CHROMIUM" ]; then
    if [ "$(id -u)" = 0 ]; then "$here/../../deploy/install-deps" test >/dev/null || true; fi
    [ -x "$CHROMIUM" ] || { BROWSER_WHY="$CHROMIUM is not installed (deploy/install-deps test installs Debian's chromium)"; return 1; }
  fi
  probe=$(bounded 30 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$WORK/probe-profile" \
    --dump-dom 'data:text/html,<p>chromium-starts</p>' 2>&1) || true
  grep -q chromium-starts <<<"$probe" || { BROWSER_WHY="chromium cannot start headless here: $(tail -3 <<<"$probe")"; return 1; }
  command -v node >/dev/null && command -v npm >/dev/null || { echo "node and npm are needed (Debian: nodejs, npm)"; exit 1; }
  mkdir -p "$NODE_DIR"
  # (two browser tests run at once (ctest -j) install into the one folder: one after the other)
  exec {lock}>"$NODE_DIR/.install.lock"
  flock "$lock"
  if [ ! -f "$NODE_DIR/node_modules/playwright-core/package.json" ] ||
     ! grep -q "\"version\": \"$PLAYWRIGHT_VERSION\"" "$NODE_DIR/node_modules/playwright-core/package.json"; then
    (cd "$NODE_DIR" && bounded 120 npm install --no-audit --no-fund --loglevel=error "playwright-core@$PLAYWRIGHT_VERSION") \
      >"$WORK/npm.log" 2>&1 || { echo "npm install playwright-core failed:"; tail -20 "$WORK/npm.log"; exit 1; }
  fi
  exec {lock}>&-
}
