import type { searchCalls } from '../../../common/contract/search.js';
import fs from 'node:fs';
import path from 'node:path';
import { DermError } from '../../../common/errors.js';
import type { ImageCard } from '../../search/search.repository.js';
import type { DuplicateReport, SearchHit, SearchResponse } from '../../search/search.service.js';
import type { CallOutput } from '../../../common/contract.js';
import type { HandlerGroup } from '../app-api.js';

/** What a browser sees of an image in a list: its file's name, never the folder it lies in (paths stay on this machine). */
function imageCard(image: ImageCard) {
  return {
    imageId: image.imageId,
    fileName: path.basename(image.originalPath),
    width: image.width,
    height: image.height,
    caseKey: image.caseKey,
    metadata: image.metadata,
    flags: image.flags,
    labels: image.labels,
  };
}

function card(hit: SearchHit) {
  return { ...imageCard(hit), rank: hit.rank, similarity: hit.similarity };
}

/** searchSimilar's output from a search: also what `dermws search --json` prints. */
export function searchSimilarOutput(response: SearchResponse): CallOutput<'searchSimilar'> {
  return {
    modelId: response.modelId,
    where: response.where,
    eligible: response.eligible,
    completeness: response.completeness,
    results: response.results.map(card),
  };
}

/** duplicatesFind's output from a duplicate review: also what `dermws duplicates --json` prints. */
export function duplicatesFindOutput(report: DuplicateReport): CallOutput<'duplicatesFind'> {
  return {
    modelId: report.modelId,
    threshold: report.threshold,
    groups: report.groups.map((group) => ({
      imageIds: group.imageIds,
      keep: group.keep,
      exact: group.exact,
      maxSimilarity: group.maxSimilarity,
      minSimilarity: group.minSimilarity,
      pairs: group.pairs,
      images: group.images.map(imageCard),
    })),
  };
}

/** The one photo of an upload used as a search query (the first image file, in name order). */
function uploadedPhoto(uploadsFolder: string | undefined, uploadId: string): string {
  if (!uploadsFolder) throw new DermError('invalid-input', 'Uploads are only accepted in the local web mode.', { field: 'uploadId' });
  const folder = path.join(uploadsFolder, uploadId);
  const files = fs.existsSync(folder) ? fs.readdirSync(folder, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile()) : [];
  const first = files.map((entry) => path.join(entry.parentPath, entry.name)).sort()[0];
  if (!first) throw new DermError('not-found', `No photo was uploaded under id ${uploadId}.`, { field: 'uploadId' });
  return first;
}

export const searchHandlers: HandlerGroup<keyof typeof searchCalls> = {
  searchSimilar: async (input, { core, options }) => {
    const common = {
      ...(input.modelId ? { modelId: input.modelId } : {}),
      ...(input.k ? { k: input.k } : {}),
      ...(input.where ? { where: input.where } : {}),
      ...(input.excludeCase !== undefined ? { excludeCase: input.excludeCase } : {}),
      ...(input.exact ? { exact: true } : {}),
    };
    if ('imageId' in input) {
      const response = await core.search.search({ query: { imageId: input.imageId }, excludeSelf: input.excludeSelf ?? true, ...common });
      return searchSimilarOutput(response);
    }
    if ('path' in input) {
      const response = await core.search.search({ query: { file: path.resolve(input.path) }, ...common });
      return searchSimilarOutput(response);
    }
    const file = uploadedPhoto(options.uploadsFolder, input.uploadId);
    try {
      const response = await core.search.search({ query: { file }, ...common });
      return searchSimilarOutput(response);
    } finally {
      fs.rmSync(path.join(options.uploadsFolder!, input.uploadId), { recursive: true, force: true });
    }
  },
  duplicatesFind: async (input, { core }) => {
    const report = await core.search.duplicates({
      ...(input.threshold !== undefined ? { threshold: input.threshold } : {}),
      ...(input.modelId ? { modelId: input.modelId } : {}),
    });
    return duplicatesFindOutput(report);
  },
  duplicatesResolve: (input, { core, emit }) => {
    const result = core.search.resolveDuplicates({ keep: input.keep, others: input.others, action: input.action });
    emit({ type: 'library-changed', what: input.action === 'flag' ? 'flags' : 'images' });
    return { changed: result.changed, changedImages: result.changedImages };
  },
  duplicatesUndo: (input, { core, emit }) => {
    const result = core.search.undoDuplicates({ images: input.images, action: input.action });
    emit({ type: 'library-changed', what: input.action === 'flag' ? 'flags' : 'images' });
    return { changed: result.changed, changedImages: result.changedImages };
  },
};
