// #/token: the token's status (the `gohsm token list` row and the slot's
// profile) and, for an officer, the backup download (`gohsm token backup`).
import { get } from './api.js';
import { h, kv, errorBox } from './dom.js';
import { isOfficer } from './app.js';

export async function render(view) {
  view.append(h('h1', null, 'Token'));
  try {
    const st = await get('/token');
    view.append(h('section', { class: 'card' }, kv(st, { test: 'token-status' })));
  } catch (e) {
    if (e.status === 401) throw e;
    view.append(errorBox('token-error', e));
  }
  if (isOfficer()) {
    view.append(h('section', { class: 'card' },
      h('h2', null, 'Backup'),
      h('p', null, 'The token file as gohsm token backup writes it (docs/backup.md): restore it with gohsm token restore.'),
      h('a', { class: 'button', href: '/api/v1/token/backup', download: '', test: 'token-backup' }, 'Download backup')));
  }
}
