import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { AppEvent, JobInfo, LibraryCheckReport } from '../../electron/common/contract.js';
import { createAppApi } from '../../electron/core/app-api/create-app-api.js';
import { createCore } from '../../electron/core/core.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import type { JobProgress } from '../../electron/core/jobs/job.js';
import { openLibrary } from '../../electron/core/library/library.js';
import { insertSyntheticImages } from '../fixtures/library-fixture.js';
import { writeSkinImage } from '../fixtures/skin-images.js';

// The library check is a long job: progress per stage, cancellable between two units of work. Every
// cancel here happens at a point the check itself announces (a progress event it always sends), or
// while the check is blocked on a file the test controls, never after some time has passed.

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-check-job-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

let libraries = 0;

/** Post-ReLU-like vector: non-negative with many zeros. */
function reluVector(seed: number, dim: number): Float32Array {
  const vector = new Float32Array(dim);
  for (let index = 0; index < dim; index++) vector[index] = (index * 7 + seed * 13) % 5 < 2 ? 0 : ((index + seed) % 11) / 10;
  return vector;
}

interface Damaged {
  root: string;
  images: Array<{ id: number; original_path: string; managed_path: string; thumbnail_path: string }>;
}

/**
 * Four photos imported with library copies and embedded, then damaged: two thumbnails deleted and one
 * library copy deleted (its original unchanged), so a repair has three whole files to make.
 */
async function damagedLibrary(): Promise<Damaged> {
  const name = `library-${++libraries}`;
  const photos = path.join(scratch, `${name}-photos`);
  for (let index = 0; index < 4; index++)
    await writeSkinImage(path.join(photos, `p${index}.jpg`), { seed: 300 + libraries * 10 + index, width: 200, height: 150 });
  const root = path.join(scratch, name);
  const core = createCore({ libraryFolder: root });
  try {
    const report = await core.import.importPaths([photos], { copyIntoLibrary: true });
    expect(report.imported).toBe(4);
  } finally {
    core.close();
  }
  const library = openLibrary(root);
  const images = library.db.prepare('SELECT id, original_path, managed_path, thumbnail_path FROM images ORDER BY id').all() as Damaged['images'];
  const embeddings = new EmbeddingsRepository(library.db);
  embeddings.registerModel({ id: 'm16', displayName: 'test vectors', dim: 16, sha256: 'b'.repeat(64), source: 'imported', preprocessing: null });
  embeddings.put(
    'm16',
    'b'.repeat(64),
    images.map((image) => ({ imageId: image.id, vector: reluVector(image.id, 16) })),
  );
  library.close();
  fs.rmSync(path.join(root, images[0]!.thumbnail_path));
  fs.rmSync(path.join(root, images[2]!.thumbnail_path));
  fs.rmSync(path.join(root, images[1]!.managed_path));
  return { root, images };
}

function temporaryFiles(root: string): string[] {
  const found: string[] = [];
  const visit = (folder: string) => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      if (entry.isDirectory()) visit(path.join(folder, entry.name));
      else if (/\.tmp$|\.partial$/.test(entry.name)) found.push(path.join(folder, entry.name));
    }
  };
  visit(root);
  return found;
}

/**
 * A repairing check of a fresh damaged library, cancelled at the first progress event `cancelHere`
 * accepts. The core is closed before it returns; closing removes no file, so what the check left on
 * disk is what the caller sees.
 */
async function repairCancelledAt(cancelHere: (progress: JobProgress) => boolean): Promise<Damaged & { report: LibraryCheckReport }> {
  const damaged = await damagedLibrary();
  const core = createCore({ libraryFolder: damaged.root });
  try {
    const controller = new AbortController();
    const report = await core.check.check({
      repair: true,
      signal: controller.signal,
      onProgress: (progress) => {
        if (cancelHere(progress)) controller.abort();
      },
    });
    return { ...damaged, report };
  } finally {
    core.close();
  }
}

