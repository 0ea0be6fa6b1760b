import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hnswlib } from '../runtime/lazy-packages.js';
import { DermError } from '../../common/errors.js';
import { EmbeddingsRepository } from '../embeddings/embeddings.repository.js';
import { openLibrary } from '../library/library.js';
import { SearchRepository } from './search.repository.js';
import { SearchService } from './search.service.js';
import type { IndexCalibration } from '../index/index-calibration.js';
import { matrix, OnnxAffine, OnnxGemm } from '../math/onnx-gemm.js';
import { gaussianSource, projectionBias } from '../math/randomized-pca.js';
import { VectorIndexRepository } from '../index/vector-index.repository.js';
import { VectorIndexService, type VectorIndexParameters } from '../index/vector-index.service.js';
import { normalizeRows, TopK } from '../math/vector-math.js';
import { RowScorer } from '../math/vector-kernels.js';
import { writeTransaction } from '../library/write-transaction.js';

/**
 * The similar-case index measured on anyone's vectors (`dermws bench search`, and the search bench):
 * a temporary library holding the vectors as embeddings of placeholder image rows, the index built
 * and calibrated by the service as a user's library would be, an exact top k by blocked products,
 * then queries through the service with each stage timed, and the same graph file searched by
 * hnswlib directly (projected queries prepared in advance, re-rank on in-memory vectors) as the
 * native reference. The temporary library is removed afterwards.
 */

export interface SearchBenchmarkInput {
  /** Row-major, count × dim (not necessarily normalised). */
  vectors: Float32Array;
  count: number;
  dim: number;
  /** Row-major queries (qCount × dim); default: 100 library rows with noise added. */
  queries?: Float32Array;
  k?: number;
  parameters?: Partial<VectorIndexParameters>;
  /** A line of progress, for the command line. */
  onStep?: (line: string) => void;
  /** Run against the built library before it is removed (the search bench measures the web API on it). */
  withLibrary?: (library: { folder: string; modelId: string; queryImageIds: number[] | null }) => Promise<void>;
  /** Also rebuild the flat copy in float32 and compare its re-rank with float16's (a second pass over every embedding). */
  comparePrecisions?: boolean;
}

export interface LatencyFigures {
  p50Ms: number;
  p99Ms: number;
  recall: number;
}

export interface SearchBenchmarkReport {
  count: number;
  dim: number;
  k: number;
  queries: { count: number; kind: 'given' | 'noisy library rows' };
  buildSeconds: number;
  fitSeconds: number | null;
  calibration: IndexCalibration | null;
  graphDim: number;
  indexFileBytes: number;
  /** A fresh service (a second process) from nothing loaded to ready: record and file checks, graph read, projection session. */
  openMs: number;
  /** Resident memory the opened index added to this process (graph, projection, bookkeeping). */
  openResidentBytes: number;
  /** Resident memory added by the open index and everything the query path keeps, after all the queries (fresh service). */
  queryResidentBytes: number;
  /** The flat copy the re-rank read (embedding-copy.ts). */
  embeddingCopy: { state: string; precision: string | null; fileBytes: number | null };
  /** End to end through the service: normalise, project, graph, re-rank from the flat copy (when it is ready). */
  service: LatencyFigures & { stagesP50Ms: Record<'normalise' | 'project' | 'graph' | 'rerank', number> };
  /** The same queries, interleaved with those above, re-ranked from SQLite (the path before the flat copy). */
  serviceFromDatabase: LatencyFigures & { stagesP50Ms: Record<'normalise' | 'project' | 'graph' | 'rerank', number> };
  /**
   * The same queries, interleaved, reading every graph candidate's row from the copy instead of the
   * few the in-memory sketch picks (null when the calibration did not adopt the sketch).
   */
  serviceEveryCandidate: (LatencyFigures & { stagesP50Ms: Record<'normalise' | 'project' | 'graph' | 'rerank', number> }) | null;
  /**
   * The same queries, in blocks alternating with the others, each projected through the onnxruntime
   * session (awaited) instead of the WebAssembly query projector (null without a projection).
   */
  serviceOnnxProjection: (LatencyFigures & { stagesP50Ms: Record<'normalise' | 'project' | 'graph' | 'rerank', number> }) | null;
  /** Bytes of the in-memory sketch (0 without one). */
  sketchBytes: number;
  /** float32 copy against the float16 one on the same queries (comparePrecisions). */
  precisions: {
    float32: LatencyFigures & { rerankP50Ms: number };
    /** Queries whose top k came out as the same ids in the same order from both copies. */
    sameTopK: number;
    /** Share of float32's top k ids that float16's top k holds too. */
    overlap: number;
    copyRebuildSeconds: number;
  } | null;
  /** A library image as the query: its projected point read from the graph (only when queries are library rows). */
  libraryImage: { p50Ms: number; p99Ms: number } | null;
  /**
   * The whole request as the app's searchSimilar makes it for a library image: 24 results without the
   * image itself, with their cards (metadata, flags, labels), through SearchService on a fresh open.
   */
  request: { firstMs: number; p50Ms: number; p99Ms: number; stagesP50Ms: Record<'query' | 'eligible' | 'ready' | 'index' | 'cards' | 'json', number> } | null;
  /** hnswlib's searchKnn on the same file and settings with pre-projected queries, then re-rank on in-memory vectors. */
  native: LatencyFigures & { graphOnlyP50Ms: number };
}

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? 0;
}

