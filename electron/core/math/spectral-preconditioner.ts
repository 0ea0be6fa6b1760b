import type { MatrixEngine } from './matrix-engine.js';
import { SeededRandom } from '../../common/seeded-random.js';
import { cancellationError } from '../jobs/job.js';
import { symmetricEigen } from './dense-linear-algebra.js';

/**
 * The leading eigenpairs of the standardised features' covariance C = ZᵀZ/N (Z: the population's
 * rows, centred and divided by σ), used as the L-BFGS solver's starting inverse-Hessian guess.
 *
 * Why: the logistic loss's Hessian on standardised features is Zᵀ·D·Z/N + λI with D = p(1−p) per row.
 * Embeddings concentrate their variance in a few directions, so that Hessian is badly conditioned
 * (top eigenvalues ~10³ × the floor λ at 6144-d) and plain L-BFGS spends most of its passes over the
 * matrix crawling along the small-eigenvalue directions. With (c·C + λI)⁻¹ as the initial guess, c the
 * mean curvature of the column's current point, the solver starts from a matrix that already has the
 * right scale in every direction and needs several times fewer passes. The optimum and the stopping
 * rule do not change: only the path to the optimum does.
 *
 * The eigenpairs come from a few rounds of seeded subspace iteration through the same two products
 * the solver uses (each round costs about one solver pass of `rank + oversample` columns), so the
 * result is deterministic for a given matrix, rows and seed.
 */
export interface SpectralPreconditioner {
  dim: number;
  /** Eigenvectors kept, each of length dim, one after another (rank × dim). */
  vectors: Float64Array;
  rank: number;
  /** Their eigenvalues of C, largest first. */
  eigenvalues: Float64Array;
  /** Mean eigenvalue of C on the rest of the space (trace left over ÷ dimensions left over). */
  restEigenvalue: number;
}

export interface SpectrumOptions {
  /** Eigenpairs kept. */
  rank: number;
  /** Extra directions iterated and then dropped, so the kept ones converge faster. */
  oversample: number;
  /** Rounds of subspace iteration before the final Rayleigh–Ritz step. */
  iterations: number;
  seed: number;
}

export const defaultSpectrumOptions: SpectrumOptions = { rank: 64, oversample: 32, iterations: 3, seed: 0x5eed };

/**
 * Leading eigenpairs of the covariance of (x − mean)/std over `rows` of the engine's matrix.
 * Returns null when there is nothing to precondition (no rows or too few dimensions).
 */
export async function covarianceSpectrum(
  engine: MatrixEngine,
  rows: Int32Array,
  mean: Float64Array,
  std: Float64Array,
  options: SpectrumOptions = defaultSpectrumOptions,
  control: { isCancelled?: () => boolean; onRound?: (round: number, rounds: number) => void } = {},
): Promise<SpectralPreconditioner | null> {
  const { dim, data } = engine;
  const width = Math.min(options.rank + options.oversample, dim, rows.length);
  const rank = Math.min(options.rank, width);
  if (rows.length < 2 || rank < 1) return null;
  const random = new SeededRandom(options.seed);
  let basis: Float64Array[] = Array.from({ length: width }, () => gaussianVector(random, dim));
  basis = orthonormalise(basis, random);
  const step = async (round: number) => {
    if (control.isCancelled?.()) throw cancellationError();
    const image = await covarianceTimes(engine, rows, mean, std, basis);
    control.onRound?.(round + 1, options.iterations + 1);
    return image;
  };
  for (let round = 0; round < options.iterations; round++) basis = orthonormalise(await step(round), random);
  // Rayleigh–Ritz: eigenpairs of the small matrix Bᵀ·C·B give the best approximations within span(B).
  const image = await step(options.iterations);
  const small = new Float64Array(width * width);
  for (let a = 0; a < width; a++) {
    for (let b = a; b < width; b++) {
      const value = 0.5 * (dot(basis[a]!, image[b]!) + dot(basis[b]!, image[a]!));
      small[a * width + b] = value;
      small[b * width + a] = value;
    }
  }
  const { values, vectors: rotation } = symmetricEigen(small, width);
  const order = Array.from({ length: width }, (_, index) => index).sort((a, b) => values[b]! - values[a]!);
  const vectors = new Float64Array(rank * dim);
  const eigenvalues = new Float64Array(rank);
  for (let kept = 0; kept < rank; kept++) {
    const source = order[kept]!;
    eigenvalues[kept] = Math.max(0, values[source]!);
    const target = vectors.subarray(kept * dim, (kept + 1) * dim);
    for (let b = 0; b < width; b++) {
      const weight = rotation[b * width + source]!;
      if (weight !== 0) axpy(weight, basis[b]!, target);
    }
  }
  const trace = standardisedTrace(data, dim, rows, mean, std);
  const keptTrace = eigenvalues.reduce((sum, value) => sum + value, 0);
  // The rest of the spectrum is treated as one eigenvalue (the solver's first step; later ones rescale
  // the rest from their own steps): the larger of the leftover trace's mean and the largest Ritz value not
  // kept. The mean alone oversteps along large eigenvalues the kept rank missed (bench, half the needed
  // rank: 188 passes against plain L-BFGS's 140); the largest one left does not, and where the spectrum
  // falls off a cliff within the rank the two agree.
  const largestLeft = width > rank ? Math.max(0, values[order[rank]!]!) : 0;
  const restEigenvalue = dim > rank ? Math.max(Math.max(0, trace - keptTrace) / (dim - rank), largestLeft) : 0;
  return { dim, vectors, rank, eigenvalues, restEigenvalue };
}

/**
 * Applies (c·C + λI)⁻¹ to the feature part of `input` (length dim + 1, the bias last) in place, with
 * C replaced by its kept eigenpairs plus the rest eigenvalue; the bias, whose curvature is c and
 * which is not penalised, is divided by c.
 */
