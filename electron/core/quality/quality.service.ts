import { DermError } from '../../common/errors.js';
import type { SettingsRepository } from '../library/settings.repository.js';
import {
  imageFlags,
  oddSizeBounds,
  qualityFlags,
  resolveThresholds,
  validateThresholdChange,
  type FlagDecision,
  type QualityFlag,
  type QualityThresholds,
} from './quality-flags.js';
import { computeQualityMetrics, type QualityMetrics, type ReducedImage } from './quality-metrics.js';
import type { QualityRepository } from './quality.repository.js';

export const thresholdsSettingKey = 'quality.thresholds';

/** Flags decided from one image's metrics alone. */
const perImageFlags: readonly QualityFlag[] = qualityFlags.filter((flag) => flag !== 'odd_size' && flag !== 'duplicate');
/** Flags that depend on the rest of the library. */
const libraryFlags: readonly QualityFlag[] = ['odd_size', 'duplicate'];

export interface ReflagReport {
  images: number;
  /** Non-deleted images per flag after re-flagging; every flag name is present. */
  flags: Record<QualityFlag, number>;
}

/**
 * Automatic image-quality metrics and flags. Metrics are computed once from the import's decode and
 * stored; flags are derived from stored metrics and the thresholds in settings, so changing a
 * threshold re-flags the library without decoding anything.
 */
