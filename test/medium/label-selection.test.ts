import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { CallOutput } from '../../electron/common/contract.js';
import type { AppApi } from '../../electron/core/app-api/app-api.js';
import { createAppApi } from '../../electron/core/app-api/create-app-api.js';
import { insertSyntheticImages } from '../fixtures/library-fixture.js';

/**
 * Actions on a library selection, each one call through the contract on a real library: `labelImages`
 * stores the label on every selected image in one transaction, as one undoable edit; `imagesFlag` flags
 * or unflags them all. Both store nothing when any id is unknown (the error names it). Results are read back through a second SQLite connection,
 * the way another process would see them.
 */
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function openApi(): { api: AppApi; databaseFile: string } {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-label-selection-'));
  const api = createAppApi({ libraryFolder: path.join(folder, 'library') }, { mode: 'web', appVersion: 'test' });
  cleanups.push(() => fs.rmSync(folder, { recursive: true, force: true }));
  cleanups.push(() => api.close());
  return { api, databaseFile: api.core.library.paths.database };
}

/** Current manual labels of a kind by an annotator, per image id, read by a separate connection. */
function storedLabels(databaseFile: string, kind: string, annotator: string): Map<number, string[]> {
  const db = new Database(databaseFile, { readonly: true });
  try {
    const rows = db
      .prepare(
        `SELECT l.image_id AS imageId, l.value AS value FROM labels l JOIN annotators a ON a.id = l.annotator_id
         WHERE l.kind = ? AND a.name = ? AND l.origin = 'manual' AND l.superseded_at IS NULL ORDER BY l.image_id, l.value`,
      )
      .all(kind, annotator) as Array<{ imageId: number; value: string }>;
    const byImage = new Map<number, string[]>();
    for (const row of rows) byImage.set(row.imageId, [...(byImage.get(row.imageId) ?? []), row.value]);
    return byImage;
  } finally {
    db.close();
  }
}

