// The dashboard in headless Chromium (Debian's `chromium`, driven by playwright-core) against
// the real server binary with data sent through the real ingest endpoints.
//
//   cargo build -p agentops-cli && scripts/browser-env && node --test tests/browser/
//
// AGENTOPS_BIN: the server binary (default target/debug/agentops); CHROMIUM: the browser
// (default /usr/bin/chromium). Screenshots go to target/artifacts/browser/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';

import { startServer, API_KEY } from './lib/server.mjs';
import { launchBrowser, signIn, ARTIFACTS } from './lib/browser.mjs';
import { seed, V2Session, XSS_PROMPT, XSS_COMPLETION, XSS_TOOL } from './lib/seed.mjs';

const T = { timeout: 120000 };

let server;
let ids;
let browser;
let context;
let page;
let dialogs;
let pageErrors;

const shot = (name, fullPage = false) => browser.shot(name, fullPage);
const rows = () => page.locator('[data-testid="session-row"]');

before(async () => {
  server = await startServer();
  ids = await seed(server.url);
  browser = await launchBrowser();
  ({ context, page, dialogs, pageErrors } = browser);
}, { timeout: 180000 });

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

test('the dashboard asks for the API key and signs in through the form', T, async () => {
  await page.goto(server.url + '/');
  await page.locator('[data-testid="login"]').waitFor();
  await page.fill('[data-testid="login-key"]', '00000000-0000-4000-8000-000000000000');
  await page.click('[data-testid="login-submit"]');
  await page.locator('[data-testid="login-error"]').waitFor({ state: 'visible' });
  assert.match(await page.textContent('[data-testid="login-error"]'), /not accepted/);
  await page.fill('[data-testid="login-key"]', API_KEY);
  await shot('01-sign-in');
  await page.click('[data-testid="login-submit"]');
  await rows().first().waitFor();
  assert.equal(await page.locator('[data-testid="login"]').count(), 0);
  const stored = await page.evaluate(() => Object.keys(sessionStorage));
  assert.ok(stored.some((k) => k.startsWith('agentops.dashboard')), `credential kept in sessionStorage: ${stored}`);
  assert.equal(await rows().count(), 13, 'all seeded sessions are listed');
  await page.locator('.live-chip').waitFor({ state: 'visible' });
  await shot('02-sessions');
});

test('the list filters by end state and by search text', T, async () => {
  await page.click('[data-testid="state-Fail"]');
  await page.waitForFunction(() => {
    const r = [...document.querySelectorAll('[data-testid="session-row"]')];
    return r.length > 0 && r.every((x) => x.querySelector('[data-state]').dataset.state === 'Fail');
  });
  assert.equal(await rows().count(), 3, 'three failed sessions');
  assert.match(page.url(), /end_state=Fail/);
  await shot('03-filter-fail');
  await page.click('[data-testid="state-all"]');
  await page.fill('[data-testid="search"]', 'research');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="session-row"]').length === 1);
  assert.equal(await rows().first().getAttribute('data-session-id'), ids.fail);
  await page.fill('[data-testid="search"]', 'no-such-thing-anywhere');
  await page.locator('[data-testid="empty"]').waitFor();
  await page.click('[data-testid="clear-filters"]');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="session-row"]').length === 13);
});

