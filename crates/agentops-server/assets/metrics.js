// Metrics: the OTLP metrics sent to this project (the SDK's LLM calls, tokens and cost; any
// OpenTelemetry SDK's own), charted over time and split by one attribute (a model, a session tag).

import { api, query } from './api.js';
import { h, clear, icon } from './dom.js';
import { formatCost, formatDuration, formatTokens } from './format.js';
import { barChart, lineChart } from './charts.js';

/** [key, label, seconds, bucket seconds] */
const RANGES = [
  ['1h', 'Last hour', 3600, 60],
  ['6h', 'Last 6 hours', 6 * 3600, 300],
  ['24h', 'Last 24 hours', 86400, 1800],
  ['7d', 'Last 7 days', 7 * 86400, 3 * 3600],
  ['30d', 'Last 30 days', 30 * 86400, 12 * 3600],
];

/** Charts a person asks for first; shown when the project has the metric. */
const PRESETS = [
  { label: 'Tokens by model', name: 'agentops.llm.tokens', group: 'gen_ai.request.model' },
  { label: 'Cost by model', name: 'agentops.llm.cost', group: 'gen_ai.request.model' },
  { label: 'Cost by session tag', name: 'agentops.llm.cost', group: 'session.tags' },
  { label: 'Tokens by session tag', name: 'agentops.llm.tokens', group: 'session.tags' },
  { label: 'LLM calls by model', name: 'agentops.llm.calls', group: 'gen_ai.request.model' },
  { label: 'Call latency by model', name: 'gen_ai.client.operation.duration', group: 'gen_ai.request.model', stat: 'mean' },
];

/** What a distribution (histogram, summary) is charted by. */
const STATS = [
  ['sum', 'Sum'],
  ['count', 'Count'],
  ['mean', 'Mean'],
  ['max', 'Max'],
];

const COLOURS = ['c1', 'c2', 'c3', 'c4', 'c6', 'c7', 'c5', 'c8'];
/** Series drawn one by one; the rest are summed into "other" (bars) or left out (lines). */
const MAX_SERIES = 7;

const isDistribution = (kind) => kind === 'histogram' || kind === 'exponential_histogram' || kind === 'summary';

/** Formats a value of a metric with this unit and name. */
function formatterFor(unit, name) {
  if (unit === 'USD' || /cost/i.test(name)) return formatCost;
  if (unit === 's') return (v) => formatDuration(v * 1000);
  if (unit === 'ms') return (v) => formatDuration(v);
  if (unit === 'By') return (v) => `${formatTokens(Math.round(v))}B`;
  return (v) => (Number.isInteger(v) || Math.abs(v) >= 100 ? formatTokens(Math.round(v)) : String(Number(v.toPrecision(3))));
}

/** What a distribution is shown by unless chosen: durations by their mean, the rest by sum. */
function defaultStat(unit) {
  return unit === 's' || unit === 'ms' ? 'mean' : 'sum';
}

/** Whether the values of a bucket add up across series and time (bars), or not (lines). */
function stackable(kind, stat) {
  if (kind === 'gauge') return false;
  if (isDistribution(kind)) return stat === 'sum' || stat === 'count';
  return true;
}

function bucketValue(point, kind, stat) {
  if (!isDistribution(kind)) return point.value ?? null;
  if (stat === 'sum') return point.sum ?? null;
  if (stat === 'count') return point.count ?? null;
  if (stat === 'max') return point.max ?? null;
  return point.value ?? null;
}

