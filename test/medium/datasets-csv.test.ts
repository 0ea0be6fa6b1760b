import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatCsv } from '../../electron/core/csv/csv.js';
import { DatasetsRepository } from '../../electron/core/datasets/datasets.repository.js';
import { DatasetsService } from '../../electron/core/datasets/datasets.service.js';
import { parseColumnMapping } from '../../electron/core/datasets/metadata-csv-format.js';
import { createImportServices } from '../../electron/core/core.js';
import { LabelsRepository } from '../../electron/core/labels/labels.repository.js';
import { LabelsService } from '../../electron/core/labels/labels.service.js';
import { TaxonomyRepository } from '../../electron/core/labels/taxonomy.repository.js';
import { TaxonomyService } from '../../electron/core/labels/taxonomy.service.js';
import { SettingsRepository } from '../../electron/core/library/settings.repository.js';
import { createTestLibrary, insertSyntheticImages } from '../fixtures/library-fixture.js';

let library: ReturnType<typeof createTestLibrary>;
let work: string;
let datasets: DatasetsService;
let ids: number[];

beforeEach(() => {
  library = createTestLibrary('dermws-datasets-csv-');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-datasets-csv-work-'));
  const settings = new SettingsRepository(library.db);
  const taxonomy = new TaxonomyService(new TaxonomyRepository(library.db), settings);
  const labels = new LabelsService(new LabelsRepository(library.db), taxonomy);
  datasets = new DatasetsService(new DatasetsRepository(library.db), createImportServices(library).import, labels);
  ids = insertSyntheticImages(library, 8);
});

afterEach(() => {
  library.cleanup();
  fs.rmSync(work, { recursive: true, force: true });
});

function writeCsv(name: string, rows: string[][]): string {
  const file = path.join(work, name);
  fs.writeFileSync(file, formatCsv(rows));
  return file;
}

const metadataOf = (imageId: number) =>
  Object.fromEntries(
    (library.db.prepare('SELECT key, value FROM image_metadata WHERE image_id = ? ORDER BY key').all(imageId) as Array<{ key: string; value: string }>).map(
      (row) => [row.key, row.value],
    ),
  );
const labelsOf = (imageId: number) =>
  (
    library.db
      .prepare(
        'SELECT l.kind, l.value, l.confidence, l.origin, a.name AS annotator FROM labels l JOIN annotators a ON a.id = l.annotator_id WHERE l.image_id = ? AND l.superseded_at IS NULL ORDER BY l.kind, l.value',
      )
      .all(imageId) as Array<{ kind: string; value: string; confidence: number | null; origin: string; annotator: string }>
  ).map((label) => `${label.kind}=${label.value}${label.confidence ? `:${label.confidence}` : ''} (${label.annotator}, ${label.origin})`);
const caseKeyOf = (imageId: number) =>
  (library.db.prepare('SELECT c.case_key AS k FROM images i LEFT JOIN cases c ON c.id = i.case_id WHERE i.id = ?').get(imageId) as { k: string | null }).k;
const counts = () => ({
  metadata: (library.db.prepare('SELECT COUNT(*) AS n FROM image_metadata').get() as { n: number }).n,
  labels: (library.db.prepare('SELECT COUNT(*) AS n FROM labels').get() as { n: number }).n,
  cases: (library.db.prepare('SELECT COUNT(*) AS n FROM cases').get() as { n: number }).n,
});

