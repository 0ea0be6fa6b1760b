import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { createCore } from '../../electron/core/core.js';
import { createImportServices } from '../../electron/core/core.js';
import type { ImportReport } from '../../electron/core/import/import.service.js';
import type { JobProgress } from '../../electron/core/jobs/job.js';
import { openLibrary } from '../../electron/core/library/library.js';
import { writeTinyEncoder } from '../fixtures/test-encoders.js';
import { runDermwsProcess, type CliProcessRun } from '../fixtures/cli-process.js';
import { writeSkinImage } from '../fixtures/skin-images.js';

// Several processes on one library: the app, the CLI and lab scripts all write the same
// library.sqlite. Every process here is a real `dermws` (bin/dermws.js); nothing is waited for by
// time: each test starts its processes together and checks what every one of them did.

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-concurrency-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

function failures(runs: CliProcessRun[]): string[] {
  return runs
    .filter((run) => run.code !== 0)
    .map((run) => `dermws ${run.args.join(' ')} → exit ${run.code}: ${run.stdout.slice(0, 400)} ${run.stderr.slice(0, 400)}`);
}

async function photoFolder(name: string, count: number, seed: number): Promise<string[]> {
  const files: string[] = [];
  for (let index = 0; index < count; index++) {
    files.push(await writeSkinImage(path.join(scratch, name, `photo-${index}.jpg`), { seed: seed + index, width: 160, height: 120 }));
  }
  return files;
}

describe('several processes on one library', () => {
  it('N processes opening a new library at once all reach the current schema (repeated)', async () => {
    for (let round = 0; round < 3; round++) {
      const root = path.join(scratch, `fresh-${round}`);
      const runs = await Promise.all(Array.from({ length: 6 }, () => runDermwsProcess(['--library', root, 'info', '--json'])));
      expect(failures(runs)).toEqual([]);
      const versions = new Set(runs.map((run) => run.json.schemaVersion));
      expect(versions.size).toBe(1);
      const db = new Database(path.join(root, 'library.sqlite'), { readonly: true });
      const recorded = db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as Array<{ version: number }>;
      db.close();
      expect(recorded.map((row) => row.version)).toEqual(Array.from({ length: recorded.length }, (_, index) => index + 1));
      expect(recorded.length).toBe([...versions][0]);
    }
  }, 300_000);

  it('16 writers at once (label, import, embed, session record) all succeed and every row is there', async () => {
    const root = path.join(scratch, 'writers');
    const library = ['--library', root];
    const base = await photoFolder('base', 10, 1);
    const first = await runDermwsProcess([...library, 'import', path.join(scratch, 'base'), '--json']);
    expect(failures([first])).toEqual([]);
    expect(first.json.imported).toBe(base.length);
    await writeTinyEncoder({ folder: path.join(root, 'models'), id: 'tiny', size: 32, dim: 16, seed: 5 });
    const imageIds: number[] = first.json.outcomes.map((outcome: { imageId: number }) => outcome.imageId);
    const sessions: Array<{ id: number; imageId: number }> = [];
    for (let index = 0; index < 4; index++) {
      const imageId = imageIds[6 + index]!;
      const created = await runDermwsProcess([
        ...library,
        'session',
        'create',
        '--name',
        `s${index}`,
        '--annotator',
        `reader-${index}`,
        '--images',
        String(imageId),
        '--json',
      ]);
      expect(failures([created])).toEqual([]);
      sessions.push({ id: created.json.id, imageId });
    }
    const folders = ['batch-a', 'batch-b', 'batch-c', 'batch-d'];
    const newFiles: string[] = [];
    for (const [index, folder] of folders.entries()) newFiles.push(...(await photoFolder(folder, 3, 100 + index * 10)));

    const writers = [
      ...imageIds
        .slice(0, 6)
        .map((imageId, index) => [
          ...library,
          'label',
          String(imageId),
          '--kind',
          'condition',
          '--value',
          'eczema',
          '--annotator',
          `labeller-${index}`,
          '--json',
        ]),
      ...folders.map((folder) => [...library, 'import', path.join(scratch, folder), '--json']),
      [...library, 'embed', '--model', 'tiny', '--json'],
      [...library, 'embed', '--model', 'tiny', '--json'],
      ...sessions.map((session) => [...library, 'session', 'record', String(session.id), String(session.imageId), '--label', 'condition=psoriasis', '--json']),
    ];
    expect(writers.length).toBe(16);
    const runs = await Promise.all(writers.map((args) => runDermwsProcess(args, { DERMWS_EXECUTION_PROVIDERS: 'cpu' })));
    expect(failures(runs)).toEqual([]);

    const db = new Database(path.join(root, 'library.sqlite'), { readonly: true });
    try {
      const originals = (db.prepare('SELECT original_path FROM images').all() as Array<{ original_path: string }>).map((row) => row.original_path);
      expect(new Set(originals)).toEqual(new Set([...base, ...newFiles]));
      const labels = db
        .prepare(
          "SELECT a.name AS annotator, l.image_id AS imageId, l.value FROM labels l JOIN annotators a ON a.id = l.annotator_id WHERE l.kind = 'condition' AND l.superseded_at IS NULL ORDER BY a.name",
        )
        .all();
      expect(labels).toEqual([
        ...imageIds.slice(0, 6).map((imageId, index) => ({ annotator: `labeller-${index}`, imageId, value: 'eczema' })),
        ...sessions.map((session, index) => ({ annotator: `reader-${index}`, imageId: session.imageId, value: 'psoriasis' })),
      ]);
      // Every image present before the embed processes started has its embedding (later ones may too).
      const embedded = new Set(
        (db.prepare("SELECT image_id FROM embeddings WHERE model_id = 'tiny'").all() as Array<{ image_id: number }>).map((row) => row.image_id),
      );
      for (const imageId of imageIds) expect(embedded.has(imageId)).toBe(true);
      // Each import reports exactly what it did, and its stored batch agrees.
      for (const run of runs.filter((each) => each.args.includes('import'))) {
        expect(run.json).toMatchObject({ status: 'success', imported: 3, duplicates: 0, failed: 0 });
        const batch = db.prepare('SELECT status, imported FROM import_batches WHERE id = ?').get(run.json.batchId);
        expect(batch).toEqual({ status: 'completed', imported: 3 });
      }
    } finally {
      db.close();
    }
  }, 600_000);
});

