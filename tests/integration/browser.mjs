// What the browser tests share: Debian's Chromium under Playwright (playwright-core from NODE_DIR) with an
// officer's client certificate, and one-line checks. Environment: URL, CERT, KEY, CHROMIUM, NODE_DIR.
import { pathToFileURL } from 'node:url';
import path from 'node:path';

export const STEP_MS = 10000;

export function checker() {
  const c = { failed: false };
  c.check = (what, ok, got) => {
    console.log(`${ok ? 'ok' : 'not ok'} - ${what}${ok ? '' : ` (got ${JSON.stringify(got)})`}`);
    if (!ok) c.failed = true;
    return ok;
  };
  return c;
}

// The browser and a context that presents the officer's certificate to env.URL.
export async function launch(env) {
  const { chromium } = await import(pathToFileURL(path.join(env.NODE_DIR, 'node_modules/playwright-core/index.mjs')));
  const browser = await chromium.launch({
    executablePath: env.CHROMIUM,
    headless: true,
    timeout: 20000,
    // What runs here as root on a closed network (see shared notes): no sandbox, no GPU, no background traffic.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({
    clientCertificates: [{ origin: env.URL, certPath: env.CERT, keyPath: env.KEY }],
    ignoreHTTPSErrors: true, // the CA's TLS certificate chains to ops-root.pem, which this browser does not trust
    viewport: { width: 1400, height: 1000 },
  });
  return { browser, context };
}

// One browser session: fn(context, check) with the officer's context; whatever it throws is one failed check. Prints
// "all browser checks passed" at the end, or exits non-zero.
export async function session(env, fn) {
  const c = checker();
  const { browser, context } = await launch(env);
  try {
    await fn(context, c.check);
  } catch (e) {
    c.check('the browser session ran to the end', false, String(e && e.message ? e.message.split('\n')[0] : e));
  } finally {
    await browser.close();
  }
  if (c.failed) process.exit(1);
  console.log('all browser checks passed');
}
