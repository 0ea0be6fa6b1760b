import { parentPort } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { DermError, serializeError } from '../../common/errors.js';
import type { EncoderReply, EncoderRequest } from './encoder-protocol.js';
import { loadEncoderSession } from './encoder-session.js';

/**
 * Owns one ONNX session. onnxruntime-node's `run` executes on the calling thread, so running it here
 * keeps the main process (and the UI it serves) responsive while a batch is computed. Tensors cross
 * the boundary as transferred ArrayBuffers, never copied.
 */
const port = parentPort;
if (!port) throw new Error('encoder.worker must be started as a worker thread.');

let session: ort.InferenceSession | undefined;
/** Runs in flight: a close waits for them, since a session released (or a thread ended) mid-run aborts the process. */
const inFlight = new Set<Promise<void>>();

function reply(message: EncoderReply, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

port.on('message', (request: EncoderRequest) => {
  if (request.type === 'close') {
    void close();
    return;
  }
  const work = handle(request);
  inFlight.add(work);
  void work.finally(() => inFlight.delete(work));
});

async function close(): Promise<void> {
  await Promise.allSettled([...inFlight]);
  try {
    await session?.release();
  } finally {
    session = undefined;
    reply({ type: 'closed' });
    port!.close();
  }
}

async function handle(request: Exclude<EncoderRequest, { type: 'close' }>): Promise<void> {
  if (request.type === 'load') {
    try {
      const loaded = await loadEncoderSession(request.onnxPath, request.providers);
      session = loaded.session;
      const message: EncoderReply = { type: 'loaded', provider: loaded.provider, attempts: loaded.attempts, inputs: loaded.inputs, outputs: loaded.outputs };
      if (loaded.fallbackReason !== undefined) message.fallbackReason = loaded.fallbackReason;
      reply(message);
    } catch (error) {
      reply({ type: 'error', error: serializeError(error) });
    }
    return;
  }
  try {
    if (!session) throw new DermError('internal', 'The encoder worker was asked to run before a model was loaded.');
    const feeds = { [request.inputName]: new ort.Tensor('float32', request.data, request.dims) };
    const results = await session.run(feeds, [request.outputName]);
    const output = results[request.outputName];
    if (!output || output.type !== 'float32') {
      throw new DermError('model-failed', `The model returned no float32 output "${request.outputName}".`);
    }
    // Copy out of ORT's buffer so it can be transferred; the copy is tiny next to the inference.
    const data = new Float32Array(output.data as Float32Array);
    const dims = [...output.dims];
    for (const value of Object.values(results)) value.dispose();
    reply({ type: 'result', id: request.id, data, dims }, [data.buffer as ArrayBuffer]);
  } catch (error) {
    reply({ type: 'error', id: request.id, error: serializeError(error) });
  }
}
