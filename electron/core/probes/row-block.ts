import { DermError } from '../../common/errors.js';
import { fitLogisticModels, type FittedModels, type LogisticOptions, type ProbeModelSpec } from '../math/logistic-regression.js';
import type { MatrixEngine } from '../math/matrix-engine.js';

/**
 * Fits one model on only its own training rows. A model that learns from a small part of the matrix
 * (a data-efficiency subsample) would otherwise pay for every row in every pass, with zero residuals
 * on the rows it does not use. Instead its rows are swapped to the front of the matrix in place (one
 * row of scratch memory, no copy of the matrix or of the subset), the solver runs on that prefix, and
 * the swaps are undone in reverse order afterwards, also when the fit fails or is cancelled, so the
 * matrix is bit-for-bit what it was.
 *
 * The result is the fit of the gathered subset on its own (rows in the order given), so it equals a
 * fit on a separate copy of those rows. The matrix must not be read by anything else meanwhile.
 */
export async function fitOnOwnRows(
  engine: MatrixEngine,
  targets: Uint8Array,
  known: Uint8Array,
  labelCount: number,
  model: ProbeModelSpec,
  options: LogisticOptions,
): Promise<FittedModels> {
  const { dim, data } = engine;
  const rows = model.trainingRows;
  const count = rows.length;
  const localTargets = new Uint8Array(count * labelCount);
  const localKnown = new Uint8Array(count * labelCount);
  for (let position = 0; position < count; position++) {
    const row = rows[position]!;
    for (let label = 0; label < labelCount; label++) {
      localTargets[position * labelCount + label] = targets[row * labelCount + label]!;
      localKnown[position * labelCount + label] = known[row * labelCount + label]!;
    }
  }
  const swaps = moveRowsToFront(data, dim, engine.rows, rows);
  try {
    const identity = Int32Array.from({ length: count }, (_, position) => position);
    return await fitLogisticModels(
      engine.prefix(count),
      localTargets,
      localKnown,
      labelCount,
      [{ trainingRows: identity, mean: model.mean, std: model.std }],
      options,
    );
  } finally {
    undoSwaps(data, dim, swaps);
  }
}

/**
 * Swaps rows so that position i holds `rows[i]` for every i; returns, per position, the position it
 * was swapped with, which is all `undoSwaps` needs.
 */
export function moveRowsToFront(data: Float32Array, dim: number, rowCount: number, rows: Int32Array): Int32Array {
  const rowAt = Int32Array.from({ length: rowCount }, (_, position) => position);
  const positionOf = Int32Array.from({ length: rowCount }, (_, row) => row);
  const swaps = new Int32Array(rows.length);
  const scratch = new Float32Array(dim);
  for (let position = 0; position < rows.length; position++) {
    const row = rows[position]!;
    if (row < 0 || row >= rowCount) throw new DermError('internal', `Row ${row} is outside a matrix of ${rowCount} rows.`);
    const from = positionOf[row]!;
    if (from < position) throw new DermError('internal', `Row ${row} is listed twice among a model's training rows.`);
    swaps[position] = from;
    if (from === position) continue;
    swapRows(data, dim, position, from, scratch);
    const displaced = rowAt[position]!;
    rowAt[from] = displaced;
    positionOf[displaced] = from;
    rowAt[position] = row;
    positionOf[row] = position;
  }
  return swaps;
}

export function undoSwaps(data: Float32Array, dim: number, swaps: Int32Array): void {
  const scratch = new Float32Array(dim);
  for (let position = swaps.length - 1; position >= 0; position--) {
    const from = swaps[position]!;
    if (from !== position) swapRows(data, dim, position, from, scratch);
  }
}

function swapRows(data: Float32Array, dim: number, a: number, b: number, scratch: Float32Array): void {
  const startA = a * dim;
  const startB = b * dim;
  scratch.set(data.subarray(startA, startA + dim));
  data.copyWithin(startA, startB, startB + dim);
  data.set(scratch, startB);
}
