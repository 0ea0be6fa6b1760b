import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../electron/web/serve.js';
import { runDermws } from '../fixtures/cli-runner.js';
import { writeSkinImage } from '../fixtures/skin-images.js';
import { launchChromium } from '../helpers/chromium.js';

/**
 * "Import cluster results" on the Models & settings screen, in Debian's Chromium through the web
 * mode: a cluster output folder with one good shard, one damaged shard and one missing shard is
 * merged; the screen reports each; after the cluster finishes the rest, a second import adds only them.
 */
const root = path.resolve(import.meta.dirname, '../..');

describe('Import cluster results (Models & settings)', () => {
  let folder: string;
  let library: string;
  let planFolder: string;
  let out: string;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    process.env.DERMWS_MODEL_CACHE ??= path.join(root, 'native-models', 'generated');
    process.env.DERMWS_EXECUTION_PROVIDERS = 'cpu';
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-e2e-cluster-'));
    const photos = path.join(folder, 'photos');
    for (let index = 0; index < 6; index++) await writeSkinImage(path.join(photos, `case ${index}.jpg`), { seed: 300 + index, width: 260, height: 200 });
    library = path.join(folder, 'library');
    expect((await runDermws('--library', library, 'import', photos, '--json')).code).toBe(0);
    planFolder = path.join(folder, 'plan');
    expect((await runDermws('--library', library, 'embed', 'plan', '--shard-size', '2', '--out', planFolder, '--json')).code).toBe(0);
    out = path.join(folder, 'out');
    for (const shard of ['0', '1']) expect((await runDermws('embed', 'shard', planFolder, '--shard', shard, '--out', out, '--json')).code).toBe(0);
    const npz = path.join(out, 'shard-1.npz');
    const bytes = fs.readFileSync(npz);
    bytes[bytes.length >> 1] ^= 0xff;
    fs.writeFileSync(npz, bytes);

    server = await startServer({ libraryFolder: library, port: 0 });
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1360, height: 860 } })).newPage();
    page.setDefaultTimeout(90_000);
    page.on('pageerror', (error) => pageErrors.push(`page error: ${error.message}`));
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it('merges the finished shard, names the damaged and the missing one, and adds only new shards on a second import', async () => {
    await page.goto(server.bridge.url);
    await page.keyboard.press('9');
    const form = page.getByRole('form', { name: 'Import cluster results' });
    await form.getByLabel('Cluster output folder').fill(out);
    await form.getByRole('button', { name: 'Import cluster results' }).click();
    const status = form.getByRole('status');
    const statusText = async () => ((await status.textContent()) ?? '').replace(/\s+/g, ' ');
    await expect.poll(statusText, { timeout: 120_000 }).toContain('2 new embeddings from 1 of 3 shards');
    const text = await statusText();
    expect(text).toContain('Missing: 1 shards (2)');
    expect(text).toMatch(/Refused shard 1: .*shard-1\.npz: the file does not match its manifest/);

    // The cluster reruns shard 1 (its damaged files removed) and finishes shard 2.
    fs.rmSync(path.join(out, 'shard-1.npz'));
    fs.rmSync(path.join(out, 'shard-1.json'));
    for (const shard of ['1', '2']) expect((await runDermws('embed', 'shard', planFolder, '--shard', shard, '--out', out, '--json')).code).toBe(0);
    await form.getByRole('button', { name: 'Import cluster results' }).click();
    await expect.poll(statusText, { timeout: 120_000 }).toContain('4 new embeddings from 3 of 3 shards (2 were already stored)');
    // The models table reloads after the import's status is shown: wait for it rather than race it.
    await expect.poll(async () => (await page.getByRole('region', { name: 'Models' }).textContent()) ?? '').toContain('6 / 6');
    await page.screenshot({ path: path.join(root, 'test-artifacts', 'cluster-import.png') });
    expect(pageErrors).toEqual([]);
  }, 300_000);
});
