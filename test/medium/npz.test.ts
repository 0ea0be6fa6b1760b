import fs from 'node:fs';
import path from 'node:path';
import { Zip, ZipPassThrough } from 'fflate';
import { afterAll, describe, expect, it } from 'vitest';
import { isDermError } from '../../electron/common/errors.js';
import { EmbeddingService } from '../../electron/core/embeddings/embedding.service.js';
import { importEmbeddingsFile } from '../../electron/core/embeddings/embeddings-import.js';
import { ModelRegistry } from '../../electron/core/models/model-registry.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { encodeNpy, readNpy, writeNpy } from '../../electron/core/embeddings/npy-format.js';
import { readNpzEntries, writeNpz } from '../../electron/core/embeddings/npz.js';
import { createTestLibrary, insertSyntheticImages } from '../fixtures/library-fixture.js';

type TestLibrary = ReturnType<typeof createTestLibrary>;
const libraries: TestLibrary[] = [];
afterAll(() => {
  for (const library of libraries) library.cleanup();
});

/** A library with SCIN-like relative paths `dataset/images/<n>.png` (and one pair of images sharing a file name). */
function scinLibrary(count: number): { library: TestLibrary; repository: EmbeddingsRepository; ids: number[]; folder: string } {
  const library = createTestLibrary('dermws-npz-');
  libraries.push(library);
  const ids = insertSyntheticImages(library, count);
  const update = library.db.prepare('UPDATE images SET relative_path = ?, original_path = ? WHERE id = ?');
  ids.forEach((id, index) => update.run(`dataset/images/${1000 + index}.png`, `/data/scin/dataset/images/${1000 + index}.png`, id));
  const folder = path.join(library.paths.root, '..', 'files');
  fs.mkdirSync(folder, { recursive: true });
  return { library, repository: new EmbeddingsRepository(library.db), ids, folder };
}

function vector(dim: number, seed: number, type: 'f4' | 'f8' = 'f8'): Float32Array | Float64Array {
  const values = Array.from({ length: dim }, (_, index) => Math.sin(seed * 13 + index) * 0.5);
  return type === 'f4' ? Float32Array.from(values) : Float64Array.from(values);
}

/** A raw ZIP with one .npy entry per [name, bytes], for files our writer would refuse to make. */
function writeZip(file: string, entries: Array<[string, Uint8Array]>): void {
  const chunks: Uint8Array[] = [];
  const zip = new Zip((error, data) => {
    if (error) throw error;
    chunks.push(data);
  });
  for (const [name, bytes] of entries) {
    const entry = new ZipPassThrough(name);
    zip.add(entry);
    entry.push(bytes, true);
  }
  zip.end();
  fs.writeFileSync(file, Buffer.concat(chunks));
}

