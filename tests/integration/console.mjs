// Drives the officer console in Debian's Chromium with Playwright and an officer's client certificate.
// Environment: URL, CERT, KEY (the officer's PEM files), DEVICE and SERIAL (the camera and its certificate to
// revoke), SHOT (screenshot path), CHROMIUM, NODE_DIR (where playwright-core is installed), PROFILE.
// Prints one line per check; exits non-zero at the first failure.
import { session, STEP_MS } from './browser.mjs';

const env = process.env;
const problems = [];
await session(env, async (context, check) => {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console error: ' + m.text()); });

  const res = await page.goto(env.URL + '/console/');
  check('the console loads over mutual TLS (200)', res && res.status() === 200, res && res.status());
  check('... with a Content-Security-Policy', (res.headers()['content-security-policy'] || '').includes("default-src 'self'"),
    res.headers()['content-security-policy']);
  await page.waitForSelector('body[data-ready="yes"]');
  check('it names the officer and the role', (await page.textContent('#who')) === 'bobofficer', await page.textContent('#who'));

  // Search for one camera.
  await page.fill('#f-device-serial', env.DEVICE);
  await page.click('#search-btn');
  await page.waitForFunction(() => document.querySelector('#search-summary').textContent.includes('of 1 '));
  const rows = await page.$$eval('#results tbody tr[data-serial]', (trs) => trs.map((tr) => tr.dataset.serial));
  check('the search finds exactly its certificate', rows.length === 1 && rows[0] === env.SERIAL, rows);

  // Its detail.
  await page.click(`#results tbody tr[data-serial="${env.SERIAL}"]`);
  await page.waitForSelector('#detail-view:not([hidden])');
  check('the detail shows the certificate serial', (await page.textContent('#d-serial')) === env.SERIAL,
    await page.textContent('#d-serial'));
  check('... its status: valid', (await page.textContent('#d-status')) === 'valid', await page.textContent('#d-status'));
  const fields = await page.textContent('#d-fields');
  for (const want of [env.DEVICE, 'digitalSignature', 'serverAuth, clientAuth', 'EC P-256', 'verified', 'leaf '])
    check(`... and the decoded field "${want}"`, fields.includes(want), fields.slice(0, 200));
  check('... and the chain as PEM', ((await page.textContent('#d-pem')).match(/BEGIN CERTIFICATE/g) || []).length === 3);

  // Another site's page, open in the same browser, posts the form that once revoked a whole station: the browser
  // presents the officer's certificate, says where the request comes from, and the server refuses it.
  await context.route('https://evil.example/**', (route) => route.fulfill({ contentType: 'text/html', body:
    `<form id="f" method="POST" action="${env.URL}/officer/api/revoke"><input name="station" value="line1">` +
    '<input name="reason" value="keyCompromise"></form>' }));
  const evil = await context.newPage();
  await evil.goto('https://evil.example/');
  const [attack] = await Promise.all([
    evil.waitForResponse((r) => r.url().endsWith('/officer/api/revoke')),
    evil.evaluate(() => document.getElementById('f').submit()),
  ]);
  const refusal = await attack.text();
  check("another site's form post is refused (403)", attack.status() === 403, attack.status());
  check('... as cross-origin', refusal.includes('cross-origin request refused'), refusal.slice(0, 120));
  await evil.close();

  // Revoke, through the typed confirmation.
  await page.click('#revoke-open');
  await page.waitForSelector('#revoke-dialog[open]');
  check('the confirmation names the certificate', (await page.textContent('#r-serial')) === env.SERIAL);
  check('... and will not revoke before the serial is typed', await page.isDisabled('#r-submit'));
  await page.fill('#r-confirm', 'not-the-serial');
  check('... nor with a wrong one', await page.isDisabled('#r-submit'));
  await page.fill('#r-confirm', env.SERIAL.toUpperCase());
  check('... but with the serial typed (any case)', await page.isEnabled('#r-submit'));
  await page.selectOption('#r-reason', 'keyCompromise');
  await page.click('#r-submit');
  await page.waitForFunction(() => document.querySelector('#d-status').textContent === 'revoked');
  check('after revoking, the detail says revoked', (await page.textContent('#d-status')) === 'revoked');
  check('... with its reason', (await page.textContent('#d-fields')).includes('keyCompromise'));
  check('... the dialog is closed', !(await page.isVisible('#revoke-dialog')));
  check('... a message says so', (await page.textContent('#message')).includes('Revoked 1 certificate'),
    await page.textContent('#message'));
  check('... the revoke button is gone', !(await page.isVisible('#revoke-open')));
  await page.waitForFunction(() => document.querySelector('#results tbody .badge').textContent === 'revoked');
  check('the result row says revoked too', true);

  // The issuance log: its newest checkpoint (no witness is configured here).
  check('the log view names the newest checkpoint', /^Newest checkpoint #\d+: \d+ certificates/.test(
    await page.textContent('#cp-summary')), await page.textContent('#cp-summary'));

  // The report.
  await page.waitForFunction(() => document.querySelector('#revocations tbody').textContent.includes('officer:bob'));
  const totals = await page.textContent('#totals');
  check('the report totals: 7 issued, 1 revoked', totals.includes('7certificates issued') && totals.includes('1revoked'), totals);
  check('... and the three refused requests of the one counted entry', totals.includes('3denied requests in 1 audit entry'), totals);
  const bars = await page.$$eval('#chart svg rect', (r) => r.length);
  check('the issuance chart draws bars and a legend for both stations', bars >= 4, bars);
  const legend = await page.$$eval('#chart svg text', (t) => t.map((x) => x.textContent));
  check('... naming line1 and line2', legend.includes('line1') && legend.includes('line2'), legend);
  check('the revocation is listed as officer:bob', (await page.textContent('#revocations')).includes('cert.revoke'));
  const denials = await page.textContent('#denials');
  check("the station's refused visit is among the denials", denials.includes('station:line1') &&
    denials.includes('stations cannot read'), denials.slice(0, 200));
  const requests = await page.$$eval('#denials tbody tr', (rows) => rows.map((r) => r.lastElementChild.textContent));
  check('... with the three requests its entry holds', requests.length === 1 && requests[0] === '3', requests);
  const line1 = await page.$$eval('#stations tbody tr', (rows) => rows.filter((r) => r.cells[0].textContent === 'line1')
    .map((r) => r.lastElementChild.textContent));
  check("... and on line1's row, three denied requests", line1.length === 1 && line1[0] === '3', line1);

  await page.screenshot({ path: env.SHOT, fullPage: true });
  check('screenshot written', true);
  check('no script or CSP errors on the page', problems.length === 0, problems);
});
