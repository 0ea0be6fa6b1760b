import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDermError } from '../../electron/common/errors.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import type { JobProgress } from '../../electron/core/jobs/job.js';
import { ProbesRepository } from '../../electron/core/probes/probes.repository.js';
import { ProbesService, type TrainProbeOptions } from '../../electron/core/probes/probes.service.js';
import { SeededRandom } from '../../electron/common/seeded-random.js';
import { runDermws } from '../fixtures/cli-runner.js';
import { createTestLibrary, insertSyntheticImages } from '../fixtures/library-fixture.js';

/**
 * A library whose answers are known: 240 cases of two photos each plus 40 images without a case,
 * 24-d embeddings = the case's latent vector + photo noise. "linear" is a threshold on a fixed
 * direction of the embedding (a probe must find it: AUC near 1); "coin" is a fair coin per case
 * (nothing to find: AUC near 0.5). Fitzpatrick self-reports are spread over I–V by case, with only
 * three cases of type VI, so that group must report "too small".
 */
const dim = 24;
const caseCount = 240;
const looseImages = 40;
const imageCount = caseCount * 2 + looseImages;
const modelId = 'probe-test-model';

function gaussian(random: SeededRandom): number {
  return Math.sqrt(-2 * Math.log(1 - random.next())) * Math.cos(2 * Math.PI * random.next());
}

const caseOfIndex = (index: number) => (index < caseCount * 2 ? Math.floor(index / 2) : undefined);
const fitzpatrickOfCase = (caseNumber: number) => (caseNumber < 3 ? 'FST6' : `FST${1 + (caseNumber % 5)}`);
const sexOfIndex = (index: number) => (index % 3 === 0 ? 'FEMALE' : 'MALE');

let library: ReturnType<typeof createTestLibrary>;
let service: ProbesService;
let imageIds: number[];
const expectedLinear = new Map<number, boolean>();
const fast: Partial<TrainProbeOptions> = { bootstrapReplicates: 200, curveSeeds: 2, maxIterations: 150, threads: 1 };

beforeAll(() => {
  library = createTestLibrary('dermws-probes-');
  imageIds = insertSyntheticImages(library, imageCount, {
    caseKeyOf: (index) => {
      const caseNumber = caseOfIndex(index);
      return caseNumber === undefined ? undefined : `case-${caseNumber}`;
    },
    metadataOf: (index) => {
      const caseNumber = caseOfIndex(index) ?? 100 + index;
      return { fitzpatrick_self: fitzpatrickOfCase(caseNumber), sex: sexOfIndex(index) };
    },
  });
  const random = new SeededRandom(7);
  const direction = Array.from({ length: dim }, () => gaussian(random));
  const latents = new Map<number, number[]>();
  const coins = new Map<number, boolean>();
  const embeddings = new EmbeddingsRepository(library.db);
  embeddings.registerModel({ id: modelId, displayName: 'test', dim, sha256: 'a'.repeat(64), source: 'imported', preprocessing: null });
  const rows: Array<{ imageId: number; vector: number[] }> = [];
  const insertLabel = library.db.prepare(
    "INSERT INTO labels (image_id, kind, value, confidence, origin, created_at) VALUES (?, ?, ?, ?, 'imported', '2026-01-01')",
  );
  imageIds.forEach((imageId, index) => {
    const key = caseOfIndex(index) ?? 10_000 + index;
    if (!latents.has(key)) {
      latents.set(
        key,
        Array.from({ length: dim }, () => gaussian(random)),
      );
      coins.set(key, random.next() < 0.5);
    }
    const vector = latents.get(key)!.map((value) => value + 0.1 * gaussian(random));
    rows.push({ imageId, vector });
    const linear = vector.reduce((sum, value, feature) => sum + value * direction[feature]!, 0) > 0.5;
    expectedLinear.set(imageId, linear);
    insertLabel.run(imageId, 'condition', 'other', 3);
    if (linear) insertLabel.run(imageId, 'condition', 'linear', 4);
    if (coins.get(key)) insertLabel.run(imageId, 'condition', 'coin', 4);
    insertLabel.run(imageId, 'gradable', index % 4 === 0 ? 'no' : 'yes', null);
  });
  embeddings.put(modelId, 'a'.repeat(64), rows);
  service = new ProbesService(new ProbesRepository(library.db), embeddings);
});

afterAll(() => library.cleanup());

