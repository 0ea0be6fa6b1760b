import type { ContractTransport } from '../../../../electron/common/contract-core.js';
import { unwrapEnvelope } from '../../../../electron/common/contract.js';
import { DermError } from '../../../../electron/common/errors.js';

/**
 * The contract over the local web mode: POST /api/<call> with JSON, events from one shared
 * EventSource. The token travels as the HttpOnly cookie the server set when the page was opened.
 */
export function httpTransport(): ContractTransport {
  const listeners = new Set<(event: unknown) => void>();
  let source: EventSource | undefined;
  const connect = () => {
    source = new EventSource('api/events');
    source.onmessage = (message) => {
      let event: unknown;
      try {
        event = JSON.parse(message.data as string);
      } catch {
        return;
      }
      for (const listener of listeners) listener(event);
    };
  };
  return {
    async invoke(call, input) {
      let response: Response;
      try {
        response = await fetch(`api/${call}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(input) });
      } catch {
        throw new DermError('internal', 'The workstation server cannot be reached. Is `dermws serve` still running?');
      }
      const body: unknown = await response.json().catch(() => null);
      if (response.status === 401) {
        throw new DermError('unauthorized', 'This page is no longer signed in to the server. Open the address printed by `dermws serve` again.');
      }
      return unwrapEnvelope(call, body);
    },
    subscribe(listener) {
      listeners.add(listener);
      if (!source) connect();
      return () => listeners.delete(listener);
    },
  };
}

export interface UploadedFile {
  uploadId: string;
  name: string;
  bytes: number;
}

/** Sends one file to the bridge's upload folder; files of one upload id are imported or searched together. */
export async function uploadFile(file: Blob, name: string, uploadId?: string): Promise<UploadedFile> {
  const query = new URLSearchParams({ name });
  if (uploadId) query.set('uploadId', uploadId);
  const response = await fetch(`upload?${query.toString()}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: file });
  const body = (await response.json().catch(() => null)) as (UploadedFile & { error?: { message: string } }) | null;
  if (!response.ok || !body || body.error) throw new DermError('invalid-input', body?.error?.message ?? `Uploading ${name} failed (HTTP ${response.status}).`);
  return body;
}
