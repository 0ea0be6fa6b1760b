import { z } from 'zod';
import { defineCall } from '../contract-core.js';
import { imageId, labelKindSchema, annotatorSchema, emptyInput } from './shared.js';

/** Labels (the taxonomy, labelling one image or a selection, undo and the audit log, suggestions) and labelling sessions. */

const sessionId = z.int().positive();

export const labelSchema = z.object({
  kind: z.string(),
  value: z.string(),
  confidence: z.int().nullable(),
  annotator: z.string().nullable(),
  origin: z.string(),
});

export const taxonomyEntrySchema = z.object({
  kind: z.string(),
  code: z.string(),
  displayName: z.string(),
  parentCode: z.string().nullable(),
  hotkey: z.string().nullable(),
  sortOrder: z.number(),
  depth: z.int(),
  labelCount: z.int(),
});

export const sessionSummarySchema = z.object({
  id: z.int(),
  name: z.string(),
  annotator: z.string(),
  order: z.string(),
  /** Seed of the random and cluster orders: the same seed over the same images gives the same queue. */
  seed: z.int(),
  status: z.string(),
  /** 'blind': predictions and suggestions stay hidden until the annotator has chosen. */
  suggestions: z.enum(['shown', 'blind']),
  /** Labels meant for inter-annotator agreement. */
  agreement: z.boolean(),
  position: z.int(),
  total: z.int(),
  labelled: z.int(),
  skipped: z.int(),
  remaining: z.int(),
  secondsSpent: z.number(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

const sessionItemSchema = z.object({
  position: z.int(),
  imageId: z.int(),
  secondsSpent: z.number(),
  labelledAt: z.string().nullable(),
  skippedAt: z.string().nullable(),
  labels: z.array(labelSchema),
});

export const sessionNextSchema = z.object({
  session: sessionSummarySchema,
  current: sessionItemSchema.nullable(),
  following: sessionItemSchema.nullable(),
});

export type SessionNext = z.infer<typeof sessionNextSchema>;

const kindLabelsSchema = z.strictObject({
  kind: labelKindSchema,
  values: z.array(z.strictObject({ value: z.string().min(1).max(4000), confidence: z.int().min(1).max(5).nullable().optional() })).max(50),
});

/** One value of a label slot. */
const labelValueSchema = z.object({ value: z.string(), confidence: z.int().nullable() });

/**
 * What one label change did to one slot (an image's labels of one kind by one annotator and origin):
 * the values before and after. Changes are what undo takes back and what the audit log records.
 */
export const labelSlotChangeSchema = z.object({
  imageId: z.int(),
  kind: z.string(),
  origin: z.string(),
  annotator: z.string().nullable(),
  before: z.array(labelValueSchema),
  after: z.array(labelValueSchema),
});

/** One entry of the label audit log: a slot change with when, how and by whom it was made. */
export const labelAuditEntrySchema = labelSlotChangeSchema.extend({
  id: z.int(),
  at: z.string(),
  action: z.enum(['set', 'remove', 'record', 'import', 'adjudicate', 'undo', 'redo']),
  /** The undoable edit the change belongs to (null for imports); revertsEditId names the edit an undo or redo replays. */
  editId: z.int().nullable(),
  revertsEditId: z.int().nullable(),
  sessionId: z.int().nullable(),
});

/** The label changes a call made, with the image's labels after them. */
const labelChangeResultSchema = z.object({ labels: z.array(labelSchema), changes: z.array(labelSlotChangeSchema) });

const undoResultSchema = z.object({
  description: z.string().nullable(),
  canUndo: z.boolean(),
  canRedo: z.boolean(),
  /** The slot changes the undo or redo applied (empty when there was nothing to do). */
  changes: z.array(labelSlotChangeSchema),
});

/** One suggested value: score is Σ weight × share over the neighbours that carry it (a kind's scores sum to at most 1); neighbours counts them. */
export const labelSuggestionSchema = z.object({ value: z.string(), score: z.number(), neighbours: z.int() });

export const labellingCalls = {
  taxonomyList: defineCall({
    description: 'The label vocabulary (starter taxonomy plus imported entries), with hotkeys and how often each code is used.',
    input: z.strictObject({ kind: labelKindSchema.exclude(['note']).optional() }),
    output: z.object({ entries: z.array(taxonomyEntrySchema) }),
  }),
  labelsOfImage: defineCall({
    description: 'Current labels of one image (every annotator and origin, or one annotator).',
    input: z.strictObject({ imageId, annotator: annotatorSchema.optional() }),
    output: z.object({ labels: z.array(labelSchema) }),
  }),
  labelSet: defineCall({
    description: 'Gives an image a label as an annotator (single-valued kinds replace the previous value); recorded in the audit log.',
    input: z.strictObject({
      imageId,
      kind: labelKindSchema,
      value: z.string().min(1).max(4000),
      confidence: z.int().min(1).max(5).optional(),
      annotator: annotatorSchema,
      /** The labelling session the change belongs to (its undo and audit entries name it). */
      sessionId: sessionId.optional(),
    }),
    output: labelChangeResultSchema,
  }),
  labelImages: defineCall({
    description:
      'Gives every image of a selection the same label as an annotator, in one transaction and as one undoable edit; when any image id is not in the library nothing is stored and the error names it.',
    input: z.strictObject({
      imageIds: z.array(imageId).min(1).max(200_000),
      kind: labelKindSchema,
      value: z.string().min(1).max(4000),
      confidence: z.int().min(1).max(5).optional(),
      annotator: annotatorSchema,
    }),
    /** images: distinct images given; changed: how many did not already hold the value. */
    output: z.object({ images: z.int(), changed: z.int() }),
  }),
  labelRemove: defineCall({
    description: 'Removes an annotator’s label of a kind (one value, or all of the kind).',
    input: z.strictObject({ imageId, kind: labelKindSchema, value: z.string().min(1).optional(), annotator: annotatorSchema, sessionId: sessionId.optional() }),
    output: labelChangeResultSchema,
  }),
  labelUndo: defineCall({
    description: 'Undoes the annotator’s last label change (persisted: works after a restart).',
    input: z.strictObject({ annotator: annotatorSchema }),
    output: undoResultSchema,
  }),
  labelRedo: defineCall({
    description: 'Redoes the annotator’s last undone label change.',
    input: z.strictObject({ annotator: annotatorSchema }),
    output: undoResultSchema,
  }),
  labelHistory: defineCall({
    description: 'The audit log of label changes, oldest first: every slot change with its values before and after, optionally of one image or one annotator.',
    input: z.strictObject({ imageId: imageId.optional(), annotator: annotatorSchema.optional(), limit: z.int().min(1).max(1_000_000).optional() }),
    output: z.object({ entries: z.array(labelAuditEntrySchema) }),
  }),
  labelSuggestions: defineCall({
    description: 'Labels of the most similar labelled images, weighted by similarity: suggestions shown beside the image, never applied by themselves.',
    input: z.strictObject({
      imageId,
      kind: labelKindSchema.exclude(['note']).optional(),
      modelId: z.string().min(1).optional(),
      k: z.int().min(1).max(100).optional(),
    }),
    output: z.object({
      modelId: z.string(),
      suggestions: z.array(labelSuggestionSchema),
    }),
  }),
  sessionCreate: defineCall({
    description: 'Creates a labelling session for an annotator over a filter (e.g. "unlabelled", "flag!=blurry") or an explicit list of images.',
    input: z.strictObject({
      name: z.string().trim().min(1).max(200),
      annotator: annotatorSchema,
      where: z.array(z.string().min(1).max(500)).max(20).optional(),
      imageIds: z.array(imageId).min(1).max(500_000).optional(),
      order: z.enum(['unlabelled-first', 'random', 'cluster', 'uncertain']).optional(),
      seed: z.int().optional(),
      agreement: z.boolean().optional(),
      suggestions: z.enum(['shown', 'blind']).optional(),
    }),
    output: sessionSummarySchema,
  }),
  sessionSetSuggestions: defineCall({
    description:
      'Sets whether a session shows probe predictions and similar-image suggestions before the annotator has chosen ("shown") or only after ("blind").',
    input: z.strictObject({ sessionId, suggestions: z.enum(['shown', 'blind']) }),
    output: sessionSummarySchema,
  }),
  sessionList: defineCall({
    description: 'Every labelling session with its progress.',
    input: emptyInput,
    output: z.object({ sessions: z.array(sessionSummarySchema) }),
  }),
  sessionNext: defineCall({
    description: 'The image to label now (where the session left off) and the following one to prefetch.',
    input: z.strictObject({ sessionId }),
    output: sessionNextSchema,
  }),
  sessionRecord: defineCall({
    description:
      'Stores the annotator’s labels for the current image (each kind given replaces theirs) and moves on; refused when the annotator would hold no label on the image (skip instead).',
    input: z.strictObject({ sessionId, imageId, labels: z.array(kindLabelsSchema).max(20), secondsSpent: z.number().min(0).max(86_400).optional() }),
    output: sessionNextSchema,
  }),
  sessionSkip: defineCall({
    description: 'Skips the current image (it stays in the queue).',
    input: z.strictObject({ sessionId, imageId: imageId.optional(), secondsSpent: z.number().min(0).max(86_400).optional() }),
    output: sessionNextSchema,
  }),
  sessionPrevious: defineCall({
    description: 'Goes back one image to review or correct it.',
    input: z.strictObject({ sessionId }),
    output: sessionNextSchema,
  }),
  sessionPause: defineCall({
    description: 'Pauses a session; it resumes at the same image.',
    input: z.strictObject({ sessionId }),
    output: sessionSummarySchema,
  }),
};
