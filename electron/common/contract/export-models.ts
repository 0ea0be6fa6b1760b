import { z } from 'zod';
import { defineCall } from '../contract-core.js';
import { imageId, jobStartedSchema, jobResultStatusSchema, emptyInput } from './shared.js';

/** Exporting a dataset, the encoders (list, check, add) and embedding the library with one. */

export const exportReportSchema = z.object({
  status: z.enum(['success', 'partial', 'cancelled', 'failed']),
  folder: z.string(),
  files: z.array(z.object({ name: z.string(), bytes: z.int(), sha256: z.string(), entries: z.int() })),
  counts: z.object({ images: z.int(), cases: z.int(), labels: z.int(), embeddings: z.int(), imageFiles: z.int() }),
  model: z.object({ id: z.string(), sha256: z.string(), dim: z.int() }).nullable(),
  issues: z.array(z.object({ imageId: z.int().nullable(), message: z.string() })),
});

export type ExportReport = z.infer<typeof exportReportSchema>;

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

export const exportModelsCalls = {
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
  modelsAdd: defineCall({
    description: 'Adds an ONNX encoder and its manifest to the library after checking it (file hash, graph against manifest, a test run).',
    input: z.strictObject({ onnxPath: z.string().min(1).max(4096), manifestPath: z.string().min(1).max(4096) }),
    output: modelCheckSchema,
  }),
  embedStart: defineCall({
    description: 'Embeds every image that has no embedding from the model yet (resumable; progress, cancel).',
    startsJob: 'embed',
    input: z.strictObject({ modelId: z.string().min(1).optional(), batchSize: z.int().min(1).max(1024).optional() }),
    output: jobStartedSchema,
  }),
};