function npyBytesWithDescr(descr: string, values: Uint8Array, shape: string): Uint8Array {
  const text = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`.padEnd(117, ' ') + '\n';
  const out = new Uint8Array(10 + text.length + values.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, text.length, true);
  out.set(new TextEncoder().encode(text), 10);
  out.set(values, 10 + text.length);
  return out;
}

/**
 * `np.savez(f, **{'dataset/images/-1001.png': np.array([0.5, -1.25, 2.0]), 'dataset/images/77.png':
 * np.array([1, 2, 3], dtype='<f4')})` from NumPy 2.4: NumPy writes every entry with a ZIP64 local header.
 */
const numpyNpz = Buffer.from(
  [
    '504b03042d00000000000000210092378ff2ffffffffffffffff1c001400646174617365742f696d616765732f2d313030312e706e672e6e70790100',
    '100098000000000000009800000000000000934e554d5059010076007b276465736372273a20273c6638272c2027666f727472616e5f6f7264657227',
    '3a2046616c73652c20277368617065273a2028332c292c207d2020202020202020202020202020202020202020202020202020202020202020202020',
    '202020202020202020202020202020202020202020202020200a000000000000e03f000000000000f4bf0000000000000040504b03042d0000000000',
    '0000210077a640d1ffffffffffffffff19001400646174617365742f696d616765732f37372e706e672e6e7079010010008c000000000000008c0000',
    '0000000000934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c2027736861',
    '7065273a2028332c292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020',
    '2020202020202020202020200a0000803f0000004000004040504b01022d032d00000000000000210092378ff298000000980000001c000000000000',
    '0000000000800100000000646174617365742f696d616765732f2d313030312e706e672e6e7079504b01022d032d00000000000000210077a640d18c',
    '0000008c0000001900000000000000000000008001e6000000646174617365742f696d616765732f37372e706e672e6e7079504b0506000000000200',
    '020091000000bd0100000000',
  ].join(''),
  'hex',
);

describe('.npz files', () => {
  it('round-trips entries, stored and deflated, streaming them back in order', async () => {
    const { folder } = scinLibrary(0);
    for (const compress of [false, true]) {
      const file = path.join(folder, compress ? 'c.npz' : 's.npz');
      const written = writeNpz(
        file,
        [
          ['dataset/images/1.png', vector(6, 1), [6]],
          ['matrix', vector(6, 2, 'f4'), [2, 3]],
        ],
        { compress },
      );
      expect(written.entries).toBe(2);
      const entries = [];
      for await (const entry of readNpzEntries(file)) entries.push(entry);
      expect(entries.map((entry) => [entry.key, entry.dtype, entry.shape])).toEqual([
        ['dataset/images/1.png', '<f8', [6]],
        ['matrix', '<f4', [2, 3]],
      ]);
      expect(entries[0]!.data).toEqual(vector(6, 1));
      expect(entries[1]!.data).toEqual(vector(6, 2, 'f4'));
    }
    // The same arrays give the same bytes (fixed entry times), so exports are reproducible.
    writeNpz(path.join(folder, 'again.npz'), [
      ['dataset/images/1.png', vector(6, 1), [6]],
      ['matrix', vector(6, 2, 'f4'), [2, 3]],
    ]);
    expect(fs.readFileSync(path.join(folder, 'again.npz')).equals(fs.readFileSync(path.join(folder, 's.npz')))).toBe(true);
  });

  it('reads an .npz written by NumPy (ZIP64 local headers, one float64 and one float32 key)', async () => {
    const { folder } = scinLibrary(0);
    const file = path.join(folder, 'numpy.npz');
    fs.writeFileSync(file, numpyNpz);
    const entries = [];
    for await (const entry of readNpzEntries(file)) entries.push(entry);
    expect(entries.map((entry) => [entry.key, entry.dtype, entry.shape, Array.from(entry.data)])).toEqual([
      ['dataset/images/-1001.png', '<f8', [3], [0.5, -1.25, 2]],
      ['dataset/images/77.png', '<f4', [3], [1, 2, 3]],
    ]);
  });

  it('writes .npy files that read back, and refuses a non-ZIP .npz or a bad entry naming the key', async () => {
    const { folder } = scinLibrary(0);
    writeNpy(path.join(folder, 'm.npy'), vector(12, 3, 'f4'), [3, 4]);
    expect(readNpy(path.join(folder, 'm.npy'))).toMatchObject({ dtype: '<f4', shape: [3, 4] });
    fs.writeFileSync(path.join(folder, 'text.npz'), 'not a zip file at all');
    await expect(async () => {
      for await (const entry of readNpzEntries(path.join(folder, 'text.npz'))) void entry;
    }).rejects.toThrow(/text\.npz is not an \.npz file/);
    writeZip(path.join(folder, 'cut.npz'), [['a.npy', encodeNpy(vector(8, 1), [8]).subarray(0, 100)]]);
    await expect(async () => {
      for await (const entry of readNpzEntries(path.join(folder, 'cut.npz'))) void entry;
    }).rejects.toThrow(/cut\.npz, key "a".*truncated/);
  });
});

describe('importing precomputed embeddings', () => {
  it('imports an npz keyed by image path: by relative path, then by unique file name; reports unmatched keys', async () => {
    const { library, repository, ids, folder } = scinLibrary(5);
    // Image 5's file name is shared with another folder's image: file-name matching must not guess.
    library.db.prepare('UPDATE images SET relative_path = ? WHERE id = ?').run('other/images/1003.png', ids[4]);
    library.db.prepare('UPDATE images SET relative_path = ? WHERE id = ?').run('more/1003.png', ids[3]);
    const file = path.join(folder, 'scin_dataset_precomputed_embeddings.npz');
    writeNpz(file, [
      ['dataset/images/1000.png', vector(8, 0), [8]],
      ['dataset/images/1001.png', vector(8, 1, 'f4'), [8]],
      ['elsewhere/1002.png', vector(8, 2), [1, 8]],
      ['dataset/images/1003.png', vector(8, 3), [8]],
      ['dataset/images/9999.png', vector(8, 9), [8]],
    ]);
    const result = await importEmbeddingsFile(repository, { file, modelId: 'derm-foundation-scin', displayName: 'Derm Foundation (SCIN precomputed)' });
    expect(result).toMatchObject({
      modelId: 'derm-foundation-scin',
      dim: 8,
      entries: 5,
      stored: 3,
      matchedByRelativePath: 2,
      matchedByFileName: 1,
      unmatched: ['dataset/images/9999.png'],
      ambiguous: [{ key: 'dataset/images/1003.png', imageIds: [ids[3], ids[4]] }],
      duplicates: [],
    });
    expect(repository.model('derm-foundation-scin')).toMatchObject({
      dim: 8,
      source: 'imported',
      sha256: result.sha256,
      displayName: 'Derm Foundation (SCIN precomputed)',
    });
    const stored = repository.get('derm-foundation-scin', ids[0]!)!;
    expect(stored).toBeInstanceOf(Float32Array);
    expect(Array.from(stored)).toEqual(Array.from(Float32Array.from(vector(8, 0))));
    expect(repository.get('derm-foundation-scin', ids[2]!)).toBeDefined();

    // There is no encoder behind imported embeddings: embedding a new photo with them says so.
    const registry = new ModelRegistry({ libraryModelsFolder: library.paths.models });
    const service = new EmbeddingService(repository, registry, library.paths.root);
    await expect(service.embedImageFile(path.join(folder, 'query.jpg'), 'derm-foundation-scin')).rejects.toThrow(
      /"derm-foundation-scin" were imported from scin_dataset_precomputed_embeddings\.npz; there is no ONNX encoder/,
    );

    // Importing the same file again changes nothing and duplicates nothing.
    const again = await importEmbeddingsFile(repository, { file, modelId: 'derm-foundation-scin' });
    expect(again.stored).toBe(3);
    expect(repository.count('derm-foundation-scin')).toBe(3);
  });

  it('rejects a wrong dtype or a wrong dimension naming the key, and stores nothing', async () => {
    const { library, repository, folder } = scinLibrary(3);
    const ints = new Uint8Array(new BigInt64Array([1n, 2n, 3n, 4n]).buffer);
    const wrongDtype = path.join(folder, 'ints.npz');
    writeZip(wrongDtype, [
      ['dataset/images/1000.png.npy', encodeNpy(vector(4, 0), [4])],
      ['dataset/images/1001.png.npy', npyBytesWithDescr('<i8', ints, '(4,)')],
    ]);
    const dtypeError = await importEmbeddingsFile(repository, { file: wrongDtype, modelId: 'x-model' }).catch((error: Error) => error);
    expect(isDermError(dtypeError, 'embeddings-invalid')).toBe(true);
    expect((dtypeError as Error).message).toContain('key "dataset/images/1001.png"');
    expect((dtypeError as Error).message).toContain('"<i8"');

    const wrongDim = path.join(folder, 'dims.npz');
    writeNpz(wrongDim, [
      ['dataset/images/1000.png', vector(4, 0), [4]],
      ['dataset/images/1001.png', vector(5, 1), [5]],
      ['dataset/images/1002.png', vector(4, 2), [4]],
    ]);
    const dimError = await importEmbeddingsFile(repository, { file: wrongDim, modelId: 'x-model' }).catch((error: Error) => error);
    expect((dimError as Error).message).toMatch(/key "dataset\/images\/1001\.png" has 5 values.*Nothing was imported/);

    const matrix = path.join(folder, 'matrix.npz');
    writeNpz(matrix, [['dataset/images/1000.png', vector(8, 0), [2, 4]]]);
    await expect(importEmbeddingsFile(repository, { file: matrix, modelId: 'x-model' })).rejects.toThrow(/key "dataset\/images\/1000\.png": shape \(2, 4\)/);

    const nan = path.join(folder, 'nan.npz');
    writeNpz(nan, [['dataset/images/1000.png', Float32Array.from([1, Number.NaN]), [2]]]);
    await expect(importEmbeddingsFile(repository, { file: nan, modelId: 'x-model' })).rejects.toThrow(/key "dataset\/images\/1000\.png": value 1 is NaN/);

    expect(library.db.prepare('SELECT COUNT(*) AS n FROM embeddings').get()).toEqual({ n: 0 });
    expect(library.db.prepare('SELECT COUNT(*) AS n FROM embedding_models').get()).toEqual({ n: 0 });
  });

  it('imports an .npy matrix with a CSV of paths, row by row, and checks the row count', async () => {
    const { repository, ids, folder } = scinLibrary(4);
    const matrix = new Float32Array(3 * 6);
    matrix.set(vector(6, 0, 'f4'), 0);
    matrix.set(vector(6, 1, 'f4'), 6);
    matrix.set(vector(6, 2, 'f4'), 12);
    const npy = path.join(folder, 'embeddings.npy');
    writeNpy(npy, matrix, [3, 6]);
    const csv = path.join(folder, 'paths.csv');
    fs.writeFileSync(csv, 'image_path,split\ndataset/images/1002.png,train\n"dataset/images/1000.png",test\n1001.png,test\n');
    const result = await importEmbeddingsFile(repository, { file: npy, pathsCsv: csv, modelId: 'my-encoder' });
    expect(result).toMatchObject({ dim: 6, entries: 3, stored: 3, matchedByRelativePath: 2, matchedByFileName: 1, unmatched: [] });
    expect(Array.from(repository.get('my-encoder', ids[2]!)!)).toEqual(Array.from(vector(6, 0, 'f4')));
    expect(Array.from(repository.get('my-encoder', ids[0]!)!)).toEqual(Array.from(vector(6, 1, 'f4')));

    const short = path.join(folder, 'short.csv');
    fs.writeFileSync(short, 'dataset/images/1000.png\n');
    await expect(importEmbeddingsFile(repository, { file: npy, pathsCsv: short, modelId: 'other' })).rejects.toThrow(
      /has 3 rows but .*short\.csv lists 1 paths/,
    );
    await expect(importEmbeddingsFile(repository, { file: npy, modelId: 'other' })).rejects.toThrow(/--paths/);
    expect(repository.model('other')).toBeUndefined();
  });

  it('refuses to import into an id that holds other embeddings', async () => {
    const { repository, folder } = scinLibrary(2);
    const first = path.join(folder, 'first.npz');
    const second = path.join(folder, 'second.npz');
    writeNpz(first, [['dataset/images/1000.png', vector(4, 0), [4]]]);
    writeNpz(second, [['dataset/images/1001.png', vector(4, 1), [4]]]);
    await importEmbeddingsFile(repository, { file: first, modelId: 'imported-a' });
    await expect(importEmbeddingsFile(repository, { file: second, modelId: 'imported-a' })).rejects.toThrow(
      /already holds embeddings imported from another file/,
    );
    repository.registerModel({ id: 'onnx-model', displayName: 'x', dim: 4, sha256: 'a'.repeat(64), source: 'onnx', preprocessing: null });
    await expect(importEmbeddingsFile(repository, { file: second, modelId: 'onnx-model' })).rejects.toThrow(/belongs to an ONNX encoder/);
    await expect(importEmbeddingsFile(repository, { file: second, modelId: 'Bad Id' })).rejects.toThrow(/model id "Bad Id"/);
    expect(repository.count('imported-a')).toBe(1);
  });
});
