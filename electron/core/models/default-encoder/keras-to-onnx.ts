import { DermError } from '../../../common/errors.js';
import { OnnxGraphBuilder } from '../../math/onnx-graph-builder.js';

/**
 * Converts a Keras (2.x, channels_last) functional model config, as saved in a TF.js layers model,
 * into an ONNX graph over NCHW tensors, cut at a chosen layer. Only the layers an image backbone
 * needs are supported (InputLayer, ZeroPadding2D, Conv2D, DepthwiseConv2D, BatchNormalization,
 * ReLU, Activation, Add, AveragePooling2D, GlobalAveragePooling2D, Flatten); anything else between
 * the input and the cut is refused with the layer's name, so a silently wrong graph is impossible.
 *
 * BatchNormalization directly after a convolution is folded into the convolution's weights (the
 * standard inference-time rewrite): fewer nodes, and what TF.js computes up to float rounding.
 */

export interface KerasLayer {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  inbound_nodes: unknown[];
}

export interface KerasConversionOptions {
  graphName: string;
  docString?: string;
  layers: readonly KerasLayer[];
  /** The Keras layer whose output becomes the ONNX output (must be flat: [N, dim]). */
  outputLayer: string;
  /** Weight lookup by TF.js name (`<layer>/<weight>`, e.g. `Conv1/kernel`), already dequantised. */
  weight: (name: string) => Float32Array;
  inputName: string;
  outputName: string;
}

export interface KerasConversion {
  graph: OnnxGraphBuilder;
  /** Input [height, width, channels] (NHWC without the batch). */
  inputShape: [number, number, number];
  outputDim: number;
  convertedLayers: number;
}

/** Shape without the batch: [C, H, W] for feature maps, [F] once flattened. */
type Shape = readonly number[];

interface PendingConv {
  input: string;
  weight: Float32Array;
  dims: [number, number, number, number];
  bias: Float32Array | undefined;
  pads: [number, number, number, number];
  strides: [number, number];
  dilations: [number, number];
  group: number;
}

interface Tensor {
  /** ONNX value name; absent while a convolution waits to see whether a BatchNormalization follows. */
  value?: string;
  pending?: PendingConv;
  shape: Shape;
}

function fail(layer: KerasLayer, problem: string): never {
  throw new DermError('model-invalid', `Keras layer "${layer.name}" (${layer.class_name}): ${problem}`);
}

function pair(layer: KerasLayer, key: string, fallback?: [number, number]): [number, number] {
  const value = layer.config[key] ?? fallback;
  if (typeof value === 'number') return [value, value];
  if (Array.isArray(value) && value.length === 2 && value.every((item) => Number.isInteger(item))) return [value[0] as number, value[1] as number];
  return fail(layer, `config.${key} is ${JSON.stringify(value)}; expected two integers.`);
}

/** The names of the layers feeding `layer` (single-call functional graphs only). */
function inboundNames(layer: KerasLayer): string[] {
  if (layer.inbound_nodes.length === 0) return [];
  if (layer.inbound_nodes.length !== 1) fail(layer, `is called ${layer.inbound_nodes.length} times; shared layers are not supported.`);
  const node = layer.inbound_nodes[0];
  if (!Array.isArray(node)) fail(layer, 'inbound_nodes[0] is not a list.');
  return node.map((entry: unknown) => {
    if (!Array.isArray(entry) || typeof entry[0] !== 'string' || entry[1] !== 0 || entry[2] !== 0) {
      fail(layer, `inbound entry ${JSON.stringify(entry)} is not [layer, 0, 0, …].`);
    }
    return entry[0] as string;
  });
}

/** TF "same" padding: total = max((ceil(in/s) − 1)·s + effectiveKernel − in, 0), the extra pixel after. */
function samePadding(size: number, kernel: number, stride: number, dilation: number): [number, number, number] {
  const effective = (kernel - 1) * dilation + 1;
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + effective - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2), out];
}

function validOutput(size: number, kernel: number, stride: number, dilation: number): number {
  return Math.floor((size - ((kernel - 1) * dilation + 1)) / stride) + 1;
}

/** Keras Conv2D kernel [kh, kw, in, out] → ONNX [out, in, kh, kw]. */
function convKernelToOnnx(kernel: Float32Array, kh: number, kw: number, inChannels: number, outChannels: number): Float32Array {
  const out = new Float32Array(kernel.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < inChannels; i++) {
        for (let o = 0; o < outChannels; o++) out[((o * inChannels + i) * kh + y) * kw + x] = kernel[((y * kw + x) * inChannels + i) * outChannels + o]!;
      }
    }
  }
  return out;
}

