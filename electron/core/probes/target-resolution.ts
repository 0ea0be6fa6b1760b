import type { LabelsRow } from '../library/table-rows.js';

/**
 * How the current labels of a library become a probe's training targets. Several annotators may
 * label one image, and SCIN imports carry dermatologists' confidences; the rules are:
 *
 * - Consensus first: if an image has any current consensus row of the kind, those values are the
 *   truth for it and every other row of the kind is ignored.
 * - Otherwise, for multi-label kinds (condition, quality flags) a value is positive when any annotator
 *   (manual or imported) gave it with a confidence at or above the floor (rows without a confidence
 *   pass). A value given only below the floor is unknown for that image: it is left out of that
 *   label's training and evaluation rather than counted as a negative.
 * - Single-valued kinds (gradable, Fitzpatrick, Monk tone) take the consensus, else the value most
 *   annotators gave; a tie is unresolved.
 */
export interface LabelRow extends Pick<LabelsRow, 'value' | 'confidence' | 'origin'> {
  imageId: LabelsRow['image_id'];
}

export interface ResolvedTargets {
  /** Images that carry any judgement of the kind, ascending. */
  images: number[];
  positives: Map<number, Set<string>>;
  /** Values that are neither positive nor negative for an image. */
  unknown: Map<number, Set<string>>;
}

function addTo(map: Map<number, Set<string>>, imageId: number, value: string): void {
  let set = map.get(imageId);
  if (!set) map.set(imageId, (set = new Set()));
  set.add(value);
}

function groupByImage(rows: LabelRow[]): Map<number, LabelRow[]> {
  const byImage = new Map<number, LabelRow[]>();
  for (const row of rows) {
    const list = byImage.get(row.imageId);
    if (list) list.push(row);
    else byImage.set(row.imageId, [row]);
  }
  return byImage;
}

export function resolveMultiLabel(rows: LabelRow[], minConfidence?: number): ResolvedTargets {
  const positives = new Map<number, Set<string>>();
  const unknown = new Map<number, Set<string>>();
  const byImage = groupByImage(rows);
  for (const [imageId, imageRows] of byImage) {
    const consensus = imageRows.filter((row) => row.origin === 'consensus');
    if (consensus.length > 0) {
      for (const row of consensus) addTo(positives, imageId, row.value);
      continue;
    }
    const below = new Set<string>();
    for (const row of imageRows) {
      if (minConfidence === undefined || row.confidence === null || row.confidence >= minConfidence) addTo(positives, imageId, row.value);
      else below.add(row.value);
    }
    for (const value of below) if (!positives.get(imageId)?.has(value)) addTo(unknown, imageId, value);
  }
  return { images: [...byImage.keys()].sort((a, b) => a - b), positives, unknown };
}

/** Consensus value, else the most frequent value; images whose top values tie are left out. */
export function resolveSingleValue(rows: LabelRow[], normalise: (value: string) => string | null = (value) => value): Map<number, string> {
  const resolved = new Map<number, string>();
  for (const [imageId, imageRows] of groupByImage(rows)) {
    const consensus = imageRows.filter((row) => row.origin === 'consensus');
    const counted = consensus.length > 0 ? consensus : imageRows;
    const counts = new Map<string, number>();
    for (const row of counted) {
      const value = normalise(row.value);
      if (value !== null) counts.set(value, (counts.get(value) ?? 0) + 1);
    }
    const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1]);
    if (ranked.length === 0 || (ranked.length > 1 && ranked[0]![1] === ranked[1]![1])) continue;
    resolved.set(imageId, ranked[0]![0]);
  }
  return resolved;
}

/** The target the quality probe learns for "is this image gradable?": positive means not gradable. */
export const ungradableLabel = 'ungradable';

/**
 * Quality targets: `ungradable` from the gradable kind ('no' → positive, 'yes' → negative, unresolved
 * → unknown), and one target per quality flag from quality_flag labels and manual image flags. The
 * population is every image with a gradable judgement or a manual flag.
 */
export function resolveQualityTargets(gradableRows: LabelRow[], flagRows: LabelRow[], manualFlags: Array<{ imageId: number; flag: string }>): ResolvedTargets {
  const gradable = resolveSingleValue(gradableRows, (value) => {
    const lower = value.trim().toLowerCase();
    return lower === 'yes' || lower === 'no' ? lower : null;
  });
  const flags = resolveMultiLabel(flagRows);
  for (const { imageId, flag } of manualFlags) addTo(flags.positives, imageId, flag);
  const images = new Set<number>([...gradableRows.map((row) => row.imageId), ...flags.images, ...manualFlags.map((flag) => flag.imageId)]);
  const positives = new Map<number, Set<string>>();
  const unknown = new Map<number, Set<string>>();
  for (const imageId of images) {
    for (const flag of flags.positives.get(imageId) ?? []) addTo(positives, imageId, flag);
    const verdict = gradable.get(imageId);
    if (verdict === 'no') addTo(positives, imageId, ungradableLabel);
    else if (verdict === undefined) addTo(unknown, imageId, ungradableLabel);
  }
  return { images: [...images].sort((a, b) => a - b), positives, unknown };
}

const roman = ['I', 'II', 'III', 'IV', 'V', 'VI'];

/** 'III', 'FST3', '3', 'type iii' → 'III'; anything else (e.g. NONE_SELECTED) → null. */
export function normaliseFitzpatrick(value: string): string | null {
  const text = value
    .trim()
    .toUpperCase()
    .replace(/^(FST|TYPE)\s*/, '');
  if (roman.includes(text)) return text;
  const number = Number(text);
  return Number.isInteger(number) && number >= 1 && number <= 6 ? roman[number - 1]! : null;
}

/** Monk skin tone 1..10 as a string; anything else → null. */
export function normaliseMonkTone(value: string): string | null {
  const number = Number(value.trim());
  return Number.isInteger(number) && number >= 1 && number <= 10 ? String(number) : null;
}
