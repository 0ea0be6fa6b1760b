import { DermError } from '../../common/errors.js';
import { vectorKernelsWasmBase64 } from './kernels/vector-kernels.generated.js';

/**
 * The search hot path's products on WebAssembly SIMD (kernels/vector-kernels.wat), run in the
 * calling thread on memory laid out once: the re-rank (candidate rows, float16 or float32, scored
 * against the query; about 8× faster than a scalar JavaScript loop), the 4-bit sketch's pre-rank
 * (SketchTable), and the projection of one query
 * through the index's PCA (QueryProjector: no asynchronous onnxruntime call per query, and bfloat16
 * weights, half the bytes a query streams through the cache).
 *
 * The kernels use plain f32x4 arithmetic (no fused multiply-add, no relaxed SIMD), so the same input
 * gives the same bits on every machine; the embedding copy relies on that for its row checks.
 */

// The project's TypeScript libraries (ES2023, no DOM) do not declare WebAssembly's classes; these are
// the parts used here.
interface KernelMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}
const wasm = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

interface KernelExports {
  memory: KernelMemory;
  dotHalfRows(query: number, rows: number, count: number, stride: number, out: number): void;
  dotFloatRows(query: number, rows: number, count: number, stride: number, out: number): void;
  sketchDots(query: number, codes: number, stride: number, rowList: number, count: number, out: number): void;
  projectQuery(query: number, inputDim: number, keepZeros: number, pairs: number, weights: number, blocks: number, bias: number, out: number): void;
}

let compiled: object | undefined;

function instantiate(bytes: number): KernelExports {
  compiled ??= new wasm.Module(Buffer.from(vectorKernelsWasmBase64, 'base64'));
  const exports = new wasm.Instance(compiled).exports as KernelExports;
  const page = 65536;
  const pages = Math.ceil(bytes / page);
  const have = exports.memory.buffer.byteLength / page;
  if (pages > have) exports.memory.grow(pages - have);
  return exports;
}

/** Values per row once padded for the kernels' 8-value steps. */
export function paddedWidth(values: number): number {
  return Math.ceil(values / 8) * 8;
}

export type RowPrecision = 'float16' | 'float32';

/**
 * Scores up to `batchRows` rows at a time against one query: each row's dot product with the query,
 * the sum of squares of its values as decoded, and the wrapping 32-bit sum of its raw words (the
 * integrity check the embedding copy stores). Callers write raw rows straight into `rowBytes(slot)`
 * (e.g. with fs.readSync), then call `score(count)`.
 */
export class RowScorer {
  readonly batchRows: number;
  private readonly kernels: KernelExports;
  private readonly queryOffset = 0;
  private readonly rowsOffset: number;
  private readonly outOffset: number;
  private readonly strideBytes: number;
  private readonly valueBytes: number;
  /** Per scored row: dot, squares (f32) and word sum (i32), 12 bytes a row. */
  private readonly outFloats: Float32Array;
  private readonly outWords: Int32Array;

  constructor(
    readonly dim: number,
    readonly precision: RowPrecision,
    batchRows = 256,
  ) {
    if (!Number.isInteger(dim) || dim < 1) throw new DermError('internal', `A row scorer needs a positive width; got ${dim}.`);
    this.batchRows = batchRows;
    this.valueBytes = precision === 'float16' ? 2 : 4;
    const padded = paddedWidth(dim);
    this.strideBytes = padded * this.valueBytes;
    this.rowsOffset = padded * 4;
    this.outOffset = this.rowsOffset + batchRows * this.strideBytes;
    this.kernels = instantiate(this.outOffset + batchRows * 12);
    this.outFloats = new Float32Array(this.kernels.memory.buffer, this.outOffset, batchRows * 3);
    this.outWords = new Int32Array(this.kernels.memory.buffer, this.outOffset, batchRows * 3);
  }

  /** Bytes of one stored row (unpadded): what a reader fills per slot. */
  get rowBytes(): number {
    return this.dim * this.valueBytes;
  }

  /** The query, as float32; its padding stays zero. */
  setQuery(query: Float32Array): void {
    if (query.length !== this.dim) throw new DermError('internal', `The query has ${query.length} values; rows have ${this.dim}.`);
    new Float32Array(this.kernels.memory.buffer, this.queryOffset, this.dim).set(query);
  }

  /** Where slot `slot`'s raw row goes (its padding after the row stays zero). */
  slot(slot: number): Uint8Array {
    return new Uint8Array(this.kernels.memory.buffer, this.rowsOffset + slot * this.strideBytes, this.rowBytes);
  }

