import type { Worker } from 'node:worker_threads';
import { DermError, type SerializedError } from '../../common/errors.js';
import { siblingModule, startWorker } from '../jobs/worker-threads.js';
import type { EncoderReply, EncoderRequest } from './encoder-protocol.js';
import type { GraphValue, ProviderAttempt } from './encoder-session.js';
import { defaultBatchSize, providerOrder, providersFromEnvironment, type ExecutionProvider } from './execution-providers.js';
import { checkGraphAgainstManifest } from './graph-contract.js';
import type { ManifestLocation } from './manifest-file.js';
import { sha256OfFile } from '../runtime/file-hash.js';
import { inputDims, valuesPerImage } from './preprocess.js';

export interface EncoderRuntimeOptions {
  /** Providers to try in order; default: the platform's order (or DERMWS_EXECUTION_PROVIDERS). */
  providers?: ExecutionProvider[];
  /** Skip the sha256 check (only for files just hashed by the caller). */
  knownSha256?: string;
}

function toDermError(error: SerializedError): DermError {
  return new DermError(error.code, error.message, error.details);
}

/** How long a closing encoder may take to finish its run in flight and release its session before it is terminated. */
const encoderCloseGraceMs = 60_000;
/**
 * One encoder model loaded in its own worker thread. `run` sends a preprocessed batch tensor and
 * resolves with `count × dim` embedding values. Before anything runs, the file's sha256 and the graph's
 * declared inputs and outputs are checked against the manifest.
 */
