// Statistics: cost and tokens over time and by model, error rate, durations.

import { api, query } from './api.js';
import { h, clear, icon } from './dom.js';
import { formatCost, formatDuration, formatInt, formatPercent, formatTokens } from './format.js';
import { barChart, hbarChart } from './charts.js';

const RANGES = [
  ['24h', 'Last 24 hours', 1],
  ['7d', 'Last 7 days', 7],
  ['30d', 'Last 30 days', 30],
  ['90d', 'Last 90 days', 90],
  ['all', 'All time', 0],
];

function kpi(label, value, sub, { cls = '', testid = null } = {}) {
  return h('div', { class: 'kpi card' }, h('div', { class: 'kpi-label' }, label), h('div', { class: `kpi-value ${cls}`, 'data-testid': testid }, value), sub ? h('div', { class: 'kpi-sub muted' }, sub) : null);
}

function dayKey(d) {
  return d.toISOString().slice(0, 10);
}

/** Every day from the start of the range (or the first day with data) to today, zeros where
 * nothing happened; at most 400 days (the latest). */
function fillDays(days, fromDays) {
  const byDate = new Map(days.map((d) => [d.date, d]));
  let endKey = dayKey(new Date());
  if (days.length && days[days.length - 1].date > endKey) endKey = days[days.length - 1].date;
  const end = new Date(endKey + 'T00:00:00Z');
  let start = fromDays ? new Date(Date.now() - (fromDays - 1) * 86400e3) : days.length ? new Date(days[0].date + 'T00:00:00Z') : end;
  start = new Date(Math.max(start.getTime(), end.getTime() - 399 * 86400e3));
  const cur = new Date(dayKey(start) + 'T00:00:00Z');
  const out = [];
  while (cur <= end) {
    const key = dayKey(cur);
    out.push(byDate.get(key) || { date: key, sessions: 0, events: 0, error_events: 0, input_tokens: 0, output_tokens: 0, cost: 0 });
    cur.setUTCDate(cur.getUTCDate() + 1);
  }
  return out;
}

