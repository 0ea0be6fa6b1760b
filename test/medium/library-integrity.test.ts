import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { isDermError } from '../../electron/common/errors.js';
import { createAppApi } from '../../electron/core/app-api/create-app-api.js';
import { createCore } from '../../electron/core/core.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { vectorToBlob } from '../../electron/core/embeddings/vector-codec.js';
import { explainLibraryError } from '../../electron/core/library/library-errors.js';
import { openLibrary } from '../../electron/core/library/library.js';
import { runDermws } from '../fixtures/cli-runner.js';
import { insertSyntheticImages } from '../fixtures/library-fixture.js';
import { writeSkinImage } from '../fixtures/skin-images.js';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-integrity-'));
const cleanups: Array<() => void> = [];
afterAll(() => {
  for (const cleanup of cleanups.reverse()) cleanup();
  fs.rmSync(scratch, { recursive: true, force: true });
});

let libraryCount = 0;
function freshRoot(): string {
  return path.join(scratch, `library-${++libraryCount}`);
}

/** Post-ReLU-like vectors: non-negative with many zeros. */
function reluVector(seed: number, dim: number): Float32Array {
  const vector = new Float32Array(dim);
  for (let index = 0; index < dim; index++) vector[index] = (index * 7 + seed * 13) % 5 < 2 ? 0 : ((index + seed) % 11) / 10;
  return vector;
}

/** A library with `count` image rows and an embedding of each under model "m16". */
function libraryWithEmbeddings(count: number): { root: string; ids: number[] } {
  const root = freshRoot();
  const library = openLibrary(root);
  const ids = insertSyntheticImages(library, count);
  const repository = new EmbeddingsRepository(library.db);
  repository.registerModel({ id: 'm16', displayName: 'test vectors', dim: 16, sha256: 'a'.repeat(64), source: 'imported', preprocessing: null });
  repository.put(
    'm16',
    'a'.repeat(64),
    ids.map((imageId) => ({ imageId, vector: reluVector(imageId, 16) })),
  );
  library.close();
  return { root, ids };
}

describe('embeddings that are not finite', () => {
  it('are refused when stored, naming the image and model, and nothing of the batch is kept', () => {
    const { root, ids } = libraryWithEmbeddings(3);
    const library = openLibrary(root);
    try {
      const repository = new EmbeddingsRepository(library.db);
      const bad = reluVector(1, 16);
      bad[5] = Number.NaN;
      let caught: unknown;
      try {
        repository.put('m16', 'a'.repeat(64), [
          { imageId: ids[0]!, vector: reluVector(9, 16) },
          { imageId: ids[1]!, vector: bad },
        ]);
      } catch (error) {
        caught = error;
      }
      expect(isDermError(caught, 'embeddings-invalid')).toBe(true);
      expect((caught as Error).message).toMatch(new RegExp(`image ${ids[1]} for model "m16" has NaN at value 5`));
      // The first row of the refused batch did not replace the stored vector either.
      expect(Array.from(repository.get('m16', ids[0]!)!)).toEqual(Array.from(reluVector(ids[0]!, 16)));
    } finally {
      library.close();
    }
  });

  it('stored damaged (a NaN written over a vector) stop the index build with a clear error and show in dermws check', async () => {
    const { root, ids } = libraryWithEmbeddings(12);
    const db = new Database(path.join(root, 'library.sqlite'));
    const damaged = reluVector(ids[4]!, 16);
    damaged[3] = Number.NaN;
    db.prepare("UPDATE embeddings SET vector = ? WHERE image_id = ? AND model_id = 'm16'").run(vectorToBlob(damaged), ids[4]);
    db.prepare("UPDATE embeddings SET vector = ? WHERE image_id = ? AND model_id = 'm16'").run(Buffer.alloc(10), ids[7]);
    db.close();

    const rebuild = await runDermws('--library', root, 'index', 'rebuild', '--model', 'm16', '--json');
    expect(rebuild.code).toBe(2);
    expect(rebuild.json.error.code).toBe('embeddings-invalid');
    expect(rebuild.json.error.message).toMatch(new RegExp(`image ${ids[4]} for model "m16" .*damaged`));

    // Everything else that reads all of a model's vectors at once (probes, export, the map) refuses too.
    const library = openLibrary(root);
    try {
      expect(() => new EmbeddingsRepository(library.db).matrix('m16')).toThrow(/damaged|values; expected 16/);
    } finally {
      library.close();
    }

    const check = await runDermws('--library', root, 'check', '--json');
    expect(check.code).toBe(1);
    expect(check.json.ok).toBe(false);
    const embeddingProblems = check.json.problems.filter((problem: { kind: string }) => problem.kind === 'embedding');
    expect(embeddingProblems.map((problem: { imageId: number }) => problem.imageId).sort((a: number, b: number) => a - b)).toEqual([ids[4], ids[7]]);
    expect(embeddingProblems.find((problem: { imageId: number }) => problem.imageId === ids[7]).message).toMatch(/10 bytes/);
  });
});

