import { z } from 'zod';
import { sessionSummarySchema } from '../common/contract.js';
import type { RunShardResult } from '../core/cluster/cluster-shard.js';
import type { WritePlanResult } from '../core/cluster/cluster.service.js';
import type { EmbeddingService } from '../core/embeddings/embedding.service.js';
import type { ImportEmbeddingsResult } from '../core/embeddings/embeddings-import.js';
import type { IndexBuildResult, IndexStatus } from '../core/index/vector-index.service.js';
import type { TaxonomyImportReport } from '../core/labels/taxonomy.service.js';
import type { ProbePredictionResult, ProbesService } from '../core/probes/probes.service.js';
import type { SearchBenchmarkReport } from '../core/search/search-benchmark.js';
import type { SessionStats, SessionSummary } from '../core/sessions/sessions.service.js';
import type { RunningServer } from '../web/serve.js';
import type { WebBridge } from '../web/web-bridge.js';

/**
 * The `--json` shapes of the commands that have no call in the app's contract (docs/cli.md, "`--json`
 * prints contract outputs"): each is checked against its schema before it is printed, so a field
 * listed here is promised and nothing else is printed. Commands that do what a contract call or job
 * does print that call's output or the job's result schema instead (electron/common/contract.ts).
 * Loaded only when a command prints JSON, so zod stays off the CLI's start-up path.
 */

/** The index's own measurement of its recall and the settings it chose (IndexCalibration in the core). */
const indexCalibrationSchema = z.object({
  /** The recall@10 asked for (the `index.recallTarget` setting). */
  target: z.number(),
  /** Recall@10 measured with the chosen settings on the probes. */
  recall: z.number(),
  probes: z.int(),
  /** Graph candidates re-ranked exactly on the full embeddings. */
  candidates: z.int(),
  /** HNSW beam width at query time. */
  ef: z.int(),
  graphDim: z.int(),
  /** Projection fit of the graph measured (null: the graph holds the full embeddings). */
  projection: z.object({ version: z.int(), sampleSize: z.int(), powerIterations: z.int() }).nullable(),
  /** The in-memory sketch that ranked the candidates before the exact re-rank and how many it kept at k = 10 (null: all were re-ranked exactly). */
  preselection: z.object({ bits: z.literal(4), kept: z.int() }).nullable(),
  met: z.boolean(),
  /** In words: what was tried and, when the target was missed, why and what to do. */
  note: z.string(),
  trigger: z.enum(['build', 'growth', 'first-use']),
  /** Live images in the index when measured (growth beyond this re-measures). */
  elementCount: z.int(),
  seconds: z.number(),
  measuredAt: z.string(),
});

/** One model's index checked against the library (IndexStatus in the core). */
const indexStatusSchema = z.object({
  modelId: z.string(),
  /** ready: usable as is; behind: usable after folding in pending changes; missing/corrupt/stale: needs a rebuild. */
  state: z.enum(['ready', 'behind', 'missing', 'corrupt', 'stale']),
  reason: z.string(),
  file: z.string(),
  fileBytes: z.int().nullable(),
  databaseCount: z.int(),
  indexedCount: z.int().nullable(),
  pendingChanges: z.int(),
  modelDim: z.int(),
  graphDim: z.int().nullable(),
  projectionVersion: z.int().nullable(),
  builtAt: z.string().nullable(),
  calibration: indexCalibrationSchema.nullable(),
  /** Where graph candidates are re-ranked from, and why not from the flat copy when they are not. */
  embeddingCopy: z.object({
    state: z.enum(['ready', 'missing', 'stale', 'damaged', 'unwritable', 'off', 'unused']),
    rerankFrom: z.enum(['copy', 'sqlite', 'graph']),
    precision: z.enum(['float16', 'float32']).nullable(),
    file: z.string(),
    fileBytes: z.int().nullable(),
    reason: z.string(),
  }),
});

/** One model's index rebuilt (IndexBuildResult in the core). */
const indexBuildSchema = z.object({
  status: z.literal('success'),
  modelId: z.string(),
  reason: z.string(),
  elements: z.int(),
  graphDim: z.int(),
  projectionVersion: z.int().nullable(),
  explainedVariance: z.number().nullable(),
  fitSeconds: z.number().nullable(),
  buildSeconds: z.number(),
  calibration: indexCalibrationSchema.nullable(),
});

