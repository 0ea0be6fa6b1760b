import { DermError } from '../../common/errors.js';

/** Every kind of judgement an annotator can record about an image. */
export const labelKinds = ['condition', 'body_site', 'fitzpatrick', 'monk_tone', 'severity', 'gradable', 'quality_flag', 'note'] as const;
export type LabelKind = (typeof labelKinds)[number];

/**
 * Kinds where one annotator may give several values to one image (a photo can show two conditions,
 * span two body sites, have two quality problems). Every other kind holds one value per annotator,
 * and setting it replaces the previous one.
 */
export const multiValuedKinds: ReadonlySet<LabelKind> = new Set<LabelKind>(['condition', 'body_site', 'quality_flag']);

/** Kinds whose values must be codes of the taxonomy; `note` is free text. */
export const taxonomyKinds = labelKinds.filter((kind) => kind !== 'note') as Exclude<LabelKind, 'note'>[];

export const labelOrigins = ['manual', 'imported', 'consensus'] as const;
export type LabelOrigin = (typeof labelOrigins)[number];

export const maxNoteLength = 4000;

export function isLabelKind(value: string): value is LabelKind {
  return (labelKinds as readonly string[]).includes(value);
}

export function parseLabelKind(value: string, field = 'kind'): LabelKind {
  if (!isLabelKind(value)) {
    throw new DermError('invalid-input', `${field} "${value}" is not a label kind; expected one of ${labelKinds.join(', ')}.`, { field, value });
  }
  return value;
}

/** Confidence 1–5 (as in SCIN) is only meaningful for conditions. */
export function checkConfidence(kind: LabelKind, confidence: number | null | undefined, where = 'confidence'): number | null {
  if (confidence === undefined || confidence === null) return null;
  if (kind !== 'condition') {
    throw new DermError('invalid-input', `${where}: a confidence can only be given to condition labels, not ${kind}.`, { field: 'confidence', kind });
  }
  if (!Number.isInteger(confidence) || confidence < 1 || confidence > 5) {
    throw new DermError('invalid-input', `${where} must be a whole number from 1 to 5; got ${String(confidence)}.`, { field: 'confidence', value: confidence });
  }
  return confidence;
}
