import path from 'node:path';
import type Database from 'better-sqlite3';
import { writeTransaction } from '../library/write-transaction.js';
import type { CasesRow, ImagesRow } from '../library/table-rows.js';

/** What a search result shows beside the query for side-by-side comparison. */
export interface ImageCard {
  imageId: number;
  /** Absolute paths. */
  thumbnailPath: string;
  originalPath: string;
  managedPath: string | null;
  width: number;
  height: number;
  format: string;
  batchId: number;
  caseKey: string | null;
  pixelSha256: string;
  /** Every metadata key of the image (sex, age_group, fitzpatrick_self, body_parts, dataset …). */
  metadata: Record<string, string>;
  /** Quality and review flags (automatic or manual), sorted. */
  flags: string[];
  /** Current labels by kind (values of every annotator, distinct, sorted). */
  labels: Record<string, string[]>;
}

/** A row of `cards`' statement: the image's columns, its case key (NULL without a case) and three JSON arrays. */
type CardRow = Pick<ImagesRow, 'id' | 'thumbnail_path' | 'original_path' | 'managed_path' | 'width' | 'height' | 'format' | 'batch_id' | 'pixel_sha256'> & {
  case_key: CasesRow['case_key'] | null;
  metadata: string;
  flags: string;
  labels: string;
};

/** The SQLite side of search: filter → image ids, result cards, exact duplicates and duplicate review actions. */
export class SearchRepository {
  constructor(
    private readonly db: Database.Database,
    private readonly libraryRoot: string,
  ) {}

  /** Ids of images (not deleted) matching a condition over `live_images i`, ascending. */
  matchingIds(condition: { sql: string; params: unknown[] }): number[] {
    return this.db
      .prepare<unknown[], { id: number }>(`SELECT i.id AS id FROM live_images i WHERE ${condition.sql} ORDER BY i.id`)
      .all(...condition.params)
      .map((row) => row.id);
  }

  /** The image, when it exists and is not deleted. */
  liveImage(imageId: number): { id: number; caseId: number | null } | undefined {
    return this.db.prepare<unknown[], { id: number; caseId: number | null }>('SELECT id, case_id AS caseId FROM live_images WHERE id = ?').get(imageId);
  }

  imageIdsOfCase(caseId: number): number[] {
    return this.db
      .prepare<unknown[], { id: number }>('SELECT id FROM images WHERE case_id = ?')
      .all(caseId)
      .map((row) => row.id);
  }

  private cardsStatement: Database.Statement<unknown[], CardRow> | undefined;

  /**
   * The cards of these images in one statement: the image row, its case, and its metadata, flags and
   * current labels gathered as JSON by correlated subqueries (each on its table's image_id index), so
   * 24 result cards cost one round trip instead of four.
   */
  cards(imageIds: readonly number[]): Map<number, ImageCard> {
    const cards = new Map<number, ImageCard>();
    if (imageIds.length === 0) return cards;
    this.cardsStatement ??= this.db.prepare<unknown[], CardRow>(
      `SELECT i.id, i.thumbnail_path, i.original_path, i.managed_path, i.width, i.height, i.format, i.batch_id, i.pixel_sha256, c.case_key,
         (SELECT json_group_array(json_array(key, value)) FROM (SELECT key, value FROM image_metadata m WHERE m.image_id = i.id ORDER BY key)) AS metadata,
         (SELECT json_group_array(flag) FROM (SELECT DISTINCT flag FROM image_flags f WHERE f.image_id = i.id ORDER BY flag)) AS flags,
         (SELECT json_group_array(json_array(kind, value)) FROM (
            SELECT DISTINCT kind, value FROM labels l WHERE l.image_id = i.id AND l.superseded_at IS NULL AND l.kind != 'note' ORDER BY kind, value)) AS labels
       FROM images i LEFT JOIN cases c ON c.id = i.case_id WHERE i.id IN (SELECT value FROM json_each(?))`,
    );
    const rows = this.cardsStatement.all(JSON.stringify(imageIds));
    const absolute = (relative: string) => (path.isAbsolute(relative) ? relative : path.join(this.libraryRoot, relative));
    for (const row of rows) {
      const metadata: Record<string, string> = {};
      for (const [key, value] of JSON.parse(row.metadata) as Array<[string, string]>) metadata[key] = value;
      const labels: Record<string, string[]> = {};
      for (const [kind, value] of JSON.parse(row.labels) as Array<[string, string]>) (labels[kind] ??= []).push(value);
      cards.set(row.id, {
        imageId: row.id,
        thumbnailPath: absolute(row.thumbnail_path),
        originalPath: row.original_path,
        managedPath: row.managed_path ? absolute(row.managed_path) : null,
        width: row.width,
        height: row.height,
        format: row.format,
        batchId: row.batch_id,
        caseKey: row.case_key,
        pixelSha256: row.pixel_sha256,
        metadata,
        flags: JSON.parse(row.flags) as string[],
        labels,
      });
    }
    return cards;
  }

