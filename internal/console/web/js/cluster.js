// #/cluster: the slot's emulated HSMs (docs/cluster.md) with controls to
// take one down, degrade it or bring it up; each HSM's budgets and
// counters per class; the fault plan (load, clear) and a reset. The
// status refreshes every 2 s while the page is open.
import { get, poll, put, del, post } from './api.js';
import { h, table, field, errorBox } from './dom.js';
import { flash } from './app.js';

const EXAMPLE = `{
  "seed": 1,
  "steps": [
    {"at": "5s", "hsm": 1, "state": "down"},
    {"at": "20s", "hsm": 1, "state": "up"}
  ]
}`;

export async function render(view) {
  view.append(h('h1', null, 'Cluster'));
  const statusBox = h('div', { test: 'cluster-status' });
  const err = h('div');
  view.append(err, statusBox);

  const set = async (k, state) => {
    err.replaceChildren();
    try {
      draw(await put(`/cluster/hsms/${k}`, { state }));
      flash(`HSM ${k} is ${state}.`);
    } catch (e) { err.replaceChildren(errorBox('cluster-error', e)); }
  };

  function draw(st) {
    const hsms = st.hsms || [];
    const rows = hsms.map((x) => h('tr', { test: 'hsm-row', 'data-index': x.index, 'data-state': x.state },
      h('td', null, String(x.index)), h('td', null, x.id),
      h('td', { class: 'state-' + x.state, test: 'hsm-state' }, x.state),
      h('td', { class: 'nowrap' }, fmtTime(x.since)), h('td', null, String(x.epoch)),
      h('td', { class: 'nowrap' },
        h('button', { type: 'button', class: 'small danger', test: 'hsm-down', 'data-index': x.index, disabled: x.state === 'down', onclick: () => set(x.index, 'down') }, 'Down'), ' ',
        h('button', { type: 'button', class: 'small', test: 'hsm-degrade', 'data-index': x.index, disabled: x.state === 'degraded', onclick: () => set(x.index, 'degraded') }, 'Degrade'), ' ',
        h('button', { type: 'button', class: 'small', test: 'hsm-up', 'data-index': x.index, disabled: x.state === 'up', onclick: () => set(x.index, 'up') }, 'Up'))));
    const classRows = [];
    for (const x of hsms) {
      for (const c of x.classes || []) {
        classRows.push(h('tr', { test: 'class-row', 'data-index': x.index, 'data-class': c.class },
          h('td', null, String(x.index)), h('td', null, c.class),
          h('td', null, c.budget_per_second ? String(c.budget_per_second) : 'unlimited'),
          h('td', null, (c.used_per_second || 0).toFixed(1)), h('td', null, String(c.calls)),
          h('td', null, String(c.throttled)), h('td', null, String(c.retried)), h('td', null, String(c.faults_injected))));
      }
    }
    const plan = st.plan;
    statusBox.replaceChildren(
      h('p', null, `${hsms.length} HSMs, key availability check ${st.key_availability_check ? 'on' : 'off'}, retry mode ${st.retry_mode || ''}`,
        st.store_down_until ? h('strong', { class: 'bad' }, ` — store down until ${fmtTime(st.store_down_until)}`) : null),
      table(['HSM', 'ID', 'State', 'Since', 'Epoch', ''], rows, { test: 'hsm-table', class: 'list' }),
      h('h2', null, 'Budgets and counters'),
      classRows.length
        ? table(['HSM', 'Class', 'Budget/s', 'Used/s', 'Calls', 'Throttled', 'Retried', 'Faults'], classRows, { test: 'class-table', class: 'list' })
        : h('p', { class: 'muted' }, 'No calls yet, no budgets.'),
      h('h2', null, 'Fault plan'),
      plan
        ? h('div', { test: 'plan-status' }, h('p', null, `Loaded ${fmtTime(plan.loaded)}, seed ${plan.seed}.`),
          table(['#', 'Step', 'State', 'Remaining'], (plan.steps || []).map((s) =>
            h('tr', { test: 'plan-step', 'data-state': s.state }, h('td', null, String(s.index)), h('td', null, s.step),
              h('td', null, s.state), h('td', null, s.remaining ? String(s.remaining) : ''))), { class: 'list' }))
        : h('p', { class: 'muted', test: 'plan-none' }, 'No plan loaded.'));
  }

  let planLoaded = false;
  // refresh reads the status: get for the page's first look, poll (which
  // does not renew the session's idle timer) for the timer's.
  async function refresh(read = poll) {
    try {
      const st = await read('/cluster');
      planLoaded = !!st.plan;
      draw(st);
      return true;
    } catch (e) {
      if (e.status === 404) {
        statusBox.replaceChildren(h('p', { class: 'muted', test: 'no-cluster' }, e.message ||
          'This slot has no emulated cluster: set hsms = N (or cluster = on) in its section of the configuration.'));
        return false;
      }
      if (e.status !== 401) statusBox.replaceChildren(errorBox('cluster-error', e));
      return e.status !== 401;
    }
  }
  if (!(await refresh(get))) return null;

  const planText = h('textarea', { test: 'plan-text', rows: 8, class: 'mono', spellcheck: 'false' });
  planText.value = EXAMPLE;
  if (planLoaded) {
    // GET /cluster/plan answers {"plan": {...}}: the editor holds the
    // plan file itself, which PUT /cluster/plan takes back.
    try { planText.value = JSON.stringify((await get('/cluster/plan')).plan, null, 2); } catch (e) { /* cleared meanwhile */ }
  }
  const planErr = h('div');
  const planForm = h('form', { class: 'card', test: 'plan-form' },
    h('h2', null, 'Load a plan'),
    h('p', { class: 'muted' }, 'A plan file as for gohsm cluster plan load (docs/cluster.md).'),
    field('Plan (JSON)', planText),
    h('div', { class: 'row' },
      h('button', { type: 'submit', test: 'plan-load' }, 'Load plan'),
      h('button', { type: 'button', class: 'danger', test: 'plan-clear', onclick: async () => {
        planErr.replaceChildren();
        try { draw(await del('/cluster/plan')); flash('Plan cleared.'); } catch (e) { planErr.replaceChildren(errorBox('plan-error', e)); }
      } }, 'Clear plan'),
      h('button', { type: 'button', class: 'danger', test: 'cluster-reset', onclick: async () => {
        if (!confirm('Reset the cluster: every HSM up, counters and plan cleared?')) return;
        planErr.replaceChildren();
        try { draw(await post('/cluster/reset')); flash('Cluster reset.'); } catch (e) { planErr.replaceChildren(errorBox('plan-error', e)); }
      } }, 'Reset cluster')),
    planErr);
  planForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    planErr.replaceChildren();
    let plan;
    try { plan = JSON.parse(planText.value); } catch (e) {
      planErr.replaceChildren(errorBox('plan-error', new Error(`not JSON: ${e.message}`)));
      return;
    }
    try { draw(await put('/cluster/plan', plan)); flash('Plan loaded.'); } catch (e) { planErr.replaceChildren(errorBox('plan-error', e)); }
  });
  view.append(planForm);

  const timer = setInterval(() => refresh(), 2000);
  return () => clearInterval(timer);
}

function fmtTime(t) {
  if (!t) return '';
  const d = new Date(t);
  return isNaN(d) ? String(t) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
