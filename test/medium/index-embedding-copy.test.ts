import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { EmbeddingCopy, floatToHalf, halfToFloat } from '../../electron/core/index/embedding-copy.js';
import { VectorIndexRepository } from '../../electron/core/index/vector-index.repository.js';
import { VectorIndexService, type VectorIndexParameters } from '../../electron/core/index/vector-index.service.js';
import { exactSearch, normalized, normalizeRows, type Neighbour } from '../../electron/core/math/vector-math.js';
import type { Library } from '../../electron/core/library/library.js';
import { flatNonNegativeVectors, perturbed } from '../fixtures/clustered-vectors.js';
import { runDermws } from '../fixtures/cli-runner.js';
import { createTestLibrary, insertSyntheticImages } from '../fixtures/library-fixture.js';

/**
 * The flat copy of the embeddings the re-rank reads (embedding-copy.ts), on real SQLite, hnswlib and
 * onnxruntime: it agrees with SQLite, follows sync / deletions / rebuilds, and a truncated, damaged,
 * stale or unwritable copy never changes a result (rebuilt, or bypassed for SQLite, and said so).
 * Post-ReLU-shaped vectors (non-negative, ~40% zeros, flat spectrum), projected so candidates are re-ranked.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const modelId = 'relu-model';
const dim = 96;
const projected: Partial<VectorIndexParameters> = {
  projectAbove: 32,
  projectedDim: 24,
  pcaSampleSize: 2000,
  calibrate: false,
  rerankCandidates: 48,
  efSearch: 64,
};

interface Fixture {
  library: Library;
  embeddings: EmbeddingsRepository;
  ids: number[];
  data: Float32Array;
  service(parameters?: Partial<VectorIndexParameters>): VectorIndexService;
}

/** `count` new synthetic images, embedded with post-ReLU-shaped vectors drawn from `seed`. */
function addEmbeddedImages(library: Library, embeddings: EmbeddingsRepository, count: number, seed: number): { ids: number[]; data: Float32Array } {
  const ids = insertSyntheticImages(library, count);
  const { data } = flatNonNegativeVectors({ count, dim, seed });
  embeddings.put(
    modelId,
    'a'.repeat(64),
    ids.map((imageId, row) => ({
      imageId,
      vector: data.subarray(row * dim, (row + 1) * dim),
    })),
  );
  return { ids, data };
}

function fixture(count: number): Fixture {
  const library = createTestLibrary();
  cleanups.push(() => library.cleanup());
  const embeddings = new EmbeddingsRepository(library.db);
  embeddings.registerModel({
    id: modelId,
    displayName: modelId,
    dim,
    sha256: 'a'.repeat(64),
    source: 'imported',
    preprocessing: null,
  });
  const { ids, data } = addEmbeddedImages(library, embeddings, count, 11);
  return {
    library,
    embeddings,
    ids,
    data,
    service: (parameters = {}) => {
      const service = new VectorIndexService(new VectorIndexRepository(library.db), embeddings, library.paths, { ...projected, ...parameters });
      cleanups.push(() => service.close());
      return service;
    },
  };
}

/** Noisy library rows kept non-negative, like a new photo of a lesion in the library. */
function queriesOf(f: Fixture, count: number): Float32Array[] {
  return Array.from({ length: count }, (_, index) => perturbed(f.data, dim, (index * 7919) % f.ids.length, 0.3, index + 1).map((value) => Math.max(0, value)));
}

/** Opens the copy beside the index as the service would, tied to the current index record. */
function openCopy(f: Fixture, service: VectorIndexService, precision: 'float16' | 'float32' = 'float16'): EmbeddingCopy {
  const record = new VectorIndexRepository(f.library.db).record(modelId)!;
  const copy = EmbeddingCopy.open(
    service.embeddingCopyFile(modelId),
    {
      modelId,
      dim,
      precision,
      graphSha256: record.fileSha256,
      changeSeq: record.changeSeq,
    },
    { writable: false },
  );
  cleanups.push(() => copy.close());
  return copy;
}

