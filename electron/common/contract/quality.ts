import { z } from 'zod';
import { defineCall } from '../contract-core.js';
import { imageId, emptyInput } from './shared.js';

/** Quality metrics, flags and their thresholds. */

export const qualityCalls = {
  qualityOverview: defineCall({
    description: 'Histograms of each quality metric with its flag threshold, counts per flag and the current thresholds.',
    input: emptyInput,
    output: z.object({
      images: z.int(),
      flaggedImages: z.int(),
      flagCounts: z.record(z.string(), z.int()),
      thresholds: z.record(z.string(), z.number()),
      /** The thresholds a new library starts with (the "reset" of the Quality screen). */
      defaults: z.record(z.string(), z.number()),
      histograms: z.array(
        z.object({
          metric: z.string(),
          label: z.string(),
          explanation: z.string(),
          flag: z.string(),
          threshold: z.object({ name: z.string(), value: z.number(), direction: z.enum(['below', 'above']) }),
          min: z.number(),
          max: z.number(),
          bins: z.array(z.int()),
        }),
      ),
    }),
  }),
  qualityFlagged: defineCall({
    description: 'Images carrying a flag, worst first by the metric behind it (with its value), and the images a person marked "not an issue" for it.',
    input: z.strictObject({ flag: z.string().min(1).max(40), limit: z.int().min(1).max(1000).optional() }),
    output: z.object({
      flag: z.string(),
      metric: z.string().nullable(),
      total: z.int(),
      images: z.array(z.object({ imageId: z.int(), value: z.number().nullable(), source: z.string(), detail: z.string().nullable() })),
      notAnIssue: z.array(z.object({ imageId: z.int(), value: z.number().nullable(), setAt: z.string() })),
    }),
  }),
  qualityNotAnIssue: defineCall({
    description: 'Marks an automatic flag of one image "not an issue" (kept off through re-flagging, filters and exports), or withdraws that verdict.',
    input: z.strictObject({ imageId, flag: z.string().min(1).max(40), notAnIssue: z.boolean() }),
    output: z.object({ flags: z.array(z.string()) }),
  }),
  qualitySetThresholds: defineCall({
    description: 'Changes flag thresholds and re-flags the library from stored metrics (no decoding); `dermws qc --set` prints its output.',
    input: z.strictObject({ change: z.record(z.string().min(1), z.number()) }),
    output: z.object({
      thresholds: z.record(z.string(), z.number()),
      flagCounts: z.record(z.string(), z.int()),
      /** Each threshold given, with its value before and after. */
      changed: z.array(z.object({ name: z.string(), from: z.number(), to: z.number() })),
      images: z.int(),
      flaggedImages: z.int(),
    }),
  }),
};
