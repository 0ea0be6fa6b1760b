import { describe, expect, it } from 'vitest';
import { groupedFolds } from '../../electron/core/probes/grouped-folds.js';
import {
  accumulateRow,
  featureStatistics,
  fitLogisticModels,
  statisticsFromSums,
  type FittedModels,
  type ProbeModelSpec,
} from '../../electron/core/math/logistic-regression.js';
import { MatrixEngine } from '../../electron/core/math/matrix-engine.js';
import { rocAuc } from '../../electron/core/probes/metrics.js';
import { curveTrainingRows, evaluateProbe, type ProbeProblem } from '../../electron/core/probes/probe-evaluation.js';
import { fitOnOwnRows, moveRowsToFront, undoSwaps } from '../../electron/core/probes/row-block.js';
import { SeededRandom } from '../../electron/common/seeded-random.js';

const rows = 240;
const dim = 6;
const labelCount = 2;
const options = { l2: 0.02, classWeights: false, maxIterations: 300, tolerance: 1e-4 };

function gaussian(random: SeededRandom): number {
  return Math.sqrt(-2 * Math.log(1 - random.next())) * Math.cos(2 * Math.PI * random.next());
}

function problem(seed: number) {
  const random = new SeededRandom(seed);
  const data = Float32Array.from({ length: rows * dim }, (_, index) => gaussian(random) * (1 + (index % dim)) + (index % dim));
  const targets = new Uint8Array(rows * labelCount);
  for (let row = 0; row < rows; row++) {
    const x = data.subarray(row * dim, row * dim + dim);
    targets[row * labelCount] = x[0]! - 0.4 * x[1]! + gaussian(random) > 0 ? 1 : 0;
    targets[row * labelCount + 1] = x[2]! + 0.3 * x[4]! + gaussian(random) > 3.5 ? 1 : 0;
  }
  // Cases of one to three rows, so subsamples are drawn by case as in a real library.
  const caseOfRow = new Int32Array(rows);
  for (let row = 0, caseNumber = 0; row < rows; caseNumber++)
    for (let take = 1 + random.nextInt(3); take > 0 && row < rows; take--) caseOfRow[row++] = caseNumber;
  return { data, targets, known: new Uint8Array(rows * labelCount).fill(1), caseOfRow };
}

/** A separate matrix holding only the given rows, in that order, with their targets: the subset as its own problem. */
function gather(data: Float32Array, targets: Uint8Array, known: Uint8Array, subset: Int32Array) {
  const block = new Float32Array(subset.length * dim);
  const blockTargets = new Uint8Array(subset.length * labelCount);
  const blockKnown = new Uint8Array(subset.length * labelCount);
  subset.forEach((row, position) => {
    block.set(data.subarray(row * dim, row * dim + dim), position * dim);
    for (let label = 0; label < labelCount; label++) {
      blockTargets[position * labelCount + label] = targets[row * labelCount + label]!;
      blockKnown[position * labelCount + label] = known[row * labelCount + label]!;
    }
  });
  return { block, blockTargets, blockKnown, identity: Int32Array.from(subset, (_, position) => position) };
}

async function directFit(data: Float32Array, targets: Uint8Array, known: Uint8Array, model: ProbeModelSpec): Promise<FittedModels> {
  const { block, blockTargets, blockKnown, identity } = gather(data, targets, known, model.trainingRows);
  const engine = await MatrixEngine.create(block, identity.length, dim, 1);
  try {
    return await fitLogisticModels(engine, blockTargets, blockKnown, labelCount, [{ trainingRows: identity, mean: model.mean, std: model.std }], options);
  } finally {
    await engine.release();
  }
}