const latencySchema = z.object({ p50Ms: z.number(), p99Ms: z.number(), recall: z.number() });
const serviceStagesSchema = z.object({ normalise: z.number(), project: z.number(), graph: z.number(), rerank: z.number() });

export const cliOutputs = {
  /** `dermws session stats <id>`: progress, time per image, label counts and the queue. */
  sessionStats: z.object({
    session: sessionSummarySchema,
    progress: z.number(),
    secondsTotal: z.number(),
    secondsPerLabelledImage: z.object({ mean: z.number().nullable(), median: z.number().nullable() }),
    /** Counts of the session annotator's current labels on the session's images, per kind and value. */
    labelCounts: z.record(z.string(), z.record(z.string(), z.int())),
    items: z.array(
      z.object({ position: z.int(), imageId: z.int(), secondsSpent: z.number(), labelledAt: z.string().nullable(), skippedAt: z.string().nullable() }),
    ),
  }),
  /** `dermws taxonomy import <file>`: entries read, added and updated. */
  taxonomyImport: z.object({ file: z.string(), added: z.int(), updated: z.int(), entries: z.int() }),
  /** `dermws taxonomy remove <kind> <code>`. */
  taxonomyRemove: z.object({ removed: z.object({ kind: z.string(), code: z.string() }) }),
  /** `dermws probe predict <run>`: probabilities per image and label, stored as suggestions. */
  probePredict: z.object({
    runId: z.int(),
    modelId: z.string(),
    labels: z.array(z.string()),
    images: z.array(z.object({ imageId: z.int(), probabilities: z.record(z.string(), z.number()) })),
    /** Requested images that have no embedding for the run's model. */
    withoutEmbedding: z.array(z.int()),
  }),
  /** `dermws probe report <run> --predictions FILE`: the out-of-fold export written and its manifest beside it. */
  probePredictionsExport: z.object({
    file: z.string(),
    manifestFile: z.string(),
    format: z.enum(['csv', 'npz']),
    /** Images (rows) written. */
    images: z.int(),
    labels: z.array(z.string()),
  }),
  /** `dermws models remove <id> --yes`: the model removed (it held no embeddings) and where it came from. */
  modelsRemove: z.object({ removed: z.string(), source: z.enum(['onnx', 'imported']) }),
  /**
   * `dermws serve`: the start-up line, printed once listening. `url` is the address to open with the
   * per-run token in it, as the text output shows it; the token is not printed as a field of its own.
   */
  serve: z.object({ url: z.string(), origin: z.string(), port: z.int(), host: z.string(), library: z.string() }),
  /** `dermws index status`: one entry per model checked. */
  indexStatus: z.object({ indexes: z.array(indexStatusSchema) }),
  /** `dermws index rebuild`: one entry per model rebuilt. */
  indexRebuild: z.object({ indexes: z.array(indexBuildSchema) }),
  /** `dermws embeddings import <file.npz|file.npy>` (a cluster folder prints clusterImportReportSchema). */
  embeddingsImport: z.object({
    modelId: z.string(),
    file: z.string(),
    sha256: z.string(),
    dim: z.int(),
    /** Arrays (npz keys or matrix rows) read. */
    entries: z.int(),
    stored: z.int(),
    matchedByRelativePath: z.int(),
    matchedByFileName: z.int(),
    /** Keys that match no library image (or only a deleted one). */
    unmatched: z.array(z.string()),
    /** Keys whose file name matches more than one image, so none was chosen. */
    ambiguous: z.array(z.object({ key: z.string(), imageIds: z.array(z.int()) })),
    /** Keys that matched an image another key had already matched; the first one is kept. */
    duplicates: z.array(z.object({ key: z.string(), imageId: z.int(), keptKey: z.string() })),
  }),
  /** `dermws embed plan`: the plan written for a cluster. */
  embedPlan: z.object({
    planFolder: z.string(),
    planId: z.string(),
    libraryId: z.string(),
    modelId: z.string(),
    modelSha256: z.string(),
    root: z.string(),
    images: z.int(),
    shardSize: z.int(),
    shards: z.int(),
  }),
  /** `dermws embed shard`: one shard embedded on this machine (skipped when already finished). */
  embedShard: z.object({
    status: z.enum(['success', 'partial', 'skipped', 'cancelled']),
    shard: z.int(),
    planId: z.string(),
    npz: z.string(),
    manifest: z.string(),
    images: z.int(),
    embedded: z.int(),
    failed: z.array(z.object({ key: z.string(), file: z.string(), reason: z.string() })),
    provider: z.string().nullable(),
    fallbackReason: z.string().nullable(),
    batchSize: z.int().nullable(),
  }),
  /** `dermws bench search`: the index measured on the given vectors (SearchBenchmarkReport in the core). */
  benchSearch: z.object({
    count: z.int(),
    dim: z.int(),
    k: z.int(),
    queries: z.object({ count: z.int(), kind: z.enum(['given', 'noisy library rows']) }),
    buildSeconds: z.number(),
    fitSeconds: z.number().nullable(),
    calibration: indexCalibrationSchema.nullable(),
    graphDim: z.int(),
    indexFileBytes: z.int(),
    openMs: z.number(),
    openResidentBytes: z.number(),
    queryResidentBytes: z.number(),
    embeddingCopy: z.object({ state: z.string(), precision: z.string().nullable(), fileBytes: z.int().nullable() }),
    service: latencySchema.extend({ stagesP50Ms: serviceStagesSchema }),
    serviceFromDatabase: latencySchema.extend({ stagesP50Ms: serviceStagesSchema }),
    serviceEveryCandidate: latencySchema.extend({ stagesP50Ms: serviceStagesSchema }).nullable(),
    serviceOnnxProjection: latencySchema.extend({ stagesP50Ms: serviceStagesSchema }).nullable(),
    sketchBytes: z.int(),
    precisions: z
      .object({
        float32: latencySchema.extend({ rerankP50Ms: z.number() }),
        sameTopK: z.int(),
        overlap: z.number(),
        copyRebuildSeconds: z.number(),
      })
      .nullable(),
    libraryImage: z.object({ p50Ms: z.number(), p99Ms: z.number() }).nullable(),
    request: z
      .object({
        firstMs: z.number(),
        p50Ms: z.number(),
        p99Ms: z.number(),
        stagesP50Ms: z.object({ query: z.number(), eligible: z.number(), ready: z.number(), index: z.number(), cards: z.number(), json: z.number() }),
      })
      .nullable(),
    native: latencySchema.extend({ graphOnlyP50Ms: z.number() }),
  }),
};