export class EncoderRuntime {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (data: Float32Array) => void; reject: (error: unknown) => void; count: number }>();
  private failure: DermError | undefined;
  private closed = false;

  private constructor(
    private readonly worker: Worker,
    readonly model: ManifestLocation,
    readonly sha256: string,
    readonly provider: ExecutionProvider,
    readonly fallbackReason: string | undefined,
    readonly attempts: ProviderAttempt[],
    readonly inputs: GraphValue[],
    readonly outputs: GraphValue[],
    /** Images per run: the provider's default, or the graph's fixed batch size. */
    readonly batchSize: number,
    /** Set when the graph only accepts batches of exactly this many images. */
    readonly fixedBatchSize: number | undefined,
  ) {
    worker.on('message', (message: EncoderReply) => this.onMessage(message));
    worker.on('error', (error) =>
      this.fail(new DermError('model-failed', `The encoder worker for ${model.onnxPath} failed: ${error.message}`, { file: model.onnxPath })),
    );
    worker.on('exit', (code) => {
      if (!this.closed)
        this.fail(
          new DermError('model-failed', `The encoder worker for ${model.onnxPath} stopped unexpectedly (exit code ${code}).`, { file: model.onnxPath }),
        );
    });
  }

  static async start(model: ManifestLocation, options: EncoderRuntimeOptions = {}): Promise<EncoderRuntime> {
    const { manifest, onnxPath, manifestPath } = model;
    let sha256 = options.knownSha256;
    if (sha256 === undefined) {
      try {
        sha256 = await sha256OfFile(onnxPath);
      } catch (error) {
        throw new DermError('model-invalid', `The model file ${onnxPath} (named by ${manifestPath}) cannot be read: ${(error as Error).message}`, {
          file: onnxPath,
        });
      }
    }
    if (sha256 !== manifest.sha256) {
      throw new DermError(
        'model-invalid',
        `The model file ${onnxPath} has sha256 ${sha256}, but its manifest ${manifestPath} declares ${manifest.sha256}: the file was changed, truncated or replaced.`,
        { file: onnxPath, manifest: manifestPath },
      );
    }
    const providers = options.providers ?? providersFromEnvironment(process.env.DERMWS_EXECUTION_PROVIDERS) ?? providerOrder();
    const worker = startWorker(siblingModule(import.meta.url, 'encoder.worker'));
    const loaded = await new Promise<Extract<EncoderReply, { type: 'loaded' }>>((resolve, reject) => {
      const onMessage = (message: EncoderReply) => {
        cleanup();
        if (message.type === 'loaded') resolve(message);
        else if (message.type === 'error') reject(toDermError(message.error));
        else reject(new DermError('internal', `The encoder worker answered "${message.type}" to a load request.`));
      };
      const onError = (error: Error) => {
        cleanup();
        reject(new DermError('model-failed', `The encoder worker for ${onnxPath} could not start: ${error.message}`, { file: onnxPath }));
      };
      const cleanup = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      const request: EncoderRequest = { type: 'load', onnxPath, providers };
      worker.postMessage(request);
    }).catch(async (error: unknown) => {
      await worker.terminate();
      throw error;
    });
    let contract;
    try {
      contract = checkGraphAgainstManifest(loaded.inputs, loaded.outputs, manifest, model);
    } catch (error) {
      await worker.terminate();
      throw error;
    }
    const providerBatch = defaultBatchSize(loaded.provider);
    const batchSize = contract.fixedBatchSize ?? providerBatch;
    return new EncoderRuntime(
      worker,
      model,
      sha256,
      loaded.provider,
      loaded.fallbackReason,
      loaded.attempts,
      loaded.inputs,
      loaded.outputs,
      batchSize,
      contract.fixedBatchSize,
    );
  }

  /** False once the worker has died or the runtime was closed; a new one must be started. */
  get usable(): boolean {
    return !this.failure && !this.closed;
  }

  get dim(): number {
    return this.model.manifest.output.dim;
  }

  /**
   * Runs `count` images packed in `batch` (transferred to the worker: the caller must not reuse it).
   * Output values that are NaN or infinite, or the wrong number of them, are a model failure.
   */
  async run(batch: Float32Array, count: number): Promise<Float32Array> {
    const input = this.model.manifest.input;
    if (batch.length !== count * valuesPerImage(input)) {
      throw new DermError('internal', `A batch of ${count} images needs ${count * valuesPerImage(input)} values; got ${batch.length}.`);
    }
    const fixed = this.fixedBatchSize;
    if (fixed === undefined || fixed === count) return this.send(batch, count);
    // A graph with a fixed batch size gets exactly that many images: split larger batches, and pad a
    // short one by repeating its last image (the extra outputs are dropped).
    const perImage = valuesPerImage(input);
    const out = new Float32Array(count * this.dim);
    for (let start = 0; start < count; start += fixed) {
      const take = Math.min(fixed, count - start);
      const chunk = new Float32Array(fixed * perImage);
      chunk.set(batch.subarray(start * perImage, (start + take) * perImage));
      for (let slot = take; slot < fixed; slot++) chunk.copyWithin(slot * perImage, (take - 1) * perImage, take * perImage);
      const vectors = await this.send(chunk, fixed);
      out.set(vectors.subarray(0, take * this.dim), start * this.dim);
    }
    return out;
  }

  private send(batch: Float32Array, count: number): Promise<Float32Array> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new DermError('internal', `The encoder for ${this.model.onnxPath} is closed.`));
    const input = this.model.manifest.input;
    const id = this.nextId++;
    return new Promise<Float32Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, count });
      const request: EncoderRequest = {
        type: 'run',
        id,
        inputName: input.name,
        outputName: this.model.manifest.output.name,
        data: batch,
        dims: inputDims(input, count),
      };
      this.worker.postMessage(request, [batch.buffer as ArrayBuffer]);
    });
  }

  private onMessage(message: EncoderReply): void {
    if (message.type === 'loaded' || message.type === 'closed') return;
    const entry = message.id === undefined ? undefined : this.pending.get(message.id);
    if (!entry || message.id === undefined) return;
    this.pending.delete(message.id);
    if (message.type === 'error') {
      entry.reject(toDermError(message.error));
      return;
    }
    const { onnxPath } = this.model;
    const expected = entry.count * this.dim;
    if (message.data.length !== expected) {
      entry.reject(
        new DermError(
          'model-failed',
          `The model ${onnxPath} returned ${message.data.length} values with shape [${message.dims.join(', ')}] for ${entry.count} images; expected ${entry.count} × ${this.dim} = ${expected}.`,
          { file: onnxPath },
        ),
      );
      return;
    }
    for (let index = 0; index < message.data.length; index++) {
      if (!Number.isFinite(message.data[index]!)) {
        const image = Math.floor(index / this.dim);
        entry.reject(
          new DermError(
            'model-failed',
            `The model ${onnxPath} produced ${message.data[index]} at value ${index % this.dim} of image ${image + 1} in a batch: it outputs NaN or infinite values.`,
            {
              file: onnxPath,
            },
          ),
        );
        return;
      }
    }
    entry.resolve(message.data);
  }

  private fail(error: DermError): void {
    this.failure ??= error;
    for (const entry of this.pending.values()) entry.reject(error);
    this.pending.clear();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const entry of this.pending.values()) entry.reject(new DermError('cancelled', `The encoder for ${this.model.onnxPath} was closed.`));
    this.pending.clear();
    // The worker finishes the run in flight and releases its session before it stops: a thread ended
    // inside onnxruntime (mid-run or mid-release) aborts the whole process. A worker that does not answer
    // (it crashed, or a run never returns) is terminated after a grace period.
    const stopped = new Promise<void>((resolve) => {
      this.worker.once('exit', () => resolve());
      this.worker.on('message', (message: EncoderReply) => {
        if (message.type === 'closed') resolve();
      });
    });
    this.worker.postMessage({ type: 'close' } satisfies EncoderRequest);
    let grace: NodeJS.Timeout | undefined;
    const expired = new Promise<void>((resolve) => {
      grace = setTimeout(resolve, encoderCloseGraceMs);
      grace.unref();
    });
    await Promise.race([stopped, expired]);
    clearTimeout(grace);
    await this.worker.terminate();
  }
}
