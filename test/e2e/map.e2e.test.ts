import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../electron/web/serve.js';
import { launchChromium, newRecordedPage } from '../helpers/chromium.js';
import { embeddedPhotoLibrary } from '../helpers/embedded-photo-library.js';

/**
 * The Map screen end to end in Debian's Chromium through the web mode, on a library of generated skin
 * photos embedded by the default encoder, with its search index built: drawing the map shows the
 * job's progress before any point, then the points (the principal-axes layout, then UMAP's), from the
 * index; a legend entry hides and shows its points; recolouring by Fitzpatrick type puts the types on
 * a light-to-dark ramp in order I..VI without asking the core for a new layout (no map job or points
 * request, the same layout revision); the wheel zooms the view; hovering a point shows its thumbnail. Screenshots go to test-artifacts/map-*.png.
 */
const root = path.resolve(import.meta.dirname, '../..');
const artifacts = path.join(root, 'test-artifacts');
const roman = ['I', 'II', 'III', 'IV', 'V', 'VI'];
const photoCount = 14;

describe('the embedding map in the browser', () => {
  let folder: string;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  /** Paths of the map calls the page made, in order. */
  const mapCalls: string[] = [];

  beforeAll(async () => {
    process.env.DERMWS_MODEL_CACHE ??= path.join(root, 'native-models', 'generated');
    fs.mkdirSync(artifacts, { recursive: true });
    let libraryFolder: string;
    ({ folder, libraryFolder } = await embeddedPhotoLibrary(
      'dermws-e2e-map-',
      Array.from({ length: photoCount }, (_, index) => ({
        name: `photo-${String(index).padStart(2, '0')}.jpg`,
        seed: 500 + index,
        toneIndex: index % 10,
        width: 360,
        height: 280,
        format: 'jpeg' as const,
      })),
      {
        prepare: async (core) => {
          const images = core.images.list({ limit: 100 });
          const insert = core.library.db.prepare("INSERT INTO image_metadata (image_id, key, value, source) VALUES (?, 'fitzpatrick_self', ?, 'scin')");
          images.forEach((image) => {
            const index = Number(/photo-(\d+)/.exec(image.originalPath)![1]);
            // Types V, III, I … out of count order, so a legend sorted by count would not come out I..VI.
            insert.run(image.id, `FST${[5, 3, 1, 6, 2, 4, 5, 5, 3][index % 9]}`);
            core.labels.setLabel({ imageId: image.id, kind: 'condition', value: index % 3 === 0 ? 'psoriasis' : 'eczema', annotator: 'alice' });
          });
          const stored = (core.library.db.prepare('SELECT DISTINCT model_id AS id FROM embeddings').all() as Array<{ id: string }>).map((row) => row.id);
          expect(stored).toHaveLength(1);
          await core.index.rebuild(stored[0]!);
        },
      },
    ));
    server = await startServer({ libraryFolder, port: 0 });
    browser = await launchChromium();
    page = await newRecordedPage(browser, { viewport: { width: 1440, height: 900 } }, problems);
    page.on('request', (request) => {
      const call = /\/api\/(map[A-Za-z]+)$/.exec(new URL(request.url()).pathname);
      if (call) mapCalls.push(call[1]!);
    });
    await page.goto(server.bridge.url);
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it('shows progress, then points from the index; a legend entry hides its points; Fitzpatrick recolours on an ordered ramp without a new layout', async () => {
    await page.getByRole('link', { name: /^Map/ }).click();
    const canvas = page.getByLabel('Embedding map');
    // Records, as the page changes, whether progress was on screen before any point was drawn.
    await page.evaluate(() => {
      // Runs in the page: only the few DOM members used are typed here (the tests compile without the DOM library).
      interface PageElement {
        getAttribute(name: string): string | null;
      }
      const page = globalThis as unknown as {
        mapSeen: string[];
        document: { body: unknown; querySelector(selector: string): PageElement | null };
        MutationObserver: new (callback: () => void) => { observe(target: unknown, options: Record<string, boolean>): void };
      };
      const seen: string[] = [];
      page.mapSeen = seen;
      const look = () => {
        const progress = page.document.querySelector(
          '[aria-label="Reading the points and reducing them"] [role="progressbar"], section[aria-label="Map settings"] [role="status"]',
        );
        const drawn = Number(page.document.querySelector('canvas[aria-label="Embedding map"]')?.getAttribute('data-drawn') ?? 0);
        const state = drawn > 0 ? 'points' : progress ? 'progress' : 'nothing';
        if (seen.at(-1) !== state) seen.push(state);
      };
      new page.MutationObserver(look).observe(page.document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    });
    await page.getByRole('button', { name: 'Draw the map' }).click();
    await expect.poll(() => canvas.getAttribute('data-layout'), { timeout: 120_000 }).toBe('UMAP');
    const seen = await page.evaluate(() => (globalThis as unknown as { mapSeen: string[] }).mapSeen);
    expect(seen.indexOf('progress')).toBeGreaterThanOrEqual(0);
    expect(seen.indexOf('progress')).toBeLessThan(seen.indexOf('points'));
    expect(Number(await canvas.getAttribute('data-drawn'))).toBe(photoCount);
    await expect.poll(() => page.getByRole('region', { name: 'Map settings' }).getByRole('status').count()).toBe(0);
    expect(await page.getByTestId('map-source').textContent()).toMatch(
      /Drawn from the search index\..*From the index's \d+-d (unit embeddings|PCA projection).*Layout: UMAP\./s,
    );
    expect(mapCalls).toEqual(['mapStart', 'mapResult']);
    const revision = await canvas.getAttribute('data-layout-revision');
    await page.screenshot({ path: path.join(artifacts, 'map-01-condition.png') });

    const legend = page.getByRole('complementary', { name: 'Legend' });
    const psoriasis = legend.getByRole('button', { name: /psoriasis/ });
    const psoriasisCount = Array.from({ length: photoCount }, (_, index) => index).filter((index) => index % 3 === 0).length;
    await psoriasis.click();
    expect(await psoriasis.getAttribute('aria-pressed')).toBe('false');
    await expect.poll(() => canvas.getAttribute('data-drawn')).toBe(String(photoCount - psoriasisCount));
    await psoriasis.click();
    await expect.poll(() => canvas.getAttribute('data-drawn')).toBe(String(photoCount));

    await page.getByLabel('Colour by').selectOption('fitzpatrick');
    const types = [...new Set(Array.from({ length: photoCount }, (_, index) => [5, 3, 1, 6, 2, 4, 5, 5, 3][index % 9]!))]
      .sort((a, b) => a - b)
      .map((type) => roman[type - 1]!);
    await expect
      .poll(() => legend.getByRole('button').allTextContents())
      .toEqual(types.map((type) => expect.stringMatching(new RegExp(`^\\s*${type}\\s+\\d+\\s*$`))));
    // Light to dark: each swatch darker (lower luminance) than the one before.
    const luminance = await legend.locator('.swatch').evaluateAll((swatches) =>
      swatches.map((swatch) => {
        const style = (globalThis as unknown as { getComputedStyle(element: unknown): { backgroundColor: string } }).getComputedStyle(swatch);
        const [r, g, b] = style.backgroundColor.match(/\d+/g)!.map(Number);
        return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
      }),
    );
    expect(luminance).toEqual([...luminance].sort((a, b) => b - a));
    expect(new Set(luminance).size).toBe(luminance.length);
    // Only the groups were asked for: no new map job or points, and the layout is the one drawn before.
    expect(mapCalls).toEqual(['mapStart', 'mapResult', 'mapGroups']);
    expect(await canvas.getAttribute('data-layout-revision')).toBe(revision);
    expect(Number(await canvas.getAttribute('data-drawn'))).toBe(photoCount);
    await page.screenshot({ path: path.join(artifacts, 'map-02-fitzpatrick.png') });

    // The wheel zooms the view around the cursor; the layout stays the same one.
    const area = (await canvas.boundingBox())!;
    await page.mouse.move(area.x + area.width / 2, area.y + area.height / 2);
    await page.mouse.wheel(0, -100);
    await page.getByRole('button', { name: /^Reset zoom \(1\.3×\)$/ }).click();
    await expect.poll(() => page.getByRole('button', { name: /^Reset zoom/ }).count()).toBe(0);
    expect(await canvas.getAttribute('data-layout-revision')).toBe(revision);

    // Hovering a point shows its thumbnail. The layout is fitted with a 16 px margin, so the leftmost
    // point lies on the line x = 16: walking down it in steps smaller than the hover radius finds it.
    const box = (await canvas.boundingBox())!;
    let shown = false;
    for (let y = 16; y <= box.height - 16 && !shown; y += 6) {
      await page.mouse.move(box.x + 16, box.y + y);
      shown = (await page.getByTestId('map-hover').count()) > 0;
    }
    expect(shown).toBe(true);
    await expect
      .poll(() =>
        page
          .getByTestId('map-hover')
          .locator('img')
          .evaluate((image) => (image as unknown as { naturalWidth: number }).naturalWidth),
      )
      .toBeGreaterThan(0);
    expect(problems).toEqual([]);
  }, 300_000);
});
