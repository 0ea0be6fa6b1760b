import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatasetsRepository } from '../../electron/core/datasets/datasets.repository.js';
import { DatasetsService } from '../../electron/core/datasets/datasets.service.js';
import type { DatasetImportReport } from '../../electron/core/datasets/dataset-report.js';
import { createImportServices } from '../../electron/core/core.js';
import { LabelsRepository } from '../../electron/core/labels/labels.repository.js';
import { LabelsService } from '../../electron/core/labels/labels.service.js';
import { TaxonomyRepository } from '../../electron/core/labels/taxonomy.repository.js';
import { TaxonomyService } from '../../electron/core/labels/taxonomy.service.js';
import type { Library } from '../../electron/core/library/library.js';
import { SettingsRepository } from '../../electron/core/library/settings.repository.js';
import { createTestLibrary } from '../fixtures/library-fixture.js';
import { writeScinDataset, type ScinDataset } from '../fixtures/scin-dataset.js';

function datasetServices(library: Library) {
  const settings = new SettingsRepository(library.db);
  const taxonomy = new TaxonomyService(new TaxonomyRepository(library.db), settings);
  const labels = new LabelsService(new LabelsRepository(library.db), taxonomy);
  const imports = createImportServices(library);
  return { labels, taxonomy, datasets: new DatasetsService(new DatasetsRepository(library.db), imports.import, labels) };
}

let library: ReturnType<typeof createTestLibrary>;
let folder: string;
let dataset: ScinDataset;
let first: DatasetImportReport;
let second: DatasetImportReport;
let countsAfterFirst: Record<string, number>;

const count = (sql: string, ...params: unknown[]) => (library.db.prepare(sql).get(...params) as { n: number }).n;
function tableCounts(): Record<string, number> {
  return {
    images: count('SELECT COUNT(*) AS n FROM images'),
    cases: count('SELECT COUNT(*) AS n FROM cases'),
    metadata: count('SELECT COUNT(*) AS n FROM image_metadata'),
    labels: count('SELECT COUNT(*) AS n FROM labels'),
    audit: count('SELECT COUNT(*) AS n FROM label_audit'),
    taxonomy: count('SELECT COUNT(*) AS n FROM taxonomy_entries'),
  };
}

beforeAll(async () => {
  library = createTestLibrary('dermws-scin-');
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-scin-data-'));
  dataset = await writeScinDataset(folder);
  const { datasets } = datasetServices(library);
  first = await datasets.importScin(folder);
  countsAfterFirst = tableCounts();
  second = await datasets.importScin(folder);
});

afterAll(() => {
  library.cleanup();
  fs.rmSync(folder, { recursive: true, force: true });
});

