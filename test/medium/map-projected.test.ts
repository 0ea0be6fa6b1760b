import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppEvent, CallOutput } from '../../electron/common/contract.js';
import type { AppApi } from '../../electron/core/app-api/app-api.js';
import { createAppApi } from '../../electron/core/app-api/create-app-api.js';
import { EmbeddingSampleRepository } from '../../electron/core/embeddings/embedding-sample.repository.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { projectJs } from '../../electron/core/math/randomized-pca.js';
import { VectorIndexRepository } from '../../electron/core/index/vector-index.repository.js';
import { normalizeRows } from '../../electron/core/math/vector-math.js';
import { isCancellation } from '../../electron/core/jobs/job.js';
import { flatNonNegativeVectors } from '../fixtures/clustered-vectors.js';
import { insertSyntheticImages } from '../fixtures/library-fixture.js';

/**
 * The map drawn from the index's projected vectors, on a real library, real hnswlib graph and real
 * onnxruntime PCA, with vectors shaped like post-ReLU encoder output (non-negative, ~40% zeros, a flat
 * within-cluster spectrum) in three clusters, so the top two principal axes are well defined:
 * - it agrees with the map drawn from the raw embeddings (same 2-D principal plane, up to rotation and sign);
 * - it reads no embedding from SQLite: with every stored embedding damaged (a read would be refused)
 *   a fresh app still draws the same map from the index file;
 * - without an index it falls back to the embeddings and says so, without building one;
 * - as a job it reports progress and can be cancelled.
 */
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const model = 'relu-flat';
const dim = 1024;
const count = 1200;

function openApi(libraryFolder: string): AppApi {
  const api = createAppApi({ libraryFolder }, { mode: 'web', appVersion: 'test' });
  cleanups.push(() => api.close());
  return api;
}

function makeLibrary(): { libraryFolder: string; api: AppApi; ids: number[] } {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-map-projected-'));
  cleanups.push(() => fs.rmSync(folder, { recursive: true, force: true }));
  const libraryFolder = path.join(folder, 'library');
  const api = openApi(libraryFolder);
  const ids = insertSyntheticImages(api.core.library, count, {
    metadataOf: (index): Record<string, string> => ({ fitzpatrick_self: `FST${(index % 6) + 1}` }),
  });
  const { data } = flatNonNegativeVectors({ count, dim, clusters: 3, seed: 11 });
  const embeddings = new EmbeddingsRepository(api.core.library.db);
  embeddings.registerModel({ id: model, displayName: 'post-ReLU-shaped test vectors', dim, sha256: 'e'.repeat(64), source: 'imported', preprocessing: null });
  embeddings.put(
    model,
    'e'.repeat(64),
    ids.map((imageId, row) => ({ imageId, vector: data.subarray(row * dim, (row + 1) * dim) })),
  );
  return { libraryFolder, api, ids };
}

/** The centred, orthonormalised first two coordinate columns of a map (an n × 2 basis of its plane). */
function planeOf(map: CallOutput<'mapPoints'>): [Float64Array, Float64Array] {
  const n = map.imageIds.length;
  const column = (c: number) => {
    const values = Float64Array.from({ length: n }, (_, row) => map.coordinates[row * map.dims + c]!);
    const mean = values.reduce((sum, value) => sum + value, 0) / n;
    return values.map((value) => value - mean);
  };
  const dot = (a: Float64Array, b: Float64Array) => a.reduce((sum, value, index) => sum + value * b[index]!, 0);
  const unit = (a: Float64Array) => a.map((value) => value / Math.sqrt(dot(a, a)));
  const first = unit(column(0));
  const second = column(1);
  const along = dot(second, first);
  return [first, unit(second.map((value, index) => value - along * first[index]!))];
}

/** Cosines of the two principal angles between two planes in Rⁿ (1, 1: the same plane). */
function principalCosines(a: [Float64Array, Float64Array], b: [Float64Array, Float64Array]): [number, number] {
  const dot = (x: Float64Array, y: Float64Array) => x.reduce((sum, value, index) => sum + value * y[index]!, 0);
  const m = [dot(a[0], b[0]), dot(a[0], b[1]), dot(a[1], b[0]), dot(a[1], b[1])] as const;
  // Singular values of the 2 × 2 matrix m: square roots of the eigenvalues of mᵀm.
  const p = m[0] * m[0] + m[2] * m[2];
  const q = m[0] * m[1] + m[2] * m[3];
  const r = m[1] * m[1] + m[3] * m[3];
  const half = (p + r) / 2;
  const spread = Math.sqrt(((p - r) / 2) ** 2 + q * q);
  return [Math.sqrt(half + spread), Math.sqrt(Math.max(0, half - spread))];
}

