import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { createCore, type Core } from '../../electron/core/core.js';
import { writeSkinImage } from '../fixtures/skin-images.js';

export interface EmbeddedPhotoLibrary {
  /** The temporary folder that holds the photos and the library (remove it when done). */
  folder: string;
  libraryFolder: string;
  /** Image id of photo i, in the order the photos were given. */
  ids: number[];
}

/**
 * A library of generated skin photos, imported by the core and embedded by the default encoder (converted
 * once per machine into DERMWS_MODEL_CACHE), in a new temporary folder: what the end-to-end tests of the
 * library, similar-case and map screens start from. `addFiles` may put more files beside the photos
 * before the import; `prepare` adds what a test needs (metadata, labels, cases, an index) once the
 * photos are imported and embedded, before the core is closed.
 */
export async function embeddedPhotoLibrary(
  prefix: string,
  photos: Array<{ name: string } & Parameters<typeof writeSkinImage>[1]>,
  steps: { addFiles?: (photosFolder: string) => Promise<unknown>; prepare?: (core: Core, ids: number[]) => Promise<void> | void } = {},
): Promise<EmbeddedPhotoLibrary> {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  try {
    const libraryFolder = path.join(folder, 'library');
    const photosFolder = path.join(folder, 'photos');
    for (const { name, ...options } of photos) await writeSkinImage(path.join(photosFolder, name), options);
    await steps.addFiles?.(photosFolder);
    const core = createCore({ libraryFolder });
    try {
      await core.import.importPaths([photosFolder]);
      const listed = core.images.list({ limit: photos.length + 100 });
      const ids = photos.map(({ name }) => listed.find((entry) => entry.originalPath.endsWith(name))!.id);
      const embedded = await core.embeddings.embedLibrary();
      expect(embedded.failed).toEqual([]);
      await steps.prepare?.(core, ids);
      return { folder, libraryFolder, ids };
    } finally {
      core.close();
    }
  } catch (error) {
    // The caller never learns the folder's name when this fails, so it cannot remove it.
    fs.rmSync(folder, { recursive: true, force: true });
    throw error;
  }
}
