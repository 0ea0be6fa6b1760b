import type { z } from 'zod';
import type { probeLabelKindSchema, probeRunStatusSchema } from '../../common/contract.js';
import type Database from 'better-sqlite3';
import { blobToVector, vectorToBlob } from '../embeddings/vector-codec.js';
import type { ProbeSettings } from './probe-evaluation.js';
import type { ProbeMetrics } from './probe-metrics.types.js';
import type { LabelRow } from './target-resolution.js';
import { writeTransaction } from '../library/write-transaction.js';
import type { ProbePredictionsRow, ProbeRunsRow } from '../library/table-rows.js';

export type ProbeLabelKind = z.infer<typeof probeLabelKindSchema>;
export type ProbeRunStatus = z.infer<typeof probeRunStatusSchema>;

export interface ProbeManifest {
  modelId: string;
  modelSha256: string;
  embeddingDim: number;
  labelKind: ProbeLabelKind;
  labels: string[];
  filters: {
    minConfidence: number | null;
    labelResolution: string;
    population: string;
  };
  seed: number;
  folds: number;
  /** The settings the run was evaluated with, as recorded. */
  hyperparameters: Pick<
    ProbeSettings,
    'l2' | 'classWeights' | 'maxIterations' | 'tolerance' | 'bootstrapReplicates' | 'curveSeeds' | 'minGroupCases' | 'minClassCases' | 'repeats'
  > & {
    /** The solver, in words (with its preconditioner when it had one). */
    solver: string;
    /** Case fractions of the data-efficiency curve, ending with 1 (the cross-validation itself). */
    curveFractions: number[];
  };
  appVersion: string;
  population: {
    images: number;
    cases: number;
    /** Labelled images left out because they have no embedding for the model. */
    labelledWithoutEmbedding: number;
    positives: Record<string, number>;
    unknown: Record<string, number>;
  };
  /** Embedded images that receive a final-model prediction. */
  predictedImages: number;
}

export interface ProbeRunRecord {
  id: number;
  createdAt: string;
  finishedAt: string | null;
  status: ProbeRunStatus;
  modelId: string;
  modelSha256: string;
  labelKind: ProbeLabelKind;
  labels: string[];
  seed: number;
  folds: number;
  appVersion: string;
  manifest: ProbeManifest;
  metrics: ProbeMetrics | null;
  error: string | null;
}

export interface StoredProbeModel {
  weights: Float32Array;
  offsets: number[];
}

/** One population image of a run as its evaluation saw it: the fold, and per label the truth and out-of-fold probability. */
export interface ProbeOutOfFoldImage {
  imageId: number;
  groupKey: string;
  fold: number;
  /** Per label, in the run's label order: 1, 0, or null when unknown for this image. */
  truths: Array<0 | 1 | null>;
  probabilities: number[];
}

/** An out-of-fold row with what identifies the image outside this library. */
export interface ExportedOutOfFoldImage extends ProbeOutOfFoldImage {
  fileSha256: string;
  relativePath: string | null;
  originalPath: string;
}

/** A probe_predictions row of one run, as `SELECT image_id AS imageId, label, probability` returns it. */
export interface ProbePredictionRow extends Pick<ProbePredictionsRow, 'label' | 'probability'> {
  imageId: ProbePredictionsRow['image_id'];
}

/** Every read the probes need from the library (labels, cases, metadata) and every write of probe runs. */
export class ProbesRepository {
  constructor(private readonly db: Database.Database) {}

  /** Current labels of a kind on images that are not deleted. */
  currentLabels(kind: string): LabelRow[] {
    return this.db
      .prepare<unknown[], LabelRow>(
        `SELECT l.image_id AS imageId, l.value AS value, l.confidence AS confidence, l.origin AS origin
         FROM labels l JOIN live_images i ON i.id = l.image_id
         WHERE l.kind = ? AND l.superseded_at IS NULL
         ORDER BY l.image_id, l.id`,
      )
      .all(kind);
  }

  /** Quality flags set by a person (image_flags with source 'manual') on images that are not deleted. */
  manualImageFlags(): Array<{ imageId: number; flag: string }> {
    return this.db
      .prepare<unknown[], { imageId: number; flag: string }>(
        `SELECT f.image_id AS imageId, f.flag AS flag FROM image_flags f JOIN live_images i ON i.id = f.image_id
         WHERE f.source = 'manual' ORDER BY f.image_id, f.flag`,
      )
      .all();
  }

