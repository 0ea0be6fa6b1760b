import { describe, expect, it } from 'vitest';
import { featureStatistics, fitLogisticModels, predictAll, type LogisticOptions, type ProbeModelSpec } from '../../electron/core/math/logistic-regression.js';
import { MatrixEngine } from '../../electron/core/math/matrix-engine.js';
import { SeededRandom } from '../../electron/common/seeded-random.js';
import { symmetricEigen } from '../../electron/core/math/dense-linear-algebra.js';
import { covarianceSpectrum } from '../../electron/core/math/spectral-preconditioner.js';

const rows = 400;
const dim = 48;
const latentRank = 6;
const labelCount = 3;

function gaussian(random: SeededRandom): number {
  return Math.sqrt(-2 * Math.log(1 - random.next())) * Math.cos(2 * Math.PI * random.next());
}

/**
 * Shaped like encoder output: a low-rank map of a per-image latent vector through a ReLU (non-negative,
 * many exact zeros, features strongly correlated), plus three labels that are noisy thresholds on
 * latent directions with prevalences of about 40%, 20% and 8%.
 */
function embeddings(seed: number) {
  const random = new SeededRandom(seed);
  const latent = Float64Array.from({ length: rows * latentRank }, () => gaussian(random));
  const factors = Float64Array.from({ length: latentRank * dim }, () => gaussian(random));
  const data = new Float32Array(rows * dim);
  for (let row = 0; row < rows; row++) {
    for (let feature = 0; feature < dim; feature++) {
      let value = 0.3 * gaussian(random) - 0.5;
      for (let k = 0; k < latentRank; k++) value += latent[row * latentRank + k]! * factors[k * dim + feature]!;
      data[row * dim + feature] = Math.max(0, value);
    }
  }
  const targets = new Uint8Array(rows * labelCount);
  const thresholds = [0.25, 0.85, 1.4];
  for (let row = 0; row < rows; row++) {
    for (let label = 0; label < labelCount; label++)
      targets[row * labelCount + label] = latent[row * latentRank + label]! + 0.5 * gaussian(random) > thresholds[label]! ? 1 : 0;
  }
  return { data, targets, known: new Uint8Array(rows * labelCount).fill(1) };
}

const allRows = Int32Array.from({ length: rows }, (_, row) => row);

/** The standardised features written out in float64. */
function standardised(data: Float32Array, model: ProbeModelSpec): Float64Array {
  const z = new Float64Array(rows * dim);
  for (let row = 0; row < rows; row++)
    for (let feature = 0; feature < dim; feature++) z[row * dim + feature] = (data[row * dim + feature]! - model.mean[feature]!) / model.std[feature]!;
  return z;
}

/**
 * Reference optimum of one label in float64 by Newton's method with the full Hessian (dim + 1 unknowns,
 * solved by Gaussian elimination with partial pivoting), iterated until the step is below 1e-13:
 * independent of the solver under test, its float32 products and its stopping rule.
 */
function newtonReference(z: Float64Array, targets: Uint8Array, label: number, l2: number): Float64Array {
  const size = dim + 1;
  const theta = new Float64Array(size);
  for (let iteration = 0; iteration < 100; iteration++) {
    const gradient = new Float64Array(size);
    const hessian = new Float64Array(size * size);
    for (let row = 0; row < rows; row++) {
      let logit = theta[dim]!;
      for (let feature = 0; feature < dim; feature++) logit += z[row * dim + feature]! * theta[feature]!;
      const p = 1 / (1 + Math.exp(-logit));
      const residual = (p - targets[row * labelCount + label]!) / rows;
      const weight = (p * (1 - p)) / rows;
      for (let a = 0; a < size; a++) {
        const za = a === dim ? 1 : z[row * dim + a]!;
        gradient[a]! += residual * za;
        for (let b = 0; b < size; b++) hessian[a * size + b]! += weight * za * (b === dim ? 1 : z[row * dim + b]!);
      }
    }
    for (let feature = 0; feature < dim; feature++) {
      gradient[feature]! += l2 * theta[feature]!;
      hessian[feature * size + feature]! += l2;
    }
    const step = solve(hessian, gradient, size);
    let largest = 0;
    for (let index = 0; index < size; index++) {
      theta[index]! -= step[index]!;
      largest = Math.max(largest, Math.abs(step[index]!));
    }
    if (largest < 1e-13) break;
  }
  return theta;
}

