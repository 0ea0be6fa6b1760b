import type { z } from 'zod';
import type { jobProgressSchema } from '../../common/contract.js';

/**
 * Long work is a job: it reports progress, can be cancelled through an AbortSignal, and ends with a
 * status. Jobs commit their unit of work atomically, so a cancelled or killed job is resumed simply by
 * running it again.
 */
export type JobStatus = 'success' | 'partial' | 'cancelled' | 'failed';

/**
 * A job's progress: job kind ("import", "embed", "index-build", "probe-train" …), units done of
 * total, what is worked on now, units per second since the start and seconds left at that rate (null
 * until a rate is known). The contract's schema, so the events the app sends are this very type.
 */
export type JobProgress = z.infer<typeof jobProgressSchema>;

export type ProgressListener = (progress: JobProgress) => void;

export interface JobControl {
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

/** Measures rate and ETA and throttles progress events to at most one every `intervalMs`. */
export class ProgressReporter {
  private readonly startedAt = performance.now();
  // The first report always goes out, however soon after the process started: a listener can act on
  // it (a test cancelling at the first unit) without depending on the clock.
  private lastEmit = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly job: string,
    private total: number,
    private readonly listener: ProgressListener | undefined,
    private readonly intervalMs = 100,
  ) {}

  setTotal(total: number): void {
    this.total = total;
  }

  report(done: number, current?: string, force = false): void {
    if (!this.listener) return;
    const now = performance.now();
    if (!force && done < this.total && now - this.lastEmit < this.intervalMs) return;
    this.lastEmit = now;
    const seconds = (now - this.startedAt) / 1000;
    const ratePerSecond = seconds > 0 ? done / seconds : 0;
    const etaSeconds = ratePerSecond > 0 ? Math.max(0, (this.total - done) / ratePerSecond) : null;
    const progress: JobProgress = { job: this.job, done, total: this.total, ratePerSecond, etaSeconds };
    if (current !== undefined) progress.current = current;
    this.listener(progress);
  }
}

/** The error every cancelled job ends with; isCancellation() recognises it. */
export function cancellationError(): Error {
  const error = new Error('The job was cancelled.');
  error.name = 'AbortError';
  return error;
}

export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw cancellationError();
}

export function isCancellation(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}
