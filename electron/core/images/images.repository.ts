import path from 'node:path';
import type Database from 'better-sqlite3';
import { DermError } from '../../common/errors.js';
import type { LibraryPaths } from '../library/library.js';
import { writeTransaction } from '../library/write-transaction.js';
import type { ImagesRow } from '../library/table-rows.js';

/** One image of the library as stored, with its current flags (automatic and manual, each name once). */
export interface ImageRecord {
  id: number;
  fileSha256: string;
  pixelSha256: string;
  /** Absolute path the image was imported from. */
  originalPath: string;
  /** Path relative to the import root, with `/` separators (matches dataset CSV paths and npz keys). */
  relativePath: string | null;
  /** Managed copy relative to the library root, when imported with "copy into library". */
  managedPath: string | null;
  /** Thumbnail relative to the library root. */
  thumbnailPath: string;
  /** Size after EXIF orientation. */
  width: number;
  height: number;
  format: string;
  bytes: number;
  exifOrientation: number;
  sourceColorSpace: string | null;
  sourceBitDepth: string | null;
  hadAlpha: boolean;
  importedAt: string;
  batchId: number;
  caseId: number | null;
  caseKey: string | null;
  deletedAt: string | null;
  flags: string[];
}

/** What the import writes for a new image: the stored record before it has an id, case or flags. */
export type NewImage = Omit<ImageRecord, 'id' | 'caseId' | 'caseKey' | 'deletedAt' | 'flags'>;

/**
 * Filters of list() and count(); all given filters must hold. Deleted images are left out unless
 * includeDeleted is set.
 */
export interface ImageFilter {
  /** Images carrying every one of these flags (automatic or manual). */
  flags?: string[];
  /** Images carrying none of these flags. */
  withoutFlags?: string[];
  batchId?: number;
  /** Images of the case with this external key (e.g. a SCIN case_id). */
  caseKey?: string;
  /** image_metadata key → exact value; every pair must match. */
  metadata?: Record<string, string>;
  /** Case-insensitive substring of the original or relative path. */
  search?: string;
  /** Only these ids (e.g. the hits of a similarity search). */
  ids?: number[];
  /** Some annotator's current label of the kind has the value; every pair must hold (any kind, any annotator). */
  labels?: Array<{ kind: string; value: string }>;
  /** Fitzpatrick type I..VI, by an annotator's label or by self-report (SCIN's fitzpatrick_self FST1..FST6). */
  fitzpatrick?: string;
  /** Monk skin tone 1..10 by an annotator's label. */
  monkTone?: string;
  /** Body site code (SCIN's codes): an annotator's body_site label, or listed in the body_parts metadata. */
  bodySite?: string;
  /** Images with a current label by this annotator (by name). */
  annotator?: string;
  /** Images in the queue of this labelling session. */
  sessionId?: number;
  includeDeleted?: boolean;
}

export interface ImageListOptions extends ImageFilter {
  offset?: number;
  /** At most 10,000 per page; default 100. */
  limit?: number;
}

/** An images row with its case key and flags, as selectImages reads it. */
type ImageRow = ImagesRow & { case_key: string | null; flags: string | null };

const selectImagesFrom = (source: 'images' | 'live_images') => `SELECT i.*, c.case_key AS case_key,
  (SELECT group_concat(flag, ',') FROM (SELECT DISTINCT flag FROM image_flags f WHERE f.image_id = i.id ORDER BY flag)) AS flags
  FROM ${source} i LEFT JOIN cases c ON c.id = i.case_id`;
/** Every image, deleted ones included (reads by id or hash must find a deleted image to restore it). */
const selectImages = selectImagesFrom('images');
const selectLiveImages = selectImagesFrom('live_images');

export const maxPageSize = 10_000;

/**
 * Image records and the image files of a library (thumbnails, managed copies): look-up by id, path and
 * hash, filtered lists and counts, the rows the import inserts, and hiding and restoring images. It is
 * not the only code that touches `images`: other repositories join it in their own queries (facets,
 * quality, labels, sessions, search, export, probes, embeddings), the duplicate review hides and
 * restores images in its own transaction, and a dataset import sets their case.
 */
export class ImagesRepository {
  constructor(
    private readonly db: Database.Database,
    private readonly paths: LibraryPaths,
  ) {}

  get(id: number): ImageRecord | undefined {
    const row = this.db.prepare<unknown[], ImageRow>(`${selectImages} WHERE i.id = ?`).get(id);
    return row ? rowToImage(row) : undefined;
  }