  /** Groups of live images whose decoded pixels hash the same (re-encoded or renamed copies). */
  exactDuplicateGroups(): number[][] {
    const rows = this.db
      .prepare<unknown[], { ids: string }>(
        `SELECT group_concat(id) AS ids FROM (SELECT id, pixel_sha256 FROM live_images ORDER BY id)
         GROUP BY pixel_sha256 HAVING COUNT(*) > 1 ORDER BY MIN(id)`,
      )
      .all();
    return rows.map((row) => row.ids.split(',').map(Number));
  }

  /**
   * Flags `imageIds` as manual duplicates of `keepId` and returns the images newly flagged. An image
   * already flagged by hand keeps its flag and detail, so undoing this review removes exactly what it added.
   */
  flagDuplicates(keepId: number, imageIds: readonly number[]): number[] {
    const insert = this.db.prepare(
      "INSERT INTO image_flags (image_id, flag, source, detail, set_at) VALUES (?, 'duplicate', 'manual', ?, ?) ON CONFLICT(image_id, flag, source) DO NOTHING",
    );
    const now = new Date().toISOString();
    const added: number[] = [];
    writeTransaction(this.db, () => {
      for (const imageId of imageIds) if (insert.run(imageId, `duplicate of image ${keepId}`, now).changes > 0) added.push(imageId);
    });
    return added;
  }

  /** Removes the manual duplicate flag of these images; returns the images that had one. */
  unflagDuplicates(imageIds: readonly number[]): number[] {
    const remove = this.db.prepare("DELETE FROM image_flags WHERE image_id = ? AND flag = 'duplicate' AND source = 'manual'");
    const removed: number[] = [];
    writeTransaction(this.db, () => {
      for (const imageId of imageIds) if (remove.run(imageId).changes > 0) removed.push(imageId);
    });
    return removed;
  }

  /** Marks images deleted (they stay in the database and can be restored); returns the images that changed. */
  markDeleted(imageIds: readonly number[]): number[] {
    const update = this.db.prepare('UPDATE images SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL');
    const now = new Date().toISOString();
    const changed: number[] = [];
    writeTransaction(this.db, () => {
      for (const imageId of imageIds) if (update.run(now, imageId).changes > 0) changed.push(imageId);
    });
    return changed;
  }

  /** Brings images marked deleted back; returns the images that changed. */
  restoreDeleted(imageIds: readonly number[]): number[] {
    const update = this.db.prepare('UPDATE images SET deleted_at = NULL WHERE id = ? AND deleted_at IS NOT NULL');
    const changed: number[] = [];
    writeTransaction(this.db, () => {
      for (const imageId of imageIds) if (update.run(imageId).changes > 0) changed.push(imageId);
    });
    return changed;
  }

  /** Whether an image row exists, deleted or not. */
  imageExists(imageId: number): boolean {
    return this.db.prepare('SELECT 1 FROM images WHERE id = ?').get(imageId) !== undefined;
  }
}
