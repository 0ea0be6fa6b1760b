/**
 * Turns scored pairs into review items for the near-duplicate review. Grouping pairs transitively
 * (connected components) chains unrelated images together: a ~ b and b ~ c put a and c in one group
 * even when a and c look nothing alike, and on a real library one component can swallow dozens of
 * different patients. Here every item is a clique instead: every two of its images are a scored pair
 * at or above the threshold.
 *
 * The score is whatever the caller measured (cosine, centred cosine, 1 for identical pixels); this
 * module only compares it with the threshold and orders by it, so a change in how similarity is
 * computed does not change how items are formed.
 */

export interface ScoredPair {
  a: number;
  b: number;
  /** Higher is more similar; compared with the threshold and used for ordering only. */
  score: number;
}

export interface ReviewItem {
  /** Ascending image ids; every two of them form a pair in `pairs`. */
  imageIds: number[];
  /** Every pair of the item, most similar first. */
  pairs: ScoredPair[];
  /** Highest and lowest pair score inside the item. */
  maxScore: number;
  minScore: number;
}

const keyOf = (a: number, b: number) => (a < b ? `${a}-${b}` : `${b}-${a}`);

/**
 * Partitions the pairs at or above `threshold` into cliques, most similar first: the best pair opens
 * an item, and an image joins an item only when it is paired with every image already in it. A pair
 * whose two images ended up in different items (or whose image could not join) becomes its own
 * two-image item, so every pair above the threshold is reviewed exactly once, and an image may appear
 * in more than one item. Items are ordered by their best pair, then by their smallest image id.
 */
export function cliqueReviewItems(pairs: readonly ScoredPair[], threshold: number): ReviewItem[] {
  const scores = new Map<string, number>();
  for (const pair of pairs) {
    if (pair.a === pair.b || !(pair.score >= threshold)) continue;
    const key = keyOf(pair.a, pair.b);
    scores.set(key, Math.max(scores.get(key) ?? -Infinity, pair.score));
  }
  const ordered = [...scores.entries()]
    .map(([key, score]) => {
      const [a, b] = key.split('-').map(Number) as [number, number];
      return { a, b, score };
    })
    .sort((x, y) => y.score - x.score || x.a - y.a || x.b - y.b);

  const itemOf = new Map<number, number[]>();
  const cliques: number[][] = [];
  const covered = new Set<string>();
  const pairedWithAll = (image: number, members: readonly number[]) => members.every((member) => scores.has(keyOf(image, member)));

  for (const { a, b } of ordered) {
    const itemA = itemOf.get(a);
    const itemB = itemOf.get(b);
    let target: number[] | undefined;
    if (!itemA && !itemB) {
      target = [a, b];
      cliques.push(target);
      itemOf.set(a, target);
      itemOf.set(b, target);
    } else if (itemA && !itemB && pairedWithAll(b, itemA)) {
      target = itemA;
      itemA.push(b);
      itemOf.set(b, itemA);
    } else if (itemB && !itemA && pairedWithAll(a, itemB)) {
      target = itemB;
      itemB.push(a);
      itemOf.set(a, itemB);
    }
    if (target) for (const member of target) for (const other of target) if (member < other) covered.add(keyOf(member, other));
  }

  const items: ReviewItem[] = cliques.map((members) => itemFor(members, scores));
  for (const pair of ordered) if (!covered.has(keyOf(pair.a, pair.b))) items.push(itemFor([pair.a, pair.b], scores));
  return items.sort((x, y) => y.maxScore - x.maxScore || x.imageIds[0]! - y.imageIds[0]! || x.imageIds.length - y.imageIds.length);
}

function itemFor(members: readonly number[], scores: ReadonlyMap<string, number>): ReviewItem {
  const imageIds = [...members].sort((a, b) => a - b);
  const pairs: ScoredPair[] = [];
  for (let i = 0; i < imageIds.length; i++) {
    for (let j = i + 1; j < imageIds.length; j++) pairs.push({ a: imageIds[i]!, b: imageIds[j]!, score: scores.get(keyOf(imageIds[i]!, imageIds[j]!))! });
  }
  pairs.sort((x, y) => y.score - x.score || x.a - y.a || x.b - y.b);
  return { imageIds, pairs, maxScore: pairs[0]!.score, minScore: pairs[pairs.length - 1]!.score };
}
