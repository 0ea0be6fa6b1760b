import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDermError } from '../../electron/common/errors.js';
import { parseCsvTable } from '../../electron/core/csv/csv.js';
import { createDatasetServices } from '../../electron/core/core.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { readNpy } from '../../electron/core/embeddings/npy-format.js';
import { readNpzEntries } from '../../electron/core/embeddings/npz.js';
import { importEmbeddingsFile } from '../../electron/core/embeddings/embeddings-import.js';
import { ExportFolder } from '../../electron/core/export/export-paths.js';
import type { ExportService } from '../../electron/core/export/export.service.js';
import { createImportServices } from '../../electron/core/core.js';
import { LabelsRepository } from '../../electron/core/labels/labels.repository.js';
import { LabelsService } from '../../electron/core/labels/labels.service.js';
import { TaxonomyRepository } from '../../electron/core/labels/taxonomy.repository.js';
import { TaxonomyService } from '../../electron/core/labels/taxonomy.service.js';
import { SettingsRepository } from '../../electron/core/library/settings.repository.js';
import { createTestLibrary } from '../fixtures/library-fixture.js';
import { skinImagePixels, writeSkinImage } from '../fixtures/skin-images.js';

const dim = 12;
/** numpy is not a dependency; when a python3 with numpy is on the machine, the export is also read by numpy itself. */
const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
const modelSha = 'a'.repeat(64);
let library: ReturnType<typeof createTestLibrary>;
let work: string;
let exportsService: ExportService;
let labels: LabelsService;
let imageIds: number[];
let relativePaths: Map<number, string>;
let vectors: Map<number, Float32Array>;

function folder(name: string): string {
  return path.join(work, name);
}

async function jpegWithGps(file: string, seed: number): Promise<void> {
  const { data, width, height } = skinImagePixels({ seed, width: 80, height: 60 });
  const bytes = await sharp(data, { raw: { width, height, channels: 3 } })
    .withExif({
      IFD0: { Copyright: 'Patient Jane Doe', Make: 'PhoneCam' },
      IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 12/1', GPSLongitudeRef: 'W', GPSLongitude: '0/1 7/1 39/1' },
    })
    .jpeg()
    .toBuffer();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bytes);
}

/** Tags of the first IFD of a TIFF/EXIF block (after the "Exif\0\0" prefix sharp returns). */
function ifd0Tags(exif: Buffer): number[] {
  const tiff = exif.subarray(exif.indexOf(Buffer.from('Exif\0\0')) + 6);
  const little = tiff.toString('latin1', 0, 2) === 'II';
  const u16 = (offset: number) => (little ? tiff.readUInt16LE(offset) : tiff.readUInt16BE(offset));
  const u32 = (offset: number) => (little ? tiff.readUInt32LE(offset) : tiff.readUInt32BE(offset));
  const start = u32(4);
  return Array.from({ length: u16(start) }, (_, index) => u16(start + 2 + index * 12));
}