export class QualityService {
  constructor(
    private readonly repository: QualityRepository,
    private readonly settings: SettingsRepository,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /**
   * Metrics of decoded 8-bit sRGB pixels (3 channels, row-major). `reduced` is the analysis image from
   * reduceForAnalysis() when the caller already has it (the import does).
   */
  computeMetrics(pixels: Uint8Array, width: number, height: number, reduced?: ReducedImage): QualityMetrics {
    return computeQualityMetrics(pixels, width, height, reduced);
  }

  thresholds(): QualityThresholds {
    return resolveThresholds(this.settings.get(thresholdsSettingKey));
  }

  /** Validates and stores changed thresholds, then re-flags. Unknown names and out-of-range values are refused before anything is stored. */
  setThresholds(change: Partial<Record<string, number>>): { thresholds: QualityThresholds; reflag: ReflagReport } {
    const next = validateThresholdChange(this.thresholds(), change);
    this.settings.set(thresholdsSettingKey, next);
    return { thresholds: next, reflag: this.reflag() };
  }

  /**
   * Stores one image's metrics and its per-image flags. Called inside the import's transaction, so the
   * image row, its metrics and its flags appear together. Library-wide flags are refreshed afterwards
   * by refreshLibraryFlags().
   */
  recordImage(imageId: number, metrics: QualityMetrics, thresholds = this.thresholds()): FlagDecision[] {
    this.repository.saveMetrics(imageId, metrics);
    const decisions = imageFlags(metrics, thresholds);
    this.repository.replaceAutoFlags(imageId, decisions, perImageFlags, this.clock().toISOString());
    return decisions;
  }

  /** Recomputes odd_size (√(w·h) against the library's quartiles) and duplicate (same pixels) for every image. */
  refreshLibraryFlags(thresholds = this.thresholds()): void {
    const at = this.clock().toISOString();
    this.repository.transaction(() => {
      this.repository.clearAutoFlags(libraryFlags);
      for (const [imageId, decisions] of this.libraryDecisions(thresholds)) {
        this.repository.replaceAutoFlags(imageId, decisions, [], at);
      }
    });
  }

  /** Recomputes every automatic flag from stored metrics and the current thresholds; never decodes. */
  reflag(): ReflagReport {
    const thresholds = this.thresholds();
    const at = this.clock().toISOString();
    const all = this.repository.allMetrics();
    this.repository.transaction(() => {
      this.repository.clearAutoFlags(qualityFlags);
      const library = this.libraryDecisions(thresholds);
      for (const { imageId, metrics } of all) {
        const decisions = [...imageFlags(metrics, thresholds), ...(library.get(imageId) ?? [])];
        this.repository.replaceAutoFlags(imageId, decisions, [], at);
      }
      const withMetrics = new Set(all.map((entry) => entry.imageId));
      for (const [imageId, decisions] of library) {
        if (!withMetrics.has(imageId)) this.repository.replaceAutoFlags(imageId, decisions, [], at);
      }
    });
    return { images: all.length, flags: this.flagCounts() };
  }

  /** Non-deleted images per flag; every automatic flag is present (0 when none), plus any manual flag names. */
  flagCounts(): Record<QualityFlag, number> & Record<string, number> {
    const counts = Object.fromEntries(qualityFlags.map((flag) => [flag, 0])) as Record<QualityFlag, number> & Record<string, number>;
    return Object.assign(counts, this.repository.flagCounts());
  }

  flaggedImageCount(): number {
    return this.repository.flaggedImageCount();
  }

  /**
   * Flags images by hand (e.g. "needs_review", or an automatic flag's name the thresholds missed).
   * Returns how many images newly carry it.
   */
  flagImages(imageIds: readonly number[], flag: string, detail: string | null = null): number {
    const name = checkFlagName(flag);
    return this.repository.transaction(() => {
      this.requireLiveImages(imageIds, 'flagged');
      return this.repository.addManualFlag(imageIds, name, detail, this.clock().toISOString());
    });
  }

  /**
   * Takes a flag off images: the manual flag is removed, and an automatic one is marked "not an issue"
   * so re-flagging does not put it back. Returns how many images no longer carry it.
   */
  unflagImages(imageIds: readonly number[], flag: string): number {
    const name = checkFlagName(flag);
    const at = this.clock().toISOString();
    return this.repository.transaction(() => {
      this.requireLiveImages(imageIds, 'unflagged');
      let changed = 0;
      for (const imageId of imageIds) {
        const manual = this.repository.removeManualFlag([imageId], name) > 0;
        const automatic = (qualityFlags as readonly string[]).includes(name) && this.repository.addOverride(imageId, name, at);
        if (manual || automatic) changed++;
      }
      return changed;
    });
  }

  /** Refuses a selection that names an image not in the library (or deleted): nothing is written, and the ids are named. */
  private requireLiveImages(imageIds: readonly number[], done: string): void {
    const missing = this.repository.missingLiveImages(imageIds);
    if (missing.length === 0) return;
    const named = `${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ` and ${missing.length - 10} more` : ''}`;
    throw new DermError(
      'not-found',
      `${missing.length === 1 ? 'Image' : 'Images'} ${named} ${missing.length === 1 ? 'is' : 'are'} not in the library (or deleted); nothing was ${done}.`,
      { imageIds: missing },
    );
  }

  /**
   * A person's verdict on an automatic flag of one image. "Not an issue" removes the flag and keeps it
   * off through every re-flag (so filters, counts and exports, which read the flags, respect it);
   * withdrawing the verdict derives the flag again from the stored metrics and current thresholds.
   */
  setNotAnIssue(imageId: number, flag: string, notAnIssue: boolean): void {
    if (!(qualityFlags as readonly string[]).includes(flag)) {
      throw new DermError('invalid-input', `"${flag}" is not an automatic quality flag; expected one of ${qualityFlags.join(', ')}.`, {
        field: 'flag',
        value: flag,
      });
    }
    if (!this.repository.isLiveImage(imageId)) throw new DermError('not-found', `There is no image ${imageId} in this library.`, { imageId });
    const at = this.clock().toISOString();
    this.repository.transaction(() => {
      if (notAnIssue) {
        this.repository.addOverride(imageId, flag, at);
        return;
      }
      if (!this.repository.removeOverride(imageId, flag)) return;
      const thresholds = this.thresholds();
      const metrics = this.repository.metrics(imageId);
      const decisions = [
        ...(metrics ? imageFlags(metrics, thresholds) : []),
        ...(libraryFlags.includes(flag as QualityFlag) ? (this.libraryDecisions(thresholds).get(imageId) ?? []) : []),
      ].filter((decision) => decision.flag === flag);
      this.repository.replaceAutoFlags(imageId, decisions, [flag as QualityFlag], at);
    });
  }

  /** Images a person marked "not an issue" for a flag (or for any flag). */
  notAnIssue(flag?: string): Array<{ imageId: number; flag: string; setAt: string }> {
    return this.repository.overrides(flag);
  }

  metrics(imageId: number): QualityMetrics | undefined {
    return this.repository.metrics(imageId);
  }

  private libraryDecisions(thresholds: QualityThresholds): Map<number, FlagDecision[]> {
    const decisions = new Map<number, FlagDecision[]>();
    const add = (imageId: number, decision: FlagDecision) => {
      const list = decisions.get(imageId);
      if (list) list.push(decision);
      else decisions.set(imageId, [decision]);
    };
    const sizes = this.repository.sizes();
    const bounds = oddSizeBounds(
      sizes.map((entry) => entry.sizeSqrt),
      thresholds,
    );
    if (bounds) {
      for (const { imageId, sizeSqrt } of sizes) {
        if (sizeSqrt < bounds.low || sizeSqrt > bounds.high) {
          add(imageId, {
            flag: 'odd_size',
            detail: `√(w·h) = ${Math.round(sizeSqrt)} px outside the library's ${Math.round(Math.max(0, bounds.low))}…${Math.round(bounds.high)} px`,
          });
        }
      }
    }
    for (const group of this.repository.pixelDuplicateGroups()) {
      for (const imageId of group) {
        const others = group.filter((other) => other !== imageId);
        const shown = others.slice(0, 5).join(', ');
        add(imageId, {
          flag: 'duplicate',
          detail: `same pixels as image${others.length > 1 ? 's' : ''} ${shown}${others.length > 5 ? ` and ${others.length - 5} more` : ''}`,
        });
      }
    }
    return decisions;
  }
}

/** Flag names are short snake_case words, so they read well in filters, CSV columns and the CLI. */
function checkFlagName(flag: string): string {
  const name = flag.trim();
  if (!/^[a-z][a-z0-9_]{0,39}$/.test(name)) {
    throw new DermError('invalid-input', `flag "${flag}" must be a lower-case word of letters, digits and "_" (at most 40), e.g. needs_review.`, {
      field: 'flag',
      value: flag,
    });
  }
  return name;
}
