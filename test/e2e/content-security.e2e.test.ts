import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../electron/cli/serve.js';

/**
 * The renderer under the web mode's Content-Security-Policy: loading the app and making contract calls
 * must not trip a single `securitypolicyviolation` (Chromium logs those outside the console API, so
 * only the DOM event sees them).
 */
const root = path.resolve(import.meta.dirname, '../..');
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const launchArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

/** Runs in the page before any app script; reported through the console so the test can collect it. */
function reportCspViolations(): void {
  const page = globalThis as unknown as {
    document: { addEventListener(type: string, listener: (event: { violatedDirective: string; blockedURI: string; sourceFile: string }) => void): void };
    console: { error(message: string): void };
  };
  page.document.addEventListener('securitypolicyviolation', (event) =>
    page.console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || '(inline)'} in ${event.sourceFile || '?'}`),
  );
}

beforeAll(() => {
  const build = spawnSync(process.execPath, [path.join(root, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'renderer/vite.config.ts', '--logLevel', 'warn'], {
    cwd: root,
    encoding: 'utf8',
  });
  if (build.status !== 0) throw new Error(`vite build failed:\n${build.stdout}\n${build.stderr}`);
});

describe('content security policy in the browser', () => {
  let folder: string;
  let server: RunningServer;
  let browser: Browser;

  beforeAll(async () => {
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-csp-'));
    server = await startServer({ libraryFolder: path.join(folder, 'library'), port: 0 });
    browser = await chromium.launch({ executablePath: chromiumPath, args: launchArgs });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it('loads the app and answers calls without any CSP violation', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(90_000);
    const violations: string[] = [];
    page.on('console', (message) => {
      if (message.text().startsWith('CSP violation')) violations.push(message.text());
    });
    await page.addInitScript(reportCspViolations);
    await page.goto(server.bridge.url);
    await page.getByRole('heading', { name: 'The library is empty' }).waitFor();
    // Visiting screens makes the client validate more call outputs (zod parses each one).
    for (const key of ['2', '5', '1']) await page.keyboard.press(key);
    await page.getByRole('heading', { name: 'The library is empty' }).waitFor();
    expect(violations).toEqual([]);
  }, 300_000);
});
