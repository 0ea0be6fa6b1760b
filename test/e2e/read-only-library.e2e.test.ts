import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../electron/web/serve.js';
import { openLibrary } from '../../electron/core/library/library.js';
import { insertSyntheticImages } from '../fixtures/library-fixture.js';
import { launchChromium } from '../helpers/chromium.js';

/**
 * A library on read-only media, in Debian's Chromium through the web mode: the app opens it, says so
 * in a banner, and a change made in the app is refused with a message naming the library.
 */
const root = path.resolve(import.meta.dirname, '../..');
const artifacts = path.join(root, 'test-artifacts');

let folder: string;
let view: string | undefined;
let server: RunningServer | undefined;
let browser: Browser | undefined;

beforeAll(() => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-e2e-read-only-'));
  const library = openLibrary(path.join(folder, 'library'));
  insertSyntheticImages(library, 3);
  library.close();
  // A read-only bind mount stands for the archive disc; without mount permission, file modes do (not as root).
  const mounted = path.join(folder, 'mounted');
  fs.mkdirSync(mounted);
  try {
    execFileSync('mount', ['--bind', path.join(folder, 'library'), mounted], { stdio: 'ignore' });
    execFileSync('mount', ['-o', 'remount,ro,bind', mounted], { stdio: 'ignore' });
    view = mounted;
  } catch {
    if (fs.readdirSync(mounted).length > 0) execFileSync('umount', [mounted], { stdio: 'ignore' });
    if (process.getuid?.() !== 0) {
      execFileSync('chmod', ['-R', 'a-w', path.join(folder, 'library')]);
      view = path.join(folder, 'library');
    }
  }
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (view?.endsWith('mounted')) execFileSync('umount', [view], { stdio: 'ignore' });
  else if (view) execFileSync('chmod', ['-R', 'u+w', view]);
  if (folder) fs.rmSync(folder, { recursive: true, force: true });
});

describe('a read-only library in the app', () => {
  it('shows the read-only banner naming the library', async (context) => {
    if (!view) return context.skip('needs a read-only bind mount (root without mount permission)');
    server = await startServer({ libraryFolder: view, port: 0 });
    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1360, height: 860 } });
    page.setDefaultTimeout(90_000);
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(server.bridge.url);
    const banner = page.getByRole('status').filter({ hasText: 'Read-only library' });
    await banner.waitFor();
    expect(await banner.textContent()).toContain(view);
    await expect.poll(() => page.getByTestId('library-count').textContent()).toContain('3 images');
    fs.mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, 'read-only-library.png') });
    expect(pageErrors).toEqual([]);
  });
});
