// One session: its summary, a waterfall of its events with the inspector, the chat transcript
// of its LLM calls, its logs (OTLP log records and uploaded SDK logs) and details. Refreshed
// while the session runs.

import { api, ApiError } from './api.js';
import { h, append, clear, icon, copyText, safeHref, debounce } from './dom.js';
import {
  parseTime,
  formatCost,
  formatDuration,
  formatDateTime,
  formatRelative,
  formatTokens,
  formatInt,
  kindClass,
  kindLabel,
  shortId,
} from './format.js';
import { stateBadge } from './sessions.js';
import { buildTree, createWaterfall } from './waterfall.js';
import { renderInspector, jsonView, logRecordList } from './inspector.js';
import { chatView, isLlmCall } from './chat.js';

const POLL_MS = 5000;
const TABS = [
  ['timeline', 'Timeline'],
  ['chat', 'Chat'],
  ['logs', 'Logs'],
  ['details', 'Details'],
];

function stat(label, value, { title = null, cls = '', testid = null } = {}) {
  return h('div', { class: 'stat', title }, h('div', { class: 'stat-label' }, label), h('div', { class: `stat-value ${cls}`, 'data-testid': testid }, value));
}

export function sessionView(root, id, params) {
  performance.clearMarks('session-view-start');
  performance.clearMarks('waterfall-rendered');
  performance.mark('session-view-start');
  const startedAt = performance.now();
  let detail = null;
  let tree = null;
  let waterfall = null;
  let chat = null;
  let tab = TABS.some(([k]) => k === params.get('tab')) ? params.get('tab') : 'timeline';
  let selectedId = params.get('event');
  let destroyed = false;
  let paused = false;
  let pollTimer = 0;
  let tickTimer = 0;
  const timings = {};

  const page = h('section', { class: 'session-page', 'data-testid': 'session-page' });
  const headEl = h('div', { class: 'session-head' });
  const tabsEl = h('nav', { class: 'tabs', role: 'tablist' });
  const body = h('div', { class: 'tab-body' });
  page.append(headEl, tabsEl, body);
  root.appendChild(page);
  headEl.appendChild(h('div', { class: 'skeleton-head' }, h('div', { class: 'skel w40' }), h('div', { class: 'skel w70' })));
  body.appendChild(h('div', { class: 'loading-msg muted' }, 'Loading session…'));

  const isRunning = () => detail && detail.state === 'Running';

  function bounds() {
    const start = parseTime(detail.start_time);
    const end = detail.end_time ? parseTime(detail.end_time) : NaN;
    let t0 = Math.min(Number.isNaN(start) ? Infinity : start, tree.t0);
    let t1 = Math.max(Number.isNaN(end) ? -Infinity : end, tree.t1);
    if (isRunning()) t1 = Math.max(t1, Date.now());
    if (!Number.isFinite(t0)) t0 = Date.now();
    if (!Number.isFinite(t1) || t1 <= t0) t1 = t0 + 1;
    return [t0, t1];
  }

  function syncUrl() {
    const p = new URLSearchParams();
    if (tab !== 'timeline') p.set('tab', tab);
    if (selectedId) p.set('event', selectedId);
    const text = p.toString();
    history.replaceState(null, '', `#/sessions/${encodeURIComponent(id)}${text ? '?' + text : ''}`);
  }

  // --- header -------------------------------------------------------------------------------
  const durationValue = h('span');
  function renderHead() {
    clear(headEl);
    const s = detail;
    document.title = `${s.name || 'Session ' + shortId(s.id)} · AgentOps`;
    const start = parseTime(s.start_time);
    const events = s.events || [];
    const llmCalls = events.filter((e) => e.kind === 'llms' || e.kind === 'llm').length;
    const errors = s.error_count ?? (tree ? tree.errors.length : 0);
    const agents = s.agents || [];
    const tags = s.tags || [];
    updateDuration();
    append(headEl, [
      h('div', { class: 'crumbs' }, h('a', { href: '#/sessions', class: 'crumb-link' }, icon('back', 14), 'Sessions'), h('span', { class: 'muted' }, '/'), h('span', { class: 'mono muted' }, shortId(s.id))),
      h(
        'div',
        { class: 'title-row' },
        h('h1', { 'data-testid': 'session-title' }, s.name || `Session ${shortId(s.id)}`),
        stateBadge(s),
        h('span', { class: 'spacer' }),
        h('button', { type: 'button', class: 'btn btn-ghost btn-sm', title: 'Copy the session id', onclick: () => copyText(s.id) }, icon('copy', 14), h('span', { class: 'mono' }, s.id)),
      ),
      s.end_state_reason ? h('p', { class: 'reason', 'data-testid': 'end-state-reason' }, s.end_state_reason) : null,
      h(
        'div',
        { class: 'stats-strip' },
        stat('Started', formatRelative(start), { title: formatDateTime(start) }),
        stat('Duration', durationValue, { cls: 'mono' }),
        stat('Events', formatInt(s.event_count ?? events.length), { cls: 'mono', testid: 'session-events' }),
        stat('LLM calls', formatInt(llmCalls), { cls: 'mono' }),
        stat('Tokens', formatTokens((s.input_tokens || 0) + (s.output_tokens || 0)), { cls: 'mono', title: `${formatInt(s.input_tokens)} input · ${formatInt(s.output_tokens)} output` }),
        stat('Cost', formatCost(s.cost), { cls: 'mono cost', testid: 'session-cost' }),
        stat('Errors', formatInt(errors), { cls: 'mono' + (errors ? ' err-text' : '') }),
      ),
      tags.length || agents.length
        ? h(
            'div',
            { class: 'chips-row' },
            tags.map((t) => h('span', { class: 'tag' }, t)),
            agents.map((a) => h('span', { class: 'chip k-agent', title: a.id }, a.name || shortId(a.id))),
          )
        : null,
    ]);
  }

  function updateDuration() {
    const s = detail;
    const start = parseTime(s.start_time);
    const end = s.end_time ? parseTime(s.end_time) : isRunning() ? Date.now() : NaN;
    durationValue.textContent = formatDuration(s.duration_ms ?? (Number.isNaN(start) || Number.isNaN(end) ? null : end - start));
  }

  // --- tabs ---------------------------------------------------------------------------------
  function renderTabs() {
    clear(tabsEl);
    const llm = tree.order.filter((n) => isLlmCall(n.e)).length;
    const counts = { chat: llm, logs: logRecords().length + (detail.logs || []).length };
    for (const [key, label] of TABS) {
      tabsEl.appendChild(
        h(
          'button',
          {
            type: 'button',
            role: 'tab',
            class: 'tab' + (tab === key ? ' on' : ''),
            'aria-selected': tab === key ? 'true' : 'false',
            'data-testid': `tab-${key}`,
            onclick: () => {
              if (tab === key) return;
              tab = key;
              syncUrl();
              renderTabs();
              renderBody();
            },
          },
          label,
          counts[key] != null ? h('span', { class: 'tab-count' }, formatInt(counts[key])) : null,
        ),
      );
    }
  }

  function renderBody() {
    if (waterfall) waterfall.destroy();
    if (chat) chat.destroy();
    waterfall = null;
    chat = null;
    clear(body);
    if (tab === 'timeline') renderTimeline();
    else if (tab === 'chat') {
      const box = h('div', { class: 'scroll-pane' });
      body.appendChild(box);
      chat = chatView(box, tree, { onOpen: openInTimeline });
    } else if (tab === 'logs') renderLogs();
    else renderDetails();
  }

  /** Shows the event of `n` in the timeline, selected. */
  function openInTimeline(n) {
    selectedId = n.e.id;
    tab = 'timeline';
    syncUrl();
    renderTabs();
    renderBody();
  }

  const resolve = (eventId) => (tree && tree.byId.get(eventId)) || null;
  const logRecords = () => (Array.isArray(detail.log_records) ? detail.log_records : []);

  // --- timeline -----------------------------------------------------------------------------
  function renderTimeline() {
    const inspector = h('aside', { class: 'inspector-pane', 'aria-label': 'Event inspector' });
    const [t0, t1] = bounds();
    const filterInput = h('input', { class: 'input filter-input', type: 'search', placeholder: 'Filter events…', 'aria-label': 'Filter events by name, kind or model', 'data-testid': 'event-filter' });
    const filterCount = h('span', { class: 'muted small mono', 'data-testid': 'event-filter-count' });
    const applyFilter = debounce(() => {
      // The tab may have changed or the page moved on while the debounce waited.
      if (!waterfall || !filterInput.isConnected) return;
      const count = waterfall.setFilter(filterInput.value);
      filterCount.textContent = filterInput.value.trim() ? `${formatInt(count)} match${count === 1 ? '' : 'es'}` : '';
    }, 150);
    filterInput.addEventListener('input', applyFilter);
    const ctx = {
      t0,
      agents: detail.agents,
      resolve,
      logRecords: logRecords(),
      onJump: (n) => waterfall.select(n),
      onZoom: (n) => {
        waterfall.zoomTo(n);
        zoomLabel.textContent = zoomText();
      },
    };
    waterfall = createWaterfall({
      tree,
      t0,
      t1,
      isRunning,
      onFilterCleared: () => {
        filterInput.value = '';
        filterCount.textContent = '';
      },
      onSelect: (n) => {
        selectedId = n ? n.e.id : null;
        syncUrl();
        renderInspector(inspector, n, ctx);
        if (n && !('attributes' in n.e)) loadFull(n, inspector, ctx);
      },
    });
    const zoomLabel = h('span', { class: 'zoom-label mono', 'data-testid': 'zoom-level' });
    const zoomText = () => {
      const z = waterfall.zoomLevel();
      return z < 10 ? `${z.toFixed(1)}×` : `${Math.round(z)}×`;
    };
    const zoomed = (fn) => () => {
      fn();
      zoomLabel.textContent = zoomText();
    };
    waterfall.el.addEventListener('wheel', () => requestAnimationFrame(() => (zoomLabel.textContent = zoomText())), { passive: true });
    waterfall.el.addEventListener('pointermove', (ev) => {
      if (ev.buttons) zoomLabel.textContent = zoomText();
    });

    const kinds = new Map();
    for (const n of tree.order) kinds.set(n.e.kind, (kinds.get(n.e.kind) || 0) + 1);
    const legend = h(
      'div',
      { class: 'legend' },
      [...kinds.entries()]
        .sort((a, b) => b[1] - a[1])
        .map(([k, c]) => h('span', { class: 'legend-item' }, h('span', { class: `kind-dot ${kindClass(k)}` }), kindLabel(k), h('span', { class: 'muted mono' }, formatInt(c)))),
    );
    const errCount = tree.errors.length;
    const errorCtl = errCount
      ? h(
          'div',
          { class: 'btn-group' },
          h('button', { type: 'button', class: 'btn btn-sm btn-danger-soft', title: 'Previous error (Shift+E)', onclick: () => waterfall.prevError(), 'aria-label': 'Previous error' }, icon('collapse', 14)),
          h(
            'button',
            { type: 'button', class: 'btn btn-sm btn-danger-soft', title: 'Next error (E)', 'data-testid': 'next-error', onclick: () => waterfall.nextError() },
            icon('alert', 14),
            `Next error`,
            h('span', { class: 'count-pill' }, formatInt(errCount)),
          ),
        )
      : h('span', { class: 'muted small no-errors' }, 'No errors');
    const toolbar = h(
      'div',
      { class: 'timeline-toolbar' },
      h('label', { class: 'search filter' }, icon('search', 14), filterInput),
      filterCount,
      legend,
      h('span', { class: 'spacer' }),
      errorCtl,
      h(
        'div',
        { class: 'btn-group' },
        h('button', { type: 'button', class: 'btn btn-sm btn-secondary', title: 'Zoom out (-)', 'aria-label': 'Zoom out', 'data-testid': 'zoom-out', onclick: zoomed(() => waterfall.zoomOut()) }, icon('zoomOut', 14)),
        zoomLabel,
        h('button', { type: 'button', class: 'btn btn-sm btn-secondary', title: 'Zoom in (+)', 'aria-label': 'Zoom in', 'data-testid': 'zoom-in', onclick: zoomed(() => waterfall.zoomIn()) }, icon('zoomIn', 14)),
        h('button', { type: 'button', class: 'btn btn-sm btn-secondary', title: 'Fit the whole session (0)', 'data-testid': 'zoom-fit', onclick: zoomed(() => waterfall.fit()) }, icon('fit', 14), 'Fit'),
      ),
      h(
        'div',
        { class: 'btn-group' },
        h('button', { type: 'button', class: 'btn btn-sm btn-ghost', title: 'Expand every event', onclick: () => waterfall.expandAll() }, icon('expand', 14), 'Expand all'),
        h('button', { type: 'button', class: 'btn btn-sm btn-ghost', title: 'Collapse to the top-level events', onclick: () => waterfall.collapseAll() }, icon('collapse', 14), 'Collapse'),
      ),
    );
    const split = h('div', { class: 'split' }, h('div', { class: 'wf-pane' }, waterfall.el), inspector);
    body.append(h('div', { class: 'timeline' }, toolbar, split));
    waterfall.mounted();
    zoomLabel.textContent = zoomText();
    const initial = selectedId ? tree.byId.get(selectedId) : null;
    if (initial) waterfall.select(initial);
    else renderInspector(inspector, null, ctx);
    const onKey = (ev) => {
      if (ev.target.closest && ev.target.closest('input, textarea, select')) return;
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      if (ev.key === 'e') waterfall.nextError();
      else if (ev.key === 'E') waterfall.prevError();
      else if (ev.key === '+' || ev.key === '=') waterfall.zoomIn();
      else if (ev.key === '-') waterfall.zoomOut();
      else if (ev.key === '0') waterfall.fit();
      else return;
      zoomLabel.textContent = zoomText();
      ev.preventDefault();
    };
    body.addEventListener('keydown', onKey);
    if (!initial) waterfall.scroller.focus({ preventScroll: true });
  }

  /** An event listed without its payloads (a lighter session answer): fetch it whole. */
  async function loadFull(n, inspector, ctx) {
    try {
      const full = await api(`/api/v1/sessions/${encodeURIComponent(id)}/events/${encodeURIComponent(n.e.id)}`);
      if (!full || destroyed) return;
      Object.assign(n.e, full);
      if (waterfall && waterfall.selected() === n) renderInspector(inspector, n, ctx);
    } catch {
      /* the listed fields stay shown */
    }
  }

  // --- logs and details ---------------------------------------------------------------------
  function renderLogs() {
    const records = logRecords();
    const logs = detail.logs || [];
    const box = h('div', { class: 'scroll-pane logs-pane' });
    if (!records.length && !logs.length) {
      box.appendChild(
        h(
          'div',
          { class: 'empty' },
          h('h3', null, 'No logs'),
          h('p', { class: 'muted' }, 'OpenTelemetry log records (/v1/logs) and output uploaded by the SDK (/v4/logs/upload/) appear here.'),
        ),
      );
    }
    if (records.length) {
      const [t0] = bounds();
      box.appendChild(
        h(
          'section',
          { class: 'logs-section' },
          h('h3', null, 'Log records ', h('span', { class: 'muted mono' }, formatInt(records.length))),
          logRecordList(records, { t0, resolve, onJump: openInTimeline }),
        ),
      );
    }
    if (logs.length) {
      box.appendChild(
        h(
          'section',
          { class: 'logs-section', 'data-testid': 'uploaded-logs' },
          records.length ? h('h3', null, 'Uploaded by the SDK') : null,
          logs.map((text) => h('pre', { class: 'code log' }, typeof text === 'string' ? text : JSON.stringify(text, null, 2))),
        ),
      );
    }
    body.appendChild(box);
  }

  function renderDetails() {
    const s = detail;
    const summary = {};
    for (const k of ['id', 'name', 'start_time', 'end_time', 'end_state', 'end_state_reason', 'tags', 'event_count', 'input_tokens', 'output_tokens', 'cost']) {
      if (k in s) summary[k] = s[k];
    }
    const box = h(
      'div',
      { class: 'scroll-pane details' },
      h('section', { class: 'card pad' }, h('h3', null, 'Session'), jsonView(summary)),
      h('section', { class: 'card pad' }, h('h3', null, 'Host environment'), s.host_env ? jsonView(s.host_env) : h('p', { class: 'muted' }, 'Not reported.')),
      h(
        'section',
        { class: 'card pad' },
        h('h3', null, 'Agents'),
        (s.agents || []).length
          ? h('ul', { class: 'plain' }, s.agents.map((a) => h('li', null, h('strong', null, a.name || '—'), ' ', h('span', { class: 'mono muted' }, a.id))))
          : h('p', { class: 'muted' }, 'No agents registered.'),
      ),
      s.video
        ? h('section', { class: 'card pad' }, h('h3', null, 'Recording'), h('a', { href: safeHref(s.video), target: '_blank', rel: 'noopener noreferrer' }, s.video))
        : null,
    );
    body.appendChild(box);
  }

  // --- loading and live refresh ---------------------------------------------------------------
  function firstRenderDone() {
    requestAnimationFrame(() => {
      performance.mark('waterfall-rendered');
      const total = performance.now() - startedAt;
      timings.total_ms = total;
      window.__agentopsPerf = { ...timings, events: tree.order.length, dom_rows: waterfall ? waterfall.domRows() : 0 };
      page.dataset.firstRenderMs = total.toFixed(1);
    });
  }

  function apply(data) {
    detail = data;
    const t = performance.now();
    tree = buildTree(detail.event_tree || [], detail.events || []);
    timings.tree_ms = performance.now() - t;
  }

  async function load() {
    try {
      const t = performance.now();
      const data = await api(`/api/v1/sessions/${encodeURIComponent(id)}`);
      timings.fetch_ms = performance.now() - t;
      if (destroyed) return;
      apply(data);
      renderHead();
      renderTabs();
      const r = performance.now();
      renderBody();
      timings.render_ms = performance.now() - r;
      firstRenderDone();
      schedulePoll();
    } catch (e) {
      if (destroyed || e.status === 401) return;
      clear(headEl);
      clear(body);
      headEl.appendChild(h('div', { class: 'crumbs' }, h('a', { href: '#/sessions', class: 'crumb-link' }, icon('back', 14), 'Sessions')));
      body.appendChild(
        h(
          'div',
          { class: 'empty error-state', 'data-testid': 'session-error' },
          h('h3', null, e instanceof ApiError && e.status === 404 ? 'Session not found' : 'Could not load this session'),
          h('p', { class: 'muted' }, e.message),
          h('a', { class: 'btn btn-secondary', href: '#/sessions' }, 'Back to sessions'),
        ),
      );
    }
  }

  function schedulePoll() {
    clearTimeout(pollTimer);
    clearInterval(tickTimer);
    if (destroyed || paused || !isRunning()) return;
    tickTimer = setInterval(updateDuration, 1000);
    pollTimer = setTimeout(refresh, POLL_MS);
  }

  async function refresh() {
    if (destroyed || paused) return;
    if (document.hidden) return schedulePoll();
    try {
      const data = await api(`/api/v1/sessions/${encodeURIComponent(id)}`);
      if (destroyed) return;
      const count = (d) => (d.events || []).length + (Array.isArray(d.log_records) ? d.log_records.length : 0);
      const grew = count(data) !== count(detail) || data.end_time !== detail.end_time || data.end_state !== detail.end_state;
      if (grew) {
        const scrollTop = waterfall ? waterfall.scroller.scrollTop : 0;
        apply(data);
        renderHead();
        renderTabs();
        if (tab === 'timeline') {
          renderBody();
          if (waterfall) waterfall.scroller.scrollTop = scrollTop;
        } else if (tab !== 'chat') renderBody();
      } else if (waterfall && isRunning()) {
        updateDuration();
        waterfall.setBounds(...bounds());
      }
    } catch {
      /* try again at the next tick */
    }
    schedulePoll();
  }

  load();

  return {
    destroy() {
      destroyed = true;
      clearTimeout(pollTimer);
      clearInterval(tickTimer);
      if (waterfall) waterfall.destroy();
      if (chat) chat.destroy();
    },
    pause() {
      paused = true;
      clearTimeout(pollTimer);
      clearInterval(tickTimer);
    },
  };
}
