import { createCore, type CoreConfig } from '../core.js';
import { AppApi, type AppApiOptions, type Handlers } from './app-api.js';
import { exportModelsHandlers } from './handlers/export-models.handlers.js';
import { imagesHandlers } from './handlers/images.handlers.js';
import { importHandlers } from './handlers/import.handlers.js';
import { mapHandlers } from './handlers/map.handlers.js';
import { probesHandlers } from './handlers/probes.handlers.js';
import { qualityHandlers } from './handlers/quality.handlers.js';
import { searchHandlers } from './handlers/search.handlers.js';
import { jobsHandlers } from './handlers/jobs.handlers.js';
import { labellingHandlers } from './handlers/labelling.handlers.js';
import { libraryHandlers } from './handlers/library.handlers.js';
import { demoHandlers } from './handlers/demo.handlers.js';
import { agreementHandlers } from './handlers/agreement.handlers.js';
import { clusterHandlers } from './handlers/cluster.handlers.js';

/** Every contract call's handler; the type makes a call without a handler a compile error. */
export const handlers: Handlers = {
  ...libraryHandlers,
  ...jobsHandlers,
  ...imagesHandlers,
  ...importHandlers,
  ...qualityHandlers,
  ...labellingHandlers,
  ...exportModelsHandlers,
  ...searchHandlers,
  ...probesHandlers,
  ...mapHandlers,
  ...demoHandlers,
  ...agreementHandlers,
  ...clusterHandlers,
};

export function createAppApi(config: CoreConfig, options: AppApiOptions): AppApi {
  return new AppApi(createCore(config), handlers, options);
}
