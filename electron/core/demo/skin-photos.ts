import fs from 'node:fs';
import path from 'node:path';
import { sharp } from '../runtime/lazy-packages.js';
import { seededRandom } from '../../common/seeded-random.js';

/**
 * Generated skin photographs: skin-tone backgrounds with lesions of several colours and shapes, plus
 * every kind of broken file. The demo library is drawn with these, and the tests generate their data
 * with them; nothing is downloaded.
 */

/** Approximate sRGB skin tones from light (Fitzpatrick I / Monk 1) to deep (VI / Monk 10). */
export const skinTones: ReadonlyArray<readonly [number, number, number]> = [
  [246, 237, 228],
  [243, 231, 219],
  [247, 234, 208],
  [234, 218, 186],
  [215, 189, 150],
  [160, 126, 86],
  [130, 92, 67],
  [96, 65, 52],
  [58, 49, 42],
  [41, 36, 32],
];

export const lesionColours: ReadonlyArray<readonly [number, number, number]> = [
  [120, 60, 40], // brown naevus
  [180, 40, 50], // erythematous
  [60, 30, 30], // dark
  [200, 120, 130], // pink plaque
  [230, 210, 170], // pale scale
];

export interface SkinImageOptions {
  width?: number;
  height?: number;
  /** Seed for the pseudo-random texture, lesion placement and shape. */
  seed?: number;
  toneIndex?: number;
  lesionColourIndex?: number;
  /** Number of lesions (default 1–3 from the seed). */
  lesions?: number;
}

/** Raw RGB pixels of a skin photo: toned background with fine texture and soft-edged, irregular lesions. */
export function skinImagePixels(options: SkinImageOptions = {}): { data: Buffer; width: number; height: number } {
  const width = options.width ?? 640;
  const height = options.height ?? 480;
  const random = seededRandom(options.seed ?? 1);
  const tone = skinTones[options.toneIndex ?? Math.floor(random() * skinTones.length)]!;
  const lesionCount = options.lesions ?? 1 + Math.floor(random() * 3);
  const lesions = Array.from({ length: lesionCount }, () => ({
    cx: width * (0.2 + 0.6 * random()),
    cy: height * (0.2 + 0.6 * random()),
    rx: Math.min(width, height) * (0.05 + 0.15 * random()),
    ry: Math.min(width, height) * (0.05 + 0.15 * random()),
    wobble: 0.1 + 0.3 * random(),
    lobes: 3 + Math.floor(random() * 5),
    phase: random() * Math.PI * 2,
    colour: lesionColours[options.lesionColourIndex ?? Math.floor(random() * lesionColours.length)]!,
  }));
  const data = Buffer.alloc(width * height * 3);
  const lighting = 0.85 + 0.15 * random();
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      // Gentle lighting gradient plus pore-like texture.
      const shade = lighting * (0.92 + 0.08 * (1 - y / height)) + 0.04 * (random() - 0.5);
      let r = tone[0] * shade;
      let g = tone[1] * shade;
      let b = tone[2] * shade;
      for (const lesion of lesions) {
        const dx = (x - lesion.cx) / lesion.rx;
        const dy = (y - lesion.cy) / lesion.ry;
        const angle = Math.atan2(dy, dx);
        const radius = 1 + lesion.wobble * Math.sin(lesion.lobes * angle + lesion.phase);
        const distance = Math.sqrt(dx * dx + dy * dy) / radius;
        if (distance < 1.15) {
          const alpha = distance < 0.85 ? 0.9 : (0.9 * (1.15 - distance)) / 0.3;
          r = r * (1 - alpha) + lesion.colour[0] * alpha;
          g = g * (1 - alpha) + lesion.colour[1] * alpha;
          b = b * (1 - alpha) + lesion.colour[2] * alpha;
        }
      }
      const offset = (y * width + x) * 3;
      data[offset] = Math.max(0, Math.min(255, Math.round(r)));
      data[offset + 1] = Math.max(0, Math.min(255, Math.round(g)));
      data[offset + 2] = Math.max(0, Math.min(255, Math.round(b)));
    }
  }
  return { data, width, height };
}

export type EncodedFormat = 'jpeg' | 'png' | 'webp' | 'tiff';

export async function skinImage(options: SkinImageOptions & { format?: EncodedFormat; quality?: number } = {}): Promise<Buffer> {
  const { data, width, height } = skinImagePixels(options);
  const image = sharp(data, { raw: { width, height, channels: 3 } });
  const format = options.format ?? 'jpeg';
  const quality = options.quality ?? 90;
  if (format === 'jpeg') return image.jpeg({ quality }).toBuffer();
  if (format === 'png') return image.png().toBuffer();
  if (format === 'webp') return image.webp({ quality }).toBuffer();
  return image.tiff().toBuffer();
}

export async function writeSkinImage(file: string, options: SkinImageOptions & { format?: EncodedFormat; quality?: number } = {}): Promise<string> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, await skinImage(options));
  return file;
}

/** Every kind of broken input an import must survive, written into `folder`. Returns name → path. */
export async function writeBrokenFiles(folder: string): Promise<Record<string, string>> {
  fs.mkdirSync(folder, { recursive: true });
  const files: Record<string, string> = {};
  const put = (name: string, content: Buffer | string) => {
    const file = path.join(folder, name);
    fs.writeFileSync(file, content);
    files[name] = file;
    return file;
  };
  put('zero-bytes.jpg', Buffer.alloc(0));
  const jpeg = await skinImage({ seed: 99, width: 320, height: 240 });
  put('truncated.jpg', jpeg.subarray(0, Math.floor(jpeg.length / 3)));
  const png = await skinImage({ seed: 98, width: 320, height: 240, format: 'png' });
  put('truncated.png', png.subarray(0, Math.floor(png.length / 3)));
  const random = seededRandom(7);
  put('random-bytes.png', Buffer.from(Array.from({ length: 4096 }, () => Math.floor(random() * 256))));
  put('notes.txt', 'This is a text file, not a photograph.\n');
  put('text-with-image-extension.jpg', 'plain text pretending to be a JPEG\n');
  return files;
}