function liveVectors(f: Fixture): Map<number, Float32Array> {
  const rows = f.library.db
    .prepare(
      'SELECT e.image_id AS imageId, e.vector AS vector FROM embeddings e JOIN images i ON i.id = e.image_id WHERE e.model_id = ? AND i.deleted_at IS NULL',
    )
    .all(modelId) as { imageId: number; vector: Buffer }[];
  return new Map(rows.map((row) => [row.imageId, new Float32Array(new Uint8Array(row.vector).buffer)]));
}

function expectCopyAgreesWithDatabase(f: Fixture, copy: EmbeddingCopy): void {
  const live = liveVectors(f);
  for (const [imageId, vector] of live) expect(copy.disagreement(imageId, normalized(vector)), `image ${imageId}`).toBeNull();
}

function recall(found: Neighbour[][], truth: Neighbour[][]): number {
  let hits = 0;
  found.forEach((result, index) => {
    const expected = new Set(truth[index]!.map((neighbour) => neighbour.imageId));
    hits += result.filter((neighbour) => expected.has(neighbour.imageId)).length;
  });
  return hits / (found.length * 10);
}

describe('float16 codec of the embedding copy', () => {
  it('round-trips every finite float16 exactly and rounds float32 to the nearest float16', () => {
    for (let half = 0; half < 0x10000; half++) {
      const value = halfToFloat(half);
      if (Number.isNaN(value)) continue;
      expect(floatToHalf(value)).toBe(half);
    }
    // Values between neighbouring halves go to the nearer one (ties to the even pattern).
    let state = 7;
    for (let trial = 0; trial < 20000; trial++) {
      state = (state * 1103515245 + 12345) >>> 0;
      const value = Math.fround(((state / 2 ** 32) * 2 - 1) * 2 ** -(trial % 26));
      const half = floatToHalf(value);
      const error = Math.abs(halfToFloat(half) - value);
      for (const neighbour of [half - 1, half + 1]) {
        if ((neighbour & 0x7fff) >= 0x7c00 || neighbour < 0 || ((neighbour ^ half) & 0x8000) !== 0) continue;
        expect(error).toBeLessThanOrEqual(Math.abs(halfToFloat(neighbour) - value));
      }
    }
    expect(floatToHalf(1e6)).toBe(0x7c00);
    expect(floatToHalf(-1e-12)).toBe(0x8000);
  });
});

