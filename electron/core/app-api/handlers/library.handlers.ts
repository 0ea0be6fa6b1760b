import type { libraryCalls } from '../../../common/contract/library.js';
import { libraryCheckReportSchema } from '../../../common/contract.js';
import { DermError } from '../../../common/errors.js';
import { pseudonymSecretKey } from '../../export/export.repository.js';
import type { CallOutput } from '../../../common/contract.js';
import type { Core } from '../../core.js';
import type { LibraryViewRepository } from '../../library-view/library-view.repository.js';
import type { HandlerGroup } from '../app-api.js';

/** libraryOverview's output (also what `dermws info --json` prints). */
export function libraryOverviewOutput(core: Core, view: LibraryViewRepository): CallOutput<'libraryOverview'> {
  const totals = core.images.totals();
  return {
    ...view.overview(),
    deletedImages: totals.deleted,
    bytes: totals.bytes,
    cases: totals.cases,
    formats: core.images.formatCounts(),
    flaggedImages: core.quality.flaggedImageCount(),
    schemaVersion: core.library.schemaVersion,
    batchCount: core.importBatches.count(),
  };
}

export const libraryHandlers: HandlerGroup<keyof typeof libraryCalls> = {
  appInfo: (_input, { core, options }) => ({
    appVersion: options.appVersion,
    mode: options.mode,
    libraryFolder: core.library.paths.root,
    schemaVersion: core.library.schemaVersion,
    acceptsPaths: true,
    readOnly: core.library.readOnly,
  }),
  libraryCheck: (input, { core, jobs, emit }) => {
    const job = jobs.start('library-check', async ({ signal, onProgress }) => {
      try {
        const report = await core.check.check({ full: input.full === true, repair: input.repair === true, signal, onProgress });
        // A complete check succeeded as a job whatever it found; what it found is in the report.
        return { status: report.status === 'cancelled' ? 'cancelled' : 'success', result: libraryCheckReportSchema.parse(report) };
      } finally {
        // A repair may have made thumbnails and library copies again.
        if (input.repair === true) emit({ type: 'library-changed', what: 'images' });
      }
    });
    return { jobId: job.id };
  },
  libraryOverview: (_input, { core, view }) => libraryOverviewOutput(core, view),
  settingsGet: (input, { core }) => {
    const values: Record<string, unknown> = {};
    const keys = input.keys ?? core.settings.keys();
    for (const key of keys) {
      // The de-identified export's secret stays in the library: shown to no client, changed by none.
      if (key === pseudonymSecretKey) continue;
      const value = core.settings.get(key);
      if (value !== undefined) values[key] = value;
    }
    return { values };
  },
  settingsSet: (input, { core, emit }) => {
    if (input.key === pseudonymSecretKey)
      throw new DermError('invalid-input', `The setting "${input.key}" is managed by the library and cannot be set.`, { field: 'key' });
    core.settings.set(input.key, input.value ?? null);
    emit({ type: 'library-changed', what: 'settings' });
    return { key: input.key };
  },
};
