import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatCsvField, parseCsv } from '../../electron/core/csv/csv.js';
import { createDatasetServices } from '../../electron/core/core.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { createImportServices } from '../../electron/core/core.js';
import { LabelsRepository } from '../../electron/core/labels/labels.repository.js';
import { LabelsService } from '../../electron/core/labels/labels.service.js';
import { TaxonomyRepository } from '../../electron/core/labels/taxonomy.repository.js';
import { TaxonomyService } from '../../electron/core/labels/taxonomy.service.js';
import { SettingsRepository } from '../../electron/core/library/settings.repository.js';
import { createTestLibrary } from '../fixtures/library-fixture.js';
import { writeSkinImage } from '../fixtures/skin-images.js';

/**
 * CSV injection (OWASP): a cell that starts with = + - @ tab or CR is run as a formula by spreadsheets.
 * Every value a user or a dataset controls is made hostile here, then every cell of every CSV the
 * export writes is checked; nothing is opened in a spreadsheet.
 */
const hostile = ['=HYPERLINK("http:x","click")', '@SUM(1+1)', '+cmd', "=cmd|' /C calc'!A0", '-2+3', '\tTAB=1+1', '\rCR=1+1'];
const dangerousLead = /^[=+\-@\t\r]/;
const plainNumber = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function expectNoFormulaCells(file: string): number {
  const records = parseCsv(fs.readFileSync(file, 'utf8'), { file });
  let cells = 0;
  for (const record of records) {
    for (const [column, cell] of record.fields.entries()) {
      cells++;
      if (dangerousLead.test(cell))
        expect(plainNumber.test(cell), `${path.basename(file)} line ${record.line} column ${column + 1}: ${JSON.stringify(cell)}`).toBe(true);
    }
  }
  return cells;
}

let library: ReturnType<typeof createTestLibrary>;
let work: string;

beforeAll(async () => {
  library = createTestLibrary('dermws-csv-injection-');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-csv-injection-work-'));
  const source = path.join(work, 'photos');
  // File names are free text on Linux: they reach export_key, relative_path and original_path.
  await writeSkinImage(path.join(source, '=HYPERLINK("evil").jpg'), { seed: 1, width: 40, height: 40 });
  await writeSkinImage(path.join(source, '+cmd.jpg'), { seed: 2, width: 40, height: 40 });
  await writeSkinImage(path.join(source, '@SUM(A1).jpg'), { seed: 3, width: 40, height: 40 });
  const settings = new SettingsRepository(library.db);
  const taxonomy = new TaxonomyService(new TaxonomyRepository(library.db), settings);
  const labels = new LabelsService(new LabelsRepository(library.db), taxonomy);
  const imports = createImportServices(library);
  expect((await imports.import.importPaths([source])).imported).toBe(3);
  const ids = (library.db.prepare('SELECT id FROM images ORDER BY id').all() as Array<{ id: number }>).map((row) => row.id);
  const insertMetadata = library.db.prepare("INSERT INTO image_metadata (image_id, key, value, source) VALUES (?, ?, ?, 'test')");
  for (const [index, id] of ids.entries()) {
    for (const [slot, value] of hostile.entries()) insertMetadata.run(id, `field_${slot}`, value);
    labels.setLabel({ imageId: id, kind: 'note', value: hostile[index]!, annotator: "=cmd|' /C calc'!A0" });
  }
  const caseId = library.db.prepare("INSERT INTO cases (case_key, source, created_at) VALUES ('+1+1', 'test', '2026-01-01')").run().lastInsertRowid;
  library.db.prepare('UPDATE images SET case_id = ?').run(caseId);
  const embeddings = new EmbeddingsRepository(library.db);
  embeddings.registerModel({ id: 'tiny', displayName: 'tiny', dim: 3, sha256: 'b'.repeat(64), source: 'imported', preprocessing: null });
  embeddings.put(
    'tiny',
    'b'.repeat(64),
    ids.map((imageId) => ({ imageId, vector: Float32Array.from([-1, 0.5, -0.25]) })),
  );
  const { exports } = createDatasetServices(library, { import: imports.import, images: imports.images, labels, taxonomy, quality: imports.quality });
  await exports.export({ folder: path.join(work, 'export'), formats: ['csv', 'npz', 'npy'] });
});

afterAll(() => {
  library.cleanup();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('CSV formula neutralisation', () => {
  it('prefixes an apostrophe to text a spreadsheet would run, and leaves numbers and plain text alone', () => {
    for (const value of hostile) expect(formatCsvField(value).replace(/^"|"$/g, '').startsWith("'")).toBe(true);
    expect(formatCsvField('-3.5')).toBe('-3.5');
    expect(formatCsvField('+12')).toBe('+12');
    expect(formatCsvField(-7)).toBe('-7');
    expect(formatCsvField('eczema')).toBe('eczema');
    expect(formatCsvField("=cmd|' /C calc'!A0")).toBe("'=cmd|' /C calc'!A0");
  });

  it('leaves no cell that starts a formula in any CSV the export writes', () => {
    const folder = path.join(work, 'export');
    const csvFiles = fs.readdirSync(folder).filter((name) => name.endsWith('.csv'));
    expect(csvFiles.sort()).toEqual(['embeddings_tiny_paths.csv', 'images.csv', 'labels_long.csv']);
    let cells = 0;
    for (const name of csvFiles) cells += expectNoFormulaCells(path.join(folder, name));
    expect(cells).toBeGreaterThan(60);
    // The hostile values are all there, neutralised, not dropped.
    const text = fs.readFileSync(path.join(folder, 'images.csv'), 'utf8') + fs.readFileSync(path.join(folder, 'labels_long.csv'), 'utf8');
    for (const value of hostile) expect(text).toContain(`'${value.replaceAll('"', '""')}`);
    expect(text).toContain("'+1+1");
  });
});
