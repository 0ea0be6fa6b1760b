import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../electron/web/serve.js';
import { seededRandom } from '../../electron/common/seeded-random.js';
import { runDermws } from '../fixtures/cli-runner.js';
import { writeSkinImage } from '../fixtures/skin-images.js';
import { launchChromium } from '../helpers/chromium.js';

/**
 * Keyboard labelling and zoom as a fast annotator uses them, in Debian's Chromium through the web mode on
 * a real temporary library, at 1440×900 and at 1024×700. What the keys stored is read back through the
 * CLI, never from the page. Screenshots go to test-artifacts/.
 */
const root = path.resolve(import.meta.dirname, '../..');
const artifacts = path.join(root, 'test-artifacts');

const viewports = [
  { width: 1440, height: 900 },
  { width: 1024, height: 700 },
] as const;

/** The sequence for one image: Eczema, confidence 4, two kinds on (Body site → Fitzpatrick), type II, save. */
const sequence = ['e', '4', 'Tab', 'Tab', '2', 'Enter'];
const sequenceMeans = [
  ['condition', 'eczema', 4],
  ['fitzpatrick', 'II', null],
];

/** A noise photograph: any resampling of it changes most pixels, so a 1:1 view can be checked pixel by pixel. */
async function writeNoiseImage(file: string, width: number, height: number): Promise<void> {
  const random = seededRandom(7);
  const data = Buffer.alloc(width * height * 3);
  for (let index = 0; index < data.length; index++) data[index] = Math.floor(random() * 256);
  await sharp(data, { raw: { width, height, channels: 3 } })
    .png({ compressionLevel: 1 })
    .toFile(file);
}

/** Runs in the page: the image has fully loaded (naturalWidth is known earlier, from the file header). */
function loadedWidth(element: unknown): number {
  const image = element as { complete: boolean; naturalWidth: number };
  return image.complete ? image.naturalWidth : 0;
}

