// Starts the real `agentops serve` binary on a free loopback port with a temporary data directory.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const API_KEY = '6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';

export function binaryPath() {
  const bin = process.env.AGENTOPS_BIN || path.join(REPO, 'target', 'debug', 'agentops');
  return path.resolve(REPO, bin);
}

/** Starts the server; resolves to {url, stop()} once it prints its address. */
export async function startServer({ extraArgs = [] } = {}) {
  const bin = binaryPath();
  if (!existsSync(bin)) {
    throw new Error(`agentops binary not found at ${bin}: build it with \`cargo build -p agentops-cli\` or set AGENTOPS_BIN`);
  }
  const dataDir = mkdtempSync(path.join(tmpdir(), 'agentops-browser-'));
  const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--api-key', API_KEY, '--log', 'warn', ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start within 20 s:\n${output}`)), 20000);
    const onData = (chunk) => {
      output += chunk;
      const m = /listening on (http:\/\/[0-9.:]+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (c) => (output += c));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}) before listening:\n${output}`));
    });
  });
  return {
    url,
    dataDir,
    output: () => output,
    async stop() {
      if (child.exitCode == null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10000))]);
        if (child.exitCode == null) child.kill('SIGKILL');
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
