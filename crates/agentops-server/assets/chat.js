// LLM calls as conversations, and the session's chat transcript.
//
// An event's `messages` (`{input, output}`, each a list of `{role, parts, name?, finish_reason?}`,
// normalised by the server from any OpenTelemetry GenAI producer) are shown part by part: text
// as text, tool calls and their results as cards linked by call id, reasoning folded, media as
// a reference. Events without them (older ones, producers the server cannot normalise) show
// their stored prompt and completion, whatever their shape (`toMessages`).

import { h, clear, icon, jsonView } from './dom.js';
import { formatCost, formatDuration, formatTokens, formatInt } from './format.js';

const LONG = 1500;

// --- the fallback: a stored prompt or completion of any shape ------------------------------

function text(value) {
  if (value == null) return '';
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    return value
      .map((part) => {
        if (typeof part === 'string') return part;
        if (part && typeof part === 'object') {
          if (typeof part.text === 'string') return part.text;
          if (typeof part.content === 'string') return part.content;
          if (part.type === 'image_url' || part.type === 'image') return '[image]';
        }
        return JSON.stringify(part, null, 2);
      })
      .join('\n');
  }
  if (typeof value === 'object') {
    if (typeof value.text === 'string') return value.text;
    return JSON.stringify(value, null, 2);
  }
  return String(value);
}

function message(m, role) {
  if (m == null) return null;
  if (typeof m === 'string') return { role, content: m };
  if (typeof m !== 'object') return { role, content: String(m) };
  const r = typeof m.role === 'string' ? m.role : role;
  const calls = Array.isArray(m.tool_calls)
    ? m.tool_calls.map((c) => {
        const f = c.function || c;
        let args = f.arguments ?? f.args ?? f.input ?? '';
        if (typeof args !== 'string') args = JSON.stringify(args, null, 2);
        return { name: String(f.name ?? 'tool'), args };
      })
    : [];
  const content =
    'content' in m ? text(m.content) : 'text' in m ? text(m.text) : Array.isArray(m.parts) ? text(m.parts) : calls.length ? '' : JSON.stringify(m, null, 2);
  return { role: r, content, calls, name: typeof m.name === 'string' ? m.name : null };
}

/** Chat messages from a stored prompt or completion, whatever its shape. */
export function toMessages(value, role) {
  if (value == null) return [];
  if (typeof value === 'string') return [{ role, content: value }];
  if (Array.isArray(value)) {
    if (value.every((x) => typeof x === 'string')) return [{ role, content: value.join('\n') }];
    return value.map((m) => message(m, role)).filter(Boolean);
  }
  if (typeof value === 'object') {
    if (Array.isArray(value.messages)) return toMessages(value.messages, role);
    if (Array.isArray(value.choices)) return value.choices.flatMap((c) => toMessages(c.message ?? c.text ?? c, 'assistant'));
    if ('role' in value || 'content' in value || 'tool_calls' in value) return [message(value, role)];
    if (typeof value.prompt === 'string') return [{ role, content: value.prompt }];
    if (typeof value.completion === 'string') return [{ role, content: value.completion }];
    return [{ role, content: JSON.stringify(value, null, 2) }];
  }
  return [{ role, content: String(value) }];
}

// --- shared pieces ---------------------------------------------------------------------------

/** Text, cut after LONG characters with a button that shows the rest. */
function longText(content, { cls = 'msg-text', testid = 'message-text' } = {}) {
  const long = content.length > LONG;
  const el = h('div', { class: cls, 'data-testid': testid }, long ? content.slice(0, LONG) + '…' : content);
  if (!long) return el;
  const more = h('button', { type: 'button', class: 'link-btn' }, `Show all ${formatInt(content.length)} characters`);
  more.addEventListener('click', () => {
    el.textContent = content;
    more.remove();
  });
  return h('div', null, el, more);
}

function roleOf(m) {
  return String(m.role || 'message').toLowerCase();
}

function msgShell(role, name, body) {
  return h(
    'div',
    { class: `msg role-${role.replace(/[^a-z_-]/g, '')}`, 'data-role': role },
    h('div', { class: 'msg-role' }, role + (name ? ` · ${name}` : '')),
    body,
  );
}

