// The metrics page in headless Chromium, on metrics the real Rust SDK sent: its quickstart
// example (target/debug/examples/quickstart, built by `cargo build -p agentops --examples`) run
// twice against the server, once per session tag.
//
//   cargo build -p agentops-cli -p agentops --examples && node --test tests/browser/metrics.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

import { startServer, API_KEY, REPO } from './lib/server.mjs';
import { launchBrowser, signIn } from './lib/browser.mjs';

const T = { timeout: 120000 };
const QUICKSTART = path.join(REPO, 'target', 'debug', 'examples', 'quickstart');
// The quickstart's one LLM call: gpt-4o-mini, 24 input and 6 output tokens.
const TOKENS_PER_RUN = 30;

let server;
let browser;
let page;

/** Runs the quickstart against the server with these default session tags. */
function quickstart(tags) {
  if (!existsSync(QUICKSTART)) {
    throw new Error(`${QUICKSTART} not found: build it with \`cargo build -p agentops --examples\``);
  }
  return new Promise((resolve, reject) => {
    const env = { ...process.env, AGENTOPS_API_KEY: API_KEY, AGENTOPS_API_ENDPOINT: server.url, AGENTOPS_DEFAULT_TAGS: tags, AGENTOPS_LOG: 'warn' };
    const child = spawn(QUICKSTART, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    child.on('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`quickstart exited with ${code}:\n${output}`))));
  });
}

async function metricNames() {
  const res = await fetch(`${server.url}/api/v1/metrics`, { headers: { 'X-Agentops-Api-Key': API_KEY } });
  assert.equal(res.status, 200);
  return (await res.json()).metrics.map((m) => m.name);
}

/** The table's rows as {series: total}. */
async function totals() {
  await page.locator('[data-testid="metrics-table"]').waitFor();
  const rows = await page.locator('[data-testid="metrics-row"]').evaluateAll((trs) => trs.map((tr) => [tr.cells[0].textContent.trim(), tr.cells[1].textContent.trim()]));
  return Object.fromEntries(rows);
}

before(async () => {
  server = await startServer({ extraArgs: ['--grpc-listen', 'off'] });
  await quickstart('team-a');
  await quickstart('team-b');
  // the SDK sends its metrics when the program ends; the server commits them before answering
  const names = await metricNames();
  for (const name of ['agentops.llm.tokens', 'agentops.llm.cost', 'gen_ai.client.operation.duration']) {
    assert.ok(names.includes(name), `${name} in ${names}`);
  }
  browser = await launchBrowser();
  page = browser.page;
  await signIn(page, server.url);
}, { timeout: 180000 });

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

test('the metrics page opens on tokens by model, from the SDK\'s own metrics', T, async () => {
  await page.click('a[data-nav="metrics"]');
  await page.locator('[data-testid="metrics-page"]').waitFor();
  await page.locator('[data-testid="metrics-chart"] svg rect.bar').first().waitFor();
  assert.equal(await page.inputValue('[data-testid="metrics-name"]'), 'agentops.llm.tokens');
  assert.equal(await page.inputValue('[data-testid="metrics-group"]'), 'gen_ai.request.model');
  assert.deepEqual(await totals(), { 'gpt-4o-mini': String(2 * TOKENS_PER_RUN) });
  const presets = await page.locator('[data-testid="metrics-preset"]').allTextContents();
  for (const p of ['Tokens by model', 'Cost by model', 'Cost by session tag', 'Call latency by model']) assert.ok(presets.includes(p), `${p} in ${presets}`);
  assert.match(page.url(), /#\/metrics\?name=agentops\.llm\.tokens&group=gen_ai\.request\.model/);
  await browser.shot('40-metrics-tokens-by-model');
});

test('a session tag splits the series, one per tag', T, async () => {
  await page.getByRole('button', { name: 'Tokens by session tag' }).click();
  await page.waitForFunction(() => document.querySelector('[data-testid="metrics-group"]')?.value === 'session.tags');
  assert.deepEqual(await totals(), { 'team-a': String(TOKENS_PER_RUN), 'team-b': String(TOKENS_PER_RUN) });
  await page.getByRole('button', { name: 'Cost by session tag' }).click();
  await page.waitForFunction(() => document.querySelector('[data-testid="metrics-name"]')?.value === 'agentops.llm.cost');
  const cost = await totals();
  assert.deepEqual(Object.keys(cost).sort(), ['team-a', 'team-b']);
  for (const v of Object.values(cost)) assert.match(v, /^\$0\.0000\d+/, `a priced cost: ${v}`);
  await browser.shot('41-metrics-cost-by-tag');
});

test('a histogram is charted by the statistic chosen, as lines for means', T, async () => {
  await page.selectOption('[data-testid="metrics-name"]', 'gen_ai.client.operation.duration');
  await page.locator('[data-testid="metrics-stat"]').waitFor();
  // a duration opens on its mean, drawn as a line
  assert.equal(await page.inputValue('[data-testid="metrics-stat"]'), 'mean');
  await page.locator('[data-testid="metrics-chart"] path.line, [data-testid="metrics-chart"] circle.dot').first().waitFor();
  await page.selectOption('[data-testid="metrics-group"]', 'gen_ai.request.model');
  await page.selectOption('[data-testid="metrics-stat"]', 'count');
  await page.locator('[data-testid="metrics-chart"] rect.bar').first().waitFor();
  assert.deepEqual(await totals(), { 'gpt-4o-mini': '2' });
  await browser.shot('42-metrics-latency-count');
});

test('the page reloads from its address, and nothing went wrong in the page', T, async () => {
  await page.goto(`${server.url}/#/metrics?name=agentops.llm.tokens&group=session.tags&range=1h`);
  await page.locator('[data-testid="metrics-table"]').waitFor();
  assert.equal(await page.inputValue('[data-testid="metrics-range"]'), '1h');
  assert.deepEqual(await totals(), { 'team-a': String(TOKENS_PER_RUN), 'team-b': String(TOKENS_PER_RUN) });
  assert.deepEqual(browser.pageErrors, []);
  assert.deepEqual(browser.dialogs, []);
});
