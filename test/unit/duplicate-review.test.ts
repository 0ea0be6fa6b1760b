import { describe, expect, it } from 'vitest';
import { cliqueReviewItems, type ScoredPair } from '../../electron/core/search/duplicate-review.js';

describe('cliqueReviewItems', () => {
  it('never chains a ~ b ~ c into one item when a and c are not similar', () => {
    const pairs: ScoredPair[] = [
      { a: 1, b: 2, score: 0.99 },
      { a: 2, b: 3, score: 0.98 },
    ];
    const items = cliqueReviewItems(pairs, 0.97);
    expect(items.map((item) => item.imageIds)).toEqual([
      [1, 2],
      [2, 3],
    ]);
    expect(items.map((item) => item.maxScore)).toEqual([0.99, 0.98]);
  });

  it('keeps a full clique together and reviews every pair above the threshold exactly once', () => {
    const pairs: ScoredPair[] = [
      { a: 10, b: 11, score: 0.995 },
      { a: 11, b: 12, score: 0.99 },
      { a: 10, b: 12, score: 0.985 },
      // 13 is like 12 only: it must not join the clique of 10, 11, 12.
      { a: 12, b: 13, score: 0.98 },
      // Below the threshold: ignored.
      { a: 10, b: 13, score: 0.5 },
      // The same pair twice (from both directions): counted once, with its best score.
      { a: 21, b: 20, score: 0.975 },
      { a: 20, b: 21, score: 0.972 },
    ];
    const items = cliqueReviewItems(pairs, 0.97);
    expect(items.map((item) => item.imageIds)).toEqual([
      [10, 11, 12],
      [12, 13],
      [20, 21],
    ]);
    const clique = items[0]!;
    expect(clique.pairs.map((pair) => [pair.a, pair.b])).toEqual([
      [10, 11],
      [11, 12],
      [10, 12],
    ]);
    expect(clique).toMatchObject({ maxScore: 0.995, minScore: 0.985 });
    expect(items[2]!.pairs).toEqual([{ a: 20, b: 21, score: 0.975 }]);
    const reviewed = items.flatMap((item) => item.pairs.map((pair) => `${pair.a}-${pair.b}`));
    expect(new Set(reviewed).size).toBe(reviewed.length);
    expect(reviewed.sort()).toEqual(['10-11', '10-12', '11-12', '12-13', '20-21']);
  });

  it('takes the threshold and nothing else from the score: the same pairs on another scale group the same way', () => {
    const pairs: ScoredPair[] = [
      { a: 1, b: 2, score: 0.9 },
      { a: 2, b: 3, score: 0.8 },
      { a: 1, b: 3, score: 0.7 },
    ];
    const rescaled = pairs.map((pair) => ({ ...pair, score: pair.score * 10 - 5 }));
    expect(cliqueReviewItems(pairs, 0.75).map((item) => item.imageIds)).toEqual([
      [1, 2],
      [2, 3],
    ]);
    expect(cliqueReviewItems(rescaled, 2.5).map((item) => item.imageIds)).toEqual([
      [1, 2],
      [2, 3],
    ]);
    expect(cliqueReviewItems(pairs, 0.65).map((item) => item.imageIds)).toEqual([[1, 2, 3]]);
    expect(cliqueReviewItems(pairs, 0.95)).toEqual([]);
  });
});
