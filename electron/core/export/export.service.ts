import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DermError } from '../../common/errors.js';
import { CsvFileWriter, type CsvValue } from '../csv/csv.js';
import type { EmbeddingMatrix, EmbeddingModelRecord } from '../embeddings/embeddings.repository.js';
import { writeNpy } from '../embeddings/npy-format.js';
import { writeNpz } from '../embeddings/npz.js';
import type { ImageFilter, ImageRecord } from '../images/images.repository.js';
import { isCancellation, ProgressReporter, throwIfCancelled, type JobControl, type JobStatus } from '../jobs/job.js';
import { labelKinds, type LabelKind, type LabelOrigin } from '../labels/label-kinds.js';
import { parseSearchFilter, searchFilterSql } from '../search/search-filter.js';
import { ExportFolder } from './export-paths.js';
import type { ExportRepository, FlagRow } from './export.repository.js';
import { exportFormatFor, writeImageWithoutMetadata } from './image-copy.js';

export const exportFormats = ['csv', 'npz', 'npy'] as const;
export type ExportFormat = (typeof exportFormats)[number];

/**
 * Which images to export. Every given condition must hold; deleted images are never exported.
 * The image conditions are the images repository's filter; `labels` adds "has a current label of
 * this kind and value" (any annotator or origin), each pair required; `where` takes clauses of the
 * similar-case search's `--where` grammar (electron/core/search/search-filter.ts), e.g.
 * `flag!=blurry`, `label.condition=eczema`, `meta.body_parts~ARM`, `skin_type=IV`, `dataset=scin`.
 */
export interface ExportFilter {
  where?: string[];
  batchId?: number;
  caseKey?: string;
  flags?: string[];
  withoutFlags?: string[];
  metadata?: Record<string, string>;
  labels?: Array<{ kind: string; value: string }>;
  ids?: number[];
  /** Fitzpatrick type I..VI by label or self-report, as the library filter reads it. */
  fitzpatrick?: string;
  /** Images in this labelling session's queue. */
  sessionId?: number;
}

export interface ExportOptions extends JobControl {
  folder: string;
  /** Default ['csv']. */
  formats?: ExportFormat[];
  /** Model whose embeddings npz/npy hold; optional when the library has embeddings of one model only. */
  modelId?: string;
  /** Also write re-encoded image copies without EXIF/GPS under images/. */
  images?: boolean;
  /** Replace files of an earlier export in the folder (default: refuse and write nothing). */
  overwrite?: boolean;
  filter?: ExportFilter;
}

export interface ExportedFile {
  /** Path inside the export folder, with '/' separators. */
  name: string;
  bytes: number;
  sha256: string;
  /** Data rows (CSV) or arrays (npz/npy). */
  entries: number;
}

export interface ExportReport {
  status: JobStatus;
  folder: string;
  files: ExportedFile[];
  counts: { images: number; cases: number; labels: number; embeddings: number; imageFiles: number };
  model: { id: string; sha256: string; dim: number } | null;
  /** Images exported with a caveat or left out of a file (no embedding, unreadable image file, renamed key). */
  issues: Array<{ imageId: number | null; message: string }>;
}

/** What the export reads through other features' services. */
export interface ExportDependencies {
  repository: ExportRepository;
  images: {
    ids(filter: ImageFilter): number[];
    getMany(ids: number[]): ImageRecord[];
    imageFile(id: number): string;
  };
  labels: {
    labelsForImages(
      imageIds: number[] | undefined,
    ): Map<number, Array<{ kind: LabelKind; value: string; confidence: number | null; annotator: string | null; origin: LabelOrigin; sessionId: number | null; createdAt: string }>>;
  };
  embeddings: {
    models(): Array<EmbeddingModelRecord & { count: number }>;
    model(id: string): EmbeddingModelRecord | undefined;
    matrix(modelId: string, imageIds?: number[]): EmbeddingMatrix;
  };
  taxonomy: { list(): Array<{ kind: string; code: string; displayName: string; parentCode: string | null }> };
  /** Current quality-flag thresholds (the values the flags in images.csv were computed with). */
  qualityThresholds: () => unknown;
  appVersion: string;
  schemaVersion: number;
  now?: () => Date;
}

export const manifestFormat = 'derm-workstation-export';
export const manifestFormatVersion = 1;
const pageSize = 5000;

/**
 * Writes a reproducible export of (a filtered part of) the library into one folder: images.csv (one
 * row per image), labels_long.csv (one row per current label), embeddings as .npz keyed by image path
 * and/or .npy + paths CSV, optional image copies without metadata, and manifest.json describing how it
 * was made. Every path is checked to stay inside the folder; existing files are never replaced
 * without `overwrite`.
 */
