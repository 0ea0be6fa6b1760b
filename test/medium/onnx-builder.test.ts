import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDermError } from '../../electron/common/errors.js';
import { modelManifestSchema } from '../../electron/core/models/model-manifest.js';
import { float, OnnxGraphBuilder } from '../../electron/core/math/onnx-graph-builder.js';
import { sha256OfFile } from '../../electron/core/runtime/file-hash.js';
import { brokenModelKinds, writeBrokenModels, writeTinyEncoder } from '../fixtures/test-encoders.js';
import { skinImagePixels } from '../fixtures/skin-images.js';

let folder: string;
beforeAll(() => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-onnx-builder-'));
});
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

async function runOnce(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    return (await session.run(feeds)) as Record<string, ort.Tensor>;
  } finally {
    await session.release();
  }
}

function values(tensor: ort.Tensor | undefined): Float32Array {
  expect(tensor).toBeDefined();
  return tensor!.data as Float32Array;
}

/** Deterministic pseudo-random values in [-1, 1). */
function sequence(count: number, seed: number): Float32Array {
  let state = seed;
  return Float32Array.from({ length: count }, () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return (state / 2147483648) * 2 - 1;
  });
}

/** NHWC pixels of a generated skin photo, scaled to [0, 1], stretched to size x size by nearest sampling. */
function photoTensor(seed: number, size: number, layout: 'NHWC' | 'NCHW'): Float32Array {
  const { data, width, height } = skinImagePixels({ width: size * 2, height: size * 2, seed });
  const out = new Float32Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const source = (Math.floor((y * height) / size) * width + Math.floor((x * width) / size)) * 3;
      for (let c = 0; c < 3; c++) {
        const value = data[source + c]! / 255;
        out[layout === 'NHWC' ? (y * size + x) * 3 + c : c * size * size + y * size + x] = value;
      }
    }
  }
  return out;
}

