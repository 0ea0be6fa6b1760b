import { z } from 'zod';
import { defineCall } from '../contract-core.js';
import { imageId, uploadIdSchema, imageCardSchema } from './shared.js';

/** Similar-case search and near-duplicate review. */

const searchOptions = {
  modelId: z.string().min(1).optional(),
  k: z.int().min(1).max(1000).optional(),
  /** Filter clauses as in `dermws search --where`, e.g. "flag!=blurry", "label.condition=eczema", "meta.body_parts~ARM". */
  where: z.array(z.string().min(1).max(500)).max(20).optional(),
  excludeCase: z.boolean().optional(),
  /** Compare with every eligible embedding instead of searching the index: complete by construction, slower. */
  exact: z.boolean().optional(),
};

export const searchCalls = {
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
};
