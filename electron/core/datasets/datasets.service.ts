import fs from 'node:fs';
import path from 'node:path';
import { DermError } from '../../common/errors.js';
import { readCsvFile } from '../csv/csv.js';
import { isCancellation, ProgressReporter, throwIfCancelled, type JobControl, type JobStatus, type ProgressListener } from '../jobs/job.js';
import { emptyReport, type DatasetImportReport, type IssueList } from './dataset-report.js';
import type { DatasetsRepository, LibraryImageRef } from './datasets.repository.js';
import { isicAnnotator, parseColumnMapping, parseIsicTable, parseMappedTable, type ColumnMapping, type MetadataParseResult } from './metadata-csv-format.js';
import { parseScinTables, scinFiles, type ScinCaseRecord, type ScinLabel } from './scin-format.js';

/** What the dataset import needs from the image import (ImportService.importPaths). */
export interface ImageFileImporter {
  importPaths(
    paths: string[],
    options: { root?: string; copyIntoLibrary?: boolean; signal?: AbortSignal; onProgress?: ProgressListener },
  ): Promise<{
    batchId: number;
    status: JobStatus;
    outcomes: Array<{ path: string; outcome: 'imported' | 'duplicate' | 'failed' | 'skipped'; reason?: string; imageId?: number }>;
  }>;
}

/** What the dataset import needs from the labels (LabelsService.importLabels). */
export interface LabelImporter {
  importLabels(
    rows: Array<{ imageId: number; kind: string; value: string; confidence?: number | null }>,
    options: { origin?: 'imported'; annotator: string },
  ): { changedSlots: number; unchangedSlots: number; labels: number; problems: Array<{ index: number; message: string; value: string }> };
}

export interface ScinImportOptions extends JobControl {
  /** Copy the image files into the library's images/ folder (default: reference them where they are). */
  copyIntoLibrary?: boolean;
}

export interface CsvImportOptions extends JobControl {
  /** Annotator the labels are recorded under (default "csv-import"). */
  annotator?: string;
}

/** A label read from a dataset's CSV (SCIN or a mapped CSV) with its cell, once its image is known. */
interface PendingLabel extends ScinLabel {
  imageId: number;
}

/**
 * Brings datasets into the library: SCIN (images, cases, metadata, dermatologist labels), ISIC-style
 * metadata and any CSV with a column mapping (metadata and labels for images already imported).
 * Every problem is reported by file, line and column; good rows import regardless; a re-run changes
 * nothing. Each case (SCIN) or chunk of rows is written in one transaction, so an interrupted import
 * is resumed by running it again.
 */
