import type { AppEvent } from '../../../common/contract.js';
import type { SerializedError } from '../../../common/errors.js';
import type { AppApiOptions } from '../app-api.js';

/** Messages between the app-api host (Electron main or the web bridge) and the worker that owns the core. */
export type HostRequest =
  | { type: 'invoke'; id: number; call: string; input: unknown }
  | { type: 'media'; id: number; kind: 'thumbnail' | 'image'; imageId: number }
  | { type: 'close'; id: number };

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'startup-failed'; error: SerializedError }
  | { type: 'result'; id: number; output: unknown }
  | { type: 'failed'; id: number; error: SerializedError }
  | { type: 'event'; event: AppEvent };

export interface AppApiWorkerData {
  libraryFolder?: string;
  options: AppApiOptions;
}
