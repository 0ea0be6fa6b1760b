import type Database from 'better-sqlite3';
import { DermError } from '../../common/errors.js';
import { blobToVector, storedVector, vectorToBlob } from '../embeddings/vector-codec.js';
import { writeTransaction } from '../library/write-transaction.js';
import type { VectorIndexesRow, VectorProjectionsRow } from '../library/table-rows.js';
import type { IndexCalibration } from './index-calibration.js';

/** What an index file was built from; the row lives in `vector_indexes` (migration 0005). */
export interface VectorIndexRecord {
  modelId: string;
  /** Relative to the library root. */
  file: string;
  fileSha256: string;
  space: 'cosine' | 'l2';
  modelDim: number;
  graphDim: number;
  projectionVersion: number | null;
  elementCount: number;
  idChecksum: string;
  deletedIds: number[];
  capacity: number;
  m: number;
  efConstruction: number;
  changeSeq: number;
  builtAt: string;
  updatedAt: string;
  /** What the last calibration chose and measured; null until the index has measured itself. */
  calibration: IndexCalibration | null;
}

export interface ProjectionRecord {
  modelId: string;
  version: number;
  inputDim: number;
  outputDim: number;
  sampleSize: number;
  explainedVariance: number;
  mean: Float32Array;
  components: Float32Array;
  fittedAt: string;
}

/** An image's stored embedding, decoded. */
export interface ImageVector {
  imageId: number;
  vector: Float32Array;
}

function idsToBlob(ids: number[]): Buffer {
  return vectorToUint32Blob(Uint32Array.from(ids));
}

function vectorToUint32Blob(values: Uint32Array): Buffer {
  const buffer = Buffer.alloc(values.length * 4);
  values.forEach((value, index) => buffer.writeUInt32LE(value, index * 4));
  return buffer;
}

function blobToIds(blob: Buffer): number[] {
  const ids: number[] = [];
  for (let offset = 0; offset + 4 <= blob.byteLength; offset += 4) ids.push(blob.readUInt32LE(offset));
  return ids;
}

function parseCalibration(text: string | null): IndexCalibration | null {
  if (text === null) return null;
  try {
    const value = JSON.parse(text) as IndexCalibration;
    // Calibrations stored before the sketch existed measured every candidate re-ranked exactly.
    if (typeof value.recall === 'number' && typeof value.candidates === 'number' && typeof value.ef === 'number')
      return { ...value, preselection: value.preselection ?? null };
  } catch {
    // An unreadable calibration is treated as none: the index measures itself again at its next use.
  }
  return null;
}

/**
 * Every SQLite read and write of the vector index: its bookkeeping row, the PCA projections, the
 * change log the triggers fill, and the embeddings it is built from (read in id order, in chunks,
 * so a 100k × 6144 library is never held in memory at once).
 */
export class VectorIndexRepository {
  private readonly byIdsStatement: Database.Statement<unknown[], { imageId: number; vector: Buffer }>;

  constructor(private readonly db: Database.Database) {
    this.byIdsStatement = db.prepare<unknown[], { imageId: number; vector: Buffer }>(
      `SELECT e.image_id AS imageId, e.vector AS vector FROM embeddings e JOIN live_images i ON i.id = e.image_id
       WHERE e.model_id = ? AND e.image_id IN (SELECT value FROM json_each(?))`,
    );
  }

  record(modelId: string): VectorIndexRecord | undefined {
    const row = this.db.prepare<unknown[], VectorIndexesRow>('SELECT * FROM vector_indexes WHERE model_id = ?').get(modelId);
    if (!row) return undefined;
    return {
      // The row was found by this key, so it is the key (the column's type allows NULL; the WHERE does not).
      modelId,
      file: row.file,
      fileSha256: row.file_sha256,
      space: row.space,
      modelDim: row.model_dim,
      graphDim: row.graph_dim,
      projectionVersion: row.projection_version,
      elementCount: row.element_count,
      idChecksum: row.id_checksum,
      deletedIds: blobToIds(row.deleted_ids),
      capacity: row.capacity,
      m: row.m,
      efConstruction: row.ef_construction,
      changeSeq: row.change_seq,
      builtAt: row.built_at,
      updatedAt: row.updated_at,
      calibration: parseCalibration(row.calibration),
    };
  }

  /** The sha256 of the file the model's index record names, or null: the per-query freshness check, without reading the record's id lists. */
  recordedFileSha256(modelId: string): string | null {
    return this.db.prepare<[string], { sha: string }>('SELECT file_sha256 AS sha FROM vector_indexes WHERE model_id = ?').get(modelId)?.sha ?? null;
  }