test('a session shows its waterfall, the inspector and the error with its trigger', T, async () => {
  await page.click(`[data-session-id="${ids.fail}"]`);
  await page.locator('[data-testid="wf-row"]').first().waitFor();
  assert.equal(await page.locator('[data-testid="wf-row"]').count(), 4);
  assert.match(await page.textContent('[data-testid="end-state-reason"]'), /web_search timed out/);
  // click the LLM call
  await page.click('[data-testid="wf-row"][data-kind="llms"]');
  const insp = page.locator('[data-testid="inspector"]');
  await insp.waitFor();
  assert.equal(await page.textContent('[data-testid="inspector-title"]'), 'claude-3-5-sonnet-20241022');
  assert.equal(await page.textContent('[data-testid="inspector-tokens-in"]'), '980');
  assert.equal(await page.textContent('[data-testid="inspector-tokens-out"]'), '220');
  assert.match(await page.textContent('[data-testid="inspector-cost"]'), /^\$0\.\d+$/);
  assert.match(await page.textContent('[data-testid="inspector-latency"]'), /2\.40 s/);
  await shot('04-session-inspector');
  await page.click('[data-testid="inspector-raw"] > summary');
  const json = await page.textContent('[data-testid="inspector-json"]');
  assert.equal(JSON.parse(json).input_tokens, 980, 'the raw JSON is valid, pretty-printed JSON');
  // jump to the error: it names what triggered it
  await page.click('[data-testid="next-error"]');
  await page.locator('[data-testid="inspector-error"]').waitFor();
  assert.match(await page.textContent('[data-testid="inspector-error"]'), /TimeoutError/);
  assert.match(await page.textContent('[data-testid="inspector-error"]'), /Triggered by\s*web_search/);
  assert.equal(await page.locator('.wf-row.selected').getAttribute('data-kind'), 'errors');
  await shot('05-session-error');
  // the trigger link selects the tool
  await page.click('[data-testid="inspector-error"] [data-testid="event-link"]');
  await page.waitForFunction((id) => document.querySelector('.wf-row.selected')?.dataset.eventId === id, ids.failTrigger);
  // zoom in and out
  await page.click('[data-testid="zoom-in"]');
  assert.equal(await page.textContent('[data-testid="zoom-level"]'), '2.0×');
  await page.click('[data-testid="zoom-fit"]');
  assert.equal(await page.textContent('[data-testid="zoom-level"]'), '1.0×');
});

test('markup in prompts, completions, names, tags and reasons is shown as text', T, async () => {
  await page.goto(`${server.url}/#/sessions/${ids.xss}?event=${ids.xssLlm}`);
  await page.locator('[data-testid="inspector-prompt"]').waitFor();
  const prompt = await page.textContent('[data-testid="inspector-prompt"]');
  assert.ok(prompt.includes(XSS_PROMPT), `the prompt is shown literally: ${prompt}`);
  const completion = await page.textContent('[data-testid="inspector-completion"]');
  assert.ok(completion.includes(XSS_COMPLETION));
  assert.ok((await page.textContent('[data-testid="end-state-reason"]')).includes('<img src=x onerror=alert(4)>'));
  assert.ok((await page.textContent('.wf-layer')).includes(XSS_TOOL));
  await shot('06-xss-inspector');
  await page.click('[data-testid="tab-chat"]');
  await page.locator('[data-testid="chat-card"]').waitFor();
  const texts = await page.locator('[data-testid="message-text"]').allTextContents();
  assert.ok(texts.includes(XSS_PROMPT), 'the chat view shows the prompt literally');
  assert.ok(texts.includes(XSS_COMPLETION));
  await shot('07-xss-chat');
  const injected = await page.evaluate(() => ({
    scripts: [...document.scripts].map((s) => s.src || 'inline'),
    images: [...document.querySelectorAll('img')].filter((i) => i.getAttribute('src') === 'x' || i.hasAttribute('onerror')).length,
    bold: [...document.querySelectorAll('b')].length,
    iframes: document.querySelectorAll('iframe').length,
    xss: window.__xss ?? null,
  }));
  assert.deepEqual(injected.scripts, [`${server.url}/assets/app.js`], 'no injected <script>');
  assert.equal(injected.images, 0, 'no injected <img>');
  assert.equal(injected.bold, 0, 'no injected <b>');
  assert.equal(injected.iframes, 0, 'no injected <iframe>');
  assert.equal(injected.xss, null, 'no injected code ran');
  await page.goto(`${server.url}/#/sessions?q=xss`);
  await rows().first().waitFor();
  assert.ok((await rows().first().textContent()).includes('<b>tag</b>'));
  assert.deepEqual(dialogs, [], 'no alert() or other dialog fired');
});

