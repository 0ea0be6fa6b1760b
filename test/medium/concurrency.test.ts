import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { writeTinyEncoder } from '../../native-models/test-encoders.js';
import { runDermwsProcess, type CliProcessRun } from '../fixtures/cli-process.js';
import { writeSkinImage } from '../fixtures/skin-images.js';

// Several processes on one library: the app, the CLI and lab scripts all write the same
// library.sqlite. Every process here is a real `dermws` (bin/dermws.js); nothing is waited for by
// time: each test starts its processes together and checks what every one of them did.

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-concurrency-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

function failures(runs: CliProcessRun[]): string[] {
  return runs.filter((run) => run.code !== 0).map((run) => `dermws ${run.args.join(' ')} → exit ${run.code}: ${run.stdout.slice(0, 400)} ${run.stderr.slice(0, 400)}`);
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
    for (let round = 0; round < 4; round++) {
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
      const created = await runDermwsProcess([...library, 'session', 'create', '--name', `s${index}`, '--annotator', `reader-${index}`, '--images', String(imageId), '--json']);
      expect(failures([created])).toEqual([]);
      sessions.push({ id: created.json.id, imageId });
    }
    const folders = ['batch-a', 'batch-b', 'batch-c', 'batch-d'];
    const newFiles: string[] = [];
    for (const [index, folder] of folders.entries()) newFiles.push(...(await photoFolder(folder, 3, 100 + index * 10)));

    const writers = [
      ...imageIds.slice(0, 6).map((imageId, index) => [...library, 'label', String(imageId), '--kind', 'condition', '--value', 'eczema', '--annotator', `labeller-${index}`, '--json']),
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
        .prepare("SELECT a.name AS annotator, l.image_id AS imageId, l.value FROM labels l JOIN annotators a ON a.id = l.annotator_id WHERE l.kind = 'condition' AND l.superseded_at IS NULL ORDER BY a.name")
        .all();
      expect(labels).toEqual([
        ...imageIds.slice(0, 6).map((imageId, index) => ({ annotator: `labeller-${index}`, imageId, value: 'eczema' })),
        ...sessions.map((session, index) => ({ annotator: `reader-${index}`, imageId: session.imageId, value: 'psoriasis' })),
      ]);
      // Every image present before the embed processes started has its embedding (later ones may too).
      const embedded = new Set((db.prepare("SELECT image_id FROM embeddings WHERE model_id = 'tiny'").all() as Array<{ image_id: number }>).map((row) => row.image_id));
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