  /** Like get(), but a missing id is an error that names it. */
  require(id: number): ImageRecord {
    const image = this.get(id);
    if (!image) throw new DermError('not-found', `No image with id ${id} in this library.`, { imageId: id });
    return image;
  }

  /** Several images by id, in the order given; unknown ids are left out. */
  getMany(ids: number[]): ImageRecord[] {
    if (ids.length === 0) return [];
    const byId = new Map(this.list({ ids, includeDeleted: true, limit: maxPageSize }).map((image) => [image.id, image]));
    const found: ImageRecord[] = [];
    for (const id of ids) {
      const image = byId.get(id);
      if (image) found.push(image);
    }
    return found;
  }

  /** A page of images in id order. */
  list(options: ImageListOptions = {}): ImageRecord[] {
    const offset = options.offset ?? 0;
    const limit = options.limit ?? 100;
    if (!Number.isInteger(offset) || offset < 0) throw new DermError('invalid-input', `offset must be a whole number ≥ 0; got ${offset}.`, { field: 'offset' });
    if (!Number.isInteger(limit) || limit < 1 || limit > maxPageSize) {
      throw new DermError('invalid-input', `limit must be a whole number from 1 to ${maxPageSize}; got ${limit}.`, { field: 'limit' });
    }
    const { source, where, parameters } = buildFilter(options);
    const rows = this.db.prepare<unknown[], ImageRow>(`${selectImagesFrom(source)} ${where} ORDER BY i.id LIMIT ? OFFSET ?`).all(...parameters, limit, offset);
    return rows.map(rowToImage);
  }

  count(filter: ImageFilter = {}): number {
    const { source, where, parameters } = buildFilter(filter);
    return this.db
      .prepare<unknown[], { count: number }>(`SELECT COUNT(*) AS count FROM ${source} i LEFT JOIN cases c ON c.id = i.case_id ${where}`)
      .get(...parameters)!.count;
  }

  /** Ids of every image matching the filter, in id order (for jobs that walk the library). */
  ids(filter: ImageFilter = {}): number[] {
    const { source, where, parameters } = buildFilter(filter);
    return this.db
      .prepare<unknown[], { id: number }>(`SELECT i.id AS id FROM ${source} i LEFT JOIN cases c ON c.id = i.case_id ${where} ORDER BY i.id`)
      .all(...parameters)
      .map((row) => row.id);
  }

