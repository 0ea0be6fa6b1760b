import type { HandlerGroup } from '../app-api.js';

export const qualityHandlers: HandlerGroup<'qualityOverview' | 'qualitySetThresholds'> = {
  qualityOverview: (_input, { core, view }) => {
    const thresholds = core.quality.thresholds();
    return {
      images: core.images.count({}),
      flaggedImages: core.quality.flaggedImageCount(),
      flagCounts: core.quality.flagCounts(),
      thresholds,
      histograms: view.qualityHistograms(thresholds),
    };
  },
  qualitySetThresholds: (input, { core, emit }) => {
    const { thresholds, reflag } = core.quality.setThresholds(input.change);
    emit({ type: 'library-changed', what: 'flags' });
    return { thresholds, flagCounts: reflag.flags };
  },
};
