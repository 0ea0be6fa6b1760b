import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDermError } from '../../electron/common/errors.js';
import { createCore, type Core } from '../../electron/core/core.js';
import { insertSyntheticImages } from '../fixtures/library-fixture.js';
import { writeSkinImage } from '../fixtures/skin-images.js';

/**
 * Query by photo with the real default encoder (MobileNetV2 features, converted once and cached in
 * DERMWS_MODEL_CACHE or native-models/generated): an edited copy of a library photo — resized and
 * re-compressed, or slightly cropped — must find its original among the top 3.
 */
const repoRoot = path.resolve(import.meta.dirname, '../..');
process.env.DERMWS_MODEL_CACHE ??= path.join(repoRoot, 'native-models', 'generated');

let folder: string;
let core: Core;
let ids: number[];
let files: string[];

beforeAll(async () => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-search-images-'));
  core = createCore({ libraryFolder: path.join(folder, 'library') });
  const count = 24;
  ids = insertSyntheticImages(core.library, count);
  files = [];
  const update = core.library.db.prepare('UPDATE images SET original_path = ?, relative_path = ? WHERE id = ?');
  for (const [index, id] of ids.entries()) {
    const relative = `photos/photo-${index}.jpg`;
    const file = await writeSkinImage(path.join(folder, relative), { seed: 500 + index, width: 400, height: 300, toneIndex: index % 10 });
    update.run(file, relative, id);
    files.push(file);
  }
  const embedded = await core.embeddings.embedLibrary();
  expect(embedded.status).toBe('success');
});

afterAll(async () => {
  // The encoder worker and the index's sessions end asynchronously: wait for them, not for a clock,
  // before their library folder goes (core.close() then finds nothing left to end).
  await core?.embeddings.close();
  await core?.index.close();
  core?.close();
  fs.rmSync(folder, { recursive: true, force: true });
});

describe('search by photo with the default encoder', () => {
  it('finds the original of a resized + re-compressed copy and of a slightly cropped copy in the top 3', async () => {
    for (const index of [0, 7, 13, 22]) {
      const resized = path.join(folder, `edited/resized-${index}.jpg`);
      const cropped = path.join(folder, `edited/cropped-${index}.png`);
      fs.mkdirSync(path.dirname(resized), { recursive: true });
      await sharp(files[index]!).resize(260, 195).jpeg({ quality: 55 }).toFile(resized);
      await sharp(files[index]!).extract({ left: 16, top: 12, width: 368, height: 276 }).png().toFile(cropped);
      for (const copy of [resized, cropped]) {
        const response = await core.search.search({ query: { file: copy }, k: 3 });
        expect(response.query).toEqual({ kind: 'file', file: copy });
        expect(response.results.map((hit) => hit.imageId)).toContain(ids[index]);
      }
    }
    // Searching by a photo never imports it.
    expect((core.library.db.prepare('SELECT COUNT(*) AS n FROM images').get() as { n: number }).n).toBe(ids.length);
  });

  it('refuses a query file that cannot be decoded, naming it', async () => {
    const broken = path.join(folder, 'broken.jpg');
    fs.writeFileSync(broken, 'this is text, not a JPEG');
    const error = await core.search.search({ query: { file: broken }, k: 3 }).catch((caught: unknown) => caught);
    expect(isDermError(error)).toBe(true);
    expect((error as Error).message).toContain(broken);
  });
});
