// Small DOM helpers. Text goes in through textContent only: nothing the
// token or a user typed is ever parsed as HTML. No inline style either
// (the CSP forbids it): looks come from classes in style.css.

// h(tag, attrs, ...children): attrs keys are attributes, except "on*"
// (event listeners), "class", and properties named in PROPS.
const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'hidden']);

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (PROPS.has(k)) {
      el[k] = v;
    } else if (k === 'test') {
      el.dataset.test = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// table(headers, rows, attrs): rows are arrays of cells or <tr> elements.
export function table(headers, rows, attrs) {
  return h('table', attrs,
    h('thead', null, h('tr', null, headers.map((x) => h('th', null, x)))),
    h('tbody', null, rows.map((r) => (r instanceof Node ? r : h('tr', null, r.map((c) => h('td', null, c)))))),
  );
}

// kv is a two-column table of an object's fields, in their order.
export function kv(obj, attrs) {
  return h('table', Object.assign({ class: 'kv' }, attrs),
    h('tbody', null, Object.entries(obj).map(([k, v]) =>
      h('tr', { 'data-field': k }, h('th', null, k), h('td', null, show(v))))));
}

// show renders a JSON value as text: lists joined, objects as JSON.
export function show(v) {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.length ? v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ') : '—';
  if (typeof v === 'object') return JSON.stringify(v);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return String(v);
}

// field: a labelled input.
export function field(label, input) {
  return h('label', { class: 'field' }, h('span', null, label), input);
}

export function select(attrs, options, value) {
  return h('select', attrs, options.map((o) => {
    const [v, text] = Array.isArray(o) ? o : [o, o];
    return h('option', { value: v, selected: v === value }, text);
  }));
}

// errorBox shows an error returned by the API (or any Error) in place.
export function errorBox(test, err) {
  return h('p', { class: 'error', test, role: 'alert', 'data-ckr': err && err.ckr, 'data-code': err && err.code },
    err ? (err.text || err.message || String(err)) : '');
}

export function fmtTimeUS(us) {
  if (!us) return '';
  return new Date(us / 1000).toISOString().replace('T', ' ').replace('Z', 'Z');
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); }
