/**
 * Similar-case search bench: generated clustered 6144-d vectors (Derm Foundation's size), 10k and
 * 100k of them (SEARCH_BENCH_SIZES=10000,100000 by default).
 *
 * What is measured: the index layer the VectorIndexService runs, in memory — randomized PCA fit on
 * onnxruntime (and the same product in plain JavaScript), projection, HNSW build, write, open
 * (read + sha256 check + setEf), query = normalise + project (ORT) + graph search + exact re-rank of
 * the candidates on the full vectors; and, side by side, the project's exact brute-force scan
 * (vector-math.ts exactSearch). Full vectors are held in memory for the re-rank instead of being read
 * back from SQLite (the SQLite read of the candidates is measured separately on 10k rows).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import hnswlib from 'hnswlib-node';
import { vectorToBlob } from '../../electron/core/embeddings/vector-codec.js';
import { matrix, multiplyJs, OnnxAffine, OnnxGemm } from '../../electron/core/index/onnx-gemm.js';
import { fitRandomizedPca, gaussianSource, projectionBias } from '../../electron/core/index/randomized-pca.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { VectorIndexRepository } from '../../electron/core/index/vector-index.repository.js';
import { defaultIndexParameters, VectorIndexService } from '../../electron/core/index/vector-index.service.js';
import { openLibrary } from '../../electron/core/library/library.js';
import { cosine, exactSearch, normalizeRows, TopK, type Neighbour } from '../../electron/core/index/vector-math.js';
import { clusteredVectors, perturbed } from '../fixtures/clustered-vectors.js';

const { HierarchicalNSW } = hnswlib;
const dim = 6144;

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!;
}

function recall(found: Neighbour[][], truth: Neighbour[][], k = 10): number {
  let hits = 0;
  found.forEach((result, index) => {
    const expected = new Set(truth[index]!.slice(0, k).map((neighbour) => neighbour.imageId));
    hits += result.slice(0, k).filter((neighbour) => expected.has(neighbour.imageId)).length;
  });
  return hits / (found.length * k);
}

const ms = (value: number) => `${value.toFixed(value < 10 ? 2 : 0)} ms`;
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;

async function benchSize(count: number, gemm: OnnxGemm): Promise<void> {
  const parameters = defaultIndexParameters;
  console.log(`\n--- ${count} vectors x ${dim} (M=${parameters.m}, efConstruction=${parameters.efConstruction}, projected to ${parameters.projectedDim}) ---`);
  let started = performance.now();
  // 384 latent dimensions (more than the 256 kept by the projection) and visible isotropic noise, so
  // the projection loses information and the exact re-rank has work to do.
  const { data } = clusteredVectors({ count, dim, seed: 42, clusters: Math.round(Math.sqrt(count)), latentDim: 384, noise: 0.01 });
  normalizeRows(data, dim);
  const ids = Int32Array.from({ length: count }, (_, index) => index + 1);
  console.log(`generated in ${ms(performance.now() - started)}`);

  // PCA fit on a sample (what fitProjection does).
  const sampleSize = Math.min(count, parameters.pcaSampleSize);
  const step = count / sampleSize;
  const sample = new Float32Array(sampleSize * dim);
  for (let row = 0; row < sampleSize; row++) sample.set(data.subarray(Math.floor(row * step) * dim, (Math.floor(row * step) + 1) * dim), row * dim);
  started = performance.now();
  const pca = await fitRandomizedPca(gemm, matrix(sampleSize, dim, sample), { components: parameters.projectedDim, powerIterations: parameters.pcaPowerIterations });
  const fitSeconds = (performance.now() - started) / 1000;
  const explained = pca.variances.reduce((sum, value) => sum + value, 0) / pca.totalVariance;
  console.log(`PCA fit (ORT, ${sampleSize} samples, ${parameters.pcaPowerIterations} power iterations): ${fitSeconds.toFixed(2)} s, ${(explained * 100).toFixed(1)}% of variance in ${pca.outputDim} components`);

  const affine = await OnnxAffine.create(matrix(dim, pca.outputDim, pca.components), projectionBias(pca));
  started = performance.now();
  const projected = new Float32Array(count * pca.outputDim);
  for (let start = 0; start < count; start += 1024) {
    const rows = Math.min(1024, count - start);
    projected.set(await affine.apply(data.subarray(start * dim, (start + rows) * dim), rows), start * pca.outputDim);
  }
  console.log(`projection of all rows (ORT): ${ms(performance.now() - started)}`);

  const rssBefore = process.memoryUsage().rss;
  started = performance.now();
  const built = new HierarchicalNSW('l2', pca.outputDim);
  built.initIndex({ maxElements: Math.ceil(count * 1.25), m: parameters.m, efConstruction: parameters.efConstruction, randomSeed: 100 });
  for (let row = 0; row < count; row++) built.addPoint(Array.from(projected.subarray(row * pca.outputDim, (row + 1) * pca.outputDim)), ids[row]!);
  const buildSeconds = (performance.now() - started) / 1000;
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-search-bench-'));
  const file = path.join(folder, 'bench.hnsw');
  await built.writeIndex(file);
  const fileBytes = fs.statSync(file).size;
  const builtRss = process.memoryUsage().rss - rssBefore;
  console.log(`HNSW build: ${buildSeconds.toFixed(1)} s (${Math.round(count / buildSeconds)}/s); file ${mb(fileBytes)}; RSS growth while building ${mb(builtRss)}`);

  // Open to ready: what ensureReady does with an intact file (checksum, read, ef).
  started = performance.now();
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  hash.digest('hex');
  const opened = new HierarchicalNSW('l2', pca.outputDim);
  opened.readIndexSync(file);
  opened.setEf(parameters.efSearch);
  const openMs = performance.now() - started;
  console.log(`open (sha256 + readIndex + setEf): ${ms(openMs)}`);

  // Queries near library rows, not equal to them.
  const queryCount = count >= 100_000 ? 30 : 150;
  const queries = Array.from({ length: queryCount }, (_, index) => normalizeRows(perturbed(data, dim, (index * 7919) % count, 0.3, index + 1), dim));

  started = performance.now();
  const truth: Neighbour[][] = [];
  const exactTimes: number[] = [];
  for (const query of queries) {
    const t = performance.now();
    truth.push(exactSearch(query, data, ids, 10));
    exactTimes.push(performance.now() - t);
  }
  const exactP50 = percentile(exactTimes, 0.5);
  console.log(`exact brute-force scan: p50 ${ms(exactP50)}, p99 ${ms(percentile(exactTimes, 0.99))}`);

  const run = async (candidates: number, ef: number) => {
    opened.setEf(Math.max(ef, candidates));
    const times: number[] = [];
    const found: Neighbour[][] = [];
    for (const query of queries) {
      const t = performance.now();
      const point = Array.from(await affine.apply(query, 1));
      const result = opened.searchKnn(point, candidates);
      const top = new TopK(10);
      for (const label of result.neighbors) top.offer(label, cosine(query, data, (label - 1) * dim));
      found.push(top.result());
      times.push(performance.now() - t);
    }
    return { p50: percentile(times, 0.5), p99: percentile(times, 0.99), recall: recall(found, truth) };
  };
  await run(parameters.rerankCandidates, parameters.efSearch);
  console.log('candidates re-ranked | ef  | p50      | p99      | recall@10 | speed-up vs exact (p50)');
  for (const [candidates, ef] of [
    [16, 16],
    [32, 32],
    [parameters.rerankCandidates, parameters.efSearch],
    [128, 128],
  ] as const) {
    const figures = await run(candidates, ef);
    console.log(
      `${String(candidates).padStart(20)} | ${String(ef).padStart(3)} | ${ms(figures.p50).padStart(8)} | ${ms(figures.p99).padStart(8)} | ${figures.recall.toFixed(3).padStart(9)} | ${Math.round(exactP50 / figures.p50)}x${candidates === parameters.rerankCandidates ? '   <- default' : ''}`,
    );
  }

  {
    // The projection's ceiling: the exact top candidates in the projected space, re-ranked. What the
    // graph loses is the difference to the table above; what the projection loses is 1 minus this.
    const found: Neighbour[][] = [];
    for (const query of queries) {
      const point = await affine.apply(query, 1);
      const nearest = new TopK(parameters.rerankCandidates);
      for (let row = 0; row < count; row++) {
        let distance = 0;
        for (let index = 0; index < pca.outputDim; index++) {
          const difference = point[index]! - projected[row * pca.outputDim + index]!;
          distance += difference * difference;
        }
        nearest.offer(ids[row]!, -distance);
      }
      const top = new TopK(10);
      for (const candidate of nearest.result()) top.offer(candidate.imageId, cosine(query, data, (candidate.imageId - 1) * dim));
      found.push(top.result());
    }
    console.log(`projection ceiling (exact top ${parameters.rerankCandidates} in the ${pca.outputDim}-d space, re-ranked): recall@10 ${recall(found, truth).toFixed(3)}`);
  }

  if (count <= 10_000) {
    // Graph degree: build the same projected points with other M values and compare at the default query settings.
    console.log('M  | build     | file   | p50      | recall@10');
    for (const m of [8, parameters.m, 32]) {
      const t = performance.now();
      const graph = new HierarchicalNSW('l2', pca.outputDim);
      graph.initIndex({ maxElements: count, m, efConstruction: parameters.efConstruction, randomSeed: 100 });
      for (let row = 0; row < count; row++) graph.addPoint(Array.from(projected.subarray(row * pca.outputDim, (row + 1) * pca.outputDim)), ids[row]!);
      const seconds = (performance.now() - t) / 1000;
      const sweepFile = path.join(folder, `m${m}.hnsw`);
      await graph.writeIndex(sweepFile);
      graph.setEf(parameters.efSearch);
      const times: number[] = [];
      const found: Neighbour[][] = [];
      for (const query of queries) {
        const started = performance.now();
        const point = Array.from(await affine.apply(query, 1));
        const top = new TopK(10);
        for (const label of graph.searchKnn(point, parameters.rerankCandidates).neighbors) top.offer(label, cosine(query, data, (label - 1) * dim));
        found.push(top.result());
        times.push(performance.now() - started);
      }
      console.log(`${String(m).padEnd(2)} | ${`${seconds.toFixed(1)} s`.padStart(9)} | ${mb(fs.statSync(sweepFile).size).padStart(6)} | ${ms(percentile(times, 0.5)).padStart(8)} | ${recall(found, truth).toFixed(3)}`);
    }
  }

  if (count <= 10_000) {
    // Re-rank from SQLite, as the service does: read the candidates' blobs by id.
    const db = new Database(path.join(folder, 'vectors.sqlite'));
    db.exec('CREATE TABLE embeddings (image_id INTEGER PRIMARY KEY, vector BLOB NOT NULL)');
    const insert = db.prepare('INSERT INTO embeddings (image_id, vector) VALUES (?, ?)');
    db.transaction(() => {
      for (let row = 0; row < count; row++) insert.run(row + 1, vectorToBlob(data.subarray(row * dim, (row + 1) * dim)));
    })();
    const read = db.prepare('SELECT image_id, vector FROM embeddings WHERE image_id IN (SELECT value FROM json_each(?))');
    const times: number[] = [];
    for (const query of queries) {
      const point = Array.from(await affine.apply(query, 1));
      const labels = opened.searchKnn(point, parameters.rerankCandidates).neighbors;
      const t = performance.now();
      read.all(JSON.stringify(labels));
      times.push(performance.now() - t);
    }
    console.log(`reading ${parameters.rerankCandidates} candidate embeddings from SQLite: p50 ${ms(percentile(times, 0.5))}, p99 ${ms(percentile(times, 0.99))}`);
    db.close();
  }
  if (count <= 10_000) {
    // End to end through the service on a real library: build from SQLite, open-to-ready of a fresh
    // service (row + file checksum + id checksum + projection session), and queries with the re-rank
    // reading candidates from SQLite.
    const library = openLibrary(path.join(folder, 'library'));
    const embeddings = new EmbeddingsRepository(library.db);
    embeddings.registerModel({ id: 'bench', displayName: 'bench', dim, sha256: 'a'.repeat(64), source: 'imported', preprocessing: null });
    const insert = library.db.prepare(
      "INSERT INTO images (id, file_sha256, pixel_sha256, original_path, thumbnail_path, width, height, format, bytes, imported_at, batch_id) VALUES (?, ?, ?, ?, ?, 64, 64, 'jpeg', 1, '', 1)",
    );
    library.db.prepare("INSERT INTO import_batches (id, started_at, status, source_paths) VALUES (1, '', 'completed', '[]')").run();
    library.db.transaction(() => {
      for (let row = 0; row < count; row++) insert.run(row + 1, `f${row}`, `p${row}`, `/x/${row}.jpg`, `thumbnails/${row}.webp`);
    })();
    for (let start = 0; start < count; start += 1000) {
      embeddings.put('bench', 'a'.repeat(64), Array.from({ length: Math.min(1000, count - start) }, (_, offset) => ({ imageId: start + offset + 1, vector: data.subarray((start + offset) * dim, (start + offset + 1) * dim) })));
    }
    let t = performance.now();
    const builder = new VectorIndexService(new VectorIndexRepository(library.db), embeddings, library.paths);
    const built = await builder.ensureReady('bench');
    console.log(`service: build from SQLite ${((performance.now() - t) / 1000).toFixed(1)} s (fit ${built.rebuilt?.fitSeconds?.toFixed(1)} s)`);
    await builder.close();
    t = performance.now();
    const service = new VectorIndexService(new VectorIndexRepository(library.db), embeddings, library.paths);
    const opened = await service.ensureReady('bench');
    console.log(`service: open-to-ready ${ms(performance.now() - t)} (rebuilt: ${opened.rebuilt !== null})`);
    const times: number[] = [];
    const found: Neighbour[][] = [];
    for (const query of queries) {
      const started = performance.now();
      found.push(await service.search('bench', query, 10));
      times.push(performance.now() - started);
    }
    console.log(`service: query p50 ${ms(percentile(times, 0.5))}, p99 ${ms(percentile(times, 0.99))}, recall@10 ${recall(found.map((result) => result.map((hit) => ({ ...hit }))), truth).toFixed(3)}`);
    await service.close();
    library.close();
  }
  await affine.release();
  fs.rmSync(folder, { recursive: true, force: true });
}

export async function run(): Promise<void> {
  const gemm = new OnnxGemm();
  // The dominant product of the PCA fit, ORT against a JavaScript loop, on the same operands.
  const normal = gaussianSource(1);
  const rows = 512;
  const left = matrix(rows, dim, Float32Array.from({ length: rows * dim }, () => normal()));
  const right = matrix(dim, 272, Float32Array.from({ length: dim * 272 }, () => normal()));
  await gemm.multiply(left, right);
  let started = performance.now();
  await gemm.multiply(left, right);
  const ortMs = performance.now() - started;
  started = performance.now();
  multiplyJs(left, right);
  const jsMs = performance.now() - started;
  console.log(`${rows}x${dim} · ${dim}x272 product: ORT ${ms(ortMs)}, JavaScript loop ${ms(jsMs)} (${Math.round(jsMs / ortMs)}x)`);
  const query = left.data.subarray(0, dim);
  const projection = matrix(dim, 256, right.data.subarray(0, dim * 256));
  const affine = await OnnxAffine.create(projection, new Float32Array(256));
  const ortTimes: number[] = [];
  const jsTimes: number[] = [];
  for (let repeat = 0; repeat < 200; repeat++) {
    let t = performance.now();
    await affine.apply(query, 1);
    ortTimes.push(performance.now() - t);
    t = performance.now();
    multiplyJs(matrix(1, dim, query), projection);
    jsTimes.push(performance.now() - t);
  }
  console.log(`query projection 6144 -> 256: ORT p50 ${ms(percentile(ortTimes, 0.5))}, JavaScript p50 ${ms(percentile(jsTimes, 0.5))}`);
  await affine.release();

  const sizes = (process.env.SEARCH_BENCH_SIZES ?? '10000,100000').split(',').map(Number);
  for (const size of sizes) await benchSize(size, gemm);
  await gemm.release();
}
