import fs from 'node:fs';
import path from 'node:path';
import { DermError } from '../electron/common/errors.js';
import type { ModelManifest } from '../electron/core/models/model-manifest.js';
import { manifestFileName, writeFileAtomically, writeManifestFile, type ModelFiles } from './model-files.js';
import { OnnxGraphBuilder, sha256OfFile } from './onnx/onnx-graph-builder.js';

/**
 * Small random-weight ONNX encoders with valid manifests, made in tests in milliseconds, so every
 * feature (embedding job, search, probes, CLI) can be tested against real onnxruntime sessions
 * without the default encoder's conversion. Plus deliberately broken models for bad-input tests.
 */

export interface TinyEncoderOptions {
  folder: string;
  id: string;
  /** Input width = height; a multiple of 16 (default 64). */
  size?: number;
  /** Embedding dimension (default 32). */
  dim?: number;
  layout?: 'NHWC' | 'NCHW';
  /** Weight seed: the same seed gives the same file and sha256. */
  seed?: number;
}

export const tinyEncoderInputName = 'image';
export const tinyEncoderOutputName = 'embedding';

/** mulberry32: small, fast and the same on every platform. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform weights in ±√(6/fanIn) (He-uniform), so activations neither vanish nor explode. */
function heUniform(random: () => number, count: number, fanIn: number): Float32Array {
  const limit = Math.sqrt(6 / fanIn);
  return Float32Array.from({ length: count }, () => (random() * 2 - 1) * limit);
}

interface TinyGraphOptions {
  size: number;
  dim: number;
  layout: 'NHWC' | 'NCHW';
  seed: number;
  /** Appended after the embedding to make a broken model. */
  poison?: 'nan' | 'infinity';
}

/**
 * Two stride-2 3x3 convolutions with ReLU, a 4x4 average-pooled grid (so embeddings keep where in
 * the photo things are and differ clearly between images), flattened, then a linear layer to `dim`.
 */
function buildTinyEncoder(name: string, options: TinyGraphOptions): OnnxGraphBuilder {
  const { size, dim, layout, seed } = options;
  const random = seededRandom(seed);
  const graph = new OnnxGraphBuilder({ name, docString: `random-weight test encoder (seed ${seed})` });
  const input = graph.addInput(tinyEncoderInputName, layout === 'NHWC' ? ['N', size, size, 3] : ['N', 3, size, size]);
  let x = layout === 'NHWC' ? graph.transpose(input, [0, 3, 1, 2]) : input;
  const widths = [3, 8, 16];
  for (let layer = 1; layer < widths.length; layer++) {
    const inChannels = widths[layer - 1]!;
    const outChannels = widths[layer]!;
    const weight = graph.constant('conv_weight', [outChannels, inChannels, 3, 3], heUniform(random, outChannels * inChannels * 9, inChannels * 9));
    const bias = graph.constant('conv_bias', [outChannels], Float32Array.from({ length: outChannels }, () => (random() - 0.5) * 0.1));
    x = graph.relu(graph.conv(x, weight, bias, { strides: [2, 2], pads: [1, 1, 1, 1] }));
  }
  const cell = size / 4 / 4;
  const pooled = graph.op('AveragePool', [x], { kernel_shape: [cell, cell], strides: [cell, cell] });
  const features = graph.op('Flatten', [pooled], { axis: 1 });
  const featureCount = widths.at(-1)! * 16;
  const projection = graph.constant('projection_weight', [dim, featureCount], heUniform(random, dim * featureCount, featureCount));
  const projectionBias = graph.constant('projection_bias', [dim], Float32Array.from({ length: dim }, () => (random() - 0.5) * 0.1));
  if (options.poison === undefined) {
    graph.addNode('Gemm', [features, projection, projectionBias], { transB: 1 }, { outputs: [tinyEncoderOutputName] });
  } else {
    const embedding = graph.gemm(features, projection, projectionBias);
    // sqrt(-(|e| + 1)) is NaN everywhere; (|e| + 1) / 0 is +Inf everywhere.
    const positive = graph.add(graph.op('Abs', [embedding]), graph.constant('one', [], new Float32Array([1])));
    if (options.poison === 'nan') graph.addNode('Sqrt', [graph.op('Neg', [positive])], {}, { outputs: [tinyEncoderOutputName] });
    else graph.addNode('Div', [positive, graph.constant('zero', [], new Float32Array([0]))], {}, { outputs: [tinyEncoderOutputName] });
  }
  graph.addOutput(tinyEncoderOutputName, ['N', dim]);
  return graph;
}

function tinyManifest(id: string, file: string, sha256: string, options: TinyGraphOptions): ModelManifest {
  return {
    id,
    displayName: `Test encoder ${id}`,
    file,
    sha256,
    input: {
      name: tinyEncoderInputName,
      layout: options.layout,
      width: options.size,
      height: options.size,
      resize: 'bilinear',
      fit: 'stretch',
      valueRange: [0, 1],
      mean: [0.5, 0.5, 0.5],
      std: [0.25, 0.25, 0.25],
    },
    output: { name: tinyEncoderOutputName, dim: options.dim },
    licence: 'Apache-2.0 (generated random weights)',
    origin: `generated by native-models/test-encoders.ts with seed ${options.seed}`,
    description: 'Random-weight convolutional encoder for tests. Its embeddings mean nothing.',
  };
}

