import { z } from 'zod';
import { defineCall, serializedErrorSchema } from '../contract-core.js';
import { jobId, emptyInput } from './shared.js';

/** Jobs and app events: the progress and state of long work, and the events pushed to the renderer. */

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

/** Events pushed to the renderer (IPC channel or server-sent events). Names of listeners start with `on`. */
export const appEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('job-progress'), jobId, kind: z.string(), progress: jobProgressSchema }),
  z.object({ type: z.literal('job-finished'), job: jobInfoSchema }),
  z.object({ type: z.literal('library-changed'), what: z.string() }),
]);

export type AppEvent = z.infer<typeof appEventSchema>;

export const jobsCalls = {
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
};
