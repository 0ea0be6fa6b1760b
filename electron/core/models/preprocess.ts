import { sharp } from '../runtime/lazy-packages.js';
import { DermError } from '../../common/errors.js';
import type { ModelManifest } from './model-manifest.js';

export type InputSpec = ModelManifest['input'];

/** Pixels already decoded (by the import pipeline): 8-bit, row-major, 3 (RGB) or 4 (RGBA) channels, orientation applied. */
export interface RawPixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3 | 4;
}

/** An image to embed: a file path, encoded bytes, or decoded pixels. */
export type ImageSource = { file: string } | { bytes: Uint8Array } | { pixels: RawPixels };

const kernels = { bilinear: 'linear', bicubic: 'cubic', nearest: 'nearest', lanczos3: 'lanczos3' } as const;

/** Values per image in the input tensor. */
export function valuesPerImage(input: InputSpec): number {
  return input.width * input.height * 3;
}

function describeSource(source: ImageSource): string {
  if ('file' in source) return source.file;
  if ('bytes' in source) return `${source.bytes.length} encoded bytes`;
  return `${source.pixels.width}x${source.pixels.height} decoded pixels`;
}

/**
 * Decodes (when needed), orients, flattens transparency, and resizes an image to the model's input
 * with sharp, returning 8-bit RGB at exactly width × height. Resize follows the manifest: stretch
 * ignores the aspect ratio, centre-crop covers then crops the middle, pad fits inside and fills the
 * rest with padColour.
 */
export async function resizeForModel(source: ImageSource, input: InputSpec): Promise<Buffer> {
  const pad = input.padColour ?? [0, 0, 0];
  let image: ReturnType<typeof sharp>;
  if ('pixels' in source) {
    const { data, width, height, channels } = source.pixels;
    if (data.length !== width * height * channels) {
      throw new DermError('invalid-input', `Decoded pixels of ${width}x${height}x${channels} need ${width * height * channels} bytes; got ${data.length}.`);
    }
    image = sharp(data, { raw: { width, height, channels } });
  } else {
    image = sharp('file' in source ? source.file : source.bytes, { failOn: 'error' }).rotate();
  }
  const fit = input.fit === 'stretch' ? 'fill' : input.fit === 'centre-crop' ? 'cover' : 'contain';
  try {
    const { data, info } = await image
      .flatten({ background: { r: pad[0], g: pad[1], b: pad[2] } })
      .toColourspace('srgb')
      .resize(input.width, input.height, {
        kernel: kernels[input.resize],
        fit,
        position: 'centre',
        background: { r: pad[0], g: pad[1], b: pad[2], alpha: 1 },
      })
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.width !== input.width || info.height !== input.height || info.channels !== 3) {
      throw new Error(`resized to ${info.width}x${info.height}x${info.channels}, expected ${input.width}x${input.height}x3`);
    }
    return data;
  } catch (error) {
    throw new DermError('decode-failed', `Cannot read ${describeSource(source)} as an image: ${(error as Error).message}`, {
      ...('file' in source ? { file: source.file } : {}),
    });
  }
}

/**
 * Writes one resized RGB image into `target` (a batch tensor) at image slot `slot`: 0..255 is mapped
 * linearly onto valueRange, then (value - mean) / std per channel, in the manifest's layout.
 */
export function writeNormalised(rgb: Uint8Array, input: InputSpec, target: Float32Array, slot: number): void {
  const pixels = input.width * input.height;
  const base = slot * pixels * 3;
  const [low, high] = input.valueRange;
  const scale = (high - low) / 255;
  // value = (low + scale * p - mean) / std = p * a + b, folded per channel.
  const a = [0, 1, 2].map((c) => scale / input.std[c]!);
  const b = [0, 1, 2].map((c) => (low - input.mean[c]!) / input.std[c]!);
  const [a0, a1, a2] = a as [number, number, number];
  const [b0, b1, b2] = b as [number, number, number];
  if (input.layout === 'NHWC') {
    for (let index = 0, offset = base; index < pixels * 3; index += 3, offset += 3) {
      target[offset] = rgb[index]! * a0 + b0;
      target[offset + 1] = rgb[index + 1]! * a1 + b1;
      target[offset + 2] = rgb[index + 2]! * a2 + b2;
    }
  } else {
    const red = base;
    const green = base + pixels;
    const blue = base + 2 * pixels;
    for (let pixel = 0, index = 0; pixel < pixels; pixel++, index += 3) {
      target[red + pixel] = rgb[index]! * a0 + b0;
      target[green + pixel] = rgb[index + 1]! * a1 + b1;
      target[blue + pixel] = rgb[index + 2]! * a2 + b2;
    }
  }
}

/** Preprocesses one image into a fresh 1-image tensor. */
export async function preprocessImage(source: ImageSource, input: InputSpec): Promise<Float32Array> {
  const tensor = new Float32Array(valuesPerImage(input));
  writeNormalised(await resizeForModel(source, input), input, tensor, 0);
  return tensor;
}

/** Tensor dimensions for a batch of `count` images. */
export function inputDims(input: InputSpec, count: number): [number, number, number, number] {
  return input.layout === 'NCHW' ? [count, 3, input.height, input.width] : [count, input.height, input.width, 3];
}
