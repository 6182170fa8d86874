// Test data sent through the real ingest endpoints (AgentOps v2 REST, as the Python SDK 0.3.x
// sends it): sessions of every end state, tags and models, errors with their trigger events, a
// prompt full of markup, and a session of 10,000 nested events.

import { randomUUID } from 'node:crypto';
import { API_KEY } from './server.mjs';

const iso = (ms) => {
  const d = new Date(Math.floor(ms));
  const micros = String(Math.floor((ms % 1) * 1000)).padStart(3, '0');
  return d.toISOString().replace('Z', '') + micros + '+00:00';
};

async function post(base, path, body, headers = {}) {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A v2 session client: create, add events, end. */
export class V2Session {
  constructor(base, { start, tags = [] }) {
    this.base = base;
    this.id = randomUUID();
    this.start = start;
    this.tags = tags;
  }
  async create() {
    const r = await post(this.base, '/v2/create_session', { session: { session_id: this.id, init_timestamp: iso(this.start), tags: this.tags, host_env: { OS: { OS: 'Linux' }, SDK: { 'AgentOps SDK Version': '0.3.26' } } } }, { 'X-Agentops-Api-Key': API_KEY });
    this.jwt = r.jwt;
    return this;
  }
  headers() {
    return { Authorization: `Bearer ${this.jwt}`, 'X-Agentops-Api-Key': API_KEY };
  }
  async events(events) {
    for (let k = 0; k < events.length; k += 1000) {
      await post(this.base, '/v2/create_events', { events: events.slice(k, k + 1000) }, this.headers());
    }
  }
  async end(state, reason, endMs) {
    return post(this.base, '/v2/update_session', { session: { session_id: this.id, init_timestamp: iso(this.start), end_timestamp: iso(endMs), end_state: state, end_state_reason: reason, tags: this.tags } }, this.headers());
  }
}

function llm(id, { start, ms, model, prompt, completion, inTok, outTok, parent }) {
  return { id, event_type: 'llms', init_timestamp: iso(start), end_timestamp: iso(start + ms), params: { temperature: 0.2 }, returns: null, model, prompt, completion, prompt_tokens: inTok, completion_tokens: outTok, parent_id: parent };
}
function action(id, { start, ms, name, parent, params }) {
  return { id, event_type: 'actions', init_timestamp: iso(start), end_timestamp: iso(start + ms), params: params ?? { step: name }, returns: 'done', action_type: name, parent_id: parent };
}
function tool(id, { start, ms, name, parent, params, returns }) {
  return { id, event_type: 'tools', init_timestamp: iso(start), end_timestamp: iso(start + ms), params: params ?? { query: name }, returns: returns ?? { ok: true }, tool_name: name, parent_id: parent };
}
function error(id, { start, trigger, type, details }) {
  return { id, event_type: 'errors', init_timestamp: iso(start), end_timestamp: iso(start), trigger_event: trigger, error_type: type, code: 504, details, logs: `Traceback (most recent call last):\n  File "agent.py", line 42, in run\n${type}: ${details}\n` };
}

export const XSS_PROMPT = '<script>alert(1)</script> Summarise <img src=x onerror="window.__xss=1;alert(2)"> please';
export const XSS_COMPLETION = '<script>window.__xss=2;alert(3)</script><b>bold?</b>';
export const XSS_TOOL = '<img src=x onerror=alert(5)>';

/** Seeds everything; returns the ids the tests look for. */
export async function seed(base) {
  const now = Date.now();
  const ids = {};

  // A successful support session.
  {
    const s = await new V2Session(base, { start: now - 3600e3, tags: ['prod', 'support-bot'] }).create();
    const t = s.start;
    const a = randomUUID();
    const l1 = randomUUID();
    await s.events([
      action(a, { start: t + 10, ms: 4200, name: 'answer_ticket' }),
      llm(l1, { start: t + 50, ms: 1800, model: 'gpt-4o', parent: a, prompt: [{ role: 'system', content: 'You are a helpful support agent.' }, { role: 'user', content: 'My invoice shows the wrong VAT number. Can you fix it?' }], completion: { role: 'assistant', content: 'I have updated the VAT number on invoice #4821. A corrected copy is on its way.' }, inTok: 412, outTok: 38 }),
      tool(randomUUID(), { start: t + 1900, ms: 900, name: 'update_invoice', parent: a, params: { invoice: 4821, vat: 'DE811907980' } }),
      llm(randomUUID(), { start: t + 2900, ms: 1200, model: 'gpt-4o-mini', parent: a, prompt: 'Write a short, friendly confirmation email.', completion: 'Hi Ana, your invoice has been corrected…', inTok: 120, outTok: 64 }),
    ]);
    await s.end('Success', 'ticket resolved', t + 4300);
    ids.success = s.id;
  }

  // A failed research session: a tool times out, the error names it as its trigger.
  {
    const s = await new V2Session(base, { start: now - 1800e3, tags: ['staging', 'research'] }).create();
    const t = s.start;
    const plan = randomUUID();
    const search = randomUUID();
    await s.events([
      action(plan, { start: t + 5, ms: 9000, name: 'research_topic', params: { topic: 'battery recycling' } }),
      llm(randomUUID(), { start: t + 20, ms: 2400, model: 'claude-3-5-sonnet-20241022', parent: plan, prompt: [{ role: 'user', content: 'Plan a literature search on battery recycling.' }], completion: 'Step 1: search recent reviews…', inTok: 980, outTok: 220 }),
      tool(search, { start: t + 2500, ms: 6000, name: 'web_search', parent: plan, params: { q: 'lithium battery recycling review 2026' }, returns: null }),
      error(randomUUID(), { start: t + 8500, trigger: search, type: 'TimeoutError', details: 'web_search timed out after 6 s' }),
    ]);
    await s.end('Fail', 'Tool failed: web_search timed out', t + 9100);
    ids.fail = s.id;
    ids.failTrigger = search;
  }

  // Markup everywhere a user string can go.
  {
    const s = await new V2Session(base, { start: now - 1200e3, tags: ['xss', '<b>tag</b>'] }).create();
    const t = s.start;
    const a = randomUUID();
    const l = randomUUID();
    await s.events([
      action(a, { start: t + 5, ms: 3000, name: 'summarise' }),
      llm(l, { start: t + 10, ms: 2000, model: 'gpt-4o', parent: a, prompt: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: XSS_PROMPT }], completion: XSS_COMPLETION, inTok: 77, outTok: 12 }),
      tool(randomUUID(), { start: t + 2100, ms: 300, name: XSS_TOOL, parent: a, params: { html: '<iframe src="javascript:alert(6)"></iframe>' } }),
    ]);
    await s.end('Indeterminate', '<img src=x onerror=alert(4)> reason', t + 3100);
    ids.xss = s.id;
    ids.xssLlm = l;
  }

  // Older sessions over the last days, for the list and the stats.
  const models = ['gpt-4o-mini', 'claude-3-5-sonnet-20241022', 'gpt-4o'];
  const states = ['Success', 'Success', 'Fail', 'Success', 'Indeterminate', 'Success', 'Fail', 'Success'];
  for (let k = 0; k < states.length; k++) {
    const s = await new V2Session(base, { start: now - (k + 1) * 86400e3 - k * 3600e3, tags: [k % 2 ? 'nightly' : 'prod', `batch-${k}`] }).create();
    const t = s.start;
    const a = randomUUID();
    const evs = [action(a, { start: t + 5, ms: 20000 + k * 3000, name: 'batch_job' })];
    for (let j = 0; j < 3 + k; j++) {
      evs.push(llm(randomUUID(), { start: t + 100 + j * 1500, ms: 1200, model: models[(k + j) % 3], parent: a, prompt: `Classify record ${j}`, completion: 'label: ok', inTok: 800 + 300 * j, outTok: 60 + 20 * k }));
    }
    if (states[k] === 'Fail') evs.push(error(randomUUID(), { start: t + 19000, trigger: a, type: 'RateLimitError', details: '429 from the provider' }));
    await s.events(evs);
    await s.end(states[k], states[k] === 'Fail' ? 'rate limited' : null, t + 21000 + k * 3000);
  }

  // 10,000 events, three levels deep, six errors.
  {
    const s = await new V2Session(base, { start: now - 900e3, tags: ['load', 'big'] }).create();
    const t = s.start;
    const evs = [];
    let errors = 0;
    for (let i = 0; i < 100; i++) {
      const a = randomUUID();
      const at = t + i * 6000;
      evs.push(action(a, { start: at, ms: 5800, name: `step_${i}` }));
      for (let j = 0; j < 9; j++) {
        const tl = randomUUID();
        const tt = at + 20 + j * 640;
        evs.push(tool(tl, { start: tt, ms: 600, name: `tool_${j}`, parent: a }));
        for (let k = 0; k < 10; k++) {
          const lt = tt + 5 + k * 59;
          if ((i * 9 + j) % 150 === 7 && k === 9) {
            evs.push(error(randomUUID(), { start: lt, trigger: tl, type: 'ToolError', details: `tool_${j} of step_${i} failed` }));
            errors++;
          } else {
            evs.push(llm(randomUUID(), { start: lt, ms: 55, model: k % 2 ? 'gpt-4o-mini' : 'gpt-4o', parent: tl, prompt: `step ${i} tool ${j} call ${k}`, completion: 'ok', inTok: 50, outTok: 5 }));
          }
        }
      }
    }
    await s.events(evs);
    await s.end('Success', null, t + 600000);
    ids.big = s.id;
    ids.bigEvents = evs.length;
    ids.bigErrors = errors;
  }

  // Still running: no end.
  {
    const s = await new V2Session(base, { start: now - 30e3, tags: ['live'] }).create();
    await s.events([action(randomUUID(), { start: s.start + 10, ms: 500, name: 'warm_up' })]);
    ids.running = s;
  }
  return ids;
}
