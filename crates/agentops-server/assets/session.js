// One session: its summary, a waterfall of its events with the inspector, the chat transcript
// of its LLM calls, its logs (OTLP log records and uploaded SDK logs) and details.
//
// The page loads the session's tree without payloads (`?events=tree`) and fetches an event's
// payloads (prompt, completion, params, returns, attributes, messages) when it is opened,
// keeping them; the chat view fetches those of the calls it shows. While the session runs, the
// page asks every few seconds only for what was stored after the answer it has (`since`, the
// answer's cursor) and merges it in; once the session has ended it reloads it whole, once.

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
/** Set on an event object once it holds its payloads (a symbol: not part of its JSON). */
const FULL = Symbol('payloads');
/** More events than this without payloads: the chat view fetches the whole session at once. */
const CHAT_FETCH_EACH_MAX = 50;
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
  // what the live refresh asks after (the last answer's cursor)
  let cursor = null;
  // the events shown, by id (tree node fields; every field once fetched)
  let known = new Map();
  // events fetched in full, by id, and the fetches in flight
  const payloads = new Map();
  const inflight = new Map();
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
    const llmCalls = tree ? tree.order.filter((n) => n.e.kind === 'llms' || n.e.kind === 'llm').length : 0;
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
        stat('Events', formatInt(s.event_count ?? (tree ? tree.order.length : 0)), { cls: 'mono', testid: 'session-events' }),
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
    else if (tab === 'chat') renderChat();
    else if (tab === 'logs') renderLogs();
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
        if (!n || withPayloads(n.e)) return renderInspector(inspector, n, ctx);
        renderInspector(inspector, n, { ...ctx, loading: true });
        fetchPayloads(n.e.id)
          .then((full) => {
            mergePayloads(n.e, full);
            if (!destroyed && waterfall && waterfall.selected() === n) renderInspector(inspector, n, ctx);
          })
          .catch((e) => {
            if (!destroyed && waterfall && waterfall.selected() === n) renderInspector(inspector, n, { ...ctx, loadError: e.message || String(e) });
          });
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

  // --- payloads, fetched when an event is opened and kept ------------------------------------
  /** Whether the event object holds its payloads (fetched, or kept from an earlier fetch). */
  function withPayloads(e) {
    if (e[FULL]) return true;
    const kept = payloads.get(e.id);
    if (kept) mergePayloads(e, kept);
    return Boolean(kept);
  }

  function mergePayloads(e, full) {
    Object.assign(e, full);
    e[FULL] = true;
  }

  /** The event in full (`/events/{id}`), fetched once. */
  function fetchPayloads(eventId) {
    if (payloads.has(eventId)) return Promise.resolve(payloads.get(eventId));
    if (!inflight.has(eventId)) {
      const p = api(`/api/v1/sessions/${encodeURIComponent(id)}/events/${encodeURIComponent(eventId)}`)
        .then((full) => {
          payloads.set(eventId, full);
          return full;
        })
        .finally(() => inflight.delete(eventId));
      inflight.set(eventId, p);
    }
    return inflight.get(eventId);
  }

  /** Forget what was fetched of an event whose derived fields may have changed (a new log
   * record of its span can add to its messages). */
  function forgetPayloads(eventId) {
    payloads.delete(eventId);
    const e = known.get(eventId);
    if (e) delete e[FULL];
  }

  /** The payloads of every event the chat view may show: the whole session at once when many
   * are missing (the first time), else each missing event. */
  async function loadChatPayloads() {
    const missing = tree.order.filter((n) => !withPayloads(n.e));
    if (!missing.length) return;
    if (missing.length > CHAT_FETCH_EACH_MAX) {
      const data = await api(`/api/v1/sessions/${encodeURIComponent(id)}?events=full`);
      for (const full of data.events || []) {
        payloads.set(full.id, full);
        const e = known.get(full.id);
        if (e) mergePayloads(e, full);
      }
      return;
    }
    const queue = missing.slice();
    const worker = async () => {
      for (let n = queue.shift(); n; n = queue.shift()) mergePayloads(n.e, await fetchPayloads(n.e.id));
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  }

  function renderChat() {
    const box = h('div', { class: 'scroll-pane' });
    body.appendChild(box);
    const show = () => {
      clear(box);
      chat = chatView(box, tree, { onOpen: openInTimeline });
    };
    if (tree.order.every((n) => withPayloads(n.e))) return show();
    box.appendChild(h('div', { class: 'loading-msg muted', 'data-testid': 'chat-loading' }, 'Loading the conversation…'));
    const shownTree = tree;
    loadChatPayloads()
      .then(() => {
        if (!destroyed && tab === 'chat' && box.isConnected && tree === shownTree) show();
      })
      .catch((e) => {
        if (destroyed || !box.isConnected) return;
        clear(box);
        box.appendChild(h('div', { class: 'empty error-state', 'data-testid': 'chat-error' }, h('h3', null, 'Could not load the conversation'), h('p', { class: 'muted' }, e.message || String(e))));
      });
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

  const detailPath = () => `/api/v1/sessions/${encodeURIComponent(id)}?events=tree`;

  /** A whole answer: replaces what the page has (payloads fetched before are kept). */
  function applyWhole(data) {
    const { events, event_tree: treeNodes = [], ...rest } = data;
    detail = rest;
    cursor = typeof data.cursor === 'string' ? data.cursor : null;
    const flat = new Map((events || []).map((e) => [e.id, e]));
    known = new Map(treeNodes.map((t) => [t.id, flat.get(t.id) || t]));
    const t = performance.now();
    tree = buildTree(treeNodes, [...known.values()]);
    timings.tree_ms = performance.now() - t;
  }

  /** A delta (`since`): the session now, every event's place in the tree, and what was stored
   * after the cursor; merged into what the page has. Whether anything was added. */
  function applyDelta(data) {
    const { events: added = [], event_tree: outline, log_records: records = [], logs = [], ...rest } = data;
    const before = detail;
    detail = { ...rest, log_records: logRecords().concat(records), logs: (before.logs || []).concat(logs) };
    cursor = typeof data.cursor === 'string' ? data.cursor : cursor;
    const grew = added.length > 0 || records.length > 0 || logs.length > 0 || before.end_time !== detail.end_time || before.end_state !== detail.end_state || before.event_count !== detail.event_count;
    // (nothing new: the tree the waterfall shows stays, nodes and all)
    if (!grew) return false;
    // (no outline: no event and no log record is new, the tree is as it was)
    if (!Array.isArray(outline)) return true;
    for (const e of added) known.set(e.id, e);
    for (const r of records) if (r && r.event_id != null) forgetPayloads(String(r.event_id));
    // parenthood and tool links can change as events arrive: the outline says them all
    const treeNodes = outline.map((o) => {
      const e = known.get(o.id);
      if (e) e.tool_links = Array.isArray(o.tool_links) ? o.tool_links : [];
      return { id: o.id, parent_id: o.parent_id, depth: o.depth, failed: Boolean(e && e.failed) };
    });
    tree = buildTree(treeNodes, [...known.values()]);
    return true;
  }

  async function load() {
    try {
      const t = performance.now();
      const data = await api(detailPath());
      timings.fetch_ms = performance.now() - t;
      if (destroyed) return;
      applyWhole(data);
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
      let data = await api(detailPath() + (cursor ? `&since=${encodeURIComponent(cursor)}` : ''));
      if (destroyed) return;
      let grew = true;
      if (data.delta === true) {
        grew = applyDelta(data);
        // ended: the whole session once more, then no more polling
        if (!isRunning()) {
          data = await api(detailPath());
          if (destroyed) return;
          applyWhole(data);
          grew = true;
        }
      } else applyWhole(data);
      if (grew) {
        const scrollTop = waterfall ? waterfall.scroller.scrollTop : 0;
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