test('a 10,000-event session renders fast, virtualised, and jumps between errors', T, async () => {
  const started = Date.now();
  await page.goto(`${server.url}/#/sessions/${ids.big}`);
  await page.locator('[data-testid="wf-row"]').first().waitFor();
  const wall = Date.now() - started;
  await page.waitForFunction(() => document.querySelector('[data-testid="session-page"]')?.dataset.firstRenderMs);
  const perf = await page.evaluate(() => window.__agentopsPerf);
  console.log(
    `# first render of a ${ids.bigEvents}-event session: ${perf.total_ms.toFixed(0)} ms in the page ` +
      `(fetch ${perf.fetch_ms.toFixed(0)} ms, tree ${perf.tree_ms.toFixed(0)} ms, DOM ${perf.render_ms.toFixed(0)} ms), ${wall} ms from navigation`,
  );
  writeFileSync(
    path.join(ARTIFACTS, 'first-render.json'),
    JSON.stringify({ events: ids.bigEvents, in_page_ms: Math.round(perf.total_ms), fetch_ms: Math.round(perf.fetch_ms), tree_ms: Math.round(perf.tree_ms), dom_ms: Math.round(perf.render_ms), navigation_to_rows_ms: wall, dom_rows: perf.dom_rows, server: process.env.AGENTOPS_BIN || 'target/debug/agentops' }, null, 2) + '\n',
  );
  assert.equal(await page.textContent('[data-testid="session-events"]'), '10,000');
  const domRows = await page.locator('[data-testid="wf-row"]').count();
  assert.ok(domRows > 10 && domRows < 200, `virtualised: ${domRows} rows in the DOM for ${ids.bigEvents} events`);
  await shot('08-big-session');
  // scroll to the middle: other rows, still few
  await page.evaluate(() => {
    const s = document.querySelector('[data-testid="waterfall"]');
    s.scrollTop = s.scrollHeight / 2;
  });
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="wf-row"]')].some((r) => parseInt(r.style.top, 10) > 100000));
  assert.ok((await page.locator('[data-testid="wf-row"]').count()) < 200);
  // every error in turn, then back to the first
  const seen = new Set();
  for (let k = 0; k < ids.bigErrors + 1; k++) {
    await page.click('[data-testid="next-error"]');
    await page.locator('.wf-row.selected[data-kind="errors"]').waitFor();
    seen.add(await page.locator('.wf-row.selected').getAttribute('data-event-id'));
  }
  assert.equal(seen.size, ids.bigErrors, 'next error visits each error once, then wraps');
  assert.match(await page.textContent('[data-testid="inspector-error"]'), /ToolError/);
  await shot('09-big-session-error');
  // filter the tree: matches with their ancestors
  await page.fill('[data-testid="event-filter"]', 'tool_3');
  await page.waitForFunction(() => document.querySelector('[data-testid="event-filter-count"]').textContent !== '');
  assert.equal(await page.textContent('[data-testid="event-filter-count"]'), '100 matches');
  await page.evaluate(() => {
    document.querySelector('[data-testid="waterfall"]').scrollTop = 0;
  });
  await page.waitForFunction(() => document.querySelector('[data-testid="wf-row"][style*="top: 0px"]'));
  const names = await page.evaluate(() =>
    [...document.querySelectorAll('[data-testid="wf-row"]')]
      .sort((a, b) => parseInt(a.style.top, 10) - parseInt(b.style.top, 10))
      .map((r) => r.querySelector('.wf-label').textContent),
  );
  assert.deepEqual(names.slice(0, 4), ['step_0', 'tool_3', 'step_1', 'tool_3']);
  await shot('10-big-session-filter');
  await page.fill('[data-testid="event-filter"]', '');
  // the chat transcript of 8,994 LLM calls renders in slices
  await page.click('[data-testid="tab-chat"]');
  await page.locator('[data-testid="chat-card"]').first().waitFor();
  const cards = await page.locator('[data-testid="chat-card"]').count();
  assert.ok(cards > 0 && cards <= 80, `chat renders in slices: ${cards} cards`);
  await page.click('[data-testid="tab-timeline"]');
  await page.locator('[data-testid="wf-row"]').first().waitFor();
  assert.ok(perf.total_ms < 5000, `first render took ${perf.total_ms} ms`);
});

