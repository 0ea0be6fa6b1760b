import { parentPort } from 'node:worker_threads';
import { DermError, serializeError } from '../../common/errors.js';
import { isCancellation } from '../jobs/job.js';
import { MatrixEngine } from '../math/matrix-engine.js';
import { evaluateProbe, type ProbeProblem } from './probe-evaluation.js';
import type { ProbeWorkerMessage } from './probe-worker-client.js';

/**
 * Runs a whole probe evaluation off the main thread. The main thread sets the shared cancel flag;
 * the solver reads it between passes over the matrix, so cancelling takes at most one pass.
 */
if (!parentPort) throw new DermError('internal', 'probe-train.worker must run in a worker thread.');
const port = parentPort;

port.once('message', (request: { problem: ProbeProblem; cancelFlag: SharedArrayBuffer }) => {
  void run(request.problem, new Int32Array(request.cancelFlag));
});

async function run(problem: ProbeProblem, cancelFlag: Int32Array): Promise<void> {
  let engine: MatrixEngine | undefined;
  let message: ProbeWorkerMessage;
  let transfer: ArrayBuffer[] = [];
  try {
    engine = await MatrixEngine.create(problem.data, problem.rowCount, problem.dim, problem.settings.threads);
    const outcome = await evaluateProbe(engine, problem, {
      isCancelled: () => Atomics.load(cancelFlag, 0) === 1,
      onProgress: (progress) => port.postMessage({ type: 'progress', progress } satisfies ProbeWorkerMessage),
    });
    message = { type: 'done', outcome };
    transfer = [outcome.predictions.buffer, outcome.outOfFold.buffer, outcome.finalWeights.buffer, outcome.foldOfRow.buffer] as ArrayBuffer[];
  } catch (error) {
    message = isCancellation(error) ? { type: 'cancelled' } : { type: 'failed', error: serializeError(error) };
  }
  // The sessions are released before the answer goes out: the caller terminates this thread as soon as
  // it has the answer, and a thread terminated inside onnxruntime's release aborts the whole process.
  try {
    await engine?.release();
  } catch (error) {
    if (message.type === 'done') message = { type: 'failed', error: serializeError(error) };
  }
  port.postMessage(message, transfer);
}
