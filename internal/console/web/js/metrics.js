// #/metrics: live charts of what the slot's library processes do, from
// the counters they publish (token/metrics; docs/console.md): operations
// per second by class, failed and throttled calls per second, and the
// latency percentiles of one class. It polls GET /api/v1/metrics?since=
// every second and appends; the charts are uPlot's (vendor/uplot).
//
// For tests and people alike the page also keeps figures in the DOM:
// data-test="ops-total" data-value = operations in every sample the page
// received (the console's last 10 minutes at the first poll, then each
// new second); "ops-rate" the last sample's operations per second; one
// "rate-CLASS" per class with its last rate; "samples" how many samples
// the charts hold.
import { get, poll as pollGet, query } from './api.js';
import { h, select, errorBox, clear } from './dom.js';

const KEEP = 600; // samples kept: 10 minutes at the console's 1 s interval
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

export async function render(view) {
  const samples = [];
  const classes = [];
  let since = 0;
  let opsTotal = 0;
  let intervalMS = 1000;
  let latencyClass = '';
  let charts = [];
  let chartKey = '';
  let timer = null;
  let stopped = false;

  const note = h('p', { class: 'muted', test: 'metrics-note' });
  const err = h('div');
  const totals = h('div', { class: 'totals' },
    stat('Operations seen', 'ops-total'), stat('Operations/s', 'ops-rate'),
    stat('Failed/s', 'failed-rate'), stat('Throttled/s', 'throttled-rate'),
    stat('p50 µs', 'latency-p50'), stat('p95 µs', 'latency-p95'), stat('p99 µs', 'latency-p99'), stat('Samples', 'samples'));
  const rates = h('div', { test: 'class-rates', class: 'rates' });
  let windowS = 60;
  const winSel = select({ test: 'metrics-window' }, [['60', 'last minute'], ['300', 'last 5 minutes'], ['600', 'last 10 minutes']], '60');
  winSel.addEventListener('change', () => { windowS = Number(winSel.value); rebuild(true); });
  const latSel = select({ test: 'latency-class' }, [['', 'busiest class']], '');
  latSel.addEventListener('change', () => { latencyClass = latSel.value; rebuild(true); });
  const boxes = [h('div', { class: 'chart', test: 'chart-ops' }), h('div', { class: 'chart', test: 'chart-errors' }), h('div', { class: 'chart', test: 'chart-latency' })];
  view.append(h('h1', null, 'Metrics ', winSel), note, err, totals, rates,
    h('section', { class: 'card' }, h('h2', null, 'Operations per second by class'), boxes[0]),
    h('section', { class: 'card' }, h('h2', null, 'Failed and throttled calls per second'), boxes[1]),
    h('section', { class: 'card' }, h('h2', null, 'Latency (µs) ', latSel), boxes[2]));

  function busiest() {
    if (latencyClass) return latencyClass;
    let best = '', n = -1;
    for (const c of classes) {
      let sum = 0;
      for (const s of samples) sum += (s.classes[c] && s.classes[c].ops) || 0;
      if (sum > n) { best = c; n = sum; }
    }
    return best;
  }

  function width(box) { return Math.max(320, box.clientWidth || view.clientWidth - 40); }

  function data() {
    const xs = samples.map((s) => s.t / 1000);
    const col = (f) => samples.map((s) => f(s.classes || {}));
    const sumOf = (k) => col((cs) => Object.values(cs).reduce((a, m) => a + (m[k] || 0), 0));
    const lc = busiest();
    const lat = (k) => col((cs) => (cs[lc] && cs[lc].ops > 0 ? cs[lc][k] : null));
    return [
      [xs, ...classes.map((c) => col((cs) => (cs[c] ? cs[c].ops : 0)))],
      [xs, sumOf('failed'), sumOf('throttled')],
      [xs, lat('p50_us'), lat('p95_us'), lat('p99_us')],
    ];
  }

  // rebuild makes the charts again when the set of classes (or the
  // latency class) changed: uPlot's series are fixed at creation.
  function rebuild(force) {
    const key = classes.join(',') + '|' + busiest();
    const d = data();
    if (!force && key === chartKey && charts.length) {
      charts.forEach((c, i) => c.setData(d[i]));
      return;
    }
    chartKey = key;
    charts.forEach((c) => c.destroy());
    boxes.forEach(clear);
    if (typeof uPlot === 'undefined') {
      err.replaceChildren(errorBox('metrics-error', new Error('uPlot did not load')));
      return;
    }
    const lc = busiest();
    const series = [
      classes.map((c, i) => ({ label: c, stroke: PALETTE[i % PALETTE.length], width: 2, value: (u, v) => fmt(v) })),
      [{ label: 'failed/s', stroke: '#d62728', width: 4 }, { label: 'throttled/s', stroke: '#ff7f0e', width: 2, dash: [6, 3] }],
      [{ label: `${lc || '—'} p50`, stroke: '#2ca02c', width: 2 }, { label: 'p95', stroke: '#ff7f0e', width: 2 }, { label: 'p99', stroke: '#d62728', width: 2 }],
    ];
    charts = boxes.map((box, i) => new uPlot({
      width: width(box),
      height: 220,
      // A window that ends at the last sample: the charts scroll.
      scales: { x: { time: true, range: (u, min, max) => [max - windowS, max] }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      series: [{}, ...series[i]],
      axes: [{}, { size: 70 }],
      legend: { live: true },
    }, d[i], box));
  }

  function stat(label, test) {
    return h('div', { class: 'stat' }, h('span', { class: 'label' }, label), h('span', { class: 'value', test, 'data-value': '0' }, '0'));
  }
  function setStat(test, v) {
    const el = totals.querySelector(`[data-test="${test}"]`);
    el.dataset.value = String(v);
    el.textContent = fmt(v);
  }

  function ingest(r) {
    intervalMS = r.interval_ms || 1000;
    note.textContent = r.enabled
      ? `Sampled every ${intervalMS / 1000} s from the counters the slot's library processes publish.`
      : 'Metrics are off for this slot (metrics = off in the configuration): no process publishes counters.';
    note.dataset.enabled = String(!!r.enabled);
    // A class gets a series once it has calls: the token has a dozen
    // classes and an application uses two or three.
    let changed = false;
    for (const s of r.samples || []) {
      if (s.t <= since) continue;
      since = s.t;
      s.classes = s.classes || {};
      for (const [c, m] of Object.entries(s.classes)) {
        if (!classes.includes(c) && (m.ops || m.failed || m.throttled)) { classes.push(c); changed = true; }
        opsTotal += (m.ops || 0) * intervalMS / 1000;
      }
      samples.push(s);
    }
    if (changed) {
      const order = r.classes || [];
      classes.sort((a, b) => order.indexOf(a) - order.indexOf(b));
    }
    while (samples.length > KEEP) samples.shift();
    if (changed) {
      latSel.replaceChildren(h('option', { value: '' }, 'busiest class'), ...classes.map((c) => h('option', { value: c, selected: c === latencyClass }, c)));
    }
    const last = samples[samples.length - 1];
    const cs = (last && last.classes) || {};
    const sum = (k) => Object.values(cs).reduce((a, m) => a + (m[k] || 0), 0);
    setStat('ops-total', Math.round(opsTotal));
    setStat('ops-rate', sum('ops'));
    setStat('failed-rate', sum('failed'));
    setStat('throttled-rate', sum('throttled'));
    setStat('samples', samples.length);
    // The latency figures are the last sample's, of the class the latency
    // chart shows (the busiest, or the one chosen).
    const lc = busiest();
    const lm = cs[lc] || {};
    for (const q of ['p50', 'p95', 'p99']) {
      totals.querySelector(`[data-test="latency-${q}"]`).previousSibling.textContent = lc ? `${lc} ${q} µs` : `${q} µs`;
    }
    setStat('latency-p50', lm.ops ? lm.p50_us : 0);
    setStat('latency-p95', lm.ops ? lm.p95_us : 0);
    setStat('latency-p99', lm.ops ? lm.p99_us : 0);
    if (classes.length === 0) {
      rates.replaceChildren(h('span', { class: 'muted', test: 'no-calls' }, 'No calls yet: a class appears with its first call.'));
    } else rates.replaceChildren(...classes.map((c) => {
      const m = cs[c] || {};
      return h('span', { class: 'rate', test: `rate-${c}`, 'data-class': c, 'data-value': String(m.ops || 0) },
        `${c}: ${fmt(m.ops || 0)}/s`, m.ops ? ` p50 ${fmt(m.p50_us)} µs` : '');
    }));
    rebuild(changed);
  }

  // poll reads the series: get on opening the page, then the timer's
  // polls, which do not renew the session's idle timer.
  async function poll(read = pollGet) {
    // The page left while a request was out (before render returned
    // its stop function): stop here.
    if (!view.contains(totals)) stopped = true;
    if (stopped) return;
    try {
      ingest(await read('/metrics' + query({ since: since || '' })));
      err.replaceChildren();
    } catch (e) {
      if (e.status === 401) return;
      err.replaceChildren(errorBox('metrics-error', e));
    }
    if (!stopped) timer = setTimeout(() => poll(), 1000);
  }

  const onResize = () => charts.forEach((c, i) => c.setSize({ width: width(boxes[i]), height: 220 }));
  window.addEventListener('resize', onResize);
  await poll(get);
  return () => {
    stopped = true;
    clearTimeout(timer);
    window.removeEventListener('resize', onResize);
    charts.forEach((c) => c.destroy());
  };
}

function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  if (Math.abs(v) >= 100 || Number.isInteger(v)) return String(Math.round(v));
  return v.toFixed(1);
}
