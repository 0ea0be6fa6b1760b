import fs from 'node:fs';
import path from 'node:path';
import { Unzip, UnzipInflate, Zip, ZipDeflate, ZipPassThrough, type UnzipFile } from 'fflate';
import { DermError } from '../../common/errors.js';
import { decodeNpy, encodeNpy, type FloatArray, type NpyArray } from './npy-format.js';

/**
 * NumPy `.npz` archives: a ZIP whose entries are `.npy` files named `<key>.npy` (what `np.savez`
 * writes; SCIN's precomputed embeddings use image paths such as `dataset/images/<id>.png` as keys).
 * The reader streams the archive through fflate, so a 500 MB file is read once, in chunks, and only
 * one entry is held in memory at a time.
 */

export interface NpzEntry extends NpyArray {
  /** Entry name without the `.npy` suffix (the key `np.load(file)[key]` uses). */
  key: string;
}

const readChunkBytes = 1 << 20;
/** ZIP without the ZIP64 extension (fflate writes none) cannot hold more than 4 GiB. */
const maxZipBytes = 0xffffffff;

/** Yields every `.npy` entry of an `.npz` file in archive order. Errors name the file and the key. */
export async function* readNpzEntries(file: string): AsyncGenerator<NpzEntry> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r');
  } catch (error) {
    throw new DermError('not-found', `Cannot read ${file}: ${(error as Error).message}`, { file });
  }
  const ready: NpzEntry[] = [];
  let failure: unknown;
  let sawZipEntry = false;
  const unzip = new Unzip((entry: UnzipFile) => {
    sawZipEntry = true;
    if (entry.name.endsWith('/')) return;
    const key = entry.name.endsWith('.npy') ? entry.name.slice(0, -'.npy'.length) : entry.name;
    const source = `${file}, key "${key}"`;
    const chunks: Uint8Array[] = [];
    entry.ondata = (error, data, final) => {
      if (failure) return;
      if (error) {
        failure = new DermError('embeddings-invalid', `${source}: the ZIP entry cannot be read (${error.message}).`, { file, key });
        return;
      }
      chunks.push(data);
      if (!final) return;
      try {
        const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        ready.push({ key, ...decodeNpy(bytes, source) });
      } catch (decodeError) {
        failure = decodeError;
      }
    };
    try {
      entry.start();
    } catch (error) {
      failure = new DermError('embeddings-invalid', `${source}: unsupported ZIP compression (${(error as Error).message}).`, { file, key });
    }
  });
  unzip.register(UnzipInflate);

  try {
    const buffer = Buffer.alloc(readChunkBytes);
    let position = 0;
    let first = true;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (first) {
        first = false;
        if (bytesRead < 4 || buffer.readUInt32LE(0) !== 0x04034b50) {
          throw new DermError('embeddings-invalid', `${file} is not an .npz file (it is not a ZIP archive).`, { file });
        }
      }
      position += bytesRead;
      // fflate may keep a reference to the pushed chunk, so each push gets its own copy.
      unzip.push(Uint8Array.prototype.slice.call(buffer, 0, bytesRead), bytesRead === 0);
      if (failure) throw failure;
      while (ready.length > 0) yield ready.shift()!;
      if (bytesRead === 0) break;
    }
    if (!sawZipEntry) throw new DermError('embeddings-invalid', `${file} holds no arrays.`, { file });
  } finally {
    await handle.close();
  }
}

export interface WriteNpzOptions {
  /** Deflate entries (smaller, slower); default false: stored, like `np.savez`. */
  compress?: boolean;
}

/**
 * Writes an `.npz` (like `np.savez`/`np.savez_compressed`) entry by entry, so the whole archive is
 * never in memory. Written to a temporary file and renamed at the end: a failure leaves no half file.
 * Entry times are fixed (1980-01-01) so the same arrays always give the same bytes.
 */
export function writeNpz(
  file: string,
  entries: Iterable<[key: string, data: FloatArray, shape: readonly number[]]>,
  options: WriteNpzOptions = {},
): { entries: number; bytes: number } {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const temporary = `${file}.${process.pid}.partial`;
  const fd = fs.openSync(temporary, 'w');
  let bytes = 0;
  let count = 0;
  let zipError: Error | undefined;
  const seen = new Set<string>();
  try {
    const zip = new Zip((error, data) => {
      if (error) {
        zipError = error;
        return;
      }
      bytes += data.length;
      if (bytes > maxZipBytes) {
        zipError = new DermError('invalid-input', `${file} would exceed 4 GiB, the limit of a ZIP without ZIP64; export fewer images per file.`, { file });
        return;
      }
      fs.writeSync(fd, data);
    });
    const mtime = new Date(1980, 0, 1, 12, 0, 0);
    for (const [key, data, shape] of entries) {
      if (!key || key.startsWith('/') || key.split('/').includes('..')) {
        throw new DermError('invalid-input', `${file}: the key "${key}" cannot be an npz entry name (empty, absolute or containing "..").`, { file, key });
      }
      if (seen.has(key)) throw new DermError('invalid-input', `${file}: the key "${key}" appears twice.`, { file, key });
      seen.add(key);
      const entry = options.compress ? new ZipDeflate(`${key}.npy`, { level: 6 }) : new ZipPassThrough(`${key}.npy`);
      entry.mtime = mtime;
      zip.add(entry);
      entry.push(encodeNpy(data, shape), true);
      if (zipError) throw zipError;
      count++;
    }
    zip.end();
    if (zipError) throw zipError;
    fs.closeSync(fd);
    fs.renameSync(temporary, file);
    return { entries: count, bytes };
  } catch (error) {
    try {
      fs.closeSync(fd);
    } catch {
      // Already closed after a successful write; nothing to release.
    }
    fs.rmSync(temporary, { force: true });
    throw error;
  }
}