describe('ISIC metadata import', () => {
  beforeEach(() => {
    const rename = library.db.prepare('UPDATE images SET relative_path = ?, original_path = ? WHERE id = ?');
    ids.slice(0, 6).forEach((id, index) => rename.run(`isic/ISIC_000000${index + 1}.jpg`, `/data/isic/ISIC_000000${index + 1}.jpg`, id));
    // Two files with the same stem in different folders: an ISIC id cannot choose between them.
    rename.run('a/ISIC_0000009.jpg', '/data/a/ISIC_0000009.jpg', ids[6]!);
    rename.run('b/ISIC_0000009.png', '/data/b/ISIC_0000009.png', ids[7]!);
  });

  it('matches rows to images by file stem, stores metadata, diagnoses and patient cases, and reports bad rows by line', async () => {
    const file = writeCsv('metadata.csv', [
      ['isic_id', 'patient_id', 'diagnosis_1', 'diagnosis_2', 'diagnosis_3', 'anatom_site_general', 'age_approx', 'sex', 'benign_malignant'],
      ['ISIC_0000001', 'IP_100', 'Benign', 'Benign melanocytic proliferations', 'Nevus', 'posterior torso', '45', 'male', 'benign'],
      ['ISIC_0000002', 'IP_100', 'Malignant', 'Malignant melanocytic proliferations (Melanoma)', 'Melanoma', 'lower extremity', '60.0', 'female', 'malignant'],
      ['ISIC_0000003', 'IP_200', 'Benign', '', '', 'head/neck', 'sixty', 'female', 'benign'],
      ['ISIC_0000001', 'IP_100', 'Benign', '', '', '', '50', 'male', 'benign'],
      ['ISIC_0099999', 'IP_300', 'Benign', '', '', '', '', '', ''],
      ['ISIC_0000009', '', 'Benign', '', '', '', '', '', ''],
      ['ISIC_0000004', '', '', '', '', '', '30', 'unknown', ''],
    ]);
    const report = await datasets.importIsic(file);
    expect(metadataOf(ids[0]!)).toEqual({ dataset: 'isic', anatom_site_general: 'posterior torso', age_approx: '45', sex: 'male', benign_malignant: 'benign' });
    expect(metadataOf(ids[1]!)).toMatchObject({ age_approx: '60', sex: 'female' });
    expect(metadataOf(ids[2]!)).not.toHaveProperty('age_approx');
    expect(labelsOf(ids[0]!)).toEqual(['condition=nevus (isic, imported)']);
    expect(labelsOf(ids[1]!)).toEqual(['condition=melanoma (isic, imported)']);
    expect(labelsOf(ids[2]!)).toEqual(['condition=benign (isic, imported)']);
    expect(caseKeyOf(ids[0]!)).toBe('IP_100');
    expect(caseKeyOf(ids[1]!)).toBe('IP_100');
    expect(caseKeyOf(ids[2]!)).toBe('IP_200');
    expect(report.issues.map((issue) => [issue.line, issue.column, issue.value, issue.severity])).toEqual([
      [4, 'age_approx', 'sixty', 'error'],
      [5, 'isic_id', 'ISIC_0000001', 'error'],
      [6, 'isic_id', 'ISIC_0099999', 'error'],
      [7, 'isic_id', 'ISIC_0000009', 'error'],
      [8, 'sex', 'unknown', 'error'],
    ]);
    expect(report.issues[1]!.message).toMatch(/already appears on line 2/);
    expect(report.issues[2]!.message).toMatch(/matches no image/);
    expect(report.issues[3]!.message).toMatch(/matches 2 library images/);
    expect(report).toMatchObject({ dataset: 'isic', status: 'partial', rows: 7, rowsApplied: 4, cases: { created: 2 }, images: { matched: 4 } });

    const before = counts();
    const again = await datasets.importIsic(file);
    expect(counts()).toEqual(before);
    expect(again.metadata.set).toBe(0);
    expect(again.labels.changedSlots).toBe(0);
    expect(again.cases.created).toBe(0);
  });

  it('refuses a file without isic_id, naming it', async () => {
    const file = writeCsv('not-isic.csv', [
      ['id', 'sex'],
      ['x', 'male'],
    ]);
    await expect(datasets.importIsic(file)).rejects.toThrow(/not-isic\.csv is not an ISIC metadata file: it has no "isic_id" column/);
  });
});

