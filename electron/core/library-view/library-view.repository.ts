import fs from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { CallOutput } from '../../common/contract.js';
import { DermError } from '../../common/errors.js';
import { servableMediaFile } from '../media/media-file.js';
import type { ImageFacetsRepository } from '../images/image-facets.repository.js';
import type { ImageFilter } from '../images/images.repository.js';
import type { SearchRepository } from '../search/search.repository.js';
import type { CasesRow, ImageFlagsRow, LiveImagesRow } from '../library/table-rows.js';

const histogramDefinitions: Array<{
  metric: string;
  label: string;
  explanation: string;
  sql: string;
  flag: string;
  threshold: string;
  direction: 'below' | 'above';
  max?: number;
}> = [
  {
    metric: 'brightness_p99',
    label: 'Brightest areas (99th percentile)',
    explanation: 'Images whose brightest parts stay below the line are flagged dark.',
    sql: 'q.brightness_p99',
    flag: 'dark',
    threshold: 'darkP99Below',
    direction: 'below',
    max: 1,
  },
  {
    metric: 'brightness_p05',
    label: 'Darkest areas (5th percentile)',
    explanation: 'Images whose darkest parts are above the line are flagged overexposed.',
    sql: 'q.brightness_p05',
    flag: 'overexposed',
    threshold: 'overexposedP05Above',
    direction: 'above',
    max: 1,
  },
  {
    metric: 'blur_score',
    label: 'Blur score',
    explanation: 'Above the line an image is flagged blurry (0 sharp, 1 fully blurred).',
    sql: 'q.blur_score',
    flag: 'blurry',
    threshold: 'blurryAbove',
    direction: 'above',
    max: 1,
  },
  {
    metric: 'entropy',
    label: 'Information (entropy, bits)',
    explanation: 'Below the line an image is flagged low information.',
    sql: 'q.entropy',
    flag: 'low_information',
    threshold: 'lowEntropyBelow',
    direction: 'below',
    max: 8,
  },
  {
    metric: 'saturation_mean',
    label: 'Colour saturation',
    explanation: 'Below the line an image is flagged grayscale.',
    sql: 'q.saturation_mean',
    flag: 'grayscale',
    threshold: 'grayscaleSaturationBelow',
    direction: 'below',
  },
  {
    metric: 'aspect',
    label: 'Aspect ratio (short ÷ long side)',
    explanation: 'Below the line an image is flagged odd aspect ratio.',
    sql: 'MIN(q.aspect_ratio, 1.0 / q.aspect_ratio)',
    flag: 'odd_aspect_ratio',
    threshold: 'oddAspectBelow',
    direction: 'below',
    max: 1,
  },
  {
    metric: 'short_side',
    label: 'Short side (pixels)',
    explanation: 'Below the line an image is flagged low resolution.',
    sql: 'MIN(i.width, i.height)',
    flag: 'low_resolution',
    threshold: 'lowResolutionBelow',
    direction: 'below',
  },
];

/**
 * Read-only views the screens need that no feature service offers as such: the library overview for
 * the navigation, the per-image detail page, and import outcomes. Reads only; every write goes through
 * the feature services.
 */
export class LibraryViewRepository {
  constructor(
    private readonly db: Database.Database,
    private readonly facetsRepository: ImageFacetsRepository,
    private readonly cardsRepository: SearchRepository,
  ) {}

  facets(filter: ImageFilter): CallOutput<'libraryFacets'> {
    return this.facetsRepository.facets(filter);
  }

  /** Thumbnail badges: case, metadata, flags and labels of each image, in the order asked. */
  cards(imageIds: readonly number[]): CallOutput<'imageCards'> {
    const cards = this.cardsRepository.cards(imageIds);
    return {
      cards: imageIds.flatMap((id) => {
        const card = cards.get(id);
        if (!card) return [];
        return [
          {
            imageId: id,
            fileName: path.basename(card.originalPath),
            width: card.width,
            height: card.height,
            caseKey: card.caseKey,
            metadata: card.metadata,
            flags: card.flags,
            labels: card.labels,
          },
        ];
      }),
    };
  }

