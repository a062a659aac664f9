// #/keys: the keys the token shows the logged-in user (a crypto user: its
// own, those shared with it, public ones), a filter, and for a crypto
// user generate and import. #/keys/HANDLE: one key's attributes, owner
// and shares; the owner shares, unshares and deletes it.
import { get, post, put, del, query, enc, session } from './api.js';
import { h, table, field, select, errorBox, show } from './dom.js';
import { flash, isOfficer } from './app.js';

let filter = { label: '', class: '', key_type: '', owner: '' };

// reset forgets the filter: a new login starts unfiltered.
export function reset() { filter = { label: '', class: '', key_type: '', owner: '' }; }

export async function render(view, arg) {
  if (arg) return detail(view, arg);
  view.append(h('h1', null, 'Keys'));
  const label = h('input', { name: 'label', test: 'filter-label', value: filter.label, placeholder: 'any' });
  const cls = select({ name: 'class', test: 'filter-class' }, [['', 'any'], 'secret', 'private', 'public'], filter.class);
  const type = select({ name: 'key_type', test: 'filter-key-type' }, [['', 'any'], 'aes', 'ec', 'rsa', 'generic_secret', 'des3', 'ec_edwards', 'ec_montgomery'], filter.key_type);
  const owner = h('input', { name: 'owner', test: 'filter-owner', value: filter.owner, placeholder: 'any' });
  const listBox = h('div', { test: 'key-list-box' });
  const form = h('form', { class: 'filters', test: 'key-filter' },
    field('Label', label), field('Class', cls), field('Type', type), field('Owner', owner),
    h('button', { type: 'submit', test: 'filter-apply' }, 'Filter'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    filter = { label: label.value.trim(), class: cls.value, key_type: type.value, owner: owner.value.trim() };
    load();
  });
  view.append(form, listBox);
  if (!isOfficer()) view.append(generateForm(load), importForm(load));

  async function load() {
    listBox.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    try {
      const r = await get('/keys' + query(filter));
      // The API's shape is {"keys": [...]} (D2, openapi.yaml).
      listBox.replaceChildren(keyTable(r.keys));
    } catch (e) {
      listBox.replaceChildren(errorBox('keys-error', e));
    }
  }
  await load();
}

function keyTable(keys) {
  if (!keys || keys.length === 0) {
    return h('p', { class: 'muted', test: 'keys-empty' }, 'No keys.');
  }
  const me = session.current && session.current.username;
  return table(['Handle', 'Label', 'Class', 'Type', 'ID', 'Owner', 'Shared with', 'Token'],
    keys.map((k) => h('tr', {
      test: 'key-row', 'data-handle': k.handle, 'data-label': k.label, 'data-owner': k.owner,
      class: k.owner && me && k.owner.toLowerCase() !== me.toLowerCase() ? 'shared' : null,
    },
    h('td', null, h('a', { href: `#/keys/${k.handle}`, test: 'key-link' }, String(k.handle))),
    h('td', null, k.label), h('td', null, k.class), h('td', null, k.key_type),
    h('td', { class: 'mono' }, k.id), h('td', null, k.owner),
    h('td', { test: 'key-shares' }, show(k.shared_with || [])), h('td', null, k.token ? 'yes' : 'session'))),
    { test: 'key-table', class: 'list' });
}

