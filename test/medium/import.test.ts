import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { isDermError } from '../../electron/common/errors.js';
import { makeThumbnail } from '../../electron/core/import/image-decoder.js';
import type { DecodedImageEvent, ImportReport } from '../../electron/core/import/import.service.js';
import { reduceForAnalysis } from '../../electron/core/quality/quality-reduce.js';
import type { JobProgress } from '../../electron/core/jobs/job.js';
import { skinImagePixels, writeBrokenFiles, writeSkinImage } from '../fixtures/skin-images.js';
import { chmodBlocksReading, importTestLibrary, pngClaiming, rawToFile, tempFolder } from './import-helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function setup() {
  const context = importTestLibrary();
  const source = tempFolder();
  cleanups.push(() => {
    context.library.cleanup();
    fs.rmSync(source, { recursive: true, force: true });
  });
  return { ...context, source };
}

const outcomeOf = (report: ImportReport, name: string) => {
  const found = report.outcomes.filter((outcome) => path.basename(outcome.path) === name);
  expect(found, `one outcome for ${name}`).toHaveLength(1);
  return found[0]!;
};

describe('import', () => {
  it('decodes every format once into sRGB: EXIF rotation, alpha on white, 16-bit, grayscale and CMYK', async () => {
    const { source, import: importer, images, library } = setup();
    const skin = skinImagePixels({ seed: 3, width: 300, height: 200, toneIndex: 4 });
    const encode = (file: string, how: Parameters<typeof rawToFile>[4]) => rawToFile(path.join(source, file), skin.data, skin.width, skin.height, how);
    await encode('a.jpg', (image) => image.jpeg({ quality: 90 }));
    await encode('b.png', (image) => image.png());
    await encode('c.webp', (image) => image.webp({ quality: 90 }));
    await encode('d.tiff', (image) => image.tiff());
    await encode('e.avif', (image) => image.avif({ quality: 60, effort: 0 }));
    await encode('rotated.jpg', (image) => image.jpeg().withMetadata({ orientation: 6 }));
    await encode('sixteen-bit.png', (image) => image.toColourspace('rgb16').png());
    await encode('grey.png', (image) => image.toColourspace('b-w').png());
    await encode('cmyk.jpg', (image) => image.toColourspace('cmyk').jpeg());
    // Transparent left half: after flattening on white those pixels must be white.
    const rgba = Buffer.alloc(skin.width * skin.height * 4);
    for (let pixel = 0; pixel < skin.width * skin.height; pixel++) {
      skin.data.copy(rgba, pixel * 4, pixel * 3, pixel * 3 + 3);
      rgba[pixel * 4 + 3] = pixel % skin.width < skin.width / 2 ? 0 : 255;
    }
    await sharp(rgba, { raw: { width: skin.width, height: skin.height, channels: 4 } })
      .png()
      .toFile(path.join(source, 'rgba.png'));
    const unicodeFile = await writeSkinImage(path.join(source, 'sub', 'ünï cödé', 'with space ü 🙂.jpg'), { seed: 5, width: 320, height: 240 });

    const decoded: DecodedImageEvent[] = [];
    const report = await importer.importPaths([source], { onDecoded: (image) => void decoded.push({ ...image }) });
    expect(report.status).toBe('success');
    expect(report).toMatchObject({ total: 11, imported: 11, duplicates: 0, failed: 0, skipped: 0, resumed: false });
    expect(decoded).toHaveLength(11);

    const byName = new Map(images.list({ limit: 100 }).map((image) => [path.basename(image.originalPath), image]));
    expect(byName.get('rotated.jpg')).toMatchObject({ width: 200, height: 300, exifOrientation: 6, format: 'jpeg' });
    expect(byName.get('sixteen-bit.png')).toMatchObject({ sourceBitDepth: 'ushort', format: 'png' });
    expect(byName.get('grey.png')?.sourceColorSpace).toBe('b-w');
    expect(byName.get('cmyk.jpg')?.sourceColorSpace).toBe('cmyk');
    expect(byName.get('rgba.png')?.hadAlpha).toBe(true);
    expect(byName.get('c.webp')?.format).toBe('webp');
    expect(byName.get('d.tiff')?.format).toBe('tiff');
    expect(byName.get('e.avif')?.format).toBe('heif');
    expect(byName.get('grey.png')?.flags).toContain('grayscale');
    expect(byName.get('a.jpg')?.flags).not.toContain('grayscale');

    for (const event of decoded) {
      expect(event.channels).toBe(3);
      expect(event.pixels.length).toBe(event.width * event.height * 3);
      expect(images.get(event.imageId)?.originalPath).toBe(event.path);
    }
    const rgbaEvent = decoded.find((event) => path.basename(event.path) === 'rgba.png')!;
    expect([...rgbaEvent.pixels.subarray(0, 3)]).toEqual([255, 255, 255]);
    const greyEvent = decoded.find((event) => path.basename(event.path) === 'grey.png')!;
    expect(greyEvent.pixels[0]).toBe(greyEvent.pixels[1]);

    for (const image of byName.values()) {
      const thumbnail = await sharp(path.join(library.paths.root, image.thumbnailPath)).metadata();
      expect(thumbnail.format).toBe('webp');
      expect(Math.max(thumbnail.width!, thumbnail.height!)).toBeLessThanOrEqual(256);
      expect(images.thumbnailFile(image.id)).toBe(path.join(library.paths.root, image.thumbnailPath));
      expect(images.imageFile(image.id)).toBe(image.originalPath);
    }
    const unicode = images.findByRelativePath('sub/ünï cödé/with space ü 🙂.jpg');
    expect(unicode.map((image) => image.originalPath)).toEqual([unicodeFile]);
    expect(images.findByFileName('with space ü 🙂.jpg')).toHaveLength(1);
  });

  it('gives every broken file a plain reason and goes on without losing what came before', async () => {
    const { source, import: importer, images } = setup();
    await writeSkinImage(path.join(source, 'a-good.jpg'), { seed: 1, width: 320, height: 240 });
    const broken = await writeBrokenFiles(path.join(source, 'broken'));
    fs.writeFileSync(path.join(source, 'bomb.png'), await pngClaiming(20_000, 20_000));
    fs.mkdirSync(path.join(source, 'loop'));
    fs.symlinkSync('..', path.join(source, 'loop', 'back'));
    fs.symlinkSync('self-link.jpg', path.join(source, 'self-link.jpg'));
    fs.symlinkSync(path.join(source, 'nowhere.jpg'), path.join(source, 'dangling.jpg'));
    const unreadable = path.join(source, 'unreadable.jpg');
    await writeSkinImage(unreadable, { seed: 2, width: 320, height: 240 });
    fs.chmodSync(unreadable, 0o000);
    const permissionsWork = chmodBlocksReading(source);
    await writeSkinImage(path.join(source, 'z-good.png'), { seed: 3, width: 320, height: 240, format: 'png' });
    const elsewhere = tempFolder();
    cleanups.push(() => fs.rmSync(elsewhere, { recursive: true, force: true }));
    const textGivenByName = path.join(elsewhere, 'readme.txt');
    fs.writeFileSync(textGivenByName, 'These are the notes of a study, not a photograph.\n');

    const report = await importer.importPaths([source, textGivenByName, path.join(elsewhere, 'missing-folder')]);
    expect(outcomeOf(report, 'a-good.jpg').outcome).toBe('imported');
    expect(outcomeOf(report, 'z-good.png').outcome).toBe('imported');
    const reasons: Record<string, RegExp> = {
      'zero-bytes.jpg': /empty \(0 bytes\)/,
      'truncated.jpg': /truncated/,
      'truncated.png': /truncated/,
      'random-bytes.png': /Not a recognised image/,
      'text-with-image-extension.jpg': /contains text, not an image/,
      'readme.txt': /contains text, not an image/,
      'bomb.png': /20000×20000 = 400\.0 megapixels, over the 100-megapixel limit/,
      back: /Symbolic link loop/,
      'self-link.jpg': /Symbolic link loop/,
      'dangling.jpg': /Broken symbolic link/,
      'missing-folder': /does not exist/,
    };
    for (const [name, reason] of Object.entries(reasons)) {
      const outcome = outcomeOf(report, name);
      expect(outcome.outcome, name).toBe('failed');
      expect(outcome.reason, name).toMatch(reason);
    }
    expect(outcomeOf(report, 'notes.txt')).toMatchObject({ outcome: 'skipped', reason: expect.stringMatching(/extension "\.txt"/) });
    // Root reads through chmod 000, so there the unreadable file imports; elsewhere it must fail with a reason.
    if (permissionsWork) expect(outcomeOf(report, 'unreadable.jpg')).toMatchObject({ outcome: 'failed', reason: expect.stringMatching(/Permission denied/) });
    else expect(outcomeOf(report, 'unreadable.jpg').outcome).toBe('imported');
    expect(Object.keys(broken)).toContain('zero-bytes.jpg');
    expect(report.failed).toBe(Object.keys(reasons).length + (permissionsWork ? 1 : 0));
    expect(images.count()).toBe(permissionsWork ? 2 : 3);
    expect(report.status).toBe('partial');
    fs.chmodSync(unreadable, 0o600);
  });

  it('stores a file once, reports copies as duplicates of the stored image, flags re-encoded copies, and a re-import adds nothing', async () => {
    const { source, import: importer, images, importBatches } = setup();
    const first = await writeSkinImage(path.join(source, 'one.jpg'), { seed: 11, width: 320, height: 240 });
    fs.copyFileSync(first, path.join(source, 'copy of one.jpg'));
    const pixels = skinImagePixels({ seed: 12, width: 320, height: 240 });
    await rawToFile(path.join(source, 'same-pixels.png'), pixels.data, 320, 240, (image) => image.png());
    await rawToFile(path.join(source, 'same-pixels.webp'), pixels.data, 320, 240, (image) => image.webp({ lossless: true }));

    const report = await importer.importPaths([source]);
    expect(report).toMatchObject({ status: 'success', total: 4, imported: 3, duplicates: 1 });
    const pair = [outcomeOf(report, 'one.jpg'), outcomeOf(report, 'copy of one.jpg')];
    const stored = pair.find((outcome) => outcome.outcome === 'imported')!;
    const copy = pair.find((outcome) => outcome.outcome === 'duplicate')!;
    expect(copy.imageId).toBe(stored.imageId);
    expect(copy.reason).toMatch(new RegExp(`Same file as image ${stored.imageId}`));
    const png = images.get(outcomeOf(report, 'same-pixels.png').imageId!)!;
    const webp = images.get(outcomeOf(report, 'same-pixels.webp').imageId!)!;
    expect(png.pixelSha256).toBe(webp.pixelSha256);
    expect(png.fileSha256).not.toBe(webp.fileSha256);
    expect(png.flags).toContain('duplicate');
    expect(webp.flags).toContain('duplicate');
    expect(images.get(stored.imageId!)!.flags).not.toContain('duplicate');

    const again = await importer.importPaths([source]);
    expect(again.batchId).not.toBe(report.batchId);
    expect(again).toMatchObject({ status: 'success', resumed: false, total: 4, imported: 0, duplicates: 4, failed: 0 });
    expect(images.count()).toBe(3);
    expect(importBatches.get(again.batchId)).toMatchObject({ status: 'completed', imported: 0, duplicates: 4, totalFiles: 4 });
  });

  it('resumes a cancelled or killed import without duplicates or holes', async () => {
    const { source, import: importer, images, importBatches, library } = setup();
    const files: string[] = [];
    for (let index = 0; index < 10; index++)
      files.push(await writeSkinImage(path.join(source, `photo-${index}.jpg`), { seed: 100 + index, width: 240, height: 180 }));
    // Cancelled right after the third image is committed (onDecoded runs once per committed image and
    // is awaited before the next file), not from a progress event, which is throttled by time.
    const controller = new AbortController();
    let committed = 0;
    const cancelled = await importer.importPaths([source], {
      concurrency: 1,
      signal: controller.signal,
      onDecoded: () => {
        if (++committed === 3) controller.abort();
      },
    });
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.imported).toBe(3);
    expect(importBatches.get(cancelled.batchId)?.status).toBe('cancelled');

    const resumedProgress: JobProgress[] = [];
    const resumed = await importer.importPaths([source], { onProgress: (progress) => resumedProgress.push(progress) });
    expect(resumed).toMatchObject({ batchId: cancelled.batchId, resumed: true, status: 'success', total: 10, imported: 10, duplicates: 0 });
    // Progress covers the whole batch; the rate counts only this run's files.
    expect(resumedProgress[0]).toMatchObject({ done: cancelled.imported, total: 10, ratePerSecond: 0, etaSeconds: null });
    expect(resumedProgress[resumedProgress.length - 1]).toMatchObject({ done: 10, total: 10, etaSeconds: 0 });

    // A killed process leaves its batch "running" with some images committed: the next run finishes it.
    const more = tempFolder();
    cleanups.push(() => fs.rmSync(more, { recursive: true, force: true }));
    for (let index = 0; index < 6; index++)
      await writeSkinImage(path.join(more, `later-${index}.png`), { seed: 200 + index, width: 200, height: 150, format: 'png' });
    const stopper = new AbortController();
    let committedMore = 0;
    const partial = await importer.importPaths([more], {
      concurrency: 1,
      signal: stopper.signal,
      onDecoded: () => void (++committedMore === 2 && stopper.abort()),
    });
    expect(partial).toMatchObject({ status: 'cancelled', imported: 2 });
    library.db.prepare("UPDATE import_batches SET status = 'running' WHERE id = ?").run(partial.batchId);
    // No live process holds the batch's lease: it is recovered as interrupted, not cancelled.
    expect(importer.recoverInterrupted()).toEqual([partial.batchId]);
    expect(importBatches.get(partial.batchId)).toMatchObject({ status: 'interrupted', imported: 2, totalFiles: 6 });
    const finished = await importer.importPaths([more]);
    expect(finished).toMatchObject({ batchId: partial.batchId, resumed: true, status: 'success', imported: 6 });

    expect(images.count()).toBe(16);
    const paths = images.list({ limit: 100 }).map((image) => image.originalPath);
    expect(new Set(paths).size).toBe(16);
    for (const file of files) expect(paths).toContain(file);
  });

  it('reports a file that vanished between listing and reading', async () => {
    const { source, import: importer } = setup();
    await writeSkinImage(path.join(source, 'stays.jpg'), { seed: 1, width: 200, height: 150 });
    const goes = await writeSkinImage(path.join(source, 'vanishes.jpg'), { seed: 2, width: 200, height: 150 });
    const progress: JobProgress[] = [];
    const report = await importer.importPaths([source], {
      onProgress: (event) => {
        // The first event comes after listing and before any file is read.
        if (progress.length === 0) fs.rmSync(goes);
        progress.push(event);
      },
    });
    expect(outcomeOf(report, 'vanishes.jpg')).toMatchObject({ outcome: 'failed', reason: expect.stringMatching(/vanished/) });
    expect(outcomeOf(report, 'stays.jpg').outcome).toBe('imported');
    expect(progress[0]).toMatchObject({ job: 'import', done: 0, total: 2 });
    const last = progress[progress.length - 1]!;
    expect(last.done).toBe(2);
    expect(last.etaSeconds).toBe(0);
  });

  it('copies into the library on request, and filters, pages and hides images through ImagesRepository', async () => {
    const { source, import: importer, images, library } = setup();
    const names = ['alpha.jpg', 'beta.jpg', 'gamma.jpg', 'delta.jpg'];
    for (const [index, name] of names.entries()) await writeSkinImage(path.join(source, 'set', name), { seed: 40 + index, width: 320, height: 240 });
    await rawToFile(path.join(source, 'set', 'black.png'), Buffer.alloc(320 * 240 * 3), 320, 240, (image) => image.png());
    const report = await importer.importPaths([path.join(source, 'set')], { copyIntoLibrary: true, root: source });
    expect(report.imported).toBe(5);

    const all = images.list({ limit: 10 });
    expect(all.map((image) => image.relativePath).sort()).toEqual(['set/alpha.jpg', 'set/beta.jpg', 'set/black.png', 'set/delta.jpg', 'set/gamma.jpg']);
    for (const image of all) {
      expect(image.managedPath).toMatch(/^images\//);
      const managed = images.imageFile(image.id);
      expect(managed.startsWith(library.paths.managedImages)).toBe(true);
      expect(fs.readFileSync(managed).equals(fs.readFileSync(image.originalPath))).toBe(true);
    }
    expect(images.count({ flags: ['dark'] })).toBe(1);
    expect(images.list({ flags: ['dark'] })[0]!.relativePath).toBe('set/black.png');
    expect(images.count({ withoutFlags: ['dark'] })).toBe(4);
    expect(images.count({ batchId: report.batchId })).toBe(5);
    expect(images.count({ batchId: report.batchId + 1 })).toBe(0);
    expect(images.list({ search: 'GAMMA' }).map((image) => image.relativePath)).toEqual(['set/gamma.jpg']);
    expect(images.list({ offset: 1, limit: 2 }).map((image) => image.id)).toEqual(all.slice(1, 3).map((image) => image.id));

    const beta = images.findByRelativePath('set/beta.jpg')[0]!;
    library.db.prepare("INSERT INTO image_metadata (image_id, key, value, source) VALUES (?, 'fitzpatrick_self', 'FST4', 'test')").run(beta.id);
    library.db.prepare("INSERT INTO cases (id, case_key, source, created_at) VALUES (7, '-1234567890123', 'scin', 'now')").run();
    library.db.prepare('UPDATE images SET case_id = 7 WHERE id = ?').run(beta.id);
    expect(images.list({ metadata: { fitzpatrick_self: 'FST4' } }).map((image) => image.id)).toEqual([beta.id]);
    expect(images.list({ caseKey: '-1234567890123' }).map((image) => image.id)).toEqual([beta.id]);
    expect(images.metadata(beta.id)).toEqual({ fitzpatrick_self: 'FST4' });
    expect(images.get(beta.id)?.caseKey).toBe('-1234567890123');

    expect(images.markDeleted([beta.id, beta.id])).toBe(1);
    expect(images.count()).toBe(4);
    expect(images.list({ metadata: { fitzpatrick_self: 'FST4' } })).toEqual([]);
    expect(images.count({ includeDeleted: true })).toBe(5);
    expect(images.get(beta.id)?.deletedAt).not.toBeNull();
    expect(images.getMany([beta.id, 99999, all[0]!.id]).map((image) => image.id)).toEqual([beta.id, all[0]!.id]);

    let caught: unknown;
    try {
      images.list({ limit: 0 });
    } catch (error) {
      caught = error;
    }
    expect(isDermError(caught, 'invalid-input')).toBe(true);
    expect(() => images.thumbnailFile(424242)).toThrow(/No image with id 424242/);
  });

  it('measures relative paths from the root for files named one by one, and walks a linked folder once', async () => {
    const { source, import: importer, images } = setup();
    const a = await writeSkinImage(path.join(source, 'dataset', 'images', '-123456.png'), { seed: 61, width: 200, height: 150, format: 'png' });
    const b = await writeSkinImage(path.join(source, 'dataset', 'images', 'b c.png'), { seed: 62, width: 200, height: 150, format: 'png' });
    const named = await importer.importPaths([a, b], { root: source });
    expect(named.imported).toBe(2);
    expect(images.findByRelativePath('dataset/images/-123456.png').map((image) => image.originalPath)).toEqual([a]);
    expect(images.findByRelativePath('./dataset/images/b c.png').map((image) => image.originalPath)).toEqual([b]);

    const walked = tempFolder();
    cleanups.push(() => fs.rmSync(walked, { recursive: true, force: true }));
    await writeSkinImage(path.join(walked, 'real', 'x.jpg'), { seed: 63, width: 200, height: 150 });
    fs.symlinkSync(path.join(walked, 'real'), path.join(walked, 'z-alias'));
    const report = await importer.importPaths([walked]);
    expect(report).toMatchObject({ imported: 1, failed: 0, skipped: 1 });
    expect(outcomeOf(report, 'z-alias')).toMatchObject({ outcome: 'skipped', reason: expect.stringMatching(/Same folder as .*real/) });
  });

  it('never stores a row without its thumbnail: a failing library write stops the import, and a rerun resumes', async () => {
    const { source, import: importer, images, library } = setup();
    const files: string[] = [];
    const prefixOf = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex').slice(0, 2);
    // Seeds are picked so no two files share a thumbnail folder (first two hex digits of their sha256).
    for (let index = 0, seed = 400; index < 4; seed++) {
      const file = await writeSkinImage(path.join(source, `w${index}.jpg`), { seed, width: 200, height: 150 });
      if (files.some((other) => prefixOf(other) === prefixOf(file))) continue;
      files.push(file);
      index++;
    }
    // A plain file where the third image's thumbnail folder must go makes that write fail.
    const blocker = path.join(library.paths.thumbnails, prefixOf(files[2]!));
    fs.writeFileSync(blocker, 'not a folder');
    await expect(importer.importPaths([source], { concurrency: 1 })).rejects.toThrow(
      /Could not write into the library while importing .*w2\.jpg.*running the same import again resumes it/,
    );
    expect(images.count()).toBe(2);
    fs.rmSync(blocker);
    for (const image of images.list()) expect(fs.existsSync(path.join(library.paths.root, image.thumbnailPath))).toBe(true);
    const resumed = await importer.importPaths([source]);
    expect(resumed).toMatchObject({ status: 'success', imported: 4, resumed: true });
    for (const image of images.list()) expect(fs.existsSync(images.thumbnailFile(image.id))).toBe(true);
  });

  it('gives each photo its own analysis image and thumbnail when a pixel buffer is reused in place', async () => {
    const first = skinImagePixels({ seed: 71, width: 800, height: 600, toneIndex: 1 });
    const second = skinImagePixels({ seed: 72, width: 800, height: 600, toneIndex: 8 });
    const pixels = Buffer.from(first.data);
    const before = await reduceForAnalysis(pixels, 800, 600);
    const thumbnailBefore = await makeThumbnail({ pixels, width: 800, height: 600 });
    second.data.copy(pixels);
    const after = await reduceForAnalysis(pixels, 800, 600);
    const thumbnailAfter = await makeThumbnail({ pixels, width: 800, height: 600 });
    expect(Buffer.from(after.pixels).equals(Buffer.from(before.pixels))).toBe(false);
    expect(thumbnailAfter.equals(thumbnailBefore)).toBe(false);
    const expected = await reduceForAnalysis(Buffer.from(second.data), 800, 600);
    expect(Buffer.from(after.pixels).equals(Buffer.from(expected.pixels))).toBe(true);
  });

  it('stops when the onDecoded step fails, keeps what was committed, and resumes afterwards', async () => {
    const { source, import: importer, images } = setup();
    for (let index = 0; index < 5; index++) await writeSkinImage(path.join(source, `p${index}.jpg`), { seed: 300 + index, width: 200, height: 150 });
    let calls = 0;
    await expect(
      importer.importPaths([source], {
        concurrency: 1,
        onDecoded: () => {
          calls++;
          if (calls === 2) throw new Error('encoder ran out of memory');
        },
      }),
    ).rejects.toThrow(/encoder ran out of memory/);
    expect(images.count()).toBe(2);
    const resumed = await importer.importPaths([source]);
    expect(resumed).toMatchObject({ resumed: true, imported: 5, status: 'success' });
    expect(images.count()).toBe(5);
  });
});