beforeAll(async () => {
  library = createTestLibrary('dermws-export-');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-export-work-'));
  const source = folder('photos');
  await jpegWithGps(path.join(source, 'clinic', 'gps-1.jpg'), 1);
  await jpegWithGps(path.join(source, 'clinic', 'gps-2.jpg'), 2);
  await writeSkinImage(path.join(source, 'clinic', 'plain.png'), { seed: 3, width: 70, height: 50, format: 'png' });
  await writeSkinImage(path.join(source, 'other', 'ünï code.jpg'), { seed: 4, width: 60, height: 60 });

  const settings = new SettingsRepository(library.db);
  const taxonomy = new TaxonomyService(new TaxonomyRepository(library.db), settings);
  labels = new LabelsService(new LabelsRepository(library.db), taxonomy);
  const imports = createImportServices(library);
  const report = await imports.import.importPaths([source]);
  expect(report.imported).toBe(4);
  ({ exports: exportsService } = createDatasetServices(library, {
    import: imports.import,
    images: imports.images,
    labels,
    taxonomy,
    quality: imports.quality,
  }));

  const rows = library.db.prepare('SELECT id, relative_path AS relativePath FROM images ORDER BY id').all() as Array<{ id: number; relativePath: string }>;
  imageIds = rows.map((row) => row.id);
  relativePaths = new Map(rows.map((row) => [row.id, row.relativePath]));

  const embeddings = new EmbeddingsRepository(library.db);
  embeddings.registerModel({ id: 'tiny-test', displayName: 'Tiny test encoder', dim, sha256: modelSha, source: 'imported', preprocessing: null });
  vectors = new Map(imageIds.slice(0, 3).map((id) => [id, Float32Array.from({ length: dim }, (_, index) => Math.sin(id * 10 + index))]));
  embeddings.put(
    'tiny-test',
    modelSha,
    [...vectors].map(([imageId, vector]) => ({ imageId, vector })),
  );

  const [a, b, c] = imageIds as [number, number, number];
  labels.setLabel({ imageId: a, kind: 'condition', value: 'eczema', confidence: 4, annotator: 'dr-a' });
  labels.setLabel({ imageId: a, kind: 'condition', value: 'psoriasis', confidence: 2, annotator: 'dr-b' });
  labels.adjudicate({ imageId: a, kind: 'condition', values: [{ value: 'eczema', confidence: 5 }], annotator: 'dr-c' });
  labels.setLabel({ imageId: b, kind: 'fitzpatrick', value: 'IV', annotator: 'dr-a' });
  labels.setLabel({ imageId: b, kind: 'fitzpatrick', value: 'V', annotator: 'dr-b' });
  labels.setLabel({ imageId: c, kind: 'note', value: 'scale, "silvery"\nsecond line', annotator: 'dr-a' });
  library.db
    .prepare("INSERT INTO image_metadata (image_id, key, value, source) VALUES (?, 'sex', 'female', 'test'), (?, 'age_group', 'AGE_30_TO_39', 'test')")
    .run(a, b);
  library.db.prepare("INSERT INTO image_flags (image_id, flag, source, set_at) VALUES (?, 'blurry', 'manual', '2026-01-01')").run(c);
});