function generateForm(reload) {
  const type = select({ name: 'type', test: 'gen-type' }, [['ec', 'EC key pair'], ['rsa', 'RSA key pair'], ['aes', 'AES key']], 'ec');
  const label = h('input', { name: 'label', test: 'gen-label', required: true });
  const id = h('input', { name: 'id', test: 'gen-id', placeholder: 'hex, optional', class: 'mono' });
  const curve = select({ name: 'curve', test: 'gen-curve' }, ['P-256', 'P-384'], 'P-256');
  const bits = select({ name: 'bits', test: 'gen-bits' }, ['2048', '3072', '4096'], '2048');
  const sessionKey = h('input', { type: 'checkbox', name: 'session', test: 'gen-session' });
  const curveField = field('Curve', curve);
  const bitsField = field('Bits', bits);
  const err = h('div');
  const sync = () => {
    curveField.hidden = type.value !== 'ec';
    bitsField.hidden = type.value === 'ec';
    const opts = type.value === 'aes' ? ['128', '192', '256'] : ['2048', '3072', '4096'];
    if (!opts.includes(bits.value) || bits.options[0].value !== opts[0]) {
      bits.replaceChildren(...opts.map((o) => h('option', { value: o }, o)));
      bits.value = type.value === 'aes' ? '256' : '2048';
    }
  };
  type.addEventListener('change', sync);
  sync();
  const form = h('form', { class: 'card', test: 'gen-form' },
    h('h2', null, 'Generate a key'),
    h('div', { class: 'row' }, field('Type', type), field('Label', label), field('ID', id), curveField, bitsField,
      field('Session key', sessionKey)),
    h('button', { type: 'submit', test: 'gen-submit' }, 'Generate'), err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.replaceChildren();
    const body = { type: type.value, label: label.value };
    if (id.value.trim()) body.id = id.value.trim();
    if (type.value === 'ec') body.curve = curve.value; else body.bits = Number(bits.value);
    if (sessionKey.checked) body.session = true;
    try {
      const { keys } = await post('/keys', body);
      flash(`Generated ${keys.map((k) => `${k.class} key ${k.handle}`).join(' and ')} "${body.label}".`);
      label.value = '';
      reload();
    } catch (e) {
      err.replaceChildren(errorBox('gen-error', e));
    }
  });
  return form;
}

function importForm(reload) {
  const label = h('input', { name: 'label', test: 'import-label', required: true });
  const id = h('input', { name: 'id', test: 'import-id', placeholder: 'hex, optional', class: 'mono' });
  const pem = h('textarea', { name: 'pem', test: 'import-pem', rows: 6, class: 'mono',
    placeholder: '-----BEGIN PRIVATE KEY-----  (PKCS#8, SEC1 or PKCS#1 private key, or a public key)' });
  const aes = h('input', { name: 'aes_key_hex', test: 'import-aes', class: 'mono', placeholder: 'or an AES key in hex' });
  const file = h('input', { type: 'file', test: 'import-file', accept: '.pem,.key,.txt' });
  file.addEventListener('change', async () => {
    if (file.files[0]) pem.value = await file.files[0].text();
  });
  const err = h('div');
  const form = h('form', { class: 'card', test: 'import-form' },
    h('h2', null, 'Import a key'),
    h('div', { class: 'row' }, field('Label', label), field('ID', id)),
    field('PEM', pem), h('div', { class: 'row' }, field('PEM file', file), field('AES key', aes)),
    h('button', { type: 'submit', test: 'import-submit' }, 'Import'), err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.replaceChildren();
    const body = { label: label.value };
    if (id.value.trim()) body.id = id.value.trim();
    if (pem.value.trim()) body.pem = pem.value;
    if (aes.value.trim()) body.aes_key_hex = aes.value.trim();
    try {
      const { keys } = await post('/keys/import', body);
      flash(`Imported ${keys.map((k) => `${k.class} key ${k.handle}`).join(' and ')} "${body.label}".`);
      pem.value = ''; aes.value = ''; label.value = '';
      reload();
    } catch (e) {
      err.replaceChildren(errorBox('import-error', e));
    }
  });
  return form;
}

