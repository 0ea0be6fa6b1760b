import type * as ort from 'onnxruntime-node';
import type { onnx as OnnxNamespace } from 'onnx-proto';
import { onnxProto as onnx, onnxRuntime } from '../runtime/lazy-packages.js';
import { DermError } from '../../common/errors.js';

/**
 * The two dense products the probe solver needs, X·W and Xᵀ·R, on one embedding matrix X that stays
 * where it is: onnxruntime's CPU kernels (multi-threaded, SIMD) read the Float32Array in place, so no
 * fold, subsample or label ever copies the matrix. They are 10–50× faster than a JavaScript loop,
 * which is what lets 10k × 6144 × 10 labels train in seconds.
 */
export class MatrixEngine {
  private constructor(
    private readonly forward: ort.InferenceSession,
    private readonly backward: ort.InferenceSession,
    private readonly matrix: ort.Tensor,
    readonly rows: number,
    readonly dim: number,
    /** The matrix the products read (row-major, rows × dim), in place. */
    readonly data: Float32Array,
    private readonly ownsSessions: boolean,
  ) {}

  static async create(data: Float32Array, rows: number, dim: number, threads?: number): Promise<MatrixEngine> {
    if (data.length !== rows * dim) {
      throw new DermError('internal', `The embedding matrix has ${data.length} values; expected ${rows} × ${dim}.`);
    }
    const options: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], graphOptimizationLevel: 'all' };
    if (threads !== undefined) options.intraOpNumThreads = threads;
    const forward = await onnxRuntime.InferenceSession.create(productGraph(false), options);
    const backward = await onnxRuntime.InferenceSession.create(productGraph(true), options);
    return new MatrixEngine(forward, backward, new onnxRuntime.Tensor('float32', data, [rows, dim]), rows, dim, data, true);
  }

  /**
   * The same products on the first `rows` rows only, reading them in place (a view of the same
   * buffer, sharing this engine's sessions). Whatever those rows hold when a product runs is used,
   * so a caller may move the rows it wants to the front first (see row-block.ts).
   */
  prefix(rows: number): MatrixEngine {
    if (!Number.isInteger(rows) || rows < 0 || rows > this.rows) {
      throw new DermError('internal', `A prefix of ${rows} rows does not fit a matrix of ${this.rows} rows.`);
    }
    const view = this.data.subarray(0, rows * this.dim);
    return new MatrixEngine(this.forward, this.backward, new onnxRuntime.Tensor('float32', view, [rows, this.dim]), rows, this.dim, view, false);
  }

  /** X·W for W of dim × columns (row-major); returns rows × columns. */
  async multiply(weights: Float32Array, columns: number): Promise<Float32Array> {
    const output = await this.forward.run({ X: this.matrix, B: new onnxRuntime.Tensor('float32', weights, [this.dim, columns]) });
    return output.Y!.data as Float32Array;
  }

  /** Xᵀ·R for R of rows × columns (row-major); returns dim × columns. */
  async multiplyTransposed(residuals: Float32Array, columns: number): Promise<Float32Array> {
    const output = await this.backward.run({ X: this.matrix, B: new onnxRuntime.Tensor('float32', residuals, [this.rows, columns]) });
    return output.Y!.data as Float32Array;
  }

  /** Releases the sessions; a prefix engine owns none, so releasing one does nothing. */
  async release(): Promise<void> {
    if (!this.ownsSessions) return;
    await this.forward.release();
    await this.backward.release();
  }
}

function tensorInfo(name: string, dims: string[]): OnnxNamespace.ValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((dimParam) => ({ dimParam })) } } },
  });
}

/** Y = X·B, or Y = Xᵀ·B through Gemm's transA (the kernel reads X transposed without materialising it). */
function productGraph(transposeX: boolean): Uint8Array {
  const node = transposeX
    ? onnx.NodeProto.create({
        opType: 'Gemm',
        input: ['X', 'B'],
        output: ['Y'],
        attribute: [onnx.AttributeProto.create({ name: 'transA', type: onnx.AttributeProto.AttributeType.INT, i: 1 })],
      })
    : onnx.NodeProto.create({ opType: 'MatMul', input: ['X', 'B'], output: ['Y'] });
  const graph = onnx.GraphProto.create({
    name: transposeX ? 'transposed_product' : 'product',
    node: [node],
    input: [tensorInfo('X', ['rows', 'dim']), tensorInfo('B', transposeX ? ['rows', 'columns'] : ['dim', 'columns'])],
    output: [tensorInfo('Y', transposeX ? ['dim', 'columns'] : ['rows', 'columns'])],
  });
  const model = onnx.ModelProto.create({ irVersion: 7, opsetImport: [{ domain: '', version: 13 }], graph, producerName: 'derm-workstation probes' });
  return onnx.ModelProto.encode(model).finish();
}
