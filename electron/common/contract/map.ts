import { z } from 'zod';
import { defineCall } from '../contract-core.js';
import { imageId, jobStartedSchema } from './shared.js';

/** The map of the library: principal coordinates of the embeddings and a colour group per image. */

const mapColouringSchema = z.enum(['condition', 'flag', 'fitzpatrick', 'monk_tone', 'batch']);

const mapRequestSchema = z.strictObject({
  modelId: z.string().min(1).optional(),
  limit: z.int().min(10).max(20_000).optional(),
  colourBy: mapColouringSchema,
});

const mapLayoutSchema = z.object({
  modelId: z.string(),
  total: z.int(),
  dims: z.int(),
  imageIds: z.array(z.int()),
  /** imageIds.length × dims, row-major principal coordinates, the most spread first. */
  coordinates: z.array(z.number()),
  groups: z.array(z.string()),
  /** index: the index's stored (projected) vectors; embeddings: read from the library because the model has no usable index. */
  source: z.enum(['index', 'embeddings']),
  note: z.string(),
});

export const mapCalls = {
  mapPoints: defineCall({
    description:
      "Up to `limit` images (an even sample of larger libraries) reduced to at most 50 principal coordinates of their unit embeddings (from the index's projected vectors when the model has an index), with a colour group per image, for the UMAP map drawn in the renderer. mapStart does the same as a job with progress.",
    input: mapRequestSchema,
    output: mapLayoutSchema,
  }),
  mapStart: defineCall({
    description: "Computes the map's points (as mapPoints) as a job with progress and cancel; its result names the layout for mapResult.",
    startsJob: 'map',
    input: mapRequestSchema,
    output: jobStartedSchema,
  }),
  mapResult: defineCall({
    description: 'The points of a map a mapStart job computed (the last few are kept in this run of the app).',
    input: z.strictObject({ mapId: z.string().regex(/^map-[0-9]+$/, 'must be a map id such as "map-1" from a finished mapStart job') }),
    output: mapLayoutSchema,
  }),
  mapGroups: defineCall({
    description: 'The colour group of each given image for the map (recolouring without recomputing the layout).',
    input: z.strictObject({ imageIds: z.array(imageId).max(20_000), colourBy: mapColouringSchema }),
    output: z.object({ groups: z.array(z.string()) }),
  }),
};
