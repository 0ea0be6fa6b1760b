import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { ContractTransport } from '../../../common/contract-core.js';
import { errorFromSerialized } from '../../../common/contract-core.js';
import type { AppEvent } from '../../../common/contract.js';
import { DermError } from '../../../common/errors.js';
import { siblingModule, startWorker } from '../../jobs/worker-threads.js';
import type { AppApiOptions } from '../app-api.js';
import type { AppApiWorkerData, HostRequest, WorkerReply } from './app-api-protocol.js';

export interface AppApiHost extends ContractTransport<AppEvent> {
  mediaFile(kind: 'thumbnail' | 'image', imageId: number): Promise<string>;
  close(): Promise<void>;
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;
type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void };

/**
 * Starts the worker that owns the core and returns a transport to it. Rejects with the core's own
 * error (library too new, unreadable …) when the library cannot be opened.
 */
export async function startAppApiHost(config: { libraryFolder?: string; options: AppApiOptions }): Promise<AppApiHost> {
  const workerData: AppApiWorkerData = { options: config.options, ...(config.libraryFolder ? { libraryFolder: config.libraryFolder } : {}) };
  // libuv's pool serves sharp and file reads inside the worker; the default of 4 is small for import.
  const worker: Worker = startWorker(siblingModule(import.meta.url, 'app-api.worker'), {
    workerData,
    env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? String(Math.max(4, os.availableParallelism())) },
  });
  const pending = new Map<number, Pending>();
  const listeners = new Set<(event: AppEvent) => void>();
  let nextId = 1;
  let exited = false;

  await new Promise<void>((resolve, reject) => {
    const onMessage = (reply: WorkerReply) => {
      if (reply.type === 'ready') {
        worker.off('message', onMessage);
        resolve();
      } else if (reply.type === 'startup-failed') {
        worker.off('message', onMessage);
        void worker.terminate();
        reject(errorFromSerialized(reply.error));
      }
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
  });

  worker.on('message', (reply: WorkerReply) => {
    if (reply.type === 'event') {
      for (const listener of listeners) listener(reply.event);
      return;
    }
    if (reply.type !== 'result' && reply.type !== 'failed') return;
    const entry = pending.get(reply.id);
    if (!entry) return;
    pending.delete(reply.id);
    if (reply.type === 'result') entry.resolve(reply.output);
    else entry.reject(errorFromSerialized(reply.error));
  });
  const failAll = (error: Error) => {
    exited = true;
    for (const entry of pending.values()) entry.reject(error);
    pending.clear();
  };
  worker.on('error', (error) => failAll(new DermError('internal', `The library worker stopped: ${error.message}`)));
  worker.on('exit', () => failAll(new DermError('internal', 'The library worker has stopped.')));

  const request = <T>(message: DistributiveOmit<HostRequest, 'id'>): Promise<T> => {
    if (exited) return Promise.reject(new DermError('internal', 'The library worker has stopped.'));
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      worker.postMessage({ ...message, id } as HostRequest);
    });
  };

  return {
    invoke: (call, input) => request({ type: 'invoke', call, input }),
    mediaFile: (kind, imageId) => request<string>({ type: 'media', kind, imageId }),
    subscribe: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: async () => {
      if (exited) return;
      await request({ type: 'close' }).catch(() => undefined);
      await worker.terminate();
    },
  };
}