export class DatasetsService {
  constructor(
    private readonly repository: DatasetsRepository,
    private readonly importer: ImageFileImporter,
    private readonly labels: LabelImporter,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async importScin(root: string, options: ScinImportOptions = {}): Promise<DatasetImportReport> {
    const datasetRoot = path.resolve(root);
    const casesFile = path.join(datasetRoot, 'dataset', scinFiles.cases);
    const labelsFile = path.join(datasetRoot, 'dataset', scinFiles.labels);
    if (!fs.existsSync(datasetRoot) || !fs.statSync(datasetRoot).isDirectory()) {
      throw new DermError('not-found', `The SCIN folder ${datasetRoot} does not exist or is not a folder.`, { folder: datasetRoot });
    }
    for (const file of [casesFile, labelsFile]) {
      if (!fs.existsSync(file)) {
        throw new DermError(
          'not-found',
          `${file} is missing: a SCIN folder holds dataset/${scinFiles.cases}, dataset/${scinFiles.labels} and dataset/images/.`,
          { file },
        );
      }
    }
    const parsed = parseScinTables(renameTable(readCsvFile(casesFile), scinFiles.cases), renameTable(readCsvFile(labelsFile), scinFiles.labels));
    const report = emptyReport('scin', [casesFile, labelsFile]);
    report.rows = parsed.rows;
    const issues = parsed.issues;

    // Files listed but not on disk are reported against their CSV cell, before any import starts.
    const present = new Set<string>();
    const pathOf = new Map<string, string>();
    const realRoot = fs.realpathSync(datasetRoot);
    for (const record of parsed.cases) {
      for (const image of record.images) {
        const absolute = path.resolve(datasetRoot, image.path);
        pathOf.set(image.path, absolute);
        let isFile: boolean;
        try {
          isFile = fs.statSync(absolute).isFile();
        } catch {
          isFile = false;
        }
        if (!isFile) {
          issues.error(scinFiles.cases, image.line, `image file not found at ${absolute}`, image.column, image.path);
          report.images.missing++;
          continue;
        }
        // A symbolic link (the file or a folder on the way) that leads outside the dataset folder is
        // refused like a path with "..": a downloaded dataset must not pull in files from elsewhere.
        const real = fs.realpathSync(absolute);
        const relative = path.relative(realRoot, real);
        if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
          issues.error(
            scinFiles.cases,
            image.line,
            `the image path leads outside the dataset folder through a symbolic link (to ${real}); like a path with "..", it was skipped`,
            image.column,
            image.path,
          );
          report.images.failed++;
          continue;
        }
        present.add(absolute);
      }
    }

    const outcomes = new Map<string, { outcome: string; reason?: string; imageId?: number }>();
    let status: JobStatus = 'success';
    if (present.size > 0) {
      const importOptions: Parameters<ImageFileImporter['importPaths']>[1] = { root: datasetRoot, copyIntoLibrary: options.copyIntoLibrary ?? false };
      if (options.signal) importOptions.signal = options.signal;
      if (options.onProgress) importOptions.onProgress = options.onProgress;
      const imported = await this.importer.importPaths([...present], importOptions);
      report.importBatchId = imported.batchId;
      for (const outcome of imported.outcomes) outcomes.set(path.resolve(outcome.path), outcome);
      if (imported.status === 'cancelled') status = 'cancelled';
      // Counted per file (a file two rows list counts once); issues are reported per CSV cell below.
      for (const file of present) {
        const outcome = outcomes.get(file);
        if (outcome?.outcome === 'imported') report.images.imported++;
        else if (outcome?.outcome === 'duplicate' && outcome.imageId !== undefined) report.images.alreadyInLibrary++;
        else if (outcome || status !== 'cancelled') report.images.failed++;
      }
    }

    const pending: PendingLabel[] = [];
    const progress = new ProgressReporter('dataset-import', parsed.cases.length, options.onProgress);
    try {
      for (const [index, record] of parsed.cases.entries()) {
        if (status === 'cancelled') break;
        throwIfCancelled(options.signal);
        this.applyScinCase(record, pathOf, present, outcomes, report, issues, pending);
        progress.report(index + 1, record.caseId);
      }
      if (status !== 'cancelled') this.storeLabels(pending, report, issues);
    } catch (error) {
      if (!isCancellation(error)) throw error;
      status = 'cancelled';
    }
    return finish(report, issues, status);
  }