export class ExportService {
  private readonly now: () => Date;

  constructor(private readonly dependencies: ExportDependencies) {
    this.now = dependencies.now ?? (() => new Date());
  }

  async export(options: ExportOptions): Promise<ExportReport> {
    const formats = validateFormats(options.formats ?? ['csv']);
    const { repository, images } = this.dependencies;
    const filter = options.filter ?? {};
    const imageIds = this.selectImages(filter);
    const model = formats.includes('npz') || formats.includes('npy') ? this.chooseModel(options.modelId) : null;
    const folder = ExportFolder.open(options.folder);
    const createdAt = this.now().toISOString();

    const records: ImageRecord[] = [];
    for (let start = 0; start < imageIds.length; start += pageSize) records.push(...images.getMany(imageIds.slice(start, start + pageSize)));
    const issues: ExportReport['issues'] = [];
    const keys = exportKeys(records, issues);

    const modelFileStem = model ? `embeddings_${model.id.replace(/[^A-Za-z0-9._-]/g, '_')}` : '';
    const planned: string[] = [];
    if (formats.includes('csv')) planned.push('images.csv', 'labels_long.csv');
    if (formats.includes('npz')) planned.push(`${modelFileStem}.npz`);
    if (formats.includes('npy')) planned.push(`${modelFileStem}.npy`, `${modelFileStem}_paths.csv`);
    const imageNames = new Map<number, { name: string; format: ReturnType<typeof exportFormatFor>['format'] }>();
    if (options.images) {
      for (const record of records) {
        const { format, extension } = exportFormatFor(record.format);
        const key = keys.get(record.id)!;
        const keep = extensionFits(path.posix.extname(key).toLowerCase(), format);
        const name = `images/${keep ? key : `${key.slice(0, key.length - path.posix.extname(key).length)}${extension}`}`;
        imageNames.set(record.id, { name, format });
        planned.push(name);
      }
    }
    planned.push('manifest.json');
    // Every name is checked (inside the folder, no symlinks) and conflicts found before anything is written.
    const existing = planned.filter((name) => folder.exists(name));
    if (existing.length > 0 && !options.overwrite) {
      throw new DermError(
        'conflict',
        `The export folder ${folder.root} already holds ${existing.length} of the files this export writes (${existing.slice(0, 5).join(', ')}${existing.length > 5 ? ', …' : ''}); nothing was written. Choose an empty folder or pass --overwrite.`,
        { folder: folder.root, existing: existing.slice(0, 100) },
      );
    }

    const report: ExportReport = {
      status: 'success',
      folder: folder.root,
      files: [],
      counts: { images: records.length, cases: new Set(records.map((record) => record.caseId).filter((id) => id !== null)).size, labels: 0, embeddings: 0, imageFiles: 0 },
      model: model ? { id: model.id, sha256: model.sha256, dim: model.dim } : null,
      issues,
    };
    const progress = new ProgressReporter('export', planned.length, options.onProgress);
    let done = 0;
    const step = (name: string) => progress.report(++done, name);

    try {
      if (formats.includes('csv')) {
        throwIfCancelled(options.signal);
        const labels = this.dependencies.labels.labelsForImages(imageIds);
        const metadata = repository.metadataFor(imageIds);
        const flags = repository.flagsFor(imageIds);
        report.files.push(this.writeImagesCsv(folder, records, keys, metadata, flags, labels));
        step('images.csv');
        const long = this.writeLabelsLong(folder, records, labels);
        report.counts.labels = long.entries;
        report.files.push(long);
        step('labels_long.csv');
      }
      if (model) {
        throwIfCancelled(options.signal);
        const matrix = this.dependencies.embeddings.matrix(model.id, imageIds);
        report.counts.embeddings = matrix.imageIds.length;
        const missing = imageIds.length - matrix.imageIds.length;
        if (missing > 0) issues.push({ imageId: null, message: `${missing} of ${imageIds.length} images have no embedding for model "${model.id}" and are not in the embedding files.` });
        if (formats.includes('npz')) {
          report.files.push(this.writeEmbeddingsNpz(folder, `${modelFileStem}.npz`, matrix, keys));
          step(`${modelFileStem}.npz`);
        }
        if (formats.includes('npy')) {
          report.files.push(...this.writeEmbeddingsNpy(folder, modelFileStem, matrix, keys));
          step(`${modelFileStem}.npy`);
        }
      }
      for (const record of records) {
        const target = imageNames.get(record.id);
        if (!target) continue;
        throwIfCancelled(options.signal);
        try {
          const source = images.imageFile(record.id);
          await folder.writeFileAsync(target.name, async (temporary) => {
            await writeImageWithoutMetadata(source, temporary, target.format);
          });
          report.files.push(describeFile(folder, target.name, 1));
          report.counts.imageFiles++;
        } catch (error) {
          if (isCancellation(error)) throw error;
          issues.push({ imageId: record.id, message: `The image file could not be exported: ${(error as Error).message}` });
        }
        step(target.name);
      }
      throwIfCancelled(options.signal);
    } catch (error) {
      if (!isCancellation(error)) throw error;
      report.status = 'cancelled';
      return report;
    }

    const failedImages = issues.some((issue) => issue.message.startsWith('The image file could not be exported'));
    report.status = failedImages ? 'partial' : 'success';
    const manifest = {
      format: manifestFormat,
      formatVersion: manifestFormatVersion,
      app: { name: 'derm-workstation', version: this.dependencies.appVersion },
      createdAt,
      library: { schemaVersion: this.dependencies.schemaVersion },
      request: { formats, modelId: model?.id ?? null, images: Boolean(options.images), filter },
      model: model ? { id: model.id, displayName: model.displayName, dim: model.dim, sha256: model.sha256, source: model.source, preprocessing: model.preprocessing } : null,
      thresholds: { quality: this.dependencies.qualityThresholds() },
      settings: repository.settings(),
      taxonomy: this.dependencies.taxonomy.list().map((entry) => ({ kind: entry.kind, code: entry.code, displayName: entry.displayName, parentCode: entry.parentCode })),
      counts: report.counts,
      files: report.files,
      issues,
      layout: {
        'images.csv': 'one row per image: ids, paths, case, flags, metadata columns (meta.<key>), current labels per kind (label.<kind>, label.<kind>.from = consensus|annotators)',
        'labels_long.csv': 'one row per current label: image, kind, value, confidence, annotator, origin, session, time',
        '<embeddings>.npz': 'numpy npz: key = export_key (image path relative to its import folder), value = float32 array of shape (dim,)',
        '<embeddings>.npy': 'numpy float32 matrix (images, dim); row i belongs to row i of <embeddings>_paths.csv (columns row, image_id, path = export_key)',
        'images/': 'image copies re-encoded without EXIF/GPS/XMP/IPTC, at images/<export_key>',
      },
    };
    const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
    folder.writeFile('manifest.json', (temporary) => fs.writeFileSync(temporary, manifestText));
    step('manifest.json');
    return report;
  }

