import { SeededRandom } from './seeded-random.js';

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

export interface ReliabilityBin {
  /** Lower edge of the predicted-probability bin; bins are [lower, lower + 0.1). */
  lower: number;
  count: number;
  meanPredicted: number | null;
  observedRate: number | null;
}

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
