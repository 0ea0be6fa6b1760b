import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../electron/web/serve.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { defaultEncoderId } from '../../electron/core/models/default-encoder/convert.js';
import { flatNonNegativeVectors } from '../fixtures/clustered-vectors.js';
import { createTestLibrary, insertSyntheticImages } from '../fixtures/library-fixture.js';
import { launchChromium } from '../helpers/chromium.js';

/**
 * The index's measured recall where a researcher sees it: the Similar cases screen says how complete
 * the list is (and switches to exact search on request), and Models & settings shows the
 * measurement per model. Embeddings are generated post-ReLU-like vectors stored under the default
 * encoder's id, so no encoder runs.
 */
const root = path.resolve(import.meta.dirname, '../..');

describe('measured search recall in the browser', () => {
  let library: ReturnType<typeof createTestLibrary>;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  let ids: number[];

  beforeAll(async () => {
    library = createTestLibrary('dermws-e2e-recall-');
    const embeddings = new EmbeddingsRepository(library.db);
    const dim = 1280;
    embeddings.registerModel({ id: defaultEncoderId, displayName: 'default encoder', dim, sha256: 'c'.repeat(64), source: 'onnx', preprocessing: null });
    ids = insertSyntheticImages(library, 400);
    const { data } = flatNonNegativeVectors({ count: ids.length, dim, clusters: 8, latentDim: 200, seed: 6 });
    embeddings.put(
      defaultEncoderId,
      'c'.repeat(64),
      ids.map((imageId, row) => ({ imageId, vector: data.subarray(row * dim, (row + 1) * dim) })),
    );
    process.env.DERMWS_MODEL_CACHE ??= path.join(root, 'native-models', 'generated');
    server = await startServer({ libraryFolder: library.paths.root, port: 0 });
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1360, height: 860 } })).newPage();
    page.setDefaultTimeout(90_000);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    library?.cleanup();
  });

  it('Similar cases says how complete the list is and can search exactly; Models & settings shows the measurement', async () => {
    await page.goto(server.bridge.url);
    await page.keyboard.press('3');
    await page.getByRole('textbox', { name: 'Library image id' }).fill(String(ids[17]));
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    const completeness = page.getByTestId('search-completeness');
    await expect.poll(() => completeness.textContent(), { timeout: 120_000 }).toMatch(/index search: recall@10 [01]\.\d{3} measured on 256 probes/);

    await page.getByRole('checkbox', { name: /Exact search/ }).check();
    await page.getByRole('button', { name: 'Search again' }).click();
    await expect.poll(() => completeness.textContent(), { timeout: 120_000 }).toContain('exact search: every eligible image was compared');

    await page.keyboard.press('9');
    const line = page.getByRole('region', { name: 'Models' }).getByTestId('search-index-recall');
    await expect
      .poll(() => line.textContent(), { timeout: 60_000 })
      .toMatch(/Search index: recall@10 [01]\.\d{3} measured on 256 probes at build \(candidates \d+, ef \d+, \d+-d\)/);
  }, 300_000);
});
