// Drives the dashboard in Debian's chromium over the DevTools protocol (puppeteer-core) as a person would:
// sign in, read every view, open the crash wave's bucket, follow and share a sorted, paged bucket list, watch a
// flag and two halts arrive, read a real device's attestations and certificate, pause and resume a rollout as
// operator, sign out; lose the session to a revoked token. Checks on the way: no CSP violation (read per view),
// no dialog, the payloads in device and tenant text shown as text and never run, no token in browser storage or
// the URL, axe-core without serious or critical violations on each view, and each view's first paint under 1 s.
// Screenshots go to UI_OUT. Prints one JSON line: {failures, paint_ms, ...}.
// Inputs (environment): UI_URL, UI_READER, UI_OPERATOR, UI_ADMIN, UI_BUCKET, UI_BUCKET_COUNT, UI_DEPLOYMENT,
// UI_DEVICE, UI_OUT, UI_CHROMIUM, UI_CA, UI_PAYLOADS and UI_VERSION_PAYLOADS (JSON lists), UI_LIVE_WAVE,
// UI_LIVE_PC, UI_HALTS (JSON), UI_SIM_DEVICE, UI_SIM_SERIAL, UI_SIM_EXPIRY, UI_REVOKE, UI_REVOKE_ID.
// Run by tests/ui/test_dashboard.py.
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import {createRequire} from 'node:module';
import puppeteer from 'puppeteer-core';

const require = createRequire(import.meta.url);
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const E = process.env;
const BASE = E.UI_URL + '/ui/';
const PAINT_LIMIT_MS = 1000;
const LIVE_LIMIT_MS = 20000; // a poll every 5 s, the rollout's halt check, and slack for a loaded machine
const PAYLOADS = JSON.parse(E.UI_PAYLOADS);
const VERSION_PAYLOADS = JSON.parse(E.UI_VERSION_PAYLOADS);
const failures = [];
const haltMs = {};
const complete = {}; // ms until a view's lazily filled parts had arrived too (reported, not bounded)
let where = 'start'; // the view or step on screen: console lines, CSP violations and API errors name it
let expect401 = false; // while the revoked token's session ends, its 401s are the point
const paint = {};
const axeReport = {};
const consoleLines = [];
const dialogs = [];
let liveFlagMs = null; // how long a new flag took to show without a reload
const httpErrors = []; // every API answer >= 400 the views got (checked at the end)

function fail(msg) {
  failures.push(msg);
  process.stderr.write('FAIL: ' + msg + '\n');
}

function check(cond, msg) {
  if (!cond) fail(msg);
}

const browser = await puppeteer.launch({
  executablePath: E.UI_CHROMIUM,
  headless: true,
  acceptInsecureCerts: true, // the harness's own test CA
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--window-size=1280,900'],
});

async function newPage() {
  const page = await browser.newPage();
  await page.setViewport({width: 1280, height: 900});
  page.on('console', (m) => consoleLines.push(where + ': ' + m.type() + ': ' + m.text()));
  page.on('response', (r) => {
    if (r.status() >= 400 && !(expect401 && r.status() === 401)) {
      httpErrors.push(r.status() + ' ' + r.request().method() + ' ' + r.url().replace(E.UI_URL, ''));
    }
  });
  page.on('pageerror', (e) => fail('page error: ' + e.message));
  page.on('dialog', async (d) => {
    dialogs.push(d.type() + ': ' + d.message());
    await d.dismiss();
  });
  // Runs in every document before its scripts (DevTools-injected, so outside the page's CSP). A new document
  // starts a new list: cspCheck reads and clears it after every view and before anything loads a document.
  await page.evaluateOnNewDocument(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
  });
  return page;
}

// The CSP violations since the last check, charged to the view or step that caused them.
async function cspCheck(page, name) {
  const v = await page.evaluate(() => {
    const list = window.__csp || [];
    window.__csp = [];
    return list;
  });
  check(v.length === 0, `${name}: CSP violations ${JSON.stringify(v)}`);
}

