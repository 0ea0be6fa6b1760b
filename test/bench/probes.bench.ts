/**
 * Probe training at the scale of SCIN with Derm Foundation: 10,000 images × 6144-d × 10 labels, cases
 * of one to three photos. Prints the seconds for the full case-grouped 5-fold CV + final fit (with
 * 1000 case-bootstrap replicates and subgroup tables), the same with the data-efficiency curve, and
 * memory: the peak RSS above the matrix itself, next to the matrix size (a per-fold copy would add
 * the matrix size again per fold). Also one solver pass through onnxruntime vs a plain JavaScript
 * loop, side by side on the same matrix, and one data-efficiency stage (the five 10% subsample models)
 * fitted the old way (every row of the matrix in every pass, zero weight outside the subsample) and
 * on only its own rows, side by side. The CV + final fit runs twice, side by side: with plain L-BFGS
 * (the solver before the spectral preconditioner) and preconditioned (the default), with the largest
 * difference between their out-of-fold probabilities; the stopping-rule check compares both against
 * one fit run far past convergence.
 */
import os from 'node:os';
import { MatrixEngine } from '../../electron/core/math/matrix-engine.js';
import { groupedFolds } from '../../electron/core/probes/grouped-folds.js';
import { featureStatistics, fitLogisticModels, predictAll, type FittedModels, type ProbeModelSpec } from '../../electron/core/math/logistic-regression.js';
import { curveTrainingRows, evaluateProbe, type ProbeProblem, type ProbeSettings } from '../../electron/core/probes/probe-evaluation.js';
import { fitOnOwnRows } from '../../electron/core/probes/row-block.js';
import { probeDefaults } from '../../electron/core/probes/probes.service.js';
import { SeededRandom } from '../../electron/common/seeded-random.js';
import { covarianceSpectrum, defaultSpectrumOptions, type SpectralPreconditioner } from '../../electron/core/math/spectral-preconditioner.js';
import fs from 'node:fs';

const rowCount = 10_000;
const dim = 6144;
const labelCount = 10;
const latentRank = 64;

function gaussian(random: SeededRandom): number {
  return Math.sqrt(-2 * Math.log(1 - random.next())) * Math.cos(2 * Math.PI * random.next());
}

const megabytes = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;

export async function buildProblem(): Promise<ProbeProblem> {
  const random = new SeededRandom(2026);
  // Photos of a case share its latent vector; embeddings are a low-rank map of it plus noise, like real embeddings' correlated features.
  const caseOfRow = new Int32Array(rowCount);
  let caseNumber = -1;
  let left = 0;
  for (let row = 0; row < rowCount; row++) {
    if (left === 0) {
      caseNumber++;
      left = 1 + random.nextInt(3);
    }
    caseOfRow[row] = caseNumber;
    left--;
  }
  const caseLatent = Array.from({ length: caseNumber + 1 }, () => Float32Array.from({ length: latentRank }, () => gaussian(random)));
  const latent = new Float32Array(rowCount * latentRank);
  for (let row = 0; row < rowCount; row++) {
    for (let k = 0; k < latentRank; k++) latent[row * latentRank + k] = caseLatent[caseOfRow[row]!]![k]! + 0.3 * gaussian(random);
  }
  const factors = Float32Array.from({ length: latentRank * dim }, () => gaussian(random) / Math.sqrt(latentRank));
  const generator = await MatrixEngine.create(latent, rowCount, latentRank);
  const data = new Float32Array(await generator.multiply(factors, dim));
  await generator.release();
  for (let index = 0; index < data.length; index += 7) data[index]! += 0.2 * gaussian(random);

  // Label l is a noisy threshold on latent direction l, with prevalences from 5% to 30%.
  const targets = new Uint8Array(rowCount * labelCount);
  for (let row = 0; row < rowCount; row++) {
    for (let label = 0; label < labelCount; label++) {
      const score = latent[row * latentRank + label]! + 0.7 * gaussian(random);
      const threshold = 0.5 + label * 0.12;
      targets[row * labelCount + label] = score > threshold ? 1 : 0;
    }
  }
  const fitzpatrick = ['I', 'II', 'III', 'IV', 'V', 'VI'];
  const sexes = ['FEMALE', 'MALE', 'OTHER_OR_UNSPECIFIED'];
  return {
    data,
    rowCount,
    dim,
    labels: Array.from({ length: labelCount }, (_, label) => `condition-${label + 1}`),
    targets,
    known: new Uint8Array(rowCount * labelCount).fill(1),
    populationRows: Int32Array.from({ length: rowCount }, (_, row) => row),
    caseOfRow,
    subgroups: [
      { attribute: 'fitzpatrick', source: 'generated', valueOfRow: Array.from(caseOfRow, (caseId) => fitzpatrick[caseId % 6]!) },
      { attribute: 'sex', source: 'generated', valueOfRow: Array.from(caseOfRow, (caseId) => sexes[caseId % 3]!) },
    ],
    settings: settings([]),
  };
}

