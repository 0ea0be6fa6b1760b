import { parentPort, workerData } from 'node:worker_threads';
import { serializeError } from '../../../common/errors.js';
import type { AppApi } from '../app-api.js';
import type { AppApiWorkerData, HostRequest, WorkerReply } from './app-api-protocol.js';
import { createAppApi } from '../create-app-api.js';

// The core runs here, off the host's main thread: SQLite queries and import/embedding work never block
// Electron's main process or the web bridge's request loop.
const port = parentPort!;
const data = workerData as AppApiWorkerData;
const send = (reply: WorkerReply) => port.postMessage(reply);

let api: AppApi;
try {
  api = createAppApi(data.libraryFolder ? { libraryFolder: data.libraryFolder } : {}, data.options);
  api.subscribe((event) => send({ type: 'event', event }));
  send({ type: 'ready' });
} catch (error) {
  send({ type: 'startup-failed', error: serializeError(error) });
  port.close();
}

port.on('message', (request: HostRequest) => {
  void handle(request);
});

async function handle(request: HostRequest): Promise<void> {
  try {
    if (request.type === 'invoke') {
      send({ type: 'result', id: request.id, output: await api.invoke(request.call, request.input) });
    } else if (request.type === 'media') {
      send({ type: 'result', id: request.id, output: api.mediaFile(request.kind, request.imageId) });
    } else {
      await api.close();
      send({ type: 'result', id: request.id, output: null });
      port.close();
    }
  } catch (error) {
    send({ type: 'failed', id: request.id, error: serializeError(error) });
  }
}