/** JSON on one line (for unknown parts and log bodies). */
export function compactJson(value) {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** A value pretty-printed; a string holding JSON is parsed first, other text stays as it is. */
function pretty(value) {
  if (typeof value === 'string') {
    if (/^\s*[[{]/.test(value)) {
      try {
        return JSON.stringify(JSON.parse(value), null, 2);
      } catch {
        /* not JSON: the text itself */
      }
    }
    return value;
  }
  if (value === undefined) return '';
  return JSON.stringify(value, null, 2);
}

function isEmpty(value) {
  if (value == null || value === '') return true;
  return typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0;
}

function bubble(m) {
  const body = h('div', { class: 'msg-body' }, longText(m.content || ''));
  for (const c of m.calls || []) {
    body.appendChild(h('div', { class: 'tool-call' }, h('span', { class: 'tool-call-name' }, `→ ${c.name}()`), h('pre', { class: 'code' }, c.args)));
  }
  return msgShell(roleOf(m), m.name, body);
}

/** Messages from `toMessages`. */
export function messageList(messages) {
  return h('div', { class: 'messages' }, messages.map(bubble));
}

// --- normalised messages ---------------------------------------------------------------------

/** The event's normalised messages `{input, output}`, or null when it has none. */
export function normalized(e) {
  const m = e && e.messages;
  if (!m || typeof m !== 'object') return null;
  const input = Array.isArray(m.input) ? m.input : [];
  const output = Array.isArray(m.output) ? m.output : [];
  return input.length || output.length ? { input, output } : null;
}

/** Whether an event is an LLM call (shown in the chat transcript). */
export function isLlmCall(e) {
  return e.kind === 'llms' || e.kind === 'llm' || e.prompt != null || e.completion != null || normalized(e) != null;
}

/** The event's tool links (`{call_id, event_id, direction}`), well-formed ones only. */
export function toolLinks(e) {
  return Array.isArray(e && e.tool_links) ? e.tool_links.filter((l) => l && l.event_id != null) : [];
}

/**
 * What the parts of one event's messages link to. `resolve(eventId)`: the waterfall node of an
 * event (or null); `onJump(node)`: select it; `calls`: call id → `{card, name}` of the tool
 * calls already drawn (shared by the cards of a transcript, so a result finds an earlier call).
 */
export function partContext(e, { resolve = null, onJump = null, calls = new Map() } = {}) {
  const byCall = new Map();
  for (const l of toolLinks(e)) {
    if (l.call_id != null && !byCall.has(String(l.call_id))) byCall.set(String(l.call_id), l);
  }
  return {
    calls,
    onJump,
    /** The event that executed (or issued) the tool call `callId`. */
    target(callId) {
      const link = callId == null ? null : byCall.get(callId);
      return link && resolve ? resolve(String(link.event_id)) || null : null;
    },
  };
}

/** Scrolls to `el` (opening the folds around it) and flashes it. */
function reveal(el) {
  if (!el.isConnected) return;
  for (let d = el.closest('details'); d; d = d.parentElement && d.parentElement.closest('details')) d.open = true;
  el.scrollIntoView({ block: 'center', behavior: 'smooth' });
  el.classList.remove('flash');
  void el.offsetWidth; // restart the animation
  el.classList.add('flash');
  setTimeout(() => el.classList.remove('flash'), 1600);
}

function jumpButton(node, ctx) {
  if (!node || !ctx.onJump) return null;
  return h(
    'button',
    { type: 'button', class: 'link-btn tool-jump', 'data-testid': 'tool-jump', 'data-event-id': node.e.id, title: `Select ${node.e.name || 'the tool event'} in the timeline`, onclick: () => ctx.onJump(node) },
    'Tool event →',
  );
}

function callId(part) {
  return part.id == null || part.id === '' ? null : String(part.id);
}

function cardHead(kind, name, id, ...actions) {
  return h(
    'div',
    { class: 'tool-card-head' },
    h('span', { class: 'tool-card-kind' }, kind),
    name ? h('span', { class: 'tool-call-name', 'data-testid': 'tool-name' }, name) : null,
    id ? h('span', { class: 'tool-call-id mono', title: 'Call id' }, id) : null,
    h('span', { class: 'spacer' }),
    actions,
  );
}

function textPart(part) {
  return longText(typeof part.content === 'string' ? part.content : pretty(part.content));
}

function toolCallPart(part, ctx) {
  const id = callId(part);
  const name = String(part.name ?? 'tool');
  const args = isEmpty(part.arguments)
    ? h('div', { class: 'muted small' }, 'No arguments.')
    : h('pre', { class: 'code tool-args', 'data-testid': 'tool-call-args' }, pretty(part.arguments));
  const card = h('div', { class: 'tool-card tool-call-card', 'data-testid': 'tool-call', 'data-call-id': id }, cardHead('Tool call', name, id, jumpButton(ctx.target(id), ctx)), args);
  if (id && !ctx.calls.has(id)) ctx.calls.set(id, { card, name });
  return card;
}

function toolResultPart(part, ctx) {
  const id = callId(part);
  const call = id ? ctx.calls.get(id) : null;
  const toCall = call
    ? h('button', { type: 'button', class: 'link-btn', 'data-testid': 'tool-result-call', title: 'Show the tool call', onclick: () => reveal(call.card) }, '↑ Call')
    : null;
  const response = part.response;
  const body =
    typeof response === 'string' && !/^\s*[[{]/.test(response)
      ? longText(response, { cls: 'msg-text', testid: 'tool-result-text' })
      : h('pre', { class: 'code tool-args', 'data-testid': 'tool-result-json' }, pretty(response));
  return h('div', { class: 'tool-card tool-result-card', 'data-testid': 'tool-result', 'data-call-id': id }, cardHead('Tool result', call ? call.name : null, id, toCall, jumpButton(ctx.target(id), ctx)), body);
}

function reasoningPart(part) {
  const content = typeof part.content === 'string' ? part.content : pretty(part.content);
  return h(
    'details',
    { class: 'reasoning', 'data-testid': 'reasoning' },
    h('summary', null, 'Reasoning', h('span', { class: 'muted' }, ` · ${formatInt(content.length)} characters`)),
    longText(content, { testid: 'reasoning-text' }),
  );
}

function mediaPart(part) {
  const what = [part.modality, part.mime_type].filter((x) => typeof x === 'string' && x).join(', ');
  const size = typeof part.size === 'number' ? `${formatInt(part.size)} bytes inline` : typeof part.content === 'string' ? `${formatInt(part.content.length)} characters inline` : null;
  const where = part.uri ?? part.file_id ?? size;
  return h(
    'div',
    { class: 'media-ref', 'data-testid': 'media-ref' },
    icon('link', 13),
    h('span', { class: 'media-kind' }, `${part.type}${what ? ` (${what})` : ''}`),
    where != null ? h('span', { class: 'mono media-where' }, String(where)) : null,
  );
}

function otherPart(part) {
  return h('pre', { class: 'code part-other', 'data-testid': 'message-part' }, compactJson(part));
}

const PARTS = {
  text: textPart,
  tool_call: toolCallPart,
  tool_call_response: toolResultPart,
  reasoning: reasoningPart,
  blob: mediaPart,
  uri: mediaPart,
  file: mediaPart,
};

function renderPart(part, ctx) {
  if (typeof part === 'string') return longText(part);
  if (!part || typeof part !== 'object') return otherPart(part);
  const render = Object.hasOwn(PARTS, part.type) ? PARTS[part.type] : otherPart;
  return render(part, ctx);
}

function partsBubble(m, ctx) {
  if (!m || typeof m !== 'object') return bubble({ role: 'message', content: compactJson(m) });
  const parts = Array.isArray(m.parts) ? m.parts : [];
  const body = h(
    'div',
    { class: 'msg-body' },
    parts.length ? parts.map((p) => renderPart(p, ctx)) : h('div', { class: 'muted small' }, 'No content.'),
    m.finish_reason ? h('div', { class: 'msg-note', 'data-testid': 'finish-reason' }, `Finish reason: ${m.finish_reason}`) : null,
  );
  return msgShell(roleOf(m), typeof m.name === 'string' ? m.name : null, body);
}

/** Normalised messages as a conversation; `ctx` from `partContext`. */
export function conversation(messages, ctx) {
  return h('div', { class: 'messages', 'data-testid': 'conversation' }, messages.map((m) => partsBubble(m, ctx)));
}

/** The raw payloads of an LLM call, for its "Raw" view. */
export function rawPayloads(e) {
  const raw = {};
  for (const key of ['prompt', 'completion', 'attributes']) if (e[key] != null) raw[key] = e[key];
  return raw;
}

// --- the transcript --------------------------------------------------------------------------

/** A message as a later call's history repeats it: role and parts, without reasoning. */
function historyKey(m) {
  if (!m || typeof m !== 'object') return compactJson(m);
  const parts = Array.isArray(m.parts) ? m.parts.filter((p) => !(p && p.type === 'reasoning')) : m.parts;
  return compactJson([m.role, parts]);
}

function sameMessage(a, b) {
  return historyKey(a) === historyKey(b);
}

/** How many leading messages of `input` repeat `before` (the previous call's conversation). */
function sharedPrefix(input, before) {
  let k = 0;
  while (k < input.length && k < before.length && sameMessage(input[k], before[k])) k++;
  return k;
}

/** Messages the previous call showed, folded (drawn when opened). */
function earlierFold(messages, ctx, previousIndex) {
  const fold = h(
    'details',
    { class: 'earlier', 'data-testid': 'earlier-messages' },
    h('summary', null, `${formatInt(messages.length)} earlier message${messages.length === 1 ? '' : 's'}, as in #${previousIndex + 1}`),
  );
  fold.addEventListener('toggle', () => {
    if (fold.open && fold.childElementCount === 1) fold.appendChild(conversation(messages, ctx));
  });
  return fold;
}

/**
 * The session's LLM calls as a transcript, rendered in slices as the reader scrolls (a session
 * may hold thousands of calls). A call's input that repeats the previous call's conversation is
 * folded. `onOpen(node)` shows an event in the timeline.
 */
export function chatView(container, tree, { onOpen }) {
  const calls = tree.order.filter((n) => isLlmCall(n.e));
  calls.sort((a, b) => a.start - b.start);
  clear(container);
  if (!calls.length) {
    container.appendChild(h('div', { class: 'empty' }, h('h3', null, 'No LLM calls in this session'), h('p', { class: 'muted' }, 'Prompts and completions of recorded LLM events appear here.')));
    return { destroy() {} };
  }
  const list = h('div', { class: 'chat', 'data-testid': 'chat' });
  const sentinel = h('div', { class: 'chat-more muted' }, 'Loading more…');
  container.appendChild(list);
  container.appendChild(sentinel);
  let shown = 0;
  let previous = null; // {conv, index} of the last call drawn with normalised messages
  const t0 = tree.t0;
  const toolCalls = new Map();
  const resolve = (id) => tree.byId.get(id) || null;

  function fallbackBody(n) {
    const prompt = toMessages(n.e.prompt, 'user');
    const completion = toMessages(n.e.completion, 'assistant');
    return [
      prompt.length ? messageList(prompt) : h('p', { class: 'muted small' }, 'No prompt recorded.'),
      completion.length ? messageList(completion) : n.error ? null : h('p', { class: 'muted small' }, 'No completion recorded.'),
    ];
  }

  function conversationBody(n, conv, k) {
    const ctx = partContext(n.e, { resolve, onJump: onOpen, calls: toolCalls });
    const before = previous ? previous.conv.input.concat(previous.conv.output) : [];
    const folded = sharedPrefix(conv.input, before);
    const rest = conv.input.slice(folded);
    const body = [
      folded ? earlierFold(conv.input.slice(0, folded), ctx, previous.index) : null,
      rest.length ? conversation(rest, ctx) : folded ? null : h('p', { class: 'muted small' }, 'No input recorded.'),
      conv.output.length ? conversation(conv.output, ctx) : n.error ? null : h('p', { class: 'muted small' }, 'No output recorded.'),
    ];
    previous = { conv, index: k };
    return body;
  }

  function rawToggle(e, view) {
    const raw = h('div', { class: 'chat-raw', 'data-testid': 'chat-raw', hidden: true });
    const button = h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'aria-pressed': 'false', title: 'Show the raw prompt, completion and attributes', 'data-testid': 'raw-toggle' }, 'Raw');
    button.addEventListener('click', () => {
      const on = raw.hidden;
      if (on && !raw.firstChild) raw.appendChild(jsonView(rawPayloads(e), { testid: 'chat-raw-json' }));
      raw.hidden = !on;
      view.hidden = on;
      button.setAttribute('aria-pressed', String(on));
      button.classList.toggle('on', on);
    });
    return { button, raw };
  }

  function card(n, k) {
    const e = n.e;
    const conv = normalized(e);
    const view = h('div', { class: 'chat-view' }, conv ? conversationBody(n, conv, k) : fallbackBody(n));
    const { button, raw } = rawToggle(e, view);
    const duration = Number.isNaN(n.end) ? null : n.end - n.start;
    return h(
      'article',
      { class: 'chat-card' + (n.error ? ' error' : ''), 'data-testid': 'chat-card', 'data-event-id': e.id },
      h(
        'header',
        { class: 'chat-head' },
        h('span', { class: 'chat-index' }, `#${k + 1}`),
        h('span', { class: 'chip k-llm' }, e.model || e.name || 'LLM'),
        e.provider ? h('span', { class: 'muted' }, e.provider) : null,
        h('span', { class: 'spacer' }),
        h('span', { class: 'muted mono', title: 'since the session started' }, '+' + formatDuration(n.start - t0)),
        h('span', { class: 'mono' }, formatDuration(duration)),
        h('span', { class: 'mono', title: 'input → output tokens' }, `${formatTokens(e.input_tokens)} → ${formatTokens(e.output_tokens)} tok`),
        h('span', { class: 'mono cost' }, formatCost(e.cost)),
        button,
        h('button', { type: 'button', class: 'btn btn-ghost btn-sm', onclick: () => onOpen(n) }, icon('timeline', 14), 'Inspect'),
      ),
      view,
      raw,
      n.error ? h('div', { class: 'error-box' }, icon('alert', 14), e.status_message || 'This call failed.') : null,
    );
  }

  function more() {
    const end = Math.min(calls.length, shown + 40);
    for (; shown < end; shown++) list.appendChild(card(calls[shown], shown));
    sentinel.hidden = shown >= calls.length;
  }

  const observer = new IntersectionObserver((entries) => {
    if (entries.some((x) => x.isIntersecting)) more();
  });
  more();
  observer.observe(sentinel);
  return {
    destroy() {
      observer.disconnect();
    },
  };
}
