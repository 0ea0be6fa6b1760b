import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { importEmbeddingsFile } from '../../electron/core/embeddings/embeddings-import.js';
import { encodeNpy } from '../../electron/core/embeddings/npy-format.js';
import { readNpzEntries } from '../../electron/core/embeddings/npz.js';
import { runDermws } from '../fixtures/cli-runner.js';
import { createTestLibrary, insertSyntheticImages } from '../fixtures/library-fixture.js';

/**
 * Hostile .npz archives, each built byte by byte in the test: flipped bytes, truncation, headers that
 * disagree, decompression bombs. The reader must refuse each one naming the file (and the key), with
 * bounded memory, and an import must store nothing (no model row either) when it refuses.
 */
const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-npz-integrity-'));
const libraries: Array<ReturnType<typeof createTestLibrary>> = [];
afterAll(() => {
  for (const library of libraries) library.cleanup();
  fs.rmSync(work, { recursive: true, force: true });
});

interface RawEntry {
  name: string;
  /** The bytes stored in the archive (already deflated for method 8). */
  data: Buffer;
  method: 0 | 8;
  crc: number;
  size: number;
}

function storedEntry(name: string, bytes: Uint8Array): RawEntry {
  const data = Buffer.from(bytes);
  return { name, data, method: 0, crc: zlib.crc32(data) >>> 0, size: data.length };
}

function deflatedEntry(name: string, bytes: Uint8Array): RawEntry {
  const data = Buffer.from(bytes);
  return { name, data: zlib.deflateRawSync(data), method: 8, crc: zlib.crc32(data) >>> 0, size: data.length };
}

/** A plain ZIP (no data descriptors, no ZIP64): local headers, data, central directory, end record. */
function zipBytes(entries: RawEntry[], local: (entry: RawEntry, header: Buffer) => void = () => {}): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const header = Buffer.alloc(30);
    header.writeUInt32LE(0x04034b50, 0);
    header.writeUInt16LE(20, 4);
    header.writeUInt16LE(entry.method, 8);
    header.writeUInt32LE(entry.crc, 14);
    header.writeUInt32LE(entry.data.length, 18);
    header.writeUInt32LE(entry.size, 22);
    header.writeUInt16LE(name.length, 26);
    local(entry, header);
    const record = Buffer.alloc(46);
    record.writeUInt32LE(0x02014b50, 0);
    record.writeUInt16LE(20, 4);
    record.writeUInt16LE(20, 6);
    record.writeUInt16LE(entry.method, 10);
    record.writeUInt32LE(entry.crc, 16);
    record.writeUInt32LE(entry.data.length, 20);
    record.writeUInt32LE(entry.size, 24);
    record.writeUInt16LE(name.length, 28);
    record.writeUInt32LE(offset, 42);
    central.push(record, name);
    parts.push(header, name, entry.data);
    offset += header.length + name.length + entry.data.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, directory, end]);
}

/**
 * Raw deflate data for `prefix` followed by `zeroMiB` MiB of zeros, built without ever holding the
 * zeros: one sync-flushed block of 1 MiB of zeros is repeated (its back-references stay inside itself),
 * then a final empty block ends the stream. The CRC-32 of the whole is computed chunk by chunk.
 */
function deflatedZeros(prefix: Uint8Array, zeroMiB: number): { data: Buffer; crc: number; size: number } {
  const mib = Buffer.alloc(1 << 20);
  const head = zlib.deflateRawSync(prefix, { finishFlush: zlib.constants.Z_FULL_FLUSH });
  const block = zlib.deflateRawSync(mib, { finishFlush: zlib.constants.Z_FULL_FLUSH });
  const final = zlib.deflateRawSync(Buffer.alloc(0));
  let crc = zlib.crc32(prefix);
  for (let index = 0; index < zeroMiB; index++) crc = zlib.crc32(mib, crc);
  return { data: Buffer.concat([head, ...Array.from({ length: zeroMiB }, () => block), final]), crc: crc >>> 0, size: prefix.length + zeroMiB * (1 << 20) };
}

