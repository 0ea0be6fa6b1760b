import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { gaussianSource } from '../../electron/core/math/randomized-pca.js';
import { VectorIndexRepository } from '../../electron/core/index/vector-index.repository.js';
import { VectorIndexService, type VectorIndexParameters } from '../../electron/core/index/vector-index.service.js';
import { exactSearch, normalizeRows } from '../../electron/core/math/vector-math.js';
import type { Library } from '../../electron/core/library/library.js';
import { flatNonNegativeVectors } from '../fixtures/clustered-vectors.js';
import { createTestLibrary, insertSyntheticImages } from '../fixtures/library-fixture.js';

/**
 * The index measures its own recall on data shaped like post-ReLU encoder output (non-negative, ~40%
 * zeros, flat spectrum) and tunes itself to the target; the tests check that measurement against
 * their own, made independently with an exact scan.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const modelId = 'flat-model';
const dim = 1024;
/** A projection to 48 of 1024 dimensions keeps little of a flat 384-d latent spectrum: the graph alone cannot find the true top 10. */
const small: Partial<VectorIndexParameters> = { projectedDim: 48, pcaSampleSize: 1024, pcaPowerIterations: 1, calibrationProbes: 200 };

interface Fixture {
  library: Library;
  embeddings: EmbeddingsRepository;
  ids: number[];
  data: Float32Array;
  add(count: number, seed: number): void;
  service(parameters?: Partial<VectorIndexParameters>, target?: () => number | undefined): VectorIndexService;
}

function fixture(count: number): Fixture {
  const library = createTestLibrary();
  cleanups.push(() => library.cleanup());
  const embeddings = new EmbeddingsRepository(library.db);
  embeddings.registerModel({ id: modelId, displayName: modelId, dim, sha256: 'b'.repeat(64), source: 'imported', preprocessing: null });
  const f: Fixture = {
    library,
    embeddings,
    ids: [],
    data: new Float32Array(0),
    add(rows, seed) {
      const ids = insertSyntheticImages(library, rows);
      const { data } = flatNonNegativeVectors({ count: rows, dim, clusters: 30, latentDim: 384, seed });
      embeddings.put(
        modelId,
        'b'.repeat(64),
        ids.map((imageId, row) => ({ imageId, vector: data.subarray(row * dim, (row + 1) * dim) })),
      );
      const merged = new Float32Array(f.data.length + data.length);
      merged.set(f.data);
      merged.set(data, f.data.length);
      f.data = merged;
      f.ids.push(...ids);
    },
    service(parameters = small, target = () => undefined) {
      const service = new VectorIndexService(new VectorIndexRepository(library.db), embeddings, library.paths, parameters, target);
      cleanups.push(() => service.close());
      return service;
    },
  };
  f.add(count, 5);
  return f;
}

/**
 * Recall@10 measured by the test alone: noisy copies of library rows (its own noise, its own rows),
 * answered by the service (each projected one at a time by its query projector), against an exact scan
 * of every live unit vector. With `byLibraryImage`, library rows are the queries instead, searched as
 * the app searches by image (the point read from the graph, the image itself left out).
 */
async function independentRecall(f: Fixture, service: VectorIndexService, queries: number, live = new Set(f.ids), byLibraryImage = false): Promise<number> {
  const liveRows = f.ids.flatMap((id, row) => (live.has(id) ? [row] : []));
  const unit = new Float32Array(liveRows.length * dim);
  liveRows.forEach((row, index) => unit.set(f.data.subarray(row * dim, (row + 1) * dim), index * dim));
  normalizeRows(unit, dim);
  const liveIds = liveRows.map((row) => f.ids[row]!);
  const normal = gaussianSource(991);
  let hits = 0;
  for (let query = 0; query < queries; query++) {
    const row = (query * 104729 + 13) % liveRows.length;
    const vector = unit.slice(row * dim, (row + 1) * dim);
    if (byLibraryImage) {
      const imageId = liveIds[row]!;
      const truth = new Set(
        exactSearch(vector, unit, liveIds, 11)
          .filter((hit) => hit.imageId !== imageId)
          .slice(0, 10)
          .map((hit) => hit.imageId),
      );
      const found = (await service.search(modelId, vector, 11, { libraryImageId: imageId })).filter((hit) => hit.imageId !== imageId).slice(0, 10);
      hits += found.filter((hit) => truth.has(hit.imageId)).length;
      continue;
    }
    for (let index = 0; index < dim; index++) vector[index] = Math.max(0, vector[index]! + (0.25 / Math.sqrt(dim)) * normal());
    normalizeRows(vector, dim);
    const truth = new Set(exactSearch(vector, unit, liveIds, 10).map((hit) => hit.imageId));
    const found = await service.search(modelId, vector, 10);
    hits += found.filter((hit) => truth.has(hit.imageId)).length;
  }
  return hits / (queries * 10);
}

