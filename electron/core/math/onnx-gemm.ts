import type * as ort from 'onnxruntime-node';
import { onnxRuntime } from '../runtime/lazy-packages.js';
import { OnnxGraphBuilder } from './onnx-graph-builder.js';
import { DermError } from '../../common/errors.js';

/**
 * Dense matrix products through onnxruntime. The randomized PCA fit and the query projection are
 * nothing but matrix products, and ORT's CPU kernels (blocked, vectorised, multi-threaded) run them
 * one to two orders of magnitude faster than a JavaScript triple loop. The graphs are written in
 * memory with the project's ONNX graph builder, so no model file is shipped or downloaded.
 */

/** A row-major float32 matrix. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float32Array;
}

export function matrix(rows: number, cols: number, data: Float32Array = new Float32Array(rows * cols)): Matrix {
  if (data.length !== rows * cols) throw new DermError('internal', `A ${rows}x${cols} matrix needs ${rows * cols} values; got ${data.length}.`);
  return { rows, cols, data };
}

/** A Gemm graph `Y = op(A) · op(B)` with every dimension symbolic, so one session serves all shapes. */
export function gemmModel(transposeA: boolean, transposeB: boolean): Uint8Array {
  const graph = new OnnxGraphBuilder({ name: 'gemm' });
  graph.addInput('A', ['a0', 'a1']);
  graph.addInput('B', ['b0', 'b1']);
  graph.op('Gemm', ['A', 'B'], { transA: transposeA ? 1 : 0, transB: transposeB ? 1 : 0 }, 'Y');
  graph.addOutput('Y', ['y0', 'y1']);
  return graph.serialize();
}

/** `Y = X · W + bias` with W and bias baked in as initializers (the projection on the query hot path). */
export function affineModel(weights: Matrix, bias: Float32Array): Uint8Array {
  if (bias.length !== weights.cols) throw new DermError('internal', `Bias of ${bias.length} values for a ${weights.rows}x${weights.cols} weight matrix.`);
  const graph = new OnnxGraphBuilder({ name: 'affine' });
  graph.addInput('X', ['n', weights.rows]);
  graph.addInitializer('W', [weights.rows, weights.cols], weights.data);
  graph.addInitializer('bias', [weights.cols], bias);
  graph.op('Gemm', ['X', 'W', 'bias'], {}, 'Y');
  graph.addOutput('Y', ['n', weights.cols]);
  return graph.serialize();
}

const sessionOptions: ort.InferenceSession.SessionOptions = {
  executionProviders: ['cpu'],
  graphOptimizationLevel: 'all',
  logSeverityLevel: 3,
  // Spinning worker threads burn the cores other work (SQLite, sharp, the UI) needs between products.
  extra: { session: { intra_op: { allow_spinning: '0' } } },
};

/** Matrix products on onnxruntime's CPU provider. Sessions are created once per transpose combination. */
export class OnnxGemm {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();

  private session(transposeA: boolean, transposeB: boolean): Promise<ort.InferenceSession> {
    const key = `${transposeA}-${transposeB}`;
    let session = this.sessions.get(key);
    if (!session) {
      session = onnxRuntime.InferenceSession.create(gemmModel(transposeA, transposeB), sessionOptions);
      this.sessions.set(key, session);
    }
    return session;
  }

  /** op(a) · op(b), where op transposes when asked. */
  async multiply(a: Matrix, b: Matrix, transposeA = false, transposeB = false): Promise<Matrix> {
    const [m, innerA] = transposeA ? [a.cols, a.rows] : [a.rows, a.cols];
    const [innerB, n] = transposeB ? [b.cols, b.rows] : [b.rows, b.cols];
    if (innerA !== innerB) throw new DermError('internal', `Cannot multiply ${m}x${innerA} by ${innerB}x${n}.`);
    const session = await this.session(transposeA, transposeB);
    const output = await session.run({
      A: new onnxRuntime.Tensor('float32', a.data, [a.rows, a.cols]),
      B: new onnxRuntime.Tensor('float32', b.data, [b.rows, b.cols]),
    });
    return matrix(m, n, output.Y!.data as Float32Array);
  }

  async release(): Promise<void> {
    for (const session of this.sessions.values()) await (await session).release();
    this.sessions.clear();
  }
}

/** A fixed affine map `x ↦ x · W + bias` as an ORT session; W stays inside the session between calls. */
export class OnnxAffine {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly inputDim: number,
    readonly outputDim: number,
  ) {}

  static async create(weights: Matrix, bias: Float32Array): Promise<OnnxAffine> {
    const session = await onnxRuntime.InferenceSession.create(affineModel(weights, bias), sessionOptions);
    return new OnnxAffine(session, weights.rows, weights.cols);
  }

  async apply(rows: Float32Array, count = rows.length / this.inputDim): Promise<Float32Array> {
    const output = await this.session.run({ X: new onnxRuntime.Tensor('float32', rows.subarray(0, count * this.inputDim), [count, this.inputDim]) });
    return output.Y!.data as Float32Array;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** The plain JavaScript product, kept as the reference the bench and tests compare ORT against. */
export function multiplyJs(a: Matrix, b: Matrix): Matrix {
  if (a.cols !== b.rows) throw new DermError('internal', `Cannot multiply ${a.rows}x${a.cols} by ${b.rows}x${b.cols}.`);
  const out = new Float32Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++) {
    const rowOut = i * b.cols;
    for (let k = 0; k < a.cols; k++) {
      const value = a.data[i * a.cols + k]!;
      if (value === 0) continue;
      const rowB = k * b.cols;
      for (let j = 0; j < b.cols; j++) out[rowOut + j] += value * b.data[rowB + j]!;
    }
  }
  return matrix(a.rows, b.cols, out);
}
