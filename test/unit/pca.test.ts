import { afterAll, describe, expect, it } from 'vitest';
import { choleskyWithDrop, symmetricEigen } from '../../electron/core/math/dense-linear-algebra.js';
import { matrix, multiplyJs, OnnxAffine, OnnxGemm } from '../../electron/core/math/onnx-gemm.js';
import { fitRandomizedPca, gaussianSource, orthonormalColumns, projectionBias, projectJs } from '../../electron/core/math/randomized-pca.js';

const gemm = new OnnxGemm();
afterAll(() => gemm.release());

function randomMatrix(rows: number, cols: number, seed: number) {
  const normal = gaussianSource(seed);
  return matrix(
    rows,
    cols,
    Float32Array.from({ length: rows * cols }, () => normal()),
  );
}

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let index = 0; index < a.length; index++) worst = Math.max(worst, Math.abs(a[index]! - b[index]!));
  return worst;
}

describe('dense linear algebra', () => {
  it('symmetric eigendecomposition (Householder + implicit QR) satisfies A·v = λ·v with orthonormal vectors, sorted descending', () => {
    const n = 40;
    const normal = gaussianSource(3);
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = i; j < n; j++) a[i * n + j] = a[j * n + i] = normal();
    const { values, vectors } = symmetricEigen(a, n);
    for (let col = 0; col < n; col++) {
      for (let row = 0; row < n; row++) {
        let av = 0;
        for (let k = 0; k < n; k++) av += a[row * n + k]! * vectors[k * n + col]!;
        expect(av).toBeCloseTo(values[col]! * vectors[row * n + col]!, 8);
      }
      if (col > 0) expect(values[col]!).toBeLessThanOrEqual(values[col - 1]!);
    }
    let dot = 0;
    for (let k = 0; k < n; k++) dot += vectors[k * n] * vectors[k * n + 1]!;
    expect(Math.abs(dot)).toBeLessThan(1e-10);
  });

  it('Cholesky drops the columns that depend on earlier ones', () => {
    // Columns: e1, e2, e1 + e2 (dependent), e3.
    const y = [
      [1, 0, 1, 0],
      [0, 1, 1, 0],
      [0, 0, 0, 1],
    ];
    const gram = new Float64Array(16);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) gram[i * 4 + j] = y.reduce((sum, row) => sum + row[i]! * row[j]!, 0);
    expect(choleskyWithDrop(gram, 4).kept).toEqual([true, true, false, true]);
  });

  it('ORT products equal the JavaScript loop, including transposed operands', async () => {
    const a = randomMatrix(37, 53, 1);
    const b = randomMatrix(53, 11, 2);
    const expected = multiplyJs(a, b);
    expect(maxAbsDifference((await gemm.multiply(a, b)).data, expected.data)).toBeLessThan(1e-4);
    const aT = matrix(53, 37);
    for (let i = 0; i < 37; i++) for (let j = 0; j < 53; j++) aT.data[j * 37 + i] = a.data[i * 53 + j]!;
    expect(maxAbsDifference((await gemm.multiply(aT, b, true, false)).data, expected.data)).toBeLessThan(1e-4);
  });

  it('orthonormalises a rank-deficient sketch to exactly its rank', async () => {
    const basis = randomMatrix(200, 5, 4);
    const mix = randomMatrix(5, 12, 5);
    const q = await orthonormalColumns(gemm, multiplyJs(basis, mix));
    expect(q.cols).toBe(5);
    const gram = await gemm.multiply(q, q, true, false);
    for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) expect(gram.data[i * 5 + j]!).toBeCloseTo(i === j ? 1 : 0, 4);
  });
});

describe('randomized PCA', () => {
  it('recovers a planted subspace, its variances, and orthonormal axes', async () => {
    const n = 1500;
    const d = 768;
    const rank = 12;
    // Planted orthonormal axes A (d × rank) with standard deviations 12, 11, … 1, plus small isotropic noise.
    const axes = await orthonormalColumns(gemm, randomMatrix(d, rank, 7));
    const scores = randomMatrix(n, rank, 8);
    for (let row = 0; row < n; row++) for (let col = 0; col < rank; col++) scores.data[row * rank + col]! *= rank - col;
    const data = multiplyJs(scores, matrix(rank, d, transpose(axes).data));
    const noise = gaussianSource(9);
    for (let index = 0; index < data.data.length; index++) data.data[index]! += 0.1 * noise() + 0.5;

    const model = await fitRandomizedPca(gemm, data, { components: 16, seed: 1 });
    expect(model.outputDim).toBe(16);
    for (let col = 0; col < rank; col++) {
      expect(Math.sqrt(model.variances[col]!)).toBeGreaterThan((rank - col) * 0.9);
      expect(Math.sqrt(model.variances[col]!)).toBeLessThan((rank - col) * 1.1);
    }
    expect(model.mean[0]!).toBeCloseTo(0.5, 1);
    // Every planted axis lies in the span of the first `rank` components.
    const v = matrix(d, model.outputDim, model.components);
    const overlap = multiplyJs(transpose(axes), v);
    for (let axis = 0; axis < rank; axis++) {
      let captured = 0;
      for (let col = 0; col < rank; col++) captured += overlap.data[axis * model.outputDim + col]! ** 2;
      expect(captured).toBeGreaterThan(0.99);
    }
    const gram = multiplyJs(transpose(v), v);
    for (let i = 0; i < model.outputDim; i++)
      for (let j = 0; j < model.outputDim; j++) expect(gram.data[i * model.outputDim + j]!).toBeCloseTo(i === j ? 1 : 0, 3);

    const affine = await OnnxAffine.create(v, projectionBias(model));
    const rows = data.data.subarray(0, 10 * d);
    expect(maxAbsDifference(await affine.apply(rows), projectJs(model, rows))).toBeLessThan(1e-3);
    await affine.release();
  });

  it('keeps fewer components than asked when the sample has lower rank, and refuses constant data', async () => {
    const basis = randomMatrix(30, 3, 11);
    const data = multiplyJs(basis, randomMatrix(3, 600, 12));
    const model = await fitRandomizedPca(gemm, data, { components: 64 });
    expect(model.outputDim).toBe(3);
    await expect(fitRandomizedPca(gemm, matrix(10, 600, new Float32Array(6000).fill(0.25)), { components: 8 })).rejects.toThrow(/identical|no variance/);
  });
});

function transpose(m: { rows: number; cols: number; data: Float32Array }) {
  const out = matrix(m.cols, m.rows);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) out.data[j * m.rows + i] = m.data[i * m.cols + j]!;
  return out;
}