describe('generic CSV import with a column mapping', () => {
  const mapping = 'image=file,case=patient,meta.sex=Sex,meta.site=Body site,label.condition=dx,confidence.condition=conf,label.fitzpatrick=fst';

  it('matches by relative path, then by file name, and maps columns to metadata, labels and cases', async () => {
    const file = writeCsv('mine.csv', [
      ['file', 'patient', 'Sex', 'Body site', 'dx', 'conf', 'fst'],
      ['images/image-1.jpg', 'P1', 'F', 'arm', 'Eczema;Psoriasis', '4', 'FST3'],
      ['image-2.jpg', 'P1', 'M', '', 'urticaria', '', 'VII'],
      ['elsewhere/nope.jpg', 'P2', 'F', '', '', '', ''],
      ['./images/image-1.jpg', 'P9', 'F', '', '', '', ''],
      ['image-3.jpg', '', '', '', 'tinea', 'high', ''],
    ]);
    const report = await datasets.importCsv(file, mapping, { annotator: 'clinic-2024' });
    expect(metadataOf(ids[0]!)).toEqual({ sex: 'F', site: 'arm' });
    expect(metadataOf(ids[1]!)).toEqual({ sex: 'M' });
    expect(labelsOf(ids[0]!)).toEqual([
      'condition=eczema:4 (clinic-2024, imported)',
      'condition=psoriasis:4 (clinic-2024, imported)',
      'fitzpatrick=III (clinic-2024, imported)',
    ]);
    expect(labelsOf(ids[1]!)).toEqual(['condition=urticaria (clinic-2024, imported)']);
    expect(labelsOf(ids[2]!)).toEqual(['condition=tinea (clinic-2024, imported)']);
    expect(caseKeyOf(ids[0]!)).toBe('P1');
    expect(caseKeyOf(ids[1]!)).toBe('P1');
    expect(report.issues.map((issue) => [issue.line, issue.column, issue.value])).toEqual([
      [3, 'fst', 'VII'],
      [4, 'file', 'elsewhere/nope.jpg'],
      [5, 'file', './images/image-1.jpg'],
      [6, 'conf', 'high'],
    ]);
    expect(report.issues[0]!.message).toMatch(/not in the fitzpatrick taxonomy/);
    expect(report.issues[2]!.message).toMatch(/already appears on line 2/);

    const before = counts();
    const again = await datasets.importCsv(file, mapping, { annotator: 'clinic-2024' });
    expect(counts()).toEqual(before);
    expect(again.labels.changedSlots).toBe(0);
  });

  it('leaves an image in the case it already has, with a warning', async () => {
    library.db.prepare("INSERT INTO cases (id, case_key, source, created_at) VALUES (99, 'EXISTING', 'scin', '2026-01-01')").run();
    library.db.prepare('UPDATE images SET case_id = 99 WHERE id = ?').run(ids[0]!);
    const file = writeCsv('cases.csv', [
      ['file', 'patient'],
      ['image-1.jpg', 'P7'],
    ]);
    const report = await datasets.importCsv(file, 'image=file,case=patient');
    expect(caseKeyOf(ids[0]!)).toBe('EXISTING');
    expect(report.issues).toEqual([
      expect.objectContaining({ severity: 'warning', line: 2, column: 'patient', message: expect.stringMatching(/already belongs to case EXISTING/) }),
    ]);
    expect(report.status).toBe('success');
  });

  it('reports two rows that name one image in different ways, keeping the first', async () => {
    const file = writeCsv('twice.csv', [
      ['file', 'sex'],
      ['images/image-1.jpg', 'F'],
      ['image-1.jpg', 'M'],
    ]);
    const report = await datasets.importCsv(file, 'image=file,meta.sex=sex');
    expect(metadataOf(ids[0]!)).toEqual({ sex: 'F' });
    expect(report.issues).toEqual([
      expect.objectContaining({ line: 3, column: 'file', value: 'image-1.jpg', message: expect.stringMatching(/same library image .* as line 2/) }),
    ]);
  });

  it('validates the mapping and the columns it names before reading rows', async () => {
    expect(() => parseColumnMapping('meta.sex=sex')).toThrow(/no image column/);
    expect(() => parseColumnMapping('image=f,label.colour=c')).toThrow(/"colour" is not a label kind/);
    expect(() => parseColumnMapping('image=f,size=s')).toThrow(/unknown target "size"/);
    expect(() => parseColumnMapping('image=f,image=g')).toThrow(/mapped twice/);
    expect(() => parseColumnMapping('image=f,confidence.condition=c')).toThrow(/needs label.condition/);
    const file = writeCsv('cols.csv', [['file'], ['image-1.jpg']]);
    await expect(datasets.importCsv(file, 'image=file,meta.sex=gender')).rejects.toThrow(/cols\.csv has no column "gender"/);
    expect(counts().metadata).toBe(0);
  });
});
