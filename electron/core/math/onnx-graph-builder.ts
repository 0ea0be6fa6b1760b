import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { DermError } from '../../common/errors.js';
import { onnxProto as onnx } from '../runtime/lazy-packages.js';

/**
 * A small typed builder for ONNX image encoders: declare inputs, outputs, Float32/Int64 initializers
 * and nodes, then serialise. The bytes depend only on what was declared (fixed producer name and
 * version, no timestamps, declaration order kept), so converting the same weights twice gives the
 * same sha256.
 *
 * Initializers are written as raw little-endian data after the rest of the graph, one at a time,
 * so a multi-gigabyte model can be written from lazily generated weights without holding every
 * tensor in memory (protobuf parsers merge repeated fields that appear in several chunks of a
 * message, which is what makes this split encoding a valid ModelProto).
 */

export const producerName = 'derm-workstation native-models';
export const producerVersion = '1';
/** opset 13: every operator used here has its current semantics (Clip/Pad/ReduceMean-with-axes-attribute). */
export const defaultOpsetVersion = 13;
/** IR version 8 is what onnx 1.10 (the onnx.proto behind onnx-proto) writes; onnxruntime reads 3..10+. */
export const irVersion = 8;

export type ElementType = 'float32' | 'int64';
/** A fixed size, or a symbolic name (such as 'N' for the batch) for a size decided at run time. */
export type Dimension = number | string;

/** A function rather than a table, so onnx-proto is read when a graph is written, not when this module loads. */
function elementTypeCode(type: ElementType): number {
  return type === 'float32' ? onnx.TensorProto.DataType.FLOAT : onnx.TensorProto.DataType.INT64;
}

/** A floating-point attribute (plain numbers are integer attributes). */
export interface FloatAttribute {
  readonly float: number;
}
export interface FloatsAttribute {
  readonly floats: readonly number[];
}
export type AttributeValue = number | readonly number[] | string | FloatAttribute | FloatsAttribute;

export function float(value: number): FloatAttribute {
  return { float: value };
}
export function floats(values: readonly number[]): FloatsAttribute {
  return { floats: values };
}

/** Data of a Float32 initializer, or a function that makes it when the file is written. */
export type Float32Source = Float32Array | (() => Float32Array);

interface InitializerEntry {
  readonly name: string;
  readonly dims: readonly number[];
  readonly type: ElementType;
  readonly elementCount: number;
  readonly source: Float32Source | BigInt64Array;
}

export interface ConvOptions {
  strides?: readonly [number, number];
  /** [top, left, bottom, right] */
  pads?: readonly [number, number, number, number];
  group?: number;
  dilations?: readonly [number, number];
}

export interface GraphBuilderOptions {
  /** Graph name stored in the file. */
  name: string;
  docString?: string;
  opsetVersion?: number;
}

export interface WrittenModel {
  path: string;
  bytes: number;
  sha256: string;
}

function elementCount(dims: readonly number[]): number {
  return dims.reduce((product, size) => product * size, 1);
}

function checkDims(dims: readonly number[], what: string): void {
  for (const size of dims) {
    if (!Number.isInteger(size) || size < 0) {
      throw new DermError('invalid-input', `${what}: dimension ${size} in [${dims.join(', ')}] is not a non-negative integer.`);
    }
  }
}

export class OnnxGraphBuilder {
  private readonly nodes: OnnxTypes.INodeProto[] = [];
  private readonly inputs: OnnxTypes.IValueInfoProto[] = [];
  private readonly outputs: OnnxTypes.IValueInfoProto[] = [];
  private readonly initializers: InitializerEntry[] = [];
  private readonly names = new Set<string>();
  private readonly counters = new Map<string, number>();
  private readonly options: Required<Omit<GraphBuilderOptions, 'docString'>> & { docString?: string };

  constructor(options: GraphBuilderOptions) {
    this.options = { opsetVersion: defaultOpsetVersion, ...options };
  }

  /** A fresh value name starting with `prefix` (deterministic: a counter per prefix). */
  uniqueName(prefix: string): string {
    let index = this.counters.get(prefix) ?? 0;
    let name: string;
    do {
      name = `${prefix}_${index++}`;
    } while (this.names.has(name));
    this.counters.set(prefix, index);
    return name;
  }

  private claim(name: string, what: string): string {
    if (this.names.has(name)) throw new DermError('invalid-input', `${what} "${name}": the name is already used in graph "${this.options.name}".`);
    this.names.add(name);
    return name;
  }

