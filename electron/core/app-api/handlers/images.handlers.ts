import type { HandlerGroup } from '../app-api.js';

export const imagesHandlers: HandlerGroup<'imagesPage' | 'imageDetail' | 'importReport'> = {
  imagesPage: (input, { view }) => view.page(input.filter, input.offset, input.limit),
  imageDetail: (input, { view }) => view.detail(input.imageId),
  importReport: (input, { view }) => view.importReport(input.batchId, input.outcome),
};
