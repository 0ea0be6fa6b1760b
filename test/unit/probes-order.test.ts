import { describe, expect, it } from 'vitest';
import { permuteRows } from '../../electron/core/probes/probes.service.js';
import { SeededRandom } from '../../electron/common/seeded-random.js';

describe('permuteRows', () => {
  it('moves every row where the permutation says, in place, for cycles of every length', () => {
    const dim = 3;
    for (const rows of [1, 2, 5, 17]) {
      const random = new SeededRandom(rows);
      const sourceOfRow = Int32Array.from(random.shuffle(Array.from({ length: rows }, (_, row) => row)));
      const data = Float32Array.from({ length: rows * dim }, (_, index) => index);
      const original = Float32Array.from(data);
      permuteRows(data, dim, sourceOfRow);
      for (let row = 0; row < rows; row++) {
        expect(Array.from(data.subarray(row * dim, (row + 1) * dim))).toEqual(
          Array.from(original.subarray(sourceOfRow[row]! * dim, (sourceOfRow[row]! + 1) * dim)),
        );
      }
    }
  });
});
