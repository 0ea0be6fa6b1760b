import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { RowScorer, SketchTable, sketchBytesPerRow, type SketchRowCheck } from '../math/vector-kernels.js';
import { TopK, type Neighbour } from '../math/vector-math.js';

/**
 * A compact flat copy of one model's unit-length embeddings beside its index file
 * (`<library>/indexes/<modelId>.vectors`), for the re-rank of graph candidates: one positioned read
 * of a fixed-size row per candidate instead of SQLite BLOB reads, and nothing of the 1.2–2.4 GB held
 * in memory (the rows live in the page cache). Like the graph it is only a cache of the embeddings
 * table: it is tied to the graph file it was sealed with (the graph's sha256 and change-log position
 * recorded in the index row), and a stale, truncated or damaged copy is rebuilt or bypassed.
 *
 * Layout: a 4096-byte header (u32 length + JSON), the rows (float16 or float32, little-endian, rows in
 * the order the images were indexed: ascending id at a build, appended by sync), then the row table:
 * every row's image id (u32), then every row's two checks: the wrapping 32-bit sum of its raw words
 * (i32) and the sum of squares of its values as decoded (f32). The re-rank's SIMD kernel
 * (math/vector-kernels.ts) computes both in the same pass as the dot product, bit for bit as when the
 * row was written, so a damaged row (a flipped bit changes the word sum; a torn write or a row another
 * process is rewriting changes either) shows as a mismatch on the very query that reads it, at no
 * extra read. The sum of squares also renormalises the row after float16 rounding.
 *
 * Format 3 adds the sketch (when the copy was started with one): every row as 4-bit codes
 * (math/vector-kernels.ts, SketchTable) in a file beside the copy (`<modelId>.sketch`, rows of a fixed
 * size written in place like the copy's, so a sync that adds a few rows rewrites only those), read
 * whole into memory at open. Its per-row constants (min, step) and check (the wrapping sum of the
 * row's 32-bit words, which the sketch kernel recomputes on every use) follow the copy's own checks in
 * the row table, under the table's checksum. A query scores every graph candidate on the sketch and
 * reads only the best few rows of the copy.
 */

export type EmbeddingCopyPrecision = 'float16' | 'float32';

/** What a copy holds and which graph file it agrees with. */
export interface EmbeddingCopyTie {
  modelId: string;
  dim: number;
  precision: EmbeddingCopyPrecision;
  /** sha256 of the graph file the copy was sealed with (vector_indexes.file_sha256). */
  graphSha256: string;
  /** Change-log position the graph file includes (vector_indexes.change_seq). */
  changeSeq: number;
}

/** The sketch a copy keeps beside it: 4-bit codes, `bytesPerRow` a row. */
export interface SketchLayout {
  bits: 4;
  bytesPerRow: number;
}

interface CopyHeader extends EmbeddingCopyTie {
  format: 'dermws-embedding-copy';
  version: 3;
  sketch: SketchLayout | null;
  rows: number;
  /** Counts every seal: a copy written by another process after this one opened it has another generation. */
  generation: number;
  /** false while rows are being written: a copy left so by a killed process is never used. */
  complete: boolean;
  /** sha256 of the row table (ids and checks). */
  tableSha256: string;
  writtenAt: string;
}

const headerBytes = 4096;
const formatName = 'dermws-embedding-copy';
const formatVersion = 3;
/** Row table bytes per row: image id, word sum, sum of squares; and with a sketch its word sum, min and step. */
function tableBytesPerRow(header: Pick<CopyHeader, 'sketch'>): number {
  return header.sketch ? 24 : 12;
}

/** The sketch file beside a copy file: `<model>.vectors` → `<model>.sketch` (and `.vectors.<pid>.partial` → `.sketch.<pid>.partial`). */
export function sketchFileOf(copyFile: string): string {
  const at = copyFile.lastIndexOf('.vectors');
  return at < 0 ? `${copyFile}.sketch` : `${copyFile.slice(0, at)}.sketch${copyFile.slice(at + '.vectors'.length)}`;
}

/** Candidates re-ranked exactly for k results when the sketch chooses them: twice k plus 8 (28 at k = 10). */
export function sketchKept(k: number): number {
  return 2 * k + 8;
}

