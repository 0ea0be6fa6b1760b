import fs from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import type { embedReportSchema } from '../../common/contract.js';
import { DermError } from '../../common/errors.js';
import { ProgressReporter, type JobControl } from '../jobs/job.js';
import type { EncoderRuntime } from '../models/encoder-runtime.js';
import { preprocessingRecord } from '../models/manifest-file.js';
import type { ModelRegistry } from '../models/model-registry.js';
import { resizeForModel, valuesPerImage, writeNormalised, type ImageSource, type RawPixels } from '../models/preprocess.js';
import type { EmbeddingsRepository } from './embeddings.repository.js';
import { runEmbeddingPipeline } from './embedding-pipeline.js';
import { importEmbeddingsFile, type ImportEmbeddingsOptions, type ImportEmbeddingsResult } from './embeddings-import.js';

export interface EmbedLibraryOptions extends JobControl {
  /** Model id; default: the registry's default model. */
  modelId?: string;
  /** Images per inference batch; default: chosen for the provider that runs. */
  batchSize?: number;
}

export type EmbedLibraryResult = z.infer<typeof embedReportSchema>;
export type EmbedFailure = EmbedLibraryResult['failed'][number];

/**
 * Turns library images into embeddings with an ONNX encoder running in a worker thread, and imports
 * embeddings computed elsewhere. One encoder worker per model is kept until `close()`.
 */
export class EmbeddingService {
  private readonly runtimes = new Map<string, Promise<EncoderRuntime>>();

  constructor(
    private readonly repository: EmbeddingsRepository,
    private readonly registry: ModelRegistry,
    private readonly libraryRoot: string,
  ) {}

  /** The running encoder for a model (started on first use, then reused). */
  async encoder(modelId?: string): Promise<EncoderRuntime> {
    const stored = modelId === undefined ? undefined : this.repository.model(modelId);
    if (stored?.source === 'imported' && !(await this.registry.list()).models.some((model) => model.manifest.id === modelId)) {
      throw new DermError(
        'not-found',
        `The embeddings of "${modelId}" were imported from ${String((stored.preprocessing as { importedFrom?: string } | null)?.importedFrom ?? 'a file')}; there is no ONNX encoder for it, so new images cannot be embedded with it. Add the model with \`dermws models add\` or import their embeddings too.`,
        { modelId },
      );
    }
    const model = await this.registry.get(modelId);
    const id = model.manifest.id;
    let runtime = this.runtimes.get(id);
    if (runtime && !(await runtime.then((started) => started.usable).catch(() => false))) {
      // The worker died (or failed to start): start a fresh one rather than failing every later call.
      this.runtimes.delete(id);
      runtime = undefined;
    }
    if (!runtime) {
      runtime = this.registry.start(model);
      this.runtimes.set(id, runtime);
      runtime.catch(() => this.runtimes.delete(id));
    }
    return runtime;
  }

