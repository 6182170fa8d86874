// The event inspector: what an event is, what it cost, how long it took, what went wrong and
// what triggered it, which tool events it called or was called by, its messages as a
// conversation, its log records, and its payloads as pretty-printed JSON.

import { h, clear, icon, copyText, jsonView } from './dom.js';
import { parseTime, formatCost, formatDuration, formatInt, formatDateTime, kindClass, kindLabel } from './format.js';
import { toMessages, messageList, normalized, conversation, partContext, toolLinks, compactJson } from './chat.js';

export { jsonView };

function section(title, body, { open = true, actions = null, testid = null } = {}) {
  const d = h('details', { class: 'insp-section', 'data-testid': testid }, h('summary', null, h('span', null, title), actions ? h('span', { class: 'summary-actions' }, actions) : null), body);
  d.open = open;
  return d;
}

function metric(label, value, { title = null, cls = '', testid = null } = {}) {
  return h('div', { class: 'metric', title }, h('div', { class: 'metric-label' }, label), h('div', { class: `metric-value ${cls}`, 'data-testid': testid }, value));
}

function eventLink(n, onJump) {
  return h(
    'button',
    { type: 'button', class: 'event-link', onclick: () => onJump(n), 'data-testid': 'event-link' },
    h('span', { class: `kind-dot ${kindClass(n.e.kind)}` }),
    h('span', { class: 'event-link-name' }, n.e.name || kindLabel(n.e.kind)),
    h('span', { class: 'muted small' }, kindLabel(n.e.kind)),
  );
}

// --- tool links ------------------------------------------------------------------------------

function toolLinkButton(link, ctx) {
  const node = ctx.resolve ? ctx.resolve(String(link.event_id)) : null;
  if (!node) {
    return h('div', { class: 'event-link missing', title: 'This event is not in the session' }, h('span', { class: 'event-link-name mono' }, String(link.event_id)));
  }
  return h(
    'button',
    {
      type: 'button',
      class: 'event-link tool-link',
      onclick: () => ctx.onJump(node),
      title: `Select it in the timeline${link.call_id ? ` (call ${link.call_id})` : ''}`,
      'data-testid': 'tool-link',
      'data-direction': link.direction,
      'data-event-id': node.e.id,
    },
    h('span', { class: `kind-dot ${kindClass(node.e.kind)}` }),
    h('span', { class: 'event-link-name' }, node.e.name || kindLabel(node.e.kind)),
    link.call_id ? h('span', { class: 'muted small mono' }, String(link.call_id)) : null,
    h('span', { class: 'tool-link-arrow', 'aria-hidden': 'true' }, '→'),
  );
}

const LINK_GROUPS = [
  ['calls', 'Called tool', 'Called tools'],
  ['called_by', 'Called by', 'Called by'],
];