/** Why a copy cannot be used: missing, stale (another graph, model, width or precision) or damaged (truncated, unreadable, wrong values). */
export class EmbeddingCopyProblem extends Error {
  constructor(
    readonly state: 'missing' | 'stale' | 'damaged',
    message: string,
  ) {
    super(message);
  }
}

// float16 <-> float32. Rows are unit vectors (every value in [-1, 1]), so float16 keeps 11 significant
// bits down to 6e-5 and subnormals below; the bench compares its re-rank with float32's.
const halfToFloatTable = (() => {
  const table = new Float32Array(65536);
  for (let half = 0; half < 65536; half++) {
    const exponent = (half >> 10) & 0x1f;
    const mantissa = half & 0x3ff;
    let value: number;
    if (exponent === 0) value = mantissa * 2 ** -24;
    else if (exponent === 31) value = mantissa === 0 ? Infinity : NaN;
    else value = (1 + mantissa / 1024) * 2 ** (exponent - 15);
    table[half] = half & 0x8000 ? -value : value;
  }
  return table;
})();

const floatBits = new Float32Array(1);
const floatBitsAsInt = new Uint32Array(floatBits.buffer);

/** The float16 bit pattern nearest to `value` (ties to even), as IEEE 754 binary16. */
export function floatToHalf(value: number): number {
  floatBits[0] = value;
  const bits = floatBitsAsInt[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | (mantissa === 0 ? 0x7c00 : 0x7e00);
  const halfExponent = exponent - 112;
  if (halfExponent >= 31) return sign | 0x7c00;
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - halfExponent;
    let half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa rounds up into the exponent, which is the right answer (up to infinity).
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

export function halfToFloat(half: number): number {
  return halfToFloatTable[half & 0xffff]!;
}

function readHeader(fd: number, file: string): CopyHeader {
  const head = Buffer.alloc(headerBytes);
  const read = fs.readSync(fd, head, 0, headerBytes, 0);
  if (read < headerBytes) throw new EmbeddingCopyProblem('damaged', `the embedding copy ${file} is shorter than its header`);
  const length = head.readUInt32LE(0);
  if (length < 2 || length > headerBytes - 4) throw new EmbeddingCopyProblem('damaged', `the embedding copy ${file} has no readable header`);
  let header: CopyHeader;
  try {
    header = JSON.parse(head.subarray(4, 4 + length).toString('utf8')) as CopyHeader;
  } catch {
    throw new EmbeddingCopyProblem('damaged', `the header of the embedding copy ${file} is not valid JSON`);
  }
  // Another format, or an earlier version (1: f64 checks summed in JavaScript; 2: no sketch), is rebuilt like any stale copy.
  if (header.format !== formatName || header.version !== formatVersion)
    throw new EmbeddingCopyProblem('stale', `${file} is not an embedding copy this version writes`);
  if (!Number.isInteger(header.rows) || header.rows < 0 || !Number.isInteger(header.dim) || header.dim < 1) {
    throw new EmbeddingCopyProblem('damaged', `the header of the embedding copy ${file} has an impossible shape`);
  }
  if (header.precision !== 'float16' && header.precision !== 'float32')
    throw new EmbeddingCopyProblem('damaged', `the embedding copy ${file} names an unknown precision`);
  if (header.sketch !== null && (header.sketch?.bits !== 4 || header.sketch.bytesPerRow !== sketchBytesPerRow(header.dim)))
    throw new EmbeddingCopyProblem('damaged', `the embedding copy ${file} describes a sketch this version cannot read`);
  return header;
}

function bytesPerValue(precision: EmbeddingCopyPrecision): number {
  return precision === 'float16' ? 2 : 4;
}

/** Why a header does not agree with what the index expects (null when it does). */
function mismatch(header: CopyHeader, expected: EmbeddingCopyTie): string | null {
  if (!header.complete) return 'its last write did not finish';
  if (header.modelId !== expected.modelId) return `it holds model "${header.modelId}"`;
  if (header.dim !== expected.dim) return `it holds ${header.dim}-d rows; the model has ${expected.dim}`;
  if (header.precision !== expected.precision) return `it is ${header.precision}; ${expected.precision} is asked for`;
  if (header.graphSha256 !== expected.graphSha256 || header.changeSeq !== expected.changeSeq) return 'it was sealed with another version of the index file';
  return null;
}

export class EmbeddingCopy {
  private readonly rowOf = new Map<number, number>();
  private readonly ids: number[] = [];
  /** Per row: the wrapping 32-bit sum of its raw words, and the sum of squares of its values (f32). */
  private readonly wordSums: number[] = [];
  private readonly squares: number[] = [];
  /** The sketch in memory and its file (copies started with one), with every row's constants and check. */
  private readonly sketch: SketchTable | undefined;
  private readonly sketchChecks: SketchRowCheck[] = [];
  private sketchFd: number | undefined;
  /** The sketch's reads in flight after open (undefined once it is in memory, or without a sketch). */
  private sketchLoading: Promise<void> | undefined;
  private scratch: Buffer;
  private readonly scorer: RowScorer;
  private readonly rowBytes: number;
  private sealed: boolean;

  private constructor(
    private file: string,
    private readonly fd: number,
    private header: CopyHeader,
    readonly writable: boolean,
  ) {
    this.rowBytes = header.dim * bytesPerValue(header.precision);
    this.scratch = Buffer.allocUnsafeSlow(this.rowBytes);
    this.scorer = new RowScorer(header.dim, header.precision);
    this.sketch = header.sketch ? new SketchTable(header.dim, header.rows) : undefined;
    this.sealed = header.complete;
  }

  /** Whether queries can pre-rank their candidates on the sketch. */
  get hasSketch(): boolean {
    return this.sketch !== undefined;
  }

  /** Bytes of the sketch held in memory (0 without one). */
  get sketchBytes(): number {
    return this.sketch ? this.ids.length * this.sketch.stride : 0;
  }

  get precision(): EmbeddingCopyPrecision {
    return this.header.precision;
  }

  get rows(): number {
    return this.ids.length;
  }

  get generation(): number {
    return this.header.generation;
  }

  get path(): string {
    return this.file;
  }

  /** A new, empty copy at `file` (the caller writes to a temporary name and renames it once sealed). */
  static create(file: string, identity: Pick<EmbeddingCopyTie, 'modelId' | 'dim' | 'precision'> & { sketch: boolean }): EmbeddingCopy {
    const fd = fs.openSync(file, 'w+');
    const { sketch, ...tie } = identity;
    const header: CopyHeader = {
      format: formatName,
      version: formatVersion,
      ...tie,
      sketch: sketch ? { bits: 4, bytesPerRow: sketchBytesPerRow(identity.dim) } : null,
      graphSha256: '',
      changeSeq: 0,
      rows: 0,
      generation: 0,
      complete: false,
      tableSha256: '',
      writtenAt: new Date().toISOString(),
    };
    const copy = new EmbeddingCopy(file, fd, header, true);
    try {
      if (sketch) copy.sketchFd = fs.openSync(sketchFileOf(file), 'w+');
      copy.writeHeader();
    } catch (error) {
      copy.close();
      throw error;
    }
    return copy;
  }

  /** Only the header, checked against what the index expects: cheap enough for a status line. */
  static inspect(
    file: string,
    expected: EmbeddingCopyTie,
  ): { state: 'ready' | 'missing' | 'stale' | 'damaged'; reason: string; bytes: number | null; precision: EmbeddingCopyPrecision | null } {
    if (!fs.existsSync(file)) return { state: 'missing', reason: `the embedding copy ${file} is missing`, bytes: null, precision: null };
    let fd: number | undefined;
    try {
      fd = fs.openSync(file, 'r');
      const header = readHeader(fd, file);
      const bytes = fs.fstatSync(fd).size;
      const wrong = mismatch(header, expected);
      if (wrong) return { state: 'stale', reason: `the embedding copy is out of date: ${wrong}`, bytes, precision: header.precision };
      const expectedBytes = headerBytes + header.rows * (header.dim * bytesPerValue(header.precision) + tableBytesPerRow(header));
      if (bytes !== expectedBytes)
        return {
          state: 'damaged',
          reason: `the embedding copy ${file} has ${bytes} bytes; its header implies ${expectedBytes}`,
          bytes,
          precision: header.precision,
        };
      if (!header.sketch) return { state: 'ready', reason: `${header.rows} ${header.precision} rows`, bytes, precision: header.precision };
      const sketchFile = sketchFileOf(file);
      const sketchBytes = fs.existsSync(sketchFile) ? fs.statSync(sketchFile).size : null;
      const wanted = header.rows * header.sketch.bytesPerRow;
      if (sketchBytes !== wanted)
        return {
          state: 'damaged',
          reason:
            sketchBytes === null ? `the sketch ${sketchFile} is missing` : `the sketch ${sketchFile} has ${sketchBytes} bytes; the copy implies ${wanted}`,
          bytes,
          precision: header.precision,
        };
      return {
        state: 'ready',
        reason: `${header.rows} ${header.precision} rows, and a 4-bit sketch of each (${(wanted / 2 ** 20).toFixed(0)} MiB in memory)`,
        bytes: bytes + wanted,
        precision: header.precision,
      };
    } catch (error) {
      const state = error instanceof EmbeddingCopyProblem ? error.state : 'damaged';
      return { state, reason: (error as Error).message, bytes: null, precision: null };
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  /**
   * Opens a sealed copy and checks what can be checked without reading the rows: the header against
   * the index, the file size, and the row table against its checksum. Throws EmbeddingCopyProblem.
   */
  static open(file: string, expected: EmbeddingCopyTie, options: { writable: boolean }): EmbeddingCopy {
    if (!fs.existsSync(file)) throw new EmbeddingCopyProblem('missing', `the embedding copy ${file} is missing`);
    let fd: number;
    let writable = options.writable;
    try {
      fd = fs.openSync(file, writable ? 'r+' : 'r');
    } catch (error) {
      if (!writable) throw new EmbeddingCopyProblem('damaged', `the embedding copy ${file} cannot be read (${(error as Error).message})`);
      writable = false;
      fd = fs.openSync(file, 'r');
    }
    try {
      const header = readHeader(fd, file);
      const wrong = mismatch(header, expected);
      if (wrong) throw new EmbeddingCopyProblem('stale', `the embedding copy is out of date: ${wrong}`);
      const copy = new EmbeddingCopy(file, fd, header, writable);
      const tableStart = headerBytes + header.rows * copy.rowBytes;
      const tableBytes = header.rows * tableBytesPerRow(header);
      const size = fs.fstatSync(fd).size;
      if (size !== tableStart + tableBytes)
        throw new EmbeddingCopyProblem('damaged', `the embedding copy ${file} has ${size} bytes; its header implies ${tableStart + tableBytes}`);
      const table = Buffer.allocUnsafe(tableBytes);
      if (fs.readSync(fd, table, 0, tableBytes, tableStart) !== tableBytes)
        throw new EmbeddingCopyProblem('damaged', `the row table of the embedding copy ${file} is cut short`);
      if (createHash('sha256').update(table).digest('hex') !== header.tableSha256) {
        throw new EmbeddingCopyProblem('damaged', `the row table of the embedding copy ${file} does not match its checksum`);
      }
      for (let row = 0; row < header.rows; row++) {
        const imageId = table.readUInt32LE(row * 4);
        copy.ids.push(imageId);
        copy.rowOf.set(imageId, row);
      }
      for (let row = 0; row < header.rows; row++) {
        copy.wordSums.push(table.readInt32LE((header.rows + row) * 4));
        copy.squares.push(table.readFloatLE((2 * header.rows + row) * 4));
      }
      if (header.sketch) {
        for (let row = 0; row < header.rows; row++) {
          copy.sketchChecks.push({
            words: table.readInt32LE((3 * header.rows + row) * 4),
            min: table.readFloatLE((4 * header.rows + row) * 4),
            step: table.readFloatLE((5 * header.rows + row) * 4),
          });
        }
        copy.startSketchRead(writable);
      }
      return copy;
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
  }

  /**
   * Resolves once the sketch is in memory (at once for a copy without one, or one being written);
   * rejects with EmbeddingCopyProblem when it cannot be read. Nothing else may touch the copy before.
   */
  async loaded(): Promise<void> {
    if (this.sketchLoading) await this.sketchLoading;
  }

  /**
   * Starts reading the whole sketch file into memory on the thread pool (the open returns at once, so
   * the caller can load the graph meanwhile; loaded() waits for it). Its rows are checked as queries
   * use them.
   */
  private startSketchRead(writable: boolean): void {
    const file = sketchFileOf(this.file);
    const sketch = this.sketch!;
    const rows = this.header.rows;
    try {
      this.sketchFd = fs.openSync(file, writable ? 'r+' : 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new EmbeddingCopyProblem('damaged', `the sketch ${file} is missing`);
      if (!writable) throw new EmbeddingCopyProblem('damaged', `the sketch ${file} cannot be read (${(error as Error).message})`);
      this.sketchFd = fs.openSync(file, 'r');
    }
    const wanted = rows * sketch.stride;
    const size = fs.fstatSync(this.sketchFd).size;
    if (size !== wanted) throw new EmbeddingCopyProblem('damaged', `the sketch ${file} has ${size} bytes; the copy implies ${wanted}`);
    // The memory is grown to its full size first: growing detaches the buffer the reads write into.
    sketch.reserve(rows);
    const fd = this.sketchFd;
    const chunkRows = Math.max(1, Math.floor(2 ** 23 / sketch.stride));
    const chunks: Array<{ first: number; count: number }> = [];
    for (let first = 0; first < rows; first += chunkRows) chunks.push({ first, count: Math.min(chunkRows, rows - first) });
    const readChunk = (chunk: { first: number; count: number }) =>
      new Promise<void>((resolve, reject) => {
        // Straight into the kernel's memory, 8 MiB a read.
        const target = sketch.codes(chunk.first, chunk.count);
        fs.read(fd, target, 0, target.length, chunk.first * sketch.stride, (error, read) => {
          if (error) reject(new EmbeddingCopyProblem('damaged', `the sketch ${file} cannot be read (${error.message})`));
          else if (read !== target.length) reject(new EmbeddingCopyProblem('damaged', `the sketch ${file} is cut short`));
          else resolve();
        });
      });
    // Four reads in flight (the thread pool's size), so the page faults of a 300 MB sketch spread over the cores.
    const reader = async () => {
      for (let chunk = chunks.shift(); chunk; chunk = chunks.shift()) await readChunk(chunk);
    };
    const loading = Promise.all([reader(), reader(), reader(), reader()]).then(() => {
      if (this.sketchLoading === loading) this.sketchLoading = undefined;
    });
    // A copy closed before anyone waited for it must not leave an unhandled rejection behind.
    loading.catch(() => undefined);
    this.sketchLoading = loading;
  }

  private assertLoaded(): void {
    if (this.sketchLoading) throw new Error('the embedding copy is used before its sketch was read (await loaded() first)');
  }

  has(imageId: number): boolean {
    return this.rowOf.has(imageId);
  }

  /** Writes unit rows (row-major, ids.length × dim): over an image's existing row, or appended. */
  put(ids: readonly number[], unitRows: Float32Array): void {
    const dim = this.header.dim;
    if (unitRows.length !== ids.length * dim) throw new Error(`${ids.length} rows of ${dim} values expected; got ${unitRows.length} values`);
    this.assertLoaded();
    if (this.sealed) {
      // Rows change in place: mark the copy unfinished first, so a process killed before the seal leaves a copy nobody uses.
      this.header = { ...this.header, complete: false };
      this.writeHeader();
      this.sealed = false;
    }
    const scorer = this.scorer;
    for (let start = 0; start < ids.length; start += scorer.batchRows) {
      const count = Math.min(scorer.batchRows, ids.length - start);
      // Encoded in the kernel's slots, so the checks stored are the ones every read recomputes.
      for (let slot = 0; slot < count; slot++) {
        const values = unitRows.subarray((start + slot) * dim, (start + slot + 1) * dim);
        const bytes = scorer.slot(slot);
        if (this.header.precision === 'float16') {
          const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, dim);
          for (let at = 0; at < dim; at++) halves[at] = floatToHalf(values[at]!);
        } else {
          new Float32Array(bytes.buffer, bytes.byteOffset, dim).set(values);
        }
      }
      scorer.score(count);
      for (let slot = 0; slot < count; slot++) {
        const imageId = ids[start + slot]!;
        let row = this.rowOf.get(imageId);
        if (row === undefined) {
          row = this.ids.length;
          this.ids.push(imageId);
          this.rowOf.set(imageId, row);
          this.wordSums.push(scorer.words(slot));
          this.squares.push(scorer.squares(slot));
        } else {
          this.wordSums[row] = scorer.words(slot);
          this.squares[row] = scorer.squares(slot);
        }
        fs.writeSync(this.fd, scorer.slot(slot), 0, this.rowBytes, headerBytes + row * this.rowBytes);
        if (this.sketch) {
          this.sketchChecks[row] = this.sketch.encode(row, unitRows.subarray((start + slot) * dim, (start + slot + 1) * dim));
          fs.writeSync(this.sketchFd!, this.sketch.codes(row, 1), 0, this.sketch.stride, row * this.sketch.stride);
        }
      }
    }
  }

  /** Writes the row table and a complete header tied to the graph file, then truncates anything after them. */
  seal(tie: Pick<EmbeddingCopyTie, 'graphSha256' | 'changeSeq'>): void {
    const rows = this.ids.length;
    const table = Buffer.alloc(rows * tableBytesPerRow(this.header));
    this.ids.forEach((imageId, row) => {
      table.writeUInt32LE(imageId, row * 4);
      table.writeInt32LE(this.wordSums[row]!, (rows + row) * 4);
      table.writeFloatLE(this.squares[row]!, (2 * rows + row) * 4);
      if (!this.sketch) return;
      const check = this.sketchChecks[row]!;
      table.writeInt32LE(check.words, (3 * rows + row) * 4);
      table.writeFloatLE(check.min, (4 * rows + row) * 4);
      table.writeFloatLE(check.step, (5 * rows + row) * 4);
    });
    const tableStart = headerBytes + rows * this.rowBytes;
    fs.writeSync(this.fd, table, 0, table.length, tableStart);
    fs.ftruncateSync(this.fd, tableStart + table.length);
    if (this.sketch) fs.ftruncateSync(this.sketchFd!, rows * this.sketch.stride);
    this.header = {
      ...this.header,
      ...tie,
      rows,
      generation: this.header.generation + 1,
      complete: true,
      tableSha256: createHash('sha256').update(table).digest('hex'),
      writtenAt: new Date().toISOString(),
    };
    this.writeHeader();
    this.sealed = true;
  }

  /** Renames the (sealed) file; the open descriptor follows it. */
  moveTo(file: string): void {
    // The sketch first: a copy never sits in place with another copy's sketch beside it unnoticed (its row checks would catch it anyway).
    if (this.sketch) fs.renameSync(sketchFileOf(this.file), sketchFileOf(file));
    // A copy without a sketch takes the place of one with: the old sketch (300 MB at 100k) goes with it.
    else fs.rmSync(sketchFileOf(file), { force: true });
    fs.renameSync(this.file, file);
    this.file = file;
  }

  /** Closes the copy and deletes its files (a copy that was never sealed into place). */
  discard(): void {
    this.close();
    fs.rmSync(this.file, { force: true });
    if (this.sketch) fs.rmSync(sketchFileOf(this.file), { force: true });
  }

  /** The stored row of an image as float32 (null when the copy has none), for checks against SQLite. */
  row(imageId: number): Float32Array | null {
    const row = this.rowOf.get(imageId);
    if (row === undefined) return null;
    const dim = this.header.dim;
    if (fs.readSync(this.fd, this.scratch, 0, this.rowBytes, headerBytes + row * this.rowBytes) !== this.rowBytes) return null;
    if (this.header.precision === 'float32') return new Float32Array(this.scratch.buffer, this.scratch.byteOffset, dim).slice();
    const halves = new Uint16Array(this.scratch.buffer, this.scratch.byteOffset, dim);
    return Float32Array.from(halves, (half) => halfToFloatTable[half]!);
  }

  /**
   * Largest difference between the stored row and `unit` beyond the precision's rounding, as a
   * description, or null when they agree (float32: exactly; float16: within half a unit in the last
   * place of an 11-bit significand, or 2^-25 absolute below float16's normal range).
   */
  disagreement(imageId: number, unit: Float32Array): string | null {
    const stored = this.row(imageId);
    if (!stored) return `image ${imageId} has no row`;
    if (stored.length !== unit.length) return `image ${imageId} has ${stored.length} values`;
    for (let index = 0; index < unit.length; index++) {
      const expected = unit[index]!;
      const tolerance = this.header.precision === 'float32' ? 0 : Math.max(Math.abs(expected) * 2 ** -11, 2 ** -25);
      if (!(Math.abs(stored[index]! - expected) <= tolerance))
        return `image ${imageId} differs from SQLite at value ${index} (${stored[index]} against ${expected})`;
    }
    return null;
  }

  /**
   * The k best candidates by cosine with the unit query: one positioned read of each row straight into
   * the SIMD kernel's memory, then one kernel call per 256 rows. Returns a problem instead when a
   * candidate has no row, a read comes back short or a row's checks disagree: the caller then answers
   * from SQLite.
   */
  rerank(unit: Float32Array, candidates: readonly number[], k: number, options: { preselect: boolean }): { neighbours: Neighbour[] } | { problem: string } {
    if (options.preselect && this.sketch && candidates.length > sketchKept(k)) {
      const chosen = this.preselect(unit, candidates, sketchKept(k));
      if ('problem' in chosen) return chosen;
      candidates = chosen.ids;
    }
    const top = new TopK(k);
    const scorer = this.scorer;
    scorer.setQuery(unit);
    const rows: number[] = [];
    for (let start = 0; start < candidates.length; start += scorer.batchRows) {
      const count = Math.min(scorer.batchRows, candidates.length - start);
      rows.length = 0;
      for (let slot = 0; slot < count; slot++) {
        const imageId = candidates[start + slot]!;
        const row = this.rowOf.get(imageId);
        if (row === undefined) return { problem: `the embedding copy has no row for image ${imageId}` };
        const read = fs.readSync(this.fd, scorer.slot(slot), 0, this.rowBytes, headerBytes + row * this.rowBytes);
        if (read !== this.rowBytes) return { problem: `the embedding copy ${this.file} is cut short (row ${row} of image ${imageId})` };
        rows.push(row);
      }
      scorer.score(count);
      for (let slot = 0; slot < count; slot++) {
        const row = rows[slot]!;
        const squares = scorer.squares(slot);
        if (scorer.words(slot) !== this.wordSums[row] || squares !== this.squares[row]) {
          return { problem: `the row of image ${candidates[start + slot]} in the embedding copy ${this.file} does not match its check (damaged or rewritten)` };
        }
        top.offer(candidates[start + slot]!, squares === 0 ? 0 : scorer.dot(slot) / Math.sqrt(squares));
      }
    }
    return { neighbours: top.result() };
  }

  /**
   * The `keep` candidates with the best sketch scores (ties keep the candidates' order), for the exact
   * re-rank; a problem instead when a candidate has no row or its sketch fails its check.
   */
  preselect(unit: Float32Array, candidates: readonly number[], keep: number): { ids: number[] } | { problem: string } {
    const sketch = this.sketch;
    if (!sketch || candidates.length <= keep) return { ids: [...candidates] };
    this.assertLoaded();
    sketch.setQuery(unit);
    const scored: Array<{ imageId: number; score: number; position: number }> = [];
    const scores = new Float64Array(sketch.batchRows);
    const words = new Int32Array(sketch.batchRows);
    for (let start = 0; start < candidates.length; start += sketch.batchRows) {
      const batch = candidates.slice(start, start + sketch.batchRows);
      const rows: number[] = [];
      for (const imageId of batch) {
        const row = this.rowOf.get(imageId);
        if (row === undefined) return { problem: `the embedding copy has no row for image ${imageId}` };
        rows.push(row);
      }
      const checks = rows.map((row) => this.sketchChecks[row]);
      sketch.score(rows, checks, scores, words);
      for (let index = 0; index < batch.length; index++) {
        if (words[index] !== checks[index]!.words)
          return { problem: `the sketch of image ${batch[index]} beside the embedding copy ${this.file} does not match its check (damaged or rewritten)` };
        scored.push({ imageId: batch[index]!, score: scores[index]!, position: start + index });
      }
    }
    scored.sort((a, b) => b.score - a.score || a.position - b.position);
    return { ids: scored.slice(0, keep).map((item) => item.imageId) };
  }

  close(): void {
    for (const fd of [this.fd, this.sketchFd]) {
      if (fd === undefined) continue;
      try {
        fs.closeSync(fd);
      } catch {
        // Closed already.
      }
    }
  }

  private writeHeader(): void {
    const json = Buffer.from(JSON.stringify(this.header), 'utf8');
    if (json.length > headerBytes - 4) throw new Error('embedding copy header too long');
    const head = Buffer.alloc(headerBytes);
    head.writeUInt32LE(json.length, 0);
    json.copy(head, 4);
    fs.writeSync(this.fd, head, 0, headerBytes, 0);
  }
}
