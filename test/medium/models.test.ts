import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDermError } from '../../electron/common/errors.js';
import { readManifestFile } from '../../electron/core/models/manifest-file.js';
import { defaultBatchSize, providerOrder, providersFromEnvironment } from '../../electron/core/models/execution-providers.js';
import { ModelRegistry } from '../../electron/core/models/model-registry.js';
import { preprocessImage, type InputSpec } from '../../electron/core/models/preprocess.js';
import { defaultEncoderLocation } from '../../electron/core/models/model-services.js';
import { writeManifestFile } from '../../electron/core/models/model-files.js';
import { OnnxGraphBuilder } from '../../electron/core/math/onnx-graph-builder.js';
import { brokenModelKinds, writeBrokenModels, writeTinyEncoder, type BrokenModel, type BrokenModelKind } from '../fixtures/test-encoders.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
let folder: string;
let broken: Record<BrokenModelKind, BrokenModel>;

beforeAll(async () => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-models-'));
  await writeTinyEncoder({ folder: path.join(folder, 'bundled'), id: 'tiny-nhwc', size: 32, dim: 16, layout: 'NHWC', seed: 3 });
  await writeTinyEncoder({ folder: path.join(folder, 'bundled'), id: 'tiny-nchw', size: 32, dim: 24, layout: 'NCHW', seed: 4 });
  broken = await writeBrokenModels(path.join(folder, 'broken'));
});
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

function registry(extra: Partial<ConstructorParameters<typeof ModelRegistry>[0]> = {}): ModelRegistry {
  return new ModelRegistry({
    libraryModelsFolder: path.join(folder, 'library-models'),
    bundledManifestFolders: [path.join(folder, 'bundled')],
    runtimeOptions: { providers: ['cpu'] },
    ...extra,
  });
}

