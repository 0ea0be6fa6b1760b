import fs from 'node:fs';
import path from 'node:path';
import { DermError, isDermError } from '../../common/errors.js';
import type { EmbeddingsRepository } from '../embeddings/embeddings.repository.js';
import type { IndexCalibration } from '../index/index-calibration.js';
import type { VectorIndexService } from '../index/vector-index.service.js';
import type { JobControl } from '../jobs/job.js';
import { parseSearchFilter, searchFilterSql } from './search-filter.js';
import type { ImageCard, SearchRepository } from './search.repository.js';
import { cliqueReviewItems } from './duplicate-review.js';

/** Embeds a photo that is not in the library (EmbeddingService.embedImageFile). */
export interface QueryEmbedder {
  embedImageFile(file: string, modelId?: string): Promise<Float32Array>;
}

export type SearchQuery = { imageId: number } | { file: string } | { vector: ArrayLike<number> };

export interface SearchRequest {
  query: SearchQuery;
  /** Defaults to the only model with embeddings in the library. */
  modelId?: string;
  /** 1..1000, default 10. */
  k?: number;
  /** `--where` clauses (search-filter.ts), all of which must hold. */
  where?: readonly string[];
  /** Leave the query image itself out of the results (query by image id). */
  excludeSelf?: boolean;
  /** Leave out every image of the query image's case. */
  excludeCase?: boolean;
  /** Compare the query with every eligible embedding instead of searching the index (complete, slower). */
  exact?: boolean;
}

/** Stages of one search request, in milliseconds (filled when asked for, for the bench). */
export type SearchRequestStages = Partial<Record<'query' | 'eligible' | 'ready' | 'index' | 'cards', number>>;

/** How complete a result list is: exact, or the index's own measured recall. */
export interface SearchCompleteness {
  /** exact: every eligible embedding was compared; index: the graph answered, with the recall it measured. */
  method: 'exact' | 'index';
  /** Measured recall@10 of the index (null: exact search, or an index that has not measured itself). */
  recall: number | null;
  probes: number | null;
  target: number | null;
  /** The index reached its recall target (null for exact search). */
  met: boolean | null;
  /** One readable line for the result header. */
  summary: string;
}

export interface SearchHit extends ImageCard {
  rank: number;
  /** Cosine similarity to the query, exact on the full embeddings. */
  similarity: number;
}

export interface SearchResponse {
  modelId: string;
  k: number;
  query: { kind: 'image'; imageId: number } | { kind: 'file'; file: string } | { kind: 'vector'; dim: number };
  where: string[];
  /** Images that pass the filters (all live images with an embedding when there are none). */
  eligible: number;
  completeness: SearchCompleteness;
  results: SearchHit[];
}

export function describeCompleteness(calibration: IndexCalibration | null, exact: boolean): SearchCompleteness {
  if (exact) return { method: 'exact', recall: null, probes: null, target: null, met: null, summary: 'exact search: every eligible image was compared' };
  if (!calibration) return { method: 'index', recall: null, probes: null, target: null, met: null, summary: 'index recall not measured yet' };
  const measured = `recall@10 ${calibration.recall.toFixed(3)} measured on ${calibration.probes} probes`;
  return {
    method: 'index',
    recall: calibration.recall,
    probes: calibration.probes,
    target: calibration.target,
    met: calibration.met,
    summary: calibration.met
      ? `index search: ${measured}`
      : `index search below its recall target ${calibration.target}: ${measured}; use exact search for a complete list`,
  };
}

export interface DuplicateGroup {
  /** Every two of these images are a pair at or above the threshold (a clique, never a chain). */
  imageIds: number[];
  /** Suggested image to keep: the largest, then the earliest imported. */
  keep: number;
  /** Some members have identical decoded pixels. */
  exact: boolean;
  /** Highest similarity between two members (1 for exact duplicates without an embedding pair). */
  maxSimilarity: number;
  /** Lowest similarity between two members: how alike the least alike two images of the group are. */
  minSimilarity: number;
  pairs: Array<{ a: number; b: number; similarity: number | null; exact: boolean }>;
  images: ImageCard[];
}