describe('OnnxGraphBuilder', () => {
  it('builds element-wise, Clip, Transpose, Pad and pooling graphs that onnxruntime computes as expected', async () => {
    const graph = new OnnxGraphBuilder({ name: 'elementwise' });
    const x = graph.addInput('x', [1, 2, 3, 4]);
    const scale = graph.constant('scale', [1, 2, 1, 1], new Float32Array([2, -3]));
    const shift = graph.constant('shift', [1, 2, 1, 1], new Float32Array([0.5, 0.25]));
    const clipped = graph.clip(graph.add(graph.mul(x, scale), shift), -1, 1.5);
    graph.addNode('Identity', [clipped], {}, { outputs: ['clipped'] });
    graph.addOutput('clipped', [1, 2, 3, 4]);
    graph.addNode('Transpose', [x], { perm: [0, 2, 3, 1] }, { outputs: ['nhwc'] });
    graph.addOutput('nhwc', [1, 3, 4, 2]);
    const padded = graph.padSpatial(x, [1, 0, 0, 2]);
    graph.addNode('Identity', [graph.globalAveragePoolFlat(padded)], {}, { outputs: ['pooled'] });
    graph.addOutput('pooled', [1, 2]);
    graph.addNode('ReduceMean', [graph.relu(x)], { axes: [2, 3], keepdims: 0 }, { outputs: ['mean_relu'] });
    graph.addOutput('mean_relu', [1, 2]);

    const input = sequence(24, 3);
    const out = await runOnce(graph.serialize(), { x: new ort.Tensor('float32', input, [1, 2, 3, 4]) });
    const clippedOut = values(out.clipped);
    for (let i = 0; i < 24; i++) {
      const channel = Math.floor(i / 12);
      const expected = Math.min(1.5, Math.max(-1, input[i]! * [2, -3][channel]! + [0.5, 0.25][channel]!));
      expect(clippedOut[i]).toBeCloseTo(expected, 6);
    }
    const nhwc = values(out.nhwc);
    expect(nhwc[1]).toBeCloseTo(input[12]!, 6); // (h0, w0, c1) comes from channel 1's first value
    const pooled = values(out.pooled);
    for (let c = 0; c < 2; c++) {
      const sum = input.subarray(c * 12, c * 12 + 12).reduce((a, b) => a + b, 0);
      // Padded to 4x6 with zeros: the mean is over 24 positions.
      expect(pooled[c]).toBeCloseTo(sum / 24, 6);
      const reluSum = input.subarray(c * 12, c * 12 + 12).reduce((a, b) => a + Math.max(0, b), 0);
      expect(values(out.mean_relu)[c]).toBeCloseTo(reluSum / 12, 6);
    }
  });

  it('builds convolutions (grouped, strided, padded) and Gemm that match a direct computation', async () => {
    const graph = new OnnxGraphBuilder({ name: 'conv' });
    const x = graph.addInput('x', ['N', 4, 5, 5]);
    const weight = sequence(4 * 2 * 3 * 3, 11);
    const bias = sequence(4, 12);
    const conv = graph.conv(x, graph.constant('w', [4, 2, 3, 3], weight), graph.constant('b', [4], bias), { strides: [2, 2], pads: [1, 1, 1, 1], group: 2 });
    graph.addNode('Identity', [conv], {}, { outputs: ['conv'] });
    graph.addOutput('conv', ['N', 4, 3, 3]);
    const dense = sequence(3 * 4, 13);
    const denseBias = sequence(3, 14);
    graph.addNode(
      'Gemm',
      [graph.globalAveragePoolFlat(conv), graph.constant('dense', [3, 4], dense), graph.constant('dense_bias', [3], denseBias)],
      { transB: 1 },
      { outputs: ['dense'] },
    );
    graph.addOutput('dense', ['N', 3]);

    const input = sequence(2 * 4 * 25, 5);
    const out = await runOnce(graph.serialize(), { x: new ort.Tensor('float32', input, [2, 4, 5, 5]) });
    const convOut = values(out.conv);
    expect(out.conv!.dims).toEqual([2, 4, 3, 3]);
    const at = (n: number, c: number, y: number, x2: number): number => (y < 0 || y >= 5 || x2 < 0 || x2 >= 5 ? 0 : input[((n * 4 + c) * 5 + y) * 5 + x2]!);
    const expectedConv = new Float32Array(2 * 4 * 9);
    for (let n = 0; n < 2; n++) {
      for (let o = 0; o < 4; o++) {
        const group = Math.floor(o / 2);
        for (let oy = 0; oy < 3; oy++) {
          for (let ox = 0; ox < 3; ox++) {
            let sum = bias[o]!;
            for (let ic = 0; ic < 2; ic++) {
              for (let ky = 0; ky < 3; ky++) {
                for (let kx = 0; kx < 3; kx++) sum += weight[((o * 2 + ic) * 3 + ky) * 3 + kx]! * at(n, group * 2 + ic, oy * 2 - 1 + ky, ox * 2 - 1 + kx);
              }
            }
            expectedConv[((n * 4 + o) * 3 + oy) * 3 + ox] = sum;
          }
        }
      }
    }
    for (let i = 0; i < expectedConv.length; i++) expect(convOut[i]).toBeCloseTo(expectedConv[i]!, 5);
    const denseOut = values(out.dense);
    for (let n = 0; n < 2; n++) {
      for (let o = 0; o < 3; o++) {
        let sum = denseBias[o]!;
        for (let c = 0; c < 4; c++) {
          const mean = expectedConv.subarray((n * 4 + c) * 9, (n * 4 + c) * 9 + 9).reduce((a, b) => a + b, 0) / 9;
          sum += dense[o * 4 + c]! * mean;
        }
        expect(denseOut[n * 3 + o]).toBeCloseTo(sum, 5);
      }
    }
  });

  it('decomposes group normalisation so onnxruntime matches the textbook formula', async () => {
    const channels = 6;
    const groups = 3;
    const graph = new OnnxGraphBuilder({ name: 'groupnorm' });
    const x = graph.addInput('x', ['N', channels, 2, 3]);
    const gamma = sequence(channels, 21);
    const beta = sequence(channels, 22);
    graph.addNode('Identity', [graph.groupNorm(x, channels, groups, gamma, beta, 1e-5)], {}, { outputs: ['y'] });
    graph.addOutput('y', ['N', channels, 2, 3]);
    const input = sequence(2 * channels * 6, 23).map((value, index) => value * (1 + (index % 5)));
    const y = values((await runOnce(graph.serialize(), { x: new ort.Tensor('float32', input, [2, channels, 2, 3]) })).y);
    const perGroup = (channels / groups) * 6;
    for (let n = 0; n < 2; n++) {
      for (let g = 0; g < groups; g++) {
        const start = n * channels * 6 + g * perGroup;
        const slice = input.subarray(start, start + perGroup);
        const mean = slice.reduce((a, b) => a + b, 0) / perGroup;
        const variance = slice.reduce((a, b) => a + (b - mean) ** 2, 0) / perGroup;
        for (let i = 0; i < perGroup; i++) {
          const channel = g * (channels / groups) + Math.floor(i / 6);
          const expected = ((slice[i]! - mean) / Math.sqrt(variance + 1e-5)) * gamma[channel]! + beta[channel]!;
          expect(y[start + i]).toBeCloseTo(expected, 4);
        }
      }
    }
  });

  it('serialises deterministically, and streams lazily generated weights to the same bytes', async () => {
    const make = (lazy: boolean): OnnxGraphBuilder => {
      const graph = new OnnxGraphBuilder({ name: 'det' });
      const x = graph.addInput('x', ['N', 3]);
      const data = sequence(3 * 300_000, 9);
      graph.addInitializer('big', [300_000, 3], lazy ? () => sequence(3 * 300_000, 9) : data);
      graph.addNode('MatMul', [x, graph.transpose('big', [1, 0])], {}, { outputs: ['y'] });
      graph.addOutput('y', ['N', 300_000]);
      return graph;
    };
    const first = make(false).serialize();
    const second = make(false).serialize();
    expect(Buffer.from(first).equals(Buffer.from(second))).toBe(true);
    const file = path.join(folder, 'det.onnx');
    const written = await make(true).writeFile(file);
    expect(written.sha256).toBe(createHash('sha256').update(first).digest('hex'));
    expect(await sha256OfFile(file)).toBe(written.sha256);
    expect(written.bytes).toBe(first.length);
    expect(fs.readdirSync(folder).filter((name) => name.endsWith('.partial'))).toEqual([]);
    expect(make(true).parameterCount()).toBe(900_000);

    const session = await ort.InferenceSession.create(file);
    const out = (await session.run({ x: new ort.Tensor('float32', new Float32Array([1, 0, 0]), [1, 3]) })) as Record<string, ort.Tensor>;
    const expected = sequence(3 * 300_000, 9);
    expect(values(out.y)[12_345]).toBeCloseTo(expected[12_345 * 3]!, 6);
    await session.release();
  });

  it('rejects graphs that refer to unknown values, reuse names, or pass floats as integer attributes', () => {
    const graph = new OnnxGraphBuilder({ name: 'bad' });
    const x = graph.addInput('x', [1]);
    expect(() => graph.op('Relu', ['nope'])).toThrow(/input "nope" is not a graph input/);
    expect(() => graph.addInput('x', [1])).toThrow(/"x": the name is already used/);
    expect(() => graph.op('LeakyRelu', [x], { alpha: 0.1 })).toThrow(/alpha=0.1 is not an integer/);
    expect(() => graph.addInitializer('w', [2, 2], new Float32Array(3))).toThrow(/3 values given for shape \[2, 2\]/);
    graph.op('LeakyRelu', [x], { alpha: float(0.1) });
    expect(() => graph.serialize()).toThrow(/declares no output/);
    graph.addOutput('missing', [1]);
    try {
      graph.serialize();
      expect.unreachable();
    } catch (error) {
      expect(isDermError(error, 'invalid-input')).toBe(true);
      expect((error as Error).message).toMatch(/graph output "missing" is produced by no node/);
    }
  });
});