  /** Scores slots 0..count-1; read the results with dot(), squares() and words(). */
  score(count: number): void {
    if (count > this.batchRows) throw new DermError('internal', `At most ${this.batchRows} rows are scored at once; got ${count}.`);
    const run = this.precision === 'float16' ? this.kernels.dotHalfRows : this.kernels.dotFloatRows;
    run(this.queryOffset, this.rowsOffset, count, this.strideBytes, this.outOffset);
  }

  dot(slot: number): number {
    return this.outFloats[slot * 3]!;
  }

  squares(slot: number): number {
    return this.outFloats[slot * 3 + 1]!;
  }

  words(slot: number): number {
    return this.outWords[slot * 3 + 2]!;
  }
}

/** Largest magnitude of the sketch query's 16-bit integers: 15 × 2047 × width stays inside i32 for any width up to 69,000. */
const sketchQueryLevels = 2047;
/** Levels of a sketch value: 4 bits. */
const sketchLevels = 15;

/** Bytes of one row's 4-bit sketch: the width padded to 32 values, two values per byte. */
export function sketchBytesPerRow(dim: number): number {
  return Math.ceil(dim / 32) * 16;
}

/** A row's sketch constants: value ≈ min + code × step, and the wrapping sum of its bytes as i32 words. */
export interface SketchRowCheck {
  min: number;
  step: number;
  words: number;
}

/**
 * Every row of an index's embeddings as 4-bit codes held in memory (3 KB a row at 6144-d, a quarter of
 * the float16 copy): a query scores all its graph candidates on the sketch first and reads only the
 * best few from the flat copy for the exact cosine. Each row is quantised on its own range
 * (min + code × step, 16 levels); the query to 16-bit integers on its largest value. The sketch only
 * chooses which candidates are read: every score a search returns is still the exact cosine, and the
 * index's calibration measures recall through this same choice.
 */
export class SketchTable {
  readonly stride: number;
  readonly batchRows: number;
  private kernels: KernelExports;
  private readonly queryOffset = 0;
  private readonly rowListOffset: number;
  private readonly outOffset: number;
  private readonly codesOffset: number;
  private capacity: number;
  private querySum = 0;
  private queryScale = 0;

  constructor(
    readonly dim: number,
    initialRows = 0,
    batchRows = 1024,
  ) {
    if (!Number.isInteger(dim) || dim < 1) throw new DermError('internal', `A sketch needs a positive width; got ${dim}.`);
    this.stride = sketchBytesPerRow(dim);
    this.batchRows = batchRows;
    this.rowListOffset = (this.stride / 16) * 64;
    this.outOffset = this.rowListOffset + batchRows * 4;
    this.codesOffset = Math.ceil((this.outOffset + batchRows * 8) / 64) * 64;
    this.capacity = Math.max(16, initialRows);
    this.kernels = instantiate(this.codesOffset + this.capacity * this.stride);
  }

  /** Bytes the codes of `rows` rows take in memory. */
  static bytesFor(dim: number, rows: number): number {
    return sketchBytesPerRow(dim) * rows;
  }

  /** Makes room for rows 0..rows-1 (the memory only grows). */
  reserve(rows: number): void {
    if (rows <= this.capacity) return;
    const wanted = Math.max(rows, Math.ceil(this.capacity * 1.25));
    const page = 65536;
    const pages = Math.ceil((this.codesOffset + wanted * this.stride) / page);
    const have = this.kernels.memory.buffer.byteLength / page;
    if (pages > have) this.kernels.memory.grow(pages - have);
    this.capacity = wanted;
  }

  /** The codes of rows first..first+count-1, contiguous (for reading them in from a file or writing them out). */
  codes(first: number, count: number): Uint8Array {
    this.reserve(first + count);
    return new Uint8Array(this.kernels.memory.buffer, this.codesOffset + first * this.stride, count * this.stride);
  }

