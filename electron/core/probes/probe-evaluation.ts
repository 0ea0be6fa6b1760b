import { groupedFolds, subsampleByCase } from './grouped-folds.js';
import {
  accumulateRow,
  featureStatistics as featureStatisticsOf,
  fitLogisticModels,
  statisticsFromSums,
  type ColumnOutcome,
  type FittedModels,
  type ProbeModelSpec,
} from '../math/logistic-regression.js';
import type { MatrixEngine } from '../math/matrix-engine.js';
import { fitOnOwnRows } from './row-block.js';
import { accuracy, bootstrapAucIntervals, calibration, multiLabelSummary, rankScores, rocAuc, rocCurve, storedRocCurve, type RankedScores } from './metrics.js';
import type {
  AucResult,
  CurvePoint,
  GroupMetrics,
  LabelMetrics,
  LabelSolverSummary,
  ProbeMetrics,
  RepeatSummary,
  SubgroupAttribute,
  SubgroupResult,
  SubgroupTable,
} from './probe-metrics.types.js';
import { SeededRandom } from '../../common/seeded-random.js';
import { covarianceSpectrum, defaultSpectrumOptions } from '../math/spectral-preconditioner.js';

/** Everything a probe evaluation needs, in plain typed arrays so it crosses into a worker thread. */
export interface ProbeProblem {
  /** Embeddings of every image of the model, rowCount × dim, row-major. */
  data: Float32Array;
  rowCount: number;
  dim: number;
  labels: string[];
  /** rowCount × labels, row-major: 1 positive, 0 negative (meaningful only where known = 1). */
  targets: Uint8Array;
  known: Uint8Array;
  /**
   * Rows of the labelled population the probe learns from and is evaluated on, in the order that
   * decides every seeded draw (the service passes 0..n−1 with rows sorted by case key, so results do
   * not depend on image ids). When they are exactly the first rows, the solver reads only that prefix.
   */
  populationRows: Int32Array;
  /** Case index of every population row (0..cases-1; an image without a case is its own case); -1 elsewhere. */
  caseOfRow: Int32Array;
  subgroups: Array<{ attribute: SubgroupAttribute; source: string; valueOfRow: Array<string | null> }>;
  settings: ProbeSettings;
}

export interface ProbeSettings {
  folds: number;
  seed: number;
  l2: number;
  classWeights: boolean;
  maxIterations: number;
  /** Relative stopping rule: converged when the largest gradient component ≤ tolerance × its value at the start. */
  tolerance: number;
  bootstrapReplicates: number;
  /** Case fractions of the data-efficiency curve below 1 (1 is the cross-validation itself); empty for none. */
  curveFractions: number[];
  curveSeeds: number;
  /** A subgroup with fewer cases than this reports "too small". */
  minGroupCases: number;
  /** A label's AUC (overall and per subgroup) needs at least this many positive and this many negative cases. */
  minClassCases: number;
  /** Grouped k-fold repeated with this many fold seeds (the first is `seed`); 1 = once. */
  repeats: number;
  /**
   * Eigenvectors of the feature covariance the solver is preconditioned with (default 64; 0 = plain
   * L-BFGS). Changes how fast the fits converge, not what they converge to.
   */
  preconditionerRank?: number;
  /** onnxruntime intra-op threads; default: all cores. */
  threads?: number;
}

export interface StageProgress {
  stage: string;
  stageIndex: number;
  stageCount: number;
  pass: number;
  activeColumns: number;
  columns: number;
}

export interface ProbeOutcome {
  metrics: ProbeMetrics;
  /** Final model (trained on the whole population): weights on raw features, dim × labels, and offsets. */
  finalWeights: Float32Array;
  finalOffsets: number[];
  /** Final-model probabilities of every row, rowCount × labels. */
  predictions: Float32Array;
  /** Out-of-fold probabilities of the population rows (rowCount × labels; 0 elsewhere). */
  outOfFold: Float32Array;
  foldOfRow: Int32Array;
}

