import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../electron/web/serve.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { SeededRandom } from '../../electron/common/seeded-random.js';
import { runDermws } from '../fixtures/cli-runner.js';
import { createTestLibrary, insertSyntheticImages } from '../fixtures/library-fixture.js';
import { launchChromium } from '../helpers/chromium.js';

/**
 * The Probes screen in Chromium through the web mode: labels chosen in the form, a repeated CV, the
 * per-label subgroup table, the images a probe gets most wrong out of fold (opened in the library),
 * and the out-of-fold predictions downloaded with their manifest. Checked against the library, at
 * 1440×900 and 1024×700, with screenshots in test-artifacts/.
 */
const root = path.resolve(import.meta.dirname, '../..');
const artifacts = path.join(root, 'test-artifacts');
const dim = 12;
const caseCount = 60;

function gaussian(random: SeededRandom): number {
  return Math.sqrt(-2 * Math.log(1 - random.next())) * Math.cos(2 * Math.PI * random.next());
}

describe('probes screen in the browser', () => {
  let library: ReturnType<typeof createTestLibrary>;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  let imageIds: number[];
  let folder: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    fs.mkdirSync(artifacts, { recursive: true });
    library = createTestLibrary('dermws-probes-e2e-');
    imageIds = insertSyntheticImages(library, caseCount * 2, {
      caseKeyOf: (index) => `case-${Math.floor(index / 2)}`,
      metadataOf: (index) => ({ fitzpatrick_self: `FST${1 + (Math.floor(index / 2) % 3)}` }),
    });
    const random = new SeededRandom(5);
    const embeddings = new EmbeddingsRepository(library.db);
    embeddings.registerModel({ id: 'e2e-model', displayName: 'e2e', dim, sha256: 'e'.repeat(64), source: 'imported', preprocessing: null });
    const insertLabel = library.db.prepare(
      "INSERT INTO labels (image_id, kind, value, confidence, origin, created_at) VALUES (?, 'condition', ?, 4, 'imported', '2026-01-01')",
    );
    const latents = new Map<number, number[]>();
    const rows = imageIds.map((imageId, index) => {
      const caseNumber = Math.floor(index / 2);
      if (!latents.has(caseNumber))
        latents.set(
          caseNumber,
          Array.from({ length: dim }, () => gaussian(random)),
        );
      const latent = latents.get(caseNumber)!;
      insertLabel.run(imageId, 'seen');
      if (latent[0]! > 0) insertLabel.run(imageId, 'eczema');
      if (latent[1]! + 0.8 * gaussian(random) > 0.3) insertLabel.run(imageId, 'psoriasis');
      return { imageId, vector: latent.map((value) => Math.max(0, value + 0.2 * gaussian(random))) };
    });
    embeddings.put('e2e-model', 'e'.repeat(64), rows);
    folder = library.paths.root;
    library.close();
    server = await startServer({ libraryFolder: folder, port: 0 });
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, acceptDownloads: true });
    page = await context.newPage();
    page.setDefaultTimeout(90_000);
    page.on('pageerror', (error) => pageErrors.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      // The synthetic images have no files, so their thumbnails answer 404.
      if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) pageErrors.push(`console: ${message.text()}`);
    });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    fs.rmSync(path.dirname(library.paths.root), { recursive: true, force: true });
  });

  it('trains on labels chosen in the form and shows repeats, per-label subgroups and the most wrong images', async () => {
    await page.goto(server.bridge.url);
    await page.keyboard.press('7');
    const form = page.getByRole('form', { name: 'Train a probe' });
    await form.getByRole('checkbox', { name: /eczema/ }).check();
    await form.getByRole('checkbox', { name: /psoriasis/ }).check();
    await expect.poll(() => form.textContent()).toContain('2 labels chosen');
    await form.getByLabel('Fold seeds (repeated CV)').fill('2');
    await form.getByRole('button', { name: 'Train and evaluate' }).click();
    const report = page.getByRole('region', { name: 'Probe report' });
    await report.getByRole('img', { name: 'AUC per label' }).waitFor({ timeout: 120_000 });
    await expect.poll(() => report.getByRole('table', { name: 'AUC across fold seeds' }).textContent()).toMatch(/eczema\s*0\.\d{3} ± 0\.\d{3}/);

    // The subgroup table follows the chosen label.
    await report.getByLabel('Label for the subgroup tables').selectOption('psoriasis');
    await expect.poll(() => report.locator('table.subgroup').first().textContent()).toMatch(/Pos \/ neg cases/);

    await report.getByLabel('Label for the most wrong images').selectOption('eczema');
    const wrong = report.getByRole('list', { name: 'Most wrong images' }).getByRole('button');
    await expect.poll(() => wrong.count()).toBeGreaterThan(0);
    await page.screenshot({ path: path.join(artifacts, 'probes-report-1440.png'), fullPage: true });
    await page.setViewportSize({ width: 1024, height: 700 });
    await page.screenshot({ path: path.join(artifacts, 'probes-report-1024.png') });
    await page.setViewportSize({ width: 1440, height: 900 });

    const listed = await runDermws('--library', folder, '--json', 'probe', 'list');
    expect(listed.json.runs.at(-1)).toMatchObject({ status: 'completed', labels: ['eczema', 'psoriasis'] });
  }, 300_000);

  it('downloads the out-of-fold predictions and their manifest', async () => {
    const report = page.getByRole('region', { name: 'Probe report' });
    await report.getByRole('button', { name: 'Export predictions' }).click();
    const [csv] = await Promise.all([page.waitForEvent('download'), report.getByRole('link', { name: 'Download predictions (CSV)' }).click()]);
    const text = fs.readFileSync((await csv.path())!, 'utf8');
    const lines = text.trimEnd().split('\r\n');
    expect(lines[0]).toBe('image_id,file_sha256,path,group_key,fold,truth:eczema,oof:eczema,truth:psoriasis,oof:psoriasis');
    expect(lines).toHaveLength(imageIds.length + 1);
    const [manifestDownload] = await Promise.all([page.waitForEvent('download'), report.getByRole('link', { name: 'Download manifest' }).click()]);
    const manifest = JSON.parse(fs.readFileSync((await manifestDownload.path())!, 'utf8'));
    expect(manifest.run).toMatchObject({ modelSha256: 'e'.repeat(64), seed: 0, folds: 5, repeats: 2 });
    expect(manifest.run.tolerance).toBeGreaterThan(0);
  }, 300_000);

  it('opens a most-wrong image in the library', async () => {
    const report = page.getByRole('region', { name: 'Probe report' });
    await report.getByRole('list', { name: 'Most wrong images' }).getByRole('button').first().click();
    await expect.poll(() => page.getByTestId('library-count').textContent()).toMatch(/1 image/);
    expect(pageErrors).toEqual([]);
  }, 300_000);
});
