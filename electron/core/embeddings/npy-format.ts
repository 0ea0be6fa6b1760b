import fs from 'node:fs';
import path from 'node:path';
import { DermError } from '../../common/errors.js';

/**
 * NumPy `.npy` files (format versions 1.0, 2.0 and 3.0, https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html).
 * Only what embeddings need is accepted: little-endian float32 (`<f4`) and float64 (`<f8`) in C order.
 * Anything else (other dtypes, big-endian, Fortran order, object arrays) is refused with a message
 * naming the source, so a wrong file never turns into silently wrong vectors.
 */

export type NpyDtype = '<f4' | '<f8';
export type FloatArray = Float32Array | Float64Array;

export interface NpyHeader {
  dtype: NpyDtype;
  shape: number[];
  /** Byte offset of the first value (magic + version + length field + header text). */
  dataOffset: number;
  version: 1 | 2 | 3;
}

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  /** C-order values; Float32Array for `<f4`, Float64Array for `<f8`. */
  data: FloatArray;
}

const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** Bytes needed to read any header's length field. */
export const npyPreambleBytes = 12;

export function itemSize(dtype: NpyDtype): number {
  return dtype === '<f4' ? 4 : 8;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, size) => product * size, 1);
}

function invalid(source: string, problem: string): DermError {
  return new DermError('embeddings-invalid', `${source}: ${problem}`, { source });
}

/** Length of the whole header (preamble + dictionary text) from the first bytes, so a reader can fetch exactly that. */
export function npyHeaderLength(bytes: Uint8Array, source: string): number {
  if (bytes.length < 10 || magic.some((byte, index) => bytes[index] !== byte)) {
    throw invalid(source, 'not a NumPy .npy array (the file does not start with the \\x93NUMPY magic).');
  }
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (major === 1) return 10 + view.getUint16(8, true);
  if (major === 2 || major === 3) {
    if (bytes.length < 12) throw invalid(source, 'the .npy header is truncated.');
    return 12 + view.getUint32(8, true);
  }
  throw invalid(source, `unsupported .npy format version ${major}.${bytes[7]} (versions 1, 2 and 3 are supported).`);
}

/** Parses the header of an .npy file or npz entry; `source` (file name or "file.npz, key …") goes into every error. */
export function parseNpyHeader(bytes: Uint8Array, source: string): NpyHeader {
  const total = npyHeaderLength(bytes, source);
  if (bytes.length < total) throw invalid(source, `the .npy header is truncated (needs ${total} bytes, the data has ${bytes.length}).`);
  const major = bytes[6] as 1 | 2 | 3;
  const textStart = major === 1 ? 10 : 12;
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(textStart, total));
  const dictionary = parsePythonDict(text, source);
  const keys = Object.keys(dictionary).sort();
  if (keys.join(',') !== 'descr,fortran_order,shape') {
    throw invalid(source, `the .npy header must have exactly the keys descr, fortran_order and shape; found ${keys.join(', ') || 'none'}.`);
  }
  const descr = dictionary.descr;
  if (typeof descr !== 'string') throw invalid(source, `the .npy dtype (descr) is not a simple type string: ${JSON.stringify(descr)}.`);
  if (descr !== '<f4' && descr !== '<f8') {
    const hint =
      descr === '>f4' || descr === '>f8'
        ? ' Big-endian arrays are not supported; save with dtype "<f4" or "<f8".'
        : ' Only little-endian float32 (<f4) and float64 (<f8) embeddings are supported.';
    throw invalid(source, `unsupported dtype "${descr}".${hint}`);
  }
  if (dictionary.fortran_order !== false) {
    throw invalid(source, 'the array is stored in Fortran (column-major) order, which is not supported; save it with np.ascontiguousarray first.');
  }
  const shape = dictionary.shape;
  if (!Array.isArray(shape) || shape.some((size) => typeof size !== 'number' || !Number.isInteger(size) || size < 0)) {
    throw invalid(source, `the .npy shape ${JSON.stringify(shape)} is not a tuple of non-negative integers.`);
  }
  return { dtype: descr, shape: shape as number[], dataOffset: total, version: major };
}