  /**
   * image id → what identifies an image independently of the order it was imported in: its case's
   * key (text, null without a case) and the sha256 of its file, for images not deleted.
   */
  imageKeys(): Map<number, { caseKey: string | null; fileSha256: string }> {
    const rows = this.db
      .prepare<unknown[], { id: number; caseKey: string | null; fileSha256: string }>(
        'SELECT i.id AS id, c.case_key AS caseKey, i.file_sha256 AS fileSha256 FROM live_images i LEFT JOIN cases c ON c.id = i.case_id',
      )
      .all();
    return new Map(rows.map((row) => [row.id, { caseKey: row.caseKey, fileSha256: row.fileSha256 }]));
  }

  /** image id → value of one metadata key. */
  metadataValues(key: string): Map<number, string> {
    const rows = this.db.prepare<unknown[], { imageId: number; value: string }>('SELECT image_id AS imageId, value FROM image_metadata WHERE key = ?').all(key);
    return new Map(rows.map((row) => [row.imageId, row.value]));
  }

  /** Embeddings of a model stored from a different model file than the current one (left over from before a re-embed). */
  staleEmbeddings(modelId: string, sha256: string): number {
    return this.db.prepare<unknown[], { n: number }>('SELECT COUNT(*) AS n FROM embeddings WHERE model_id = ? AND model_sha256 != ?').get(modelId, sha256)!.n;
  }

