import { z } from 'zod';
import { defineCall } from '../contract-core.js';
import { uploadIdSchema, jobStartedSchema, importOutcomeSchema } from './shared.js';

/** Importing image files and folders, or files uploaded from the browser. */

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

export const importCalls = {
  importStart: defineCall({
    description: 'Imports files and folders given as paths on this machine, or files uploaded from the browser (always copied into the library).',
    startsJob: 'import',
    input: z.union([
      z.strictObject({ paths: z.array(z.string().min(1)).min(1).max(10_000), copyIntoLibrary: z.boolean().optional() }),
      z.strictObject({ uploadId: uploadIdSchema }),
    ]),
    output: jobStartedSchema,
  }),
};
