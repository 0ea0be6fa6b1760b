import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { writeBrokenFiles, writeSkinImage } from '../fixtures/skin-images.js';
import { tempFolder } from './import-helpers.js';
import { runDermws } from '../fixtures/cli-runner.js';

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) fs.rmSync(folder, { recursive: true, force: true });
});
function folder(): string {
  const created = tempFolder('dermws-cli-library-');
  folders.push(created);
  return created;
}

const dermws = runDermws;

describe('dermws import / info / qc', () => {
  it('imports with stable JSON and exit codes: 0 all imported or duplicates, 1 some failed, 2 could not run', async () => {
    const root = folder();
    const library = path.join(root, 'library');
    const photos = path.join(root, 'photos');
    for (let index = 0; index < 3; index++) await writeSkinImage(path.join(photos, `photo ${index}.jpg`), { seed: index, width: 320, height: 240 });

    const first = await dermws('--library', library, 'import', photos, '--json');
    expect(first.code).toBe(0);
    expect(Object.keys(first.json).sort()).toEqual(['batchId', 'duplicates', 'failed', 'imported', 'outcomes', 'resumed', 'skipped', 'status', 'total']);
    expect(first.json).toMatchObject({ status: 'success', imported: 3, duplicates: 0, failed: 0, total: 3 });
    expect(first.json.outcomes[0]).toEqual({ path: expect.stringContaining('photo'), outcome: 'imported', imageId: expect.any(Number) });

    const again = await dermws('--library', library, 'import', photos);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/0 imported, 3 already in the library/);
    expect(again.stdout).toMatch(/Nothing new/);

    const broken = path.join(root, 'broken');
    await writeBrokenFiles(broken);
    const partial = await dermws('--library', library, 'import', broken, '--copy', '--json');
    expect(partial.code).toBe(1);
    expect(partial.json).toMatchObject({ status: 'failed', imported: 0, failed: 5, skipped: 1 });
    const human = await dermws('--library', library, 'import', path.join(broken, 'truncated.jpg'));
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/failed {3}.*truncated\.jpg: The image is truncated/);

    const unusable = path.join(root, 'not-a-library');
    fs.mkdirSync(unusable);
    fs.writeFileSync(path.join(unusable, 'library.sqlite'), 'this is not a database, just text that is long enough');
    const couldNot = await dermws('--library', unusable, 'import', photos, '--json');
    expect(couldNot.code).toBe(2);
    expect(couldNot.json.error.code).toBe('library-unreadable');

    const info = await dermws('--library', library, 'info', '--json');
    expect(info.code).toBe(0);
    // libraryOverview: batches newest first, flags as counts of the flags images carry.
    expect(info.json).toMatchObject({ images: 3, deletedImages: 0, formats: { jpeg: 3 }, batchCount: 4 });
    expect(info.json.batches).toHaveLength(4);
    expect(info.json.batches[0]).toMatchObject({ status: 'completed', imported: 0, failed: 1 });
    expect(info.json.schemaVersion).toBeGreaterThanOrEqual(1);
    const qc = await dermws('--library', library, 'qc', '--json');
    expect(info.json.flaggedImages).toBe(qc.json.flaggedImages);
    expect(Object.fromEntries(info.json.flags.map((entry: { flag: string; count: number }) => [entry.flag, entry.count]))).toEqual(
      Object.fromEntries(Object.entries(qc.json.flagCounts).filter(([, count]) => count !== 0)),
    );
    const told = await dermws('--library', library, 'info');
    expect(told.stdout).toContain(`Library ${library}`);
  });

  it('qc shows flag counts and thresholds; --set validates, stores and re-flags', async () => {
    const root = folder();
    const library = path.join(root, 'library');
    const photos = path.join(root, 'photos');
    for (let index = 0; index < 2; index++)
      await writeSkinImage(path.join(photos, `p${index}.png`), { seed: 10 + index, width: 480, height: 360, format: 'png' });
    expect((await dermws('--library', library, 'import', photos, '--json')).code).toBe(0);

    const plain = await dermws('--library', library, 'qc', '--json');
    expect(plain.code).toBe(0);
    expect(plain.json).toMatchObject({ images: 2, flagCounts: { low_resolution: 0, blurry: 0 } });
    expect(plain.json.thresholds.lowResolutionBelow).toBe(300);

    const set = await dermws('--library', library, 'qc', '--set', 'lowResolutionBelow=1000', 'blurryAbove=0.05', '--json');
    expect(set.code).toBe(0);
    expect(set.json).toMatchObject({
      flaggedImages: 2,
      flagCounts: { low_resolution: 2, blurry: 2 },
      changed: [
        { name: 'lowResolutionBelow', from: 300, to: 1000 },
        { name: 'blurryAbove', from: 0.6, to: 0.05 },
      ],
    });

    const bad = await dermws('--library', library, 'qc', '--set', 'lowResolutionBelow=-5', '--json');
    expect(bad.code).toBe(2);
    expect(bad.json.error.message).toMatch(/lowResolutionBelow/);
    const unknown = await dermws('--library', library, 'qc', '--set', 'sharpness=1', '--json');
    expect(unknown.code).toBe(2);
    expect(unknown.json.error.message).toMatch(/Unknown quality threshold "sharpness"/);
    const after = await dermws('--library', library, 'qc', '--json');
    expect(after.json.thresholds).toMatchObject({ lowResolutionBelow: 1000, blurryAbove: 0.05 });
  });

  it('finishes an import whose process was killed, without duplicates or holes', async () => {
    const root = folder();
    const library = path.join(root, 'library');
    const photos = path.join(root, 'photos');
    const count = 24;
    for (let index = 0; index < count; index++)
      await writeSkinImage(path.join(photos, `k${String(index).padStart(2, '0')}.jpg`), { seed: 700 + index, width: 320, height: 240 });

    // The importing process kills itself right after its third image is committed: a kill mid-import at
    // a fixed point, however fast or loaded the machine is.
    const child = spawn(process.execPath, ['test/fixtures/import-then-die.child.mjs', library, photos, '3'], { stdio: 'ignore' });
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, killedBy) => resolve(killedBy)));
    expect(signal).toBe('SIGKILL');

    const info = await dermws('--library', library, 'info', '--json');
    expect(info.json.batches[0]).toMatchObject({ status: 'interrupted', total: count, imported: 3, duplicates: 0, failed: 0, finishedAt: null });
    const told = await dermws('--library', library, 'info');
    expect(told.stdout).toMatch(/Last import: batch \d+, interrupted, .* — 3 imported, 0 duplicates, 0 failed of 24/);
    expect(told.stdout).toContain('Run the same import again to resume it.');

    const resumed = await dermws('--library', library, 'import', photos, '--json');
    expect(resumed.code).toBe(0);
    expect(resumed.json).toMatchObject({ status: 'success', resumed: true, total: count, imported: count, duplicates: 0, failed: 0 });
    const db = new Database(path.join(library, 'library.sqlite'), { readonly: true });
    const rows = db.prepare('SELECT original_path, thumbnail_path FROM images').all() as Array<{ original_path: string; thumbnail_path: string }>;
    const batches = db.prepare('SELECT status FROM import_batches').all() as Array<{ status: string }>;
    db.close();
    expect(rows).toHaveLength(count);
    expect(new Set(rows.map((row) => row.original_path)).size).toBe(count);
    for (const row of rows) expect(fs.existsSync(path.join(library, row.thumbnail_path))).toBe(true);
    // The killed run's batch was resumed rather than a second one started.
    expect(batches.map((batch) => batch.status)).toEqual(['completed']);
  });
});