  /** Quantises a row into slot `row` and returns its constants and check. */
  encode(row: number, values: Float32Array): SketchRowCheck {
    const dim = this.dim;
    if (values.length !== dim) throw new DermError('internal', `A sketch row has ${dim} values; got ${values.length}.`);
    let min = Infinity;
    let max = -Infinity;
    for (let index = 0; index < dim; index++) {
      const value = values[index]!;
      if (value < min) min = value;
      if (value > max) max = value;
    }
    // Computed in float32, as stored, so the decode a reader does matches what was encoded.
    min = Math.fround(min);
    const step = max > min ? Math.fround((max - min) / sketchLevels) : 0;
    const bytes = this.codes(row, 1);
    bytes.fill(0);
    const code = (index: number) => (index < dim && step > 0 ? Math.min(sketchLevels, Math.max(0, Math.round((values[index]! - min) / step))) : 0);
    for (let block = 0, base = 0; base < dim; block++, base += 32) {
      for (let j = 0; j < 16; j++) bytes[block * 16 + j] = code(base + j) | (code(base + 16 + j) << 4);
    }
    return { min, step, words: wordSum(bytes) };
  }

  /** The query, as 16-bit integers on its own scale (its padding stays zero). */
  setQuery(unit: Float32Array): void {
    const dim = this.dim;
    if (unit.length !== dim) throw new DermError('internal', `The query has ${unit.length} values; the sketch has ${dim}.`);
    let largest = 0;
    let sum = 0;
    for (let index = 0; index < dim; index++) {
      largest = Math.max(largest, Math.abs(unit[index]!));
      sum += unit[index]!;
    }
    this.queryScale = largest > 0 ? largest / sketchQueryLevels : 1;
    this.querySum = sum;
    const query = new Int16Array(this.kernels.memory.buffer, this.queryOffset, (this.stride / 16) * 32);
    query.fill(0);
    for (let index = 0; index < dim; index++) query[index] = Math.round(unit[index]! / this.queryScale);
  }

  /**
   * Scores rows (row numbers, at most batchRows) against the query set last: approximate dot
   * products into `scores`, and each row's word sum into `words` for the caller to check.
   */
  score(rows: ArrayLike<number>, checks: ReadonlyArray<SketchRowCheck | undefined>, scores: Float64Array, words: Int32Array): void {
    const count = rows.length;
    if (count > this.batchRows) throw new DermError('internal', `At most ${this.batchRows} sketch rows are scored at once; got ${count}.`);
    const memory = this.kernels.memory.buffer;
    const list = new Int32Array(memory, this.rowListOffset, count);
    for (let index = 0; index < count; index++) {
      const row = rows[index]!;
      if (!(row >= 0 && row < this.capacity)) throw new DermError('internal', `Sketch row ${row} is outside the table.`);
      list[index] = row;
    }
    this.kernels.sketchDots(this.queryOffset, this.codesOffset, this.stride, this.rowListOffset, count, this.outOffset);
    const out = new Int32Array(memory, this.outOffset, count * 2);
    for (let index = 0; index < count; index++) {
      const check = checks[index]!;
      scores[index] = check ? check.step * this.queryScale * out[index * 2]! + check.min * this.querySum : -Infinity;
      words[index] = out[index * 2 + 1]!;
    }
  }
}

/** The wrapping sum of a byte run's little-endian 32-bit words (its length a multiple of 4), as the sketch kernel computes it. */
function wordSum(bytes: Uint8Array): number {
  const words = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  let sum = 0;
  for (let index = 0; index < words.length; index++) sum = (sum + words[index]!) | 0;
  return sum;
}

/**
 * float32 → bfloat16 (the top 16 bits of a float32), rounded to nearest with ties to even; a NaN stays
 * a (quiet) NaN instead of rounding into infinity.
 */
export function floatToBfloat16(value: number): number {
  scratchFloat[0] = value;
  return bfloat16Bits(scratchWord[0]!);
}

