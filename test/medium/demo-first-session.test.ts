import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDermws } from '../fixtures/cli-runner.js';

/**
 * The README's "first session", step by step through the CLI, on the demo library: `dermws demo`
 * generates, imports and embeds it with the real default encoder, and every later command of the
 * sequence must work on it and give the result the README promises.
 */
const root = path.resolve(import.meta.dirname, '../..');

describe("the README's first session on the demo library", () => {
  let folder: string;
  let library: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed CLI JSON: each test asserts the fields it reads
  let demo: any;
  const query = <T>(sql: string, ...params: unknown[]): T[] => {
    const db = new Database(path.join(library, 'library.sqlite'), { readonly: true });
    try {
      return db.prepare(sql).all(...params) as T[];
    } finally {
      db.close();
    }
  };

  beforeAll(async () => {
    process.env.DERMWS_MODEL_CACHE ??= path.join(root, 'native-models', 'generated');
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-demo-'));
    library = path.join(folder, 'library');
    const run = await runDermws('demo', '--library', library, '--json');
    expect(run.code).toBe(0);
    demo = run.json;
  });

  afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

  it('demo: SCIN-shaped cases on all six skin types, two condition readers, broken and duplicate files reported, everything embedded', () => {
    expect(demo).toMatchObject({ status: 'success', libraryFolder: library, cases: 62 });
    expect(demo.datasetImport.images).toMatchObject({ imported: 122, alreadyInLibrary: 1, failed: 2 });
    for (const broken of demo.brokenFiles) {
      expect(
        demo.datasetImport.issues.some((issue: { value?: string; message: string }) => `${issue.value ?? ''} ${issue.message}`.includes(path.basename(broken))),
      ).toBe(true);
    }
    expect(demo.embedding).toMatchObject({ status: 'success', embedded: 122, failed: [] });

    const types = query<{ value: string }>("SELECT DISTINCT value FROM labels WHERE kind = 'fitzpatrick' AND superseded_at IS NULL ORDER BY value").map(
      (row) => row.value,
    );
    expect(types).toEqual(['I', 'II', 'III', 'IV', 'V', 'VI']);
    const photosPerCase = query<{ n: number }>('SELECT COUNT(*) AS n FROM images GROUP BY case_id').map((row) => row.n);
    expect(new Set(photosPerCase)).toEqual(new Set([1, 2, 3]));
    const readers = query<{ name: string }>(
      "SELECT DISTINCT a.name FROM labels l JOIN annotators a ON a.id = l.annotator_id WHERE l.kind = 'condition' AND l.superseded_at IS NULL ORDER BY a.name",
    ).map((row) => row.name);
    expect(readers).toEqual(['demo-second-reader', 'scin-dermatologists']);
    expect(query<{ n: number }>("SELECT COUNT(DISTINCT image_id) AS n FROM image_metadata WHERE key = 'monk_tone_us'")[0]!.n).toBe(122);
    // The pixel copy is found as an exact duplicate.
    expect(query<{ n: number }>("SELECT COUNT(*) AS n FROM image_flags WHERE flag = 'duplicate'")[0]!.n).toBe(2);
  });

  it('a second run changes nothing and a demo into a library of your own is refused', async () => {
    const again = await runDermws('demo', '--library', library, '--json');
    expect(again.code).toBe(0);
    expect(again.json.datasetImport.images.imported).toBe(0);
    expect(again.json.embedding).toMatchObject({ embedded: 0, skipped: 122 });

    const own = path.join(folder, 'own');
    fs.mkdirSync(own);
    fs.copyFileSync(demo.outsidePhoto, path.join(own, 'mine.jpg'));
    const other = path.join(folder, 'other-library');
    expect((await runDermws('import', own, '--library', other, '--json')).code).toBe(0);
    const refused = await runDermws('demo', '--library', other);
    expect(refused.code).toBe(2);
  });

  it('embed, search with an outside photo, session create, probe train --top 5 and export all work on it', async () => {
    const embed = await runDermws('embed', '--library', library, '--json');
    expect(embed.code).toBe(0);
    expect(embed.json).toMatchObject({ status: 'success', embedded: 0, skipped: 122 });

    const search = await runDermws('search', demo.outsidePhoto, '-k', '10', '--library', library, '--json');
    expect(search.code).toBe(0);
    expect(search.json.results).toHaveLength(10);
    const similarities = search.json.results.map((hit: { similarity: number }) => hit.similarity);
    expect(similarities).toEqual([...similarities].sort((a: number, b: number) => b - a));

    const session = await runDermws(
      'session',
      'create',
      '--name',
      'triage',
      '--annotator',
      'ana',
      '--order',
      'unlabelled-first',
      '--library',
      library,
      '--json',
    );
    expect(session.code).toBe(0);
    expect(session.json).toMatchObject({ name: 'triage', annotator: 'ana', status: 'active', total: 122 });

    const probe = await runDermws('probe', 'train', '--top', '5', '--library', library, '--json');
    expect(probe.code).toBe(0);
    expect(probe.json).toMatchObject({ status: 'completed', labelKind: 'condition' });
    expect(probe.json.labels).toHaveLength(5);

    const exported = path.join(folder, 'exports', 'triage');
    const exportRun = await runDermws('export', exported, '--format', 'csv', 'npz', '--library', library, '--json');
    expect(exportRun.code).toBe(0);
    expect(exportRun.json.counts).toMatchObject({ images: 122, embeddings: 122 });
    expect(fs.readdirSync(exported)).toEqual(expect.arrayContaining(['images.csv', 'labels_long.csv', 'embeddings_nsfwjs-mobilenet-v2.npz']));
  });
});

describe('demo job control', () => {
  it('reports progress, stops on cancel, and a second run finishes the same library', async () => {
    const { createCore } = await import('../../electron/core/core.js');
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-demo-cancel-'));
    const core = createCore({ libraryFolder: path.join(folder, 'library') });
    try {
      const controller = new AbortController();
      const seen: Array<{ done: number; total: number; message?: string }> = [];
      await expect(
        core.demo.create({
          embed: false,
          cases: 12,
          signal: controller.signal,
          onProgress: (progress) => {
            seen.push(progress);
            if (progress.done === 3) controller.abort();
          },
        }),
      ).rejects.toMatchObject({ code: 'cancelled' });
      expect(seen[0]).toMatchObject({ done: 1, total: 24, message: 'Drawing the demo photos' });
      expect(core.library.db.prepare('SELECT COUNT(*) AS n FROM images').get()).toEqual({ n: 0 });

      const finished = await core.demo.create({ embed: false, cases: 12 });
      expect(finished.status).toBe('success');
      expect(finished.datasetImport.images).toMatchObject({ imported: 26, failed: 2 });
      expect(finished.embedding).toBeNull();
    } finally {
      core.close();
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
});
