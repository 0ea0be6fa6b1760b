import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { firstNonFinite, blobToVector } from '../embeddings/vector-codec.js';
import { decodeImage, makeThumbnail } from '../import/image-decoder.js';
import { ImportFilesRepository } from '../import/import-files.repository.js';
import { reduceForAnalysis } from '../quality/quality-reduce.js';
import type { Library, LibraryPaths } from './library.js';
import { loadMigrations, schemaRecordDamage } from './migrations.js';

export type LibraryProblemKind = 'database' | 'schema' | 'embedding' | 'thumbnail' | 'managed-copy';

export interface LibraryProblem {
  kind: LibraryProblemKind;
  message: string;
  imageId?: number;
  file?: string;
  /** True when `repair` fixed it. */
  repaired: boolean;
}

export interface LibraryCheckReport {
  library: string;
  database: string;
  /** quick: SQLite's quick_check (pages and records, not index contents); full: integrity_check. */
  level: 'quick' | 'full';
  ok: boolean;
  counts: { images: number; embeddings: number; thumbnails: number; managedCopies: number };
  problems: LibraryProblem[];
  /** Temporary files of writers that are gone (killed mid-write), removed by this check. */
  temporaryFilesRemoved: string[];
}

export interface LibraryCheckOptions {
  full?: boolean;
  /** Regenerate missing thumbnails and managed copies from the image's source file when it is unchanged. */
  repair?: boolean;
}

// `<name>.<pid>.<8 hex>.tmp` (thumbnails, managed copies) and `<name>.<pid>.partial` (index files).
const temporaryNamePattern = /\.(\d+)(?:\.[0-9a-f]{8}\.tmp|\.partial)$/;

function processIsAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temporary files that writers killed mid-write left in the library's thumbnails/,
 * images/ and indexes/ folders. A temporary name carries its writer's process id; a file whose writer
 * is still running is left alone. Returns the files removed (relative to the library root).
 */
export function removeAbandonedTemporaryFiles(paths: LibraryPaths): string[] {
  const removed: string[] = [];
  const visit = (folder: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(folder, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory() && depth > 0) visit(full, depth - 1);
      if (!entry.isFile()) continue;
      const match = temporaryNamePattern.exec(entry.name);
      if (!match || processIsAlive(Number(match[1]))) continue;
      try {
        fs.rmSync(full, { force: true });
        removed.push(path.relative(paths.root, full));
      } catch {
        // Left for the next open; a file that cannot be removed is no reason to refuse the library.
      }
    }
  };
  visit(paths.thumbnails, 1);
  visit(paths.managedImages, 1);
  visit(paths.indexes, 0);
  return removed.sort();
}

interface ImageFilesRow {
  id: number;
  file_sha256: string;
  original_path: string;
  managed_path: string | null;
  thumbnail_path: string;
}

/** `dermws check`: is what the library stores whole and consistent? Optionally repairs what it can. */
export class LibraryCheckService {
  constructor(private readonly library: Library) {}

  async check(options: LibraryCheckOptions = {}): Promise<LibraryCheckReport> {
    const { db, paths } = this.library;
    const problems: LibraryProblem[] = [];
    const level = options.full ? 'full' : 'quick';
    const temporaryFilesRemoved = this.library.readOnly ? [] : removeAbandonedTemporaryFiles(paths);

    try {
      const rows = db.pragma(options.full ? 'integrity_check' : 'quick_check') as Array<Record<string, string>>;
      for (const row of rows) {
        const message = Object.values(row)[0]!;
        if (message !== 'ok') problems.push({ kind: 'database', message, file: paths.database, repaired: false });
      }
    } catch (error) {
      problems.push({ kind: 'database', message: (error as Error).message, file: paths.database, repaired: false });
    }

    let counts = { images: 0, embeddings: 0, thumbnails: 0, managedCopies: 0 };
    try {
      const damage = schemaRecordDamage(db, loadMigrations());
      if (damage) problems.push({ kind: 'schema', message: damage, file: paths.database, repaired: false });
      counts.embeddings = this.checkEmbeddings(problems);
      counts = { ...counts, ...(await this.checkFiles(problems, options.repair === true)) };
    } catch (error) {
      // A damaged page can make any read fail; what was found so far is still reported.
      problems.push({ kind: 'database', message: `Reading the library failed: ${(error as Error).message}`, file: paths.database, repaired: false });
    }
    return {
      library: paths.root,
      database: paths.database,
      level,
      ok: problems.every((problem) => problem.repaired),
      counts,
      problems,
      temporaryFilesRemoved,
    };
  }

