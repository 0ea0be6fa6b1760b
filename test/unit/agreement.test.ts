import { describe, expect, it } from 'vitest';
import { cohensKappa, cohensKappaFromTable, fleissKappa, fleissKappaFromCounts, unanimousAgreement } from '../../electron/core/labels/agreement.js';

describe("Cohen's kappa", () => {
  it('matches the classic 2×2 textbook example (κ = 0.4)', () => {
    // 50 items: both yes 20, A yes/B no 5, A no/B yes 10, both no 15.
    // p_o = 35/50 = 0.7; p_A(yes) = 0.5, p_B(yes) = 0.6 → p_e = 0.5·0.6 + 0.5·0.4 = 0.5; κ = 0.2/0.5 = 0.4.
    const result = cohensKappaFromTable([
      [20, 5],
      [10, 15],
    ]);
    expect(result.items).toBe(50);
    expect(result.observed).toBeCloseTo(0.7, 12);
    expect(result.expected).toBeCloseTo(0.5, 12);
    expect(result.kappa).toBeCloseTo(0.4, 12);
  });

  it('gives the same answer from paired ratings as from the table', () => {
    const a = [...Array(20).fill('yes'), ...Array(5).fill('yes'), ...Array(10).fill('no'), ...Array(15).fill('no')];
    const b = [...Array(20).fill('yes'), ...Array(5).fill('no'), ...Array(10).fill('yes'), ...Array(15).fill('no')];
    expect(cohensKappa(a, b).kappa).toBeCloseTo(0.4, 12);
  });

  it('matches a hand-computed 3-category example (κ = 0.5)', () => {
    // Agreement on 4 of 6 → p_o = 2/3. Marginals A: 2,2,2; B: 2,3,1 → p_e = (4 + 6 + 2)/36 = 1/3. κ = (1/3)/(2/3) = 0.5.
    const result = cohensKappa(['a', 'a', 'b', 'b', 'c', 'c'], ['a', 'b', 'b', 'b', 'c', 'a']);
    expect(result.observed).toBeCloseTo(2 / 3, 12);
    expect(result.expected).toBeCloseTo(1 / 3, 12);
    expect(result.kappa).toBeCloseTo(0.5, 12);
  });

  it('is 1 for perfect agreement, negative below chance, and undefined when both raters use one category', () => {
    expect(cohensKappa(['x', 'y', 'z', 'x'], ['x', 'y', 'z', 'x']).kappa).toBeCloseTo(1, 12);
    expect(cohensKappa(['x', 'y', 'x', 'y'], ['y', 'x', 'y', 'x']).kappa).toBeCloseTo(-1, 12);
    const constant = cohensKappa(['yes', 'yes', 'yes'], ['yes', 'yes', 'yes']);
    expect(constant.observed).toBe(1);
    expect(constant.kappa).toBeNull();
    expect(() => cohensKappa(['a'], ['a', 'b'])).toThrow(/same items/);
  });
});

describe("Fleiss' kappa", () => {
  // Fleiss (1971)-style worked example as reproduced in most textbooks: 10 subjects, 14 raters, 5 categories.
  const counts = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
  ];

  it('matches the worked example: p_j, P̄ = 0.378, P̄e = 0.213, κ ≈ 0.210', () => {
    const result = fleissKappaFromCounts(counts);
    expect(result.items).toBe(10);
    expect(result.raters).toBe(14);
    // p_j = column totals / 140: 20, 28, 39, 21, 32.
    expect(result.categoryShares.map((share) => share * 140)).toEqual([20, 28, 39, 21, 32].map((n) => expect.closeTo(n, 9)));
    // P_1 = (14² − 14)/(14·13) = 1; P̄ = Σ P_i / 10 with Σ(Σ n_ij²) = 196+60+70+94+74+98+58+46+66+66 = 828 → P̄ = (828 − 140)/(182·10) = 0.37802.
    expect(result.observed).toBeCloseTo(688 / 1820, 12);
    // P̄e = (20² + 28² + 39² + 21² + 32²)/140² = 4170/19600 = 0.21276.
    expect(result.expected).toBeCloseTo(4170 / 19600, 12);
    expect(result.kappa).toBeCloseTo((688 / 1820 - 4170 / 19600) / (1 - 4170 / 19600), 12);
    expect(result.kappa!).toBeCloseTo(0.21, 3);
  });

  it('gives the same result from ratings per item, and 1 for unanimous raters', () => {
    const categories = ['c1', 'c2', 'c3', 'c4', 'c5'];
    const ratings = counts.map((row) => row.flatMap((count, index) => Array<string>(count).fill(categories[index]!)));
    expect(fleissKappa(ratings).kappa).toBeCloseTo(fleissKappaFromCounts(counts).kappa!, 12);
    expect(
      fleissKappa([
        ['a', 'a', 'a'],
        ['b', 'b', 'b'],
        ['a', 'a', 'a'],
      ]).kappa,
    ).toBeCloseTo(1, 12);
    expect(
      unanimousAgreement([
        ['a', 'a', 'a'],
        ['b', 'a', 'b'],
      ]),
    ).toBe(0.5);
  });

  it('refuses items with different numbers of ratings', () => {
    expect(() =>
      fleissKappaFromCounts([
        [1, 2],
        [2, 2],
      ]),
    ).toThrow(/same number of ratings/);
  });
});
