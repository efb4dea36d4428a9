// Another site's page in the officer's browser, with the officer's certificate, tries what needs no request of
// its own to succeed: loading the console's script or style sheet (loaded: the visitor is an officer of this CA),
// and keeping a handle on a console it opened (to reload it at will: four budgeted, audited reads a load, until the
// officer's own console is refused, 429). Environment: as console.mjs (URL, CERT, KEY, CHROMIUM, NODE_DIR).
// Prints one line per check; exits non-zero if any failed.
import { session, STEP_MS } from './browser.mjs';

const env = process.env;
await session(env, async (context, check) => {
  const mes = [];
  context.on('request', (r) => { if (r.url() === env.URL + '/officer/api/me') mes.push(r.url()); });
  await context.route('https://evil.example/**', (route) => route.fulfill({ contentType: 'text/html', body:
    `<button id="open">open</button><script>
     window.probe = (href, tag) => new Promise((done) => {
       const e = document.createElement(tag);
       if (tag === 'link') { e.rel = 'stylesheet'; e.href = href; } else e.src = href;
       e.onload = () => done('loaded'); e.onerror = () => done('failed');
       document.head.append(e);
     });
     document.getElementById('open').onclick = () => { window.w = window.open('${env.URL}/console/'); };
     </script>` }));
  const evil = await context.newPage();
  evil.setDefaultTimeout(STEP_MS);
  await evil.goto('https://evil.example/');
  const script = await evil.evaluate((u) => window.probe(u + '/console/app.js', 'script'), env.URL);
  check("another site's <script> of the console's script fails (was: loaded, for an officer only)", script === 'failed', script);
  const style = await evil.evaluate((u) => window.probe(u + '/console/app.css', 'link'), env.URL);
  check('... and its <link> of the style sheet', style === 'failed', style);

  // A click on the other site opens the console: it loads and works (a link from elsewhere is allowed)...
  const [popup] = await Promise.all([context.waitForEvent('page'), evil.click('#open')]);
  popup.setDefaultTimeout(STEP_MS);
  await popup.waitForSelector('body[data-ready="yes"]');
  check('the console opened by another site loads, script and style', (await popup.textContent('#who')) === 'bobofficer',
    await popup.textContent('#who'));
  // ... but the site keeps no handle on it: it cannot reload it.
  const closed = await evil.evaluate(() => window.w.closed);
  check('the opening site holds no handle on the console (was: it could navigate it at will)', closed === true, closed);
  if (!closed) { // the attack, played: each reload by the other site is the console's reads again
    for (let i = 1; i <= 3; i++) {
      await evil.evaluate(([u, n]) => { window.w.location = u + '/console/?' + n; }, [env.URL, i]);
      await popup.waitForURL(`**/console/?${i}`);
      await popup.waitForSelector('body[data-ready="yes"]');
    }
  }
  check("the console's reads were made once, by its one load", mes.length === 1, mes.length);
});
