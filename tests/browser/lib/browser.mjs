// Headless Chromium (Debian's `chromium`, driven by playwright-core) for the dashboard tests.
// CHROMIUM: the browser (default /usr/bin/chromium). A missing browser or playwright-core fails
// with a message saying what to install.

import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { API_KEY, REPO } from './server.mjs';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = path.join(REPO, 'target', 'artifacts', 'browser');

function loadPlaywright() {
  const require = createRequire(import.meta.url);
  try {
    return require('playwright-core');
  } catch {
    throw new Error('playwright-core is not installed in tests/browser/node_modules: run scripts/browser-env (or `npm ci` in tests/browser)');
  }
}

/**
 * Starts Chromium with a fresh profile. Resolves to `{context, page, dialogs, pageErrors,
 * shot(name), close()}`: dialogs are dismissed and recorded, script errors and console errors
 * (other than refused credentials) recorded.
 */
export async function launchBrowser({ colorScheme = 'light' } = {}) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: run scripts/browser-env (apt-get install chromium) or set CHROMIUM`);
  }
  const { chromium } = loadPlaywright();
  mkdirSync(ARTIFACTS, { recursive: true });
  const profile = mkdtempSync(path.join(tmpdir(), 'agentops-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 900 },
    colorScheme,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] || (await context.newPage());
  const dialogs = [];
  const pageErrors = [];
  page.on('dialog', async (d) => {
    dialogs.push(d.message());
    await d.dismiss();
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/401|Unauthorized/.test(m.text())) pageErrors.push(m.text());
  });
  return {
    context,
    page,
    dialogs,
    pageErrors,
    async shot(name, fullPage = false) {
      const file = path.join(ARTIFACTS, `${name}.png`);
      await page.screenshot({ path: file, fullPage });
      return file;
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Signs in through the dashboard's form with the test API key. */
export async function signIn(page, url) {
  await page.goto(url + '/');
  await page.locator('[data-testid="login"]').waitFor();
  await page.fill('[data-testid="login-key"]', API_KEY);
  await page.click('[data-testid="login-submit"]');
  await page.locator('[data-testid="session-row"], [data-testid="empty"]').first().waitFor();
}
