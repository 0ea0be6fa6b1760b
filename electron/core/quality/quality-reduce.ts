import { sharp } from '../runtime/lazy-packages.js';
import { analysisSize, type ReducedImage } from './quality-metrics.js';

/**
 * The analysis image of a decoded photo: RGB, at most 512 px on the long side, made by libvips
 * (box shrink, then a linear reduce) on sharp's threads, which is many times faster than doing it
 * in JavaScript. The import also makes the thumbnail from it, so the full-size pixels are resized
 * only once.
 */
export async function reduceForAnalysis(pixels: Buffer, width: number, height: number): Promise<ReducedImage> {
  const size = analysisSize(width, height);
  if (size.width === width && size.height === height) return { pixels, width, height };
  const { data, info } = await sharp(pixels, { raw: { width, height, channels: 3 } })
    .resize(size.width, size.height, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { pixels: data, width: info.width, height: info.height };
}
