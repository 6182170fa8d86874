// The event inspector: what an event is, what it cost, how long it took, what went wrong and
// what triggered it, and its payloads as pretty-printed JSON.

import { h, clear, icon, copyText } from './dom.js';
import { formatCost, formatDuration, formatInt, formatDateTime, kindClass, kindLabel } from './format.js';
import { toMessages, messageList } from './chat.js';

const JSON_LIMIT = 200000;

/** Pretty-printed, highlighted JSON (built from text nodes only). */
export function jsonView(value, { testid } = {}) {
  const pre = h('pre', { class: 'json', 'data-testid': testid || null });
  const pieces = [];
  const push = (t, cls) => pieces.push([t, cls]);
  const walk = (v, indent) => {
    if (v === null) return push('null', 'j-null');
    if (typeof v === 'string') return push(JSON.stringify(v), 'j-str');
    if (typeof v === 'number') return push(String(v), 'j-num');
    if (typeof v === 'boolean') return push(String(v), 'j-bool');
    const pad = '  '.repeat(indent + 1);
    if (Array.isArray(v)) {
      if (!v.length) return push('[]', 'j-punct');
      push('[\n', 'j-punct');
      v.forEach((x, k) => {
        push(pad, '');
        walk(x, indent + 1);
        push(k < v.length - 1 ? ',\n' : '\n', 'j-punct');
      });
      return push('  '.repeat(indent) + ']', 'j-punct');
    }
    if (typeof v === 'object') {
      const keys = Object.keys(v);
      if (!keys.length) return push('{}', 'j-punct');
      push('{\n', 'j-punct');
      keys.forEach((key, k) => {
        push(pad, '');
        push(JSON.stringify(key), 'j-key');
        push(': ', 'j-punct');
        walk(v[key], indent + 1);
        push(k < keys.length - 1 ? ',\n' : '\n', 'j-punct');
      });
      return push('  '.repeat(indent) + '}', 'j-punct');
    }
    return push(String(v), '');
  };
  walk(value, 0);
  let total = 0;
  let cut = false;
  for (const [t, cls] of pieces) {
    if (total > JSON_LIMIT) {
      cut = true;
      break;
    }
    total += t.length;
    if (cls) pre.appendChild(h('span', { class: cls }, t));
    else pre.appendChild(document.createTextNode(t));
  }
  if (cut) {
    const rest = h('button', { type: 'button', class: 'link-btn' }, 'Show everything');
    rest.addEventListener('click', () => {
      pre.textContent = JSON.stringify(value, null, 2);
    });
    return h('div', null, pre, rest);
  }
  return pre;
}

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

/** The event's fields, in a stable order, for the raw view. */
function rawEvent(e) {
  const out = {};
  for (const [k, v] of Object.entries(e)) if (v !== undefined) out[k] = v;
  return out;
}

/**
 * Fills `container` with `node`'s details. `ctx`: `{t0, agents, onJump(node), onZoom(node)}`.
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

  const prompt = toMessages(e.prompt, 'user');
  const completion = toMessages(e.completion, 'assistant');
  if (prompt.length) parts.push(section('Prompt', messageList(prompt), { testid: 'inspector-prompt' }));
  if (completion.length) parts.push(section('Completion', messageList(completion), { testid: 'inspector-completion' }));
  if (e.params != null) parts.push(section('Params', jsonView(e.params)));
  if (e.returns != null) parts.push(section('Returns', jsonView(e.returns)));
  if (e.attributes && Object.keys(e.attributes).length) parts.push(section('Attributes', jsonView(e.attributes)));
  parts.push(
    section('Event JSON', jsonView(rawEvent(e), { testid: 'inspector-json' }), {
      open: !prompt.length && !completion.length,
      testid: 'inspector-raw',
    }),
  );
  container.appendChild(h('div', { class: 'insp', 'data-testid': 'inspector' }, parts));
  container.scrollTop = 0;
}
