// A session from a plain OpenTelemetry GenAI producer in the dashboard: spans and log records
// sent as OTLP/HTTP JSON to the real server (`/v1/traces`, `/v1/logs`), read back as a
// conversation (text as text, tool call and result cards, reasoning folded, "Raw" on request),
// tool links between the LLM call and the tool event both ways, and the Logs tab.
//
//   cargo build -p agentops-cli && scripts/browser-env && node --test tests/browser/

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from './lib/server.mjs';
import { launchBrowser, signIn } from './lib/browser.mjs';
import { seedGenAi, waitEnded, SYSTEM, QUESTION, ANSWER, REASONING, TOOL_RESULT, CALL_ID } from './lib/otlp.mjs';

const T = { timeout: 120000 };

let server;
let browser;
let page;
let ids;

const card = (k) => page.locator('[data-testid="chat-card"]').nth(k);
const waitSelected = (id) => page.waitForFunction((x) => document.querySelector('.wf-row.selected')?.dataset.eventId === x, id);
const row = (id) => page.locator(`[data-testid="wf-row"][data-event-id="${id}"]`);

async function openSession(query) {
  await page.goto(`${server.url}/#/sessions/${ids.session}${query ? '?' + query : ''}`);
  await page.locator('[data-testid="session-title"]').waitFor();
}

before(async () => {
  server = await startServer({ extraArgs: ['--session-quiet-seconds', '1'] });
  ids = await seedGenAi(server.url);
  const session = await waitEnded(server.url, ids.session);
  assert.equal(session.end_state, 'Success', 'a plain trace whose root span ended well ends as Success');
  browser = await launchBrowser();
  page = browser.page;
  await signIn(page, server.url);
}, { timeout: 180000 });

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