describe('flat embedding copy for the re-rank', () => {
  it('is written with the index, agrees with SQLite, and re-ranks like SQLite (float32: same ids in the same order; float16: same recall)', async () => {
    const f = fixture(1500);
    const queries = queriesOf(f, 60);
    const unitRows = normalizeRows(f.data.slice(), dim);
    const truth = queries.map((query) => exactSearch(normalized(query), unitRows, f.ids, 10));

    for (const precision of ['float32', 'float16'] as const) {
      const service = f.service({ embeddingCopy: precision });
      await service.ensureReady(modelId);
      // The first search that re-ranks writes the copy in this precision (the previous one is stale).
      await service.search(modelId, queries[0]!, 10);
      const status = await service.status(modelId);
      expect(status.embeddingCopy).toMatchObject({
        state: 'ready',
        rerankFrom: 'copy',
        precision,
      });
      expect(status.embeddingCopy.fileBytes).toBeGreaterThan(f.ids.length * dim * (precision === 'float16' ? 2 : 4));
      expectCopyAgreesWithDatabase(f, openCopy(f, service, precision));

      const fromCopy: Neighbour[][] = [];
      const fromDatabase: Neighbour[][] = [];
      for (const query of queries) {
        fromCopy.push(await service.search(modelId, query, 10));
        fromDatabase.push(
          await service.search(modelId, query, 10, {
            rerankFromDatabase: true,
          }),
        );
      }
      if (precision === 'float32') {
        expect(fromCopy.map((hits) => hits.map((hit) => hit.imageId))).toEqual(fromDatabase.map((hits) => hits.map((hit) => hit.imageId)));
        fromCopy.forEach((hits, query) => hits.forEach((hit, rank) => expect(hit.similarity).toBeCloseTo(fromDatabase[query]![rank]!.similarity, 5)));
      } else {
        expect(Math.abs(recall(fromCopy, truth) - recall(fromDatabase, truth))).toBeLessThanOrEqual(0.005);
        fromCopy.forEach((hits, query) =>
          hits.forEach((hit, rank) => expect(Math.abs(hit.similarity - fromDatabase[query]![rank]!.similarity)).toBeLessThan(2e-3)),
        );
      }
      // The copy was read, not SQLite: the status still says so after the queries.
      expect((await service.status(modelId)).embeddingCopy.state).toBe('ready');
      await service.close();
    }
    // Without a copy the re-rank reads SQLite, and the status says why.
    const none = f.service({ embeddingCopy: 'none' });
    await none.ensureReady(modelId);
    expect((await none.status(modelId)).embeddingCopy).toMatchObject({
      state: 'off',
      rerankFrom: 'sqlite',
    });
  });

  it('follows sync (added, re-embedded and deleted images) and a rebuild', async () => {
    const f = fixture(900);
    const service = f.service();
    await service.ensureReady(modelId);
    const generation = openCopy(f, service).generation;

    const { ids: added, data: extra } = addEmbeddedImages(f.library, f.embeddings, 120, 23);
    // Image 5 re-embedded as a copy of a new image's vector; two images deleted.
    const reembedded = f.ids[5]!;
    f.embeddings.put(modelId, 'a'.repeat(64), [{ imageId: reembedded, vector: extra.subarray(7 * dim, 8 * dim) }]);
    const deleted = [f.ids[1]!, f.ids[2]!];
    f.library.db.prepare('UPDATE images SET deleted_at = ? WHERE id IN (?, ?)').run(new Date().toISOString(), ...deleted);

    expect(await service.sync(modelId)).toMatchObject({
      added: 120,
      updated: 1,
      removed: 2,
    });
    const synced = openCopy(f, service);
    expect(synced.generation).toBeGreaterThan(generation);
    expectCopyAgreesWithDatabase(f, synced);
    for (const imageId of added) expect(synced.has(imageId)).toBe(true);

    // Found through the copy: the new image first for its own vector, the re-embedded one beside it, no deleted one.
    const hits = await service.search(modelId, extra.subarray(7 * dim, 8 * dim), 5);
    expect(
      hits
        .slice(0, 2)
        .map((hit) => hit.imageId)
        .sort((a, b) => a - b),
    ).toEqual([reembedded, added[7]!].sort((a, b) => a - b));
    expect(hits[0]!.similarity).toBeGreaterThan(0.9999);
    const nearDeleted = await service.search(modelId, f.data.subarray(dim, 2 * dim), 20);
    for (const imageId of deleted) expect(nearDeleted.some((hit) => hit.imageId === imageId)).toBe(false);
    expect((await service.status(modelId)).embeddingCopy.state).toBe('ready');

    // A rebuild writes a fresh copy: one row per live image, deleted ones gone.
    await service.rebuild(modelId);
    const rebuilt = openCopy(f, service);
    expect(rebuilt.rows).toBe(900 + 120 - 2);
    for (const imageId of deleted) expect(rebuilt.has(imageId)).toBe(false);
    expectCopyAgreesWithDatabase(f, rebuilt);
    expect((await f.service().status(modelId)).embeddingCopy.state).toBe('ready');
  });

  it('a truncated, damaged or stale copy is detected, never changes a result, and is rebuilt', async () => {
    const f = fixture(1000);
    const queries = queriesOf(f, 12);
    const first = f.service();
    await first.ensureReady(modelId);
    const expected = await Promise.all(queries.map((query) => first.search(modelId, query, 10, { rerankFromDatabase: true })));
    const intact = await Promise.all(queries.map((query) => first.search(modelId, query, 10)));
    const ids = (answers: Neighbour[][]) => answers.map((hits) => hits.map((hit) => hit.imageId));
    await first.close();
    const file = first.embeddingCopyFile(modelId);

    // Truncated: the status says so before anything is loaded, the next open rebuilds it.
    fs.truncateSync(file, fs.statSync(file).size - 1000);
    const truncated = f.service();
    expect((await truncated.status(modelId)).embeddingCopy).toMatchObject({
      state: 'damaged',
      rerankFrom: 'sqlite',
    });
    // Opening the index (as the map does) only notes it; the first search rebuilds it.
    await truncated.ensureReady(modelId);
    expect((await truncated.status(modelId)).embeddingCopy).toMatchObject({ state: 'damaged', rerankFrom: 'sqlite' });
    await truncated.search(modelId, queries[0]!, 10);
    expect((await truncated.status(modelId)).embeddingCopy.state).toBe('ready');
    expect(ids(await Promise.all(queries.map((query) => truncated.search(modelId, query, 10))))).toEqual(ids(intact));
    await truncated.close();

    // Damaged rows with an intact header, size and row table. Every row flipped: the open's sample of
    // rows compared with SQLite sees it, and the copy is rebuilt before any query reads it.
    const flip = (imageIds: number[] | 'all') => {
      const bytes = fs.readFileSync(file);
      const header = JSON.parse(bytes.subarray(4, 4 + bytes.readUInt32LE(0)).toString('utf8')) as { rows: number };
      const tableStart = 4096 + header.rows * dim * 2;
      for (let row = 0; row < header.rows; row++) {
        if (imageIds !== 'all' && !imageIds.includes(bytes.readUInt32LE(tableStart + row * 4))) continue;
        for (let at = 0; at < dim * 2; at += 7) bytes[4096 + row * dim * 2 + at]! ^= 0x5a;
      }
      fs.writeFileSync(file, bytes);
    };
    flip('all');
    const resampled = f.service();
    await resampled.ensureReady(modelId);
    expect((await resampled.status(modelId)).embeddingCopy.reason).toMatch(/disagrees with SQLite/);
    await resampled.search(modelId, queries[0]!, 10);
    expect((await resampled.status(modelId)).embeddingCopy.state).toBe('ready');
    expectCopyAgreesWithDatabase(f, openCopy(f, resampled));
    expect(ids(await Promise.all(queries.map((query) => resampled.search(modelId, query, 10))))).toEqual(ids(intact));
    await resampled.close();

    // One row flipped, the first query's best match (a row the open's sample does not read): the query
    // that reads it answers from SQLite, the status says the copy is damaged, and the next call rebuilds it.
    flip([expected[0]![0]!.imageId]);
    const damaged = f.service();
    await damaged.ensureReady(modelId);
    expect((await damaged.status(modelId)).embeddingCopy.state).toBe('ready');
    expect(ids([await damaged.search(modelId, queries[0]!, 10)])).toEqual(ids([expected[0]!]));
    const status = await damaged.status(modelId);
    expect(status.embeddingCopy).toMatchObject({
      state: 'damaged',
      rerankFrom: 'sqlite',
    });
    expect(status.embeddingCopy.reason).toMatch(/does not match its check/);
    expect(ids(await Promise.all(queries.map((query) => damaged.search(modelId, query, 10))))).toEqual(ids(intact));
    expect((await damaged.status(modelId)).embeddingCopy.state).toBe('ready');
    expectCopyAgreesWithDatabase(f, openCopy(f, damaged));
    await damaged.close();

    // Stale: a copy sealed with an older index file (saved before a sync, put back after it).
    const older = fs.readFileSync(file);
    const { ids: more, data: extra } = addEmbeddedImages(f.library, f.embeddings, 10, 31);
    const syncing = f.service();
    await syncing.sync(modelId);
    await syncing.close();
    fs.writeFileSync(file, older);
    const stale = f.service();
    expect((await stale.status(modelId)).embeddingCopy).toMatchObject({
      state: 'stale',
      rerankFrom: 'sqlite',
    });
    await stale.ensureReady(modelId);
    await stale.search(modelId, queries[0]!, 10);
    expect((await stale.status(modelId)).embeddingCopy.state).toBe('ready');
    expectCopyAgreesWithDatabase(f, openCopy(f, stale));
    const [self] = await stale.search(modelId, extra.subarray(3 * dim, 4 * dim), 1);
    expect(self!.imageId).toBe(more[3]);
  });

  it('a copy that cannot be written leaves the re-rank on SQLite, says so, and answers the same', async () => {
    const f = fixture(700);
    const queries = queriesOf(f, 8);
    // A folder where the copy belongs: nothing in it is the library's, so it is neither read nor replaced.
    const probe = f.service({ embeddingCopy: 'none' });
    fs.mkdirSync(probe.embeddingCopyFile(modelId), { recursive: true });
    await probe.ensureReady(modelId);
    const expected = await Promise.all(queries.map((query) => probe.search(modelId, query, 10)));

    const service = f.service();
    await service.ensureReady(modelId);
    await service.search(modelId, queries[0]!, 10);
    const status = await service.status(modelId);
    expect(status.embeddingCopy).toMatchObject({
      state: 'unwritable',
      rerankFrom: 'sqlite',
    });
    expect(status.embeddingCopy.reason).toMatch(/could not be written/);
    expect(await Promise.all(queries.map((query) => service.search(modelId, query, 10)))).toEqual(expected);
    expect(fs.readdirSync(f.library.paths.indexes).filter((name) => name.endsWith('.partial'))).toEqual([]);
  });
  it('a copy written in an earlier format (2, no sketch) is stale: answered from SQLite until the next search rebuilds it in format 3', async () => {
    const f = fixture(300);
    const queries = queriesOf(f, 5);
    const ids = (answers: Neighbour[][]) => answers.map((hits) => hits.map((hit) => hit.imageId));
    const first = f.service();
    await first.ensureReady(modelId);
    const intact = await Promise.all(queries.map((query) => first.search(modelId, query, 10)));
    await first.close();
    const file = first.embeddingCopyFile(modelId);
    const header = (bytes: Buffer) => JSON.parse(bytes.subarray(4, 4 + bytes.readUInt32LE(0)).toString('utf8')) as { version: number };
    const bytes = fs.readFileSync(file);
    expect(header(bytes).version).toBe(3);
    const { sketch: _sketch, ...withoutSketch } = header(bytes) as { version: number; sketch: unknown };
    const older = Buffer.from(JSON.stringify({ ...withoutSketch, version: 2 }), 'utf8');
    bytes.fill(0, 0, 4096);
    bytes.writeUInt32LE(older.length, 0);
    older.copy(bytes, 4);
    fs.writeFileSync(file, bytes);

    const later = f.service();
    const status = (await later.status(modelId)).embeddingCopy;
    expect(status).toMatchObject({ state: 'stale', rerankFrom: 'sqlite' });
    expect(status.reason).toMatch(/not an embedding copy this version writes/);
    expect(ids(await Promise.all(queries.map((query) => later.search(modelId, query, 10))))).toEqual(ids(intact));
    expect((await later.status(modelId)).embeddingCopy.state).toBe('ready');
    expect(header(fs.readFileSync(file)).version).toBe(3);
    expectCopyAgreesWithDatabase(f, openCopy(f, later));
  });
});

