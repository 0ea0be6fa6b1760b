import { parentPort } from 'node:worker_threads';
import { DermError, serializeError } from '../../common/errors.js';
import { isCancellation } from '../jobs/job.js';
import { MatrixEngine } from './matrix-engine.js';
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
  try {
    engine = await MatrixEngine.create(problem.data, problem.rowCount, problem.dim, problem.settings.threads);
    const outcome = await evaluateProbe(engine, problem, {
      isCancelled: () => Atomics.load(cancelFlag, 0) === 1,
      onProgress: (progress) => port.postMessage({ type: 'progress', progress } satisfies ProbeWorkerMessage),
    });
    port.postMessage({ type: 'done', outcome } satisfies ProbeWorkerMessage, [
      outcome.predictions.buffer as ArrayBuffer,
      outcome.outOfFold.buffer as ArrayBuffer,
      outcome.finalWeights.buffer as ArrayBuffer,
      outcome.foldOfRow.buffer as ArrayBuffer,
    ]);
  } catch (error) {
    if (isCancellation(error)) port.postMessage({ type: 'cancelled' } satisfies ProbeWorkerMessage);
    else port.postMessage({ type: 'failed', error: serializeError(error) } satisfies ProbeWorkerMessage);
  } finally {
    await engine?.release();
  }
}
