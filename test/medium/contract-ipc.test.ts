import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callNames } from '../../electron/common/contract.js';
import { startAppApiHost, type AppApiHost } from '../../electron/core/app-api/transport/app-api-host.js';
import { createInvokeHandler } from '../../electron/main/ipc-bridge.js';
import { writeSkinImage } from '../fixtures/skin-images.js';

/**
 * The IPC handler Electron main registers, driven with the real core worker. Electron itself cannot
 * run here, so the event is a plain object with the one field the handler reads (senderFrame).
 */
describe('IPC bridge over the core worker', () => {
  let folder: string;
  let host: AppApiHost;
  let invoke: ReturnType<typeof createInvokeHandler>;
  const fromRenderer = { senderFrame: { url: 'app://renderer/index.html', parent: null } };

  beforeAll(async () => {
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-ipc-'));
    host = await startAppApiHost({ libraryFolder: path.join(folder, 'library'), options: { mode: 'electron', appVersion: '0.0.0-test' } });
    invoke = createInvokeHandler(host);
  });

  afterAll(async () => {
    await host?.close();
    fs.rmSync(folder, { recursive: true, force: true });
  });

  it('answers calls from the renderer’s top frame', async () => {
    const answer = await invoke(fromRenderer, 'appInfo', {});
    expect(answer).toMatchObject({ output: { mode: 'electron', appVersion: '0.0.0-test', libraryFolder: path.join(folder, 'library') } });
  });

  it('refuses other frames, other origins and destroyed frames', async () => {
    for (const senderFrame of [
      { url: 'https://example.org/', parent: null },
      { url: 'file:///tmp/x.html', parent: null },
      { url: 'app://renderer/index.html', parent: {} },
      null,
    ]) {
      const answer = await invoke({ senderFrame }, 'appInfo', {});
      expect(answer).toMatchObject({ error: { code: 'unauthorized' } });
    }
  });

  it('refuses unknown calls and malformed payloads for every call, naming the field', async () => {
    expect(await invoke(fromRenderer, 'deleteEverything', {})).toMatchObject({ error: { code: 'not-found' } });
    expect(await invoke(fromRenderer, 42, {})).toMatchObject({ error: { code: 'not-found' } });
    for (const name of callNames) {
      const answer = (await invoke(fromRenderer, name, { surplus: 1 })) as { error?: { code: string; message: string } };
      expect(answer.error?.code, name).toBe('invalid-input');
      expect(answer.error?.message, name).toContain(name);
    }
  });

  it('runs an import job in the worker, with progress events and a report', async () => {
    const photos = path.join(folder, 'photos');
    for (let index = 0; index < 4; index++) await writeSkinImage(path.join(photos, `p${index}.jpg`), { seed: index, width: 320, height: 240 });
    fs.writeFileSync(path.join(photos, 'broken.jpg'), 'not a jpeg');
    const events: string[] = [];
    const finished = new Promise<unknown>((resolve) => {
      const stop = host.subscribe((event) => {
        events.push(event.type);
        if (event.type === 'job-finished') {
          stop();
          resolve(event.job);
        }
      });
    });
    const started = (await invoke(fromRenderer, 'importStart', { paths: [photos] })) as { output: { jobId: string } };
    expect(started.output.jobId).toMatch(/^job-\d+$/);
    const job = (await finished) as { state: string; result: { imported: number; failed: number; outcomes: Array<{ outcome: string; reason?: string }> } };
    expect(job.state).toBe('partial');
    expect(job.result.imported).toBe(4);
    expect(job.result.failed).toBe(1);
    expect(job.result.outcomes.find((outcome) => outcome.outcome === 'failed')?.reason).toBeTruthy();
    expect(events).toContain('job-progress');
    const again = (await invoke(fromRenderer, 'jobGet', { jobId: started.output.jobId })) as { output: { state: string } };
    expect(again.output.state).toBe('partial');
    const page = (await invoke(fromRenderer, 'imagesPage', { offset: 0, limit: 10 })) as { output: { total: number; ids: number[] } };
    expect(page.output.total).toBe(4);
    expect(await host.mediaFile('thumbnail', page.output.ids[0]!)).toMatch(/\.webp$/);
  });
});
