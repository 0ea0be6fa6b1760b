import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import type { libraryCheckReportSchema } from '../../common/contract.js';
import { firstNonFinite, blobToVector } from '../embeddings/vector-codec.js';
import { decodeImage, makeThumbnail } from '../import/image-decoder.js';
import { ImportFilesRepository } from '../import/import-files.repository.js';
import { ProgressReporter, type JobControl } from '../jobs/job.js';
import { reduceForAnalysis } from '../quality/quality-reduce.js';
import type { Library, LibraryPaths } from '../library/library.js';
import { loadMigrations, schemaRecordDamage } from '../library/migrations.js';
import type { EmbeddingsRow, ImagesRow } from '../library/table-rows.js';

export type LibraryProblemKind = 'database' | 'schema' | 'embedding' | 'thumbnail' | 'managed-copy';

export interface LibraryProblem {
  kind: LibraryProblemKind;
  message: string;
  imageId?: number;
  file?: string;
  /** True when `repair` fixed it. */
  repaired: boolean;
}

/**
 * The stages of a check, in the order they run. database: quick_check or integrity_check and the
 * schema record; embeddings: every stored vector finite and of its model's size; thumbnails and
 * managed-copies: the files are there; repair (only with `repair`): one missing file made again at a
 * time.
 */
export const libraryCheckStages = ['database', 'embeddings', 'thumbnails', 'managed-copies', 'repair'] as const;
export type LibraryCheckStage = (typeof libraryCheckStages)[number];

export interface LibraryCheckStageReport {
  stage: LibraryCheckStage;
  /** done: checked everything; cancelled: stopped part-way; failed: a read failed (see problems); not-run. */
  state: 'done' | 'cancelled' | 'failed' | 'not-run';
  /** Units this stage went through (pages check = 1, embeddings, images, library copies, repairs). */
  checked: number;
  total: number;
}

/**
 * quick: SQLite's quick_check (pages and records, not index contents); full: integrity_check.
 * complete: every stage ran; cancelled: stopped at a stage boundary or between two units of a stage.
 * temporaryFilesRemoved: temporary files of writers that are gone (killed mid-write), removed by this
 * check. The contract's schema: the report the CLI prints and the library-check job's result.
 */
export type LibraryCheckReport = z.infer<typeof libraryCheckReportSchema>;

export interface LibraryCheckOptions extends JobControl {
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

type ImageFilesRow = Pick<ImagesRow, 'id' | 'file_sha256' | 'original_path' | 'managed_path' | 'thumbnail_path'>;

/** Units between two turns of the event loop, so a cancel (Ctrl-C, the app's Cancel) is seen while a stage runs. */
const unitsPerTurn = 256;
const embeddingsPerPage = 1024;

class CheckCancelled extends Error {}

/** Counts one unit of a stage; a returned promise must be awaited (the event loop's turn). */
type Tick = (current?: string) => Promise<void> | undefined;

/** A missing file that repair may make again, with what it needs to do so. */
interface RepairUnit {
  problem: LibraryProblem;
  row: ImageFilesRow;
  kind: 'thumbnail' | 'managed-copy';
}

/** What the thumbnail and library-copy stages add to: the problems found, the repairs they allow, the counts. */
interface FileStageFindings {
  problems: LibraryProblem[];
  repairs: RepairUnit[];
  counts: LibraryCheckReport['counts'];
}

/**
 * `dermws check` and the app's check: is what the library stores whole and consistent? Optionally
 * repairs what it can. A long job: it reports progress per stage (`stage` on each event, forced at the
 * start and end of every stage) and stops when its signal aborts, between two units of work, returning
 * what it checked so far with status 'cancelled'. A repair unit (one library copy or one thumbnail)
 * is written to a temporary name and renamed into place, so a cancel never leaves a half-made file.
 */
export class LibraryCheckService {
  constructor(private readonly library: Library) {}

