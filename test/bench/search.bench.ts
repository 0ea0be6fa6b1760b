/**
 * Similar-case search bench: generated clustered 6144-d vectors (Derm Foundation's size), 10k and
 * 100k of them (SEARCH_BENCH_SIZES=10000,100000 by default), for three data models reported separately
 * (SEARCH_BENCH_DATA=hard,decaying,flat: flat spectra with isotropic noise, decaying spectra, and
 * post-ReLU-like non-negative vectors with a flat spectrum), with the
 * graph built at the default projected dimension or at each of SEARCH_BENCH_GRAPH_DIMS (e.g. 256,384).
 *
 * What is measured: the index layer the VectorIndexService runs, in memory — randomized PCA fit on
 * onnxruntime (and the same product in plain JavaScript), projection, HNSW build, write, open
 * (read + sha256 check + setEf), query = normalise + project (ORT) + graph search + exact re-rank of
 * the candidates on the full vectors; and, side by side, the project's exact brute-force scan
 * (vector-math.ts exactSearch). Full vectors are held in memory for the re-rank instead of being read
 * back from SQLite (the SQLite read of the candidates is measured separately on 10k rows). Then, for
 * every size and data model, the service end to end on a real library (search-benchmark.ts: build and
 * calibration, open-to-ready, resident memory, per-stage query times, and hnswlib's own searchKnn on
 * the same file as the native reference). The service half also puts side by side the re-rank from the
 * flat float16 copy beside the index and from SQLite (the same queries, interleaved), the float32 copy
 * against float16 (recall, same top 10), the whole searchSimilar request in process with its stages
 * and through the web API (`dermws serve`, HTTP + JSON), resident memory and open-to-ready.
 * SEARCH_BENCH_PARTS=service (or layer) runs one half. Before either, side by side on one 6144 → 384
 * projection: a query through onnxruntime (`OnnxAffine.apply`, awaited) against the WebAssembly
 * `QueryProjector` search uses; SEARCH_BENCH_PARTS=projection runs only these small figures.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import hnswlib from 'hnswlib-node';
import { blobToVector, vectorToBlob } from '../../electron/core/embeddings/vector-codec.js';
import { matrix, multiplyJs, OnnxAffine, OnnxGemm } from '../../electron/core/math/onnx-gemm.js';
import { fitRandomizedPca, gaussianSource, projectionBias } from '../../electron/core/math/randomized-pca.js';
import { defaultIndexParameters } from '../../electron/core/index/vector-index.service.js';
import { QueryProjector } from '../../electron/core/math/vector-kernels.js';
import { cosine, exactSearch, normalizeRows, TopK, type Neighbour } from '../../electron/core/math/vector-math.js';
import { benchmarkSearch, formatSearchBenchmark } from '../../electron/core/search/search-benchmark.js';
import { clusteredVectors, flatNonNegativeVectors, perturbed } from '../fixtures/clustered-vectors.js';
import { startServer } from '../../electron/web/serve.js';
import { tokenHeader } from '../../electron/web/web-bridge.js';

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

/** The data models the bench reports, each separately. */
const dataModels = {
  // 384 latent dimensions with a flat spectrum of cluster centres (more than the 256 of the old default
  // projection) and isotropic noise in every one of the 6144 dimensions: the hard case.
  hard: { latentDim: 384, noise: 0.01 },
  // What measured encoders look like: centres and noise with decaying spectra (most variance in few
  // directions), the same total noise energy as the hard case.
  decaying: { latentDim: 384, noise: 0.01, centreDecay: 1, noiseDecay: 1 },
  // Shaped like post-ReLU encoder output (flatNonNegativeVectors): non-negative with ~40% zeros,
  // count/100 clusters (1,000 at 100k) with strong within-cluster spread, and a flat spectrum over
  // 2048 latent directions.
  flat: {},
} as const;
type DataModel = keyof typeof dataModels;

const projectionDims = [256, 384, 512];
const candidateCounts = [64, 128, 256];

