import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { hnswlib } from '../runtime/lazy-packages.js';
import { sha256OfFile, sha256OfFileOnWorker } from '../runtime/file-hash.js';
import { DermError } from '../../common/errors.js';
import type { EmbeddingsRepository } from '../embeddings/embeddings.repository.js';
import { ProgressReporter, throwIfCancelled, type JobControl } from '../jobs/job.js';
import { EmbeddingCopy, EmbeddingCopyProblem, sketchFileOf, sketchKept, type EmbeddingCopyPrecision, type EmbeddingCopyTie } from './embedding-copy.js';
import {
  calibrationK,
  describeCalibration,
  makeProbes,
  ProbeTruth,
  probeIds,
  recallOfCandidates,
  searchLadder,
  type IndexCalibration,
  type Probe,
} from './index-calibration.js';
import { readPointsFromIndexFile } from './hnsw-file-points.js';
import { matrix, OnnxAffine, OnnxGemm } from '../math/onnx-gemm.js';
import { fitRandomizedPca, projectionBias } from '../math/randomized-pca.js';
import { SketchTable } from '../math/vector-kernels.js';
import { QueryProjector } from '../math/vector-kernels.js';
import type { ProjectionRecord, VectorIndexRecord, VectorIndexRepository } from './vector-index.repository.js';
import { cosine, cosineWithUnit, normalized, normalizeRows, TopK, type Neighbour } from '../math/vector-math.js';

type Hnsw = InstanceType<typeof hnswlib.HierarchicalNSW>;

/**
 * Parameters of the index. The defaults were chosen by measurement (test/bench/search.bench.ts; the
 * figures and the reasoning are in docs/search-index.md and docs/benchmarks.md).
 */
export interface VectorIndexParameters {
  /** Graph degree. */
  m: number;
  efConstruction: number;
  /** Minimum beam width at query time (raised to the number of candidates asked for). */
  efSearch: number;
  /** Graph candidates re-ranked by exact cosine on the full embeddings, for projected models. */
  rerankCandidates: number;
  /** Models with more dimensions than this get a PCA projection for the graph. */
  projectAbove: number;
  projectedDim: number;
  /** Embeddings sampled for the PCA fit. */
  pcaSampleSize: number;
  pcaPowerIterations: number;
  /** Filters that keep at most this many images are answered by an exact scan of those images. */
  exactFilterLimit: number;
  /** Rebuild (compact) when more than this fraction of the graph is marked deleted. */
  maxDeletedFraction: number;
  /** Measure recall on probes after every build and tune the settings to `recallTarget`. */
  calibrate: boolean;
  /** Recall@10 the calibration aims for (the library setting `index.recallTarget` overrides it). */
  recallTarget: number;
  /** Most graph candidates (and, without projection, most ef) a calibration may settle on: bounds the cost of a query. */
  maxCandidates: number;
  /** Probe queries per calibration. */
  calibrationProbes: number;
  /** Norm of the noise added to a unit library row to make a noisy probe. */
  probeNoise: number;
  /**
   * Seconds a build's calibration may spend refitting the projection and rebuilding the graph when
   * the search settings alone cannot reach the target. A refit predicted (from the first build's
   * time) to overrun it is not started, and one that overruns is abandoned: the index built first stays.
   */
  calibrationBudgetSeconds: number;
  /** Re-measure after `sync` grows the index by more than this fraction since the last measurement. */
  recalibrateAfterGrowth: number;
  /**
   * Precision of the flat copy of the unit embeddings kept beside the index for the re-rank
   * (embedding-copy.ts), or 'none' to re-rank from SQLite. Only projected graphs re-rank.
   */
  embeddingCopy: EmbeddingCopyPrecision | 'none';
  /**
   * Keep an in-memory 4-bit sketch of the embeddings beside the copy, which picks the few candidates
   * read (the library setting `index.sketch` overrides it). Off by default: with the copy in the page
   * cache it saves nothing measurable end to end at 100k, and it costs 3 KB a row of memory (300 MB at
   * 100k × 6144) and open time; it pays when the copy is not in the page cache (28 reads from disk
   * instead of 96 a query; docs/benchmarks.md).
   */
  sketch: boolean;
  /** Most memory the sketch may take: a copy started for more rows than this allows has none. */
  sketchMemoryLimitBytes: number;
}

export const defaultIndexParameters: VectorIndexParameters = {
  m: 16,
  efConstruction: 100,
  efSearch: 64,
  rerankCandidates: 64,
  projectAbove: 512,
  projectedDim: 384,
  // On flat-spectrum, post-ReLU-like vectors the sample size decides the projection's ceiling far more
  // than the power iterations do (search bench, data model "flat"; figures in docs/benchmarks.md).
  pcaSampleSize: 8192,
  pcaPowerIterations: 3,
  exactFilterLimit: 2000,
  maxDeletedFraction: 0.25,
  calibrate: true,
  recallTarget: 0.99,
  maxCandidates: 1024,
  calibrationProbes: 256,
  probeNoise: 0.25,
  calibrationBudgetSeconds: 600,
  recalibrateAfterGrowth: 0.2,
  // float16 re-ranks the same top 10 as float32 on the search bench's data at half the disk and page cache.
  embeddingCopy: 'float16',
  sketch: false,
  sketchMemoryLimitBytes: 512 * 2 ** 20,
};

export type IndexState = 'ready' | 'behind' | 'missing' | 'corrupt' | 'stale';

export interface IndexStatus {
  modelId: string;
  /** ready: usable as is; behind: usable after folding in pending changes; missing/corrupt/stale: needs a rebuild. */
  state: IndexState;
  reason: string;
  file: string;
  fileBytes: number | null;
  databaseCount: number;
  indexedCount: number | null;
  pendingChanges: number;
  modelDim: number;
  graphDim: number | null;
  projectionVersion: number | null;
  builtAt: string | null;
  /** The index's own measurement of its recall and the settings it chose (null: not measured yet). */
  calibration: IndexCalibration | null;
  /** Where graph candidates are re-ranked from, and why not from the flat copy when they are not. */
  embeddingCopy: EmbeddingCopyStatus;
}

export interface EmbeddingCopyStatus {
  /**
   * ready: candidates are re-ranked from the copy. missing / stale / damaged: from SQLite until the
   * copy is rebuilt (at the next open of the index); unwritable: the copy could not be written (a
   * read-only library, a full disk), so SQLite it is; off: the parameters ask for none; unused: the
   * graph holds the full embeddings and nothing is re-ranked.
   */
  state: 'ready' | 'missing' | 'stale' | 'damaged' | 'unwritable' | 'off' | 'unused';
  rerankFrom: 'copy' | 'sqlite' | 'graph';
  precision: EmbeddingCopyPrecision | null;
  file: string;
  fileBytes: number | null;
  reason: string;
}

export interface IndexBuildResult {
  status: 'success';
  modelId: string;
  reason: string;
  elements: number;
  graphDim: number;
  projectionVersion: number | null;
  explainedVariance: number | null;
  fitSeconds: number | null;
  buildSeconds: number;
  calibration: IndexCalibration | null;
}

export interface IndexSearchOptions {
  /** Only images for which this returns true are returned. */
  allow?: (imageId: number) => boolean;
  /** How many images pass `allow` (decides between the graph and an exact scan of the allowed set). */
  allowedIds?: readonly number[];
  /** Scan every (allowed) embedding instead of searching the graph: slower, complete by construction. */
  exact?: boolean;
  /** The query is this library image's embedding: its projected point is read from the graph instead of projecting again. */
  libraryImageId?: number;
  /** Filled with the milliseconds each stage took (normalise, project, graph, fetch + re-rank), for the bench. */
  stages?: Partial<Record<'normalise' | 'project' | 'graph' | 'rerank', number>>;
  /** Re-rank from SQLite even when the flat copy is ready (the bench's side-by-side figure). */
  rerankFromDatabase?: boolean;
  /** Re-rank every graph candidate from the copy even where the sketch would choose the few to read (the bench's side-by-side). */
  rerankEveryCandidate?: boolean;
  /** Project the query through the onnxruntime session the batches use instead of the query projector (the bench's side-by-side). */
  projectOnOnnxRuntime?: boolean;
}

/** Points read from a model's graph (see VectorIndexService.projectedVectorsFor). */
export interface ProjectedVectors {
  modelId: string;
  /** Values per image. */
  dim: number;
  /** The PCA projection the points went through, or null when the graph holds the unit embeddings themselves. */
  projection: { version: number; inputDim: number; explainedVariance: number } | null;
  /** imageIds.length × dim, row-major. */
  data: Float32Array;
}

/** Settings of a projection fit. */
interface FitSettings {
  width: number;
  sampleSize: number;
  powerIterations: number;
}

/** Thrown inside a refit that would overrun the calibration budget. */
class BudgetSpent extends Error {}

interface LoadedProjection {
  record: ProjectionRecord;
  /** Batches of rows (building, sync, similar pairs, the map): float32 products on onnxruntime. */
  affine: OnnxAffine;
  /** One query at a time (search and its calibration), synchronous, on WebAssembly SIMD with bfloat16 weights. */
  projector: QueryProjector;
  /** Power iterations of the fit (kept in the calibration record; the projection table predates it). */
  powerIterations: number;
}

interface LoadedIndex {
  record: VectorIndexRecord;
  hnsw: Hnsw;
  live: Set<number>;
  deleted: Set<number>;
  projection: LoadedProjection | undefined;
  /** The flat copy the re-rank reads (projected graphs only), or undefined with the reason in copyProblem. */
  copy?: EmbeddingCopy | undefined;
  copyProblem?: { state: EmbeddingCopyStatus['state']; reason: string } | undefined;
}

