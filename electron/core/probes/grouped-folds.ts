import { DermError } from '../../common/errors.js';
import { SeededRandom } from '../../common/seeded-random.js';

/**
 * K-fold assignment grouped by case: every image of a case lands in the same fold, so no case is
 * ever on both sides of a split. Groups are shuffled with the seed, then placed largest first into
 * the fold with the fewest images so far, which keeps fold sizes within one case of each other.
 *
 * `groupOfRow[i]` is the group (case) index of row i, 0..groupCount-1. Returns the fold of each row.
 */
export function groupedFolds(groupOfRow: Int32Array, folds: number, seed: number): Int32Array {
  const groupCount = countGroups(groupOfRow);
  if (!Number.isInteger(folds) || folds < 2) {
    throw new DermError('invalid-input', `folds must be a whole number of at least 2; got ${folds}.`, { field: 'folds' });
  }
  if (groupCount < folds) {
    throw new DermError(
      'invalid-input',
      `Cannot split ${groupCount} cases into ${folds} folds: each fold needs at least one case. Use fewer folds or label more cases.`,
      {
        field: 'folds',
      },
    );
  }
  const sizes = new Int32Array(groupCount);
  for (const group of groupOfRow) sizes[group]!++;
  const order = new SeededRandom(seed).shuffle(Array.from({ length: groupCount }, (_, index) => index));
  // A stable sort keeps the seeded order among groups of equal size.
  order.sort((a, b) => sizes[b]! - sizes[a]!);
  const foldSize = new Int32Array(folds);
  const foldOfGroup = new Int32Array(groupCount);
  for (const group of order) {
    let smallest = 0;
    for (let fold = 1; fold < folds; fold++) if (foldSize[fold]! < foldSize[smallest]!) smallest = fold;
    foldOfGroup[group] = smallest;
    foldSize[smallest]! += sizes[group]!;
  }
  return groupOfRow.map((group) => foldOfGroup[group]!);
}

export function countGroups(groupOfRow: Int32Array): number {
  let max = -1;
  for (const group of groupOfRow) {
    if (group < 0) throw new DermError('internal', `Group indices must be non-negative; got ${group}.`);
    if (group > max) max = group;
  }
  return max + 1;
}

/**
 * Picks round(fraction × cases) of the cases that have a row in `rows` (at least one), with a seeded
 * stream, and returns the rows of the picked cases. Used for the data-efficiency curve: the sample is
 * drawn by case, within one training fold.
 */
export function subsampleByCase(rows: Int32Array, groupOfRow: Int32Array, fraction: number, random: SeededRandom): Int32Array {
  const present = Array.from(new Set(Array.from(rows, (row) => groupOfRow[row]!))).sort((a, b) => a - b);
  const take = Math.max(1, Math.round(fraction * present.length));
  const picked = new Set(random.shuffle(present).slice(0, take));
  return rows.filter((row) => picked.has(groupOfRow[row]!));
}
