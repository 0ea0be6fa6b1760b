import { afterEach, describe, expect, it } from 'vitest';
import { createRepositories } from '../../electron/core/core.js';
import { createTestLibrary, insertSyntheticImages } from '../fixtures/library-fixture.js';

/**
 * live_images (migration 0012) is what the reads mean by "images still in the library": a deleted
 * image leaves every count and list that reads it, and comes back when it is restored.
 */
describe('live_images view', () => {
  const libraries: Array<ReturnType<typeof createTestLibrary>> = [];
  afterEach(() => {
    for (const library of libraries.splice(0)) library.cleanup();
  });

  it('holds exactly the images whose deleted_at is NULL, with every column of images', () => {
    const library = createTestLibrary();
    libraries.push(library);
    const ids = insertSyntheticImages(library, 5);
    const { images, embeddings, quality } = createRepositories(library);
    expect(images.markDeleted([ids[1]!, ids[3]!])).toBe(2);

    const live = (library.db.prepare('SELECT id FROM live_images ORDER BY id').all() as Array<{ id: number }>).map((row) => row.id);
    expect(live).toEqual([ids[0], ids[2], ids[4]]);
    const tableColumns = (library.db.prepare("SELECT name FROM pragma_table_info('images')").all() as Array<{ name: string }>).map((row) => row.name);
    const viewColumns = (library.db.prepare("SELECT name FROM pragma_table_info('live_images')").all() as Array<{ name: string }>).map((row) => row.name);
    expect(viewColumns).toEqual(tableColumns);

    // Reads through the view: counts and membership leave the deleted images out …
    expect(embeddings.activeImageCount()).toBe(3);
    expect(quality.isLiveImage(ids[1]!)).toBe(false);
    expect(quality.isLiveImage(ids[2]!)).toBe(true);
    // … and take them back after a restore, with nothing lost meanwhile.
    expect(images.restore([ids[1]!])).toBe(1);
    expect(embeddings.activeImageCount()).toBe(4);
    expect(quality.isLiveImage(ids[1]!)).toBe(true);
    expect((library.db.prepare('SELECT COUNT(*) AS n FROM images').get() as { n: number }).n).toBe(5);
  });
});