export type CliOutputName = keyof typeof cliOutputs;

/**
 * Each schema describes exactly what its core function returns, checked by the compiler both ways, so
 * a field added to either side fails the type-check instead of being dropped from the output unseen.
 */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
type Printed<Name extends CliOutputName> = z.output<(typeof cliOutputs)[Name]>;
export type CliOutputsMatchTheCore = [
  Assert<Same<Omit<Printed<'sessionStats'>, 'session'>, Omit<SessionStats, 'session'>>>,
  // The session as the contract's session calls show it (sessionSummarySchema): without the stored image set and order details.
  Assert<Same<keyof Printed<'sessionStats'>['session'], Exclude<keyof SessionSummary, 'imageSet' | 'orderDetails'>>>,
  Assert<Same<Printed<'taxonomyImport'>, TaxonomyImportReport>>,
  Assert<Same<Printed<'probePredict'>, ProbePredictionResult>>,
  Assert<Same<Printed<'indexStatus'>, { indexes: IndexStatus[] }>>,
  Assert<Same<Printed<'indexRebuild'>, { indexes: IndexBuildResult[] }>>,
  Assert<Same<Printed<'embeddingsImport'>, ImportEmbeddingsResult>>,
  Assert<Same<Printed<'embedPlan'>, WritePlanResult>>,
  Assert<Same<Printed<'embedShard'>, RunShardResult>>,
  Assert<Same<Printed<'benchSearch'>, SearchBenchmarkReport>>,
  Assert<Same<Printed<'probePredictionsExport'>, ReturnType<ProbesService['exportPredictions']>>>,
  // The core names the removed model `id`; the command has always printed it as `removed`.
  Assert<Same<Printed<'modelsRemove'>, RenamedKey<ReturnType<EmbeddingService['removeModel']>, 'id', 'removed'>>>,
  // The running server's addresses, the --host asked for and the library served; the token stays inside `url`.
  Assert<Same<Printed<'serve'>, Pick<WebBridge, 'url' | 'origin' | 'port'> & { host: string; library: RunningServer['libraryFolder'] }>>,
  Assert<Same<Extract<keyof Printed<'serve'>, 'token'>, never>>,
];

/** T with its key From named To instead (every other key as it is). */
type RenamedKey<T, From extends keyof T, To extends string> = Omit<T, From> & { [Key in To]: T[From] };
