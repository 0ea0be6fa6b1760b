import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../electron/web/serve.js';
import { runDermws } from '../fixtures/cli-runner.js';
import { imagesLoaded, launchChromium } from '../helpers/chromium.js';

/**
 * The first run and the near-duplicate review in Chromium through the web mode: an empty library,
 * "Try with demo data", a duplicate pair flagged and undone, a bulk flag that asks first, and the
 * agreement screen's κ against the CLI's. Stored flags and labels are read from the database and the
 * CLI, never from the page. Screens are photographed at 1440×900 and 1024×700 into test-artifacts/.
 */
const root = path.resolve(import.meta.dirname, '../..');
const artifacts = path.join(root, 'test-artifacts');

describe('first run with demo data, duplicate review and agreement in the browser', () => {
  let folder: string;
  let library: string;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  const screenshot = (name: string) => page.screenshot({ path: path.join(artifacts, `duplicates-demo-${name}.png`), fullPage: true });
  const manualDuplicateFlags = () => {
    const db = new Database(path.join(library, 'library.sqlite'), { readonly: true });
    try {
      return (
        db.prepare("SELECT image_id AS imageId FROM image_flags WHERE flag = 'duplicate' AND source = 'manual' ORDER BY image_id").all() as Array<{
          imageId: number;
        }>
      ).map((row) => row.imageId);
    } finally {
      db.close();
    }
  };

  beforeAll(async () => {
    fs.mkdirSync(artifacts, { recursive: true });
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-e2e-demo-'));
    library = path.join(folder, 'library');
    process.env.DERMWS_MODEL_CACHE ??= path.join(root, 'native-models', 'generated');
    server = await startServer({ libraryFolder: library, port: 0 });
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(120_000);
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      // Failed requests are caught with their address below; the console line names none.
      if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) problems.push(`console: ${message.text()}`);
    });
    page.on('response', (response) => {
      if (response.status() >= 400 && !response.url().endsWith('/favicon.ico')) problems.push(`HTTP ${response.status()} ${response.url()}`);
    });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it('fills the empty library with "Try with demo data", showing progress', async () => {
    await page.goto(server.bridge.url);
    await page.getByRole('heading', { name: 'The library is empty' }).waitFor();
    await screenshot('01-empty-1440');
    await page.getByRole('button', { name: 'Try with demo data' }).click();
    await page.getByRole('progressbar').waitFor();
    await screenshot('02-demo-progress-1440');
    await expect.poll(() => page.getByTestId('library-count').textContent(), { timeout: 600_000, interval: 1000 }).toContain('122 images');
    await page.waitForFunction(imagesLoaded, '[role="grid"] img');
    await screenshot('03-library-demo-1440');

    const info = await runDermws('info', '--library', library, '--json');
    expect(info.code).toBe(0);
    const embedded = await runDermws('embed', '--library', library, '--json');
    expect(embedded.json).toMatchObject({ embedded: 0, skipped: 122 });
  }, 700_000);

  it('reviews a duplicate pair, undoes it, and asks before flagging several images at once', async () => {
    await page.keyboard.press('3');
    await page.getByRole('tab', { name: 'Near-duplicates' }).click();
    await page.getByRole('button', { name: 'Find near-duplicates' }).click();
    await page.getByText(/^Group 1 of \d+$/).waitFor();
    const report = await runDermws('duplicates', '--library', library, '--json');
    expect(report.code).toBe(0);
    const groups = report.json.groups as Array<{ imageIds: number[]; keep: number }>;
    await expect.poll(() => page.getByText(/^Group 1 of \d+$/).textContent()).toBe(`Group 1 of ${groups.length}`);
    await page.waitForFunction(imagesLoaded, '[aria-label="Near-duplicates"] figure img');
    await screenshot('04-duplicate-pair-1440');

    // The most similar group is the pixel copy: a pair. Apply flags the other image at once (one image: no question).
    const pair = groups[0]!;
    expect(pair.imageIds).toHaveLength(2);
    const other = pair.imageIds.find((id) => id !== pair.keep)!;
    expect(manualDuplicateFlags()).toEqual([]);
    await page.getByRole('button', { name: 'Apply decision' }).click();
    await expect.poll(manualDuplicateFlags).toEqual([other]);
    await page.getByRole('button', { name: /^Undo last decision/ }).click();
    await expect.poll(manualDuplicateFlags).toEqual([]);
    await page.getByText(/^Group 1 of/).waitFor();

    // Per image: keep both of the pair instead, so nothing can be applied.
    await page
      .getByRole('radiogroup', { name: `Decision for image ${other}` })
      .getByRole('radio', { name: 'Keep' })
      .click();
    expect(await page.getByRole('button', { name: 'Apply decision' }).isDisabled()).toBe(true);
    await page
      .getByRole('radiogroup', { name: `Decision for image ${other}` })
      .getByRole('radio', { name: 'Flag as duplicate' })
      .click();

    // A group of three or more flags several images: it is confirmed first, and cancelling changes nothing.
    const bigIndex = groups.findIndex((group) => group.imageIds.length >= 3);
    expect(bigIndex).toBeGreaterThan(0);
    const big = groups[bigIndex]!;
    await page.getByRole('list', { name: 'Duplicate groups' }).getByRole('button').nth(bigIndex).click();
    await page.getByText(`Group ${bigIndex + 1} of ${groups.length}`).waitFor();
    await page.getByRole('button', { name: 'Apply decision' }).click();
    const dialog = page.getByRole('alertdialog');
    await dialog.waitFor();
    await screenshot('05-duplicate-confirm-1440');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect(manualDuplicateFlags()).toEqual([]);
    await page.getByRole('button', { name: 'Apply decision' }).click();
    await dialog.getByRole('button', { name: /^Flag \d+ images$/ }).click();
    const bigOthers = big.imageIds.filter((id) => id !== big.keep);
    await expect.poll(manualDuplicateFlags).toEqual(bigOthers);
    const cli = await runDermws('duplicates', '--library', library, '--json');
    const flaggedInCli = (cli.json.groups as Array<{ images: Array<{ imageId: number; flags: string[] }> }>)
      .flatMap((group) => group.images)
      .filter((image) => bigOthers.includes(image.imageId));
    expect(flaggedInCli.every((image) => image.flags.includes('duplicate'))).toBe(true);
    await page.keyboard.press('Control+z');
    await expect.poll(manualDuplicateFlags).toEqual([]);
  }, 300_000);

  it('shows the same Cohen’s κ as the CLI and adjudicates through the same service', async () => {
    const cli = await runDermws('agreement', '--kind', 'condition', '--library', library, '--json');
    const pair = cli.json.kinds[0].pairs[0] as { annotatorA: string; annotatorB: string; kappa: number; items: number };
    await page.keyboard.press('0');
    const row = page.locator(`[data-testid="kappa-row"][data-annotators="${pair.annotatorA}|${pair.annotatorB}"]`);
    await row.waitFor();
    expect(await row.getByTestId('kappa').textContent()).toBe(pair.kappa.toFixed(3));
    expect(await row.textContent()).toContain(String(pair.items));
    await screenshot('06-agreement-1440');

    const first = page.getByTestId('disagreement').first();
    const imageId = Number(await first.getAttribute('data-image-id'));
    await page.getByLabel('Adjudicator').fill('e2e-adjudicator');
    const choice = first.getByRole('radio').first();
    const chosenName = (await choice.textContent())!.trim();
    await choice.click();
    await first.getByRole('button', { name: 'Store consensus' }).click();
    await page.locator(`[data-testid="disagreement"][data-image-id="${imageId}"]`).waitFor({ state: 'detached' });
    const after = await runDermws('agreement', '--kind', 'condition', '--disagreements', '--library', library, '--json');
    expect(after.json.disagreements.map((item: { imageId: number }) => item.imageId)).not.toContain(imageId);
    const choiceCodes = (await runDermws('taxonomy', 'list', '--kind', 'condition', '--library', library, '--json')).json;
    const db = new Database(path.join(library, 'library.sqlite'), { readonly: true });
    const consensus = (
      db
        .prepare("SELECT value FROM labels WHERE image_id = ? AND kind = 'condition' AND origin = 'consensus' AND superseded_at IS NULL")
        .all(imageId) as Array<{ value: string }>
    ).map((row) => row.value);
    db.close();
    expect(consensus).toHaveLength(1);
    const entries = (Array.isArray(choiceCodes) ? choiceCodes : choiceCodes.entries) as Array<{ code: string; displayName: string }>;
    expect(entries.find((entry) => entry.code === consensus[0])?.displayName ?? consensus[0]).toBe(chosenName);
  }, 120_000);

  it('keeps the duplicate review and the agreement screen usable at 1024×700', async () => {
    await page.setViewportSize({ width: 1024, height: 700 });
    await page.keyboard.press('1');
    await page.waitForFunction(imagesLoaded, '[role="grid"] img');
    await screenshot('07-library-1024');
    await page.keyboard.press('3');
    await page.getByRole('tab', { name: 'Near-duplicates' }).click();
    await page.getByRole('button', { name: 'Find near-duplicates' }).click();
    await page.getByText(/^Group 1 of \d+$/).waitFor();
    const apply = page.getByRole('button', { name: 'Apply decision' });
    await apply.scrollIntoViewIfNeeded();
    expect(await apply.isVisible()).toBe(true);
    const overflow = await page.evaluate(() => {
      const doc = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document.documentElement;
      return doc.scrollWidth - doc.clientWidth;
    });
    expect(overflow).toBeLessThanOrEqual(0);
    await screenshot('08-duplicates-1024');
    await page.keyboard.press('0');
    await page.getByTestId('kappa-table').waitFor();
    await screenshot('09-agreement-1024');
    expect(problems).toEqual([]);
  }, 120_000);
});