describe('damage to library.sqlite', () => {
  it('a damaged schema record is reported as damage, not as a library from a newer version', () => {
    const root = freshRoot();
    openLibrary(root).close();
    const db = new Database(path.join(root, 'library.sqlite'));
    db.prepare('UPDATE schema_migrations SET version = 8043 WHERE version = 3').run();
    db.close();
    let caught: unknown;
    try {
      openLibrary(root);
    } catch (error) {
      caught = error;
    }
    expect(isDermError(caught, 'library-unreadable')).toBe(true);
    expect((caught as Error).message).toMatch(/is damaged: schema_migrations holds version 4 where 3 was expected/);
    expect((caught as Error).message).not.toMatch(/newer version/);
  });

  it('dermws check --full reports overwritten pages, naming the library', async () => {
    const root = freshRoot();
    const library = openLibrary(root);
    insertSyntheticImages(library, 3000, { metadataOf: (index) => ({ site: `site-${index % 17}`, note: `note ${index}` }) });
    library.db.pragma('wal_checkpoint(TRUNCATE)');
    library.close();
    const file = path.join(root, 'library.sqlite');
    const pageSize = 4096;
    const pages = fs.statSync(file).size / pageSize;
    // Overwrite three pages in the last third of the file (index and table leaves), as a bad disk would.
    const handle = fs.openSync(file, 'r+');
    for (const page of [Math.floor(pages * 0.7), Math.floor(pages * 0.8), Math.floor(pages * 0.9)]) {
      fs.writeSync(handle, Buffer.alloc(pageSize, 0x5a), 0, pageSize, page * pageSize);
    }
    fs.closeSync(handle);

    const full = await runDermws('--library', root, 'check', '--full', '--json');
    expect(full.code).toBe(1);
    expect(full.json).toMatchObject({ library: root, level: 'full', ok: false });
    expect(full.json.problems[0]).toMatchObject({
      kind: 'database',
      file: path.join(root, 'library.sqlite'),
      message: expect.stringMatching(/malformed|corrupt|page/),
    });
  });
});