  private applyScinCase(
    record: ScinCaseRecord,
    pathOf: Map<string, string>,
    present: Set<string>,
    outcomes: Map<string, { outcome: string; reason?: string; imageId?: number }>,
    report: DatasetImportReport,
    issues: IssueList,
    pending: PendingLabel[],
  ): void {
    const resolved: Array<{ imageId: number; shotType: string | null }> = [];
    for (const image of record.images) {
      const absolute = pathOf.get(image.path)!;
      const outcome = outcomes.get(absolute);
      if (!outcome) {
        // Files missing on disk were reported above; every file handed to the import must have an outcome.
        if (present.has(absolute)) issues.error(scinFiles.cases, image.line, 'the image import reported nothing for this file', image.column, image.path);
        continue;
      }
      if (outcome.outcome === 'failed' || outcome.outcome === 'skipped' || outcome.imageId === undefined) {
        issues.error(scinFiles.cases, image.line, `the image could not be imported: ${outcome.reason ?? outcome.outcome}`, image.column, image.path);
        continue;
      }
      resolved.push({ imageId: outcome.imageId, shotType: image.shotType });
    }
    if (resolved.length === 0) return;

    this.repository.transaction(() => {
      const at = this.now().toISOString();
      const caseRow = this.repository.ensureCase(record.caseId, 'scin', at);
      if (caseRow.created) report.cases.created++;
      else report.cases.existing++;
      let applied = false;
      for (const { imageId, shotType } of resolved) {
        const current = this.repository.image(imageId);
        if (current?.caseId !== null && current?.caseId !== undefined && current.caseId !== caseRow.id) {
          // SCIN lists some identical image files under two cases. An image belongs to one case, so that
          // a case-grouped split can never put the "same" photo on both sides.
          const otherKey = this.repository.caseKey(current.caseId);
          issues.warning(
            scinFiles.cases,
            record.line,
            `image ${imageId} (${current.relativePath ?? current.originalPath}) is the same file as one already in case ${otherKey ?? current.caseId}; it stays in that case and takes no metadata or labels from case ${record.caseId}`,
            'case_id',
            record.caseId,
          );
          continue;
        }
        this.repository.setImageCase(imageId, caseRow.id);
        const metadata = { ...record.metadata, ...(shotType ? { shot_type: shotType } : {}) };
        for (const [key, value] of Object.entries(metadata)) {
          if (this.repository.setMetadata(imageId, key, value, 'scin') === 'set') report.metadata.set++;
          else report.metadata.unchanged++;
        }
        for (const label of record.labels) pending.push({ imageId, ...label });
        report.images.matched++;
        applied = true;
      }
      if (applied) report.rowsApplied++;
    });
  }

  async importIsic(csvFile: string, options: JobControl = {}): Promise<DatasetImportReport> {
    const file = path.resolve(csvFile);
    const parsed = parseIsicTable(readCsvFile(file));
    return this.applyMetadataRows('isic', file, parsed, isicAnnotator, 'isic', options);
  }

  async importCsv(csvFile: string, mapping: ColumnMapping | string, options: CsvImportOptions = {}): Promise<DatasetImportReport> {
    const file = path.resolve(csvFile);
    const columnMapping = typeof mapping === 'string' ? parseColumnMapping(mapping) : mapping;
    const parsed = parseMappedTable(readCsvFile(file), columnMapping);
    return this.applyMetadataRows('csv', file, parsed, options.annotator ?? 'csv-import', 'csv', options);
  }