afterAll(() => {
  library.cleanup();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('export', () => {
  let report: Awaited<ReturnType<ExportService['export']>>;
  const out = () => folder('export-all');

  beforeAll(async () => {
    report = await exportsService.export({ folder: out(), formats: ['csv', 'npz', 'npy'], images: true });
  });

  it('writes one row per image with metadata, flags and current labels (consensus marked)', () => {
    const table = parseCsvTable(fs.readFileSync(path.join(out(), 'images.csv'), 'utf8'), 'images.csv');
    expect(table.rows).toHaveLength(4);
    expect(table.header).toEqual(
      expect.arrayContaining([
        'image_id',
        'export_key',
        'case_key',
        'meta.sex',
        'meta.age_group',
        'label.condition',
        'label.condition.from',
        'label.fitzpatrick',
        'label.note',
        'flags.manual',
      ]),
    );
    const byId = new Map(table.rows.map((row) => [Number(row.values.image_id), row.values]));
    const [a, b, c] = imageIds as [number, number, number];
    expect(byId.get(a)).toMatchObject({
      'meta.sex': 'female',
      'label.condition': 'eczema',
      'label.condition.from': 'consensus',
      export_key: relativePaths.get(a),
    });
    expect(byId.get(b)).toMatchObject({
      'meta.age_group': 'AGE_30_TO_39',
      'label.fitzpatrick': 'IV;V',
      'label.fitzpatrick.from': 'annotators',
      'label.condition': '',
    });
    expect(byId.get(c)).toMatchObject({ 'label.note': 'scale, "silvery"\nsecond line', 'flags.manual': 'blurry' });
  });

  it('writes one row per current label in the long file', () => {
    const table = parseCsvTable(fs.readFileSync(path.join(out(), 'labels_long.csv'), 'utf8'), 'labels_long.csv');
    const current = (library.db.prepare('SELECT COUNT(*) AS n FROM labels WHERE superseded_at IS NULL').get() as { n: number }).n;
    expect(table.rows).toHaveLength(current);
    expect(report.counts.labels).toBe(current);
    const consensus = table.rows.filter((row) => row.values.consensus === 'yes');
    expect(consensus.map((row) => [row.values.kind, row.values.value, row.values.confidence, row.values.origin])).toEqual([
      ['condition', 'eczema', '5', 'consensus'],
    ]);
    expect(table.rows.find((row) => row.values.annotator === 'dr-b' && row.values.kind === 'condition')?.values).toMatchObject({
      value: 'psoriasis',
      confidence: '2',
      origin: 'manual',
    });
  });

  it('writes an npz keyed by image path that our reader reads back exactly', async () => {
    const entries = new Map<string, Float32Array>();
    for await (const entry of readNpzEntries(path.join(out(), 'embeddings_tiny-test.npz'))) {
      expect(entry.dtype).toBe('<f4');
      expect(entry.shape).toEqual([dim]);
      entries.set(entry.key, entry.data as Float32Array);
    }
    expect(new Set(entries.keys())).toEqual(new Set([...vectors.keys()].map((id) => relativePaths.get(id)!)));
    for (const [id, vector] of vectors) expect(Array.from(entries.get(relativePaths.get(id)!)!)).toEqual(Array.from(vector));
    expect(report.counts.embeddings).toBe(3);
    expect(report.issues).toEqual([expect.objectContaining({ imageId: null, message: expect.stringMatching(/1 of 4 images have no embedding/) })]);
  });

  it('stores each npz entry as bytes that follow the .npy format specification', () => {
    const archive = unzipSync(fs.readFileSync(path.join(out(), 'embeddings_tiny-test.npz')));
    const names = Object.keys(archive).sort();
    expect(names).toEqual([...vectors.keys()].map((id) => `${relativePaths.get(id)!}.npy`).sort());
    for (const [id, vector] of vectors) {
      const bytes = Buffer.from(archive[`${relativePaths.get(id)!}.npy`]!);
      expect([...bytes.subarray(0, 6)]).toEqual([0x93, ...Buffer.from('NUMPY')]);
      expect([bytes[6], bytes[7]]).toEqual([1, 0]);
      const headerLength = bytes.readUInt16LE(8);
      expect((10 + headerLength) % 64).toBe(0);
      const header = bytes.toString('latin1', 10, 10 + headerLength);
      expect(header.endsWith('\n')).toBe(true);
      expect(header.trimEnd()).toBe(`{'descr': '<f4', 'fortran_order': False, 'shape': (${dim},), }`);
      expect(/^[^\n]* *\n$/.test(header)).toBe(true);
      const data = bytes.subarray(10 + headerLength);
      expect(data.length).toBe(dim * 4);
      expect(Array.from({ length: dim }, (_, index) => data.readFloatLE(index * 4))).toEqual(Array.from(vector));
    }
  });

  it.skipIf(!hasNumpy)('is read by numpy itself: np.load gives float32 (dim,) arrays under the image paths', () => {
    const script = [
      'import json, sys, numpy as np',
      'd = np.load(sys.argv[1])',
      'm = np.load(sys.argv[2])',
      'print(json.dumps({"entries": {k: [str(d[k].dtype), list(d[k].shape), d[k].astype(float).tolist()] for k in d.files}, "matrix": [str(m.dtype), list(m.shape)]}))',
    ].join('\n');
    const result = spawnSync('python3', ['-c', script, path.join(out(), 'embeddings_tiny-test.npz'), path.join(out(), 'embeddings_tiny-test.npy')], {
      encoding: 'utf8',
    });
    expect(result.status, result.stderr).toBe(0);
    const parsed = JSON.parse(result.stdout) as { entries: Record<string, [string, number[], number[]]>; matrix: [string, number[]] };
    expect(parsed.matrix).toEqual(['float32', [3, dim]]);
    for (const [id, vector] of vectors) {
      expect(parsed.entries[relativePaths.get(id)!]).toEqual(['float32', [dim], Array.from(vector)]);
    }
  });

  it('writes the npy matrix with a paths CSV giving each row’s image', () => {
    const matrix = readNpy(path.join(out(), 'embeddings_tiny-test.npy'));
    expect(matrix.dtype).toBe('<f4');
    expect(matrix.shape).toEqual([3, dim]);
    const paths = parseCsvTable(fs.readFileSync(path.join(out(), 'embeddings_tiny-test_paths.csv'), 'utf8'), 'paths.csv');
    expect(paths.header).toEqual(['row', 'image_id', 'path']);
    for (const row of paths.rows) {
      const index = Number(row.values.row);
      const vector = vectors.get(Number(row.values.image_id))!;
      expect(row.values.path).toBe(relativePaths.get(Number(row.values.image_id)));
      expect(Array.from(matrix.data.subarray(index * dim, (index + 1) * dim))).toEqual(Array.from(vector));
    }
  });

  it('imports back through `dermws embeddings import`: npz by key, npy by its paths CSV, every vector matched to its image', async () => {
    const repository = new EmbeddingsRepository(library.db);
    const fromNpz = await importEmbeddingsFile(repository, { file: path.join(out(), 'embeddings_tiny-test.npz'), modelId: 'round-trip-npz' });
    const fromNpy = await importEmbeddingsFile(repository, {
      file: path.join(out(), 'embeddings_tiny-test.npy'),
      pathsCsv: path.join(out(), 'embeddings_tiny-test_paths.csv'),
      modelId: 'round-trip-npy',
    });
    for (const result of [fromNpz, fromNpy]) {
      expect(result).toMatchObject({ stored: 3, matchedByRelativePath: 3, unmatched: [], ambiguous: [], duplicates: [] });
      for (const [id, vector] of vectors) expect(Array.from(repository.get(result.modelId, id)!)).toEqual(Array.from(vector));
    }
    library.db.prepare("DELETE FROM embedding_models WHERE id IN ('round-trip-npz', 'round-trip-npy')").run();
  });

  it('exports image copies with no EXIF or GPS left', async () => {
    // The import decodes several files at once, so ids follow completion order: find the GPS photo by path.
    const source = path.join(folder('photos'), 'clinic', 'gps-1.jpg');
    expect([...relativePaths.values()]).toContain('clinic/gps-1.jpg');
    const sourceMeta = await sharp(source).metadata();
    expect(sourceMeta.exif).toBeDefined();
    expect(ifd0Tags(sourceMeta.exif!)).toContain(0x8825); // GPSInfo pointer: the source does carry a position
    for (const id of imageIds) {
      const exported = path.join(out(), 'images', relativePaths.get(id)!);
      const bytes = fs.readFileSync(exported);
      const meta = await sharp(bytes).metadata();
      expect(meta.exif).toBeUndefined();
      expect(meta.xmp).toBeUndefined();
      expect(meta.iptc).toBeUndefined();
      expect(bytes.includes(Buffer.from('Exif\0\0'))).toBe(false);
      expect(bytes.includes(Buffer.from('Patient Jane Doe'))).toBe(false);
      expect([meta.width, meta.height]).toEqual([
        (library.db.prepare('SELECT width FROM images WHERE id = ?').get(id) as { width: number }).width,
        (library.db.prepare('SELECT height FROM images WHERE id = ?').get(id) as { height: number }).height,
      ]);
    }
    expect(report.counts.imageFiles).toBe(4);
  });

  it('writes a manifest that describes how to reproduce the export', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(out(), 'manifest.json'), 'utf8'));
    const packageVersion = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, '../../package.json'), 'utf8')).version;
    expect(manifest).toMatchObject({
      format: 'derm-workstation-export',
      formatVersion: 1,
      app: { name: 'derm-workstation', version: packageVersion },
      model: { id: 'tiny-test', sha256: modelSha, dim },
      request: { formats: ['csv', 'npz', 'npy'], images: true, filter: {} },
      counts: { images: 4, embeddings: 3, imageFiles: 4 },
    });
    expect(manifest.thresholds.quality).toBeTypeOf('object');
    expect(manifest.taxonomy.some((entry: { kind: string; code: string }) => entry.kind === 'condition' && entry.code === 'eczema')).toBe(true);
    expect(Date.parse(manifest.createdAt)).not.toBeNaN();
    for (const file of manifest.files as Array<{ name: string; sha256: string; bytes: number }>) {
      const bytes = fs.readFileSync(path.join(out(), file.name));
      expect(bytes.length).toBe(file.bytes);
      expect(crypto.createHash('sha256').update(bytes).digest('hex')).toBe(file.sha256);
    }
  });

  it('refuses to overwrite an earlier export unless asked, and changes nothing when it refuses', async () => {
    const before = fs.readFileSync(path.join(out(), 'images.csv'));
    const manifestBefore = fs.readFileSync(path.join(out(), 'manifest.json'));
    let caught: unknown;
    try {
      await exportsService.export({ folder: out(), formats: ['csv'], filter: { ids: [imageIds[0]!] } });
    } catch (error) {
      caught = error;
    }
    expect(isDermError(caught, 'conflict')).toBe(true);
    expect((caught as Error).message).toMatch(/images\.csv.*--overwrite/);
    expect(fs.readFileSync(path.join(out(), 'images.csv')).equals(before)).toBe(true);
    expect(fs.readFileSync(path.join(out(), 'manifest.json')).equals(manifestBefore)).toBe(true);
    const again = await exportsService.export({ folder: out(), formats: ['csv'], filter: { ids: [imageIds[0]!] }, overwrite: true });
    expect(again.counts.images).toBe(1);
    expect(parseCsvTable(fs.readFileSync(path.join(out(), 'images.csv'), 'utf8'), 'images.csv').rows).toHaveLength(1);
  });
});

