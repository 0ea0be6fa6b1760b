import { DermError } from '../../common/errors.js';
import { SeededRandom } from '../../common/seeded-random.js';
import { choleskyWithDrop, symmetricEigen, upperTriangularInverseKept } from './dense-linear-algebra.js';
import { matrix, type Matrix, type OnnxGemm } from './onnx-gemm.js';

/**
 * Randomized PCA (Halko, Martinsson & Tropp's range finder with power iterations): a random sketch
 * Y = X·Ω captures the dominant column space of the centred sample X, a few power iterations sharpen
 * it, and the exact SVD is taken only of the small l×d matrix B = Qᵀ·X through the l×l matrix B·Bᵀ.
 * Everything of size n×d goes through onnxruntime matrix products; a full d×d eigendecomposition
 * (6144² for Derm Foundation) is never formed.
 */

export interface PcaFitOptions {
  /** Number of components wanted. Fewer are returned when the sample has lower rank. */
  components: number;
  /** Extra sketch columns beyond `components` (improves accuracy of the trailing components). */
  oversampling?: number;
  powerIterations?: number;
  /** Seed for the Gaussian test matrix, so a fit is reproducible. */
  seed?: number;
  /** Centre the sample in its own array instead of a copy (halves the memory of a 16k × 6144 fit; the caller's sample is overwritten). */
  centreInPlace?: boolean;
}

export interface PcaModel {
  inputDim: number;
  /** Number of components actually kept (≤ the number asked for). */
  outputDim: number;
  mean: Float32Array;
  /** inputDim × outputDim, row-major: column j is the j-th principal axis (unit length). */
  components: Float32Array;
  /** Variance along each component, descending. */
  variances: Float64Array;
  /** Sum of the variances of every input dimension (to report the fraction explained). */
  totalVariance: number;
  sampleSize: number;
}

/** Deterministic standard normal numbers (mulberry32 + Box–Muller). */
export function gaussianSource(seed: number): () => number {
  const random = new SeededRandom(seed);
  // Half a step up from the generator's [0, 1) grid, so log() never sees 0. Exact in float64: the
  // same values a fitted projection was drawn with.
  const uniform = () => random.next() + 0.5 / 4294967296;
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const value = spare;
      spare = undefined;
      return value;
    }
    const radius = Math.sqrt(-2 * Math.log(uniform()));
    const angle = 2 * Math.PI * uniform();
    spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  };
}

/** Orthonormal basis of the column space of Y (CholeskyQR2 with Grams from ORT, dependent columns dropped). */
export async function orthonormalColumns(gemm: OnnxGemm, y: Matrix): Promise<Matrix> {
  let current = y;
  for (let pass = 0; pass < 2; pass++) {
    const gram = await gemm.multiply(current, current, true, false);
    const { r, kept } = choleskyWithDrop(Float64Array.from(gram.data), current.cols, pass === 0 ? 1e-5 : 1e-6);
    const { inverse, columns } = upperTriangularInverseKept(r, current.cols, kept);
    if (columns === 0) return matrix(current.rows, 0);
    current = await gemm.multiply(current, matrix(current.cols, columns, Float32Array.from(inverse)));
  }
  return current;
}