  /**
   * Images carrying a flag, worst first by the metric the flag is decided on (lowest first for a
   * "below" threshold, highest first for "above"), with the metric's value; flags without one metric
   * (odd size, duplicate, manual flags) come in id order with no value. Also the images a person
   * marked "not an issue" for the flag, with the same metric.
   */
  flagged(flag: string, limit: number): CallOutput<'qualityFlagged'> {
    const definition = histogramDefinitions.find((entry) => entry.flag === flag);
    const value = definition ? definition.sql : 'NULL';
    const order = definition ? `v ${definition.direction === 'below' ? 'ASC' : 'DESC'}, f.image_id` : 'f.image_id';
    const total = this.db
      .prepare<unknown[], { n: number }>('SELECT COUNT(DISTINCT f.image_id) AS n FROM image_flags f JOIN live_images i ON i.id = f.image_id WHERE f.flag = ?')
      .get(flag)!.n;
    const rows = this.db
      .prepare<unknown[], { imageId: number; v: number | null; source: string; detail: string | null }>(
        `SELECT f.image_id AS imageId, ${value} AS v, group_concat(f.source) AS source, MAX(f.detail) AS detail
         FROM image_flags f JOIN live_images i ON i.id = f.image_id LEFT JOIN quality_metrics q ON q.image_id = f.image_id
         WHERE f.flag = ? GROUP BY f.image_id ORDER BY ${order} LIMIT ?`,
      )
      .all(flag, limit);
    const overridden = this.db
      .prepare<unknown[], { imageId: number; v: number | null; setAt: string }>(
        `SELECT o.image_id AS imageId, ${value} AS v, o.set_at AS setAt FROM quality_overrides o JOIN live_images i ON i.id = o.image_id
         LEFT JOIN quality_metrics q ON q.image_id = o.image_id WHERE o.flag = ? ORDER BY o.set_at DESC, o.image_id LIMIT ?`,
      )
      .all(flag, limit);
    return {
      flag,
      metric: definition?.label ?? null,
      total,
      images: rows.map((row) => ({ imageId: row.imageId, value: row.v, source: row.source, detail: row.detail })),
      notAnIssue: overridden.map((row) => ({ imageId: row.imageId, value: row.v, setAt: row.setAt })),
    };
  }

  /** The flags one image carries now. */
  flagsOf(imageId: number): string[] {
    return this.db
      .prepare<unknown[], { flag: string }>('SELECT DISTINCT flag FROM image_flags WHERE image_id = ? ORDER BY flag')
      .all(imageId)
      .map((row) => row.flag);
  }

  /** libraryOverview's counts from the database; the handler adds the totals the image and batch repositories keep. */
  overview(): Pick<CallOutput<'libraryOverview'>, 'images' | 'batches' | 'flags' | 'embeddings' | 'metadataKeys'> {
    const images = this.db.prepare<unknown[], { n: number }>('SELECT COUNT(*) AS n FROM live_images').get()!.n;
    const batches = this.db
      .prepare<unknown[], CallOutput<'libraryOverview'>['batches'][number]>(
        'SELECT id, started_at AS startedAt, finished_at AS finishedAt, status, total_files AS total, imported, failed, duplicates FROM import_batches ORDER BY id DESC LIMIT 50',
      )
      .all();
    const flags = this.db
      .prepare<unknown[], { flag: string; count: number }>(
        'SELECT f.flag AS flag, COUNT(DISTINCT f.image_id) AS count FROM image_flags f JOIN live_images i ON i.id = f.image_id GROUP BY f.flag ORDER BY f.flag',
      )
      .all();
    const embeddings = this.db
      .prepare<unknown[], { modelId: string; count: number }>(
        'SELECT m.id AS modelId, COUNT(e.image_id) AS count FROM embedding_models m LEFT JOIN embeddings e ON e.model_id = m.id GROUP BY m.id ORDER BY m.id',
      )
      .all();
    const metadataKeys = this.db
      .prepare<unknown[], { key: string }>('SELECT DISTINCT key FROM image_metadata ORDER BY key LIMIT 200')
      .all()
      .map((row) => row.key);
    return { images, batches, flags, embeddings, metadataKeys };
  }

  detail(imageId: number): CallOutput<'imageDetail'> {
    const row = this.db
      .prepare<
        unknown[],
        Pick<LiveImagesRow, 'id' | 'original_path' | 'relative_path' | 'width' | 'height' | 'format' | 'bytes' | 'imported_at' | 'batch_id'> & {
          case_key: CasesRow['case_key'] | null;
        }
      >(
        `SELECT i.id, i.original_path, i.relative_path, i.width, i.height, i.format, i.bytes, i.imported_at, i.batch_id, c.case_key
         FROM live_images i LEFT JOIN cases c ON c.id = i.case_id WHERE i.id = ?`,
      )
      .get(imageId);
    if (!row) throw new DermError('not-found', `There is no image ${imageId} in this library.`, { imageId });
    const metadata: Record<string, string> = {};
    for (const entry of this.db
      .prepare<unknown[], { key: string; value: string }>('SELECT key, value FROM image_metadata WHERE image_id = ? ORDER BY key')
      .all(imageId)) {
      metadata[entry.key] = entry.value;
    }
    const flags = this.db
      .prepare<unknown[], Pick<ImageFlagsRow, 'flag' | 'source' | 'detail'>>('SELECT flag, source, detail FROM image_flags WHERE image_id = ? ORDER BY flag')
      .all(imageId);
    const metrics = this.db.prepare<unknown[], Record<string, unknown>>('SELECT * FROM quality_metrics WHERE image_id = ?').get(imageId);
    let quality: Record<string, number> | null = null;
    if (metrics) {
      quality = {};
      for (const [key, value] of Object.entries(metrics))
        if (typeof value === 'number' && key !== 'image_id' && key !== 'metrics_version') quality[key] = value;
    }
    const labels = this.db
      .prepare<unknown[], CallOutput<'imageDetail'>['labels'][number]>(
        `SELECT l.kind, l.value, l.confidence, a.name AS annotator, l.origin FROM labels l LEFT JOIN annotators a ON a.id = l.annotator_id
         WHERE l.image_id = ? AND l.superseded_at IS NULL ORDER BY l.kind, l.value`,
      )
      .all(imageId);
    return {
      id: row.id,
      fileName: path.basename(row.original_path),
      originalPath: row.original_path,
      relativePath: row.relative_path,
      width: row.width,
      height: row.height,
      format: row.format,
      bytes: row.bytes,
      importedAt: row.imported_at,
      batchId: row.batch_id,
      caseKey: row.case_key,
      metadata,
      flags,
      quality,
      labels,
    };
  }