test('the stats page draws cost, tokens, errors and durations', T, async () => {
  await page.goto(`${server.url}/#/stats`);
  const unavailable = page.locator('[data-testid="stats-unavailable"]');
  const kpi = page.locator('[data-testid="kpi-sessions"]');
  await Promise.race([kpi.waitFor(), unavailable.waitFor()]);
  if (await unavailable.count()) assert.fail(`stats unavailable: ${await unavailable.textContent()}`);
  assert.equal(await kpi.textContent(), '13');
  for (const chart of ['chart-cost', 'chart-tokens', 'chart-events', 'chart-sessions']) {
    await page.locator(`[data-testid="${chart}"] svg rect.bar`).first().waitFor();
  }
  assert.ok((await page.locator('[data-testid="chart-models"] .hbar-row').count()) >= 3);
  assert.match(await page.textContent('[data-testid="kpi-error-rate"]'), /%$/);
  await shot('11-stats', true);
});

test('the session list suggests the models of the last 30 days, asked for whole UTC days', T, async () => {
  const asked = [];
  const listen = (request) => {
    if (request.url().includes('/api/v1/stats')) asked.push(new URL(request.url()).searchParams.get('from'));
  };
  page.on('request', listen);
  try {
    await page.goto(`${server.url}/#/sessions`);
    await rows().first().waitFor();
    await page.waitForFunction(() => document.querySelectorAll('#models-list option').length >= 3);
  } finally {
    page.off('request', listen);
  }
  assert.equal(asked.length, 1, `one stats request: ${asked}`);
  // a partial hour would make the server read that hour's events instead of its hourly totals
  assert.match(asked[0], /^\d{4}-\d{2}-\d{2}T00:00:00\.000Z$/);
  const options = await page.locator('#models-list option').evaluateAll((os) => os.map((o) => o.value));
  assert.ok(options.includes('gpt-4o'), `models suggested: ${options}`);
});

test('a running session is live: its end appears without a reload', T, async () => {
  await page.goto(`${server.url}/#/sessions?end_state=running`);
  await rows().first().waitFor();
  assert.equal(await rows().count(), 1);
  assert.equal(await rows().first().locator('[data-state]').getAttribute('data-state'), 'Running');
  await page.goto(`${server.url}/#/sessions`);
  await page.locator(`[data-session-id="${ids.running.id}"] [data-state="Running"]`).waitFor();
  await ids.running.end('Success', 'finished while watched', Date.now());
  await page.locator(`[data-session-id="${ids.running.id}"] [data-state="Success"]`).waitFor({ timeout: 15000 });
});

