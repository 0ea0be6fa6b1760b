import type Database from 'better-sqlite3';
import { DermError } from '../../common/errors.js';
import { blobToVector, firstNonFinite, storedVector, vectorToBlob } from './vector-codec.js';
import { writeTransaction } from '../library/write-transaction.js';
import type { EmbeddingModelsRow, ImagesRow, LiveImagesRow } from '../library/table-rows.js';

export interface EmbeddingModelRecord {
  id: string;
  displayName: string;
  dim: number;
  sha256: string;
  source: 'onnx' | 'imported';
  preprocessing: unknown;
  registeredAt: string;
}

/** A dense matrix of one model's embeddings: row i belongs to imageIds[i]. */
export interface EmbeddingMatrix {
  modelId: string;
  dim: number;
  imageIds: number[];
  /** Row-major, imageIds.length × dim. */
  data: Float32Array;
}

/** Every read and write of the `embedding_models` and `embeddings` tables. */
export class EmbeddingsRepository {
  constructor(private readonly db: Database.Database) {}

  registerModel(model: Omit<EmbeddingModelRecord, 'registeredAt'>): void {
    const existing = this.model(model.id);
    if (existing && existing.dim !== model.dim) {
      throw new DermError(
        'conflict',
        `Model "${model.id}" already has ${existing.dim}-d embeddings in this library; the new ones are ${model.dim}-d. Use another model id.`,
        { modelId: model.id },
      );
    }
    this.db
      .prepare(
        `INSERT INTO embedding_models (id, display_name, dim, sha256, source, preprocessing, registered_at)
         VALUES (@id, @displayName, @dim, @sha256, @source, @preprocessing, @registeredAt)
         ON CONFLICT(id) DO UPDATE SET display_name = excluded.display_name, sha256 = excluded.sha256,
           source = excluded.source, preprocessing = excluded.preprocessing`,
      )
      .run({ ...model, preprocessing: JSON.stringify(model.preprocessing ?? null), registeredAt: new Date().toISOString() });
  }

  /**
   * Registers an imported model and stores its embeddings in one transaction: a failure anywhere leaves
   * neither the model row nor any embedding, so a failed import never locks the model id.
   */
  registerAndPut(model: Omit<EmbeddingModelRecord, 'registeredAt'>, rows: Array<{ imageId: number; vector: ArrayLike<number> }>): void {
    writeTransaction(this.db, () => {
      this.registerModel(model);
      this.put(model.id, model.sha256, rows);
    });
  }

  /**
   * Removes a model that holds no embeddings (an import that matched no image, a model registered and
   * never used). A model with embeddings is refused, naming how many, so no embedding is ever lost here.
   */
  removeModel(id: string): { id: string; source: 'onnx' | 'imported' } {
    return writeTransaction(this.db, () => {
      const model = this.model(id);
      if (!model) {
        const known = this.db
          .prepare<unknown[], { id: string }>('SELECT id FROM embedding_models ORDER BY id')
          .all()
          .map((row) => row.id);
        throw new DermError('not-found', `The library has no model "${id}"${known.length ? ` (models: ${known.join(', ')})` : ''}.`, { modelId: id });
      }
      const held = this.db.prepare<unknown[], { n: number }>('SELECT COUNT(*) AS n FROM embeddings WHERE model_id = ?').get(id)!.n;
      if (held > 0) {
        throw new DermError(
          'conflict',
          `Model "${id}" holds ${held} embedding(s) (deleted images included); only a model with none can be removed, so nothing was removed.`,
          { modelId: id, embeddings: held },
        );
      }
      this.db.prepare('DELETE FROM embedding_models WHERE id = ?').run(id);
      return { id, source: model.source };
    });
  }

  model(id: string): EmbeddingModelRecord | undefined {
    const row = this.db.prepare<unknown[], EmbeddingModelsRow>('SELECT * FROM embedding_models WHERE id = ?').get(id);
    if (!row) return undefined;
    return {
      // The row was found by this key, so it is the key (the column's type allows NULL; the WHERE does not).
      id,
      displayName: row.display_name,
      dim: row.dim,
      sha256: row.sha256,
      source: row.source,
      preprocessing: row.preprocessing ? JSON.parse(row.preprocessing) : null,
      registeredAt: row.registered_at,
    };
  }

  models(): Array<EmbeddingModelRecord & { count: number }> {
    const rows = this.db
      .prepare<unknown[], { id: string; count: number }>(
        'SELECT m.id, COUNT(e.image_id) AS count FROM embedding_models m LEFT JOIN embeddings e ON e.model_id = m.id GROUP BY m.id ORDER BY m.id',
      )
      .all();
    return rows.map((row) => ({ ...this.model(row.id)!, count: row.count }));
  }

  /** Inserts or replaces embeddings in one transaction (the unit of work of the embed job). */
  put(modelId: string, modelSha256: string, rows: Array<{ imageId: number; vector: ArrayLike<number> }>): void {
    const insert = this.db.prepare(
      `INSERT INTO embeddings (image_id, model_id, model_sha256, dim, vector, created_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(model_id, image_id) DO UPDATE SET model_sha256 = excluded.model_sha256, dim = excluded.dim, vector = excluded.vector, created_at = excluded.created_at`,
    );
    // The last gate before the library: a NaN stored here would be indexed and break every search.
    for (const row of rows) {
      const bad = firstNonFinite(row.vector);
      if (bad >= 0) {
        throw new DermError(
          'embeddings-invalid',
          `The embedding of image ${row.imageId} for model "${modelId}" has ${row.vector[bad]} at value ${bad}; embeddings must be finite. Nothing of this batch was stored in ${this.db.name}.`,
          {
            imageId: row.imageId,
            modelId,
            file: this.db.name,
          },
        );
      }
    }
    const now = new Date().toISOString();
    writeTransaction(this.db, () => {
      for (const row of rows) insert.run(row.imageId, modelId, modelSha256, row.vector.length, vectorToBlob(row.vector), now);
    });
  }

