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
 * Eigendecomposition of a symmetric n×n matrix: Householder reduction to tridiagonal form, then
 * implicit QR steps with Wilkinson shifts (Golub & Van Loan, §8.3). O(n³) with a small constant, so a
 * 272×272 matrix takes a fraction of a second in JavaScript. Returns eigenvalues in descending order
 * and the matching eigenvectors as the columns of a row-major n×n matrix.
 */
export function symmetricEigen(input: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const t = Float64Array.from(input);
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) q[i * n + i] = 1;

  // Householder tridiagonalisation: T = Qᵀ A Q, with Q = H₀ H₁ … accumulated on the right.
  const v = new Float64Array(n);
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    let norm = 0;
    for (let i = k + 1; i < n; i++) norm += t[i * n + k]! * t[i * n + k]!;
    norm = Math.sqrt(norm);
    if (norm === 0) continue;
    const x0 = t[(k + 1) * n + k]!;
    const alpha = x0 > 0 ? -norm : norm;
    let vNorm = 0;
    for (let i = k + 1; i < n; i++) {
      v[i] = t[i * n + k]! - (i === k + 1 ? alpha : 0);
      vNorm += v[i]! * v[i]!;
    }
    if (vNorm === 0) continue;
    const beta = 2 / vNorm;
    let vp = 0;
    for (let i = k + 1; i < n; i++) {
      let sum = 0;
      for (let j = k + 1; j < n; j++) sum += t[i * n + j]! * v[j]!;
      p[i] = beta * sum;
      vp += v[i]! * p[i]!;
    }
    const half = (beta * vp) / 2;
    for (let i = k + 1; i < n; i++) p[i]! -= half * v[i]!;
    for (let i = k + 1; i < n; i++) {
      for (let j = k + 1; j < n; j++) t[i * n + j]! -= v[i]! * p[j]! + p[i]! * v[j]!;
    }
    for (let i = k + 1; i < n; i++) t[i * n + k] = t[k * n + i] = 0;
    t[(k + 1) * n + k] = t[k * n + k + 1] = alpha;
    for (let row = 0; row < n; row++) {
      let sum = 0;
      for (let i = k + 1; i < n; i++) sum += q[row * n + i]! * v[i]!;
      if (sum === 0) continue;
      sum *= beta;
      for (let i = k + 1; i < n; i++) q[row * n + i]! -= sum * v[i]!;
    }
  }

  // Rotation in the plane (a, a + 1), applied as T ← Gᵀ T G on the band around it and Q ← Q G.
  const rotate = (a: number, c: number, s: number, lo: number, hi: number) => {
    const b = a + 1;
    const from = Math.max(lo, a - 1);
    const to = Math.min(hi, b + 1);
    for (let j = from; j <= to; j++) {
      const ta = t[j * n + a]!;
      const tb = t[j * n + b]!;
      t[j * n + a] = c * ta - s * tb;
      t[j * n + b] = s * ta + c * tb;
    }
    for (let j = from; j <= to; j++) {
      const ta = t[a * n + j]!;
      const tb = t[b * n + j]!;
      t[a * n + j] = c * ta - s * tb;
      t[b * n + j] = s * ta + c * tb;
    }
    for (let row = 0; row < n; row++) {
      const qa = q[row * n + a]!;
      const qb = q[row * n + b]!;
      q[row * n + a] = c * qa - s * qb;
      q[row * n + b] = s * qa + c * qb;
    }
  };

  let hi = n - 1;
  let iterations = 0;
  while (hi > 0 && iterations < 60 * n) {
    for (let i = 0; i < hi; i++) {
      if (Math.abs(t[(i + 1) * n + i]!) <= 1e-15 * (Math.abs(t[i * n + i]!) + Math.abs(t[(i + 1) * n + i + 1]!))) {
        t[(i + 1) * n + i] = t[i * n + i + 1] = 0;
      }
    }
    if (t[hi * n + hi - 1] === 0) {
      hi--;
      continue;
    }
    let lo = hi - 1;
    while (lo > 0 && t[lo * n + lo - 1] !== 0) lo--;
    iterations++;
    const a = t[(hi - 1) * n + hi - 1]!;
    const b = t[hi * n + hi - 1]!;
    const delta = (a - t[hi * n + hi]!) / 2;
    const shift = t[hi * n + hi]! - (b * b) / (delta + (delta >= 0 ? 1 : -1) * Math.hypot(delta, b));
    let x = t[lo * n + lo]! - shift;
    let z = t[(lo + 1) * n + lo]!;
    for (let k = lo; k < hi; k++) {
      const r = Math.hypot(x, z);
      if (r === 0) break;
      rotate(k, x / r, -z / r, lo, hi);
      if (k < hi - 1) {
        x = t[(k + 1) * n + k]!;
        z = t[(k + 2) * n + k]!;
      }
    }
  }

  const order = Array.from({ length: n }, (_, index) => index).sort((i, j) => t[j * n + j]! - t[i * n + i]!);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((source, target) => {
    values[target] = t[source * n + source]!;
    for (let k = 0; k < n; k++) vectors[k * n + target] = q[k * n + source]!;
  });
  return { values, vectors };
}
