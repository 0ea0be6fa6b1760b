import type { z } from 'zod';
import type { reliabilityBinSchema, storedRocCurveSchema } from '../../common/contract.js';
import { SeededRandom } from '../../common/seeded-random.js';

/**
 * Evaluation metrics for probabilistic binary predictions. Everything takes the rows to use
 * explicitly (an Int32Array of row indices) so callers evaluate a fold, a subgroup or the whole set
 * without copying arrays.
 */

/** Rows sorted by score with tie blocks marked: computed once, reused by every bootstrap replicate. */
export interface RankedScores {
  /** Row indices in ascending score order. */
  order: Int32Array;
  /** Start positions of the tie blocks in `order`, followed by order.length. */
  blockStarts: Int32Array;
  /** 1 for a positive, 0 for a negative, by position in `order`. */
  sortedTargets: Uint8Array;
  /** 1 at the last position of each tie block. */
  blockLast: Uint8Array;
}

export function rankScores(scores: ArrayLike<number>, targets: ArrayLike<number>, rows: Int32Array): RankedScores {
  const order = Int32Array.from(rows).sort((a, b) => scores[a]! - scores[b]! || a - b);
  const sortedTargets = Uint8Array.from(order, (row) => (targets[row] ? 1 : 0));
  const starts: number[] = [];
  for (let position = 0; position < order.length; position++) {
    if (position === 0 || scores[order[position]!] !== scores[order[position - 1]!]) starts.push(position);
  }
  starts.push(order.length);
  const blockLast = new Uint8Array(order.length);
  for (let block = 1; block < starts.length; block++) blockLast[starts[block]! - 1] = 1;
  return { order, blockStarts: Int32Array.from(starts), sortedTargets, blockLast };
}

/**
 * The exact ROC AUC (the Mann–Whitney probability that a random positive scores above a random
 * negative, ties counting one half), with an optional weight per position in the ranking
 * (bootstrap multiplicities). Null when the positives or the negatives have zero total weight.
 */
function aucOfPositions(ranked: RankedScores, weightAt: (position: number) => number): number | null {
  const { blockStarts, sortedTargets } = ranked;
  let negativesBelow = 0;
  let pairs = 0;
  let totalPositive = 0;
  for (let block = 0; block < blockStarts.length - 1; block++) {
    let blockPositive = 0;
    let blockNegative = 0;
    for (let position = blockStarts[block]!, end = blockStarts[block + 1]!; position < end; position++) {
      const weight = weightAt(position);
      if (sortedTargets[position] === 1) blockPositive += weight;
      else blockNegative += weight;
    }
    pairs += blockPositive * (negativesBelow + 0.5 * blockNegative);
    negativesBelow += blockNegative;
    totalPositive += blockPositive;
  }
  if (totalPositive === 0 || negativesBelow === 0) return null;
  return pairs / (totalPositive * negativesBelow);
}

/** AUC of a ranking, optionally with a weight per row (a weight of k counts the row k times). */
export function aucOfRanked(ranked: RankedScores, weightOfRow?: ArrayLike<number>): number | null {
  const { order } = ranked;
  return aucOfPositions(ranked, weightOfRow ? (position) => weightOfRow[order[position]!]! : () => 1);
}

export function rocAuc(scores: ArrayLike<number>, targets: ArrayLike<number>, rows?: Int32Array): number | null {
  return aucOfRanked(rankScores(scores, targets, rows ?? Int32Array.from({ length: scores.length }, (_, index) => index)));
}

/** Linear-interpolation quantile (type 7) of values sorted ascending. */
export function quantileSorted(sorted: ArrayLike<number>, probability: number): number {
  if (sorted.length === 0) return Number.NaN;
  const position = (sorted.length - 1) * probability;
  const low = Math.floor(position);
  const high = Math.min(sorted.length - 1, low + 1);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low);
}

export interface BootstrapInterval {
  low: number;
  high: number;
  /** Replicates where both classes were drawn (the others cannot give an AUC and are not counted). */
  replicates: number;
}

/**
 * Percentile 95% intervals of the AUC by resampling cases with replacement: each replicate draws as
 * many cases as the rows cover, and every row weighs as often as its case was drawn. The same draws
 * serve every label (paired replicates), and the stream depends only on `seed`.
 */
