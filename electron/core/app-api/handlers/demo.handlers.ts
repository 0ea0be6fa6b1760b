import type { demoCalls } from '../../../common/contract/demo.js';
import type { HandlerGroup } from '../app-api.js';

export const demoHandlers: HandlerGroup<keyof typeof demoCalls> = {
  demoStart: (_input, { core, jobs, emit }) => {
    const job = jobs.start('demo', async ({ signal, onProgress }) => {
      try {
        const report = await core.demo.create({ signal, onProgress });
        return { status: report.status, result: report };
      } finally {
        emit({ type: 'library-changed', what: 'images' });
      }
    });
    return { jobId: job.id };
  },
};
