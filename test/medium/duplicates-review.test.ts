import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createAppApi } from '../../electron/core/app-api/create-app-api.js';
import type { AppApi } from '../../electron/core/app-api/app-api.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { seededRandom } from '../../electron/common/seeded-random.js';
import { insertSyntheticImages } from '../fixtures/library-fixture.js';
import { runDermws } from '../fixtures/cli-runner.js';

const dim = 32;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * Post-ReLU-like vectors: non-negative with many zeros. Rows 0–2 turn a base vector by 0°, 8° and 20°
 * in one plane (cos 0.990 between 0 and 1, 0.978 between 1 and 2, only 0.940 between 0 and 2), rows
 * 3–5 are one vector with tiny noise (a clique), the rest are unrelated.
 */
function reviewVectors(count: number): Float32Array[] {
  const random = seededRandom(5);
  const sparse = () => Float32Array.from({ length: dim }, () => (random() < 0.5 ? 0 : random()));
  const unit = (vector: Float32Array) => {
    const norm = Math.hypot(...vector);
    return vector.map((value) => value / norm);
  };
  const base = new Float32Array(dim);
  const across = new Float32Array(dim);
  for (let index = 0; index < 8; index++) base[index] = 1;
  for (let index = 8; index < 16; index++) across[index] = 1;
  const turned = (degrees: number) => {
    const radians = (degrees * Math.PI) / 180;
    return unit(base.map((value, index) => Math.cos(radians) * value + Math.sin(radians) * across[index]!));
  };
  const shared = sparse();
  const vectors = [turned(0), turned(8), turned(20)];
  for (let copy = 0; copy < 3; copy++) vectors.push(shared.map((value) => (value === 0 ? 0 : value + 0.001 * random())));
  while (vectors.length < count) vectors.push(sparse());
  return vectors;
}

function reviewLibrary(): { api: AppApi; folder: string; ids: number[] } {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-dupes-'));
  const api = createAppApi({ libraryFolder: path.join(folder, 'library') }, { mode: 'web', appVersion: '0.0.0-test' });
  cleanups.push(() => fs.rmSync(folder, { recursive: true, force: true }));
  cleanups.push(() => api.close());
  const ids = insertSyntheticImages(api.core.library, 40);
  // Exact pixel copies: images 30 and 31.
  api.core.library.db.prepare('UPDATE images SET pixel_sha256 = ? WHERE id IN (?, ?)').run('same-pixels', ids[30], ids[31]);
  const embeddings = new EmbeddingsRepository(api.core.library.db);
  embeddings.registerModel({ id: 'vectors', displayName: 'vectors', dim, sha256: 'a'.repeat(64), source: 'imported', preprocessing: null });
  const vectors = reviewVectors(ids.length);
  embeddings.put(
    'vectors',
    'a'.repeat(64),
    ids.map((imageId, row) => ({ imageId, vector: vectors[row]! })),
  );
  return { api, folder, ids };
}

type Found = {
  groups: Array<{
    imageIds: number[];
    keep: number;
    maxSimilarity: number;
    minSimilarity: number;
    exact: boolean;
    pairs: unknown[];
    images: Array<{ imageId: number; flags: string[] }>;
  }>;
};

