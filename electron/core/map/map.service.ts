import { DermError } from '../../common/errors.js';
import type { EmbeddingSampleRepository } from '../embeddings/embedding-sample.repository.js';
import type { EmbeddingsRepository } from '../embeddings/embeddings.repository.js';
import type { ImagesRepository } from '../images/images.repository.js';
import { matrix, OnnxGemm } from '../math/onnx-gemm.js';
import { fitRandomizedPca } from '../math/randomized-pca.js';
import type { VectorIndexService } from '../index/vector-index.service.js';
import { normalizeRows } from '../math/vector-math.js';
import { ProgressReporter, throwIfCancelled, type JobControl } from '../jobs/job.js';
import type { LabelsService } from '../labels/labels.service.js';

export type MapColouring = 'condition' | 'flag' | 'fitzpatrick' | 'monk_tone' | 'batch';

export interface MapRequest {
  modelId?: string | undefined;
  limit?: number | undefined;
  colourBy: MapColouring;
}

export interface MapLayout {
  modelId: string;
  /** Images of the model in the library (the sample is drawn from them). */
  total: number;
  dims: number;
  imageIds: number[];
  /** imageIds.length × dims, row-major principal coordinates, the most spread first (the first two are a map already). */
  coordinates: number[];
  groups: string[];
  /** Where the vectors came from: the index's stored points, or the embeddings table when the model has no usable index. */
  source: 'index' | 'embeddings';
  /** Shown with the map: why it took the slower path, or how the index's points were reduced. */
  note: string;
}

/** UMAP in the renderer works on this many principal components: enough for neighbourhoods, small to send. */
export const mapComponents = 50;
/** Rows the fallback's PCA on raw embeddings is fitted on (the rest of the sample is projected): see the map bench. */
export const mapFitRows = 1500;
/** Layouts kept for `result` after their job finished (the renderer fetches each once). */
const keptLayouts = 4;

/**
 * The embedding map's points: an even, reproducible sample of a model's images, reduced to at most 50
 * principal coordinates of their unit embeddings (the geometry of cosine similarity, as search uses).
 *
 * When the model's index is usable, the sample's vectors are the points its graph already holds. For
 * a projected model those are the unit embeddings after the index's PCA projection (centred, onto its
 * top few hundred principal axes, fitted on thousands of rows), so the map's PCA runs on a few hundred
 * dimensions instead of 6144 and no embedding is read from SQLite. The top principal axes of the
 * sample lie (to sampling accuracy) inside the projection's span, so the map's first coordinates are
 * the same as a PCA of the raw unit embeddings would give, up to sign (test/medium/map-projected.test.ts).
 * Without a usable index the sampled embeddings are read and reduced directly, and the note says so.
 */
export class MapService {
  private readonly layouts = new Map<string, MapLayout>();
  private nextLayout = 1;

  constructor(
    private readonly sampler: EmbeddingSampleRepository,
    private readonly embeddings: EmbeddingsRepository,
    private readonly index: VectorIndexService,
    private readonly images: ImagesRepository,
    private readonly labels: LabelsService,
  ) {}

  /** The model a map is drawn for: the one asked for, or the library's only model with embeddings. */
  private modelFor(requested: string | undefined): string {
    const stored = this.embeddings.models().filter((model) => model.count > 0);
    const modelId = requested ?? (stored.length === 1 ? stored[0]!.id : undefined);
    if (!modelId) {
      throw new DermError(
        stored.length === 0 ? 'not-found' : 'invalid-input',
        stored.length === 0
          ? 'No image has an embedding yet: embed the library first (Models & settings).'
          : `Choose a model: the library has embeddings of ${stored.map((model) => model.id).join(', ')}.`,
        { field: 'modelId' },
      );
    }
    return modelId;
  }

  async layout(request: MapRequest, control: JobControl = {}): Promise<MapLayout> {
    const modelId = this.modelFor(request.modelId);
    // An even stride keeps the sample spread over the whole library (import order) and reproducible.
    const { total, imageIds } = this.sampler.evenSample(modelId, request.limit ?? 5000);
    const reporter = new ProgressReporter('map', imageIds.length, control.onProgress);
    reporter.report(0, `opening the index of ${modelId}`, true);
    const fromIndex = await this.index.projectedVectorsFor(modelId, imageIds, control);
    throwIfCancelled(control.signal);
    let vectors: { data: Float32Array; dim: number };
    let note: string;
    if (fromIndex) {
      vectors = fromIndex;
      reporter.report(imageIds.length, 'principal coordinates', true);
      note = fromIndex.projection
        ? `From the index's ${fromIndex.dim}-d PCA projection of the ${fromIndex.projection.inputDim}-d embeddings (it keeps ${(fromIndex.projection.explainedVariance * 100).toFixed(0)}% of their variance).`
        : `From the index's ${fromIndex.dim}-d unit embeddings.`;
    } else {
      vectors = this.readEmbeddings(modelId, imageIds, reporter, control);
      note = `This model has no search index yet, so the map read ${imageIds.length.toLocaleString()} embeddings from the library (slower at scale). The first similar-case search builds it (or "dermws index rebuild"); the next map then reads the index instead.`;
    }
    const reduced = await this.principalCoordinates(
      vectors.data,
      imageIds.length,
      vectors.dim,
      fromIndex ? imageIds.length : Math.min(imageIds.length, mapFitRows),
    );
    throwIfCancelled(control.signal);
    reporter.report(imageIds.length, 'colour groups', true);
    const groups = this.groups(imageIds, request.colourBy);
    return {
      modelId,
      total,
      dims: reduced.dims,
      imageIds,
      coordinates: Array.from(reduced.coordinates, (value) => Math.round(value * 1e4) / 1e4),
      groups,
      source: fromIndex ? 'index' : 'embeddings',
      note,
    };
  }

