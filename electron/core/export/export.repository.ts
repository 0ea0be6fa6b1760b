import crypto from 'node:crypto';
import type Database from 'better-sqlite3';
import type { ImageFlagsRow } from '../library/table-rows.js';

/** Settings key of the de-identified export's HMAC secret; left out of settings() and every manifest. */
export const pseudonymSecretKey = 'export.pseudonym_secret';

/** An image_flags row as `SELECT image_id AS imageId, flag, source` returns it. */
export interface FlagRow extends Pick<ImageFlagsRow, 'flag' | 'source'> {
  imageId: ImageFlagsRow['image_id'];
}

/** The reads an export needs that no other repository offers: bulk metadata and flags, settings, label filters. */
export class ExportRepository {
  constructor(private readonly db: Database.Database) {}

  /** Metadata of the given images, keyed by image id (one JSON-array statement however many ids). */
  metadataFor(imageIds: number[]): Map<number, Record<string, string>> {
    const rows = this.db
      .prepare<unknown[], { imageId: number; key: string; value: string }>(
        'SELECT image_id AS imageId, key, value FROM image_metadata WHERE image_id IN (SELECT value FROM json_each(?)) ORDER BY image_id, key',
      )
      .all(JSON.stringify(imageIds));
    const byImage = new Map<number, Record<string, string>>();
    for (const row of rows) {
      const entry = byImage.get(row.imageId) ?? {};
      entry[row.key] = row.value;
      byImage.set(row.imageId, entry);
    }
    return byImage;
  }

  flagsFor(imageIds: number[]): Map<number, FlagRow[]> {
    const rows = this.db
      .prepare<unknown[], FlagRow>(
        'SELECT image_id AS imageId, flag, source FROM image_flags WHERE image_id IN (SELECT value FROM json_each(?)) ORDER BY image_id, flag, source',
      )
      .all(JSON.stringify(imageIds));
    const byImage = new Map<number, FlagRow[]>();
    for (const row of rows) {
      const list = byImage.get(row.imageId);
      if (list) list.push(row);
      else byImage.set(row.imageId, [row]);
    }
    return byImage;
  }

  /** Ids of images with a current label of this kind and value (any annotator or origin). */
  imagesWithLabel(kind: string, value: string): Set<number> {
    const rows = this.db
      .prepare<unknown[], { id: number }>('SELECT DISTINCT image_id AS id FROM labels WHERE kind = ? AND value = ? AND superseded_at IS NULL')
      .all(kind, value);
    return new Set(rows.map((row) => row.id));
  }

  /** Ids of images (not deleted) passing an SQL condition over `live_images i` (the search filter grammar's output), in id order. */
  imageIdsWhere(condition: { sql: string; params: unknown[] }): number[] {
    return this.db
      .prepare<unknown[], { id: number }>(`SELECT i.id AS id FROM live_images i WHERE ${condition.sql} ORDER BY i.id`)
      .all(...condition.params)
      .map((row) => row.id);
  }

  /** Every library setting (thresholds and preferences), parsed from JSON; the pseudonym secret is never among them. */
  settings(): Record<string, unknown> {
    const rows = this.db
      .prepare<unknown[], { key: string; value: string }>('SELECT key, value FROM settings WHERE key <> ? ORDER BY key')
      .all(pseudonymSecretKey);
    return Object.fromEntries(rows.map((row) => [row.key, JSON.parse(row.value) as unknown]));
  }

  /**
   * The library's secret for de-identified exports: 32 random bytes made on first use and kept in the
   * library, so every export of this library gives an image, case or annotator the same pseudonym and
   * nobody without the library can turn a pseudonym back into a name. Two processes creating it at
   * once agree on one (INSERT OR IGNORE, then read).
   */
  pseudonymSecret(): Buffer {
    this.db
      .prepare('INSERT OR IGNORE INTO settings (key, value, updated_at) VALUES (?, ?, ?)')
      .run(pseudonymSecretKey, JSON.stringify(crypto.randomBytes(32).toString('hex')), new Date().toISOString());
    const row = this.db.prepare<unknown[], { value: string }>('SELECT value FROM settings WHERE key = ?').get(pseudonymSecretKey)!;
    return Buffer.from(JSON.parse(row.value) as string, 'hex');
  }

  /** Metadata keys present in the library (for checking the keys a de-identified export drops). */
  metadataKeys(): string[] {
    return this.db
      .prepare<unknown[], { key: string }>('SELECT DISTINCT key FROM image_metadata ORDER BY key')
      .all()
      .map((row) => row.key);
  }
}