  addInput(name: string, shape: readonly Dimension[], type: ElementType = 'float32'): string {
    this.inputs.push(valueInfo(this.claim(name, 'input'), shape, type));
    return name;
  }

  /** Declares `name` (a value some node produces) as a graph output. */
  addOutput(name: string, shape: readonly Dimension[], type: ElementType = 'float32'): string {
    this.outputs.push(valueInfo(name, shape, type));
    return name;
  }

  addInitializer(name: string, dims: readonly number[], data: Float32Source): string {
    checkDims(dims, `initializer "${name}"`);
    const count = elementCount(dims);
    if (data instanceof Float32Array && data.length !== count) {
      throw new DermError('invalid-input', `initializer "${name}": ${data.length} values given for shape [${dims.join(', ')}] (${count} expected).`);
    }
    this.initializers.push({ name: this.claim(name, 'initializer'), dims: [...dims], type: 'float32', elementCount: count, source: data });
    return name;
  }

  addInt64Initializer(name: string, values: readonly number[], dims: readonly number[] = [values.length]): string {
    checkDims(dims, `initializer "${name}"`);
    if (elementCount(dims) !== values.length) {
      throw new DermError('invalid-input', `initializer "${name}": ${values.length} values given for shape [${dims.join(', ')}].`);
    }
    const data = BigInt64Array.from(values, (value) => BigInt(value));
    this.initializers.push({ name: this.claim(name, 'initializer'), dims: [...dims], type: 'int64', elementCount: values.length, source: data });
    return name;
  }

  /** A new Float32 constant with a generated name. */
  constant(prefix: string, dims: readonly number[], data: Float32Source): string {
    return this.addInitializer(this.uniqueName(prefix), dims, data);
  }

  /** A new Int64 constant with a generated name (shapes, pads, axes). */
  int64Constant(prefix: string, values: readonly number[], dims?: readonly number[]): string {
    return this.addInt64Initializer(this.uniqueName(prefix), values, dims);
  }

  /**
   * Adds a node. Outputs are named `<opType lowercased>_<n>` unless names are given; an empty input
   * name ('') marks an omitted optional input, as in ONNX.
   */
  addNode(
    opType: string,
    inputs: readonly string[],
    attributes: Readonly<Record<string, AttributeValue>> = {},
    options: { outputs?: number | readonly string[]; name?: string } = {},
  ): string[] {
    for (const input of inputs) {
      if (input !== '' && !this.names.has(input)) {
        throw new DermError('invalid-input', `node ${opType}: input "${input}" is not a graph input, initializer or earlier node output.`);
      }
    }
    const outputSpec = options.outputs ?? 1;
    const prefix = opType.toLowerCase();
    const outputs =
      typeof outputSpec === 'number'
        ? Array.from({ length: outputSpec }, () => this.claim(this.uniqueName(prefix), 'output'))
        : outputSpec.map((name) => this.claim(name, 'output'));
    this.nodes.push({
      opType,
      name: options.name ?? this.uniqueName(`${opType}_node`),
      input: [...inputs],
      output: outputs,
      attribute: Object.entries(attributes).map(([name, value]) => attribute(opType, name, value)),
    });
    return outputs;
  }

  /** A node with one output; returns its name. */
  op(opType: string, inputs: readonly string[], attributes: Readonly<Record<string, AttributeValue>> = {}, outputName?: string): string {
    return this.addNode(opType, inputs, attributes, outputName === undefined ? {} : { outputs: [outputName] })[0]!;
  }

  conv(x: string, weight: string, bias: string | undefined, options: ConvOptions = {}): string {
    const attributes: Record<string, AttributeValue> = {
      strides: options.strides ?? [1, 1],
      pads: options.pads ?? [0, 0, 0, 0],
      dilations: options.dilations ?? [1, 1],
      group: options.group ?? 1,
    };
    return this.op('Conv', bias === undefined ? [x, weight] : [x, weight, bias], attributes);
  }

  relu(x: string): string {
    return this.op('Relu', [x]);
  }

  /** Clip with min/max as inputs (opset ≥ 11). */
  clip(x: string, min: number, max: number): string {
    return this.op('Clip', [x, this.constant('clip_min', [], new Float32Array([min])), this.constant('clip_max', [], new Float32Array([max]))]);
  }