function vector(dim: number, seed: number): Float32Array {
  return Float32Array.from({ length: dim }, (_, index) => Math.abs(Math.sin(seed * 7 + index)));
}

async function readAll(file: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const entry of readNpzEntries(file)) keys.push(entry.key);
  return keys;
}

function library(count: number) {
  const created = createTestLibrary('dermws-npz-integrity-lib-');
  libraries.push(created);
  const ids = insertSyntheticImages(created, count);
  const update = created.db.prepare('UPDATE images SET relative_path = ? WHERE id = ?');
  ids.forEach((id, index) => update.run(`dataset/images/${index}.png`, id));
  return { library: created, repository: new EmbeddingsRepository(created.db), ids };
}

const write = (name: string, bytes: Uint8Array) => {
  const file = path.join(work, name);
  fs.writeFileSync(file, bytes);
  return file;
};

const goodEntries = () => [0, 1, 2, 3].map((index) => storedEntry(`dataset/images/${index}.png.npy`, encodeNpy(vector(8, index), [8])));

describe('npz integrity', () => {
  it('reads a well-formed archive, stored and deflated', async () => {
    const file = write('good.npz', zipBytes([...goodEntries().slice(0, 2), deflatedEntry('dataset/images/2.png.npy', encodeNpy(vector(8, 2), [8]))]));
    expect(await readAll(file)).toEqual(['dataset/images/0.png', 'dataset/images/1.png', 'dataset/images/2.png']);
  });

  it('refuses a flipped byte inside a stored entry by its CRC-32, naming file and key', async () => {
    const bytes = zipBytes(goodEntries());
    // Entry 1's data: after entry 0 (30 + name + data) and entry 1's header and name; flip a value byte.
    const first = goodEntries()[0]!;
    const second = goodEntries()[1]!;
    const valueByte = 30 + first.name.length + first.data.length + 30 + second.name.length + second.data.length - 3;
    bytes[valueByte]! ^= 0x40;
    const file = write('flipped.npz', bytes);
    await expect(readAll(file)).rejects.toThrow(/flipped\.npz, key "dataset\/images\/1\.png": CRC-32 mismatch/);
  });

  it('refuses a truncated archive naming the file and the entry that was cut', async () => {
    const bytes = zipBytes(goodEntries());
    const first = goodEntries()[0]!;
    const cutInsideSecond = 30 + first.name.length + first.data.length + 30 + 20;
    const file = write('truncated.npz', bytes.subarray(0, cutInsideSecond + 40));
    await expect(readAll(file)).rejects.toThrow(/truncated\.npz: the archive is truncated: key "dataset\/images\/1\.png" is cut short/);
    // Cut exactly between entries: every entry read is whole, but the directory is gone.
    const between = write('truncated-between.npz', bytes.subarray(0, 30 + first.name.length + first.data.length));
    await expect(readAll(between)).rejects.toThrow(/truncated-between\.npz: the archive is truncated: its end-of-central-directory record is missing/);
  });

  it('refuses bytes appended after the end of the archive', async () => {
    const file = write('appended.npz', Buffer.concat([zipBytes(goodEntries()), Buffer.from('trailing garbage')]));
    await expect(readAll(file)).rejects.toThrow(/appended\.npz: 16 bytes follow the end of the ZIP archive/);
  });

  it('refuses a local header that disagrees with the central directory (CRC or size)', async () => {
    const wrongCrc = write(
      'local-crc.npz',
      zipBytes(goodEntries(), (entry, header) => entry.name.startsWith('dataset/images/2') && header.writeUInt32LE(0xdeadbeef, 14)),
    );
    await expect(readAll(wrongCrc)).rejects.toThrow(/local-crc\.npz: entry "dataset\/images\/2\.png\.npy": its local header \(CRC 0xdeadbeef/);
    const wrongSize = write(
      'local-size.npz',
      zipBytes(goodEntries(), (entry, header) => entry.name.startsWith('dataset/images/3') && header.writeUInt32LE(12, 22)),
    );
    await expect(readAll(wrongSize)).rejects.toThrow(
      /local-size\.npz: entry "dataset\/images\/3\.png\.npy": its local header .* disagrees with the central directory/,
    );
  });

  it('refuses a 500 KB archive declaring one 512 MiB entry before inflating it, naming file and key', async () => {
    const bomb = deflatedZeros(encodeNpy(new Float32Array(0), [0]), 512);
    const entry: RawEntry = { name: 'dataset/images/0.png.npy', data: bomb.data, method: 8, crc: bomb.crc, size: bomb.size };
    const file = write('bomb-512.npz', zipBytes([entry]));
    expect(fs.statSync(file).size).toBeLessThan(1 << 20);
    const before = process.resourceUsage().maxRSS;
    await expect(readAll(file)).rejects.toThrow(
      /bomb-512\.npz, key "dataset\/images\/0\.png": the entry declares 53687\d{4} bytes, more than the 1048576 one embedding may take; nothing was inflated/,
    );
    expect((process.resourceUsage().maxRSS - before) * 1024).toBeLessThan(128 * 1024 * 1024);
  });

  it('never inflates past the declared size: a 1 MB archive whose header says 16 floats but holds 1 GiB, and its variants', async () => {
    const before = process.resourceUsage().maxRSS;
    const header16 = encodeNpy(new Float32Array(16), [16]);
    const gib = deflatedZeros(header16, 1024);
    const entryName = 'dataset/images/0.png.npy';
    // Declaring the honest 192 bytes of 16 floats: 1 MB of deflate data cannot inflate to that little.
    const honest = write('bomb-1g.npz', zipBytes([{ name: entryName, data: gib.data, method: 8, crc: gib.crc, size: header16.length }]));
    expect(fs.statSync(honest).size).toBeLessThan(2 << 20);
    await expect(readAll(honest)).rejects.toThrow(/bomb-1g\.npz, key "dataset\/images\/0\.png": the compressed size \d+ is impossible for 192 deflated bytes/);
    // Declaring the true 1 GiB: refused before inflating, like any entry over the cap.
    await expect(
      readAll(write('bomb-1g-declared.npz', zipBytes([{ name: entryName, data: gib.data, method: 8, crc: gib.crc, size: gib.size }]))),
    ).rejects.toThrow(/declares 107374\d{4} bytes, more than the 1048576/);
    // Declaring 1 MiB (a plausible size for ~0.5 MB of deflate) while the header says 16 floats: stopped at the header.
    const half = deflatedZeros(header16, 512);
    await expect(readAll(write('bomb-header.npz', zipBytes([{ name: entryName, data: half.data, method: 8, crc: half.crc, size: 1 << 20 }])))).rejects.toThrow(
      /bomb-header\.npz, key "dataset\/images\/0\.png": its \.npy header says shape \(16\) of <f4, 192 bytes, but the ZIP entry declares 1048576; stopped before reading further/,
    );
    // A header and a declared size that agree on 1 MiB, over 512 MiB of data: inflation stops at the cap.
    const fullHeader = encodeNpy(new Float32Array(0), [0]);
    const values = ((1 << 20) - fullHeader.length) / 4;
    const header1m = encodeNpy(new Float32Array(values), [values]).subarray(0, fullHeader.length);
    const capped = deflatedZeros(header1m, 512);
    await expect(readAll(write('bomb-cap.npz', zipBytes([{ name: entryName, data: capped.data, method: 8, crc: capped.crc, size: 1 << 20 }])))).rejects.toThrow(
      /bomb-cap\.npz, key "dataset\/images\/0\.png": it inflates to more than the 1048576 bytes it declares/,
    );
    expect((process.resourceUsage().maxRSS - before) * 1024).toBeLessThan(128 * 1024 * 1024);
  });

  it('refuses an entry whose .npy shape disagrees with the size the directory declares, before reading its data', async () => {
    const header = encodeNpy(new Float32Array(16), [16]).subarray(0, 128);
    const lying = Buffer.concat([header, Buffer.alloc(4000)]);
    const file = write('shape-lies.npz', zipBytes([storedEntry('dataset/images/0.png.npy', lying)]));
    await expect(readAll(file)).rejects.toThrow(
      /shape-lies\.npz, key "dataset\/images\/0\.png": its \.npy header says shape \(16\) of <f4, 192 bytes, but the ZIP entry declares 4128/,
    );
  });

  it.skipIf(!hasNumpy)('reads what numpy writes: np.savez (ZIP64 local headers) and np.savez_compressed', async () => {
    const script = [
      'import numpy as np, sys',
      "arrays = {f'dataset/images/{i}.png': (np.arange(8, dtype='<f4') * (i + 1)) for i in range(3)}",
      'np.savez(sys.argv[1], **arrays)',
      'np.savez_compressed(sys.argv[2], **arrays)',
    ].join('\n');
    const plain = path.join(work, 'numpy-plain.npz');
    const compressed = path.join(work, 'numpy-compressed.npz');
    expect(spawnSync('python3', ['-c', script, plain, compressed]).status).toBe(0);
    for (const file of [plain, compressed]) {
      const values: number[][] = [];
      for await (const entry of readNpzEntries(file)) values.push(Array.from(entry.data));
      expect(values).toEqual([0, 1, 2].map((index) => Array.from({ length: 8 }, (_, value) => value * (index + 1))));
    }
  });
});

describe('embeddings import is all-or-nothing', () => {
  it('stores nothing, not even the model row, when an entry fails its CRC or the archive is truncated', async () => {
    const { repository, library: lib } = library(4);
    const bytes = zipBytes(goodEntries());
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 200]! ^= 0x01;
    const corrupt = write('import-flipped.npz', flipped);
    const truncated = write('import-truncated.npz', bytes.subarray(0, bytes.length - 120));
    for (const file of [corrupt, truncated]) {
      await expect(importEmbeddingsFile(repository, { file, modelId: 'scin-precomputed' })).rejects.toThrow(
        new RegExp(path.basename(file).replace('.', '\\.')),
      );
      expect(repository.model('scin-precomputed'), file).toBeUndefined();
      expect((lib.db.prepare('SELECT COUNT(*) AS n FROM embeddings').get() as { n: number }).n, file).toBe(0);
    }
    // The id is still free: the intact file imports under it.
    const good = write('import-good.npz', bytes);
    expect((await importEmbeddingsFile(repository, { file: good, modelId: 'scin-precomputed' })).stored).toBe(4);
  });
});