export interface DuplicateReport {
  modelId: string | null;
  threshold: number;
  groups: DuplicateGroup[];
}

export const maxK = 1000;

/**
 * Similar-case search: by a library image, a photo from outside the library, or a raw vector, with
 * the library's filters, returning what the side-by-side view shows. Also the near-duplicate review.
 */
export class SearchService {
  constructor(
    private readonly repository: SearchRepository,
    private readonly index: VectorIndexService,
    private readonly embeddings: EmbeddingsRepository,
    private readonly embedder: QueryEmbedder | undefined,
  ) {}

  /** The model to search: the one asked for, or the only model with embeddings. */
  resolveModel(modelId?: string): string {
    // A model asked for by name needs no count of every embedding (a scan of the embeddings index per request).
    if (modelId !== undefined && this.embeddings.model(modelId)) return modelId;
    const models = this.embeddings.models().filter((model) => model.count > 0);
    if (modelId !== undefined) {
      throw new DermError(
        'not-found',
        `The library has no embeddings for model "${modelId}"${models.length > 0 ? ` (models with embeddings: ${models.map((model) => model.id).join(', ')})` : ''}.`,
        { modelId },
      );
    }
    if (models.length === 1) return models[0]!.id;
    if (models.length === 0)
      throw new DermError('not-found', 'The library has no embeddings yet; run "dermws embed" (or import embeddings) before searching.', {});
    throw new DermError(
      'invalid-input',
      `The library has embeddings of several models (${models.map((model) => model.id).join(', ')}); choose one with --model.`,
      {
        field: 'model',
      },
    );
  }

  async search(request: SearchRequest, control: JobControl = {}, stages?: SearchRequestStages): Promise<SearchResponse> {
    let clock = performance.now();
    const lap = (stage: keyof SearchRequestStages) => {
      if (!stages) return;
      const now = performance.now();
      stages[stage] = (stages[stage] ?? 0) + now - clock;
      clock = now;
    };
    const k = request.k ?? 10;
    if (!Number.isInteger(k) || k < 1 || k > maxK)
      throw new DermError('invalid-input', `k must be a whole number from 1 to ${maxK}; got ${String(k)}.`, { field: 'k' });
    const where = [...(request.where ?? [])];
    const clauses = parseSearchFilter(where);
    const modelId = this.resolveModel(request.modelId);

    let queryVector: ArrayLike<number>;
    let query: SearchResponse['query'];
    const excluded = new Set<number>();
    if ('imageId' in request.query) {
      const imageId = request.query.imageId;
      const image = Number.isInteger(imageId) ? this.repository.liveImage(imageId) : undefined;
      if (!image) throw new DermError('not-found', `There is no image ${imageId} in the library.`, { imageId });
      const vector = this.embeddings.get(modelId, imageId);
      if (!vector)
        throw new DermError('not-found', `Image ${imageId} has no embedding for model "${modelId}"; run "dermws embed --model ${modelId}" first.`, {
          imageId,
          modelId,
        });
      queryVector = vector;
      query = { kind: 'image', imageId };
      if (request.excludeSelf) excluded.add(imageId);
      if (request.excludeCase && image.caseId !== null) for (const id of this.repository.imageIdsOfCase(image.caseId)) excluded.add(id);
    } else if ('file' in request.query) {
      const file = path.resolve(request.query.file);
      if (!fs.existsSync(file) || !fs.statSync(file).isFile()) throw new DermError('not-found', `The query image ${file} does not exist.`, { file });
      if (!this.embedder) throw new DermError('internal', 'Searching by a photo needs the embedding service, which this core was built without.', {});
      try {
        queryVector = await this.embedder.embedImageFile(file, modelId);
      } catch (error) {
        if (isDermError(error) && error.code !== 'internal') throw error;
        throw new DermError('decode-failed', `The query image ${file} could not be decoded and embedded: ${(error as Error).message}`, { file });
      }
      query = { kind: 'file', file };
    } else {
      queryVector = request.query.vector;
      query = { kind: 'vector', dim: queryVector.length };
    }

    // Leaving out only the query image or its case needs no list of every eligible id per query (a scan
    // of the whole library and a filter callback on every graph step): ask for that many more and drop them.
    const excludeByOversampling = clauses.length === 0 && k + excluded.size <= maxK;
    lap('query');
    let allowedIds: number[] | undefined;
    if (!excludeByOversampling) {
      allowedIds = this.repository.matchingIds(searchFilterSql(clauses)).filter((id) => !excluded.has(id));
    }
    lap('eligible');
    await this.index.ensureReady(modelId, control);
    lap('ready');
    let eligible = allowedIds?.length ?? this.index.size(modelId);
    let neighbours: Array<{ imageId: number; similarity: number }> = [];
    const exact = request.exact === true;
    const libraryImageId = query.kind === 'image' ? query.imageId : undefined;
    if (allowedIds === undefined) {
      for (const id of excluded) if (this.index.contains(modelId, id)) eligible--;
      const found = await this.index.search(modelId, queryVector, Math.min(k + excluded.size, Math.max(1, this.index.size(modelId))), {
        exact,
        ...(libraryImageId === undefined ? {} : { libraryImageId }),
      });
      neighbours = found.filter((neighbour) => !excluded.has(neighbour.imageId)).slice(0, k);
    } else if (allowedIds.length > 0) {
      const allowed = new Set(allowedIds);
      neighbours = await this.index.search(modelId, queryVector, k, { allow: (id) => allowed.has(id), allowedIds, exact });
    }
    lap('index');
    const cards = this.repository.cards(neighbours.map((neighbour) => neighbour.imageId));
    const results = neighbours.flatMap((neighbour, index) => {
      const card = cards.get(neighbour.imageId);
      return card ? [{ ...card, rank: index + 1, similarity: neighbour.similarity }] : [];
    });
    lap('cards');
    const scannedExactly = exact || (allowedIds !== undefined && this.index.scansFilterExactly(modelId, allowedIds.length));
    return { modelId, k, query, where, eligible, completeness: describeCompleteness(this.index.calibration(modelId), scannedExactly), results };
  }

