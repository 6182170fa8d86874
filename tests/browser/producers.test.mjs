// Sessions from real GenAI instrumentation packages in the dashboard's chat view: each producer
// of tests/python/genai/runs.json (OpenLLMetry new and old, OpenInference, the OpenTelemetry
// project's openai-v2 in two convention generations) runs its small agent with its own venv
// against a local fake of the OpenAI API and the real server; Chromium then opens each session's
// chat view and reads the conversation: text as text (not JSON), the tool call and its result.
//
//   scripts/python-env && scripts/browser-env && cargo build -p agentops-cli &&
//   node --test tests/browser/producers.test.mjs
//
// A missing venv fails that producer's test, naming scripts/python-env.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { startServer, API_KEY, REPO } from './lib/server.mjs';
import { launchBrowser, signIn } from './lib/browser.mjs';
import { traceSessionId, waitEnded } from './lib/otlp.mjs';

const GENAI = path.join(REPO, 'tests', 'python', 'genai');
const { runs: RUNS } = JSON.parse(readFileSync(path.join(GENAI, 'runs.json'), 'utf8'));
const SYSTEM = 'You plan trips.';
const QUESTION = 'What is the weather in Paris?';
const ANSWER = 'It is sunny in Paris, 22 °C.';
const CALL_ID = 'call_weather_1';
// Gaps in the server's mapping (tests/python/genai/test_producers.py GAPS says the same):
// checks that run as `todo` until it is fixed.
const GAPS = {};
// What a package itself does not send: its tool message has no tool_call_id, so the result is a
// tool message's text rather than a result card tied to the call.
const NO_RESULT_ID = new Set(['openllmetry-legacy-events']);

const venvPython = (venv) => path.join(REPO, 'target', 'python', venv, 'bin', 'python');

/** Runs `cmd args` to its end; resolves to {code, stdout, stderr}. */
function run(cmd, args, { env, timeout = 90000 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The fake OpenAI API (tests/python/genai/fake_llm.py) on a free port: {url, stop()}. */
async function startFakeLlm() {
  const python = venvPython('v04');
  if (!existsSync(python)) throw new Error(`no Python venv v04 at ${python} (it runs the fake LLM): run scripts/python-env first`);
  const child = spawn(python, [path.join(GENAI, 'fake_llm.py'), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the fake LLM did not start within 15 s:\n${output}`)), 15000);
    child.stdout.on('data', (c) => {
      output += c;
      const m = /LISTENING (\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.stderr.on('data', (c) => (output += c));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the fake LLM exited (${code}):\n${output}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}/v1`,
    stop() {
      if (child.exitCode == null) child.kill('SIGTERM');
    },
  };
}

function producerEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(AGENTOPS_|OTEL_|OPENAI_|TRACELOOP_)/.test(k) && !/^(https?|all)_proxy$/i.test(k)) env[k] = v;
  }
  // no internet: anything not for 127.0.0.1 meets a closed local port
  return { ...env, HTTP_PROXY: 'http://127.0.0.1:9', HTTPS_PROXY: 'http://127.0.0.1:9', NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost', PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' };
}

let server;
let fake;
let browser;
let page;
/** label -> {session} or {error} */
const results = new Map();

before(async () => {
  fake = await startFakeLlm();
  server = await startServer({ extraArgs: ['--session-quiet-seconds', '2', '--grpc-listen', 'off'] });
  await Promise.all(
    RUNS.map(async (r) => {
      const python = venvPython(r.venv);
      if (!existsSync(python)) {
        results.set(r.label, { error: `no Python venv ${r.venv} at ${python}: run scripts/python-env first` });
        return;
      }
      const args = [path.join(GENAI, 'producers', r.script), '--endpoint', server.url, '--api-key', API_KEY, '--llm-base-url', fake.url, '--label', r.label, ...r.args];
      const done = await run(python, args, { env: producerEnv() });
      const trace = /^TRACE ([0-9a-f]{32})$/m.exec(done.stdout);
      if (done.code !== 0 || !trace) {
        results.set(r.label, { error: `${r.script} ${r.args.join(' ')} (${r.venv}) exited ${done.code}\n--- stdout\n${done.stdout.slice(-2000)}\n--- stderr\n${done.stderr.slice(-4000)}` });
        return;
      }
      const id = traceSessionId(trace[1]);
      try {
        const session = await waitEnded(server.url, id, 20000);
        results.set(r.label, { session });
      } catch (e) {
        results.set(r.label, { error: String(e) });
      }
    }),
  );
  browser = await launchBrowser();
  page = browser.page;
  await signIn(page, server.url);
}, { timeout: 150000 });

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  if (fake) fake.stop();
});

