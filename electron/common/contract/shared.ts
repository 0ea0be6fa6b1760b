import { z } from 'zod';
// zod reads its jitless setting when the first schema is built: contract-core makes it first.
import '../contract-core.js';

/** Schemas that calls of several features use (ids, the job handle, the image card, label kinds): one copy each, imported by the feature modules. */

export const imageId = z.int().positive();

export const jobId = z.string().regex(/^job-[0-9]+$/, 'must be a job id such as "job-3"');

/** Upload ids name a folder the web bridge created for files sent from the browser. */
export const uploadIdSchema = z.string().regex(/^[a-f0-9]{32}$/, 'must be an upload id returned by the upload endpoint');

export const jobStartedSchema = z.object({ jobId });

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

export const labelKindSchema = z.enum(['condition', 'body_site', 'fitzpatrick', 'monk_tone', 'severity', 'gradable', 'quality_flag', 'note']);

export const annotatorSchema = z.string().trim().min(1, 'must name the annotator').max(100);

/** How a job ended, as its result reports it (a job result's `status`). */
export const jobResultStatusSchema = z.enum(['success', 'partial', 'cancelled', 'failed']);

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

export const emptyInput = z.strictObject({});
