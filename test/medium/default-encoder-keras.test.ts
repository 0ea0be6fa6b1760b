import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { isDermError } from '../../electron/common/errors.js';
import { convertKerasModel, type KerasLayer } from '../../electron/core/models/default-encoder/keras-to-onnx.js';
import { dequantiseWeights, type WeightSpec } from '../../electron/core/models/default-encoder/nsfwjs-files.js';

/**
 * The Keras → ONNX converter on the cases MobileNetV2 does not exercise: TF "same" padding with
 * stride 2 on odd sizes (the extra pixel goes after), depth multiplier 2, BatchNormalization that
 * cannot be folded (after an activation), asymmetric ZeroPadding2D, AveragePooling2D smaller than the
 * map, Flatten of a spatial map (channels_last order), GlobalAveragePooling2D, unquantised weights.
 * The reference is TF.js running the same Keras model.
 */

interface SavedModel {
  layers: KerasLayer[];
  weights: Map<string, Float32Array>;
  model: tf.LayersModel;
}

let saved: SavedModel;

beforeAll(async () => {
  await tf.setBackend('cpu');
  const uniform = (seed: number, minval = -1, maxval = 1) => tf.initializers.randomUniform({ minval, maxval, seed });
  const input = tf.input({ shape: [17, 15, 3], name: 'image_in' });
  const c1 = tf.layers
    .conv2d({
      name: 'c1',
      filters: 4,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: uniform(1),
      biasInitializer: uniform(2),
    })
    .apply(input) as tf.SymbolicTensor;
  const bnOptions = (seed: number) => ({
    gammaInitializer: uniform(seed, 0.5, 1.5),
    betaInitializer: uniform(seed + 1),
    movingMeanInitializer: uniform(seed + 2),
    movingVarianceInitializer: uniform(seed + 3, 0.5, 2),
    epsilon: 0.001,
  });
  const bn1 = tf.layers.batchNormalization({ name: 'bn1', ...bnOptions(10) }).apply(c1) as tf.SymbolicTensor;
  const dw = tf.layers
    .depthwiseConv2d({ name: 'dw', kernelSize: 3, strides: 2, depthMultiplier: 2, padding: 'same', useBias: false, depthwiseInitializer: uniform(3) })
    .apply(bn1) as tf.SymbolicTensor;
  const bn2 = tf.layers.batchNormalization({ name: 'bn2', ...bnOptions(20) }).apply(dw) as tf.SymbolicTensor;
  const relu = tf.layers.reLU({ name: 'r', maxValue: 6 }).apply(bn2) as tf.SymbolicTensor;
  const a = tf.layers
    .conv2d({ name: 'c3', filters: 5, kernelSize: 1, padding: 'same', kernelInitializer: uniform(4), biasInitializer: uniform(5) })
    .apply(relu) as tf.SymbolicTensor;
  const b = tf.layers
    .conv2d({ name: 'c2', filters: 5, kernelSize: 3, padding: 'same', kernelInitializer: uniform(6), biasInitializer: uniform(7) })
    .apply(relu) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: 'sum' }).apply([a, b]) as tf.SymbolicTensor;
  const flat = tf.layers.flatten({ name: 'flat' }).apply(sum) as tf.SymbolicTensor;
  const padded = tf.layers
    .zeroPadding2d({
      name: 'zp',
      padding: [
        [1, 0],
        [0, 1],
      ],
    })
    .apply(relu) as tf.SymbolicTensor;
  const pooled = tf.layers.averagePooling2d({ name: 'ap', poolSize: 2, strides: 2, padding: 'valid' }).apply(padded) as tf.SymbolicTensor;
  const gap = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(pooled) as tf.SymbolicTensor;
  const dense = tf.layers.dense({ name: 'head', units: 3 }).apply(gap) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: [flat, gap, dense] });

  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save({
    save: async (modelArtifacts) => {
      artifacts = modelArtifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    },
  });
  const topology = artifacts!.modelTopology as { model_config?: { config: { layers: KerasLayer[] } }; config?: { layers: KerasLayer[] } };
  const layers = (topology.model_config ?? topology).config!.layers;
  const data = artifacts!.weightData as ArrayBuffer;
  saved = { layers, weights: dequantiseWeights(artifacts!.weightSpecs as WeightSpec[], new Uint8Array(data)), model };
});

async function runConverted(outputLayer: string, batch: Float32Array, count: number): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const conversion = convertKerasModel({
    graphName: 'keras-test',
    layers: saved.layers,
    outputLayer,
    weight: (name) => {
      const values = saved.weights.get(name);
      if (!values) throw new Error(`no weight ${name}; have ${[...saved.weights.keys()].join(', ')}`);
      return values;
    },
    inputName: 'image',
    outputName: 'embedding',
  });
  const bytes = conversion.graph.serialize();
  const session = await ort.InferenceSession.create(bytes);
  const out = (await session.run({ image: new ort.Tensor('float32', batch, [count, 17, 15, 3]) })) as Record<string, ort.Tensor>;
  await session.release();
  return { data: out.embedding!.data as Float32Array, dims: out.embedding!.dims };
}

describe('Keras → ONNX converter', () => {
  it('matches TF.js on padding, depthwise, unfolded BatchNormalization, pooling and flatten paths', async () => {
    const count = 2;
    const batch = Float32Array.from({ length: count * 17 * 15 * 3 }, (_, i) => ((i * 2654435761) % 1000) / 1000);
    const [flatReference, gapReference] = (saved.model.predict(tf.tensor4d(batch, [count, 17, 15, 3])) as tf.Tensor[]).map(
      (tensor) => tensor.dataSync() as Float32Array,
    );

    const flat = await runConverted('flat', batch, count);
    expect(flat.dims).toEqual([count, 5 * 4 * 5]);
    const gap = await runConverted('gap', batch, count);
    expect(gap.dims).toEqual([count, 8]);
    for (const [ours, reference] of [
      [flat.data, flatReference!],
      [gap.data, gapReference!],
    ] as const) {
      expect(ours.length).toBe(reference.length);
      let worst = 0;
      for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i]! - reference[i]!) / (1 + Math.abs(reference[i]!)));
      expect(worst).toBeLessThan(1e-5);
    }
    expect(flatReference!.some((value) => value !== 0)).toBe(true);
  });

  it('refuses layers it does not support and cuts that are not flat, naming the layer', () => {
    const convert = (outputLayer: string): unknown =>
      convertKerasModel({
        graphName: 'x',
        layers: saved.layers,
        outputLayer,
        weight: (name) => saved.weights.get(name)!,
        inputName: 'image',
        outputName: 'embedding',
      });
    expect(() => convert('head')).toThrow(/Keras layer "head" \(Dense\): this layer type is not supported/);
    expect(() => convert('sum')).toThrow(/Keras layer "sum" outputs \[5, 5, 4\]; the cut must be a flat vector/);
    expect(() => convert('nope')).toThrow(/no layer "nope"/);
    try {
      convert('head');
    } catch (error) {
      expect(isDermError(error, 'model-invalid')).toBe(true);
    }
  });
});