describe('temporary files and missing files', () => {
  it('removes temporary files of writers that are gone at open, and keeps those of a live writer', () => {
    const root = freshRoot();
    openLibrary(root).close();
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(gone.stdout);
    const dead = [
      path.join(root, 'thumbnails', 'ab', `${'ab'.repeat(32)}.webp.${deadPid}.0123abcd.tmp`),
      path.join(root, 'images', 'cd', `${'cd'.repeat(32)}.jpg.${deadPid}.89abcdef.tmp`),
      path.join(root, 'indexes', `m16.hnsw.${deadPid}.partial`),
    ];
    const live = path.join(root, 'thumbnails', 'ef', `${'ef'.repeat(32)}.webp.${process.pid}.fedcba98.tmp`);
    const unrelated = path.join(root, 'images', 'cd', 'notes.tmp');
    for (const file of [...dead, live, unrelated]) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, Buffer.alloc(1024, 1));
    }
    const core = createCore({ libraryFolder: root });
    core.close();
    for (const file of dead) expect(fs.existsSync(file)).toBe(false);
    expect(fs.existsSync(live)).toBe(true);
    expect(fs.existsSync(unrelated)).toBe(true);
  });

  it('dermws check --repair regenerates a deleted thumbnail and restores a lost library copy from the unchanged original', async () => {
    const root = freshRoot();
    const photos = path.join(scratch, `photos-${libraryCount}`);
    const files: string[] = [];
    for (let index = 0; index < 3; index++) files.push(await writeSkinImage(path.join(photos, `p${index}.jpg`), { seed: 40 + index, width: 200, height: 150 }));
    const imported = await runDermws('--library', root, 'import', photos, '--copy', '--json');
    expect(imported.code).toBe(0);
    const db = new Database(path.join(root, 'library.sqlite'), { readonly: true });
    const rows = db.prepare('SELECT id, original_path, managed_path, thumbnail_path FROM images ORDER BY id').all() as Array<{
      id: number;
      original_path: string;
      managed_path: string;
      thumbnail_path: string;
    }>;
    db.close();
    const [first, second, third] = rows;
    const thumbnail = path.join(root, first!.thumbnail_path);
    const thumbnailBytes = fs.readFileSync(thumbnail);
    fs.rmSync(thumbnail);
    fs.rmSync(path.join(root, second!.managed_path));
    // The third loses both its library copy and its original: it can only be reported.
    fs.rmSync(path.join(root, third!.managed_path));
    fs.rmSync(third!.original_path);

    const check = await runDermws('--library', root, 'check', '--json');
    expect(check.code).toBe(1);
    expect(
      check.json.problems.map((problem: { kind: string; imageId: number; repaired: boolean }) => [problem.kind, problem.imageId, problem.repaired]),
    ).toEqual([
      ['thumbnail', first!.id, false],
      ['managed-copy', second!.id, false],
      ['managed-copy', third!.id, false],
    ]);

    const repair = await runDermws('--library', root, 'check', '--repair', '--json');
    expect(
      repair.json.problems.map((problem: { kind: string; imageId: number; repaired: boolean }) => [problem.kind, problem.imageId, problem.repaired]),
    ).toEqual([
      ['thumbnail', first!.id, true],
      ['managed-copy', second!.id, true],
      ['managed-copy', third!.id, false],
    ]);
    expect(repair.json.problems[2].message).toContain(third!.original_path);
    expect(repair.code).toBe(1);
    expect(fs.readFileSync(thumbnail)).toEqual(thumbnailBytes);
    expect(fs.readFileSync(path.join(root, second!.managed_path))).toEqual(fs.readFileSync(second!.original_path));
  });
});

/** Makes `folder` read-only as removable media would be: a read-only bind mount when allowed, else file modes (not root). */
function readOnlyView(folder: string): string | undefined {
  const view = `${folder}-ro`;
  fs.mkdirSync(view, { recursive: true });
  try {
    execFileSync('mount', ['--bind', folder, view], { stdio: 'ignore' });
    try {
      execFileSync('mount', ['-o', 'remount,ro,bind', view], { stdio: 'ignore' });
    } catch {
      execFileSync('umount', [view], { stdio: 'ignore' });
      throw new Error('no read-only remount');
    }
    cleanups.push(() => execFileSync('umount', [view], { stdio: 'ignore' }));
    return view;
  } catch {
    fs.rmdirSync(view);
    if (process.getuid?.() === 0) return undefined;
    execFileSync('chmod', ['-R', 'a-w', folder]);
    cleanups.push(() => execFileSync('chmod', ['-R', 'u+w', folder]));
    return folder;
  }
}

