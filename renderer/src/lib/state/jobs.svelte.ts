import type { JobInfo } from '../../../../electron/common/contract.js';
import { api } from '../api/api.js';

type Progress = NonNullable<JobInfo['progress']>;

/**
 * Every job this window knows about, with live progress from onJobProgress and the final state from
 * onJobFinished. Screens start jobs through the contract and read them from here.
 */
export class JobsState {
  jobs = $state.raw<Record<string, JobInfo>>({});
  private readonly waiters = new Map<string, Array<(job: JobInfo) => void>>();

  constructor() {
    api.onJobProgress((event) => {
      const known = this.jobs[event.jobId];
      this.put({
        ...(known ?? { id: event.jobId, kind: event.kind, state: 'running', startedAt: new Date().toISOString(), finishedAt: null }),
        progress: event.progress,
      });
    });
    api.onJobFinished((job) => {
      this.put(job);
      for (const resolve of this.waiters.get(job.id) ?? []) resolve(job);
      this.waiters.delete(job.id);
    });
  }

  private put(job: JobInfo): void {
    this.jobs = { ...this.jobs, [job.id]: job };
  }

  /** Records a job just started and resolves when it finishes (also if the finish event came first). */
  track(jobId: string, kind: string): Promise<JobInfo> {
    if (!this.jobs[jobId]) this.put({ id: jobId, kind, state: 'running', startedAt: new Date().toISOString(), finishedAt: null, progress: null });
    return new Promise((resolve) => {
      const list = this.waiters.get(jobId) ?? [];
      list.push(resolve);
      this.waiters.set(jobId, list);
      // The finish event may have raced the start reply; ask once to be sure.
      void api.jobGet({ jobId }).then((job) => {
        if (job.state !== 'running') {
          this.put(job);
          for (const waiter of this.waiters.get(jobId) ?? []) waiter(job);
          this.waiters.delete(jobId);
        }
      });
    });
  }

  async cancel(jobId: string): Promise<void> {
    await api.jobCancel({ jobId });
  }

  running(kind: string): JobInfo | undefined {
    return Object.values(this.jobs).find((job) => job.kind === kind && job.state === 'running');
  }

  get active(): JobInfo[] {
    return Object.values(this.jobs).filter((job) => job.state === 'running');
  }
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  if (seconds < 1) return 'under a second';
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(Math.round(seconds % 60)).padStart(2, '0')} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

export function progressFraction(progress: Progress | null | undefined): number {
  if (!progress || progress.total <= 0) return 0;
  return Math.min(1, progress.done / progress.total);
}
