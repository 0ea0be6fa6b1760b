import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { strFromU8, unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../electron/web/serve.js';
import { tokenHeader } from '../../electron/web/web-bridge.js';
import { insertSyntheticImages } from '../fixtures/library-fixture.js';
import { openLibrary } from '../../electron/core/library/library.js';

/**
 * The web mode's export download on a real server: only a finished export of this run is served, as
 * a .zip holding exactly the files the export wrote (a file dropped into the folder afterwards is not
 * in it), and nothing is served for a job that never exported or without the token.
 */
describe('export download in web mode', () => {
  let folder: string;
  let server: RunningServer;
  const token = 'download-token-0123456789';
  const get = (target: string, headers: Record<string, string> = { [tokenHeader]: token }) => fetch(`${server.bridge.origin}${target}`, { headers });
  const call = async (name: string, input: unknown) => {
    const response = await fetch(`${server.bridge.origin}/api/${name}`, {
      method: 'POST',
      headers: { [tokenHeader]: token, 'content-type': 'application/json' },
      body: JSON.stringify(input),
    });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a contract output: each test asserts the fields it reads
    return ((await response.json()) as { output: any }).output;
  };

  /**
   * Starts a job and resolves when the server's event stream reports it finished: the stream is open
   * before the job starts, so its job-finished event cannot be missed, and nothing waits on a clock.
   */
  const untilFinished = (start: () => Promise<{ jobId: string }>): Promise<{ jobId: string; job: { id: string; state: string } }> =>
    new Promise((resolve, reject) => {
      const controller = new AbortController();
      const finished = new Map<string, { id: string; state: string }>();
      let jobId: string | undefined;
      const settle = () => {
        const job = jobId === undefined ? undefined : finished.get(jobId);
        if (!job) return;
        controller.abort();
        resolve({ jobId: jobId!, job });
      };
      void (async () => {
        const response = await fetch(`${server.bridge.origin}/api/events`, { headers: { [tokenHeader]: token }, signal: controller.signal });
        const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
        let text = '';
        let started = false;
        for (;;) {
          const { value, done } = await reader.read();
          if (done) throw new Error('The event stream ended before the job finished.');
          text += value;
          const frames = text.split('\n\n');
          text = frames.pop()!;
          for (const frame of frames) {
            if (frame.startsWith(': connected') && !started) {
              started = true;
              jobId = (await start()).jobId;
            }
            for (const line of frame.split('\n')) {
              if (!line.startsWith('data: ')) continue;
              const event = JSON.parse(line.slice('data: '.length)) as { type: string; job?: { id: string; state: string } };
              if (event.type === 'job-finished' && event.job) finished.set(event.job.id, event.job);
            }
          }
          settle();
        }
      })().catch((error: unknown) => {
        if (!controller.signal.aborted) reject(error);
      });
    });

  beforeAll(async () => {
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-download-'));
    const staticFolder = path.join(folder, 'static');
    fs.mkdirSync(staticFolder, { recursive: true });
    fs.writeFileSync(path.join(staticFolder, 'index.html'), '<!doctype html><title>derm</title>');
    const library = openLibrary(path.join(folder, 'library'));
    insertSyntheticImages(library, 5, { metadataOf: (index) => ({ fitzpatrick_self: `FST${index + 1}` }) });
    library.close();
    server = await startServer({ libraryFolder: path.join(folder, 'library'), port: 0, staticFolder, token });
  });

  afterAll(async () => {
    await server?.close();
    fs.rmSync(folder, { recursive: true, force: true });
  });

  it('serves a finished export of this run as a .zip of the files it wrote, and nothing else', async () => {
    expect((await get('/download/export/job-999')).status).toBe(404);
    const exportFolder = path.join(folder, 'export');
    const { jobId, job } = await untilFinished(() => call('exportStart', { folder: exportFolder, filter: { fitzpatrick: 'III' } }));
    expect(job.state).toBe('success');
    fs.writeFileSync(path.join(exportFolder, 'placed-later.txt'), 'not part of the export');

    expect((await get(`/download/export/${jobId}`, {})).status).toBe(401);
    const response = await get(`/download/export/${jobId}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/zip');
    expect(response.headers.get('content-disposition')).toBe('attachment; filename="export.zip"');
    const entries = unzipSync(new Uint8Array(await response.arrayBuffer()));
    expect(Object.keys(entries).sort()).toEqual(['images.csv', 'labels_long.csv', 'manifest.json']);
    expect(strFromU8(entries['images.csv']!)).toBe(fs.readFileSync(path.join(exportFolder, 'images.csv'), 'utf8'));
    // The filter chose the one image that reported type III.
    expect(strFromU8(entries['images.csv']!).trim().split(/\r?\n/)).toHaveLength(2);
  });
});