describe('a library on read-only media', () => {
  it('opens for reading with readOnly set, and every change is refused naming the library', async (context) => {
    const root = freshRoot();
    const library = openLibrary(root);
    const [imageId] = insertSyntheticImages(library, 2);
    // An unfinished import of this folder: importing it again would resume it (and take its lock).
    const photos = path.join(scratch, 'read-only-photos');
    await writeSkinImage(path.join(photos, 'a.jpg'), { seed: 3, width: 120, height: 90 });
    library.db
      .prepare("INSERT INTO import_batches (started_at, status, source_paths) VALUES (?, 'cancelled', ?)")
      .run(new Date().toISOString(), JSON.stringify([photos]));
    library.close();
    const view = readOnlyView(root);
    if (!view) return context.skip('needs a read-only bind mount (root without mount permission)');

    const info = await runDermws('--library', view, 'info', '--json');
    expect(info.code).toBe(0);
    expect(info.json.images).toBe(2);
    const core = createCore({ libraryFolder: view });
    try {
      expect(core.library.readOnly).toBe(true);
    } finally {
      core.close();
    }
    // The app shows a read-only banner from appInfo, and a refused change reaches it with the same plain error.
    const api = createAppApi({ libraryFolder: view }, { mode: 'web', appVersion: 'test' });
    try {
      expect(await api.invoke('appInfo', {})).toMatchObject({ readOnly: true, libraryFolder: view });
      await expect(api.invoke('settingsSet', { key: 'theme', value: 'dark' })).rejects.toMatchObject({
        code: 'read-only',
        message: expect.stringContaining(view),
      });
      // Synthetic rows have no thumbnail files: the check lists them and, read-only, repairs nothing.
      const { jobId } = (await api.invoke('libraryCheck', { repair: true })) as { jobId: string };
      const checked = await api.jobs.settled(jobId);
      expect(checked.result).toMatchObject({
        status: 'complete',
        ok: false,
        counts: { images: 2 },
        problems: [
          { kind: 'thumbnail', repaired: false },
          { kind: 'thumbnail', repaired: false },
        ],
      });
      expect((checked.result as { stages: Array<{ stage: string; state: string }> }).stages.at(-1)).toMatchObject({ stage: 'repair', state: 'not-run' });
    } finally {
      await api.close();
    }
    const label = await runDermws('--library', view, 'label', String(imageId), '--kind', 'condition', '--value', 'eczema', '--annotator', 'ana', '--json');
    expect(label.code).toBe(2);
    expect(label.json.error.code).toBe('read-only');
    expect(label.json.error.message).toContain(view);
    const imported = await runDermws('--library', view, 'import', photos, '--json');
    expect(imported.code).toBe(2);
    expect(imported.json.error).toMatchObject({ code: 'read-only', message: expect.stringContaining(view) });
    // Nothing was written next to the database (no -wal, no -shm, no lock files).
    expect(fs.readdirSync(root).sort()).toEqual(
      ['exports', 'images', 'indexes', 'library.sqlite', 'models', 'thumbnails'].filter((name) => fs.existsSync(path.join(root, name))),
    );
  });
});

describe('errors that name the library and the file', () => {
  it('a full disk in SQLite names the library and its database', () => {
    const root = freshRoot();
    const library = openLibrary(root);
    try {
      insertSyntheticImages(library, 5);
      const pages = library.db.pragma('page_count', { simple: true }) as number;
      // SQLite answers SQLITE_FULL once the file may not grow, exactly as on a full disk.
      library.db.pragma(`max_page_count = ${pages}`);
      let caught: unknown;
      try {
        insertSyntheticImages(library, 2000);
      } catch (error) {
        caught = explainLibraryError(error, library.paths);
      }
      expect((caught as Error).message).toMatch(/disk holding the library .* is full/);
      expect((caught as Error).message).toContain(library.paths.root);
      expect((caught as Error).message).toContain(library.paths.database);
    } finally {
      library.close();
    }
  });

  it('an index path that is a folder names the file and the library', async () => {
    const { root } = libraryWithEmbeddings(20);
    const core = createCore({ libraryFolder: root });
    const indexFile = core.index.indexFile('m16');
    core.close();
    fs.mkdirSync(indexFile, { recursive: true });
    const rebuild = await runDermws('--library', root, 'index', 'rebuild', '--model', 'm16', '--json');
    expect(rebuild.code).toBe(2);
    expect(rebuild.json.error.message).toContain(indexFile);
    expect(rebuild.json.error.message).toContain(root);
    expect(rebuild.json.error.message).not.toMatch(/^EISDIR/);
  });
});
