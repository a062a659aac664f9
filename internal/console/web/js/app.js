// The console's single page: a hash router over the pages in this
// directory. Each page's render(view, arg) fills view and may return a
// function that stops what it started (the metrics page's polling).
import { session, get, del, setUnauthorizedHandler } from './api.js';
import { h, clear } from './dom.js';
import * as login from './login.js';
import * as keys from './keys.js';
import * as users from './users.js';
import * as audit from './audit.js';
import * as cluster from './cluster.js';
import * as metrics from './metrics.js';
import * as tokenPage from './token.js';

const pages = { login, keys, users, audit, cluster, metrics, token: tokenPage };

const view = document.getElementById('view');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const logoutBtn = document.getElementById('logout');
const flashEl = document.getElementById('flash');

// CSP violations are counted on <body data-csp-violations>: the browser
// tests check that the page needs nothing the policy forbids.
let violations = 0;
document.body.dataset.cspViolations = '0';
document.addEventListener('securitypolicyviolation', (e) => {
  violations++;
  document.body.dataset.cspViolations = String(violations);
  console.error('CSP violation', e.violatedDirective, e.blockedURI);
});

let stop = null;
let flashTimer = null;

export function flash(text, kind) {
  flashEl.textContent = text;
  flashEl.className = 'flash ' + (kind || 'ok');
  flashEl.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { flashEl.hidden = true; }, 6000);
}

export function isOfficer() {
  return !!session.current && /officer/i.test(session.current.role);
}

function showChrome() {
  const s = session.current;
  nav.hidden = !s;
  who.hidden = !s;
  logoutBtn.hidden = !s;
  if (s) {
    who.textContent = `${s.username} (${s.role}), slot ${s.slot}`;
    who.dataset.role = s.role;
    who.dataset.username = s.username;
  }
  for (const a of nav.querySelectorAll('a')) {
    a.classList.toggle('active', location.hash.startsWith(a.getAttribute('href')));
  }
}

export function loggedIn(s) {
  session.current = s;
  keys.reset();
  audit.reset();
  location.hash = '#/keys';
}

async function route() {
  if (stop) { try { stop(); } catch (e) { console.error(e); } stop = null; }
  const hash = location.hash || '#/keys';
  const [, name = 'keys', arg] = hash.match(/^#\/([a-z]*)\/?(.*)$/) || [];
  if (!session.current && name !== 'login') {
    location.hash = '#/login';
    return;
  }
  if (session.current && name === 'login') {
    location.hash = '#/keys';
    return;
  }
  const page = pages[name];
  showChrome();
  clear(view);
  view.dataset.page = page ? name : 'not-found';
  if (!page) {
    view.append(h('h1', null, 'Not found'), h('p', null, 'No such page: ', hash));
    return;
  }
  try {
    stop = (await page.render(view, decodeURIComponent(arg || ''))) || null;
  } catch (e) {
    if (e.status === 401) return;
    view.append(h('p', { class: 'error', test: 'page-error' }, e.text || e.message));
  }
}

setUnauthorizedHandler((e) => {
  flash(e.code === 'session_expired' ? 'Your session expired: log in again.' : 'Please log in.', 'error');
  showChrome();
  location.hash = '#/login';
});

logoutBtn.addEventListener('click', async () => {
  try { await del('/session'); } catch (e) { /* gone already */ }
  session.current = null;
  showChrome();
  location.hash = '#/login';
});

async function boot() {
  try {
    session.current = await get('/session');
  } catch (e) {
    session.current = null;
  }
  window.addEventListener('hashchange', route);
  await route();
}

boot();
