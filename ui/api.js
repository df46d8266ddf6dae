// The REST API, called with the session cookie (HttpOnly: JavaScript never sees it) and the session's CSRF
// token, which lives only in this module's variable. The API token itself is sent once, in the body of
// POST /v1/session, and never kept: not in localStorage, sessionStorage, a cookie set by script or a URL.
// After a reload GET /v1/session gives the CSRF token back.

let session = null; // {tenant_id, tenant_name, role, expires_at, csrf_token} or null when signed out
const listeners = [];

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || 'HTTP ' + status);
    this.status = status;
    this.code = code;
  }
}

export function current() {
  return session;
}

export function canOperate() {
  return session !== null && (session.role === 'operator' || session.role === 'admin');
}

// fn(session or null, why) runs on every sign-in and sign-out (a 401 from any call is a sign-out, with why
// 'ended').
export function onSessionChange(fn) {
  listeners.push(fn);
}

function setSession(s, why) {
  session = s;
  for (const fn of listeners) fn(s, why);
}

async function parse(res) {
  const text = await res.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch (e) {
      body = null;
    }
  }
  if (!res.ok) {
    const code = body && body.error ? body.error : null;
    const msg = body && body.message ? body.message : null;
    throw new ApiError(res.status, code, msg);
  }
  return body;
}

export async function restore() {
  const res = await fetch('/v1/session', {credentials: 'same-origin', headers: {Accept: 'application/json'}});
  if (res.status === 401) {
    setSession(null);
    return null;
  }
  setSession(await parse(res));
  return session;
}

export async function signIn(token) {
  const res = await fetch('/v1/session', {
    method: 'POST',
    credentials: 'same-origin',
    headers: {'Content-Type': 'application/json', Accept: 'application/json'},
    body: JSON.stringify({token}),
  });
  setSession(await parse(res));
  return session;
}

// The page forgets the session only once the server has (204), or when it was gone already (401):
// after any other failure the cookie may still be valid, so the user stays signed in and sees the error.
export async function signOut() {
  try {
    await call('DELETE', '/v1/session');
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) throw e;
  }
  setSession(null);
}

// One API call; body (an object) is sent as JSON. Resolves to the parsed body (null for 204).
export async function call(method, path, body) {
  if (session === null) throw new ApiError(401, 'unauthorized', 'not signed in');
  const headers = {Accept: 'application/json', 'X-CSRF-Token': session.csrf_token};
  const init = {method, credentials: 'same-origin', headers};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401) {
    if (session !== null) setSession(null, 'ended');
    throw new ApiError(401, 'unauthorized', 'the session ended: sign in again');
  }
  return parse(res);
}

export function get(path) {
  return call('GET', path);
}

// A query string of the defined, non-empty values: qs({a: 1, b: null}) === '?a=1'.
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  }
  const s = p.toString();
  return s ? '?' + s : '';
}
