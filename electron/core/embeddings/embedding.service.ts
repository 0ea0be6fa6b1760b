import fs from 'node:fs';
import path from 'node:path';
import { DermError } from '../../common/errors.js';
import { ProgressReporter, type JobControl, type JobStatus } from '../jobs/job.js';
import type { EncoderRuntime } from '../models/encoder-runtime.js';
import type { ExecutionProvider } from '../models/execution-providers.js';
import { preprocessingRecord } from '../models/manifest-file.js';
import type { ModelRegistry } from '../models/model-registry.js';
import { resizeForModel, valuesPerImage, writeNormalised, type ImageSource, type RawPixels } from '../models/preprocess.js';
import type { EmbeddingsRepository } from './embeddings.repository.js';
import { importEmbeddingsFile, type ImportEmbeddingsOptions, type ImportEmbeddingsResult } from './embeddings-import.js';

export interface EmbedLibraryOptions extends JobControl {
  /** Model id; default: the registry's default model. */
  modelId?: string;
  /** Images per inference batch; default: chosen for the provider that runs. */
  batchSize?: number;
}

export interface EmbedFailure {
  imageId: number;
  path: string;
  reason: string;
}

export interface EmbedLibraryResult {
  status: JobStatus;
  modelId: string;
  /** Images needing an embedding when the job started. */
  total: number;
  embedded: number;
  /** Images that already had an embedding from this model file. */
  skipped: number;
  failed: EmbedFailure[];
  provider: ExecutionProvider;
  fallbackReason?: string;
  batchSize: number;
}

interface PreparedBatch {
  imageIds: number[];
  tensor: Float32Array;
  failed: EmbedFailure[];
  lastPath: string | undefined;
}

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
    let next: Promise<PreparedBatch> | undefined = batches.length > 0 ? this.prepareBatch(batches[0]!, runtime) : undefined;
    try {
      for (let index = 0; index < batches.length; index++) {
        const prepared = await next!;
        next = undefined;
        if (options.signal?.aborted) {
          result.status = 'cancelled';
          break;
        }
        if (index + 1 < batches.length) next = this.prepareBatch(batches[index + 1]!, runtime);
        if (prepared.imageIds.length > 0) {
          const vectors = await runtime.run(prepared.tensor, prepared.imageIds.length);
          const dim = manifest.output.dim;
          this.repository.put(
            modelId,
            runtime.sha256,
            prepared.imageIds.map((imageId, slot) => ({ imageId, vector: vectors.subarray(slot * dim, (slot + 1) * dim) })),
          );
        }
        result.embedded += prepared.imageIds.length;
        result.failed.push(...prepared.failed);
        done += prepared.imageIds.length + prepared.failed.length;
        progress.report(done, prepared.lastPath);
      }
    } finally {
      // A batch prepared ahead of a cancel or an error is discarded; nothing of it was stored.
      await next?.catch(() => undefined);
    }
    if (result.status === 'success' && result.failed.length > 0) result.status = 'partial';
    progress.report(done, undefined, true);
    return result;
  }

  /** Decodes and preprocesses one batch; images that cannot be read are returned as failures. */
  private async prepareBatch(imageIds: number[], runtime: EncoderRuntime): Promise<PreparedBatch> {
    const input = runtime.model.manifest.input;
    const sources = this.repository.imageSources(imageIds);
    const decoded = await Promise.all(
      sources.map(async (source) => {
        const file = this.readablePath(source);
        try {
          if (!fs.existsSync(file)) throw new Error('the file no longer exists');
          return { imageId: source.imageId, file, rgb: await resizeForModel({ file }, input) };
        } catch (error) {
          return { imageId: source.imageId, file, reason: error instanceof DermError ? error.message : `${file}: ${(error as Error).message}` };
        }
      }),
    );
    const ok = decoded.filter((entry): entry is { imageId: number; file: string; rgb: Buffer } => 'rgb' in entry);
    const tensor = new Float32Array(ok.length * valuesPerImage(input));
    ok.forEach((entry, slot) => writeNormalised(entry.rgb, input, tensor, slot));
    const failed = decoded.filter((entry) => 'reason' in entry).map((entry) => ({ imageId: entry.imageId, path: entry.file, reason: (entry as { reason: string }).reason }));
    return { imageIds: ok.map((entry) => entry.imageId), tensor, failed, lastPath: decoded.at(-1)?.file };
  }

  private readablePath(source: { originalPath: string; managedPath: string | null }): string {
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