describe('writeTinyEncoder', () => {
  for (const layout of ['NHWC', 'NCHW'] as const) {
    it(`writes a ${layout} encoder whose manifest matches the graph and whose embeddings tell photos apart`, async () => {
      const size = 48;
      const dim = 24;
      const model = await writeTinyEncoder({ folder, id: `tiny-${layout.toLowerCase()}`, size, dim, layout, seed: 5 });
      expect(modelManifestSchema().parse(JSON.parse(fs.readFileSync(model.manifestPath, 'utf8')))).toEqual(model.manifest);
      expect(model.manifest.sha256).toBe(await sha256OfFile(model.onnxPath));
      expect(path.resolve(path.dirname(model.manifestPath), model.manifest.file)).toBe(model.onnxPath);
      expect(model.manifest.input.layout).toBe(layout);

      const session = await ort.InferenceSession.create(model.onnxPath);
      expect(session.inputNames).toEqual([model.manifest.input.name]);
      expect(session.outputNames).toEqual([model.manifest.output.name]);
      const dims = layout === 'NHWC' ? [3, size, size, 3] : [3, 3, size, size];
      const batch = new Float32Array(3 * size * size * 3);
      [1, 2, 1].forEach((seed, index) => batch.set(photoTensor(seed, size, layout), index * size * size * 3));
      const out = (await session.run({ [model.manifest.input.name]: new ort.Tensor('float32', batch, dims) })) as Record<string, ort.Tensor>;
      await session.release();
      const embedding = out[model.manifest.output.name]!;
      expect(embedding.dims).toEqual([3, dim]);
      const data = embedding.data as Float32Array;
      expect(data.every(Number.isFinite)).toBe(true);
      const row = (index: number): number[] => Array.from(data.subarray(index * dim, (index + 1) * dim));
      expect(row(2)).toEqual(row(0));
      const difference = row(0).reduce((sum, value, i) => sum + Math.abs(value - row(1)[i]!), 0);
      expect(difference).toBeGreaterThan(1e-3);
    });
  }

  it('gives the same file for the same seed and a different one for another seed', async () => {
    const a = await writeTinyEncoder({ folder: path.join(folder, 'a'), id: 'same', seed: 3 });
    const b = await writeTinyEncoder({ folder: path.join(folder, 'b'), id: 'same', seed: 3 });
    const c = await writeTinyEncoder({ folder: path.join(folder, 'c'), id: 'same', seed: 4 });
    expect(a.manifest.sha256).toBe(b.manifest.sha256);
    expect(c.manifest.sha256).not.toBe(a.manifest.sha256);
  });

  it('rejects sizes the pooling grid cannot divide', async () => {
    await expect(writeTinyEncoder({ folder, id: 'odd', size: 40 })).rejects.toThrow(/size 40 must be a multiple of 16/);
  });
});

