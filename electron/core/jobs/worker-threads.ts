import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread from a module next to the caller. Compiled code runs the `.js` file directly;
 * when running from the TypeScript sources (tests, the CLI without a build) a small bootstrap registers
 * tsx's loader inside the worker first, because Node 20 does not apply `--import` hooks to a
 * worker's entry module.
 */
export function startWorker(moduleUrl: URL, options: WorkerOptions = {}): Worker {
  if (!moduleUrl.pathname.endsWith('.ts')) return new Worker(moduleUrl, options);
  const bootstrap = `import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(moduleUrl.href)}); })`;
  return new Worker(bootstrap, { ...options, eval: true });
}

/** The URL of a sibling worker module, `.ts` when the caller runs from source and `.js` when compiled. */
export function siblingModule(callerUrl: string, baseName: string): URL {
  const extension = callerUrl.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./${baseName}${extension}`, callerUrl);
}
