// The dashboard's entry point: sign-in, hash routes (each view has a link that can be shared), polling.
import * as api from './api.js';
import {h, clear} from './dom.js';
import * as fleet from './view_fleet.js';
import * as failures from './view_failures.js';
import * as rollouts from './view_rollouts.js';
import * as device from './view_device.js';

const POLL_MS = 5000;
const FLAG_KINDS = {new_bucket: 'New crash bucket on many devices', rate_regression: 'Crash-rate regression'};

// Routes: [pattern, nav entry, render(view, ...captures) -> Promise<{poll?}|undefined>, raw]. Captures are
// URI-decoded, except a raw route's (a query string, which URLSearchParams decodes itself).
const ROUTES = [
  [/^#\/fleet$/, 'fleet', fleet.render],
  [/^#\/failures(?:\?([^#]*))?$/, 'failures', failures.render, true],
  [/^#\/failures\/bucket\/([0-9a-f]{1,64})$/, 'failures', failures.renderBucket],
  [/^#\/rollouts$/, 'rollouts', rollouts.render],
  [/^#\/rollouts\/([0-9]+)$/, 'rollouts', rollouts.renderOne],
  [/^#\/devices\/([0-9a-f]{1,64})$/, 'fleet', device.render],
  [/^#\/images$/, 'images', device.renderImages],
];

const $ = (id) => document.getElementById(id);
let active = null; // {poll} of the view on screen
let generation = 0; // a route change while a view loads makes its result stale
let seenAlerts = null; // ids of flags and halts already shown, null before the first poll

async function route() {
  const gen = ++generation;
  active = null;
  if (api.current() === null) return;
  const hash = location.hash || '#/fleet';
  let match = null;
  for (const [re, nav, fn, raw] of ROUTES) {
    const m = re.exec(hash);
    if (m) {
      match = {nav, fn, args: m.slice(1).map((a) => (a === undefined || raw ? a : decodeURIComponent(a)))};
      break;
    }
  }
  for (const a of document.querySelectorAll('#nav a')) {
    if (match && a.dataset.view === match.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const view = clear($('view'));
  view.setAttribute('aria-busy', 'true');
  const box = h('div');
  try {
    if (!match) {
      box.append(h('h1', null, 'Not found'), h('p', null, 'No view at this address. ', h('a', {href: '#/fleet'}, 'Go to the fleet.')));
    } else {
      const r = await match.fn(box, ...match.args);
      if (gen !== generation) return;
      active = r || null;
    }
  } catch (e) {
    // A session that ended while the view loaded (a 401) has already shown the sign-in form and bumped
    // generation: nothing of the view, not even its error, goes over it.
    if (gen !== generation || api.current() === null) return;
    box.append(h('h1', null, 'Error'), h('p', {class: 'error'}, e.status === 404 ? 'Not found.' : e.message));
  }
  if (api.current() === null) return;
  view.replaceChildren(box);
  view.removeAttribute('aria-busy');
  view.dataset.route = hash; // the view for this link has painted (the browser test waits for it)
  const title = box.querySelector('h1');
  document.title = (title ? title.textContent + ' · ' : '') + 'Aegis';
  performance.mark('view-painted:' + hash);
}

// New flags and halts are announced in the alert region on any view, without a reload.
async function pollAlerts() {
  const [flags, deps] = await Promise.all([api.get('/v1/failures/flags?limit=10'), api.get('/v1/deployments?limit=20')]);
  const fresh = [];
  const ids = new Set();
  for (const f of flags.items || []) {
    ids.add('f' + f.id);
    const what = FLAG_KINDS[f.kind] || 'Flag ' + f.kind;
    const on = [f.component, f.image_version].filter(Boolean).join(' ');
    fresh.push(['f' + f.id, `${what}: ${on}`, f.bucket_id ? '#/failures/bucket/' + f.bucket_id : '#/failures']);
  }
  for (const d of deps.items || []) {
    if (d.state !== 'halted') continue;
    ids.add('d' + d.id + d.updated_at);
    fresh.push(['d' + d.id + d.updated_at, `Deployment "${d.name}": ${d.reason || 'halted'}`, '#/rollouts/' + d.id]);
  }
  if (seenAlerts !== null) {
    for (const [id, text, href] of fresh) {
      if (seenAlerts.has(id)) continue;
      const close = h('button', {type: 'button', class: 'link', 'aria-label': 'Dismiss alert'}, '×');
      const item = h('p', {class: 'alert'}, h('a', {href}, text), ' ', close);
      close.addEventListener('click', () => item.remove());
      $('alerts').append(item);
    }
  }
  seenAlerts = ids;
}

async function tick() {
  if (document.visibilityState !== 'visible' || api.current() === null) return;
  // A failed poll is retried at the next tick; a 401 has already signed the page out.
  await Promise.all([pollAlerts().catch(() => {}), active && active.poll ? active.poll().catch(() => {}) : null]);
}

// why: 'ended' when an API call found the session gone (revoked or expired token, expired session).
function showSignedIn(s, why) {
  $('signin').hidden = s !== null;
  $('nav').hidden = s === null;
  $('who').hidden = s === null;
  if (s === null) {
    generation++; // a view still loading is stale: it must not paint over the form
    const view = clear($('view'));
    view.removeAttribute('data-route');
    view.removeAttribute('aria-busy');
    clear($('alerts'));
    seenAlerts = null;
    active = null;
    $('signin-error').textContent = why === 'ended' ? 'Your session ended (signed out, expired or its token revoked): sign in again.' : '';
    document.title = 'Sign in · Aegis';
    $('token').focus();
    return;
  }
  $('signin-error').textContent = '';
  $('who-text').textContent = `${s.tenant_name} · ${s.role}`;
  // What exists at sign-in is the baseline: only flags and halts that come later are announced.
  pollAlerts().catch(() => {});
}

async function onSignIn(ev) {
  ev.preventDefault();
  const input = $('token');
  const err = $('signin-error');
  err.textContent = '';
  try {
    await api.signIn(input.value);
    input.value = '';
    if (!location.hash) location.hash = '#/fleet';
    else route();
  } catch (e) {
    input.value = '';
    err.textContent = e.status === 401 ? 'That token is not valid.' : 'Sign-in failed: ' + e.message;
  }
}

async function start() {
  api.onSessionChange(showSignedIn);
  $('signin-form').addEventListener('submit', onSignIn);
  $('signout').addEventListener('click', () => api.signOut().catch((e) => {
    const close = h('button', {type: 'button', class: 'link', 'aria-label': 'Dismiss alert'}, '×');
    const item = h('p', {class: 'alert'}, 'Sign-out failed (' + e.message + '): you are still signed in.', ' ', close);
    close.addEventListener('click', () => item.remove());
    $('alerts').append(item);
  }));
  window.addEventListener('hashchange', route);
  document.addEventListener('visibilitychange', tick);
  setInterval(tick, POLL_MS);
  try {
    await api.restore();
  } catch (e) {
    showSignedIn(null);
  }
  if (api.current() !== null) await route();
}

start();
