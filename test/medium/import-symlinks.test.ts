import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DatasetsRepository } from '../../electron/core/datasets/datasets.repository.js';
import { DatasetsService } from '../../electron/core/datasets/datasets.service.js';
import { listImportFiles } from '../../electron/core/import/file-walker.js';
import { createImportServices } from '../../electron/core/core.js';
import { LabelsRepository } from '../../electron/core/labels/labels.repository.js';
import { LabelsService } from '../../electron/core/labels/labels.service.js';
import { TaxonomyRepository } from '../../electron/core/labels/taxonomy.repository.js';
import { TaxonomyService } from '../../electron/core/labels/taxonomy.service.js';
import { SettingsRepository } from '../../electron/core/library/settings.repository.js';
import { createTestLibrary } from '../fixtures/library-fixture.js';
import { writeScinDataset } from '../fixtures/scin-dataset.js';
import { writeSkinImage } from '../fixtures/skin-images.js';

/** Symbolic links that lead out of what the user chose: a folder link to an ancestor, a dataset file link to elsewhere. */
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function temporary(prefix: string): string {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  cleanups.push(() => fs.rmSync(folder, { recursive: true, force: true }));
  return folder;
}

describe('file walker and links to a containing folder', () => {
  it('treats bad/loop -> .. as a loop when the user chose bad, and imports nothing outside it', async () => {
    const parent = temporary('dermws-walk-loop-');
    await writeSkinImage(path.join(parent, 'outside.jpg'), { seed: 1, width: 40, height: 40 });
    await writeSkinImage(path.join(parent, 'sibling', 'also-outside.jpg'), { seed: 2, width: 40, height: 40 });
    const chosen = path.join(parent, 'bad');
    await writeSkinImage(path.join(chosen, 'inside.jpg'), { seed: 3, width: 40, height: 40 });
    fs.symlinkSync('..', path.join(chosen, 'loop'));
    // A deeper link to the grandparent of the file being walked is the same kind of loop.
    fs.mkdirSync(path.join(chosen, 'deep'));
    fs.symlinkSync('../..', path.join(chosen, 'deep', 'up-two'));

    const listing = await listImportFiles([chosen]);
    expect(listing.files.map((file) => path.relative(chosen, file.path))).toEqual(['inside.jpg']);
    const problem = (name: string) => listing.problems.find((entry) => path.basename(entry.path) === name);
    expect(problem('loop')).toMatchObject({ outcome: 'failed', reason: expect.stringMatching(/Symbolic link loop/) });
    expect(problem('up-two')).toMatchObject({ outcome: 'failed', reason: expect.stringMatching(/Symbolic link loop/) });

    const library = createTestLibrary('dermws-walk-loop-library-');
    cleanups.push(() => library.cleanup());
    const { import: importer, images } = createImportServices(library);
    const report = await importer.importPaths([chosen]);
    expect(report.imported).toBe(1);
    expect(images.list().map((image) => path.basename(image.originalPath))).toEqual(['inside.jpg']);
  });

  it('still follows a link to a folder beside the chosen one', async () => {
    const parent = temporary('dermws-walk-beside-');
    await writeSkinImage(path.join(parent, 'elsewhere', 'beside.jpg'), { seed: 4, width: 40, height: 40 });
    const chosen = path.join(parent, 'chosen');
    fs.mkdirSync(chosen);
    fs.symlinkSync(path.join(parent, 'elsewhere'), path.join(chosen, 'more'));
    const listing = await listImportFiles([chosen]);
    expect(listing.files.map((file) => path.relative(chosen, file.path))).toEqual([path.join('more', 'beside.jpg')]);
  });
});

describe('SCIN import and links out of the dataset folder', () => {
  it('refuses an image that is a link to a file outside the dataset folder, like a path with ..', async () => {
    const root = temporary('dermws-scin-link-');
    const outside = temporary('dermws-scin-outside-');
    const dataset = await writeScinDataset(root, { cases: 5, imageSize: 32 });
    const victim = await writeSkinImage(path.join(outside, 'private.png'), { seed: 9, width: 32, height: 32, format: 'png' });
    const linked = dataset.cases[0]!.imagePaths[0]!;
    fs.rmSync(path.join(root, linked));
    fs.symlinkSync(victim, path.join(root, linked));
    // A link that stays inside the dataset folder is still fine.
    const insideLink = dataset.cases[0]!.imagePaths[1]!;
    fs.rmSync(path.join(root, insideLink));
    fs.symlinkSync(path.join(root, dataset.cases[2]!.imagePaths[0]!), path.join(root, insideLink));

    const library = createTestLibrary('dermws-scin-link-library-');
    cleanups.push(() => library.cleanup());
    const settings = new SettingsRepository(library.db);
    const labels = new LabelsService(new LabelsRepository(library.db), new TaxonomyService(new TaxonomyRepository(library.db), settings));
    const imports = createImportServices(library);
    const datasets = new DatasetsService(new DatasetsRepository(library.db), imports.import, labels);
    const report = await datasets.importScin(root);

    const issue = report.issues.find((entry) => entry.value === linked);
    expect(issue).toMatchObject({ severity: 'error', file: 'scin_cases.csv', column: 'image_1_path' });
    expect(issue!.message).toMatch(/outside the dataset folder through a symbolic link/);
    const stored = imports.images.list();
    expect(stored.some((image) => image.originalPath === path.join(root, linked))).toBe(false);
    expect(stored.some((image) => fs.realpathSync(image.originalPath).startsWith(fs.realpathSync(outside)))).toBe(false);
    expect(report.issues.some((entry) => entry.value === insideLink && /symbolic link/.test(entry.message))).toBe(false);
  });
});