describe('fitting a model on only its own rows', () => {
  it('equals a fit on a separate copy of those rows, leaves the matrix as it was, and agrees with the all-rows fit', async () => {
    const { data, targets, known } = problem(5);
    const original = Float32Array.from(data);
    const engine = await MatrixEngine.create(data, rows, dim, 1);
    // Scattered rows (every third, plus a run at the end), as a case subsample is.
    const subset = Int32Array.from({ length: rows }, (_, row) => row).filter((row) => row % 3 === 1 || row > 220);
    const model: ProbeModelSpec = { trainingRows: subset, ...featureStatistics(data, dim, subset) };

    const own = await fitOnOwnRows(engine, targets, known, labelCount, model, options);
    expect(data).toEqual(original);
    const direct = await directFit(data, targets, known, model);
    expect(own.weights).toEqual(direct.weights);
    expect(own.offsets).toEqual(direct.offsets);
    expect(own.iterations).toEqual(direct.iterations);
    expect(own.outcomes).toEqual(['converged', 'converged']);

    // The old way (every row, zero residual outside the subset) reaches the same minimum up to float32 rounding.
    const allRows = await fitLogisticModels(engine, targets, known, labelCount, [model], options);
    own.weights[0]!.forEach((weight, index) => expect(weight).toBeCloseTo(allRows.weights[0]![index]!, 3));
    await engine.release();
  });

  it('undoes its row swaps exactly, also when the fit is cancelled', async () => {
    const { data, targets, known } = problem(6);
    const original = Float32Array.from(data);
    const subset = Int32Array.from([239, 3, 0, 120, 7, 8, 200]);
    const swaps = moveRowsToFront(data, dim, rows, subset);
    subset.forEach((row, position) => expect(data.subarray(position * dim, position * dim + dim)).toEqual(original.subarray(row * dim, row * dim + dim)));
    undoSwaps(data, dim, swaps);
    expect(data).toEqual(original);

    const engine = await MatrixEngine.create(data, rows, dim, 1);
    const model: ProbeModelSpec = { trainingRows: Int32Array.from({ length: 60 }, (_, index) => index * 4), ...featureStatistics(data, dim, allIndices()) };
    let passes = 0;
    await expect(fitOnOwnRows(engine, targets, known, labelCount, model, { ...options, isCancelled: () => ++passes > 3 })).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(data).toEqual(original);
    await engine.release();
  });

  it('gives each data-efficiency curve point the AUC of direct fits on the same subsets', async () => {
    const { data, targets, known, caseOfRow } = problem(7);
    const folds = 3;
    const seed = 9;
    const fraction = 0.25;
    const populationRows = allIndices();
    const probe: ProbeProblem = {
      data,
      rowCount: rows,
      dim,
      labels: ['linear', 'rare'],
      targets,
      known,
      populationRows,
      caseOfRow,
      subgroups: [],
      settings: {
        folds,
        seed,
        ...options,
        bootstrapReplicates: 50,
        curveFractions: [fraction],
        curveSeeds: 1,
        minGroupCases: 10,
        minClassCases: 1,
        repeats: 1,
        threads: 1,
      },
    };
    const original = Float32Array.from(data);
    const engine = await MatrixEngine.create(data, rows, dim, 1);
    const outcome = await evaluateProbe(engine, probe);
    expect(data).toEqual(original);
    const point = outcome.metrics.curve.find((entry) => entry.fraction === fraction)!;

    // The same subsets, each fitted as its own matrix, standardised with its training fold's statistics summed fold by fold as the evaluation does.
    const foldOfRow = groupedFolds(caseOfRow, folds, seed);
    const foldSums = Array.from({ length: folds }, (_, fold) => {
      const sums = new Float64Array(dim);
      const squares = new Float64Array(dim);
      const foldRows = populationRows.filter((row) => foldOfRow[row] === fold);
      for (const row of foldRows) accumulateRow(data, dim, row, sums, squares);
      return { sums, squares, count: foldRows.length };
    });
    const fits: FittedModels[] = [];
    for (let fold = 0; fold < folds; fold++) {
      const sums = new Float64Array(dim);
      const squares = new Float64Array(dim);
      let count = 0;
      foldSums.forEach((entry, index) => {
        if (index === fold) return;
        for (let feature = 0; feature < dim; feature++) {
          sums[feature]! += entry.sums[feature]!;
          squares[feature]! += entry.squares[feature]!;
        }
        count += entry.count;
      });
      const training = populationRows.filter((row) => foldOfRow[row] !== fold);
      fits.push(
        await directFit(data, targets, known, {
          trainingRows: curveTrainingRows(training, caseOfRow, fraction, seed, 0, fold),
          ...statisticsFromSums(sums, squares, count),
        }),
      );
    }
    // Out-of-fold probabilities from the direct fits, computed as the evaluation computes them (all models in one product).
    const columns = folds * labelCount;
    const packed = new Float32Array(dim * columns);
    fits.forEach((fit, fold) => {
      for (let feature = 0; feature < dim; feature++)
        for (let label = 0; label < labelCount; label++) packed[feature * columns + fold * labelCount + label] = fit.weights[0]![feature * labelCount + label]!;
    });
    const logits = await engine.multiply(packed, columns);
    for (let label = 0; label < labelCount; label++) {
      const scores = new Float32Array(rows);
      const labelTargets = new Float64Array(rows);
      for (let row = 0; row < rows; row++) {
        const fold = foldOfRow[row]!;
        const z = logits[row * columns + fold * labelCount + label]! + fits[fold]!.offsets[0]![label]!;
        scores[row] = z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
        labelTargets[row] = targets[row * labelCount + label]!;
      }
      expect(point.perLabel[label]!.values).toEqual([rocAuc(scores, labelTargets, populationRows)]);
    }
    await engine.release();
  });
});

function allIndices(): Int32Array {
  return Int32Array.from({ length: rows }, (_, row) => row);
}