export interface EvaluationControl {
  isCancelled?: () => boolean;
  onProgress?: (progress: StageProgress) => void;
}

/**
 * Case-grouped k-fold cross-validation, final fit, data-efficiency curve and every metric of a
 * probe. Deterministic for a given problem and seed: folds, subsamples and bootstrap replicates come
 * from seeded streams, and the solver has no randomness.
 */
export async function evaluateProbe(engine: MatrixEngine, problem: ProbeProblem, control: EvaluationControl = {}): Promise<ProbeOutcome> {
  const { data, dim, rowCount, labels, targets, known, populationRows, caseOfRow, settings } = problem;
  const labelCount = labels.length;
  const folds = settings.folds;
  // Unlabelled rows only receive final predictions: when the population is the leading block, every fit reads that block alone.
  const populationIsPrefix = populationRows.every((row, position) => row === position);
  const solverEngine = populationIsPrefix && populationRows.length < engine.rows ? engine.prefix(populationRows.length) : engine;

  const foldOfRow = foldsOfRows(problem, settings.seed);
  const rowsOfFold = Array.from({ length: folds }, (_, fold) => populationRows.filter((row) => foldOfRow[row] === fold));

  // Feature sums per fold, so each training fold's mean and σ come from its own rows without a second pass.
  const foldSums = rowsOfFold.map((rows) => {
    const sums = new Float64Array(dim);
    const squares = new Float64Array(dim);
    for (const row of rows) accumulateRow(data, dim, row, sums, squares);
    return { sums, squares, count: rows.length };
  });
  const trainingStatistics = (excludedFold: number) => {
    const sums = new Float64Array(dim);
    const squares = new Float64Array(dim);
    let count = 0;
    foldSums.forEach((fold, index) => {
      if (index === excludedFold) return;
      for (let feature = 0; feature < dim; feature++) {
        sums[feature]! += fold.sums[feature]!;
        squares[feature]! += fold.squares[feature]!;
      }
      count += fold.count;
    });
    return statisticsFromSums(sums, squares, count);
  };

  const cvModels: ProbeModelSpec[] = rowsOfFold.map((_, fold) => ({
    trainingRows: populationRows.filter((row) => foldOfRow[row] !== fold),
    ...trainingStatistics(fold),
  }));
  const finalModel: ProbeModelSpec = { trainingRows: populationRows, ...trainingStatistics(-1) };

  const curveFractions = [...new Set(settings.curveFractions.filter((fraction) => fraction > 0 && fraction < 1))].sort((a, b) => a - b);
  const repeatSeeds = [settings.seed, ...Array.from({ length: Math.max(0, settings.repeats - 1) }, (_, index) => repeatSeed(settings.seed, index + 1))];
  const stageCount = 1 + (repeatSeeds.length > 1 ? 1 : 0) + curveFractions.length * settings.curveSeeds;
  let stageIndex = 0;
  const solverOptions = (stage: string, columns: number) => ({
    l2: settings.l2,
    classWeights: settings.classWeights,
    maxIterations: settings.maxIterations,
    tolerance: settings.tolerance,
    preconditioner,
    ...(control.isCancelled ? { isCancelled: control.isCancelled } : {}),
    onPass: (pass: number, activeColumns: number) =>
      control.onProgress?.({ stage, stageIndex, stageCount, pass: stageIndex === 0 ? spectrumRounds + pass : pass, activeColumns, columns }),
  });

  // One spectrum of the population's standardised features serves every fit of the run (each model's own
  // standardisation differs from it only by its held-out rows, which a starting guess can ignore).
  const preconditionerRank = settings.preconditionerRank ?? defaultSpectrumOptions.rank;
  // The spectrum's rounds count as the first passes of stage 0, so progress never goes backwards.
  let spectrumRounds = 0;
  const preconditioner =
    preconditionerRank > 0
      ? await covarianceSpectrum(
          solverEngine,
          populationRows,
          finalModel.mean,
          finalModel.std,
          {
            ...defaultSpectrumOptions,
            rank: preconditionerRank,
            oversample: Math.ceil(preconditionerRank / 2),
          },
          {
            ...(control.isCancelled ? { isCancelled: control.isCancelled } : {}),
            onRound: (round) => {
              spectrumRounds = round;
              control.onProgress?.({ stage: 'preparing the solver (feature spectrum)', stageIndex: 0, stageCount, pass: round, activeColumns: 0, columns: 0 });
            },
          },
        )
      : null;

  const mainModels = [...cvModels, finalModel];
  const mainFit = await fitLogisticModels(
    solverEngine,
    targets,
    known,
    labelCount,
    mainModels,
    solverOptions('cross-validation and final fit', mainModels.length * labelCount),
  );
  const fits: FittedModels[] = [mainFit];
  const mainProbabilities = await probabilitiesOf(engine, mainFit);
  const mainColumns = mainModels.length * labelCount;
  const outOfFold = new Float32Array(rowCount * labelCount);
  const predictions = new Float32Array(rowCount * labelCount);
  for (let row = 0; row < rowCount; row++) {
    const fold = foldOfRow[row]!;
    for (let label = 0; label < labelCount; label++) {
      if (fold >= 0) outOfFold[row * labelCount + label] = mainProbabilities[row * mainColumns + fold * labelCount + label]!;
      predictions[row * labelCount + label] = mainProbabilities[row * mainColumns + folds * labelCount + label]!;
    }
  }

  const overall = groupMetrics(outOfFold, problem, populationRows, settings.bootstrapReplicates, SeededRandom.derive(settings.seed, 2).nextInt(2 ** 31), true);

  // Repeated grouped CV: the same k-fold with other fold seeds, fitted together, to show how much the split alone moves each AUC.
  const repeatAucs: Array<Array<number | null>> = [
    labels.map((_, label) => (overall.perLabel[label]!.auc.status === 'measured' ? labelAuc(outOfFold, problem, populationRows, label) : null)),
  ];
  const repeatFits: FittedModels[] = [];
  if (repeatSeeds.length > 1) {
    stageIndex++;
    const repeatFolds = repeatSeeds.slice(1).map((seed) => foldsOfRows(problem, seed));
    const models: ProbeModelSpec[] = repeatFolds.flatMap((foldOf) =>
      Array.from({ length: folds }, (_, fold) => {
        const trainingRows = populationRows.filter((row) => foldOf[row] !== fold);
        return { trainingRows, ...featureStatisticsOf(data, dim, trainingRows) };
      }),
    );
    const fit = await fitLogisticModels(
      solverEngine,
      targets,
      known,
      labelCount,
      models,
      solverOptions(`${repeatSeeds.length - 1} more fold seeds`, models.length * labelCount),
    );
    fits.push(fit);
    repeatFits.push(fit);
    const probabilities = await probabilitiesOf(solverEngine, fit);
    const columns = models.length * labelCount;
    repeatFolds.forEach((foldOf, repeat) => {
      const pooled = new Float32Array(rowCount * labelCount);
      for (const row of populationRows) {
        const model = repeat * folds + foldOf[row]!;
        for (let label = 0; label < labelCount; label++) pooled[row * labelCount + label] = probabilities[row * columns + model * labelCount + label]!;
      }
      repeatAucs.push(labels.map((_, label) => (overall.perLabel[label]!.auc.status === 'measured' ? labelAuc(pooled, problem, populationRows, label) : null)));
    });
  }
  const repeats: RepeatSummary = {
    count: repeatSeeds.length,
    seeds: repeatSeeds,
    perLabel: labels.map((label, index) => {
      const values = repeatAucs.map((run) => run[index] ?? null);
      const measured = values.filter((value): value is number => value !== null);
      return { label, values, mean: mean(measured), sd: standardDeviation(measured) };
    }),
    macroAuc: (() => {
      const values = repeatAucs.map((run) => mean(run.filter((value): value is number => value !== null)));
      const measured = values.filter((value): value is number => value !== null);
      return { values, mean: mean(measured), sd: standardDeviation(measured) };
    })(),
  };

  const subgroups: SubgroupTable[] = problem.subgroups.map((subgroup, attributeIndex) => {
    const byValue = new Map<string, number[]>();
    const missing: number[] = [];
    for (const row of populationRows) {
      const value = subgroup.valueOfRow[row];
      if (value === null || value === undefined) missing.push(row);
      else {
        const list = byValue.get(value);
        if (list) list.push(row);
        else byValue.set(value, [row]);
      }
    }
    const values = [...byValue.keys()].sort(compareSubgroupValues);
    const groups: SubgroupResult[] = values.map((value, valueIndex) => {
      const rows = Int32Array.from(byValue.get(value)!);
      const cases = distinctCases(rows, caseOfRow);
      if (cases < settings.minGroupCases) {
        return {
          value,
          images: rows.length,
          cases,
          status: 'too-small',
          reason: `only ${cases} case${cases === 1 ? '' : 's'} (at least ${settings.minGroupCases} needed)`,
        };
      }
      const seed = SeededRandom.derive(settings.seed, 3, attributeIndex, valueIndex).nextInt(2 ** 31);
      return {
        value,
        images: rows.length,
        cases,
        status: 'measured',
        metrics: groupMetrics(outOfFold, problem, rows, settings.bootstrapReplicates, seed, false),
      };
    });
    const missingRows = Int32Array.from(missing);
    return {
      attribute: subgroup.attribute,
      source: subgroup.source,
      notRecorded: { images: missingRows.length, cases: distinctCases(missingRows, caseOfRow) },
      groups,
    };
  });

  const curve: CurvePoint[] = [];
  const curveValues = new Map<number, Array<Array<number | null>>>();
  const curveCases = new Map<number, number[]>();
  for (const fraction of curveFractions) {
    for (let seedIndex = 0; seedIndex < settings.curveSeeds; seedIndex++) {
      stageIndex++;
      const models: ProbeModelSpec[] = cvModels.map((model, fold) => ({
        trainingRows: curveTrainingRows(model.trainingRows, caseOfRow, fraction, settings.seed, seedIndex, fold),
        // Standardised with the whole training fold's feature statistics: features only, no labels, and never the test fold.
        mean: model.mean,
        std: model.std,
      }));
      const stage = `data-efficiency ${Math.round(fraction * 100)}% seed ${seedIndex + 1}`;
      const stageColumns = models.length * labelCount;
      const options = solverOptions(stage, stageColumns);
      // A small subsample is fitted alone on its own rows; larger ones together on the whole matrix, where
      // the one wide product beats separate narrow ones (break-even measured near a third of the rows).
      const ownRows = models.map((model) => model.trainingRows.length <= ownRowsLimit * solverEngine.rows);
      const batched = models.filter((_, index) => !ownRows[index]);
      const modelFits: FittedModels[] = new Array<FittedModels>(models.length);
      let stagePasses = 0;
      let waiting = ownRows.filter(Boolean).length * labelCount;
      if (batched.length > 0) {
        const fit = await fitLogisticModels(solverEngine, targets, known, labelCount, batched, {
          ...options,
          onPass: (_pass, activeColumns) => options.onPass(++stagePasses, activeColumns + waiting),
        });
        const parts = splitFit(fit);
        models.forEach((_, index) => {
          if (!ownRows[index]) modelFits[index] = parts.shift()!;
        });
      }
      for (const [index, model] of models.entries()) {
        if (!ownRows[index]) continue;
        waiting -= labelCount;
        modelFits[index] = await fitOnOwnRows(solverEngine, targets, known, labelCount, model, {
          ...options,
          onPass: (_pass, activeColumns) => options.onPass(++stagePasses, activeColumns + waiting),
        });
      }
      const fit = combineFits(modelFits, labelCount);
      fits.push(fit);
      const probabilities = await probabilitiesOf(solverEngine, fit);
      const columns = models.length * labelCount;
      const pooled = new Float32Array(rowCount * labelCount);
      for (const row of populationRows) {
        const fold = foldOfRow[row]!;
        for (let label = 0; label < labelCount; label++) pooled[row * labelCount + label] = probabilities[row * columns + fold * labelCount + label]!;
      }
      const aucs = labels.map((_, label) => (overall.perLabel[label]!.auc.status === 'measured' ? labelAuc(pooled, problem, populationRows, label) : null));
      curveValues.set(fraction, [...(curveValues.get(fraction) ?? []), aucs]);
      curveCases.set(fraction, [...(curveCases.get(fraction) ?? []), ...models.map((model) => distinctCases(model.trainingRows, caseOfRow))]);
    }
    const runs = curveValues.get(fraction)!;
    curve.push(curvePoint(fraction, mean(curveCases.get(fraction)!)!, labels, runs));
  }
  const fullAucs = repeatAucs[0]!;
  curve.push(curvePoint(1, mean(cvModels.map((model) => distinctCases(model.trainingRows, caseOfRow)))!, labels, [fullAucs]));

  const iterations = fits.flatMap((fit) => Array.from(fit.iterations));
  const outcomes: Partial<Record<ColumnOutcome, number>> = {};
  for (const fit of fits) for (const outcome of fit.outcomes) outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;

  // Per label, the fits its reported numbers come from: the k fold models and the final model of the main CV, and the repeats' fold models.
  const perLabelSolver: LabelSolverSummary[] = labels.map((label, index) => {
    const columnsOf = (fit: FittedModels) => Array.from({ length: fit.weights.length }, (_, model) => model * labelCount + index);
    const iterations = [
      ...columnsOf(mainFit).map((column) => mainFit.iterations[column]!),
      ...repeatFits.flatMap((fit) => columnsOf(fit).map((column) => fit.iterations[column]!)),
    ];
    const labelOutcomes = [
      ...columnsOf(mainFit).map((column) => mainFit.outcomes[column]!),
      ...repeatFits.flatMap((fit) => columnsOf(fit).map((column) => fit.outcomes[column]!)),
    ];
    const gradients = [
      ...columnsOf(mainFit).map((column) => mainFit.relativeGradients[column]!),
      ...repeatFits.flatMap((fit) => columnsOf(fit).map((column) => fit.relativeGradients[column]!)),
    ];
    // A stalled line search found no lower loss along a descent direction: the loss differences left are below what float32
    // products resolve, so the fit is as close as this solver gets (the bench measured such fits within 3e-4 of a far-past-convergence reference).
    return {
      label,
      iterations,
      outcomes: labelOutcomes,
      worstRelativeGradient: Math.max(0, ...gradients),
      atPrecisionFloor: labelOutcomes.filter((outcome) => outcome === 'line-search-stalled').length,
      converged: labelOutcomes.every((outcome) => outcome === 'converged' || outcome === 'line-search-stalled'),
    };
  });
  const curveFits = fits.slice(1 + repeatFits.length);
  const curveNotConverged = curveFits.reduce(
    (sum, fit) => sum + fit.outcomes.filter((outcome) => outcome !== 'converged' && outcome !== 'line-search-stalled').length,
    0,
  );

  const finalWeights = Float32Array.from(mainFit.weights[folds]!);
  return {
    metrics: {
      labels,
      folds: { count: folds, images: rowsOfFold.map((rows) => rows.length), cases: rowsOfFold.map((rows) => distinctCases(rows, caseOfRow)) },
      overall,
      subgroups,
      curve,
      repeats,
      solver: {
        tolerance: settings.tolerance,
        passes: fits.reduce((sum, fit) => sum + fit.passes, 0),
        maxIterations: Math.max(0, ...iterations),
        meanIterations: mean(iterations) ?? 0,
        outcomes,
        perLabel: perLabelSolver,
        curveNotConverged,
      },
    },
    finalWeights,
    finalOffsets: Array.from(mainFit.offsets[folds]!),
    predictions,
    outOfFold,
    foldOfRow,
  };
}

