// #/login: slot (when there are several), user name and password. A wrong
// password is the token's CKR_PIN_INCORRECT and counts toward lockout,
// as any other login does.
import { get, post } from './api.js';
import { h, field, select, errorBox } from './dom.js';
import { loggedIn } from './app.js';

export async function render(view) {
  let slots = [];
  try { slots = await get('/slots'); } catch (e) { /* login still works on the default slot */ }
  const username = h('input', { name: 'username', test: 'login-username', autocomplete: 'username', required: true, autofocus: true });
  const password = h('input', { name: 'password', type: 'password', test: 'login-password', autocomplete: 'current-password', required: true });
  const slotSel = select({ name: 'slot', test: 'login-slot' },
    [['', 'default'], ...slots.map((s) => [String(s.slot), `${s.slot}: ${s.label || '(no label)'}${s.initialized ? '' : ' (not initialised)'} ${s.profile || ''}`])], '');
  const err = h('p', { class: 'error', test: 'login-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', test: 'login-submit' }, 'Log in');
  const form = h('form', { class: 'card login', test: 'login-form' },
    h('h1', null, 'Log in'),
    h('p', { class: 'muted' }, 'A crypto officer or crypto user of the token, as for the library and the CLI.'),
    slots.length > 1 ? field('Slot', slotSel) : null,
    field('User name', username),
    field('Password', password),
    submit, err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    submit.disabled = true;
    const body = { username: username.value.trim(), password: password.value };
    if (slots.length > 1 && slotSel.value !== '') body.slot = Number(slotSel.value);
    try {
      const s = await post('/session', body);
      password.value = '';
      loggedIn(s);
    } catch (e) {
      err.textContent = e.text;
      err.dataset.ckr = e.ckr;
      err.dataset.code = e.code;
      err.hidden = false;
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  view.append(form);
  username.focus();
}