  /**
   * Near-duplicate review: pairs of images whose embeddings have similarity ≥ threshold, plus images
   * with identical decoded pixels, formed into cliques most similar first (duplicate-review.ts): every
   * two images of a group are such a pair, so a ~ b and b ~ c never put an unrelated c beside a.
   * Groups come most similar first. Without any model, only the exact duplicates are reported.
   */
  async duplicates(options: { threshold?: number; modelId?: string; perImage?: number } & JobControl = {}): Promise<DuplicateReport> {
    const threshold = options.threshold ?? 0.97;
    if (!(Number.isFinite(threshold) && threshold > 0 && threshold <= 1)) {
      throw new DermError('invalid-input', `The similarity threshold must be above 0 and at most 1; got ${String(threshold)}.`, { field: 'threshold' });
    }
    const hasModels = this.embeddings.models().some((model) => model.count > 0);
    const modelId = options.modelId !== undefined || hasModels ? this.resolveModel(options.modelId) : null;
    const near = modelId === null ? [] : await this.index.similarPairs(modelId, threshold, options);
    const key = (a: number, b: number) => (a < b ? `${a}-${b}` : `${b}-${a}`);
    const similarityOf = new Map(near.map((pair) => [key(pair.a, pair.b), pair.similarity]));
    const exactKeys = new Set<string>();
    for (const group of this.repository.exactDuplicateGroups()) {
      for (const [index, a] of group.entries()) for (const b of group.slice(index + 1)) exactKeys.add(key(a, b));
    }
    // Identical pixels are a duplicate whatever the embedding says, so they score at least 1.
    const scored = near.map((pair) => ({ a: pair.a, b: pair.b, score: exactKeys.has(key(pair.a, pair.b)) ? Math.max(1, pair.similarity) : pair.similarity }));
    for (const exact of exactKeys) {
      if (similarityOf.has(exact)) continue;
      const [a, b] = exact.split('-').map(Number) as [number, number];
      scored.push({ a, b, score: 1 });
    }
    const items = cliqueReviewItems(scored, Math.min(threshold, 1));
    const cards = this.repository.cards([...new Set(items.flatMap((item) => item.imageIds))]);
    const groups: DuplicateGroup[] = items.map((item) => {
      const pairs = item.pairs.map((pair) => {
        const pairKey = key(pair.a, pair.b);
        return { a: pair.a, b: pair.b, similarity: similarityOf.get(pairKey) ?? null, exact: exactKeys.has(pairKey) };
      });
      const images = item.imageIds.flatMap((id) => (cards.has(id) ? [cards.get(id)!] : []));
      const keep = [...images].sort((x, y) => y.width * y.height - x.width * x.height || x.imageId - y.imageId)[0]?.imageId ?? item.imageIds[0]!;
      const similarities = pairs.map((pair) => pair.similarity ?? 1);
      return {
        imageIds: item.imageIds,
        keep,
        exact: pairs.some((pair) => pair.exact),
        maxSimilarity: Math.max(...similarities),
        minSimilarity: Math.min(...similarities),
        pairs,
        images,
      };
    });
    return { modelId, threshold, groups };
  }

