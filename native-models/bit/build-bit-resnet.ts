import { DermError } from '../../electron/common/errors.js';
import { OnnxGraphBuilder, type WrittenModel } from '../onnx/onnx-graph-builder.js';
import { seededRandom } from '../../electron/common/seeded-random.js';

/**
 * A BiT-ResNet-v2 shaped encoder with random weights: Derm Foundation's architecture (BiT-M
 * ResNet101x3 at 448x448, 6144-d global-pooled output), so users can see what the real model costs
 * on their hardware without having it. Shape-faithful where cost is concerned:
 * - weight-standardised convolutions (StdConv: each output channel's weights have mean 0 and
 *   variance 1). The standardisation is applied to the random weights when they are written, as a
 *   converter's constant folding (or onnxruntime's) does for the real model's fixed weights, so it
 *   costs nothing at inference — exactly as for the exported model;
 * - GroupNorm with 32 groups before every convolution (pre-activation bottlenecks);
 * - root: 7x7/2 StdConv → zero pad 1 → 3x3/2 max pool; stages [3, 4, 23, 3] blocks of width
 *   64·k·[1, 2, 4, 8] (bottleneck) and 256·k·[1, 2, 4, 8] (output), stride on the 3x3 convolution,
 *   a 1x1 StdConv projection on each stage's first block; final GroupNorm + ReLU + global average.
 * The classification head is left out, as in the embedding model.
 */

export interface BitResNetOptions {
  /** Square input size (448 for Derm Foundation). */
  size?: number;
  /** Width factor k (3 for R101x3). */
  widthFactor?: number;
  /** Blocks per stage ([3, 4, 23, 3] for ResNet-101). */
  blocks?: readonly [number, number, number, number];
  groups?: number;
  seed?: number;
}

export interface BitResNetGraph {
  graph: OnnxGraphBuilder;
  inputName: string;
  outputName: string;
  outputDim: number;
  parameterCount: number;
  /** Multiply-accumulates per image in the convolutions (the bulk of the cost). */
  multiplyAccumulates: number;
}

export const bitInputName = 'image';
export const bitOutputName = 'embedding';

/** Uniform random weights standardised per output channel: (w − mean) / √(var + 1e-10), as BiT's StdConv. */
function standardisedWeights(seed: number, outChannels: number, fanIn: number): Float32Array {
  const random = seededRandom(seed);
  const weights = new Float32Array(outChannels * fanIn);
  for (let i = 0; i < weights.length; i++) weights[i] = random() * 2 - 1;
  for (let o = 0; o < outChannels; o++) {
    const row = weights.subarray(o * fanIn, (o + 1) * fanIn);
    let sum = 0;
    let squares = 0;
    for (const value of row) {
      sum += value;
      squares += value * value;
    }
    const mean = sum / fanIn;
    const scale = 1 / Math.sqrt(Math.max(squares / fanIn - mean * mean, 0) + 1e-10);
    for (let i = 0; i < row.length; i++) row[i] = (row[i]! - mean) * scale;
  }
  return weights;
}

export function buildBitResNet(options: BitResNetOptions = {}): BitResNetGraph {
  const size = options.size ?? 448;
  const width = options.widthFactor ?? 3;
  const blocks = options.blocks ?? [3, 4, 23, 3];
  const groups = options.groups ?? 32;
  const seed = options.seed ?? 1;
  if (!Number.isInteger(size) || size < 32) throw new DermError('invalid-input', `BiT builder: size ${size} must be an integer ≥ 32.`);
  if (!Number.isInteger(width) || width < 1) throw new DermError('invalid-input', `BiT builder: width factor ${width} must be a positive integer.`);
  if ((64 * width) % groups !== 0) throw new DermError('invalid-input', `BiT builder: ${64 * width} root channels cannot form ${groups} groups.`);

  const graph = new OnnxGraphBuilder({
    name: `bit-resnet-v2-${blocks.join('-')}x${width}-${size}`,
    docString: `Random-weight BiT-ResNet-v2 (blocks ${blocks.join(', ')}, width x${width}, ${size}x${size}, GroupNorm ${groups}, StdConv), seed ${seed}; for cost measurement only.`,
  });
  let convIndex = 0;
  let macs = 0;
  let spatial = size;

  const stdConv = (x: string, inChannels: number, outChannels: number, kernel: number, stride: number, pad: number): string => {
    const weightSeed = (seed * 7919 + ++convIndex * 104729) >>> 0;
    const weight = graph.constant('std_conv_weight', [outChannels, inChannels, kernel, kernel], () =>
      standardisedWeights(weightSeed, outChannels, inChannels * kernel * kernel),
    );
    const outSpatial = Math.floor((spatial + 2 * pad - kernel) / stride) + 1;
    macs += outSpatial * outSpatial * outChannels * inChannels * kernel * kernel;
    return graph.conv(x, weight, undefined, { strides: [stride, stride], pads: [pad, pad, pad, pad] });
  };
  const groupNormRelu = (x: string, channels: number): string =>
    graph.relu(graph.groupNorm(x, channels, groups, () => new Float32Array(channels).fill(1), () => new Float32Array(channels)));

  const input = graph.addInput(bitInputName, ['N', size, size, 3]);
  let x = graph.transpose(input, [0, 3, 1, 2]);
  const rootChannels = 64 * width;
  x = stdConv(x, 3, rootChannels, 7, 2, 3);
  spatial = Math.floor((spatial + 6 - 7) / 2) + 1;
  x = graph.maxPool(graph.padSpatial(x, [1, 1, 1, 1]), [3, 3], [2, 2]);
  spatial = Math.floor((spatial + 2 - 3) / 2) + 1;

  let channels = rootChannels;
  for (let stage = 0; stage < 4; stage++) {
    const outChannels = 256 * width * 2 ** stage;
    const midChannels = outChannels / 4;
    for (let block = 0; block < blocks[stage]!; block++) {
      const stride = block === 0 && stage > 0 ? 2 : 1;
      const inSpatial = spatial;
      const preActivated = groupNormRelu(x, channels);
      let shortcut = x;
      if (block === 0) shortcut = stdConv(preActivated, channels, outChannels, 1, stride, 0);
      let y = stdConv(preActivated, channels, midChannels, 1, 1, 0);
      y = stdConv(groupNormRelu(y, midChannels), midChannels, midChannels, 3, stride, 1);
      spatial = Math.floor((inSpatial + 2 - 3) / stride) + 1;
      y = stdConv(groupNormRelu(y, midChannels), midChannels, outChannels, 1, 1, 0);
      x = graph.add(y, shortcut);
      channels = outChannels;
    }
  }
  const pooled = graph.globalAveragePoolFlat(groupNormRelu(x, channels));
  graph.addNode('Identity', [pooled], {}, { outputs: [bitOutputName] });
  graph.addOutput(bitOutputName, ['N', channels]);
  return { graph, inputName: bitInputName, outputName: bitOutputName, outputDim: channels, parameterCount: graph.parameterCount(), multiplyAccumulates: macs };
}

/** Builds and writes the model (weights generated one tensor at a time while writing). */
export async function writeBitResNet(file: string, options: BitResNetOptions = {}): Promise<BitResNetGraph & { written: WrittenModel }> {
  const built = buildBitResNet(options);
  const written = await built.graph.writeFile(file);
  return { ...built, written };
}