export interface IndexLocations {
  root: string;
  indexes: string;
}

export function idChecksum(ids: Iterable<number>): string {
  const sorted = Uint32Array.from(ids).sort();
  const bytes = Buffer.alloc(sorted.length * 4);
  sorted.forEach((id, index) => bytes.writeUInt32LE(id, index * 4));
  return createHash('sha256').update(bytes).digest('hex');
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * One HNSW graph per model, persisted in `<library>/indexes/<modelId>.hnsw`, kept consistent with the
 * embeddings table. The file is only a cache: its bookkeeping row (model, dimension, projection
 * version, live count, id checksum, file sha256) is checked at first use, and a missing, corrupt or
 * stale file is rebuilt — never used as is. Changes committed after the file was written reach it
 * through the trigger-filled change log: new embeddings are added (growing the graph with
 * resizeIndex), removed ones are marked deleted.
 */
export class VectorIndexService {
  private readonly loaded = new Map<string, LoadedIndex>();
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private gemm: OnnxGemm | undefined;
  readonly parameters: VectorIndexParameters;

  constructor(
    private readonly repository: VectorIndexRepository,
    private readonly embeddings: EmbeddingsRepository,
    private readonly locations: IndexLocations,
    parameters: Partial<VectorIndexParameters> = {},
    /** The library's `index.recallTarget` setting, read at each calibration. */
    private readonly recallTargetSetting: () => number | undefined = () => undefined,
    /** The library's `index.sketch` setting, read whenever a copy is started. */
    private readonly sketchSetting: () => boolean | undefined = () => undefined,
  ) {
    this.parameters = { ...defaultIndexParameters, ...parameters };
  }

  /** The recall@10 calibrations aim for: the library setting when there is one, else the parameter. */
  recallTarget(): number {
    const setting = this.recallTargetSetting();
    return typeof setting === 'number' && setting > 0 && setting <= 1 ? setting : this.parameters.recallTarget;
  }

  indexFile(modelId: string): string {
    return path.join(this.locations.indexes, `${modelId}.hnsw`);
  }

  /** The flat copy of the model's unit embeddings the re-rank reads (embedding-copy.ts). */
  embeddingCopyFile(modelId: string): string {
    return path.join(this.locations.indexes, `${modelId}.vectors`);
  }

  /** The loaded copy's sketch in words, and whether queries use it (only when the calibration measured them doing so). */
  private sketchNote(loaded: LoadedIndex): string {
    if (!loaded.copy?.hasSketch) return '';
    const size = `, and a 4-bit sketch of each (${(loaded.copy.sketchBytes / 2 ** 20).toFixed(1)} MiB in memory)`;
    return loaded.record.calibration?.preselection
      ? `${size} that picks the ${loaded.record.calibration.preselection.kept} candidates read at k = 10`
      : `${size}, unused until the index is calibrated with it`;
  }

  /** Where the re-rank reads from: the loaded index's own knowledge when it is loaded, else the copy's header against the record. */
  private copyStatus(modelId: string, record: VectorIndexRecord | undefined): EmbeddingCopyStatus {
    const file = this.embeddingCopyFile(modelId);
    const base = { file, precision: null, fileBytes: fs.existsSync(file) ? fs.statSync(file).size : null };
    if (record && record.projectionVersion === null)
      return { ...base, state: 'unused', rerankFrom: 'graph', reason: 'the graph holds the full embeddings; nothing is re-ranked' };
    const wanted = this.parameters.embeddingCopy;
    if (wanted === 'none')
      return {
        ...base,
        state: 'off',
        rerankFrom: 'sqlite',
        reason: 'no flat copy is kept (parameter embeddingCopy "none"); candidates are re-ranked from SQLite',
      };
    const loaded = this.loaded.get(modelId);
    if (loaded && record && loaded.record.fileSha256 === record.fileSha256) {
      if (loaded.copy) {
        return {
          ...base,
          state: 'ready',
          rerankFrom: 'copy',
          precision: loaded.copy.precision,
          reason: `${loaded.copy.rows} ${loaded.copy.precision} rows, generation ${loaded.copy.generation}${this.sketchNote(loaded)}`,
        };
      }
      if (loaded.copyProblem)
        return { ...base, state: loaded.copyProblem.state, rerankFrom: 'sqlite', reason: `${loaded.copyProblem.reason}; candidates are re-ranked from SQLite` };
    }
    if (!record) return { ...base, state: 'missing', rerankFrom: 'sqlite', reason: 'no index has been built for this model' };
    const inspected = EmbeddingCopy.inspect(file, {
      modelId,
      dim: record.modelDim,
      precision: wanted,
      graphSha256: record.fileSha256,
      changeSeq: record.changeSeq,
    });
    if (inspected.state === 'ready') return { ...base, state: 'ready', rerankFrom: 'copy', precision: inspected.precision, reason: inspected.reason };
    return {
      ...base,
      state: inspected.state,
      rerankFrom: 'sqlite',
      precision: inspected.precision,
      reason: `${inspected.reason}; it is rebuilt at the next open of the index, and until then candidates are re-ranked from SQLite`,
    };
  }

  private model(modelId: string): { dim: number } {
    const model = this.embeddings.model(modelId);
    if (!model) {
      const known = this.embeddings.models().map((entry) => entry.id);
      throw new DermError(
        'not-found',
        `The library has no embeddings for model "${modelId}"${known.length > 0 ? ` (models with embeddings: ${known.join(', ')})` : ''}. Run "dermws embed --model ${modelId}" first.`,
        { modelId },
      );
    }
    return model;
  }

  /** Checks the index file of a model against the database without changing anything. */
  async status(modelId: string): Promise<IndexStatus> {
    const model = this.model(modelId);
    const liveIds = this.repository.liveIds(modelId);
    const record = this.repository.record(modelId);
    const file = this.indexFile(modelId);
    const fileBytes = fs.existsSync(file) ? fs.statSync(file).size : null;
    const base: IndexStatus = {
      modelId,
      state: 'ready',
      reason: 'the index matches the library',
      file,
      fileBytes,
      databaseCount: liveIds.length,
      indexedCount: record?.elementCount ?? null,
      pendingChanges: record ? this.repository.changesSince(modelId, record.changeSeq).imageIds.length : 0,
      modelDim: model.dim,
      graphDim: record?.graphDim ?? null,
      projectionVersion: record?.projectionVersion ?? null,
      builtAt: record?.builtAt ?? null,
      calibration: record?.calibration ?? null,
      embeddingCopy: this.copyStatus(modelId, record),
    };
    const problem = await this.problemWith(modelId, model.dim, liveIds.length, record);
    if (problem) return { ...base, state: problem.state, reason: problem.reason };
    if (base.pendingChanges > 0) return { ...base, state: 'behind', reason: `${base.pendingChanges} images changed since the index was written` };
    if (record!.idChecksum !== idChecksum(liveIds)) return { ...base, state: 'stale', reason: 'the indexed image ids differ from the library' };
    return base;
  }

  /** Why the stored file cannot be used (missing, corrupt, stale), or undefined when it can be loaded. */
  private async problemWith(
    modelId: string,
    modelDim: number,
    liveCount: number,
    record: VectorIndexRecord | undefined,
    options: { checksum: boolean } = { checksum: true },
  ): Promise<{ state: 'missing' | 'corrupt' | 'stale'; reason: string } | undefined> {
    const file = this.indexFile(modelId);
    if (!record) return { state: 'missing', reason: 'no index has been built for this model' };
    if (!fs.existsSync(file)) return { state: 'missing', reason: `the index file ${file} is missing` };
    if (record.modelDim !== modelDim)
      return { state: 'stale', reason: `the index was built for ${record.modelDim}-d embeddings; the model now has ${modelDim}` };
    if (record.m !== this.parameters.m || record.efConstruction !== this.parameters.efConstruction) {
      return { state: 'stale', reason: `the index was built with M=${record.m}, efConstruction=${record.efConstruction}` };
    }
    const projection = this.wantedProjection(modelId, modelDim, liveCount);
    if (projection.refit) return { state: 'stale', reason: projection.refit };
    if ((projection.current?.version ?? null) !== record.projectionVersion) {
      return {
        state: 'stale',
        reason: `the index uses projection ${record.projectionVersion ?? 'none'}; the current one is ${projection.current?.version ?? 'none'}`,
      };
    }
    if (!options.checksum) return undefined;
    const sha = await sha256OfFile(file);
    if (sha !== record.fileSha256) return { state: 'corrupt', reason: `the index file ${file} does not match its recorded checksum` };
    return undefined;
  }

  /** Which projection a model should use now, and why it must be refitted when it must. */
  private wantedProjection(modelId: string, modelDim: number, liveCount: number): { use: boolean; current: ProjectionRecord | undefined; refit?: string } {
    const use = modelDim > this.parameters.projectAbove && liveCount >= 2;
    if (!use) return { use, current: undefined };
    const current = this.repository.projection(modelId);
    if (!current) return { use, current, refit: 'the model has no PCA projection yet' };
    if (current.inputDim !== modelDim) return { use, current, refit: `the projection was fitted on ${current.inputDim}-d embeddings` };
    const fit = this.fitSettings(modelId);
    const wantedSample = Math.min(liveCount, fit.sampleSize);
    if (current.sampleSize < wantedSample / 2) {
      return { use, current, refit: `the projection was fitted on ${current.sampleSize} embeddings; the library now has ${liveCount}` };
    }
    // A projection narrower than `projectedDim` gives a graph that finds fewer true neighbours at the
    // same ef (the search bench compares widths), so it is refitted at the asked width. Not refitted:
    // one that already keeps all but 0.05% of the variance (a sample of lower rank: a refit comes out
    // the same), and one whose refit at this sample size already came out no wider, so a refit never
    // repeats.
    const wantedDim = Math.min(fit.width, current.sampleSize - 1);
    if (current.outputDim < wantedDim && current.explainedVariance < 0.9995) {
      const previous = current.version > 1 ? this.repository.projection(modelId, current.version - 1) : undefined;
      const futile = previous !== undefined && previous.outputDim === current.outputDim && previous.sampleSize === current.sampleSize;
      if (!futile) return { use, current, refit: `the projection has ${current.outputDim} dimensions; ${wantedDim} are wanted` };
    }
    return { use, current };
  }

  /**
   * Makes the model's index usable: loads and verifies the file, rebuilds it (a job with progress)
   * when it is missing, corrupt or stale, and folds in changes committed since it was written.
   */
  async ensureReady(modelId: string, control: JobControl = {}): Promise<{ rebuilt: IndexBuildResult | null }> {
    return this.exclusive(modelId, () => this.readyUnlocked(modelId, control));
  }

  private async readyUnlocked(modelId: string, control: JobControl): Promise<{ rebuilt: IndexBuildResult | null }> {
    const cached = this.loaded.get(modelId);
    if (cached) {
      if (this.repository.recordedFileSha256(modelId) === cached.record.fileSha256) {
        await this.applyChanges(modelId, cached);
        return { rebuilt: null };
      }
      // Another process (the desktop app and the CLI share a library) saved a newer file and consumed
      // the change log up to it: reload that file instead of missing those changes.
      this.loaded.delete(modelId);
      cached.copy?.close();
      await releaseProjection(cached.projection);
    }
    // The graph file's checksum is computed on another thread while this one reads the library's ids
    // and the projection (at 100k images each takes a hundred milliseconds or more); the file is only
    // loaded once the checksum agrees with its record, so hnswlib never parses a damaged file.
    const file = this.indexFile(modelId);
    const checksum = fs.existsSync(file) ? sha256OfFileOnWorker(file).catch((error: Error) => error) : undefined;
    const model = this.model(modelId);
    const liveIds = this.repository.liveIds(modelId);
    if (liveIds.length === 0) {
      await checksum;
      throw new DermError('not-found', `Model "${modelId}" has no embeddings for images in the library yet. Run "dermws embed --model ${modelId}" first.`, {
        modelId,
      });
    }
    this.removeAbandonedTemporaryFiles(modelId);
    const record = this.repository.record(modelId);
    const problem = await this.problemWith(modelId, model.dim, liveIds.length, record, { checksum: false });
    // The flat copy is opened now and its sketch read on the thread pool while the graph is checked and loaded.
    const early = problem ? undefined : this.openCopyEarly(record!);
    const dropEarly = () => {
      if (early && 'copy' in early) early.copy.close();
    };
    const sha = await checksum;
    if (problem) return { rebuilt: await this.build(modelId, problem.reason, control, false) };
    if (sha instanceof Error || sha !== record!.fileSha256) {
      dropEarly();
      const reason = sha instanceof Error ? `the index file could not be read (${sha.message})` : `the index file ${file} does not match its recorded checksum`;
      return { rebuilt: await this.build(modelId, reason, control, false) };
    }
    let loaded: LoadedIndex;
    try {
      loaded = await this.load(record!);
    } catch (error) {
      dropEarly();
      return { rebuilt: await this.build(modelId, `the index file could not be read (${(error as Error).message})`, control, false) };
    }
    this.loaded.set(modelId, loaded);
    await this.attachCopy(loaded, control, { rebuild: false, early });
    await this.applyChanges(modelId, loaded);
    const current = this.loaded.get(modelId);
    if (current === loaded && (loaded.live.size !== liveIds.length || idChecksum(loaded.live) !== idChecksum(liveIds))) {
      return { rebuilt: await this.build(modelId, 'the indexed image ids differ from the library', control, false) };
    }
    const calibration = current?.record.calibration;
    if (current && this.parameters.calibrate && (!calibration || calibration.target !== this.recallTarget())) {
      await this.recalibrate(modelId, current, 'first-use');
    }
    return { rebuilt: null };
  }

  /** Rebuilds the index of a model from the embeddings (optionally refitting the projection first). */
  async rebuild(modelId: string, control: JobControl = {}, options: { refit?: boolean } = {}): Promise<IndexBuildResult> {
    return this.exclusive(modelId, async () => {
      this.model(modelId);
      return this.build(modelId, options.refit ? 'rebuild asked for, with a new projection' : 'rebuild asked for', control, options.refit ?? false);
    });
  }

  /** Folds embeddings committed (or images deleted) since the index was written into it and saves it. */
  async sync(modelId: string): Promise<{ added: number; updated: number; removed: number }> {
    return this.exclusive(modelId, async () => {
      const loaded = this.loaded.get(modelId);
      if (!loaded) {
        await this.readyUnlocked(modelId, {});
        return { added: 0, updated: 0, removed: 0 };
      }
      return this.applyChanges(modelId, loaded);
    });
  }

  private async exclusive<T>(modelId: string, work: () => Promise<T>): Promise<T> {
    while (this.inFlight.has(modelId)) await this.inFlight.get(modelId)!.catch(() => undefined);
    const promise = work();
    this.inFlight.set(modelId, promise);
    try {
      return await promise;
    } finally {
      if (this.inFlight.get(modelId) === promise) this.inFlight.delete(modelId);
    }
  }

  private removeAbandonedTemporaryFiles(modelId: string): void {
    for (const prefix of [`${modelId}.hnsw.`, `${modelId}.vectors.`, `${modelId}.sketch.`]) {
      for (const name of fs.existsSync(this.locations.indexes) ? fs.readdirSync(this.locations.indexes) : []) {
        if (!name.startsWith(prefix) || !name.endsWith('.partial')) continue;
        const pid = Number(name.slice(prefix.length, -'.partial'.length));
        if (pid === process.pid || !Number.isInteger(pid) || !isProcessAlive(pid)) fs.rmSync(path.join(this.locations.indexes, name), { force: true });
      }
    }
  }

  /** Whether the loaded index re-ranks (a projected graph) and a flat copy is wanted for it. */
  private wantsCopy(loaded: { projection: LoadedProjection | undefined }): boolean {
    return loaded.projection !== undefined && this.parameters.embeddingCopy !== 'none';
  }

  /** A new copy written under a temporary name (renamed over the old one when sealed), or undefined with the reason it could not be started. */
  private startCopy(modelId: string, dim: number, rows: number): { copy?: EmbeddingCopy; problem?: LoadedIndex['copyProblem'] } {
    const precision = this.parameters.embeddingCopy;
    if (precision === 'none') return {};
    const temporary = `${this.embeddingCopyFile(modelId)}.${process.pid}.partial`;
    const setting = this.sketchSetting();
    const sketch =
      (typeof setting === 'boolean' ? setting : this.parameters.sketch) && SketchTable.bytesFor(dim, rows) <= this.parameters.sketchMemoryLimitBytes;
    try {
      fs.mkdirSync(this.locations.indexes, { recursive: true });
      return { copy: EmbeddingCopy.create(temporary, { modelId, dim, precision, sketch }) };
    } catch (error) {
      fs.rmSync(temporary, { force: true });
      fs.rmSync(sketchFileOf(temporary), { force: true });
      return { problem: { state: 'unwritable', reason: `the embedding copy could not be written (${(error as Error).message})` } };
    }
  }

  /** Drops a copy that failed (its file too when it was never sealed) and remembers why. */
  private abandonCopy(
    loaded: { copy?: EmbeddingCopy | undefined; copyProblem?: LoadedIndex['copyProblem'] },
    problem: NonNullable<LoadedIndex['copyProblem']>,
  ): void {
    const copy = loaded.copy;
    loaded.copy = undefined;
    loaded.copyProblem = problem;
    if (!copy) return;
    if (copy.path.endsWith('.partial')) copy.discard();
    else copy.close();
  }

  /** Writes unit rows into the loaded copy; a write that fails (full disk) leaves the re-rank on SQLite. */
  private copyRows(
    loaded: { copy?: EmbeddingCopy | undefined; copyProblem?: LoadedIndex['copyProblem'] },
    imageIds: readonly number[],
    unit: Float32Array,
  ): void {
    if (!loaded.copy || imageIds.length === 0) return;
    try {
      loaded.copy.put(imageIds, unit);
    } catch (error) {
      this.abandonCopy(loaded, { state: 'unwritable', reason: `the embedding copy could not be written (${(error as Error).message})` });
    }
  }

  /**
   * Opens the model's flat copy for a loaded graph and checks it: header tied to this graph file,
   * size, row table checksum, and a few rows against SQLite. A copy that fails is rebuilt from SQLite
   * (a pass over every embedding, with progress) when `rebuild` is set — by the first search that
   * re-ranks, not by every open (the map opens the index only to read its points); one that cannot be
   * written leaves the re-rank on SQLite.
   */
  private async attachCopy(
    loaded: LoadedIndex,
    control: JobControl,
    options: { rebuild: boolean; knownDamage?: string; early?: EarlyCopy | undefined },
  ): Promise<void> {
    const knownDamage = options.knownDamage;
    loaded.copy?.close();
    loaded.copy = undefined;
    loaded.copyProblem = undefined;
    if (!this.wantsCopy(loaded)) {
      if (options.early && 'copy' in options.early) options.early.copy.close();
      return;
    }
    const { modelId, modelDim: dim } = loaded.record;
    const precision = this.parameters.embeddingCopy as EmbeddingCopyPrecision;
    const file = this.embeddingCopyFile(modelId);
    const tie = { modelId, dim, precision, graphSha256: loaded.record.fileSha256, changeSeq: loaded.record.changeSeq };
    // A copy a query found damaged is rebuilt whatever its header says (the open's checks did not see that row).
    const problem = knownDamage !== undefined ? { state: 'damaged' as const, reason: knownDamage } : await this.openCopy(loaded, file, tie, options.early);
    if (problem === null) return;
    const why = problem.reason;
    if (!options.rebuild) {
      loaded.copyProblem = { state: problem.state, reason: `${why}; it is rebuilt at the next search` };
      return;
    }
    const started = this.startCopy(modelId, dim, loaded.live.size);
    if (!started.copy) {
      loaded.copyProblem = { state: 'unwritable', reason: `${why}, and ${started.problem!.reason}` };
      return;
    }
    // Queries that come in while the rows are written (between the yields) re-rank from SQLite: the
    // copy is attached only once it is whole and sealed.
    const target: Pick<LoadedIndex, 'copy' | 'copyProblem'> = { copy: started.copy };
    const ids = [...loaded.live].sort((a, b) => a - b);
    const reporter = new ProgressReporter('index-build', ids.length, control.onProgress);
    reporter.report(0, `${modelId}: rebuilding the embedding copy (${why})`, true);
    try {
      for (let start = 0; start < ids.length && target.copy; start += 512) {
        throwIfCancelled(control.signal);
        const rows = this.repository.vectors(modelId, ids.slice(start, start + 512));
        this.copyRows(
          target,
          rows.map((row) => row.imageId),
          this.unitRows(rows, dim),
        );
        reporter.report(Math.min(ids.length, start + 512), modelId);
        await yieldToEventLoop();
      }
    } catch (error) {
      this.abandonCopy(target, { state: 'missing', reason: `the embedding copy was being rebuilt (${why}) when ${(error as Error).message}` });
      loaded.copyProblem = target.copyProblem;
      throw error;
    }
    this.sealCopy(loaded, target);
    loaded.copy = target.copy;
    const failed = target.copyProblem;
    loaded.copyProblem = failed ? { ...failed, reason: `${why}; rebuilding it failed: ${failed.reason}` } : undefined;
  }

  /**
   * The model's copy opened against an index record before its graph is loaded (the sketch's reads then
   * overlap the graph's), or why it cannot be; undefined when the index keeps no copy.
   */
  private openCopyEarly(record: VectorIndexRecord): EarlyCopy | undefined {
    const precision = this.parameters.embeddingCopy;
    if (record.projectionVersion === null || precision === 'none') return undefined;
    const file = this.embeddingCopyFile(record.modelId);
    try {
      const copy = EmbeddingCopy.open(
        file,
        { modelId: record.modelId, dim: record.modelDim, precision, graphSha256: record.fileSha256, changeSeq: record.changeSeq },
        { writable: true },
      );
      return { copy };
    } catch (error) {
      return { problem: copyOpenProblem(file, error) };
    }
  }

  /** Opens (or takes the early-opened) copy, waits for its sketch and checks it into `loaded.copy`; returns null when it is usable, else why not. */
  private async openCopy(
    loaded: LoadedIndex,
    file: string,
    tie: EmbeddingCopyTie,
    early: EarlyCopy | undefined,
  ): Promise<{ state: 'missing' | 'stale' | 'damaged'; reason: string } | null> {
    if (early && 'problem' in early) return early.problem;
    let copy: EmbeddingCopy | undefined;
    try {
      copy = early?.copy ?? EmbeddingCopy.open(file, tie, { writable: true });
      await copy.loaded();
      const disagreement = this.sampleDisagreement(loaded, copy);
      if (!disagreement) {
        loaded.copy = copy;
        return null;
      }
      copy.close();
      return { state: 'damaged', reason: `the embedding copy disagrees with SQLite: ${disagreement}` };
    } catch (error) {
      copy?.close();
      return copyOpenProblem(file, error);
    }
  }

  /** Up to 8 rows spread over the copy compared with their embeddings in SQLite (rows changed since the graph was written are skipped). */
  private sampleDisagreement(loaded: LoadedIndex, copy: EmbeddingCopy): string | null {
    const ids = [...loaded.live].sort((a, b) => a - b);
    const pending = new Set(this.repository.changesSince(loaded.record.modelId, loaded.record.changeSeq).imageIds);
    const sample = [
      ...new Set(Array.from({ length: Math.min(8, ids.length) }, (_, index) => ids[Math.floor(((index + 0.5) * ids.length) / Math.min(8, ids.length))]!)),
    ].filter((imageId) => !pending.has(imageId));
    for (const imageId of sample) if (!copy.has(imageId)) return `image ${imageId} has no row`;
    let rows: ReturnType<VectorIndexRepository['vectors']>;
    try {
      rows = this.repository.vectors(loaded.record.modelId, sample);
    } catch {
      // Damaged embeddings in SQLite (refused by storedVector) cannot judge the copy, and opening the
      // index must not read them into a failure: the copy's own checks (header, size, row table, per-row
      // checks at each read) stand, and "dermws check" reports the damaged rows.
      return null;
    }
    for (const row of rows) {
      const disagreement = copy.disagreement(row.imageId, normalized(row.vector));
      if (disagreement) return disagreement;
    }
    return null;
  }

  /** Ties the copy to the graph file the record names (after the graph is written) and moves it into place. */
  private sealCopy(loaded: LoadedIndex, target: Pick<LoadedIndex, 'copy' | 'copyProblem'> = loaded): void {
    if (!target.copy) return;
    try {
      target.copy.seal({ graphSha256: loaded.record.fileSha256, changeSeq: loaded.record.changeSeq });
      const file = this.embeddingCopyFile(loaded.record.modelId);
      if (target.copy.path !== file) target.copy.moveTo(file);
    } catch (error) {
      this.abandonCopy(target, { state: 'unwritable', reason: `the embedding copy could not be written (${(error as Error).message})` });
    }
  }

  private async loadProjection(record: ProjectionRecord, powerIterations: number): Promise<LoadedProjection> {
    const bias = projectionBias(record);
    const affine = await OnnxAffine.create(matrix(record.inputDim, record.outputDim, record.components), bias);
    const projector = new QueryProjector(record.inputDim, record.outputDim, record.components, bias);
    return { record, affine, projector, powerIterations };
  }

  private async load(record: VectorIndexRecord): Promise<LoadedIndex> {
    const hnsw = new hnswlib.HierarchicalNSW(record.space, record.graphDim);
    hnsw.readIndexSync(this.indexFile(record.modelId));
    if (hnsw.getNumDimensions() !== record.graphDim) throw new Error(`the file holds ${hnsw.getNumDimensions()}-d points; expected ${record.graphDim}`);
    // readIndex resets ef to its default of 10, which would silently cut recall.
    hnsw.setEf(record.calibration?.ef ?? this.parameters.efSearch);
    const deleted = new Set(record.deletedIds);
    const live = new Set(hnsw.getIdsList().filter((id) => !deleted.has(id)));
    if (live.size !== record.elementCount || idChecksum(live) !== record.idChecksum) throw new Error('the ids in the file differ from its record');
    const projectionRecord = record.projectionVersion === null ? undefined : this.repository.projection(record.modelId, record.projectionVersion);
    if (record.projectionVersion !== null && !projectionRecord) throw new Error(`projection v${record.projectionVersion} is missing`);
    const projection = projectionRecord
      ? await this.loadProjection(projectionRecord, record.calibration?.projection?.powerIterations ?? this.parameters.pcaPowerIterations)
      : undefined;
    return { record, hnsw, live, deleted, projection };
  }

  /** Batches of unit rows through the projection on onnxruntime (the graph's points are these float32 products). */
  private async project(loaded: { projection: LoadedProjection | undefined }, rows: Float32Array, count: number): Promise<Float32Array> {
    return loaded.projection ? loaded.projection.affine.apply(rows, count) : rows;
  }

  private async build(modelId: string, reason: string, control: JobControl, forceRefit: boolean): Promise<IndexBuildResult> {
    const started = performance.now();
    const model = this.model(modelId);
    const previous = this.loaded.get(modelId);
    this.loaded.delete(modelId);
    previous?.copy?.close();
    await releaseProjection(previous?.projection);
    const changeSeq = this.repository.lastChangeSeq(modelId);
    const liveIds = this.repository.liveIds(modelId);
    if (liveIds.length === 0) {
      throw new DermError('not-found', `Model "${modelId}" has no embeddings for images in the library yet. Run "dermws embed --model ${modelId}" first.`, {
        modelId,
      });
    }
    const reporter = new ProgressReporter('index-build', liveIds.length, control.onProgress);
    reporter.report(0, `${modelId}: ${reason}`, true);

    let fitSeconds: number | null = null;
    let projection: LoadedProjection | undefined;
    const wanted = this.wantedProjection(modelId, model.dim, liveIds.length);
    const fit = this.fitSettings(modelId);
    if (wanted.use) {
      let record = wanted.current;
      if (!record || wanted.refit || forceRefit) {
        const fitStarted = performance.now();
        record = await this.fitProjection(modelId, model.dim, liveIds, fit, control);
        fitSeconds = (performance.now() - fitStarted) / 1000;
      }
      projection = await this.loadProjection(record, wanted.current?.version === record.version ? this.previousPowerIterations(modelId) : fit.powerIterations);
    }
    const truth = this.parameters.calibrate ? new ProbeTruth(this.probesFor(modelId, liveIds), model.dim) : undefined;
    const graphStarted = performance.now();
    // The flat copy's rows do not depend on the projection: written once, on the first pass over the embeddings.
    const copyTarget: Pick<LoadedIndex, 'copy' | 'copyProblem'> = projection ? this.startCopy(modelId, model.dim, liveIds.length) : {};
    let loaded: LoadedIndex;
    try {
      loaded = await this.construct(modelId, model.dim, liveIds, projection, changeSeq, { control, reporter, truth, copyTarget });
    } catch (error) {
      this.abandonCopy(copyTarget, { state: 'missing', reason: 'the build was stopped' });
      await releaseProjection(projection);
      throw error;
    }
    const graphSeconds = (performance.now() - graphStarted) / 1000;
    try {
      if (truth) {
        loaded = await this.calibrate(loaded, truth.probes, truth.result(), 'build', copyTarget.copy, {
          liveIds,
          control,
          fit,
          rebuildSeconds: graphSeconds + (fitSeconds ?? graphSeconds / 4),
          changeSeq,
        });
      }
      loaded.copy = copyTarget.copy;
      loaded.copyProblem = copyTarget.copyProblem;
      await this.persist(loaded);
    } catch (error) {
      this.abandonCopy(copyTarget, { state: 'missing', reason: 'the build was stopped' });
      throw error;
    }
    this.loaded.set(modelId, loaded);
    await this.applyChanges(modelId, loaded);
    reporter.report(liveIds.length, modelId, true);
    const current = this.loaded.get(modelId) ?? loaded;
    return {
      status: 'success',
      modelId,
      reason,
      elements: current.live.size,
      graphDim: current.record.graphDim,
      projectionVersion: current.record.projectionVersion,
      explainedVariance: current.projection?.record.explainedVariance ?? null,
      fitSeconds,
      buildSeconds: (performance.now() - started) / 1000,
      calibration: current.record.calibration,
    };
  }

  /** A graph over `liveIds` (not yet saved), feeding each block of unit rows to the probe truth on the way. */
  private async construct(
    modelId: string,
    modelDim: number,
    liveIds: number[],
    projection: LoadedProjection | undefined,
    changeSeq: number,
    options: {
      control: JobControl;
      reporter?: ProgressReporter;
      truth?: ProbeTruth;
      deadline?: number;
      /** Receives each block of unit rows for the flat copy. */
      copyTarget?: Pick<LoadedIndex, 'copy' | 'copyProblem'>;
    },
  ): Promise<LoadedIndex> {
    const graphDim = projection ? projection.record.outputDim : modelDim;
    const space = projection ? 'l2' : 'cosine';
    const capacity = Math.max(64, Math.ceil(liveIds.length * 1.25));
    const hnsw = new hnswlib.HierarchicalNSW(space, graphDim);
    hnsw.initIndex({ maxElements: capacity, m: this.parameters.m, efConstruction: this.parameters.efConstruction, randomSeed: 100 });
    const chunk = 512;
    const live = new Set<number>();
    for (let start = 0; start < liveIds.length; start += chunk) {
      throwIfCancelled(options.control.signal);
      if (options.deadline !== undefined && performance.now() > options.deadline) throw new BudgetSpent();
      const rows = this.repository.vectors(modelId, liveIds.slice(start, start + chunk));
      const unit = this.unitRows(rows, modelDim);
      if (options.truth) {
        this.gemm ??= new OnnxGemm();
        await options.truth.add(
          this.gemm,
          rows.map((row) => row.imageId),
          unit,
        );
      }
      if (options.copyTarget) {
        this.copyRows(
          options.copyTarget,
          rows.map((row) => row.imageId),
          unit,
        );
      }
      this.addRows(hnsw, rows, graphDim, await this.project({ projection }, unit, rows.length), live);
      options.reporter?.report(start + rows.length, modelId);
      await yieldToEventLoop();
    }
    throwIfCancelled(options.control.signal);
    const now = new Date().toISOString();
    const record: VectorIndexRecord = {
      modelId,
      file: path.relative(this.locations.root, this.indexFile(modelId)),
      fileSha256: '',
      space,
      modelDim,
      graphDim,
      projectionVersion: projection?.record.version ?? null,
      elementCount: live.size,
      idChecksum: idChecksum(live),
      deletedIds: [],
      capacity,
      m: this.parameters.m,
      efConstruction: this.parameters.efConstruction,
      changeSeq,
      builtAt: now,
      updatedAt: now,
      calibration: null,
    };
    return { record, hnsw, live, deleted: new Set(), projection };
  }

  /** Fit settings for a model: the parameters, widened by whatever a past calibration had to adopt. */
  private fitSettings(modelId: string): FitSettings {
    const adopted = this.repository.record(modelId)?.calibration;
    return {
      width: Math.max(this.parameters.projectedDim, adopted?.projection ? adopted.graphDim : 0),
      sampleSize: Math.max(this.parameters.pcaSampleSize, adopted?.projection?.sampleSize ?? 0),
      powerIterations: Math.max(this.parameters.pcaPowerIterations, adopted?.projection?.powerIterations ?? 0),
    };
  }

  private previousPowerIterations(modelId: string): number {
    return this.repository.record(modelId)?.calibration?.projection?.powerIterations ?? this.parameters.pcaPowerIterations;
  }

  /** Probe queries drawn from the library (read from SQLite; a few hundred rows). */
  private probesFor(modelId: string, liveIds: readonly number[]): Probe[] {
    const ids = probeIds(liveIds, this.parameters.calibrationProbes);
    const byId = new Map(this.repository.vectors(modelId, ids).map((row) => [row.imageId, row.vector]));
    return makeProbes(
      ids.flatMap((imageId) => (byId.has(imageId) ? [{ imageId, vector: byId.get(imageId)! }] : [])),
      this.parameters.probeNoise,
    );
  }

  /** Exact top 10 of each probe over every live embedding, by blocked products (used when no build pass is at hand). */
  private async truthOver(modelId: string, modelDim: number, liveIds: readonly number[], probes: Probe[], signal?: AbortSignal): Promise<Array<Set<number>>> {
    const truth = new ProbeTruth(probes, modelDim);
    this.gemm ??= new OnnxGemm();
    for (let start = 0; start < liveIds.length; start += 1024) {
      throwIfCancelled(signal);
      const rows = this.repository.vectors(modelId, liveIds.slice(start, start + 1024));
      await truth.add(
        this.gemm,
        rows.map((row) => row.imageId),
        this.unitRows(rows, modelDim),
      );
      await yieldToEventLoop();
    }
    return truth.result();
  }

  /**
   * Recall@10 of each search setting on the ladder (cheapest first) until one reaches the target;
   * returns the first that does, or the best one measured.
   */
  private async measureLadder(
    loaded: LoadedIndex,
    probes: Probe[],
    truth: Array<Set<number>>,
    target: number,
    start: { candidates: number; ef: number },
    sketch: EmbeddingCopy | undefined,
  ): Promise<{ candidates: number; ef: number; recall: number; tried: number; preselected: boolean }> {
    // Each probe is projected the way search() projects that kind of query, so the recall stored is
    // the recall users get: a library row's point is read from the graph (a query by library image),
    // a noisy probe goes through the query projector one at a time (its bfloat16 weights round
    // differently from the float32 batches the graph was built with).
    const points = probes.map((probe) => {
      if (!loaded.projection) return Array.from(probe.vector);
      if (probe.excludeSelf && loaded.live.has(probe.imageId)) return loaded.hnsw.getPoint(probe.imageId);
      return Array.from(loaded.projection.projector.project(probe.vector));
    });
    const live = loaded.live.size;
    const ladder = searchLadder(start.candidates, start.ef, loaded.projection !== undefined, live, this.parameters.maxCandidates);
    let best = { ...ladder[0]!, recall: -1 };
    let tried = 0;
    for (const step of ladder) {
      tried++;
      loaded.hnsw.setEf(step.ef);
      const found = probes.map((probe, index) => {
        const request = Math.min(live, step.candidates + (probe.excludeSelf ? 1 : 0));
        const neighbours = loaded.hnsw.searchKnn(points[index]!, request).neighbors.filter((id) => !(probe.excludeSelf && id === probe.imageId));
        return neighbours.slice(0, step.candidates);
      });
      // What a query re-ranks exactly: the sketch's best few of the candidates, when it chooses them.
      const reranked = sketch ? this.preselectAll(sketch, probes, found) : found;
      if (!reranked) sketch = undefined;
      const recall = recallOfCandidates(truth, reranked ?? found);
      if (recall > best.recall) best = { ...step, recall };
      if (recall >= target) break;
      await yieldToEventLoop();
    }
    loaded.hnsw.setEf(best.ef);
    return { ...best, tried, preselected: sketch !== undefined };
  }

  /** Each probe's candidates as the sketch narrows them for the exact re-rank, or null when the sketch fails a check (queries then re-rank every candidate). */
  private preselectAll(copy: EmbeddingCopy, probes: Probe[], found: number[][]): number[][] | null {
    const chosen: number[][] = [];
    for (let index = 0; index < probes.length; index++) {
      const answer = copy.preselect(probes[index]!.vector, found[index]!, sketchKept(calibrationK));
      if ('problem' in answer) return null;
      chosen.push(answer.ids);
    }
    return chosen;
  }

  /**
   * Measures the index on the probes and tunes it to the recall target: first the search settings
   * (candidates, ef) on the graph as built; then, at a build, when those are not enough and the
   * budget allows, refits of the projection (more power iterations and a larger sample, then a wider
   * projection), each measured the same way and adopted only when it measures better.
   */
  private async calibrate(
    loaded: LoadedIndex,
    probes: Probe[],
    truth: Array<Set<number>>,
    trigger: IndexCalibration['trigger'],
    copy: EmbeddingCopy | undefined,
    build?: { liveIds: number[]; control: JobControl; fit: FitSettings; rebuildSeconds: number; changeSeq: number },
  ): Promise<LoadedIndex> {
    const started = performance.now();
    const target = this.recallTarget();
    const modelId = loaded.record.modelId;
    const previous = loaded.record.calibration;
    const start =
      trigger === 'build' || !previous
        ? { candidates: this.parameters.rerankCandidates, ef: this.parameters.efSearch }
        : { candidates: previous.candidates, ef: previous.ef };
    // Queries will pre-rank on the copy's sketch when it has one, so the measurement does too.
    const sketch = copy?.hasSketch && loaded.projection ? copy : undefined;
    let best = { loaded, measured: await this.measureLadder(loaded, probes, truth, target, start, sketch), fit: build?.fit };
    const tried: string[] = [];
    let budgetNote = '';
    if (build && best.measured.recall < target && loaded.projection) {
      const deadline = started + this.parameters.calibrationBudgetSeconds * 1000;
      for (const fit of this.refitSteps(build.fit, build.liveIds.length)) {
        if (performance.now() + build.rebuildSeconds * 1000 > deadline) {
          budgetNote = `; a refit (${describeFit(fit)}) would overrun the calibration budget of ${this.parameters.calibrationBudgetSeconds} s`;
          break;
        }
        let record: ProjectionRecord | undefined;
        let projection: LoadedProjection | undefined;
        let candidate: LoadedIndex | undefined;
        try {
          record = await this.fitProjection(modelId, loaded.record.modelDim, build.liveIds, fit, build.control);
          projection = await this.loadProjection(record, fit.powerIterations);
          candidate = await this.construct(modelId, loaded.record.modelDim, build.liveIds, projection, build.changeSeq, { control: build.control, deadline });
        } catch (error) {
          await releaseProjection(projection);
          if (record) this.repository.deleteProjection(modelId, record.version);
          if (!(error instanceof BudgetSpent)) await releaseProjection(best.loaded.projection);
          if (error instanceof BudgetSpent) {
            budgetNote = `; a refit (${describeFit(fit)}) ran past the calibration budget of ${this.parameters.calibrationBudgetSeconds} s and was abandoned`;
            break;
          }
          throw error;
        }
        const measured = await this.measureLadder(candidate, probes, truth, target, start, sketch);
        tried.push(`${describeFit(fit)}: ${measured.recall.toFixed(3)}`);
        if (measured.recall > best.measured.recall) {
          await releaseProjection(best.loaded.projection);
          best = { loaded: candidate, measured, fit };
        } else {
          await releaseProjection(candidate.projection);
          this.repository.deleteProjection(modelId, record.version);
        }
        if (best.measured.recall >= target) break;
      }
    }
    const { measured } = best;
    const met = measured.recall >= target;
    const projection = best.loaded.projection;
    const note = met
      ? `target ${target} met`
      : `target ${target} not met: best recall@10 ${measured.recall.toFixed(3)} with candidates ${measured.candidates}, ef ${measured.ef}` +
        (tried.length > 0 ? ` (refits tried: ${tried.join('; ')})` : projection && !build ? '; "dermws index rebuild --refit" may reach it' : '') +
        budgetNote +
        '; exact search gives the complete list';
    const calibration: IndexCalibration = {
      target,
      recall: measured.recall,
      probes: probes.length,
      candidates: measured.candidates,
      ef: measured.ef,
      graphDim: best.loaded.record.graphDim,
      projection: projection
        ? { version: projection.record.version, sampleSize: projection.record.sampleSize, powerIterations: projection.powerIterations }
        : null,
      preselection: measured.preselected ? { bits: 4, kept: sketchKept(calibrationK) } : null,
      met,
      note,
      trigger,
      elementCount: best.loaded.live.size,
      seconds: (performance.now() - started) / 1000,
      measuredAt: new Date().toISOString(),
    };
    best.loaded.record = { ...best.loaded.record, calibration };
    best.loaded.hnsw.setEf(calibration.ef);
    return best.loaded;
  }

  /** Projection fits a calibration tries, in order, when the search settings cannot reach the target. */
  private refitSteps(base: FitSettings, live: number): FitSettings[] {
    const steps: FitSettings[] = [];
    const sample = (size: number) => Math.min(live, 32768, size);
    const deeper = { width: base.width, sampleSize: sample(base.sampleSize * 2), powerIterations: Math.min(6, base.powerIterations + 2) };
    const wider = {
      width: Math.min(768, Math.ceil((base.width * 4) / 3 / 32) * 32),
      sampleSize: sample(base.sampleSize * 4),
      powerIterations: deeper.powerIterations,
    };
    for (const step of [deeper, wider]) {
      const width = Math.min(step.width, step.sampleSize - 1);
      const last = steps.at(-1) ?? base;
      if (width === last.width && step.sampleSize === last.sampleSize && step.powerIterations === last.powerIterations) continue;
      steps.push({ ...step, width });
    }
    return steps;
  }

  /** Measures again without rebuilding (after growth, or an index written before calibration existed) and saves the result. */
  private async recalibrate(modelId: string, loaded: LoadedIndex, trigger: IndexCalibration['trigger']): Promise<void> {
    const liveIds = [...loaded.live].sort((a, b) => a - b);
    const probes = this.probesFor(modelId, liveIds);
    const truth = await this.truthOver(modelId, loaded.record.modelDim, liveIds, probes);
    await this.calibrate(loaded, probes, truth, trigger, loaded.copy);
    await this.persist(loaded);
  }

  /** The stored calibration of a model's index as one line (no file is read or checked), or null when there is none. */
  calibrationSummary(modelId: string): string | null {
    const calibration = this.repository.record(modelId)?.calibration;
    return calibration ? describeCalibration(calibration) : null;
  }

  /** The calibration of the loaded index (after ensureReady), or null when it has not measured itself. */
  calibration(modelId: string): IndexCalibration | null {
    return this.loaded.get(modelId)?.record.calibration ?? null;
  }

  private unitRows(rows: { vector: Float32Array }[], dim: number): Float32Array {
    const data = new Float32Array(rows.length * dim);
    rows.forEach((row, index) => {
      if (row.vector.length !== dim) throw new DermError('embeddings-invalid', `An embedding has ${row.vector.length} values; the model has ${dim}.`);
      data.set(row.vector, index * dim);
    });
    return normalizeRows(data, dim);
  }

  private async projectRows(loaded: { projection: LoadedProjection | undefined }, rows: { vector: Float32Array }[], dim: number): Promise<Float32Array> {
    return this.project(loaded, this.unitRows(rows, dim), rows.length);
  }

  private addRows(hnsw: Hnsw, rows: { imageId: number }[], graphDim: number, points: Float32Array, live: Set<number>): void {
    rows.forEach((row, index) => {
      hnsw.addPoint(Array.from(points.subarray(index * graphDim, (index + 1) * graphDim)), row.imageId);
      live.add(row.imageId);
    });
  }

  private async fitProjection(modelId: string, dim: number, liveIds: number[], fit: FitSettings, control: JobControl): Promise<ProjectionRecord> {
    const sampleSize = Math.min(liveIds.length, fit.sampleSize);
    // A deterministic spread over the whole id range: every (n / sampleSize)-th id.
    const step = liveIds.length / sampleSize;
    const sampleIds = Array.from({ length: sampleSize }, (_, index) => liveIds[Math.floor(index * step)]!);
    const sample = new Float32Array(sampleSize * dim);
    let filled = 0;
    for (let start = 0; start < sampleIds.length; start += 1024) {
      throwIfCancelled(control.signal);
      for (const row of this.repository.vectors(modelId, sampleIds.slice(start, start + 1024))) {
        sample.set(normalized(row.vector), filled * dim);
        filled++;
      }
    }
    this.gemm ??= new OnnxGemm();
    const model = await fitRandomizedPca(this.gemm, matrix(filled, dim, sample.subarray(0, filled * dim)), {
      components: Math.min(fit.width, filled - 1),
      powerIterations: fit.powerIterations,
      centreInPlace: true,
    });
    const kept = model.variances.reduce((sum, value) => sum + value, 0);
    return this.repository.addProjection({
      modelId,
      inputDim: dim,
      outputDim: model.outputDim,
      sampleSize: model.sampleSize,
      explainedVariance: model.totalVariance > 0 ? Math.min(1, kept / model.totalVariance) : 1,
      mean: model.mean,
      components: model.components,
    });
  }

  /** Writes the graph to a temporary file, renames it over the old one, then records it. */
  private async persist(loaded: LoadedIndex): Promise<void> {
    const file = this.indexFile(loaded.record.modelId);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (fs.statSync(file, { throwIfNoEntry: false })?.isDirectory()) {
      throw new DermError(
        'index-invalid',
        `The index file ${file} of the library ${this.locations.root} is a folder; move that folder away (nothing in it belongs to the library) and rebuild.`,
        {
          file,
          modelId: loaded.record.modelId,
        },
      );
    }
    const temporary = `${file}.${process.pid}.partial`;
    try {
      await loaded.hnsw.writeIndex(temporary);
      const sha = await sha256OfFile(temporary);
      fs.renameSync(temporary, file);
      loaded.record = {
        ...loaded.record,
        fileSha256: sha,
        elementCount: loaded.live.size,
        idChecksum: idChecksum(loaded.live),
        deletedIds: [...loaded.deleted].sort((a, b) => a - b),
        capacity: loaded.hnsw.getMaxElements(),
        updatedAt: new Date().toISOString(),
      };
      // Sealed before the record is saved: a process killed in between leaves a copy tied to a graph
      // the record does not name, which the next open finds stale and rebuilds.
      this.sealCopy(loaded);
      this.repository.saveRecord(loaded.record);
    } finally {
      fs.rmSync(temporary, { force: true });
    }
  }

  private async applyChanges(modelId: string, loaded: LoadedIndex): Promise<{ added: number; updated: number; removed: number }> {
    const changes = this.repository.changesSince(modelId, loaded.record.changeSeq);
    const counts = { added: 0, updated: 0, removed: 0 };
    if (changes.imageIds.length === 0) return counts;
    const model = this.model(modelId);
    if (model.dim !== loaded.record.modelDim) {
      this.loaded.delete(modelId);
      throw new DermError('index-invalid', `Model "${modelId}" changed dimension; its index must be rebuilt.`, { modelId });
    }
    const present = new Map<number, Float32Array>();
    for (let start = 0; start < changes.imageIds.length; start += 1024) {
      for (const row of this.repository.vectors(modelId, changes.imageIds.slice(start, start + 1024))) present.set(row.imageId, row.vector);
    }
    const rows = [...present.entries()].map(([imageId, vector]) => ({ imageId, vector }));
    const unit = this.unitRows(rows, model.dim);
    const points = await this.project(loaded, unit, rows.length);
    this.copyRows(
      loaded,
      rows.map((row) => row.imageId),
      unit,
    );
    const graphDim = loaded.record.graphDim;
    const newElements = rows.filter((row) => !loaded.live.has(row.imageId) && !loaded.deleted.has(row.imageId)).length;
    const needed = loaded.hnsw.getCurrentCount() + newElements;
    if (needed > loaded.hnsw.getMaxElements()) loaded.hnsw.resizeIndex(Math.max(needed, Math.ceil(loaded.hnsw.getMaxElements() * 1.5)));
    rows.forEach((row, index) => {
      const point = Array.from(points.subarray(index * graphDim, (index + 1) * graphDim));
      if (loaded.live.has(row.imageId)) counts.updated++;
      else counts.added++;
      // With replacement of deleted slots off, addPoint on a deleted label unmarks it and updates it.
      loaded.hnsw.addPoint(point, row.imageId);
      loaded.deleted.delete(row.imageId);
      loaded.live.add(row.imageId);
    });
    for (const imageId of changes.imageIds) {
      if (present.has(imageId) || !loaded.live.has(imageId)) continue;
      loaded.hnsw.markDelete(imageId);
      loaded.live.delete(imageId);
      loaded.deleted.add(imageId);
      counts.removed++;
    }
    loaded.record = { ...loaded.record, changeSeq: changes.lastSeq };
    const shouldProject = loaded.record.modelDim > this.parameters.projectAbove && loaded.live.size >= 2;
    const fittedOn = loaded.projection?.record.sampleSize ?? 0;
    if (shouldProject && (!loaded.projection || fittedOn < Math.min(loaded.live.size, this.parameters.pcaSampleSize) / 2)) {
      await this.build(modelId, `the library has grown to ${loaded.live.size} images; the projection was fitted on ${fittedOn}`, {}, true);
      return counts;
    }
    if (loaded.deleted.size > this.parameters.maxDeletedFraction * loaded.hnsw.getCurrentCount()) {
      await this.build(modelId, `${loaded.deleted.size} deleted elements; compacting`, {}, false);
      return counts;
    }
    const measuredAt = loaded.record.calibration?.elementCount;
    if (this.parameters.calibrate && measuredAt !== undefined && loaded.live.size > measuredAt * (1 + this.parameters.recalibrateAfterGrowth)) {
      await this.recalibrate(modelId, loaded, 'growth');
      return counts;
    }
    await this.persist(loaded);
    return counts;
  }

  /**
   * Rebuilds the flat copy before a query re-ranks, when the open found it missing, stale or damaged or
   * a query found a damaged row. A rebuild that fails leaves the re-rank on SQLite for this process.
   */
  private async ensureCopy(modelId: string): Promise<void> {
    const loaded = this.loaded.get(modelId);
    const state = loaded?.copyProblem?.state;
    if (!loaded || loaded.copy || !this.wantsCopy(loaded) || (state !== 'missing' && state !== 'stale' && state !== 'damaged')) return;
    await this.exclusive(modelId, async () => {
      if (this.loaded.get(modelId) !== loaded || !loaded.copyProblem) return;
      try {
        await this.attachCopy(loaded, {}, { rebuild: true, knownDamage: loaded.copyProblem.reason.replace(/; it is rebuilt at the next search$/, '') });
      } catch (error) {
        this.abandonCopy(loaded, { state: 'unwritable', reason: `the embedding copy could not be rebuilt (${(error as Error).message})` });
      }
    });
  }

  /** Whether a filter that keeps `allowedCount` images is answered by an exact scan of them rather than the graph. */
  scansFilterExactly(modelId: string, allowedCount: number): boolean {
    return allowedCount <= this.parameters.exactFilterLimit || allowedCount <= this.size(modelId) * 0.02;
  }

  /** Whether the loaded index holds this image (after ensureReady). */
  contains(modelId: string, imageId: number): boolean {
    return this.loaded.get(modelId)?.live.has(imageId) ?? false;
  }

  /**
   * The points the graph holds for these images, in the order given: for a projected model the
   * PCA-projected unit embeddings (graphDim values each), otherwise the unit embeddings. They are read
   * from the loaded graph, so no embedding is read from SQLite and nothing is fitted. Null when the
   * model's index would have to be built first (missing, corrupt or stale), so a caller that only wants
   * reduced vectors can take another path instead of waiting for a build; an index that is merely
   * behind has its pending changes folded in first.
   */
  async projectedVectorsFor(modelId: string, imageIds: readonly number[], control: JobControl = {}): Promise<ProjectedVectors | null> {
    if (!this.loaded.has(modelId)) {
      // The checks of status() but the file's checksum, which ensureReady verifies once while loading
      // (hashing a 100k-image file twice would double the time to the first points).
      const model = this.model(modelId);
      const record = this.repository.record(modelId);
      if (!record || !fs.existsSync(this.indexFile(modelId)) || record.modelDim !== model.dim) return null;
      if (record.m !== this.parameters.m || record.efConstruction !== this.parameters.efConstruction) return null;
      const projection = this.wantedProjection(modelId, model.dim, this.repository.liveIds(modelId).length);
      if (projection.refit || (projection.current?.version ?? null) !== record.projectionVersion) return null;
    }
    await this.ensureReady(modelId, control);
    throwIfCancelled(control.signal);
    const loaded = this.loaded.get(modelId)!;
    const dim = loaded.record.graphDim;
    const data = new Float32Array(imageIds.length * dim);
    const rows = new Map<number, number>();
    imageIds.forEach((imageId, index) => {
      if (!loaded.live.has(imageId)) {
        throw new DermError('not-found', `Image ${imageId} is not in the index of model "${modelId}" (it has no embedding of that model, or it was deleted).`, {
          modelId,
          imageId,
        });
      }
      rows.set(imageId, index);
    });
    // The saved file is the loaded graph (ensureReady saves what it folds in); two points read through
    // hnswlib vouch for that (another process may have saved a newer graph since), else every point is.
    const spotChecks = imageIds.length > 0 ? [0, imageIds.length - 1] : [];
    const fromFile =
      readPointsFromIndexFile(this.indexFile(modelId), dim, rows, data) &&
      spotChecks.every((index) =>
        loaded.hnsw.getPoint(imageIds[index]!).every((value, column) => Math.abs(value - data[index * dim + column]!) <= 1e-6 * Math.max(1, Math.abs(value))),
      );
    if (!fromFile) {
      for (let start = 0; start < imageIds.length; start += 1024) {
        throwIfCancelled(control.signal);
        for (let index = start; index < Math.min(imageIds.length, start + 1024); index++) data.set(loaded.hnsw.getPoint(imageIds[index]!), index * dim);
        await yieldToEventLoop();
      }
    }
    return {
      modelId,
      dim,
      projection: loaded.projection
        ? {
            version: loaded.projection.record.version,
            inputDim: loaded.projection.record.inputDim,
            explainedVariance: loaded.projection.record.explainedVariance,
          }
        : null,
      data,
    };
  }

  /** Bytes of the loaded copy's in-memory sketch (0 when there is none). */
  sketchBytes(modelId: string): number {
    return this.loaded.get(modelId)?.copy?.sketchBytes ?? 0;
  }

  /** Number of live elements in the loaded index (after ensureReady). */
  size(modelId: string): number {
    return this.loaded.get(modelId)?.live.size ?? 0;
  }

  /**
   * The k nearest library images to a query embedding (full model dimension), by cosine similarity.
   * Projected models are searched on the graph and their candidates re-ranked by exact cosine on the
   * full embeddings. Filtered queries never starve: the search widens until k allowed images are
   * found or every allowed image has been considered.
   */
  async search(modelId: string, query: ArrayLike<number>, k: number, options: IndexSearchOptions = {}): Promise<Neighbour[]> {
    if (!Number.isInteger(k) || k < 1 || k > 1000) throw new DermError('invalid-input', `k must be a whole number from 1 to 1000; got ${k}.`, { field: 'k' });
    await this.ensureReady(modelId);
    if (!options.exact && !options.rerankFromDatabase) await this.ensureCopy(modelId);
    const loaded = this.loaded.get(modelId)!;
    if (query.length !== loaded.record.modelDim) {
      throw new DermError('invalid-input', `The query vector has ${query.length} values; model "${modelId}" has ${loaded.record.modelDim}.`, {
        field: 'query',
      });
    }
    for (let index = 0; index < query.length; index++) {
      if (!Number.isFinite(query[index]!))
        throw new DermError('invalid-input', `The query vector has a non-finite value at position ${index}.`, { field: 'query' });
    }
    let clock = performance.now();
    const lap = (stage: 'normalise' | 'project' | 'graph' | 'rerank') => {
      if (!options.stages) return;
      const now = performance.now();
      options.stages[stage] = (options.stages[stage] ?? 0) + now - clock;
      clock = now;
    };
    const unit = normalized(query);
    lap('normalise');
    const allowedCount = options.allowedIds?.length ?? loaded.live.size;
    if (options.exact) {
      return this.exactOver(modelId, unit, options.allowedIds ?? [...loaded.live].sort((a, b) => a - b), k);
    }
    if (options.allowedIds && this.scansFilterExactly(modelId, allowedCount)) {
      return this.exactOver(modelId, unit, options.allowedIds, k);
    }
    // A library image's projected point is in the graph already (the same product of the same unit vector).
    const fromGraph = loaded.projection && options.libraryImageId !== undefined && loaded.live.has(options.libraryImageId);
    // Any other query is projected here, in this thread (no onnxruntime round trip per query).
    const projectedQuery = fromGraph
      ? loaded.hnsw.getPoint(options.libraryImageId!)
      : Array.from(!loaded.projection ? unit : options.projectOnOnnxRuntime ? await this.project(loaded, unit, 1) : loaded.projection.projector.project(unit));
    lap('project');
    const calibration = loaded.record.calibration;
    const candidates = calibration?.candidates ?? this.parameters.rerankCandidates;
    const ef = calibration?.ef ?? this.parameters.efSearch;
    const baseCandidates = loaded.projection ? Math.max(candidates, 2 * k) : k;
    let request = Math.min(baseCandidates, loaded.live.size);
    for (;;) {
      loaded.hnsw.setEf(Math.max(ef, request));
      const found = options.allow ? loaded.hnsw.searchKnn(projectedQuery, request, options.allow) : loaded.hnsw.searchKnn(projectedQuery, request);
      const enough = found.neighbors.length >= Math.min(request, allowedCount);
      if (enough || request >= loaded.live.size) {
        lap('graph');
        if (!loaded.projection) {
          return found.neighbors.slice(0, k).map((imageId, index) => ({ imageId, similarity: 1 - found.distances[index]! }));
        }
        const reranked = this.rerank(loaded, unit, found.neighbors, k, options.rerankFromDatabase === true, options.rerankEveryCandidate !== true);
        lap('rerank');
        return reranked;
      }
      request = Math.min(loaded.live.size, request * 4);
    }
  }

  /**
   * Every pair of live images whose embeddings have cosine ≥ `threshold`, looking at each image's
   * `perImage` nearest graph neighbours. For projected graphs the projection never lengthens a
   * distance (orthonormal axes), and for unit vectors cos ≥ t ⇔ ‖x − y‖² ≤ 2 − 2t, so graph
   * candidates farther than that are discarded without reading their embeddings; the rest are
   * checked exactly.
   */
  async similarPairs(
    modelId: string,
    threshold: number,
    options: JobControl & { perImage?: number } = {},
  ): Promise<Array<{ a: number; b: number; similarity: number }>> {
    if (!(threshold > 0 && threshold <= 1))
      throw new DermError('invalid-input', `The similarity threshold must be above 0 and at most 1; got ${threshold}.`, { field: 'threshold' });
    await this.ensureReady(modelId, options);
    const loaded = this.loaded.get(modelId)!;
    const perImage = Math.min(options.perImage ?? 10, loaded.live.size);
    const ids = [...loaded.live].sort((x, y) => x - y);
    const reporter = new ProgressReporter('duplicates', ids.length, options.onProgress);
    const pairs: Array<{ a: number; b: number; similarity: number }> = [];
    const squaredBound = 2 - 2 * threshold + 1e-6;
    loaded.hnsw.setEf(Math.max(loaded.record.calibration?.ef ?? this.parameters.efSearch, perImage));
    for (let start = 0; start < ids.length; start += 256) {
      throwIfCancelled(options.signal);
      const rows = this.repository.vectors(modelId, ids.slice(start, start + 256));
      const points = await this.projectRows(loaded, rows, loaded.record.modelDim);
      const graphDim = loaded.record.graphDim;
      const toCheck: Array<{ row: number; candidate: number }> = [];
      rows.forEach((row, index) => {
        const found = loaded.hnsw.searchKnn(Array.from(points.subarray(index * graphDim, (index + 1) * graphDim)), perImage);
        found.neighbors.forEach((candidate, position) => {
          if (candidate <= row.imageId) return;
          const distance = found.distances[position]!;
          if (!loaded.projection) {
            if (1 - distance >= threshold) pairs.push({ a: row.imageId, b: candidate, similarity: 1 - distance });
          } else if (distance <= squaredBound) {
            toCheck.push({ row: index, candidate });
          }
        });
      });
      if (toCheck.length > 0) {
        const candidates = new Map(
          this.repository.vectors(modelId, [...new Set(toCheck.map((item) => item.candidate))]).map((row) => [row.imageId, row.vector]),
        );
        for (const { row, candidate } of toCheck) {
          const vector = candidates.get(candidate);
          if (!vector) continue;
          const similarity = cosine(rows[row]!.vector, vector);
          if (similarity >= threshold) pairs.push({ a: rows[row]!.imageId, b: candidate, similarity });
        }
      }
      reporter.report(Math.min(ids.length, start + rows.length));
      await yieldToEventLoop();
    }
    loaded.hnsw.setEf(loaded.record.calibration?.ef ?? this.parameters.efSearch);
    return pairs.sort((x, y) => y.similarity - x.similarity || x.a - y.a || x.b - y.b);
  }

  /**
   * Exact cosine of the candidates on the full embeddings: from the flat copy when it is ready, else
   * from SQLite. A copy that fails its checks on a candidate is dropped for this index (rebuilt at the
   * next call to ensureReady) and the query is answered from SQLite, so a damaged copy never changes a result.
   */
  private rerank(loaded: LoadedIndex, unit: Float32Array, candidates: number[], k: number, fromDatabase: boolean, preselect: boolean): Neighbour[] {
    if (loaded.copy && !fromDatabase) {
      const answer = loaded.copy.rerank(unit, candidates, k, { preselect: preselect && loaded.record.calibration?.preselection != null });
      if ('neighbours' in answer) return answer.neighbours;
      this.abandonCopy(loaded, { state: 'damaged', reason: answer.problem });
    }
    const top = new TopK(k);
    for (const row of this.repository.vectors(loaded.record.modelId, candidates)) top.offer(row.imageId, cosineWithUnit(unit, row.vector));
    return top.result();
  }

  private exactOver(modelId: string, unit: Float32Array, imageIds: readonly number[], k: number): Neighbour[] {
    const top = new TopK(k);
    for (let start = 0; start < imageIds.length; start += 512) {
      for (const row of this.repository.vectors(modelId, imageIds.slice(start, start + 512))) top.offer(row.imageId, cosineWithUnit(unit, row.vector));
    }
    return top.result();
  }

  /** Forgets loaded graphs and releases ORT sessions. */
  async close(): Promise<void> {
    for (const loaded of this.loaded.values()) {
      loaded.copy?.close();
      await releaseProjection(loaded.projection);
    }
    this.loaded.clear();
    await this.gemm?.release();
    this.gemm = undefined;
  }
}

/** A copy opened before its graph was loaded, or why it could not be. */
type EarlyCopy = { copy: EmbeddingCopy } | { problem: { state: 'missing' | 'stale' | 'damaged'; reason: string } };

/** Any failure to read a copy (a folder in its place, an I/O error) is a copy to rebuild, never a failed search. */
function copyOpenProblem(file: string, error: unknown): { state: 'missing' | 'stale' | 'damaged'; reason: string } {
  return error instanceof EmbeddingCopyProblem
    ? { state: error.state, reason: error.message }
    : { state: 'damaged', reason: `the embedding copy ${file} could not be read (${(error as Error).message})` };
}

/** Frees both forms of a projection: the ORT session and the query projector's WebAssembly memory. */
async function releaseProjection(projection: LoadedProjection | undefined): Promise<void> {
  if (!projection) return;
  projection.projector.release();
  await projection.affine.release();
}

function describeFit(fit: FitSettings): string {
  return `${fit.width}-d from ${fit.sampleSize} samples, ${fit.powerIterations} power iterations`;
}