describe('export filters and model choice', () => {
  it('exports only images matching every filter condition', async () => {
    const report = await exportsService.export({ folder: folder('export-filtered'), filter: { labels: [{ kind: 'fitzpatrick', value: 'V' }] } });
    expect(report.counts.images).toBe(1);
    const table = parseCsvTable(fs.readFileSync(path.join(folder('export-filtered'), 'images.csv'), 'utf8'), 'images.csv');
    expect(table.rows.map((row) => Number(row.values.image_id))).toEqual([imageIds[1]]);
    const flagged = await exportsService.export({ folder: folder('export-flagged'), filter: { flags: ['blurry'], metadata: {} } });
    expect(flagged.counts.images).toBe(1);
    await expect(exportsService.export({ folder: folder('export-bad'), filter: { labels: [{ kind: 'colour', value: 'x' }] } })).rejects.toThrow(
      /"colour" is not a label kind/,
    );
    // The search grammar: every clause must hold.
    const where = await exportsService.export({ folder: folder('export-where'), filter: { where: ['flag!=blurry', 'skin_type=IV'] } });
    expect(where.counts.images).toBe(1);
    const excluded = await exportsService.export({ folder: folder('export-where-none'), filter: { where: ['flag!=blurry'], ids: [imageIds[2]!] } });
    expect(excluded.counts.images).toBe(0);
  });

  it('names the unknown model and refuses unknown formats before writing anything', async () => {
    await expect(exportsService.export({ folder: folder('export-model'), formats: ['npz'], modelId: 'missing-model' })).rejects.toThrow(
      /no model "missing-model" \(models: tiny-test\)/,
    );
    await expect(exportsService.export({ folder: folder('export-format'), formats: ['parquet' as 'csv'] })).rejects.toThrow(/format "parquet"/);
    expect(fs.existsSync(folder('export-format'))).toBe(false);
  });
});

