import type { ColumnOutcome } from '../math/logistic-regression.js';
import type { z } from 'zod';
import type { aucSchema, groupMetricsSchema, labelMetricsSchema, subgroupResultSchema } from '../../common/contract.js';

/**
 * The stored, JSON-serialisable evaluation of a probe run (probe_runs.metrics). The per-label
 * metrics are the contract's schema (what probeReport shows), so the stored shape and the shown one
 * cannot drift apart.
 */
export type AucResult = z.infer<typeof aucSchema>;
export type LabelMetrics = z.infer<typeof labelMetricsSchema>;

export type GroupMetrics = z.infer<typeof groupMetricsSchema>;

export type SubgroupResult = z.infer<typeof subgroupResultSchema>;

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
