import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { DermError } from '../../common/errors.js';
import { fflate } from '../runtime/lazy-packages.js';
import { decodeNpy, elementCount, encodeNpy, itemSize, npyHeaderLength, parseNpyHeader, type FloatArray, type NpyArray } from './npy-format.js';

/**
 * NumPy `.npz` archives: a ZIP whose entries are `.npy` files named `<key>.npy` (what `np.savez`
 * writes; SCIN's precomputed embeddings use image paths such as `dataset/images/<id>.png` as keys).
 * The reader parses the ZIP structure itself (end record, central directory, local headers) so that it
 * can check every size and CRC-32 before trusting an entry, and inflates with Node's zlib under a hard
 * cap; only one entry is held in memory at a time. The writer uses fflate.
 */

export interface NpzEntry extends NpyArray {
  /** Entry name without the `.npy` suffix (the key `np.load(file)[key]` uses). */
  key: string;
}

export interface ReadNpzOptions {
  /**
   * Most bytes one entry may hold once inflated (default 1 MiB: one embedding of up to 131,072 float32
   * or 65,536 float64 values with its header). Checked against the sizes the archive declares before
   * anything is inflated, and enforced while inflating.
   */
  maxEntryBytes?: number;
  /** Most bytes all entries together may declare (default 2 GiB), checked before the first entry is read. */
  maxTotalBytes?: number;
}

export const defaultMaxNpzEntryBytes = 1 << 20;
export const defaultMaxNpzTotalBytes = 2 * 1024 * 1024 * 1024;

const readChunkBytes = 1 << 16;
/** ZIP without the ZIP64 extension (fflate writes none) cannot hold more than 4 GiB. */
const maxZipBytes = 0xffffffff;

const signatures = {
  local: 0x04034b50,
  central: 0x02014b50,
  end: 0x06054b50,
  zip64End: 0x06064b50,
  zip64Locator: 0x07064b50,
  descriptor: 0x08074b50,
} as const;

/** One entry as the central directory describes it, checked against its local header. */
interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localOffset: number;
  /** Where the (compressed) data starts, after the local header. */
  dataOffset: number;
}

/**
 * Yields every `.npy` entry of an `.npz` file in archive order. Nothing is trusted: the end record,
 * the central directory and every local header (and data descriptor) must agree on each entry's name,
 * method, CRC-32 and sizes; entries may not overlap or run past the directory; each entry's declared
 * size is bounded before it is inflated, its inflated bytes are capped at that size and its .npy
 * header must account for exactly those bytes; and the CRC-32 of what was inflated must match. A
 * truncated archive has no end record and is refused, naming the entry where it was cut. Every error
 * names the file and, where there is one, the key. Only one entry is in memory at a time.
 */
export async function* readNpzEntries(file: string, options: ReadNpzOptions = {}): AsyncGenerator<NpzEntry> {
  const maxEntryBytes = options.maxEntryBytes ?? defaultMaxNpzEntryBytes;
  const maxTotalBytes = options.maxTotalBytes ?? defaultMaxNpzTotalBytes;
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r');
  } catch (error) {
    throw new DermError('not-found', `Cannot read ${file}: ${(error as Error).message}`, { file });
  }
  try {
    const size = (await handle.stat()).size;
    const read = readAhead(handle, size);
    const first = await read(0, 4);
    if (first.length < 4 || first.readUInt32LE(0) !== signatures.local) {
      throw new DermError('embeddings-invalid', `${file} is not an .npz file (it is not a ZIP archive).`, { file });
    }
    const entries = await readCentralDirectory(file, size, read);
    const declared = entries.reduce((total, entry) => total + entry.size, 0);
    if (declared > maxTotalBytes) {
      throw new DermError(
        'embeddings-invalid',
        `${file}: its entries declare ${declared} bytes in total, more than the ${maxTotalBytes} an embeddings archive may hold; nothing was read.`,
        { file },
      );
    }
    if (entries.length === 0) throw new DermError('embeddings-invalid', `${file} holds no arrays.`, { file });
    for (const entry of entries) {
      if (entry.name.endsWith('/')) continue;
      const key = entry.name.endsWith('.npy') ? entry.name.slice(0, -'.npy'.length) : entry.name;
      const source = `${file}, key "${key}"`;
      const fail = (problem: string): never => {
        throw new DermError('embeddings-invalid', `${source}: ${problem}`, { file, key });
      };
      if (entry.size > maxEntryBytes) {
        fail(`the entry declares ${entry.size} bytes, more than the ${maxEntryBytes} one embedding may take; nothing was inflated.`);
      }
      if (entry.method === 0 && entry.compressedSize !== entry.size)
        fail(`a stored entry's sizes disagree (${entry.compressedSize} stored, ${entry.size} declared).`);
      // Deflate never expands by more than 5 bytes per 16 KiB block, so a larger compressed size is not deflate.
      if (entry.method === 8 && entry.compressedSize > entry.size + Math.ceil(entry.size / 16384) * 5 + 64) {
        fail(`the compressed size ${entry.compressedSize} is impossible for ${entry.size} deflated bytes.`);
      }
      const bytes = await inflateEntry(read, entry, maxEntryBytes, fail);
      const crc = zlib.crc32(bytes) >>> 0;
      if (crc !== entry.crc32) fail(`CRC-32 mismatch (stored ${hex(entry.crc32)}, data ${hex(crc)}): the archive is damaged.`);
      yield { key, ...decodeNpy(bytes, source) };
    }
  } finally {
    await handle.close();
  }
}