export function statsView(root, params) {
  document.title = 'Stats · AgentOps';
  let range = RANGES.some(([k]) => k === params.get('range')) ? params.get('range') : '30d';
  let destroyed = false;
  let charts = [];

  const rangeSelect = h(
    'select',
    { class: 'input select', 'aria-label': 'Time range', 'data-testid': 'stats-range' },
    RANGES.map(([k, label]) => h('option', { value: k, selected: k === range }, label)),
  );
  rangeSelect.value = range;
  rangeSelect.addEventListener('change', () => {
    range = rangeSelect.value;
    history.replaceState(null, '', `#/stats?range=${range}`);
    load();
  });
  const content = h('div', { class: 'stats-content' });
  const page = h(
    'section',
    { class: 'page', 'data-testid': 'stats-page' },
    h('div', { class: 'page-head' }, h('div', null, h('h1', null, 'Stats'), h('p', { class: 'muted sub' }, 'Cost, tokens, errors and durations of the sessions started in the range (days in UTC).')), h('div', { class: 'head-right' }, rangeSelect)),
    content,
  );
  root.appendChild(page);

  function unavailable(message) {
    clear(content);
    content.appendChild(
      h(
        'div',
        { class: 'card empty', 'data-testid': 'stats-unavailable' },
        h('div', { class: 'empty-icon' }, icon('alert', 22)),
        h('h3', null, 'Stats unavailable'),
        h('p', { class: 'muted' }, message),
      ),
    );
  }

  function render(st) {
    for (const c of charts) c._destroy && c._destroy();
    charts = [];
    clear(content);
    const days = fillDays(Array.isArray(st.days) ? st.days : [], RANGES.find(([k]) => k === range)[2]);
    const models = Array.isArray(st.models) ? st.models : [];
    const d = st.duration_ms || {};
    const tokens = (st.input_tokens || 0) + (st.output_tokens || 0);
    const short = (date) => date.slice(5).replace('-', '/');
    const kpis = h(
      'div',
      { class: 'kpis' },
      kpi('Sessions', formatInt(st.sessions), `${formatInt(st.events)} events`, { testid: 'kpi-sessions' }),
      kpi('Cost', formatCost(st.cost), st.sessions ? `${formatCost((st.cost || 0) / st.sessions)} per session` : null, { cls: 'cost', testid: 'kpi-cost' }),
      kpi('Tokens', formatTokens(tokens), `${formatTokens(st.input_tokens)} in · ${formatTokens(st.output_tokens)} out`, { testid: 'kpi-tokens' }),
      kpi('Session error rate', formatPercent(st.error_rate), `${formatInt(st.sessions_with_errors)} of ${formatInt(st.sessions)} sessions had errors`, { cls: st.error_rate > 0 ? 'err-text' : '', testid: 'kpi-error-rate' }),
      kpi('Event error rate', formatPercent(st.event_error_rate), `${formatInt(st.error_events)} failed events`),
      kpi('Duration p50', formatDuration(d.p50), `p90 ${formatDuration(d.p90)} · p99 ${formatDuration(d.p99)}`, { testid: 'kpi-duration' }),
    );
    const cost = barChart({ rows: days.map((x) => ({ label: x.date, short: short(x.date), values: [x.cost] })), series: [{ name: 'Cost', cls: 'c1' }], format: formatCost, testid: 'chart-cost' });
    const tok = barChart({
      rows: days.map((x) => ({ label: x.date, short: short(x.date), values: [x.input_tokens, x.output_tokens] })),
      series: [
        { name: 'Input', cls: 'c2' },
        { name: 'Output', cls: 'c3' },
      ],
      format: formatTokens,
      integer: true,
      testid: 'chart-tokens',
    });
    const ev = barChart({
      rows: days.map((x) => ({ label: x.date, short: short(x.date), values: [Math.max(0, x.events - x.error_events), x.error_events] })),
      series: [
        { name: 'OK', cls: 'c4' },
        { name: 'Failed', cls: 'c5' },
      ],
      format: (v) => formatTokens(Math.round(v)),
      integer: true,
      testid: 'chart-events',
    });
    const sess = barChart({ rows: days.map((x) => ({ label: x.date, short: short(x.date), values: [x.sessions] })), series: [{ name: 'Sessions', cls: 'c2' }], format: (v) => formatInt(Math.round(v)), integer: true, testid: 'chart-sessions' });
    charts = [cost, tok, ev, sess];
    const byModel = models.length
      ? h(
          'div',
          null,
          hbarChart({ rows: models.map((m) => ({ label: m.model, value: m.cost || 0 })), format: formatCost, testid: 'chart-models' }),
          h(
            'table',
            { class: 'table' },
            h('thead', null, h('tr', null, ['Model', 'Calls', 'Input', 'Output', 'Cost'].map((t, i) => h('th', { class: i ? 'num' : '' }, t)))),
            h(
              'tbody',
              null,
              models.map((m) =>
                h(
                  'tr',
                  null,
                  h('td', null, m.model),
                  h('td', { class: 'num mono' }, formatInt(m.calls)),
                  h('td', { class: 'num mono' }, formatTokens(m.input_tokens)),
                  h('td', { class: 'num mono' }, formatTokens(m.output_tokens)),
                  h('td', { class: 'num mono cost' }, formatCost(m.cost)),
                ),
              ),
            ),
          ),
        )
      : h('p', { class: 'muted' }, 'No LLM calls in this range.');
    const durations = h(
      'div',
      { class: 'pctl' },
      [
        ['p50', d.p50],
        ['p90', d.p90],
        ['p99', d.p99],
      ].map(([k, v]) => {
        const max = d.p99 || d.p90 || d.p50 || 1;
        return h('div', { class: 'hbar-row' }, h('div', { class: 'hbar-label' }, k), h('div', { class: 'hbar-track' }, h('div', { class: 'hbar-fill c2', style: { width: `${v == null ? 0 : Math.max(0.5, (v / max) * 100)}%` } })), h('div', { class: 'hbar-value mono' }, formatDuration(v)));
      }),
      h('p', { class: 'muted small' }, `${formatInt(d.count)} ended sessions`),
    );
    content.append(
      kpis,
      h(
        'div',
        { class: 'grid2' },
        h('section', { class: 'card pad' }, h('h3', null, 'Cost per day'), cost),
        h('section', { class: 'card pad' }, h('h3', null, 'Tokens per day'), tok),
        h('section', { class: 'card pad' }, h('h3', null, 'Events per day'), ev),
        h('section', { class: 'card pad' }, h('h3', null, 'Sessions per day'), sess),
        h('section', { class: 'card pad' }, h('h3', null, 'By model'), byModel),
        h('section', { class: 'card pad' }, h('h3', null, 'Session duration'), durations),
      ),
    );
  }

  async function load() {
    clear(content);
    content.appendChild(h('div', { class: 'loading-msg muted' }, 'Loading stats…'));
    const days = RANGES.find(([k]) => k === range)[2];
    // From the start of the first UTC day shown: the days drawn are whole, and the server
    // answers whole hours from its hourly totals instead of reading every event.
    const from = days ? new Date(dayKey(new Date(Date.now() - (days - 1) * 86400e3)) + 'T00:00:00Z').toISOString() : null;
    try {
      const st = await api('/api/v1/stats' + query({ from }));
      if (destroyed) return;
      render(st);
    } catch (e) {
      if (destroyed || e.status === 401) return;
      unavailable(`The server could not compute statistics: ${e.message}`);
    }
  }

  load();
  return {
    destroy() {
      destroyed = true;
      for (const c of charts) c._destroy && c._destroy();
    },
  };
}