describe('SCIN import', () => {
  it('imports every image on disk that the CSV lists, keyed by its CSV path', () => {
    expect(first.images.imported).toBe(dataset.imagesOnDisk.length);
    expect(first.images.missing).toBe(1);
    const relative = (library.db.prepare('SELECT relative_path AS p FROM images ORDER BY p').all() as { p: string }[]).map((row) => row.p);
    expect(relative).toEqual([...dataset.imagesOnDisk].sort());
  });

  it('creates one case per case_id (read as text) and keeps each case’s images together', () => {
    const cases = library.db
      .prepare(
        'SELECT c.case_key AS key, c.source AS source, COUNT(i.id) AS n FROM cases c JOIN images i ON i.case_id = c.id GROUP BY c.id ORDER BY c.case_key',
      )
      .all() as Array<{
      key: string;
      source: string;
      n: number;
    }>;
    const expected = new Map(dataset.cases.map((spec) => [spec.caseId, spec.imagePaths.length - spec.missingPaths.length]));
    expected.set(dataset.faults.badAgeGroup.caseId, 1);
    expect(new Map(cases.map((row) => [row.key, row.n]))).toEqual(expected);
    expect(cases.every((row) => row.source === 'scin')).toBe(true);
    // 19-digit ids survive exactly: a number type would have rounded them.
    expect(cases.map((row) => row.key)).toContain(dataset.cases[0]!.caseId);
    for (const spec of dataset.cases) {
      const present = spec.imagePaths.filter((image) => !spec.missingPaths.includes(image));
      const caseIds = new Set(
        present.map((image) => (library.db.prepare('SELECT case_id AS c FROM images WHERE relative_path = ?').get(image) as { c: number }).c),
      );
      expect(caseIds.size).toBe(1);
    }
    expect(first.cases.created).toBe(dataset.cases.length + 1);
  });

  it('stores self-reported and case facts as image metadata', () => {
    const spec = dataset.cases[0]!;
    const metadata = Object.fromEntries(
      (
        library.db
          .prepare('SELECT m.key, m.value FROM image_metadata m JOIN images i ON i.id = m.image_id WHERE i.relative_path = ?')
          .all(spec.imagePaths[1]!) as Array<{ key: string; value: string }>
      ).map((row) => [row.key, row.value]),
    );
    expect(metadata).toMatchObject({
      dataset: 'scin',
      sex: spec.sex.toLowerCase(),
      age_group: spec.ageGroup,
      fitzpatrick_self: spec.fitzpatrickSelf,
      body_parts: spec.bodyParts.map((column) => column.replace('body_parts_', '').toUpperCase()).join(';'),
      shot_type: spec.shotTypes[1],
      monk_tone_us: spec.monkUs,
      monk_tone_india: String(Number(spec.monkIndia)),
    });
    expect(JSON.parse(metadata.condition_weights!)).toEqual(spec.weights);
    // NONE_SELECTED is "not given", not an error.
    const noneSelected = dataset.cases[3]!;
    expect(
      count(
        "SELECT COUNT(*) AS n FROM image_metadata m JOIN images i ON i.id = m.image_id WHERE i.relative_path = ? AND m.key = 'fitzpatrick_self'",
        noneSelected.imagePaths[0]!,
      ),
    ).toBe(0);
  });

  it('stores dermatologist judgements as imported labels: conditions with confidences, gradable, Fitzpatrick, Monk tone', () => {
    const spec = dataset.cases[0]!;
    const labels = library.db
      .prepare(
        `SELECT l.kind, l.value, l.confidence, l.origin, a.name AS annotator FROM labels l JOIN images i ON i.id = l.image_id
         LEFT JOIN annotators a ON a.id = l.annotator_id WHERE i.relative_path = ? AND l.superseded_at IS NULL ORDER BY l.kind, a.name, l.value`,
      )
      .all(spec.imagePaths[0]!) as Array<{ kind: string; value: string; confidence: number | null; origin: string; annotator: string }>;
    expect(labels.every((label) => label.origin === 'imported')).toBe(true);
    // Eczema is mentioned twice (confidence 4 and 3): one label with the higher confidence.
    expect(labels.filter((label) => label.kind === 'condition').map((label) => [label.value, label.confidence, label.annotator])).toEqual([
      ['eczema', 4, 'scin-dermatologists'],
      ['urticaria', 2, 'scin-dermatologists'],
    ]);
    expect(labels.filter((label) => label.kind === 'gradable').map((label) => [label.annotator, label.value])).toEqual([
      ['scin-dermatologist-1', 'yes'],
      ['scin-dermatologist-2', 'yes'],
    ]);
    expect(labels.filter((label) => label.kind === 'fitzpatrick').map((label) => [label.annotator, label.value])).toEqual([
      ['scin-dermatologist-1', 'I'],
      ['scin-dermatologist-2', 'II'],
    ]);
    expect(labels.filter((label) => label.kind === 'monk_tone').map((label) => [label.annotator, label.value])).toEqual([
      ['scin-monk-india', '2'],
      ['scin-monk-us', '1'],
    ]);
    const notGradable = dataset.cases[2]!;
    expect(
      count(
        "SELECT COUNT(*) AS n FROM labels l JOIN images i ON i.id = l.image_id JOIN annotators a ON a.id = l.annotator_id WHERE i.relative_path = ? AND l.kind = 'gradable' AND l.value = 'no' AND a.name = 'scin-dermatologist-2'",
        notGradable.imagePaths[0]!,
      ),
    ).toBe(1);
    expect(
      count(
        "SELECT COUNT(*) AS n FROM labels l JOIN images i ON i.id = l.image_id JOIN annotators a ON a.id = l.annotator_id WHERE i.relative_path = ? AND l.kind = 'gradable' AND l.value = 'yes' AND a.name = 'scin-dermatologist-3'",
        dataset.cases[4]!.imagePaths[0]!,
      ),
    ).toBe(1);
    // A SCIN condition missing from the starter taxonomy becomes a new entry rather than being lost.
    expect(count("SELECT COUNT(*) AS n FROM taxonomy_entries WHERE kind = 'condition' AND display_name = ?", "Kaposi's sarcoma of skin")).toBe(1);
  });

  it('reports every faulty row by file, line and column, and still imports the good rows', () => {
    const at = (file: string, line: number) => first.issues.filter((issue) => issue.file === file && issue.line === line);
    const { faults } = dataset;
    expect(at(faults.missingImage.file, faults.missingImage.line)).toEqual([
      expect.objectContaining({ severity: 'error', column: 'image_2_path', value: faults.missingImage.path, message: expect.stringMatching(/not found/) }),
    ]);
    expect(at(faults.duplicateCase.file, faults.duplicateCase.line)).toEqual([
      expect.objectContaining({
        severity: 'error',
        column: 'case_id',
        value: faults.duplicateCase.caseId,
        message: expect.stringMatching(/already appears on line 2/),
      }),
    ]);
    expect(at(faults.wrongFieldCount.file, faults.wrongFieldCount.line)).toEqual([expect.objectContaining({ message: expect.stringMatching(/has 3 fields/) })]);
    expect(at(faults.badAgeGroup.file, faults.badAgeGroup.line)).toEqual([expect.objectContaining({ column: 'age_group', value: 'AGE_TWENTYISH' })]);
    expect(at(faults.unmatchedLabels.file, faults.unmatchedLabels.line)).toEqual([
      expect.objectContaining({ column: 'case_id', value: faults.unmatchedLabels.caseId, message: expect.stringMatching(/matches no case/) }),
    ]);
    expect(at(faults.badConfidence.file, faults.badConfidence.line)).toEqual([
      expect.objectContaining({ column: 'dermatologist_skin_condition_confidence', value: '[4, 2', message: expect.stringMatching(/Not a Python literal/) }),
    ]);
    expect(at(faults.mismatchedLists.file, faults.mismatchedLists.line)).toEqual([
      expect.objectContaining({ column: 'dermatologist_skin_condition_confidence', message: expect.stringMatching(/1 confidences for 3 condition names/) }),
    ]);
    expect(first.issues.filter((issue) => issue.severity === 'error')).toHaveLength(7);
    expect(first.status).toBe('partial');
    // The duplicated row did not overwrite the first one's age group.
    const firstImage = dataset.cases[0]!.imagePaths[0]!;
    expect(
      (
        library.db
          .prepare("SELECT m.value AS v FROM image_metadata m JOIN images i ON i.id = m.image_id WHERE i.relative_path = ? AND m.key = 'age_group'")
          .get(firstImage) as { v: string }
      ).v,
    ).toBe(dataset.cases[0]!.ageGroup);
    // Conditions of the case with unreadable confidences still import, without confidences.
    const badConfidence = dataset.cases[2]!;
    const conditions = library.db
      .prepare(
        "SELECT l.confidence AS c FROM labels l JOIN images i ON i.id = l.image_id WHERE i.relative_path = ? AND l.kind = 'condition' AND l.superseded_at IS NULL",
      )
      .all(badConfidence.imagePaths[0]!) as { c: number | null }[];
    expect(conditions.length).toBe(2);
    expect(conditions.every((row) => row.c === null)).toBe(true);
  });

  it('adds nothing when run again', () => {
    expect(tableCounts()).toEqual(countsAfterFirst);
    expect(second.images.imported).toBe(0);
    expect(second.images.alreadyInLibrary).toBe(dataset.imagesOnDisk.length);
    expect(second.cases.created).toBe(0);
    expect(second.metadata.set).toBe(0);
    expect(second.labels.changedSlots).toBe(0);
    expect(second.labels.unchangedSlots).toBe(first.labels.changedSlots);
    expect(second.issues.filter((issue) => issue.severity === 'error')).toHaveLength(7);
  });
});

