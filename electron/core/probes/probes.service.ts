import type { z } from 'zod';
import type { probeRunSummarySchema } from '../../common/contract.js';
import { DermError } from '../../common/errors.js';
import type { EmbeddingsRepository } from '../embeddings/embeddings.repository.js';
import { isCancellation, ProgressReporter, type JobControl } from '../jobs/job.js';
import { appVersion } from '../library/installation.js';
import type { ProbeProblem, ProbeSettings } from './probe-evaluation.js';
import { defaultSpectrumOptions } from '../math/spectral-preconditioner.js';
import type { SubgroupAttribute } from './probe-metrics.types.js';
import {
  checkExportTarget,
  predictionExportFormat,
  predictionManifest,
  predictionsCsv,
  writePredictionExport,
  type PredictionExportFormat,
  type PredictionExportManifest,
} from './out-of-fold-export.js';
import { runProbeInWorker } from './probe-worker-client.js';
import {
  compareText,
  type ExportedOutOfFoldImage,
  type ProbeLabelKind,
  type ProbeManifest,
  type ProbeOutOfFoldImage,
  type ProbePredictionRow,
  type ProbeRunRecord,
  type ProbesRepository,
} from './probes.repository.js';
import {
  normaliseFitzpatrick,
  normaliseMonkTone,
  resolveMultiLabel,
  resolveQualityTargets,
  resolveSingleValue,
  type ResolvedTargets,
} from './target-resolution.js';

export interface TrainProbeOptions extends JobControl {
  /** Embedding model; default: the only model with embeddings in the library. */
  modelId?: string;
  /** 'condition' (default): the condition labels; 'quality': "is this image gradable?" and the manual quality flags. */
  labelKind?: ProbeLabelKind;
  /** Labels to learn; default: the `top` most common with enough positive cases. */
  labels?: string[];
  /** How many labels to pick when `labels` is not given (default 10). */
  top?: number;
  folds?: number;
  seed?: number;
  /** L2 penalty λ on standardised weights, with the loss averaged over training images (default 1e-2). */
  l2?: number;
  /** Weigh positives and negatives equally per label (default false). */
  classWeights?: boolean;
  /** Condition labels below this confidence (1–5) are treated as unknown, not positive. */
  minConfidence?: number;
  maxIterations?: number;
  /** Relative stopping rule of the solver: largest gradient component ≤ tolerance × its value at the start. */
  tolerance?: number;
  bootstrapReplicates?: number;
  /** Case fractions of the data-efficiency curve (1 is always included as the CV itself); [] for none. */
  curveFractions?: number[];
  curveSeeds?: number;
  minGroupCases?: number;
  /** A label's AUC, overall and per subgroup, needs at least this many positive and this many negative cases (default 5). */
  minClassCases?: number;
  /** Grouped k-fold repeated with this many fold seeds (default 1). */
  repeats?: number;
  /** onnxruntime threads (default: all cores). */
  threads?: number;
}

export const probeDefaults = {
  labelKind: 'condition' as ProbeLabelKind,
  top: 10,
  folds: 5,
  seed: 0,
  l2: 1e-2,
  classWeights: false,
  maxIterations: 500,
  tolerance: 3e-5,
  bootstrapReplicates: 1000,
  curveFractions: [0.1, 0.25, 0.5],
  // Two subsamples per fraction: the fewest that show a spread, as each seed costs several times the CV (docs/benchmarks.md).
  curveSeeds: 2,
  minGroupCases: 10,
  minClassCases: 5,
  repeats: 1,
};

export type ProbeRunSummary = z.infer<typeof probeRunSummarySchema>;

export interface ProbeReport extends ProbeRunRecord {
  predictionCount: number;
}

export interface ProbePredictionResult {
  runId: number;
  modelId: string;
  labels: string[];
  images: Array<{ imageId: number; probabilities: Record<string, number> }>;
  /** Requested images that have no embedding for the run's model. */
  withoutEmbedding: number[];
}

export interface ImageSuggestion {
  runId: number;
  modelId: string;
  labelKind: ProbeLabelKind;
  probabilities: Record<string, number>;
}

const labelResolution =
  'consensus rows if the image has any; otherwise a value is positive when any annotator (manual or imported) gave it at or above the confidence floor (rows without a confidence pass); a value given only below the floor is unknown for that image and left out of that label; single-valued kinds (gradable, Fitzpatrick, Monk tone) take the consensus, else the most frequent value, ties unresolved';