/** Fold of every population row (−1 elsewhere) for one fold seed; cases are taken in the order of their indices. */
function foldsOfRows(problem: ProbeProblem, seed: number): Int32Array {
  const { populationRows, caseOfRow, rowCount, settings } = problem;
  const foldOfPopulation = groupedFolds(
    Int32Array.from(populationRows, (row) => caseOfRow[row]!),
    settings.folds,
    seed,
  );
  const foldOfRow = new Int32Array(rowCount).fill(-1);
  populationRows.forEach((row, position) => {
    foldOfRow[row] = foldOfPopulation[position]!;
  });
  return foldOfRow;
}

/** Fold seed of repeat `repeat` (≥ 1) of the grouped CV; repeat 0 uses the run's seed itself. */
export function repeatSeed(seed: number, repeat: number): number {
  return SeededRandom.derive(seed, 5, repeat).nextInt(2 ** 31);
}

/** Rows of one data-efficiency model: the seeded case subsample of a training fold (exported so tests can fit the same subset directly). */
export function curveTrainingRows(
  trainingRows: Int32Array,
  caseOfRow: Int32Array,
  fraction: number,
  seed: number,
  seedIndex: number,
  fold: number,
): Int32Array {
  return subsampleByCase(trainingRows, caseOfRow, fraction, SeededRandom.derive(seed, 4, seedIndex, fold, Math.round(fraction * 1e6)));
}

