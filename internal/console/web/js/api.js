// The console's JSON API (docs/console.md, openapi.yaml): every call goes
// through api(), which sends the session's CSRF token on a change and
// turns an error body into an ApiError.

// session is the logged-in web session (POST/GET /api/v1/session), or null.
export const session = { current: null };

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.ckr = e.ckr || '';
    this.code = e.code || '';
  }
  // text is the error as the page shows it: the message, then the CKR.
  get text() {
    return this.ckr && !this.message.includes(this.ckr) ? `${this.message} (${this.ckr})` : this.message;
  }
}

// onUnauthorized is called when a request with a session answers 401:
// the session expired or was closed; the app returns to #/login.
let onUnauthorized = () => {};
export function setUnauthorizedHandler(f) { onUnauthorized = f; }

export async function api(method, path, body, extra) {
  const headers = { 'Accept': 'application/json', ...(extra || {}) };
  const opts = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  if (method !== 'GET' && session.current) {
    headers['X-CSRF-Token'] = session.current.csrf_token;
  }
  let r;
  try {
    r = await fetch('/api/v1' + path, opts);
  } catch (err) {
    throw new ApiError(0, { error: { message: `console unreachable: ${err.message}` } });
  }
  if (r.status === 204) return null;
  let data = null;
  const type = r.headers.get('Content-Type') || '';
  if (type.includes('json')) {
    try { data = await r.json(); } catch { data = null; }
  }
  if (!r.ok) {
    const e = new ApiError(r.status, data);
    if (r.status === 401 && session.current) {
      session.current = null;
      onUnauthorized(e);
    }
    throw e;
  }
  return data;
}

export const get = (p) => api('GET', p);
// poll is a GET sent by a page's timer, not its user: the header
// X-Gohsm-Poll: 1 has the server answer it without renewing the web
// session's idle timer (so an open metrics page does not keep it alive).
export const poll = (p) => api('GET', p, undefined, { 'X-Gohsm-Poll': '1' });
export const post = (p, b) => api('POST', p, b === undefined ? {} : b);
export const put = (p, b) => api('PUT', p, b === undefined ? {} : b);
export const del = (p) => api('DELETE', p);

// query builds "?a=1&b=2" from the non-empty values of o.
export function query(o) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) {
    if (v !== undefined && v !== null && String(v) !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

export const enc = encodeURIComponent;