/**
 * Linear probes on a model's embeddings: case-grouped cross-validated evaluation with bootstrap
 * intervals and skin-tone subgroups, a data-efficiency curve, and a final model whose predictions are
 * stored as suggestions (probe_predictions), never as labels.
 */
export class ProbesService {
  constructor(
    private readonly probes: ProbesRepository,
    private readonly embeddings: EmbeddingsRepository,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async train(options: TrainProbeOptions): Promise<ProbeReport> {
    const settings = this.settingsFrom(options);
    const labelKind = options.labelKind ?? probeDefaults.labelKind;
    if (labelKind !== 'condition' && labelKind !== 'quality') {
      throw new DermError('invalid-input', `labelKind must be "condition" or "quality"; got "${String(labelKind)}".`, { field: 'labelKind' });
    }
    const modelId = this.chooseModel(options.modelId);
    const model = this.embeddings.model(modelId)!;
    const stale = this.probes.staleEmbeddings(modelId, model.sha256);
    if (stale > 0) {
      throw new DermError(
        'conflict',
        `${stale} embedding${stale === 1 ? '' : 's'} of model "${modelId}" came from a different model file than its current sha256 ${model.sha256.slice(0, 12)}…; re-embed (dermws embed --model ${modelId}) before training so one probe never mixes two models.`,
        { field: 'modelId', value: modelId },
      );
    }
    if (options.minConfidence !== undefined && !(Number.isInteger(options.minConfidence) && options.minConfidence >= 1 && options.minConfidence <= 5)) {
      throw new DermError('invalid-input', `minConfidence must be a whole number from 1 to 5; got ${options.minConfidence}.`, { field: 'minConfidence' });
    }

    const resolved =
      labelKind === 'condition'
        ? resolveMultiLabel(this.probes.currentLabels('condition'), options.minConfidence)
        : resolveQualityTargets(this.probes.currentLabels('gradable'), this.probes.currentLabels('quality_flag'), this.probes.manualImageFlags());
    const matrix = this.embeddings.matrix(modelId);
    const rowOfImage = new Map(matrix.imageIds.map((imageId, row) => [imageId, row]));
    const populationImages = resolved.images.filter((imageId) => rowOfImage.has(imageId));
    const labelledWithoutEmbedding = resolved.images.length - populationImages.length;
    if (populationImages.length === 0) {
      throw new DermError(
        'invalid-input',
        `No ${labelKind === 'condition' ? 'condition-labelled' : 'quality-judged'} image has an embedding for model "${modelId}" (${resolved.images.length} labelled, ${matrix.imageIds.length} embedded).`,
        { field: 'labelKind' },
      );
    }

    // Folds, bootstrap draws and curve subsamples are seeded over row positions, so rows are put in an
    // order that does not depend on image ids (which follow import completion order): population first,
    // sorted by grouping key then file sha256, then the other embedded images by file sha256.
    const imageKeys = this.probes.imageKeys();
    const groupKeyOf = (imageId: number) => {
      const keys = imageKeys.get(imageId)!;
      return keys.caseKey === null ? `image:${keys.fileSha256}` : `case:${keys.caseKey}`;
    };
    const labels = this.chooseLabels(resolved, populationImages, groupKeyOf, options, settings.folds, labelKind);
    const shaOf = (imageId: number) => imageKeys.get(imageId)!.fileSha256;
    const populationSet = new Set(populationImages);
    const orderedPopulation = [...populationImages].sort((a, b) => compareText(groupKeyOf(a), groupKeyOf(b)) || compareText(shaOf(a), shaOf(b)));
    const orderedRest = matrix.imageIds.filter((imageId) => !populationSet.has(imageId)).sort((a, b) => compareText(shaOf(a), shaOf(b)));
    const imageOfRow = [...orderedPopulation, ...orderedRest];
    permuteRows(
      matrix.data,
      matrix.dim,
      Int32Array.from(imageOfRow, (imageId) => rowOfImage.get(imageId)!),
    );

    const rowCount = imageOfRow.length;
    const labelCount = labels.length;
    const targets = new Uint8Array(rowCount * labelCount);
    const known = new Uint8Array(rowCount * labelCount);
    const caseOfRow = new Int32Array(rowCount).fill(-1);
    const caseIndex = new Map<string, number>();
    const positives: Record<string, number> = Object.fromEntries(labels.map((label) => [label, 0]));
    const unknownCounts: Record<string, number> = Object.fromEntries(labels.map((label) => [label, 0]));
    orderedPopulation.forEach((imageId, row) => {
      const key = groupKeyOf(imageId);
      if (!caseIndex.has(key)) caseIndex.set(key, caseIndex.size);
      caseOfRow[row] = caseIndex.get(key)!;
      labels.forEach((label, index) => {
        if (resolved.unknown.get(imageId)?.has(label)) {
          unknownCounts[label]!++;
          return;
        }
        known[row * labelCount + index] = 1;
        if (resolved.positives.get(imageId)?.has(label)) {
          targets[row * labelCount + index] = 1;
          positives[label]!++;
        }
      });
    });

    const subgroups = this.subgroupsFor(imageOfRow);
    const manifest: ProbeManifest = {
      modelId: model.id,
      modelSha256: model.sha256,
      embeddingDim: model.dim,
      labelKind,
      labels,
      filters: {
        minConfidence: options.minConfidence ?? null,
        labelResolution,
        population:
          labelKind === 'condition'
            ? 'images (not deleted) with at least one current condition label and an embedding for the model; images without any of the chosen labels are negatives for all of them'
            : 'images (not deleted) with a current gradable or quality_flag label or a manual image flag, and an embedding for the model; "ungradable" is positive when gradable resolves to "no"',
      },
      seed: settings.seed,
      folds: settings.folds,
      hyperparameters: {
        l2: settings.l2,
        classWeights: settings.classWeights,
        solver: `L-BFGS (memory 7, backtracking Armijo) per label, on standardised features (training-fold mean and σ)${
          (settings.preconditionerRank ?? defaultSpectrumOptions.rank) > 0
            ? `, each direction started from (c·C + λI)⁻¹ with the ${settings.preconditionerRank ?? defaultSpectrumOptions.rank} leading eigenpairs of the population's standardised feature covariance (changes the path, not the optimum)`
            : ''
        }`,
        maxIterations: settings.maxIterations,
        tolerance: settings.tolerance,
        bootstrapReplicates: settings.bootstrapReplicates,
        curveFractions: [...settings.curveFractions, 1],
        curveSeeds: settings.curveSeeds,
        minGroupCases: settings.minGroupCases,
        minClassCases: settings.minClassCases,
        repeats: settings.repeats,
      },
      appVersion: appVersion(),
      population: { images: populationImages.length, cases: caseIndex.size, labelledWithoutEmbedding, positives, unknown: unknownCounts },
      predictedImages: rowCount,
    };
    const runId = this.probes.insertRun({ createdAt: this.clock().toISOString(), manifest });

    // A view into a larger buffer would be cloned whole by postMessage; a tight copy is transferred instead.
    const data = matrix.data.byteOffset === 0 && matrix.data.byteLength === matrix.data.buffer.byteLength ? matrix.data : matrix.data.slice();
    const problem: ProbeProblem = {
      data,
      rowCount,
      dim: matrix.dim,
      labels,
      targets,
      known,
      populationRows: Int32Array.from(orderedPopulation, (_, row) => row),
      caseOfRow,
      subgroups,
      settings,
    };
    const stageCount = 1 + (settings.repeats > 1 ? 1 : 0) + settings.curveFractions.length * settings.curveSeeds;
    // Progress counts solver passes. How many a stage needs is only known when it ends, so the total is
    // estimated: the longest finished stage so far, or before any has finished the passes a typical
    // stage took on the bench data (4 rounds of the solver's feature spectrum and 11 preconditioned passes
    // at 10k × 6144 × 10 labels); never the iteration limit, which would promise minutes for a job of seconds.
    const typicalStagePasses = 20;
    const finishedStagePasses: number[] = [];
    let stagePasses = 0;
    let currentStage = 0;
    // The clock starts at the first pass: starting the worker and its onnxruntime sessions would otherwise
    // count as solver time and make the first rate, and the time left, look many times worse than it is.
    let reporter: ProgressReporter | undefined;
    try {
      const outcome = await runProbeInWorker(problem, {
        ...(options.signal ? { signal: options.signal } : {}),
        onProgress: (progress) => {
          while (currentStage < progress.stageIndex) {
            finishedStagePasses.push(stagePasses);
            stagePasses = 0;
            currentStage++;
          }
          stagePasses = progress.pass;
          const finished = finishedStagePasses.reduce((sum, passes) => sum + passes, 0);
          const typical = finishedStagePasses.length > 0 ? Math.max(...finishedStagePasses) : typicalStagePasses;
          const current = Math.max(typical, stagePasses + (progress.activeColumns > 0 ? 1 : 0));
          reporter ??= new ProgressReporter('probe-train', stageCount * typicalStagePasses, options.onProgress);
          reporter.setTotal(finished + current + (stageCount - progress.stageIndex - 1) * typical);
          reporter.report(
            finished + stagePasses,
            progress.columns > 0 ? `${progress.stage}: ${progress.activeColumns} of ${progress.columns} fits running` : progress.stage,
          );
        },
      });
      const predictions: ProbePredictionRow[] = [];
      imageOfRow.forEach((imageId, row) => {
        labels.forEach((label, index) => predictions.push({ imageId, label, probability: outcome.predictions[row * labelCount + index]! }));
      });
      const outOfFold: ProbeOutOfFoldImage[] = orderedPopulation.map((imageId, row) => ({
        imageId,
        groupKey: groupKeyOf(imageId),
        fold: outcome.foldOfRow[row]!,
        truths: labels.map((_, index) => (known[row * labelCount + index] ? (targets[row * labelCount + index] as 0 | 1) : null)),
        probabilities: labels.map((_, index) => outcome.outOfFold[row * labelCount + index]!),
      }));
      this.probes.completeRun(runId, {
        metrics: outcome.metrics,
        model: { weights: outcome.finalWeights, offsets: outcome.finalOffsets },
        predictions,
        outOfFold,
        labels,
        finishedAt: this.clock().toISOString(),
      });
      const passes = finishedStagePasses.reduce((sum, value) => sum + value, 0) + stagePasses;
      reporter ??= new ProgressReporter('probe-train', passes, options.onProgress);
      reporter.setTotal(passes);
      reporter.report(passes, 'done', true);
    } catch (error) {
      if (isCancellation(error)) {
        this.probes.endRun(runId, 'cancelled', this.clock().toISOString(), null);
        throw new DermError('cancelled', `Probe run ${runId} was cancelled; nothing but the cancelled run record was stored.`, { runId });
      }
      this.probes.endRun(runId, 'failed', this.clock().toISOString(), error instanceof Error ? error.message : String(error));
      throw error;
    }
    return this.report(runId);
  }

  report(runId: number): ProbeReport {
    const run = this.probes.run(runId);
    if (!run) throw new DermError('not-found', `There is no probe run ${runId} in this library.`, { field: 'runId', value: runId });
    return { ...run, predictionCount: this.probes.predictionCount(runId) };
  }

  /**
   * The labels a probe could learn, most positive cases first, with positive and negative case counts
   * among the embedded population, for choosing labels in the app's form.
   */
  labelChoices(
    labelKind: ProbeLabelKind = probeDefaults.labelKind,
    modelId?: string,
  ): { modelId: string; labels: Array<{ label: string; positiveCases: number; negativeCases: number }> } {
    const chosenModel = this.chooseModel(modelId);
    const resolved =
      labelKind === 'condition'
        ? resolveMultiLabel(this.probes.currentLabels('condition'))
        : resolveQualityTargets(this.probes.currentLabels('gradable'), this.probes.currentLabels('quality_flag'), this.probes.manualImageFlags());
    const embedded = new Set(this.embeddings.matrixImageIds(chosenModel));
    const population = resolved.images.filter((imageId) => embedded.has(imageId));
    const imageKeys = this.probes.imageKeys();
    const groupKeyOf = (imageId: number) => {
      const keys = imageKeys.get(imageId)!;
      return keys.caseKey === null ? `image:${keys.fileSha256}` : `case:${keys.caseKey}`;
    };
    const values = new Set<string>();
    for (const imageId of population) for (const value of resolved.positives.get(imageId) ?? []) values.add(value);
    const labels = [...values].map((label) => {
      const positive = new Set<string>();
      const negative = new Set<string>();
      for (const imageId of population) {
        if (resolved.unknown.get(imageId)?.has(label)) continue;
        (resolved.positives.get(imageId)?.has(label) ? positive : negative).add(groupKeyOf(imageId));
      }
      return { label, positiveCases: positive.size, negativeCases: negative.size };
    });
    labels.sort((a, b) => b.positiveCases - a.positiveCases || compareText(a.label, b.label));
    return { modelId: chosenModel, labels };
  }

  /** The stored out-of-fold rows of a completed run, with a clear error when there are none. */
  outOfFold(runId: number): { run: ProbeReport; images: ExportedOutOfFoldImage[] } {
    const run = this.report(runId);
    if (run.status !== 'completed') {
      throw new DermError('invalid-input', `Probe run ${runId} is ${run.status}; only a completed run has out-of-fold predictions.`, {
        field: 'runId',
        value: runId,
      });
    }
    const images = this.probes.outOfFold(runId, run.labels);
    if (images.length === 0) {
      throw new DermError(
        'not-found',
        `Probe run ${runId} was stored before out-of-fold predictions were kept; train it again with the same options to get them.`,
        {
          field: 'runId',
          value: runId,
        },
      );
    }
    return { run, images };
  }

  /**
   * Writes a run's out-of-fold predictions to `fileName` (.csv or .npz) inside `folder`, with
   * `<file>.manifest.json` beside it. Refuses a name that leads outside the folder or already exists;
   * nothing is written then.
   */
  exportPredictions(
    runId: number,
    target: { folder: string; fileName: string },
  ): { file: string; manifestFile: string; format: PredictionExportFormat; images: number; labels: string[] } {
    const format = predictionExportFormat(target.fileName);
    const paths = checkExportTarget(target.folder, target.fileName);
    const { run, images } = this.outOfFold(runId);
    const manifest = predictionManifest(run, images, format, paths.file, this.clock().toISOString());
    writePredictionExport(paths, format, run.labels, images, manifest);
    return { ...paths, format, images: images.length, labels: run.labels };
  }

  /** The CSV and manifest of a run's out-of-fold predictions as text, for a download from the app. */
  predictionsDownload(runId: number): { fileName: string; csv: string; manifest: PredictionExportManifest } {
    const { run, images } = this.outOfFold(runId);
    const fileName = `probe-run-${runId}-out-of-fold.csv`;
    return { fileName, csv: predictionsCsv(run.labels, images), manifest: predictionManifest(run, images, 'csv', fileName, this.clock().toISOString()) };
  }

  /**
   * The images the run's out-of-fold predictions get most wrong for one label: positives with the
   * lowest probability and negatives with the highest, by |truth − probability|, worst first.
   */
  worstPredictions(
    runId: number,
    label: string,
    limit = 24,
  ): Array<{ imageId: number; groupKey: string; fold: number; truth: 0 | 1; probability: number; error: number }> {
    const { run, images } = this.outOfFold(runId);
    const index = run.labels.indexOf(label);
    if (index < 0)
      throw new DermError('invalid-input', `Probe run ${runId} has no label "${label}"; its labels are ${run.labels.join(', ')}.`, {
        field: 'label',
        value: label,
      });
    return images
      .flatMap((image) => {
        const truth = image.truths[index];
        if (truth === null || truth === undefined) return [];
        const probability = image.probabilities[index]!;
        return [{ imageId: image.imageId, groupKey: image.groupKey, fold: image.fold, truth, probability, error: Math.abs(truth - probability) }];
      })
      .sort((a, b) => b.error - a.error || compareText(a.groupKey, b.groupKey) || a.imageId - b.imageId)
      .slice(0, limit);
  }

  list(): ProbeRunSummary[] {
    return this.probes.runs().map((run) => ({
      id: run.id,
      createdAt: run.createdAt,
      finishedAt: run.finishedAt,
      status: run.status,
      modelId: run.modelId,
      labelKind: run.labelKind,
      labels: run.labels,
      seed: run.seed,
      folds: run.folds,
      images: run.manifest.population.images,
      cases: run.manifest.population.cases,
      macroAuc: run.metrics?.overall.macroAuc ?? null,
    }));
  }

  /**
   * Applies a completed run's final model to images (default: every embedded image of its model),
   * stores the probabilities as suggestions and returns them.
   */
  predict(runId: number, imageIds?: number[]): ProbePredictionResult {
    const run = this.report(runId);
    const model = this.probes.model(runId);
    if (run.status !== 'completed' || !model) {
      throw new DermError('invalid-input', `Probe run ${runId} is ${run.status}; only a completed run can predict.`, { field: 'runId', value: runId });
    }
    const embeddingModel = this.embeddings.model(run.modelId);
    if (!embeddingModel)
      throw new DermError('not-found', `Probe run ${runId} was trained on model "${run.modelId}", which has no embeddings in this library any more.`, {
        runId,
      });
    if (embeddingModel.sha256 !== run.modelSha256) {
      throw new DermError(
        'conflict',
        `Probe run ${runId} was trained on model "${run.modelId}" with sha256 ${run.modelSha256}, but the library's embeddings now come from sha256 ${embeddingModel.sha256}. Train a new probe.`,
        { runId },
      );
    }
    const matrix = this.embeddings.matrix(run.modelId, imageIds);
    const labels = run.labels;
    const labelCount = labels.length;
    if (model.weights.length !== matrix.dim * labelCount) {
      throw new DermError(
        'embeddings-invalid',
        `Probe run ${runId} has ${model.weights.length} weights; expected ${matrix.dim} × ${labelCount} for model "${run.modelId}".`,
        { runId },
      );
    }
    const rows: ProbePredictionRow[] = [];
    const images: ProbePredictionResult['images'] = [];
    const logits = new Float64Array(labelCount);
    matrix.imageIds.forEach((imageId, row) => {
      logits.set(model.offsets);
      const start = row * matrix.dim;
      for (let feature = 0; feature < matrix.dim; feature++) {
        const value = matrix.data[start + feature]!;
        const weightStart = feature * labelCount;
        for (let label = 0; label < labelCount; label++) logits[label]! += value * model.weights[weightStart + label]!;
      }
      const probabilities: Record<string, number> = {};
      labels.forEach((label, index) => {
        const z = logits[index]!;
        // Rounded through Float32 like the stored training predictions, so both paths give the same values.
        const probability = Math.fround(z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));
        probabilities[label] = probability;
        rows.push({ imageId, label, probability });
      });
      images.push({ imageId, probabilities });
    });
    this.probes.putPredictions(runId, rows);
    const embedded = new Set(matrix.imageIds);
    return { runId, modelId: run.modelId, labels, images, withoutEmbedding: (imageIds ?? []).filter((imageId) => !embedded.has(imageId)) };
  }

  /** The latest completed run's stored predictions for one image, per label kind: shown beside the annotator's choices. */
  suggestionsFor(imageId: number, modelId?: string): ImageSuggestion[] {
    const latest = new Map<ProbeLabelKind, ProbeRunRecord>();
    for (const run of this.probes.runs()) {
      if (run.status !== 'completed' || (modelId !== undefined && run.modelId !== modelId)) continue;
      latest.set(run.labelKind, run);
    }
    return [...latest.values()].flatMap((run) => {
      const rows = this.probes.predictions(run.id, [imageId]);
      if (rows.length === 0) return [];
      return [
        { runId: run.id, modelId: run.modelId, labelKind: run.labelKind, probabilities: Object.fromEntries(rows.map((row) => [row.label, row.probability])) },
      ];
    });
  }

  private chooseModel(requested: string | undefined): string {
    const withEmbeddings = this.embeddings
      .models()
      .filter((entry) => entry.count > 0)
      .map((entry) => entry.id);
    if (requested === undefined) {
      if (withEmbeddings.length === 1) return withEmbeddings[0]!;
      throw new DermError(
        'invalid-input',
        withEmbeddings.length === 0
          ? 'The library has no embeddings yet; embed the images (dermws embed) or import embeddings first.'
          : `Several models have embeddings in this library (${withEmbeddings.join(', ')}); choose one with --model.`,
        { field: 'modelId' },
      );
    }
    if (!this.embeddings.model(requested) || !withEmbeddings.includes(requested)) {
      throw new DermError(
        'not-found',
        `The library has no embeddings for model "${requested}". Models with embeddings: ${withEmbeddings.join(', ') || 'none'}.`,
        {
          field: 'modelId',
          value: requested,
        },
      );
    }
    return requested;
  }

  private settingsFrom(options: TrainProbeOptions): ProbeSettings {
    const integer = (name: string, value: number | undefined, fallback: number, min: number, max: number) => {
      const chosen = value ?? fallback;
      if (!Number.isInteger(chosen) || chosen < min || chosen > max) {
        throw new DermError('invalid-input', `${name} must be a whole number from ${min} to ${max}; got ${chosen}.`, { field: name });
      }
      return chosen;
    };
    const l2 = options.l2 ?? probeDefaults.l2;
    if (!(Number.isFinite(l2) && l2 > 0)) throw new DermError('invalid-input', `l2 must be a positive number; got ${l2}.`, { field: 'l2' });
    const tolerance = options.tolerance ?? probeDefaults.tolerance;
    if (typeof tolerance !== 'number' || !(Number.isFinite(tolerance) && tolerance > 0 && tolerance < 1)) {
      throw new DermError(
        'invalid-input',
        `tolerance must be a number between 0 and 1 (exclusive), relative to the gradient at the start; got ${String(tolerance)}.`,
        {
          field: 'tolerance',
        },
      );
    }
    const curveFractions = options.curveFractions ?? probeDefaults.curveFractions;
    for (const fraction of curveFractions) {
      if (!(fraction > 0 && fraction <= 1))
        throw new DermError('invalid-input', `Curve fractions must be in (0, 1]; got ${fraction}.`, { field: 'curveFractions' });
    }
    const settings: ProbeSettings = {
      folds: integer('folds', options.folds, probeDefaults.folds, 2, 50),
      seed: integer('seed', options.seed, probeDefaults.seed, 0, 2 ** 31 - 1),
      l2,
      classWeights: options.classWeights ?? probeDefaults.classWeights,
      maxIterations: integer('maxIterations', options.maxIterations, probeDefaults.maxIterations, 1, 100_000),
      tolerance,
      bootstrapReplicates: integer('bootstrapReplicates', options.bootstrapReplicates, probeDefaults.bootstrapReplicates, 1, 100_000),
      curveFractions: [...new Set(curveFractions.filter((fraction) => fraction < 1))].sort((a, b) => a - b),
      curveSeeds: integer('curveSeeds', options.curveSeeds, probeDefaults.curveSeeds, 1, 100),
      minGroupCases: integer('minGroupCases', options.minGroupCases, probeDefaults.minGroupCases, 1, 1_000_000),
      minClassCases: integer('minClassCases', options.minClassCases, probeDefaults.minClassCases, 1, 1_000_000),
      repeats: integer('repeats', options.repeats, probeDefaults.repeats, 1, 50),
    };
    if (options.threads !== undefined) settings.threads = integer('threads', options.threads, 1, 1, 256);
    return settings;
  }

  /** Explicit labels must each have two positive and two negative cases; the default picks the most common with 2 × folds (at least 10) positive cases. */
  private chooseLabels(
    resolved: ResolvedTargets,
    population: number[],
    caseKeyOf: (imageId: number) => string,
    options: TrainProbeOptions,
    folds: number,
    labelKind: ProbeLabelKind,
  ): string[] {
    const positiveCases = new Map<string, Set<string>>();
    const labelledCases = new Map<string, Set<string>>();
    for (const imageId of population) {
      const key = caseKeyOf(imageId);
      for (const value of resolved.positives.get(imageId) ?? []) {
        let set = positiveCases.get(value);
        if (!set) positiveCases.set(value, (set = new Set()));
        set.add(key);
      }
    }
    const allCases = new Set(population.map(caseKeyOf));
    const negativeCaseCount = (label: string) => {
      let set = labelledCases.get(label);
      if (!set) {
        set = new Set();
        for (const imageId of population) {
          if (!resolved.positives.get(imageId)?.has(label) && !resolved.unknown.get(imageId)?.has(label)) set.add(caseKeyOf(imageId));
        }
        labelledCases.set(label, set);
      }
      return set.size;
    };
    const ranked = [...positiveCases.entries()]
      .map(([label, cases]) => ({ label, cases: cases.size }))
      .sort((a, b) => b.cases - a.cases || a.label.localeCompare(b.label));
    if (options.labels && options.labels.length > 0) {
      const labels = [...new Set(options.labels.map((label) => label.trim()).filter((label) => label.length > 0))];
      for (const label of labels) {
        const cases = positiveCases.get(label)?.size ?? 0;
        if (cases < 2 || negativeCaseCount(label) < 2) {
          const common = ranked
            .slice(0, 10)
            .map((entry) => `${entry.label} (${entry.cases})`)
            .join(', ');
          throw new DermError(
            'invalid-input',
            `Label "${label}" has ${cases} positive case${cases === 1 ? '' : 's'} and ${negativeCaseCount(label)} negative among the embedded ${labelKind} population; a probe needs at least 2 of each. Most common: ${common || 'none'}.`,
            { field: 'labels', value: label },
          );
        }
      }
      return labels;
    }
    const top = options.top ?? probeDefaults.top;
    if (!Number.isInteger(top) || top < 1) throw new DermError('invalid-input', `top must be a whole number of at least 1; got ${top}.`, { field: 'top' });
    const needed = Math.max(10, 2 * folds);
    const chosen = ranked.filter((entry) => entry.cases >= needed && negativeCaseCount(entry.label) >= needed).slice(0, top);
    if (chosen.length === 0) {
      throw new DermError(
        'invalid-input',
        `No ${labelKind} label has at least ${needed} positive and ${needed} negative cases among ${allCases.size} embedded cases; name labels explicitly. Most common: ${
          ranked
            .slice(0, 10)
            .map((entry) => `${entry.label} (${entry.cases})`)
            .join(', ') || 'none'
        }.`,
        { field: 'labels' },
      );
    }
    return chosen.map((entry) => entry.label);
  }

  private subgroupsFor(imageIds: readonly number[]): ProbeProblem['subgroups'] {
    const fitzpatrickLabels = resolveSingleValue(this.probes.currentLabels('fitzpatrick'), normaliseFitzpatrick);
    const fitzpatrickSelf = this.probes.metadataValues('fitzpatrick_self');
    const monkLabels = resolveSingleValue(this.probes.currentLabels('monk_tone'), normaliseMonkTone);
    const monkUs = this.probes.metadataValues('monk_tone_us');
    const monkIndia = this.probes.metadataValues('monk_tone_india');
    const sex = this.probes.metadataValues('sex');
    const ageGroup = this.probes.metadataValues('age_group');
    const fromMetadata = (values: Map<number, string>, normalise: (value: string) => string | null) => (imageId: number) => {
      const value = values.get(imageId);
      return value === undefined ? null : normalise(value);
    };
    const trimmed = (value: string) => (value.trim() === '' ? null : value.trim());
    const attributes: Array<{ attribute: SubgroupAttribute; source: string; of: (imageId: number) => string | null }> = [
      {
        attribute: 'fitzpatrick',
        source: 'label fitzpatrick (consensus, else most frequent), else metadata fitzpatrick_self (FST1..FST6 → I..VI)',
        of: (imageId) => fitzpatrickLabels.get(imageId) ?? fromMetadata(fitzpatrickSelf, normaliseFitzpatrick)(imageId),
      },
      {
        attribute: 'monk_tone',
        source: 'label monk_tone (consensus, else most frequent), else metadata monk_tone_us, else monk_tone_india',
        of: (imageId) => monkLabels.get(imageId) ?? fromMetadata(monkUs, normaliseMonkTone)(imageId) ?? fromMetadata(monkIndia, normaliseMonkTone)(imageId),
      },
      { attribute: 'sex', source: 'metadata sex', of: fromMetadata(sex, trimmed) },
      { attribute: 'age_group', source: 'metadata age_group', of: fromMetadata(ageGroup, trimmed) },
    ];
    return attributes
      .map(({ attribute, source, of }) => ({ attribute, source, valueOfRow: imageIds.map(of) }))
      .filter((subgroup) => subgroup.valueOfRow.some((value) => value !== null));
  }
}

/**
 * Reorders the rows of a row-major matrix in place so that row i holds what row `sourceOfRow[i]` held
 * (a permutation), following its cycles with one row of scratch memory instead of copying the matrix.
 */
export function permuteRows(data: Float32Array, dim: number, sourceOfRow: Int32Array): void {
  const done = new Uint8Array(sourceOfRow.length);
  const scratch = new Float32Array(dim);
  for (let start = 0; start < sourceOfRow.length; start++) {
    if (done[start] || sourceOfRow[start] === start) {
      done[start] = 1;
      continue;
    }
    scratch.set(data.subarray(start * dim, (start + 1) * dim));
    let target = start;
    for (;;) {
      done[target] = 1;
      const source = sourceOfRow[target]!;
      if (source === start) {
        data.set(scratch, target * dim);
        break;
      }
      data.copyWithin(target * dim, source * dim, (source + 1) * dim);
      target = source;
    }
  }
}
