import { z } from 'zod';
import { defineCall } from '../contract-core.js';
import { jobStartedSchema, jobResultStatusSchema } from './shared.js';

/** Merging the shards of a cluster embedding run into the library. */

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

export const clusterCalls = {
  clusterImportStart: defineCall({
    description:
      'Merges the shards of a cluster embedding run (the output folder of `dermws embed shard`, holding plan.json) into the library: each shard checked against the plan and the library, missing and refused shards and per-image failures reported (progress, cancel; a rerun adds only new shards).',
    startsJob: 'cluster-import',
    input: z.strictObject({ folder: z.string().min(1).max(4096) }),
    output: jobStartedSchema,
  }),
};