/** Decodes a whole .npy byte array (header and data). The values are copied into a fresh, aligned typed array. */
export function decodeNpy(bytes: Uint8Array, source: string): NpyArray {
  const header = parseNpyHeader(bytes, source);
  const expected = elementCount(header.shape) * itemSize(header.dtype);
  const available = bytes.length - header.dataOffset;
  if (available !== expected) {
    throw invalid(
      source,
      `shape (${header.shape.join(', ')}) of ${header.dtype} needs ${expected} data bytes but the array holds ${available}${available < expected ? ' (truncated)' : ''}.`,
    );
  }
  return { dtype: header.dtype, shape: header.shape, data: valuesFromBytes(bytes.subarray(header.dataOffset), header.dtype) };
}

/** Little-endian bytes → typed array, copying so the result is aligned whatever the source offset. */
export function valuesFromBytes(bytes: Uint8Array, dtype: NpyDtype): FloatArray {
  const size = itemSize(dtype);
  const count = bytes.length / size;
  const out = dtype === '<f4' ? new Float32Array(count) : new Float64Array(count);
  if (hostIsLittleEndian) {
    new Uint8Array(out.buffer).set(bytes.subarray(0, count * size));
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let index = 0; index < count; index++) out[index] = size === 4 ? view.getFloat32(index * 4, true) : view.getFloat64(index * 8, true);
  }
  return out;
}

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Encodes an array as a version 1.0 .npy: the header dictionary is padded with spaces and ends with a
 * newline so that magic + version + length + header is a multiple of 64 bytes, as the format asks, so
 * the data that follows is aligned for memory mapping.
 */
export function encodeNpy(data: FloatArray, shape: readonly number[]): Uint8Array {
  if (shape.some((size) => !Number.isInteger(size) || size < 0))
    throw new DermError('invalid-input', `An .npy shape must be non-negative integers; got (${shape.join(', ')}).`);
  if (elementCount(shape) !== data.length) {
    throw new DermError('invalid-input', `An .npy shape (${shape.join(', ')}) holds ${elementCount(shape)} values but ${data.length} were given.`);
  }
  const dtype: NpyDtype = data instanceof Float32Array ? '<f4' : '<f8';
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dictionary = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const unpadded = 10 + dictionary.length + 1;
  const padding = (64 - (unpadded % 64)) % 64;
  const headerText = `${dictionary}${' '.repeat(padding)}\n`;
  if (headerText.length > 0xffff) throw new DermError('invalid-input', `The .npy header for shape (${shape.join(', ')}) is too long for format version 1.0.`);
  const out = new Uint8Array(10 + headerText.length + data.byteLength);
  out.set(magic, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, headerText.length, true);
  for (let index = 0; index < headerText.length; index++) out[10 + index] = headerText.charCodeAt(index);
  const dataStart = 10 + headerText.length;
  if (hostIsLittleEndian) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), dataStart);
  } else {
    const view = new DataView(out.buffer, dataStart);
    const size = dtype === '<f4' ? 4 : 8;
    for (let index = 0; index < data.length; index++) {
      if (size === 4) view.setFloat32(index * 4, data[index]!, true);
      else view.setFloat64(index * 8, data[index]!, true);
    }
  }
  return out;
}

export function readNpy(file: string): NpyArray {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new DermError('not-found', `Cannot read ${file}: ${(error as Error).message}`, { file });
  }
  return decodeNpy(bytes, file);
}