describe('writeBrokenModels', () => {
  it('writes one schema-valid manifest per kind, each model failing the way its kind says', async () => {
    const broken = await writeBrokenModels(path.join(folder, 'broken'));
    expect(Object.keys(broken).sort()).toEqual([...brokenModelKinds].sort());
    for (const model of Object.values(broken)) {
      expect(modelManifestSchema().safeParse(JSON.parse(fs.readFileSync(model.manifestPath, 'utf8'))).success).toBe(true);
    }

    const input = (size: number): ort.Tensor => new ort.Tensor('float32', photoTensor(4, size, 'NHWC'), [1, size, size, 3]);
    for (const [kind, check] of [
      ['nan-output', Number.isNaN],
      ['infinite-output', (value: number) => value === Infinity],
    ] as const) {
      const model = broken[kind];
      expect(model.manifest.sha256).toBe(await sha256OfFile(model.onnxPath));
      const session = await ort.InferenceSession.create(model.onnxPath);
      const out = (await session.run({ [model.manifest.input.name]: input(32) })) as Record<string, ort.Tensor>;
      await session.release();
      const data = out[model.manifest.output.name]!.data as Float32Array;
      expect(data.length).toBe(16);
      expect(Array.from(data).every(check)).toBe(true);
    }

    const graphFacts = async (
      file: string,
    ): Promise<{ inputs: readonly string[]; outputs: readonly string[]; inputShape: readonly (number | string)[]; outputDim: number }> => {
      const session = await ort.InferenceSession.create(file);
      const inputMeta = session.inputMetadata[0]!;
      const outputs = session.outputNames;
      const out = (await session.run({ [session.inputNames[0]!]: input(32) })) as Record<string, ort.Tensor>;
      const facts = { inputs: session.inputNames, outputs, inputShape: inputMeta.isTensor ? inputMeta.shape : [], outputDim: out[outputs[0]!]!.dims[1]! };
      await session.release();
      return facts;
    };
    const facts = await graphFacts(broken['wrong-input-name'].onnxPath);
    expect(facts.inputShape.slice(1)).toEqual([32, 32, 3]);
    expect(facts.inputs).not.toContain(broken['wrong-input-name'].manifest.input.name);
    expect(facts.outputs).not.toContain(broken['wrong-output-name'].manifest.output.name);
    expect(broken['wrong-input-size'].manifest.input.width).not.toBe(32);
    expect(broken['wrong-layout'].manifest.input.layout).toBe('NCHW');
    expect(broken['wrong-output-dim'].manifest.output.dim).not.toBe(facts.outputDim);
    expect(broken['sha256-mismatch'].manifest.sha256).not.toBe(await sha256OfFile(broken['sha256-mismatch'].onnxPath));

    for (const kind of ['truncated', 'not-onnx'] as const) {
      expect(broken[kind].manifest.sha256).toBe(await sha256OfFile(broken[kind].onnxPath));
      await expect(ort.InferenceSession.create(broken[kind].onnxPath)).rejects.toThrow();
    }
    expect(fs.existsSync(broken['missing-file'].onnxPath)).toBe(false);
  });
});
