import type { AppEvent, JobInfo } from '../../common/contract.js';
import { DermError, serializeError } from '../../common/errors.js';
import { isCancellation, type JobControl, type JobStatus } from '../jobs/job.js';

export interface JobOutcome {
  status: JobStatus;
  result: unknown;
}

export type JobRunner = (control: Required<JobControl>) => Promise<JobOutcome>;

/**
 * The jobs the app started in this run: each gets an id, an AbortController and its latest progress;
 * events go to every subscriber. A second job of the same kind while one runs is refused, because two
 * imports (or two embedding jobs) over the same library would only compete for the same rows.
 */
export class JobRegistry {
  private readonly jobs = new Map<string, { info: JobInfo; controller: AbortController; done: Promise<void> }>();
  private nextId = 1;

  constructor(
    private readonly emit: (event: AppEvent) => void,
    private readonly now: () => Date = () => new Date(),
    /** Rewrites a failure into the error shown for the job (e.g. naming the library and file). */
    private readonly explain: (error: unknown) => unknown = (error) => error,
  ) {}

  start(kind: string, run: JobRunner): JobInfo {
    for (const entry of this.jobs.values()) {
      if (entry.info.kind === kind && entry.info.state === 'running') {
        throw new DermError('in-use', `A ${kind} job (${entry.info.id}) is still running; wait for it or cancel it first.`, { jobId: entry.info.id });
      }
    }
    const id = `job-${this.nextId++}`;
    const controller = new AbortController();
    const info: JobInfo = { id, kind, state: 'running', startedAt: this.now().toISOString(), finishedAt: null, progress: null };
    const done = (async () => {
      try {
        const outcome = await run({
          signal: controller.signal,
          onProgress: (progress) => {
            info.progress = { ...progress };
            this.emit({ type: 'job-progress', jobId: id, kind, progress: info.progress });
          },
        });
        info.state = outcome.status;
        info.result = outcome.result;
      } catch (error) {
        if (isCancellation(error) || (error instanceof DermError && error.code === 'cancelled')) {
          info.state = 'cancelled';
        } else {
          info.state = 'failed';
          info.error = serializeError(this.explain(error));
        }
      }
      info.finishedAt = this.now().toISOString();
      this.emit({ type: 'job-finished', job: { ...info } });
    })();
    this.jobs.set(id, { info, controller, done });
    return { ...info };
  }

  get(id: string): JobInfo {
    const entry = this.jobs.get(id);
    if (!entry) throw new DermError('not-found', `There is no job "${id}" in this run of the app.`, { jobId: id });
    return { ...entry.info };
  }

  list(): JobInfo[] {
    return [...this.jobs.values()].map((entry) => ({ ...entry.info })).reverse();
  }

  cancel(id: string): boolean {
    const entry = this.jobs.get(id);
    if (!entry) throw new DermError('not-found', `There is no job "${id}" in this run of the app.`, { jobId: id });
    if (entry.info.state !== 'running') return false;
    entry.controller.abort();
    return true;
  }

  /** Resolves when the job has finished (used when closing, and by tests). */
  async settled(id: string): Promise<JobInfo> {
    const entry = this.jobs.get(id);
    if (!entry) throw new DermError('not-found', `There is no job "${id}".`, { jobId: id });
    await entry.done;
    return { ...entry.info };
  }

  /** Cancels every running job and waits for them, so the library closes between units of work. */
  async stopAll(): Promise<void> {
    for (const entry of this.jobs.values()) if (entry.info.state === 'running') entry.controller.abort();
    await Promise.all([...this.jobs.values()].map((entry) => entry.done));
  }
}
