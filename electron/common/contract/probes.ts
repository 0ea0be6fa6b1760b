import { z } from 'zod';
import { defineCall } from '../contract-core.js';
import { imageId, jobStartedSchema, emptyInput } from './shared.js';

/** Linear probes: training, the stored runs and their metrics, predictions. */

/** An AUC is a number with its case-bootstrap interval or an explicit "too small" with the reason, never a number from a group that cannot support one. */
export const aucSchema = z.union([
  z.object({ status: z.literal('measured'), value: z.number(), ci95: z.tuple([z.number(), z.number()]), bootstrapReplicates: z.int().optional() }),
  z.object({ status: z.literal('too-small'), reason: z.string() }),
]);

/** One bin of a reliability diagram: predicted probabilities in [lower, lower + 0.1). */
export const reliabilityBinSchema = z.object({ lower: z.number(), count: z.int(), meanPredicted: z.number().nullable(), observedRate: z.number().nullable() });

/** A ROC curve as stored in a run's metrics: columns of equal length; threshold is null at the (0, 0) start; exactPoints counts the vertices before downsampling. */
export const storedRocCurveSchema = z.object({
  fpr: z.array(z.number()),
  tpr: z.array(z.number()),
  threshold: z.array(z.number().nullable()),
  exactPoints: z.int(),
});

export const labelMetricsSchema = z.object({
  label: z.string(),
  images: z.int(),
  positives: z.int(),
  negatives: z.int(),
  positiveCases: z.int(),
  /** Absent in runs stored before the per-label case floor. */
  negativeCases: z.int().optional(),
  auc: aucSchema,
  accuracy: z.number(),
  brier: z.number(),
  ece: z.number(),
  reliability: z.array(reliabilityBinSchema).optional(),
  /** Pooled out-of-fold ROC curve (≤200 vertices from (0, 0) to (1, 1)); overall table only; absent in older runs. */
  roc: storedRocCurveSchema.optional(),
});

export const groupMetricsSchema = z.object({
  images: z.int(),
  cases: z.int(),
  macroAuc: z.number().nullable(),
  hammingLoss: z.number(),
  subsetAccuracy: z.number(),
  perLabel: z.array(labelMetricsSchema),
});

/** One value of a subgroup attribute (e.g. Fitzpatrick III): its metrics, or why the group is too small to measure. */
export const subgroupResultSchema = z.union([
  z.object({ value: z.string(), images: z.int(), cases: z.int(), status: z.literal('measured'), metrics: groupMetricsSchema }),
  z.object({ value: z.string(), images: z.int(), cases: z.int(), status: z.literal('too-small'), reason: z.string() }),
]);

export const probeRunStatusSchema = z.enum(['running', 'completed', 'cancelled', 'failed']);

export const probeLabelKindSchema = z.enum(['condition', 'quality']);

export const probeRunSummarySchema = z.object({
  id: z.int(),
  createdAt: z.string(),
  finishedAt: z.string().nullable(),
  status: probeRunStatusSchema,
  modelId: z.string(),
  labelKind: probeLabelKindSchema,
  labels: z.array(z.string()),
  seed: z.int(),
  folds: z.int(),
  images: z.int(),
  cases: z.int(),
  macroAuc: z.number().nullable(),
});