  /**
   * Embeds every image (not deleted) that has no embedding from this model file yet. Work is committed
   * per batch in one transaction, so a job that is cancelled, crashes or is killed resumes where it
   * stopped when run again, without duplicates. Decoding and preprocessing of the next batch (sharp,
   * on libuv's threads) overlaps inference of the current one (in the encoder's worker thread). A file
   * that cannot be read is a per-image failure; the job goes on.
   */
  async embedLibrary(options: EmbedLibraryOptions = {}): Promise<EmbedLibraryResult> {
    const runtime = await this.encoder(options.modelId);
    const { manifest } = runtime.model;
    const modelId = manifest.id;
    if (options.batchSize !== undefined && (!Number.isInteger(options.batchSize) || options.batchSize < 1 || options.batchSize > 1024)) {
      throw new DermError('invalid-input', `batchSize must be a whole number from 1 to 1024; got ${options.batchSize}.`, { field: 'batchSize' });
    }
    const batchSize = options.batchSize ?? runtime.batchSize;
    this.registerOnnxModel(runtime);

    const pending = this.repository.imagesNeedingEmbedding(modelId, runtime.sha256);
    const skipped = this.repository.activeImageCount() - pending.length;
    const progress = new ProgressReporter('embed', pending.length, options.onProgress);
    const result: EmbedLibraryResult = {
      status: 'success',
      modelId,
      total: pending.length,
      embedded: 0,
      skipped,
      failed: [],
      provider: runtime.provider,
      batchSize,
    };
    if (runtime.fallbackReason !== undefined) result.fallbackReason = runtime.fallbackReason;
    progress.report(0, undefined, true);

    const batches: number[][] = [];
    for (let start = 0; start < pending.length; start += batchSize) batches.push(pending.slice(start, start + batchSize));
    let done = 0;
    const dim = manifest.output.dim;
    const { cancelled } = await runEmbeddingPipeline(
      runtime,
      batches,
      (imageIds) => this.repository.imageSources(imageIds).map((source) => ({ key: source.imageId, file: this.readablePath(source) })),
      (batch) => {
        if (batch.keys.length > 0) {
          this.repository.put(
            modelId,
            runtime.sha256,
            batch.keys.map((imageId, slot) => ({ imageId, vector: batch.vectors.subarray(slot * dim, (slot + 1) * dim) })),
          );
        }
        result.embedded += batch.keys.length;
        result.failed.push(...batch.failed.map((failure) => ({ imageId: failure.key, path: failure.file, reason: failure.reason })));
        done += batch.keys.length + batch.failed.length;
        progress.report(done, batch.lastFile);
      },
      options.signal,
    );
    if (cancelled) result.status = 'cancelled';
    if (result.status === 'success' && result.failed.length > 0) result.status = 'partial';
    progress.report(done, undefined, true);
    return result;
  }

  /** The file an image is read from: its managed copy when that exists, else the original. */
  readablePath(source: { originalPath: string; managedPath: string | null }): string {
    if (source.managedPath) {
      const managed = path.resolve(this.libraryRoot, source.managedPath);
      if (fs.existsSync(managed)) return managed;
    }
    return source.originalPath;
  }

  private registerOnnxModel(runtime: EncoderRuntime): void {
    const { manifest } = runtime.model;
    const existing = this.repository.model(manifest.id);
    if (existing && existing.source !== 'onnx') {
      throw new DermError(
        'conflict',
        `The library holds imported embeddings under the model id "${manifest.id}"; an ONNX model with the same id would mix two models. Rename one of them.`,
        { modelId: manifest.id },
      );
    }
    this.repository.registerModel({
      id: manifest.id,
      displayName: manifest.displayName,
      dim: manifest.output.dim,
      sha256: runtime.sha256,
      source: 'onnx',
      preprocessing: preprocessingRecord(manifest),
    });
  }

  /** Models with embeddings in this library (ONNX-made and imported) and how many images each covers. */
  storedModels(): ReturnType<EmbeddingsRepository['models']> {
    return this.repository.models();
  }

  /** Decodes and embeds a file that is not in the library (e.g. a query photo for search). */
  async embedImageFile(file: string, modelId?: string): Promise<Float32Array> {
    return this.embedSource({ file }, modelId);
  }

  /** Embeds pixels that are already decoded (orientation applied), skipping a second decode. */
  async embedPixels(pixels: RawPixels, modelId?: string): Promise<Float32Array> {
    return this.embedSource({ pixels }, modelId);
  }

  private async embedSource(source: ImageSource, modelId?: string): Promise<Float32Array> {
    const runtime = await this.encoder(modelId);
    const input = runtime.model.manifest.input;
    const rgb = await resizeForModel(source, input);
    const tensor = new Float32Array(valuesPerImage(input));
    writeNormalised(rgb, input, tensor, 0);
    return runtime.run(tensor, 1);
  }

  /** Stores embeddings computed elsewhere (.npz keyed by image path, or .npy matrix + CSV of paths). */
  async importEmbeddings(options: ImportEmbeddingsOptions): Promise<ImportEmbeddingsResult> {
    return importEmbeddingsFile(this.repository, options);
  }

  /** Removes a model that holds no embeddings; one with embeddings is refused (see EmbeddingsRepository.removeModel). */
  removeModel(modelId: string): { id: string; source: 'onnx' | 'imported' } {
    return this.repository.removeModel(modelId);
  }

  async close(): Promise<void> {
    const runtimes = [...this.runtimes.values()];
    this.runtimes.clear();
    await Promise.all(runtimes.map((runtime) => runtime.then((started) => started.close()).catch(() => undefined)));
  }
}
