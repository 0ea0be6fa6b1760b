/**
 * The small dense linear algebra the randomized PCA needs on l×l matrices (l ≈ 270): a Cholesky
 * factorisation that drops numerically dependent columns, triangular inversion, and a symmetric
 * eigendecomposition. These run in float64 in JavaScript because the matrices are tiny; the big
 * products go through onnxruntime (onnx-gemm.ts).
 */

/**
 * Cholesky factor R (upper triangular, row-major n×n, G = RᵀR) of a symmetric positive semi-definite
 * matrix. A pivot below `relativeTolerance` × the largest diagonal entry means that column is a
 * linear combination of the earlier ones; it is dropped (its row of R is left zero) and reported, so
 * the caller can remove the direction instead of dividing by noise.
 */
export function choleskyWithDrop(gram: Float64Array, n: number, relativeTolerance = 1e-10): { r: Float64Array; kept: boolean[] } {
  const r = new Float64Array(n * n);
  const kept = new Array<boolean>(n).fill(false);
  let maxDiagonal = 0;
  for (let i = 0; i < n; i++) maxDiagonal = Math.max(maxDiagonal, gram[i * n + i]!);
  const tolerance = maxDiagonal * relativeTolerance;
  for (let j = 0; j < n; j++) {
    let pivot = gram[j * n + j]!;
    for (let k = 0; k < j; k++) pivot -= r[k * n + j]! * r[k * n + j]!;
    if (!(pivot > tolerance)) continue;
    const diagonal = Math.sqrt(pivot);
    kept[j] = true;
    r[j * n + j] = diagonal;
    for (let i = j + 1; i < n; i++) {
      let value = gram[j * n + i]!;
      for (let k = 0; k < j; k++) value -= r[k * n + j]! * r[k * n + i]!;
      r[j * n + i] = value / diagonal;
    }
  }
  return { r, kept };
}

/**
 * Inverse of an upper-triangular R restricted to the kept columns: returns an n×m matrix (m = number
 * kept, row-major) such that Y · result has orthonormal columns when RᵀR = YᵀY.
 */
export function upperTriangularInverseKept(r: Float64Array, n: number, kept: boolean[]): { inverse: Float64Array; columns: number } {
  const keptIndex = kept.flatMap((isKept, index) => (isKept ? [index] : []));
  const m = keptIndex.length;
  // Solve R_kk · X = I on the kept sub-system, column by column (back substitution).
  const inverse = new Float64Array(n * m);
  for (let c = 0; c < m; c++) {
    const column = keptIndex[c]!;
    for (let rowPosition = c; rowPosition >= 0; rowPosition--) {
      const row = keptIndex[rowPosition]!;
      let value = row === column ? 1 : 0;
      for (let p = rowPosition + 1; p <= c; p++) {
        const other = keptIndex[p]!;
        value -= r[row * n + other]! * inverse[other * m + c]!;
      }
      inverse[row * m + c] = value / r[row * n + row]!;
    }
  }
  return { inverse, columns: m };
}

/**
 * Eigendecomposition of a symmetric n×n matrix by cyclic Jacobi rotations: robust, simple, and fast
 * enough for n of a few hundred. Returns eigenvalues in descending order and the matching eigenvectors
 * as the columns of a row-major n×n matrix.
 */
export function symmetricEigen(input: Float64Array, n: number, maxSweeps = 30): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(input);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale += a[i]! * a[i]!;
  const threshold = 1e-22 * Math.max(scale, Number.MIN_VALUE);
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let offDiagonal = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) offDiagonal += a[p * n + q]! * a[p * n + q]!;
    if (offDiagonal <= threshold) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const app = a[p * n + p]!;
        const aqq = a[q * n + q]!;
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!;
          const akq = a[k * n + q]!;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!;
          const aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, index) => index).sort((x, y) => a[y * n + y]! - a[x * n + x]!);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((source, target) => {
    values[target] = a[source * n + source]!;
    for (let k = 0; k < n; k++) vectors[k * n + target] = v[k * n + source]!;
  });
  return { values, vectors };
}