const card = (k) => page.locator('[data-testid="chat-card"]').nth(k);

for (const r of RUNS) {
  test(`${r.label} (${r.package}): the chat view shows the conversation as text`, { timeout: 60000 }, async (t) => {
    const result = results.get(r.label);
    assert.ok(result, `${r.label} did not run`);
    if (result.error) assert.fail(result.error);
    const { session } = result;
    assert.equal(session.name, `trip-planner-${r.label}`);
    assert.equal(session.end_state, r.fail ? 'Fail' : 'Success');

    await page.goto(`${server.url}/#/sessions/${session.id}?tab=chat`);
    await page.locator('[data-testid="session-title"]').waitFor();
    await card(1).waitFor();
    assert.equal(await page.locator('[data-testid="chat-card"]').count(), 2, 'two LLM calls');
    assert.equal(await page.locator('[data-testid="conversation"]').count() > 0, true, 'drawn from the messages model, not the fallback');

    // the conversation, as text
    const texts = await page.locator('[data-testid="chat"] [data-testid="message-text"]').allTextContents();
    for (const want of [SYSTEM, QUESTION, ANSWER]) assert.ok(texts.includes(want), `"${want}" is shown as text: ${JSON.stringify(texts)}`);
    for (const text of texts) assert.doesNotMatch(text, /"parts"|"role"|^\s*\[\s*\{/, `no message is shown as JSON: ${text}`);
    assert.ok((await card(0).locator('[data-testid="message-text"]').allTextContents()).includes(QUESTION), 'the first call shows the question');
    assert.ok((await card(1).locator('[data-testid="message-text"]').allTextContents()).includes(ANSWER), 'the second call shows the answer');
    const visible = await page.locator('[data-testid="chat"]').innerText();
    assert.doesNotMatch(visible, /"parts"|\{\s*"role"|"type":\s*"text"/, 'no raw message JSON is visible');
    assert.ok(visible.includes(ANSWER));

    // the tool call get_weather is shown as a tool call card, its arguments parsed
    const calls = page.locator('[data-testid="chat"] [data-testid="tool-call"]');
    assert.ok((await calls.count()) >= 1, 'a tool call card');
    assert.equal(await calls.first().locator('[data-testid="tool-name"]').textContent(), 'get_weather');
    assert.equal(await calls.first().getAttribute('data-call-id'), CALL_ID);
    assert.deepEqual(JSON.parse(await calls.first().locator('[data-testid="tool-call-args"]').textContent()), { city: 'Paris' });

    const gap = GAPS[r.label] || {};
    await t.test('the first call asks for the tool', { todo: gap.firstCallAsksForTool }, async () => {
      const asked = card(0).locator('[data-testid="tool-call"]');
      assert.equal(await asked.count(), 1);
      assert.equal(await asked.getAttribute('data-call-id'), CALL_ID);
      assert.equal(await asked.locator('[data-testid="tool-name"]').textContent(), 'get_weather');
    });
    if (!NO_RESULT_ID.has(r.label)) {
      const result = card(1).locator('[data-testid="tool-result"]');
      assert.equal(await result.count(), 1, "the tool's result card");
      assert.equal(await result.getAttribute('data-call-id'), CALL_ID);
      assert.match(await result.textContent(), /sunny/);
    }
    if (r.fail) assert.match(await page.textContent('body'), /booking service is down/, "the failure's reason is shown");
    await browser.shot(`30-producer-${r.label}-chat`);
    await card(1).locator('[data-testid="message-text"]', { hasText: ANSWER }).scrollIntoViewIfNeeded();
    await browser.shot(`31-producer-${r.label}-answer`);
  });
}

test('no page errors on the producers\' sessions', () => {
  assert.deepEqual(browser.pageErrors, [], 'no script errors in the page');
  assert.deepEqual(browser.dialogs, [], 'no dialog fired');
});
