import type Database from 'better-sqlite3';
import { DermError } from '../../common/errors.js';
import { blobToVector } from './vector-codec.js';
import type { EmbeddingMatrix } from './embeddings.repository.js';

/**
 * Reads an even sample of a model's embeddings without touching the rest: the ids come from the
 * embeddings primary key alone (no vector is read), then only the sampled rows' vectors are fetched.
 * The map uses it so a 100k library costs the sample, not the whole 6144-d matrix.
 */
export class EmbeddingSampleRepository {
  constructor(private readonly db: Database.Database) {}

  /** Ids of the images (not deleted) that have an embedding of the model, ascending. */
  liveImageIds(modelId: string): number[] {
    return this.db
      .prepare<unknown[], { id: number }>(
        'SELECT e.image_id AS id FROM embeddings e JOIN live_images i ON i.id = e.image_id WHERE e.model_id = ? ORDER BY e.image_id',
      )
      .all(modelId)
      .map((row) => row.id);
  }

  /** At most `limit` ids spread evenly over the library's order (reproducible: the same library gives the same sample). */
  evenSample(modelId: string, limit: number): { total: number; imageIds: number[] } {
    const ids = this.liveImageIds(modelId);
    const stride = Math.max(1, ids.length / limit);
    const sample: number[] = [];
    for (let position = 0; position < ids.length && sample.length < limit; position = Math.floor(sample.length * stride)) sample.push(ids[position]!);
    return { total: ids.length, imageIds: sample };
  }

  /** The vectors of these images, in the order given, as one matrix. */
  rows(modelId: string, imageIds: readonly number[]): EmbeddingMatrix {
    const model = this.db.prepare<unknown[], { dim: number }>('SELECT dim FROM embedding_models WHERE id = ?').get(modelId);
    if (!model) throw new DermError('not-found', `The library has no embeddings for model "${modelId}".`, { modelId });
    const position = new Map(imageIds.map((id, index) => [id, index]));
    const data = new Float32Array(imageIds.length * model.dim);
    const statement = this.db.prepare<unknown[], { imageId: number; vector: Buffer }>(
      'SELECT e.image_id AS imageId, e.vector AS vector FROM embeddings e WHERE e.model_id = ? AND e.image_id IN (SELECT value FROM json_each(?))',
    );
    let found = 0;
    for (const row of statement.iterate(modelId, JSON.stringify(imageIds))) {
      if (row.vector.byteLength !== model.dim * 4) {
        throw new DermError(
          'embeddings-invalid',
          `The embedding of image ${row.imageId} for model "${modelId}" has ${row.vector.byteLength / 4} values; expected ${model.dim}.`,
        );
      }
      data.set(blobToVector(row.vector), position.get(row.imageId)! * model.dim);
      found++;
    }
    if (found !== imageIds.length)
      throw new DermError('not-found', `${imageIds.length - found} of the sampled images lost their embedding while the map was drawn; draw it again.`, {
        modelId,
      });
    return { modelId, dim: model.dim, imageIds: [...imageIds], data };
  }
}