describe('export failures', () => {
  it('reports an image file that vanished, exports the rest, and ends partial', async () => {
    const id = imageIds[2]!;
    const original = (library.db.prepare('SELECT original_path AS p FROM images WHERE id = ?').get(id) as { p: string }).p;
    library.db.prepare('UPDATE images SET original_path = ? WHERE id = ?').run(path.join(work, 'gone', 'vanished.png'), id);
    try {
      const report = await exportsService.export({ folder: folder('export-vanished'), images: true });
      expect(report.status).toBe('partial');
      expect(report.counts.imageFiles).toBe(3);
      expect(report.issues).toEqual([expect.objectContaining({ imageId: id, message: expect.stringMatching(/could not be exported/) })]);
      expect(JSON.parse(fs.readFileSync(path.join(folder('export-vanished'), 'manifest.json'), 'utf8')).issues).toHaveLength(1);
    } finally {
      library.db.prepare('UPDATE images SET original_path = ? WHERE id = ?').run(original, id);
    }
  });

  it('stops when cancelled and leaves no manifest, so the export reads as incomplete', async () => {
    const controller = new AbortController();
    const report = await exportsService.export({
      folder: folder('export-cancelled'),
      images: true,
      signal: controller.signal,
      onProgress: (progress) => {
        if (progress.current === 'images.csv') controller.abort();
      },
    });
    expect(report.status).toBe('cancelled');
    expect(fs.existsSync(path.join(folder('export-cancelled'), 'images.csv'))).toBe(true);
    expect(fs.existsSync(path.join(folder('export-cancelled'), 'manifest.json'))).toBe(false);
    expect(fs.readdirSync(folder('export-cancelled')).some((name) => name.endsWith('.partial'))).toBe(false);
  });
});

