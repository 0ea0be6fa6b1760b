import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../electron/web/serve.js';
import { openLibrary } from '../../electron/core/library/library.js';
import { insertSyntheticImages } from '../fixtures/library-fixture.js';
import { launchChromium, reportCspViolations } from '../helpers/chromium.js';

/**
 * The renderer in Chromium through the web mode: no `securitypolicyviolation` under the app's
 * Content-Security-Policy (Chromium logs those outside the console API, so only the DOM event sees
 * them), and the Export screen's de-identified export.
 */

describe('web mode in the browser: CSP and de-identified export', () => {
  let folder: string;
  let server: RunningServer;
  let browser: Browser;

  beforeAll(async () => {
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-web-integrity-'));
    // Rows only (no image files): enough for a CSV export, which is what the de-identify test reads.
    const library = openLibrary(path.join(folder, 'library'));
    try {
      insertSyntheticImages(library, 3, { caseKeyOf: () => 'PATIENT-ROE', metadataOf: () => ({ patient_name: 'Richard Roe', site: 'arm' }) });
    } finally {
      library.close();
    }
    server = await startServer({ libraryFolder: path.join(folder, 'library'), port: 0 });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it('loads the app and answers calls without any CSP violation', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(90_000);
    const violations: string[] = [];
    page.on('console', (message) => {
      if (message.text().startsWith('CSP violation')) violations.push(message.text());
    });
    await page.addInitScript(reportCspViolations);
    await page.goto(server.bridge.url);
    await page.getByTestId('library-count').waitFor();
    // Visiting screens makes the client validate more call outputs (zod parses each one).
    for (const key of ['2', '5', '8', '1']) await page.keyboard.press(key);
    await page.getByTestId('library-count').waitFor();
    expect(violations).toEqual([]);
    await page.close();
  }, 300_000);

  it('exports de-identified from the Export screen: pseudonymous keys, no paths, the chosen metadata column left out', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(90_000);
    await page.goto(server.bridge.url);
    await page.getByTestId('library-count').waitFor();
    await page.keyboard.press('8');
    const exportFolder = path.join(folder, 'shared');
    const form = page.getByRole('form', { name: 'Export settings' });
    await form.getByRole('textbox').fill(exportFolder);
    await form.getByLabel(/De-identify/).check();
    await form.getByRole('group', { name: 'Metadata columns to leave out' }).getByLabel('patient_name').check();
    await form.getByRole('button', { name: 'Export' }).click();
    await page.getByRole('region', { name: 'Export report' }).waitFor({ timeout: 60_000 });
    const images = fs.readFileSync(path.join(exportFolder, 'images.csv'), 'utf8');
    const header = images.split(/\r?\n/)[0]!.split(',');
    expect(header).not.toContain('original_path');
    expect(header).not.toContain('meta.patient_name');
    expect(header).toContain('meta.site');
    for (const needle of ['/synthetic/', 'image-1.jpg', 'PATIENT-ROE', 'Richard Roe']) expect(images).not.toContain(needle);
    expect(images).toMatch(/img_[0-9a-f]{24}\.jpg/);
    expect(JSON.parse(fs.readFileSync(path.join(exportFolder, 'manifest.json'), 'utf8')).request.deidentify).toBe(true);
    await page.close();
  }, 300_000);
});