export function bootstrapAucIntervals(
  rankedPerLabel: Array<RankedScores | null>,
  rows: Int32Array,
  caseOfRow: Int32Array,
  replicates: number,
  seed: number,
): Array<BootstrapInterval | null> {
  const localCaseOfRow = new Map<number, number>();
  for (const row of rows) {
    const caseId = caseOfRow[row]!;
    if (!localCaseOfRow.has(caseId)) localCaseOfRow.set(caseId, localCaseOfRow.size);
  }
  const caseCount = localCaseOfRow.size;
  // Per label, the local case of each ranked position, so a replicate's weights are one array lookup.
  const caseAtPosition = rankedPerLabel.map((ranked) => (ranked ? Int32Array.from(ranked.order, (row) => localCaseOfRow.get(caseOfRow[row]!)!) : null));
  const multiplicity = new Float64Array(caseCount);
  const samples = rankedPerLabel.map(() => [] as number[]);
  const random = new SeededRandom(seed);
  for (let replicate = 0; replicate < replicates; replicate++) {
    multiplicity.fill(0);
    for (let draw = 0; draw < caseCount; draw++) multiplicity[random.nextInt(caseCount)]!++;
    for (let label = 0; label < rankedPerLabel.length; label++) {
      const ranked = rankedPerLabel[label];
      if (!ranked) continue;
      const auc = caseWeightedAuc(ranked, caseAtPosition[label]!, multiplicity);
      if (auc !== null) samples[label]!.push(auc);
    }
  }
  return samples.map((values, label) => {
    if (!rankedPerLabel[label] || values.length === 0) return null;
    const sorted = Float64Array.from(values).sort();
    return { low: quantileSorted(sorted, 0.025), high: quantileSorted(sorted, 0.975), replicates: values.length };
  });
}

/** The bootstrap's inner loop: one flat pass, weights by case, no closures, tie blocks closed by flag. */
function caseWeightedAuc(ranked: RankedScores, caseAt: Int32Array, multiplicity: Float64Array): number | null {
  const { sortedTargets, blockLast } = ranked;
  let negativesBelow = 0;
  let pairs = 0;
  let totalPositive = 0;
  let blockPositive = 0;
  let blockNegative = 0;
  for (let position = 0; position < caseAt.length; position++) {
    const weight = multiplicity[caseAt[position]!]!;
    const target = sortedTargets[position]!;
    blockPositive += target * weight;
    blockNegative += (1 - target) * weight;
    if (blockLast[position] === 1) {
      pairs += blockPositive * (negativesBelow + 0.5 * blockNegative);
      negativesBelow += blockNegative;
      totalPositive += blockPositive;
      blockPositive = 0;
      blockNegative = 0;
    }
  }
  if (totalPositive === 0 || negativesBelow === 0) return null;
  return pairs / (totalPositive * negativesBelow);
}

/** A reliability-diagram bin: predicted probabilities in [lower, lower + 0.1). */
export type ReliabilityBin = z.infer<typeof reliabilityBinSchema>;

export interface CalibrationSummary {
  brier: number;
  /** Expected calibration error over ten equal-width bins: Σ (bin share) × |observed − predicted|. */
  ece: number;
  bins: ReliabilityBin[];
}

export function calibration(scores: ArrayLike<number>, targets: ArrayLike<number>, rows: Int32Array, binCount = 10): CalibrationSummary {
  const counts = new Float64Array(binCount);
  const predictedSums = new Float64Array(binCount);
  const positiveSums = new Float64Array(binCount);
  let brier = 0;
  for (const row of rows) {
    const score = scores[row]!;
    const target = targets[row] ? 1 : 0;
    brier += (score - target) ** 2;
    const bin = Math.min(binCount - 1, Math.max(0, Math.floor(score * binCount)));
    counts[bin]!++;
    predictedSums[bin]! += score;
    positiveSums[bin]! += target;
  }
  let ece = 0;
  const bins: ReliabilityBin[] = [];
  for (let bin = 0; bin < binCount; bin++) {
    const count = counts[bin]!;
    const meanPredicted = count > 0 ? predictedSums[bin]! / count : null;
    const observedRate = count > 0 ? positiveSums[bin]! / count : null;
    if (count > 0) ece += (count / rows.length) * Math.abs(observedRate! - meanPredicted!);
    bins.push({ lower: bin / binCount, count, meanPredicted, observedRate });
  }
  return { brier: rows.length > 0 ? brier / rows.length : Number.NaN, ece, bins };
}

/** Share of rows whose thresholded prediction equals the target. */
export function accuracy(scores: ArrayLike<number>, targets: ArrayLike<number>, rows: Int32Array, threshold = 0.5): number {
  let correct = 0;
  for (const row of rows) if (scores[row]! >= threshold === Boolean(targets[row])) correct++;
  return rows.length > 0 ? correct / rows.length : Number.NaN;
}

export interface MultiLabelSummary {
  /** Share of wrong (image, label) decisions at the threshold, over the decisions whose truth is known. */
  hammingLoss: number;
  /** Share of images whose every known label is predicted right. */
  subsetAccuracy: number;
  decisions: number;
}