  /** Keeps a finished layout for the renderer to fetch once (job results stay small); returns its id. */
  keep(layout: MapLayout): string {
    const id = `map-${this.nextLayout++}`;
    this.layouts.set(id, layout);
    for (const old of this.layouts.keys()) {
      if (this.layouts.size <= keptLayouts) break;
      this.layouts.delete(old);
    }
    return id;
  }

  result(mapId: string): MapLayout {
    const layout = this.layouts.get(mapId);
    if (!layout)
      throw new DermError('not-found', `There is no map "${mapId}" in this run of the app (only the last ${keptLayouts} are kept); draw the map again.`, {
        mapId,
      });
    return layout;
  }

  /** The sampled embeddings from SQLite, as unit rows (the path for a model without a usable index). */
  private readEmbeddings(modelId: string, imageIds: number[], reporter: ProgressReporter, control: JobControl): { data: Float32Array; dim: number } {
    const dim = this.embeddings.model(modelId)?.dim;
    if (dim === undefined) throw new DermError('not-found', `The library has no embeddings for model "${modelId}".`, { modelId });
    const data = new Float32Array(imageIds.length * dim);
    for (let start = 0; start < imageIds.length; start += 1000) {
      throwIfCancelled(control.signal);
      const block = this.sampler.rows(modelId, imageIds.slice(start, start + 1000));
      data.set(block.data, start * dim);
      reporter.report(start + block.imageIds.length, 'reading embeddings');
    }
    return { data: normalizeRows(data, dim), dim };
  }

  /**
   * At most 50 principal coordinates of the rows, the most spread first, fitted on `fitRows` rows
   * spread evenly over them (the fit's cost grows with its rows; every row is projected).
   */
  private async principalCoordinates(data: Float32Array, rows: number, dim: number, fitRows: number): Promise<{ coordinates: Float32Array; dims: number }> {
    if (rows < 3) return { coordinates: data, dims: dim };
    const gemm = new OnnxGemm();
    try {
      const fitSample = new Float32Array(fitRows * dim);
      for (let index = 0; index < fitRows; index++) {
        const row = Math.floor((index * rows) / fitRows);
        fitSample.set(data.subarray(row * dim, (row + 1) * dim), index * dim);
      }
      const model = await fitRandomizedPca(gemm, matrix(fitRows, dim, fitSample), {
        components: Math.min(mapComponents, dim, fitRows - 1),
        seed: 1,
        centreInPlace: true,
      });
      const centred = new Float32Array(rows * dim);
      for (let row = 0; row < rows; row++) {
        const offset = row * dim;
        for (let col = 0; col < dim; col++) centred[offset + col] = data[offset + col]! - model.mean[col]!;
      }
      const scores = await gemm.multiply(matrix(rows, dim, centred), matrix(dim, model.outputDim, model.components));
      return { coordinates: scores.data, dims: model.outputDim };
    } finally {
      await gemm.release();
    }
  }

  /** The colour group of each image (recolouring asks for these alone; the layout stays). */
  groups(imageIds: number[], colourBy: MapColouring): string[] {
    if (colourBy === 'flag' || colourBy === 'batch') {
      // getMany reads one page (10,000) at a time; a 20,000-image map asks in pages.
      const records = new Map<number, ReturnType<ImagesRepository['getMany']>[number]>();
      for (let start = 0; start < imageIds.length; start += 10_000) {
        for (const image of this.images.getMany(imageIds.slice(start, start + 10_000))) records.set(image.id, image);
      }
      return imageIds.map((id) => {
        const image = records.get(id);
        if (!image) return 'unknown';
        if (colourBy === 'batch') return `batch ${image.batchId}`;
        return image.flags[0] ?? 'no flag';
      });
    }
    const labels = this.labels.labelsForImages(imageIds, { kinds: [colourBy] });
    return imageIds.map((id) => {
      const values = [...new Set((labels.get(id) ?? []).map((label) => label.value))].sort();
      if (values.length > 0) return values.join(' + ');
      if (colourBy === 'fitzpatrick') {
        // Self-reported FST5 reads as V, like the labels, so one type is one colour.
        const self = /^FST([1-6])$/.exec(this.images.metadata(id).fitzpatrick_self ?? '');
        return self ? (['I', 'II', 'III', 'IV', 'V', 'VI'][Number(self[1]) - 1] ?? 'not recorded') : 'not recorded';
      }
      if (colourBy === 'monk_tone') return this.images.metadata(id).monk_tone_us ?? 'not recorded';
      return 'unlabelled';
    });
  }
}