describe('export paths', () => {
  it('refuses names that leave the export folder', () => {
    const target = ExportFolder.open(folder('export-paths'));
    for (const name of ['../escape.csv', 'a/../../escape.csv', '/etc/passwd', 'C:\\Windows\\x', 'images\\..\\..\\x', '', '.', 'nul\0byte']) {
      expect(() => target.resolve(name), name).toThrow(/Refusing to write/);
    }
    expect(target.resolve('images/dataset/images/1.png')).toBe(path.join(target.root, 'images', 'dataset', 'images', '1.png'));
  });

  it('refuses to write through a symbolic link planted in the export folder', async () => {
    const outside = folder('outside');
    fs.mkdirSync(outside, { recursive: true });
    const target = folder('export-symlink');
    fs.mkdirSync(target, { recursive: true });
    fs.symlinkSync(outside, path.join(target, 'images'));
    let caught: unknown;
    try {
      await exportsService.export({ folder: target, images: true });
    } catch (error) {
      caught = error;
    }
    expect(isDermError(caught, 'invalid-input')).toBe(true);
    expect((caught as Error).message).toMatch(/images is a symbolic link/);
    expect(fs.readdirSync(outside)).toEqual([]);
    expect(fs.existsSync(path.join(target, 'images.csv'))).toBe(false);
    // A link where a top-level file would go is refused the same way (even with overwrite).
    const file = folder('outside-file.csv');
    fs.writeFileSync(file, 'precious\n');
    const second = folder('export-file-link');
    fs.mkdirSync(second);
    fs.symlinkSync(file, path.join(second, 'images.csv'));
    await expect(exportsService.export({ folder: second, overwrite: true })).rejects.toThrow(/images\.csv is a symbolic link/);
    expect(fs.readFileSync(file, 'utf8')).toBe('precious\n');
  });

  it('never uses a stored path that climbs out of the folder: the image is exported under its id instead', async () => {
    const id = imageIds[3]!;
    const original = relativePaths.get(id)!;
    library.db.prepare('UPDATE images SET relative_path = ? WHERE id = ?').run('../../../../escaped.jpg', id);
    try {
      const target = folder('export-escape');
      const report = await exportsService.export({ folder: target, images: true, filter: { ids: [id] } });
      expect(fs.existsSync(path.resolve(target, 'images', '../../../../escaped.jpg'))).toBe(false);
      expect(fs.existsSync(path.join(target, 'images', `image-${id}`, 'escaped.jpg'))).toBe(true);
      expect(report.issues).toEqual([expect.objectContaining({ imageId: id, message: expect.stringMatching(/not a safe relative path/) })]);
      const table = parseCsvTable(fs.readFileSync(path.join(target, 'images.csv'), 'utf8'), 'images.csv');
      expect(table.rows[0]!.values.export_key).toBe(`image-${id}/escaped.jpg`);
    } finally {
      library.db.prepare('UPDATE images SET relative_path = ? WHERE id = ?').run(original, id);
    }
  });
});
