import type { imagesCalls } from '../../../common/contract/images.js';
import type { HandlerGroup } from '../app-api.js';

export const imagesHandlers: HandlerGroup<keyof typeof imagesCalls> = {
  libraryFacets: (input, { view }) => view.facets(input.filter ?? {}),
  imageCards: (input, { view }) => view.cards(input.imageIds),
  imagesFlag: (input, { core, emit }) => {
    const changed = input.set ? core.quality.flagImages(input.imageIds, input.flag) : core.quality.unflagImages(input.imageIds, input.flag);
    emit({ type: 'library-changed', what: 'flags' });
    return { changed };
  },
  imagesPage: (input, { core }) => {
    const filter = input.filter ?? {};
    return { total: core.images.count(filter), ids: core.images.list({ ...filter, offset: input.offset, limit: input.limit }).map((image) => image.id) };
  },
  imageDetail: (input, { view }) => view.detail(input.imageId),
  importReport: (input, { view }) => view.importReport(input.batchId, input.outcome),
};