// Goes to a view by its link and waits until the view has painted it; returns the milliseconds it took.
async function show(page, hash, name) {
  where = name || hash;
  const t0 = Date.now();
  await page.evaluate((h) => {
    document.getElementById('view').removeAttribute('data-route');
    if (location.hash === h) window.dispatchEvent(new HashChangeEvent('hashchange'));
    else location.hash = h;
  }, hash);
  await page.waitForFunction((h) => document.getElementById('view').getAttribute('data-route') === h, {timeout: 15000}, hash);
  const ms = Date.now() - t0;
  if (name) paint[name] = ms;
  check(ms < PAINT_LIMIT_MS, `${name || hash}: first paint ${ms} ms`);
  return ms;
}

async function settle(page) {
  // Lazily filled cells (per-version counts, sparklines, progress) have arrived when no "…" is left.
  await page.waitForFunction(() => !document.querySelector('#view span.muted') ||
    ![...document.querySelectorAll('#view span.muted')].some((s) => s.textContent === '…'), {timeout: 10000}).catch(() => {});
}

async function axe(page, name) {
  await page.evaluate(AXE);
  const r = await page.evaluate(async () => {
    const res = await window.axe.run(document, {resultTypes: ['violations']});
    return res.violations.map((v) => ({id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help,
      target: v.nodes.slice(0, 3).map((n) => n.target.join(' '))}));
  });
  axeReport[name] = r;
  for (const v of r) {
    if (v.impact === 'serious' || v.impact === 'critical') fail(`axe ${name}: ${v.impact} ${v.id} (${v.help}) at ${v.target.join(', ')}`);
  }
}

async function shoot(page, name) {
  await page.screenshot({path: path.join(E.UI_OUT, name + '.png'), fullPage: true});
}

async function visit(page, hash, name) {
  const t0 = Date.now();
  await show(page, hash, name);
  await settle(page);
  complete[name] = Date.now() - t0; // lazily filled cells and cards included
  await axe(page, name);
  await shoot(page, name);
  await cspCheck(page, name);
}

async function signIn(page, token) {
  await page.goto(BASE, {waitUntil: 'load'});
  await page.waitForSelector('#signin:not([hidden]) #token', {timeout: 15000});
  await page.type('#token', token);
  await Promise.all([
    page.waitForSelector('#who:not([hidden])', {timeout: 15000}),
    page.click('#signin button[type=submit]'),
  ]);
  await page.waitForFunction(() => document.getElementById('view').hasAttribute('data-route'), {timeout: 15000});
  // Sign-in lands on a view (the fleet's): let its figures arrive, so that the next view's time is its own
  // and not the wait behind these (the server has as many workers as cores, two here).
  await settle(page);
}

async function signOut(page) {
  await page.click('#signout');
  await page.waitForSelector('#signin:not([hidden])', {timeout: 15000});
  const st = await page.evaluate(async () => (await fetch('/v1/session', {credentials: 'same-origin'})).status);
  check(st === 401, `after sign-out GET /v1/session answers ${st}, not 401`);
}

async function noTokenLeft(page, token) {
  const where = await page.evaluate((t) => {
    const found = [];
    for (const s of [localStorage, sessionStorage]) {
      for (let i = 0; i < s.length; i++) if ((s.getItem(s.key(i)) || '').includes(t) || s.key(i).includes(t)) found.push('storage');
    }
    if (document.cookie.includes(t)) found.push('document.cookie');
    if (location.href.includes(t)) found.push('URL');
    if (document.getElementById('token').value) found.push('the sign-in field');
    return found;
  }, token);
  check(where.length === 0, 'the API token is kept in ' + where.join(', '));
  const cookies = await page.cookies();
  const sess = cookies.find((c) => c.name === 'aegis_session');
  check(sess && sess.httpOnly && sess.secure && sess.sameSite === 'Strict', 'session cookie flags: ' + JSON.stringify(sess));
  check(!cookies.some((c) => c.value.includes(token)), 'a cookie holds the API token');
}