  add(a: string, b: string): string {
    return this.op('Add', [a, b]);
  }

  mul(a: string, b: string): string {
    return this.op('Mul', [a, b]);
  }

  transpose(x: string, perm: readonly number[]): string {
    return this.op('Transpose', [x], { perm });
  }

  reshape(x: string, shape: readonly number[]): string {
    return this.op('Reshape', [x, this.int64Constant('shape', shape)]);
  }

  /** Constant zero padding of NCHW spatial dims: [top, left, bottom, right]. */
  padSpatial(x: string, pads: readonly [number, number, number, number]): string {
    const [top, left, bottom, right] = pads;
    return this.op('Pad', [x, this.int64Constant('pads', [0, 0, top, left, 0, 0, bottom, right])], { mode: 'constant' });
  }

  maxPool(
    x: string,
    kernel: readonly [number, number],
    strides: readonly [number, number],
    pads: readonly [number, number, number, number] = [0, 0, 0, 0],
  ): string {
    return this.op('MaxPool', [x], { kernel_shape: kernel, strides, pads });
  }

  /** NCHW → [N, C] */
  globalAveragePoolFlat(x: string): string {
    return this.op('Flatten', [this.op('GlobalAveragePool', [x])], { axis: 1 });
  }

  /** y = x·Wᵀ + b with W stored [out, in] (Keras Dense kernels are [in, out]: pass transB 0 for those). */
  gemm(x: string, weight: string, bias: string, transB = 1): string {
    return this.op('Gemm', [x, weight, bias], { transB });
  }

  /**
   * Group normalisation over NCHW, written as Reshape → InstanceNormalization → Reshape → affine,
   * which every onnxruntime version runs (GroupNormalization itself needs opset 18 and changed
   * meaning in opset 21).
   */
  groupNorm(x: string, channels: number, groups: number, scale: Float32Source, bias: Float32Source, epsilon = 1e-5): string {
    if (channels % groups !== 0) {
      throw new DermError('invalid-input', `groupNorm: ${channels} channels cannot be split into ${groups} groups.`);
    }
    const grouped = this.reshape(x, [0, groups, -1]);
    const ones = this.constant('gn_unit_scale', [groups], new Float32Array(groups).fill(1));
    const zeros = this.constant('gn_zero_bias', [groups], new Float32Array(groups));
    const normalised = this.op('InstanceNormalization', [grouped, ones, zeros], { epsilon: float(epsilon) });
    const shapeOfX = this.op('Shape', [x]);
    const restored = this.op('Reshape', [normalised, shapeOfX]);
    const gamma = this.constant('gn_gamma', [1, channels, 1, 1], scale);
    const beta = this.constant('gn_beta', [1, channels, 1, 1], bias);
    return this.add(this.mul(restored, gamma), beta);
  }

  /** Number of Float32 weights declared (for model cards and benches). */
  parameterCount(): number {
    return this.initializers.filter((entry) => entry.type === 'float32').reduce((sum, entry) => sum + entry.elementCount, 0);
  }

  /** The whole model in memory. For big models prefer writeFile, which streams the weights. */
  serialize(): Uint8Array {
    return Buffer.concat([...this.chunks()]);
  }