  importReport(batchId: number, outcome: string | undefined): CallOutput<'importReport'> {
    const batch = this.db
      .prepare<
        unknown[],
        { id: number; status: CallOutput<'importReport'>['status']; total_files: number; imported: number; duplicates: number; failed: number }
      >('SELECT id, status, total_files, imported, duplicates, failed FROM import_batches WHERE id = ?')
      .get(batchId);
    if (!batch) throw new DermError('not-found', `There is no import batch ${batchId}.`, { batchId });
    const rows = this.db
      .prepare<unknown[], { path: string; outcome: 'imported' | 'duplicate' | 'failed' | 'skipped'; reason: string | null; image_id: number | null }>(
        `SELECT path, outcome, reason, image_id FROM import_outcomes WHERE batch_id = ? ${outcome ? 'AND outcome = ?' : ''} ORDER BY id LIMIT 5000`,
      )
      .all(...(outcome ? [batchId, outcome] : [batchId]));
    return {
      batchId,
      status: batch.status,
      counts: { total: batch.total_files, imported: batch.imported, duplicates: batch.duplicates, failed: batch.failed },
      outcomes: rows.map((entry) => ({
        path: entry.path,
        outcome: entry.outcome,
        ...(entry.reason ? { reason: entry.reason } : {}),
        ...(entry.image_id !== null ? { imageId: entry.image_id } : {}),
      })),
    };
  }

  /**
   * Histograms (40 bins) of the metrics that have a flag threshold, over non-deleted images. Bounded
   * metrics use their natural range so the threshold line keeps its place as the library grows.
   */
  qualityHistograms(thresholds: Record<string, number>): CallOutput<'qualityOverview'>['histograms'] {
    const histograms: CallOutput<'qualityOverview'>['histograms'] = [];
    for (const definition of histogramDefinitions) {
      const values = this.db
        .prepare<unknown[], number | null>(`SELECT ${definition.sql} AS v FROM quality_metrics q JOIN live_images i ON i.id = q.image_id`)
        .pluck()
        .all()
        .filter((value): value is number => value !== null && Number.isFinite(value));
      const threshold = thresholds[definition.threshold] ?? 0;
      const dataMax = values.reduce((max, value) => Math.max(max, value), 0);
      const max = definition.max ?? Math.max(dataMax, threshold * 1.25, 1);
      const min = 0;
      const bins = new Array<number>(40).fill(0);
      for (const value of values) {
        const bin = Math.min(bins.length - 1, Math.max(0, Math.floor(((value - min) / (max - min)) * bins.length)));
        bins[bin]!++;
      }
      histograms.push({
        metric: definition.metric,
        label: definition.label,
        explanation: definition.explanation,
        flag: definition.flag,
        threshold: { name: definition.threshold, value: threshold, direction: definition.direction },
        min,
        max,
        bins,
      });
    }
    return histograms;
  }

  /**
   * Files behind the media endpoints; never a path from the request, only from the image row, and only
   * a regular file inside the library or the recorded original itself (see servableMediaFile).
   */
  mediaFile(kind: 'thumbnail' | 'image', imageId: number, libraryRoot: string): string {
    const row = this.db
      .prepare<unknown[], { thumbnail_path: string; managed_path: string | null; original_path: string }>(
        'SELECT thumbnail_path, managed_path, original_path FROM images WHERE id = ?',
      )
      .get(imageId);
    if (!row) throw new DermError('not-found', `There is no image ${imageId}.`, { imageId });
    if (kind === 'thumbnail') return servableMediaFile(path.join(libraryRoot, row.thumbnail_path), imageId, { libraryRoot });
    if (!row.managed_path) return servableMediaFile(row.original_path, imageId, { recordedOriginal: row.original_path });
    // A lost library copy falls back to the original while it is still there (`dermws check --repair` restores the copy).
    const managed = path.join(libraryRoot, row.managed_path);
    if (!fs.existsSync(managed) && fs.existsSync(row.original_path)) {
      return servableMediaFile(row.original_path, imageId, { recordedOriginal: row.original_path });
    }
    return servableMediaFile(managed, imageId, { libraryRoot });
  }
}
