import type { MatrixEngine } from './matrix-engine.js';
import { applyInverseCurvature, restCurvatureScale, type SpectralPreconditioner } from './spectral-preconditioner.js';
import { cancellationError } from '../jobs/job.js';

/**
 * Many L2-regularised logistic regressions trained at once on one embedding matrix: every model
 * (a CV fold, the final fit, a data-efficiency subsample) × every label is one column, and one pass
 * of X·W and Xᵀ·R evaluates every column's loss and gradient together. Each column runs its own
 * L-BFGS with backtracking, so columns converge independently and drop out of later passes.
 *
 * Features are standardised with each model's own mean and standard deviation (computed on its
 * training rows by the caller). The standardisation is folded into the weights handed to the matrix
 * product (w/σ and an offset −μ·w/σ), so the matrix itself is never rewritten or copied.
 *
 * Objective of a column: (1/Σv) Σᵢ vᵢ·[log(1+e^zᵢ) − yᵢ·zᵢ] + (λ/2)·‖β‖², over the model's training
 * rows whose target is known, with vᵢ = 1 or, with class weights, Σv/(2·positives) for positives and
 * Σv/(2·negatives) for negatives. β are the weights on standardised features; the bias is not penalised.
 */

export interface ProbeModelSpec {
  /** Rows of the matrix this model learns from. */
  trainingRows: Int32Array;
  /** Mean and standard deviation of every feature over the model's training data. */
  mean: Float64Array;
  std: Float64Array;
}

export interface LogisticOptions {
  l2: number;
  classWeights: boolean;
  maxIterations: number;
  /**
   * Relative stopping rule: a column has converged when the largest component of its gradient is at
   * most `tolerance` × the largest component at the start (θ = 0). Relative, so the rule means the
   * same for any number of rows, class weighting or label prevalence.
   */
  tolerance: number;
  /** Stop as converged when an accepted step lowers the loss relatively less than this (default 1e-12: float32 products cannot resolve less). */
  lossTolerance?: number;
  /**
   * Leading eigenpairs of the standardised features' covariance (spectral-preconditioner.ts): when
   * given, every column's L-BFGS starts each direction from (c·C + λI)⁻¹ instead of a multiple of the
   * identity, which cuts the passes several-fold on embeddings whose variance sits in few directions.
   * Same objective, same stopping rule.
   */
  preconditioner?: SpectralPreconditioner | null;
  /** Checked between passes; when it returns true the solver stops with a cancellation error. */
  isCancelled?: () => boolean;
  /** Called after every pass over the matrix with the pass number and how many columns still run. */
  onPass?: (pass: number, activeColumns: number) => void;
}

export type ColumnOutcome = 'converged' | 'max-iterations' | 'line-search-stalled' | 'no-data';

export interface FittedModels {
  labelCount: number;
  /** Per model: weights on raw features, dim × labelCount row-major (β/σ), and one offset per label, so z = x·w + offset. */
  weights: Float64Array[];
  offsets: Float64Array[];
  /** Per column (model × labelCount + label). */
  iterations: Int32Array;
  /** Per column: largest gradient component at the end ÷ at the start (what the stopping rule compares with the tolerance). */
  relativeGradients: Float64Array;
  outcomes: ColumnOutcome[];
  passes: number;
}

const historySize = 7;
const armijo = 1e-4;
const defaultLossTolerance = 1e-12;
const maxBacktracks = 12;

interface ColumnState {
  model: number;
  label: number;
  theta: Float64Array;
  gradient: Float64Array;
  loss: number;
  /** Mean of vᵢ·p(1−p) at the accepted point, and at the trial point: the scale of the loss's curvature. */
  curvature: number;
  trialCurvature: number;
  trial: Float64Array;
  direction: Float64Array;
  step: number;
  slope: number;
  backtracks: number;
  started: boolean;
  iterations: number;
  /** Largest gradient component at the start; the convergence threshold is tolerance × this. */
  initialGradient: number;
  outcome: ColumnOutcome | null;
  history: Array<{ s: Float64Array; y: Float64Array; rho: number }>;
  weightPositive: number;
  weightNegative: number;
  totalWeight: number;
}

