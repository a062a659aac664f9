// #/audit: the token's audit log (docs/audit.md) with the CLI's filters,
// and whether its MAC chains verify.
import { get, query } from './api.js';
import { h, table, field, errorBox, fmtTimeUS } from './dom.js';

let filter = { stream: '', since: '', opcode: '', user: '', limit: '200' };

// reset forgets the filter: a new login starts unfiltered.
export function reset() { filter = { stream: '', since: '', opcode: '', user: '', limit: '200' }; }

export async function render(view) {
  view.append(h('h1', null, 'Audit log'));
  const verifyBox = h('section', { class: 'card', test: 'audit-verify' }, h('p', { class: 'muted' }, 'Verifying…'));
  const inputs = {
    stream: h('input', { name: 'stream', test: 'audit-stream', value: filter.stream, placeholder: 'every stream (hsm-0, …)' }),
    since: h('input', { name: 'since', test: 'audit-since', value: filter.since, placeholder: 'sequence number', inputmode: 'numeric' }),
    opcode: h('input', { name: 'opcode', test: 'audit-opcode', value: filter.opcode, placeholder: 'CN_LOGIN, 0xd, …' }),
    user: h('input', { name: 'user', test: 'audit-user', value: filter.user, placeholder: 'any' }),
    limit: h('input', { name: 'limit', test: 'audit-limit', value: filter.limit, inputmode: 'numeric' }),
  };
  const form = h('form', { class: 'filters', test: 'audit-filter' },
    field('Stream', inputs.stream), field('From seq', inputs.since), field('Opcode', inputs.opcode),
    field('User', inputs.user), field('Limit', inputs.limit),
    h('button', { type: 'submit', test: 'audit-apply' }, 'Show'));
  const listBox = h('div');
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    for (const k of Object.keys(filter)) filter[k] = inputs[k].value.trim();
    load();
    verify();
  });
  view.append(verifyBox, form, listBox);

  async function verify() {
    try {
      const r = await get('/audit/verify' + query({ stream: filter.stream }));
      verifyBox.dataset.ok = String(!!r.ok);
      verifyBox.replaceChildren(
        h('h2', null, 'Verification: ', h('span', { class: r.ok ? 'good' : 'bad', test: 'audit-verify-status' }, r.ok ? 'every chain verifies' : 'FAILED')),
        table(['Stream', 'Result'], (r.streams || []).map((s) => h('tr', { test: 'audit-stream-result', 'data-stream': s.stream, 'data-ok': String(s.ok !== false) },
          h('td', null, s.stream || ''), h('td', { class: s.ok === false ? 'bad' : null }, streamText(s)))), { class: 'list' }));
    } catch (e) {
      verifyBox.dataset.ok = 'false';
      verifyBox.replaceChildren(errorBox('audit-verify-error', e));
    }
  }

  async function load() {
    try {
      const { records } = await get('/audit' + query(filter));
      if (!records || records.length === 0) {
        listBox.replaceChildren(h('p', { class: 'muted', test: 'audit-empty' }, 'No records.'));
        return;
      }
      listBox.replaceChildren(table(['Stream', 'Seq', 'Time (UTC)', 'Opcode', 'Response', 'User', 'Actor', 'Key', 'Detail'],
        records.map((r) => {
          const e = r.event || {};
          return h('tr', { test: 'audit-row', 'data-stream': r.stream, 'data-seq': r.seq, 'data-opcode': r.opcode },
            h('td', null, r.stream), h('td', null, String(r.seq)), h('td', { class: 'nowrap' }, fmtTimeUS(e.time_us)),
            h('td', null, r.opcode), h('td', { class: e.response_code ? 'bad' : null }, e.response || ''),
            h('td', null, e.user_name || ''), h('td', null, e.actor || ''),
            h('td', null, e.key_handle ? String(e.key_handle) : ''), h('td', null, e.detail || ''));
        }), { test: 'audit-table', class: 'list' }));
    } catch (e) {
      listBox.replaceChildren(errorBox('audit-error', e));
    }
  }

  await Promise.all([verify(), load()]);
}

function streamText(s) {
  if (s.ok === false || s.reason) {
    return `FAILED${s.bad_seq ? ` at seq ${s.bad_seq}` : ''}${s.reason ? `: ${s.reason}` : ''}`;
  }
  const parts = [];
  if (s.records !== undefined) parts.push(`${s.records} records`);
  if (s.first !== undefined) parts.push(`seq ${s.first}..${s.last}`);
  if (s.archived) parts.push(`${s.archived} from archives`);
  if (s.unchecked_before_first) parts.push('records before the first not checked (rotated)');
  return parts.join(', ') || JSON.stringify(s);
}
