import { z } from 'zod';
import { defineCall } from '../contract-core.js';
import { imageId, labelKindSchema, annotatorSchema } from './shared.js';

/** Inter-annotator agreement and adjudication. */

/** Agreement of two annotators on the images both labelled with one kind. */
export const pairAgreementSchema = z.object({
  annotatorA: z.string(),
  annotatorB: z.string(),
  items: z.int(),
  percentAgreement: z.number().nullable(),
  kappa: z.number().nullable(),
  expectedAgreement: z.number().nullable(),
});

/**
 * Agreement of three or more annotators on the images all of them labelled: unanimous is the share
 * of those images on which all agree, meanPairAgreement Fleiss' P̄, kappa Fleiss' κ.
 */
export const groupAgreementSchema = z.object({
  annotators: z.array(z.string()),
  items: z.int(),
  unanimous: z.number().nullable(),
  meanPairAgreement: z.number().nullable(),
  kappa: z.number().nullable(),
});

/** Agreement on one value of a multi-valued kind, as presence or absence (binary κ). */
export const valueAgreementSchema = z.object({ value: z.string(), pairs: z.array(pairAgreementSchema), group: groupAgreementSchema.nullable() });

export const agreementCalls = {
  agreementReport: defineCall({
    description:
      "Inter-annotator agreement per label kind (Cohen's κ per pair, Fleiss' κ for three or more, with counts) and the images the annotators disagree on.",
    input: z.strictObject({ kind: labelKindSchema.exclude(['note']).optional(), includeAdjudicated: z.boolean().optional() }),
    output: z.object({
      kinds: z.array(
        z.object({
          kind: z.string(),
          annotators: z.array(z.string()),
          pairs: z.array(pairAgreementSchema),
          group: groupAgreementSchema.nullable(),
          /** Multi-valued kinds only: presence/absence agreement per value (binary κ). */
          perValue: z.array(valueAgreementSchema).optional(),
        }),
      ),
      disagreements: z.array(
        z.object({
          imageId: z.int(),
          kind: z.string(),
          ratings: z.array(z.object({ annotator: z.string(), values: z.array(z.string()) })),
          consensus: z.array(z.string()).nullable(),
        }),
      ),
    }),
  }),
  adjudicate: defineCall({
    description:
      'Stores the consensus (adjudicated) values of one image and label kind, replacing an earlier consensus; the same core service as `dermws adjudicate`.',
    input: z.strictObject({
      imageId,
      kind: labelKindSchema.exclude(['note']),
      values: z.array(z.string().min(1).max(200)).min(1).max(20),
      annotator: annotatorSchema,
    }),
    output: z.object({ changed: z.int(), values: z.array(z.string()) }),
  }),
};
