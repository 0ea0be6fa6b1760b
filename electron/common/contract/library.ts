import { z } from 'zod';
import { defineCall } from '../contract-core.js';
import { jobStartedSchema, importBatchStatusSchema, emptyInput } from './shared.js';

/** The open library: app info, its overview, settings and the library check. */

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

export const libraryCalls = {
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
};
