import type Database from 'better-sqlite3';
import { writeTransaction } from '../library/write-transaction.js';
import type { ImagesRow, LiveImagesRow } from '../library/table-rows.js';

/** An image a cluster plan shards out: where its pixels are and what identifies its file. */
export interface PlannedImage {
  imageId: number;
  originalPath: string;
  managedPath: string | null;
  fileSha256: string;
  bytes: number;
}

/** The reads a cluster plan and a merge need that no other repository has: file hashes and sizes. */
export class ClusterRepository {
  constructor(private readonly db: Database.Database) {}

  /** Images (not deleted) without an embedding from this model file, in id order, with their file hash. */
  imagesToPlan(modelId: string, modelSha256: string): PlannedImage[] {
    return this.db
      .prepare<unknown[], Pick<LiveImagesRow, 'id' | 'original_path' | 'managed_path' | 'file_sha256' | 'bytes'>>(
        `SELECT i.id, i.original_path, i.managed_path, i.file_sha256, i.bytes FROM live_images i
           WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.model_id = ? AND e.image_id = i.id AND e.model_sha256 = ?) ORDER BY i.id`,
      )
      .all(modelId, modelSha256)
      .map((row) => ({ imageId: row.id, originalPath: row.original_path, managedPath: row.managed_path, fileSha256: row.file_sha256, bytes: row.bytes }));
  }

  /** The stored file hash of each image and whether it is deleted; ids that do not exist are absent. */
  imageHashes(imageIds: readonly number[]): Map<number, { fileSha256: string; deleted: boolean }> {
    const statement = this.db.prepare<unknown[], Pick<ImagesRow, 'file_sha256' | 'deleted_at'>>('SELECT file_sha256, deleted_at FROM images WHERE id = ?');
    const found = new Map<number, { fileSha256: string; deleted: boolean }>();
    for (const imageId of imageIds) {
      const row = statement.get(imageId);
      if (row) found.set(imageId, { fileSha256: row.file_sha256, deleted: row.deleted_at !== null });
    }
    return found;
  }

  /** Images of `imageIds` that already hold an embedding from this model file. */
  alreadyEmbedded(modelId: string, modelSha256: string, imageIds: readonly number[]): Set<number> {
    const statement = this.db.prepare('SELECT 1 FROM embeddings WHERE model_id = ? AND image_id = ? AND model_sha256 = ?');
    return new Set(imageIds.filter((imageId) => statement.get(modelId, imageId, modelSha256) !== undefined));
  }

  transaction<T>(work: () => T): T {
    return writeTransaction(this.db, work);
  }
}