/** Keras DepthwiseConv2D kernel [kh, kw, in, multiplier] → ONNX [in·multiplier, 1, kh, kw] (group = in). */
function depthwiseKernelToOnnx(kernel: Float32Array, kh: number, kw: number, inChannels: number, multiplier: number): Float32Array {
  const out = new Float32Array(kernel.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let c = 0; c < inChannels; c++) {
        for (let m = 0; m < multiplier; m++) out[((c * multiplier + m) * kh + y) * kw + x] = kernel[((y * kw + x) * inChannels + c) * multiplier + m]!;
      }
    }
  }
  return out;
}

export function convertKerasModel(options: KerasConversionOptions): KerasConversion {
  const byName = new Map(options.layers.map((layer) => [layer.name, layer]));
  const target = byName.get(options.outputLayer);
  if (!target) throw new DermError('model-invalid', `Keras model has no layer "${options.outputLayer}" to cut at.`);

  // Only the ancestors of the cut are converted; the classification head after it is ignored.
  const needed = new Set<string>();
  const stack = [options.outputLayer];
  while (stack.length > 0) {
    const name = stack.pop()!;
    if (needed.has(name)) continue;
    const layer = byName.get(name);
    if (!layer) throw new DermError('model-invalid', `Keras model refers to a missing layer "${name}".`);
    needed.add(name);
    stack.push(...inboundNames(layer));
  }
  const consumers = new Map<string, number>();
  for (const layer of options.layers) {
    if (!needed.has(layer.name)) continue;
    for (const name of inboundNames(layer)) consumers.set(name, (consumers.get(name) ?? 0) + 1);
  }

  const graph = new OnnxGraphBuilder({ name: options.graphName, ...(options.docString === undefined ? {} : { docString: options.docString }) });
  const tensors = new Map<string, Tensor>();
  let inputShape: [number, number, number] | undefined;
  let converted = 0;

  const emitConv = (conv: PendingConv): string =>
    graph.conv(
      conv.input,
      graph.constant('weight', conv.dims, conv.weight),
      conv.bias === undefined ? undefined : graph.constant('bias', [conv.dims[0]], conv.bias),
      {
        strides: conv.strides,
        pads: conv.pads,
        dilations: conv.dilations,
        group: conv.group,
      },
    );
  const valueOf = (name: string): string => {
    const tensor = tensors.get(name)!;
    if (tensor.value === undefined) tensor.value = emitConv(tensor.pending!);
    return tensor.value;
  };
  const activation = (layer: KerasLayer, value: string): string => {
    const kind = layer.config.activation ?? 'linear';
    if (kind === 'linear') return value;
    if (kind === 'relu') return graph.relu(value);
    return fail(layer, `activation "${String(kind)}" is not supported (linear, relu).`);
  };
  const requireMap = (layer: KerasLayer, shape: Shape): [number, number, number] => {
    if (shape.length !== 3) fail(layer, `expects a feature map but its input is flat [${shape.join(', ')}].`);
    return shape as [number, number, number];
  };
  const weightOf = (layer: KerasLayer, weight: string, length: number): Float32Array => {
    const values = options.weight(`${layer.name}/${weight}`);
    if (values.length !== length) fail(layer, `weight ${weight} holds ${values.length} values; ${length} expected.`);
    return values;
  };

  for (const layer of options.layers) {
    if (!needed.has(layer.name)) continue;
    converted++;
    const inputs = inboundNames(layer);
    const first = inputs[0] === undefined ? undefined : tensors.get(inputs[0]);
    if (layer.class_name !== 'InputLayer' && first === undefined) fail(layer, 'has no converted input.');
    if (layer.config.data_format !== undefined && layer.config.data_format !== 'channels_last')
      fail(layer, `data_format ${String(layer.config.data_format)} is not supported.`);

    switch (layer.class_name) {
      case 'InputLayer': {
        const shape = layer.config.batch_input_shape;
        if (!Array.isArray(shape) || shape.length !== 4 || !shape.slice(1).every((size) => Number.isInteger(size))) {
          fail(layer, `batch_input_shape ${JSON.stringify(shape)} is not [batch, height, width, channels].`);
        }
        const [height, width, channels] = shape.slice(1) as [number, number, number];
        inputShape = [height, width, channels];
        const input = graph.addInput(options.inputName, ['N', height, width, channels]);
        tensors.set(layer.name, { value: graph.transpose(input, [0, 3, 1, 2]), shape: [channels, height, width] });
        break;
      }
      case 'ZeroPadding2D': {
        const [channels, height, width] = requireMap(layer, first!.shape);
        const padding = layer.config.padding;
        let top: number, bottom: number, left: number, right: number;
        if (typeof padding === 'number') [top, bottom, left, right] = [padding, padding, padding, padding];
        else if (Array.isArray(padding) && padding.length === 2 && padding.every(Array.isArray))
          [[top, bottom], [left, right]] = padding as [[number, number], [number, number]];
        else if (Array.isArray(padding) && padding.length === 2)
          [top, bottom, left, right] = [padding[0], padding[0], padding[1], padding[1]] as [number, number, number, number];
        else fail(layer, `padding ${JSON.stringify(padding)} is not understood.`);
        tensors.set(layer.name, {
          value: graph.padSpatial(valueOf(inputs[0]!), [top, left, bottom, right]),
          shape: [channels, height + top + bottom, width + left + right],
        });
        break;
      }
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        const [inChannels, height, width] = requireMap(layer, first!.shape);
        const [kh, kw] = pair(layer, 'kernel_size');
        const strides = pair(layer, 'strides', [1, 1]);
        const dilations = pair(layer, 'dilation_rate', [1, 1]);
        const depthwise = layer.class_name === 'DepthwiseConv2D';
        const multiplier = depthwise ? Number(layer.config.depth_multiplier ?? 1) : 1;
        const outChannels = depthwise ? inChannels * multiplier : Number(layer.config.filters);
        if (!Number.isInteger(outChannels) || outChannels < 1) fail(layer, `output channels ${outChannels} are not a positive integer.`);
        const kernelLength = kh * kw * inChannels * (depthwise ? multiplier : outChannels);
        const kernel = weightOf(layer, depthwise ? 'depthwise_kernel' : 'kernel', kernelLength);
        const weight = depthwise ? depthwiseKernelToOnnx(kernel, kh, kw, inChannels, multiplier) : convKernelToOnnx(kernel, kh, kw, inChannels, outChannels);
        const bias = layer.config.use_bias === false ? undefined : weightOf(layer, 'bias', outChannels);
        let pads: [number, number, number, number];
        let outHeight: number, outWidth: number;
        if (layer.config.padding === 'same') {
          const [top, bottom, h] = samePadding(height, kh, strides[0], dilations[0]);
          const [left, right, w] = samePadding(width, kw, strides[1], dilations[1]);
          pads = [top, left, bottom, right];
          [outHeight, outWidth] = [h, w];
        } else if (layer.config.padding === 'valid') {
          pads = [0, 0, 0, 0];
          [outHeight, outWidth] = [validOutput(height, kh, strides[0], dilations[0]), validOutput(width, kw, strides[1], dilations[1])];
        } else {
          fail(layer, `padding ${JSON.stringify(layer.config.padding)} is not supported (same, valid).`);
        }
        const conv: PendingConv = {
          input: valueOf(inputs[0]!),
          weight,
          dims: [outChannels, depthwise ? 1 : inChannels, kh, kw],
          bias,
          pads,
          strides,
          dilations,
          group: depthwise ? inChannels : 1,
        };
        const shape = [outChannels, outHeight, outWidth];
        const onlyConsumer = options.layers.find((candidate) => needed.has(candidate.name) && inboundNames(candidate).includes(layer.name));
        const foldable =
          (layer.config.activation ?? 'linear') === 'linear' && consumers.get(layer.name) === 1 && onlyConsumer?.class_name === 'BatchNormalization';
        tensors.set(layer.name, foldable ? { pending: conv, shape } : { value: activation(layer, emitConv(conv)), shape });
        break;
      }
      case 'BatchNormalization': {
        const [channels] = requireMap(layer, first!.shape);
        const axis = layer.config.axis;
        if (!(axis === -1 || axis === 3 || (Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === 3))))
          fail(layer, `axis ${JSON.stringify(axis)} is not the channel axis.`);
        const epsilon = Number(layer.config.epsilon ?? 1e-3);
        const gamma = layer.config.scale === false ? new Float32Array(channels).fill(1) : weightOf(layer, 'gamma', channels);
        const beta = layer.config.center === false ? new Float32Array(channels) : weightOf(layer, 'beta', channels);
        const mean = weightOf(layer, 'moving_mean', channels);
        const variance = weightOf(layer, 'moving_variance', channels);
        // Computed in double precision, then rounded once to float32.
        const factor = Array.from(gamma, (g, c) => g / Math.sqrt(variance[c]! + epsilon));
        const shift = Array.from(beta, (b, c) => b - mean[c]! * factor[c]!);
        const pending = first!.pending;
        if (pending !== undefined && first!.value === undefined) {
          const perChannel = pending.weight.length / channels;
          const weight = pending.weight.map((value, index) => value * factor[Math.floor(index / perChannel)]!);
          const bias = Float32Array.from(shift, (value, c) => value + (pending.bias?.[c] ?? 0) * factor[c]!);
          tensors.set(layer.name, { value: emitConv({ ...pending, weight, bias }), shape: first!.shape });
        } else {
          const scale = graph.constant('bn_scale', [1, channels, 1, 1], Float32Array.from(factor));
          const offset = graph.constant('bn_offset', [1, channels, 1, 1], Float32Array.from(shift));
          tensors.set(layer.name, { value: graph.add(graph.mul(valueOf(inputs[0]!), scale), offset), shape: first!.shape });
        }
        break;
      }
      case 'ReLU': {
        const slope = Number(layer.config.negative_slope ?? 0);
        const threshold = Number(layer.config.threshold ?? 0);
        if (slope !== 0 || threshold !== 0) fail(layer, `negative_slope ${slope} / threshold ${threshold} are not supported (0 only).`);
        const max = layer.config.max_value;
        const input = valueOf(inputs[0]!);
        tensors.set(layer.name, { value: max === null || max === undefined ? graph.relu(input) : graph.clip(input, 0, Number(max)), shape: first!.shape });
        break;
      }
      case 'Activation':
        tensors.set(layer.name, { value: activation(layer, valueOf(inputs[0]!)), shape: first!.shape });
        break;
      case 'Add': {
        if (inputs.length < 2) fail(layer, 'needs at least two inputs.');
        for (const name of inputs) {
          if (tensors.get(name)!.shape.join('x') !== first!.shape.join('x'))
            fail(layer, `input "${name}" has shape [${tensors.get(name)!.shape.join(', ')}], not [${first!.shape.join(', ')}].`);
        }
        let sum = valueOf(inputs[0]!);
        for (const name of inputs.slice(1)) sum = graph.add(sum, valueOf(name));
        tensors.set(layer.name, { value: sum, shape: first!.shape });
        break;
      }
      case 'AveragePooling2D': {
        const [channels, height, width] = requireMap(layer, first!.shape);
        const [ph, pw] = pair(layer, 'pool_size');
        const strides = pair(layer, 'strides', [ph, pw]);
        if (layer.config.padding !== 'valid') fail(layer, `padding ${JSON.stringify(layer.config.padding)} is not supported (valid).`);
        const input = valueOf(inputs[0]!);
        const whole = ph === height && pw === width;
        const value = whole ? graph.op('GlobalAveragePool', [input]) : graph.op('AveragePool', [input], { kernel_shape: [ph, pw], strides });
        tensors.set(layer.name, {
          value,
          shape: whole ? [channels, 1, 1] : [channels, validOutput(height, ph, strides[0], 1), validOutput(width, pw, strides[1], 1)],
        });
        break;
      }
      case 'GlobalAveragePooling2D': {
        const [channels] = requireMap(layer, first!.shape);
        if (layer.config.keepdims === true) {
          tensors.set(layer.name, { value: graph.op('GlobalAveragePool', [valueOf(inputs[0]!)]), shape: [channels, 1, 1] });
        } else {
          tensors.set(layer.name, { value: graph.globalAveragePoolFlat(valueOf(inputs[0]!)), shape: [channels] });
        }
        break;
      }
      case 'Flatten': {
        const shape = first!.shape;
        let input = valueOf(inputs[0]!);
        // Keras flattens channels_last (h, w, c); over a 1x1 map that is the same order as NCHW.
        if (shape.length === 3 && (shape[1] !== 1 || shape[2] !== 1)) input = graph.transpose(input, [0, 2, 3, 1]);
        tensors.set(layer.name, { value: graph.op('Flatten', [input], { axis: 1 }), shape: [shape.reduce((a, b) => a * b, 1)] });
        break;
      }
      default:
        fail(layer, 'this layer type is not supported by the converter.');
    }
  }

  const output = tensors.get(options.outputLayer)!;
  if (output.shape.length !== 1) {
    throw new DermError('model-invalid', `Keras layer "${options.outputLayer}" outputs [${output.shape.join(', ')}]; the cut must be a flat vector.`);
  }
  graph.addNode('Identity', [valueOf(options.outputLayer)], {}, { outputs: [options.outputName] });
  graph.addOutput(options.outputName, ['N', output.shape[0]!]);
  if (inputShape === undefined) throw new DermError('model-invalid', 'Keras model has no InputLayer before the cut.');
  return { graph, inputShape, outputDim: output.shape[0]!, convertedLayers: converted };
}