  private selectImages(filter: ExportFilter): number[] {
    const imageFilter: ImageFilter = {};
    if (filter.batchId !== undefined) imageFilter.batchId = filter.batchId;
    if (filter.caseKey !== undefined) imageFilter.caseKey = filter.caseKey;
    if (filter.flags?.length) imageFilter.flags = filter.flags;
    if (filter.withoutFlags?.length) imageFilter.withoutFlags = filter.withoutFlags;
    if (filter.metadata && Object.keys(filter.metadata).length > 0) imageFilter.metadata = filter.metadata;
    if (filter.ids) imageFilter.ids = filter.ids;
    if (filter.fitzpatrick !== undefined) imageFilter.fitzpatrick = filter.fitzpatrick;
    if (filter.sessionId !== undefined) imageFilter.sessionId = filter.sessionId;
    let ids = this.dependencies.images.ids(imageFilter);
    if (filter.where?.length) {
      const passing = new Set(this.dependencies.repository.imageIdsWhere(searchFilterSql(parseSearchFilter(filter.where))));
      ids = ids.filter((id) => passing.has(id));
    }
    for (const { kind, value } of filter.labels ?? []) {
      if (!(labelKinds as readonly string[]).includes(kind)) {
        throw new DermError('invalid-input', `filter label kind "${kind}" is not a label kind; expected one of ${labelKinds.join(', ')}.`, { field: 'filter.labels', value: kind });
      }
      const having = this.dependencies.repository.imagesWithLabel(kind, value);
      ids = ids.filter((id) => having.has(id));
    }
    return ids;
  }

  private chooseModel(modelId: string | undefined): EmbeddingModelRecord {
    const { embeddings } = this.dependencies;
    if (modelId !== undefined) {
      const model = embeddings.model(modelId);
      if (!model) {
        const known = embeddings.models().map((entry) => entry.id);
        throw new DermError('not-found', `The library has no model "${modelId}"${known.length ? ` (models: ${known.join(', ')})` : ''}.`, { field: 'model', value: modelId });
      }
      return model;
    }
    const withEmbeddings = embeddings.models().filter((entry) => entry.count > 0);
    if (withEmbeddings.length === 1) return withEmbeddings[0]!;
    if (withEmbeddings.length === 0) throw new DermError('not-found', 'The library has no embeddings to export; run `dermws embed` or import embeddings first.', { field: 'model' });
    throw new DermError('invalid-input', `Several models have embeddings (${withEmbeddings.map((entry) => entry.id).join(', ')}); choose one with --model.`, { field: 'model' });
  }

