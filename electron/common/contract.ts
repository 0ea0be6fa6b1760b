import { z } from 'zod';
import { errorFromSerialized, parseInput, serializedErrorSchema, type ContractTransport } from './contract-core.js';
import { DermError } from './errors.js';
import { agreementCalls } from './contract/agreement.js';
import { clusterCalls } from './contract/cluster.js';
import { demoCalls } from './contract/demo.js';
import { exportModelsCalls } from './contract/export-models.js';
import { imagesCalls } from './contract/images.js';
import { importCalls } from './contract/import.js';
import { appEventSchema, jobsCalls, type AppEvent, type JobInfo } from './contract/jobs.js';
import { labellingCalls } from './contract/labelling.js';
import { libraryCalls } from './contract/library.js';
import { mapCalls } from './contract/map.js';
import { probesCalls } from './contract/probes.js';
import { qualityCalls } from './contract/quality.js';
import { searchCalls } from './contract/search.js';

/**
 * The app contract: every call the renderer may make, with its input and output schema, plus the
 * events it receives. Electron main registers IPC handlers from this table, the web bridge exposes it
 * as POST /api/<call>, the core's handler registry implements it, and `createClient` derives the typed
 * client the renderer uses. Inputs are strict objects, so a misspelt field is refused by name.
 *
 * Each feature declares its calls and schemas in `contract/<feature>.ts`, named as its handlers in
 * electron/core/app-api/handlers/<feature>.handlers.ts; schemas several features use are in
 * `contract/shared.ts`. This module assembles the one call table and is the only import path.
 */

export {
  uploadIdSchema,
  jobStartedSchema,
  jobResultStatusSchema,
  importOutcomeSchema,
  importBatchStatusSchema,
  labelKindSchema,
  imageCardSchema,
} from './contract/shared.js';
export { jobStateSchema, jobProgressSchema, jobInfoSchema, appEventSchema, type JobInfo, type AppEvent } from './contract/jobs.js';
export { libraryCheckStageSchema, libraryCheckReportSchema, type LibraryCheckReport } from './contract/library.js';
export { imageFilterSchema, type ImageFilter } from './contract/images.js';
export { importReportSchema, type ImportReport } from './contract/import.js';
export {
  labelSchema,
  taxonomyEntrySchema,
  sessionSummarySchema,
  sessionNextSchema,
  type SessionNext,
  labelSlotChangeSchema,
  labelAuditEntrySchema,
  labelSuggestionSchema,
} from './contract/labelling.js';
export { exportReportSchema, type ExportReport, embedReportSchema, type EmbedReport, modelSummarySchema, modelCheckSchema } from './contract/export-models.js';
export { datasetIssueSchema, datasetImportReportSchema, demoReportSchema } from './contract/demo.js';
export { clusterImportReportSchema, type ClusterImportReport } from './contract/cluster.js';
export { pairAgreementSchema, groupAgreementSchema, valueAgreementSchema } from './contract/agreement.js';
export {
  aucSchema,
  reliabilityBinSchema,
  storedRocCurveSchema,
  labelMetricsSchema,
  groupMetricsSchema,
  subgroupResultSchema,
  probeRunStatusSchema,
  probeLabelKindSchema,
  probeRunSummarySchema,
  probeReportSchema,
  type ProbeReportView,
} from './contract/probes.js';

/** Every call, feature by feature in the order of the handler files' features. A name declared twice is refused by test/unit/contract.test.ts. */
export const contract = {
  ...libraryCalls,
  ...jobsCalls,
  ...imagesCalls,
  ...importCalls,
  ...qualityCalls,
  ...labellingCalls,
  ...exportModelsCalls,
  ...searchCalls,
  ...demoCalls,
  ...agreementCalls,
  ...probesCalls,
  ...mapCalls,
  ...clusterCalls,
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
