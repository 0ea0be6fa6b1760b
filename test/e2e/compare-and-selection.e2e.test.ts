import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../electron/web/serve.js';
import { runDermws } from '../fixtures/cli-runner.js';
import { launchChromium, newRecordedPage, reportCspViolations } from '../helpers/chromium.js';
import { embeddedPhotoLibrary } from '../helpers/embedded-photo-library.js';

/**
 * The Similar cases compare view at 1:1 and a whole library selection labelled at once, end to end in
 * Debian's Chromium through the web mode. The photos are larger than a compare pane and come in two
 * sizes, so fit is a real reduction and 1:1 needs a different factor in each pane. What the selection
 * action stores is read back with the CLI. Screenshots go to test-artifacts/compare-*.png.
 */
const root = path.resolve(import.meta.dirname, '../..');
const artifacts = path.join(root, 'test-artifacts');
/** Photo i is 1600×1200 for even i and 1000×760 for odd i. */
const sizeOf = (index: number) => (index % 2 === 0 ? { width: 1600, height: 1200 } : { width: 1000, height: 760 });
const photoCount = 8;

interface Rendered {
  naturalWidth: number;
  naturalHeight: number;
  width: number;
  height: number;
  left: number;
  top: number;
}

function rendered(image: Locator): Promise<Rendered> {
  return image.evaluate((element) => {
    const img = element as unknown as {
      naturalWidth: number;
      naturalHeight: number;
      getBoundingClientRect(): { width: number; height: number; left: number; top: number };
    };
    const box = img.getBoundingClientRect();
    return { naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight, width: box.width, height: box.height, left: box.left, top: box.top };
  });
}

