import { z } from 'zod';
import { defineCall, errorFromSerialized, parseInput, serializedErrorSchema, type ContractTransport } from './contract-core.js';
import { DermError } from './errors.js';

/**
 * The app contract: every call the renderer may make, with its input and output schema, plus the
 * events it receives. Electron main registers IPC handlers from this table, the web bridge exposes it
 * as POST /api/<call>, the core's handler registry implements it, and `createClient` derives the typed
 * client the renderer uses. Inputs are strict objects, so a misspelt field is refused by name.
 */

const imageId = z.int().positive();
const jobId = z.string().regex(/^job-[0-9]+$/, 'must be a job id such as "job-3"');
/** Upload ids name a folder the web bridge created for files sent from the browser. */
export const uploadIdSchema = z.string().regex(/^[a-f0-9]{32}$/, 'must be an upload id returned by the upload endpoint');

export const jobStateSchema = z.enum(['running', 'success', 'partial', 'cancelled', 'failed']);

export const jobProgressSchema = z.object({
  job: z.string(),
  done: z.number(),
  total: z.number(),
  current: z.string().optional(),
  ratePerSecond: z.number(),
  etaSeconds: z.number().nullable(),
  message: z.string().optional(),
  /** For a job that runs in stages (the library check): the stage `done` and `total` count in. */
  stage: z.string().optional(),
});

export const jobInfoSchema = z.object({
  id: jobId,
  kind: z.string(),
  state: jobStateSchema,
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  progress: jobProgressSchema.nullable(),
  /** The job's own result (an import report, an embedding summary …) once it has finished. */
  result: z.unknown().optional(),
  error: serializedErrorSchema.optional(),
});
export type JobInfo = z.infer<typeof jobInfoSchema>;

export const jobStartedSchema = z.object({ jobId });

/** Events pushed to the renderer (IPC channel or server-sent events). Names of listeners start with `on`. */
export const appEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('job-progress'), jobId, kind: z.string(), progress: jobProgressSchema }),
  z.object({ type: z.literal('job-finished'), job: jobInfoSchema }),
  z.object({ type: z.literal('library-changed'), what: z.string() }),
]);
export type AppEvent = z.infer<typeof appEventSchema>;

export const imageFilterSchema = z.strictObject({
  /** Images carrying every one of these flags (automatic or manual). */
  flags: z.array(z.string().min(1)).max(50).optional(),
  /** Images carrying none of these flags. */
  withoutFlags: z.array(z.string().min(1)).max(50).optional(),
  batchId: z.int().positive().optional(),
  caseKey: z.string().min(1).optional(),
  /** Exact metadata matches, key → value. */
  metadata: z.record(z.string().min(1), z.string()).optional(),
  /** Only these image ids (e.g. a lasso selection on the map, or search hits). */
  ids: z.array(z.int().positive()).max(200_000).optional(),
  /** Text contained in the file path (case-insensitive). */
  search: z.string().max(500).optional(),
  /** Some annotator's current label of the kind has the value; every pair must hold. */
  labels: z
    .array(z.strictObject({ kind: z.string().min(1).max(40), value: z.string().min(1).max(4000) }))
    .max(20)
    .optional(),
  /** Fitzpatrick type by label or self-report, written I..VI. */
  fitzpatrick: z.enum(['I', 'II', 'III', 'IV', 'V', 'VI']).optional(),
  /** Monk skin tone 1..10 by label. */
  monkTone: z
    .string()
    .regex(/^([1-9]|10)$/, 'must be a Monk skin tone from 1 to 10')
    .optional(),
  /** Body site code, by label or SCIN's body_parts metadata. */
  bodySite: z.string().min(1).max(100).optional(),
  /** Images with a current label by this annotator. */
  annotator: z.string().min(1).max(100).optional(),
  /** Images in this labelling session's queue. */
  sessionId: z.int().positive().optional(),
});
export type ImageFilter = z.infer<typeof imageFilterSchema>;

export const importOutcomeSchema = z.object({
  path: z.string(),
  outcome: z.enum(['imported', 'duplicate', 'failed', 'skipped']),
  reason: z.string().optional(),
  imageId: z.int().optional(),
});

/**
 * A stored import batch's status. interrupted: its process died mid-import (found at the next open or
 * import), unlike cancelled, which someone asked for; running the same import again resumes either.
 */
export const importBatchStatusSchema = z.enum(['running', 'completed', 'cancelled', 'interrupted', 'failed']);

/** The result of an import job (JobInfo.result of importStart) and what `dermws import --json` prints. */
export const importReportSchema = z.object({
  batchId: z.int(),
  status: z.enum(['success', 'partial', 'cancelled', 'failed']),
  /** True when this run finished a batch that an earlier, interrupted run had started. */
  resumed: z.boolean(),
  total: z.int(),
  imported: z.int(),
  duplicates: z.int(),
  failed: z.int(),
  skipped: z.int(),
  outcomes: z.array(importOutcomeSchema),
});
export type ImportReport = z.infer<typeof importReportSchema>;

/** The stages of a library check, in the order they run (progress events carry one as `stage`). */
export const libraryCheckStageSchema = z.enum(['database', 'embeddings', 'thumbnails', 'managed-copies', 'repair']);

/** The result of a library-check job (JobInfo.result). */
export const libraryCheckReportSchema = z.object({
  library: z.string(),
  database: z.string(),
  level: z.enum(['quick', 'full']),
  /** cancelled: stopped part-way; `stages` says what was checked. */
  status: z.enum(['complete', 'cancelled']),
  /** True only for a complete check with no problem left unrepaired. */
  ok: z.boolean(),
  counts: z.object({ images: z.int(), embeddings: z.int(), thumbnails: z.int(), managedCopies: z.int() }),
  stages: z.array(z.object({ stage: libraryCheckStageSchema, state: z.enum(['done', 'cancelled', 'failed', 'not-run']), checked: z.int(), total: z.int() })),
  problems: z.array(
    z.object({
      kind: z.enum(['database', 'schema', 'embedding', 'thumbnail', 'managed-copy']),
      message: z.string(),
      imageId: z.int().optional(),
      file: z.string().optional(),
      repaired: z.boolean(),
    }),
  ),
  temporaryFilesRemoved: z.array(z.string()),
});
export type LibraryCheckReport = z.infer<typeof libraryCheckReportSchema>;

const mapColouringSchema = z.enum(['condition', 'flag', 'fitzpatrick', 'monk_tone', 'batch']);
const mapRequestSchema = z.strictObject({
  modelId: z.string().min(1).optional(),
  limit: z.int().min(10).max(20_000).optional(),
  colourBy: mapColouringSchema,
});
const mapLayoutSchema = z.object({
  modelId: z.string(),
  total: z.int(),
  dims: z.int(),
  imageIds: z.array(z.int()),
  /** imageIds.length × dims, row-major principal coordinates, the most spread first. */
  coordinates: z.array(z.number()),
  groups: z.array(z.string()),
  /** index: the index's stored (projected) vectors; embeddings: read from the library because the model has no usable index. */
  source: z.enum(['index', 'embeddings']),
  note: z.string(),
});

