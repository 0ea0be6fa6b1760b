import type { z } from 'zod';
import { DermError } from '../../common/errors.js';
import { schemaBuiltAtFirstUse } from '../runtime/lazy-packages.js';
import type { QualityMetrics } from './quality-metrics.js';

/** Automatic flags, in the order they are shown. */
export const qualityFlags = [
  'dark',
  'overexposed',
  'blurry',
  'low_information',
  'grayscale',
  'odd_aspect_ratio',
  'low_resolution',
  'odd_size',
  'duplicate',
] as const;
export type QualityFlag = (typeof qualityFlags)[number];

/**
 * Thresholds of the automatic flags, stored in the library's settings under `quality.thresholds`.
 * Defaults and why:
 * - darkP99Below 0.10: dark when the 99th-percentile brightness is below it. Cleanvision uses 0.32,
 *   but a close-up of Monk 9–10 skin has brightness ≈ 0.13–0.15 everywhere: 0.32 would call every
 *   well-exposed photo of deep skin "dark".
 * - overexposedP05Above 0.95: overexposed when even the 5th-percentile brightness is above it
 *   (cleanvision's 1 − p05 < 0.05); the lightest skin tones sit near 0.93.
 * - blurryAbove 0.6: blurry when the re-blur score is above it (0 sharp … 1 fully blurred). On
 *   generated skin photos sharp ones score 0.1–0.4 and a Gaussian blur of σ = 4 px or more 0.7–0.9.
 * - blurMinContrast 2: blur is only judged when the downscaled grey image's standard deviation is at
 *   least this many grey levels; below it there are no edges to judge (uniform images).
 * - lowEntropyBelow 1.5 bits: low information. Cleanvision's entropy/10 < 0.3 (3 bits) would flag
 *   close-ups of deep skin, whose brightness histogram is narrow (2.2–3.0 bits measured on generated
 *   Monk 9–10 photos); 1.5 bits is fewer than three effectively used grey levels.
 * - grayscaleSaturationBelow 0.015: grayscale when the mean chroma is below it; the least saturated
 *   skin tones have ≈ 0.03.
 * - oddAspectBelow 0.35: odd aspect ratio when min(w/h, h/w) is below it (cleanvision's value).
 * - lowResolutionBelow 300: low resolution when the short side is below this many pixels.
 * - oddSizeIqrMultiplier 3, oddSizeMinImages 20: odd size when √(w·h) lies outside
 *   Q1 − k·spread … Q3 + k·spread of the library's non-deleted images, with spread =
 *   max(IQR, 0.1 · median) so a library of same-sized photos does not flag a 1-pixel difference;
 *   only judged once the library holds at least oddSizeMinImages images.
 */
export const qualityThresholdsSchema = schemaBuiltAtFirstUse((z) =>
  z
    .object({
      darkP99Below: z.number().min(0).max(1),
      overexposedP05Above: z.number().min(0).max(1),
      blurryAbove: z.number().min(0).max(1),
      blurMinContrast: z.number().min(0).max(255),
      lowEntropyBelow: z.number().min(0).max(8),
      grayscaleSaturationBelow: z.number().min(0).max(1),
      oddAspectBelow: z.number().min(0).max(1),
      lowResolutionBelow: z.number().int().min(0).max(100_000),
      oddSizeIqrMultiplier: z.number().min(0).max(100),
      oddSizeMinImages: z.number().int().min(4).max(10_000_000),
    })
    .strict(),
);
export type QualityThresholds = z.infer<ReturnType<typeof qualityThresholdsSchema>>;
export type QualityThresholdName = keyof QualityThresholds;

export const defaultQualityThresholds: QualityThresholds = {
  darkP99Below: 0.1,
  overexposedP05Above: 0.95,
  blurryAbove: 0.6,
  blurMinContrast: 2,
  lowEntropyBelow: 1.5,
  grayscaleSaturationBelow: 0.015,
  oddAspectBelow: 0.35,
  lowResolutionBelow: 300,
  oddSizeIqrMultiplier: 3,
  oddSizeMinImages: 20,
};

export const qualityThresholdNames = Object.keys(defaultQualityThresholds) as QualityThresholdName[];

/** Merges stored values over the defaults; a stored value that no longer validates falls back to its default. */
export function resolveThresholds(stored: unknown): QualityThresholds {
  const merged: QualityThresholds = { ...defaultQualityThresholds };
  if (stored && typeof stored === 'object') {
    for (const name of qualityThresholdNames) {
      const value = (stored as Record<string, unknown>)[name];
      const field = qualityThresholdsSchema().shape[name].safeParse(value);
      if (value !== undefined && field.success) (merged as Record<string, number>)[name] = field.data;
    }
  }
  return merged;
}