describe('labelling and zoom in the browser', () => {
  let folder: string;
  let library: string;
  let server: RunningServer;
  let browser: Browser;
  const noiseSize = { width: 1600, height: 1200 };

  const dermws = async (...args: string[]) => {
    const result = await runDermws('--library', library, ...args, '--json');
    if (result.code !== 0) throw new Error(`dermws ${args.join(' ')} failed (${result.code}): ${result.stdout}`);
    return result.json;
  };

  /** A page that records every console error, failed request and uncaught exception; the test fails on any. */
  async function open(viewport: { width: number; height: number }): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
    const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
    const page = await context.newPage();
    // The machine may be shared with other heavy work; waits are generous and never assert speed.
    page.setDefaultTimeout(90_000);
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      // The missing favicon is the app shell's (not this feature's); anything else fails the test.
      if (message.type() === 'error' && !message.location().url.endsWith('/favicon.ico'))
        errors.push(`console: ${message.text()} at ${message.location().url}`);
    });
    // Chrome's console line for a failed request does not name it; this does.
    page.on('response', (response) => {
      if (response.status() >= 400) errors.push(`HTTP ${response.status()} ${new URL(response.url()).pathname}`);
    });
    await page.goto(server.bridge.url);
    return { context, page, errors };
  }

  beforeAll(async () => {
    fs.mkdirSync(artifacts, { recursive: true });
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-labelling-e2e-'));
    library = path.join(folder, 'library');
    const photos = path.join(folder, 'photos');
    for (let index = 0; index < 14; index++) {
      await writeSkinImage(path.join(photos, `lesion ${String(index + 1).padStart(2, '0')}.jpg`), {
        seed: 300 + index,
        toneIndex: index % 10,
        width: 1200,
        height: 900,
      });
    }
    await writeNoiseImage(path.join(photos, 'zz noise.png'), noiseSize.width, noiseSize.height);
    const imported = await dermws('import', photos);
    expect(imported.imported).toBe(15);
    // Cases of three photos each, with body site and shot type, as a SCIN-style metadata CSV would give.
    const names = fs.readdirSync(photos).sort();
    const csv = ['file,patient,site,shot', ...names.map((name, index) => `${name},case-${Math.floor(index / 3) + 1},ARM;PALM,CLOSE_UP`)].join('\n');
    fs.writeFileSync(path.join(folder, 'cases.csv'), `${csv}\n`);
    await dermws('dataset', 'import-csv', path.join(folder, 'cases.csv'), '--map', 'image=file,case=patient,meta.body_parts=site,meta.shot_type=shot');
    process.env.DERMWS_MODEL_CACHE ??= path.join(root, 'native-models', 'generated');
    server = await startServer({ libraryFolder: library, port: 0 });
    browser = await launchChromium();
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it('hides suggestions in an agreement session until a condition is chosen, and keeps the mode the annotator sets', async () => {
    const { context, page, errors } = await open(viewports[0]);
    await page.keyboard.press('4');
    const form = page.getByRole('form', { name: 'New session' });
    await form.getByLabel('Annotator').fill('blind-reader');
    await form.getByRole('checkbox', { name: 'For agreement between readers' }).check();
    await form.getByRole('button', { name: 'Start labelling' }).click();
    await page.getByRole('img', { name: /to label/ }).waitFor();
    const suggestions = page.getByRole('region', { name: 'Suggestions' });
    await suggestions.getByTestId('suggestions-hidden').waitFor();
    const session = (await dermws('session', 'list')).sessions.find((entry: { annotator: string }) => entry.annotator === 'blind-reader');
    expect(session).toMatchObject({ agreement: true, suggestions: 'blind' });
    await page.screenshot({ path: path.join(artifacts, 'labelling-blind-before-choice.png') });
    await page.keyboard.press('e');
    await suggestions.getByTestId('suggestions-hidden').waitFor({ state: 'detached' });
    await suggestions.getByText('embed the library first').waitFor();
    // Choosing again removes the condition: hidden again.
    await page.keyboard.press('e');
    await suggestions.getByTestId('suggestions-hidden').waitFor();
    await suggestions.getByRole('checkbox', { name: 'Blind' }).uncheck();
    await expect
      .poll(async () => (await dermws('session', 'list')).sessions.find((entry: { id: number }) => entry.id === session.id).suggestions)
      .toBe('shown');
    await suggestions.getByTestId('suggestions-hidden').waitFor({ state: 'detached' });
    expect(errors).toEqual([]);
    await context.close();
  }, 300_000);

  for (const viewport of viewports) {
    const size = `${viewport.width}x${viewport.height}`;

    it(`stores exactly what "e 4 Tab Tab 2 Enter" means on five images typed at full speed, and refuses an empty save (${size})`, async () => {
      const { context, page, errors } = await open(viewport);
      const annotator = `fast-${size}`;
      await page.keyboard.press('4');
      const form = page.getByRole('form', { name: 'New session' });
      await form.getByLabel('Annotator').fill(annotator);
      await form.getByRole('button', { name: 'Start labelling' }).click();
      const progress = page.getByTestId('session-progress');
      await expect.poll(() => progress.textContent()).toMatch(/^0 of \d+$/);
      await page.getByRole('img', { name: /to label/ }).waitFor();
      await expect.poll(() => page.getByTestId('active-kind').textContent()).toBe('Condition');
      await page.screenshot({ path: path.join(artifacts, `labelling-${size}-start.png`) });

      // Five images, 30 keys, no waits: keys typed while a save is in flight belong to the next image.
      for (let image = 0; image < 5; image++) for (const key of sequence) await page.keyboard.press(key);
      // And Enter on the sixth image with nothing chosen.
      await page.keyboard.press('Enter');
      await page.getByRole('alert').filter({ hasText: 'Nothing is chosen' }).waitFor();
      await expect.poll(() => progress.textContent()).toMatch(/^5 of \d+$/);
      await page.screenshot({ path: path.join(artifacts, `labelling-${size}-refused-empty-save.png`) });

      const session = (await dermws('session', 'list')).sessions.find((entry: { annotator: string }) => entry.annotator === annotator);
      const stats = await dermws('session', 'stats', String(session.id));
      expect(stats.session).toMatchObject({ labelled: 5, skipped: 0 });
      const items = [...stats.items].sort((a: { position: number }, b: { position: number }) => a.position - b.position);
      for (const item of items.slice(0, 5)) {
        expect(item.labelledAt).not.toBeNull();
        const stored = (await dermws('label', String(item.imageId))).labels as Array<{
          kind: string;
          value: string;
          confidence: number | null;
          annotator: string;
        }>;
        expect(stored.map((label) => [label.kind, label.value, label.confidence]).sort(), `image ${item.imageId}`).toEqual(sequenceMeans);
        expect(new Set(stored.map((label) => label.annotator))).toEqual(new Set([annotator]));
      }
      // The sixth image: nothing stored, not counted as done, still the one on screen.
      const sixth = items[5]!;
      expect(sixth).toMatchObject({ labelledAt: null, skippedAt: null });
      expect((await dermws('label', String(sixth.imageId))).labels).toEqual([]);
      expect(Number(await page.locator('[data-image-id]').getAttribute('data-image-id'))).toBe(sixth.imageId);

      if (viewport.width === 1440) {
        // A held → key repeats; it skips one image, not three.
        await page.keyboard.down('ArrowRight');
        await page.keyboard.down('ArrowRight');
        await page.keyboard.down('ArrowRight');
        await page.keyboard.up('ArrowRight');
        await expect.poll(() => progress.textContent()).toMatch(/^6 of \d+$/);
        const after = await dermws('session', 'stats', String(session.id));
        expect(after.session).toMatchObject({ labelled: 5, skipped: 1 });
        expect(Number(await page.locator('[data-image-id]').getAttribute('data-image-id'))).toBe(items[6]!.imageId);
      } else {
        // Type-to-search among the conditions: "/" then a few letters, Enter chooses the highlighted match.
        await page.keyboard.press('/');
        await page.keyboard.type('melanoma');
        await expect.poll(() => page.getByRole('list', { name: 'Condition' }).getByRole('button').count()).toBe(1);
        await page.screenshot({ path: path.join(artifacts, `labelling-${size}-search.png`) });
        await page.keyboard.press('Enter');
        await page.getByRole('region', { name: 'Chosen labels' }).getByText('Condition: Melanoma').waitFor();
        await page.keyboard.press('Enter');
        await expect.poll(() => progress.textContent()).toMatch(/^6 of \d+$/);
        expect((await dermws('label', String(sixth.imageId))).labels.map((label: { kind: string; value: string }) => `${label.kind}=${label.value}`)).toEqual([
          'condition=melanoma',
        ]);
      }
      expect(errors).toEqual([]);
      await context.close();
    }, 300_000);

    it(`keeps the condition list, "Save and next" and the shortcuts usable (${size})`, async () => {
      const { context, page, errors } = await open(viewport);
      await page.keyboard.press('4');
      const form = page.getByRole('form', { name: 'New session' });
      await form.getByLabel('Annotator').fill(`layout-${size}`);
      // Every session's Open/Resume button is inside the window.
      for (const button of await page
        .getByRole('region', { name: 'Sessions' })
        .getByRole('button', { name: /Open|Resume/ })
        .all()) {
        const box = (await button.boundingBox())!;
        expect(box.x + box.width).toBeLessThanOrEqual(viewport.width);
      }
      await page.screenshot({ path: path.join(artifacts, `labelling-${size}-sessions.png`) });
      await form.getByRole('button', { name: 'Start labelling' }).click();
      await page.getByRole('img', { name: /to label/ }).waitFor();

      // The case context: body site and shot type from the metadata, the case's two other photos.
      const caseContext = page.getByRole('region', { name: 'Case context' });
      await expect.poll(() => caseContext.textContent()).toContain('Arm, Palm');
      expect(await caseContext.textContent()).toContain('close up');
      await expect.poll(() => caseContext.getByRole('img', { name: /of the same case/ }).count()).toBe(2);

      const list = page.getByRole('list', { name: 'Condition' });
      const listBox = (await list.boundingBox())!;
      const rowBox = (await list.getByRole('button').first().boundingBox())!;
      // At least eight conditions visible at once, and the list scrolls to the rest.
      expect(listBox.height).toBeGreaterThanOrEqual(rowBox.height * 8);
      expect(listBox.y + listBox.height).toBeLessThanOrEqual(viewport.height);
      expect(await list.evaluate((element) => element.scrollHeight > element.clientHeight)).toBe(true);

      // "Save and next" lies wholly inside the window and left of the labels panel.
      await page.keyboard.press('e');
      const save = page.getByRole('button', { name: /Save and next/ });
      const saveBox = (await save.boundingBox())!;
      const panel = (await page.getByRole('complementary', { name: 'Labels' }).boundingBox())!;
      expect(saveBox.x + saveBox.width).toBeLessThanOrEqual(panel.x);
      expect(saveBox.y + saveBox.height).toBeLessThanOrEqual(viewport.height);
      expect(saveBox.x).toBeGreaterThanOrEqual(0);
      await page.screenshot({ path: path.join(artifacts, `labelling-${size}-layout.png`) });

      // The shortcuts overlay fits the window (or scrolls inside it).
      await page.keyboard.press('?');
      const overlay = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
      await overlay.waitFor();
      const overlayBox = (await overlay.boundingBox())!;
      expect(overlayBox.x).toBeGreaterThanOrEqual(0);
      expect(overlayBox.y).toBeGreaterThanOrEqual(0);
      expect(overlayBox.x + overlayBox.width).toBeLessThanOrEqual(viewport.width);
      expect(overlayBox.y + overlayBox.height).toBeLessThanOrEqual(viewport.height);
      const lastKey = overlay.locator('dd').last();
      await lastKey.scrollIntoViewIfNeeded();
      const lastBox = (await lastKey.boundingBox())!;
      expect(lastBox.y + lastBox.height).toBeLessThanOrEqual(overlayBox.y + overlayBox.height + 1);
      await page.screenshot({ path: path.join(artifacts, `labelling-${size}-shortcuts.png`) });
      await page.keyboard.press('Escape');
      await overlay.waitFor({ state: 'detached' });
      expect(errors).toEqual([]);
      await context.close();
    }, 300_000);

    it(`zooms the image detail to the photo's own pixels and pans, without fetching the detail again (${size})`, async () => {
      const { context, page, errors } = await open(viewport);
      const detailRequests: string[] = [];
      page.on('request', (request) => {
        if (request.url().includes('/api/imageDetail')) detailRequests.push(request.url());
      });
      await page.keyboard.press('1');
      await page.locator('[role="grid"] img').first().waitFor();
      // The noise photo was imported last: the last cell of the grid.
      await page.locator('[role="grid"]').focus();
      await page.keyboard.press('End');
      await page.keyboard.press('Enter');
      const dialog = page.getByRole('dialog');
      await dialog.getByText('1600 × 1200 px').waitFor();
      const image = dialog.locator('.canvas img');
      await expect.poll(() => image.evaluate(loadedWidth)).toBe(noiseSize.width);
      const zoom = page.getByTestId('zoom-level');
      await expect.poll(() => zoom.textContent()).toBe('fit');
      const requestsBefore = detailRequests.length;

      const percent = async () => Number((await zoom.textContent())!.replace('%', ''));
      await page.keyboard.press('+');
      await expect.poll(() => zoom.textContent()).not.toBe('fit');
      const afterPlus = await percent();
      await page.keyboard.press('=');
      await expect.poll(percent).toBeGreaterThan(afterPlus);
      for (let press = 0; press < 6; press++) await page.keyboard.press('+');
      await expect.poll(percent).toBeGreaterThan(100);
      await page.keyboard.press('0');
      await expect.poll(() => zoom.textContent()).toBe('fit');
      const canvas = (await dialog.locator('.canvas').boundingBox())!;
      await page.mouse.move(canvas.x + canvas.width / 2, canvas.y + canvas.height / 2);
      await page.mouse.wheel(0, -200);
      await expect.poll(() => zoom.textContent()).not.toBe('fit');
      await page.keyboard.press('-');
      await page.keyboard.press('0');

      // 1:1: the full-resolution file drawn one image pixel per screen pixel, pixel for pixel.
      await page.getByRole('button', { name: '1:1' }).click();
      await expect.poll(() => zoom.textContent()).toBe('100%');
      const box = (await image.boundingBox())!;
      expect(box.width).toBe(noiseSize.width);
      expect(box.height).toBe(noiseSize.height);
      const clip = { x: Math.round(canvas.x + canvas.width / 2 - 20), y: Math.round(canvas.y + canvas.height / 2 - 20), width: 40, height: 40 };
      const shot = await sharp(await page.screenshot({ clip }))
        .removeAlpha()
        .raw()
        .toBuffer();
      const source = await sharp(path.join(folder, 'photos', 'zz noise.png'))
        .extract({ left: clip.x - Math.round(box.x), top: clip.y - Math.round(box.y), width: clip.width, height: clip.height })
        .raw()
        .toBuffer();
      let difference = 0;
      for (let index = 0; index < source.length; index++) difference += Math.abs(source[index]! - shot[index]!);
      // Resampled noise differs by ~60 per channel on average; the same pixels by (almost) nothing.
      expect(difference / source.length).toBeLessThan(2);
      await page.screenshot({ path: path.join(artifacts, `zoom-detail-${size}-1to1.png`) });

      // Drag pans the image.
      await page.mouse.move(canvas.x + canvas.width / 2, canvas.y + canvas.height / 2);
      await page.mouse.down();
      await page.mouse.move(canvas.x + canvas.width / 2 - 150, canvas.y + canvas.height / 2 - 80, { steps: 5 });
      await page.mouse.up();
      const panned = (await image.boundingBox())!;
      expect(panned.x).toBeLessThan(box.x - 100);
      expect(panned.y).toBeLessThan(box.y - 50);

      expect(detailRequests.length).toBe(requestsBefore);
      await page.keyboard.press('Escape');
      expect(errors).toEqual([]);
      await context.close();
    }, 300_000);

    it(`zooms and pans in the labelling view (${size})`, async () => {
      const { context, page, errors } = await open(viewport);
      await page.keyboard.press('4');
      const form = page.getByRole('form', { name: 'New session' });
      await form.getByLabel('Annotator').fill(`zoom-${size}`);
      await form.getByRole('button', { name: 'Start labelling' }).click();
      const image = page.getByRole('img', { name: /to label/ });
      await image.waitFor();
      await expect.poll(() => image.evaluate(loadedWidth)).toBe(1200);
      const zoom = page.getByTestId('zoom-level');
      await expect.poll(() => zoom.textContent()).toBe('fit');
      for (let press = 0; press < 4; press++) await page.keyboard.press('+');
      await expect.poll(async () => Number((await zoom.textContent())!.replace('%', ''))).toBeGreaterThan(100);
      await page.getByRole('button', { name: '1:1' }).click();
      await expect.poll(() => zoom.textContent()).toBe('100%');
      const box = (await image.boundingBox())!;
      expect(box.width).toBe(1200);
      const stage = (await page.locator('[data-image-id]').boundingBox())!;
      await page.mouse.move(stage.x + stage.width / 2, stage.y + stage.height / 2);
      await page.mouse.down();
      await page.mouse.move(stage.x + stage.width / 2 + 120, stage.y + stage.height / 2 + 60, { steps: 5 });
      await page.mouse.up();
      const panned = (await image.boundingBox())!;
      expect(panned.x).toBeGreaterThan(box.x + 60);
      await page.screenshot({ path: path.join(artifacts, `zoom-labelling-${size}.png`) });
      // Zooming changed nothing stored: the session is untouched.
      const session = (await dermws('session', 'list')).sessions.find((entry: { annotator: string }) => entry.annotator === `zoom-${size}`);
      expect(session).toMatchObject({ labelled: 0, skipped: 0 });
      expect(errors).toEqual([]);
      await context.close();
    }, 300_000);
  }
});
