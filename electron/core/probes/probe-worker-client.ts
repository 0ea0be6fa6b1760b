import { DermError, type SerializedError } from '../../common/errors.js';
import { siblingModule, startWorker } from '../jobs/worker-threads.js';
import type { ProbeOutcome, ProbeProblem, StageProgress } from './probe-evaluation.js';

export type ProbeWorkerMessage =
  { type: 'progress'; progress: StageProgress } | { type: 'done'; outcome: ProbeOutcome } | { type: 'cancelled' } | { type: 'failed'; error: SerializedError };

export interface ProbeWorkerControl {
  signal?: AbortSignal;
  onProgress?: (progress: StageProgress) => void;
}

/**
 * Runs `evaluateProbe` in a worker thread. The embedding matrix's buffer is transferred, not copied
 * (the caller must not use `problem.data` afterwards). Rejects with an AbortError when the signal fires.
 */
export function runProbeInWorker(problem: ProbeProblem, control: ProbeWorkerControl = {}): Promise<ProbeOutcome> {
  const cancelFlag = new SharedArrayBuffer(4);
  const flag = new Int32Array(cancelFlag);
  const worker = startWorker(siblingModule(import.meta.url, 'probe-train.worker'));
  return new Promise<ProbeOutcome>((resolve, reject) => {
    let settled = false;
    const finish = (result: { outcome?: ProbeOutcome; error?: Error }) => {
      if (settled) return;
      settled = true;
      control.signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      if (result.error) reject(result.error);
      else resolve(result.outcome!);
    };
    const onAbort = () => Atomics.store(flag, 0, 1);
    if (control.signal?.aborted) onAbort();
    control.signal?.addEventListener('abort', onAbort);
    worker.on('message', (message: ProbeWorkerMessage) => {
      if (message.type === 'progress') control.onProgress?.(message.progress);
      else if (message.type === 'done') finish({ outcome: message.outcome });
      else if (message.type === 'cancelled') finish({ error: abortError() });
      else finish({ error: new DermError(message.error.code, message.error.message, message.error.details) });
    });
    worker.on('error', (error) => finish({ error: new DermError('internal', `The probe training worker failed: ${error.message}`) }));
    worker.on('exit', (code) => finish({ error: new DermError('internal', `The probe training worker stopped unexpectedly (exit code ${code}).`) }));
    const transfer = problem.data.byteOffset === 0 && problem.data.byteLength === problem.data.buffer.byteLength ? [problem.data.buffer as ArrayBuffer] : [];
    worker.postMessage({ problem, cancelFlag }, transfer);
  });
}

function abortError(): Error {
  const error = new Error('The job was cancelled.');
  error.name = 'AbortError';
  return error;
}