  async check(options: LibraryCheckOptions = {}): Promise<LibraryCheckReport> {
    const { paths } = this.library;
    const problems: LibraryProblem[] = [];
    const level = options.full ? 'full' : 'quick';
    const repair = options.repair === true && !this.library.readOnly;
    const temporaryFilesRemoved = this.library.readOnly ? [] : removeAbandonedTemporaryFiles(paths);
    // The repair stage is listed only when a repair was asked for (on a read-only library it stays not-run).
    const stages: LibraryCheckStageReport[] = libraryCheckStages
      .filter((stage) => stage !== 'repair' || options.repair === true)
      .map((stage) => ({ stage, state: 'not-run', checked: 0, total: 0 }));
    const counts = { images: 0, embeddings: 0, thumbnails: 0, managedCopies: 0 };
    const repairs: RepairUnit[] = [];
    let cancelled = false;

    // A damaged page can make any read fail, counting a stage's units or checking them; the stage is
    // marked failed and what was found so far is still reported.
    const failed = (entry: LibraryCheckStageReport, error: unknown): void => {
      entry.state = 'failed';
      problems.push({
        kind: 'database',
        message: `Reading the library failed (${entry.stage}): ${(error as Error).message}`,
        file: paths.database,
        repaired: false,
      });
    };

    const run = async (stage: LibraryCheckStage, totalOf: () => number, work: (tick: Tick) => Promise<void> | void): Promise<void> => {
      const entry = stages.find((candidate) => candidate.stage === stage)!;
      if (options.signal?.aborted) {
        cancelled = true;
        return;
      }
      let total: number;
      try {
        total = totalOf();
      } catch (error) {
        failed(entry, error);
        return;
      }
      entry.total = total;
      const position = stages.indexOf(entry) + 1;
      const listener = options.onProgress;
      const reporter = new ProgressReporter(
        'library-check',
        total,
        listener && ((progress) => listener({ ...progress, stage, message: `${stageTitles[stage]} (stage ${position} of ${stages.length})` })),
      );
      reporter.report(0, undefined, true);
      // Synchronous for most units (an await per embedding would cost more than checking it); every
      // unitsPerTurn units it returns a promise that lets the event loop turn, so a cancel can arrive.
      const tick: Tick = (current) => {
        entry.checked++;
        // Each repair is a whole file made again (seconds for a large photo): every one is reported.
        reporter.report(entry.checked, current, entry.checked === total || stage === 'repair');
        const stopIfCancelled = () => {
          // A unit that was the stage's last is kept as done (rows added meanwhile can make checked pass total).
          if (options.signal?.aborted && entry.checked !== total) throw new CheckCancelled();
        };
        stopIfCancelled();
        if (entry.checked % unitsPerTurn !== 0) return undefined;
        return new Promise<void>((resolve) => setImmediate(resolve)).then(stopIfCancelled);
      };
      try {
        await work(tick);
        entry.state = 'done';
        if (entry.checked < total) reporter.report(entry.checked, undefined, true);
      } catch (error) {
        if (error instanceof CheckCancelled) {
          entry.state = 'cancelled';
          cancelled = true;
          return;
        }
        failed(entry, error);
      }
    };

    let rows: ImageFilesRow[] = [];
    let managed: ImageFilesRow[] = [];
    await run(
      'database',
      () => 1,
      async (tick) => {
        await this.checkDatabase(options.full === true, problems, tick);
        // Known even when the check stops before the thumbnails stage reads the rows.
        counts.images = this.library.db.prepare<unknown[], { n: number }>('SELECT COUNT(*) AS n FROM images').get()!.n;
      },
    );
    await run(
      'embeddings',
      () => this.embeddingCount(),
      (tick) => this.checkEmbeddings(problems, counts, tick),
    );
    await run(
      'thumbnails',
      () => {
        rows = this.imageRows();
        counts.images = rows.length;
        return rows.length;
      },
      (tick) => this.checkThumbnails(rows, { problems, repairs, counts }, tick),
    );
    await run(
      'managed-copies',
      () => (managed = rows.filter((row) => row.managed_path !== null)).length,
      (tick) => this.checkManagedCopies(managed, { problems, repairs, counts }, tick),
    );
    if (repair) {
      // Library copies first: a thumbnail is made again from the restored copy when there is one.
      const ordered = [...repairs.filter((unit) => unit.kind === 'managed-copy'), ...repairs.filter((unit) => unit.kind === 'thumbnail')];
      await run(
        'repair',
        () => ordered.length,
        (tick) => this.repair(ordered, tick),
      );
    }
    return {
      library: paths.root,
      database: paths.database,
      level,
      status: cancelled ? 'cancelled' : 'complete',
      ok: !cancelled && problems.every((problem) => problem.repaired),
      counts,
      stages,
      problems: orderProblems(problems),
      temporaryFilesRemoved,
    };
  }