async function detail(view, handle) {
  view.append(h('p', null, h('a', { href: '#/keys', test: 'back-to-keys' }, '← Keys')));
  let data;
  try {
    data = await get(`/keys/${enc(handle)}`);
  } catch (e) {
    if (e.status === 401) throw e;
    view.append(h('h1', null, `Key ${handle}`), errorBox('key-error', e));
    return;
  }
  const k = data.key;
  const me = session.current.username.toLowerCase();
  const mine = (k.owner || '').toLowerCase() === me;
  view.append(
    h('h1', { test: 'key-title', 'data-handle': k.handle }, `${k.label || '(no label)'} `, h('span', { class: 'muted' }, `${k.class} ${k.key_type} key, handle ${k.handle}`)),
    h('div', { class: 'cols' },
      h('section', { class: 'card' },
        h('h2', null, 'Owner and shares'),
        h('p', null, 'Owner: ', h('strong', { test: 'key-owner' }, k.owner || '(none: a public object)')),
        sharesBox(k, mine)),
      h('section', { class: 'card' },
        h('h2', null, 'Attributes'),
        table(['Attribute', 'Value'], Object.entries(data.attributes || {}).map(([name, v]) =>
          h('tr', { test: 'attr', 'data-attr': name }, h('td', { class: 'mono' }, name), h('td', { class: 'mono wrap' }, show(v)))),
        { test: 'attr-table', class: 'list' }))),
  );
  if (isOfficer() && (k.class === 'secret-key' || k.class === 'public-key')) {
    view.append(trustedBox(k, data.attributes || {}));
  }
  if (mine) {
    const err = h('div');
    const delBtn = h('button', { type: 'button', class: 'danger', test: 'key-delete' }, 'Delete this key');
    delBtn.addEventListener('click', async () => {
      if (!confirm(`Delete key ${k.handle} "${k.label}"? This cannot be undone.`)) return;
      try {
        await del(`/keys/${k.handle}`);
        flash(`Deleted key ${k.handle}.`);
        location.hash = '#/keys';
      } catch (e) {
        err.replaceChildren(errorBox('delete-error', e));
      }
    });
    view.append(h('section', { class: 'card' }, h('h2', null, 'Delete'), delBtn, err));
  }
}

function sharesBox(k, mine) {
  const box = h('div', { test: 'shares' });
  const draw = (key) => {
    const list = key.shared_with || [];
    const err = h('div');
    const items = list.length === 0
      ? [h('p', { class: 'muted', test: 'no-shares' }, 'Not shared.')]
      : [h('ul', { class: 'shares' }, list.map((u) => h('li', { test: 'share', 'data-user': u }, u, ' ',
        mine ? h('button', { type: 'button', class: 'small', test: 'unshare', 'data-user': u, onclick: () => change('DELETE', u, err) }, 'Unshare') : null)))];
    box.replaceChildren(...items);
    if (mine) {
      const user = h('input', { name: 'username', test: 'share-username', placeholder: 'crypto user', required: true });
      const form = h('form', { class: 'row', test: 'share-form' }, field('Share with', user),
        h('button', { type: 'submit', test: 'share-submit' }, 'Share'));
      form.addEventListener('submit', (ev) => { ev.preventDefault(); change('PUT', user.value.trim(), err); });
      box.append(form);
    }
    box.append(err);
  };
  const change = async (method, user, err) => {
    try {
      const path = `/keys/${k.handle}/shares/${enc(user)}`;
      const r = method === 'PUT' ? await put(path) : await del(path);
      flash(method === 'PUT' ? `Shared with ${user}.` : `No longer shared with ${user}.`);
      draw(r.key);
    } catch (e) {
      err.replaceChildren(errorBox('share-error', e));
    }
  };
  draw(k);
  return box;
}

// trustedBox is an officer's control for CKA_TRUSTED (gohsm key
// set-trusted): a trusted key may wrap keys that require a trusted
// wrapping key. The token refuses anyone but a crypto officer.
function trustedBox(k, attributes) {
  let trusted = attributes.CKA_TRUSTED === true;
  const state = h('strong', { test: 'key-trusted' });
  const btn = h('button', { type: 'button', test: 'key-trust-toggle' });
  const err = h('div');
  const draw = () => {
    state.textContent = trusted ? 'trusted' : 'not trusted';
    state.dataset.trusted = String(trusted);
    btn.textContent = trusted ? 'Mark not trusted' : 'Mark trusted';
  };
  btn.addEventListener('click', async () => {
    err.replaceChildren();
    try {
      await put(`/keys/${k.handle}/trusted`, { trusted: !trusted });
      trusted = !trusted;
      draw();
      flash(`Key ${k.handle} is ${trusted ? 'trusted' : 'no longer trusted'}.`);
    } catch (e) {
      err.replaceChildren(errorBox('trusted-error', e));
    }
  });
  draw();
  return h('section', { class: 'card', test: 'trusted-box' },
    h('h2', null, 'Trusted (CKA_TRUSTED)'), h('p', null, 'This key is ', state, '. ', btn), err);
}
