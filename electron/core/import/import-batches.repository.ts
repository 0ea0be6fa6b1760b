import type { z } from 'zod';
import type { importOutcomeSchema } from '../../common/contract.js';
import type Database from 'better-sqlite3';
import type { ImportBatchesRow, ImportOutcomesRow } from '../library/table-rows.js';

export type ImportOutcomeKind = ImportOutcomesRow['outcome'];
/**
 * running: a live process works on it (or one died and nobody has looked yet); completed; cancelled:
 * someone asked it to stop; interrupted: its process died mid-import (found at the next open or
 * import); failed: an error stopped it. Running the same import again resumes any but a completed one.
 */
export type BatchStatus = ImportBatchesRow['status'];

/** Statuses of a batch that running the same import again resumes. */
export const resumableBatchStatuses: readonly BatchStatus[] = ['running', 'cancelled', 'interrupted', 'failed'];

/** One file's outcome; imageId is the new image, or for a duplicate the image already in the library (the contract's schema). */
export type ImportOutcome = z.infer<typeof importOutcomeSchema>;

export interface ImportBatch {
  id: number;
  startedAt: string;
  finishedAt: string | null;
  status: BatchStatus;
  copyIntoLibrary: boolean;
  sourcePaths: string[];
  totalFiles: number;
  imported: number;
  duplicates: number;
  failed: number;
}

/** Every read and write of `import_batches` and `import_outcomes`. */
export class ImportBatchesRepository {
  constructor(private readonly db: Database.Database) {}

  create(sourcePaths: string[], copyIntoLibrary: boolean, at: Date): number {
    return this.db
      .prepare("INSERT INTO import_batches (started_at, status, copy_into_library, source_paths) VALUES (?, 'running', ?, ?)")
      .run(at.toISOString(), copyIntoLibrary ? 1 : 0, JSON.stringify(sourcePaths)).lastInsertRowid as number;
  }

  get(id: number): ImportBatch | undefined {
    const row = this.db.prepare<unknown[], ImportBatchesRow>('SELECT * FROM import_batches WHERE id = ?').get(id);
    return row ? rowToBatch(row) : undefined;
  }

  count(): number {
    return this.db.prepare<unknown[], { count: number }>('SELECT COUNT(*) AS count FROM import_batches').get()!.count;
  }

  /** Most recent first. */
  list(limit = 50): ImportBatch[] {
    return this.db.prepare<unknown[], ImportBatchesRow>('SELECT * FROM import_batches ORDER BY id DESC LIMIT ?').all(limit).map(rowToBatch);
  }

  /**
   * The batches over exactly these source paths and copy choice that never finished (running, killed
   * while running, cancelled, or stopped by an error), newest first: running the same import again resumes
   * one of them that no live process owns.
   */
  findUnfinished(sourcePaths: string[], copyIntoLibrary: boolean): ImportBatch[] {
    const rows = this.db
      .prepare<unknown[], ImportBatchesRow>(
        `SELECT * FROM import_batches WHERE status IN (${resumableBatchStatuses.map(() => '?').join(', ')}) AND source_paths = ? AND copy_into_library = ? ORDER BY id DESC`,
      )
      .all(...resumableBatchStatuses, JSON.stringify(sourcePaths), copyIntoLibrary ? 1 : 0);
    return rows.map(rowToBatch);
  }

  /** Batches whose status says a process is working on them (it may have died). */
  running(): ImportBatch[] {
    return this.db.prepare<unknown[], ImportBatchesRow>("SELECT * FROM import_batches WHERE status = 'running' ORDER BY id").all().map(rowToBatch);
  }

  setRunning(id: number): void {
    this.db.prepare("UPDATE import_batches SET status = 'running', finished_at = NULL WHERE id = ?").run(id);
  }

  setTotal(id: number, totalFiles: number): void {
    this.db.prepare('UPDATE import_batches SET total_files = ? WHERE id = ?').run(totalFiles, id);
  }

  /** Records (or replaces, when a failed file is retried on resume) one file's outcome. */
  recordOutcome(batchId: number, outcome: ImportOutcome, at: Date): void {
    this.db
      .prepare(
        `INSERT INTO import_outcomes (batch_id, path, outcome, reason, image_id, at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(batch_id, path) DO UPDATE SET outcome = excluded.outcome, reason = excluded.reason, image_id = excluded.image_id, at = excluded.at`,
      )
      .run(batchId, outcome.path, outcome.outcome, outcome.reason ?? null, outcome.imageId ?? null, at.toISOString());
  }

  outcomes(batchId: number): ImportOutcome[] {
    const rows = this.db
      .prepare<unknown[], Pick<ImportOutcomesRow, 'path' | 'outcome' | 'reason' | 'image_id'>>(
        'SELECT path, outcome, reason, image_id FROM import_outcomes WHERE batch_id = ? ORDER BY id',
      )
      .all(batchId);
    return rows.map((row) => {
      const outcome: ImportOutcome = { path: row.path, outcome: row.outcome };
      if (row.reason !== null) outcome.reason = row.reason;
      if (row.image_id !== null) outcome.imageId = row.image_id;
      return outcome;
    });
  }

  /** Recounts the batch's totals from its outcomes and sets its final status. */
  finish(id: number, status: BatchStatus, at: Date | null): void {
    this.db
      .prepare(
        `UPDATE import_batches SET status = @status, finished_at = @at,
           imported = (SELECT COUNT(*) FROM import_outcomes WHERE batch_id = @id AND outcome = 'imported'),
           duplicates = (SELECT COUNT(*) FROM import_outcomes WHERE batch_id = @id AND outcome = 'duplicate'),
           failed = (SELECT COUNT(*) FROM import_outcomes WHERE batch_id = @id AND outcome = 'failed')
         WHERE id = @id`,
      )
      .run({ status, at: at ? at.toISOString() : null, id });
  }
}

function rowToBatch(row: ImportBatchesRow): ImportBatch {
  return {
    id: row.id,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    status: row.status,
    copyIntoLibrary: row.copy_into_library === 1,
    sourcePaths: JSON.parse(row.source_paths) as string[],
    totalFiles: row.total_files,
    imported: row.imported,
    duplicates: row.duplicates,
    failed: row.failed,
  };
}