export async function fitLogisticModels(
  engine: MatrixEngine,
  targets: Uint8Array,
  known: Uint8Array,
  labelCount: number,
  models: ProbeModelSpec[],
  options: LogisticOptions,
): Promise<FittedModels> {
  const { rows, dim } = engine;
  const size = dim + 1;
  const columns: ColumnState[] = [];
  models.forEach((model, modelIndex) => {
    for (let label = 0; label < labelCount; label++) {
      let positives = 0;
      let negatives = 0;
      for (const row of model.trainingRows) {
        const cell = row * labelCount + label;
        if (!known[cell]) continue;
        if (targets[cell]) positives++;
        else negatives++;
      }
      const total = positives + negatives;
      const balanced = options.classWeights && positives > 0 && negatives > 0;
      columns.push({
        model: modelIndex,
        label,
        theta: new Float64Array(size),
        gradient: new Float64Array(size),
        loss: Number.POSITIVE_INFINITY,
        curvature: 0.25,
        trialCurvature: 0.25,
        trial: new Float64Array(size),
        direction: new Float64Array(size),
        step: 1,
        slope: 0,
        backtracks: 0,
        started: false,
        iterations: 0,
        initialGradient: 0,
        outcome: total === 0 ? 'no-data' : null,
        history: [],
        weightPositive: balanced ? total / (2 * positives) : 1,
        weightNegative: balanced ? total / (2 * negatives) : 1,
        totalWeight: total,
      });
    }
  });

  const preconditioning: Preconditioning | null = options.preconditioner
    ? { preconditioner: options.preconditioner, l2: options.l2, coefficients: new Float64Array(options.preconditioner.rank) }
    : null;
  let passes = 0;
  for (;;) {
    const active = columns.filter((column) => column.outcome === null);
    if (active.length === 0) break;
    if (options.isCancelled?.()) throw cancellationError();
    const count = active.length;
    const packed = new Float32Array(dim * count);
    const offsets = new Float64Array(count);
    active.forEach((column, position) => {
      offsets[position] = foldStandardisation(column.trial, models[column.model]!, packed, position, count);
    });
    const logits = await engine.multiply(packed, count);
    const residuals = new Float32Array(rows * count);
    const losses = new Float64Array(count);
    const residualSums = new Float64Array(count);
    active.forEach((column, position) => {
      const model = models[column.model]!;
      const offset = offsets[position]!;
      let loss = 0;
      let residualSum = 0;
      let curvature = 0;
      for (const row of model.trainingRows) {
        const cell = row * labelCount + column.label;
        if (!known[cell]) continue;
        const z = logits[row * count + position]! + offset;
        const positive = targets[cell] === 1;
        const weight = (positive ? column.weightPositive : column.weightNegative) / column.totalWeight;
        // log(1 + e^z) − y·z, written to stay finite for large |z|.
        loss += weight * ((z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z))) - (positive ? z : 0));
        const probability = sigmoid(z);
        const residual = weight * (probability - (positive ? 1 : 0));
        curvature += weight * probability * (1 - probability);
        residuals[row * count + position] = residual;
        residualSum += residual;
      }
      let penalty = 0;
      for (let feature = 0; feature < dim; feature++) penalty += column.trial[feature]! ** 2;
      losses[position] = loss + 0.5 * options.l2 * penalty;
      residualSums[position] = residualSum;
      column.trialCurvature = curvature;
    });
    const products = await engine.multiplyTransposed(residuals, count);
    passes++;
    active.forEach((column, position) => {
      const model = models[column.model]!;
      const gradient = new Float64Array(size);
      const residualSum = residualSums[position]!;
      for (let feature = 0; feature < dim; feature++) {
        gradient[feature] =
          (products[feature * count + position]! - model.mean[feature]! * residualSum) / model.std[feature]! + options.l2 * column.trial[feature]!;
      }
      gradient[dim] = residualSum;
      advance(column, losses[position]!, gradient, options, preconditioning);
    });
    options.onPass?.(passes, columns.filter((column) => column.outcome === null).length);
  }

  const weights = models.map(() => new Float64Array(dim * labelCount));
  const modelOffsets = models.map(() => new Float64Array(labelCount));
  for (const column of columns) {
    const model = models[column.model]!;
    const target = weights[column.model]!;
    let offset = column.theta[dim]!;
    for (let feature = 0; feature < dim; feature++) {
      const raw = column.theta[feature]! / model.std[feature]!;
      target[feature * labelCount + column.label] = raw;
      offset -= model.mean[feature]! * raw;
    }
    modelOffsets[column.model]![column.label] = offset;
  }
  return {
    labelCount,
    weights,
    offsets: modelOffsets,
    iterations: Int32Array.from(columns, (column) => column.iterations),
    relativeGradients: Float64Array.from(columns, (column) => (column.initialGradient > 0 ? maxAbs(column.gradient) / column.initialGradient : 0)),
    outcomes: columns.map((column) => column.outcome ?? 'max-iterations'),
    passes,
  };
}

