import { createClient, type Client } from '../../../../electron/common/contract.js';
import { DermError } from '../../../../electron/common/errors.js';
import { httpTransport, uploadFile } from './http-transport.js';

/** What the Electron preload exposes besides the client: the desktop shell's file helpers. */
export interface DesktopHost {
  kind: 'electron';
  /** The real path of a dropped or picked File (Electron's webUtils.getPathForFile). */
  pathForFile(file: File): string;
}

declare global {
  interface Window {
    derm?: Client;
    dermHost?: DesktopHost;
  }
}

/** The contract client: Electron's preload client when present, else HTTP to the local web mode. */
export const api: Client = window.derm ?? createClient(httpTransport());
export const desktop: DesktopHost | undefined = window.dermHost;
export const runsInElectron = desktop !== undefined;

export function thumbnailUrl(imageId: number): string {
  return runsInElectron ? `derm-media://thumbnail/${imageId}` : `media/thumbnail/${imageId}`;
}

export function imageUrl(imageId: number): string {
  return runsInElectron ? `derm-media://image/${imageId}` : `media/image/${imageId}`;
}

export { uploadFile };

/** A sentence for a person: DermErrors already are; anything else gets a plain fallback. */
export function plainMessage(error: unknown): string {
  if (error instanceof DermError) return error.message;
  if (error && typeof error === 'object' && 'message' in error && typeof error.message === 'string') return error.message;
  return 'Something went wrong that the app did not expect. Try again; if it keeps happening, restart the app.';
}
