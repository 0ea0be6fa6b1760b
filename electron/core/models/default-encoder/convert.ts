import fs from 'node:fs';
import path from 'node:path';
import { DermError } from '../../../common/errors.js';
import { modelManifestSchema, type ModelManifest } from '../model-manifest.js';
import { convertKerasModel, type KerasConversion } from './keras-to-onnx.js';
import { manifestFileName, writeManifestFile, type ModelFiles } from '../model-files.js';
import { sha256OfFile } from '../../runtime/file-hash.js';
import { dequantiseWeights, nsfwjsVersion, readNsfwjsMobileNetV2, type NsfwjsModel } from './nsfwjs-files.js';

/**
 * The bundled default encoder: nsfwjs's MobileNetV2 (Keras, TF.js layers format) converted to ONNX
 * on first use and cut at the 1280-d average-pooled backbone output. Nothing binary is committed:
 * the weights come from the installed npm package and the conversion is deterministic, so every
 * machine with the same nsfwjs version gets the same file and sha256.
 */

export const defaultEncoderId = 'nsfwjs-mobilenet-v2';
/** Bumped whenever the converter's output bytes change, so cached files are rebuilt. */
export const converterVersion = 1;
/** The layer after the backbone's 7x7 average pool: a flat 1280-d vector (the NSFW head comes after). */
export const cutLayer = 'flatten_1';
export const inputName = 'image';
export const outputName = 'embedding';

export function defaultEncoderOrigin(nsfwjsVersion: string): string {
  return (
    `npm package nsfwjs@${nsfwjsVersion} (Infinite Red, Inc.; https://github.com/infinitered/nsfwjs), ` +
    `dist/models/mobilenet_v2 (Keras MobileNetV2 as a TF.js layers model, uint8-quantised weights); ` +
    `converted to ONNX by derm-workstation electron/core/models/default-encoder/convert.ts (converter ${converterVersion}), ` +
    `cut at layer ${cutLayer} (1280-d average-pooled backbone output)`
  );
}

export function defaultEncoderManifest(nsfwjsVersion: string, sha256: string): ModelManifest {
  return {
    id: defaultEncoderId,
    displayName: 'MobileNetV2 from nsfwjs (generic photo encoder)',
    file: `${defaultEncoderId}.onnx`,
    sha256,
    input: {
      name: inputName,
      layout: 'NHWC',
      width: 224,
      height: 224,
      resize: 'bilinear',
      fit: 'stretch',
      valueRange: [0, 1],
      mean: [0, 0, 0],
      std: [1, 1, 1],
    },
    output: { name: outputName, dim: 1280 },
    licence: 'MIT (nsfwjs, Copyright (c) 2019 Infinite Red, Inc.)',
    origin: defaultEncoderOrigin(nsfwjsVersion),
    assumptions: [
      "nsfwjs divides pixels by 255 and resizes with tf.image.resizeBilinear(alignCorners = true); sharp's bilinear kernel samples at pixel centres, so resized pixels differ slightly from what the weights saw in nsfwjs.",
      'nsfwjs stretches any photo to 224x224 without keeping its aspect ratio; fit "stretch" does the same.',
    ],
    description:
      'MobileNetV2 (ImageNet-initialised) fine-tuned by the nsfwjs authors to classify photos as drawing/hentai/neutral/porn/sexy, ' +
      'cut before that classification head. A generic photo encoder that has seen much skin; NOT a dermatology model and not validated for any clinical use.',
  };
}

/** Builds the ONNX graph from the installed nsfwjs files (in memory; nothing is written). */
export function convertNsfwjsMobileNetV2(model: NsfwjsModel = readNsfwjsMobileNetV2()): KerasConversion {
  const weights = dequantiseWeights(model.weightSpecs, model.weightData);
  const conversion = convertKerasModel({
    graphName: defaultEncoderId,
    docString: defaultEncoderOrigin(model.version),
    layers: model.modelTopology.model_config.config.layers,
    outputLayer: cutLayer,
    weight: (name) => {
      const values = weights.get(name);
      if (!values) throw new DermError('model-invalid', `nsfwjs ${model.modelFolder}: the weights manifest has no ${name}.`);
      return values;
    },
    inputName,
    outputName,
  });
  const [height, width, channels] = conversion.inputShape;
  if (height !== 224 || width !== 224 || channels !== 3 || conversion.outputDim !== 1280) {
    throw new DermError(
      'model-invalid',
      `nsfwjs ${model.modelFolder}: expected input 224x224x3 and a 1280-d cut, found ${height}x${width}x${channels} and ${conversion.outputDim}.`,
    );
  }
  return conversion;
}

/** The cached model is reused only if its manifest is valid, made by this converter from this nsfwjs, and the file's sha256 matches. */
async function cachedModel(manifestPath: string, onnxPath: string, nsfwjsVersion: string): Promise<ModelManifest | undefined> {
  if (!fs.existsSync(manifestPath) || !fs.existsSync(onnxPath)) return undefined;
  let manifest: ModelManifest;
  try {
    manifest = modelManifestSchema().parse(JSON.parse(fs.readFileSync(manifestPath, 'utf8')));
  } catch {
    return undefined;
  }
  if (manifest.origin !== defaultEncoderOrigin(nsfwjsVersion)) return undefined;
  if (manifest.file !== path.basename(onnxPath)) return undefined;
  return (await sha256OfFile(onnxPath)) === manifest.sha256 ? manifest : undefined;
}

export interface EnsureDefaultEncoderOptions {
  /** Folder for `nsfwjs-mobilenet-v2.onnx` and its manifest (created if needed). */
  cacheFolder: string;
}

export interface EnsuredModel extends ModelFiles {
  /** false when a valid cached file was reused. */
  converted: boolean;
}

/**
 * Makes sure the default encoder exists in `cacheFolder`: reuses the cached file when its sha256
 * matches its manifest (and the manifest was made from the installed nsfwjs by this converter);
 * otherwise converts, writing the ONNX file and then the manifest, each atomically, so a crash
 * leaves either the old files or the new ones and a concurrent reader never sees half a file.
 */
export async function ensureDefaultEncoder(options: EnsureDefaultEncoderOptions): Promise<EnsuredModel> {
  const onnxPath = path.join(options.cacheFolder, `${defaultEncoderId}.onnx`);
  const manifestPath = path.join(options.cacheFolder, manifestFileName(defaultEncoderId));
  const cached = await cachedModel(manifestPath, onnxPath, nsfwjsVersion());
  if (cached) return { manifestPath, onnxPath, manifest: cached, converted: false };
  const model = readNsfwjsMobileNetV2();
  try {
    fs.mkdirSync(options.cacheFolder, { recursive: true });
  } catch (error) {
    throw new DermError('invalid-input', `Cannot create the model cache folder ${options.cacheFolder}: ${(error as Error).message}`);
  }
  const written = await convertNsfwjsMobileNetV2(model).graph.writeFile(onnxPath);
  const manifest = writeManifestFile(manifestPath, defaultEncoderManifest(model.version, written.sha256));
  return { manifestPath, onnxPath, manifest, converted: true };
}
