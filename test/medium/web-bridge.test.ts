import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callNames } from '../../electron/common/contract.js';
import { startServer, type RunningServer } from '../../electron/web/serve.js';
import { webContentSecurityPolicy } from '../../electron/common/content-security-policy.js';
import { safeUploadPath, tokenHeader } from '../../electron/web/web-bridge.js';
import { rawRequest } from '../helpers/raw-request.js';

describe('web bridge (dermws serve)', () => {
  let folder: string;
  let server: RunningServer;
  const token = 'test-token-0123456789';
  const auth = { [tokenHeader]: token };
  const call = (name: string, input: unknown, headers: Record<string, string> = auth) =>
    rawRequest(server, `/api/${name}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(input) });

  beforeAll(async () => {
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-bridge-'));
    const staticFolder = path.join(folder, 'static');
    fs.mkdirSync(path.join(staticFolder, 'assets'), { recursive: true });
    fs.writeFileSync(path.join(staticFolder, 'index.html'), '<!doctype html><title>derm</title>');
    fs.writeFileSync(path.join(staticFolder, 'assets', 'app.js'), 'export {};');
    fs.writeFileSync(path.join(folder, 'secret.txt'), 'outside the static folder');
    server = await startServer({ libraryFolder: path.join(folder, 'library'), port: 0, staticFolder, token });
  });

  afterAll(async () => {
    await server?.close();
    fs.rmSync(folder, { recursive: true, force: true });
  });

  it('refuses every kind of request without the token', async () => {
    for (const target of ['/', '/index.html', '/api/events', '/media/thumbnail/1', '/media/image/1']) {
      const response = await rawRequest(server, target);
      expect(response.status, target).toBe(401);
      expect(JSON.parse(response.body).error.code).toBe('unauthorized');
    }
    expect((await call('appInfo', {}, {})).status).toBe(401);
    expect((await call('appInfo', {}, { [tokenHeader]: 'wrong-token-0123456789' })).status).toBe(401);
    expect(
      (await rawRequest(server, '/upload?name=a.jpg', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'x' })).status,
    ).toBe(401);
  });

  it('refuses a request addressed to another host name (DNS rebinding)', async () => {
    const response = await rawRequest(server, '/api/appInfo', {
      method: 'POST',
      headers: { ...auth, host: 'evil.example:80', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(response.status).toBe(421);
  });

  it('trades the token in the page URL for a cookie and a clean address', async () => {
    const first = await rawRequest(server, `/?token=${token}`);
    expect(first.status).toBe(303);
    expect(first.headers.location).toBe('/');
    const cookie = String(first.headers['set-cookie']);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const page = await rawRequest(server, '/', { headers: { cookie: cookie.split(';')[0]! } });
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>derm</title>');
    expect(page.headers['content-security-policy']).toBe(webContentSecurityPolicy);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['x-content-type-options']).toBe('nosniff');
  });

  it('answers contract calls and maps errors to statuses', async () => {
    const info = await call('appInfo', {});
    expect(info.status).toBe(200);
    expect(JSON.parse(info.body).output).toMatchObject({ mode: 'web', libraryFolder: path.join(folder, 'library'), acceptsPaths: true });
    const unknown = await call('dropAllTables', {});
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body).error.message).toContain('dropAllTables');
    const malformed = await call('imagesPage', { offset: 'zero', limit: 10 });
    expect(malformed.status).toBe(400);
    expect(JSON.parse(malformed.body).error.message).toContain('"offset"');
    const notJson = await rawRequest(server, '/api/appInfo', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{oops' });
    expect(notJson.status).toBe(400);
    const formPost = await rawRequest(server, '/api/appInfo', { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: '{}' });
    expect(formPost.status).toBe(415);
    const missing = await call('imageDetail', { imageId: 999 });
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body).error.message).toContain('999');
  });

  it('rejects malformed input for every call with a message naming the call', async () => {
    for (const name of callNames) {
      const response = await call(name, { notAField: true });
      expect(response.status, name).toBe(400);
      const error = JSON.parse(response.body).error;
      expect(error.code, name).toBe('invalid-input');
      expect(error.message, name).toContain(name);
    }
  });

  it('serves only files inside the renderer folder and only media by image id', async () => {
    expect((await rawRequest(server, '/assets/app.js', { headers: auth })).status).toBe(200);
    expect((await rawRequest(server, '/../secret.txt', { headers: auth })).body).not.toContain('outside');
    expect((await rawRequest(server, '/%2e%2e/secret.txt', { headers: auth })).body).not.toContain('outside');
    expect((await rawRequest(server, '/media/image/..%2F..%2Fsecret.txt', { headers: auth })).status).toBe(404);
    expect((await rawRequest(server, '/media/file/1', { headers: auth })).status).toBe(404);
    expect((await rawRequest(server, '/media/thumbnail/12345', { headers: auth })).status).toBe(404);
  });

  it('stores uploads under a fresh upload id, never outside its folder', async () => {
    const response = await rawRequest(server, `/upload?name=${encodeURIComponent('../../evil/../photo one.jpg')}`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: Buffer.from([1, 2, 3]),
    });
    expect(response.status).toBe(200);
    const uploaded = JSON.parse(response.body) as { uploadId: string; name: string; bytes: number };
    expect(uploaded.uploadId).toMatch(/^[a-f0-9]{32}$/);
    expect(uploaded.name).toBe(path.join('evil', 'photo one.jpg'));
    expect(uploaded.bytes).toBe(3);
    const bad = await rawRequest(server, '/upload?name=a.jpg&uploadId=..', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: 'x',
    });
    expect(bad.status).toBe(400);
    expect(() => safeUploadPath('../..')).toThrow(/no usable file name/);
  });

  it('streams app events to the browser', async () => {
    const received = new Promise<string>((resolve, reject) => {
      const outgoing = http.get({ host: '127.0.0.1', port: server.bridge.port, path: '/api/events', headers: auth }, (response) => {
        expect(response.headers['content-type']).toBe('text/event-stream');
        let text = '';
        response.on('data', (chunk: Buffer) => {
          text += chunk.toString('utf8');
          if (text.includes('library-changed')) {
            outgoing.destroy();
            resolve(text);
          } else if (text.includes(': connected')) {
            void call('settingsSet', { key: 'ui.test', value: 3 });
          }
        });
      });
      outgoing.on('error', reject);
    });
    expect(await received).toContain('"what":"settings"');
    const stored = JSON.parse((await call('settingsGet', { keys: ['ui.test'] })).body).output;
    expect(stored.values).toEqual({ 'ui.test': 3 });
  });
});