describe('compare at 1:1 and labelling a selection in the browser', () => {
  let folder: string;
  let libraryFolder: string;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  let ids: number[] = [];
  const problems: string[] = [];
  const screenshot = (name: string) => page.screenshot({ path: path.join(artifacts, `compare-${name}.png`) });

  beforeAll(async () => {
    process.env.DERMWS_MODEL_CACHE ??= path.join(root, 'native-models', 'generated');
    fs.mkdirSync(artifacts, { recursive: true });
    ({ folder, libraryFolder, ids } = await embeddedPhotoLibrary(
      'dermws-e2e-compare-',
      Array.from({ length: photoCount }, (_, index) => ({
        name: `photo-${index}.jpg`,
        seed: 700 + index,
        toneIndex: (index * 3) % 10,
        ...sizeOf(index),
        format: 'jpeg' as const,
      })),
    ));
    server = await startServer({ libraryFolder, port: 0 });
    browser = await launchChromium();
    page = await newRecordedPage(browser, { viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 }, problems);
    await page.addInitScript(reportCspViolations);
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  async function openCompare(): Promise<Locator> {
    await page.goto(server.bridge.url);
    await page.locator(`[role="grid"] [data-image-id="${ids[0]}"]`).click();
    await page.getByRole('button', { name: 'find similar cases' }).click();
    const hits = page.getByRole('region', { name: 'Results' }).locator('button.hit');
    await expect.poll(() => hits.count()).toBeGreaterThan(2);
    await hits.first().focus();
    await page.keyboard.press('Enter');
    const compare = page.getByRole('dialog', { name: 'Side-by-side comparison' });
    await compare.waitFor();
    for (const pane of ['compare-query', 'compare-hit']) {
      await expect.poll(async () => (await rendered(compare.getByTestId(pane).locator('img'))).naturalWidth).toBeGreaterThan(0);
    }
    return compare;
  }

  for (const viewport of [
    { width: 1440, height: 900 },
    { width: 1024, height: 700 },
  ]) {
    it(`zooms the compare to 1:1 on the full-resolution files and pans both panes together at ${viewport.width}×${viewport.height}`, async () => {
      await page.setViewportSize(viewport);
      const compare = await openCompare();
      const query = compare.getByTestId('compare-query').locator('img');
      const hit = compare.getByTestId('compare-hit').locator('img');
      const zoomLabel = compare.getByTestId('compare-zoom-level');
      expect(await zoomLabel.textContent()).toBe('fit');

      // Fitted, each photo is drawn smaller than its own pixels (the panes are smaller than the photos).
      for (const image of [query, hit]) {
        const fitted = await rendered(image);
        expect(fitted.width).toBeLessThan(fitted.naturalWidth);
      }
      // The files themselves, not thumbnails: the natural sizes are the photos' sizes.
      expect(await rendered(query)).toMatchObject({ naturalWidth: sizeOf(0).width, naturalHeight: sizeOf(0).height });
      const hitSize = await rendered(hit);
      expect([sizeOf(0).width, sizeOf(1).width]).toContain(hitSize.naturalWidth);

      await compare.getByRole('button', { name: /^1:1/ }).click();
      await expect.poll(() => zoomLabel.textContent()).toBe('100%');
      for (const image of [query, hit]) {
        const actual = await rendered(image);
        expect({ width: actual.width, height: actual.height }).toEqual({ width: actual.naturalWidth, height: actual.naturalHeight });
      }
      expect(await compare.getByRole('button', { name: /^1:1/ }).getAttribute('aria-pressed')).toBe('true');
      await screenshot(`1to1-${viewport.width}`);

      // A drag in the hit pane moves both images sideways by the same amount (both photos are wider than
      // a pane at 1:1, so neither reaches its pan limit).
      const before = [await rendered(query), await rendered(hit)];
      const paneBox = (await compare.getByTestId('compare-hit').boundingBox())!;
      const start = { x: paneBox.x + paneBox.width / 2, y: paneBox.y + paneBox.height / 2 };
      await page.mouse.move(start.x, start.y);
      await page.mouse.down();
      await page.mouse.move(start.x + 60, start.y, { steps: 5 });
      await page.mouse.up();
      const after = [await rendered(query), await rendered(hit)];
      for (let pane = 0; pane < 2; pane++) {
        expect(after[pane]!.left - before[pane]!.left).toBe(60);
        expect(after[pane]!.top).toBe(before[pane]!.top);
      }
      // Still 1:1 after the pan.
      expect((await rendered(hit)).width).toBe(hitSize.naturalWidth);

      await page.keyboard.press('0');
      await expect.poll(() => zoomLabel.textContent()).toBe('fit');
      expect((await rendered(query)).width).toBeLessThan(sizeOf(0).width);
      // The 1 key goes to 1:1 as well.
      await page.keyboard.press('1');
      await expect.poll(() => zoomLabel.textContent()).toBe('100%');
      await page.keyboard.press('Escape');
      await compare.waitFor({ state: 'detached' });
    });
  }

  it('keeps the encoder buttons inside the window at 1024×700 once the model says where it runs', async () => {
    await page.setViewportSize({ width: 1024, height: 700 });
    await page.goto(server.bridge.url);
    await page.getByRole('link', { name: /^Models & settings/ }).click();
    const encoders = page.locator('table.data').first();
    await encoders.getByRole('button', { name: 'Check' }).click();
    await encoders.getByTestId('runs-on').waitFor({ timeout: 60_000 });
    // Without CUDA the reason is onnxruntime's long message, which pushed the buttons out of the window.
    const outside = await encoders
      .getByRole('button')
      .evaluateAll((buttons) =>
        buttons.filter((button) => button.getBoundingClientRect().right > button.ownerDocument.documentElement.clientWidth).map((button) => button.textContent),
      );
    expect(outside).toEqual([]);
    await screenshot('settings-runs-on-1024');
  });

  it('labels every image of a selection in one action, read back with the CLI', async () => {
    await page.setViewportSize({ width: 1440, height: 900 });
    await page.goto(server.bridge.url);
    await page.getByRole('link', { name: /^Library/ }).click();
    await page.getByRole('button', { name: `Select all ${photoCount}` }).click();
    const actions = page.getByRole('region', { name: 'Selection actions' });
    await actions.getByRole('button', { name: 'Label…' }).click();
    const form = actions.getByRole('form', { name: 'Label the selection' });
    await form.getByLabel('Annotator').fill('sel-reader');
    await form.getByLabel('Kind').selectOption('condition');
    await form.getByLabel('Value').selectOption('urticaria');
    await form.getByRole('button', { name: `Label ${photoCount} images` }).click();
    await page.getByText(`given to ${photoCount} images as sel-reader`).waitFor();
    await screenshot('selection-labelled-1440');

    for (const imageId of ids) {
      const shown = await runDermws('--library', libraryFolder, '--json', 'label', String(imageId), '--annotator', 'sel-reader');
      expect(
        shown.json.labels.map((label: { kind: string; value: string }) => `${label.kind}=${label.value}`),
        `image ${imageId}`,
      ).toEqual(['condition=urticaria']);
    }
    // One edit: one undo takes the whole selection back.
    const undo = await runDermws('--library', libraryFolder, '--json', 'label', 'undo', '--annotator', 'sel-reader');
    expect(undo.code).toBe(0);
    for (const imageId of ids) {
      const shown = await runDermws('--library', libraryFolder, '--json', 'label', String(imageId), '--annotator', 'sel-reader');
      expect(shown.json.labels, `image ${imageId}`).toEqual([]);
    }
    expect(problems).toEqual([]);
  });
});
