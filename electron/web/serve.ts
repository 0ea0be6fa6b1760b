import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DermError } from '../common/errors.js';
import { startAppApiHost } from '../core/app-api/transport/app-api-host.js';
import { appVersion, findAppPackage } from '../core/library/installation.js';
import { isLoopbackHost, startWebBridge, type WebBridge } from './web-bridge.js';

export interface ServeOptions {
  libraryFolder?: string;
  hostname?: string;
  port?: number;
  /** The built renderer; default: the project's dist-renderer/. */
  staticFolder?: string;
  token?: string;
}

export interface RunningServer {
  readonly bridge: WebBridge;
  readonly libraryFolder: string;
  /** Set when the server listens on more than the loopback address. */
  readonly warning?: string;
  close(): Promise<void>;
}

/** The project's dist-renderer/ from source (electron/cli) or compiled (dist/electron/cli) code. */
export function defaultStaticFolder(start = path.dirname(fileURLToPath(import.meta.url))): string {
  const project = findAppPackage(start);
  if (project === undefined) throw new DermError('internal', `Could not find the project folder above ${start}.`);
  return path.join(project.folder, 'dist-renderer');
}

/**
 * Starts the local web mode: the library worker, then the HTTP bridge. Uploads live in a temporary
 * folder of this run and are removed on close (imports from uploads are copied into the library).
 */
export async function startServer(options: ServeOptions = {}): Promise<RunningServer> {
  const hostname = options.hostname ?? '127.0.0.1';
  const staticFolder = options.staticFolder ?? defaultStaticFolder();
  const uploadsFolder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-uploads-'));
  const api = await startAppApiHost({
    ...(options.libraryFolder ? { libraryFolder: options.libraryFolder } : {}),
    options: { mode: 'web', appVersion: appVersion(), uploadsFolder },
  }).catch((error: unknown) => {
    fs.rmSync(uploadsFolder, { recursive: true, force: true });
    throw error;
  });
  let bridge: WebBridge;
  try {
    bridge = await startWebBridge({
      api,
      staticFolder,
      uploadsFolder,
      hostname,
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...(options.token ? { token: options.token } : {}),
    });
  } catch (error) {
    await api.close();
    fs.rmSync(uploadsFolder, { recursive: true, force: true });
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new DermError('in-use', `Port ${options.port} on ${hostname} is already in use; choose another with --port.`, { field: 'port' });
    }
    throw error;
  }
  const info = (await api.invoke('appInfo', {})) as { libraryFolder: string };
  const warning = isLoopbackHost(hostname)
    ? undefined
    : `Warning: listening on ${hostname}, not only on this machine. Anyone who can reach this address and has the token can read and change the library; use it only on a network you trust.`;
  return {
    bridge,
    libraryFolder: info.libraryFolder,
    ...(warning ? { warning } : {}),
    close: async () => {
      await bridge.close();
      await api.close();
      fs.rmSync(uploadsFolder, { recursive: true, force: true });
    },
  };
}