  private writeImagesCsv(
    folder: ExportFolder,
    records: ImageRecord[],
    keys: Map<number, string>,
    metadata: Map<number, Record<string, string>>,
    flags: Map<number, FlagRow[]>,
    labels: ReturnType<ExportDependencies['labels']['labelsForImages']>,
  ): ExportedFile {
    const metadataKeys = [...new Set([...metadata.values()].flatMap((entry) => Object.keys(entry)))].sort();
    const kinds = labelKinds.filter((kind) => [...labels.values()].some((list) => list.some((label) => label.kind === kind)));
    const header = [
      'image_id',
      'export_key',
      'relative_path',
      'original_path',
      'case_key',
      'batch_id',
      'width',
      'height',
      'format',
      'file_sha256',
      'imported_at',
      'flags.auto',
      'flags.manual',
      ...metadataKeys.map((key) => `meta.${key}`),
      ...kinds.flatMap((kind) => [`label.${kind}`, `label.${kind}.from`]),
    ];
    let rows = 0;
    folder.writeFile('images.csv', (temporary) => {
      const writer = new CsvFileWriter(temporary);
      try {
        writer.write(header);
        for (const record of records) {
          const imageFlags = flags.get(record.id) ?? [];
          const imageMetadata = metadata.get(record.id) ?? {};
          const imageLabels = labels.get(record.id) ?? [];
          const row: CsvValue[] = [
            record.id,
            keys.get(record.id)!,
            record.relativePath,
            record.originalPath,
            record.caseKey,
            record.batchId,
            record.width,
            record.height,
            record.format,
            record.fileSha256,
            record.importedAt,
            imageFlags.filter((flag) => flag.source === 'auto').map((flag) => flag.flag).join(';'),
            imageFlags.filter((flag) => flag.source === 'manual').map((flag) => flag.flag).join(';'),
            ...metadataKeys.map((key) => imageMetadata[key] ?? ''),
          ];
          for (const kind of kinds) {
            const summary = summariseKind(imageLabels.filter((label) => label.kind === kind));
            row.push(summary.values, summary.from);
          }
          writer.write(row);
          rows++;
        }
        writer.close();
      } catch (error) {
        writer.abandon();
        throw error;
      }
    });
    return describeFile(folder, 'images.csv', rows);
  }

  private writeLabelsLong(folder: ExportFolder, records: ImageRecord[], labels: ReturnType<ExportDependencies['labels']['labelsForImages']>): ExportedFile {
    let rows = 0;
    folder.writeFile('labels_long.csv', (temporary) => {
      const writer = new CsvFileWriter(temporary);
      try {
        writer.write(['image_id', 'relative_path', 'case_key', 'kind', 'value', 'confidence', 'annotator', 'origin', 'consensus', 'session_id', 'created_at']);
        for (const record of records) {
          const imageLabels = [...(labels.get(record.id) ?? [])].sort(
            (a, b) => labelKinds.indexOf(a.kind) - labelKinds.indexOf(b.kind) || (a.annotator ?? '').localeCompare(b.annotator ?? '') || a.value.localeCompare(b.value),
          );
          for (const label of imageLabels) {
            writer.write([
              record.id,
              record.relativePath,
              record.caseKey,
              label.kind,
              label.value,
              label.confidence,
              label.annotator,
              label.origin,
              label.origin === 'consensus' ? 'yes' : 'no',
              label.sessionId,
              label.createdAt,
            ]);
            rows++;
          }
        }
        writer.close();
      } catch (error) {
        writer.abandon();
        throw error;
      }
    });
    return describeFile(folder, 'labels_long.csv', rows);
  }

  private writeEmbeddingsNpz(folder: ExportFolder, name: string, matrix: EmbeddingMatrix, keys: Map<number, string>): ExportedFile {
    const { dim, data, imageIds } = matrix;
    folder.writeFile(name, (temporary) => {
      writeNpz(
        temporary,
        (function* () {
          for (let row = 0; row < imageIds.length; row++) yield [keys.get(imageIds[row]!)!, data.subarray(row * dim, (row + 1) * dim), [dim]] as [string, Float32Array, number[]];
        })(),
      );
    });
    return describeFile(folder, name, imageIds.length);
  }