/**
 * Multi-label summaries over `rows` of row-major n × labelCount arrays; `known[i*labelCount+l]` = 0
 * marks a target that is unknown (excluded) for that image.
 */
export function multiLabelSummary(
  scores: ArrayLike<number>,
  targets: ArrayLike<number>,
  known: ArrayLike<number>,
  labelCount: number,
  rows: Int32Array,
  threshold = 0.5,
): MultiLabelSummary {
  let wrong = 0;
  let decisions = 0;
  let allRight = 0;
  let images = 0;
  for (const row of rows) {
    let rowWrong = 0;
    let rowDecisions = 0;
    for (let label = 0; label < labelCount; label++) {
      const cell = row * labelCount + label;
      if (!known[cell]) continue;
      rowDecisions++;
      if (scores[cell]! >= threshold !== Boolean(targets[cell])) rowWrong++;
    }
    if (rowDecisions === 0) continue;
    images++;
    decisions += rowDecisions;
    wrong += rowWrong;
    if (rowWrong === 0) allRight++;
  }
  return { hammingLoss: decisions > 0 ? wrong / decisions : Number.NaN, subsetAccuracy: images > 0 ? allRight / images : Number.NaN, decisions };
}

/** One vertex of a ROC polyline. */
export interface RocPoint {
  /** False-positive rate: share of the negatives' weight scoring at or above `threshold`. */
  fpr: number;
  /** True-positive rate: share of the positives' weight scoring at or above `threshold`. */
  tpr: number;
  /** Score at or above which an image is called positive; null at the (0, 0) start, where none is. */
  threshold: number | null;
}

/**
 * The exact ROC polyline: (0, 0), then one vertex per distinct score in descending order, ending at
 * (1, 1). Every row whose score equals the threshold turns positive at once, so a tie block that mixes
 * both classes is one diagonal segment, and the trapezoid area under the polyline is the tie-aware
 * Mann–Whitney AUC of `rocAuc` (ties counting one half). `labels` are 1/0 (truthy = positive);
 * `weights` optionally count a row several times. Null when either class has no weight, as for rocAuc.
 */
export function rocCurve(scores: ArrayLike<number>, labels: ArrayLike<number>, weights?: ArrayLike<number>): RocPoint[] | null {
  if (labels.length !== scores.length || (weights && weights.length !== scores.length)) {
    throw new RangeError(
      `rocCurve: ${scores.length} scores, ${labels.length} labels${weights ? ` and ${weights.length} weights` : ''}; every row needs one of each`,
    );
  }
  const order = Array.from({ length: scores.length }, (_, index) => index).sort((a, b) => scores[b]! - scores[a]! || a - b);
  const blockScores: number[] = [];
  const blockPositive: number[] = [];
  const blockNegative: number[] = [];
  for (const row of order) {
    const weight = weights ? weights[row]! : 1;
    const last = blockScores.length - 1;
    if (last < 0 || blockScores[last] !== scores[row]) {
      blockScores.push(scores[row]!);
      blockPositive.push(0);
      blockNegative.push(0);
    }
    if (labels[row]) blockPositive[blockScores.length - 1]! += weight;
    else blockNegative[blockScores.length - 1]! += weight;
  }
  // Totals summed in the same order as the running sums below, so the last vertex lands on exactly (1, 1).
  let totalPositive = 0;
  let totalNegative = 0;
  for (let block = 0; block < blockScores.length; block++) {
    totalPositive += blockPositive[block]!;
    totalNegative += blockNegative[block]!;
  }
  if (!(totalPositive > 0) || !(totalNegative > 0)) return null;
  const points: RocPoint[] = [{ fpr: 0, tpr: 0, threshold: null }];
  let truePositive = 0;
  let falsePositive = 0;
  for (let block = 0; block < blockScores.length; block++) {
    truePositive += blockPositive[block]!;
    falsePositive += blockNegative[block]!;
    points.push({ fpr: falsePositive / totalNegative, tpr: truePositive / totalPositive, threshold: blockScores[block]! });
  }
  return points;
}

/** Trapezoid area under a ROC polyline (vertices in order of rising FPR). */
export function rocArea(points: ReadonlyArray<Pick<RocPoint, 'fpr' | 'tpr'>>): number {
  let area = 0;
  for (let index = 1; index < points.length; index++) {
    const previous = points[index - 1]!;
    const point = points[index]!;
    area += (point.fpr - previous.fpr) * (point.tpr + previous.tpr) * 0.5;
  }
  return area;
}

/**
 * At most `maxPoints` vertices of a ROC polyline by Visvalingam–Whyatt simplification: repeatedly drop
 * the interior vertex whose triangle with its two current neighbours is smallest (ties: the earlier
 * vertex). That triangle is exactly the area the drop adds to or removes from the curve, so collinear
 * vertices (runs of one class) go first at no cost, the corners that carry the shape stay, the first
 * and last vertices always stay, the result is a subsequence of the input (still monotone, thresholds
 * still real), and the area moves by at most the sum of the dropped triangles. Deterministic.
 */
