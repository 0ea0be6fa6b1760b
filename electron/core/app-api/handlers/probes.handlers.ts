import type { probesCalls } from '../../../common/contract/probes.js';
import type { HandlerGroup } from '../app-api.js';

export const probesHandlers: HandlerGroup<keyof typeof probesCalls> = {
  probeLabelChoices: (input, { core }) => core.probes.labelChoices(input.labelKind, input.modelId),
  probePredictionsDownload: (input, { core }) => core.probes.predictionsDownload(input.runId),
  probeWorstPredictions: (input, { core }) => ({ images: core.probes.worstPredictions(input.runId, input.label, input.limit) }),
  probePredictions: (input, { core }) => {
    // An unknown image is a 404, not an empty list that looks like "no predictions yet".
    core.images.require(input.imageId);
    return { predictions: core.probes.suggestionsFor(input.imageId) };
  },
  probeTrainStart: (input, { core, jobs, emit }) => {
    const job = jobs.start('probe-train', async ({ signal, onProgress }) => {
      try {
        const report = await core.probes.train({
          signal,
          onProgress,
          ...(input.modelId ? { modelId: input.modelId } : {}),
          ...(input.labelKind ? { labelKind: input.labelKind } : {}),
          ...(input.labels ? { labels: input.labels } : {}),
          ...(input.top ? { top: input.top } : {}),
          ...(input.folds ? { folds: input.folds } : {}),
          ...(input.seed !== undefined ? { seed: input.seed } : {}),
          ...(input.tolerance !== undefined ? { tolerance: input.tolerance } : {}),
          ...(input.repeats !== undefined ? { repeats: input.repeats } : {}),
          ...(input.minClassCases !== undefined ? { minClassCases: input.minClassCases } : {}),
        });
        return { status: report.status === 'completed' ? 'success' : 'failed', result: { runId: report.id } };
      } finally {
        emit({ type: 'library-changed', what: 'probes' });
      }
    });
    return { jobId: job.id };
  },
  probeList: (_input, { core }) => ({ runs: core.probes.list() }),
  probeReport: (input, { core }) => {
    const report = core.probes.report(input.runId);
    return {
      id: report.id,
      status: report.status,
      modelId: report.modelId,
      labelKind: report.labelKind,
      labels: report.labels,
      seed: report.seed,
      folds: report.folds,
      appVersion: report.appVersion,
      error: report.error,
      predictionCount: report.predictionCount,
      metrics: report.metrics,
      raw: report,
    };
  },
};