function recallAt(k: number, found: number[][], truth: number[][]): number {
  let hits = 0;
  found.forEach((ids, index) => {
    const expected = new Set(truth[index]!.slice(0, k));
    hits += ids.slice(0, k).filter((id) => expected.has(id)).length;
  });
  return hits / Math.max(1, found.length * k);
}

/** Reads a file once from start to end (into the page cache), if it exists. */
async function readThrough(file: string): Promise<void> {
  if (!fs.existsSync(file)) return;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 8 << 20 })) void chunk;
}

/** Checks the vectors a benchmark is given: finite values and a usable shape, naming `source` and the row. */
export function checkBenchmarkVectors(values: Float32Array | Float64Array, shape: readonly number[], source: string): void {
  if (shape.length !== 2)
    throw new DermError('invalid-input', `${source}: expected a 2-D array (rows × dimensions); it has shape (${shape.join(', ')}).`, { file: source });
  if (shape[0] === 0 || shape[1] === 0)
    throw new DermError('invalid-input', `${source}: the array is empty (shape ${shape[0]} × ${shape[1]}).`, { file: source });
  const dim = shape[1]!;
  for (let index = 0; index < values.length; index++) {
    if (!Number.isFinite(values[index]!)) {
      throw new DermError('invalid-input', `${source}: row ${Math.floor(index / dim)} has a non-finite value (${values[index]}) at column ${index % dim}.`, {
        file: source,
      });
    }
  }
}

