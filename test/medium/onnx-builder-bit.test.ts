import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBitResNet, writeBitResNet } from '../fixtures/build-bit-resnet.js';

let folder: string;
beforeAll(() => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-bit-'));
});
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

describe('BiT-ResNet-v2 builder', () => {
  it('has the published parameter counts (timm: R101x3 387.9M and R50x1 25.5M with a 1000-class head)', () => {
    const head = (dim: number): number => dim * 1000 + 1000;
    const r101x3 = buildBitResNet();
    expect(r101x3.outputDim).toBe(6144);
    expect((r101x3.parameterCount + head(6144)) / 1e6).toBeCloseTo(387.9, 0);
    // timm reports ≈280 GMAC at 448 including the head and the normalisations.
    expect(r101x3.multiplyAccumulates / 1e9).toBeGreaterThan(270);
    expect(r101x3.multiplyAccumulates / 1e9).toBeLessThan(285);
    const r50x1 = buildBitResNet({ widthFactor: 1, blocks: [3, 4, 6, 3], size: 224 });
    expect(r50x1.outputDim).toBe(2048);
    expect((r50x1.parameterCount + head(2048)) / 1e6).toBeCloseTo(25.55, 1);
  });

  it('writes a small variant that onnxruntime runs, giving finite, image-dependent outputs', async () => {
    const file = path.join(folder, 'bit-small.onnx');
    const model = await writeBitResNet(file, { size: 64, widthFactor: 1, blocks: [1, 1, 1, 1], seed: 3 });
    expect(model.outputDim).toBe(2048);
    expect(model.written.bytes).toBeGreaterThan(model.parameterCount * 4);
    const session = await ort.InferenceSession.create(file);
    expect(session.inputNames).toEqual([model.inputName]);
    const images = new Float32Array(2 * 64 * 64 * 3);
    for (let i = 0; i < images.length; i++) images[i] = i < images.length / 2 ? ((i * 7919) % 255) / 255 : ((i * 104729) % 251) / 251;
    const out = (await session.run({ [model.inputName]: new ort.Tensor('float32', images, [2, 64, 64, 3]) })) as Record<string, ort.Tensor>;
    await session.release();
    const embedding = out[model.outputName]!;
    expect(embedding.dims).toEqual([2, 2048]);
    const data = embedding.data as Float32Array;
    expect(data.every(Number.isFinite)).toBe(true);
    // After the final GroupNorm + ReLU roughly half the pooled features are positive.
    expect(data.subarray(0, 2048).filter((value) => value > 0).length).toBeGreaterThan(500);
    let difference = 0;
    for (let i = 0; i < 2048; i++) difference += Math.abs(data[i]! - data[2048 + i]!);
    expect(difference).toBeGreaterThan(1e-3);
  });
});
