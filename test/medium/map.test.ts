import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CallOutput } from '../../electron/common/contract.js';
import type { AppApi } from '../../electron/core/app-api/app-api.js';
import { createAppApi } from '../../electron/core/app-api/create-app-api.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { clusteredVectors } from '../fixtures/clustered-vectors.js';
import { insertSyntheticImages } from '../fixtures/library-fixture.js';

/**
 * The map's points through the contract on a real library with real onnxruntime PCA: an even,
 * reproducible sample read without the rest of the matrix, deleted images left out, 50 PCA
 * components, and colour groups that recolouring (mapGroups) gives again without the layout. The
 * embeddings are shaped like an encoder's post-ReLU output: non-negative, with many zeros.
 */
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function openApi(): AppApi {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-map-'));
  const api = createAppApi({ libraryFolder: path.join(folder, 'library') }, { mode: 'web', appVersion: 'test' });
  cleanups.push(() => fs.rmSync(folder, { recursive: true, force: true }));
  cleanups.push(() => api.close());
  return api;
}

const roman = ['I', 'II', 'III', 'IV', 'V', 'VI'];

describe('map points', () => {
  it('samples evenly without deleted images, reduces to 50 components, and recolours without the layout', async () => {
    const api = openApi();
    const count = 300;
    const dim = 256;
    const ids = insertSyntheticImages(api.core.library, count, {
      metadataOf: (index): Record<string, string> => (index % 7 === 0 ? {} : { fitzpatrick_self: `FST${(index % 6) + 1}` }),
    });
    const vectors = clusteredVectors({ count, dim, clusters: 6, seed: 4 });
    const embeddings = new EmbeddingsRepository(api.core.library.db);
    embeddings.registerModel({
      id: 'relu-test',
      displayName: 'ReLU-shaped test vectors',
      dim,
      sha256: 'f'.repeat(64),
      source: 'imported',
      preprocessing: null,
    });
    embeddings.put(
      'relu-test',
      'f'.repeat(64),
      ids.map((imageId, row) => ({ imageId, vector: Array.from(vectors.data.subarray(row * dim, (row + 1) * dim), (value) => Math.max(0, value)) })),
    );
    ids.slice(0, 20).forEach((imageId, index) => {
      if (index % 2 === 0) api.core.labels.setLabel({ imageId, kind: 'condition', value: 'eczema', annotator: 'alice' });
    });
    api.core.images.markDeleted([ids[10]!]);
    const live = ids.filter((id) => id !== ids[10]);

    const first = (await api.invoke('mapPoints', { colourBy: 'fitzpatrick', limit: 100 })) as CallOutput<'mapPoints'>;
    expect(first.total).toBe(live.length);
    expect(first.imageIds).toHaveLength(100);
    expect(first.imageIds).not.toContain(ids[10]);
    expect(first.imageIds[0]).toBe(live[0]);
    // Evenly spread over the library: consecutive picks are 2 or 3 live images apart (299 / 100).
    const gaps = first.imageIds.slice(1).map((id, index) => live.indexOf(id) - live.indexOf(first.imageIds[index]!));
    expect(new Set(gaps)).toEqual(new Set([2, 3]));
    expect(first.dims).toBe(50);
    expect(first.coordinates).toHaveLength(100 * 50);
    expect(first.coordinates.every(Number.isFinite)).toBe(true);
    first.imageIds.forEach((imageId, index) => {
      const position = ids.indexOf(imageId);
      expect(first.groups[index]).toBe(position % 7 === 0 ? 'not recorded' : roman[position % 6]);
    });

    const again = (await api.invoke('mapPoints', { colourBy: 'condition', limit: 100 })) as CallOutput<'mapPoints'>;
    expect(again.imageIds).toEqual(first.imageIds);
    expect(again.coordinates).toEqual(first.coordinates);
    const recoloured = (await api.invoke('mapGroups', { imageIds: first.imageIds, colourBy: 'condition' })) as CallOutput<'mapGroups'>;
    expect(recoloured.groups).toEqual(again.groups);
    expect(recoloured.groups.filter((group) => group === 'eczema').length).toBe(
      first.imageIds.filter((id) => ids.indexOf(id) < 20 && ids.indexOf(id) % 2 === 0).length,
    );
  });
});