/** Exact top-k of every query by one ORT product per block of rows (the reference for recall). */
async function exactTruth(gemm: OnnxGemm, data: Float32Array, count: number, queries: Float32Array[], k: number): Promise<Neighbour[][]> {
  const queryMatrix = matrix(queries.length, dim);
  queries.forEach((query, index) => queryMatrix.data.set(query, index * dim));
  const tops = queries.map(() => new TopK(k));
  const block = 4096;
  for (let start = 0; start < count; start += block) {
    const rows = Math.min(block, count - start);
    const scores = await gemm.multiply(matrix(rows, dim, data.slice(start * dim, (start + rows) * dim)), queryMatrix, false, true);
    for (let row = 0; row < rows; row++) {
      for (let query = 0; query < queries.length; query++) tops[query]!.offer(start + row + 1, scores.data[row * queries.length + query]!);
    }
  }
  return tops.map((top) => top.result());
}

async function benchSize(count: number, gemm: OnnxGemm, dataModel: DataModel): Promise<void> {
  const parameters = defaultIndexParameters;
  const graphDims = (process.env.SEARCH_BENCH_GRAPH_DIMS ?? String(parameters.projectedDim)).split(',').map(Number);
  console.log(`\n--- ${count} vectors x ${dim}, data model "${dataModel}" (M=${parameters.m}, efConstruction=${parameters.efConstruction}) ---`);
  let started = performance.now();
  const { data } =
    dataModel === 'flat'
      ? flatNonNegativeVectors({ count, dim, seed: 42 })
      : clusteredVectors({ count, dim, seed: 42, clusters: Math.round(Math.sqrt(count)), ...dataModels[dataModel] });
  normalizeRows(data, dim);
  let zeros = 0;
  for (const value of data) if (value === 0) zeros++;
  const ids = Int32Array.from({ length: count }, (_, index) => index + 1);
  console.log(`generated in ${ms(performance.now() - started)} (${((zeros / data.length) * 100).toFixed(0)}% exact zeros)`);
  const parts = (process.env.SEARCH_BENCH_PARTS ?? 'layer,service').split(',');
  if (parts.includes('service')) {
    // End to end through the service on a real library (SQLite), calibrated as a user's library is,
    // with each query stage timed and hnswlib searched directly on the same file as the native figure.
    started = performance.now();
    let webApi = '';
    let builtCli = '';
    const report = await benchmarkSearch({
      vectors: data,
      count,
      dim,
      comparePrecisions: true,
      // With the sketch (off by default), so its path and the default one are measured side by side;
      // SEARCH_BENCH_SKETCH=off builds the library as a user's default one is (the built CLI's first search then has no sketch to read).
      parameters: { sketch: process.env.SEARCH_BENCH_SKETCH !== 'off' },
      onStep: (line) => console.log(`  ${line}…`),
      withLibrary: async ({ folder: libraryFolder, modelId, queryImageIds }) => {
        if (queryImageIds) {
          webApi = await measureWebApi(libraryFolder, modelId, queryImageIds);
          builtCli = measureBuiltFirstSearch(libraryFolder, modelId, queryImageIds);
        }
      },
    });
    console.log(
      `service (${((performance.now() - started) / 1000).toFixed(0)} s in all; load average ${os
        .loadavg()
        .map((value) => value.toFixed(1))
        .join(' ')}):`,
    );
    for (const line of formatSearchBenchmark(report)) console.log(`  ${line}`);
    if (webApi) console.log(`  ${webApi}`);
    if (builtCli) console.log(`  ${builtCli}`);
  }
  if (!parts.includes('layer')) return;

  // One PCA fit with the most components compared; the first d of them are the d-dimensional
  // projection (components are ordered by variance).
  const maxDim = Math.max(...projectionDims, ...graphDims);
  const fitOf = async (samples: number, powerIterations: number) => {
    const sampleSize = Math.min(count, samples);
    const step = count / sampleSize;
    const sample = new Float32Array(sampleSize * dim);
    for (let row = 0; row < sampleSize; row++) sample.set(data.subarray(Math.floor(row * step) * dim, (Math.floor(row * step) + 1) * dim), row * dim);
    const t = performance.now();
    const model = await fitRandomizedPca(gemm, matrix(sampleSize, dim, sample), { components: maxDim, powerIterations, centreInPlace: true });
    const seconds = (performance.now() - t) / 1000;
    const keptBy = (d: number) => model.variances.slice(0, d).reduce((sum, value) => sum + value, 0) / model.totalVariance;
    console.log(
      `PCA fit (ORT, ${sampleSize} samples, ${powerIterations} power iterations, ${maxDim} components): ${seconds.toFixed(2)} s; variance kept: ${projectionDims.map((d) => `${d} -> ${(keptBy(d) * 100).toFixed(2)}%`).join(', ')}`,
    );
    return model;
  };
  const pca = await fitOf(parameters.pcaSampleSize, parameters.pcaPowerIterations);
  const affineFor = (d: number) => {
    const components = new Float32Array(dim * d);
    for (let row = 0; row < dim; row++) components.set(pca.components.subarray(row * maxDim, row * maxDim + d), row * d);
    const model = { inputDim: dim, outputDim: d, mean: pca.mean, components };
    return OnnxAffine.create(matrix(dim, d, components), projectionBias(model));
  };
  const fullAffine = await affineFor(maxDim);
  started = performance.now();
  const projected = new Float32Array(count * maxDim);
  for (let start = 0; start < count; start += 1024) {
    const rows = Math.min(1024, count - start);
    projected.set(await fullAffine.apply(data.subarray(start * dim, (start + rows) * dim), rows), start * maxDim);
  }
  console.log(`projection of all rows to ${maxDim}-d (ORT): ${ms(performance.now() - started)}`);

  // Queries near library rows, not equal to them.
  const queryCount = 100;
  const queries = Array.from({ length: queryCount }, (_, index) => normalizeRows(perturbed(data, dim, (index * 7919) % count, 0.3, index + 1), dim));
  started = performance.now();
  const truth = await exactTruth(gemm, data, count, queries, 10);
  console.log(`exact top-10 of ${queryCount} queries by ORT products: ${ms(performance.now() - started)}`);
  const exactTimes: number[] = [];
  let agree = 0;
  for (let index = 0; index < 5; index++) {
    const t = performance.now();
    const scanned = exactSearch(queries[index]!, data, ids, 10);
    exactTimes.push(performance.now() - t);
    agree += recall([scanned], [truth[index]!]);
  }
  const exactP50 = percentile(exactTimes, 0.5);
  console.log(
    `exact brute-force scan (the project's exactSearch, 5 queries): p50 ${ms(exactP50)}; agrees with the ORT reference on ${((agree / 5) * 100).toFixed(0)}% of the top 10`,
  );

  {
    // The projection's ceiling: the exact top C in the d-dimensional projected space, re-ranked by exact
    // cosine. Whatever is missing here no graph setting can recover; the graph can only lose more.
    const hits = new Map<string, Neighbour[][]>();
    const maxCandidates = Math.max(...candidateCounts);
    for (const query of queries) {
      const point = await fullAffine.apply(query, 1);
      const nearest = projectionDims.map(() => new TopK(maxCandidates));
      for (let row = 0; row < count; row++) {
        let distance = 0;
        let at = 0;
        for (let index = 0; index < maxDim; index++) {
          const difference = point[index]! - projected[row * maxDim + index]!;
          distance += difference * difference;
          if (index + 1 === projectionDims[at]) nearest[at++]!.offer(row + 1, -distance);
        }
      }
      projectionDims.forEach((d, at) => {
        const order = nearest[at]!.result();
        for (const candidates of candidateCounts) {
          const top = new TopK(10);
          for (const candidate of order.slice(0, candidates)) top.offer(candidate.imageId, cosine(query, data, (candidate.imageId - 1) * dim));
          const key = `${d}/${candidates}`;
          hits.set(key, [...(hits.get(key) ?? []), top.result()]);
        }
      });
    }
    console.log(
      `projection ceiling, recall@10 (exact top C in the projected space, re-ranked; fit ${Math.min(count, parameters.pcaSampleSize)} samples, ${parameters.pcaPowerIterations} power iterations):`,
    );
    console.log(`dims | ${candidateCounts.map((c) => `C=${c}`.padStart(6)).join(' | ')}`);
    for (const d of projectionDims)
      console.log(
        `${String(d).padStart(4)} | ${candidateCounts
          .map((c) =>
            recall(hits.get(`${d}/${c}`)!, truth)
              .toFixed(3)
              .padStart(6),
          )
          .join(' | ')}`,
      );
  }

  if (dataModel === 'flat') {
    // Which fit holds on a flat spectrum: the projection ceiling at the default width for the default
    // fit and for the ones a calibration escalates to (more power iterations, a larger sample).
    const width = parameters.projectedDim;
    console.log(`fit on flat data | ${width}-d ceiling C=64 | C=128`);
    for (const [samples, powerIterations] of [
      [parameters.pcaSampleSize, parameters.pcaPowerIterations],
      [parameters.pcaSampleSize, parameters.pcaPowerIterations + 2],
      [parameters.pcaSampleSize * 2, parameters.pcaPowerIterations + 2],
    ] as const) {
      const model = await fitOf(samples, powerIterations);
      const components = new Float32Array(dim * width);
      for (let row = 0; row < dim; row++) components.set(model.components.subarray(row * maxDim, row * maxDim + width), row * width);
      const affine = await OnnxAffine.create(matrix(dim, width, components), projectionBias({ inputDim: dim, outputDim: width, mean: model.mean, components }));
      const points = new Float32Array(count * width);
      for (let start = 0; start < count; start += 1024) {
        const rows = Math.min(1024, count - start);
        points.set(await affine.apply(data.subarray(start * dim, (start + rows) * dim), rows), start * width);
      }
      const found = new Map<number, Neighbour[][]>([
        [64, []],
        [128, []],
      ]);
      for (const query of queries) {
        const point = await affine.apply(query, 1);
        const nearest = new TopK(128);
        for (let row = 0; row < count; row++) {
          let distance = 0;
          for (let index = 0; index < width; index++) {
            const difference = point[index]! - points[row * width + index]!;
            distance += difference * difference;
          }
          nearest.offer(row + 1, -distance);
        }
        for (const candidates of [64, 128]) {
          const top = new TopK(10);
          for (const candidate of nearest.result().slice(0, candidates)) top.offer(candidate.imageId, cosine(query, data, (candidate.imageId - 1) * dim));
          found.get(candidates)!.push(top.result());
        }
      }
      console.log(
        `${Math.min(count, samples)} samples, ${powerIterations} power it. | ${recall(found.get(64)!, truth).toFixed(3)} | ${recall(found.get(128)!, truth).toFixed(3)}`,
      );
      await affine.release();
    }
  }

  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-search-bench-'));
  for (const graphDim of graphDims) {
    const affine = await affineFor(graphDim);
    const rssBefore = process.memoryUsage().rss;
    started = performance.now();
    const built = new HierarchicalNSW('l2', graphDim);
    built.initIndex({ maxElements: Math.ceil(count * 1.25), m: parameters.m, efConstruction: parameters.efConstruction, randomSeed: 100 });
    for (let row = 0; row < count; row++) built.addPoint(Array.from(projected.subarray(row * maxDim, row * maxDim + graphDim)), ids[row]!);
    const buildSeconds = (performance.now() - started) / 1000;
    const file = path.join(folder, `bench-${graphDim}.hnsw`);
    await built.writeIndex(file);
    const fileBytes = fs.statSync(file).size;
    const builtRss = process.memoryUsage().rss - rssBefore;
    console.log(
      `HNSW on ${graphDim}-d: build ${buildSeconds.toFixed(1)} s (${Math.round(count / buildSeconds)}/s); file ${mb(fileBytes)}; RSS growth while building ${mb(builtRss)}`,
    );

    // Open to ready: what ensureReady does with an intact file (checksum, read, ef).
    started = performance.now();
    const hash = createHash('sha256');
    for await (const chunk of fs.createReadStream(file, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
    hash.digest('hex');
    const opened = new HierarchicalNSW('l2', graphDim);
    opened.readIndexSync(file);
    opened.setEf(parameters.efSearch);
    console.log(`open (sha256 + readIndex + setEf): ${ms(performance.now() - started)}`);

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
    console.log('candidates | ef  | p50 (in-memory re-rank) | p99      | recall@10 | speed-up vs exact (p50)');
    for (const [candidates, ef] of [
      [64, 64],
      [64, 128],
      [64, 256],
      [64, 512],
      [128, 128],
      [128, 256],
      [256, 256],
    ] as const) {
      const figures = await run(candidates, ef);
      const isDefault = graphDim === parameters.projectedDim && candidates === parameters.rerankCandidates && ef === Math.max(parameters.efSearch, candidates);
      console.log(
        `${String(candidates).padStart(10)} | ${String(ef).padStart(3)} | ${ms(figures.p50).padStart(23)} | ${ms(figures.p99).padStart(8)} | ${figures.recall.toFixed(3).padStart(9)} | ${Math.round(exactP50 / figures.p50)}x${isDefault ? '   <- default' : ''}`,
      );
    }

    if (count <= 10_000 && graphDim === graphDims[0]) {
      // Graph degree: build the same projected points with other M values and compare at the default query settings.
      console.log('M  | build     | file   | p50      | recall@10');
      for (const m of [8, parameters.m, 32]) {
        const t = performance.now();
        const graph = new HierarchicalNSW('l2', graphDim);
        graph.initIndex({ maxElements: count, m, efConstruction: parameters.efConstruction, randomSeed: 100 });
        for (let row = 0; row < count; row++) graph.addPoint(Array.from(projected.subarray(row * maxDim, row * maxDim + graphDim)), ids[row]!);
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
        console.log(
          `${String(m).padEnd(2)} | ${`${seconds.toFixed(1)} s`.padStart(9)} | ${mb(fs.statSync(sweepFile).size).padStart(6)} | ${ms(percentile(times, 0.5)).padStart(8)} | ${recall(found, truth).toFixed(3)}`,
        );
      }
    }

    if (count <= 10_000 && graphDim === graphDims[0] && dataModel === 'hard') {
      // Fetching the candidates' full embeddings for the re-rank, which is what the in-memory figures
      // above leave out: from SQLite as the service does (one statement, ids as JSON), against positional
      // reads from a flat float32 file (nothing held in memory either way; both from the page cache).
      const db = new Database(path.join(folder, 'vectors.sqlite'));
      db.exec('CREATE TABLE embeddings (image_id INTEGER PRIMARY KEY, vector BLOB NOT NULL)');
      const insert = db.prepare('INSERT INTO embeddings (image_id, vector) VALUES (?, ?)');
      db.transaction(() => {
        for (let row = 0; row < count; row++) insert.run(row + 1, vectorToBlob(data.subarray(row * dim, (row + 1) * dim)));
      })();
      const read = db.prepare('SELECT image_id, vector FROM embeddings WHERE image_id IN (SELECT value FROM json_each(?))');
      const flatFile = path.join(folder, 'vectors.f32');
      fs.writeFileSync(flatFile, new Uint8Array(data.buffer, data.byteOffset, count * dim * 4));
      const descriptor = fs.openSync(flatFile, 'r');
      const buffer = Buffer.alloc(dim * 4);
      console.log('candidates | SQLite p50 | flat file p50 | cosine of the candidates, p50');
      for (const candidates of candidateCounts) {
        opened.setEf(candidates);
        const sqliteTimes: number[] = [];
        const flatTimes: number[] = [];
        const cosineTimes: number[] = [];
        for (const query of queries) {
          const labels = opened.searchKnn(Array.from(await affine.apply(query, 1)), candidates).neighbors;
          let t = performance.now();
          for (const row of read.all(JSON.stringify(labels)) as { image_id: number; vector: Buffer }[]) blobToVector(row.vector);
          sqliteTimes.push(performance.now() - t);
          t = performance.now();
          for (const label of labels) {
            fs.readSync(descriptor, buffer, 0, buffer.length, (label - 1) * dim * 4);
            new Float32Array(buffer.buffer, buffer.byteOffset, dim).slice();
          }
          flatTimes.push(performance.now() - t);
          t = performance.now();
          for (const label of labels) cosine(query, data, (label - 1) * dim);
          cosineTimes.push(performance.now() - t);
        }
        console.log(
          `${String(candidates).padStart(10)} | ${ms(percentile(sqliteTimes, 0.5)).padStart(10)} | ${ms(percentile(flatTimes, 0.5)).padStart(13)} | ${ms(percentile(cosineTimes, 0.5))}`,
        );
      }
      fs.closeSync(descriptor);
      db.close();
    }
    await affine.release();
  }
  await fullAffine.release();

  fs.rmSync(folder, { recursive: true, force: true });
}

/**
 * searchSimilar for library images through the web API (`dermws serve` on the bench's library, the core
 * in its worker, HTTP, zod checks and JSON both ways): the first call after the server opened the
 * library, then p50 / p99 of the rest, each asking for 24 results without the image itself.
 */
async function measureWebApi(libraryFolder: string, modelId: string, imageIds: number[]): Promise<string> {
  const staticFolder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-bench-static-'));
  fs.writeFileSync(path.join(staticFolder, 'index.html'), '<!doctype html><title>bench</title>');
  const token = 'bench-token-0123456789abcdef';
  const server = await startServer({ libraryFolder, port: 0, staticFolder, token });
  try {
    const call = async (imageId: number) => {
      const response = await fetch(`http://127.0.0.1:${server.bridge.port}/api/searchSimilar`, {
        method: 'POST',
        headers: { [tokenHeader]: token, 'content-type': 'application/json' },
        body: JSON.stringify({ imageId, modelId, k: 24 }),
      });
      const body = (await response.json()) as { output?: { results?: unknown[] } };
      if (!response.ok || body.output?.results?.length !== 24)
        throw new Error(`searchSimilar for image ${imageId} answered ${response.status}: ${JSON.stringify(body).slice(0, 300)}`);
    };
    let t = performance.now();
    await call(imageIds[0]!);
    const firstMs = performance.now() - t;
    const times: number[] = [];
    for (const imageId of imageIds.slice(1)) {
      t = performance.now();
      await call(imageId);
      times.push(performance.now() - t);
    }
    return `web API searchSimilar (dermws serve, HTTP + JSON, 24 results): first call after open ${ms(firstMs)}, then p50 ${ms(percentile(times, 0.5))}, p99 ${ms(percentile(times, 0.99))} (${times.length} calls; load average ${os
      .loadavg()
      .map((value) => value.toFixed(1))
      .join(' ')})`;
  } finally {
    await server.close();
    fs.rmSync(staticFolder, { recursive: true, force: true });
  }
}

/**
 * The desktop's first search after opening, as the compiled app does it: `dermws search <image>` as a
 * new process of the built CLI (dist/, `npm run build:cli`), which starts up, opens the library and
 * the index (graph, copy and sketch) and answers one 24-result query; beside it `dermws --help`, the
 * start-up alone. Three images, each a fresh process; wall time as the user waits for it.
 */
function measureBuiltFirstSearch(libraryFolder: string, modelId: string, imageIds: number[]): string {
  const cli = path.resolve('bin/dermws.js');
  const run = (args: string[]) => {
    const started = performance.now();
    const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
    const wall = performance.now() - started;
    if (result.status !== 0) throw new Error(`dermws ${args.join(' ')} exited ${result.status}: ${result.stderr.slice(0, 300)}`);
    if (result.stderr.includes('tsx')) throw new Error(`dermws ran from its sources, not dist/ (run npm run build:cli): ${result.stderr.slice(0, 300)}`);
    return wall;
  };
  const helpMs = run(['--help']);
  const searches = imageIds
    .slice(0, 3)
    .map((imageId) => run(['--library', libraryFolder, '--json', 'search', String(imageId), '--model', modelId, '-k', '24', '--exclude-self']));
  return `built CLI, first search in a new process (start-up, open graph, copy and its sketch when the library keeps one, one 24-result query): ${searches.map((value) => ms(value)).join(', ')}; \`--help\` alone ${ms(helpMs)} (load average ${os
    .loadavg()
    .map((value) => value.toFixed(1))
    .join(' ')})`;
}

/**
 * One query through the 6144 → 384 projection: onnxruntime (awaited, as search called it) against the
 * QueryProjector, interleaved and alternating which goes first, on (a) a post-ReLU query with ~40%
 * exact zeros and (b) a dense noisy one (the noise leaves no zeros); plus the projector made to
 * multiply the zeros too, to show what skipping them saves. Weights: unit-variance Gaussian columns
 * scaled like PCA axes; both sides hold the same float32 matrix (ORT as float32, the projector as
 * bfloat16), so the largest difference is printed beside the times.
 */
async function projectionSideBySide(): Promise<void> {
  const width = 384;
  const normal = gaussianSource(17);
  const weights = Float32Array.from({ length: dim * width }, () => normal() / Math.sqrt(dim));
  const bias = Float32Array.from({ length: width }, () => 0.01 * normal());
  const affine = await OnnxAffine.create(matrix(dim, width, weights), bias);
  const projector = new QueryProjector(dim, width, weights, bias);
  const { data: rows } = flatNonNegativeVectors({ count: 2, dim, seed: 8 });
  normalizeRows(rows, dim);
  const relu = rows.slice(0, dim);
  const dense = normalizeRows(
    Float32Array.from(rows.subarray(dim), (value) => value + (0.3 / Math.sqrt(dim)) * normal()),
    dim,
  );
  const zeroShare = (query: Float32Array) => query.filter((value) => value === 0).length / dim;
  const repeats = 400;
  for (const [name, query] of [
    [`post-ReLU query (${(zeroShare(relu) * 100).toFixed(0)}% zeros)`, relu],
    [`dense noisy query (${(zeroShare(dense) * 100).toFixed(0)}% zeros)`, dense],
  ] as const) {
    const times = { ort: [] as number[], projector: [] as number[], keepZeros: [] as number[] };
    const timed = async (into: number[], call: () => unknown) => {
      const started = performance.now();
      await call();
      into.push(performance.now() - started);
    };
    for (let repeat = 0; repeat < 50; repeat++) {
      await affine.apply(query, 1);
      projector.project(query);
    }
    for (let repeat = 0; repeat < repeats; repeat++) {
      const ort = () => timed(times.ort, () => affine.apply(query, 1));
      const wasm = () => timed(times.projector, () => projector.project(query));
      if (repeat % 2 === 0) {
        await ort();
        await wasm();
      } else {
        await wasm();
        await ort();
      }
      await timed(times.keepZeros, () => projector.project(query, { keepZeros: true }));
    }
    const fromOrt = await affine.apply(query, 1);
    const fromProjector = projector.project(query);
    let largest = 0;
    let norm = 0;
    for (let column = 0; column < width; column++) {
      largest = Math.max(largest, Math.abs(fromOrt[column]! - fromProjector[column]!));
      norm += fromOrt[column]! ** 2;
    }
    const ortP50 = percentile(times.ort, 0.5);
    const projectorP50 = percentile(times.projector, 0.5);
    console.log(
      `query projection 6144 -> ${width}, ${name}: ORT p50 ${ms(ortP50)} (p99 ${ms(percentile(times.ort, 0.99))}), QueryProjector p50 ${ms(projectorP50)} (p99 ${ms(
        percentile(times.projector, 0.99),
      )}), ${(ortP50 / projectorP50).toFixed(1)}x; projector multiplying the zeros too p50 ${ms(percentile(times.keepZeros, 0.5))}; largest difference ${largest.toExponential(1)} (output norm ${Math.sqrt(norm).toFixed(2)}); load average ${os
        .loadavg()
        .map((value) => value.toFixed(1))
        .join(' ')}`,
    );
  }
  projector.release();
  await affine.release();
}

export async function run(): Promise<void> {
  const parts = (process.env.SEARCH_BENCH_PARTS ?? 'layer,service').split(',');
  const gemm = new OnnxGemm();
  // The dominant product of the PCA fit, ORT against a JavaScript loop, on the same operands.
  const normal = gaussianSource(1);
  const rows = 512;
  const left = matrix(
    rows,
    dim,
    Float32Array.from({ length: rows * dim }, () => normal()),
  );
  const right = matrix(
    dim,
    272,
    Float32Array.from({ length: dim * 272 }, () => normal()),
  );
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
  await projectionSideBySide();
  if (!parts.includes('layer') && !parts.includes('service')) {
    await gemm.release();
    return;
  }

  const sizes = (process.env.SEARCH_BENCH_SIZES ?? '10000,100000').split(',').map(Number);
  const models = (process.env.SEARCH_BENCH_DATA ?? 'hard,decaying,flat').split(',') as DataModel[];
  for (const size of sizes) for (const dataModel of models) await benchSize(size, gemm, dataModel);
  await gemm.release();
}