/** Writes θ/σ into column `position` of the packed dim × count matrix and returns the offset b − μ·θ/σ. */
function foldStandardisation(theta: Float64Array, model: ProbeModelSpec, packed: Float32Array, position: number, count: number): number {
  const dim = model.mean.length;
  let offset = theta[dim]!;
  for (let feature = 0; feature < dim; feature++) {
    const raw = theta[feature]! / model.std[feature]!;
    packed[feature * count + position] = raw;
    offset -= model.mean[feature]! * raw;
  }
  return offset;
}

/** One L-BFGS step for a column given the loss and gradient at its trial point. */
function advance(column: ColumnState, loss: number, gradient: Float64Array, options: LogisticOptions, preconditioning: Preconditioning | null): void {
  if (!column.started) {
    column.started = true;
    accept(column, loss, gradient);
    column.initialGradient = maxAbs(gradient);
    if (column.initialGradient === 0) {
      column.outcome = 'converged';
      return;
    }
    propose(column, preconditioning);
    return;
  }
  if (Number.isFinite(loss) && loss <= column.loss + armijo * column.step * column.slope) {
    const s = new Float64Array(gradient.length);
    const y = new Float64Array(gradient.length);
    for (let index = 0; index < gradient.length; index++) {
      s[index] = column.trial[index]! - column.theta[index]!;
      y[index] = gradient[index]! - column.gradient[index]!;
    }
    const sy = dot(s, y);
    if (sy > 1e-12 * dot(y, y)) {
      column.history.push({ s, y, rho: 1 / sy });
      if (column.history.length > historySize) column.history.shift();
    }
    const previousLoss = column.loss;
    accept(column, loss, gradient);
    column.iterations++;
    const lossTolerance = options.lossTolerance ?? defaultLossTolerance;
    if (
      maxAbs(gradient) <= options.tolerance * column.initialGradient ||
      previousLoss - loss <= lossTolerance * Math.max(Math.abs(previousLoss), Math.abs(loss), 1)
    ) {
      column.outcome = 'converged';
      return;
    }
    if (column.iterations >= options.maxIterations) {
      column.outcome = 'max-iterations';
      return;
    }
    propose(column, preconditioning);
    return;
  }
  column.backtracks++;
  if (column.backtracks > maxBacktracks) {
    column.outcome = 'line-search-stalled';
    return;
  }
  // Minimiser of the quadratic through f(0), f'(0) and f(step), kept within [0.1, 0.5] of the step.
  const step = column.step;
  const curvature = Number.isFinite(loss) ? loss - column.loss - column.slope * step : Number.POSITIVE_INFINITY;
  const quadratic = curvature > 0 ? (-column.slope * step * step) / (2 * curvature) : 0.5 * step;
  column.step = Math.min(0.5 * step, Math.max(0.1 * step, quadratic));
  setTrial(column);
}

function accept(column: ColumnState, loss: number, gradient: Float64Array): void {
  column.theta.set(column.trial);
  column.curvature = column.trialCurvature;
  column.gradient = gradient;
  column.loss = loss;
}

interface Preconditioning {
  preconditioner: SpectralPreconditioner;
  l2: number;
  /** Scratch for the projections onto the eigenvectors. */
  coefficients: Float64Array;
}

/** (c·C + λI)⁻¹ at the column's accepted point, applied in place; c floored so a (nearly) separated label cannot divide by zero. */
function precondition(column: ColumnState, preconditioning: Preconditioning, vector: Float64Array): void {
  applyInverseCurvature(preconditioning.preconditioner, Math.max(column.curvature, 1e-6), preconditioning.l2, vector, preconditioning.coefficients);
}

/**
 * Two-loop recursion for the L-BFGS direction; falls back to steepest descent (preconditioned when
 * there is a preconditioner) when it is not a descent direction.
 */
