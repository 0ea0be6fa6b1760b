import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { maxCsvFieldChars } from '../../electron/core/csv/csv.js';
import { DatasetsRepository } from '../../electron/core/datasets/datasets.repository.js';
import { DatasetsService } from '../../electron/core/datasets/datasets.service.js';
import { createImportServices } from '../../electron/core/core.js';
import { LabelsRepository } from '../../electron/core/labels/labels.repository.js';
import { LabelsService } from '../../electron/core/labels/labels.service.js';
import { TaxonomyRepository } from '../../electron/core/labels/taxonomy.repository.js';
import { TaxonomyService } from '../../electron/core/labels/taxonomy.service.js';
import { SettingsRepository } from '../../electron/core/library/settings.repository.js';
import { createTestLibrary, insertSyntheticImages } from '../fixtures/library-fixture.js';

/** `dermws dataset import-csv` with the bytes spreadsheets really write: Latin-1, NULs, runaway fields. */
let library: ReturnType<typeof createTestLibrary>;
let work: string;
let datasets: DatasetsService;
const mapping = 'image=file,meta.site=Body site';

beforeEach(() => {
  library = createTestLibrary('dermws-csv-encoding-');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-csv-encoding-work-'));
  const settings = new SettingsRepository(library.db);
  const labels = new LabelsService(new LabelsRepository(library.db), new TaxonomyService(new TaxonomyRepository(library.db), settings));
  datasets = new DatasetsService(new DatasetsRepository(library.db), createImportServices(library).import, labels);
  insertSyntheticImages(library, 3);
});

afterEach(() => {
  library.cleanup();
  fs.rmSync(work, { recursive: true, force: true });
});

const write = (name: string, bytes: Buffer) => {
  const file = path.join(work, name);
  fs.writeFileSync(file, bytes);
  return file;
};
const storedMetadata = () => (library.db.prepare("SELECT COUNT(*) AS n FROM image_metadata WHERE key = 'site'").get() as { n: number }).n;

describe('import-csv encoding and size checks', () => {
  it('refuses Latin-1 bytes with the line and column and a hint to re-save as UTF-8, storing nothing', async () => {
    const file = write('latin1.csv', Buffer.from('file,Body site\r\nimage-1.jpg,arm\r\nimage-2.jpg,épaule\r\n', 'latin1'));
    await expect(datasets.importCsv(file, mapping)).rejects.toThrow(/latin1\.csv line 3, column 13: byte 0xe9 is not valid UTF-8.*Re-save it as UTF-8/);
    expect(storedMetadata()).toBe(0);
  });

  it('refuses a NUL character naming line and column', async () => {
    const file = write('nul.csv', Buffer.from('file,Body site\nimage-1.jpg,ar\u0000m\n', 'utf8'));
    await expect(datasets.importCsv(file, mapping)).rejects.toThrow(/nul\.csv line 2, column 15: a NUL character/);
    expect(storedMetadata()).toBe(0);
  });

  it(`refuses a field longer than ${maxCsvFieldChars} characters`, async () => {
    const file = write('huge.csv', Buffer.from(`file,Body site\nimage-1.jpg,${'x'.repeat(10 * 1024 * 1024)}\n`, 'utf8'));
    await expect(datasets.importCsv(file, mapping)).rejects.toThrow(
      new RegExp(`huge\\.csv line 2, field 2: the value is 10485760 characters long; at most ${maxCsvFieldChars}`),
    );
    expect(storedMetadata()).toBe(0);
  });

  it('still reads valid UTF-8, with or without a byte order mark', async () => {
    const file = write('utf8.csv', Buffer.from('\ufefffile,Body site\nimages/image-1.jpg,épaule 🙂\n', 'utf8'));
    const report = await datasets.importCsv(file, mapping);
    expect(report.metadata.set).toBe(1);
    expect((library.db.prepare("SELECT value FROM image_metadata WHERE key = 'site'").get() as { value: string }).value).toBe('épaule 🙂');
  });
});