// Nothing from the payloads ran or became an element (no img, no extra script, no element with an inline
// handler, window.__xss untouched), and each of shown (the payloads this view displays) is on the page as text.
async function payloadsInert(page, name, shown) {
  const r = await page.evaluate((texts) => ({
    xss: window.__xss,
    imgs: document.querySelectorAll('img').length,
    scripts: [...document.querySelectorAll('script')].filter((s) => !s.src.endsWith('/ui/app.js')).length,
    handlers: [...document.querySelectorAll('*')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).map((e) => e.tagName),
    shown: texts.map((p) => document.body.innerText.includes(p)),
  }), shown);
  check(r.xss === undefined, `${name}: a payload ran (window.__xss = ${r.xss})`);
  check(r.imgs === 0, `${name}: ${r.imgs} <img> elements made from device text`);
  check(r.scripts === 0, `${name}: ${r.scripts} extra <script> elements`);
  check(r.handlers.length === 0, `${name}: elements with inline handlers: ${r.handlers.join(', ')}`);
  check(r.shown.every(Boolean), `${name}: payloads not shown as text: ${JSON.stringify(shown.filter((p, i) => !r.shown[i]))}`);
}

async function bucketChecks(page) {
  const bucket = E.UI_BUCKET;
  const row = await page.evaluate((id) => {
    const a = [...document.querySelectorAll('#view a')].find((x) => x.getAttribute('href') === '#/failures/bucket/' + id);
    if (!a) return null;
    const cnt = a.closest('tr').querySelector('[data-testid=bucket-count]');
    return {count: cnt ? cnt.textContent : null};
  }, bucket);
  check(row !== null, `the crash wave's bucket ${bucket} is not on the first page of failures`);
  if (row) check(row.count === E.UI_BUCKET_COUNT, `bucket count shown ${row && row.count}, expected ${E.UI_BUCKET_COUNT}`);
  // Open it by its link, as a person would.
  await page.click(`#view a[href="#/failures/bucket/${bucket}"]`);
  await page.waitForFunction((h) => document.getElementById('view').getAttribute('data-route') === h, {timeout: 15000}, '#/failures/bucket/' + bucket);
  const detail = await page.$eval('[data-testid=bucket-detail-count]', (e) => e.textContent);
  check(detail === E.UI_BUCKET_COUNT, `bucket detail count ${detail}, expected ${E.UI_BUCKET_COUNT}`);
  await payloadsInert(page, 'bucket detail', [...PAYLOADS, VERSION_PAYLOADS[0]]);
  await axe(page, 'bucket');
  await shoot(page, 'bucket');
  await cspCheck(page, 'bucket');
  paint.bucket = await show(page, '#/failures/bucket/' + bucket, null);
}

