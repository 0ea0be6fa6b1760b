import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../electron/web/serve.js';
import { createTestLibrary, insertSyntheticImages } from '../fixtures/library-fixture.js';
import { writeBrokenFiles, writeSkinImage } from '../fixtures/skin-images.js';
import { imagesLoaded, launchChromium, reportCspViolations } from '../helpers/chromium.js';

/**
 * The workstation end to end, in Debian's Chromium through the local web mode on a real temporary
 * library: the renderer is built first, images (good and broken) are uploaded and imported through the
 * Import screen, and every screen is photographed into test-artifacts/ for a person to look at.
 */
const root = path.resolve(import.meta.dirname, '../..');
const artifacts = path.join(root, 'test-artifacts');

describe('workstation in the browser', () => {
  let folder: string;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  const goodFiles: string[] = [];
  let brokenCount = 0;

  const screenshot = (name: string) => page.screenshot({ path: path.join(artifacts, `${name}.png`) });

  beforeAll(async () => {
    fs.mkdirSync(artifacts, { recursive: true });
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-e2e-'));
    const photos = path.join(folder, 'photos');
    for (let index = 0; index < 14; index++) {
      const format = index % 3 === 0 ? 'png' : 'jpeg';
      goodFiles.push(
        await writeSkinImage(path.join(photos, `patient ${String(index + 1).padStart(2, '0')}.${format === 'png' ? 'png' : 'jpg'}`), {
          seed: 100 + index,
          toneIndex: index % 10,
          width: 480,
          height: 360,
          format,
        }),
      );
    }
    // Files without an image extension (notes.txt) are skipped, not failed.
    brokenCount = Object.keys(await writeBrokenFiles(path.join(photos, 'broken'))).filter((name) => !name.endsWith('.txt')).length;
    // The default encoder is converted once per machine into this shared cache (see native-models/).
    process.env.DERMWS_MODEL_CACHE ??= path.join(root, 'native-models', 'generated');
    server = await startServer({ libraryFolder: path.join(folder, 'library'), port: 0 });
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
    page = await context.newPage();
    // The machine may be shared with other heavy work; waits are generous and never assert speed.
    page.setDefaultTimeout(90_000);
    page.on('pageerror', (error) => pageErrors.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) pageErrors.push(`console: ${message.text()}`);
    });
    // Chromium reports CSP violations outside the console API; the DOM event turns each into a console error above.
    await page.addInitScript(reportCspViolations);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it('opens with the token from the printed URL and shows the empty library', async () => {
    await page.goto(server.bridge.url);
    expect(page.url()).not.toContain('token=');
    await page.getByRole('heading', { name: 'The library is empty' }).waitFor();
    await screenshot('01-library-empty');
  });

  it('imports uploaded photographs and reports the broken files with reasons', async () => {
    await page.keyboard.press('2');
    await page.getByRole('heading', { name: 'Import', exact: true }).waitFor();
    const brokenFolder = path.join(folder, 'photos', 'broken');
    const files = [...goodFiles, ...fs.readdirSync(brokenFolder).map((name) => path.join(brokenFolder, name))];
    await page.locator('[data-testid="import-files"]').setInputFiles(files);
    const report = page.getByRole('region', { name: 'Import report' });
    await report.waitFor({ timeout: 60_000 });
    await expect.poll(() => report.textContent()).toContain('imported');
    const text = (await report.textContent()) ?? '';
    expect(text).toMatch(new RegExp(`${goodFiles.length}\\s*imported`));
    expect(text).toMatch(new RegExp(`${brokenCount}\\s*failed`));
    const rows = report.locator('tbody tr');
    expect(await rows.count()).toBe(brokenCount);
    expect(await report.locator('tbody').textContent()).toContain('zero-bytes.jpg');
    await screenshot('02-import-report');
  }, 300_000);

  it('shows the imported images in the library grid and opens one', async () => {
    await page.keyboard.press('1');
    await expect.poll(() => page.getByTestId('library-count').textContent()).toContain(`${goodFiles.length} images`);
    const cells = page.locator('[role="grid"] img');
    await expect.poll(() => cells.count()).toBe(goodFiles.length);
    await page.waitForFunction(imagesLoaded, '[role="grid"] img');
    await screenshot('03-library-grid');
    await page.locator('[role="grid"]').focus();
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('Enter');
    const detail = page.getByRole('dialog');
    await detail.getByText('Quality metrics').waitFor();
    await page.waitForFunction(imagesLoaded, '[role="dialog"] .canvas img');
    await screenshot('04-image-detail');
    await page.keyboard.press('Escape');
    await detail.waitFor({ state: 'detached' });
  });

  it('shows quality histograms and re-flags when a threshold moves', async () => {
    await page.keyboard.press('5');
    const slider = page.getByRole('slider', { name: /Short side/ });
    await slider.waitFor();
    await screenshot('05-quality');
    await slider.focus();
    for (let step = 0; step < 3; step++) await page.keyboard.press('Shift+ArrowRight');
    await expect.poll(async () => Number(await slider.getAttribute('aria-valuenow'))).toBeGreaterThan(300);
    const flagged = page.getByRole('button', { name: /low resolution/ });
    await expect.poll(async () => (await flagged.textContent())?.replace(/\D+/g, ' ').trim()).toBe(String(goodFiles.length));
  });

  it('embeds the library with the default encoder from the models screen', async () => {
    await page.keyboard.press('9');
    const models = page.getByRole('region', { name: 'Models' });
    await models.getByRole('button', { name: 'Check', exact: true }).first().click({ timeout: 120_000 });
    await models.getByText('Runs on CPU', { exact: true }).first().waitFor({ timeout: 120_000 });
    await models.getByRole('button', { name: 'Embed missing' }).first().click();
    await expect.poll(() => models.getByRole('status').first().textContent(), { timeout: 120_000 }).toContain(`${goodFiles.length} embedded`);
    await page.getByRole('region', { name: 'Jobs' }).getByText('import').first().waitFor();
    const add = page.getByRole('form', { name: 'Add a model' });
    await add.getByLabel('ONNX file').fill(path.join(folder, 'missing.onnx'));
    await add.getByLabel('Manifest file').fill(path.join(folder, 'missing.json'));
    await add.getByRole('button', { name: 'Check and add' }).click();
    await expect.poll(() => add.getByRole('status').textContent(), { timeout: 60_000 }).toContain('missing');
    await screenshot('08-models-settings');
  }, 300_000);

  it('finds similar cases for a library image and for an outside photo, and compares side by side', async () => {
    await page.keyboard.press('1');
    await page.locator('[role="grid"]').focus();
    await page.keyboard.press('ArrowRight');
    await page.getByRole('button', { name: 'find similar cases' }).click();
    const results = page.getByRole('region', { name: 'Results' });
    await expect.poll(() => results.getByRole('button', { name: /similarity/ }).count(), { timeout: 60_000 }).toBe(goodFiles.length - 1);
    await page.waitForFunction(imagesLoaded, '[aria-label="Results"] img');
    await screenshot('03b-similar-cases');
    await results
      .getByRole('button', { name: /similarity/ })
      .first()
      .click();
    await page.getByRole('dialog', { name: 'Side-by-side comparison' }).waitFor();
    await page.keyboard.press('+');
    await screenshot('03c-compare');
    await page.keyboard.press('Escape');

    // A re-encoded, resized copy of an imported photo, from outside the library, finds its original first.
    const outside = path.join(folder, 'outside.webp');
    await sharp(goodFiles[5]!).resize(400).webp({ quality: 80 }).toFile(outside);
    await page.locator('[data-testid="search-file"]').setInputFiles(outside);
    await expect.poll(() => page.getByRole('complementary', { name: 'Query' }).textContent()).toContain('Outside photo: outside.webp');
    const first = results.getByRole('button', { name: /similarity/ }).first();
    await first.waitFor({ timeout: 60_000 });
    const similarity = Number((await first.getAttribute('aria-label'))!.match(/similarity ([0-9.]+)/)![1]);
    expect(similarity).toBeGreaterThan(0.9);
    const filtered = page.getByRole('complementary', { name: 'Query' }).getByRole('textbox', { name: /Conditions/ });
    await filtered.fill('flag=no_such_flag');
    await page.getByRole('button', { name: 'Search again' }).click();
    await results.getByText('No image passes these filters.').waitFor({ timeout: 60_000 });
    await filtered.fill('');
    await filtered.blur();
  }, 300_000);

  it('runs a labelling session from the keyboard, flags an image and undoes a change', async () => {
    await page.keyboard.press('4');
    const form = page.getByRole('form', { name: 'New session' });
    await form.getByLabel('Annotator').fill('e2e-annotator');
    await form.getByRole('button', { name: 'Start labelling' }).click();
    const progress = page.getByTestId('session-progress');
    await expect.poll(() => progress.textContent()).toBe(`0 of ${goodFiles.length}`);
    await page.getByRole('img', { name: /to label/ }).waitFor();
    const firstImage = Number((await page.getByRole('img', { name: /to label/ }).getAttribute('alt'))!.match(/\d+/)![0]);
    await page.locator('body').press('e');
    await page.keyboard.press('4');
    await page.getByRole('region', { name: 'Chosen labels' }).getByText('Condition: Eczema (4)').waitFor();
    await screenshot('06-labelling');
    await page.keyboard.press('Enter');
    await expect.poll(() => progress.textContent()).toBe(`1 of ${goodFiles.length}`);
    const secondImage = Number((await page.getByRole('img', { name: /to label/ }).getAttribute('alt'))!.match(/\d+/)![0]);
    expect(secondImage).not.toBe(firstImage);
    for (let press = 0; press < 6; press++) await page.keyboard.press('Tab');
    await page.getByRole('list', { name: 'Quality flags' }).waitFor();
    await page.keyboard.press('b');
    await page.keyboard.press('p');
    await page.keyboard.press('Enter');
    await expect.poll(() => progress.textContent()).toBe(`2 of ${goodFiles.length}`);
    // Undo the last saved change (the psoriasis slot is not there: 'p' is not a quality-flag key).
    await page.keyboard.press('Control+z');
    await page
      .getByRole('status')
      .filter({ hasText: /Undone/ })
      .waitFor();

    const labelsOf = async (imageId: number) => {
      const response = await fetch(`${server.bridge.origin}/api/labelsOfImage`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-dermws-token': server.bridge.token },
        body: JSON.stringify({ imageId }),
      });
      return ((await response.json()) as { output: { labels: Array<{ kind: string; value: string; confidence: number | null; annotator: string | null }> } })
        .output.labels;
    };
    expect(await labelsOf(firstImage)).toContainEqual({ kind: 'condition', value: 'eczema', confidence: 4, annotator: 'e2e-annotator', origin: 'manual' });
    // The undo removed the flag recorded on the second image.
    expect((await labelsOf(secondImage)).filter((label) => label.kind === 'quality_flag')).toEqual([]);
    // Back to the second image; like every image it starts on Condition, so walk to the quality flags again.
    await page.keyboard.press('ArrowLeft');
    await expect.poll(async () => Number((await page.getByRole('img', { name: /to label/ }).getAttribute('alt'))!.match(/\d+/)![0])).toBe(secondImage);
    for (let press = 0; press < 6; press++) await page.keyboard.press('Tab');
    await page.getByRole('list', { name: 'Quality flags' }).waitFor();
    await page.keyboard.press('b');
    await page.keyboard.press('Enter');
    await expect.poll(async () => (await labelsOf(secondImage)).map((label) => `${label.kind}:${label.value}`)).toContain('quality_flag:blurry');
    await page.keyboard.press('Escape');
    await page.getByRole('region', { name: 'Sessions' }).getByText('e2e-annotator').waitFor();
  });

  it('draws the embedding map and opens a lasso selection in the library', async () => {
    await page.keyboard.press('6');
    await page.getByRole('button', { name: 'Draw the map' }).click();
    const legend = page.getByRole('complementary', { name: 'Legend' });
    await legend.waitFor({ timeout: 60_000 });
    await expect
      .poll(
        () =>
          page
            .getByRole('status')
            .filter({ hasText: /UMAP|PCA/ })
            .count(),
        { timeout: 120_000 },
      )
      .toBe(0);
    await expect.poll(() => legend.textContent()).toMatch(/eczema/i);
    const box = (await page.getByLabel('Embedding map').boundingBox())!;
    await page.mouse.move(box.x + 4, box.y + 4);
    await page.mouse.down();
    for (const [x, y] of [
      [box.width - 4, 4],
      [box.width - 4, box.height - 4],
      [4, box.height - 4],
      [4, 6],
    ] as const)
      await page.mouse.move(box.x + x, box.y + y, { steps: 4 });
    await page.mouse.up();
    await page.getByText(`${goodFiles.length} selected`).waitFor();
    await screenshot('05b-map');
    await page.getByRole('button', { name: 'Open in the library' }).click();
    await expect.poll(() => page.getByTestId('library-count').textContent()).toContain(`${goodFiles.length} images match the filters`);
  }, 300_000);

  it('trains a probe or says in plain words why it cannot', async () => {
    await page.keyboard.press('7');
    const form = page.getByRole('form', { name: 'Train a probe' });
    await form.getByRole('button', { name: 'Train and evaluate' }).click();
    const outcome = page.getByRole('region', { name: 'Probe report' }).getByRole('img', { name: 'AUC per label' }).or(form.getByRole('alert'));
    await outcome.waitFor({ timeout: 120_000 });
    const text = (await outcome.textContent()) ?? '';
    expect(text.length).toBeGreaterThan(10);
    expect(text).not.toMatch(/undefined|\[object/);
    await screenshot('06b-probes');
  }, 300_000);

  it('exports CSV and npz files that can be read back', async () => {
    await page.keyboard.press('8');
    const exportFolder = path.join(folder, 'export');
    const form = page.getByRole('form', { name: 'Export settings' });
    await form.getByRole('textbox').fill(exportFolder);
    await form.getByLabel(/as \.npz/).check();
    await form.getByRole('button', { name: 'Export' }).click();
    const report = page.getByRole('region', { name: 'Export report' });
    await report.waitFor({ timeout: 60_000 });
    await screenshot('07-export');
    for (const name of ['images.csv', 'labels_long.csv', 'manifest.json']) expect(fs.existsSync(path.join(exportFolder, name)), name).toBe(true);
    const npz = fs.readdirSync(exportFolder).find((name) => name.endsWith('.npz'));
    expect(npz).toBeDefined();
    const imagesCsv = fs.readFileSync(path.join(exportFolder, 'images.csv'), 'utf8').trim().split(/\r?\n/);
    expect(imagesCsv.length).toBe(goodFiles.length + 1);
    expect(fs.readFileSync(path.join(exportFolder, 'labels_long.csv'), 'utf8')).toMatch(/eczema/);
    expect(fs.readFileSync(path.join(exportFolder, 'labels_long.csv'), 'utf8')).toMatch(/blurry/);
    expect(fs.readFileSync(path.join(exportFolder, npz!)).subarray(0, 2).toString('latin1')).toBe('PK');
  });

  it('shows the shortcut overlay with ?', async () => {
    await page.keyboard.press('?');
    await page.getByRole('dialog', { name: 'Keyboard shortcuts' }).waitFor();
    await screenshot('09-shortcuts');
    await page.keyboard.press('Escape');
  });

  it('ran without page errors or CSP violations', () => {
    expect(pageErrors).toEqual([]);
  });
});