  get(modelId: string, imageId: number): Float32Array | undefined {
    const row = this.db.prepare<unknown[], { vector: Buffer }>('SELECT vector FROM embeddings WHERE model_id = ? AND image_id = ?').get(modelId, imageId);
    return row ? blobToVector(row.vector) : undefined;
  }

  count(modelId: string): number {
    return this.db.prepare<unknown[], { n: number }>('SELECT COUNT(*) AS n FROM embeddings WHERE model_id = ?').get(modelId)!.n;
  }

  /** Image ids (not deleted) that have no embedding for the model yet, in id order. */
  imagesWithout(modelId: string, limit = -1): number[] {
    return this.db
      .prepare<unknown[], { id: number }>(
        'SELECT i.id FROM live_images i WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.model_id = ? AND e.image_id = i.id) ORDER BY i.id LIMIT ?',
      )
      .all(modelId, limit)
      .map((row) => row.id);
  }

  /**
   * Images (not deleted) that still need an embedding from this model file: none stored yet, or one
   * made by a different file under the same id (its sha256 differs), in id order.
   */
  imagesNeedingEmbedding(modelId: string, modelSha256: string): number[] {
    return this.db
      .prepare<unknown[], { id: number }>(
        'SELECT i.id FROM live_images i WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.model_id = ? AND e.image_id = i.id AND e.model_sha256 = ?) ORDER BY i.id',
      )
      .all(modelId, modelSha256)
      .map((row) => row.id);
  }

  /** Number of images (not deleted) in the library. */
  activeImageCount(): number {
    return this.db.prepare<unknown[], { n: number }>('SELECT COUNT(*) AS n FROM live_images').get()!.n;
  }

  /** Where each image's pixels can be read: the managed copy (relative to the library root) or the original file. */
  imageSources(imageIds: readonly number[]): Array<{ imageId: number; originalPath: string; managedPath: string | null; relativePath: string | null }> {
    const statement = this.db.prepare<unknown[], Pick<ImagesRow, 'id' | 'original_path' | 'managed_path' | 'relative_path'>>(
      'SELECT id, original_path, managed_path, relative_path FROM images WHERE id = ?',
    );
    const rows: Array<{ imageId: number; originalPath: string; managedPath: string | null; relativePath: string | null }> = [];
    for (const imageId of imageIds) {
      const row = statement.get(imageId);
      if (row) rows.push({ imageId: row.id, originalPath: row.original_path, managedPath: row.managed_path, relativePath: row.relative_path });
    }
    return rows;
  }

  /** Every image (not deleted) with the paths npz keys are matched against. */
  imagePaths(): Array<{ imageId: number; originalPath: string; relativePath: string | null }> {
    return this.db
      .prepare<unknown[], Pick<LiveImagesRow, 'id' | 'original_path' | 'relative_path'>>('SELECT id, original_path, relative_path FROM live_images ORDER BY id')
      .all()
      .map((row) => ({ imageId: row.id, originalPath: row.original_path, relativePath: row.relative_path }));
  }

  /** Ids of the images (not deleted) that have an embedding of the model, without reading the vectors. */
  matrixImageIds(modelId: string): number[] {
    return this.db
      .prepare<unknown[], { imageId: number }>(
        'SELECT e.image_id AS imageId FROM embeddings e JOIN live_images i ON i.id = e.image_id WHERE e.model_id = ? ORDER BY e.image_id',
      )
      .all(modelId)
      .map((row) => row.imageId);
  }

  /** All embeddings of a model for images not deleted (optionally only `imageIds`), in image-id order, as one matrix. */
  matrix(modelId: string, imageIds?: number[]): EmbeddingMatrix {
    const model = this.model(modelId);
    if (!model) throw new DermError('not-found', `The library has no embeddings for model "${modelId}".`, { modelId });
    const wanted = imageIds ? new Set(imageIds) : undefined;
    const total = this.count(modelId);
    const data = new Float32Array(total * model.dim);
    const ids: number[] = [];
    const statement = this.db.prepare<unknown[], { imageId: number; vector: Buffer }>(
      'SELECT e.image_id AS imageId, e.vector AS vector FROM embeddings e JOIN live_images i ON i.id = e.image_id WHERE e.model_id = ? ORDER BY e.image_id',
    );
    for (const row of statement.iterate(modelId)) {
      if (wanted && !wanted.has(row.imageId)) continue;
      if (row.vector.byteLength !== model.dim * 4) {
        throw new DermError(
          'embeddings-invalid',
          `The embedding of image ${row.imageId} for model "${modelId}" has ${row.vector.byteLength / 4} values; expected ${model.dim}.`,
        );
      }
      const vector = storedVector(row.vector, row.imageId, modelId, this.db.name);
      data.set(vector, ids.length * model.dim);
      ids.push(row.imageId);
    }
    return { modelId, dim: model.dim, imageIds: ids, data: data.subarray(0, ids.length * model.dim) };
  }
}
