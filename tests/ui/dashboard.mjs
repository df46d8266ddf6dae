// Drives the dashboard in Debian's chromium over the DevTools protocol (puppeteer-core) as a person would:
// sign in, read every view, open the crash wave's bucket, pause and resume a rollout as operator, sign out.
// Checks on the way: no CSP violation, no dialog, the device text payloads shown as text and never run, no
// token in browser storage or the URL, axe-core without serious or critical violations on each view, and
// each view's first paint under 1 s. Screenshots go to UI_OUT. Prints one JSON line: {failures, paint_ms, ...}.
// Inputs (environment): UI_URL, UI_READER, UI_OPERATOR, UI_BUCKET, UI_BUCKET_COUNT, UI_DEPLOYMENT, UI_DEVICE,
// UI_OUT, UI_CHROMIUM, UI_PAYLOADS (a JSON list). Run by tests/ui/test_dashboard.py.
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
const failures = [];
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
  page.on('console', (m) => consoleLines.push(m.type() + ': ' + m.text()));
  page.on('response', (r) => {
    if (r.status() >= 400) httpErrors.push(r.status() + ' ' + r.request().method() + ' ' + r.url().replace(E.UI_URL, ''));
  });
  page.on('pageerror', (e) => fail('page error: ' + e.message));
  page.on('dialog', async (d) => {
    dialogs.push(d.type() + ': ' + d.message());
    await d.dismiss();
  });
  // Runs in every document before its scripts (DevTools-injected, so outside the page's CSP).
  await page.evaluateOnNewDocument(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
  });
  return page;
}

// Goes to a view by its link and waits until the view has painted it; returns the milliseconds it took.
async function show(page, hash, name) {
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
  await show(page, hash, name);
  await settle(page);
  await axe(page, name);
  await shoot(page, name);
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

async function payloadsInert(page, where) {
  const r = await page.evaluate((payloads) => ({
    xss: window.__xss,
    imgs: document.querySelectorAll('img').length,
    scripts: [...document.querySelectorAll('script')].filter((s) => !s.src.endsWith('/ui/app.js')).length,
    shown: payloads.map((p) => document.body.innerText.includes(p)),
  }), JSON.parse(E.UI_PAYLOADS));
  check(r.xss === undefined, `${where}: a payload ran (window.__xss = ${r.xss})`);
  check(r.imgs === 0, `${where}: ${r.imgs} <img> elements made from device text`);
  check(r.scripts === 0, `${where}: ${r.scripts} extra <script> elements`);
  check(r.shown.every(Boolean), `${where}: payloads not shown as text: ${JSON.stringify(r.shown)}`);
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
  await payloadsInert(page, 'bucket detail');
  await axe(page, 'bucket');
  await shoot(page, 'bucket');
  paint.bucket = await show(page, '#/failures/bucket/' + bucket, null);
}

// One telemetry upload over mutual TLS, as the device would.
function upload(dev) {
  const u = new URL(E.UI_URL);
  return new Promise((resolve, reject) => {
    const req = https.request({host: u.hostname, port: u.port, path: '/v1/device/telemetry', method: 'POST',
      key: fs.readFileSync(dev.key), cert: fs.readFileSync(dev.cert), ca: fs.readFileSync(E.UI_CA),
      headers: {'Content-Type': 'application/json'}}, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(JSON.stringify(dev.body));
  });
}

// With the failures view open, a new crash wave arrives: its flag must show in the view and in the alert
// region without a reload (the page polls).
async function liveFlag(page) {
  await page.evaluate(() => {
    window.__notReloaded = true;
  });
  for (const dev of JSON.parse(E.UI_LIVE_WAVE)) {
    const st = await upload(dev);
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

async function asReader(page) {
  await signIn(page, E.UI_READER);
  await noTokenLeft(page, E.UI_READER);
  await visit(page, '#/fleet', 'fleet');
  await visit(page, '#/failures', 'failures');
  await liveFlag(page);
  await show(page, '#/failures', null);
  await bucketChecks(page);
  await visit(page, '#/rollouts', 'rollouts');
  await visit(page, '#/rollouts/' + E.UI_DEPLOYMENT, 'rollout');
  const buttons = await page.$$('#view button[data-action]');
  check(buttons.length === 0, `a reader sees ${buttons.length} action buttons`);
  await visit(page, '#/devices/' + E.UI_DEVICE, 'device');
  await payloadsInert(page, 'device');
  await visit(page, '#/images', 'images');
  // A reload keeps the session (GET /v1/session gives the CSRF token back) and the view (the link).
  await page.reload({waitUntil: 'load'});
  await page.waitForFunction(() => document.getElementById('view').getAttribute('data-route') === '#/images', {timeout: 15000})
    .catch(() => fail('after a reload the images view did not come back'));
  await signOut(page);
}

async function asOperator(page) {
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
  await signOut(page);
}

try {
  const page = await newPage();
  await page.goto(BASE, {waitUntil: 'load'});
  await page.waitForSelector('#signin:not([hidden])', {timeout: 15000});
  await axe(page, 'signin');
  await shoot(page, 'signin');
  await asReader(page);
  await asOperator(page);
  const csp = await page.evaluate(() => window.__csp);
  check(csp.length === 0, 'CSP violations: ' + JSON.stringify(csp));
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
console.log(JSON.stringify({failures, paint_ms: paint, live_flag_ms: liveFlagMs, axe: axeReport, console: consoleLines.slice(0, 50), http_errors: httpErrors}));
process.exit(failures.length === 0 ? 0 : 1);