describe('library check as a job', () => {
  it('reports progress for each stage in order, from 0 to its total, and repairs every missing file', async () => {
    const { root, images } = await damagedLibrary();
    const core = createCore({ libraryFolder: root });
    try {
      const events: JobProgress[] = [];
      const report = await core.check.check({ repair: true, onProgress: (progress) => events.push(progress) });
      expect(report).toMatchObject({ status: 'complete', ok: true, counts: { images: 4, embeddings: 4, thumbnails: 4, managedCopies: 4 } });
      expect(report.stages).toEqual([
        { stage: 'database', state: 'done', checked: 1, total: 1 },
        { stage: 'embeddings', state: 'done', checked: 4, total: 4 },
        { stage: 'thumbnails', state: 'done', checked: 4, total: 4 },
        { stage: 'managed-copies', state: 'done', checked: 4, total: 4 },
        { stage: 'repair', state: 'done', checked: 3, total: 3 },
      ]);
      // Stages arrive in order, each opened at 0 and closed at its total; every repair is reported.
      const order = events.map((event) => event.stage).filter((stage, index, all) => stage !== all[index - 1]);
      expect(order).toEqual(['database', 'embeddings', 'thumbnails', 'managed-copies', 'repair']);
      for (const stage of order) {
        const own = events.filter((event) => event.stage === stage);
        expect(own[0]).toMatchObject({ job: 'library-check', done: 0 });
        expect(own.at(-1)!.done).toBe(own[0]!.total);
        expect(own[0]!.message).toMatch(/stage \d of 5/);
      }
      expect(events.filter((event) => event.stage === 'repair').map((event) => event.done)).toEqual([0, 1, 2, 3]);
      expect(report.problems.map((problem) => [problem.kind, problem.imageId, problem.repaired])).toEqual([
        ['thumbnail', images[0]!.id, true],
        ['thumbnail', images[2]!.id, true],
        ['managed-copy', images[1]!.id, true],
      ]);
      for (const image of images) {
        expect(fs.existsSync(path.join(root, image.thumbnail_path))).toBe(true);
        expect(fs.readFileSync(path.join(root, image.managed_path))).toEqual(fs.readFileSync(image.original_path));
      }
    } finally {
      core.close();
    }
  });

  it('cancelled when the embeddings stage ends: reports the stages it finished, checks and repairs nothing more', async () => {
    const { root, images, report } = await repairCancelledAt((progress) => progress.stage === 'embeddings' && progress.done === progress.total);
    expect(report).toMatchObject({ status: 'cancelled', ok: false, counts: { images: 4, embeddings: 4, thumbnails: 0, managedCopies: 0 }, problems: [] });
    expect(report.stages.map((stage) => [stage.stage, stage.state, stage.checked])).toEqual([
      ['database', 'done', 1],
      ['embeddings', 'done', 4],
      ['thumbnails', 'not-run', 0],
      ['managed-copies', 'not-run', 0],
      ['repair', 'not-run', 0],
    ]);
    expect(fs.existsSync(path.join(root, images[0]!.thumbnail_path))).toBe(false);
    expect(fs.existsSync(path.join(root, images[1]!.managed_path))).toBe(false);
  });

  it('cancelled after the first repair: that file is whole, the others are left missing and say so, no temporary file remains', async () => {
    const { root, images, report } = await repairCancelledAt((progress) => progress.stage === 'repair' && progress.done === 1);
    expect(report.status).toBe('cancelled');
    expect(report.stages.at(-1)).toEqual({ stage: 'repair', state: 'cancelled', checked: 1, total: 3 });
    // Library copies are repaired first (a thumbnail is made again from the copy).
    expect(report.problems.map((problem) => [problem.kind, problem.imageId, problem.repaired])).toEqual([
      ['thumbnail', images[0]!.id, false],
      ['thumbnail', images[2]!.id, false],
      ['managed-copy', images[1]!.id, true],
    ]);
    expect(fs.readFileSync(path.join(root, images[1]!.managed_path))).toEqual(fs.readFileSync(images[1]!.original_path));
    expect(fs.existsSync(path.join(root, images[0]!.thumbnail_path))).toBe(false);
    expect(temporaryFiles(root)).toEqual([]);
  });

  // What fails is the embeddings table, changed behind the open core's back by another connection: once
  // when the stage counts its units (the table is gone), once while it checks them (a column is gone).
  for (const [when, damage, cause] of [
    ['counting', 'DROP TABLE embeddings', 'no such table: embeddings'],
    ['checking', 'ALTER TABLE embeddings DROP COLUMN vector', 'no such column: vector'],
  ] as const) {
    it(`a stage that cannot be read while ${when} is marked failed with the reason, and the later stages still run`, async () => {
      const root = path.join(scratch, `unreadable-${when}`);
      const library = openLibrary(root);
      insertSyntheticImages(library, 3);
      library.close();
      const core = createCore({ libraryFolder: root });
      try {
        const other = new Database(path.join(root, 'library.sqlite'));
        other.exec(damage);
        other.close();
        const report = await core.check.check();
        expect(report.stages.map((stage) => [stage.stage, stage.state])).toEqual([
          ['database', 'done'],
          ['embeddings', 'failed'],
          ['thumbnails', 'done'],
          ['managed-copies', 'done'],
        ]);
        expect(report.ok).toBe(false);
        expect(report.problems[0]).toEqual({
          kind: 'database',
          message: `Reading the library failed (embeddings): ${cause}`,
          file: path.join(root, 'library.sqlite'),
          repaired: false,
        });
        expect(report.counts.thumbnails).toBe(3);
      } finally {
        core.close();
      }
    });
  }

  it("runs as the app's library-check job: stage progress events, a report as its result, and jobCancel ends it as cancelled with what it checked", async () => {
    const { root } = await damagedLibrary();
    const api = createAppApi({ libraryFolder: root }, { mode: 'web', appVersion: 'test' });
    try {
      const events: AppEvent[] = [];
      let cancelAt: string | undefined;
      const unsubscribe = api.subscribe((event) => {
        events.push(event);
        // Cancelled the moment the thumbnails stage opens: its first image is the last unit checked.
        if (cancelAt && event.type === 'job-progress' && event.jobId === cancelAt && event.progress.stage === 'thumbnails' && event.progress.done === 0)
          api.jobs.cancel(cancelAt);
      });
      const whole = (await api.invoke('libraryCheck', {})) as { jobId: string };
      const finished: JobInfo = await api.jobs.settled(whole.jobId);
      expect(finished.state).toBe('success');
      const report = finished.result as LibraryCheckReport;
      expect(report).toMatchObject({ status: 'complete', ok: false, level: 'quick' });
      expect(report.problems.map((problem) => problem.kind)).toEqual(['thumbnail', 'thumbnail', 'managed-copy']);
      const stages = events.flatMap((event) => (event.type === 'job-progress' && event.jobId === whole.jobId ? [event.progress.stage] : []));
      expect(new Set(stages)).toEqual(new Set(['database', 'embeddings', 'thumbnails', 'managed-copies']));

      const started = (await api.invoke('libraryCheck', { repair: true })) as { jobId: string };
      cancelAt = started.jobId;
      const cancelled = await api.jobs.settled(started.jobId);
      unsubscribe();
      expect(cancelled.state).toBe('cancelled');
      const partial = cancelled.result as LibraryCheckReport;
      expect(partial).toMatchObject({ status: 'cancelled', ok: false });
      expect(partial.stages.map((stage) => [stage.stage, stage.state, stage.checked])).toEqual([
        ['database', 'done', 1],
        ['embeddings', 'done', 4],
        ['thumbnails', 'cancelled', 1],
        ['managed-copies', 'not-run', 0],
        ['repair', 'not-run', 0],
      ]);
      expect(events.some((event) => event.type === 'job-finished' && event.job.id === started.jobId && event.job.state === 'cancelled')).toBe(true);
    } finally {
      await api.close();
    }
  });

  it('dermws check stops on Ctrl-C (SIGINT) with exit 130, a clear message and what it checked so far', async () => {
    const root = path.join(scratch, `library-${++libraries}`);
    const library = openLibrary(root);
    // Enough images that the check lets the event loop turn (where Ctrl-C is handled) twice after the pipe.
    const count = 600;
    const ids = insertSyntheticImages(library, count);
    // Every image has a library copy; the first one's is missing, and its "original" is a named pipe:
    // the check blocks reading it until this test writes, which is the moment Ctrl-C is pressed.
    const fifo = path.join(scratch, `original-${libraries}.jpg`);
    execFileSync('mkfifo', [fifo]);
    const setManaged = library.db.prepare('UPDATE images SET managed_path = ?, original_path = ? WHERE id = ?');
    for (const [index, id] of ids.entries()) {
      const managed = `images/m/${id}.jpg`;
      setManaged.run(managed, index === 0 ? fifo : `/synthetic/${id}.jpg`, id);
      fs.mkdirSync(path.join(root, 'thumbnails'), { recursive: true });
      fs.writeFileSync(path.join(root, `thumbnails/${id}.webp`), 'thumbnail');
      if (index > 0) {
        fs.mkdirSync(path.dirname(path.join(root, managed)), { recursive: true });
        fs.writeFileSync(path.join(root, managed), 'copy');
      }
    }
    library.close();

    const child = spawn(process.execPath, [path.resolve('bin/dermws.js'), '--library', root, 'check', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    // Opening the pipe for writing completes only once the check has opened it for reading.
    const writer = await fs.promises.open(fifo, 'w');
    child.kill('SIGINT');
    await writer.write('not the original bytes');
    await writer.close();
    const code = await exited;
    expect(code, Buffer.concat(err).toString('utf8')).toBe(130);
    const report = JSON.parse(Buffer.concat(out).toString('utf8')) as LibraryCheckReport;
    expect(report.status).toBe('cancelled');
    expect(report.ok).toBe(false);
    const managedStage = report.stages.find((stage) => stage.stage === 'managed-copies')!;
    expect(managedStage).toMatchObject({ state: 'cancelled', total: count });
    expect(managedStage.checked).toBeLessThan(count);
    expect(report.stages.filter((stage) => stage.stage !== 'managed-copies' && stage.stage !== 'repair').every((stage) => stage.state === 'done')).toBe(true);
    expect(report.problems).toEqual([expect.objectContaining({ kind: 'managed-copy', imageId: ids[0], repaired: false })]);

    // Without --json the same cancel says so in words.
    const again = spawn(process.execPath, [path.resolve('bin/dermws.js'), '--library', root, 'check'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const words: Buffer[] = [];
    again.stdout.on('data', (chunk: Buffer) => words.push(chunk));
    const againExited = new Promise<number | null>((resolve) => again.on('close', (exitCode) => resolve(exitCode)));
    const secondWriter = await fs.promises.open(fifo, 'w');
    again.kill('SIGINT');
    await secondWriter.write('still not the original');
    await secondWriter.close();
    expect(await againExited).toBe(130);
    const text = Buffer.concat(words).toString('utf8');
    expect(text).toMatch(
      new RegExp(`Cancelled\\. Checked: database 1 of 1, embeddings 0 of 0, thumbnails ${count} of ${count}, managed-copies \\d+ of ${count} \\(stopped\\)\\.`),
    );
    expect(text).toMatch(/quick check \(cancelled; counts are what it checked\) of 600 images/);
    expect(text).toContain('Run the check again for a full report.');
  }, 60_000);
});
