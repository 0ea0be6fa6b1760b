import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCsvTable } from '../../electron/core/csv/csv.js';
import { createDatasetServices } from '../../electron/core/core.js';
import type { ExportService } from '../../electron/core/export/export.service.js';
import { createImportServices } from '../../electron/core/core.js';
import { LabelsRepository } from '../../electron/core/labels/labels.repository.js';
import { LabelsService } from '../../electron/core/labels/labels.service.js';
import { TaxonomyRepository } from '../../electron/core/labels/taxonomy.repository.js';
import { TaxonomyService } from '../../electron/core/labels/taxonomy.service.js';
import { SettingsRepository } from '../../electron/core/library/settings.repository.js';
import { createTestLibrary } from '../fixtures/library-fixture.js';
import { writeSkinImage } from '../fixtures/skin-images.js';

/** File names with backslashes (legal on Linux and macOS) keep their name in an export and never leave its folder. */
let library: ReturnType<typeof createTestLibrary>;
let work: string;
let exportsService: ExportService;

beforeAll(async () => {
  library = createTestLibrary('dermws-export-names-');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-export-names-work-'));
  const source = path.join(work, 'photos');
  await writeSkinImage(path.join(source, 'scan\\2.jpg'), { seed: 1, width: 40, height: 40 });
  await writeSkinImage(path.join(source, 'up\\..\\..\\evil.jpg'), { seed: 2, width: 40, height: 40 });
  const settings = new SettingsRepository(library.db);
  const taxonomy = new TaxonomyService(new TaxonomyRepository(library.db), settings);
  const labels = new LabelsService(new LabelsRepository(library.db), taxonomy);
  const imports = createImportServices(library);
  expect((await imports.import.importPaths([source])).imported).toBe(2);
  ({ exports: exportsService } = createDatasetServices(library, {
    import: imports.import,
    images: imports.images,
    labels,
    taxonomy,
    quality: imports.quality,
  }));
});

afterAll(() => {
  library.cleanup();
  fs.rmSync(work, { recursive: true, force: true });
});

describe.skipIf(path.sep === '\\')('export names with backslashes', () => {
  it('keeps a backslash in export_key and in the image copy name instead of making a folder', async () => {
    const target = path.join(work, 'export');
    const report = await exportsService.export({ folder: target, images: true });
    const keys = parseCsvTable(fs.readFileSync(path.join(target, 'images.csv'), 'utf8'), 'images.csv').rows.map((row) => row.values.export_key);
    expect(keys).toContain('scan\\2.jpg');
    expect(fs.statSync(path.join(target, 'images', 'scan\\2.jpg')).isFile()).toBe(true);
    expect(fs.existsSync(path.join(target, 'images', 'scan'))).toBe(false);
    // A name that would climb out once unpacked on Windows is exported under its id instead, and reported.
    const evil = keys.find((key) => key !== 'scan\\2.jpg')!;
    expect(evil).toMatch(/^image-\d+\//);
    expect(report.issues.some((issue) => /not a safe relative path/.test(issue.message))).toBe(true);
    expect(fs.readdirSync(work).sort()).toEqual(['export', 'photos']);
    const everything = fs.readdirSync(target, { recursive: true }).map(String);
    expect(everything.every((name) => !name.split(/[\\/]/).includes('..'))).toBe(true);
  });
});