// One device request over mutual TLS, as the device would: dev {cert, key, path, body}. Resolves to the status.
function deviceRequest(dev) {
  const u = new URL(E.UI_URL);
  return new Promise((resolve, reject) => {
    const req = https.request({host: u.hostname, port: u.port, path: dev.path, method: 'POST',
      key: fs.readFileSync(dev.key), cert: fs.readFileSync(dev.cert), ca: fs.readFileSync(E.UI_CA),
      headers: {'Content-Type': 'application/json'}}, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(JSON.stringify(dev.body));
  });
}

// One API request with a bearer token (the test's admin, outside the browser). Resolves to the status.
function adminRequest(method, p) {
  const u = new URL(E.UI_URL);
  return new Promise((resolve, reject) => {
    const req = https.request({host: u.hostname, port: u.port, path: p, method, ca: fs.readFileSync(E.UI_CA),
      headers: {Authorization: 'Bearer ' + E.UI_ADMIN}}, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end();
  });
}

// With the failures view open, a new crash wave arrives: its flag must show in the view and in the alert
// region without a reload (the page polls).
async function liveFlag(page) {
  await page.evaluate(() => {
    window.__notReloaded = true;
  });
  for (const dev of JSON.parse(E.UI_LIVE_WAVE)) {
    const st = await deviceRequest(dev);
    check(st === 200, 'live wave upload answered ' + st);
  }
  const pc = E.UI_LIVE_PC.replace(/^0x0*/, '0x');
  const t0 = Date.now();
  await page.waitForFunction((p) => [...document.querySelectorAll('#view td')].some((td) => td.textContent.includes(p)) &&
    document.querySelector('#alerts .alert'), {timeout: 40000, polling: 250}, pc)
    .then(() => {
      liveFlagMs = Date.now() - t0;
    })
    .catch(async () => {
      const where = await page.evaluate((p) => ({
        table: [...document.querySelectorAll('#view td')].some((td) => td.textContent.includes(p)),
        alerts: [...document.querySelectorAll('#alerts .alert')].map((a) => a.textContent),
      }), pc);
      fail(`the new bucket's flag (${pc}) did not appear without a reload: ${JSON.stringify(where)}`);
    });
  check(await page.evaluate(() => window.__notReloaded === true), 'the page reloaded while waiting for the flag');
}

async function waitState(page, state) {
  await page.waitForFunction((s) => {
    const b = document.querySelector('[data-testid=deployment-state]');
    return b && b.textContent === s;
  }, {timeout: 15000}, state).catch(() => fail(`the deployment never showed state ${state}`));
}

// The bucket list's sort and page live in its link: a new sort rewrites the link, "Next page" adds the
// cursor, and the link opened in another tab shows the same page.
async function bucketLinks(page) {
  const firstRow = (p) => p.evaluate(() => {
    const a = document.querySelector('[data-testid=buckets] tbody a');
    return a ? a.getAttribute('href') : null;
  });
  where = 'failures-links';
  await show(page, '#/failures?sort=recent', 'failures-recent');
  await settle(page);
  check(await page.$eval('#bucket-sort', (e) => e.value) === 'recent', 'the link ?sort=recent did not select "most recent"');
  await page.click('[data-testid=buckets] ~ .pager button:nth-child(2)');
  await page.waitForFunction(() => location.hash.includes('page=2') && location.hash.includes('cursor='), {timeout: 15000})
    .catch(() => fail('"Next page" did not put the page in the link: ' + page.url()));
  await page.waitForFunction(() => /Page 2/.test(document.querySelector('[data-testid=buckets] ~ .pager').textContent), {timeout: 15000});
  const hash = await page.evaluate(() => location.hash);
  const row = await firstRow(page);
  check(/sort=recent/.test(hash), 'the page link lost the sort: ' + hash);
  const other = await newPage();
  try {
    await other.goto(BASE + hash, {waitUntil: 'load'});
    await other.waitForFunction((h) => document.getElementById('view').getAttribute('data-route') === h, {timeout: 15000}, hash);
    await settle(other);
    const got = {sort: await other.$eval('#bucket-sort', (e) => e.value), row: await firstRow(other),
      status: await other.$eval('[data-testid=buckets] ~ .pager', (e) => e.textContent)};
    check(got.sort === 'recent' && got.row === row && /Page 2/.test(got.status),
      `the shared link ${hash} shows ${JSON.stringify(got)}, not page 2 by most recent starting at ${row}`);
    await cspCheck(other, 'failures shared link');
  } finally {
    await other.close();
  }
  await page.select('#bucket-sort', 'devices');
  await page.waitForFunction(() => location.hash === '#/failures?sort=devices', {timeout: 15000})
    .catch(() => fail('a new sort did not go into the link: ' + page.url()));
  await cspCheck(page, 'failures-links');
}

// A device of the deployment reports a failed update while the view is open: the halt and its reason must show
// without a reload. halt: an entry of UI_HALTS; seen(page) -> the reason shown, or null.
async function liveHalt(page, halt, name, seen) {
  where = name;
  await page.evaluate(() => {
    window.__notReloaded = true;
  });
  const st = await deviceRequest(halt);
  check(st === 200, `${name}: the failed update report answered ${st}`);
  const t0 = Date.now();
  await page.waitForFunction(seen, {timeout: LIVE_LIMIT_MS, polling: 250}, halt.deployment)
    .then(() => {
      haltMs[name] = Date.now() - t0;
    })
    .catch(() => fail(`${name}: the halt of deployment ${halt.deployment} did not show within ${LIVE_LIMIT_MS} ms`));
  check(await page.evaluate(() => window.__notReloaded === true), `${name}: the page reloaded`);
}

async function halts(page) {
  const [onList, onPage] = JSON.parse(E.UI_HALTS);
  await visit(page, '#/rollouts', 'rollouts');
  await payloadsInert(page, 'rollouts', PAYLOADS);
  await liveHalt(page, onList, 'halt on the rollouts list', (id) => {
    const a = document.querySelector(`#view a[href="#/rollouts/${id}"]`);
    const tr = a && a.closest('tr');
    const alert = [...document.querySelectorAll('#alerts .alert a')].find((x) => x.getAttribute('href') === '#/rollouts/' + id);
    return tr && tr.querySelector('[data-testid=deployment-state]').textContent === 'halted' &&
      /halted: update failure rate/.test(tr.textContent) && alert && /halted: update failure rate/.test(alert.textContent);
  });
  await payloadsInert(page, 'rollouts with a halt', PAYLOADS);
  await cspCheck(page, 'halt on the rollouts list');
  await show(page, '#/rollouts/' + onPage.deployment, 'rollout-halt');
  await liveHalt(page, onPage, 'halt on the deployment page', () => {
    const b = document.querySelector('[data-testid=deployment-state]');
    const p = document.querySelector('#view p.halt');
    return b && b.textContent === 'halted' && p && /update failure rate/.test(p.textContent);
  });
  await axe(page, 'rollout-halted');
  await shoot(page, 'rollout-halted');
  await payloadsInert(page, 'deployment page with a halt', [PAYLOADS[0]]);
  await cspCheck(page, 'halt on the deployment page');
}

// The simulator's device attested twice: its history and current certificate are on its page.
async function attestedDevice(page) {
  await visit(page, '#/devices/' + E.UI_SIM_DEVICE, 'device-attested');
  const got = await page.evaluate(() => {
    const rows = [...document.querySelectorAll('[data-testid=attestations] tbody tr')];
    return {serial: (document.querySelector('[data-testid=cert-serial]') || {}).textContent,
      expiry: (document.querySelector('[data-testid=cert-expiry]') || {}).textContent,
      results: rows.map((r) => r.children[1] && r.children[1].textContent)};
  });
  check(got.serial === E.UI_SIM_SERIAL, `attested device: certificate serial ${got.serial}, expected ${E.UI_SIM_SERIAL}`);
  const expiry = E.UI_SIM_EXPIRY.replace('T', ' ').replace(/Z$/, ' UTC');
  check(got.expiry && got.expiry.startsWith(expiry), `attested device: expiry ${got.expiry}, expected ${expiry}`);
  check(got.results.filter((r) => r === 'pass').length === 2, 'attested device: history ' + JSON.stringify(got.results));
}

// The crash-rate chart draws at most 6 versions, those with the most device-hours, and names the others: the
// seeded fleet has 18 versions with a rate, so the note must be there and every version named once.
async function rateChart(page) {
  const r = await page.evaluate(() => {
    const fig = [...document.querySelectorAll('#view figure')].find((f) => /per image version/.test(f.querySelector('svg').getAttribute('aria-label')));
    const note = document.querySelector('[data-testid=rates-left-out]');
    return {drawn: fig ? fig.querySelectorAll('.legend > span').length : -1, note: note ? note.textContent : null};
  });
  check(r.drawn >= 1 && r.drawn <= 6, `crash-rate chart: ${r.drawn} series drawn`);
  if ((E.UI_LARGE || '1') === '1') {
    check(r.note !== null && /not drawn: /.test(r.note) && /aegis-app 1\.0\.0 /.test(r.note),
      'crash-rate chart: what is left out is not said: ' + r.note);
  }
}

async function asReader(page) {
  where = 'sign-in';
  await signIn(page, E.UI_READER);
  await noTokenLeft(page, E.UI_READER);
  await cspCheck(page, 'sign-in');
  await visit(page, '#/fleet', 'fleet');
  await visit(page, '#/failures', 'failures');
  await payloadsInert(page, 'failures', [VERSION_PAYLOADS[0]]);
  await rateChart(page);
  await liveFlag(page);
  await payloadsInert(page, 'failures with a new flag', []);
  await cspCheck(page, 'failures with a new flag');
  await show(page, '#/failures?sort=recent', null);
  await settle(page);
  // the two newest buckets: the live wave's (one payload version) and the crash wave's (the other)
  await payloadsInert(page, 'failures by most recent', VERSION_PAYLOADS);
  await bucketChecks(page);
  await bucketLinks(page);
  await halts(page);
  await visit(page, '#/rollouts/' + E.UI_DEPLOYMENT, 'rollout');
  await payloadsInert(page, 'rollout', PAYLOADS);
  const buttons = await page.$$('#view button[data-action]');
  check(buttons.length === 0, `a reader sees ${buttons.length} action buttons`);
  await visit(page, '#/devices/' + E.UI_DEVICE, 'device');
  await payloadsInert(page, 'device', [...PAYLOADS, VERSION_PAYLOADS[0]]);
  await attestedDevice(page);
  await visit(page, '#/images', 'images');
  await payloadsInert(page, 'images', [...PAYLOADS, VERSION_PAYLOADS[0]]);
  // A reload keeps the session (GET /v1/session gives the CSRF token back) and the view (the link).
  where = 'reload';
  await page.reload({waitUntil: 'load'});
  await page.waitForFunction(() => document.getElementById('view').getAttribute('data-route') === '#/images', {timeout: 15000})
    .catch(() => fail('after a reload the images view did not come back'));
  await cspCheck(page, 'reload');
  where = 'sign-out';
  await signOut(page);
  await cspCheck(page, 'sign-out');
}

// The token behind a session is revoked while the page polls: the next poll must show the sign-in form and
// nothing else (no view, no error over it, no alerts).
async function revokedSession(page) {
  where = 'revoked';
  await signIn(page, E.UI_REVOKE);
  await show(page, '#/rollouts/' + E.UI_DEPLOYMENT, null);
  expect401 = true;
  const st = await adminRequest('DELETE', '/v1/tokens/' + E.UI_REVOKE_ID);
  check(st === 204, 'revoking the token answered ' + st);
  const ok = await page.waitForSelector('#signin:not([hidden])', {timeout: 15000}).then(() => true, () => false);
  check(ok, 'after the token was revoked the next poll did not show the sign-in form');
  await new Promise((r) => setTimeout(r, 1000)); // anything still loading would paint now
  const got = await page.evaluate(() => ({
    view: document.getElementById('view').childElementCount,
    nav: document.getElementById('nav').hidden,
    alerts: document.getElementById('alerts').childElementCount,
    errors: [...document.querySelectorAll('h1')].filter((e) => e.offsetParent !== null).map((e) => e.textContent),
    note: document.getElementById('signin-error').textContent,
  }));
  check(got.view === 0 && got.nav && got.alerts === 0 && got.errors.join() === 'Sign in' && /session ended/.test(got.note),
    'after the revocation the page shows ' + JSON.stringify(got));
  await shoot(page, 'signin-session-ended');
  await axe(page, 'signin-session-ended');
  expect401 = false;
  await cspCheck(page, 'revoked');
}

async function asOperator(page) {
  where = 'operator';
  await signIn(page, E.UI_OPERATOR);
  await show(page, '#/rollouts/' + E.UI_DEPLOYMENT, null);
  await waitState(page, 'running');
  await page.click('#view button[data-action=pause]');
  await waitState(page, 'paused');
  await shoot(page, 'rollout-operator-paused');
  await page.click('#view button[data-action=resume]');
  await waitState(page, 'running');
  await axe(page, 'rollout-operator');
  await shoot(page, 'rollout-operator');
  await cspCheck(page, 'operator');
  await signOut(page);
}

try {
  const page = await newPage();
  await page.goto(BASE, {waitUntil: 'load'});
  await page.waitForSelector('#signin:not([hidden])', {timeout: 15000});
  await axe(page, 'signin');
  await shoot(page, 'signin');
  await cspCheck(page, 'signin');
  await asReader(page);
  await asOperator(page);
  await revokedSession(page);
} catch (e) {
  fail('exception: ' + (e && e.stack ? e.stack : String(e)));
} finally {
  await browser.close();
}
const cspConsole = consoleLines.filter((l) => /Content Security Policy|Refused to/i.test(l));
check(cspConsole.length === 0, 'CSP messages in the console: ' + JSON.stringify(cspConsole));
check(dialogs.length === 0, 'dialogs opened: ' + JSON.stringify(dialogs));
// Every view's calls must succeed: a view hides an endpoint's error behind a note, so an error here is
// a broken view. The only expected ones: GET /v1/session before sign-in and after sign-out (401).
const unexpected = httpErrors.filter((e) => e !== '401 GET /v1/session');
check(unexpected.length === 0, 'API errors behind the views: ' + JSON.stringify(unexpected));
console.log(JSON.stringify({failures, paint_ms: paint, complete_ms: complete, live_flag_ms: liveFlagMs, halt_ms: haltMs, axe: axeReport, console: consoleLines.slice(0, 50), http_errors: httpErrors}));
process.exit(failures.length === 0 ? 0 : 1);
