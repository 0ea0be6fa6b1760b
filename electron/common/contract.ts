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
});
export type ImageFilter = z.infer<typeof imageFilterSchema>;

export const importOutcomeSchema = z.object({
  path: z.string(),
  outcome: z.enum(['imported', 'duplicate', 'failed', 'skipped']),
  reason: z.string().optional(),
  imageId: z.int().optional(),
});

export const importReportSchema = z.object({
  batchId: z.int(),
  status: z.enum(['success', 'partial', 'cancelled', 'failed']),
  total: z.int(),
  imported: z.int(),
  duplicates: z.int(),
  failed: z.int(),
  skipped: z.int(),
  outcomes: z.array(importOutcomeSchema),
});
export type ImportReport = z.infer<typeof importReportSchema>;

const emptyInput = z.strictObject({});

export const contract = {
  appInfo: defineCall({
    description: 'Version, where the app runs (electron or web) and the open library.',
    input: emptyInput,
    output: z.object({
      appVersion: z.string(),
      mode: z.enum(['electron', 'web']),
      libraryFolder: z.string(),
      schemaVersion: z.int(),
      /** Whether files can be given as paths on this machine (true in both modes: the server is local). */
      acceptsPaths: z.boolean(),
    }),
  }),
  libraryOverview: defineCall({
    description: 'Counts for the navigation and the library header: images, import batches, flags, embeddings per model.',
    input: emptyInput,
    output: z.object({
      images: z.int(),
      batches: z.array(z.object({ id: z.int(), startedAt: z.string(), status: z.string(), imported: z.int(), failed: z.int(), duplicates: z.int() })),
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
      labels: z.array(
        z.object({ kind: z.string(), value: z.string(), confidence: z.int().nullable(), annotator: z.string().nullable(), origin: z.string() }),
      ),
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
      status: z.string(),
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
  qualitySetThresholds: defineCall({
    description: 'Changes flag thresholds and re-flags the library from stored metrics (no decoding).',
    input: z.strictObject({ change: z.record(z.string().min(1), z.number()) }),
    output: z.object({ thresholds: z.record(z.string(), z.number()), flagCounts: z.record(z.string(), z.int()) }),
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