export const labelKindSchema = z.enum(['condition', 'body_site', 'fitzpatrick', 'monk_tone', 'severity', 'gradable', 'quality_flag', 'note']);
const annotatorSchema = z.string().trim().min(1, 'must name the annotator').max(100);
const sessionId = z.int().positive();

export const labelSchema = z.object({
  kind: z.string(),
  value: z.string(),
  confidence: z.int().nullable(),
  annotator: z.string().nullable(),
  origin: z.string(),
});

export const taxonomyEntrySchema = z.object({
  kind: z.string(),
  code: z.string(),
  displayName: z.string(),
  parentCode: z.string().nullable(),
  hotkey: z.string().nullable(),
  sortOrder: z.number(),
  depth: z.int(),
  labelCount: z.int(),
});

export const sessionSummarySchema = z.object({
  id: z.int(),
  name: z.string(),
  annotator: z.string(),
  order: z.string(),
  /** Seed of the random and cluster orders: the same seed over the same images gives the same queue. */
  seed: z.int(),
  status: z.string(),
  /** 'blind': predictions and suggestions stay hidden until the annotator has chosen. */
  suggestions: z.enum(['shown', 'blind']),
  /** Labels meant for inter-annotator agreement. */
  agreement: z.boolean(),
  position: z.int(),
  total: z.int(),
  labelled: z.int(),
  skipped: z.int(),
  remaining: z.int(),
  secondsSpent: z.number(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

const sessionItemSchema = z.object({
  position: z.int(),
  imageId: z.int(),
  secondsSpent: z.number(),
  labelledAt: z.string().nullable(),
  skippedAt: z.string().nullable(),
  labels: z.array(labelSchema),
});

export const sessionNextSchema = z.object({
  session: sessionSummarySchema,
  current: sessionItemSchema.nullable(),
  following: sessionItemSchema.nullable(),
});
export type SessionNext = z.infer<typeof sessionNextSchema>;

const kindLabelsSchema = z.strictObject({
  kind: labelKindSchema,
  values: z.array(z.strictObject({ value: z.string().min(1).max(4000), confidence: z.int().min(1).max(5).nullable().optional() })).max(50),
});

/** One value of a label slot. */
const labelValueSchema = z.object({ value: z.string(), confidence: z.int().nullable() });

/**
 * What one label change did to one slot (an image's labels of one kind by one annotator and origin):
 * the values before and after. Changes are what undo takes back and what the audit log records.
 */
export const labelSlotChangeSchema = z.object({
  imageId: z.int(),
  kind: z.string(),
  origin: z.string(),
  annotator: z.string().nullable(),
  before: z.array(labelValueSchema),
  after: z.array(labelValueSchema),
});

/** One entry of the label audit log: a slot change with when, how and by whom it was made. */
export const labelAuditEntrySchema = labelSlotChangeSchema.extend({
  id: z.int(),
  at: z.string(),
  action: z.enum(['set', 'remove', 'record', 'import', 'adjudicate', 'undo', 'redo']),
  /** The undoable edit the change belongs to (null for imports); revertsEditId names the edit an undo or redo replays. */
  editId: z.int().nullable(),
  revertsEditId: z.int().nullable(),
  sessionId: z.int().nullable(),
});

/** The label changes a call made, with the image's labels after them. */
const labelChangeResultSchema = z.object({ labels: z.array(labelSchema), changes: z.array(labelSlotChangeSchema) });

const undoResultSchema = z.object({
  description: z.string().nullable(),
  canUndo: z.boolean(),
  canRedo: z.boolean(),
  /** The slot changes the undo or redo applied (empty when there was nothing to do). */
  changes: z.array(labelSlotChangeSchema),
});

/** One suggested value: score is Σ weight × share over the neighbours that carry it (a kind's scores sum to at most 1); neighbours counts them. */
export const labelSuggestionSchema = z.object({ value: z.string(), score: z.number(), neighbours: z.int() });

export const exportReportSchema = z.object({
  status: z.enum(['success', 'partial', 'cancelled', 'failed']),
  folder: z.string(),
  files: z.array(z.object({ name: z.string(), bytes: z.int(), sha256: z.string(), entries: z.int() })),
  counts: z.object({ images: z.int(), cases: z.int(), labels: z.int(), embeddings: z.int(), imageFiles: z.int() }),
  model: z.object({ id: z.string(), sha256: z.string(), dim: z.int() }).nullable(),
  issues: z.array(z.object({ imageId: z.int().nullable(), message: z.string() })),
});
export type ExportReport = z.infer<typeof exportReportSchema>;

/** How a job ended, as its result reports it (a job result's `status`). */
export const jobResultStatusSchema = z.enum(['success', 'partial', 'cancelled', 'failed']);

/** The result of an embedding job (JobInfo.result of embedStart) and what `dermws embed --json` prints. */
export const embedReportSchema = z.object({
  status: jobResultStatusSchema,
  modelId: z.string(),
  /** Images needing an embedding when the job started. */
  total: z.int(),
  embedded: z.int(),
  /** Images that already had an embedding from this model file. */
  skipped: z.int(),
  failed: z.array(z.object({ imageId: z.int(), path: z.string(), reason: z.string() })),
  provider: z.enum(['cuda', 'dml', 'coreml', 'cpu']),
  fallbackReason: z.string().optional(),
  batchSize: z.int(),
});
export type EmbedReport = z.infer<typeof embedReportSchema>;

/**
 * One problem found while importing a dataset, located precisely enough to fix it in a spreadsheet:
 * the file, the physical line (1-based, the header is line 1), the column and the offending value.
 * `error` issues mean something was not imported; `warning` issues mean it was imported with a caveat.
 */
export const datasetIssueSchema = z.object({
  severity: z.enum(['error', 'warning']),
  /** File name as given (for SCIN: scin_cases.csv / scin_labels.csv; else the CSV path). */
  file: z.string(),
  line: z.int().nullable(),
  column: z.string().optional(),
  value: z.string().optional(),
  message: z.string(),
});

/** What a dataset import reports (`dermws dataset import-*`; the demo job's `datasetImport`). */
export const datasetImportReportSchema = z.object({
  dataset: z.enum(['scin', 'isic', 'csv']),
  status: jobResultStatusSchema,
  files: z.array(z.string()),
  /** Data rows read (all CSVs together), and rows that contributed something. */
  rows: z.int(),
  rowsApplied: z.int(),
  cases: z.object({ created: z.int(), existing: z.int() }),
  images: z.object({
    /** Image files new to the library. */
    imported: z.int(),
    /** Image files already in the library (a re-run, or the same file listed twice). */
    alreadyInLibrary: z.int(),
    /** Listed in the CSV but absent on disk. */
    missing: z.int(),
    /** Present but could not be decoded or read. */
    failed: z.int(),
    /** Images linked to a case or given metadata/labels by this import. */
    matched: z.int(),
  }),
  metadata: z.object({ set: z.int(), unchanged: z.int() }),
  /**
   * Labels by slot (one image, kind and annotator): slots whose values changed, slots that already held
   * exactly these values (a re-run), and the number of label values the slots hold.
   */
  labels: z.object({ changedSlots: z.int(), unchangedSlots: z.int(), values: z.int() }),
  issues: z.array(datasetIssueSchema),
  /** Import batch that brought the image files in (SCIN), when files were imported. */
  importBatchId: z.int().nullable(),
});

/** The result of the demo job (JobInfo.result of demoStart) and what `dermws demo --json` prints. */
export const demoReportSchema = z.object({
  status: jobResultStatusSchema,
  libraryFolder: z.string(),
  /** The generated dataset: `<folder>/dataset/scin_cases.csv`, `scin_labels.csv`, `images/`. */
  datasetFolder: z.string(),
  /** A photo that is not in the library, for trying similar-case search with an outside photo. */
  outsidePhoto: z.string(),
  cases: z.int(),
  photos: z.int(),
  /** Listed in the CSV but broken on purpose (the import reports them). */
  brokenFiles: z.array(z.string()),
  /** Copies made on purpose: byte-identical, same pixels re-encoded, and a slightly brighter re-take. */
  duplicateFiles: z.object({ byteCopy: z.string(), pixelCopy: z.string(), nearCopy: z.string() }),
  datasetImport: datasetImportReportSchema,
  /** The second reader's condition labels: label slots changed and unchanged, label values stored. */
  secondReader: z.object({ changedSlots: z.int(), unchangedSlots: z.int(), labels: z.int() }),
  embedding: embedReportSchema.nullable(),
});

/**
 * The result of merging a cluster run (JobInfo.result of clusterImportStart) and what
 * `dermws embeddings import OUT_DIR --json` prints.
 */
export const clusterImportReportSchema = z.object({
  status: jobResultStatusSchema,
  folder: z.string(),
  planId: z.string(),
  modelId: z.string(),
  /** Shards in the plan. */
  shards: z.int(),
  merged: z.array(z.object({ shard: z.int(), stored: z.int(), alreadyStored: z.int(), failed: z.int() })),
  /** Vectors written by this run (0 on a rerun with nothing new). */
  stored: z.int(),
  /** Vectors in accepted shards that the library already held from this model file. */
  alreadyStored: z.int(),
  missing: z.array(z.object({ shard: z.int(), reason: z.string() })),
  refused: z.array(z.object({ shard: z.int(), file: z.string(), reason: z.string() })),
  /** Images a worker could not embed, with its reason. */
  failures: z.array(z.object({ shard: z.int(), key: z.string(), imageId: z.int().nullable(), file: z.string(), reason: z.string() })),
  /** Images deleted from the library after the plan was written (their vectors are not stored). */
  deletedSincePlan: z.int(),
  /**
   * The HNSW index update when the model had an index (null when there was none): changes folded in,
   * whether the index had to be rebuilt instead, and how many images it holds now.
   */
  index: z.object({ folded: z.int(), rebuilt: z.boolean(), indexed: z.int() }).nullable(),
});
export type ClusterImportReport = z.infer<typeof clusterImportReportSchema>;

export const modelSummarySchema = z.object({
  id: z.string(),
  displayName: z.string(),
  source: z.string(),
  dim: z.int(),
  inputSize: z.string(),
  licence: z.string(),
  description: z.string().nullable(),
  assumptions: z.array(z.string()),
  embedded: z.int(),
  /** Image layout the encoder takes, e.g. "NCHW". */
  inputLayout: z.string(),
  sha256: z.string(),
  /** Where the weights come from (the manifest's origin). */
  origin: z.string(),
  /** Whether the ONNX file is present (a bundled manifest can describe a model not exported yet); the path stays on this machine. */
  fileExists: z.boolean(),
  /** The search index's own measured recall, e.g. "recall@10 0.996 measured on 256 probes at build (candidates 128, ef 160, 256-d)"; null before one is built. */
  searchIndex: z.string().nullable(),
});

const graphValueSchema = z.object({ name: z.string(), type: z.string().nullable(), shape: z.array(z.union([z.int(), z.string()])) });

export const modelCheckSchema = z.object({
  id: z.string(),
  displayName: z.string(),
  /** Where the model is registered: default (the bundled encoder), bundled, library (added), or candidate (being added). */
  source: z.string(),
  dim: z.int(),
  sha256: z.string(),
  provider: z.string(),
  fallbackReason: z.string().nullable(),
  batchSize: z.int(),
  /** Each execution provider tried, in order, with why it could not be used (absent for the one that loaded). */
  attempts: z.array(z.object({ provider: z.string(), error: z.string().optional() })),
  /** The graph's inputs and outputs as loaded (symbolic dimensions by name). */
  inputs: z.array(graphValueSchema),
  outputs: z.array(graphValueSchema),
  /** L2 norms of the embeddings of the generated test images. */
  sampleNorms: z.array(z.number()),
});

/** Agreement of two annotators on the images both labelled with one kind. */
export const pairAgreementSchema = z.object({
  annotatorA: z.string(),
  annotatorB: z.string(),
  items: z.int(),
  percentAgreement: z.number().nullable(),
  kappa: z.number().nullable(),
  expectedAgreement: z.number().nullable(),
});

/**
 * Agreement of three or more annotators on the images all of them labelled: unanimous is the share
 * of those images on which all agree, meanPairAgreement Fleiss' P̄, kappa Fleiss' κ.
 */
export const groupAgreementSchema = z.object({
  annotators: z.array(z.string()),
  items: z.int(),
  unanimous: z.number().nullable(),
  meanPairAgreement: z.number().nullable(),
  kappa: z.number().nullable(),
});

/** Agreement on one value of a multi-valued kind, as presence or absence (binary κ). */
export const valueAgreementSchema = z.object({ value: z.string(), pairs: z.array(pairAgreementSchema), group: groupAgreementSchema.nullable() });

export const imageCardSchema = z.object({
  imageId: z.int(),
  fileName: z.string(),
  width: z.int(),
  height: z.int(),
  caseKey: z.string().nullable(),
  metadata: z.record(z.string(), z.string()),
  flags: z.array(z.string()),
  labels: z.record(z.string(), z.array(z.string())),
});

const searchOptions = {
  modelId: z.string().min(1).optional(),
  k: z.int().min(1).max(1000).optional(),
  /** Filter clauses as in `dermws search --where`, e.g. "flag!=blurry", "label.condition=eczema", "meta.body_parts~ARM". */
  where: z.array(z.string().min(1).max(500)).max(20).optional(),
  excludeCase: z.boolean().optional(),
  /** Compare with every eligible embedding instead of searching the index: complete by construction, slower. */
  exact: z.boolean().optional(),
};

/** An AUC is a number with its case-bootstrap interval or an explicit "too small" with the reason, never a number from a group that cannot support one. */
export const aucSchema = z.union([
  z.object({ status: z.literal('measured'), value: z.number(), ci95: z.tuple([z.number(), z.number()]), bootstrapReplicates: z.int().optional() }),
  z.object({ status: z.literal('too-small'), reason: z.string() }),
]);
/** One bin of a reliability diagram: predicted probabilities in [lower, lower + 0.1). */
export const reliabilityBinSchema = z.object({ lower: z.number(), count: z.int(), meanPredicted: z.number().nullable(), observedRate: z.number().nullable() });
/** A ROC curve as stored in a run's metrics: columns of equal length; threshold is null at the (0, 0) start; exactPoints counts the vertices before downsampling. */
export const storedRocCurveSchema = z.object({
  fpr: z.array(z.number()),
  tpr: z.array(z.number()),
  threshold: z.array(z.number().nullable()),
  exactPoints: z.int(),
});
export const labelMetricsSchema = z.object({
  label: z.string(),
  images: z.int(),
  positives: z.int(),
  negatives: z.int(),
  positiveCases: z.int(),
  /** Absent in runs stored before the per-label case floor. */
  negativeCases: z.int().optional(),
  auc: aucSchema,
  accuracy: z.number(),
  brier: z.number(),
  ece: z.number(),
  reliability: z.array(reliabilityBinSchema).optional(),
  /** Pooled out-of-fold ROC curve (≤200 vertices from (0, 0) to (1, 1)); overall table only; absent in older runs. */
  roc: storedRocCurveSchema.optional(),
});
export const groupMetricsSchema = z.object({
  images: z.int(),
  cases: z.int(),
  macroAuc: z.number().nullable(),
  hammingLoss: z.number(),
  subsetAccuracy: z.number(),
  perLabel: z.array(labelMetricsSchema),
});
/** One value of a subgroup attribute (e.g. Fitzpatrick III): its metrics, or why the group is too small to measure. */
export const subgroupResultSchema = z.union([
  z.object({ value: z.string(), images: z.int(), cases: z.int(), status: z.literal('measured'), metrics: groupMetricsSchema }),
  z.object({ value: z.string(), images: z.int(), cases: z.int(), status: z.literal('too-small'), reason: z.string() }),
]);
export const probeRunStatusSchema = z.enum(['running', 'completed', 'cancelled', 'failed']);
export const probeLabelKindSchema = z.enum(['condition', 'quality']);
export const probeRunSummarySchema = z.object({
  id: z.int(),
  createdAt: z.string(),
  finishedAt: z.string().nullable(),
  status: probeRunStatusSchema,
  modelId: z.string(),
  labelKind: probeLabelKindSchema,
  labels: z.array(z.string()),
  seed: z.int(),
  folds: z.int(),
  images: z.int(),
  cases: z.int(),
  macroAuc: z.number().nullable(),
});
export const probeReportSchema = z.object({
  id: z.int(),
  status: z.string(),
  modelId: z.string(),
  labelKind: z.string(),
  labels: z.array(z.string()),
  seed: z.int(),
  folds: z.int(),
  appVersion: z.string(),
  error: z.string().nullable(),
  predictionCount: z.int(),
  metrics: z
    .object({
      overall: groupMetricsSchema,
      subgroups: z.array(
        z.object({
          attribute: z.string(),
          source: z.string(),
          notRecorded: z.object({ images: z.int(), cases: z.int() }),
          groups: z.array(subgroupResultSchema),
        }),
      ),
      curve: z.array(
        z.object({
          fraction: z.number(),
          trainingCases: z.number(),
          seeds: z.int(),
          macroAuc: z.object({ mean: z.number().nullable(), sd: z.number().nullable() }),
        }),
      ),
      /** Each label's AUC under every fold seed of a repeated CV; absent in runs stored before repeats were kept. */
      repeats: z
        .object({
          count: z.int(),
          seeds: z.array(z.int()),
          perLabel: z.array(z.object({ label: z.string(), values: z.array(z.number().nullable()), mean: z.number().nullable(), sd: z.number().nullable() })),
          macroAuc: z.object({ values: z.array(z.number().nullable()), mean: z.number().nullable(), sd: z.number().nullable() }),
        })
        .optional(),
      solver: z.object({
        tolerance: z.number().optional(),
        passes: z.int(),
        perLabel: z
          .array(
            z.object({
              label: z.string(),
              iterations: z.array(z.int()),
              outcomes: z.array(z.string()),
              worstRelativeGradient: z.number(),
              atPrecisionFloor: z.int(),
              converged: z.boolean(),
            }),
          )
          .optional(),
      }),
    })
    .nullable(),
  /** The whole stored run (manifest, every metric) for the "export report" download. */
  raw: z.unknown(),
});
export type ProbeReportView = z.infer<typeof probeReportSchema>;

const emptyInput = z.strictObject({});

export const contract = {
  appInfo: defineCall({
    description: 'Version, where the app runs (electron, web or cli) and the open library.',
    input: emptyInput,
    output: z.object({
      appVersion: z.string(),
      /** cli: `dermws` calling in-process (its --json prints these outputs). */
      mode: z.enum(['electron', 'web', 'cli']),
      libraryFolder: z.string(),
      schemaVersion: z.int(),
      /** Whether files can be given as paths on this machine (true in both modes: the server is local). */
      acceptsPaths: z.boolean(),
      /** The library is on storage this process cannot write: it can be browsed and searched, every change is refused. */
      readOnly: z.boolean(),
    }),
  }),
  libraryCheck: defineCall({
    description:
      'Starts a check of the library (a job): database pages (quick_check, or integrity_check with full) and the schema record, embeddings (finite, right size), thumbnails and managed copies present; repair regenerates missing ones from an unchanged source. Progress names the stage; a cancelled check ends with what it checked so far (libraryCheckReportSchema) and only whole files repaired.',
    startsJob: 'library-check',
    input: z.strictObject({ full: z.boolean().optional(), repair: z.boolean().optional() }),
    output: jobStartedSchema,
  }),
  libraryOverview: defineCall({
    description:
      'Counts for the navigation and the library header: images (live and deleted, bytes, cases, formats), import batches, flags, embeddings per model, the schema version. `dermws info --json` prints it.',
    input: emptyInput,
    output: z.object({
      images: z.int(),
      /** Images marked deleted (kept until purged; a duplicate review can restore them). */
      deletedImages: z.int(),
      /** Bytes of the live images' files as imported. */
      bytes: z.int(),
      cases: z.int(),
      /** Live images per file format, e.g. {"jpeg": 120, "png": 2}. */
      formats: z.record(z.string(), z.int()),
      /** Live images carrying at least one flag. */
      flaggedImages: z.int(),
      schemaVersion: z.int(),
      /** Every import batch; `batches` lists the latest 50, newest first. */
      batchCount: z.int(),
      batches: z.array(
        z.object({
          id: z.int(),
          startedAt: z.string(),
          finishedAt: z.string().nullable(),
          status: importBatchStatusSchema,
          total: z.int(),
          imported: z.int(),
          failed: z.int(),
          duplicates: z.int(),
        }),
      ),
      flags: z.array(z.object({ flag: z.string(), count: z.int() })),
      embeddings: z.array(z.object({ modelId: z.string(), count: z.int() })),
      metadataKeys: z.array(z.string()),
    }),
  }),
  settingsGet: defineCall({
    description: 'Library settings (thresholds, preferences) by key.',
    input: z.strictObject({ keys: z.array(z.string().min(1)).max(200).optional() }),
    output: z.object({ values: z.record(z.string(), z.unknown()) }),
  }),
  settingsSet: defineCall({
    description: 'Stores one library setting as JSON.',
    input: z.strictObject({ key: z.string().min(1).max(200), value: z.unknown() }),
    output: z.object({ key: z.string() }),
  }),
  jobsList: defineCall({
    description: 'Jobs started in this run of the app, newest first.',
    input: emptyInput,
    output: z.object({ jobs: z.array(jobInfoSchema) }),
  }),
  jobGet: defineCall({
    description: 'One job with its latest progress, and its result once finished.',
    input: z.strictObject({ jobId }),
    output: jobInfoSchema,
  }),
  jobCancel: defineCall({
    description: 'Asks a running job to stop; it ends with state "cancelled" after its current unit of work.',
    input: z.strictObject({ jobId }),
    output: z.object({ cancelled: z.boolean() }),
  }),
  imagesPage: defineCall({
    description: 'Image ids in library order for a filter, one page at a time (the grid asks for the rows it shows).',
    input: z.strictObject({
      filter: imageFilterSchema.optional(),
      offset: z.int().min(0),
      limit: z.int().min(1).max(5000),
    }),
    output: z.object({ total: z.int(), ids: z.array(z.int()) }),
  }),
  libraryFacets: defineCall({
    description:
      'Counts for the library filter panel under a filter: images per condition and other label kinds, Fitzpatrick type, Monk tone, body site, case, session, annotator, flag and batch, with display names. A facet the filter uses is counted without its own choice.',
    input: z.strictObject({ filter: imageFilterSchema.optional() }),
    output: z.object({
      total: z.int(),
      facets: z.array(
        z.object({
          field: z.enum(['label', 'fitzpatrick', 'monkTone', 'bodySite', 'case', 'session', 'annotator', 'flag', 'batch']),
          kind: z.string().optional(),
          title: z.string(),
          values: z.array(z.object({ value: z.string(), display: z.string(), count: z.int() })),
          more: z.int(),
        }),
      ),
    }),
  }),
  imageCards: defineCall({
    description: 'What thumbnails show for some images: case, metadata, flags and current labels by kind.',
    input: z.strictObject({ imageIds: z.array(imageId).max(2000) }),
    output: z.object({ cards: z.array(imageCardSchema) }),
  }),
  imagesFlag: defineCall({
    description:
      'Flags images by hand, or takes a flag off them (a manual flag is removed; an automatic one is marked "not an issue" so re-flagging keeps it off).',
    input: z.strictObject({ imageIds: z.array(imageId).min(1).max(200_000), flag: z.string().min(1).max(40), set: z.boolean() }),
    output: z.object({ changed: z.int() }),
  }),
  imageDetail: defineCall({
    description: 'Everything known about one image: file facts, metadata, flags, quality metrics, labels.',
    input: z.strictObject({ imageId }),
    output: z.object({
      id: z.int(),
      fileName: z.string(),
      originalPath: z.string(),
      relativePath: z.string().nullable(),
      width: z.int(),
      height: z.int(),
      format: z.string(),
      bytes: z.int(),
      importedAt: z.string(),
      batchId: z.int(),
      caseKey: z.string().nullable(),
      metadata: z.record(z.string(), z.string()),
      flags: z.array(z.object({ flag: z.string(), source: z.string(), detail: z.string().nullable() })),
      quality: z.record(z.string(), z.number()).nullable(),
      labels: z.array(z.object({ kind: z.string(), value: z.string(), confidence: z.int().nullable(), annotator: z.string().nullable(), origin: z.string() })),
    }),
  }),
  importStart: defineCall({
    description: 'Imports files and folders given as paths on this machine, or files uploaded from the browser (always copied into the library).',
    startsJob: 'import',
    input: z.union([
      z.strictObject({ paths: z.array(z.string().min(1)).min(1).max(10_000), copyIntoLibrary: z.boolean().optional() }),
      z.strictObject({ uploadId: uploadIdSchema }),
    ]),
    output: jobStartedSchema,
  }),
  importReport: defineCall({
    description: 'Per-file outcomes of one import batch (failed files with reasons, duplicates with the image they duplicate).',
    input: z.strictObject({ batchId: z.int().positive(), outcome: z.enum(['imported', 'duplicate', 'failed', 'skipped']).optional() }),
    output: z.object({
      batchId: z.int(),
      status: importBatchStatusSchema,
      counts: z.object({ total: z.int(), imported: z.int(), duplicates: z.int(), failed: z.int() }),
      outcomes: z.array(importOutcomeSchema),
    }),
  }),
  qualityOverview: defineCall({
    description: 'Histograms of each quality metric with its flag threshold, counts per flag and the current thresholds.',
    input: emptyInput,
    output: z.object({
      images: z.int(),
      flaggedImages: z.int(),
      flagCounts: z.record(z.string(), z.int()),
      thresholds: z.record(z.string(), z.number()),
      /** The thresholds a new library starts with (the "reset" of the Quality screen). */
      defaults: z.record(z.string(), z.number()),
      histograms: z.array(
        z.object({
          metric: z.string(),
          label: z.string(),
          explanation: z.string(),
          flag: z.string(),
          threshold: z.object({ name: z.string(), value: z.number(), direction: z.enum(['below', 'above']) }),
          min: z.number(),
          max: z.number(),
          bins: z.array(z.int()),
        }),
      ),
    }),
  }),
  qualityFlagged: defineCall({
    description: 'Images carrying a flag, worst first by the metric behind it (with its value), and the images a person marked "not an issue" for it.',
    input: z.strictObject({ flag: z.string().min(1).max(40), limit: z.int().min(1).max(1000).optional() }),
    output: z.object({
      flag: z.string(),
      metric: z.string().nullable(),
      total: z.int(),
      images: z.array(z.object({ imageId: z.int(), value: z.number().nullable(), source: z.string(), detail: z.string().nullable() })),
      notAnIssue: z.array(z.object({ imageId: z.int(), value: z.number().nullable(), setAt: z.string() })),
    }),
  }),
  qualityNotAnIssue: defineCall({
    description: 'Marks an automatic flag of one image "not an issue" (kept off through re-flagging, filters and exports), or withdraws that verdict.',
    input: z.strictObject({ imageId, flag: z.string().min(1).max(40), notAnIssue: z.boolean() }),
    output: z.object({ flags: z.array(z.string()) }),
  }),
  qualitySetThresholds: defineCall({
    description: 'Changes flag thresholds and re-flags the library from stored metrics (no decoding); `dermws qc --set` prints its output.',
    input: z.strictObject({ change: z.record(z.string().min(1), z.number()) }),
    output: z.object({
      thresholds: z.record(z.string(), z.number()),
      flagCounts: z.record(z.string(), z.int()),
      /** Each threshold given, with its value before and after. */
      changed: z.array(z.object({ name: z.string(), from: z.number(), to: z.number() })),
      images: z.int(),
      flaggedImages: z.int(),
    }),
  }),
  taxonomyList: defineCall({
    description: 'The label vocabulary (starter taxonomy plus imported entries), with hotkeys and how often each code is used.',
    input: z.strictObject({ kind: labelKindSchema.exclude(['note']).optional() }),
    output: z.object({ entries: z.array(taxonomyEntrySchema) }),
  }),
  labelsOfImage: defineCall({
    description: 'Current labels of one image (every annotator and origin, or one annotator).',
    input: z.strictObject({ imageId, annotator: annotatorSchema.optional() }),
    output: z.object({ labels: z.array(labelSchema) }),
  }),
  labelSet: defineCall({
    description: 'Gives an image a label as an annotator (single-valued kinds replace the previous value); recorded in the audit log.',
    input: z.strictObject({
      imageId,
      kind: labelKindSchema,
      value: z.string().min(1).max(4000),
      confidence: z.int().min(1).max(5).optional(),
      annotator: annotatorSchema,
      /** The labelling session the change belongs to (its undo and audit entries name it). */
      sessionId: sessionId.optional(),
    }),
    output: labelChangeResultSchema,
  }),
  labelImages: defineCall({
    description:
      'Gives every image of a selection the same label as an annotator, in one transaction and as one undoable edit; when any image id is not in the library nothing is stored and the error names it.',
    input: z.strictObject({
      imageIds: z.array(imageId).min(1).max(200_000),
      kind: labelKindSchema,
      value: z.string().min(1).max(4000),
      confidence: z.int().min(1).max(5).optional(),
      annotator: annotatorSchema,
    }),
    /** images: distinct images given; changed: how many did not already hold the value. */
    output: z.object({ images: z.int(), changed: z.int() }),
  }),
  labelRemove: defineCall({
    description: 'Removes an annotator’s label of a kind (one value, or all of the kind).',
    input: z.strictObject({ imageId, kind: labelKindSchema, value: z.string().min(1).optional(), annotator: annotatorSchema, sessionId: sessionId.optional() }),
    output: labelChangeResultSchema,
  }),
  labelUndo: defineCall({
    description: 'Undoes the annotator’s last label change (persisted: works after a restart).',
    input: z.strictObject({ annotator: annotatorSchema }),
    output: undoResultSchema,
  }),
  labelRedo: defineCall({
    description: 'Redoes the annotator’s last undone label change.',
    input: z.strictObject({ annotator: annotatorSchema }),
    output: undoResultSchema,
  }),
  labelHistory: defineCall({
    description: 'The audit log of label changes, oldest first: every slot change with its values before and after, optionally of one image or one annotator.',
    input: z.strictObject({ imageId: imageId.optional(), annotator: annotatorSchema.optional(), limit: z.int().min(1).max(1_000_000).optional() }),
    output: z.object({ entries: z.array(labelAuditEntrySchema) }),
  }),
  labelSuggestions: defineCall({
    description: 'Labels of the most similar labelled images, weighted by similarity: suggestions shown beside the image, never applied by themselves.',
    input: z.strictObject({
      imageId,
      kind: labelKindSchema.exclude(['note']).optional(),
      modelId: z.string().min(1).optional(),
      k: z.int().min(1).max(100).optional(),
    }),
    output: z.object({
      modelId: z.string(),
      suggestions: z.array(labelSuggestionSchema),
    }),
  }),
  sessionCreate: defineCall({
    description: 'Creates a labelling session for an annotator over a filter (e.g. "unlabelled", "flag!=blurry") or an explicit list of images.',
    input: z.strictObject({
      name: z.string().trim().min(1).max(200),
      annotator: annotatorSchema,
      where: z.array(z.string().min(1).max(500)).max(20).optional(),
      imageIds: z.array(imageId).min(1).max(500_000).optional(),
      order: z.enum(['unlabelled-first', 'random', 'cluster', 'uncertain']).optional(),
      seed: z.int().optional(),
      agreement: z.boolean().optional(),
      suggestions: z.enum(['shown', 'blind']).optional(),
    }),
    output: sessionSummarySchema,
  }),
  sessionSetSuggestions: defineCall({
    description:
      'Sets whether a session shows probe predictions and similar-image suggestions before the annotator has chosen ("shown") or only after ("blind").',
    input: z.strictObject({ sessionId, suggestions: z.enum(['shown', 'blind']) }),
    output: sessionSummarySchema,
  }),
  sessionList: defineCall({
    description: 'Every labelling session with its progress.',
    input: emptyInput,
    output: z.object({ sessions: z.array(sessionSummarySchema) }),
  }),
  sessionNext: defineCall({
    description: 'The image to label now (where the session left off) and the following one to prefetch.',
    input: z.strictObject({ sessionId }),
    output: sessionNextSchema,
  }),
  sessionRecord: defineCall({
    description:
      'Stores the annotator’s labels for the current image (each kind given replaces theirs) and moves on; refused when the annotator would hold no label on the image (skip instead).',
    input: z.strictObject({ sessionId, imageId, labels: z.array(kindLabelsSchema).max(20), secondsSpent: z.number().min(0).max(86_400).optional() }),
    output: sessionNextSchema,
  }),
  sessionSkip: defineCall({
    description: 'Skips the current image (it stays in the queue).',
    input: z.strictObject({ sessionId, imageId: imageId.optional(), secondsSpent: z.number().min(0).max(86_400).optional() }),
    output: sessionNextSchema,
  }),
  sessionPrevious: defineCall({
    description: 'Goes back one image to review or correct it.',
    input: z.strictObject({ sessionId }),
    output: sessionNextSchema,
  }),
  sessionPause: defineCall({
    description: 'Pauses a session; it resumes at the same image.',
    input: z.strictObject({ sessionId }),
    output: sessionSummarySchema,
  }),
  exportStart: defineCall({
    description: 'Exports images.csv, labels_long.csv, embeddings (npz/npy), image copies without EXIF/GPS and manifest.json to a folder.',
    startsJob: 'export',
    input: z.strictObject({
      folder: z.string().min(1).max(4096),
      formats: z
        .array(z.enum(['csv', 'npz', 'npy']))
        .min(1)
        .max(3)
        .optional(),
      modelId: z.string().min(1).optional(),
      images: z.boolean().optional(),
      overwrite: z.boolean().optional(),
      /** Pseudonymous keys, no paths or names (see docs/datasets-and-export.md, "Export"). */
      deidentify: z.boolean().optional(),
      /** Metadata keys to leave out of images.csv. */
      dropMetadata: z.array(z.string().min(1)).max(1000).optional(),
      filter: z
        .strictObject({
          batchId: z.int().positive().optional(),
          flags: z.array(z.string().min(1)).optional(),
          withoutFlags: z.array(z.string().min(1)).optional(),
          metadata: z.record(z.string().min(1), z.string()).optional(),
          labels: z.array(z.strictObject({ kind: z.string().min(1), value: z.string().min(1) })).optional(),
          ids: z.array(imageId).optional(),
          fitzpatrick: z.enum(['I', 'II', 'III', 'IV', 'V', 'VI']).optional(),
          sessionId: z.int().positive().optional(),
        })
        .optional(),
    }),
    output: jobStartedSchema,
  }),
  modelsList: defineCall({
    description: 'The encoders this library can use (bundled default, bundled manifests, models added to the library), with how many images each has embedded.',
    input: emptyInput,
    output: z.object({
      models: z.array(modelSummarySchema),
      /** Every model holding embeddings in this library, encoders and imported embeddings alike, with its image count. */
      stored: z.array(z.object({ id: z.string(), displayName: z.string(), source: z.string(), dim: z.int(), sha256: z.string(), images: z.int() })),
      problems: z.array(z.object({ file: z.string(), message: z.string() })),
      defaultModelId: z.string().nullable(),
    }),
  }),
  modelsCheck: defineCall({
    description: 'Loads a model, runs it on generated images and reports the execution provider actually running it (and why not a faster one).',
    input: z.strictObject({ modelId: z.string().min(1) }),
    output: modelCheckSchema,
  }),
  embedStart: defineCall({
    description: 'Embeds every image that has no embedding from the model yet (resumable; progress, cancel).',
    startsJob: 'embed',
    input: z.strictObject({ modelId: z.string().min(1).optional(), batchSize: z.int().min(1).max(1024).optional() }),
    output: jobStartedSchema,
  }),
  searchSimilar: defineCall({
    description:
      'Similar cases for a library image or an uploaded outside photo (embedded on the fly, not imported), with filters; cosine similarity on the full embeddings.',
    input: z.union([
      z.strictObject({ imageId, excludeSelf: z.boolean().optional(), ...searchOptions }),
      z.strictObject({ uploadId: uploadIdSchema, ...searchOptions }),
      z.strictObject({ path: z.string().min(1).max(4096), ...searchOptions }),
    ]),
    output: z.object({
      modelId: z.string(),
      /** The filter clauses applied, as given. */
      where: z.array(z.string()),
      eligible: z.int(),
      /** How complete the list is: exact, or the index's measured recall (and whether it met its target). */
      completeness: z.object({
        method: z.enum(['exact', 'index']),
        recall: z.number().nullable(),
        probes: z.int().nullable(),
        target: z.number().nullable(),
        met: z.boolean().nullable(),
        summary: z.string(),
      }),
      results: z.array(imageCardSchema.extend({ rank: z.int(), similarity: z.number() })),
    }),
  }),
  duplicatesFind: defineCall({
    description:
      'Near-duplicate groups, most similar first: cliques of images every two of which are at or above the threshold (never transitive chains), and exact pixel duplicates, each with a suggested image to keep.',
    input: z.strictObject({ threshold: z.number().min(0.5).max(1).optional(), modelId: z.string().min(1).optional() }),
    output: z.object({
      modelId: z.string().nullable(),
      threshold: z.number(),
      groups: z.array(
        z.object({
          imageIds: z.array(z.int()),
          keep: z.int(),
          exact: z.boolean(),
          maxSimilarity: z.number(),
          minSimilarity: z.number(),
          pairs: z.array(z.object({ a: z.int(), b: z.int(), similarity: z.number().nullable(), exact: z.boolean() })),
          images: z.array(imageCardSchema),
        }),
      ),
    }),
  }),
  duplicatesResolve: defineCall({
    description: 'Keeps one image of a duplicate group and flags the others as duplicates (or marks them deleted); returns the images it changed, for undo.',
    input: z.strictObject({ keep: imageId, others: z.array(imageId).min(1).max(1000), action: z.enum(['flag', 'delete']) }),
    output: z.object({ changed: z.int(), changedImages: z.array(z.int()) }),
  }),
  duplicatesUndo: defineCall({
    description: 'Takes duplicate decisions back: removes the manual duplicate flag of these images (flag) or restores images marked deleted (delete).',
    input: z.strictObject({ images: z.array(imageId).min(1).max(1000), action: z.enum(['flag', 'delete']) }),
    output: z.object({ changed: z.int(), changedImages: z.array(z.int()) }),
  }),
  demoStart: defineCall({
    description:
      'Fills an empty library with the demo data (a generated SCIN-shaped dataset on all six Fitzpatrick types, two readers, broken and duplicate files), imports and embeds it; run again to resume after a cancel.',
    startsJob: 'demo',
    input: emptyInput,
    output: jobStartedSchema,
  }),
  agreementReport: defineCall({
    description:
      "Inter-annotator agreement per label kind (Cohen's κ per pair, Fleiss' κ for three or more, with counts) and the images the annotators disagree on.",
    input: z.strictObject({ kind: labelKindSchema.exclude(['note']).optional(), includeAdjudicated: z.boolean().optional() }),
    output: z.object({
      kinds: z.array(
        z.object({
          kind: z.string(),
          annotators: z.array(z.string()),
          pairs: z.array(pairAgreementSchema),
          group: groupAgreementSchema.nullable(),
          /** Multi-valued kinds only: presence/absence agreement per value (binary κ). */
          perValue: z.array(valueAgreementSchema).optional(),
        }),
      ),
      disagreements: z.array(
        z.object({
          imageId: z.int(),
          kind: z.string(),
          ratings: z.array(z.object({ annotator: z.string(), values: z.array(z.string()) })),
          consensus: z.array(z.string()).nullable(),
        }),
      ),
    }),
  }),
  adjudicate: defineCall({
    description:
      'Stores the consensus (adjudicated) values of one image and label kind, replacing an earlier consensus; the same core service as `dermws adjudicate`.',
    input: z.strictObject({
      imageId,
      kind: labelKindSchema.exclude(['note']),
      values: z.array(z.string().min(1).max(200)).min(1).max(20),
      annotator: annotatorSchema,
    }),
    output: z.object({ changed: z.int(), values: z.array(z.string()) }),
  }),
  probeTrainStart: defineCall({
    description:
      'Trains a linear probe with case-grouped cross-validation, bootstrap intervals, skin-tone subgroups and a data-efficiency curve; predictions are stored as suggestions.',
    startsJob: 'probe-train',
    input: z.strictObject({
      modelId: z.string().min(1).optional(),
      labelKind: z.enum(['condition', 'quality']).optional(),
      labels: z.array(z.string().min(1)).min(1).max(50).optional(),
      top: z.int().min(1).max(50).optional(),
      folds: z.int().min(2).max(20).optional(),
      seed: z.int().min(0).optional(),
      /** Relative stopping rule of the solver (largest gradient component ≤ tolerance × at the start). */
      tolerance: z.number().gt(0).lt(1).optional(),
      repeats: z.int().min(1).max(50).optional(),
      minClassCases: z.int().min(1).max(100_000).optional(),
    }),
    output: jobStartedSchema,
  }),
  probeLabelChoices: defineCall({
    description: 'The labels a probe could learn, most positive cases first, with positive and negative case counts among the embedded images.',
    input: z.strictObject({ labelKind: z.enum(['condition', 'quality']).optional(), modelId: z.string().min(1).optional() }),
    output: z.object({ modelId: z.string(), labels: z.array(z.object({ label: z.string(), positiveCases: z.int(), negativeCases: z.int() })) }),
  }),
  probePredictionsDownload: defineCall({
    description: "A run's out-of-fold predictions as CSV text with its manifest (run, model sha256, seed, folds, tolerance, app version), for a download.",
    input: z.strictObject({ runId: z.int().positive() }),
    output: z.object({ fileName: z.string(), csv: z.string(), manifest: z.unknown() }),
  }),
  probeWorstPredictions: defineCall({
    description: "The images a run's out-of-fold predictions get most wrong for one label (positives scored lowest, negatives highest), worst first.",
    input: z.strictObject({ runId: z.int().positive(), label: z.string().min(1).max(500), limit: z.int().min(1).max(200).optional() }),
    output: z.object({
      images: z.array(
        z.object({
          imageId: z.int(),
          groupKey: z.string(),
          fold: z.int(),
          truth: z.union([z.literal(0), z.literal(1)]),
          probability: z.number(),
          error: z.number(),
        }),
      ),
    }),
  }),
  probeList: defineCall({
    description: 'Every stored probe run with its headline macro AUC.',
    input: emptyInput,
    output: z.object({ runs: z.array(probeRunSummarySchema) }),
  }),
  probeReport: defineCall({
    description: 'The evaluation of one probe run: per-label AUC with 95% intervals, calibration, subgroup tables and the data-efficiency curve.',
    input: z.strictObject({ runId: z.int().positive() }),
    output: probeReportSchema,
  }),
  mapPoints: defineCall({
    description:
      "Up to `limit` images (an even sample of larger libraries) reduced to at most 50 principal coordinates of their unit embeddings (from the index's projected vectors when the model has an index), with a colour group per image, for the UMAP map drawn in the renderer. mapStart does the same as a job with progress.",
    input: mapRequestSchema,
    output: mapLayoutSchema,
  }),
  mapStart: defineCall({
    description: "Computes the map's points (as mapPoints) as a job with progress and cancel; its result names the layout for mapResult.",
    startsJob: 'map',
    input: mapRequestSchema,
    output: jobStartedSchema,
  }),
  mapResult: defineCall({
    description: 'The points of a map a mapStart job computed (the last few are kept in this run of the app).',
    input: z.strictObject({ mapId: z.string().regex(/^map-[0-9]+$/, 'must be a map id such as "map-1" from a finished mapStart job') }),
    output: mapLayoutSchema,
  }),
  mapGroups: defineCall({
    description: 'The colour group of each given image for the map (recolouring without recomputing the layout).',
    input: z.strictObject({ imageIds: z.array(imageId).max(20_000), colourBy: mapColouringSchema }),
    output: z.object({ groups: z.array(z.string()) }),
  }),
  probePredictions: defineCall({
    description: 'The latest probe predictions for one image (per label kind), shown beside the labels as suggestions.',
    input: z.strictObject({ imageId }),
    output: z.object({
      predictions: z.array(z.object({ runId: z.int(), modelId: z.string(), labelKind: z.string(), probabilities: z.record(z.string(), z.number()) })),
    }),
  }),
  modelsAdd: defineCall({
    description: 'Adds an ONNX encoder and its manifest to the library after checking it (file hash, graph against manifest, a test run).',
    input: z.strictObject({ onnxPath: z.string().min(1).max(4096), manifestPath: z.string().min(1).max(4096) }),
    output: modelCheckSchema,
  }),
  clusterImportStart: defineCall({
    description:
      'Merges the shards of a cluster embedding run (the output folder of `dermws embed shard`, holding plan.json) into the library: each shard checked against the plan and the library, missing and refused shards and per-image failures reported (progress, cancel; a rerun adds only new shards).',
    startsJob: 'cluster-import',
    input: z.strictObject({ folder: z.string().min(1).max(4096) }),
    output: jobStartedSchema,
  }),
};

export type Contract = typeof contract;
export type CallName = keyof Contract;
export type CallInput<Name extends CallName> = z.input<Contract[Name]['input']>;
export type CallParsedInput<Name extends CallName> = z.output<Contract[Name]['input']>;
export type CallOutput<Name extends CallName> = z.output<Contract[Name]['output']>;

export const callNames = Object.keys(contract) as CallName[];

export function isCallName(name: string): name is CallName {
  return Object.prototype.hasOwnProperty.call(contract, name);
}

/** The job kind a call starts, or undefined for quick calls. */
export function jobKindOf(name: CallName): string | undefined {
  return (contract[name] as { startsJob?: string }).startsJob;
}

export type Client = { [Name in CallName]: (input: CallInput<Name>) => Promise<CallOutput<Name>> } & {
  onJobProgress(listener: (event: Extract<AppEvent, { type: 'job-progress' }>) => void): () => void;
  onJobFinished(listener: (job: JobInfo) => void): () => void;
  onLibraryChanged(listener: (what: string) => void): () => void;
};

/**
 * The typed client over any transport. Input is validated here too, so a mistake in the renderer
 * shows the same precise message before anything crosses the process boundary.
 */
export function createClient(transport: ContractTransport): Client {
  const client: Record<string, unknown> = {};
  for (const name of callNames) {
    client[name] = async (input: unknown) => {
      const parsed = parseInput(name, contract[name].input, input);
      return transport.invoke(name, parsed);
    };
  }
  const on = <Type extends AppEvent['type']>(type: Type, deliver: (event: Extract<AppEvent, { type: Type }>) => void) =>
    transport.subscribe((raw) => {
      const parsed = appEventSchema.safeParse(raw);
      if (parsed.success && parsed.data.type === type) deliver(parsed.data as Extract<AppEvent, { type: Type }>);
    });
  client.onJobProgress = (listener: (event: Extract<AppEvent, { type: 'job-progress' }>) => void) => on('job-progress', listener);
  client.onJobFinished = (listener: (job: JobInfo) => void) => on('job-finished', (event) => listener(event.job));
  client.onLibraryChanged = (listener: (what: string) => void) => on('library-changed', (event) => listener(event.what));
  return client as Client;
}

/** Reads the `{ output }` / `{ error }` envelope every transport uses on the wire. */
export function unwrapEnvelope(callName: string, envelope: unknown): unknown {
  if (envelope && typeof envelope === 'object') {
    if ('error' in envelope) {
      const parsed = serializedErrorSchema.safeParse((envelope as { error: unknown }).error);
      if (parsed.success) throw errorFromSerialized(parsed.data);
    }
    if ('output' in envelope) return (envelope as { output: unknown }).output;
  }
  throw new DermError('internal', `The answer to ${callName} was not understood.`);
}

export type Envelope = { output: unknown } | { error: z.infer<typeof serializedErrorSchema> };
