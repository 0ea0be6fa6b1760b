import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { DermError } from '../../common/errors.js';

/** Formats a browser shows as they are; anything else (TIFF, HEIF …) is re-encoded for display. */
const browserImageTypes: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.avif': 'image/avif',
};

export type MediaBody = { type: string; file: string } | { type: string; bytes: Buffer };

/**
 * What to send for a media request (web bridge and Electron's derm-media: protocol alike): the file
 * as is when a browser can show it, else a WebP re-encoding with EXIF orientation applied.
 */
export async function mediaBody(kind: 'thumbnail' | 'image', file: string, imageId: number): Promise<MediaBody> {
  if (!fs.existsSync(file)) throw new DermError('not-found', `The file of image ${imageId} is missing: ${file}`, { imageId });
  if (kind === 'thumbnail') return { type: 'image/webp', file };
  const type = browserImageTypes[path.extname(file).toLowerCase()];
  if (type) return { type, file };
  const bytes = await sharp(file, { limitInputPixels: 100_000_000 }).rotate().webp({ quality: 90 }).toBuffer();
  return { type: 'image/webp', bytes };
}