type ReadAt = (position: number, length: number) => Promise<Buffer>;

/**
 * Reads through a 1 MiB window: the checks walk the archive in file order in small steps (a header,
 * a name, a descriptor, an embedding), so one read of the disk serves many of them. Returns copies.
 */
function readAhead(handle: fs.promises.FileHandle, size: number): ReadAt {
  const windowBytes = 1 << 20;
  let window = Buffer.alloc(0);
  let windowStart = 0;
  return async (position, length) => {
    const wanted = Math.max(0, Math.min(length, size - position));
    if (position >= windowStart && position + wanted <= windowStart + window.length) {
      return Buffer.from(window.subarray(position - windowStart, position - windowStart + wanted));
    }
    if (wanted > windowBytes) {
      const buffer = Buffer.alloc(wanted);
      const { bytesRead } = await handle.read(buffer, 0, wanted, position);
      return buffer.subarray(0, bytesRead);
    }
    const next = Buffer.alloc(Math.min(windowBytes, size - position));
    const { bytesRead } = await handle.read(next, 0, next.length, position);
    window = next.subarray(0, bytesRead);
    windowStart = position;
    return Buffer.from(window.subarray(0, Math.min(wanted, window.length)));
  };
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

/** Reads the end record (ZIP64 too), the central directory and every local header, and checks that they agree. */
async function readCentralDirectory(file: string, size: number, read: ReadAt): Promise<ZipEntry[]> {
  const fail = (problem: string, details: Record<string, unknown> = {}): never => {
    throw new DermError('embeddings-invalid', `${file}: ${problem}`, { file, ...details });
  };
  // The end record is 22 bytes plus a comment of at most 65,535 bytes, at the very end of the file.
  const tailStart = Math.max(0, size - (22 + 0xffff));
  const tail = await read(tailStart, size - tailStart);
  let endAt = -1;
  for (let index = tail.length - 22; index >= 0; index--) {
    if (tail.readUInt32LE(index) === signatures.end && index + 22 + tail.readUInt16LE(index + 20) === tail.length) {
      endAt = index;
      break;
    }
  }
  if (endAt < 0) {
    for (let index = tail.length - 22; index >= 0; index--) {
      if (tail.readUInt32LE(index) === signatures.end && index + 22 + tail.readUInt16LE(index + 20) < tail.length) {
        const extra = tail.length - (index + 22 + tail.readUInt16LE(index + 20));
        return fail(`${extra} bytes follow the end of the ZIP archive (something was appended or the file is damaged). Nothing was imported.`);
      }
    }
    return fail(`${await describeTruncation(size, read)} Nothing was imported.`);
  }
  const end = tail.subarray(endAt);
  const endOffset = tailStart + endAt;
  if (end.readUInt16LE(4) !== 0 || end.readUInt16LE(6) !== 0) fail('multi-part (split) ZIP archives are not supported.');
  let count = end.readUInt16LE(10);
  let directorySize = end.readUInt32LE(12);
  let directoryOffset = end.readUInt32LE(16);
  let directoryEnd = endOffset;
  if (count === 0xffff || directorySize === 0xffffffff || directoryOffset === 0xffffffff) {
    const locator = endOffset >= 20 ? await read(endOffset - 20, 20) : Buffer.alloc(0);
    if (locator.length < 20 || locator.readUInt32LE(0) !== signatures.zip64Locator) fail('the end record asks for ZIP64 but the ZIP64 locator is missing.');
    const zip64Offset = Number(locator.readBigUInt64LE(8));
    const zip64 = await read(zip64Offset, 56);
    if (zip64.length < 56 || zip64.readUInt32LE(0) !== signatures.zip64End || zip64Offset + 56 > endOffset - 20)
      fail('the ZIP64 end record is missing or damaged.');
    count = Number(zip64.readBigUInt64LE(32));
    directorySize = Number(zip64.readBigUInt64LE(40));
    directoryOffset = Number(zip64.readBigUInt64LE(48));
    directoryEnd = zip64Offset;
  }
  if (directoryOffset + directorySize !== directoryEnd) {
    fail(
      `the central directory (${directorySize} bytes at ${directoryOffset}) does not end where the end record starts (${directoryEnd}); the archive is damaged or was cut and patched.`,
    );
  }
  const directory = await read(directoryOffset, directorySize);
  if (directory.length !== directorySize) fail('the central directory is cut short.');

  const entries: ZipEntry[] = [];
  const names = new Set<string>();
  let position = 0;
  for (let index = 0; index < count; index++) {
    if (position + 46 > directory.length || directory.readUInt32LE(position) !== signatures.central)
      fail(`central directory entry ${index + 1} of ${count} is damaged.`);
    const flags = directory.readUInt16LE(position + 8);
    const method = directory.readUInt16LE(position + 10);
    const crc32 = directory.readUInt32LE(position + 16);
    let compressedSize = directory.readUInt32LE(position + 20);
    let entrySize = directory.readUInt32LE(position + 24);
    const nameLength = directory.readUInt16LE(position + 28);
    const extraLength = directory.readUInt16LE(position + 30);
    const commentLength = directory.readUInt16LE(position + 32);
    let localOffset = directory.readUInt32LE(position + 42);
    const name = directory.toString('utf8', position + 46, position + 46 + nameLength);
    const extra = directory.subarray(position + 46 + nameLength, position + 46 + nameLength + extraLength);
    const zip64 = zip64Fields(extra);
    if (entrySize === 0xffffffff) entrySize = zip64.shift() ?? fail(`entry "${name}" lacks its ZIP64 size.`, { entry: name });
    if (compressedSize === 0xffffffff) compressedSize = zip64.shift() ?? fail(`entry "${name}" lacks its ZIP64 compressed size.`, { entry: name });
    if (localOffset === 0xffffffff) localOffset = zip64.shift() ?? fail(`entry "${name}" lacks its ZIP64 offset.`, { entry: name });
    position += 46 + nameLength + extraLength + commentLength;
    if (flags & 0x1) fail(`entry "${name}" is encrypted, which .npz files never are.`, { entry: name });
    if (method !== 0 && method !== 8)
      fail(`entry "${name}" uses ZIP compression method ${method}; only stored (0) and deflated (8) entries are supported.`, { entry: name });
    if (names.has(name)) fail(`entry "${name}" appears twice in the archive.`, { entry: name });
    names.add(name);
    entries.push({ name, method, flags, crc32, compressedSize, size: entrySize, localOffset, dataOffset: 0 });
  }
  if (position !== directory.length) fail(`the central directory holds more than the ${count} entries the end record counts.`);

  // Local headers, in file order: each must repeat what the directory says, and no entry may overlap the next.
  const ordered = [...entries].sort((a, b) => a.localOffset - b.localOffset);
  for (const [index, entry] of ordered.entries()) {
    const where = (problem: string): never => fail(`entry "${entry.name}": ${problem}`, { entry: entry.name });
    const header = await read(entry.localOffset, 30);
    if (header.length < 30 || header.readUInt32LE(0) !== signatures.local) where(`no local header at byte ${entry.localOffset}.`);
    const nameLength = header.readUInt16LE(26);
    const extraLength = header.readUInt16LE(28);
    const variable = await read(entry.localOffset + 30, nameLength + extraLength);
    if (variable.length < nameLength + extraLength) where('the local header is cut short.');
    const localName = variable.toString('utf8', 0, nameLength);
    if (localName !== entry.name) where(`the local header names it "${localName}".`);
    if (header.readUInt16LE(8) !== entry.method) where('the local header and the central directory disagree on the compression method.');
    const localFlags = header.readUInt16LE(6);
    const localZip64 = zip64Fields(variable.subarray(nameLength));
    const hasZip64 = variable.subarray(nameLength).length > 0 && localZip64.length > 0;
    entry.dataOffset = entry.localOffset + 30 + nameLength + extraLength;
    const dataEnd = entry.dataOffset + entry.compressedSize;
    let recordEnd = dataEnd;
    if (localFlags & 0x8) {
      // Sizes and CRC follow the data in a data descriptor (optionally signed, 32- or 64-bit sizes).
      const descriptor = await read(dataEnd, 24);
      const signed = descriptor.length >= 4 && descriptor.readUInt32LE(0) === signatures.descriptor ? 4 : 0;
      const wide = hasZip64 || entry.size > 0xfffffffe || entry.compressedSize > 0xfffffffe;
      const length = signed + 4 + (wide ? 16 : 8);
      if (descriptor.length < length) where('its data descriptor is cut short.');
      const crc = descriptor.readUInt32LE(signed);
      const compressed = wide ? Number(descriptor.readBigUInt64LE(signed + 4)) : descriptor.readUInt32LE(signed + 4);
      const uncompressed = wide ? Number(descriptor.readBigUInt64LE(signed + 12)) : descriptor.readUInt32LE(signed + 8);
      if (crc !== entry.crc32 || compressed !== entry.compressedSize || uncompressed !== entry.size) {
        where(
          `its data descriptor (CRC ${hex(crc)}, ${compressed} → ${uncompressed} bytes) disagrees with the central directory (CRC ${hex(entry.crc32)}, ${entry.compressedSize} → ${entry.size} bytes).`,
        );
      }
      recordEnd = dataEnd + length;
    } else {
      let compressed = header.readUInt32LE(18);
      let uncompressed = header.readUInt32LE(22);
      if (uncompressed === 0xffffffff) uncompressed = localZip64.shift() ?? where('its local header lacks the ZIP64 size.');
      if (compressed === 0xffffffff) compressed = localZip64.shift() ?? where('its local header lacks the ZIP64 compressed size.');
      const crc = header.readUInt32LE(14);
      if (crc !== entry.crc32 || compressed !== entry.compressedSize || uncompressed !== entry.size) {
        where(
          `its local header (CRC ${hex(crc)}, ${compressed} → ${uncompressed} bytes) disagrees with the central directory (CRC ${hex(entry.crc32)}, ${entry.compressedSize} → ${entry.size} bytes).`,
        );
      }
    }
    const next = ordered[index + 1]?.localOffset ?? directoryOffset;
    if (recordEnd > next)
      where(
        `its data (bytes ${entry.dataOffset}–${recordEnd}) runs into ${ordered[index + 1] ? `entry "${ordered[index + 1]!.name}"` : 'the central directory'}.`,
      );
  }
  return ordered;
}

/** The 64-bit values of a ZIP64 extended-information extra field (id 1), in the order they appear. */
function zip64Fields(extra: Buffer): number[] {
  let position = 0;
  while (position + 4 <= extra.length) {
    const id = extra.readUInt16LE(position);
    const length = extra.readUInt16LE(position + 2);
    if (id === 0x0001) {
      const values: number[] = [];
      for (let offset = position + 4; offset + 8 <= Math.min(extra.length, position + 4 + length); offset += 8)
        values.push(Number(extra.readBigUInt64LE(offset)));
      return values;
    }
    position += 4 + length;
  }
  return [];
}

/**
 * Why a file that starts like a ZIP has no end record: walks the local headers from the start to name
 * the entry that was cut (or says the directory is missing when every entry is whole).
 */
async function describeTruncation(size: number, read: ReadAt): Promise<string> {
  let position = 0;
  let whole = 0;
  for (;;) {
    const header = await read(position, 30);
    if (header.length < 30 || header.readUInt32LE(0) !== signatures.local) break;
    const nameLength = header.readUInt16LE(26);
    const extraLength = header.readUInt16LE(28);
    const variable = await read(position + 30, nameLength + extraLength);
    const name = variable.toString('utf8', 0, Math.min(nameLength, variable.length));
    const key = name.endsWith('.npy') ? name.slice(0, -4) : name;
    const flags = header.readUInt16LE(6);
    let compressed = header.readUInt32LE(18);
    if (compressed === 0xffffffff) compressed = zip64Fields(variable.subarray(nameLength))[1] ?? -1;
    const dataStart = position + 30 + nameLength + extraLength;
    if (flags & 0x8 || compressed < 0) {
      return `the archive is truncated or damaged: it has no end-of-central-directory record (the file is ${size} bytes; ${whole} entries before key "${key}" are complete, "${key}" itself cannot be checked).`;
    }
    if (variable.length < nameLength + extraLength || dataStart + compressed > size) {
      return `the archive is truncated: key "${key}" is cut short at byte ${size} (its data needs bytes ${dataStart}–${dataStart + compressed}), and the end-of-central-directory record is missing.`;
    }
    whole++;
    position = dataStart + compressed;
  }
  return `the archive is truncated: its end-of-central-directory record is missing (the file ends at byte ${size}, after ${whole} complete entries).`;
}

/**
 * The entry's bytes, inflated (or copied when stored) in chunks of 64 KiB into a buffer of exactly the
 * declared size, never more. The .npy header is checked as soon as it has arrived: a header whose shape
 * needs a different number of bytes than the entry declares stops the entry there.
 */
async function inflateEntry(read: ReadAt, entry: ZipEntry, maxEntryBytes: number, fail: (problem: string) => never): Promise<Uint8Array> {
  const out = Buffer.alloc(entry.size);
  let filled = 0;
  let headerChecked = false;
  let failure: unknown;
  const accept = (chunk: Uint8Array) => {
    if (failure) return;
    if (filled + chunk.length > entry.size) {
      failure = new Error(`it inflates to more than the ${entry.size} bytes it declares (a decompression bomb or a damaged entry); stopped there.`);
      return;
    }
    out.set(chunk, filled);
    filled += chunk.length;
    if (!headerChecked && filled >= 12) {
      try {
        const headerLength = npyHeaderLength(out.subarray(0, filled), 'entry');
        if (filled >= headerLength || headerLength > entry.size) {
          headerChecked = true;
          const header = parseNpyHeader(out.subarray(0, Math.min(filled, entry.size)), 'entry');
          const needed = header.dataOffset + elementCount(header.shape) * itemSize(header.dtype);
          if (needed > maxEntryBytes || needed !== entry.size) {
            failure = new Error(
              `its .npy header says shape (${header.shape.join(', ')}) of ${header.dtype}, ${needed} bytes, but the ZIP entry declares ${entry.size}; stopped before reading further.`,
            );
          }
        }
      } catch (error) {
        // The full decode below reports header problems with the file and key in the message.
        headerChecked = true;
        void error;
      }
    }
  };

  let position = entry.dataOffset;
  const end = entry.dataOffset + entry.compressedSize;
  if (entry.method === 0) {
    while (position < end && !failure) {
      const chunk = await read(position, Math.min(readChunkBytes, end - position));
      if (chunk.length === 0) fail('the entry is cut short.');
      accept(chunk);
      position += chunk.length;
    }
  } else {
    const inflater = zlib.createInflateRaw({ chunkSize: readChunkBytes });
    let ended = false;
    const finished = new Promise<void>((resolve, reject) => {
      inflater.on('data', (chunk: Buffer) => {
        accept(chunk);
        if (failure) inflater.destroy();
      });
      inflater.once('end', () => {
        ended = true;
        resolve();
      });
      inflater.once('close', () => resolve());
      inflater.once('error', reject);
    });
    try {
      while (position < end && !failure && !inflater.destroyed) {
        const chunk = await read(position, Math.min(readChunkBytes, end - position));
        if (chunk.length === 0) fail('the entry is cut short.');
        position += chunk.length;
        if (!inflater.write(chunk)) {
          await new Promise<void>((resolve) => {
            const done = () => {
              inflater.off('drain', done);
              inflater.off('close', done);
              resolve();
            };
            inflater.on('drain', done);
            inflater.on('close', done);
          });
        }
      }
      if (!failure && !inflater.destroyed) inflater.end();
      await finished;
    } catch (error) {
      if (!failure) fail(`the deflated data is damaged (${(error as Error).message}).`);
    } finally {
      inflater.destroy();
    }
    if (!failure && !ended) fail('the deflated data is damaged.');
    if (!failure && inflater.bytesWritten !== entry.compressedSize) {
      fail(`the deflate stream ends after ${inflater.bytesWritten} of its ${entry.compressedSize} compressed bytes.`);
    }
  }
  if (failure) fail((failure as Error).message);
  if (filled !== entry.size) fail(`it inflates to ${filled} bytes but declares ${entry.size} (truncated or damaged).`);
  return out;
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
    const zip = new fflate.Zip((error, data) => {
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
      const entry = options.compress ? new fflate.ZipDeflate(`${key}.npy`, { level: 6 }) : new fflate.ZipPassThrough(`${key}.npy`);
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
