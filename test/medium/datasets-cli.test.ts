import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatCsv, parseCsvTable } from '../../electron/core/csv/csv.js';
import { writeScinDataset, type ScinDataset } from '../fixtures/scin-dataset.js';
import { runDermws } from '../fixtures/cli-runner.js';

const dermws = runDermws;

let work: string;
let library: string;
let dataset: ScinDataset;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-datasets-cli-'));
  library = path.join(work, 'library');
  dataset = await writeScinDataset(path.join(work, 'scin'), { cases: 5 });
});

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

describe('dermws dataset / export', () => {
  it('imports SCIN with a stable JSON report and exit code 1 when rows were bad', async () => {
    const result = await dermws('--library', library, 'dataset', 'import-scin', path.join(work, 'scin'), '--json');
    expect(result.code).toBe(1);
    expect(Object.keys(result.json).sort()).toEqual([
      'cases',
      'dataset',
      'files',
      'images',
      'importBatchId',
      'issues',
      'labels',
      'metadata',
      'rows',
      'rowsApplied',
      'status',
    ]);
    expect(result.json).toMatchObject({
      dataset: 'scin',
      status: 'partial',
      images: { imported: dataset.imagesOnDisk.length, missing: 1 },
      cases: { created: 6 },
    });
    for (const issue of result.json.issues) {
      expect(['severity', 'file', 'line', 'column', 'value', 'message']).toEqual(expect.arrayContaining(Object.keys(issue)));
      expect(issue).toMatchObject({ severity: expect.stringMatching(/^(error|warning)$/), file: expect.any(String), message: expect.any(String) });
    }

    const text = await dermws('--library', library, 'dataset', 'import-scin', path.join(work, 'scin'));
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/error: scin_cases\.csv, line \d+, column image_2_path: image file not found/);
    expect(text.stdout).toMatch(/Images: 0 imported, \d+ already in the library, 1 missing, 0 failed\./);
  });

  it('imports a mapped CSV and refuses a bad mapping with exit code 2 before opening the library', async () => {
    const csv = path.join(work, 'extra.csv');
    const first = dataset.imagesOnDisk[0]!;
    fs.writeFileSync(
      csv,
      formatCsv([
        ['path', 'clinic'],
        [first, 'north'],
      ]),
    );
    const result = await dermws('--library', library, 'dataset', 'import-csv', csv, '--map', 'image=path,meta.clinic=clinic', '--json');
    expect(result.code).toBe(0);
    expect(result.json).toMatchObject({ dataset: 'csv', status: 'success', images: { matched: 1 }, metadata: { set: 1 } });
    const bad = await dermws('--library', path.join(work, 'never-created'), 'dataset', 'import-csv', csv, '--map', 'meta.clinic=clinic', '--json');
    expect(bad.code).toBe(2);
    expect(bad.json.error.message).toMatch(/no image column/);
    expect(fs.existsSync(path.join(work, 'never-created'))).toBe(false);
  });

  it('exports CSVs with a manifest, refuses to overwrite, and filters by label', async () => {
    const out = path.join(work, 'export');
    const result = await dermws('--library', library, 'export', out, '--format', 'csv', '--json');
    expect(result.code).toBe(0);
    expect(Object.keys(result.json).sort()).toEqual(['counts', 'files', 'folder', 'issues', 'model', 'status']);
    expect(result.json.counts.images).toBe(dataset.imagesOnDisk.length);
    expect(result.json.files.map((file: { name: string }) => file.name)).toEqual(['images.csv', 'labels_long.csv']);
    expect(fs.existsSync(path.join(out, 'manifest.json'))).toBe(true);

    const refused = await dermws('--library', library, 'export', out, '--json');
    expect(refused.code).toBe(2);
    expect(refused.json.error.code).toBe('conflict');

    const filtered = await dermws('--library', library, 'export', out, '--overwrite', '--label', 'gradable=no', '--json');
    expect(filtered.code).toBe(0);
    const notGradable = dataset.cases[2]!;
    const rows = parseCsvTable(fs.readFileSync(path.join(out, 'images.csv'), 'utf8'), 'images.csv').rows;
    expect(rows.map((row) => row.values.relative_path).sort()).toEqual([...notGradable.imagePaths].sort());

    const where = await dermws(
      '--library',
      library,
      'export',
      path.join(work, 'export-where'),
      '--where',
      `meta.age_group=${notGradable.ageGroup}`,
      'label.gradable=no',
      '--json',
    );
    expect(where.code).toBe(0);
    expect(where.json.counts.images).toBe(notGradable.imagePaths.length);
    const badWhere = await dermws('--library', library, 'export', path.join(work, 'export-bad-where'), '--where', 'colour=red', '--json');
    expect(badWhere.code).toBe(2);
    expect(badWhere.json.error.message).toMatch(/colour=red/);
    expect(fs.existsSync(path.join(work, 'export-bad-where'))).toBe(false);

    const badFormat = await dermws('--library', library, 'export', out, '--format', 'csv,xlsx', '--json');
    expect(badFormat.code).toBe(2);
    expect(badFormat.json.error.message).toMatch(/--format "xlsx"/);
    const noEmbeddings = await dermws('--library', library, 'export', path.join(work, 'export-npz'), '--format', 'npz', '--json');
    expect(noEmbeddings.code).toBe(2);
    expect(noEmbeddings.json.error.message).toMatch(/no embeddings to export/);
  });
});