  /** Every stored vector has the byte length of its dimension and its model's, and only finite values. */
  private checkEmbeddings(problems: LibraryProblem[]): number {
    const { db, paths } = this.library;
    const modelDims = new Map((db.prepare('SELECT id, dim FROM embedding_models').all() as Array<{ id: string; dim: number }>).map((row) => [row.id, row.dim]));
    let count = 0;
    for (const row of db.prepare('SELECT image_id, model_id, dim, vector FROM embeddings').iterate() as Iterable<{ image_id: number; model_id: string; dim: number; vector: Buffer }>) {
      count++;
      const expected = modelDims.get(row.model_id) ?? row.dim;
      const where = `The embedding of image ${row.image_id} for model "${row.model_id}"`;
      if (!Buffer.isBuffer(row.vector) || row.vector.byteLength !== expected * 4 || row.dim !== expected) {
        const bytes = Buffer.isBuffer(row.vector) ? row.vector.byteLength : 0;
        problems.push({ kind: 'embedding', imageId: row.image_id, file: paths.database, repaired: false, message: `${where} is ${bytes} bytes with dim ${row.dim}; the model has ${expected} values (${expected * 4} bytes).` });
        continue;
      }
      const vector = blobToVector(row.vector);
      const bad = firstNonFinite(vector);
      if (bad >= 0) problems.push({ kind: 'embedding', imageId: row.image_id, file: paths.database, repaired: false, message: `${where} has ${vector[bad]} at value ${bad}; embed the image again to replace it.` });
    }
    return count;
  }

  private async checkFiles(problems: LibraryProblem[], repair: boolean): Promise<{ images: number; thumbnails: number; managedCopies: number }> {
    const { db, paths } = this.library;
    const files = new ImportFilesRepository(paths);
    const rows = db.prepare('SELECT id, file_sha256, original_path, managed_path, thumbnail_path FROM images ORDER BY id').all() as ImageFilesRow[];
    let managedCopies = 0;
    for (const row of rows) {
      if (row.managed_path !== null) {
        managedCopies++;
        const managed = path.join(paths.root, row.managed_path);
        if (!fs.existsSync(managed)) {
          const original = unchangedSource(row.original_path, row.file_sha256);
          const problem: LibraryProblem = {
            kind: 'managed-copy',
            imageId: row.id,
            file: managed,
            repaired: false,
            message: `The library copy of image ${row.id} is missing (${row.managed_path}); ${original ? `the original ${row.original_path} is unchanged` : `the original ${row.original_path} is missing or changed, so the image cannot be restored from it`}.`,
          };
          if (repair && original && !this.library.readOnly) {
            await files.writeManagedCopy(row.file_sha256, row.original_path, original);
            problem.repaired = fs.existsSync(managed);
          }
          problems.push(problem);
        }
      }
      const thumbnail = path.join(paths.root, row.thumbnail_path);
      if (!fs.existsSync(thumbnail)) {
        const problem: LibraryProblem = { kind: 'thumbnail', imageId: row.id, file: thumbnail, repaired: false, message: `The thumbnail of image ${row.id} is missing (${row.thumbnail_path}).` };
        if (repair && !this.library.readOnly) {
          const source = (row.managed_path !== null ? unchangedSource(path.join(paths.root, row.managed_path), row.file_sha256) : undefined) ?? unchangedSource(row.original_path, row.file_sha256);
          if (source) {
            const decoded = await decodeImage(source);
            const reduced = await reduceForAnalysis(decoded.pixels, decoded.width, decoded.height);
            const webp = await makeThumbnail({ pixels: Buffer.from(reduced.pixels.buffer, reduced.pixels.byteOffset, reduced.pixels.byteLength), width: reduced.width, height: reduced.height });
            const written = await files.writeThumbnail(row.file_sha256, webp);
            problem.repaired = path.join(paths.root, written) === thumbnail;
          } else {
            problem.message += ` Neither the library copy nor the original ${row.original_path} is there unchanged to make it again.`;
          }
        }
        problems.push(problem);
      }
    }
    return { images: rows.length, thumbnails: rows.length, managedCopies };
  }
}

/** The file's bytes when it exists and still has the sha256 it was imported with. */
function unchangedSource(file: string, sha256: string): Buffer | undefined {
  try {
    const bytes = fs.readFileSync(file);
    return crypto.createHash('sha256').update(bytes).digest('hex') === sha256 ? bytes : undefined;
  } catch {
    return undefined;
  }
}
