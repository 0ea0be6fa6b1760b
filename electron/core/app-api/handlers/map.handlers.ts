import { DermError } from '../../../common/errors.js';
import { EmbeddingsRepository } from '../../embeddings/embeddings.repository.js';
import { matrix, OnnxGemm } from '../../index/onnx-gemm.js';
import { fitRandomizedPca, projectJs } from '../../index/randomized-pca.js';
import type { HandlerGroup } from '../app-api.js';

/** UMAP in the renderer works on this many PCA components: enough for neighbourhoods, small to send. */
const mapComponents = 50;

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
    const all = embeddings.matrix(modelId);
    const total = all.imageIds.length;
    const limit = input.limit ?? 5000;
    // An even stride keeps the sample spread over the whole library (import order) and reproducible.
    const stride = Math.max(1, total / limit);
    const rows: number[] = [];
    for (let position = 0; position < total && rows.length < limit; position = Math.floor((rows.length) * stride)) rows.push(position);
    const imageIds = rows.map((row) => all.imageIds[row]!);
    const sample = new Float32Array(rows.length * all.dim);
    rows.forEach((row, index) => sample.set(all.data.subarray(row * all.dim, (row + 1) * all.dim), index * all.dim));
    let coordinates: Float32Array = sample;
    let dims = all.dim;
    if (all.dim > mapComponents && rows.length > mapComponents) {
      const gemm = new OnnxGemm();
      try {
        const model = await fitRandomizedPca(gemm, matrix(rows.length, all.dim, sample), { components: mapComponents, seed: 1 });
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
    const records = new Map(core.images.getMany(imageIds).map((image) => [image.id, image]));
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
