import { describe, expect, it } from 'vitest';
import { featureStatistics, fitLogisticModels, predictAll, type ProbeModelSpec } from '../../electron/core/math/logistic-regression.js';
import { MatrixEngine } from '../../electron/core/math/matrix-engine.js';
import { SeededRandom } from '../../electron/common/seeded-random.js';

const rows = 120;
const dim = 4;

function gaussian(random: SeededRandom): number {
  return Math.sqrt(-2 * Math.log(1 - random.next())) * Math.cos(2 * Math.PI * random.next());
}

function problem(seed: number) {
  const random = new SeededRandom(seed);
  const data = Float32Array.from({ length: rows * dim }, (_, index) => gaussian(random) * (1 + (index % dim)) + (index % dim));
  // Two labels: a noisy linear rule and a rare one (about 15% positive).
  const targets = new Uint8Array(rows * 2);
  for (let row = 0; row < rows; row++) {
    const x = data.subarray(row * dim, row * dim + dim);
    targets[row * 2] = x[0]! - 0.5 * x[1]! + gaussian(random) > 0 ? 1 : 0;
    targets[row * 2 + 1] = x[2]! + 0.5 * gaussian(random) > 3.2 ? 1 : 0;
  }
  return { data, targets, known: new Uint8Array(rows * 2).fill(1) };
}

const allRows = Int32Array.from({ length: rows }, (_, row) => row);
const options = { l2: 0.05, classWeights: false, maxIterations: 500, tolerance: 1e-7 };

/** The objective written out directly in float64 on standardised features, independent of the solver. */
function objective(
  data: Float32Array,
  targets: Uint8Array,
  label: number,
  model: ProbeModelSpec,
  beta: number[],
  bias: number,
  l2: number,
  weights = [1, 1],
): number {
  let loss = 0;
  let total = 0;
  for (const row of model.trainingRows) {
    let z = bias;
    for (let feature = 0; feature < dim; feature++) z += ((data[row * dim + feature]! - model.mean[feature]!) / model.std[feature]!) * beta[feature]!;
    const y = targets[row * 2 + label]!;
    const weight = y ? weights[1]! : weights[0]!;
    loss += weight * (Math.log1p(Math.exp(-Math.abs(z))) + Math.max(z, 0) - y * z);
    total += weight;
  }
  return loss / total + 0.5 * l2 * beta.reduce((sum, value) => sum + value * value, 0);
}

/** Recovers β (standardised) and the bias from the raw-feature weights the solver returns. */
function standardisedParameters(model: ProbeModelSpec, weights: Float64Array, offsets: Float64Array, label: number) {
  const beta = Array.from({ length: dim }, (_, feature) => weights[feature * 2 + label]! * model.std[feature]!);
  const bias = offsets[label]! + beta.reduce((sum, value, feature) => sum + (model.mean[feature]! * value) / model.std[feature]!, 0);
  return { beta, bias };
}

