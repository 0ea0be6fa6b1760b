import type { agreementCalls } from '../../../common/contract/agreement.js';
import type { HandlerGroup } from '../app-api.js';

export const agreementHandlers: HandlerGroup<keyof typeof agreementCalls> = {
  agreementReport: (input, { core }) => {
    const options = input.kind ? { kind: input.kind } : {};
    const kinds = core.agreement.agreement(options);
    const disagreements = core.agreement.disagreements({ ...options, ...(input.includeAdjudicated ? { includeAdjudicated: true } : {}) });
    return {
      kinds: kinds.map((kind) => ({
        kind: kind.kind,
        annotators: kind.annotators,
        pairs: kind.pairs,
        group: kind.group,
        ...(kind.perValue ? { perValue: kind.perValue } : {}),
      })),
      disagreements,
    };
  },
  adjudicate: (input, { core, emit }) => {
    const changes = core.agreement.adjudicate({
      imageId: input.imageId,
      kind: input.kind,
      values: input.values.map((value) => ({ value })),
      annotator: input.annotator,
    });
    emit({ type: 'library-changed', what: 'labels' });
    return { changed: changes.length, values: core.labels.consensus(input.imageId, input.kind).map((label) => label.value) };
  },
};
