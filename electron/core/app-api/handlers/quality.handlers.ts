import type { qualityCalls } from '../../../common/contract/quality.js';
import { defaultQualityThresholds } from '../../quality/quality-flags.js';
import type { HandlerGroup } from '../app-api.js';

export const qualityHandlers: HandlerGroup<keyof typeof qualityCalls> = {
  qualityOverview: (_input, { core, view }) => {
    const thresholds = core.quality.thresholds();
    return {
      images: core.images.count({}),
      flaggedImages: core.quality.flaggedImageCount(),
      flagCounts: core.quality.flagCounts(),
      thresholds,
      defaults: { ...defaultQualityThresholds },
      histograms: view.qualityHistograms(thresholds),
    };
  },
  qualityFlagged: (input, { view }) => view.flagged(input.flag, input.limit ?? 200),
  qualityNotAnIssue: (input, { core, view, emit }) => {
    core.quality.setNotAnIssue(input.imageId, input.flag, input.notAnIssue);
    emit({ type: 'library-changed', what: 'flags' });
    return { flags: view.flagsOf(input.imageId) };
  },
  qualitySetThresholds: (input, { core, emit }) => {
    const before = core.quality.thresholds();
    const { thresholds, reflag } = core.quality.setThresholds(input.change);
    emit({ type: 'library-changed', what: 'flags' });
    const changed = Object.keys(input.change).map((name) => ({
      name,
      from: before[name as keyof typeof before],
      to: thresholds[name as keyof typeof thresholds],
    }));
    return { thresholds, flagCounts: reflag.flags, changed, images: core.images.count({}), flaggedImages: core.quality.flaggedImageCount() };
  },
};