  private async checkDatabase(full: boolean, problems: LibraryProblem[], tick: Tick): Promise<void> {
    const { db, paths } = this.library;
    try {
      const rows = db.pragma(full ? 'integrity_check' : 'quick_check') as Array<Record<string, string>>;
      for (const row of rows) {
        const message = Object.values(row)[0]!;
        if (message !== 'ok') problems.push({ kind: 'database', message, file: paths.database, repaired: false });
      }
    } catch (error) {
      problems.push({ kind: 'database', message: (error as Error).message, file: paths.database, repaired: false });
    }
    const damage = schemaRecordDamage(db, loadMigrations());
    if (damage) problems.push({ kind: 'schema', message: damage, file: paths.database, repaired: false });
    await tick(full ? 'integrity_check' : 'quick_check');
  }

  private embeddingCount(): number {
    return this.library.db.prepare<unknown[], { n: number }>('SELECT COUNT(*) AS n FROM embeddings').get()!.n;
  }

  /**
   * Every stored vector has the byte length of its dimension and its model's, and only finite values.
   * Read a page at a time in table order (keyset on rowid, a sequential scan) rather than through one
   * open cursor, so the connection is free for other calls whenever the check lets the event loop turn.
   */
  private async checkEmbeddings(problems: LibraryProblem[], counts: LibraryCheckReport['counts'], tick: Tick): Promise<void> {
    const { db, paths } = this.library;
    const modelDims = new Map(
      db
        .prepare<unknown[], { id: string; dim: number }>('SELECT id, dim FROM embedding_models')
        .all()
        .map((row) => [row.id, row.dim]),
    );
    const page = db.prepare<unknown[], Pick<EmbeddingsRow, 'image_id' | 'model_id' | 'dim' | 'vector'> & { position: number }>(
      'SELECT rowid AS position, image_id, model_id, dim, vector FROM embeddings WHERE rowid > ? ORDER BY rowid LIMIT ?',
    );
    let after = 0;
    for (;;) {
      const rows = page.all(after, embeddingsPerPage);
      if (rows.length === 0) return;
      for (const row of rows) {
        after = row.position;
        const expected = modelDims.get(row.model_id) ?? row.dim;
        const where = `The embedding of image ${row.image_id} for model "${row.model_id}"`;
        if (!Buffer.isBuffer(row.vector) || row.vector.byteLength !== expected * 4 || row.dim !== expected) {
          const bytes = Buffer.isBuffer(row.vector) ? row.vector.byteLength : 0;
          problems.push({
            kind: 'embedding',
            imageId: row.image_id,
            file: paths.database,
            repaired: false,
            message: `${where} is ${bytes} bytes with dim ${row.dim}; the model has ${expected} values (${expected * 4} bytes).`,
          });
        } else {
          const vector = blobToVector(row.vector);
          const bad = firstNonFinite(vector);
          if (bad >= 0)
            problems.push({
              kind: 'embedding',
              imageId: row.image_id,
              file: paths.database,
              repaired: false,
              message: `${where} has ${vector[bad]} at value ${bad}; embed the image again to replace it.`,
            });
        }
        counts.embeddings++;
        const turn = tick(`image ${row.image_id}`);
        if (turn) await turn;
      }
    }
  }

  private imageRows(): ImageFilesRow[] {
    return this.library.db
      .prepare<unknown[], ImageFilesRow>('SELECT id, file_sha256, original_path, managed_path, thumbnail_path FROM images ORDER BY id')
      .all();
  }

