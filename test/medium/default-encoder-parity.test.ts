import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelManifestSchema } from '../../electron/core/models/model-manifest.js';
import { sha256OfFile } from '../../electron/core/runtime/file-hash.js';
import { convertNsfwjsMobileNetV2, cutLayer, defaultEncoderId, ensureDefaultEncoder } from '../../electron/core/models/default-encoder/convert.js';
import { readNsfwjsMobileNetV2 } from '../../electron/core/models/default-encoder/nsfwjs-files.js';
import { skinImagePixels } from '../fixtures/skin-images.js';

/**
 * The converted default encoder must compute what nsfwjs's own model computes: the same images go
 * through TF.js (pure-JS CPU backend, loading the quantised weights itself) and through
 * onnxruntime on our ONNX file, and every pair of 1280-d embeddings must have cosine ≥ 0.9999.
 */

const imageCount = 6;
const size = 224;

let folder: string;
let images: Float32Array[];

beforeAll(async () => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-default-encoder-'));
  await tf.setBackend('cpu');
  images = Array.from({ length: imageCount }, (_, index) => {
    const { data } = skinImagePixels({ width: size, height: size, seed: 100 + index, toneIndex: (index * 2) % 10 });
    return Float32Array.from(data, (value) => value / 255);
  });
});
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    normA += a[i]! * a[i]!;
    normB += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(normA * normB);
}

async function tfjsEmbeddings(): Promise<Float32Array[]> {
  const nsfwjs = readNsfwjsMobileNetV2();
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: nsfwjs.modelTopology as unknown as tf.io.ModelArtifacts['modelTopology'],
    weightSpecs: nsfwjs.weightSpecs as tf.io.WeightsManifestEntry[],
    weightData: nsfwjs.weightData.slice().buffer,
  };
  const full = await tf.loadLayersModel({ load: async () => artifacts });
  const backbone = tf.model({ inputs: full.inputs, outputs: full.getLayer(cutLayer).output as tf.SymbolicTensor });
  const batch = new Float32Array(imageCount * size * size * 3);
  images.forEach((image, index) => batch.set(image, index * image.length));
  const output = tf.tidy(() => backbone.predict(tf.tensor4d(batch, [imageCount, size, size, 3])) as tf.Tensor);
  const data = (await output.data()) as Float32Array;
  output.dispose();
  full.dispose();
  return images.map((_, index) => data.slice(index * 1280, (index + 1) * 1280));
}

describe('default encoder (nsfwjs MobileNetV2 → ONNX)', () => {
  it('matches TF.js on every image (cosine ≥ 0.9999) and produces informative 1280-d embeddings', async () => {
    const model = await ensureDefaultEncoder({ cacheFolder: folder });
    const session = await ort.InferenceSession.create(model.onnxPath);
    const batch = new Float32Array(imageCount * size * size * 3);
    images.forEach((image, index) => batch.set(image, index * image.length));
    const result = (await session.run({ [model.manifest.input.name]: new ort.Tensor('float32', batch, [imageCount, size, size, 3]) })) as Record<
      string,
      ort.Tensor
    >;
    await session.release();
    const output = result[model.manifest.output.name]!;
    expect(output.dims).toEqual([imageCount, 1280]);
    const onnxData = output.data as Float32Array;

    const reference = await tfjsEmbeddings();
    const cosines = reference.map((expected, index) => cosine(expected, onnxData.subarray(index * 1280, (index + 1) * 1280)));
    console.log(
      `default encoder parity, 1 − cosine per image: ${cosines.map((value) => (1 - value).toExponential(2)).join(', ')}; worst cosine ${Math.min(...cosines).toFixed(9)}`,
    );
    for (const value of cosines) expect(value).toBeGreaterThanOrEqual(0.9999);
    // Guards against a degenerate match (e.g. both all zeros): real, varied activations.
    expect(onnxData.every(Number.isFinite)).toBe(true);
    const first = onnxData.subarray(0, 1280);
    expect(first.filter((value) => value > 0).length).toBeGreaterThan(100);
    const between = cosine(first, onnxData.subarray(1280 * 5, 1280 * 6));
    expect(between).toBeLessThan(0.995);
    // TF.js's pure-JS convolutions take tens of seconds here and several times that on a busy 2-core CI machine.
  }, 600_000);

  it('converts deterministically, writes a valid manifest, and reuses or rebuilds the cache as it should', async () => {
    const first = createHash('sha256').update(convertNsfwjsMobileNetV2().graph.serialize()).digest('hex');
    const second = createHash('sha256').update(convertNsfwjsMobileNetV2().graph.serialize()).digest('hex');
    expect(second).toBe(first);

    const cache = path.join(folder, 'cache');
    const made = await ensureDefaultEncoder({ cacheFolder: cache });
    expect(made.converted).toBe(true);
    expect(made.manifest.sha256).toBe(first);
    expect(made.manifest.id).toBe(defaultEncoderId);
    expect(modelManifestSchema().parse(JSON.parse(fs.readFileSync(made.manifestPath, 'utf8')))).toEqual(made.manifest);
    expect(path.resolve(cache, made.manifest.file)).toBe(made.onnxPath);
    expect(fs.readdirSync(cache).sort()).toEqual([`${defaultEncoderId}.manifest.json`, `${defaultEncoderId}.onnx`]);

    const again = await ensureDefaultEncoder({ cacheFolder: cache });
    expect(again.converted).toBe(false);
    expect(again.manifest).toEqual(made.manifest);

    // A damaged cached file (wrong sha256) is rebuilt, not used.
    const handle = fs.openSync(made.onnxPath, 'r+');
    fs.writeSync(handle, Buffer.from([0xff, 0xff, 0xff, 0xff]), 0, 4, 1000);
    fs.closeSync(handle);
    expect(await sha256OfFile(made.onnxPath)).not.toBe(first);
    const repaired = await ensureDefaultEncoder({ cacheFolder: cache });
    expect(repaired.converted).toBe(true);
    expect(await sha256OfFile(repaired.onnxPath)).toBe(first);

    // Two preparations racing for the same empty cache both succeed with the same file, and leave no temporaries.
    const raced = path.join(folder, 'raced');
    const [one, two] = await Promise.all([ensureDefaultEncoder({ cacheFolder: raced }), ensureDefaultEncoder({ cacheFolder: raced })]);
    expect(one.manifest.sha256).toBe(first);
    expect(two.manifest.sha256).toBe(first);
    expect(await sha256OfFile(one.onnxPath)).toBe(first);
    expect(fs.readdirSync(raced).sort()).toEqual([`${defaultEncoderId}.manifest.json`, `${defaultEncoderId}.onnx`]);
  });
});
