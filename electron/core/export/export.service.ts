import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import type { exportReportSchema } from '../../common/contract.js';
import { DermError } from '../../common/errors.js';
import { CsvFileWriter, type CsvValue } from '../csv/csv.js';
import type { EmbeddingMatrix, EmbeddingModelRecord } from '../embeddings/embeddings.repository.js';
import { writeNpy } from '../embeddings/npy-format.js';
import { writeNpz } from '../embeddings/npz.js';
import type { ImageFilter, ImageRecord } from '../images/images.repository.js';
import { isCancellation, ProgressReporter, throwIfCancelled, type JobControl } from '../jobs/job.js';
import { labelKinds, type LabelKind, type LabelOrigin } from '../labels/label-kinds.js';
import { parseSearchFilter, searchFilterSql } from '../search/search-filter.js';
import { ExportFolder } from './export-paths.js';
import type { ExportRepository, FlagRow } from './export.repository.js';
import { exportFormatFor, writeImageWithoutMetadata } from './image-copy.js';

import { exportFormats, type ExportFormat } from './export-formats.js';

export { exportFormats, type ExportFormat };

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
  /**
   * Export for sharing: pseudonymous keys (keyed HMAC with the library's secret) instead of file
   * names, case keys and annotator names; no original or relative paths, file hashes, import times,
   * free-text notes or settings; image copies named by pseudonym. See `deidentifiedLayout`.
   */
  deidentify?: boolean;
  /** Metadata keys left out of images.csv (each must exist in the library, so a typo cannot leak a column). */
  dropMetadata?: string[];
}

export interface ExportedFile {
  /** Path inside the export folder, with '/' separators. */
  name: string;
  bytes: number;
  sha256: string;
  /** Data rows (CSV) or arrays (npz/npy). */
  entries: number;
}

/** Issues: images exported with a caveat or left out of a file (no embedding, unreadable image file, renamed key). The contract's schema. */
export type ExportReport = z.infer<typeof exportReportSchema>;

