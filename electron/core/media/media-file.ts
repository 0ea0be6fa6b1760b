import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { sharp } from '../runtime/lazy-packages.js';
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

function isInside(root: string, file: string): boolean {
  const relative = path.relative(root, file);
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}

/**
 * The file a media request may read, or a not-found error. A thumbnail or managed copy is served only
 * when it is a regular file whose real path (every symbolic link resolved) lies inside the library:
 * a thumbnail replaced by a link to /etc/passwd is refused. An original outside the library is served
 * only as the recorded path itself, a regular file and not a symbolic link (folders on the way may be
 * links: they are the user's own layout). The returned path is the real one, so the read that follows
 * does not pass through links again.
 */
export function servableMediaFile(file: string, imageId: number, allowed: { libraryRoot: string } | { recordedOriginal: string }): string {
  const refuse = (why: string): never => {
    throw new DermError('not-found', `The file of image ${imageId} is not served: ${why} (${file}).`, { imageId });
  };
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch {
    return refuse('it is missing');
  }
  if ('libraryRoot' in allowed) {
    let root: string;
    try {
      root = fs.realpathSync(allowed.libraryRoot);
    } catch {
      return refuse('the library folder is missing');
    }
    if (!isInside(root, real)) refuse('it leads outside the library through a symbolic link');
  } else {
    if (path.resolve(file) !== path.resolve(allowed.recordedOriginal)) refuse('it is not the recorded original');
    if (fs.lstatSync(file).isSymbolicLink()) refuse('the recorded original has been replaced by a symbolic link');
  }
  if (!fs.statSync(real).isFile()) refuse('it is not a regular file');
  return real;
}

/**
 * Opens a media file for reading without following a symbolic link at its last component, so a file
 * swapped for a link after `servableMediaFile` checked it is refused (ELOOP) rather than read. Resolves
 * once the file is open, so a refusal is a not-found error before any response header is sent.
 */
export async function openMediaStream(file: string, imageId: number): Promise<Readable> {
  // createReadStream's typings name only string flags, but Node passes a number straight to open(2).
  const flags = (fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0)) as unknown as string;
  const stream = fs.createReadStream(file, { flags });
  try {
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', reject);
    });
  } catch (error) {
    stream.destroy();
    throw new DermError('not-found', `The file of image ${imageId} cannot be served: ${(error as Error).message}`, { imageId });
  }
  return stream;
}

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