describe('near-duplicate review through the contract and the CLI', () => {
  it('forms cliques most similar first: a ~ b ~ c with a and c unlike is two pairs, never one group', async () => {
    const { api, folder, ids } = reviewLibrary();
    const [a, b, c, d, e, f] = ids as [number, number, number, number, number, number];
    const found = (await api.invoke('duplicatesFind', { threshold: 0.97 })) as Found;
    const groups = found.groups.map((group) => group.imageIds);
    expect(groups).toContainEqual([a, b]);
    expect(groups).toContainEqual([b, c]);
    expect(groups).toContainEqual([d, e, f]);
    expect(groups).toContainEqual([ids[30], ids[31]]);
    for (const group of groups) expect(group.includes(a) && group.includes(c)).toBe(false);
    const similarities = found.groups.map((group) => group.maxSimilarity);
    expect(similarities).toEqual([...similarities].sort((x, y) => y - x));
    const ab = found.groups.find((group) => group.imageIds.includes(a))!;
    const bc = found.groups.find((group) => group.imageIds.includes(c))!;
    expect(ab.maxSimilarity).toBeCloseTo(Math.cos((8 * Math.PI) / 180), 3);
    expect(bc.maxSimilarity).toBeCloseTo(Math.cos((12 * Math.PI) / 180), 3);
    expect(found.groups.indexOf(ab)).toBeLessThan(found.groups.indexOf(bc));
    const clique = found.groups.find((group) => group.imageIds.includes(d))!;
    expect(clique.pairs).toHaveLength(3);
    expect(clique.minSimilarity).toBeGreaterThanOrEqual(0.97);
    expect(found.groups.find((group) => group.imageIds.includes(ids[30]!))).toMatchObject({ exact: true });

    // The CLI prints the call's own output: the same groups in the same order, with the same cards.
    const cli = await runDermws('duplicates', '--library', path.join(folder, 'library'), '--threshold', '0.97', '--json');
    expect(cli.code).toBe(0);
    expect(cli.json).toEqual(found);
  });

  it('flags per image, undoes exactly what a decision changed, and deletes/restores, checked in the database and the CLI', async () => {
    const { api, folder, ids } = reviewLibrary();
    const [, , , d, e, f, g] = ids as [number, number, number, number, number, number, number];
    const db = api.core.library.db;
    const manualFlags = () =>
      db.prepare("SELECT image_id AS imageId, detail FROM image_flags WHERE flag = 'duplicate' AND source = 'manual' ORDER BY image_id").all() as Array<{
        imageId: number;
        detail: string;
      }>;
    // g was flagged by hand before the review; the review must not rewrite or undo that.
    db.prepare(
      "INSERT INTO image_flags (image_id, flag, source, detail, set_at) VALUES (?, 'duplicate', 'manual', 'seen on the ward list', '2026-01-01T00:00:00Z')",
    ).run(g);

    const resolved = (await api.invoke('duplicatesResolve', { keep: d, others: [e, f, g], action: 'flag' })) as { changed: number; changedImages: number[] };
    expect(resolved).toEqual({ changed: 2, changedImages: [e, f] });
    expect(manualFlags()).toEqual([
      { imageId: e, detail: `duplicate of image ${d}` },
      { imageId: f, detail: `duplicate of image ${d}` },
      { imageId: g, detail: 'seen on the ward list' },
    ]);
    const listed = await runDermws('duplicates', '--library', path.join(folder, 'library'), '--threshold', '0.97', '--json');
    const clique = listed.json.groups.find((group: { imageIds: number[] }) => group.imageIds.includes(d));
    expect(clique.images.filter((image: { flags: string[] }) => image.flags.includes('duplicate')).map((image: { imageId: number }) => image.imageId)).toEqual([
      e,
      f,
    ]);

    const undone = (await api.invoke('duplicatesUndo', { images: resolved.changedImages, action: 'flag' })) as { changed: number; changedImages: number[] };
    expect(undone).toEqual({ changed: 2, changedImages: [e, f] });
    expect(manualFlags()).toEqual([{ imageId: g, detail: 'seen on the ward list' }]);

    // A bad id anywhere changes nothing.
    await expect(api.invoke('duplicatesUndo', { images: [e, 99999], action: 'flag' })).rejects.toThrow(/no image 99999/);
    await expect(api.invoke('duplicatesResolve', { keep: d, others: [e, 99999], action: 'flag' })).rejects.toThrow(/no image 99999/);
    expect(manualFlags()).toEqual([{ imageId: g, detail: 'seen on the ward list' }]);

    // Delete and restore: the image leaves the review and comes back.
    const deleted = (await api.invoke('duplicatesResolve', { keep: d, others: [e], action: 'delete' })) as { changedImages: number[] };
    expect(deleted.changedImages).toEqual([e]);
    const without = (await api.invoke('duplicatesFind', { threshold: 0.97 })) as Found;
    expect(without.groups.map((group) => group.imageIds)).toContainEqual([d, f]);
    const restored = await runDermws('duplicates', '--library', path.join(folder, 'library'), '--restore', String(e), '--json');
    expect(restored.json).toEqual({ changed: 1, changedImages: [e] });
    expect(db.prepare('SELECT deleted_at AS deletedAt FROM images WHERE id = ?').get(e)).toEqual({ deletedAt: null });
    const back = (await api.invoke('duplicatesFind', { threshold: 0.97 })) as Found;
    expect(back.groups.map((group) => group.imageIds)).toContainEqual([d, e, f]);

    // The CLI's own flag and unflag.
    const marked = await runDermws('duplicates', '--library', path.join(folder, 'library'), '--keep', String(d), '--mark', `${e},${f}`, '--json');
    expect(marked.json).toEqual({ changed: 2, changedImages: [e, f] });
    const unflagged = await runDermws('duplicates', '--library', path.join(folder, 'library'), '--unflag', `${e},${f}`);
    expect(unflagged.stdout).toContain('unflagged 2');
    expect(manualFlags()).toEqual([{ imageId: g, detail: 'seen on the ward list' }]);
  });
});