  private async checkThumbnails(rows: ImageFilesRow[], { problems, repairs, counts }: FileStageFindings, tick: Tick): Promise<void> {
    const { paths } = this.library;
    for (const row of rows) {
      const thumbnail = path.join(paths.root, row.thumbnail_path);
      if (!fs.existsSync(thumbnail)) {
        const problem: LibraryProblem = {
          kind: 'thumbnail',
          imageId: row.id,
          file: thumbnail,
          repaired: false,
          message: `The thumbnail of image ${row.id} is missing (${row.thumbnail_path}).`,
        };
        problems.push(problem);
        repairs.push({ problem, row, kind: 'thumbnail' });
      }
      counts.thumbnails++;
      const turn = tick(row.thumbnail_path);
      if (turn) await turn;
    }
  }

  private async checkManagedCopies(rows: ImageFilesRow[], { problems, repairs, counts }: FileStageFindings, tick: Tick): Promise<void> {
    const { paths } = this.library;
    for (const row of rows) {
      const managed = path.join(paths.root, row.managed_path!);
      if (!fs.existsSync(managed)) {
        const original = unchangedSource(row.original_path, row.file_sha256) !== undefined;
        const problem: LibraryProblem = {
          kind: 'managed-copy',
          imageId: row.id,
          file: managed,
          repaired: false,
          message: `The library copy of image ${row.id} is missing (${row.managed_path}); ${original ? `the original ${row.original_path} is unchanged` : `the original ${row.original_path} is missing or changed, so the image cannot be restored from it`}.`,
        };
        problems.push(problem);
        if (original) repairs.push({ problem, row, kind: 'managed-copy' });
      }
      counts.managedCopies++;
      const turn = tick(row.managed_path!);
      if (turn) await turn;
    }
  }

  /** Makes each missing file again, one whole file per unit (temporary name, then rename). */
  private async repair(units: RepairUnit[], tick: Tick): Promise<void> {
    const { paths } = this.library;
    const files = new ImportFilesRepository(paths);
    for (const { problem, row, kind } of units) {
      try {
        if (kind === 'managed-copy') {
          const original = unchangedSource(row.original_path, row.file_sha256);
          if (original) {
            await files.writeManagedCopy(row.file_sha256, row.original_path, original);
            problem.repaired = fs.existsSync(problem.file!);
          } else {
            problem.message += ` The original changed or went away during the check; nothing was restored.`;
          }
        } else {
          const source =
            (row.managed_path !== null ? unchangedSource(path.join(paths.root, row.managed_path), row.file_sha256) : undefined) ??
            unchangedSource(row.original_path, row.file_sha256);
          if (source) {
            const decoded = await decodeImage(source);
            const reduced = await reduceForAnalysis(decoded.pixels, decoded.width, decoded.height);
            const webp = await makeThumbnail({
              pixels: Buffer.from(reduced.pixels.buffer, reduced.pixels.byteOffset, reduced.pixels.byteLength),
              width: reduced.width,
              height: reduced.height,
            });
            const written = await files.writeThumbnail(row.file_sha256, webp);
            problem.repaired = path.join(paths.root, written) === problem.file;
          } else {
            problem.message += ` Neither the library copy nor the original ${row.original_path} is there unchanged to make it again.`;
          }
        }
      } catch (error) {
        problem.message += ` Making it again failed: ${(error as Error).message}`;
      }
      await tick(`${kind} of image ${row.id}`);
    }
  }
}

const stageTitles: Record<LibraryCheckStage, string> = {
  database: 'Checking the database pages and schema record',
  embeddings: 'Checking embeddings',
  thumbnails: 'Checking thumbnails',
  'managed-copies': 'Checking library copies',
  repair: 'Repairing missing files',
};

/** Problems by kind in stage order, images by id within a kind. */
function orderProblems(problems: LibraryProblem[]): LibraryProblem[] {
  const rank: Record<LibraryProblemKind, number> = { database: 0, schema: 0, embedding: 1, thumbnail: 2, 'managed-copy': 3 };
  return problems
    .map((problem, index) => ({ problem, index }))
    .sort((a, b) => rank[a.problem.kind] - rank[b.problem.kind] || (a.problem.imageId ?? 0) - (b.problem.imageId ?? 0) || a.index - b.index)
    .map((entry) => entry.problem);
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