describe('batched L-BFGS logistic regression', () => {
  it('reaches the minimum of the written-out objective (no direction lowers it)', async () => {
    const { data, targets, known } = problem(1);
    const engine = await MatrixEngine.create(data, rows, dim, 1);
    const model: ProbeModelSpec = { trainingRows: allRows, ...featureStatistics(data, dim, allRows) };
    const fit = await fitLogisticModels(engine, targets, known, 2, [model], options);
    expect(fit.outcomes).toEqual(['converged', 'converged']);
    const random = new SeededRandom(3);
    for (const label of [0, 1]) {
      const { beta, bias } = standardisedParameters(model, fit.weights[0]!, fit.offsets[0]!, label);
      const best = objective(data, targets, label, model, beta, bias, options.l2);
      for (let trial = 0; trial < 20; trial++) {
        const step = Array.from({ length: dim + 1 }, () => 1e-2 * gaussian(random));
        const moved = objective(
          data,
          targets,
          label,
          model,
          beta.map((value, feature) => value + step[feature]!),
          bias + step[dim]!,
          options.l2,
        );
        expect(moved).toBeGreaterThan(best - 1e-9);
      }
    }
    await engine.release();
  });

  it('gives the same probabilities when a feature is rescaled and shifted (features are standardised)', async () => {
    const { data, targets, known } = problem(2);
    const scaled = Float32Array.from(data, (value, index) => (index % dim === 1 ? value * 1000 + 50 : value));
    const fits = [];
    for (const matrix of [data, scaled]) {
      const engine = await MatrixEngine.create(matrix, rows, dim, 1);
      const model: ProbeModelSpec = { trainingRows: allRows, ...featureStatistics(matrix, dim, allRows) };
      const fit = await fitLogisticModels(engine, targets, known, 2, [model], options);
      fits.push(await predictAll(engine, fit.weights[0]!, fit.offsets[0]!));
      await engine.release();
    }
    for (let index = 0; index < fits[0]!.length; index++) expect(fits[1]![index]).toBeCloseTo(fits[0]![index]!, 3);
  });

  it('fits models together exactly as it fits them one by one, each on its own rows only', async () => {
    const { data, targets, known } = problem(4);
    const engine = await MatrixEngine.create(data, rows, dim, 1);
    const firstHalf = allRows.filter((row) => row < rows / 2);
    const models: ProbeModelSpec[] = [
      { trainingRows: firstHalf, ...featureStatistics(data, dim, firstHalf) },
      { trainingRows: allRows, ...featureStatistics(data, dim, allRows) },
    ];
    const together = await fitLogisticModels(engine, targets, known, 2, models, options);
    const alone = await fitLogisticModels(engine, targets, known, 2, [models[0]!], options);
    for (let index = 0; index < alone.weights[0]!.length; index++) expect(together.weights[0]![index]).toBeCloseTo(alone.weights[0]![index]!, 4);
    // Changing a target outside the first model's rows does not move it.
    const changed = Uint8Array.from(targets);
    changed[(rows - 1) * 2] = 1 - changed[(rows - 1) * 2]!;
    const unaffected = await fitLogisticModels(engine, changed, known, 2, [models[0]!], options);
    expect(Array.from(unaffected.weights[0]!)).toEqual(Array.from(alone.weights[0]!));
    await engine.release();
  });

  it('balances classes with class weights: weighted residuals of positives and negatives cancel', async () => {
    const { data, targets, known } = problem(5);
    const engine = await MatrixEngine.create(data, rows, dim, 1);
    const model: ProbeModelSpec = { trainingRows: allRows, ...featureStatistics(data, dim, allRows) };
    const plain = await fitLogisticModels(engine, targets, known, 2, [model], options);
    const balanced = await fitLogisticModels(engine, targets, known, 2, [model], { ...options, classWeights: true });
    const positives = allRows.filter((row) => targets[row * 2 + 1] === 1).length;
    expect(positives).toBeGreaterThan(3);
    expect(positives).toBeLessThan(rows / 3);
    const meanPositive = async (fit: typeof plain) => {
      const probabilities = await predictAll(engine, fit.weights[0]!, fit.offsets[0]!);
      return allRows.filter((row) => targets[row * 2 + 1] === 1).reduce((sum, row) => sum + probabilities[row * 2 + 1]!, 0) / positives;
    };
    expect(await meanPositive(balanced)).toBeGreaterThan(await meanPositive(plain));
    const { beta, bias } = standardisedParameters(model, balanced.weights[0]!, balanced.offsets[0]!, 1);
    const weights = [rows / (2 * (rows - positives)), rows / (2 * positives)];
    const best = objective(data, targets, 1, model, beta, bias, options.l2, weights);
    expect(objective(data, targets, 1, model, beta, bias + 0.01, options.l2, weights)).toBeGreaterThan(best);
    expect(objective(data, targets, 1, model, beta, bias - 0.01, options.l2, weights)).toBeGreaterThan(best);
    await engine.release();
  });

  it('stops with an AbortError when cancelled between passes', async () => {
    const { data, targets, known } = problem(6);
    const engine = await MatrixEngine.create(data, rows, dim, 1);
    let passes = 0;
    const model: ProbeModelSpec = { trainingRows: allRows, ...featureStatistics(data, dim, allRows) };
    const error = await fitLogisticModels(engine, targets, known, 2, [model], { ...options, onPass: () => passes++, isCancelled: () => passes >= 2 }).catch(
      (caught: unknown) => caught,
    );
    expect((error as Error).name).toBe('AbortError');
    expect(passes).toBe(2);
    await engine.release();
  });
});