  /**
   * Keeps one image of a duplicate group and flags the others (`duplicate`, manual, "duplicate of
   * image N") or marks them deleted. Checks every id first, so a bad id changes nothing. `changedImages`
   * are the images this call changed (an image flagged or deleted before is left as it was), which is
   * exactly what `undoDuplicates` takes back.
   */
  resolveDuplicates(request: { keep: number; others: readonly number[]; action: DuplicateAction }): DuplicateResolution {
    const { keep, others, action } = request;
    checkAction(action);
    if (others.length === 0) throw new DermError('invalid-input', 'Name at least one image to mark as a duplicate of the one kept.', { field: 'others' });
    if (others.includes(keep))
      throw new DermError('invalid-input', `Image ${keep} is the one kept; it cannot also be marked as its duplicate.`, { field: 'others' });
    for (const imageId of [keep, ...others]) {
      if (!Number.isInteger(imageId) || !this.repository.liveImage(imageId))
        throw new DermError('not-found', `There is no image ${imageId} in the library.`, { imageId });
    }
    const images = [...new Set(others)];
    const changedImages = action === 'flag' ? this.repository.flagDuplicates(keep, images) : this.repository.markDeleted(images);
    return { keep, action, images, changed: changedImages.length, changedImages };
  }

  /**
   * Takes a duplicate decision back: removes the manual `duplicate` flag of these images (action
   * flag) or restores images marked deleted (action delete). Checks every id first.
   */
  undoDuplicates(request: { images: readonly number[]; action: DuplicateAction }): {
    action: DuplicateAction;
    images: number[];
    changed: number;
    changedImages: number[];
  } {
    const { action } = request;
    checkAction(action);
    if (request.images.length === 0) throw new DermError('invalid-input', 'Name at least one image whose duplicate decision to undo.', { field: 'images' });
    for (const imageId of request.images) {
      if (!Number.isInteger(imageId) || !this.repository.imageExists(imageId))
        throw new DermError('not-found', `There is no image ${imageId} in the library.`, { imageId });
    }
    const images = [...new Set(request.images)];
    const changedImages = action === 'flag' ? this.repository.unflagDuplicates(images) : this.repository.restoreDeleted(images);
    return { action, images, changed: changedImages.length, changedImages };
  }
}

export type DuplicateAction = 'flag' | 'delete';

export interface DuplicateResolution {
  keep: number;
  action: DuplicateAction;
  images: number[];
  changed: number;
  /** The images this call flagged or deleted (the others already were). */
  changedImages: number[];
}

function checkAction(action: string): void {
  if (action !== 'flag' && action !== 'delete')
    throw new DermError('invalid-input', `The duplicate action must be "flag" or "delete"; got "${String(action)}".`, { field: 'action' });
}