describe('dermws models remove', () => {
  it('removes a model with no embeddings after --yes, and refuses one that holds embeddings', async () => {
    const { repository, library: lib } = library(2);
    const root = lib.paths.root;
    const unmatched = write('unmatched.npz', zipBytes([storedEntry('elsewhere/x.png.npy', encodeNpy(vector(8, 1), [8]))]));
    const imported = await importEmbeddingsFile(repository, { file: unmatched, modelId: 'wrong-file' });
    expect(imported.stored).toBe(0);
    expect(repository.model('wrong-file')).toBeDefined();
    lib.close();

    const unconfirmed = await runDermws('--library', root, '--json', 'models', 'remove', 'wrong-file');
    expect(unconfirmed.code).not.toBe(0);
    expect(unconfirmed.json.error.message).toMatch(/--yes/);
    const removed = await runDermws('--library', root, '--json', 'models', 'remove', 'wrong-file', '--yes');
    expect(removed.code).toBe(0);
    expect(removed.json).toEqual({ removed: 'wrong-file', source: 'imported' });

    const good = write('remove-good.npz', zipBytes([0, 1].map((index) => storedEntry(`dataset/images/${index}.png.npy`, encodeNpy(vector(8, index), [8])))));
    expect((await runDermws('--library', root, '--json', 'embeddings', 'import', good, '--model', 'wrong-file')).json.stored).toBe(2);
    const refused = await runDermws('--library', root, '--json', 'models', 'remove', 'wrong-file', '--yes');
    expect(refused.code).not.toBe(0);
    expect(refused.json.error.message).toMatch(/holds 2 embedding\(s\).*nothing was removed/);
    const missing = await runDermws('--library', root, '--json', 'models', 'remove', 'no-such-model', '--yes');
    expect(missing.json.error.code).toBe('not-found');
  });
});