  insertRun(run: { createdAt: string; manifest: ProbeManifest }): number {
    const { manifest } = run;
    return this.db
      .prepare(
        `INSERT INTO probe_runs (created_at, model_id, model_sha256, label_kind, labels, status, seed, folds, hyperparameters, filters, app_version, manifest)
         VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        run.createdAt,
        manifest.modelId,
        manifest.modelSha256,
        manifest.labelKind,
        JSON.stringify(manifest.labels),
        manifest.seed,
        manifest.folds,
        JSON.stringify(manifest.hyperparameters),
        JSON.stringify(manifest.filters),
        manifest.appVersion,
        JSON.stringify(manifest),
      ).lastInsertRowid as number;
  }

  /** Stores the evaluation, the final model and its predictions in one transaction. */
  completeRun(
    runId: number,
    result: {
      metrics: ProbeMetrics;
      model: StoredProbeModel;
      predictions: ProbePredictionRow[];
      outOfFold: ProbeOutOfFoldImage[];
      labels: string[];
      finishedAt: string;
    },
  ): void {
    const insert = this.db.prepare('INSERT INTO probe_predictions (run_id, image_id, label, probability) VALUES (?, ?, ?, ?)');
    const insertFold = this.db.prepare('INSERT INTO probe_folds (run_id, image_id, group_key, fold) VALUES (?, ?, ?, ?)');
    const insertOutOfFold = this.db.prepare('INSERT INTO probe_out_of_fold (run_id, image_id, label, truth, probability) VALUES (?, ?, ?, ?, ?)');
    writeTransaction(this.db, () => {
      this.db.prepare('DELETE FROM probe_predictions WHERE run_id = ?').run(runId);
      for (const row of result.predictions) insert.run(runId, row.imageId, row.label, row.probability);
      for (const image of result.outOfFold) {
        insertFold.run(runId, image.imageId, image.groupKey, image.fold);
        result.labels.forEach((label, index) => insertOutOfFold.run(runId, image.imageId, label, image.truths[index], image.probabilities[index]));
      }
      this.db
        .prepare("UPDATE probe_runs SET status = 'completed', finished_at = ?, metrics = ?, final_weights = ?, final_offsets = ? WHERE id = ?")
        .run(result.finishedAt, JSON.stringify(result.metrics), vectorToBlob(result.model.weights), JSON.stringify(result.model.offsets), runId);
    });
  }

  endRun(runId: number, status: 'cancelled' | 'failed', finishedAt: string, error: string | null): void {
    this.db.prepare('UPDATE probe_runs SET status = ?, finished_at = ?, error = ? WHERE id = ?').run(status, finishedAt, error, runId);
  }

  run(runId: number): ProbeRunRecord | undefined {
    const row = this.db.prepare<unknown[], ProbeRunsRow>('SELECT * FROM probe_runs WHERE id = ?').get(runId);
    return row ? toRecord(row) : undefined;
  }

  runs(): ProbeRunRecord[] {
    return this.db.prepare<unknown[], ProbeRunsRow>('SELECT * FROM probe_runs ORDER BY id').all().map(toRecord);
  }

  model(runId: number): StoredProbeModel | undefined {
    const row = this.db
      .prepare<unknown[], { weights: Buffer | null; offsets: string | null }>(
        'SELECT final_weights AS weights, final_offsets AS offsets FROM probe_runs WHERE id = ?',
      )
      .get(runId);
    if (!row?.weights || !row.offsets) return undefined;
    return { weights: blobToVector(row.weights), offsets: JSON.parse(row.offsets) as number[] };
  }

  /** Upserts predictions (the final model applied to images embedded after the run, or again). */
  putPredictions(runId: number, rows: ProbePredictionRow[]): void {
    const upsert = this.db.prepare(
      'INSERT INTO probe_predictions (run_id, image_id, label, probability) VALUES (?, ?, ?, ?) ON CONFLICT(run_id, image_id, label) DO UPDATE SET probability = excluded.probability',
    );
    writeTransaction(this.db, () => {
      for (const row of rows) upsert.run(runId, row.imageId, row.label, row.probability);
    });
  }

  predictions(runId: number, imageIds?: number[]): ProbePredictionRow[] {
    if (imageIds) {
      const statement = this.db.prepare<unknown[], ProbePredictionRow>(
        'SELECT image_id AS imageId, label, probability FROM probe_predictions WHERE run_id = ? AND image_id = ? ORDER BY label',
      );
      return imageIds.flatMap((imageId) => statement.all(runId, imageId));
    }
    return this.db
      .prepare<unknown[], ProbePredictionRow>('SELECT image_id AS imageId, label, probability FROM probe_predictions WHERE run_id = ? ORDER BY image_id, label')
      .all(runId);
  }

  /**
   * The stored out-of-fold rows of a run with each image's file sha256 and paths, ordered by grouping
   * key and sha256 (the order the evaluation used), labels in the run's order.
   */
  outOfFold(runId: number, labels: string[]): ExportedOutOfFoldImage[] {
    const images = this.db
      .prepare<unknown[], Omit<ExportedOutOfFoldImage, 'truths' | 'probabilities'>>(
        `SELECT f.image_id AS imageId, f.group_key AS groupKey, f.fold AS fold, i.file_sha256 AS fileSha256, i.relative_path AS relativePath, i.original_path AS originalPath
         FROM probe_folds f JOIN images i ON i.id = f.image_id WHERE f.run_id = ?`,
      )
      .all(runId);
    const byImage = new Map<number, ExportedOutOfFoldImage>();
    for (const image of images) byImage.set(image.imageId, { ...image, truths: labels.map(() => null), probabilities: labels.map(() => Number.NaN) });
    const column = new Map(labels.map((label, index) => [label, index]));
    const cells = this.db
      .prepare<unknown[], { imageId: number; label: string; truth: 0 | 1 | null; probability: number }>(
        'SELECT image_id AS imageId, label, truth, probability FROM probe_out_of_fold WHERE run_id = ?',
      )
      .iterate(runId);
    for (const cell of cells) {
      const image = byImage.get(cell.imageId);
      const index = column.get(cell.label);
      if (!image || index === undefined) continue;
      image.truths[index] = cell.truth;
      image.probabilities[index] = cell.probability;
    }
    // Plain code-unit comparison: the same order on every machine and locale.
    return [...byImage.values()].sort((a, b) => compareText(a.groupKey, b.groupKey) || compareText(a.fileSha256, b.fileSha256));
  }

  predictionCount(runId: number): number {
    return this.db.prepare<unknown[], { n: number }>('SELECT COUNT(*) AS n FROM probe_predictions WHERE run_id = ?').get(runId)!.n;
  }
}

export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function toRecord(row: ProbeRunsRow): ProbeRunRecord {
  return {
    id: row.id,
    createdAt: row.created_at,
    finishedAt: row.finished_at,
    status: row.status,
    modelId: row.model_id,
    modelSha256: row.model_sha256,
    labelKind: row.label_kind,
    labels: JSON.parse(row.labels) as string[],
    seed: row.seed,
    folds: row.folds,
    appVersion: row.app_version,
    manifest: JSON.parse(row.manifest) as ProbeManifest,
    metrics: row.metrics ? (JSON.parse(row.metrics) as ProbeMetrics) : null,
    error: row.error,
  };
}
