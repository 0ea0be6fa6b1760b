import { sharp } from '../runtime/lazy-packages.js';

/**
 * Exported image copies are re-encoded from decoded pixels, never copied byte for byte, so EXIF
 * (including GPS position, camera serial numbers, dates), XMP, IPTC and embedded comments cannot leave
 * with them: sharp writes no metadata unless asked to. The EXIF orientation is applied to the pixels
 * first, because the tag that described it is gone. Colours are converted to sRGB (sharp's default),
 * so dropping the ICC profile does not change how the picture looks.
 */
export type ExportImageFormat = 'jpeg' | 'png' | 'webp' | 'tiff';

/** JPEG/WebP keep their format at high quality; lossless formats stay lossless; anything else becomes PNG. */
export function exportFormatFor(sourceFormat: string): { format: ExportImageFormat; extension: string } {
  switch (sourceFormat.toLowerCase()) {
    case 'jpeg':
    case 'jpg':
      return { format: 'jpeg', extension: '.jpg' };
    case 'webp':
      return { format: 'webp', extension: '.webp' };
    case 'tiff':
    case 'tif':
      return { format: 'tiff', extension: '.tiff' };
    default:
      return { format: 'png', extension: '.png' };
  }
}

/** Pixel limit when decoding for export, the same order as the import's (100 MP). */
const maxInputPixels = 100_000_000;

export async function writeImageWithoutMetadata(
  source: string,
  target: string,
  format: ExportImageFormat,
): Promise<{ width: number; height: number; bytes: number }> {
  let pipeline = sharp(source, { limitInputPixels: maxInputPixels, failOn: 'error' }).rotate();
  if (format === 'jpeg') pipeline = pipeline.jpeg({ quality: 95, chromaSubsampling: '4:4:4' });
  else if (format === 'webp') pipeline = pipeline.webp({ quality: 95 });
  else if (format === 'tiff') pipeline = pipeline.tiff({ compression: 'lzw' });
  else pipeline = pipeline.png();
  const info = await pipeline.toFile(target);
  return { width: info.width, height: info.height, bytes: info.size };
}
