import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isDermError } from '../../electron/common/errors.js';
import { defaultQualityThresholds } from '../../electron/core/quality/quality-flags.js';
import { thresholdsSettingKey } from '../../electron/core/quality/quality.service.js';
import { skinImagePixels } from '../fixtures/skin-images.js';
import { importTestLibrary, rawToFile, tempFolder } from './import-helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function setup() {
  const context = importTestLibrary();
  const source = tempFolder('dermws-quality-src-');
  cleanups.push(() => {
    context.library.cleanup();
    fs.rmSync(source, { recursive: true, force: true });
  });
  return { ...context, source };
}

const uniform = (width: number, height: number, rgb: [number, number, number]) => {
  const data = Buffer.alloc(width * height * 3);
  for (let offset = 0; offset < data.length; offset += 3) data.set(rgb, offset);
  return data;
};

describe('quality flags', () => {
  it('flags the images whose answer is known, and not the others', async () => {
    const { source, import: importer, images } = setup();
    const lesion = skinImagePixels({ seed: 1, width: 640, height: 480, toneIndex: 4, lesions: 2 });
    await rawToFile(path.join(source, 'sharp-lesion.png'), lesion.data, 640, 480, (image) => image.png());
    await rawToFile(path.join(source, 'blurred-lesion.png'), lesion.data, 640, 480, (image) => image.blur(8).png());
    await rawToFile(path.join(source, 'black.png'), uniform(640, 480, [0, 0, 0]), 640, 480, (image) => image.png());
    await rawToFile(path.join(source, 'white.png'), uniform(640, 480, [255, 255, 255]), 640, 480, (image) => image.png());
    await rawToFile(path.join(source, 'flat.jpg'), uniform(640, 480, [205, 170, 140]), 640, 480, (image) => image.jpeg({ quality: 90 }));
    await rawToFile(path.join(source, 'grey-lesion.png'), lesion.data, 640, 480, (image) => image.toColourspace('b-w').png());
    const wide = skinImagePixels({ seed: 2, width: 1000, height: 100, toneIndex: 3 });
    await rawToFile(path.join(source, 'wide.jpg'), wide.data, 1000, 100, (image) => image.jpeg({ quality: 90 }));
    const small = skinImagePixels({ seed: 3, width: 200, height: 150, toneIndex: 2 });
    await rawToFile(path.join(source, 'small.jpg'), small.data, 200, 150, (image) => image.jpeg({ quality: 90 }));
    // The deepest skin tone is a well-exposed photo of dark skin, not a dark photo.
    const deep = skinImagePixels({ seed: 4, width: 640, height: 480, toneIndex: 9 });
    await rawToFile(path.join(source, 'deep-skin.jpg'), deep.data, 640, 480, (image) => image.jpeg({ quality: 92 }));
    const light = skinImagePixels({ seed: 5, width: 640, height: 480, toneIndex: 0 });
    await rawToFile(path.join(source, 'light-skin.jpg'), light.data, 640, 480, (image) => image.jpeg({ quality: 92 }));

    const report = await importer.importPaths([source]);
    expect(report.imported).toBe(10);
    const flagsOf = (name: string) => images.findByFileName(name)[0]!.flags;

    expect(flagsOf('sharp-lesion.png')).toEqual([]);
    expect(flagsOf('blurred-lesion.png')).toEqual(['blurry']);
    expect(flagsOf('black.png')).toEqual(expect.arrayContaining(['dark', 'low_information']));
    expect(flagsOf('black.png')).not.toContain('blurry');
    expect(flagsOf('white.png')).toEqual(expect.arrayContaining(['overexposed', 'low_information']));
    expect(flagsOf('flat.jpg')).toContain('low_information');
    expect(flagsOf('flat.jpg')).not.toContain('blurry');
    expect(flagsOf('grey-lesion.png')).toEqual(['grayscale']);
    expect(flagsOf('wide.jpg')).toEqual(expect.arrayContaining(['odd_aspect_ratio', 'low_resolution']));
    expect(flagsOf('small.jpg')).toEqual(['low_resolution']);
    expect(flagsOf('deep-skin.jpg')).toEqual([]);
    expect(flagsOf('light-skin.jpg')).toEqual([]);
  });

  it('does not call a large sharp photo blurry (blur is judged at the analysis size), but does a large blurred one', async () => {
    const { source, import: importer, images } = setup();
    const large = skinImagePixels({ seed: 21, width: 2000, height: 1500, toneIndex: 4, lesions: 3 });
    await rawToFile(path.join(source, 'large-sharp.jpg'), large.data, 2000, 1500, (image) => image.jpeg({ quality: 90 }));
    await rawToFile(path.join(source, 'large-blurred.jpg'), large.data, 2000, 1500, (image) => image.blur(25).jpeg({ quality: 90 }));
    await importer.importPaths([source]);
    expect(images.findByFileName('large-sharp.jpg')[0]!.flags).toEqual([]);
    expect(images.findByFileName('large-blurred.jpg')[0]!.flags).toEqual(['blurry']);
  });

  it('re-flags from stored metrics after a threshold change, without the source files', async () => {
    const { source, import: importer, images, quality, settings, library } = setup();
    const lesion = skinImagePixels({ seed: 9, width: 480, height: 360, toneIndex: 5 });
    await rawToFile(path.join(source, 'sharp.png'), lesion.data, 480, 360, (image) => image.png());
    await rawToFile(path.join(source, 'soft.png'), lesion.data, 480, 360, (image) => image.blur(6).png());
    await importer.importPaths([source]);
    const soft = images.findByFileName('soft.png')[0]!;
    const sharp = images.findByFileName('sharp.png')[0]!;
    const before = quality.metrics(soft.id)!;
    expect(soft.flags).toEqual(['blurry']);
    fs.rmSync(source, { recursive: true, force: true });

    const laxer = quality.setThresholds({ blurryAbove: 0.99 });
    expect(laxer.thresholds.blurryAbove).toBe(0.99);
    expect(laxer.reflag.flags.blurry).toBe(0);
    expect(images.get(soft.id)!.flags).toEqual([]);
    const stricter = quality.setThresholds({ blurryAbove: 0.01, lowResolutionBelow: 400 });
    expect(stricter.reflag.flags).toMatchObject({ blurry: 2, low_resolution: 2 });
    expect(images.get(sharp.id)!.flags).toEqual(['blurry', 'low_resolution']);
    expect(quality.metrics(soft.id)).toEqual(before);
    expect(settings.get(thresholdsSettingKey)).toMatchObject({ blurryAbove: 0.01, lowResolutionBelow: 400 });

    for (const change of [{ blurryAbove: 2 }, { notAThreshold: 1 }, { lowResolutionBelow: 12.5 }]) {
      let caught: unknown;
      try {
        quality.setThresholds(change);
      } catch (error) {
        caught = error;
      }
      expect(isDermError(caught, 'invalid-input'), JSON.stringify(change)).toBe(true);
      expect((caught as Error).message).toContain(Object.keys(change)[0]!);
    }
    expect(quality.thresholds()).toEqual({ ...defaultQualityThresholds, blurryAbove: 0.01, lowResolutionBelow: 400 });

    // Flags set by a person survive re-flagging.
    library.db
      .prepare("INSERT INTO image_flags (image_id, flag, source, detail, set_at) VALUES (?, 'wrong_body_site', 'manual', 'by a reviewer', ?)")
      .run(sharp.id, new Date().toISOString());
    quality.reflag();
    expect(images.get(sharp.id)!.flags).toContain('wrong_body_site');
    expect(quality.flagCounts().wrong_body_site).toBe(1);
  });

  it('flags an odd size relative to the library once it holds enough images', async () => {
    const { source, import: importer, images, quality } = setup();
    for (let index = 0; index < 20; index++) {
      const photo = skinImagePixels({ seed: 500 + index, width: 160, height: 120 });
      await rawToFile(path.join(source, `usual-${String(index).padStart(2, '0')}.jpg`), photo.data, 160, 120, (image) => image.jpeg());
    }
    const first = await importer.importPaths([source]);
    expect(first.imported).toBe(20);
    expect(images.count({ flags: ['odd_size'] })).toBe(0);

    const big = skinImagePixels({ seed: 7, width: 1200, height: 900 });
    const later = tempFolder();
    cleanups.push(() => fs.rmSync(later, { recursive: true, force: true }));
    await rawToFile(path.join(later, 'huge.jpg'), big.data, 1200, 900, (image) => image.jpeg());
    await importer.importPaths([later]);
    expect(images.list({ flags: ['odd_size'] }).map((image) => path.basename(image.originalPath))).toEqual(['huge.jpg']);
    expect(quality.flagCounts().odd_size).toBe(1);
    quality.setThresholds({ oddSizeMinImages: 50 });
    expect(images.count({ flags: ['odd_size'] })).toBe(0);
  });
});