/**
 * A data-efficiency model with at most this share of the matrix's rows trains on its own rows alone.
 * Side by side on 10k × 6144 × 10 labels (test/bench/probes.bench.ts): own rows 3.3× faster at 10% of
 * a training fold's cases (8% of the rows), 1.7× at 25% (20%), 0.75× at 50% (40%): each model then
 * needs its own passes of a 10-column product, which uses the CPU about 3× less well per row than
 * the five models' 50-column product over every row.
 */
const ownRowsLimit = 0.3;

/** One fit per model of a batched fit (its passes counted once, on the first). */
function splitFit(fit: FittedModels): FittedModels[] {
  const { labelCount } = fit;
  return fit.weights.map((weights, model) => ({
    labelCount,
    weights: [weights],
    offsets: [fit.offsets[model]!],
    iterations: fit.iterations.slice(model * labelCount, (model + 1) * labelCount),
    relativeGradients: fit.relativeGradients.slice(model * labelCount, (model + 1) * labelCount),
    outcomes: fit.outcomes.slice(model * labelCount, (model + 1) * labelCount),
    passes: model === 0 ? fit.passes : 0,
  }));
}

/** Single-model fits side by side, as if they had been one batched fit. */
function combineFits(fits: FittedModels[], labelCount: number): FittedModels {
  return {
    labelCount,
    weights: fits.flatMap((fit) => fit.weights),
    offsets: fits.flatMap((fit) => fit.offsets),
    iterations: Int32Array.from(fits.flatMap((fit) => Array.from(fit.iterations))),
    relativeGradients: Float64Array.from(fits.flatMap((fit) => Array.from(fit.relativeGradients))),
    outcomes: fits.flatMap((fit) => fit.outcomes),
    passes: fits.reduce((sum, fit) => sum + fit.passes, 0),
  };
}