describe('SCIN import, faults across runs', () => {
  it('keeps an image file that two cases list in the first case only, with a warning', async () => {
    const own = createTestLibrary('dermws-scin-dup-');
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-scin-dup-data-'));
    try {
      const data = await writeScinDataset(root, { cases: 5, duplicateImageAcrossCases: true });
      // And one listed file that is not an image at all.
      const broken = data.cases[1]!.imagePaths[0]!;
      fs.writeFileSync(path.join(root, broken), 'not a PNG, just text\n');
      const report = await datasetServices(own).datasets.importScin(root);
      expect(report.images.failed).toBe(1);
      expect(report.issues.filter((issue) => issue.value === broken)).toEqual([
        expect.objectContaining({
          severity: 'error',
          file: 'scin_cases.csv',
          line: 3,
          column: 'image_1_path',
          message: expect.stringMatching(/could not be imported/),
        }),
      ]);
      const firstCase = data.cases[0]!;
      const lastCase = data.cases[data.cases.length - 1]!;
      const caseOf = (relative: string) =>
        (
          own.db
            .prepare(
              'SELECT c.case_key AS k FROM images i JOIN cases c ON c.id = i.case_id WHERE i.file_sha256 = (SELECT file_sha256 FROM images WHERE relative_path = ?)',
            )
            .get(relative) as { k: string }
        ).k;
      expect(caseOf(firstCase.imagePaths[0]!)).toBe(firstCase.caseId);
      expect(report.issues.filter((issue) => issue.severity === 'warning' && /same file as one already in case/.test(issue.message))).toEqual([
        expect.objectContaining({ file: 'scin_cases.csv', line: data.faults.missingImage.line, value: lastCase.caseId }),
      ]);
      const lastCaseImages = own.db
        .prepare('SELECT COUNT(*) AS n FROM images i JOIN cases c ON c.id = i.case_id WHERE c.case_key = ?')
        .get(lastCase.caseId) as { n: number };
      expect(lastCaseImages.n).toBe(1);
      // The first case's image carries the first case's labels only.
      const annotatorsOfShot = own.db
        .prepare(
          "SELECT COUNT(*) AS n FROM image_metadata m JOIN images i ON i.id = m.image_id WHERE i.case_id = (SELECT id FROM cases WHERE case_key = ?) AND m.key = 'age_group' AND m.value <> ?",
        )
        .get(firstCase.caseId, firstCase.ageGroup) as { n: number };
      expect(annotatorsOfShot.n).toBe(0);
    } finally {
      own.cleanup();
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('resumes a cancelled import: the second run finishes it, with the same result as one uninterrupted run', async () => {
    const own = createTestLibrary('dermws-scin-cancel-');
    try {
      const services = datasetServices(own);
      const controller = new AbortController();
      const cancelled = await services.datasets.importScin(folder, {
        signal: controller.signal,
        onProgress: (progress) => {
          if (progress.job === 'dataset-import' && progress.done >= 1) controller.abort();
        },
      });
      expect(cancelled.status).toBe('cancelled');
      const casesAfterCancel = (own.db.prepare('SELECT COUNT(*) AS n FROM cases').get() as { n: number }).n;
      expect(casesAfterCancel).toBeGreaterThan(0);
      expect(casesAfterCancel).toBeLessThan(dataset.cases.length + 1);
      expect((own.db.prepare('SELECT COUNT(*) AS n FROM labels').get() as { n: number }).n).toBe(0);

      const resumed = await services.datasets.importScin(folder);
      expect(resumed.status).toBe('partial');
      const counts = {
        images: (own.db.prepare('SELECT COUNT(*) AS n FROM images').get() as { n: number }).n,
        cases: (own.db.prepare('SELECT COUNT(*) AS n FROM cases').get() as { n: number }).n,
        metadata: (own.db.prepare('SELECT COUNT(*) AS n FROM image_metadata').get() as { n: number }).n,
        labels: (own.db.prepare('SELECT COUNT(*) AS n FROM labels WHERE superseded_at IS NULL').get() as { n: number }).n,
      };
      expect(counts).toEqual({
        images: countsAfterFirst.images,
        cases: countsAfterFirst.cases,
        metadata: countsAfterFirst.metadata,
        labels: count('SELECT COUNT(*) AS n FROM labels WHERE superseded_at IS NULL'),
      });
    } finally {
      own.cleanup();
    }
  });
});