export const probeReportSchema = z.object({
  id: z.int(),
  status: z.string(),
  modelId: z.string(),
  labelKind: z.string(),
  labels: z.array(z.string()),
  seed: z.int(),
  folds: z.int(),
  appVersion: z.string(),
  error: z.string().nullable(),
  predictionCount: z.int(),
  metrics: z
    .object({
      overall: groupMetricsSchema,
      subgroups: z.array(
        z.object({
          attribute: z.string(),
          source: z.string(),
          notRecorded: z.object({ images: z.int(), cases: z.int() }),
          groups: z.array(subgroupResultSchema),
        }),
      ),
      curve: z.array(
        z.object({
          fraction: z.number(),
          trainingCases: z.number(),
          seeds: z.int(),
          macroAuc: z.object({ mean: z.number().nullable(), sd: z.number().nullable() }),
        }),
      ),
      /** Each label's AUC under every fold seed of a repeated CV; absent in runs stored before repeats were kept. */
      repeats: z
        .object({
          count: z.int(),
          seeds: z.array(z.int()),
          perLabel: z.array(z.object({ label: z.string(), values: z.array(z.number().nullable()), mean: z.number().nullable(), sd: z.number().nullable() })),
          macroAuc: z.object({ values: z.array(z.number().nullable()), mean: z.number().nullable(), sd: z.number().nullable() }),
        })
        .optional(),
      solver: z.object({
        tolerance: z.number().optional(),
        passes: z.int(),
        perLabel: z
          .array(
            z.object({
              label: z.string(),
              iterations: z.array(z.int()),
              outcomes: z.array(z.string()),
              worstRelativeGradient: z.number(),
              atPrecisionFloor: z.int(),
              converged: z.boolean(),
            }),
          )
          .optional(),
      }),
    })
    .nullable(),
  /** The whole stored run (manifest, every metric) for the "export report" download. */
  raw: z.unknown(),
});

export type ProbeReportView = z.infer<typeof probeReportSchema>;

export const probesCalls = {
  probeTrainStart: defineCall({
    description:
      'Trains a linear probe with case-grouped cross-validation, bootstrap intervals, skin-tone subgroups and a data-efficiency curve; predictions are stored as suggestions.',
    startsJob: 'probe-train',
    input: z.strictObject({
      modelId: z.string().min(1).optional(),
      labelKind: z.enum(['condition', 'quality']).optional(),
      labels: z.array(z.string().min(1)).min(1).max(50).optional(),
      top: z.int().min(1).max(50).optional(),
      folds: z.int().min(2).max(20).optional(),
      seed: z.int().min(0).optional(),
      /** Relative stopping rule of the solver (largest gradient component ≤ tolerance × at the start). */
      tolerance: z.number().gt(0).lt(1).optional(),
      repeats: z.int().min(1).max(50).optional(),
      minClassCases: z.int().min(1).max(100_000).optional(),
    }),
    output: jobStartedSchema,
  }),
  probeLabelChoices: defineCall({
    description: 'The labels a probe could learn, most positive cases first, with positive and negative case counts among the embedded images.',
    input: z.strictObject({ labelKind: z.enum(['condition', 'quality']).optional(), modelId: z.string().min(1).optional() }),
    output: z.object({ modelId: z.string(), labels: z.array(z.object({ label: z.string(), positiveCases: z.int(), negativeCases: z.int() })) }),
  }),
  probePredictionsDownload: defineCall({
    description: "A run's out-of-fold predictions as CSV text with its manifest (run, model sha256, seed, folds, tolerance, app version), for a download.",
    input: z.strictObject({ runId: z.int().positive() }),
    output: z.object({ fileName: z.string(), csv: z.string(), manifest: z.unknown() }),
  }),
  probeWorstPredictions: defineCall({
    description: "The images a run's out-of-fold predictions get most wrong for one label (positives scored lowest, negatives highest), worst first.",
    input: z.strictObject({ runId: z.int().positive(), label: z.string().min(1).max(500), limit: z.int().min(1).max(200).optional() }),
    output: z.object({
      images: z.array(
        z.object({
          imageId: z.int(),
          groupKey: z.string(),
          fold: z.int(),
          truth: z.union([z.literal(0), z.literal(1)]),
          probability: z.number(),
          error: z.number(),
        }),
      ),
    }),
  }),
  probeList: defineCall({
    description: 'Every stored probe run with its headline macro AUC.',
    input: emptyInput,
    output: z.object({ runs: z.array(probeRunSummarySchema) }),
  }),
  probeReport: defineCall({
    description: 'The evaluation of one probe run: per-label AUC with 95% intervals, calibration, subgroup tables and the data-efficiency curve.',
    input: z.strictObject({ runId: z.int().positive() }),
    output: probeReportSchema,
  }),
  probePredictions: defineCall({
    description: 'The latest probe predictions for one image (per label kind), shown beside the labels as suggestions.',
    input: z.strictObject({ imageId }),
    output: z.object({
      predictions: z.array(z.object({ runId: z.int(), modelId: z.string(), labelKind: z.string(), probabilities: z.record(z.string(), z.number()) })),
    }),
  }),
};