/** Probabilities of every row for every column of the fitted models, in one pass: rowCount × (models × labels). */
async function probabilitiesOf(engine: MatrixEngine, fit: FittedModels): Promise<Float32Array> {
  const { labelCount, weights, offsets } = fit;
  const columns = weights.length * labelCount;
  const packed = new Float32Array(engine.dim * columns);
  weights.forEach((modelWeights, model) => {
    for (let feature = 0; feature < engine.dim; feature++) {
      for (let label = 0; label < labelCount; label++) packed[feature * columns + model * labelCount + label] = modelWeights[feature * labelCount + label]!;
    }
  });
  const logits = await engine.multiply(packed, columns);
  const probabilities = new Float32Array(logits.length);
  for (let index = 0; index < logits.length; index++) {
    const column = index % columns;
    const z = logits[index]! + offsets[Math.floor(column / labelCount)]![column % labelCount]!;
    probabilities[index] = z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
  }
  return probabilities;
}

function column(values: Float32Array | Uint8Array, labelCount: number, label: number, rowCount: number): Float64Array {
  const out = new Float64Array(rowCount);
  for (let row = 0; row < rowCount; row++) out[row] = values[row * labelCount + label]!;
  return out;
}

function knownRows(problem: ProbeProblem, rows: Int32Array, label: number): Int32Array {
  const labelCount = problem.labels.length;
  return rows.filter((row) => problem.known[row * labelCount + label] === 1);
}

