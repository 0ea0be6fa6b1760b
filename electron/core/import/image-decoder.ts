import type { Metadata } from 'sharp';
import { sharp } from '../runtime/lazy-packages.js';
import { DermError } from '../../common/errors.js';

/**
 * The pixel limit given to sharp's `limitInputPixels`: 100 megapixels. The largest clinical and
 * dermoscopic photographs are ~50 MP; anything bigger is treated as a possible decompression bomb
 * (a small file that expands to gigabytes). One decoded 100-MP image takes 300 MB of RGB memory, and
 * the import keeps only a few in flight.
 */
export const defaultMaxPixels = 100_000_000;

export const thumbnailSide = 256;

/** One decoded image: 8-bit sRGB, 3 channels, row-major, after EXIF orientation and alpha flattening on white. */
export interface DecodedImage {
  pixels: Buffer;
  width: number;
  height: number;
  channels: 3;
  /** The file format sharp recognised: jpeg, png, webp, tiff, heif, gif … */
  format: string;
  /** The EXIF orientation that was applied (1 = none). */
  exifOrientation: number;
  /** Colour space before conversion: srgb, cmyk, b-w, rgb16, grey16 … */
  sourceColorSpace: string | null;
  /** Sample depth before conversion: uchar, ushort … */
  sourceBitDepth: string | null;
  hadAlpha: boolean;
}

/**
 * Decodes an encoded image once into 8-bit sRGB RGB pixels. `failOn: 'truncated'` makes a file that
 * ends before its image data does an error, while tolerating the harmless warnings many cameras'
 * JPEGs produce. Errors are DermErrors ('decode-failed') with a reason a person understands.
 */
export async function decodeImage(bytes: Buffer, maxPixels = defaultMaxPixels): Promise<DecodedImage> {
  if (bytes.length === 0) throw new DermError('decode-failed', 'The file is empty (0 bytes).');
  let header: Metadata;
  try {
    // Reading the header does not decode pixels, so it is safe without a limit and lets the error name the size.
    header = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw new DermError('decode-failed', explainDecodeError(error, bytes));
  }
  const orientation = header.orientation ?? 1;
  const pixelCount = (header.width ?? 0) * (header.pageHeight ?? header.height ?? 0);
  if (pixelCount > maxPixels) {
    throw new DermError(
      'decode-failed',
      `The image is ${header.width}×${header.pageHeight ?? header.height} = ${(pixelCount / 1e6).toFixed(1)} megapixels, over the ${maxPixels / 1e6}-megapixel limit that guards against decompression bombs.`,
    );
  }
  try {
    // Multi-page files (TIFF, GIF) contribute their first page.
    const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'truncated', pages: 1 })
      .rotate()
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const pixels = info.channels === 3 ? data : toRgb(data, info.width, info.height, info.channels);
    return {
      pixels,
      width: info.width,
      height: info.height,
      channels: 3,
      format: normaliseFormat(header.format),
      exifOrientation: orientation,
      sourceColorSpace: header.space ?? null,
      sourceBitDepth: header.depth ?? null,
      hadAlpha: Boolean(header.hasAlpha),
    };
  } catch (error) {
    throw new DermError('decode-failed', explainDecodeError(error, bytes));
  }
}

/**
 * A 256-px (long side) WebP thumbnail made from the decoded pixels (the import passes its ≤ 512-px
 * analysis image), so the file is not decoded again. Effort 0, libwebp's fastest method: measured side
 * by side on 1600x1200 photos it takes ~20 % less CPU than effort 2 for files of ~1 KiB instead of
 * ~0.7 KiB, a difference nobody sees in a 256-px preview.
 */
export async function makeThumbnail(image: Pick<DecodedImage, 'pixels' | 'width' | 'height'>): Promise<Buffer> {
  return sharp(image.pixels, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(thumbnailSide, thumbnailSide, { fit: 'inside', withoutEnlargement: true })
    .webp({ quality: 80, effort: 0 })
    .toBuffer();
}

function toRgb(data: Buffer, width: number, height: number, channels: number): Buffer {
  const rgb = Buffer.alloc(width * height * 3);
  for (let pixel = 0; pixel < width * height; pixel++) {
    const source = pixel * channels;
    if (channels < 3) {
      rgb.fill(data[source]!, pixel * 3, pixel * 3 + 3);
    } else {
      rgb[pixel * 3] = data[source]!;
      rgb[pixel * 3 + 1] = data[source + 1]!;
      rgb[pixel * 3 + 2] = data[source + 2]!;
    }
  }
  return rgb;
}

function normaliseFormat(format: string | undefined): string {
  if (!format) return 'unknown';
  return format === 'jpg' ? 'jpeg' : format;
}

/** Turns a libvips/sharp message into a sentence for the person importing. */
export function explainDecodeError(error: unknown, bytes: Buffer): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/empty/i.test(message) && bytes.length === 0) return 'The file is empty (0 bytes).';
  // The container's own end marker is checked first: libvips keeps one error buffer per process, so
  // with several files decoding at once the message of a failed decode can be another file's or empty.
  if (endsBeforeItsEndMarker(bytes) || /premature end|truncated|unexpected end|read error|not enough data|incomplete/i.test(message)) {
    return `The image is truncated: the file ends before its image data does (a partial download or copy?). Decoder said: ${firstLine(message)}`;
  }
  if (/pixel limit/i.test(message)) return `The image is over the pixel limit that guards against decompression bombs. Decoder said: ${firstLine(message)}`;
  if (/unsupported image format/i.test(message)) {
    if (looksLikeText(bytes)) return 'The file contains text, not an image.';
    return 'Not a recognised image: the content is not JPEG, PNG, WebP, TIFF, GIF, HEIC or AVIF data (random or corrupted bytes?).';
  }
  return `The image could not be decoded: ${firstLine(message)}`;
}

const pngSignature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const pngEnd = Buffer.from('IEND', 'latin1');

/**
 * True for a PNG without its closing IEND chunk or a JPEG whose last bytes (after zero padding) are
 * not the EOI marker FF D9: the file was cut off. Only consulted after a decode has failed.
 */
export function endsBeforeItsEndMarker(bytes: Buffer): boolean {
  if (bytes.length >= 8 && bytes.subarray(0, 8).equals(pngSignature)) {
    return bytes.length < 12 || !bytes.subarray(bytes.length - 8, bytes.length - 4).equals(pngEnd);
  }
  if (bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    let end = bytes.length;
    while (end > 2 && bytes[end - 1] === 0x00) end--;
    return !(bytes[end - 2] === 0xff && bytes[end - 1] === 0xd9);
  }
  return false;
}

function firstLine(text: string): string {
  return text.split('\n')[0]!.trim();
}

/** True when the first bytes are printable UTF-8 text (no NUL and almost no control characters). */
export function looksLikeText(bytes: Buffer): boolean {
  const sample = bytes.subarray(0, 512);
  if (sample.length === 0) return false;
  let control = 0;
  for (const byte of sample) {
    if (byte === 0) return false;
    if (byte < 9 || (byte > 13 && byte < 32)) control++;
  }
  if (control > sample.length * 0.02) return false;
  return !sample.toString('utf8').includes('\uFFFD');
}