test('a running session\'s page takes in only what is new, and opens an event\'s payloads on demand', T, async () => {
  const t0 = Date.now() - 30e3;
  const iso = (ms) => new Date(ms).toISOString().replace('Z', '000+00:00');
  const s = await new V2Session(server.url, { start: t0, tags: ['live'] }).create();
  const plan = randomUUID();
  const call = randomUUID();
  await s.events([{ id: plan, event_type: 'actions', action_type: 'plan_trip', init_timestamp: iso(t0 + 100), end_timestamp: iso(t0 + 5000), params: { city: 'Lyon' }, returns: 'planned' }]);
  const urls = [];
  const onRequest = (r) => { if (r.url().includes(`/api/v1/sessions/${s.id}`)) urls.push(r.url()); };
  page.on('request', onRequest);
  try {
    await page.goto(`${server.url}/#/sessions/${s.id}`);
    await page.locator('[data-testid="wf-row"]').first().waitFor();
    assert.equal(await page.locator('[data-testid="wf-row"]').count(), 1);
    // the page loads the tree without payloads
    assert.ok(urls.some((u) => u.includes('events=tree')), urls.join(' '));

    // a new event, nested under the first: it appears without a reload, from a delta
    await s.events([{ id: call, event_type: 'llms', parent_id: plan, init_timestamp: iso(t0 + 200), end_timestamp: iso(t0 + 1200), model: 'gpt-4o', prompt: 'Which train to Lyon?', completion: 'The 9:04 TGV.', prompt_tokens: 9, completion_tokens: 5 }]);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="wf-row"]').length === 2, null, { timeout: 15000 });
    assert.ok(urls.some((u) => u.includes('since=')), `a refresh asked only for what changed: ${urls.join(' ')}`);
    assert.equal(await page.locator(`[data-testid="wf-row"][data-event-id="${call}"]`).getAttribute('data-kind'), 'llms');

    // opening it fetches its payloads, once
    const before = urls.filter((u) => u.includes(`/events/${call}`)).length;
    await page.click(`[data-testid="wf-row"][data-event-id="${call}"]`);
    await page.locator('[data-testid="inspector-prompt"]').waitFor();
    assert.match(await page.textContent('[data-testid="inspector-prompt"]'), /Which train to Lyon\?/);
    assert.equal(urls.filter((u) => u.includes(`/events/${call}`)).length, before + 1);

    // the end arrives: the page shows it and stops asking
    await s.end('Success', 'booked', Date.now());
    await page.locator('[data-testid="end-state-reason"]').waitFor({ timeout: 15000 });
    assert.equal(await page.textContent('[data-testid="end-state-reason"]'), 'booked');
    const settled = urls.length;
    await page.waitForTimeout(6000);
    assert.equal(urls.filter((u) => u.includes('since=')).length, urls.slice(0, settled).filter((u) => u.includes('since=')).length, 'no polling once ended');
    await shot('12b-live-session');
  } finally {
    page.off('request', onRequest);
  }
});

test('dark mode and no page errors', T, async () => {
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto(`${server.url}/#/sessions/${ids.fail}`);
  await page.locator('[data-testid="wf-row"]').first().waitFor();
  await page.click('[data-testid="next-error"]');
  await page.locator('[data-testid="inspector-error"]').waitFor();
  await shot('12-dark-session');
  await page.goto(`${server.url}/#/sessions`);
  await rows().first().waitFor();
  await shot('13-dark-sessions');
  await page.emulateMedia({ colorScheme: 'light' });
  assert.deepEqual(pageErrors, [], 'no script errors in the page');
  assert.deepEqual(dialogs, []);
});

test('with --open-read-access the dashboard reads without signing in', T, async () => {
  const open = await startServer({ extraArgs: ['--open-read-access'] });
  const tab = await context.newPage();
  try {
    const s = await new V2Session(open.url, { start: Date.now() - 60e3, tags: ['open'] }).create();
    await s.end('Success', null, Date.now());
    await tab.goto(open.url + '/');
    await tab.locator('[data-testid="session-row"]').first().waitFor();
    assert.equal(await tab.locator('[data-testid="login"]').count(), 0, 'no sign-in form');
    assert.equal(await tab.locator('[data-testid="session-row"]').count(), 1);
  } finally {
    await tab.close();
    await open.stop();
  }
});

test('a stats answer that fails says so, with the server\'s message', T, async () => {
  const tab = await context.newPage();
  await tab.route('**/api/v1/stats**', (route) => route.fulfill({ status: 500, contentType: 'application/json', body: '{"error":"the store is busy"}' }));
  try {
    await signIn(tab, server.url);
    await tab.goto(server.url + '/#/stats');
    await tab.locator('[data-testid="stats-unavailable"]').waitFor();
    assert.match(await tab.textContent('[data-testid="stats-unavailable"]'), /Stats unavailable.*the store is busy/s);
    await tab.screenshot({ path: path.join(ARTIFACTS, '14-stats-unavailable.png') });
  } finally {
    await tab.close();
  }
});