export async function benchmarkSearch(input: SearchBenchmarkInput): Promise<SearchBenchmarkReport> {
  const { vectors, count, dim } = input;
  const k = input.k ?? 10;
  const say = input.onStep ?? (() => undefined);
  if (count < 2) throw new DermError('invalid-input', `A search benchmark needs at least 2 vectors; got ${count}.`);
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-bench-search-'));
  const gemm = new OnnxGemm();
  try {
    const library = openLibrary(path.join(folder, 'library'));
    try {
      say(`storing ${count} vectors of ${dim} dimensions in a temporary library`);
      const embeddings = new EmbeddingsRepository(library.db);
      embeddings.registerModel({ id: 'bench', displayName: 'bench', dim, sha256: '0'.repeat(64), source: 'imported', preprocessing: null });
      // Placeholder image rows: the index only needs live image ids with embeddings.
      library.db.prepare("INSERT INTO import_batches (id, started_at, status, source_paths) VALUES (1, '', 'completed', '[]')").run();
      const insert = library.db.prepare(
        "INSERT INTO images (id, file_sha256, pixel_sha256, original_path, thumbnail_path, width, height, format, bytes, imported_at, batch_id) VALUES (?, ?, ?, ?, ?, 1, 1, 'bench', 1, '', 1)",
      );
      writeTransaction(library.db, () => {
        for (let row = 0; row < count; row++) insert.run(row + 1, `bench-${row}`, `bench-${row}`, `/bench/${row}`, `bench/${row}`);
      });
      for (let start = 0; start < count; start += 1000) {
        const rows = Math.min(1000, count - start);
        embeddings.put(
          'bench',
          '0'.repeat(64),
          Array.from({ length: rows }, (_, offset) => ({
            imageId: start + offset + 1,
            vector: vectors.subarray((start + offset) * dim, (start + offset + 1) * dim),
          })),
        );
      }

      say('building and calibrating the index');
      let started = performance.now();
      const builder = new VectorIndexService(new VectorIndexRepository(library.db), embeddings, library.paths, input.parameters ?? {});
      const built = (await builder.rebuild('bench'))!;
      const buildSeconds = (performance.now() - started) / 1000;
      await builder.close();

      const unit = normalizeRows(Float32Array.from(vectors), dim);
      let queries: Float32Array;
      let queryRows: number[] | null = null;
      if (input.queries) {
        queries = normalizeRows(Float32Array.from(input.queries), dim);
      } else {
        const normal = gaussianSource(17);
        const queryCount = Math.min(100, count);
        queryRows = Array.from({ length: queryCount }, (_, index) => Math.floor(((index + 0.37) * count) / queryCount));
        queries = new Float32Array(queryCount * dim);
        queryRows.forEach((row, index) => {
          const out = index * dim;
          const nonNegative = unit.subarray(row * dim, (row + 1) * dim).every((value) => value >= 0);
          for (let i = 0; i < dim; i++) {
            const value = unit[row * dim + i]! + (0.25 / Math.sqrt(dim)) * normal();
            queries[out + i] = nonNegative && value < 0 ? 0 : value;
          }
        });
        normalizeRows(queries, dim);
      }
      const queryCount = queries.length / dim;

      say(`exact top ${k} of ${queryCount} queries by blocked products`);
      const tops = Array.from({ length: queryCount }, () => new TopK(k));
      const queryMatrix = matrix(queryCount, dim, queries);
      for (let start = 0; start < count; start += 4096) {
        const rows = Math.min(4096, count - start);
        const scores = await gemm.multiply(matrix(rows, dim, unit.subarray(start * dim, (start + rows) * dim)), queryMatrix, false, true);
        for (let row = 0; row < rows; row++)
          for (let query = 0; query < queryCount; query++) tops[query]!.offer(start + row + 1, scores.data[row * queryCount + query]!);
      }
      const truth = tops.map((top) => top.result().map((neighbour) => neighbour.imageId));

      say('opening the index in a fresh service and querying');
      global.gc?.();
      const rssBefore = process.memoryUsage().rss;
      started = performance.now();
      const service = new VectorIndexService(new VectorIndexRepository(library.db), embeddings, library.paths, input.parameters ?? {});
      await service.ensureReady('bench');
      const openMs = performance.now() - started;
      const openResidentBytes = Math.max(0, process.memoryUsage().rss - rssBefore);
      try {
        const copyStatus = (await service.status('bench')).embeddingCopy;
        // Both re-rank sources read through the page cache; read each file once so neither is timed
        // on a cold disk (the build wrote them long before, and other work may have evicted them).
        await readThrough(service.embeddingCopyFile('bench'));
        await readThrough(library.paths.database);
        for (let index = 0; index < Math.min(5, queryCount); index++) {
          await service.search('bench', queries.subarray(index * dim, (index + 1) * dim), k);
          await service.search('bench', queries.subarray(index * dim, (index + 1) * dim), k, { rerankFromDatabase: true });
        }
        type Stage = 'normalise' | 'project' | 'graph' | 'rerank';
        const measure = () => ({
          times: [] as number[],
          found: [] as number[][],
          stages: { normalise: [], project: [], graph: [], rerank: [] } as Record<Stage, number[]>,
        });
        const figures = (run: ReturnType<typeof measure>) => ({
          p50Ms: percentile(run.times, 0.5),
          p99Ms: percentile(run.times, 0.99),
          recall: recallAt(k, run.found, truth),
          stagesP50Ms: {
            normalise: percentile(run.stages.normalise, 0.5),
            project: percentile(run.stages.project, 0.5),
            graph: percentile(run.stages.graph, 0.5),
            rerank: percentile(run.stages.rerank, 0.5),
          },
        });
        const query = async (
          target: VectorIndexService,
          run: ReturnType<typeof measure>,
          index: number,
          from: 'sketch' | 'copy' | 'database',
          projectOnOnnxRuntime = false,
        ) => {
          const stageTimes: Partial<Record<Stage, number>> = {};
          const t = performance.now();
          const result = await target.search('bench', queries.subarray(index * dim, (index + 1) * dim), k, {
            stages: stageTimes,
            rerankFromDatabase: from === 'database',
            rerankEveryCandidate: from === 'copy',
            projectOnOnnxRuntime,
          });
          run.times.push(performance.now() - t);
          // The second round's answers are the first's (nothing changes between them); recall is over one.
          if (run.found.length < queryCount) run.found.push(result.map((hit) => hit.imageId));
          for (const stage of Object.keys(run.stages) as Stage[]) run.stages[stage].push(stageTimes[stage] ?? 0);
        };
        // Each path answers every query in a block of its own (what it keeps in the caches is its own,
        // as it is for a user running one of them), and the blocks alternate over two rounds so that
        // every path sees the same load drift.
        const sketched = service.calibration('bench')?.preselection != null;
        const fromCopy = measure();
        const everyCandidate = measure();
        const fromDatabase = measure();
        const projected = new VectorIndexRepository(library.db).record('bench')?.projectionVersion != null;
        const onnxProjection = measure();
        type Path = [ReturnType<typeof measure>, 'sketch' | 'copy' | 'database', boolean];
        const paths: Path[] = [
          [fromCopy, 'sketch', false],
          ...(projected ? [[onnxProjection, 'sketch', true] as Path] : []),
          ...(sketched ? [[everyCandidate, 'copy', false] as Path] : []),
          [fromDatabase, 'database', false],
        ];
        for (let round = 0; round < 2; round++) {
          for (const [run, from, projectOnOnnxRuntime] of round === 0 ? paths : [...paths].reverse()) {
            for (let index = 0; index < queryCount; index++) await query(service, run, index, from, projectOnOnnxRuntime);
          }
        }
        const serviceFigures = figures(fromCopy);
        const everyCandidateFigures = sketched ? figures(everyCandidate) : null;
        const databaseFigures = figures(fromDatabase);
        const onnxProjectionFigures = projected ? figures(onnxProjection) : null;
        const sketchBytes = service.sketchBytes('bench');
        const queryResidentBytes = Math.max(0, process.memoryUsage().rss - rssBefore);

        let libraryImage: { p50Ms: number; p99Ms: number } | null = null;
        if (queryRows) {
          // The library row itself as the query, its projected point read from the graph.
          const libraryTimes: number[] = [];
          for (const row of queryRows) {
            const t = performance.now();
            await service.search('bench', vectors.subarray(row * dim, (row + 1) * dim), k, { libraryImageId: row + 1 });
            libraryTimes.push(performance.now() - t);
          }
          libraryImage = { p50Ms: percentile(libraryTimes, 0.5), p99Ms: percentile(libraryTimes, 0.99) };
        }

        let request: SearchBenchmarkReport['request'] = null;
        if (queryRows) {
          const fresh = new VectorIndexService(new VectorIndexRepository(library.db), embeddings, library.paths, input.parameters ?? {});
          const search = new SearchService(new SearchRepository(library.db, library.paths.root), fresh, embeddings, undefined);
          try {
            const requestTimes: number[] = [];
            let firstMs = 0;
            const stageNames = ['query', 'eligible', 'ready', 'index', 'cards', 'json'] as const;
            const stageTimes = Object.fromEntries(stageNames.map((name) => [name, [] as number[]])) as Record<(typeof stageNames)[number], number[]>;
            for (const [index, row] of queryRows.entries()) {
              const stages: Partial<Record<(typeof stageNames)[number], number>> = {};
              const t = performance.now();
              const response = await search.search({ query: { imageId: row + 1 }, modelId: 'bench', k: 24, excludeSelf: true }, {}, stages);
              const beforeJson = performance.now();
              JSON.stringify(response);
              const end = performance.now();
              stages.json = end - beforeJson;
              if (index === 0) firstMs = end - t;
              else {
                requestTimes.push(end - t);
                for (const name of stageNames) stageTimes[name].push(stages[name] ?? 0);
              }
            }
            request = {
              firstMs,
              p50Ms: percentile(requestTimes, 0.5),
              p99Ms: percentile(requestTimes, 0.99),
              stagesP50Ms: Object.fromEntries(stageNames.map((name) => [name, percentile(stageTimes[name], 0.5)])) as Record<
                (typeof stageNames)[number],
                number
              >,
            };
          } finally {
            await fresh.close();
          }
        }

        const record = new VectorIndexRepository(library.db).record('bench')!;
        const file = service.indexFile('bench');
        const calibration = record.calibration;
        const candidates = calibration?.candidates ?? 64;
        const ef = calibration?.ef ?? 64;
        const native = new hnswlib.HierarchicalNSW(record.space, record.graphDim);
        native.readIndexSync(file);
        native.setEf(Math.max(ef, candidates));
        let points: number[][];
        const projection = record.projectionVersion === null ? undefined : new VectorIndexRepository(library.db).projection('bench', record.projectionVersion)!;
        if (projection) {
          const affine = await OnnxAffine.create(matrix(projection.inputDim, projection.outputDim, projection.components), projectionBias(projection));
          const projected = await affine.apply(queries, queryCount);
          await affine.release();
          points = Array.from({ length: queryCount }, (_, index) => Array.from(projected.subarray(index * record.graphDim, (index + 1) * record.graphDim)));
        } else {
          points = Array.from({ length: queryCount }, (_, index) => Array.from(queries.subarray(index * dim, (index + 1) * dim)));
        }
        const nativeRequest = projection ? Math.max(candidates, 2 * k) : k;
        const nativeScorer = new RowScorer(dim, 'float32');
        const unitBytes = new Uint8Array(unit.buffer, unit.byteOffset, unit.byteLength);
        const graphTimes: number[] = [];
        const nativeTimes: number[] = [];
        const nativeFound: number[][] = [];
        for (let index = 0; index < queryCount; index++) {
          const t = performance.now();
          const labels = native.searchKnn(points[index]!, Math.min(nativeRequest, count)).neighbors;
          graphTimes.push(performance.now() - t);
          // The candidates' float32 rows gathered from memory and scored by the same SIMD kernel the
          // service runs on its flat copy: what is left of the service's time is reads, checks and bookkeeping.
          const top = new TopK(k);
          nativeScorer.setQuery(queries.subarray(index * dim, (index + 1) * dim));
          for (let start = 0; start < labels.length; start += nativeScorer.batchRows) {
            const batch = labels.slice(start, start + nativeScorer.batchRows);
            batch.forEach((label, slot) => nativeScorer.slot(slot).set(unitBytes.subarray((label - 1) * dim * 4, label * dim * 4)));
            nativeScorer.score(batch.length);
            batch.forEach((label, slot) => top.offer(label, nativeScorer.dot(slot) / Math.sqrt(nativeScorer.squares(slot))));
          }
          nativeTimes.push(performance.now() - t);
          nativeFound.push(top.result().map((neighbour) => neighbour.imageId));
        }
        // Before the float32 comparison rewrites the copy: the web API then opens the default float16 one.
        if (input.withLibrary)
          await input.withLibrary({ folder: library.paths.root, modelId: 'bench', queryImageIds: queryRows?.map((row) => row + 1) ?? null });
        let precisions: SearchBenchmarkReport['precisions'] = null;
        if (input.comparePrecisions && copyStatus.state === 'ready' && copyStatus.precision === 'float16') {
          say('rebuilding the flat copy in float32 and comparing its re-rank with float16');
          const wide = new VectorIndexService(new VectorIndexRepository(library.db), embeddings, library.paths, {
            ...(input.parameters ?? {}),
            embeddingCopy: 'float32',
          });
          try {
            const rebuildStarted = performance.now();
            await wide.ensureReady('bench');
            // The first search that re-ranks rebuilds the copy in the new precision.
            await wide.search('bench', queries.subarray(0, dim), k);
            const copyRebuildSeconds = (performance.now() - rebuildStarted) / 1000;
            await readThrough(wide.embeddingCopyFile('bench'));
            for (let index = 0; index < Math.min(5, queryCount); index++) await wide.search('bench', queries.subarray(index * dim, (index + 1) * dim), k);
            const run = measure();
            for (let index = 0; index < queryCount; index++) await query(wide, run, index, 'sketch');
            const wideFigures = figures(run);
            let same = 0;
            let shared = 0;
            run.found.forEach((ids, index) => {
              const half = fromCopy.found[index]!;
              if (ids.length === half.length && ids.every((id, at) => id === half[at])) same++;
              const inHalf = new Set(half);
              shared += ids.filter((id) => inHalf.has(id)).length;
            });
            precisions = {
              float32: { p50Ms: wideFigures.p50Ms, p99Ms: wideFigures.p99Ms, recall: wideFigures.recall, rerankP50Ms: wideFigures.stagesP50Ms.rerank },
              sameTopK: same / queryCount,
              overlap: shared / Math.max(1, queryCount * k),
              copyRebuildSeconds,
            };
          } finally {
            await wide.close();
          }
        }
        return {
          count,
          dim,
          k,
          queries: { count: queryCount, kind: input.queries ? 'given' : 'noisy library rows' },
          buildSeconds,
          fitSeconds: built.fitSeconds,
          calibration,
          graphDim: record.graphDim,
          indexFileBytes: fs.statSync(file).size,
          openMs,
          openResidentBytes,
          queryResidentBytes,
          embeddingCopy: { state: copyStatus.state, precision: copyStatus.precision, fileBytes: copyStatus.fileBytes },
          service: serviceFigures,
          serviceFromDatabase: databaseFigures,
          serviceEveryCandidate: everyCandidateFigures,
          serviceOnnxProjection: onnxProjectionFigures,
          sketchBytes,
          precisions,
          libraryImage,
          request,
          native: {
            p50Ms: percentile(nativeTimes, 0.5),
            p99Ms: percentile(nativeTimes, 0.99),
            recall: recallAt(k, nativeFound, truth),
            graphOnlyP50Ms: percentile(graphTimes, 0.5),
          },
        };
      } finally {
        await service.close();
      }
    } finally {
      library.close();
    }
  } finally {
    await gemm.release();
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

/** The report as the lines `dermws bench search` prints. */
export function formatSearchBenchmark(report: SearchBenchmarkReport): string[] {
  const ms = (value: number) => `${value.toFixed(value < 10 ? 2 : 1)} ms`;
  const lines = [
    `${report.count} vectors × ${report.dim}; ${report.queries.count} queries (${report.queries.kind}); recall@${report.k} against an exact scan`,
    `build ${report.buildSeconds.toFixed(1)} s (PCA fit ${report.fitSeconds === null ? 'none' : `${report.fitSeconds.toFixed(1)} s`}), ${report.graphDim}-d graph, file ${(report.indexFileBytes / 2 ** 20).toFixed(0)} MB`,
  ];
  const c = report.calibration;
  if (c)
    lines.push(
      `calibration: recall@10 ${c.recall.toFixed(3)} on ${c.probes} probes, candidates ${c.candidates}, ef ${c.ef}${c.preselection ? `, ${c.preselection.bits}-bit sketch keeps ${c.preselection.kept}` : ''} (${c.met ? `target ${c.target} met` : c.note}), ${c.seconds.toFixed(1)} s`,
    );
  const megabytes = (bytes: number | null) => (bytes === null ? 'none' : `${(bytes / 2 ** 20).toFixed(0)} MB`);
  lines.push(
    `open to ready ${ms(report.openMs)}, resident memory added by the open index ${megabytes(report.openResidentBytes)}, after the queries ${megabytes(report.queryResidentBytes)}`,
  );
  lines.push(
    `flat copy for the re-rank: ${report.embeddingCopy.state}${report.embeddingCopy.precision ? `, ${report.embeddingCopy.precision}` : ''}, ${megabytes(report.embeddingCopy.fileBytes)} on disk` +
      (report.sketchBytes > 0 ? `; 4-bit sketch ${megabytes(report.sketchBytes)} in memory` : ''),
  );
  const copyReady = report.embeddingCopy.state === 'ready';
  const rerankFrom = copyReady
    ? `the flat ${report.embeddingCopy.precision} copy`
    : report.embeddingCopy.state === 'unused'
      ? 'the graph (no re-rank)'
      : 'SQLite';
  const queryLine = (s: SearchBenchmarkReport['service']) =>
    `p50 ${ms(s.p50Ms)}, p99 ${ms(s.p99Ms)}, recall@${report.k} ${s.recall.toFixed(3)}; stages p50: normalise ${ms(s.stagesP50Ms.normalise)}, project ${ms(s.stagesP50Ms.project)}, graph ${ms(s.stagesP50Ms.graph)}, fetch + re-rank ${ms(s.stagesP50Ms.rerank)}`;
  lines.push(
    `service query: ${queryLine(report.service)} (re-rank from ${rerankFrom}${report.serviceEveryCandidate ? ', the candidates read picked by the sketch' : ''})`,
  );
  // The paths before the sketch and before the flat copy, on the same queries interleaved with the ones above.
  if (report.serviceOnnxProjection) lines.push(`service query with the query projected on onnxruntime instead: ${queryLine(report.serviceOnnxProjection)}`);
  if (report.serviceEveryCandidate)
    lines.push(`service query without the sketch (the default: every candidate read from the copy): ${queryLine(report.serviceEveryCandidate)}`);
  if (copyReady) lines.push(`service query re-ranked from SQLite instead: ${queryLine(report.serviceFromDatabase)}`);
  const p = report.precisions;
  if (p) {
    lines.push(
      `float32 copy (rebuilt in ${p.copyRebuildSeconds.toFixed(1)} s): p50 ${ms(p.float32.p50Ms)}, p99 ${ms(p.float32.p99Ms)}, re-rank ${ms(p.float32.rerankP50Ms)}, recall@${report.k} ${p.float32.recall.toFixed(3)}; ` +
        `float16 gave the same top ${report.k} in the same order on ${(p.sameTopK * 100).toFixed(0)}% of queries, ${(p.overlap * 100).toFixed(1)}% of the ids`,
    );
  }
  if (report.libraryImage)
    lines.push(`query by library image (projected point from the graph): p50 ${ms(report.libraryImage.p50Ms)}, p99 ${ms(report.libraryImage.p99Ms)}`);
  if (report.request) {
    lines.push(
      `whole request (library image, 24 results without itself, with cards): first after open ${ms(report.request.firstMs)}, then p50 ${ms(report.request.p50Ms)}, p99 ${ms(report.request.p99Ms)}`,
    );
    const r = report.request.stagesP50Ms;
    lines.push(
      `  request stages, p50: query image + embedding ${ms(r.query)}, eligible ${ms(r.eligible)}, index ready ${ms(r.ready)}, index search ${ms(r.index)}, cards ${ms(r.cards)}, JSON ${ms(r.json)}`,
    );
  }
  const n = report.native;
  lines.push(
    `hnswlib searchKnn on the same file (pre-projected queries; candidates re-ranked in memory, float32, by the same SIMD kernel): p50 ${ms(n.p50Ms)} (graph alone ${ms(n.graphOnlyP50Ms)}), p99 ${ms(n.p99Ms)}, recall@${report.k} ${n.recall.toFixed(3)}`,
  );
  return lines;
}
