import fs from 'node:fs';
import { DermError } from '../../common/errors.js';
import type { EncoderRuntime } from '../models/encoder-runtime.js';
import { resizeForModel, valuesPerImage, writeNormalised, type ImageSource } from '../models/preprocess.js';

/** One image to embed: its caller-side key, the file it is read from, and how its bytes are opened. */
export interface PipelineImage<K> {
  key: K;
  file: string;
  /**
   * Opens the image for decoding; default: the file itself, after checking it still exists. A caller
   * that must check the bytes first (a cluster shard verifying the plan's sha256) reads them here and
   * throws an Error whose message is the per-image failure reason.
   */
  open?: () => Promise<ImageSource>;
}

export interface PipelineFailure<K> {
  key: K;
  file: string;
  reason: string;
}

/** One embedded batch: `vectors` holds `keys.length × dim` values in key order. */
export interface PipelineBatch<K> {
  keys: K[];
  vectors: Float32Array;
  failed: PipelineFailure<K>[];
  lastFile: string | undefined;
}

interface PreparedBatch<K> {
  keys: K[];
  tensor: Float32Array;
  failed: PipelineFailure<K>[];
  lastFile: string | undefined;
}

/**
 * The one embedding pipeline, used by the library's embed job and by a cluster shard alike, so an
 * embedding made on a cluster node goes through the same decode, preprocessing, batching and
 * provider as one made on the desktop. Decoding and preprocessing of the next batch (sharp, on
 * libuv's threads) overlaps inference of the current one (in the encoder's worker thread). A file
 * that cannot be read is a per-image failure; the run goes on. `onBatch` commits each batch (the
 * unit of work); a cancel stops before the next batch is run. Returns true when cancelled.
 */
export async function runEmbeddingPipeline<K, B>(
  runtime: EncoderRuntime,
  batches: readonly B[],
  resolve: (batch: B) => PipelineImage<K>[],
  onBatch: (batch: PipelineBatch<K>) => void,
  signal?: AbortSignal,
): Promise<{ cancelled: boolean }> {
  let next: Promise<PreparedBatch<K>> | undefined = batches.length > 0 ? prepareBatch(resolve(batches[0]!), runtime) : undefined;
  try {
    for (let index = 0; index < batches.length; index++) {
      const prepared = await next!;
      next = undefined;
      if (signal?.aborted) return { cancelled: true };
      if (index + 1 < batches.length) next = prepareBatch(resolve(batches[index + 1]!), runtime);
      const vectors = prepared.keys.length > 0 ? await runtime.run(prepared.tensor, prepared.keys.length) : new Float32Array(0);
      onBatch({ keys: prepared.keys, vectors, failed: prepared.failed, lastFile: prepared.lastFile });
    }
  } finally {
    // A batch prepared ahead of a cancel or an error is discarded; nothing of it was committed.
    await next?.catch(() => undefined);
  }
  return { cancelled: false };
}

/** Decodes and preprocesses one batch; images that cannot be read are returned as failures. */
async function prepareBatch<K>(images: PipelineImage<K>[], runtime: EncoderRuntime): Promise<PreparedBatch<K>> {
  const input = runtime.model.manifest.input;
  const decoded = await Promise.all(
    images.map(async (image) => {
      const { key, file } = image;
      try {
        let source: ImageSource;
        if (image.open) source = await image.open();
        else {
          if (!fs.existsSync(file)) throw new Error('the file no longer exists');
          source = { file };
        }
        return { key, file, rgb: await resizeForModel(source, input) };
      } catch (error) {
        return { key, file, reason: error instanceof DermError ? error.message : `${file}: ${(error as Error).message}` };
      }
    }),
  );
  const ok = decoded.filter((entry): entry is { key: K; file: string; rgb: Buffer } => 'rgb' in entry);
  const tensor = new Float32Array(ok.length * valuesPerImage(input));
  ok.forEach((entry, slot) => writeNormalised(entry.rgb, input, tensor, slot));
  const failed = decoded
    .filter((entry) => 'reason' in entry)
    .map((entry) => ({ key: entry.key, file: entry.file, reason: (entry as { reason: string }).reason }));
  return { keys: ok.map((entry) => entry.key), tensor, failed, lastFile: decoded.at(-1)?.file };
}
