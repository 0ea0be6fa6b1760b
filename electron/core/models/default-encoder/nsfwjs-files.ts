import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import { DermError } from '../../../common/errors.js';
import type { KerasLayer } from './keras-to-onnx.js';

/**
 * Reads the MobileNetV2 TF.js layers model that the npm package nsfwjs bundles in
 * `dist/models/mobilenet_v2/`: `model.min.js` and `group1-shard1of1.min.js` are browserify UMD
 * bundles whose module exports are, respectively, the model.json object (Keras topology plus the
 * weights manifest) and the weight shard as one base64 string. They are evaluated in an empty VM
 * context with only `module`/`exports`, so they can reach nothing of this process.
 */

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; min?: number; scale?: number };
}

export interface NsfwjsModel {
  /** Version of the installed nsfwjs package (part of the converted model's origin). */
  version: string;
  packageFolder: string;
  modelFolder: string;
  modelTopology: { keras_version?: string; model_config: { class_name: string; config: { name: string; layers: KerasLayer[] } } };
  weightSpecs: WeightSpec[];
  /** The concatenated shard bytes, still quantised, exactly as TF.js receives them. */
  weightData: Uint8Array;
}

/** The nsfwjs package folder (its exports map hides package.json, so walk up from the entry point). */
export function nsfwjsPackageFolder(): string {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve('nsfwjs');
  } catch (error) {
    throw new DermError('not-found', `The npm package nsfwjs is not installed (needed for the default encoder): ${(error as Error).message}`);
  }
  for (let folder = path.dirname(entry); folder !== path.dirname(folder); folder = path.dirname(folder)) {
    const manifest = path.join(folder, 'package.json');
    if (fs.existsSync(manifest) && (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: string }).name === 'nsfwjs') return folder;
  }
  throw new DermError('not-found', `Cannot find the nsfwjs package folder above ${entry}.`);
}

function evaluateBundle(file: string): unknown {
  let source: string;
  try {
    source = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new DermError('not-found', `Cannot read ${file}: ${(error as Error).message}`);
  }
  const module = { exports: {} as unknown };
  try {
    vm.runInNewContext(source, { module, exports: module.exports }, { filename: file, timeout: 30_000 });
  } catch (error) {
    throw new DermError('model-invalid', `${file} is not the UMD bundle nsfwjs ships: ${(error as Error).message}`);
  }
  // Objects made in another VM context fail `instanceof Array` here (TF.js relies on it), so the
  // data (plain JSON by construction) is copied into this context.
  return JSON.parse(JSON.stringify(module.exports)) as unknown;
}

/** The installed nsfwjs version, without reading the model bundles. */
export function nsfwjsVersion(packageFolder = nsfwjsPackageFolder()): string {
  return (JSON.parse(fs.readFileSync(path.join(packageFolder, 'package.json'), 'utf8')) as { version: string }).version;
}

export function readNsfwjsMobileNetV2(): NsfwjsModel {
  const packageFolder = nsfwjsPackageFolder();
  const version = nsfwjsVersion(packageFolder);
  const modelFolder = path.join(packageFolder, 'dist', 'models', 'mobilenet_v2');
  const modelFile = path.join(modelFolder, 'model.min.js');
  const modelJson = evaluateBundle(modelFile) as {
    modelTopology?: NsfwjsModel['modelTopology'];
    weightsManifest?: Array<{ paths: string[]; weights: WeightSpec[] }>;
  };
  if (!modelJson?.modelTopology?.model_config?.config?.layers || !Array.isArray(modelJson.weightsManifest)) {
    throw new DermError('model-invalid', `${modelFile} does not hold a Keras layers model with a weightsManifest.`);
  }
  const shards: Uint8Array[] = [];
  const weightSpecs: WeightSpec[] = [];
  for (const group of modelJson.weightsManifest) {
    for (const shardName of group.paths) {
      const shardFile = path.join(modelFolder, `${shardName}.min.js`);
      const base64 = evaluateBundle(shardFile);
      if (typeof base64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(base64)) {
        throw new DermError('model-invalid', `${shardFile} does not export a base64 weight shard.`);
      }
      shards.push(Buffer.from(base64, 'base64'));
    }
    weightSpecs.push(...group.weights);
  }
  const weightData = new Uint8Array(Buffer.concat(shards));
  return { version, packageFolder, modelFolder, modelTopology: modelJson.modelTopology, weightSpecs, weightData };
}

const bytesPerElement: Record<string, number> = { uint8: 1, uint16: 2, float32: 4 };

/**
 * Dequantises every weight exactly as TF.js's decodeWeights does for uint8/uint16 quantisation:
 * value = q · scale + min in double precision, stored as float32. Weights are laid out one after
 * another in manifest order.
 */
export function dequantiseWeights(specs: readonly WeightSpec[], data: Uint8Array): Map<string, Float32Array> {
  const weights = new Map<string, Float32Array>();
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let offset = 0;
  for (const spec of specs) {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.dtype !== 'float32') throw new DermError('model-invalid', `weight ${spec.name}: dtype ${spec.dtype} is not supported (float32).`);
    const stored = spec.quantization?.dtype ?? 'float32';
    const size = bytesPerElement[stored];
    if (size === undefined) throw new DermError('model-invalid', `weight ${spec.name}: quantisation ${stored} is not supported (uint8, uint16, none).`);
    if (offset + count * size > data.byteLength) {
      throw new DermError('model-invalid', `weight ${spec.name} needs bytes ${offset}..${offset + count * size} but the shards hold ${data.byteLength}.`);
    }
    const values = new Float32Array(count);
    if (stored === 'float32') {
      for (let i = 0; i < count; i++) values[i] = view.getFloat32(offset + i * 4, true);
    } else {
      const { min, scale } = spec.quantization!;
      if (typeof min !== 'number' || typeof scale !== 'number') throw new DermError('model-invalid', `weight ${spec.name}: quantisation lacks min/scale.`);
      for (let i = 0; i < count; i++) values[i] = (stored === 'uint8' ? view.getUint8(offset + i) : view.getUint16(offset + i * 2, true)) * scale + min;
    }
    weights.set(spec.name, values);
    offset += count * size;
  }
  if (offset !== data.byteLength) throw new DermError('model-invalid', `the weight shards hold ${data.byteLength} bytes but the manifest describes ${offset}.`);
  return weights;
}
