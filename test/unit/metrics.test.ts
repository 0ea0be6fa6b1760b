import { describe, expect, it } from 'vitest';
import {
  accuracy,
  aucOfRanked,
  bootstrapAucIntervals,
  calibration,
  multiLabelSummary,
  quantileSorted,
  rankScores,
  rocAuc,
} from '../../electron/core/probes/metrics.js';
import { SeededRandom } from '../../electron/common/seeded-random.js';

const all = (n: number) => Int32Array.from({ length: n }, (_, index) => index);

describe('ROC AUC', () => {
  it('is exact on a hand example with ties (ties count one half)', () => {
    // Positives 0.35, 0.8, 0.4 against negatives 0.1, 0.4: 1 + 2 + 1.5 = 4.5 of 6 pairs.
    expect(rocAuc([0.1, 0.4, 0.35, 0.8, 0.4], [0, 0, 1, 1, 1])).toBe(0.75);
    expect(rocAuc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1])).toBe(0.5);
    expect(rocAuc([1, 2, 3, 4], [0, 0, 1, 1])).toBe(1);
    expect(rocAuc([1, 2, 3, 4], [1, 1, 0, 0])).toBe(0);
  });

  it('matches the brute-force pair count on random scores with many ties', () => {
    const random = new SeededRandom(5);
    const scores = Array.from({ length: 300 }, () => Math.round(random.next() * 20) / 20);
    const targets = scores.map((score) => (random.next() < 0.3 + score * 0.4 ? 1 : 0));
    let pairs = 0;
    let wins = 0;
    for (let a = 0; a < scores.length; a++) {
      for (let b = 0; b < scores.length; b++) {
        if (targets[a] !== 1 || targets[b] !== 0) continue;
        pairs++;
        wins += scores[a]! > scores[b]! ? 1 : scores[a] === scores[b] ? 0.5 : 0;
      }
    }
    expect(rocAuc(scores, targets)).toBeCloseTo(wins / pairs, 12);
  });

  it('counts a weight as that many copies of the row, and is null when a class is absent', () => {
    const scores = [0.2, 0.6, 0.4, 0.9];
    const targets = [0, 0, 1, 1];
    const weighted = aucOfRanked(rankScores(scores, targets, all(4)), [1, 3, 2, 1]);
    const copied = rocAuc([0.2, 0.6, 0.6, 0.6, 0.4, 0.4, 0.9], [0, 0, 0, 0, 1, 1, 1]);
    expect(weighted).toBeCloseTo(copied!, 12);
    expect(rocAuc([0.1, 0.2], [1, 1])).toBeNull();
    expect(aucOfRanked(rankScores(scores, targets, all(4)), [0, 0, 1, 1])).toBeNull();
  });
});

describe('case bootstrap', () => {
  const random = new SeededRandom(9);
  const rows = 200;
  const caseOfRow = Int32Array.from({ length: rows }, (_, row) => Math.floor(row / 2));
  const targets = Array.from({ length: rows }, (_, row) => (Math.floor(row / 2) % 3 === 0 ? 1 : 0));
  const scores = targets.map((target) => target * 0.3 + random.next());
  const ranked = [rankScores(scores, targets, all(rows))];

  it('is deterministic for a seed and changes with the seed', () => {
    const first = bootstrapAucIntervals(ranked, all(rows), caseOfRow, 300, 42)[0]!;
    const again = bootstrapAucIntervals(ranked, all(rows), caseOfRow, 300, 42)[0]!;
    const other = bootstrapAucIntervals(ranked, all(rows), caseOfRow, 300, 43)[0]!;
    expect(again).toEqual(first);
    expect(other).not.toEqual(first);
    const point = rocAuc(scores, targets)!;
    expect(first.low).toBeLessThan(point);
    expect(first.high).toBeGreaterThan(point);
    expect(first.replicates).toBe(300);
  });

  it('resamples whole cases: a perfectly separable set keeps AUC 1 in every replicate', () => {
    const separable = targets.map((target, row) => target + row * 1e-6);
    const interval = bootstrapAucIntervals([rankScores(separable, targets, all(rows))], all(rows), caseOfRow, 100, 1)[0]!;
    expect(interval).toEqual({ low: 1, high: 1, replicates: 100 });
  });

  it('returns null for a label without a ranking', () => {
    expect(bootstrapAucIntervals([null], all(rows), caseOfRow, 10, 1)).toEqual([null]);
  });

  it('takes type-7 quantiles', () => {
    expect(quantileSorted([1, 2, 3, 4, 5], 0.5)).toBe(3);
    expect(quantileSorted([0, 10], 0.025)).toBeCloseTo(0.25, 12);
  });
});

describe('threshold and calibration metrics', () => {
  it('computes accuracy, Brier score, ECE and reliability bins by hand', () => {
    const scores = [0.05, 0.15, 0.95, 0.85, 0.55];
    const targets = [0, 1, 1, 1, 0];
    expect(accuracy(scores, targets, all(5))).toBeCloseTo(3 / 5, 12);
    const summary = calibration(scores, targets, all(5));
    expect(summary.brier).toBeCloseTo((0.05 ** 2 + 0.85 ** 2 + 0.05 ** 2 + 0.15 ** 2 + 0.55 ** 2) / 5, 12);
    // Bins 0, 1, 5, 8, 9 hold one row each: ECE = (0.05 + 0.85 + 0.55 + 0.15 + 0.05) / 5.
    expect(summary.ece).toBeCloseTo((0.05 + 0.85 + 0.55 + 0.15 + 0.05) / 5, 12);
    expect(summary.bins.map((bin) => bin.count)).toEqual([1, 1, 0, 0, 0, 1, 0, 0, 1, 1]);
    expect(summary.bins[2]!.observedRate).toBeNull();
  });

  it('computes Hamming loss and exact-match accuracy over known targets only', () => {
    // Two images × two labels; image 1's second label is unknown.
    const scores = [0.9, 0.2, 0.7, 0.9];
    const targets = [1, 1, 1, 0];
    const known = [1, 1, 1, 0];
    const summary = multiLabelSummary(scores, targets, known, 2, all(2));
    expect(summary.decisions).toBe(3);
    expect(summary.hammingLoss).toBeCloseTo(1 / 3, 12);
    expect(summary.subsetAccuracy).toBe(0.5);
  });
});
