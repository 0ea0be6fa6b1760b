/** Cosine helpers and the exact (brute-force) nearest-neighbour scan every approximate result is judged against. */

export interface Neighbour {
  imageId: number;
  /** Cosine similarity in [-1, 1]. */
  similarity: number;
}

/** A unit-length copy (a zero vector stays zero). */
export function normalized(vector: ArrayLike<number>): Float32Array {
  let norm = 0;
  for (let index = 0; index < vector.length; index++) norm += vector[index]! * vector[index]!;
  const out = new Float32Array(vector.length);
  if (norm === 0) return out;
  const scale = 1 / Math.sqrt(norm);
  for (let index = 0; index < vector.length; index++) out[index] = vector[index]! * scale;
  return out;
}

/** Normalises each row of a row-major matrix in place. */
export function normalizeRows(data: Float32Array, dim: number): Float32Array {
  for (let offset = 0; offset < data.length; offset += dim) {
    let norm = 0;
    for (let index = offset; index < offset + dim; index++) norm += data[index]! * data[index]!;
    if (norm === 0) continue;
    const scale = 1 / Math.sqrt(norm);
    for (let index = offset; index < offset + dim; index++) data[index]! *= scale;
  }
  return data;
}

export function dot(a: Float32Array, b: Float32Array, bOffset = 0): number {
  let sum = 0;
  for (let index = 0; index < a.length; index++) sum += a[index]! * b[bOffset + index]!;
  return sum;
}

/** Cosine of two vectors, or of `a` and row `bOffset / a.length` of a matrix `b`. Typed arrays only: this is the re-rank hot loop. */
export function cosine(a: Float32Array, b: Float32Array, bOffset = 0): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let index = 0; index < a.length; index++) {
    const x = a[index]!;
    const y = b[bOffset + index]!;
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return aa === 0 || bb === 0 ? 0 : ab / Math.sqrt(aa * bb);
}

/**
 * Cosine of a unit-length `unit` and any `b`: one pass without the query's own norm (the re-rank loop).
 * No branch on zeros: on post-ReLU rows (zeros at random places) a skip mispredicts about half the
 * time and costs more than the multiply it saves.
 */
export function cosineWithUnit(unit: Float32Array, b: Float32Array): number {
  let ab = 0;
  let bb = 0;
  for (let index = 0; index < unit.length; index++) {
    const y = b[index]!;
    ab += unit[index]! * y;
    bb += y * y;
  }
  return bb === 0 ? 0 : ab / Math.sqrt(bb);
}

/** Keeps the k best (highest similarity) neighbours seen so far; ties keep the lower image id first. */
export class TopK {
  private readonly items: Neighbour[] = [];

  constructor(private readonly k: number) {}

  get worst(): number {
    return this.items.length < this.k ? -Infinity : this.items[this.items.length - 1]!.similarity;
  }

  offer(imageId: number, similarity: number): void {
    if (this.items.length >= this.k && similarity <= this.worst) return;
    let position = this.items.length;
    while (position > 0 && this.items[position - 1]!.similarity < similarity) position--;
    this.items.splice(position, 0, { imageId, similarity });
    if (this.items.length > this.k) this.items.pop();
  }

  result(): Neighbour[] {
    return this.items.slice();
  }
}

/**
 * Exact search over normalised rows held in memory: the project's brute-force scan. Used for
 * heavily filtered queries, as the reference in tests, and side by side with the index in the bench.
 */
export function exactSearch(
  query: Float32Array,
  rows: Float32Array,
  imageIds: ArrayLike<number>,
  k: number,
  allow?: (imageId: number) => boolean,
): Neighbour[] {
  const dim = query.length;
  const top = new TopK(k);
  for (let row = 0; row < imageIds.length; row++) {
    const imageId = imageIds[row]!;
    if (allow && !allow(imageId)) continue;
    top.offer(imageId, dot(query, rows, row * dim));
  }
  return top.result();
}
