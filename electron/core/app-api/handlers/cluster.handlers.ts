import type { clusterCalls } from '../../../common/contract/cluster.js';
import path from 'node:path';
import type { HandlerGroup } from '../app-api.js';

export const clusterHandlers: HandlerGroup<keyof typeof clusterCalls> = {
  clusterImportStart: (input, { core, jobs, emit }) => {
    const job = jobs.start('cluster-import', async ({ signal, onProgress }) => {
      try {
        const result = await core.cluster.importResults(path.resolve(input.folder), { signal, onProgress });
        return { status: result.status, result };
      } finally {
        emit({ type: 'library-changed', what: 'embeddings' });
      }
    });
    return { jobId: job.id };
  },
};