export function applyInverseCurvature(
  preconditioner: SpectralPreconditioner,
  curvature: number,
  l2: number,
  input: Float64Array,
  coefficients: Float64Array,
  restScale?: number,
): void {
  const { dim, rank, vectors, eigenvalues, restEigenvalue } = preconditioner;
  const rest = restScale ?? 1 / (curvature * restEigenvalue + l2);
  for (let index = 0; index < rank; index++) coefficients[index] = dot(vectors.subarray(index * dim, (index + 1) * dim), input, dim);
  for (let feature = 0; feature < dim; feature++) input[feature]! *= rest;
  for (let index = 0; index < rank; index++) {
    const factor = coefficients[index]! * (1 / (curvature * eigenvalues[index]! + l2) - rest);
    if (factor !== 0) axpy(factor, vectors.subarray(index * dim, (index + 1) * dim), input);
  }
  input[dim]! /= curvature;
}

/** C·B for every vector of the basis: Zᵀ(Z·B)/N through the engine's two products, Z never formed. */
async function covarianceTimes(engine: MatrixEngine, rows: Int32Array, mean: Float64Array, std: Float64Array, basis: Float64Array[]): Promise<Float64Array[]> {
  const { dim } = engine;
  const count = basis.length;
  const packed = new Float32Array(dim * count);
  const offsets = new Float64Array(count);
  basis.forEach((vector, column) => {
    let offset = 0;
    for (let feature = 0; feature < dim; feature++) {
      const scaled = vector[feature]! / std[feature]!;
      packed[feature * count + column] = scaled;
      offset -= mean[feature]! * scaled;
    }
    offsets[column] = offset;
  });
  const projected = await engine.multiply(packed, count);
  // Only the population's rows take part; the others keep zero weight in the transposed product.
  const centred = new Float32Array(engine.rows * count);
  const columnSums = new Float64Array(count);
  for (const row of rows) {
    for (let column = 0; column < count; column++) {
      const value = projected[row * count + column]! + offsets[column]!;
      centred[row * count + column] = value;
      columnSums[column]! += value;
    }
  }
  const back = await engine.multiplyTransposed(centred, count);
  const scale = 1 / rows.length;
  return basis.map((_, column) => {
    const out = new Float64Array(dim);
    for (let feature = 0; feature < dim; feature++) {
      out[feature] = ((back[feature * count + column]! - mean[feature]! * columnSums[column]!) / std[feature]!) * scale;
    }
    return out;
  });
}

/** Σ over features of the standardised variance: the trace of C (one pass over the rows in JavaScript). */
function standardisedTrace(data: Float32Array, dim: number, rows: Int32Array, mean: Float64Array, std: Float64Array): number {
  const squares = new Float64Array(dim);
  for (const row of rows) {
    const start = row * dim;
    for (let feature = 0; feature < dim; feature++) {
      const centred = data[start + feature]! - mean[feature]!;
      squares[feature]! += centred * centred;
    }
  }
  let trace = 0;
  for (let feature = 0; feature < dim; feature++) trace += squares[feature]! / (std[feature]! * std[feature]!);
  return trace / rows.length;
}

/**
 * Modified Gram–Schmidt, twice per vector for accuracy; a vector that has (numerically) no component
 * outside the previous ones (rank-deficient data) is replaced by a fresh random one.
 */
function orthonormalise(vectors: Float64Array[], random: SeededRandom): Float64Array[] {
  const out: Float64Array[] = [];
  for (const original of vectors) {
    let vector: Float64Array = Float64Array.from(original);
    for (let attempt = 0; ; attempt++) {
      const before = Math.sqrt(dot(vector, vector));
      for (let pass = 0; pass < 2; pass++) for (const previous of out) axpy(-dot(previous, vector), previous, vector);
      const norm = Math.sqrt(dot(vector, vector));
      if (norm > 1e-8 * before && norm > 0) {
        for (let index = 0; index < vector.length; index++) vector[index]! /= norm;
        out.push(vector);
        break;
      }
      if (attempt >= 3) {
        // Every direction is already spanned (width ≥ dim cannot happen by construction); keep the rest empty.
        return out;
      }
      vector = gaussianVector(random, original.length);
    }
  }
  return out;
}

function gaussianVector(random: SeededRandom, length: number): Float64Array {
  return Float64Array.from({ length }, () => Math.sqrt(-2 * Math.log(1 - random.next())) * Math.cos(2 * Math.PI * random.next()));
}

function dot(a: Float64Array, b: Float64Array, length = a.length): number {
  let sum = 0;
  for (let index = 0; index < length; index++) sum += a[index]! * b[index]!;
  return sum;
}

function axpy(alpha: number, x: Float64Array, y: Float64Array): void {
  for (let index = 0; index < x.length; index++) y[index]! += alpha * x[index]!;
}

/**
 * sᵀy ÷ yᵀy restricted to the features' part outside the kept eigenvectors: plain L-BFGS's scale of
 * the identity, measured only where the spectrum gives no curvature. Null when it is not positive.
 */
export function restCurvatureScale(preconditioner: SpectralPreconditioner, s: Float64Array, y: Float64Array): number | null {
  const { dim, rank, vectors } = preconditioner;
  let sy = dot(s, y, dim);
  let yy = dot(y, y, dim);
  for (let index = 0; index < rank; index++) {
    const vector = vectors.subarray(index * dim, (index + 1) * dim);
    const a = dot(vector, s, dim);
    const b = dot(vector, y, dim);
    sy -= a * b;
    yy -= b * b;
  }
  const scale = sy / yy;
  return Number.isFinite(scale) && scale > 0 && yy > 1e-12 * dot(y, y, dim) ? scale : null;
}
