/**
 * Pure helpers that order a session's queue: a seeded shuffle and seeded k-means clustering. Same seed,
 * same input → same order on every machine (no Math.random, no iteration-order dependence).
 */
import { seededRandom } from '../../common/seeded-random.js';

/** Fisher–Yates shuffle of a copy, seeded. The input order matters, so callers pass ids sorted. */
export function seededShuffle<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  const random = seededRandom(seed);
  for (let index = out.length - 1; index > 0; index--) {
    const other = Math.floor(random() * (index + 1));
    [out[index], out[other]] = [out[other]!, out[index]!];
  }
  return out;
}

/** Standard normal from the seeded generator (Box–Muller). */
function gaussian(random: () => number): number {
  const u = Math.max(random(), 1e-12);
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export interface KMeansResult {
  /** Cluster index of each row. */
  assignments: Int32Array;
  /** Squared distance of each row to its centroid (in the space clustered). */
  distances: Float32Array;
  clusters: number;
  iterations: number;
}

/**
 * Spherical k-means (rows L2-normalised, so distances follow cosine similarity) with k-means++
 * seeding. Rows wider than `projectTo` are first multiplied by a seeded Gaussian random matrix: by
 * Johnson–Lindenstrauss this keeps distances roughly, and makes clustering 6144-d embeddings cheap
 * enough to run when a session is created.
 */
export function kMeans(data: Float32Array, dim: number, k: number, seed: number, options: { maxIterations?: number; projectTo?: number } = {}): KMeansResult {
  const rows = dim === 0 ? 0 : data.length / dim;
  const clusters = Math.max(1, Math.min(k, rows));
  const random = seededRandom(seed);
  const projectTo = options.projectTo ?? 64;
  let points: Float32Array;
  let width: number;
  if (dim > projectTo) {
    const projection = new Float32Array(dim * projectTo);
    for (let index = 0; index < projection.length; index++) projection[index] = gaussian(random);
    points = new Float32Array(rows * projectTo);
    const accumulator = new Float64Array(projectTo);
    for (let row = 0; row < rows; row++) {
      accumulator.fill(0);
      const offset = row * dim;
      for (let d = 0; d < dim; d++) {
        const value = data[offset + d]!;
        if (value === 0) continue;
        const base = d * projectTo;
        for (let p = 0; p < projectTo; p++) accumulator[p]! += value * projection[base + p]!;
      }
      points.set(accumulator, row * projectTo);
    }
    width = projectTo;
  } else {
    points = Float32Array.from(data);
    width = dim;
  }
  for (let row = 0; row < rows; row++) {
    let norm = 0;
    for (let d = 0; d < width; d++) norm += points[row * width + d]! ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let d = 0; d < width; d++) points[row * width + d]! /= norm;
  }

  const squaredDistance = (row: number, centroids: Float64Array, cluster: number) => {
    let sum = 0;
    for (let d = 0; d < width; d++) {
      const difference = points[row * width + d]! - centroids[cluster * width + d]!;
      sum += difference * difference;
    }
    return sum;
  };

  // k-means++: each next centre is drawn with probability proportional to squared distance.
  const centroids = new Float64Array(clusters * width);
  const nearest = new Float64Array(rows).fill(Number.POSITIVE_INFINITY);
  let chosen = Math.floor(random() * rows);
  for (let cluster = 0; cluster < clusters; cluster++) {
    for (let d = 0; d < width; d++) centroids[cluster * width + d] = points[chosen * width + d]!;
    let total = 0;
    for (let row = 0; row < rows; row++) {
      nearest[row] = Math.min(nearest[row]!, squaredDistance(row, centroids, cluster));
      total += nearest[row]!;
    }
    if (cluster + 1 === clusters) break;
    let target = random() * total;
    chosen = rows - 1;
    for (let row = 0; row < rows; row++) {
      target -= nearest[row]!;
      if (target <= 0) {
        chosen = row;
        break;
      }
    }
  }

  const assignments = new Int32Array(rows).fill(-1);
  const distances = new Float32Array(rows);
  const maxIterations = options.maxIterations ?? 30;
  let iterations = 0;
  for (; iterations < maxIterations; iterations++) {
    let changed = 0;
    for (let row = 0; row < rows; row++) {
      let best = 0;
      let bestDistance = Number.POSITIVE_INFINITY;
      for (let cluster = 0; cluster < clusters; cluster++) {
        const distance = squaredDistance(row, centroids, cluster);
        if (distance < bestDistance) {
          bestDistance = distance;
          best = cluster;
        }
      }
      if (assignments[row] !== best) changed++;
      assignments[row] = best;
      distances[row] = bestDistance;
    }
    if (changed === 0) break;
    const counts = new Float64Array(clusters);
    const sums = new Float64Array(clusters * width);
    for (let row = 0; row < rows; row++) {
      const cluster = assignments[row]!;
      counts[cluster]!++;
      for (let d = 0; d < width; d++) sums[cluster * width + d]! += points[row * width + d]!;
    }
    for (let cluster = 0; cluster < clusters; cluster++) {
      // An emptied cluster keeps its old centre rather than jumping somewhere arbitrary.
      if (counts[cluster] === 0) continue;
      for (let d = 0; d < width; d++) centroids[cluster * width + d] = sums[cluster * width + d]! / counts[cluster]!;
    }
  }
  return { assignments, distances, clusters, iterations };
}

/**
 * Orders rows cluster by cluster (largest cluster first, ties by cluster index) and within a cluster
 * from the most typical image (nearest its centre) outwards. Returns row indexes.
 */
export function clusterOrder(result: KMeansResult): number[] {
  const sizes = new Array<number>(result.clusters).fill(0);
  for (const cluster of result.assignments) sizes[cluster]!++;
  const rank = sizes.map((size, cluster) => ({ size, cluster })).sort((a, b) => b.size - a.size || a.cluster - b.cluster);
  const position = new Array<number>(result.clusters);
  rank.forEach((entry, index) => (position[entry.cluster] = index));
  return Array.from(result.assignments.keys()).sort(
    (a, b) => position[result.assignments[a]!]! - position[result.assignments[b]!]! || result.distances[a]! - result.distances[b]! || a - b,
  );
}
