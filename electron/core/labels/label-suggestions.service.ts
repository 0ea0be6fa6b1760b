import type { z } from 'zod';
import type { labelSuggestionSchema } from '../../common/contract.js';
import { DermError } from '../../common/errors.js';
import type { EmbeddingsRepository } from '../embeddings/embeddings.repository.js';
import { parseLabelKind, type LabelKind } from './label-kinds.js';
import type { Label } from './labels.repository.js';
import type { LabelsService } from './labels.service.js';

export interface SuggestionNeighbour {
  imageId: number;
  similarity: number;
  /** max(similarity, 0) / Σ over the k neighbours: how much this neighbour counts. */
  weight: number;
  /** The neighbour's values and each value's share of its vote (consensus wins; else annotators split one vote). */
  values: Array<{ value: string; share: number }>;
}

export type LabelSuggestion = z.infer<typeof labelSuggestionSchema>;

export interface LabelSuggestions {
  imageId: number;
  kind: LabelKind;
  modelId: string;
  /** 'exact-cosine': brute-force cosine similarity over every labelled image's embedding. */
  method: 'exact-cosine';
  neighbours: SuggestionNeighbour[];
  suggestions: LabelSuggestion[];
}

/**
 * Suggests labels for an image from its k most similar labelled images. Similarity is exact cosine over
 * the labelled images' embeddings (EmbeddingsRepository.matrix): only labelled images are candidates,
 * which an index over the whole library cannot restrict to without searching deeper, and a brute-force
 * scan of up to ~100k labelled images of one model takes well under a second.
 */
export class LabelSuggestionsService {
  constructor(
    private readonly labels: LabelsService,
    private readonly embeddings: EmbeddingsRepository,
  ) {}

  suggest(imageId: number, options: { kind?: string; modelId?: string; k?: number } = {}): LabelSuggestions {
    const kind = parseLabelKind(options.kind ?? 'condition');
    if (kind === 'note') throw new DermError('invalid-input', 'kind note is free text; suggestions are made for the other kinds.', { field: 'kind' });
    const k = options.k ?? 10;
    if (!Number.isInteger(k) || k < 1 || k > 1000)
      throw new DermError('invalid-input', `k must be a whole number from 1 to 1000; got ${String(k)}.`, { field: 'k', value: k });
    const modelId = this.model(options.modelId);
    const query = this.embeddings.get(modelId, imageId);
    if (!query) throw new DermError('not-found', `Image ${imageId} has no embedding for model "${modelId}"; embed it first.`, { imageId, modelId });

    const labelled = this.labels.labelsForImages(undefined, { kinds: [kind] });
    labelled.delete(imageId);
    const result: LabelSuggestions = { imageId, kind, modelId, method: 'exact-cosine', neighbours: [], suggestions: [] };
    if (labelled.size === 0) return result;

    const matrix = this.embeddings.matrix(modelId, [...labelled.keys()]);
    let queryNorm = 0;
    for (const value of query) queryNorm += value * value;
    queryNorm = Math.sqrt(queryNorm) || 1;
    const scored: Array<{ imageId: number; similarity: number }> = [];
    for (let row = 0; row < matrix.imageIds.length; row++) {
      let dot = 0;
      let norm = 0;
      const offset = row * matrix.dim;
      for (let d = 0; d < matrix.dim; d++) {
        const value = matrix.data[offset + d]!;
        dot += value * query[d]!;
        norm += value * value;
      }
      scored.push({ imageId: matrix.imageIds[row]!, similarity: dot / (queryNorm * (Math.sqrt(norm) || 1)) });
    }
    scored.sort((a, b) => b.similarity - a.similarity || a.imageId - b.imageId);
    const top = scored.slice(0, k);
    const totalWeight = top.reduce((sum, neighbour) => sum + Math.max(neighbour.similarity, 0), 0);
    const scores = new Map<string, { score: number; neighbours: number }>();
    for (const neighbour of top) {
      const weight = totalWeight > 0 ? Math.max(neighbour.similarity, 0) / totalWeight : 0;
      const values = voteShares(labelled.get(neighbour.imageId)!);
      result.neighbours.push({ imageId: neighbour.imageId, similarity: neighbour.similarity, weight, values });
      for (const { value, share } of values) {
        const entry = scores.get(value) ?? { score: 0, neighbours: 0 };
        entry.score += weight * share;
        entry.neighbours++;
        scores.set(value, entry);
      }
    }
    result.suggestions = [...scores.entries()]
      .map(([value, entry]) => ({ value, score: entry.score, neighbours: entry.neighbours }))
      .sort((a, b) => b.score - a.score || a.value.localeCompare(b.value));
    return result;
  }

  private model(modelId: string | undefined): string {
    if (modelId !== undefined) {
      if (!this.embeddings.model(modelId)) throw new DermError('not-found', `The library has no embeddings for model "${modelId}".`, { modelId });
      return modelId;
    }
    const models = this.embeddings.models().filter((model) => model.count > 0);
    if (models.length === 1) return models[0]!.id;
    throw new DermError(
      'invalid-input',
      models.length === 0
        ? 'Label suggestions need embeddings, and the library has none yet.'
        : `Choose the model for suggestions: one of ${models.map((model) => model.id).join(', ')}.`,
      { field: 'modelId' },
    );
  }
}

/**
 * One neighbour casts one vote. A consensus label is the neighbour's answer; otherwise each annotator who
 * labelled it gets an equal part of the vote, spread over that annotator's values.
 */
function voteShares(labels: Label[]): Array<{ value: string; share: number }> {
  const consensus = labels.filter((label) => label.origin === 'consensus');
  const byRater = new Map<string, string[]>();
  if (consensus.length > 0)
    byRater.set(
      'consensus',
      consensus.map((label) => label.value),
    );
  else {
    for (const label of labels) {
      const rater = `${label.annotatorId ?? 'unknown'}:${label.origin}`;
      byRater.set(rater, [...(byRater.get(rater) ?? []), label.value]);
    }
  }
  const shares = new Map<string, number>();
  for (const values of byRater.values()) {
    for (const value of values) shares.set(value, (shares.get(value) ?? 0) + 1 / byRater.size / values.length);
  }
  return [...shares.entries()].map(([value, share]) => ({ value, share })).sort((a, b) => b.share - a.share || a.value.localeCompare(b.value));
}
