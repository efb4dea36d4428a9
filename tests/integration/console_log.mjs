// The officer console's issuance-log view after a witness reported a fork (witness.sh): the reporting witness is
// flagged, a configured witness that never cosigned is flagged as such, the report is listed. Environment as
// browser.mjs, and SHOT (screenshot path). Prints one line per check; exits non-zero if any failed.
import { session, STEP_MS } from './browser.mjs';

const env = process.env;
await session(env, async (context, check) => {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  const res = await page.goto(env.URL + '/console/');
  check('the console loads (200)', res && res.status() === 200, res && res.status());
  await page.waitForSelector('body[data-ready="yes"]');
  const summary = await page.textContent('#cp-summary');
  check('the newest checkpoint: 5 certificates, and its age', /#\d+: 5 certificates, .* ago\)/.test(summary), summary);
  const [ok, witnessed] = await page.$eval('#cp-witnessed', (e) => [e.dataset.ok, e.textContent]);
  check('the newest checkpoint is flagged: fewer witnesses than required', ok === 'false' &&
    /Cosigned by [01] of the 2 witnesses required: NOT WITNESSED/.test(witnessed), witnessed);
  const flag = (name) => page.$eval(`#witnesses tr[data-witness="${name}"]`, (tr) => [tr.dataset.flag, tr.textContent]);
  const [f1, t1] = await flag('witness.example.org/w1');
  check('w1 is flagged: it reported an inconsistency', f1 === 'reported' && t1.includes('reported 1 inconsistency'), t1);
  const [f2, t2] = await flag('witness.example.org/w2');
  check('w2 is flagged: configured, never cosigned', f2 === 'stale' && t2.includes('never cosigned'), t2);
  const rows = await page.$$eval('#log-reports tbody tr[data-kind]', (trs) => trs.map((tr) => tr.textContent));
  check('the fork report is listed: w1, sizes 4 → 5, the reason', rows.length >= 1 &&
    rows.some((r) => r.includes('witness.example.org/w1') && r.includes('4 → 5') && r.includes('does not extend')), rows);
  if (env.SHOT) await page.screenshot({ path: env.SHOT, fullPage: true });
});