  private async applyMetadataRows(
    dataset: 'isic' | 'csv',
    file: string,
    parsed: MetadataParseResult,
    annotator: string,
    source: string,
    options: JobControl,
  ): Promise<DatasetImportReport> {
    const report = emptyReport(dataset, [file]);
    report.rows = parsed.rows;
    const issues = parsed.issues;
    const lookup = this.repository.imageLookup();
    const pending: PendingLabel[] = [];
    const progress = new ProgressReporter('dataset-import', parsed.records.length, options.onProgress);
    const chunkSize = 500;
    const lineOfImage = new Map<number, number>();
    let status: JobStatus = 'success';
    try {
      for (let start = 0; start < parsed.records.length; start += chunkSize) {
        throwIfCancelled(options.signal);
        const chunk = parsed.records.slice(start, start + chunkSize);
        this.repository.transaction(() => {
          const at = this.now().toISOString();
          for (const record of chunk) {
            const found = record.match.by === 'stem' ? lookup.byFileStem(record.match.value) : lookup.byPathOrName(record.match.value);
            if (found.ambiguous) {
              issues.error(
                file,
                record.line,
                `matches ${found.ambiguous.length} library images (${found.ambiguous.map(describeImage).join(', ')}); give the relative path to choose one`,
                record.match.column,
                record.match.value,
              );
              continue;
            }
            if (!found.image) {
              issues.error(file, record.line, 'matches no image in the library', record.match.column, record.match.value);
              continue;
            }
            const image = found.image;
            const earlier = lineOfImage.get(image.id);
            if (earlier !== undefined) {
              issues.error(
                file,
                record.line,
                `names the same library image (${describeImage(image)}) as line ${earlier}; this row was skipped`,
                record.match.column,
                record.match.value,
              );
              continue;
            }
            lineOfImage.set(image.id, record.line);
            report.images.matched++;
            report.rowsApplied++;
            if (record.caseKey !== null) {
              const caseRow = this.repository.ensureCase(record.caseKey, source, at);
              if (caseRow.created) report.cases.created++;
              else report.cases.existing++;
              const current = this.repository.image(image.id);
              if (current?.caseId !== null && current?.caseId !== undefined && current.caseId !== caseRow.id) {
                issues.warning(
                  file,
                  record.line,
                  `image ${image.id} already belongs to case ${this.repository.caseKey(current.caseId) ?? current.caseId}; it was left there`,
                  record.caseColumn ?? undefined,
                  record.caseKey,
                );
              } else {
                this.repository.setImageCase(image.id, caseRow.id);
              }
            }
            for (const [key, entry] of Object.entries(record.metadata)) {
              if (this.repository.setMetadata(image.id, key, entry.value, source) === 'set') report.metadata.set++;
              else report.metadata.unchanged++;
            }
            for (const label of record.labels) pending.push({ imageId: image.id, ...label, annotator, file, line: record.line });
          }
        });
        progress.report(Math.min(start + chunkSize, parsed.records.length));
      }
      this.storeLabels(pending, report, issues);
    } catch (error) {
      if (!isCancellation(error)) throw error;
      status = 'cancelled';
    }
    return finish(report, issues, status);
  }

  /** One importLabels call per annotator; its per-row problems are reported at the row's CSV cell. */
  private storeLabels(pending: PendingLabel[], report: DatasetImportReport, issues: IssueList): void {
    const byAnnotator = new Map<string, PendingLabel[]>();
    for (const label of pending) {
      const list = byAnnotator.get(label.annotator);
      if (list) list.push(label);
      else byAnnotator.set(label.annotator, [label]);
    }
    for (const [annotator, rows] of byAnnotator) {
      const result = this.labels.importLabels(
        rows.map((row) => ({ imageId: row.imageId, kind: row.kind, value: row.value, confidence: row.confidence })),
        { origin: 'imported', annotator },
      );
      report.labels.changedSlots += result.changedSlots;
      report.labels.unchangedSlots += result.unchangedSlots;
      report.labels.values += result.labels;
      const reported = new Set<string>();
      for (const problem of result.problems) {
        const row = rows[problem.index];
        if (!row) continue;
        // A case's labels go to each of its images; say it once per cell.
        const key = `${row.file}\u0000${row.line}\u0000${row.column}\u0000${problem.message}`;
        if (reported.has(key)) continue;
        reported.add(key);
        issues.error(row.file, row.line, `label not stored: ${problem.message}`, row.column, row.value);
      }
    }
  }
}

function renameTable<T extends { file: string }>(table: T, name: string): T {
  return { ...table, file: name };
}

function describeImage(image: LibraryImageRef): string {
  return `${image.id} ${image.relativePath ?? image.originalPath}`;
}

function finish(report: DatasetImportReport, issues: IssueList, status: JobStatus): DatasetImportReport {
  report.issues = issues.issues.sort((a, b) => a.file.localeCompare(b.file) || (a.line ?? 0) - (b.line ?? 0));
  report.status = status === 'cancelled' ? 'cancelled' : report.issues.some((issue) => issue.severity === 'error') ? 'partial' : 'success';
  return report;
}