  private writeEmbeddingsNpy(folder: ExportFolder, stem: string, matrix: EmbeddingMatrix, keys: Map<number, string>): ExportedFile[] {
    const { dim, data, imageIds } = matrix;
    folder.writeFile(`${stem}.npy`, (temporary) => writeNpy(temporary, data, [imageIds.length, dim]));
    folder.writeFile(`${stem}_paths.csv`, (temporary) => {
      const writer = new CsvFileWriter(temporary);
      try {
        // `path` is the column name `dermws embeddings import --paths` looks for, so an export imports back as is.
        writer.write(['row', 'image_id', 'path']);
        imageIds.forEach((imageId, row) => writer.write([row, imageId, keys.get(imageId)!]));
        writer.close();
      } catch (error) {
        writer.abandon();
        throw error;
      }
    });
    return [describeFile(folder, `${stem}.npy`, imageIds.length), describeFile(folder, `${stem}_paths.csv`, imageIds.length)];
  }
}

function validateFormats(formats: readonly string[]): ExportFormat[] {
  if (formats.length === 0) throw new DermError('invalid-input', `formats is empty; choose any of ${exportFormats.join(', ')}.`, { field: 'formats' });
  for (const format of formats) {
    if (!(exportFormats as readonly string[]).includes(format)) {
      throw new DermError('invalid-input', `format "${format}" is not an export format; expected ${exportFormats.join(', ')}.`, { field: 'formats', value: format });
    }
  }
  return [...new Set(formats)] as ExportFormat[];
}

/**
 * The name each image has in the export (npz key, images/ path, export_key column): its path relative
 * to its import folder, as in Google's SCIN npz. A path that is missing, absolute, climbs with "..",
 * or repeats another image's is replaced by image-<id>/<file name>, and the change is reported.
 */
export function exportKeys(records: ImageRecord[], issues: ExportReport['issues']): Map<number, string> {
  const keys = new Map<number, string>();
  const used = new Set<string>();
  for (const record of records) {
    const relative = record.relativePath?.replaceAll('\\', '/') ?? '';
    const parts = relative.split('/');
    const safe =
      relative !== '' && !relative.startsWith('/') && !/^[A-Za-z]:/.test(relative) && !relative.includes('\0') && parts.every((part) => part !== '' && part !== '.' && part !== '..');
    let key = safe ? relative : '';
    if (key !== '' && used.has(key.toLowerCase())) key = '';
    if (key === '') {
      const fileName = path.basename((record.relativePath ?? record.originalPath).replaceAll('\\', '/')).replace(/[^\p{L}\p{N}._ -]/gu, '_') || 'image';
      key = `image-${record.id}/${fileName === '..' || fileName === '.' ? 'image' : fileName}`;
      issues.push({
        imageId: record.id,
        message: safe ? `Its path ${relative} is shared with another exported image; exported as ${key}.` : `Its path ${JSON.stringify(record.relativePath)} is not a safe relative path; exported as ${key}.`,
      });
    }
    used.add(key.toLowerCase());
    keys.set(record.id, key);
  }
  return keys;
}

function extensionFits(extension: string, format: string): boolean {
  if (format === 'jpeg') return extension === '.jpg' || extension === '.jpeg';
  if (format === 'tiff') return extension === '.tif' || extension === '.tiff';
  return extension === `.${format}`;
}

/** Consensus values when an adjudicator set them, else every annotator's distinct values, most given first. */
function summariseKind(labels: Array<{ value: string; origin: LabelOrigin }>): { values: string; from: string } {
  if (labels.length === 0) return { values: '', from: '' };
  const consensus = labels.filter((label) => label.origin === 'consensus');
  if (consensus.length > 0) return { values: [...new Set(consensus.map((label) => label.value))].sort().join(';'), from: 'consensus' };
  const counts = new Map<string, number>();
  for (const label of labels) counts.set(label.value, (counts.get(label.value) ?? 0) + 1);
  const ordered = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([value]) => value);
  return { values: ordered.join(';'), from: 'annotators' };
}

/** Size and sha256 of a written file, read in chunks (embedding files can be hundreds of megabytes). */
function describeFile(folder: ExportFolder, name: string, entries: number): ExportedFile {
  const file = folder.resolve(name);
  const hash = crypto.createHash('sha256');
  const buffer = Buffer.alloc(1 << 20);
  const fd = fs.openSync(file, 'r');
  let bytes = 0;
  try {
    for (;;) {
      const read = fs.readSync(fd, buffer, 0, buffer.length, null);
      if (read === 0) break;
      hash.update(buffer.subarray(0, read));
      bytes += read;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { name, bytes, sha256: hash.digest('hex'), entries };
}