describe('probes on generated data', () => {
  let firstRunId = 0;

  it('finds a label that is linear in the embedding and not a coin flip, with case-bootstrap intervals', async () => {
    const labelsBefore = (library.db.prepare('SELECT COUNT(*) AS n FROM labels').get() as { n: number }).n;
    const progress: JobProgress[] = [];
    const run = await service.train({ modelId, labels: ['linear', 'coin'], seed: 11, ...fast, onProgress: (event) => progress.push(event) });
    firstRunId = run.id;
    expect(run.status).toBe('completed');
    expect(run.labels).toEqual(['linear', 'coin']);
    const [linear, coin] = run.metrics!.overall.perLabel;
    expect(linear!.auc.status).toBe('measured');
    expect(coin!.auc.status).toBe('measured');
    if (linear!.auc.status !== 'measured' || coin!.auc.status !== 'measured') return;
    expect(linear!.auc.value).toBeGreaterThan(0.95);
    expect(linear!.auc.ci95[0]).toBeGreaterThan(0.9);
    expect(Math.abs(coin!.auc.value - 0.5)).toBeLessThan(0.12);
    expect(coin!.auc.ci95[0]).toBeLessThan(0.5);
    expect(coin!.auc.ci95[1]).toBeGreaterThan(0.5);
    expect(linear!.positives).toBe([...expectedLinear.values()].filter(Boolean).length);
    expect(run.metrics!.overall.images).toBe(imageCount);
    expect(run.metrics!.overall.cases).toBe(caseCount + looseImages);
    expect(run.metrics!.folds.images.reduce((a, b) => a + b, 0)).toBe(imageCount);
    // Fold sizes stay within one case (two images) of each other.
    expect(Math.max(...run.metrics!.folds.images) - Math.min(...run.metrics!.folds.images)).toBeLessThanOrEqual(2);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)!.done).toBe(progress.at(-1)!.total);

    // Data-efficiency curve: every fraction, the requested seeds, and more training cases give a better linear probe.
    expect(run.metrics!.curve.map((point) => point.fraction)).toEqual([0.1, 0.25, 0.5, 1]);
    expect(run.metrics!.curve[0]!.seeds).toBe(2);
    const linearCurve = run.metrics!.curve.map((point) => point.perLabel[0]!.mean!);
    expect(linearCurve[3]!).toBeGreaterThan(linearCurve[0]!);

    // The manifest says how to reproduce the run.
    expect(run.manifest).toMatchObject({ modelId, modelSha256: 'a'.repeat(64), labelKind: 'condition', labels: ['linear', 'coin'], seed: 11, folds: 5 });
    expect(run.manifest.appVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(run.manifest.hyperparameters.l2).toBeGreaterThan(0);

    // Predictions for every embedded image are stored as suggestions, never as labels.
    expect(run.predictionCount).toBe(imageCount * 2);
    expect((library.db.prepare('SELECT COUNT(*) AS n FROM labels').get() as { n: number }).n).toBe(labelsBefore);
  });

  it('reproduces the same numbers when re-run with the same seed, and different folds with another seed', async () => {
    const again = await service.train({ modelId, labels: ['linear', 'coin'], seed: 11, ...fast });
    const first = service.report(firstRunId);
    expect(again.metrics).toEqual(first.metrics);
    // onnxruntime's default thread count (all cores) must be just as reproducible as one thread.
    const defaultThreads = { ...fast, threads: undefined };
    const multiThreaded = await service.train({ modelId, labels: ['linear', 'coin'], seed: 11, ...defaultThreads, curveFractions: [] });
    const multiThreadedAgain = await service.train({ modelId, labels: ['linear', 'coin'], seed: 11, ...defaultThreads, curveFractions: [] });
    expect(multiThreadedAgain.metrics).toEqual(multiThreaded.metrics);
    const other = await service.train({ modelId, labels: ['linear', 'coin'], seed: 12, ...fast, curveFractions: [] });
    expect(other.metrics!.overall.perLabel[1]!.auc).not.toEqual(first.metrics!.overall.perLabel[1]!.auc);
  });

  it('reports skin-tone and sex subgroups with hand-counted sizes, and says a tiny group is too small', () => {
    const run = service.report(firstRunId);
    const fitzpatrick = run.metrics!.subgroups.find((table) => table.attribute === 'fitzpatrick')!;
    const expected = new Map<string, { images: number; cases: Set<string> }>();
    for (let index = 0; index < imageCount; index++) {
      const caseNumber = caseOfIndex(index);
      const value = ['I', 'II', 'III', 'IV', 'V', 'VI'][Number(fitzpatrickOfCase(caseNumber ?? 100 + index).slice(3)) - 1]!;
      const entry = expected.get(value) ?? { images: 0, cases: new Set<string>() };
      entry.images++;
      entry.cases.add(caseNumber === undefined ? `image-${index}` : `case-${caseNumber}`);
      expected.set(value, entry);
    }
    expect(fitzpatrick.groups.map((group) => group.value)).toEqual(['I', 'II', 'III', 'IV', 'V', 'VI']);
    for (const group of fitzpatrick.groups) {
      expect(group.images).toBe(expected.get(group.value)!.images);
      expect(group.cases).toBe(expected.get(group.value)!.cases.size);
    }
    const tiny = fitzpatrick.groups.find((group) => group.value === 'VI')!;
    expect(tiny.status).toBe('too-small');
    if (tiny.status === 'too-small') expect(tiny.reason).toContain('3 cases');
    const measured = fitzpatrick.groups.find((group) => group.value === 'II')!;
    expect(measured.status).toBe('measured');
    if (measured.status === 'measured') {
      expect(measured.metrics.perLabel[0]!.positives).toBe(
        imageIds.filter((imageId, index) => fitzpatrickOfCase(caseOfIndex(index) ?? 100 + index) === 'FST2' && expectedLinear.get(imageId)).length,
      );
    }
    const sex = run.metrics!.subgroups.find((table) => table.attribute === 'sex')!;
    expect(sex.groups.find((group) => group.value === 'FEMALE')!.images).toBe(
      Array.from({ length: imageCount }, (_, index) => index).filter((index) => index % 3 === 0).length,
    );
    expect(run.metrics!.subgroups.some((table) => table.attribute === 'monk_tone')).toBe(false);
  });

  it('predicts with the stored final model the same probabilities it stored at training', () => {
    const stored = new ProbesRepository(library.db).predictions(firstRunId, imageIds.slice(0, 20));
    const predicted = service.predict(firstRunId, [...imageIds.slice(0, 20), 999_999]);
    expect(predicted.withoutEmbedding).toEqual([999_999]);
    expect(predicted.images).toHaveLength(20);
    for (const row of stored) expect(predicted.images.find((image) => image.imageId === row.imageId)!.probabilities[row.label]).toBeCloseTo(row.probability, 4);
    const suggestions = service.suggestionsFor(imageIds[0]!);
    expect(suggestions[0]!.labelKind).toBe('condition');
    expect(Object.keys(suggestions[0]!.probabilities).sort()).toEqual(['coin', 'linear']);
  });

  it('trains the quality probe on the gradable judgements', async () => {
    const run = await service.train({ modelId, labelKind: 'quality', seed: 3, ...fast, curveFractions: [] });
    expect(run.labels).toEqual(['ungradable']);
    expect(run.metrics!.overall.perLabel[0]!.positives).toBe(imageIds.filter((_, index) => index % 4 === 0).length);
  });

  it('stops on cancellation and records the run as cancelled', async () => {
    const controller = new AbortController();
    const promise = service.train({ modelId, labels: ['linear', 'coin'], ...fast, signal: controller.signal, onProgress: () => controller.abort() });
    const error = await promise.catch((caught: unknown) => caught);
    expect(isDermError(error, 'cancelled')).toBe(true);
    const last = service.list().at(-1)!;
    expect(last.status).toBe('cancelled');
    expect(new ProbesRepository(library.db).predictionCount(last.id)).toBe(0);
  });

  it('refuses a label without enough cases, an unknown model and mixed model files with messages that name them', async () => {
    await expect(service.train({ modelId, labels: ['psoriasis'] })).rejects.toThrow(/"psoriasis" has 0 positive cases/);
    await expect(service.train({ modelId: 'nope', labels: ['linear'] })).rejects.toThrow(/"nope".*probe-test-model/);
    const embeddings = new EmbeddingsRepository(library.db);
    const vector = embeddings.get(modelId, imageIds[5]!)!;
    embeddings.put(modelId, 'b'.repeat(64), [{ imageId: imageIds[5]!, vector }]);
    await expect(service.train({ modelId, labels: ['linear'] })).rejects.toThrow(/1 embedding of model "probe-test-model" came from a different model file/);
    embeddings.put(modelId, 'a'.repeat(64), [{ imageId: imageIds[5]!, vector }]);
  });

  it('runs through the CLI with stable JSON', async () => {
    const output = await runDermws(
      '--library',
      library.paths.root,
      '--json',
      'probe',
      'train',
      '--labels',
      'linear,coin',
      '--model',
      modelId,
      '--folds',
      '3',
      '--seed',
      '5',
      '--bootstrap',
      '100',
      '--curve',
      'none',
    );
    expect(output.code).toBe(0);
    const trained = JSON.parse(output.stdout) as {
      id: number;
      status: string;
      folds: number;
      metrics: { overall: { perLabel: Array<{ label: string }> }; curve: unknown[] };
    };
    expect(trained.status).toBe('completed');
    expect(trained.folds).toBe(3);
    expect(trained.metrics.overall.perLabel[0]!.label).toBe('linear');
    expect(trained.metrics.curve).toHaveLength(1);
    const listed = await runDermws('--library', library.paths.root, '--json', 'probe', 'list');
    expect((JSON.parse(listed.stdout) as { runs: Array<{ id: number }> }).runs.map((run) => run.id)).toContain(trained.id);
    const report = await runDermws('--library', library.paths.root, 'probe', 'report', String(trained.id));
    expect(report.stdout).toContain('linear');
    expect(report.stdout).toContain('fitzpatrick');
    const missing = await runDermws('--library', library.paths.root, '--json', 'probe', 'report', '424242');
    expect(missing.code).toBe(2);
  });
});