export function downsampleRoc(points: readonly RocPoint[], maxPoints = 200): RocPoint[] {
  const count = points.length;
  if (count <= Math.max(2, maxPoints)) return points.slice();
  const previous = Int32Array.from({ length: count }, (_, index) => index - 1);
  const next = Int32Array.from({ length: count }, (_, index) => index + 1);
  const stamp = new Int32Array(count);
  const triangle = (index: number) => {
    const a = points[previous[index]!]!;
    const b = points[index]!;
    const c = points[next[index]!]!;
    return Math.abs((b.fpr - a.fpr) * (c.tpr - a.tpr) - (c.fpr - a.fpr) * (b.tpr - a.tpr)) * 0.5;
  };
  const heap = new VertexHeap();
  for (let index = 1; index < count - 1; index++) heap.push(triangle(index), index, 0);
  let remaining = count;
  while (remaining > maxPoints) {
    const entry = heap.pop()!;
    if (entry.stamp !== stamp[entry.index]) continue;
    const index = entry.index;
    const before = previous[index]!;
    const after = next[index]!;
    next[before] = after;
    previous[after] = before;
    stamp[index] = -1;
    remaining--;
    for (const neighbour of [before, after]) {
      if (neighbour === 0 || neighbour === count - 1) continue;
      stamp[neighbour]!++;
      heap.push(triangle(neighbour), neighbour, stamp[neighbour]!);
    }
  }
  const kept: RocPoint[] = [];
  for (let index = 0; index < count; index = next[index]!) kept.push(points[index]!);
  return kept;
}

/** A min-heap of (area, vertex) with a stamp per entry, so superseded entries are skipped when popped. */
class VertexHeap {
  private readonly areas: number[] = [];
  private readonly indices: number[] = [];
  private readonly stamps: number[] = [];

  push(area: number, index: number, stamp: number): void {
    this.areas.push(area);
    this.indices.push(index);
    this.stamps.push(stamp);
    let child = this.areas.length - 1;
    while (child > 0) {
      const parent = (child - 1) >> 1;
      if (!this.less(child, parent)) break;
      this.swap(child, parent);
      child = parent;
    }
  }

  pop(): { area: number; index: number; stamp: number } | undefined {
    if (this.areas.length === 0) return undefined;
    const top = { area: this.areas[0]!, index: this.indices[0]!, stamp: this.stamps[0]! };
    const last = this.areas.length - 1;
    this.swap(0, last);
    this.areas.pop();
    this.indices.pop();
    this.stamps.pop();
    let parent = 0;
    for (;;) {
      const left = parent * 2 + 1;
      const right = left + 1;
      let smallest = parent;
      if (left < this.areas.length && this.less(left, smallest)) smallest = left;
      if (right < this.areas.length && this.less(right, smallest)) smallest = right;
      if (smallest === parent) break;
      this.swap(parent, smallest);
      parent = smallest;
    }
    return top;
  }

  private less(a: number, b: number): boolean {
    return this.areas[a]! < this.areas[b]! || (this.areas[a] === this.areas[b] && this.indices[a]! < this.indices[b]!);
  }

  private swap(a: number, b: number): void {
    [this.areas[a], this.areas[b]] = [this.areas[b]!, this.areas[a]!];
    [this.indices[a], this.indices[b]] = [this.indices[b]!, this.indices[a]!];
    [this.stamps[a], this.stamps[b]] = [this.stamps[b]!, this.stamps[a]!];
  }
}

/** A ROC curve as stored in a run's metrics: columns of equal length, rounded so the JSON stays small. */
export type StoredRocCurve = z.infer<typeof storedRocCurveSchema>;

/**
 * The exact curve downsampled to at most `maxPoints` vertices, rates rounded to 1e-6 and thresholds
 * to 6 significant digits. Rounding is monotone, so the stored curve stays monotone and keeps its
 * (0, 0) and (1, 1) ends; the area moves by at most about 1e-6 more than the downsampling did.
 */
export function storedRocCurve(points: readonly RocPoint[], maxPoints = 200): StoredRocCurve {
  const kept = downsampleRoc(points, maxPoints);
  const rate = (value: number) => Math.round(value * 1e6) / 1e6;
  return {
    fpr: kept.map((point) => rate(point.fpr)),
    tpr: kept.map((point) => rate(point.tpr)),
    threshold: kept.map((point) => (point.threshold === null ? null : Number(point.threshold.toPrecision(6)))),
    exactPoints: points.length,
  };
}