  /** Non-deleted images whose path relative to their import root is exactly this (`/` separators). */
  findByRelativePath(relativePath: string): ImageRecord[] {
    const normalised = relativePath.replaceAll('\\', '/').replace(/^\.\//, '');
    return this.db.prepare<unknown[], ImageRow>(`${selectLiveImages} WHERE i.relative_path = ? ORDER BY i.id`).all(normalised).map(rowToImage);
  }

  /**
   * Non-deleted images whose file name (last path component of the original path) is this name,
   * compared exactly; datasets use it when their paths do not match the folder layout.
   */
  findByFileName(fileName: string): ImageRecord[] {
    const rows = this.db
      .prepare<unknown[], ImageRow>(
        `${selectLiveImages} WHERE (i.original_path = ? OR i.original_path LIKE ? ESCAPE '\\' OR i.original_path LIKE ? ESCAPE '\\') ORDER BY i.id`,
      )
      .all(fileName, `%/${escapeLike(fileName)}`, `%\\${escapeLike(fileName)}`);
    return rows.map(rowToImage).filter((image) => baseName(image.originalPath) === fileName);
  }

  findByFileSha256(fileSha256: string): ImageRecord | undefined {
    const row = this.db.prepare<unknown[], ImageRow>(`${selectImages} WHERE i.file_sha256 = ?`).get(fileSha256);
    return row ? rowToImage(row) : undefined;
  }

  /** Non-deleted images with exactly these decoded pixels. */
  findByPixelSha256(pixelSha256: string): ImageRecord[] {
    return this.db.prepare<unknown[], ImageRow>(`${selectLiveImages} WHERE i.pixel_sha256 = ? ORDER BY i.id`).all(pixelSha256).map(rowToImage);
  }

  /** Absolute path of the image's thumbnail (256-px WebP). */
  thumbnailFile(id: number): string {
    return path.join(this.paths.root, this.require(id).thumbnailPath);
  }

  /** Absolute path to read the image from: the managed copy when there is one, else the original file. */
  imageFile(id: number): string {
    const image = this.require(id);
    return image.managedPath ? path.join(this.paths.root, image.managedPath) : image.originalPath;
  }

  /** Image metadata (key → value) of one image. */
  metadata(id: number): Record<string, string> {
    const rows = this.db.prepare<unknown[], { key: string; value: string }>('SELECT key, value FROM image_metadata WHERE image_id = ? ORDER BY key').all(id);
    return Object.fromEntries(rows.map((row) => [row.key, row.value]));
  }

  /**
   * Marks images as deleted (hidden from lists, searches and counts) without removing rows or files,
   * so labels and embeddings made for them are kept. Returns how many were newly marked.
   */
  markDeleted(ids: number[], at = new Date()): number {
    const mark = this.db.prepare('UPDATE images SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL');
    let changed = 0;
    writeTransaction(this.db, () => {
      for (const id of ids) changed += mark.run(at.toISOString(), id).changes;
    });
    return changed;
  }

  /** Clears the deleted mark. Returns how many were restored. */
  restore(ids: number[]): number {
    const restore = this.db.prepare('UPDATE images SET deleted_at = NULL WHERE id = ? AND deleted_at IS NOT NULL');
    let changed = 0;
    writeTransaction(this.db, () => {
      for (const id of ids) changed += restore.run(id).changes;
    });
    return changed;
  }

  /** Inserts a new image row; the caller holds the transaction that also writes its metrics and outcome. */
  insert(image: NewImage): number {
    return this.db
      .prepare(
        `INSERT INTO images (file_sha256, pixel_sha256, original_path, relative_path, managed_path, thumbnail_path, width, height, format,
           bytes, exif_orientation, source_color_space, source_bit_depth, had_alpha, imported_at, batch_id)
         VALUES (@fileSha256, @pixelSha256, @originalPath, @relativePath, @managedPath, @thumbnailPath, @width, @height, @format,
           @bytes, @exifOrientation, @sourceColorSpace, @sourceBitDepth, @hadAlpha, @importedAt, @batchId)`,
      )
      .run({ ...image, hadAlpha: image.hadAlpha ? 1 : 0 }).lastInsertRowid as number;
  }

  /** Counts of non-deleted images per stored format. */
  formatCounts(): Record<string, number> {
    const rows = this.db
      .prepare<unknown[], { format: string; count: number }>('SELECT format, COUNT(*) AS count FROM live_images GROUP BY format ORDER BY format')
      .all();
    return Object.fromEntries(rows.map((row) => [row.format, row.count]));
  }

  /** Totals over non-deleted images, plus the number of deleted ones. */
  totals(): { images: number; deleted: number; bytes: number; cases: number } {
    const row = this.db
      .prepare<unknown[], { images: number | null; deleted: number | null; bytes: number; cases: number }>(
        `SELECT SUM(deleted_at IS NULL) AS images, SUM(deleted_at IS NOT NULL) AS deleted,
           COALESCE(SUM(CASE WHEN deleted_at IS NULL THEN bytes END), 0) AS bytes,
           COUNT(DISTINCT CASE WHEN deleted_at IS NULL THEN case_id END) AS cases FROM images`,
      )
      .get()!;
    return { images: row.images ?? 0, deleted: row.deleted ?? 0, bytes: row.bytes, cases: row.cases };
  }
}

const romanNumerals = ['I', 'II', 'III', 'IV', 'V', 'VI'];

/**
 * A filter as SQL: the table to read as `i` (live_images, unless deleted images are included) and the
 * WHERE clause over `${source} i LEFT JOIN cases c`, with its parameters.
 */
export function buildFilter(filter: ImageFilter): { source: 'images' | 'live_images'; where: string; parameters: unknown[] } {
  const source = filter.includeDeleted ? 'images' : 'live_images';
  const clauses: string[] = [];
  const parameters: unknown[] = [];
  for (const flag of filter.flags ?? []) {
    clauses.push('EXISTS (SELECT 1 FROM image_flags f WHERE f.image_id = i.id AND f.flag = ?)');
    parameters.push(flag);
  }
  if (filter.withoutFlags && filter.withoutFlags.length > 0) {
    clauses.push(`NOT EXISTS (SELECT 1 FROM image_flags f WHERE f.image_id = i.id AND f.flag IN (${filter.withoutFlags.map(() => '?').join(', ')}))`);
    parameters.push(...filter.withoutFlags);
  }
  if (filter.batchId !== undefined) {
    clauses.push('i.batch_id = ?');
    parameters.push(filter.batchId);
  }
  if (filter.caseKey !== undefined) {
    clauses.push('c.case_key = ?');
    parameters.push(filter.caseKey);
  }
  for (const [key, value] of Object.entries(filter.metadata ?? {})) {
    clauses.push('EXISTS (SELECT 1 FROM image_metadata m WHERE m.image_id = i.id AND m.key = ? AND m.value = ?)');
    parameters.push(key, value);
  }
  if (filter.search !== undefined && filter.search.trim() !== '') {
    const pattern = `%${escapeLike(filter.search.trim())}%`;
    clauses.push("(i.original_path LIKE ? ESCAPE '\\' OR COALESCE(i.relative_path, '') LIKE ? ESCAPE '\\')");
    parameters.push(pattern, pattern);
  }
  for (const { kind, value } of filter.labels ?? []) {
    // Uncorrelated IN: evaluated once through labels_kind_value, not once per image.
    clauses.push('i.id IN (SELECT l.image_id FROM labels l WHERE l.kind = ? AND l.value = ? AND l.superseded_at IS NULL)');
    parameters.push(kind, value);
  }
  if (filter.fitzpatrick !== undefined) {
    const type = romanNumerals.indexOf(filter.fitzpatrick) + 1;
    clauses.push(
      `i.id IN (SELECT l.image_id FROM labels l WHERE l.kind = 'fitzpatrick' AND l.value = ? AND l.superseded_at IS NULL
        UNION SELECT m.image_id FROM image_metadata m WHERE m.key = 'fitzpatrick_self' AND m.value = ?)`,
    );
    parameters.push(filter.fitzpatrick, `FST${type}`);
  }
  if (filter.monkTone !== undefined) {
    clauses.push("i.id IN (SELECT l.image_id FROM labels l WHERE l.kind = 'monk_tone' AND l.value = ? AND l.superseded_at IS NULL)");
    parameters.push(filter.monkTone);
  }
  if (filter.bodySite !== undefined) {
    // body_parts holds SCIN codes joined by ';': matched as a whole item, never as a substring (ARM ≠ FOREARM).
    clauses.push(
      `i.id IN (SELECT l.image_id FROM labels l WHERE l.kind = 'body_site' AND l.value = ? AND l.superseded_at IS NULL
        UNION SELECT m.image_id FROM image_metadata m WHERE m.key = 'body_parts' AND instr(';' || m.value || ';', ';' || ? || ';') > 0)`,
    );
    parameters.push(filter.bodySite, filter.bodySite);
  }
  if (filter.annotator !== undefined) {
    clauses.push('i.id IN (SELECT l.image_id FROM labels l JOIN annotators a ON a.id = l.annotator_id WHERE a.name = ? AND l.superseded_at IS NULL)');
    parameters.push(filter.annotator);
  }
  if (filter.sessionId !== undefined) {
    clauses.push('i.id IN (SELECT s.image_id FROM session_items s WHERE s.session_id = ?)');
    parameters.push(filter.sessionId);
  }
  if (filter.ids !== undefined) {
    // A JSON array keeps this one statement however many ids are given (SQLite limits bound parameters).
    clauses.push('i.id IN (SELECT value FROM json_each(?))');
    parameters.push(JSON.stringify(filter.ids));
  }
  return { source, where: clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '', parameters };
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (character) => `\\${character}`);
}

function baseName(file: string): string {
  const parts = file.split(/[\\/]/);
  return parts[parts.length - 1] ?? file;
}

function rowToImage(row: ImageRow): ImageRecord {
  return {
    id: row.id,
    fileSha256: row.file_sha256,
    pixelSha256: row.pixel_sha256,
    originalPath: row.original_path,
    relativePath: row.relative_path,
    managedPath: row.managed_path,
    thumbnailPath: row.thumbnail_path,
    width: row.width,
    height: row.height,
    format: row.format,
    bytes: row.bytes,
    exifOrientation: row.exif_orientation,
    sourceColorSpace: row.source_color_space,
    sourceBitDepth: row.source_bit_depth,
    hadAlpha: row.had_alpha === 1,
    importedAt: row.imported_at,
    batchId: row.batch_id,
    caseId: row.case_id,
    caseKey: row.case_key,
    deletedAt: row.deleted_at,
    flags: row.flags ? row.flags.split(',') : [],
  };
}
