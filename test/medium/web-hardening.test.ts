import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../electron/web/serve.js';
import { tokenHeader } from '../../electron/web/web-bridge.js';
import { ExportRepository, pseudonymSecretKey } from '../../electron/core/export/export.repository.js';
import { createImportServices } from '../../electron/core/core.js';
import { openLibrary } from '../../electron/core/library/library.js';
import { writeSkinImage } from '../fixtures/skin-images.js';
import { rawRequest } from '../helpers/raw-request.js';

/**
 * Web mode against hostile requests and a tampered library: links planted in the library, deeply
 * nested JSON, calls naming images that do not exist, and the token in URLs where it would be logged.
 */
describe('web mode hardening', () => {
  let folder: string;
  let server: RunningServer;
  let secret: string;
  const rows: Array<{ id: number; thumbnail_path: string; managed_path: string | null; original_path: string }> = [];
  const token = 'hardening-token-0123456789';
  const auth = { [tokenHeader]: token };
  const call = (name: string, input: unknown) =>
    rawRequest(server, `/api/${name}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(input) });

  beforeAll(async () => {
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-hardening-'));
    secret = path.join(folder, 'secret.txt');
    fs.writeFileSync(secret, 'TOP-SECRET outside the library');
    const photos = path.join(folder, 'photos');
    await writeSkinImage(path.join(photos, 'linked', 'a.jpg'), { seed: 1, width: 48, height: 40 });
    await writeSkinImage(path.join(photos, 'linked', 'b.jpg'), { seed: 2, width: 48, height: 40 });
    await writeSkinImage(path.join(photos, 'copied', 'c.jpg'), { seed: 3, width: 48, height: 40 });
    await writeSkinImage(path.join(photos, 'copied', 'd.jpg'), { seed: 4, width: 48, height: 40 });
    const library = openLibrary(path.join(folder, 'library'));
    try {
      const imports = createImportServices(library);
      expect((await imports.import.importPaths([path.join(photos, 'linked')])).imported).toBe(2);
      expect((await imports.import.importPaths([path.join(photos, 'copied')], { copyIntoLibrary: true })).imported).toBe(2);
      new ExportRepository(library.db).pseudonymSecret();
      rows.push(...(library.db.prepare('SELECT id, thumbnail_path, managed_path, original_path FROM images ORDER BY original_path').all() as typeof rows));
    } finally {
      library.close();
    }
    const staticFolder = path.join(folder, 'static');
    fs.mkdirSync(staticFolder);
    fs.writeFileSync(path.join(staticFolder, 'index.html'), '<!doctype html><title>derm</title>');
    server = await startServer({ libraryFolder: path.join(folder, 'library'), port: 0, staticFolder, token });
  });

  afterAll(async () => {
    await server?.close();
    fs.rmSync(folder, { recursive: true, force: true });
  });

  const libraryFile = (relative: string) => path.join(folder, 'library', relative);
  const replaceWithLink = (file: string, target: string) => {
    fs.rmSync(file);
    fs.symlinkSync(target, file);
  };

  it('serves thumbnails, copies and originals that are regular files in their place', async () => {
    for (const row of rows) {
      const thumbnail = await rawRequest(server, `/media/thumbnail/${row.id}`, { headers: auth });
      expect(thumbnail.status, `thumbnail ${row.id}`).toBe(200);
      expect((await rawRequest(server, `/media/image/${row.id}`, { headers: auth })).status, `image ${row.id}`).toBe(200);
    }
  });

  it('refuses a thumbnail, a managed copy or an original replaced by a symbolic link', async () => {
    const [copiedC, copiedD, linkedA, linkedB] = rows as [(typeof rows)[0], (typeof rows)[0], (typeof rows)[0], (typeof rows)[0]];
    replaceWithLink(libraryFile(linkedA.thumbnail_path), secret);
    replaceWithLink(libraryFile(copiedC.managed_path!), secret);
    replaceWithLink(linkedB.original_path, secret);
    // A link to a file that is inside the library is refused only when it leaves it: the thumbnail of
    // D pointing at another thumbnail is still a library file.
    replaceWithLink(libraryFile(copiedD.thumbnail_path), libraryFile(copiedC.thumbnail_path));
    for (const target of [`/media/thumbnail/${linkedA.id}`, `/media/image/${copiedC.id}`, `/media/image/${linkedB.id}`]) {
      const response = await rawRequest(server, target, { headers: auth });
      expect(response.status, target).toBe(404);
      expect(response.body, target).not.toContain('TOP-SECRET');
    }
    expect((await rawRequest(server, `/media/thumbnail/${copiedD.id}`, { headers: auth })).status).toBe(200);
  });

  it('answers deeply nested JSON with 400, not a crashed stack', async () => {
    for (const depth of [5_000, 100_000]) {
      const body = `{"imageId":${'['.repeat(depth)}${']'.repeat(depth)}}`;
      const response = await rawRequest(server, '/api/imageDetail', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body });
      expect(response.status, `depth ${depth}`).toBe(400);
      expect(JSON.parse(response.body).error.message).toMatch(/nested/);
    }
    // Ordinary nesting still works.
    expect((await call('imageDetail', { imageId: rows[0]!.id })).status).toBe(200);
  });

  it('answers 404 for every call naming an image that does not exist', async () => {
    const missing = 987_654;
    const calls: Array<[string, unknown]> = [
      ['imageDetail', { imageId: missing }],
      ['labelsOfImage', { imageId: missing }],
      ['labelSet', { imageId: missing, kind: 'note', value: 'x', annotator: 'dr-a' }],
      ['labelRemove', { imageId: missing, kind: 'note', annotator: 'dr-a' }],
      ['labelHistory', { imageId: missing }],
      ['probePredictions', { imageId: missing }],
      ['labelSuggestions', { imageId: missing }],
      ['duplicatesResolve', { keep: missing, others: [missing + 1], action: 'flag' }],
    ];
    for (const [name, input] of calls) {
      const response = await call(name, input);
      expect(response.status, name).toBe(404);
      expect(JSON.parse(response.body).error.message, name).toContain(String(missing));
    }
  });

  it('accepts ?token= only on a page load; API, media and upload requests need the header or the cookie', async () => {
    const id = rows[3]!.id;
    expect((await rawRequest(server, `/media/thumbnail/${id}?token=${token}`)).status).toBe(401);
    expect(
      (await rawRequest(server, `/api/appInfo?token=${token}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status,
    ).toBe(401);
    expect((await rawRequest(server, `/api/events?token=${token}`)).status).toBe(401);
    expect(
      (await rawRequest(server, `/upload?name=a.jpg&token=${token}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'x' }))
        .status,
    ).toBe(401);
    const page = await rawRequest(server, `/?token=${token}`);
    expect(page.status).toBe(303);
    const cookie = String(page.headers['set-cookie']).split(';')[0]!;
    expect((await rawRequest(server, `/media/thumbnail/${id}`, { headers: { cookie } })).status).toBe(200);
    expect((await rawRequest(server, '/api/appInfo', { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: '{}' })).status).toBe(
      200,
    );
  });

  it('never shows or changes the de-identified export secret through the settings calls', async () => {
    const all = JSON.parse((await call('settingsGet', {})).body).output.values;
    expect(Object.keys(all)).not.toContain(pseudonymSecretKey);
    const named = JSON.parse((await call('settingsGet', { keys: [pseudonymSecretKey] })).body).output.values;
    expect(named).toEqual({});
    expect((await call('settingsSet', { key: pseudonymSecretKey, value: '00' })).status).toBe(400);
  });
});