export async function fitRandomizedPca(gemm: OnnxGemm, sample: Matrix, options: PcaFitOptions): Promise<PcaModel> {
  const n = sample.rows;
  const d = sample.cols;
  if (n < 2) throw new DermError('invalid-input', `A projection needs at least 2 embeddings to fit; got ${n}.`);
  if (!Number.isInteger(options.components) || options.components < 1) {
    throw new DermError('invalid-input', `PCA components must be a positive whole number; got ${options.components}.`);
  }
  const oversampling = options.oversampling ?? 16;
  const powerIterations = options.powerIterations ?? 2;
  const sketchColumns = Math.min(options.components + oversampling, d, n);

  const mean = new Float64Array(d);
  for (let row = 0; row < n; row++) {
    const offset = row * d;
    for (let col = 0; col < d; col++) mean[col]! += sample.data[offset + col]!;
  }
  for (let col = 0; col < d; col++) mean[col]! /= n;
  const centred = options.centreInPlace ? sample : matrix(n, d);
  let totalVariance = 0;
  for (let row = 0; row < n; row++) {
    const offset = row * d;
    for (let col = 0; col < d; col++) {
      const value = sample.data[offset + col]! - mean[col]!;
      centred.data[offset + col] = value;
      totalVariance += value * value;
    }
  }
  totalVariance /= n - 1;

  const normal = gaussianSource(options.seed ?? 20240611);
  const omega = matrix(d, sketchColumns);
  for (let index = 0; index < omega.data.length; index++) omega.data[index] = normal();

  let q = await orthonormalColumns(gemm, await gemm.multiply(centred, omega));
  for (let iteration = 0; iteration < powerIterations && q.cols > 0; iteration++) {
    const z = await orthonormalColumns(gemm, await gemm.multiply(centred, q, true, false));
    if (z.cols === 0) break;
    q = await orthonormalColumns(gemm, await gemm.multiply(centred, z));
  }
  const l = q.cols;
  if (l === 0) throw new DermError('embeddings-invalid', `The ${n} sampled embeddings are all identical; a projection cannot be fitted.`);

  const b = await gemm.multiply(q, centred, true, false); // l × d
  const small = await gemm.multiply(b, b, false, true); // l × l
  const { values, vectors } = symmetricEigen(Float64Array.from(small.data), l);

  const largest = Math.max(values[0]!, 0);
  let keep = 0;
  while (keep < Math.min(options.components, l) && values[keep]! > largest * 1e-10) keep++;
  if (keep === 0) throw new DermError('embeddings-invalid', `The ${n} sampled embeddings have no variance; a projection cannot be fitted.`);

  // Right singular vectors: V = Bᵀ · U_k · Σ_k⁻¹ (d × keep).
  const scaled = matrix(l, keep);
  for (let row = 0; row < l; row++) {
    for (let col = 0; col < keep; col++) scaled.data[row * keep + col] = vectors[row * l + col]! / Math.sqrt(values[col]!);
  }
  const components = await gemm.multiply(b, scaled, true, false);
  const variances = new Float64Array(keep);
  for (let col = 0; col < keep; col++) variances[col] = values[col]! / (n - 1);

  return {
    inputDim: d,
    outputDim: keep,
    mean: Float32Array.from(mean),
    components: components.data,
    variances,
    totalVariance,
    sampleSize: n,
  };
}

/** Bias of the affine projection x ↦ (x − mean)·V = x·V − mean·V. */
export function projectionBias(model: Pick<PcaModel, 'inputDim' | 'outputDim' | 'mean' | 'components'>): Float32Array {
  const bias = new Float64Array(model.outputDim);
  for (let row = 0; row < model.inputDim; row++) {
    const m = model.mean[row]!;
    if (m === 0) continue;
    const offset = row * model.outputDim;
    for (let col = 0; col < model.outputDim; col++) bias[col]! -= m * model.components[offset + col]!;
  }
  return Float32Array.from(bias);
}

/** The same projection in plain JavaScript (reference for tests and the bench). */
export function projectJs(model: Pick<PcaModel, 'inputDim' | 'outputDim' | 'mean' | 'components'>, rows: Float32Array): Float32Array {
  const count = rows.length / model.inputDim;
  const out = new Float32Array(count * model.outputDim);
  for (let row = 0; row < count; row++) {
    const acc = new Float64Array(model.outputDim);
    for (let i = 0; i < model.inputDim; i++) {
      const value = rows[row * model.inputDim + i]! - model.mean[i]!;
      const offset = i * model.outputDim;
      for (let col = 0; col < model.outputDim; col++) acc[col]! += value * model.components[offset + col]!;
    }
    out.set(acc, row * model.outputDim);
  }
  return out;
}
