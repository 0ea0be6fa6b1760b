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
 * The library check in Debian's Chromium through the web mode: started from the Models & settings
 * screen, it shows its progress (stage, bar, counts) and then the report: what each stage checked and
 * the problems it found. Also the Import screen's note about an interrupted import.
 */

const imageCount = 40;
let folder: string;
let server: RunningServer | undefined;
let browser: Browser | undefined;
let missingThumbnails: number[] = [];
let blockedImage = 0;
let fifo = '';

beforeAll(async () => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-e2e-check-'));
  const root = path.join(folder, 'library');
  const library = openLibrary(root);
  try {
    const ids = insertSyntheticImages(library, imageCount);
    // Every image has its thumbnail and library copy on disk except two thumbnails.
    const setManaged = library.db.prepare('UPDATE images SET managed_path = ? WHERE id = ?');
    for (const id of ids) {
      setManaged.run(`images/m/${id}.jpg`, id);
      fs.mkdirSync(path.join(root, 'images', 'm'), { recursive: true });
      fs.writeFileSync(path.join(root, 'images', 'm', `${id}.jpg`), 'copy');
      fs.writeFileSync(path.join(root, 'thumbnails', `${id}.webp`), 'thumbnail');
    }
    missingThumbnails = [ids[3]!, ids[17]!];
    for (const id of missingThumbnails) fs.rmSync(path.join(root, 'thumbnails', `${id}.webp`));
    // The first image's library copy is missing and its original is a named pipe: the check (in the
    // server's core worker) stops there, reading it, until the test writes. That holds the check
    // running, mid-stage, for as long as the test looks at its progress.
    blockedImage = ids[0]!;
    fifo = path.join(folder, 'original.jpg');
    execFileSync('mkfifo', [fifo]);
    library.db.prepare('UPDATE images SET original_path = ? WHERE id = ?').run(fifo, blockedImage);
    fs.rmSync(path.join(root, 'images', 'm', `${blockedImage}.jpg`));
    // An import whose process died after 2 of its 5 files, as the next open records it.
    library.db
      .prepare("INSERT INTO import_batches (started_at, status, source_paths, total_files, imported) VALUES (?, 'interrupted', ?, 5, 2)")
      .run(new Date().toISOString(), JSON.stringify([path.join(folder, 'photos')]));
  } finally {
    library.close();
  }
  server = await startServer({ libraryFolder: root, port: 0 });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (folder) fs.rmSync(folder, { recursive: true, force: true });
});

describe('library check in the app', () => {
  it('runs from the settings screen showing its stage, a progress bar and Cancel, then what each stage checked and the problems', async () => {
    const page = await browser!.newPage({ viewport: { width: 1360, height: 860 } });
    page.setDefaultTimeout(90_000);
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`${server!.bridge.url}#/settings`);
    const form = page.getByRole('form', { name: 'Check the library' });
    await form.waitFor();
    await form.getByRole('button', { name: 'Check the library' }).click();

    // Held in the library-copies stage: its name, a progress bar and Cancel are on screen.
    const progress = form.getByRole('region', { name: 'Checking the library' });
    await expect.poll(() => form.getByTestId('check-stage').textContent()).toBe('Checking library copies (stage 4 of 4)');
    expect(await progress.getAttribute('data-state')).toBe('running');
    expect(await progress.getByRole('button', { name: 'Cancel' }).isVisible()).toBe(true);
    expect(await progress.getByRole('progressbar').getAttribute('aria-valuenow')).toBe('0');
    expect(await form.getByRole('button', { name: 'Check the library' }).isDisabled()).toBe(true);
    const writer = await fs.promises.open(fifo, 'w');
    await writer.write('not the original bytes');
    await writer.close();

    // The job's progress stays on screen after it ends: the bar of the last stage, full.
    await expect.poll(() => progress.getAttribute('data-state')).toBe('success');
    expect(await progress.getByRole('progressbar').getAttribute('aria-valuenow')).toBe('100');
    expect(await progress.textContent()).toContain(`${imageCount} of ${imageCount}`);

    const result = form.getByRole('status', { name: 'Library check result' });
    await result.waitFor();
    const text = (await result.textContent()) ?? '';
    expect(text).toContain(`3 problems left in ${imageCount} images`);
    expect(text).toContain(`The library copy of image ${blockedImage} is missing`);
    const rows = await result.locator('tbody tr').allTextContents();
    expect(rows.map((row) => row.replace(/\s+/g, ' ').trim())).toEqual([
      'Database pages and schema record1 of 1checked',
      'Embeddings0 of 0checked',
      `Thumbnails${imageCount} of ${imageCount}checked`,
      `Library copies${imageCount} of ${imageCount}checked`,
    ]);
    for (const id of missingThumbnails) expect(text).toContain(`The thumbnail of image ${id} is missing`);
    // The job is listed with its progress among the session's jobs.
    const jobs = page.getByRole('region', { name: 'Jobs' });
    expect(await jobs.textContent()).toMatch(/library-check\s*success/);
    expect(pageErrors).toEqual([]);
    // The screen also loads the default encoder to say where it runs; closing the server while that
    // session is being created would end its worker inside onnxruntime.
    await page
      .getByRole('region', { name: 'Models' })
      .getByText(/^Runs on /)
      .first()
      .waitFor({ timeout: 120_000 });
    await page.close();
  }, 300_000);

  it('the Import screen says an import was interrupted, how far it got, and how to resume it', async () => {
    const page = await browser!.newPage({ viewport: { width: 1360, height: 860 } });
    page.setDefaultTimeout(90_000);
    await page.goto(`${server!.bridge.url}#/import`);
    const unfinished = page.getByRole('region', { name: 'Unfinished imports' });
    await unfinished.waitFor();
    const text = ((await unfinished.textContent()) ?? '').replace(/\s+/g, ' ');
    expect(text).toMatch(
      /was interrupted \(the app or command stopped mid-import\) after 2 of 5 files \(2 imported\)\. Import the same files again to resume it\./,
    );
    await page.close();
  }, 300_000);
});