/** One curve stage (five fold models on `fraction` of their training cases, seed index 0): old batched all-rows fit vs one model at a time on its own rows. */
async function compareCurveStage(engine: MatrixEngine, problem: ProbeProblem, fraction: number): Promise<void> {
  const { folds, seed } = settings([]);
  const foldOfRow = groupedFolds(problem.caseOfRow, folds, seed);
  const models: ProbeModelSpec[] = Array.from({ length: folds }, (_, fold) => {
    const training = problem.populationRows.filter((row) => foldOfRow[row] !== fold);
    return { trainingRows: curveTrainingRows(training, problem.caseOfRow, fraction, seed, 0, fold), ...featureStatistics(problem.data, dim, training) };
  });
  const options = { l2: probeDefaults.l2, classWeights: false, maxIterations: probeDefaults.maxIterations, tolerance: probeDefaults.tolerance };
  let started = performance.now();
  const allRows = await fitLogisticModels(engine, problem.targets, problem.known, labelCount, models, options);
  const allRowsSeconds = (performance.now() - started) / 1000;
  started = performance.now();
  const ownRows: FittedModels[] = [];
  for (const model of models) ownRows.push(await fitOnOwnRows(engine, problem.targets, problem.known, labelCount, model, options));
  const ownRowsSeconds = (performance.now() - started) / 1000;
  let largest = 0;
  let difference = 0;
  ownRows.forEach((fit, model) => {
    const before = allRows.weights[model]!;
    fit.weights[0]!.forEach((weight, index) => {
      largest = Math.max(largest, Math.abs(before[index]!));
      difference = Math.max(difference, Math.abs(weight - before[index]!));
    });
  });
  const rows = models.reduce((sum, model) => sum + model.trainingRows.length, 0) / models.length;
  console.log(
    `one curve stage (${folds} models × ${labelCount} labels on ${Math.round(fraction * 100)}% of a training fold's cases, mean ${rows.toFixed(0)} rows): every row of the matrix ${allRowsSeconds.toFixed(1)} s (${allRows.passes} passes of ${engine.rows} rows), own rows only ${ownRowsSeconds.toFixed(1)} s (${ownRows.reduce((sum, fit) => sum + fit.passes, 0)} passes of one model's rows) — ${(allRowsSeconds / ownRowsSeconds).toFixed(1)}× less time; largest weight difference ${difference.toExponential(1)} (largest weight ${largest.toExponential(1)})`,
  );
}

export function settings(curveFractions: number[], repeats = 1, preconditionerRank?: number): ProbeSettings {
  return {
    folds: probeDefaults.folds,
    seed: 1,
    l2: probeDefaults.l2,
    classWeights: false,
    maxIterations: probeDefaults.maxIterations,
    tolerance: probeDefaults.tolerance,
    bootstrapReplicates: probeDefaults.bootstrapReplicates,
    curveFractions,
    curveSeeds: probeDefaults.curveSeeds,
    minGroupCases: probeDefaults.minGroupCases,
    minClassCases: probeDefaults.minClassCases,
    repeats,
    ...(preconditionerRank !== undefined ? { preconditionerRank } : {}),
  };
}

