import { describe, expect, it } from 'vitest';
import { downsampleRoc, rocArea, rocAuc, rocCurve, storedRocCurve, type RocPoint } from '../../electron/core/probes/metrics.js';
import { SeededRandom } from '../../electron/common/seeded-random.js';

const triples = (points: RocPoint[] | null) => points?.map((point) => [point.fpr, point.tpr, point.threshold]);

function expectMonotone(points: Array<Pick<RocPoint, 'fpr' | 'tpr'>>): void {
  for (let index = 1; index < points.length; index++) {
    expect(points[index]!.fpr).toBeGreaterThanOrEqual(points[index - 1]!.fpr);
    expect(points[index]!.tpr).toBeGreaterThanOrEqual(points[index - 1]!.tpr);
  }
}

/** Scores of a noisy classifier: positives shifted up, quantised so ties happen. */
function noisyScores(count: number, seed: number, levels: number): { scores: number[]; labels: number[] } {
  const random = new SeededRandom(seed);
  const labels = Array.from({ length: count }, () => (random.next() < 0.35 ? 1 : 0));
  const scores = labels.map((label) => Math.round((random.next() + random.next() + label * 0.8) * levels) / levels);
  return { scores, labels };
}

describe('ROC curve', () => {
  it('is exact on a hand example with a mixed tie block as one diagonal step', () => {
    // Positives 0.35, 0.8, 0.4; negatives 0.1, 0.4. Descending: 0.8 (P), 0.4 (P and N tied), 0.35 (P), 0.1 (N).
    const points = rocCurve([0.1, 0.4, 0.35, 0.8, 0.4], [0, 0, 1, 1, 1]);
    expect(triples(points)).toEqual([
      [0, 0, null],
      [0, 1 / 3, 0.8],
      [0.5, 2 / 3, 0.4],
      [0.5, 1, 0.35],
      [1, 1, 0.1],
    ]);
    // Hand trapezoids: 0 + 0.5 × (1/3 + 2/3)/2 + 0 + 0.5 × 1 = 0.75, the AUC with the tie counting one half.
    expect(rocArea(points!)).toBeCloseTo(0.75, 15);
    expect(rocAuc([0.1, 0.4, 0.35, 0.8, 0.4], [0, 0, 1, 1, 1])).toBe(0.75);
  });

  it('puts all-tied scores on the diagonal in one step, a perfect ranking in the corner', () => {
    expect(triples(rocCurve([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]))).toEqual([
      [0, 0, null],
      [1, 1, 0.5],
    ]);
    expect(triples(rocCurve([1, 2, 3, 4], [0, 0, 1, 1]))).toEqual([
      [0, 0, null],
      [0, 0.5, 4],
      [0, 1, 3],
      [0.5, 1, 2],
      [1, 1, 1],
    ]);
    expect(rocArea(rocCurve([1, 2, 3, 4], [0, 0, 1, 1])!)).toBe(1);
    expect(rocArea(rocCurve([1, 2, 3, 4], [1, 1, 0, 0])!)).toBe(0);
  });

  it('counts weights as repeated rows and is null without both classes', () => {
    const weighted = rocCurve([0.9, 0.6, 0.3], [1, 0, 1], [2, 1, 1]);
    const repeated = rocCurve([0.9, 0.9, 0.6, 0.3], [1, 1, 0, 1]);
    expect(triples(weighted)).toEqual(triples(repeated));
    expect(rocArea(weighted!)).toBeCloseTo(2 / 3, 15);
    expect(rocCurve([0.2, 0.4], [1, 1])).toBeNull();
    expect(rocCurve([0.2, 0.4], [0, 0])).toBeNull();
    expect(rocCurve([0.2, 0.4], [1, 0], [0, 3])).toBeNull();
    expect(() => rocCurve([0.2, 0.4], [1])).toThrow(/2 scores, 1 labels/);
  });

  it('has exactly the area of rocAuc on random scores with many ties', () => {
    for (const seed of [1, 2, 3]) {
      const { scores, labels } = noisyScores(2000, seed, 20);
      const points = rocCurve(scores, labels)!;
      expect(points[0]).toEqual({ fpr: 0, tpr: 0, threshold: null });
      expect(points.at(-1)).toMatchObject({ fpr: 1, tpr: 1 });
      expect(points.length).toBe(new Set(scores).size + 1);
      expectMonotone(points);
      expect(rocArea(points)).toBeCloseTo(rocAuc(scores, labels)!, 12);
    }
  });
});

describe('ROC downsampling (Visvalingam–Whyatt)', () => {
  it('keeps short curves whole and drops collinear vertices first', () => {
    const points = rocCurve([1, 2, 3, 4], [0, 0, 1, 1])!;
    expect(downsampleRoc(points, 200)).toEqual(points);
    // (0, 0.5) and (0.5, 1) lie on straight runs: the corner (0, 1) and the ends are what remain.
    expect(triples(downsampleRoc(points, 3))).toEqual([
      [0, 0, null],
      [0, 1, 3],
      [1, 1, 1],
    ]);
  });

  it('keeps the ends, monotonicity and the area within a tiny tolerance, deterministically', () => {
    for (const seed of [4, 5]) {
      const { scores, labels } = noisyScores(20_000, seed, 1e6);
      const exact = rocCurve(scores, labels)!;
      expect(exact.length).toBeGreaterThan(5000);
      const kept = downsampleRoc(exact, 200);
      expect(kept).toHaveLength(200);
      expect(kept[0]).toBe(exact[0]);
      expect(kept.at(-1)).toBe(exact.at(-1));
      expectMonotone(kept);
      // A subsequence: every kept vertex is a real threshold of the exact curve, in order.
      let cursor = 0;
      for (const point of kept) {
        while (exact[cursor] !== point) cursor++;
        expect(cursor).toBeLessThan(exact.length);
      }
      expect(Math.abs(rocArea(kept) - rocAuc(scores, labels)!)).toBeLessThan(1e-4);
      expect(downsampleRoc(exact, 200)).toEqual(kept);
    }
  });

  it('stores rounded columns whose area still matches the AUC', () => {
    const { scores, labels } = noisyScores(5000, 6, 1e4);
    const exact = rocCurve(scores, labels)!;
    const stored = storedRocCurve(exact, 150);
    expect(stored.exactPoints).toBe(exact.length);
    expect(stored.fpr).toHaveLength(150);
    expect(stored.tpr).toHaveLength(150);
    expect(stored.threshold).toHaveLength(150);
    expect([stored.fpr[0], stored.tpr[0], stored.threshold[0]]).toEqual([0, 0, null]);
    expect([stored.fpr.at(-1), stored.tpr.at(-1)]).toEqual([1, 1]);
    const points = stored.fpr.map((fpr, index) => ({ fpr, tpr: stored.tpr[index]! }));
    expectMonotone(points);
    expect(Math.abs(rocArea(points) - rocAuc(scores, labels)!)).toBeLessThan(1e-3);
    expect(JSON.stringify(stored).length).toBeLessThan(150 * 3 * 12);
  });
});