function solve(matrix: Float64Array, vector: Float64Array, n: number): Float64Array {
  const a = Float64Array.from(matrix);
  const b = Float64Array.from(vector);
  for (let column = 0; column < n; column++) {
    let pivot = column;
    for (let row = column + 1; row < n; row++) if (Math.abs(a[row * n + column]!) > Math.abs(a[pivot * n + column]!)) pivot = row;
    for (let k = 0; k < n; k++) [a[column * n + k], a[pivot * n + k]] = [a[pivot * n + k]!, a[column * n + k]!];
    [b[column], b[pivot]] = [b[pivot]!, b[column]!];
    for (let row = column + 1; row < n; row++) {
      const factor = a[row * n + column]! / a[column * n + column]!;
      for (let k = column; k < n; k++) a[row * n + k]! -= factor * a[column * n + k]!;
      b[row]! -= factor * b[column]!;
    }
  }
  const x = new Float64Array(n);
  for (let row = n - 1; row >= 0; row--) {
    let sum = b[row]!;
    for (let k = row + 1; k < n; k++) sum -= a[row * n + k]! * x[k]!;
    x[row] = sum / a[row * n + row]!;
  }
  return x;
}

describe('spectral preconditioner of the probe solver', () => {
  it('finds the leading eigenvalues of the standardised covariance (checked against the covariance written out)', async () => {
    const { data } = embeddings(11);
    const engine = await MatrixEngine.create(data, rows, dim, 1);
    const model: ProbeModelSpec = { trainingRows: allRows, ...featureStatistics(data, dim, allRows) };
    const spectrum = await covarianceSpectrum(engine, allRows, model.mean, model.std, { rank: 4, oversample: 8, iterations: 4, seed: 7 });
    await engine.release();
    const z = standardised(data, model);
    const covariance = new Float64Array(dim * dim);
    for (let row = 0; row < rows; row++) {
      for (let a = 0; a < dim; a++) for (let b = 0; b < dim; b++) covariance[a * dim + b]! += (z[row * dim + a]! * z[row * dim + b]!) / rows;
    }
    const exact = Array.from(symmetricEigen(covariance, dim).values).sort((a, b) => b - a);
    expect(spectrum).not.toBeNull();
    for (let index = 0; index < 4; index++) expect(spectrum!.eigenvalues[index]! / exact[index]!).toBeCloseTo(1, 3);
    // The rest is one eigenvalue: the larger of the leftover trace's mean and the largest eigenvalue not kept
    // (here the fifth: the data has six strong directions, so the mean would overstate steps along it).
    const trace = exact.reduce((sum, value) => sum + value, 0);
    const leftoverMean = (trace - exact.slice(0, 4).reduce((sum, value) => sum + value, 0)) / (dim - 4);
    expect(exact[4]!).toBeGreaterThan(2 * leftoverMean);
    expect(spectrum!.restEigenvalue / exact[4]!).toBeCloseTo(1, 2);
    // Eigenvectors are orthonormal.
    for (let a = 0; a < 4; a++) {
      for (let b = 0; b < 4; b++) {
        let product = 0;
        for (let feature = 0; feature < dim; feature++) product += spectrum!.vectors[a * dim + feature]! * spectrum!.vectors[b * dim + feature]!;
        expect(product).toBeCloseTo(a === b ? 1 : 0, 8);
      }
    }
  });

  // Rank 8 covers the six strong directions of the data; rank 3 misses half of them, and must still converge to the same optimum.
  it.each([8, 3])('reaches the float64 Newton optimum as the plain solver does, in fewer passes over the matrix (rank %i)', async (rank) => {
    const { data, targets, known } = embeddings(12);
    const engine = await MatrixEngine.create(data, rows, dim, 1);
    const model: ProbeModelSpec = { trainingRows: allRows, ...featureStatistics(data, dim, allRows) };
    const options: LogisticOptions = { l2: 1e-2, classWeights: false, maxIterations: 500, tolerance: 3e-5 };
    const preconditioner = await covarianceSpectrum(engine, allRows, model.mean, model.std, { rank, oversample: 8, iterations: 3, seed: 1 });
    const plain = await fitLogisticModels(engine, targets, known, labelCount, [model], options);
    const preconditioned = await fitLogisticModels(engine, targets, known, labelCount, [model], { ...options, preconditioner });
    const plainProbabilities = await predictAll(engine, plain.weights[0]!, plain.offsets[0]!);
    const preconditionedProbabilities = await predictAll(engine, preconditioned.weights[0]!, preconditioned.offsets[0]!);
    await engine.release();

    const z = standardised(data, model);
    let plainWorst = 0;
    let preconditionedWorst = 0;
    for (let label = 0; label < labelCount; label++) {
      const theta = newtonReference(z, targets, label, options.l2);
      for (let row = 0; row < rows; row++) {
        let logit = theta[dim]!;
        for (let feature = 0; feature < dim; feature++) logit += z[row * dim + feature]! * theta[feature]!;
        const reference = 1 / (1 + Math.exp(-logit));
        plainWorst = Math.max(plainWorst, Math.abs(plainProbabilities[row * labelCount + label]! - reference));
        preconditionedWorst = Math.max(preconditionedWorst, Math.abs(preconditionedProbabilities[row * labelCount + label]! - reference));
      }
    }
    // The promise for the default tolerance: probabilities within 1e-3 of the optimum, either way.
    expect(plainWorst).toBeLessThan(1e-3);
    expect(preconditionedWorst).toBeLessThan(1e-3);
    expect(preconditioned.outcomes).toEqual(['converged', 'converged', 'converged']);
    expect(preconditioned.passes).toBeLessThan(plain.passes);
  });

  it('is deterministic: the same matrix, rows and seed give bit-identical eigenpairs and fits', async () => {
    const { data, targets, known } = embeddings(13);
    const results = [];
    for (let run = 0; run < 2; run++) {
      const engine = await MatrixEngine.create(Float32Array.from(data), rows, dim, 1);
      const model: ProbeModelSpec = { trainingRows: allRows, ...featureStatistics(data, dim, allRows) };
      const preconditioner = await covarianceSpectrum(engine, allRows, model.mean, model.std, { rank: 8, oversample: 8, iterations: 3, seed: 1 });
      const fit = await fitLogisticModels(engine, targets, known, labelCount, [model], {
        l2: 1e-2,
        classWeights: false,
        maxIterations: 500,
        tolerance: 3e-5,
        preconditioner,
      });
      results.push({ vectors: Array.from(preconditioner!.vectors), weights: Array.from(fit.weights[0]!) });
      await engine.release();
    }
    expect(results[1]).toEqual(results[0]);
  });

  it('tolerates rank-deficient data: duplicated and constant features', async () => {
    const { data, targets, known } = embeddings(14);
    // Every feature copied from the first six, and the last one constant.
    const deficient = Float32Array.from(data, (_, index) => (index % dim === dim - 1 ? 2 : data[Math.floor(index / dim) * dim + (index % 6)]!));
    const engine = await MatrixEngine.create(deficient, rows, dim, 1);
    const model: ProbeModelSpec = { trainingRows: allRows, ...featureStatistics(deficient, dim, allRows) };
    const preconditioner = await covarianceSpectrum(engine, allRows, model.mean, model.std, { rank: 16, oversample: 8, iterations: 3, seed: 1 });
    expect(preconditioner).not.toBeNull();
    expect(Array.from(preconditioner!.eigenvalues).every(Number.isFinite)).toBe(true);
    const fit = await fitLogisticModels(engine, targets, known, labelCount, [model], {
      l2: 1e-2,
      classWeights: true,
      maxIterations: 500,
      tolerance: 3e-5,
      preconditioner,
    });
    await engine.release();
    expect(fit.outcomes.every((outcome) => outcome === 'converged' || outcome === 'line-search-stalled')).toBe(true);
    expect(Array.from(fit.weights[0]!).every(Number.isFinite)).toBe(true);
  });
});
