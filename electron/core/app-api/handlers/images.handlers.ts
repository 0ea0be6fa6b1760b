import type { HandlerGroup } from '../app-api.js';

export const imagesHandlers: HandlerGroup<'imagesPage' | 'imageDetail' | 'importReport'> = {
  imagesPage: (input, { core }) => {
    const filter = input.filter ?? {};
    return { total: core.images.count(filter), ids: core.images.list({ ...filter, offset: input.offset, limit: input.limit }).map((image) => image.id) };
  },
  imageDetail: (input, { view }) => view.detail(input.imageId),
  importReport: (input, { view }) => view.importReport(input.batchId, input.outcome),
};