function resolveTinyOptions(options: TinyEncoderOptions): TinyGraphOptions {
  const size = options.size ?? 64;
  const dim = options.dim ?? 32;
  if (!Number.isInteger(size) || size < 16 || size % 16 !== 0) {
    throw new DermError('invalid-input', `writeTinyEncoder: size ${size} must be a multiple of 16 (16, 32, 48 …).`);
  }
  if (!Number.isInteger(dim) || dim < 1) throw new DermError('invalid-input', `writeTinyEncoder: dim ${dim} must be a positive integer.`);
  return { size, dim, layout: options.layout ?? 'NHWC', seed: options.seed ?? 1 };
}

/** Writes `<id>.onnx` and `<id>.manifest.json` (with the file's sha256) into `folder`. */
export async function writeTinyEncoder(options: TinyEncoderOptions): Promise<ModelFiles> {
  const resolved = resolveTinyOptions(options);
  const onnxPath = path.join(options.folder, `${options.id}.onnx`);
  const written = await buildTinyEncoder(options.id, resolved).writeFile(onnxPath);
  const manifestPath = path.join(options.folder, manifestFileName(options.id));
  const manifest = writeManifestFile(manifestPath, tinyManifest(options.id, path.basename(onnxPath), written.sha256, resolved));
  return { manifestPath, onnxPath, manifest };
}

export const brokenModelKinds = [
  'nan-output',
  'infinite-output',
  'wrong-input-name',
  'wrong-input-size',
  'wrong-layout',
  'wrong-output-name',
  'wrong-output-dim',
  'sha256-mismatch',
  'truncated',
  'not-onnx',
  'missing-file',
] as const;
export type BrokenModelKind = (typeof brokenModelKinds)[number];

export interface BrokenModel extends ModelFiles {
  kind: BrokenModelKind;
  /** What is wrong, in words (for test names and failure messages). */
  problem: string;
}

/**
 * One model per kind of bad input, each with a schema-valid manifest, in `folder` under ids
 * `broken-<kind>`. The manifest's sha256 matches the file on disk except for 'sha256-mismatch'
 * (and 'missing-file', which has no file), so each model fails at the step its kind names.
 */
export async function writeBrokenModels(folder: string): Promise<Record<BrokenModelKind, BrokenModel>> {
  const base: TinyGraphOptions = { size: 32, dim: 16, layout: 'NHWC', seed: 7 };
  const good = buildTinyEncoder('broken-base', base).serialize();
  const result = {} as Record<BrokenModelKind, BrokenModel>;
  for (const kind of brokenModelKinds) {
    const id = `broken-${kind}`;
    const onnxPath = path.join(folder, `${id}.onnx`);
    let bytes: Uint8Array | undefined = good;
    let adjust: (manifest: ModelManifest) => void = () => undefined;
    let problem: string;
    switch (kind) {
      case 'nan-output':
        bytes = buildTinyEncoder(id, { ...base, poison: 'nan' }).serialize();
        problem = 'the model outputs NaN for every input';
        break;
      case 'infinite-output':
        bytes = buildTinyEncoder(id, { ...base, poison: 'infinity' }).serialize();
        problem = 'the model outputs +Infinity for every input';
        break;
      case 'wrong-input-name':
        adjust = (manifest) => void (manifest.input.name = 'pixels');
        problem = `the manifest names the input "pixels"; the graph's input is "${tinyEncoderInputName}"`;
        break;
      case 'wrong-input-size':
        adjust = (manifest) => void Object.assign(manifest.input, { width: 48, height: 48 });
        problem = 'the manifest says 48x48; the graph takes 32x32';
        break;
      case 'wrong-layout':
        adjust = (manifest) => void (manifest.input.layout = 'NCHW');
        problem = 'the manifest says NCHW; the graph takes NHWC [N,32,32,3]';
        break;
      case 'wrong-output-name':
        adjust = (manifest) => void (manifest.output.name = 'features');
        problem = `the manifest names the output "features"; the graph's output is "${tinyEncoderOutputName}"`;
        break;
      case 'wrong-output-dim':
        adjust = (manifest) => void (manifest.output.dim = 64);
        problem = 'the manifest says 64 dimensions; the graph outputs 16';
        break;
      case 'sha256-mismatch':
        adjust = (manifest) => void (manifest.sha256 = '0'.repeat(64));
        problem = 'the manifest sha256 does not match the file';
        break;
      case 'truncated':
        bytes = good.subarray(0, Math.floor(good.length / 2));
        problem = 'the ONNX file is cut off halfway';
        break;
      case 'not-onnx':
        bytes = new TextEncoder().encode('This is a text file, not an ONNX model.\n');
        problem = 'the file is plain text, not ONNX';
        break;
      case 'missing-file':
        bytes = undefined;
        problem = 'the manifest points to a file that does not exist';
        break;
    }
    let sha256 = '0'.repeat(64);
    if (bytes !== undefined) {
      writeFileAtomically(onnxPath, bytes);
      sha256 = await sha256OfFile(onnxPath);
    } else {
      fs.rmSync(onnxPath, { force: true });
    }
    const manifest = tinyManifest(id, path.basename(onnxPath), sha256, base);
    adjust(manifest);
    const manifestPath = path.join(folder, manifestFileName(id));
    result[kind] = { kind, problem, manifestPath, onnxPath, manifest: writeManifestFile(manifestPath, manifest) };
  }
  return result;
}
