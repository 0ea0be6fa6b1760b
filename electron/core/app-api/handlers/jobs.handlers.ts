import type { jobsCalls } from '../../../common/contract/jobs.js';
import type { HandlerGroup } from '../app-api.js';

export const jobsHandlers: HandlerGroup<keyof typeof jobsCalls> = {
  jobsList: (_input, { jobs }) => ({ jobs: jobs.list() }),
  jobGet: (input, { jobs }) => jobs.get(input.jobId),
  jobCancel: (input, { jobs }) => ({ cancelled: jobs.cancel(input.jobId) }),
};