function labelAuc(scores: Float32Array, problem: ProbeProblem, rows: Int32Array, label: number): number | null {
  const labelCount = problem.labels.length;
  return rocAuc(
    column(scores, labelCount, label, problem.rowCount),
    column(problem.targets, labelCount, label, problem.rowCount),
    knownRows(problem, rows, label),
  );
}

function groupMetrics(scores: Float32Array, problem: ProbeProblem, rows: Int32Array, replicates: number, seed: number, withReliability: boolean): GroupMetrics {
  const { labels, targets, known, caseOfRow, rowCount, settings } = problem;
  const labelCount = labels.length;
  const perLabelRows = labels.map((_, label) => knownRows(problem, rows, label));
  const scoreColumns = labels.map((_, label) => column(scores, labelCount, label, rowCount));
  const targetColumns = labels.map((_, label) => column(targets, labelCount, label, rowCount));
  const positiveRowsOf = perLabelRows.map((labelRows, label) => labelRows.filter((row) => targetColumns[label]![row] === 1));
  const negativeRowsOf = perLabelRows.map((labelRows, label) => labelRows.filter((row) => targetColumns[label]![row] !== 1));
  const positiveCasesOf = positiveRowsOf.map((positiveRows) => distinctCases(positiveRows, caseOfRow));
  const negativeCasesOf = negativeRowsOf.map((negativeRows) => distinctCases(negativeRows, caseOfRow));
  // An AUC from a handful of positive (or negative) cases only looks certain: below the floor the label reports the counts instead.
  const tooFew = labels.map((_, label): string | null => {
    const positives = positiveCasesOf[label]!;
    const negatives = negativeCasesOf[label]!;
    const floor = settings.minClassCases;
    if (positives < floor)
      return `too few positives: ${positives} positive case${positives === 1 ? '' : 's'} (${positiveRowsOf[label]!.length} images); at least ${floor} needed`;
    if (negatives < floor)
      return `too few negatives: ${negatives} negative case${negatives === 1 ? '' : 's'} (${negativeRowsOf[label]!.length} images); at least ${floor} needed`;
    return null;
  });
  const ranked: Array<RankedScores | null> = labels.map((_, label) =>
    tooFew[label] === null && positiveRowsOf[label]!.length > 0 && negativeRowsOf[label]!.length > 0
      ? rankScores(scoreColumns[label]!, targetColumns[label]!, perLabelRows[label]!)
      : null,
  );
  // Every label shares the same case draws; rows outside a label's known set simply carry no weight in its ranking.
  const intervals = bootstrapAucIntervals(ranked, rows, caseOfRow, replicates, seed);
  const perLabel: LabelMetrics[] = labels.map((label, index) => {
    const labelRows = perLabelRows[index]!;
    const targetColumn = targetColumns[index]!;
    const positiveRows = positiveRowsOf[index]!;
    const positives = positiveRows.length;
    const negatives = labelRows.length - positives;
    let auc: AucResult;
    const rankedLabel = ranked[index];
    const interval = intervals[index];
    const shortage = tooFew[index];
    if (shortage !== null) {
      auc = { status: 'too-small', reason: shortage };
    } else if (!rankedLabel) {
      auc = { status: 'too-small', reason: positives === 0 ? 'no positive images' : 'no negative images' };
    } else if (!interval) {
      auc = { status: 'too-small', reason: 'no bootstrap replicate drew both classes' };
    } else {
      auc = {
        status: 'measured',
        value: rocAuc(scoreColumns[index]!, targetColumn, labelRows)!,
        ci95: [interval.low, interval.high],
        bootstrapReplicates: interval.replicates,
      };
    }
    const summary = calibration(scoreColumns[index]!, targetColumn, labelRows);
    const metrics: LabelMetrics = {
      label,
      images: labelRows.length,
      positives,
      negatives,
      positiveCases: positiveCasesOf[index]!,
      negativeCases: negativeCasesOf[index]!,
      auc,
      accuracy: accuracy(scoreColumns[index]!, targetColumn, labelRows),
      brier: summary.brier,
      ece: summary.ece,
    };
    if (withReliability) {
      metrics.reliability = summary.bins;
      // Curves only in the overall table: per subgroup they would multiply the stored JSON for little gain.
      const roc =
        auc.status === 'measured'
          ? rocCurve(
              Float64Array.from(labelRows, (row) => scoreColumns[index]![row]!),
              Uint8Array.from(labelRows, (row) => targetColumn[row]!),
            )
          : null;
      if (roc) metrics.roc = storedRocCurve(roc);
    }
    return metrics;
  });
  const summary = multiLabelSummary(scores, targets, known, labelCount, rows);
  const measured = perLabel.flatMap((metrics) => (metrics.auc.status === 'measured' ? [metrics.auc.value] : []));
  return {
    images: rows.length,
    cases: distinctCases(rows, caseOfRow),
    macroAuc: mean(measured),
    hammingLoss: summary.hammingLoss,
    subsetAccuracy: summary.subsetAccuracy,
    perLabel,
  };
}

