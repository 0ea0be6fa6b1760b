import type { ColumnOutcome } from '../math/logistic-regression.js';
import type { ReliabilityBin, StoredRocCurve } from './metrics.js';

/**
 * The stored, JSON-serialisable evaluation of a probe run (probe_runs.metrics). Every AUC is either a
 * number with its case-bootstrap interval or an explicit "too small" with the reason, never a number
 * computed from a group that cannot support one.
 */
export type AucResult = { status: 'measured'; value: number; ci95: [number, number]; bootstrapReplicates: number } | { status: 'too-small'; reason: string };

export interface LabelMetrics {
  label: string;
  /** Images whose target for this label is known. */
  images: number;
  positives: number;
  negatives: number;
  /** Cases with at least one positive image. */
  positiveCases: number;
  /** Cases with at least one negative image (absent in runs stored before the per-label case floor). */
  negativeCases?: number;
  auc: AucResult;
  /** At threshold 0.5. */
  accuracy: number;
  brier: number;
  ece: number;
  /** Reliability diagram (ten equal-width bins); only in the overall table. */
  reliability?: ReliabilityBin[];
  /**
   * Pooled out-of-fold ROC curve (every population image scored by the fold model that did not see
   * it), downsampled to at most 200 vertices; only in the overall table, absent in runs stored before
   * curves were kept and when the AUC is too small to measure.
   */
  roc?: StoredRocCurve;
}

export interface GroupMetrics {
  images: number;
  cases: number;
  /** Mean of the measured per-label AUCs; null when none could be measured. */
  macroAuc: number | null;
  hammingLoss: number;
  subsetAccuracy: number;
  perLabel: LabelMetrics[];
}

export type SubgroupResult =
  | { value: string; images: number; cases: number; status: 'measured'; metrics: GroupMetrics }
  | { value: string; images: number; cases: number; status: 'too-small'; reason: string };

export type SubgroupAttribute = 'fitzpatrick' | 'monk_tone' | 'sex' | 'age_group';

export interface SubgroupTable {
  attribute: SubgroupAttribute;
  /** Where the values came from, e.g. "label fitzpatrick, else metadata fitzpatrick_self". */
  source: string;
  notRecorded: { images: number; cases: number };
  groups: SubgroupResult[];
}

export interface CurvePoint {
  fraction: number;
  /** Mean number of training cases per fold at this fraction. */
  trainingCases: number;
  seeds: number;
  macroAuc: { mean: number | null; sd: number | null };
  perLabel: Array<{ label: string; mean: number | null; sd: number | null; values: Array<number | null> }>;
}

/** Each label's out-of-fold AUC under every fold seed of a repeated grouped CV (the first is the run's seed). */
export interface RepeatSummary {
  count: number;
  seeds: number[];
  perLabel: Array<{ label: string; values: Array<number | null>; mean: number | null; sd: number | null }>;
  macroAuc: { values: Array<number | null>; mean: number | null; sd: number | null };
}

/** The solver's fits behind one label's reported numbers: the k fold models and the final model, then each repeat's fold models. */
export interface LabelSolverSummary {
  label: string;
  iterations: number[];
  outcomes: ColumnOutcome[];
  /** The largest of those fits' final ‖gradient‖∞ ÷ ‖gradient at the start‖∞ (the stopping rule wants ≤ tolerance). */
  worstRelativeGradient: number;
  /** Fits whose line search found no lower loss: stopped at the float32 precision of the products, as close as the solver gets. */
  atPrecisionFloor: number;
  /** Every one of those fits met the stopping rule or stopped at the precision floor (none ran out of iterations). */
  converged: boolean;
}

export interface ProbeMetrics {
  labels: string[];
  folds: { count: number; images: number[]; cases: number[] };
  overall: GroupMetrics;
  subgroups: SubgroupTable[];
  curve: CurvePoint[];
  /** Absent in runs stored before repeats were kept. */
  repeats?: RepeatSummary;
  solver: {
    /** Absent in runs stored before the relative stopping rule. */
    tolerance?: number;
    passes: number;
    maxIterations: number;
    meanIterations: number;
    outcomes: Partial<Record<ColumnOutcome, number>>;
    perLabel?: LabelSolverSummary[];
    /** Data-efficiency fits that stopped without meeting the rule. */
    curveNotConverged?: number;
  };
}