function seriesName(attributes, group) {
  if (!group) return 'All';
  const value = attributes[group];
  if (value == null) return `(no ${group})`;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Every bucket start of the answer's range, as milliseconds. */
function bucketStarts(answer) {
  const step = answer.bucket_seconds * 1000;
  const from = Math.floor(Date.parse(answer.from) / step) * step;
  const to = Date.parse(answer.to);
  const out = [];
  for (let t = from; t < to && out.length < 10000; t += step) out.push(t);
  return out;
}

function bucketLabel(ms, rangeSeconds) {
  const d = new Date(ms);
  const hm = d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
  if (rangeSeconds <= 86400) return { label: d.toLocaleString('en-GB'), short: hm };
  const day = d.toLocaleDateString('en-GB', { day: '2-digit', month: '2-digit' });
  return { label: d.toLocaleString('en-GB'), short: rangeSeconds > 7 * 86400 ? day : `${day} ${hm}` };
}

export function metricsView(root, params) {
  document.title = 'Metrics · AgentOps';
  const state = {
    name: params.get('name') || '',
    group: params.get('group') ?? null,
    range: RANGES.some(([k]) => k === params.get('range')) ? params.get('range') : '24h',
    stat: STATS.some(([k]) => k === params.get('stat')) ? params.get('stat') : null,
  };
  let destroyed = false;
  let charts = [];
  let metrics = [];
  let timer = null;

  const controls = h('div', { class: 'metrics-controls' });
  const presets = h('div', { class: 'metrics-presets', 'data-testid': 'metrics-presets' });
  const content = h('div', { class: 'metrics-content' });
  root.appendChild(
    h(
      'section',
      { class: 'page', 'data-testid': 'metrics-page' },
      h(
        'div',
        { class: 'page-head' },
        h('div', null, h('h1', null, 'Metrics'), h('p', { class: 'muted sub' }, 'OpenTelemetry metrics sent to this project: the SDK’s LLM calls, tokens and cost, and any other SDK’s own, per time bucket.')),
        h('div', { class: 'head-right' }, controls),
      ),
      presets,
      content,
    ),
  );

  function remember() {
    const q = query({ name: state.name, group: state.group || null, range: state.range, stat: state.stat });
    history.replaceState(null, '', `#/metrics${q}`);
  }

  function message(title, text, testid) {
    clear(content);
    content.appendChild(h('div', { class: 'card empty', 'data-testid': testid }, h('div', { class: 'empty-icon' }, icon('alert', 22)), h('h3', null, title), h('p', { class: 'muted' }, text)));
  }

  function select(label, testid, options, value, onChange) {
    const el = h(
      'select',
      { class: 'input select', 'aria-label': label, 'data-testid': testid },
      options.map(([k, text]) => h('option', { value: k, selected: k === value }, text)),
    );
    el.value = value;
    el.addEventListener('change', () => onChange(el.value));
    return h('label', { class: 'field' }, label, el);
  }

  function renderControls(answer) {
    clear(controls);
    const metric = metrics.find((m) => m.name === state.name);
    controls.appendChild(
      select('Metric', 'metrics-name', metrics.map((m) => [m.name, `${m.name} (${m.kind})`]), state.name, (v) => {
        state.name = v;
        state.group = null;
        state.stat = null;
        load();
      }),
    );
    const keys = answer ? answer.attribute_keys || [] : [];
    const groups = [['', 'Nothing'], ...keys.map((k) => [k, k])];
    if (state.group && !keys.includes(state.group)) groups.push([state.group, state.group]);
    controls.appendChild(
      select('Split by', 'metrics-group', groups, state.group || '', (v) => {
        state.group = v;
        load();
      }),
    );
    if (metric && isDistribution(metric.kind)) {
      controls.appendChild(
        select('Show', 'metrics-stat', STATS, state.stat || defaultStat(answer && answer.unit), (v) => {
          state.stat = v;
          load();
        }),
      );
    }
    controls.appendChild(
      select('Range', 'metrics-range', RANGES.map(([k, label]) => [k, label]), state.range, (v) => {
        state.range = v;
        load();
      }),
    );
  }

  function renderPresets() {
    clear(presets);
    const names = new Set(metrics.map((m) => m.name));
    for (const p of PRESETS.filter((p) => names.has(p.name))) {
      const active = p.name === state.name && p.group === state.group;
      const button = h('button', { class: `btn btn-sm ${active ? 'btn-primary' : 'btn-ghost'}`, type: 'button', 'data-testid': 'metrics-preset' }, p.label);
      button.addEventListener('click', () => {
        Object.assign(state, { name: p.name, group: p.group, stat: p.stat || null });
        load();
      });
      presets.appendChild(button);
    }
  }

  function render(answer, metric) {
    for (const c of charts) c._destroy && c._destroy();
    charts = [];
    clear(content);
    const kind = answer.kind || metric.kind;
    const stat = state.stat || defaultStat(answer.unit);
    const format = formatterFor(isDistribution(kind) && stat === 'count' ? '' : answer.unit, answer.name);
    const rangeSeconds = RANGES.find(([k]) => k === state.range)[2];
    const starts = bucketStarts(answer);
    const index = new Map(starts.map((t, i) => [t, i]));
    const bars = stackable(kind, stat);
    let series = (answer.series || []).map((x) => {
      const values = starts.map(() => (bars ? 0 : null));
      for (const p of x.points) {
        const i = index.get(Date.parse(p.time));
        const v = bucketValue(p, kind, stat);
        if (i != null && v != null) values[i] = bars ? values[i] + v : v;
      }
      const present = values.filter((v) => v != null);
      const total = bars ? present.reduce((a, b) => a + b, 0) : present.length ? present.reduce((a, b) => a + b, 0) / present.length : null;
      const peak = present.length ? Math.max(...present) : null;
      return { name: seriesName(x.attributes || {}, state.group), values, total, peak };
    });
    series.sort((a, b) => (b.total ?? -Infinity) - (a.total ?? -Infinity) || a.name.localeCompare(b.name));
    const hidden = series.length > MAX_SERIES ? series.slice(MAX_SERIES) : [];
    series = series.slice(0, MAX_SERIES);
    if (hidden.length && bars) {
      const values = starts.map((_, i) => hidden.reduce((a, x) => a + (x.values[i] || 0), 0));
      series.push({ name: `${hidden.length} other`, values, total: values.reduce((a, b) => a + b, 0), peak: Math.max(...values) });
    }
    series.forEach((x, i) => (x.cls = COLOURS[i % COLOURS.length]));
    const labels = starts.map((t) => bucketLabel(t, rangeSeconds));
    const what = bars ? (isDistribution(kind) ? `${stat} per bucket` : 'added per bucket') : isDistribution(kind) ? `${stat} per bucket` : 'mean per bucket';
    const chart = !series.length
      ? h('p', { class: 'muted', 'data-testid': 'metrics-no-points' }, `No points of ${answer.name} in this range.`)
      : bars
        ? barChart({ rows: labels.map((l, i) => ({ ...l, values: series.map((x) => x.values[i]) })), series, format, height: 240, testid: 'metrics-chart' })
        : lineChart({ labels, series, format, testid: 'metrics-chart' });
    if (chart._destroy) charts.push(chart);
    const totalLabel = bars ? 'Total' : 'Mean';
    const table = h(
      'table',
      { class: 'table', 'data-testid': 'metrics-table' },
      h('thead', null, h('tr', null, [state.group || 'Series', totalLabel, 'Peak bucket'].map((t, i) => h('th', { class: i ? 'num' : '' }, t)))),
      h(
        'tbody',
        null,
        series.map((x) =>
          h('tr', { 'data-testid': 'metrics-row' }, h('td', null, h('span', { class: `swatch ${x.cls}` }), x.name), h('td', { class: 'num mono', 'data-testid': 'metrics-total' }, x.total == null ? '—' : format(x.total)), h('td', { class: 'num mono' }, x.peak == null ? '—' : format(x.peak))),
        ),
      ),
    );
    const note = hidden.length && !bars ? h('p', { class: 'muted small' }, `${hidden.length} smaller series not drawn.`) : null;
    content.appendChild(
      h(
        'section',
        { class: 'card pad' },
        h('div', { class: 'metrics-chart-head' }, h('h3', null, answer.name + (state.group ? ` by ${state.group}` : '')), h('span', { class: 'muted' }, [kind, answer.unit, answer.temporality, what].filter(Boolean).join(' · '))),
        chart,
        note,
        series.length ? table : null,
      ),
    );
  }

  async function load() {
    clearTimeout(timer);
    try {
      const list = await api('/api/v1/metrics');
      if (destroyed) return;
      metrics = Array.isArray(list.metrics) ? list.metrics : [];
      if (!metrics.length) {
        clear(controls);
        clear(presets);
        message('No metrics yet', 'Nothing has sent OpenTelemetry metrics to this project. The AgentOps SDK sends its own unless turned off; any OpenTelemetry SDK can send to /v1/metrics (OTLP/HTTP) or port 4317 (OTLP/gRPC).', 'metrics-empty');
        return;
      }
      if (!metrics.some((m) => m.name === state.name)) {
        const preset = PRESETS.find((p) => metrics.some((m) => m.name === p.name));
        Object.assign(state, preset ? { name: preset.name, group: state.group ?? preset.group } : { name: metrics[0].name });
      }
      const metric = metrics.find((m) => m.name === state.name);
      const [, , seconds, bucket] = RANGES.find(([k]) => k === state.range);
      const from = new Date(Date.now() - seconds * 1000).toISOString();
      const answer = await api('/api/v1/metrics' + query({ name: state.name, from, bucket, group_by: state.group || null }));
      if (destroyed) return;
      remember();
      renderControls(answer);
      renderPresets();
      render(answer, metric);
    } catch (e) {
      if (destroyed || e.status === 401) return;
      message('Metrics unavailable', `The server could not answer: ${e.message}`, 'metrics-error');
    } finally {
      if (!destroyed) timer = setTimeout(load, 30000);
    }
  }

  load();
  return {
    destroy() {
      destroyed = true;
      clearTimeout(timer);
      for (const c of charts) c._destroy && c._destroy();
    },
  };
}