  /** Records a freshly written file and drops the change-log entries it already contains, atomically. */
  saveRecord(record: VectorIndexRecord): void {
    writeTransaction(this.db, () => {
      this.db
        .prepare(
          `INSERT INTO vector_indexes (model_id, file, file_sha256, space, model_dim, graph_dim, projection_version, element_count, id_checksum,
             deleted_ids, capacity, m, ef_construction, change_seq, built_at, updated_at, calibration)
           VALUES (@modelId, @file, @fileSha256, @space, @modelDim, @graphDim, @projectionVersion, @elementCount, @idChecksum,
             @deletedIds, @capacity, @m, @efConstruction, @changeSeq, @builtAt, @updatedAt, @calibration)
           ON CONFLICT(model_id) DO UPDATE SET file = excluded.file, file_sha256 = excluded.file_sha256, space = excluded.space,
             model_dim = excluded.model_dim, graph_dim = excluded.graph_dim, projection_version = excluded.projection_version,
             element_count = excluded.element_count, id_checksum = excluded.id_checksum, deleted_ids = excluded.deleted_ids,
             capacity = excluded.capacity, m = excluded.m, ef_construction = excluded.ef_construction, change_seq = excluded.change_seq,
             built_at = excluded.built_at, updated_at = excluded.updated_at, calibration = excluded.calibration`,
        )
        .run({ ...record, deletedIds: idsToBlob(record.deletedIds), calibration: record.calibration ? JSON.stringify(record.calibration) : null });
      this.db.prepare('DELETE FROM vector_index_changes WHERE model_id = ? AND seq <= ?').run(record.modelId, record.changeSeq);
    });
  }

  deleteRecord(modelId: string): void {
    this.db.prepare('DELETE FROM vector_indexes WHERE model_id = ?').run(modelId);
  }

  /** Highest change-log sequence number for the model (0 when none). */
  lastChangeSeq(modelId: string): number {
    const row = this.db.prepare<unknown[], { seq: number | null }>('SELECT MAX(seq) AS seq FROM vector_index_changes WHERE model_id = ?').get(modelId)!;
    return row.seq ?? 0;
  }

  /** Image ids changed after `seq`, and the sequence number they run up to. */
  changesSince(modelId: string, seq: number): { imageIds: number[]; lastSeq: number } {
    const rows = this.db
      .prepare<unknown[], { seq: number; imageId: number }>(
        'SELECT seq, image_id AS imageId FROM vector_index_changes WHERE model_id = ? AND seq > ? ORDER BY seq',
      )
      .all(modelId, seq);
    const imageIds = [...new Set(rows.map((row) => row.imageId))];
    return { imageIds, lastSeq: rows.length > 0 ? rows[rows.length - 1]!.seq : seq };
  }

  /** Image ids (not deleted) that have an embedding for the model, ascending. */
  liveIds(modelId: string): number[] {
    return this.db
      .prepare<unknown[], { id: number }>(
        'SELECT e.image_id AS id FROM embeddings e JOIN live_images i ON i.id = e.image_id WHERE e.model_id = ? ORDER BY e.image_id',
      )
      .all(modelId)
      .map((row) => row.id);
  }

  /** Embeddings of the given images that exist and are not deleted, in no particular order. */
  vectors(modelId: string, imageIds: readonly number[]): ImageVector[] {
    if (imageIds.length === 0) return [];
    const rows = this.byIdsStatement.all(modelId, JSON.stringify(imageIds));
    return rows.map((row) => {
      const vector = storedVector(row.vector, row.imageId, modelId, this.db.name);
      return { imageId: row.imageId, vector };
    });
  }

  projection(modelId: string, version?: number): ProjectionRecord | undefined {
    const row =
      version === undefined
        ? this.db.prepare<unknown[], VectorProjectionsRow>('SELECT * FROM vector_projections WHERE model_id = ? ORDER BY version DESC LIMIT 1').get(modelId)
        : this.db.prepare<unknown[], VectorProjectionsRow>('SELECT * FROM vector_projections WHERE model_id = ? AND version = ?').get(modelId, version);
    if (!row) return undefined;
    const record: ProjectionRecord = {
      modelId: row.model_id,
      version: row.version,
      inputDim: row.input_dim,
      outputDim: row.output_dim,
      sampleSize: row.sample_size,
      explainedVariance: row.explained_variance,
      mean: blobToVector(row.mean),
      components: blobToVector(row.components),
      fittedAt: row.fitted_at,
    };
    if (record.mean.length !== record.inputDim || record.components.length !== record.inputDim * record.outputDim) {
      throw new DermError(
        'index-invalid',
        `The stored projection v${record.version} of model "${modelId}" has the wrong size; refit it with "dermws index rebuild --refit --model ${modelId}".`,
        {
          modelId,
        },
      );
    }
    return record;
  }

  /** Removes a projection version a calibration fitted but did not adopt (no index refers to it). */
  deleteProjection(modelId: string, version: number): void {
    this.db.prepare('DELETE FROM vector_projections WHERE model_id = ? AND version = ?').run(modelId, version);
  }

  /** Stores a new projection as the next version and returns it. */
  addProjection(projection: Omit<ProjectionRecord, 'version' | 'fittedAt'>): ProjectionRecord {
    return writeTransaction(this.db, () => {
      const row = this.db
        .prepare<unknown[], { version: number }>('SELECT COALESCE(MAX(version), 0) AS version FROM vector_projections WHERE model_id = ?')
        .get(projection.modelId)!;
      const record: ProjectionRecord = { ...projection, version: row.version + 1, fittedAt: new Date().toISOString() };
      this.db
        .prepare(
          `INSERT INTO vector_projections (model_id, version, input_dim, output_dim, sample_size, explained_variance, mean, components, fitted_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          record.modelId,
          record.version,
          record.inputDim,
          record.outputDim,
          record.sampleSize,
          record.explainedVariance,
          vectorToBlob(record.mean),
          vectorToBlob(record.components),
          record.fittedAt,
        );
      return record;
    });
  }
}