describe('map from the index', () => {
  it('falls back to the embeddings without an index, then draws the same principal plane from the projected vectors, reading no embedding', async () => {
    const { libraryFolder, api, ids } = makeLibrary();

    const raw = (await api.invoke('mapPoints', { colourBy: 'fitzpatrick', limit: 2000 })) as CallOutput<'mapPoints'>;
    expect(raw.source).toBe('embeddings');
    expect(raw.note).toMatch(/no search index yet/);
    expect(raw.imageIds).toEqual(ids);
    expect(raw.dims).toBe(50);
    // Drawing the map did not build an index behind the user's back.
    expect((await api.core.index.status(model)).state).toBe('missing');

    const built = await api.core.index.rebuild(model);
    expect(built.graphDim).toBe(384);
    const projected = (await api.invoke('mapPoints', { colourBy: 'fitzpatrick', limit: 2000 })) as CallOutput<'mapPoints'>;
    expect(projected.source).toBe('index');
    expect(projected.note).toMatch(/384-d PCA projection of the 1024-d embeddings/);
    expect(projected.imageIds).toEqual(raw.imageIds);
    expect(projected.groups).toEqual(raw.groups);
    expect(projected.dims).toBe(50);

    // The claim: the top principal axes of the unit embeddings lie inside the index's projection, so the
    // map's first two coordinates span the same plane of the sample as a PCA of the raw unit embeddings.
    const [largest, smallest] = principalCosines(planeOf(raw), planeOf(projected));
    expect(largest).toBeGreaterThan(0.995);
    expect(smallest).toBeGreaterThan(0.99);
    // And the measure can fail: the plane of coordinates 3 and 4 is not the map's plane.
    const shifted = {
      ...projected,
      coordinates: projected.imageIds.flatMap((_, row) => projected.coordinates.slice(row * 50 + 2, row * 50 + 52).concat([0, 0])),
    };
    expect(principalCosines(planeOf(raw), planeOf(shifted))[0]).toBeLessThan(0.5);
    // The first coordinate is the most spread (the renderer draws the first two at once).
    const variance = (c: number) => projected.imageIds.reduce((sum, _, row) => sum + projected.coordinates[row * 50 + c]! ** 2, 0);
    expect(variance(0)).toBeGreaterThanOrEqual(variance(1));
    expect(variance(1)).toBeGreaterThanOrEqual(variance(2));

    // The points read for the map are the index's projection of the unit embeddings, computed here
    // independently from the stored projection (mean and axes) and the embeddings.
    const some = ids.filter((_, index) => index % 97 === 5);
    const points = (await api.core.index.projectedVectorsFor(model, some))!;
    const projection = new VectorIndexRepository(api.core.library.db).projection(model, points.projection!.version)!;
    const expected = projectJs(projection, normalizeRows(new EmbeddingSampleRepository(api.core.library.db).rows(model, some).data, dim));
    expect(points.dim).toBe(projection.outputDim);
    expect(Math.max(...Array.from(points.data, (value, index) => Math.abs(value - expected[index]!)))).toBeLessThan(1e-4);

    // Damage every stored embedding (a 3-byte vector is refused by any read) without touching the index:
    // the change log entries the update makes are removed, as if the rows had always been so.
    await api.close();
    const db = new Database(path.join(libraryFolder, 'library.sqlite'));
    try {
      const lastSeq = (db.prepare('SELECT COALESCE(MAX(seq), 0) AS seq FROM vector_index_changes').get() as { seq: number }).seq;
      expect(db.prepare("UPDATE embeddings SET vector = x'000000' WHERE model_id = ?").run(model).changes).toBe(count);
      db.prepare('DELETE FROM vector_index_changes WHERE seq > ?').run(lastSeq);
    } finally {
      db.close();
    }
    const fresh = openApi(libraryFolder);
    expect(() => new EmbeddingSampleRepository(fresh.core.library.db).rows(model, ids.slice(0, 1))).toThrow(/has 0.75 values; expected 1024/);
    const again = (await fresh.invoke('mapPoints', { colourBy: 'fitzpatrick', limit: 2000 })) as CallOutput<'mapPoints'>;
    expect(again.source).toBe('index');
    expect(again.coordinates).toEqual(projected.coordinates);
  }, 240_000);

  it('reports progress as a job, keeps its result small, and stops when cancelled', async () => {
    const { api } = makeLibrary();
    await api.core.index.rebuild(model);
    const events: AppEvent[] = [];
    cleanups.push(api.subscribe((event) => events.push(event)));

    const { jobId } = (await api.invoke('mapStart', { colourBy: 'condition', limit: 500 })) as CallOutput<'mapStart'>;
    const job = await api.jobs.settled(jobId);
    expect(job.state).toBe('success');
    const result = job.result as { mapId: string; points: number; source: string };
    expect(result).toEqual({ mapId: expect.stringMatching(/^map-\d+$/), points: 500, source: 'index' });
    const progress = events.flatMap((event) => (event.type === 'job-progress' && event.jobId === jobId ? [event.progress] : []));
    expect(progress[0]).toMatchObject({ job: 'map', done: 0, total: 500, current: `opening the index of ${model}` });
    expect(progress.at(-1)).toMatchObject({ done: 500, total: 500, current: 'colour groups' });
    const layout = (await api.invoke('mapResult', { mapId: result.mapId })) as CallOutput<'mapResult'>;
    expect(layout.imageIds).toHaveLength(500);
    expect(layout.groups.every((group) => group === 'unlabelled')).toBe(true);
    await expect(api.invoke('mapResult', { mapId: 'map-999' })).rejects.toThrow(/There is no map "map-999"/);

    // Cancelled at its first progress report: nothing is returned.
    const controller = new AbortController();
    const cancelled = api.core.map.layout({ colourBy: 'condition', limit: 500 }, { signal: controller.signal, onProgress: () => controller.abort() });
    await expect(cancelled).rejects.toSatisfy(isCancellation);
  }, 240_000);
});