/** "Called tool …" on an LLM event, "Called by …" on a tool event. */
function toolLinkBlocks(e, ctx) {
  const seen = new Set();
  const links = toolLinks(e).filter((l) => {
    const key = `${l.direction} ${l.event_id}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return LINK_GROUPS.map(([direction, one, many]) => {
    const group = links.filter((l) => l.direction === direction);
    if (!group.length) return null;
    return h(
      'div',
      { class: 'relation', 'data-testid': `tool-links-${direction}` },
      h('span', { class: 'muted small' }, group.length === 1 ? one : `${many} (${group.length})`),
      group.map((l) => toolLinkButton(l, ctx)),
    );
  });
}

// --- log records ------------------------------------------------------------------------------

const SEVERITIES = [
  [/fatal|crit|emerg|alert/i, 'fatal'],
  [/err/i, 'error'],
  [/warn/i, 'warn'],
  [/debug|trace/i, 'debug'],
];

function severityClass(severity) {
  const found = SEVERITIES.find(([re]) => re.test(String(severity || '')));
  return found ? found[1] : 'info';
}

function clockTime(ms) {
  return Number.isNaN(ms) ? '—' : formatDateTime(ms, true).slice(11);
}

function logBody(body) {
  if (body == null) return '';
  return typeof body === 'string' ? body : compactJson(body);
}

function logEventLink(node, onJump) {
  return h(
    'button',
    {
      type: 'button',
      class: 'log-event',
      title: `Select ${node.e.name || 'the event'} in the timeline`,
      'data-testid': 'log-event-link',
      'data-event-id': node.e.id,
      onclick: (ev) => {
        ev.preventDefault(); // inside a <summary>: do not unfold
        onJump(node);
      },
    },
    h('span', { class: `kind-dot ${kindClass(node.e.kind)}` }),
    h('span', { class: 'log-event-name' }, node.e.name || kindLabel(node.e.kind)),
  );
}

/**
 * One OTLP log record: time, severity, event name, body (text, or JSON on one line), its event
 * (when `resolve(eventId)` finds it), and its attributes when unfolded.
 */
function logRecord(r, { t0 = NaN, resolve = null, onJump = null }) {
  const ms = parseTime(r.time);
  const node = r.event_id != null && resolve ? resolve(String(r.event_id)) : null;
  const attributes = r.attributes && typeof r.attributes === 'object' ? r.attributes : {};
  const extra = {};
  if (Object.keys(attributes).length) extra.attributes = attributes;
  if (r.trace_id) extra.trace_id = r.trace_id;
  if (r.span_id) extra.span_id = r.span_id;
  const folds = Object.keys(extra).length > 0;
  const offset = Number.isNaN(t0) || Number.isNaN(ms) ? '' : ` · +${formatDuration(ms - t0)}`;
  const line = h(
    folds ? 'summary' : 'div',
    { class: 'log-line' },
    h('span', { class: 'log-time mono', title: `${formatDateTime(ms, true)}${offset}` }, clockTime(ms)),
    h('span', { class: `sev sev-${severityClass(r.severity)}`, 'data-testid': 'log-severity' }, r.severity ? String(r.severity) : '—'),
    r.event_name ? h('span', { class: 'log-name mono', 'data-testid': 'log-event-name' }, String(r.event_name)) : null,
    h('span', { class: 'log-body' + (typeof r.body === 'string' ? '' : ' mono'), 'data-testid': 'log-body' }, logBody(r.body)),
    node && onJump ? logEventLink(node, onJump) : null,
  );
  const props = { class: 'log-record', 'data-testid': 'log-record', 'data-event-id': r.event_id == null ? null : String(r.event_id) };
  return folds ? h('details', props, line, jsonView(extra)) : h('div', props, line);
}

/** Log records in time order (`opts`: `{t0, resolve(eventId), onJump(node), limit}`). */
export function logRecordList(records, opts = {}) {
  const sorted = records
    .map((r, i) => [r, parseTime(r && r.time), i])
    .sort((a, b) => (Number.isNaN(a[1]) ? Infinity : a[1]) - (Number.isNaN(b[1]) ? Infinity : b[1]) || a[2] - b[2])
    .map(([r]) => r);
  const list = h('div', { class: 'log-records', 'data-testid': 'log-records' });
  const step = opts.limit || 500;
  let shown = 0;
  const more = h('button', { type: 'button', class: 'btn btn-secondary btn-sm log-more' });
  const next = () => {
    const end = Math.min(sorted.length, shown + step);
    for (; shown < end; shown++) list.appendChild(logRecord(sorted[shown] || {}, opts));
    more.textContent = `Show ${formatInt(Math.min(step, sorted.length - shown))} more of ${formatInt(sorted.length - shown)}`;
    more.hidden = shown >= sorted.length;
  };
  more.addEventListener('click', next);
  next();
  return h('div', null, list, more);
}

/** The event's own log records: its `log_records`, else the session's that name it. */
function eventLogRecords(e, ctx) {
  if (Array.isArray(e.log_records) && e.log_records.length) return e.log_records;
  return (ctx.logRecords || []).filter((r) => r && r.event_id != null && String(r.event_id) === e.id);
}

// --- messages ---------------------------------------------------------------------------------

/** Input and output as a conversation; the stored prompt and completion for older events. */
function messageSections(e, ctx) {
  const conv = normalized(e);
  if (conv) {
    const parts = partContext(e, { resolve: ctx.resolve, onJump: ctx.onJump });
    return [
      conv.input.length ? section('Input', conversation(conv.input, parts), { testid: 'inspector-prompt' }) : null,
      conv.output.length ? section('Output', conversation(conv.output, parts), { testid: 'inspector-completion' }) : null,
    ].filter(Boolean);
  }
  const prompt = toMessages(e.prompt, 'user');
  const completion = toMessages(e.completion, 'assistant');
  return [
    prompt.length ? section('Prompt', messageList(prompt), { testid: 'inspector-prompt' }) : null,
    completion.length ? section('Completion', messageList(completion), { testid: 'inspector-completion' }) : null,
  ].filter(Boolean);
}

/** The event's fields, in a stable order, for the raw view. */
function rawEvent(e) {
  const out = {};
  for (const [k, v] of Object.entries(e)) if (v !== undefined) out[k] = v;
  return out;
}

/**
 * Fills `container` with `node`'s details. `ctx`: `{t0, agents, onJump(node), onZoom(node),
 * resolve(eventId) → node, logRecords}` (the session's log records); `loading`: its payloads
 * are being fetched (only what the tree knows is shown); `loadError`: fetching them failed.
 */
export function renderInspector(container, node, ctx) {
  clear(container);
  if (!node) {
    container.appendChild(
      h(
        'div',
        { class: 'insp-empty' },
        h('h3', null, 'Select an event'),
        h('p', { class: 'muted' }, 'Click a row of the waterfall to see its input, output, tokens, cost and timing.'),
        h('p', { class: 'muted small' }, 'Keys: ↑ ↓ move · ← → fold · Enter zooms · E next error'),
      ),
    );
    return;
  }
  const e = node.e;
  const duration = Number.isNaN(node.end) ? (e.duration_ms ?? null) : node.end - node.start;
  const status = node.error ? 'error' : e.status || null;
  const agent = e.agent_id ? (ctx.agents || []).find((a) => a.id === e.agent_id) : null;

  const head = h(
    'div',
    { class: 'insp-head' },
    h(
      'div',
      { class: 'insp-title-row' },
      h('span', { class: `chip ${kindClass(e.kind)}` }, kindLabel(e.kind)),
      e.model ? h('span', { class: 'chip model-chip', title: e.provider ? `${e.provider} · ${e.model}` : e.model, 'data-testid': 'inspector-model' }, e.model) : null,
      status && e.kind !== 'errors' ? h('span', { class: `status-pill st-${status === 'error' ? 'error' : 'ok'}`, 'data-testid': 'inspector-status' }, status === 'error' ? 'Error' : status.toUpperCase() === 'OK' ? 'OK' : status) : null,
      h('span', { class: 'spacer' }),
      h('button', { type: 'button', class: 'icon-btn', title: 'Zoom the timeline to this event', onclick: () => ctx.onZoom(node) }, icon('zoomIn', 15)),
      h('button', { type: 'button', class: 'icon-btn', title: 'Copy the event as JSON', onclick: () => copyText(JSON.stringify(rawEvent(e), null, 2)) }, icon('copy', 15)),
    ),
    h('h2', { class: 'insp-title', 'data-testid': 'inspector-title' }, e.name || kindLabel(e.kind)),
    h('div', { class: 'insp-id mono muted', title: 'Event id' }, e.id),
  );

  const priced = e.input_tokens != null || e.output_tokens != null || e.cost != null || e.kind === 'llms';
  const instant = node.error && duration === 0;
  const metrics = h(
    'div',
    { class: 'metrics' },
    instant ? null : metric('Latency', formatDuration(duration), { testid: 'inspector-latency', title: Number.isNaN(node.end) ? 'not ended' : null }),
    metric(instant ? 'At' : 'Started', '+' + formatDuration(node.start - ctx.t0), { title: formatDateTime(node.start, true) }),
    priced ? metric('Cost', formatCost(e.cost), { cls: 'cost', testid: 'inspector-cost' }) : null,
    priced ? metric('Tokens in', formatInt(e.input_tokens), { testid: 'inspector-tokens-in', title: e.cached_tokens != null ? `${formatInt(e.cached_tokens)} cached` : null }) : null,
    priced ? metric('Tokens out', formatInt(e.output_tokens), { testid: 'inspector-tokens-out', title: e.reasoning_tokens != null ? `${formatInt(e.reasoning_tokens)} reasoning` : null }) : null,
    priced ? metric('Total tokens', formatInt((e.input_tokens || 0) + (e.output_tokens || 0))) : null,
    e.cached_tokens != null ? metric('Cached', formatInt(e.cached_tokens)) : null,
    e.reasoning_tokens != null ? metric('Reasoning', formatInt(e.reasoning_tokens)) : null,
    e.provider && !e.model ? metric('Provider', e.provider) : null,
    e.agent_id ? metric('Agent', agent ? agent.name : e.agent_id.slice(0, 8), { title: e.agent_id }) : null,
    node.children.length ? metric('Children', formatInt(node.size - 1), { title: `${node.children.length} direct` }) : null,
  );

  const parts = [head, metrics];

  // The payloads are being fetched: the rest once they are here.
  if (ctx.loading) {
    parts.push(h('div', { class: 'loading-msg muted small', 'data-testid': 'inspector-loading' }, 'Loading the event…'));
    container.appendChild(h('div', { class: 'insp', 'data-testid': 'inspector' }, parts));
    container.scrollTop = 0;
    return;
  }
  if (ctx.loadError) {
    parts.push(h('div', { class: 'error-box', 'data-testid': 'inspector-load-error' }, icon('alert', 14), `Could not load the event's payloads: ${ctx.loadError}`));
  }

  // What went wrong and what triggered it.
  if (node.error) {
    const attrs = e.attributes || {};
    parts.push(
      h(
        'div',
        { class: 'error-box big', 'data-testid': 'inspector-error' },
        h('div', { class: 'error-title' }, icon('alert', 15), attrs.error_type ? String(attrs.error_type) : 'Error', attrs.code != null ? h('span', { class: 'muted mono' }, ` code ${String(attrs.code)}`) : null),
        e.status_message ? h('p', { class: 'error-msg' }, e.status_message) : null,
        typeof attrs.logs === 'string' && attrs.logs.trim() ? h('pre', { class: 'code error-logs' }, attrs.logs) : null,
        node.parent
          ? h('div', { class: 'trigger' }, h('span', { class: 'muted small' }, e.kind === 'errors' ? 'Triggered by' : 'Inside'), eventLink(node.parent, ctx.onJump))
          : e.kind === 'errors'
            ? h('p', { class: 'muted small' }, 'No trigger event was recorded.')
            : null,
      ),
    );
  } else if (node.parent) {
    parts.push(h('div', { class: 'relation' }, h('span', { class: 'muted small' }, 'Parent'), eventLink(node.parent, ctx.onJump)));
  }
  const raised = node.children.filter((c) => c.error);
  if (raised.length) {
    parts.push(
      h(
        'div',
        { class: 'relation' },
        h('span', { class: 'muted small' }, raised.length === 1 ? 'Error inside' : `${raised.length} errors inside`),
        raised.slice(0, 5).map((c) => eventLink(c, ctx.onJump)),
      ),
    );
  }

  parts.push(...toolLinkBlocks(e, ctx).filter(Boolean));

  const messages = messageSections(e, ctx);
  parts.push(...messages);
  const logs = eventLogRecords(e, ctx);
  if (logs.length) parts.push(section(`Logs · ${formatInt(logs.length)}`, logRecordList(logs, { t0: ctx.t0, limit: 100 }), { testid: 'inspector-logs' }));
  if (e.params != null) parts.push(section('Params', jsonView(e.params)));
  if (e.returns != null) parts.push(section('Returns', jsonView(e.returns)));
  if (e.attributes && Object.keys(e.attributes).length) parts.push(section('Attributes', jsonView(e.attributes)));
  parts.push(
    section('Event JSON', jsonView(rawEvent(e), { testid: 'inspector-json' }), {
      open: !messages.length,
      testid: 'inspector-raw',
    }),
  );
  container.appendChild(h('div', { class: 'insp', 'data-testid': 'inspector' }, parts));
  container.scrollTop = 0;
}