/** What the export reads through other features' services. */
export interface ExportDependencies {
  repository: ExportRepository;
  images: {
    ids(filter: ImageFilter): number[];
    getMany(ids: number[]): ImageRecord[];
    imageFile(id: number): string;
  };
  labels: {
    labelsForImages(imageIds: number[] | undefined): Map<
      number,
      Array<{
        kind: LabelKind;
        value: string;
        confidence: number | null;
        annotator: string | null;
        origin: LabelOrigin;
        sessionId: number | null;
        createdAt: string;
      }>
    >;
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
    const dropMetadata = this.checkDropMetadata(options.dropMetadata ?? []);
    const folder = ExportFolder.open(options.folder);
    const createdAt = this.now().toISOString();

    const records: ImageRecord[] = [];
    for (let start = 0; start < imageIds.length; start += pageSize) records.push(...images.getMany(imageIds.slice(start, start + pageSize)));
    const issues: ExportReport['issues'] = [];
    const pseudonyms = options.deidentify ? new Pseudonyms(repository.pseudonymSecret()) : null;
    const keys = pseudonyms ? pseudonymousKeys(records, pseudonyms) : exportKeys(records, issues);

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
      counts: {
        images: records.length,
        cases: new Set(records.map((record) => record.caseId).filter((id) => id !== null)).size,
        labels: 0,
        embeddings: 0,
        imageFiles: 0,
      },
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
        for (const entry of metadata.values()) for (const key of dropMetadata) delete entry[key];
        if (pseudonyms) {
          // Free text can hold anything, names included, and cannot be checked: notes stay in the library.
          for (const [imageId, list] of labels)
            labels.set(
              imageId,
              list.filter((label) => label.kind !== 'note'),
            );
        }
        report.files.push(this.writeImagesCsv(folder, records, keys, metadata, flags, labels, pseudonyms));
        step('images.csv');
        const long = this.writeLabelsLong(folder, records, labels, keys, pseudonyms);
        report.counts.labels = long.entries;
        report.files.push(long);
        step('labels_long.csv');
      }
      if (model) {
        throwIfCancelled(options.signal);
        const matrix = this.dependencies.embeddings.matrix(model.id, imageIds);
        report.counts.embeddings = matrix.imageIds.length;
        const missing = imageIds.length - matrix.imageIds.length;
        if (missing > 0)
          issues.push({
            imageId: null,
            message: `${missing} of ${imageIds.length} images have no embedding for model "${model.id}" and are not in the embedding files.`,
          });
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
          // A de-identified report names no path: the error text of a failed read carries the original one.
          const why = pseudonyms
            ? `${(error as NodeJS.ErrnoException).code ?? 'unreadable or undecodable'} (see the library for the file)`
            : (error as Error).message;
          issues.push({ imageId: record.id, message: `The image file could not be exported: ${why}` });
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
      request: {
        formats,
        modelId: model?.id ?? null,
        images: Boolean(options.images),
        // Filter values (case keys, metadata values, search clauses) can be names: a de-identified manifest leaves them out.
        filter: pseudonyms ? 'omitted from a de-identified export' : filter,
        deidentify: Boolean(pseudonyms),
        dropMetadata,
      },
      deidentified: pseudonyms ? deidentifiedLayout : null,
      model: model
        ? {
            id: model.id,
            displayName: model.displayName,
            dim: model.dim,
            sha256: model.sha256,
            source: model.source,
            // An imported model's preprocessing records the file names it came from.
            preprocessing: pseudonyms && model.source === 'imported' ? 'omitted from a de-identified export' : model.preprocessing,
          }
        : null,
      thresholds: { quality: this.dependencies.qualityThresholds() },
      settings: pseudonyms ? 'omitted from a de-identified export (settings can hold names)' : repository.settings(),
      taxonomy: this.dependencies.taxonomy
        .list()
        .map((entry) => ({ kind: entry.kind, code: entry.code, displayName: entry.displayName, parentCode: entry.parentCode })),
      counts: report.counts,
      files: report.files,
      issues,
      layout: {
        'images.csv': pseudonyms
          ? 'one row per image: id, pseudonymous export_key and case_key, size, format, flags, metadata columns (meta.<key>), current labels per kind (label.<kind>, label.<kind>.from)'
          : 'one row per image: ids, paths, case, flags, metadata columns (meta.<key>), current labels per kind (label.<kind>, label.<kind>.from = consensus|annotators)',
        'labels_long.csv': pseudonyms
          ? 'one row per current label: image id and export_key, pseudonymous case_key and annotator, kind, value, confidence, origin, session, time'
          : 'one row per current label: image, kind, value, confidence, annotator, origin, session, time',
        '<embeddings>.npz': `numpy npz: key = export_key (${pseudonyms ? 'the image pseudonym' : 'image path relative to its import folder'}), value = float32 array of shape (dim,)`,
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
        throw new DermError('invalid-input', `filter label kind "${kind}" is not a label kind; expected one of ${labelKinds.join(', ')}.`, {
          field: 'filter.labels',
          value: kind,
        });
      }
      const having = this.dependencies.repository.imagesWithLabel(kind, value);
      ids = ids.filter((id) => having.has(id));
    }
    return ids;
  }

  private checkDropMetadata(keys: readonly string[]): string[] {
    if (keys.length === 0) return [];
    const known = new Set(this.dependencies.repository.metadataKeys());
    const unknown = keys.filter((key) => !known.has(key));
    if (unknown.length > 0) {
      throw new DermError(
        'invalid-input',
        `dropMetadata names ${unknown.map((key) => `"${key}"`).join(', ')}, which the library has no metadata for (keys: ${[...known].join(', ') || 'none'}); nothing was written.`,
        { field: 'dropMetadata', value: unknown },
      );
    }
    return [...new Set(keys)].sort();
  }

  private chooseModel(modelId: string | undefined): EmbeddingModelRecord {
    const { embeddings } = this.dependencies;
    if (modelId !== undefined) {
      const model = embeddings.model(modelId);
      if (!model) {
        const known = embeddings.models().map((entry) => entry.id);
        throw new DermError('not-found', `The library has no model "${modelId}"${known.length ? ` (models: ${known.join(', ')})` : ''}.`, {
          field: 'model',
          value: modelId,
        });
      }
      return model;
    }
    const withEmbeddings = embeddings.models().filter((entry) => entry.count > 0);
    if (withEmbeddings.length === 1) return withEmbeddings[0]!;
    if (withEmbeddings.length === 0)
      throw new DermError('not-found', 'The library has no embeddings to export; run `dermws embed` or import embeddings first.', { field: 'model' });
    throw new DermError('invalid-input', `Several models have embeddings (${withEmbeddings.map((entry) => entry.id).join(', ')}); choose one with --model.`, {
      field: 'model',
    });
  }

  private writeImagesCsv(
    folder: ExportFolder,
    records: ImageRecord[],
    keys: Map<number, string>,
    metadata: Map<number, Record<string, string>>,
    flags: Map<number, FlagRow[]>,
    labels: ReturnType<ExportDependencies['labels']['labelsForImages']>,
    pseudonyms: Pseudonyms | null,
  ): ExportedFile {
    const metadataKeys = [...new Set([...metadata.values()].flatMap((entry) => Object.keys(entry)))].sort();
    const kinds = labelKinds.filter((kind) => [...labels.values()].some((list) => list.some((label) => label.kind === kind)));
    const identifying = pseudonyms ? [] : ['relative_path', 'original_path'];
    const header = [
      'image_id',
      'export_key',
      ...identifying,
      'case_key',
      'batch_id',
      'width',
      'height',
      'format',
      ...(pseudonyms ? [] : ['file_sha256', 'imported_at']),
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
            ...(pseudonyms ? [] : [record.relativePath, record.originalPath]),
            pseudonyms ? pseudonyms.caseKey(record.caseKey) : record.caseKey,
            record.batchId,
            record.width,
            record.height,
            record.format,
            ...(pseudonyms ? [] : [record.fileSha256, record.importedAt]),
            imageFlags
              .filter((flag) => flag.source === 'auto')
              .map((flag) => flag.flag)
              .join(';'),
            imageFlags
              .filter((flag) => flag.source === 'manual')
              .map((flag) => flag.flag)
              .join(';'),
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

  private writeLabelsLong(
    folder: ExportFolder,
    records: ImageRecord[],
    labels: ReturnType<ExportDependencies['labels']['labelsForImages']>,
    keys: Map<number, string>,
    pseudonyms: Pseudonyms | null,
  ): ExportedFile {
    let rows = 0;
    folder.writeFile('labels_long.csv', (temporary) => {
      const writer = new CsvFileWriter(temporary);
      try {
        writer.write([
          'image_id',
          pseudonyms ? 'export_key' : 'relative_path',
          'case_key',
          'kind',
          'value',
          'confidence',
          'annotator',
          'origin',
          'consensus',
          'session_id',
          'created_at',
        ]);
        for (const record of records) {
          const imageLabels = [...(labels.get(record.id) ?? [])].sort(
            (a, b) =>
              labelKinds.indexOf(a.kind) - labelKinds.indexOf(b.kind) || (a.annotator ?? '').localeCompare(b.annotator ?? '') || a.value.localeCompare(b.value),
          );
          for (const label of imageLabels) {
            writer.write([
              record.id,
              pseudonyms ? keys.get(record.id)! : record.relativePath,
              pseudonyms ? pseudonyms.caseKey(record.caseKey) : record.caseKey,
              label.kind,
              label.value,
              label.confidence,
              pseudonyms ? pseudonyms.annotator(label.annotator) : label.annotator,
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
          for (let row = 0; row < imageIds.length; row++)
            yield [keys.get(imageIds[row]!)!, data.subarray(row * dim, (row + 1) * dim), [dim]] as [string, Float32Array, number[]];
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
      throw new DermError('invalid-input', `format "${format}" is not an export format; expected ${exportFormats.join(', ')}.`, {
        field: 'formats',
        value: format,
      });
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
    // Stored relative paths use "/" on every platform; a backslash is part of a Linux file name and is
    // kept, so `scan\2.jpg` stays one file in images/ rather than a folder "scan" (on Windows, where a
    // name cannot hold one, it separates folders).
    const relative = (path.sep === '\\' ? record.relativePath?.replaceAll('\\', '/') : record.relativePath) ?? '';
    const parts = relative.split('/');
    const safe =
      relative !== '' &&
      !relative.startsWith('/') &&
      !relative.startsWith('\\') &&
      !/^[A-Za-z]:/.test(relative) &&
      !relative.includes('\0') &&
      parts.every((part) => part !== '' && part !== '.' && part !== '..') &&
      relative.split('\\').every((part) => part !== '..');
    let key = safe ? relative : '';
    if (key !== '' && used.has(key.toLowerCase())) key = '';
    if (key === '') {
      const fileName = path.basename((record.relativePath ?? record.originalPath).replaceAll('\\', '/')).replace(/[^\p{L}\p{N}._ -]/gu, '_') || 'image';
      key = `image-${record.id}/${fileName === '..' || fileName === '.' ? 'image' : fileName}`;
      issues.push({
        imageId: record.id,
        message: safe
          ? `Its path ${relative} is shared with another exported image; exported as ${key}.`
          : `Its path ${JSON.stringify(record.relativePath)} is not a safe relative path; exported as ${key}.`,
      });
    }
    used.add(key.toLowerCase());
    keys.set(record.id, key);
  }
  return keys;
}

/** What a de-identified export promises; written into its manifest as `deidentified`. */
export const deidentifiedLayout = {
  keys: 'export_key, case_key and annotator are pseudonyms: HMAC-SHA256 of the file content hash, case key or annotator name under a secret kept in the library, so re-exports of this library match but the pseudonyms cannot be turned back into names without it',
  removed: [
    'relative_path',
    'original_path',
    'file_sha256',
    'imported_at',
    'note labels',
    'settings',
    'request filter',
    'imported model preprocessing (file names)',
  ],
  images: 'copies are named images/<export_key> and re-encoded without EXIF/GPS/XMP/IPTC',
  notRemoved: 'metadata values and label values are exported as stored: drop identifying metadata columns with dropMetadata (--drop-meta)',
} as const;

/**
 * Stable pseudonyms for a de-identified export: keyed HMAC-SHA256 under the library's secret, so the
 * same image, case or annotator gets the same pseudonym in every export of this library, and nobody
 * without the secret can test a guessed name against one.
 */
export class Pseudonyms {
  private readonly caseKeys = new Map<string, string>();
  private readonly annotators = new Map<string, string>();

  constructor(private readonly secret: Buffer) {}

  digest(kind: 'image' | 'case' | 'annotator', value: string): string {
    return crypto.createHmac('sha256', this.secret).update(`${kind}\0${value}`).digest('hex');
  }

  caseKey(caseKey: string | null): string | null {
    if (caseKey === null) return null;
    let pseudonym = this.caseKeys.get(caseKey);
    if (!pseudonym) this.caseKeys.set(caseKey, (pseudonym = `case_${this.digest('case', caseKey).slice(0, 16)}`));
    return pseudonym;
  }

  annotator(name: string | null): string | null {
    if (name === null) return null;
    let pseudonym = this.annotators.get(name);
    if (!pseudonym) this.annotators.set(name, (pseudonym = `annotator_${this.digest('annotator', name).slice(0, 12)}`));
    return pseudonym;
  }
}

/**
 * De-identified export keys: `img_<24 hex digits of the HMAC of the file's sha256><extension of the
 * exported format>`, so the key follows the image content (a re-imported file keeps its key) and holds
 * nothing of its name or folder. Two different files colliding on 96 bits would take ~10^14 images;
 * should it happen, the longer digest is used.
 */
export function pseudonymousKeys(records: ImageRecord[], pseudonyms: Pseudonyms): Map<number, string> {
  const keys = new Map<number, string>();
  const used = new Set<string>();
  for (const record of records) {
    const digest = pseudonyms.digest('image', record.fileSha256);
    let length = 24;
    let key = `img_${digest.slice(0, length)}${exportFormatFor(record.format).extension}`;
    while (used.has(key) && length < digest.length) {
      length += 8;
      key = `img_${digest.slice(0, length)}${exportFormatFor(record.format).extension}`;
    }
    used.add(key);
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