describe('in-memory sketch that pre-ranks the candidates', () => {
  /** Calibrated, so queries pre-rank as the calibration measured (48 candidates a query, 28 read exactly at k = 10). */
  const calibrated: Partial<VectorIndexParameters> = { calibrate: true, calibrationProbes: 100, sketch: true };
  const ids = (answers: Neighbour[][]) => answers.map((hits) => hits.map((hit) => hit.imageId));

  function sketchBytes(service: VectorIndexService): number {
    return fs.statSync(service.embeddingCopyFile(modelId).replace(/\.vectors$/, '.sketch')).size;
  }

  it('reads only the sketch-best candidates, returns exact cosines, and finds the top 10 that re-ranking every candidate finds', async () => {
    const f = fixture(1500);
    const service = f.service(calibrated);
    await service.ensureReady(modelId);
    const calibration = service.calibration(modelId)!;
    expect(calibration.preselection).toEqual({ bits: 4, kept: 28 });
    expect(calibration.candidates).toBeGreaterThanOrEqual(48);
    expect((await service.status(modelId)).embeddingCopy.reason).toMatch(/4-bit sketch of each/);
    // 96 values a row: 3 blocks of 32 values, 16 bytes each.
    expect(sketchBytes(service)).toBe(1500 * 48);
    expect(fs.readdirSync(f.library.paths.indexes).filter((name) => name.includes('.partial'))).toEqual([]);

    const queries = queriesOf(f, 40);
    const sketched = await Promise.all(queries.map((query) => service.search(modelId, query, 10)));
    const everyCandidate = await Promise.all(queries.map((query) => service.search(modelId, query, 10, { rerankFromDatabase: true })));
    // Choosing 28 of 48 candidates at random would keep about 58% of the top 10.
    expect(recall(sketched, everyCandidate)).toBeGreaterThanOrEqual(0.98);
    const live = liveVectors(f);
    queries.forEach((query, index) => {
      const unit = normalized(query);
      for (const hit of sketched[index]!) {
        const row = normalized(live.get(hit.imageId)!);
        let dot = 0;
        for (let at = 0; at < dim; at++) dot += unit[at]! * row[at]!;
        expect(Math.abs(hit.similarity - dot), `query ${index}, image ${hit.imageId}`).toBeLessThan(2e-3);
      }
    });
  });

  it('a damaged or missing sketch never changes a result: the query that meets it answers from SQLite, and the next search rebuilds it', async () => {
    const f = fixture(1200);
    const queries = queriesOf(f, 10);
    const first = f.service(calibrated);
    await first.ensureReady(modelId);
    expect(first.calibration(modelId)!.preselection).not.toBeNull();
    const fromDatabase = await first.search(modelId, queries[0]!, 10, { rerankFromDatabase: true });
    const intact = await Promise.all(queries.map((query) => first.search(modelId, query, 10)));
    await first.close();
    const copyFile = first.embeddingCopyFile(modelId);
    const sketchFile = copyFile.replace(/\.vectors$/, '.sketch');

    // The sketch row of the first query's best match, flipped on disk: the open reads the sketch whole
    // without judging it; the query that scores that row sees its check fail.
    const copyBytes = fs.readFileSync(copyFile);
    const rows = (JSON.parse(copyBytes.subarray(4, 4 + copyBytes.readUInt32LE(0)).toString('utf8')) as { rows: number }).rows;
    const tableStart = 4096 + rows * dim * 2;
    let row = 0;
    while (copyBytes.readUInt32LE(tableStart + row * 4) !== fromDatabase[0]!.imageId) row++;
    const sketch = fs.readFileSync(sketchFile);
    for (let at = 0; at < 48; at += 5) sketch[row * 48 + at]! ^= 0x33;
    fs.writeFileSync(sketchFile, sketch);
    const damaged = f.service(calibrated);
    await damaged.ensureReady(modelId);
    const opened = (await damaged.status(modelId)).embeddingCopy;
    expect(opened.state, opened.reason).toBe('ready');
    expect(ids([await damaged.search(modelId, queries[0]!, 10)])).toEqual(ids([fromDatabase]));
    const status = (await damaged.status(modelId)).embeddingCopy;
    expect(status).toMatchObject({ state: 'damaged', rerankFrom: 'sqlite' });
    expect(status.reason).toMatch(/sketch of image \d+ .* does not match its check/);
    expect(ids(await Promise.all(queries.map((query) => damaged.search(modelId, query, 10))))).toEqual(ids(intact));
    const after = (await damaged.status(modelId)).embeddingCopy;
    expect(after.state, after.reason).toBe('ready');
    expect(fs.readFileSync(sketchFile).equals(sketch)).toBe(false);
    await damaged.close();

    // Missing: the status says so before anything is loaded; the first search rebuilds copy and sketch.
    fs.rmSync(sketchFile);
    const missing = f.service(calibrated);
    const before = (await missing.status(modelId)).embeddingCopy;
    expect(before).toMatchObject({ state: 'damaged', rerankFrom: 'sqlite' });
    expect(before.reason).toMatch(/sketch .* is missing/);
    expect(ids(await Promise.all(queries.map((query) => missing.search(modelId, query, 10))))).toEqual(ids(intact));
    expect((await missing.status(modelId)).embeddingCopy.state).toBe('ready');
    expect(sketchBytes(missing)).toBe(1200 * 48);
    await missing.close();

    // Cut short: the same.
    fs.truncateSync(sketchFile, 1200 * 48 - 16);
    const cut = f.service(calibrated);
    expect((await cut.status(modelId)).embeddingCopy.reason).toMatch(/sketch .* has 57584 bytes; the copy implies 57600/);
    expect(ids(await Promise.all(queries.map((query) => cut.search(modelId, query, 10))))).toEqual(ids(intact));
    expect(sketchBytes(cut)).toBe(1200 * 48);
  });

  it('follows sync: added images get sketch rows, and a query finds them', async () => {
    const f = fixture(800);
    const service = f.service(calibrated);
    await service.ensureReady(modelId);
    const { ids: more, data: extra } = addEmbeddedImages(f.library, f.embeddings, 40, 41);
    await service.sync(modelId);
    expect(sketchBytes(service)).toBe(840 * 48);
    for (const index of [0, 17, 39]) {
      const [self] = await service.search(modelId, extra.subarray(index * dim, (index + 1) * dim), 1);
      expect(self!.imageId).toBe(more[index]);
    }
    // The copy sealed after the sync opens with its sketch, and a second process answers the same.
    const other = f.service(calibrated);
    const queries = queriesOf(f, 6);
    expect(ids(await Promise.all(queries.map((query) => other.search(modelId, query, 10))))).toEqual(
      ids(await Promise.all(queries.map((query) => service.search(modelId, query, 10)))),
    );
    expect((await other.status(modelId)).embeddingCopy.state).toBe('ready');
  });

  it('over its memory limit the copy has no sketch, the calibration says every candidate is read, and the answers stay right', async () => {
    const f = fixture(900);
    const service = f.service({ ...calibrated, sketchMemoryLimitBytes: 900 * 48 - 1 });
    await service.ensureReady(modelId);
    expect(service.calibration(modelId)!.preselection).toBeNull();
    expect(service.calibrationSummary(modelId)).not.toMatch(/sketch/);
    const status = (await service.status(modelId)).embeddingCopy;
    expect(status.state).toBe('ready');
    expect(status.reason).not.toMatch(/sketch/);
    expect(fs.existsSync(service.embeddingCopyFile(modelId).replace(/\.vectors$/, '.sketch'))).toBe(false);
    const queries = queriesOf(f, 10);
    const answers = await Promise.all(queries.map((query) => service.search(modelId, query, 10)));
    const everyCandidate = await Promise.all(queries.map((query) => service.search(modelId, query, 10, { rerankFromDatabase: true })));
    expect(recall(answers, everyCandidate)).toBeGreaterThanOrEqual(0.99);
  });

  it('is off by default; dermws index rebuild --sketch on|off saves the library setting and the build keeps or drops it', async () => {
    const f = fixture(300);
    const plain = f.service({ calibrate: true, calibrationProbes: 100 });
    await plain.ensureReady(modelId);
    expect(plain.calibration(modelId)!.preselection).toBeNull();
    expect(fs.existsSync(plain.embeddingCopyFile(modelId).replace(/\.vectors$/, '.sketch'))).toBe(false);
    await plain.close();

    // Through the CLI, on a model wide enough for the default parameters to project it.
    const library = createTestLibrary();
    cleanups.push(() => library.cleanup());
    const embeddings = new EmbeddingsRepository(library.db);
    const wide = 600;
    embeddings.registerModel({ id: 'wide', displayName: 'wide', dim: wide, sha256: 'c'.repeat(64), source: 'imported', preprocessing: null });
    const ids = insertSyntheticImages(library, 400);
    const { data } = flatNonNegativeVectors({ count: 400, dim: wide, seed: 7 });
    embeddings.put(
      'wide',
      'c'.repeat(64),
      ids.map((imageId, row) => ({ imageId, vector: data.subarray(row * wide, (row + 1) * wide) })),
    );
    const root = library.paths.root;
    const sketchFile = `${library.paths.indexes}/wide.sketch`;
    const on = await runDermws('--library', root, '--json', 'index', 'rebuild', '--sketch', 'on');
    expect(on.code).toBe(0);
    expect(on.json.indexes[0].calibration.preselection).toEqual({ bits: 4, kept: 28 });
    expect(fs.statSync(sketchFile).size).toBe(400 * 304);
    const status = await runDermws('--library', root, '--json', 'index', 'status');
    expect(status.json.indexes[0].embeddingCopy.reason).toMatch(/4-bit sketch of each/);
    expect(status.json.indexes[0].calibration.preselection).toEqual({ bits: 4, kept: 28 });

    const off = await runDermws('--library', root, '--json', 'index', 'rebuild', '--sketch', 'off');
    expect(off.json.indexes[0].calibration.preselection).toBeNull();
    expect(fs.existsSync(sketchFile)).toBe(false);

    const wrong = await runDermws('--library', root, '--json', 'index', 'rebuild', '--sketch', 'maybe');
    expect(wrong.code).toBe(2);
    expect(wrong.json.error).toMatchObject({ code: 'invalid-input', message: expect.stringContaining('--sketch must be "on" or "off"; got "maybe"') });
  });
});
