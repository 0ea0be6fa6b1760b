import { z } from 'zod';
import { defineCall } from '../contract-core.js';
import { imageId, importOutcomeSchema, importBatchStatusSchema, imageCardSchema } from './shared.js';

/** Browsing the library: pages of image ids under a filter, facets, cards, details, hand flags, and the per-file report of an import batch. */

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

export const imagesCalls = {
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
};