test('the chat view shows the GenAI conversation as text, with tool call and result cards', T, async () => {
  await openSession('tab=chat');
  await card(1).waitFor();
  assert.equal(await page.locator('[data-testid="chat-card"]').count(), 2, 'two LLM calls');
  const texts = await page.locator('[data-testid="chat"] [data-testid="message-text"]').allTextContents();
  for (const want of [SYSTEM, QUESTION, ANSWER]) assert.ok(texts.includes(want), `"${want}" is shown as text: ${JSON.stringify(texts)}`);
  for (const t of texts) assert.doesNotMatch(t, /^\s*[[{]|"parts"|"role"|"type"/, `no message is shown as JSON: ${t}`);

  // the first call asks for the tool: a card with the name and the arguments, pretty-printed
  const call = card(0).locator('[data-testid="tool-call"]');
  assert.equal(await call.count(), 1);
  assert.equal(await call.getAttribute('data-call-id'), CALL_ID);
  assert.equal(await call.locator('[data-testid="tool-name"]').textContent(), 'get_weather');
  const args = await call.locator('[data-testid="tool-call-args"]').textContent();
  assert.deepEqual(JSON.parse(args), { city: 'Paris', unit: 'celsius' });
  assert.match(args, /\n {2}"city": "Paris"/, 'arguments are pretty-printed');
  assert.equal(await card(0).locator('[data-testid="finish-reason"]').textContent(), 'Finish reason: tool_calls');
  // reasoning is folded
  const reasoning = card(0).locator('[data-testid="reasoning"]');
  assert.equal(await reasoning.evaluate((d) => d.open), false, 'reasoning is collapsed by default');
  assert.equal(await reasoning.locator('[data-testid="reasoning-text"]').isVisible(), false);
  await reasoning.locator('summary').click();
  assert.equal(await reasoning.locator('[data-testid="reasoning-text"]').textContent(), REASONING);

  // the second call: the history it repeats is folded; the tool's result is a card linked to the call
  const earlier = card(1).locator('[data-testid="earlier-messages"]');
  assert.match(await earlier.locator('summary').textContent(), /^3 earlier messages, as in #1/);
  const result = card(1).locator('[data-testid="tool-result"]');
  assert.equal(await result.getAttribute('data-call-id'), CALL_ID);
  assert.equal(await result.locator('[data-testid="tool-name"]').textContent(), 'get_weather', 'the result names its call');
  assert.equal(await result.locator('[data-testid="tool-result-text"]').textContent(), TOOL_RESULT, 'markup in a tool result is text');
  assert.equal(await page.locator('[data-testid="chat"] b').count(), 0, 'no <b> element was made from the markup');
  await result.locator('[data-testid="tool-result-call"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="chat-card"] [data-testid="tool-call"]').classList.contains('flash'));
  await earlier.locator('summary').click();
  await earlier.locator('[data-testid="message-text"]').first().waitFor();
  assert.ok((await earlier.locator('[data-testid="message-text"]').allTextContents()).includes(QUESTION), 'the folded history opens');
  await browser.shot('20-genai-chat');

  // Raw: the stored prompt, completion and attributes as JSON, instead of the conversation
  await card(0).locator('[data-testid="raw-toggle"]').click();
  const raw = card(0).locator('[data-testid="chat-raw-json"]');
  await raw.waitFor({ state: 'visible' });
  assert.equal(await card(0).locator('.chat-view').isVisible(), false);
  const payload = JSON.parse(await raw.textContent());
  assert.ok(JSON.stringify(payload.prompt).includes(QUESTION), `the raw prompt: ${JSON.stringify(payload).slice(0, 300)}`);
  assert.ok(JSON.stringify(payload.completion).includes('get_weather'));
  assert.equal(payload.attributes['gen_ai.operation.name'], 'chat');
  await browser.shot('21-genai-chat-raw');
  await card(0).locator('[data-testid="raw-toggle"]').click();
  await card(0).locator('.chat-view').waitFor({ state: 'visible' });
  assert.equal(await raw.isVisible(), false);

  // the tool call card jumps to the tool event in the timeline
  await call.locator('[data-testid="tool-jump"]').click();
  await waitSelected(ids.tool);
  assert.equal(await page.textContent('[data-testid="inspector-title"]'), 'execute_tool get_weather');
});

test('tool links join the LLM call and the tool event both ways, in the inspector and the waterfall', T, async () => {
  await openSession(`event=${ids.tool}`);
  await page.locator('[data-testid="inspector"]').waitFor();
  assert.equal(await page.textContent('[data-testid="inspector-title"]'), 'execute_tool get_weather');
  const calledBy = page.locator('[data-testid="tool-links-called_by"]');
  assert.match(await calledBy.textContent(), /^Called by\s*chat gpt-4o/);
  assert.equal(await calledBy.locator('[data-testid="tool-link"]').getAttribute('data-event-id'), ids.llm1);
  await calledBy.locator('[data-testid="tool-link"]').click();
  await waitSelected(ids.llm1);

  // the LLM call: its conversation, the tool it called, its own log record
  const calls = page.locator('[data-testid="tool-links-calls"]');
  assert.match(await calls.textContent(), /^Called tool\s*execute_tool get_weather/);
  assert.ok((await page.locator('[data-testid="inspector-prompt"] [data-testid="message-text"]').allTextContents()).includes(QUESTION));
  assert.equal(await page.locator('[data-testid="inspector-completion"] [data-testid="tool-name"]').textContent(), 'get_weather');
  assert.match(await page.textContent('[data-testid="inspector-logs"]'), /planning a trip <i>for the user<\/i>/);
  // the raw attributes stay available
  await page.click('[data-testid="inspector-raw"] > summary');
  const event = JSON.parse(await page.textContent('[data-testid="inspector-json"]'));
  assert.equal(event.attributes['gen_ai.operation.name'], 'chat');
  assert.equal(event.messages.input[1].parts[0].content, QUESTION);
  await browser.shot('22-genai-llm-inspector');
  await calls.locator('[data-testid="tool-link"]').click();
  await waitSelected(ids.tool);

  // the waterfall marks the linked rows; the mark selects the other end
  assert.equal(await page.locator('[data-testid="wf-tool-link"]').count(), 2, 'the LLM call that asked and the tool event');
  assert.equal(await row(ids.llm2).locator('[data-testid="wf-tool-link"]').count(), 0);
  assert.match(await row(ids.llm1).locator('[data-testid="wf-tool-link"]').getAttribute('title'), /^Called tool: execute_tool get_weather/);
  assert.match(await row(ids.tool).locator('[data-testid="wf-tool-link"]').getAttribute('title'), /^Called by chat gpt-4o/);
  await row(ids.llm1).locator('[data-testid="wf-tool-link"]').click();
  await waitSelected(ids.tool);
  await row(ids.tool).locator('[data-testid="wf-tool-link"]').click();
  await waitSelected(ids.llm1);
  const [box, pane] = [await row(ids.llm1).boundingBox(), await page.locator('[data-testid="waterfall"]').boundingBox()];
  assert.ok(box.y >= pane.y && box.y + box.height <= pane.y + pane.height, 'the selected event is scrolled into view');
  await browser.shot('23-genai-timeline');
});

test('the Logs tab lists the log records in time order, as text, linked to their events', T, async () => {
  await openSession('tab=logs');
  await page.locator('[data-testid="log-record"]').first().waitFor();
  assert.match(await page.textContent('[data-testid="tab-logs"]'), /Logs\s*3/);
  const records = page.locator('[data-testid="log-record"]');
  assert.equal(await records.count(), 3);
  const bodies = await records.locator('[data-testid="log-body"]').allTextContents();
  assert.equal(bodies[0], ids.logs[0]);
  assert.equal(bodies[1], ids.logs[1], 'markup in a body is text');
  assert.match(bodies[2], /^\{.*"message":"weather cache miss".*\}$/, 'an object body is compact JSON');
  assert.deepEqual(await records.locator('[data-testid="log-severity"]').allTextContents(), ['DEBUG', 'INFO', 'WARN']);
  assert.equal(await records.nth(0).locator('[data-testid="log-event-name"]').textContent(), 'agent.start');
  assert.equal(await page.locator('[data-testid="log-records"] i').count(), 0, 'no <i> element was made from the markup');
  // records with a span link to its event; the trace-only one to none
  assert.equal(await records.nth(0).locator('[data-testid="log-event-link"]').count(), 0);
  assert.equal(await records.nth(1).locator('[data-testid="log-event-link"]').getAttribute('data-event-id'), ids.llm1);
  assert.equal(await records.nth(2).locator('[data-testid="log-event-link"]').getAttribute('data-event-id'), ids.tool);
  // a record unfolds to its attributes and ids
  await records.nth(2).locator('summary').click();
  const detail = JSON.parse(await records.nth(2).locator('.json').textContent());
  assert.equal(detail.attributes['cache.name'], 'weather');
  assert.equal(detail.span_id, ids.tool);
  await browser.shot('24-genai-logs');
  // the link opens the event in the timeline, whose inspector lists its own records
  await records.nth(2).locator('[data-testid="log-event-link"]').click();
  await waitSelected(ids.tool);
  assert.match(await page.textContent('[data-testid="inspector-logs"]'), /weather cache miss/);
  assert.doesNotMatch(await page.textContent('[data-testid="inspector-logs"]'), /planning a trip/, 'only its own records');
});

test('GenAI views in dark mode, and no page errors', T, async () => {
  await page.emulateMedia({ colorScheme: 'dark' });
  await openSession('tab=chat');
  await card(1).waitFor();
  await browser.shot('25-genai-chat-dark');
  await openSession(`event=${ids.llm1}`);
  await page.locator('[data-testid="tool-links-calls"]').waitFor();
  await browser.shot('26-genai-inspector-dark');
  await openSession('tab=logs');
  await page.locator('[data-testid="log-record"]').first().waitFor();
  await browser.shot('27-genai-logs-dark');
  await page.emulateMedia({ colorScheme: 'light' });
  assert.deepEqual(browser.pageErrors, [], 'no script errors in the page');
  assert.deepEqual(browser.dialogs, [], 'no dialog fired');
});
