import type { importCalls } from '../../../common/contract/import.js';
import fs from 'node:fs';
import path from 'node:path';
import { DermError } from '../../../common/errors.js';
import type { HandlerGroup } from '../app-api.js';

export const importHandlers: HandlerGroup<keyof typeof importCalls> = {
  importStart: (input, { core, jobs, options, emit }) => {
    let paths: string[];
    let root: string | undefined;
    let copyIntoLibrary: boolean;
    let uploadFolder: string | undefined;
    if ('uploadId' in input) {
      if (!options.uploadsFolder) throw new DermError('invalid-input', 'Uploads are only accepted in the local web mode.', { field: 'uploadId' });
      uploadFolder = path.join(options.uploadsFolder, input.uploadId);
      if (!fs.existsSync(uploadFolder)) throw new DermError('not-found', `No files were uploaded under id ${input.uploadId}.`, { field: 'uploadId' });
      paths = [uploadFolder];
      root = uploadFolder;
      // Uploaded files live in a temporary folder of this run, so the library must keep its own copy.
      copyIntoLibrary = true;
    } else {
      paths = input.paths.map((given) => path.resolve(given));
      copyIntoLibrary = input.copyIntoLibrary ?? false;
    }
    const job = jobs.start('import', async ({ signal, onProgress }) => {
      try {
        const report = await core.import.importPaths(paths, { copyIntoLibrary, signal, onProgress, ...(root ? { root } : {}) });
        const shown = uploadFolder
          ? { ...report, outcomes: report.outcomes.map((outcome) => ({ ...outcome, path: path.relative(uploadFolder!, outcome.path) || outcome.path })) }
          : report;
        return { status: report.status, result: shown };
      } finally {
        emit({ type: 'library-changed', what: 'images' });
        if (uploadFolder) fs.rmSync(uploadFolder, { recursive: true, force: true });
      }
    });
    return { jobId: job.id };
  },
};