/** Writes an .npy file through a temporary file and a rename, so a failed write never leaves half a file. */
export function writeNpy(file: string, data: FloatArray, shape: readonly number[]): void {
  const bytes = encodeNpy(data, shape);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.partial`;
  fs.writeFileSync(temporary, bytes);
  fs.renameSync(temporary, file);
}

/**
 * Reads a 2-d `.npy` matrix row by row without holding the whole file in memory (a 10,000 × 6144
 * float64 matrix is half a gigabyte). Rows are yielded as copies.
 */
export function* readNpyRows(file: string, rowsPerRead = 256): Generator<{ index: number; row: FloatArray; header: NpyHeader }> {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (error) {
    throw new DermError('not-found', `Cannot read ${file}: ${(error as Error).message}`, { file });
  }
  try {
    const size = fs.fstatSync(fd).size;
    const preamble = Buffer.alloc(Math.min(size, npyPreambleBytes));
    fs.readSync(fd, preamble, 0, preamble.length, 0);
    const headerLength = npyHeaderLength(preamble, file);
    const headerBytes = Buffer.alloc(Math.min(size, headerLength));
    fs.readSync(fd, headerBytes, 0, headerBytes.length, 0);
    const header = parseNpyHeader(headerBytes, file);
    if (header.shape.length !== 2) {
      throw invalid(file, `expected a 2-d matrix of shape (images, dim); the array has shape (${header.shape.join(', ')}).`);
    }
    const [rows, dim] = header.shape as [number, number];
    const rowBytes = dim * itemSize(header.dtype);
    const expected = header.dataOffset + rows * rowBytes;
    if (size !== expected)
      throw invalid(
        file,
        `shape (${rows}, ${dim}) of ${header.dtype} needs ${expected} bytes but the file has ${size}${size < expected ? ' (truncated)' : ''}.`,
      );
    const buffer = Buffer.alloc(rowBytes * Math.max(1, Math.min(rowsPerRead, rows)));
    for (let start = 0; start < rows; start += rowsPerRead) {
      const count = Math.min(rowsPerRead, rows - start);
      fs.readSync(fd, buffer, 0, count * rowBytes, header.dataOffset + start * rowBytes);
      for (let offset = 0; offset < count; offset++) {
        yield { index: start + offset, row: valuesFromBytes(buffer.subarray(offset * rowBytes, (offset + 1) * rowBytes), header.dtype), header };
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

type PythonValue = string | number | boolean | null | PythonValue[] | { [key: string]: PythonValue };

/** A parser for the small Python-literal subset .npy headers use: dicts, strings, ints, True/False/None, tuples and lists. */
function parsePythonDict(text: string, source: string): Record<string, PythonValue> {
  let position = 0;
  const fail = (what: string): never => {
    throw invalid(source, `the .npy header is not a valid Python dictionary (${what} at character ${position}): ${JSON.stringify(text.trim().slice(0, 120))}`);
  };
  const skipSpace = () => {
    while (position < text.length && /\s/.test(text[position]!)) position++;
  };
  const value = (): PythonValue => {
    skipSpace();
    const char = text[position];
    if (char === "'" || char === '"') {
      const end = text.indexOf(char, position + 1);
      if (end < 0) fail('unterminated string');
      const result = text.slice(position + 1, end);
      position = end + 1;
      return result;
    }
    if (char === '(' || char === '[') {
      const close = char === '(' ? ')' : ']';
      position++;
      const items: PythonValue[] = [];
      for (;;) {
        skipSpace();
        if (text[position] === close) {
          position++;
          return items;
        }
        items.push(value());
        skipSpace();
        if (text[position] === ',') position++;
        else if (text[position] !== close) fail(`expected "," or "${close}"`);
      }
    }
    if (char === '{') {
      position++;
      const result: Record<string, PythonValue> = {};
      for (;;) {
        skipSpace();
        if (text[position] === '}') {
          position++;
          return result;
        }
        const key = value();
        if (typeof key !== 'string') fail('a dictionary key that is not a string');
        skipSpace();
        if (text[position] !== ':') fail('expected ":"');
        position++;
        result[key as string] = value();
        skipSpace();
        if (text[position] === ',') position++;
        else if (text[position] !== '}') fail('expected "," or "}"');
      }
    }
    const word = /^(True|False|None|-?\d+)L?/.exec(text.slice(position));
    if (!word) return fail('unexpected text');
    position += word[0].length;
    if (word[1] === 'True') return true;
    if (word[1] === 'False') return false;
    if (word[1] === 'None') return null;
    return Number(word[1]);
  };
  const result = value();
  skipSpace();
  if (position !== text.length) fail('text after the dictionary');
  if (result === null || typeof result !== 'object' || Array.isArray(result)) fail('not a dictionary');
  return result as Record<string, PythonValue>;
}