describe('self-calibrating vector index', () => {
  it('measures its own recall on flat-spectrum non-negative vectors, meets the target, and agrees with an independent exact scan', async () => {
    const f = fixture(3000);
    let zeros = 0;
    for (const value of f.data) if (value === 0) zeros++;
    expect(zeros / f.data.length).toBeGreaterThan(0.3);
    // With the sketch on, so the agreement below also holds for queries that pre-rank on it.
    const service = f.service({ ...small, sketch: true });
    const { rebuilt } = await service.ensureReady(modelId);
    const calibration = rebuilt!.calibration!;
    expect(calibration).toMatchObject({ target: 0.99, probes: 200, met: true, trigger: 'build', graphDim: rebuilt!.graphDim, elementCount: 3000 });
    expect(calibration.recall).toBeGreaterThanOrEqual(0.99);
    expect(calibration.projection).toMatchObject({ version: rebuilt!.projectionVersion });
    // The queries below pre-rank their candidates on the in-memory sketch, as the calibration measured them.
    expect(calibration.preselection).toEqual({ bits: 4, kept: 28 });
    expect(calibration.candidates).toBeGreaterThan(28);
    const measured = await independentRecall(f, service, 200);
    expect(Math.abs(measured - calibration.recall)).toBeLessThanOrEqual(0.02);
    // Half the probes are library rows: queries by library image read their points from the graph
    // and must meet the stored recall too.
    const byImage = await independentRecall(f, service, 200, new Set(f.ids), true);
    expect(Math.abs(byImage - calibration.recall)).toBeLessThanOrEqual(0.02);
    // Stored with the index record: a second service (a second process) sees the same measurement without measuring again.
    const status = await f.service({ ...small, sketch: true }).status(modelId);
    expect(status.calibration).toEqual(calibration);
    const reopened = f.service({ ...small, sketch: true });
    expect((await reopened.ensureReady(modelId)).rebuilt).toBeNull();
    expect(reopened.calibration(modelId)).toEqual(calibration);
    expect(reopened.calibrationSummary(modelId)).toBe(
      `recall@10 ${calibration.recall.toFixed(3)} measured on 200 probes at build (candidates ${calibration.candidates}, ef ${calibration.ef}, ${calibration.graphDim}-d, 4-bit sketch keeps 28)`,
    );
  });

  it('raises a too-small candidate count until the target is met, where the same settings unmeasured miss it', async () => {
    const f = fixture(3000);
    const tooSmall: Partial<VectorIndexParameters> = { ...small, rerankCandidates: 10, efSearch: 10 };
    const uncalibrated = f.service({ ...tooSmall, calibrate: false });
    await uncalibrated.ensureReady(modelId);
    expect(await independentRecall(f, uncalibrated, 150)).toBeLessThan(0.99);
    await uncalibrated.close();

    const calibrated = f.service(tooSmall);
    const result = await calibrated.rebuild(modelId);
    expect(result.calibration!.candidates).toBeGreaterThan(10);
    expect(result.calibration!.met).toBe(true);
    expect(await independentRecall(f, calibrated, 150)).toBeGreaterThanOrEqual(0.97);
  });

  it('keeps measurement and settings consistent through filtered search, deletions, growth and rebuilds', async () => {
    const f = fixture(2000);
    const service = f.service();
    const built = (await service.ensureReady(modelId)).rebuilt!.calibration!;

    // A filtered search is answered with the same settings and changes nothing stored.
    const allowed = new Set(f.ids.filter((_, index) => index % 3 === 0));
    const filtered = await service.search(modelId, f.data.subarray(3 * dim, 4 * dim), 10, {
      allow: (id) => allowed.has(id),
      allowedIds: [...allowed].sort((a, b) => a - b),
    });
    expect(filtered).toHaveLength(10);
    expect(filtered.every((hit) => allowed.has(hit.imageId))).toBe(true);
    expect(service.calibration(modelId)).toEqual(built);

    // Deleting a few images is not growth: the measurement stands and still describes the index.
    const deleted = f.ids.slice(0, 40);
    f.library.db.prepare(`UPDATE images SET deleted_at = ? WHERE id IN (${deleted.map(() => '?').join(',')})`).run(new Date().toISOString(), ...deleted);
    await service.sync(modelId);
    expect(service.calibration(modelId)).toEqual(built);
    const live = new Set(f.ids.filter((id) => !deleted.includes(id)));
    expect(Math.abs((await independentRecall(f, service, 120, live)) - built.recall)).toBeLessThanOrEqual(0.03);

    // Growing by more than a fifth re-measures on the grown index, and says so.
    f.add(700, 9);
    await service.sync(modelId);
    const grown = service.calibration(modelId)!;
    expect(grown).toMatchObject({ trigger: 'growth', elementCount: 2660, met: true });
    expect(grown.candidates).toBeGreaterThanOrEqual(built.candidates);
    expect((await f.service().status(modelId)).calibration).toEqual(grown);

    // A rebuild after a refit measures again, on the new projection.
    const refit = await service.rebuild(modelId, {}, { refit: true });
    expect(refit.projectionVersion).toBe(2);
    expect(refit.calibration).toMatchObject({ trigger: 'build', met: true, elementCount: 2660, projection: { version: 2 } });
    expect(refit.calibration!.measuredAt > grown.measuredAt).toBe(true);
    const status = await f.service().status(modelId);
    expect(status).toMatchObject({ state: 'ready', projectionVersion: 2 });
    expect(status.calibration).toEqual(refit.calibration);
  });

  it('a target it cannot reach within its bounds and budget is stated plainly, and the index stays usable with exact search on offer', async () => {
    const f = fixture(2000);
    // At most 16 candidates and no time for a refit: 0.999 is out of reach.
    const service = f.service({ ...small, maxCandidates: 16, calibrationBudgetSeconds: 0 }, () => 0.999);
    const { rebuilt } = await service.ensureReady(modelId);
    const calibration = rebuilt!.calibration!;
    expect(calibration).toMatchObject({ target: 0.999, met: false, candidates: 16, projection: { version: 1 } });
    expect(calibration.note).toContain('target 0.999 not met');
    expect(calibration.note).toContain('would overrun the calibration budget of 0 s');
    expect(calibration.note).toContain('exact search');
    expect(service.calibrationSummary(modelId)).toContain('below the target 0.999');
    // No projection version was left behind by the refit that was not started.
    expect(new VectorIndexRepository(f.library.db).projection(modelId)!.version).toBe(1);

    const query = f.data.slice(11 * dim, 12 * dim);
    expect((await service.search(modelId, query, 10)).length).toBe(10);
    const unit = normalizeRows(f.data.slice(), dim);
    const exact = await service.search(modelId, query, 10, { exact: true });
    expect(exact.map((hit) => hit.imageId)).toEqual(exactSearch(normalizeRows(query, dim), unit, f.ids, 10).map((hit) => hit.imageId));

    // Raising the budget lets a refit run; it is adopted only if it measures better, and the record says which fits were tried.
    const patient = f.service({ ...small, maxCandidates: 16, calibrationBudgetSeconds: 600 }, () => 0.999);
    const retried = await patient.rebuild(modelId);
    expect(retried.calibration!.note).toMatch(/refits tried: |target 0.999 met/);
    expect(retried.calibration!.recall).toBeGreaterThanOrEqual(calibration.recall);
    const stored = new VectorIndexRepository(f.library.db);
    expect(stored.projection(modelId)!.version).toBe(stored.record(modelId)!.projectionVersion);
  });
});
