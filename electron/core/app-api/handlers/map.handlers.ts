import { DermError } from '../../../common/errors.js';
import { EmbeddingSampleRepository } from '../../embeddings/embedding-sample.repository.js';
import { EmbeddingsRepository } from '../../embeddings/embeddings.repository.js';
import { matrix, OnnxGemm } from '../../index/onnx-gemm.js';
import { fitRandomizedPca, projectJs } from '../../index/randomized-pca.js';
import type { HandlerGroup } from '../app-api.js';

/** UMAP in the renderer works on this many PCA components: enough for neighbourhoods, small to send. */
const mapComponents = 50;
/** Rows the map's PCA is fitted on (the rest of the sample is projected): see the map bench in the README. */
export const mapFitRows = 1500;

export const mapHandlers: HandlerGroup<'mapPoints' | 'mapGroups'> = {
  mapGroups: (input, { core }) => ({ groups: groupsOf(core, input.imageIds, input.colourBy) }),
  mapPoints: async (input, { core }) => {
    const embeddings = new EmbeddingsRepository(core.library.db);
    const stored = embeddings.models().filter((model) => model.count > 0);
    const modelId = input.modelId ?? (stored.length === 1 ? stored[0]!.id : undefined);
    if (!modelId) {
      throw new DermError(
        stored.length === 0 ? 'not-found' : 'invalid-input',
        stored.length === 0 ? 'No image has an embedding yet: embed the library first (Models & settings).' : `Choose a model: the library has embeddings of ${stored.map((model) => model.id).join(', ')}.`,
        { field: 'modelId' },
      );
    }
    // An even stride keeps the sample spread over the whole library (import order) and reproducible;
    // only the sampled rows' vectors are read.
    const sampler = new EmbeddingSampleRepository(core.library.db);
    const { total, imageIds } = sampler.evenSample(modelId, input.limit ?? 5000);
    const all = sampler.rows(modelId, imageIds);
    const sample = all.data;
    const rows = imageIds;
    let coordinates: Float32Array = sample;
    let dims = all.dim;
    if (all.dim > mapComponents && rows.length > mapComponents) {
      const gemm = new OnnxGemm();
      try {
        // The map only needs the main directions: they are fitted on an even subset of the sample
        // (the fit's cost grows with its rows) and every sampled image is projected onto them.
        const fitRows = Math.min(rows.length, mapFitRows);
        const fitSample = new Float32Array(fitRows * all.dim);
        for (let index = 0; index < fitRows; index++) {
          const row = Math.floor((index * rows.length) / fitRows);
          fitSample.set(sample.subarray(row * all.dim, (row + 1) * all.dim), index * all.dim);
        }
        const model = await fitRandomizedPca(gemm, matrix(fitRows, all.dim, fitSample), { components: mapComponents, seed: 1 });
        coordinates = projectJs(model, sample);
        dims = model.outputDim;
      } finally {
        await gemm.release();
      }
    }
    const groups = groupsOf(core, imageIds, input.colourBy);
    return { modelId, total, dims, imageIds, coordinates: Array.from(coordinates, (value) => Math.round(value * 1e4) / 1e4), groups };
  },
};

function groupsOf(core: Parameters<HandlerGroup<'mapPoints'>['mapPoints']>[1]['core'], imageIds: number[], colourBy: string): string[] {
  if (colourBy === 'flag' || colourBy === 'batch') {
    // getMany reads one page (10,000) at a time; a 20,000-image map asks in pages.
    const records = new Map<number, ReturnType<typeof core.images.getMany>[number]>();
    for (let start = 0; start < imageIds.length; start += 10_000) {
      for (const image of core.images.getMany(imageIds.slice(start, start + 10_000))) records.set(image.id, image);
    }
    return imageIds.map((id) => {
      const image = records.get(id);
      if (!image) return 'unknown';
      if (colourBy === 'batch') return `batch ${image.batchId}`;
      return image.flags[0] ?? 'no flag';
    });
  }
  const labels = core.labels.labelsForImages(imageIds, { kinds: [colourBy as 'condition' | 'fitzpatrick' | 'monk_tone'] });
  return imageIds.map((id) => {
    const values = [...new Set((labels.get(id) ?? []).map((label) => label.value))].sort();
    if (values.length > 0) return values.join(' + ');
    if (colourBy === 'fitzpatrick') {
      // Self-reported FST5 reads as V, like the labels, so one type is one colour.
      const self = /^FST([1-6])$/.exec(core.images.metadata(id).fitzpatrick_self ?? '');
      return self ? (['I', 'II', 'III', 'IV', 'V', 'VI'][Number(self[1]) - 1] ?? 'not recorded') : 'not recorded';
    }
    if (colourBy === 'monk_tone') return core.images.metadata(id).monk_tone_us ?? 'not recorded';
    return 'unlabelled';
  });
}