function propose(column: ColumnState, preconditioning: Preconditioning | null): void {
  const direction = column.direction;
  for (let index = 0; index < direction.length; index++) direction[index] = -column.gradient[index]!;
  const alphas: number[] = [];
  for (let index = column.history.length - 1; index >= 0; index--) {
    const { s, y, rho } = column.history[index]!;
    const alpha = rho * dot(s, direction);
    alphas[index] = alpha;
    axpy(-alpha, y, direction);
  }
  if (preconditioning) {
    // Where the spectrum gives the curvature (the kept eigenvectors) it is used as is; on the rest the
    // identity is scaled by sᵀy / yᵀy of that part alone, as plain L-BFGS scales all of it. Measured in
    // passes (plain → fixed rest eigenvalue → this): bench 10k × 6144 with rank 64 of 64 strong directions
    // 140 → 13 → 11, rank 32 of 64 140 → 58 → 88; unit-test data rank 8 of 6 44 → 24 → 22, rank 3 of 6
    // 44 → 66 → 31: the only variant never slower than plain L-BFGS in these.
    let restScale: number | undefined;
    if (column.history.length > 0) {
      const latest = column.history[column.history.length - 1]!;
      restScale = restCurvatureScale(preconditioning.preconditioner, latest.s, latest.y) ?? undefined;
    }
    applyInverseCurvature(
      preconditioning.preconditioner,
      Math.max(column.curvature, 1e-6),
      preconditioning.l2,
      direction,
      preconditioning.coefficients,
      restScale,
    );
  } else if (column.history.length > 0) {
    const latest = column.history[column.history.length - 1]!;
    scale(direction, 1 / (latest.rho * dot(latest.y, latest.y)));
  }
  for (let index = 0; index < column.history.length; index++) {
    const { s, y, rho } = column.history[index]!;
    const beta = rho * dot(y, direction);
    axpy(alphas[index]! - beta, s, direction);
  }
  let slope = dot(column.gradient, direction);
  if (!(slope < 0)) {
    column.history = [];
    for (let index = 0; index < direction.length; index++) direction[index] = -column.gradient[index]!;
    if (preconditioning) precondition(column, preconditioning, direction);
    slope = dot(column.gradient, direction);
  }
  column.slope = slope;
  // A preconditioned direction already carries the curvature's scale (a Newton-like step); a plain gradient does not.
  column.step = column.history.length === 0 && !preconditioning ? Math.min(1, 1 / Math.sqrt(-slope)) : 1;
  column.backtracks = 0;
  setTrial(column);
}

function setTrial(column: ColumnState): void {
  for (let index = 0; index < column.trial.length; index++) column.trial[index] = column.theta[index]! + column.step * column.direction[index]!;
}

function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

function dot(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let index = 0; index < a.length; index++) sum += a[index]! * b[index]!;
  return sum;
}

function axpy(alpha: number, x: Float64Array, y: Float64Array): void {
  for (let index = 0; index < x.length; index++) y[index]! += alpha * x[index]!;
}

function scale(x: Float64Array, factor: number): void {
  for (let index = 0; index < x.length; index++) x[index]! *= factor;
}

function maxAbs(values: Float64Array): number {
  let max = 0;
  for (const value of values) if (Math.abs(value) > max) max = Math.abs(value);
  return max;
}

/** Probabilities of every row for every label of one fitted model: rows × labelCount, row-major. */
export async function predictAll(engine: MatrixEngine, weights: Float64Array, offsets: Float64Array): Promise<Float32Array> {
  const labelCount = offsets.length;
  const logits = await engine.multiply(Float32Array.from(weights), labelCount);
  const probabilities = new Float32Array(logits.length);
  for (let index = 0; index < logits.length; index++) probabilities[index] = sigmoid(logits[index]! + offsets[index % labelCount]!);
  return probabilities;
}

/** Mean and standard deviation (population) of every feature over `rows`; constant features get σ = 1. */
export function featureStatistics(data: Float32Array, dim: number, rows: Int32Array): { mean: Float64Array; std: Float64Array } {
  const sums = new Float64Array(dim);
  const squares = new Float64Array(dim);
  for (const row of rows) accumulateRow(data, dim, row, sums, squares);
  return statisticsFromSums(sums, squares, rows.length);
}

export function accumulateRow(data: Float32Array, dim: number, row: number, sums: Float64Array, squares: Float64Array): void {
  const start = row * dim;
  for (let feature = 0; feature < dim; feature++) {
    const value = data[start + feature]!;
    sums[feature]! += value;
    squares[feature]! += value * value;
  }
}

export function statisticsFromSums(sums: Float64Array, squares: Float64Array, count: number): { mean: Float64Array; std: Float64Array } {
  const dim = sums.length;
  const mean = new Float64Array(dim);
  const std = new Float64Array(dim);
  for (let feature = 0; feature < dim; feature++) {
    const m = count > 0 ? sums[feature]! / count : 0;
    const variance = count > 0 ? squares[feature]! / count - m * m : 0;
    mean[feature] = m;
    std[feature] = variance > 1e-12 * Math.max(1, m * m) ? Math.sqrt(variance) : 1;
  }
  return { mean, std };
}
