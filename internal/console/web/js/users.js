// #/users: the token's users with their role, lock state and failed
// logins. An officer creates and deletes users and sets a user's
// password (which also unlocks it); anyone changes their own password.
import { get, post, put, del, enc, session } from './api.js';
import { h, table, field, select, errorBox } from './dom.js';
import { flash, isOfficer } from './app.js';

export async function render(view) {
  view.append(h('h1', null, 'Users'));
  const listBox = h('div');
  view.append(listBox);
  const officer = isOfficer();
  const me = session.current.username.toLowerCase();

  async function load() {
    try {
      const { users } = await get('/users');
      listBox.replaceChildren(table(
        ['User', 'Role', 'State', 'Failed logins', 'Password set', ''],
        users.map((u) => {
          const err = h('span');
          const actions = [];
          if (officer && u.username.toLowerCase() !== me) {
            actions.push(h('button', { type: 'button', class: 'small danger', test: 'user-delete', 'data-user': u.username,
              onclick: async () => {
                if (!confirm(`Delete user ${u.username}? Its keys are deleted with it.`)) return;
                try { await del(`/users/${enc(u.username)}`); flash(`Deleted ${u.username}.`); load(); } catch (e) { err.replaceChildren(errorBox('user-error', e)); }
              } }, 'Delete'));
          }
          if (officer || u.username.toLowerCase() === me) {
            actions.push(h('button', { type: 'button', class: 'small', test: 'user-password', 'data-user': u.username,
              onclick: () => passwordForm(u.username, err, load) }, 'Set password'));
          }
          return h('tr', { test: 'user-row', 'data-user': u.username, 'data-locked': String(!!u.locked), 'data-failures': u.failed_logins },
            h('td', null, u.username), h('td', null, u.role),
            h('td', { class: u.locked ? 'bad' : 'good', test: 'user-state' }, u.locked ? 'locked' : 'active'),
            h('td', { test: 'user-failures' }, String(u.failed_logins)),
            h('td', null, u.password_set ? 'yes' : 'no'),
            h('td', { class: 'actions' }, actions, err));
        }), { test: 'user-table', class: 'list' }));
    } catch (e) {
      listBox.replaceChildren(errorBox('users-error', e));
    }
  }
  await load();
  if (officer) view.append(createForm(load));
}

function passwordForm(username, slot, reload) {
  const pw = h('input', { type: 'password', test: 'new-password', autocomplete: 'new-password', required: true });
  const form = h('form', { class: 'inline', test: 'password-form' }, pw,
    h('button', { type: 'submit', class: 'small', test: 'password-submit' }, 'Save'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await put(`/users/${enc(username)}/password`, { password: pw.value });
      flash(`Password of ${username} set.`);
      reload();
    } catch (e) {
      slot.replaceChildren(form, errorBox('user-error', e));
    }
  });
  slot.replaceChildren(form);
  pw.focus();
}

function createForm(reload) {
  const name = h('input', { name: 'username', test: 'new-username', required: true });
  const role = select({ name: 'role', test: 'new-role' }, ['crypto-user', 'crypto-officer'], 'crypto-user');
  const pw = h('input', { type: 'password', name: 'password', test: 'new-user-password', autocomplete: 'new-password', required: true });
  const err = h('div');
  const form = h('form', { class: 'card', test: 'user-create-form' },
    h('h2', null, 'Create a user'),
    h('div', { class: 'row' }, field('User name', name), field('Role', role), field('Password', pw)),
    h('button', { type: 'submit', test: 'user-create' }, 'Create'), err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.replaceChildren();
    try {
      await post('/users', { username: name.value.trim(), role: role.value, password: pw.value });
      flash(`Created ${name.value.trim()}.`);
      name.value = ''; pw.value = '';
      reload();
    } catch (e) {
      err.replaceChildren(errorBox('user-create-error', e));
    }
  });
  return form;
}