function curvePoint(fraction: number, trainingCases: number, labels: string[], runs: Array<Array<number | null>>): CurvePoint {
  const perLabel = labels.map((label, index) => {
    const values = runs.map((run) => run[index] ?? null);
    const measured = values.filter((value): value is number => value !== null);
    return { label, mean: mean(measured), sd: standardDeviation(measured), values };
  });
  const macros = runs.map((run) => mean(run.filter((value): value is number => value !== null))).filter((value): value is number => value !== null);
  return { fraction, trainingCases, seeds: runs.length, macroAuc: { mean: mean(macros), sd: standardDeviation(macros) }, perLabel };
}

export function distinctCases(rows: Int32Array, caseOfRow: Int32Array): number {
  const seen = new Set<number>();
  for (const row of rows) seen.add(caseOfRow[row]!);
  return seen.size;
}

function mean(values: number[]): number | null {
  return values.length === 0 ? null : values.reduce((sum, value) => sum + value, 0) / values.length;
}

function standardDeviation(values: number[]): number | null {
  const average = mean(values);
  if (average === null) return null;
  if (values.length < 2) return 0;
  return Math.sqrt(values.reduce((sum, value) => sum + (value - average) ** 2, 0) / (values.length - 1));
}

const romanOrder = ['I', 'II', 'III', 'IV', 'V', 'VI'];

/** Fitzpatrick types in Roman order, Monk tones numerically, anything else alphabetically. */
function compareSubgroupValues(a: string, b: string): number {
  const romanA = romanOrder.indexOf(a);
  const romanB = romanOrder.indexOf(b);
  if (romanA >= 0 && romanB >= 0) return romanA - romanB;
  const numberA = Number(a);
  const numberB = Number(b);
  if (Number.isFinite(numberA) && Number.isFinite(numberB)) return numberA - numberB;
  return a.localeCompare(b);
}
