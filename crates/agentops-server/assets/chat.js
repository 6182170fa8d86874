// LLM prompts and completions as chat messages, and the session's chat transcript.

import { h, clear, icon } from './dom.js';
import { formatCost, formatDuration, formatTokens, formatInt } from './format.js';

const LONG = 1500;

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
  const content = 'content' in m ? text(m.content) : 'text' in m ? text(m.text) : calls.length ? '' : JSON.stringify(m, null, 2);
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

function bubble(m) {
  const role = String(m.role || 'message').toLowerCase();
  const body = h('div', { class: 'msg-body' });
  const content = m.content || '';
  const long = content.length > LONG;
  const pre = h('div', { class: 'msg-text', 'data-testid': 'message-text' }, long ? content.slice(0, LONG) + '…' : content);
  body.appendChild(pre);
  if (long) {
    const more = h('button', { type: 'button', class: 'link-btn' }, `Show all ${formatInt(content.length)} characters`);
    more.addEventListener('click', () => {
      pre.textContent = content;
      more.remove();
    });
    body.appendChild(more);
  }
  for (const c of m.calls || []) {
    body.appendChild(h('div', { class: 'tool-call' }, h('span', { class: 'tool-call-name' }, `→ ${c.name}()`), h('pre', { class: 'code' }, c.args)));
  }
  return h(
    'div',
    { class: `msg role-${role.replace(/[^a-z_-]/g, '')}` },
    h('div', { class: 'msg-role' }, role + (m.name ? ` · ${m.name}` : '')),
    body,
  );
}

export function messageList(messages) {
  return h('div', { class: 'messages' }, messages.map(bubble));
}

/**
 * The session's LLM calls as a transcript, rendered in slices as the reader scrolls (a session
 * may hold thousands of calls).
 */
export function chatView(container, tree, { onOpen }) {
  const calls = tree.order.filter((n) => n.e.kind === 'llms' || n.e.kind === 'llm' || n.e.prompt != null || n.e.completion != null);
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
  const t0 = tree.t0;

  function card(n, k) {
    const e = n.e;
    const prompt = toMessages(e.prompt, 'user');
    const completion = toMessages(e.completion, 'assistant');
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
        h('button', { type: 'button', class: 'btn btn-ghost btn-sm', onclick: () => onOpen(n) }, icon('timeline', 14), 'Inspect'),
      ),
      prompt.length ? messageList(prompt) : h('p', { class: 'muted small' }, 'No prompt recorded.'),
      completion.length ? messageList(completion) : n.error ? null : h('p', { class: 'muted small' }, 'No completion recorded.'),
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