/**
 * How far the default stopping rule leaves the final model (every row, 10 labels) from the optimum:
 * the same fit run far past convergence (relative tolerance 1e-10, no loss-change stop, up to 3000
 * iterations) is the reference, and the largest probability difference over all rows is printed for
 * the default and for looser tolerances, with each fit's time and iterations.
 */
async function convergence(engine: MatrixEngine, problem: ProbeProblem): Promise<void> {
  const model: ProbeModelSpec = { trainingRows: problem.populationRows, ...featureStatistics(problem.data, dim, problem.populationRows) };
  let started = performance.now();
  const preconditioner = await covarianceSpectrum(engine, problem.populationRows, model.mean, model.std, {
    ...defaultSpectrumOptions,
    oversample: defaultSpectrumOptions.rank / 2,
  });
  console.log(`feature spectrum for the preconditioner (rank ${defaultSpectrumOptions.rank}): ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const fit = async (tolerance: number, extra: { lossTolerance?: number; maxIterations?: number; preconditioner?: SpectralPreconditioner | null } = {}) => {
    started = performance.now();
    const fitted = await fitLogisticModels(engine, problem.targets, problem.known, labelCount, [model], {
      l2: probeDefaults.l2,
      classWeights: false,
      maxIterations: extra.maxIterations ?? probeDefaults.maxIterations,
      tolerance,
      ...(extra.lossTolerance !== undefined ? { lossTolerance: extra.lossTolerance } : {}),
      preconditioner: extra.preconditioner ?? null,
    });
    const probabilities = await predictAll(engine, fitted.weights[0]!, fitted.offsets[0]!);
    const iterations = Array.from(fitted.iterations);
    const outcomes: Record<string, number> = {};
    for (const outcome of fitted.outcomes) outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    const summary = `${((performance.now() - started) / 1000).toFixed(1)} s, ${fitted.passes} passes, iterations mean ${(iterations.reduce((a, b) => a + b, 0) / iterations.length).toFixed(0)} max ${Math.max(...iterations)}, ${JSON.stringify(outcomes)}`;
    return { probabilities, summary };
  };
  // The preconditioned solver reaches the far-past-convergence point in a fraction of the plain one's passes.
  const reference = await fit(1e-10, { lossTolerance: 0, maxIterations: 3000, preconditioner });
  console.log(`final model far past convergence (reference, preconditioned, relative tolerance 1e-10): ${reference.summary}`);
  for (const tolerance of [1e-4, probeDefaults.tolerance, 1e-5]) {
    for (const [solver, chosen] of [
      ['plain L-BFGS', null],
      ['preconditioned', preconditioner],
    ] as const) {
      const result = await fit(tolerance, { preconditioner: chosen });
      let worst = 0;
      for (let index = 0; index < result.probabilities.length; index++)
        worst = Math.max(worst, Math.abs(result.probabilities[index]! - reference.probabilities[index]!));
      console.log(
        `  tolerance ${tolerance}${tolerance === probeDefaults.tolerance ? ' (default)' : ''}, ${solver}: largest |p − p_reference| over all rows and labels ${worst.toExponential(2)}; ${result.summary}`,
      );
    }
  }
}

/** One solver pass (X·W then Xᵀ·R) for 6 models × 10 labels in plain JavaScript, for comparison. */
function javascriptPass(data: Float32Array, rowCount: number, weights: Float32Array, columns: number): number {
  const logits = new Float64Array(columns);
  const gradient = new Float64Array(dim * columns);
  for (let row = 0; row < rowCount; row++) {
    logits.fill(0);
    const start = row * dim;
    for (let feature = 0; feature < dim; feature++) {
      const value = data[start + feature]!;
      for (let column = 0; column < columns; column++) logits[column]! += value * weights[feature * columns + column]!;
    }
    for (let feature = 0; feature < dim; feature++) {
      const value = data[start + feature]!;
      for (let column = 0; column < columns; column++) gradient[feature * columns + column]! += value * logits[column]!;
    }
  }
  return gradient[0]!;
}

/** A fixed gather-and-add loop (1e8 steps), printed so figures taken on a busy machine can be scaled. */
function referenceLoopMilliseconds(): number {
  const weights = new Float64Array(50_000).fill(1);
  const index = Int32Array.from({ length: 100_000 }, (_, position) => (position * 7919) % 50_000);
  const started = performance.now();
  let sum = 0;
  for (let repeat = 0; repeat < 1000; repeat++) for (let position = 0; position < index.length; position++) sum += weights[index[position]!]!;
  if (sum !== 1e8) throw new Error('reference loop miscounted');
  return performance.now() - started;
}

export async function run(): Promise<void> {
  console.log(`reference loop (1e8 gather-adds, to compare machine load between runs): ${referenceLoopMilliseconds().toFixed(0)} ms`);
  const problem = await buildProblem();
  const matrixBytes = problem.data.byteLength;
  const engine = await MatrixEngine.create(problem.data, rowCount, dim);
  const baseline = process.memoryUsage().rss;
  console.log(
    `${os.cpus().length} CPUs, load average ${os
      .loadavg()
      .map((load) => load.toFixed(1))
      .join(' ')}`,
  );
  console.log(
    `matrix ${rowCount} × ${dim} float32 = ${megabytes(matrixBytes)}; ${labelCount} labels; ${new Set(problem.caseOfRow).size} cases; RSS with the matrix ${megabytes(baseline)}`,
  );

  // The comparison runs on the first 1000 rows (a view, not a copy) so the plain loop stays short.
  const sampleRows = 1000;
  const sample = await MatrixEngine.create(problem.data.subarray(0, sampleRows * dim), sampleRows, dim);
  const columns = 6 * labelCount;
  const weights = Float32Array.from({ length: dim * columns }, (_, index) => ((index % 13) - 6) * 1e-4);
  let started = performance.now();
  const logits = await sample.multiply(weights, columns);
  await sample.multiplyTransposed(new Float32Array(logits.length).fill(1e-3), columns);
  const ortPass = (performance.now() - started) / 1000;
  await sample.release();
  started = performance.now();
  javascriptPass(problem.data, sampleRows, weights, columns);
  const jsPass = (performance.now() - started) / 1000;
  console.log(
    `one solver pass over ${sampleRows} rows × 60 columns (X·W and Xᵀ·R): onnxruntime ${(ortPass * 1000).toFixed(0)} ms, JavaScript loop ${(jsPass * 1000).toFixed(0)} ms (${(jsPass / ortPass).toFixed(1)}×)`,
  );

  // Side-by-side of one curve stage fitted over every row vs over its own rows, per fraction in PROBES_BENCH_COMPARE (default 0.1; 0 skips).
  const compared = (process.env.PROBES_BENCH_COMPARE ?? '0.1')
    .split(',')
    .map(Number)
    .filter((fraction) => fraction > 0 && fraction < 1);
  for (const fraction of compared) await compareCurveStage(engine, problem, fraction);

  // PROBES_BENCH_CONVERGENCE=0 skips the stopping-rule check against a fit far past convergence.
  if (process.env.PROBES_BENCH_CONVERGENCE !== '0') await convergence(engine, problem);

  // PROBES_BENCH_CURVE=0 skips the (much longer) run with the data-efficiency curve; PROBES_BENCH_REPEATS=R (default 3; 1 skips) adds a repeated-CV run.
  // PROBES_BENCH_PLAIN=0 skips the side-by-side run with the plain (unpreconditioned) solver.
  const runs: Array<[string, number[], number, number?]> = [];
  if (process.env.PROBES_BENCH_PLAIN !== '0') runs.push(['5-fold grouped CV + final fit, plain L-BFGS (before)', [], 1, 0]);
  runs.push(['5-fold grouped CV + final fit, preconditioned (default)', [], 1]);
  const repeats = Number(process.env.PROBES_BENCH_REPEATS ?? 3);
  if (repeats > 1) runs.push([`5-fold grouped CV × ${repeats} fold seeds + final fit`, [], repeats]);
  if (process.env.PROBES_BENCH_CURVE !== '0') runs.push([`… plus data-efficiency curve (10/25/50% × ${probeDefaults.curveSeeds} seeds)`, [0.1, 0.25, 0.5], 1]);
  const loadavg = () => fs.readFileSync('/proc/loadavg', 'utf8').trim().split(' ').slice(0, 3).join(' ');
  const cvSeconds: number[] = [];
  const cvOutOfFold: Float32Array[] = [];
  for (const [name, fractions, repeatCount, preconditionerRank] of runs) {
    const loadBefore = loadavg();
    const before = process.memoryUsage().rss;
    let peak = before;
    let lastPass = 0;
    const sample = () => {
      peak = Math.max(peak, process.memoryUsage().rss);
    };
    let spectrumDone = 0;
    const onProgress = (progress: { columns: number }) => {
      sample();
      lastPass = performance.now();
      if (progress.columns === 0) spectrumDone = lastPass;
    };
    const timer = setInterval(sample, 50);
    started = performance.now();
    const outcome = await evaluateProbe(engine, { ...problem, settings: settings(fractions, repeatCount, preconditionerRank) }, { onProgress });
    const seconds = (performance.now() - started) / 1000;
    clearInterval(timer);
    sample();
    if (fractions.length === 0 && repeatCount === 1) {
      cvSeconds.push(seconds);
      cvOutOfFold.push(outcome.outOfFold);
    }
    const { solver, overall, repeats: repeated } = outcome.metrics;
    const notConverged = (solver.perLabel ?? [])
      .filter((label) => !label.converged)
      .map((label) => `${label.label} (${label.worstRelativeGradient.toExponential(1)})`);
    console.log(`  labels whose fits did not all meet the rule (worst relative gradient): ${notConverged.join(', ') || 'none'}`);
    if (repeated && repeated.count > 1) {
      console.log(
        `  AUC per label, mean ± sd over ${repeated.count} fold seeds: ${repeated.perLabel.map((label) => `${label.mean?.toFixed(3)} ± ${label.sd?.toFixed(3)} (range ${(Math.max(...label.values.map(Number)) - Math.min(...label.values.map(Number))).toFixed(3)})`).join('; ')}`,
      );
    }
    console.log(
      `${name} [load ${loadBefore} → ${loadavg()}]: ${seconds.toFixed(1)} s (solver ${((lastPass - started) / 1000).toFixed(1)} s${spectrumDone > 0 ? ` of which the feature spectrum ${((spectrumDone - started) / 1000).toFixed(1)} s` : ''}, metrics and bootstrap ${((started + seconds * 1000 - lastPass) / 1000).toFixed(1)} s); ${solver.passes} passes, iterations mean ${solver.meanIterations.toFixed(0)} max ${solver.maxIterations}, ${JSON.stringify(solver.outcomes)}; macro AUC ${overall.macroAuc?.toFixed(3)}; peak RSS ${megabytes(peak)}, +${megabytes(peak - before)} during the run (the matrix is ${megabytes(matrixBytes)}; a copy per fold would add that per fold)`,
    );
  }
  if (cvSeconds.length === 2) {
    let worst = 0;
    for (let index = 0; index < cvOutOfFold[0]!.length; index++) worst = Math.max(worst, Math.abs(cvOutOfFold[0]![index]! - cvOutOfFold[1]![index]!));
    console.log(
      `CV + final fit side by side: plain ${cvSeconds[0]!.toFixed(1)} s, preconditioned ${cvSeconds[1]!.toFixed(1)} s (${(cvSeconds[0]! / cvSeconds[1]!).toFixed(1)}× less time); largest out-of-fold |Δp| between them ${worst.toExponential(2)}`,
    );
  }
  console.log(
    `load average after: ${os
      .loadavg()
      .map((load) => load.toFixed(1))
      .join(' ')}`,
  );
  await engine.release();
}