describe('library grid with 100,000 images', () => {
  let folder: string;
  let server: RunningServer;
  let browser: Browser;
  const total = 100_000;

  beforeAll(async () => {
    const library = createTestLibrary('dermws-e2e-grid-');
    folder = path.dirname(library.paths.root);
    // Rows only: the grid's behaviour does not depend on the thumbnails (missing ones show as empty cells).
    insertSyntheticImages(library, total);
    library.close();
    server = await startServer({ libraryFolder: library.paths.root, port: 0 });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it('keeps only the visible rows in the page while scrolling to the last image', async () => {
    const page = await browser.newPage({ viewport: { width: 1360, height: 860 } });
    await page.goto(server.bridge.url);
    await expect.poll(() => page.getByTestId('library-count').textContent()).toContain('100,000 images');
    const cells = page.locator('[role="grid"] button');
    await expect.poll(() => page.locator('[role="grid"] [data-image-id="1"]').count()).toBe(1);
    const firstCount = await cells.count();
    expect(firstCount).toBeGreaterThan(10);
    expect(firstCount).toBeLessThan(400);
    const renderedIds = () => page.locator('[role="grid"] [data-image-id]').evaluateAll((found) => found.map((cell) => cell.getAttribute('data-image-id')));
    for (const fraction of [0.25, 0.5, 0.75, 1]) {
      const before = new Set(await renderedIds());
      await page.locator('[role="grid"]').evaluate((grid, to) => grid.scrollTo(0, grid.scrollHeight * to), fraction);
      // A quarter of the library further on, the grid holds none of the cells it held before: waiting
      // for that (not for some milliseconds) is waiting for it to have rendered the new position.
      await expect.poll(async () => (await renderedIds()).some((id) => before.has(id)), { timeout: 30_000 }).toBe(false);
      expect(await cells.count()).toBeLessThan(400);
    }
    await expect.poll(() => page.locator(`[role="grid"] [data-image-id="${total}"]`).count(), { timeout: 30_000 }).toBe(1);
    expect(await cells.count()).toBeLessThan(400);
    await page.locator('[role="grid"]').focus();
    await page.keyboard.press('End');
    await page.keyboard.press('Enter');
    await page.getByRole('dialog', { name: `Image ${total}` }).waitFor();
    await page.screenshot({ path: path.join(artifacts, '10-library-100k.png') });
    await page.close();
  });
});