  /**
   * Writes the model to `file` atomically (a temporary file in the same folder, then rename), one
   * initializer at a time, hashing as it goes; lazily generated weights are made only when their
   * turn comes, so memory stays near the size of the largest tensor.
   */
  async writeFile(file: string): Promise<WrittenModel> {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    // Unique per call, so concurrent writers of the same file (two processes preparing the default
    // encoder at once) never share a temporary file; the last rename wins with identical bytes.
    const temporary = `${file}.${randomUUID()}.partial`;
    const hash = createHash('sha256');
    let bytes = 0;
    const handle = await fs.promises.open(temporary, 'w');
    try {
      let pending: Uint8Array[] = [];
      let pendingBytes = 0;
      for (const chunk of this.chunks()) {
        hash.update(chunk);
        bytes += chunk.length;
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes >= 4 * 1024 * 1024) {
          await handle.write(Buffer.concat(pending));
          pending = [];
          pendingBytes = 0;
        }
      }
      if (pending.length > 0) await handle.write(Buffer.concat(pending));
      await handle.sync();
      await handle.close();
    } catch (error) {
      await handle.close().catch(() => undefined);
      fs.rmSync(temporary, { force: true });
      throw error;
    }
    fs.renameSync(temporary, file);
    return { path: file, bytes, sha256: hash.digest('hex') };
  }

  /** The file's bytes in order: model header, graph header (nodes, inputs, outputs), then each initializer. */
  private *chunks(): Generator<Uint8Array> {
    if (this.outputs.length === 0) throw new DermError('invalid-input', `graph "${this.options.name}" declares no output.`);
    for (const output of this.outputs) {
      if (!this.names.has(output.name!)) throw new DermError('invalid-input', `graph output "${output.name}" is produced by no node.`);
    }
    const graphHead = onnx.GraphProto.encode({
      node: this.nodes,
      name: this.options.name,
      input: this.inputs,
      output: this.outputs,
      ...(this.options.docString === undefined ? {} : { docString: this.options.docString }),
    }).finish();
    const tensorHeads = this.initializers.map((entry) => ({
      entry,
      head: onnx.TensorProto.encode({ dims: [...entry.dims], dataType: elementTypeCode(entry.type), name: entry.name }).finish(),
      dataBytes: entry.elementCount * (entry.type === 'int64' ? 8 : 4),
    }));
    const tensorLength = (head: Uint8Array, dataBytes: number): number => head.length + 1 + varintLength(dataBytes) + dataBytes;
    let graphLength = graphHead.length;
    for (const { head, dataBytes } of tensorHeads) {
      const length = tensorLength(head, dataBytes);
      graphLength += 1 + varintLength(length) + length;
    }
    yield onnx.ModelProto.encode({
      irVersion,
      opsetImport: [{ domain: '', version: this.options.opsetVersion }],
      producerName,
      producerVersion,
    }).finish();
    yield Uint8Array.of(graphFieldTag, ...varint(graphLength));
    yield graphHead;
    for (const { entry, head, dataBytes } of tensorHeads) {
      yield Uint8Array.of(initializerFieldTag, ...varint(tensorLength(head, dataBytes)));
      yield head;
      yield Uint8Array.of(rawDataFieldTag, ...varint(dataBytes));
      yield tensorData(entry);
    }
  }
}

// Wire-format tags (field number << 3 | length-delimited): ModelProto.graph = 7,
// GraphProto.initializer = 5, TensorProto.raw_data = 9.
const graphFieldTag = (7 << 3) | 2;
const initializerFieldTag = (5 << 3) | 2;
const rawDataFieldTag = (9 << 3) | 2;

function varint(value: number): number[] {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  bytes.push(rest);
  return bytes;
}

function varintLength(value: number): number {
  return varint(value).length;
}

const littleEndian = os.endianness() === 'LE';

function tensorData(entry: InitializerEntry): Uint8Array {
  const values = typeof entry.source === 'function' ? entry.source() : entry.source;
  if (values.length !== entry.elementCount) {
    throw new DermError(
      'invalid-input',
      `initializer "${entry.name}": its generator made ${values.length} values for shape [${entry.dims.join(', ')}] (${entry.elementCount} expected).`,
    );
  }
  if (littleEndian) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = Buffer.alloc(values.byteLength);
  if (values instanceof BigInt64Array) values.forEach((value, index) => out.writeBigInt64LE(value, index * 8));
  else values.forEach((value, index) => out.writeFloatLE(value, index * 4));
  return out;
}

function valueInfo(name: string, shape: readonly Dimension[], type: ElementType): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: elementTypeCode(type),
        shape: { dim: shape.map((size) => (typeof size === 'number' ? { dimValue: size } : { dimParam: size })) },
      },
    },
  };
}

function attribute(opType: string, name: string, value: AttributeValue): OnnxTypes.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') {
    if (!Number.isInteger(value))
      throw new DermError('invalid-input', `node ${opType}: attribute ${name}=${value} is not an integer; wrap floats with float().`);
    return { name, type: AttributeType.INT, i: value };
  }
  if ('float' in value) return { name, type: AttributeType.FLOAT, f: value.float };
  if ('floats' in value) return { name, type: AttributeType.FLOATS, floats: [...value.floats] };
  const ints = value as readonly number[];
  for (const item of ints) {
    if (!Number.isInteger(item))
      throw new DermError('invalid-input', `node ${opType}: attribute ${name} holds ${item}, not an integer; wrap floats with floats().`);
  }
  return { name, type: AttributeType.INTS, ints: [...ints] };
}

/** sha256 (hex) of a file, read in blocks. */