async function failureOf(work: () => Promise<unknown>): Promise<Error> {
  try {
    await work();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the call to fail');
}

describe('model registry and runtime', () => {
  it('checks a real model: graph matches the manifest, runs in a worker, finite embeddings of the declared size', async () => {
    const result = await registry().check('tiny-nchw');
    expect(result).toMatchObject({ id: 'tiny-nchw', source: 'bundled', dim: 24, provider: 'cpu', fallbackReason: null });
    expect(result.inputs).toEqual([{ name: 'image', type: 'float32', shape: [expect.anything(), 3, 32, 32] }]);
    expect(result.outputs[0]).toMatchObject({ name: 'embedding', shape: [expect.anything(), 24] });
    expect(result.sampleNorms).toHaveLength(2);
    for (const norm of result.sampleNorms) expect(norm).toBeGreaterThan(0);
    expect(result.sampleNorms[0]).not.toBeCloseTo(result.sampleNorms[1]!, 6);
  });

  it('records why a GPU provider could not be used and falls back to CPU', async () => {
    // DirectML has no binding outside Windows, so on this machine the attempt always fails.
    if (process.platform !== 'win32') {
      const result = await registry({ runtimeOptions: { providers: ['dml', 'cpu'] } }).check('tiny-nhwc');
      expect(result.provider).toBe('cpu');
      expect(result.fallbackReason).toMatch(/^dml: .*dml/);
      expect(result.attempts.map((attempt) => attempt.provider)).toEqual(['dml', 'cpu']);
    }
    // The platform order: on Linux CUDA first; here only CPU exists, so CUDA must fail cleanly with its reason.
    const platformResult = await registry({ runtimeOptions: { providers: providerOrder() } }).check('tiny-nhwc');
    if (platformResult.provider === 'cpu' && providerOrder().length > 1) {
      expect(platformResult.fallbackReason).toContain(`${providerOrder()[0]}:`);
      expect(platformResult.attempts[0]!.error!.length).toBeGreaterThan(5);
    } else {
      expect(platformResult.provider).toBe(providerOrder()[0]);
    }
  });

  it('rejects every kind of broken model with a message naming the file and the problem', async () => {
    const models = new ModelRegistry({
      libraryModelsFolder: path.join(folder, 'unused'),
      bundledManifestFolders: [path.join(folder, 'broken')],
      runtimeOptions: { providers: ['cpu'] },
    });
    const expectations: Record<BrokenModelKind, RegExp> = {
      'nan-output': /produced NaN .*NaN or infinite/,
      'infinite-output': /produced Infinity/,
      'wrong-input-name': /input\.name "pixels" is not an input of the graph.*"image"/,
      'wrong-input-size': /NHWC 48x48 needs \[N, 48, 48, 3\].*axis 1 is 32/,
      'wrong-layout': /NCHW 32x32 needs \[N, 3, 32, 32\]/,
      'wrong-output-name': /output\.name "features" is not an output.*"embedding"/,
      'wrong-output-dim': /16 values per image, but output\.dim is 64/,
      'sha256-mismatch': /sha256 .* declares 0{64}/,
      truncated: /not a loadable ONNX model.*Protobuf parsing failed/,
      'not-onnx': /not a loadable ONNX model \(40 bytes\)/,
      'missing-file': /does not exist/,
    };
    for (const kind of brokenModelKinds) {
      const error = await failureOf(() => models.check(`broken-${kind}`));
      expect(isDermError(error), `${kind}: ${error.message}`).toBe(true);
      expect(error.message, kind).toMatch(expectations[kind]);
      expect(error.message, kind).toContain(broken[kind].onnxPath);
    }
  });

  it('reports invalid manifests with the file and the field, and keeps the valid models usable', async () => {
    const bad = path.join(folder, 'bad-manifests');
    fs.mkdirSync(bad, { recursive: true });
    const good = JSON.parse(fs.readFileSync(path.join(folder, 'bundled', 'tiny-nhwc.manifest.json'), 'utf8'));
    fs.writeFileSync(path.join(bad, 'layout.json'), JSON.stringify({ ...good, id: 'bad-layout', input: { ...good.input, layout: 'CHW' } }));
    fs.writeFileSync(path.join(bad, 'not-json.json'), '{ "id": ');
    fs.writeFileSync(path.join(bad, 'extra.json'), JSON.stringify({ ...good, id: 'extra', colour: 'red' }));
    fs.writeFileSync(path.join(bad, 'duplicate.json'), JSON.stringify({ ...good, file: '../bundled/tiny-nhwc.onnx' }));
    const listing = await registry({ bundledManifestFolders: [path.join(folder, 'bundled'), bad] }).list();
    expect(listing.models.map((model) => model.manifest.id).sort()).toEqual(['tiny-nchw', 'tiny-nhwc']);
    const messages = listing.problems.map((problem) => problem.message).join('\n');
    expect(messages).toContain(`manifest ${path.join(bad, 'layout.json')}: field input.layout`);
    expect(messages).toContain('"CHW"');
    expect(messages).toMatch(/not-json\.json is not valid JSON/);
    expect(messages).toMatch(/extra\.json: field \(root\).*colour/);
    expect(messages).toMatch(/duplicate\.json: field file/);
    expect(() => readManifestFile(path.join(bad, 'missing.json'))).toThrow(/missing\.json/);
  });

  it('adds a model to the library models folder only after it passes the check', async () => {
    const models = registry();
    const source = await writeTinyEncoder({ folder: path.join(folder, 'to-add'), id: 'user-model', size: 32, dim: 8, seed: 11 });
    const added = await models.add(source.onnxPath, source.manifestPath);
    expect(added).toMatchObject({ id: 'user-model', source: 'library', dim: 8 });
    expect(fs.existsSync(path.join(folder, 'library-models', 'user-model', 'user-model.onnx'))).toBe(true);
    const listing = await models.list();
    expect(listing.models.find((model) => model.manifest.id === 'user-model')?.source).toBe('library');
    expect((await models.check('user-model')).sha256).toBe(source.manifest.sha256);
    await expect(models.add(source.onnxPath, source.manifestPath)).rejects.toThrow(/already exists/);

    const before = fs.readdirSync(path.join(folder, 'library-models')).sort();
    const nan = broken['nan-output'];
    await expect(models.add(nan.onnxPath, nan.manifestPath)).rejects.toThrow(/NaN/);
    expect(fs.readdirSync(path.join(folder, 'library-models')).sort()).toEqual(before);
  });

  it('chooses providers per platform and batch sizes per provider', () => {
    expect(providerOrder('win32', 'x64')).toEqual(['dml', 'cpu']);
    expect(providerOrder('linux', 'x64')).toEqual(['cuda', 'cpu']);
    expect(providerOrder('darwin', 'arm64')).toEqual(['coreml', 'cpu']);
    expect(providerOrder('darwin', 'x64')).toEqual(['cpu']);
    expect(providersFromEnvironment(' CPU ')).toEqual(['cpu']);
    expect(providersFromEnvironment(undefined)).toBeUndefined();
    expect(() => providersFromEnvironment('cuda,tpu')).toThrow(/unknown execution provider "tpu"/);
    expect(defaultBatchSize('cuda')).toBeGreaterThan(defaultBatchSize('cpu'));
  });

  it('runs a graph with a fixed batch size of 1 by splitting and padding batches', async () => {
    const fixedFolder = path.join(folder, 'fixed');
    const graph = new OnnxGraphBuilder({ name: 'fixed-batch' });
    graph.addInput('image', [1, 16, 16, 3]);
    const pooled = graph.globalAveragePoolFlat(graph.transpose('image', [0, 3, 1, 2]));
    graph.addOutput(pooled, [1, 3]);
    const written = await graph.writeFile(path.join(fixedFolder, 'fixed.onnx'));
    writeManifestFile(path.join(fixedFolder, 'fixed.manifest.json'), {
      id: 'fixed-batch',
      displayName: 'Mean colour, batch 1',
      file: 'fixed.onnx',
      sha256: written.sha256,
      input: {
        name: 'image',
        layout: 'NHWC',
        width: 16,
        height: 16,
        resize: 'bilinear',
        fit: 'stretch',
        valueRange: [0, 255],
        mean: [0, 0, 0],
        std: [1, 1, 1],
      },
      output: { name: pooled, dim: 3 },
      licence: 'Apache-2.0',
      origin: 'test',
    });
    const models = registry({ bundledManifestFolders: [fixedFolder] });
    const checked = await models.check('fixed-batch');
    expect(checked.batchSize).toBe(1);
    const runtime = await models.start(await models.get('fixed-batch'));
    try {
      const colours = [10, 20, 30, 40, 50];
      const batch = new Float32Array(colours.length * 16 * 16 * 3);
      colours.forEach((value, image) => batch.fill(value, image * 768, (image + 1) * 768));
      const out = await runtime.run(batch, colours.length);
      expect(Array.from(out)).toEqual(colours.flatMap((value) => [value, value, value]));
    } finally {
      await runtime.close();
    }
  });

  it('lists and checks the bundled default encoder (MobileNetV2, 1280-d)', async () => {
    const cacheFolder = process.env.DERMWS_MODEL_CACHE ?? path.join(repoRoot, 'native-models', 'generated');
    const models = registry({ defaultEncoder: () => defaultEncoderLocation(cacheFolder) });
    const listing = await models.list();
    expect(listing.defaultModelId).toBe('nsfwjs-mobilenet-v2');
    const result = await models.check();
    expect(result).toMatchObject({ id: 'nsfwjs-mobilenet-v2', source: 'default', dim: 1280, provider: 'cpu' });
    for (const norm of result.sampleNorms) expect(Number.isFinite(norm) && norm > 0).toBe(true);
  });
});

describe('preprocessing from the manifest', () => {
  const base: InputSpec = {
    name: 'image',
    layout: 'NHWC',
    width: 8,
    height: 8,
    resize: 'bilinear',
    fit: 'stretch',
    valueRange: [0, 1],
    mean: [0.5, 0.25, 0.125],
    std: [0.5, 0.25, 2],
  };
  const expectedValue = (pixel: number, channel: number, spec: InputSpec) => {
    const value = spec.valueRange[0] + ((spec.valueRange[1] - spec.valueRange[0]) * pixel) / 255;
    return (value - spec.mean[channel]!) / spec.std[channel]!;
  };
  const solid = (width: number, height: number, rgb: [number, number, number]) => {
    const data = new Uint8Array(width * height * 3);
    for (let index = 0; index < width * height; index++) data.set(rgb, index * 3);
    return { data, width, height, channels: 3 as const };
  };
  const at = (tensor: Float32Array, spec: InputSpec, x: number, y: number, channel: number) =>
    spec.layout === 'NHWC' ? tensor[(y * spec.width + x) * 3 + channel]! : tensor[channel * spec.width * spec.height + y * spec.width + x]!;

  it('maps a known pixel to the known tensor value in NHWC and NCHW, with value range and per-channel mean/std', async () => {
    for (const spec of [base, { ...base, layout: 'NCHW' as const, valueRange: [-1, 1] as [number, number] }]) {
      const tensor = await preprocessImage({ pixels: solid(20, 10, [200, 100, 50]) }, spec);
      expect(tensor.length).toBe(8 * 8 * 3);
      for (const [x, y] of [
        [0, 0],
        [7, 7],
        [3, 5],
      ] as const) {
        expect(at(tensor, spec, x, y, 0)).toBeCloseTo(expectedValue(200, 0, spec), 5);
        expect(at(tensor, spec, x, y, 1)).toBeCloseTo(expectedValue(100, 1, spec), 5);
        expect(at(tensor, spec, x, y, 2)).toBeCloseTo(expectedValue(50, 2, spec), 5);
      }
    }
  });

  it('stretches, centre-crops or pads as the manifest says', async () => {
    // A 48x16 strip: green left third, red middle, blue right third.
    const width = 48;
    const height = 16;
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) data.set(x < 16 ? [0, 255, 0] : x < 32 ? [255, 0, 0] : [0, 0, 255], (y * width + x) * 3);
    }
    const strip = { data, width, height, channels: 3 as const };
    const plain: InputSpec = { ...base, mean: [0, 0, 0], std: [1, 1, 1], resize: 'nearest' };
    const rgbAt = (tensor: Float32Array, spec: InputSpec, x: number, y: number) =>
      [0, 1, 2].map((channel) => Math.round(at(tensor, spec, x, y, channel) * 255));

    const stretched = await preprocessImage({ pixels: strip }, { ...plain, fit: 'stretch' });
    expect(rgbAt(stretched, plain, 0, 4)).toEqual([0, 255, 0]);
    expect(rgbAt(stretched, plain, 4, 4)).toEqual([255, 0, 0]);
    expect(rgbAt(stretched, plain, 7, 4)).toEqual([0, 0, 255]);

    const cropped = await preprocessImage({ pixels: strip }, { ...plain, fit: 'centre-crop' });
    for (const x of [0, 4, 7]) expect(rgbAt(cropped, plain, x, 4)).toEqual([255, 0, 0]);

    const padSpec: InputSpec = { ...plain, layout: 'NCHW', fit: 'pad', padColour: [10, 20, 30] };
    const padded = await preprocessImage({ pixels: strip }, padSpec);
    // 48x16 fits into 8 wide as 8x3 (rounded), centred vertically; rows above and below are padding.
    expect(rgbAt(padded, padSpec, 4, 0)).toEqual([10, 20, 30]);
    expect(rgbAt(padded, padSpec, 4, 7)).toEqual([10, 20, 30]);
    expect(rgbAt(padded, padSpec, 4, 4)).toEqual([255, 0, 0]);
    expect(rgbAt(padded, padSpec, 0, 4)).toEqual([0, 255, 0]);
  });

  it('applies EXIF orientation and flattens transparency when reading files', async () => {
    const file = path.join(folder, 'rotated.jpg');
    // Stored 16 wide x 8 high, left half red; orientation 6 (rotate 90° clockwise) shows it 8 wide x 16 high, top half red.
    const raw = new Uint8Array(16 * 8 * 3);
    for (let y = 0; y < 8; y++) for (let x = 0; x < 16; x++) raw.set(x < 8 ? [255, 0, 0] : [0, 0, 255], (y * 16 + x) * 3);
    await sharp(raw, { raw: { width: 16, height: 8, channels: 3 } })
      .jpeg({ quality: 100 })
      .withMetadata({ orientation: 6 })
      .toFile(file);
    const spec: InputSpec = { ...base, width: 2, height: 4, mean: [0, 0, 0], std: [1, 1, 1], resize: 'nearest' };
    const tensor = await preprocessImage({ file }, spec);
    expect(at(tensor, spec, 0, 0, 0)).toBeGreaterThan(0.8);
    expect(at(tensor, spec, 0, 3, 2)).toBeGreaterThan(0.8);

    const png = path.join(folder, 'transparent.png');
    await sharp({ create: { width: 4, height: 4, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0 } } })
      .png()
      .toFile(png);
    const flattened = await preprocessImage({ file: png }, { ...spec, fit: 'pad', padColour: [0, 255, 0] });
    expect(at(flattened, spec, 0, 0, 1)).toBeCloseTo(1, 5);
    expect(at(flattened, spec, 0, 0, 0)).toBeCloseTo(0, 5);
  });

  it('names the file when it cannot be decoded', async () => {
    const file = path.join(folder, 'not-an-image.jpg');
    fs.writeFileSync(file, 'text, not a JPEG');
    const error = await failureOf(() => preprocessImage({ file }, base));
    expect(isDermError(error, 'decode-failed')).toBe(true);
    expect(error.message).toContain(file);
  });
});