/** floatToBfloat16 on the float32's raw bits. */
function bfloat16Bits(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x0040;
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

export function bfloat16ToFloat(half: number): number {
  scratchWord[0] = half << 16;
  return scratchFloat[0]!;
}

const scratchFloat = new Float32Array(1);
const scratchWord = new Uint32Array(scratchFloat.buffer);

/** Output columns one kernel pass keeps in registers (8 f32x4 accumulators). */
const blockColumns = 32;

/**
 * y = x · W + bias for one query x, on WebAssembly SIMD in the calling thread: the projected index's
 * query projection. W (inputDim × outputDim, row-major float32) is stored once as bfloat16 in the
 * kernel's blocked layout (inputDim × outputDim × 2 bytes, padded to 32 columns: 4.7 MB for
 * 6144 → 384); sums are float32. bfloat16 keeps 8 significant bits, so each weight is within 2⁻⁸ of
 * itself and |y − y_float32| ≤ 2⁻⁸ · Σ|xᵢ·wᵢⱼ| plus float32 summation error (the unit test checks
 * that bound). The index measures its recall with queries projected here, so what it reports is what
 * users get.
 * Zeros in x are skipped (bit-identical to multiplying them), which post-ReLU embeddings are full of.
 */
export class QueryProjector {
  readonly blocks: number;
  private kernels: KernelExports | undefined;
  private readonly queryOffset = 0;
  private readonly pairsOffset: number;
  private readonly biasOffset: number;
  private readonly outOffset: number;
  private readonly weightsOffset: number;

  constructor(
    readonly inputDim: number,
    readonly outputDim: number,
    weights: Float32Array,
    bias: Float32Array,
  ) {
    if (!Number.isInteger(inputDim) || inputDim < 1 || !Number.isInteger(outputDim) || outputDim < 1) {
      throw new DermError('internal', `A query projection needs positive widths; got ${inputDim} → ${outputDim}.`);
    }
    if (weights.length !== inputDim * outputDim || bias.length !== outputDim) {
      throw new DermError(
        'internal',
        `A ${inputDim} → ${outputDim} projection needs ${inputDim * outputDim} weights and ${outputDim} biases; got ${weights.length} and ${bias.length}.`,
      );
    }
    this.blocks = Math.ceil(outputDim / blockColumns);
    const paddedOut = this.blocks * blockColumns;
    const align = (bytes: number, to: number) => Math.ceil(bytes / to) * to;
    this.pairsOffset = align(inputDim * 4, 64);
    this.biasOffset = this.pairsOffset + inputDim * 8;
    this.outOffset = this.biasOffset + paddedOut * 4;
    this.weightsOffset = align(this.outOffset + paddedOut * 4, 64);
    const weightBytes = this.blocks * inputDim * 64;
    // wasm32 addresses are unsigned 32-bit; the kernel's offsets are computed in i32.
    if (this.weightsOffset + weightBytes > 2 ** 31) {
      throw new DermError('internal', `A ${inputDim} → ${outputDim} projection needs ${weightBytes} bytes of weights; at most 2 GiB fit.`);
    }
    this.kernels = instantiate(this.weightsOffset + weightBytes);
    const memory = this.kernels.memory.buffer;
    new Float32Array(memory, this.biasOffset, outputDim).set(bias);
    // Block b, input row i: 32 halves; within each group of 8, columns j..j+3 take the even places and
    // j+4..j+7 the odd ones (the kernel widens even halves with a shift, odd ones with a mask).
    const halves = new Uint16Array(memory, this.weightsOffset, weightBytes / 2);
    const words = new Uint32Array(weights.buffer, weights.byteOffset, weights.length);
    // Where column c of a block goes among its 32 places (the inverse of the kernel's reading order).
    const placeOf = Int32Array.from({ length: blockColumns }, (_, column) => (column >> 3) * 8 + ((column & 7) < 4 ? (column & 3) * 2 : (column & 3) * 2 + 1));
    const blockStride = inputDim * blockColumns;
    for (let row = 0; row < inputDim; row++) {
      const source = row * outputDim;
      const rowBase = row * blockColumns;
      for (let column = 0; column < outputDim; column++) {
        halves[(column >> 5) * blockStride + rowBase + placeOf[column & 31]!] = bfloat16Bits(words[source + column]!);
      }
    }
  }

  /** Bytes of the kernel's memory (weights, bias, query and scratch). */
  get memoryBytes(): number {
    return this.kernels?.memory.buffer.byteLength ?? 0;
  }

  /**
   * The projected query, a new array of outputDim values. `keepZeros` multiplies the zeros too (the
   * same bits, slower; for tests and the bench).
   */
  project(query: Float32Array, options: { keepZeros?: boolean } = {}): Float32Array {
    const kernels = this.kernels;
    if (!kernels) throw new DermError('internal', 'The query projection was released.');
    if (query.length !== this.inputDim) throw new DermError('internal', `The query has ${query.length} values; the projection takes ${this.inputDim}.`);
    const memory = kernels.memory.buffer;
    new Float32Array(memory, this.queryOffset, this.inputDim).set(query);
    kernels.projectQuery(
      this.queryOffset,
      this.inputDim,
      options.keepZeros ? 1 : 0,
      this.pairsOffset,
      this.weightsOffset,
      this.blocks,
      this.biasOffset,
      this.outOffset,
    );
    return new Float32Array(memory, this.outOffset, this.outputDim).slice();
  }

  /** Drops the kernel instance and its memory (the weights); project() refuses afterwards. */
  release(): void {
    this.kernels = undefined;
  }
}