function auditRows(databaseFile: string): number {
  const db = new Database(databaseFile, { readonly: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS count FROM label_audit').get() as { count: number }).count;
  } finally {
    db.close();
  }
}

describe('labelImages: a selection labelled in one call', () => {
  it('labels every selected image, once, as one undoable edit', async () => {
    const { api, databaseFile } = openApi();
    const ids = insertSyntheticImages(api.core.library, 30);
    const selection = ids.filter((_, index) => index % 3 !== 0);
    // Two selected images already hold the value: they count as images but not as changed.
    api.core.labels.setLabel({ imageId: selection[0]!, kind: 'condition', value: 'eczema', annotator: 'dr-a' });
    api.core.labels.setLabel({ imageId: selection[1]!, kind: 'condition', value: 'eczema', annotator: 'dr-a' });
    // Another value of a multi-valued kind stays beside the new one.
    api.core.labels.setLabel({ imageId: selection[2]!, kind: 'condition', value: 'psoriasis', annotator: 'dr-a' });
    const auditBefore = auditRows(databaseFile);

    // The selection as a renderer sends it, with a repeated id.
    const result = await api.invoke('labelImages', { imageIds: [...selection, selection[3]!], kind: 'condition', value: 'eczema', annotator: 'dr-a' });
    expect(result).toEqual({ images: selection.length, changed: selection.length - 2 });

    const stored = storedLabels(databaseFile, 'condition', 'dr-a');
    for (const imageId of ids) {
      const expected = !selection.includes(imageId) ? undefined : imageId === selection[2] ? ['eczema', 'psoriasis'] : ['eczema'];
      expect(stored.get(imageId), `image ${imageId}`).toEqual(expected);
    }
    expect(auditRows(databaseFile) - auditBefore).toBe(selection.length - 2);

    // One undo takes the whole selection back to what it was.
    const undone = (await api.invoke('labelUndo', { annotator: 'dr-a' })) as CallOutput<'labelUndo'>;
    expect(undone.description).toBe(`set condition = eczema on ${selection.length} images`);
    const afterUndo = storedLabels(databaseFile, 'condition', 'dr-a');
    expect([...afterUndo.entries()]).toEqual([
      [selection[0]!, ['eczema']],
      [selection[1]!, ['eczema']],
      [selection[2]!, ['psoriasis']],
    ]);
  });

  it('replaces the value of a single-valued kind on every selected image', async () => {
    const { api, databaseFile } = openApi();
    const ids = insertSyntheticImages(api.core.library, 6);
    api.core.labels.setLabel({ imageId: ids[0]!, kind: 'fitzpatrick', value: 'II', annotator: 'dr-b' });
    await api.invoke('labelImages', { imageIds: ids, kind: 'fitzpatrick', value: 'V', annotator: 'dr-b' });
    const stored = storedLabels(databaseFile, 'fitzpatrick', 'dr-b');
    expect(ids.map((imageId) => stored.get(imageId))).toEqual(ids.map(() => ['V']));
  });

  it('stores nothing and names the ids when some are not in the library', async () => {
    const { api, databaseFile } = openApi();
    const ids = insertSyntheticImages(api.core.library, 5);
    const unknown = [ids.at(-1)! + 100, ids.at(-1)! + 7];
    const auditBefore = auditRows(databaseFile);
    await expect(
      api.invoke('labelImages', { imageIds: [ids[0]!, unknown[0]!, ids[1]!, unknown[1]!], kind: 'condition', value: 'eczema', annotator: 'dr-a' }),
    ).rejects.toThrow(`Images ${unknown[0]}, ${unknown[1]} are not in the library; nothing was stored.`);
    expect(storedLabels(databaseFile, 'condition', 'dr-a').size).toBe(0);
    expect(auditRows(databaseFile)).toBe(auditBefore);
  });

  it('refuses a value outside the taxonomy, an empty selection and a nameless annotator, naming the field', async () => {
    const { api, databaseFile } = openApi();
    const ids = insertSyntheticImages(api.core.library, 3);
    await expect(api.invoke('labelImages', { imageIds: ids, kind: 'condition', value: 'not-a-condition', annotator: 'dr-a' })).rejects.toThrow(/value/);
    await expect(api.invoke('labelImages', { imageIds: [], kind: 'condition', value: 'eczema', annotator: 'dr-a' })).rejects.toThrow(/imageIds/);
    await expect(api.invoke('labelImages', { imageIds: ids, kind: 'condition', value: 'eczema', annotator: '  ' })).rejects.toThrow(/annotator/);
    expect(storedLabels(databaseFile, 'condition', 'dr-a').size).toBe(0);
  });
});

describe('imagesFlag: a selection flagged or unflagged in one call', () => {
  function manualFlags(databaseFile: string, flag: string): number[] {
    const db = new Database(databaseFile, { readonly: true });
    try {
      return (
        db.prepare("SELECT image_id AS imageId FROM image_flags WHERE flag = ? AND source = 'manual' ORDER BY image_id").all(flag) as Array<{ imageId: number }>
      ).map((row) => row.imageId);
    } finally {
      db.close();
    }
  }

  it('stores nothing and names the ids when the selection holds an unknown or deleted image', async () => {
    const { api, databaseFile } = openApi();
    const ids = insertSyntheticImages(api.core.library, 6);
    api.core.library.db.prepare('UPDATE images SET deleted_at = ? WHERE id = ?').run(new Date().toISOString(), ids[5]);
    const unknown = ids[4]! + 50;

    await expect(api.invoke('imagesFlag', { imageIds: [ids[0]!, unknown, ids[1]!], flag: 'needs_review', set: true })).rejects.toThrow(
      `Image ${unknown} is not in the library (or deleted); nothing was flagged.`,
    );
    await expect(api.invoke('imagesFlag', { imageIds: [ids[0]!, ids[5]!], flag: 'needs_review', set: true })).rejects.toThrow(
      `Image ${ids[5]} is not in the library`,
    );
    expect(manualFlags(databaseFile, 'needs_review')).toEqual([]);

    expect(await api.invoke('imagesFlag', { imageIds: ids.slice(0, 4), flag: 'needs_review', set: true })).toEqual({ changed: 4 });
    await expect(api.invoke('imagesFlag', { imageIds: [ids[0]!, unknown], flag: 'needs_review', set: false })).rejects.toThrow(`nothing was unflagged`);
    expect(manualFlags(databaseFile, 'needs_review')).toEqual(ids.slice(0, 4));
    expect(await api.invoke('imagesFlag', { imageIds: ids.slice(0, 2), flag: 'needs_review', set: false })).toEqual({ changed: 2 });
    expect(manualFlags(databaseFile, 'needs_review')).toEqual(ids.slice(2, 4));
  });
});
