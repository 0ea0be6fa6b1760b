import { describe, expect, it } from 'vitest';
import { isDermError } from '../../electron/common/errors.js';
import { groupedFolds, subsampleByCase } from '../../electron/core/probes/grouped-folds.js';
import { SeededRandom } from '../../electron/common/seeded-random.js';

function cases(count: number, seed: number): Int32Array {
  const random = new SeededRandom(seed);
  const rows: number[] = [];
  for (let group = 0; group < count; group++) for (let photo = 0, photos = 1 + random.nextInt(3); photo < photos; photo++) rows.push(group);
  return Int32Array.from(new SeededRandom(seed + 1).shuffle(rows));
}

describe('case-grouped folds', () => {
  const groupOfRow = cases(500, 3);

  it('never puts one case in two folds, uses every fold and keeps sizes within one case', () => {
    const foldOf = groupedFolds(groupOfRow, 5, 1);
    const foldOfGroup = new Map<number, number>();
    groupOfRow.forEach((group, row) => {
      const fold = foldOf[row]!;
      if (foldOfGroup.has(group)) expect(foldOfGroup.get(group)).toBe(fold);
      foldOfGroup.set(group, fold);
    });
    const sizes = [0, 1, 2, 3, 4].map((fold) => foldOf.filter((value) => value === fold).length);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(groupOfRow.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(3);
  });

  it('is deterministic for a seed and different for another seed', () => {
    expect(groupedFolds(groupOfRow, 5, 1)).toEqual(groupedFolds(groupOfRow, 5, 1));
    expect(groupedFolds(groupOfRow, 5, 2)).not.toEqual(groupedFolds(groupOfRow, 5, 1));
  });

  it('refuses more folds than cases, naming both numbers', () => {
    let caught: unknown;
    try {
      groupedFolds(Int32Array.from([0, 0, 1, 2]), 4, 1);
    } catch (error) {
      caught = error;
    }
    expect(isDermError(caught, 'invalid-input')).toBe(true);
    expect((caught as Error).message).toContain('3 cases into 4 folds');
  });

  it('subsamples whole cases, about the asked fraction, reproducibly', () => {
    const rows = Int32Array.from({ length: groupOfRow.length }, (_, row) => row);
    const sample = subsampleByCase(rows, groupOfRow, 0.25, SeededRandom.derive(7, 1));
    const picked = new Set(Array.from(sample, (row) => groupOfRow[row]!));
    expect(picked.size).toBe(125);
    // Every photo of a picked case comes along.
    expect(sample.length).toBe(groupOfRow.filter((group) => picked.has(group)).length);
    expect(subsampleByCase(rows, groupOfRow, 0.25, SeededRandom.derive(7, 1))).toEqual(sample);
    expect(subsampleByCase(rows, groupOfRow, 0.001, SeededRandom.derive(7, 1)).length).toBeGreaterThan(0);
  });
});