/** Validates a change of thresholds, with an error that names the threshold and the allowed range. */
export function validateThresholdChange(current: QualityThresholds, change: Record<string, unknown>): QualityThresholds {
  const next: Record<string, unknown> = { ...current };
  for (const [name, value] of Object.entries(change)) {
    if (!(qualityThresholdNames as string[]).includes(name)) {
      throw new DermError('invalid-input', `Unknown quality threshold "${name}". Known thresholds: ${qualityThresholdNames.join(', ')}.`, { field: name });
    }
    const parsed = qualityThresholdsSchema().shape[name as QualityThresholdName].safeParse(value);
    if (!parsed.success) {
      throw new DermError(
        'invalid-input',
        `Quality threshold ${name} cannot be ${JSON.stringify(value)}: ${parsed.error.issues.map((issue) => issue.message).join('; ')}.`,
        {
          field: name,
          value,
        },
      );
    }
    next[name] = parsed.data;
  }
  return qualityThresholdsSchema().parse(next);
}

/** Parses `NAME=VALUE` as given to `dermws qc --set`. */
export function parseThresholdAssignment(text: string): [QualityThresholdName, number] {
  const match = /^([A-Za-z0-9]+)=(.+)$/.exec(text.trim());
  if (!match) throw new DermError('invalid-input', `--set expects NAME=VALUE (e.g. blurryAbove=0.6); got "${text}".`, { field: '--set' });
  const name = match[1]!;
  if (!(qualityThresholdNames as string[]).includes(name)) {
    throw new DermError('invalid-input', `Unknown quality threshold "${name}" in --set ${text}. Known thresholds: ${qualityThresholdNames.join(', ')}.`, {
      field: name,
    });
  }
  const value = Number(match[2]);
  if (!Number.isFinite(value)) throw new DermError('invalid-input', `--set ${text}: "${match[2]}" is not a number.`, { field: name });
  return [name as QualityThresholdName, value];
}

export interface FlagDecision {
  flag: QualityFlag;
  detail: string;
}

const fixed = (value: number, digits = 3) => Number(value.toFixed(digits)).toString();

/** Flags that depend only on one image's metrics (everything except odd_size and duplicate). */
export function imageFlags(metrics: QualityMetrics, thresholds: QualityThresholds): FlagDecision[] {
  const flags: FlagDecision[] = [];
  if (metrics.brightnessP99 < thresholds.darkP99Below) {
    flags.push({ flag: 'dark', detail: `99th-percentile brightness ${fixed(metrics.brightnessP99)} < ${thresholds.darkP99Below}` });
  }
  if (metrics.brightnessP05 > thresholds.overexposedP05Above) {
    flags.push({ flag: 'overexposed', detail: `5th-percentile brightness ${fixed(metrics.brightnessP05)} > ${thresholds.overexposedP05Above}` });
  }
  if (metrics.greyStd >= thresholds.blurMinContrast && metrics.blurScore > thresholds.blurryAbove) {
    flags.push({ flag: 'blurry', detail: `blur score ${fixed(metrics.blurScore)} > ${thresholds.blurryAbove}` });
  }
  if (metrics.entropy < thresholds.lowEntropyBelow) {
    flags.push({ flag: 'low_information', detail: `entropy ${fixed(metrics.entropy, 2)} bits < ${thresholds.lowEntropyBelow}` });
  }
  if (metrics.saturationMean < thresholds.grayscaleSaturationBelow) {
    flags.push({ flag: 'grayscale', detail: `mean saturation ${fixed(metrics.saturationMean, 4)} < ${thresholds.grayscaleSaturationBelow}` });
  }
  const aspect = Math.min(metrics.aspectRatio, 1 / metrics.aspectRatio);
  if (aspect < thresholds.oddAspectBelow) {
    flags.push({ flag: 'odd_aspect_ratio', detail: `aspect ratio ${metrics.width}×${metrics.height} (${fixed(aspect, 2)}) < ${thresholds.oddAspectBelow}` });
  }
  const shortSide = Math.min(metrics.width, metrics.height);
  if (shortSide < thresholds.lowResolutionBelow) {
    flags.push({ flag: 'low_resolution', detail: `short side ${shortSide} px < ${thresholds.lowResolutionBelow} px` });
  }
  return flags;
}

/** The √(w·h) range outside which an image is odd-sized, or null while the library is too small to judge. */
export function oddSizeBounds(sizes: number[], thresholds: QualityThresholds): { low: number; high: number } | null {
  if (sizes.length < thresholds.oddSizeMinImages) return null;
  const sorted = [...sizes].sort((a, b) => a - b);
  const q1 = quantile(sorted, 0.25);
  const q3 = quantile(sorted, 0.75);
  const median = quantile(sorted, 0.5);
  const spread = Math.max(q3 - q1, 0.1 * median);
  return { low: q1 - thresholds.oddSizeIqrMultiplier * spread, high: q3 + thresholds.oddSizeIqrMultiplier * spread };
}

/** Linear-interpolated quantile of sorted values. */
export function quantile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const position = (sorted.length - 1) * fraction;
  const below = Math.floor(position);
  const above = Math.min(sorted.length - 1, below + 1);
  return sorted[below]! + (sorted[above]! - sorted[below]!) * (position - below);
}