/** Each report's imported images are exactly the images stored under its batch, and the batch row counts them. */
function expectReportsMatchStore(root: string, reports: Array<Pick<ImportReport, 'batchId' | 'imported' | 'duplicates'>>): void {
  const db = new Database(path.join(root, 'library.sqlite'), { readonly: true });
  try {
    for (const report of reports) {
      const stored = db.prepare('SELECT COUNT(*) AS n FROM images WHERE batch_id = ?').get(report.batchId) as { n: number };
      expect(stored.n).toBe(report.imported);
      expect(db.prepare('SELECT status, imported, duplicates FROM import_batches WHERE id = ?').get(report.batchId)).toEqual({
        status: 'completed',
        imported: report.imported,
        duplicates: report.duplicates,
      });
    }
  } finally {
    db.close();
  }
}

describe('import batches and the process that owns them', () => {
  it('an import of the same paths while another is live gets a batch of its own; each report matches what it stored', async () => {
    const files = await photoFolder('same-paths', 5, 300);
    const folder = path.join(scratch, 'same-paths');
    const root = path.join(scratch, 'same-paths-library');
    // Two connections, as two processes (or the app and its web mode) would have.
    const first = openLibrary(root);
    const second = openLibrary(root);
    try {
      const importerA = createImportServices(first).import;
      const importerB = createImportServices(second).import;
      let letGo!: () => void;
      const gate = new Promise<void>((resolve) => (letGo = resolve));
      let firstCommitted!: () => void;
      const oneCommitted = new Promise<void>((resolve) => (firstCommitted = resolve));
      // A stops right after its first image is committed, its batch running, until B has finished.
      const running = importerA.importPaths([folder], {
        concurrency: 1,
        onDecoded: async () => {
          firstCommitted();
          await gate;
        },
      });
      await oneCommitted;
      const b = await importerB.importPaths([folder], { concurrency: 1 });
      letGo();
      const a = await running;
      expect(b.batchId).not.toBe(a.batchId);
      expect(b.resumed).toBe(false);
      expect(a).toMatchObject({ status: 'success', imported: 1, duplicates: files.length - 1 });
      expect(b).toMatchObject({ status: 'success', imported: files.length - 1, duplicates: 1 });
      expectReportsMatchStore(root, [a, b]);
    } finally {
      first.close();
      second.close();
    }
  });

  it('two dermws import processes of the same folder: every image stored once, each batch counts what its run imported', async () => {
    const files = await photoFolder('two-processes', 8, 400);
    const root = path.join(scratch, 'two-processes-library');
    const args = ['--library', root, 'import', path.join(scratch, 'two-processes'), '--json'];
    const runs = await Promise.all([runDermwsProcess(args), runDermwsProcess(args)]);
    expect(failures(runs)).toEqual([]);
    const [a, b] = runs.map((run) => run.json as ImportReport);
    expect(a!.batchId).not.toBe(b!.batchId);
    expect(a!.imported + b!.imported).toBe(files.length);
    expectReportsMatchStore(root, [a!, b!]);
  }, 300_000);

  it('a batch left running by a killed import is recovered at the next open with its real counts, then resumed', async () => {
    const files = await photoFolder('killed', 6, 500);
    const folder = path.join(scratch, 'killed');
    const root = path.join(scratch, 'killed-library');
    const child = spawn(process.execPath, [path.join(import.meta.dirname, '../fixtures/import-then-die.child.mjs'), root, folder, '2'], { stdio: 'ignore' });
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, killedBy) => resolve(killedBy)));
    expect(signal).toBe('SIGKILL');
    const left = new Database(path.join(root, 'library.sqlite'), { readonly: true });
    expect(left.prepare('SELECT status, imported FROM import_batches').all()).toEqual([{ status: 'running', imported: 0 }]);
    left.close();

    // Opening the library finds the batch's process gone: interrupted (nobody cancelled it), with the
    // counts of what the killed run committed.
    const core = createCore({ libraryFolder: root });
    try {
      const [batch] = core.importBatches.list();
      expect(batch).toMatchObject({ status: 'interrupted', totalFiles: files.length, imported: 2, duplicates: 0, failed: 0, finishedAt: null });
      expect(core.images.count()).toBe(2);
      const progress: JobProgress[] = [];
      const resumed = await core.import.importPaths([folder], { onProgress: (event) => progress.push(event) });
      expect(resumed).toMatchObject({ batchId: batch!.id, resumed: true, status: 'success', total: files.length, imported: files.length, duplicates: 0 });
      // Resuming starts from the two images the killed run stored, as resuming a cancelled batch does.
      expect(progress[0]).toMatchObject({ done: 2, total: files.length });
      expect(core.importBatches.list()).toHaveLength(1);
      expect(core.importBatches.get(batch!.id)).toMatchObject({ status: 'completed', imported: files.length });
      expect(core.images.count()).toBe(files.length);
    } finally {
      core.close();
    }
  }, 120_000);
});
