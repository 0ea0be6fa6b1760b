import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCsvTable } from '../../electron/core/csv/csv.js';
import { createDatasetServices } from '../../electron/core/core.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { readNpzEntries } from '../../electron/core/embeddings/npz.js';
import type { ExportService } from '../../electron/core/export/export.service.js';
import { createImportServices } from '../../electron/core/core.js';
import { LabelsRepository } from '../../electron/core/labels/labels.repository.js';
import { LabelsService } from '../../electron/core/labels/labels.service.js';
import { TaxonomyRepository } from '../../electron/core/labels/taxonomy.repository.js';
import { TaxonomyService } from '../../electron/core/labels/taxonomy.service.js';
import { SettingsRepository } from '../../electron/core/library/settings.repository.js';
import { runDermws } from '../fixtures/cli-runner.js';
import { createTestLibrary } from '../fixtures/library-fixture.js';
import { writeSkinImage } from '../fixtures/skin-images.js';

/**
 * A de-identified export is checked byte by byte: every file it writes (CSV, npz, npy, image copies,
 * manifest) is searched for the original paths, folder and file names, the user name, case keys,
 * annotator names, the dropped metadata and the notes.
 */
const userName = os.userInfo().username;
let library: ReturnType<typeof createTestLibrary>;
let work: string;
let photos: string;
let exportsService: ExportService;
let settings: SettingsRepository;
const originals: string[] = [];

function allFiles(folder: string): string[] {
  return fs
    .readdirSync(folder, { recursive: true })
    .map((name) => path.join(folder, String(name)))
    .filter((file) => fs.statSync(file).isFile());
}

beforeAll(async () => {
  library = createTestLibrary('dermws-deidentify-');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-deidentify-work-'));
  // Real exports carry the user's home folder, the clinic and the patient in their paths.
  photos = path.join(work, 'home', userName, 'Clinic Marlowe', 'Jane Doe');
  originals.push(
    await writeSkinImage(path.join(photos, 'Jane Doe 1985-03-02 left arm.jpg'), { seed: 1, width: 60, height: 48 }),
    await writeSkinImage(path.join(photos, 'Jane Doe 1985-03-02 back.png'), { seed: 2, width: 60, height: 48, format: 'png' }),
    await writeSkinImage(path.join(photos, 'follow-up', 'Jane Doe second visit.jpg'), { seed: 3, width: 60, height: 48 }),
  );
  settings = new SettingsRepository(library.db);
  const taxonomy = new TaxonomyService(new TaxonomyRepository(library.db), settings);
  const labels = new LabelsService(new LabelsRepository(library.db), taxonomy);
  const imports = createImportServices(library);
  expect((await imports.import.importPaths([photos])).imported).toBe(3);
  ({ exports: exportsService } = createDatasetServices(library, {
    import: imports.import,
    images: imports.images,
    labels,
    taxonomy,
    quality: imports.quality,
  }));
  const ids = (library.db.prepare('SELECT id FROM images ORDER BY id').all() as Array<{ id: number }>).map((row) => row.id);
  const caseId = library.db.prepare("INSERT INTO cases (case_key, source, created_at) VALUES ('MRN-4471-JANEDOE', 'test', '2026-01-01')").run().lastInsertRowid;
  library.db.prepare('UPDATE images SET case_id = ?').run(caseId);
  const metadata = library.db.prepare("INSERT INTO image_metadata (image_id, key, value, source) VALUES (?, ?, ?, 'test')");
  for (const id of ids) {
    metadata.run(id, 'patient_name', 'Jane Q. Doe');
    metadata.run(id, 'site', 'arm');
    labels.setLabel({ imageId: id, kind: 'condition', value: 'eczema', annotator: 'Dr Gregory Marlowe' });
  }
  labels.setLabel({ imageId: ids[0]!, kind: 'note', value: 'Mrs Doe says it itches', annotator: 'Dr Gregory Marlowe' });
  settings.set('ui.annotator', 'Dr Gregory Marlowe');
  const embeddings = new EmbeddingsRepository(library.db);
  embeddings.registerModel({
    id: 'precomputed',
    displayName: 'precomputed',
    dim: 4,
    sha256: 'c'.repeat(64),
    source: 'imported',
    preprocessing: { importedFrom: 'Jane Doe embeddings.npz' },
  });
  embeddings.put(
    'precomputed',
    'c'.repeat(64),
    ids.map((imageId) => ({ imageId, vector: Float32Array.from([0.25, 0, 0.5, 1]) })),
  );
});

afterAll(() => {
  library.cleanup();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('de-identified export', () => {
  const target = () => path.join(work, 'shared');

  beforeAll(async () => {
    await exportsService.export({
      folder: target(),
      formats: ['csv', 'npz', 'npy'],
      images: true,
      deidentify: true,
      dropMetadata: ['patient_name'],
      filter: { caseKey: 'MRN-4471-JANEDOE' },
    });
  });

  it('holds no path, file or folder name, user name, case key, annotator, dropped metadata or note in any byte', () => {
    const files = allFiles(target());
    expect(
      files
        .map((file) => path.relative(target(), file))
        .filter((name) => !name.startsWith(`images${path.sep}`))
        .sort(),
    ).toEqual(
      ['embeddings_precomputed.npy', 'embeddings_precomputed.npz', 'embeddings_precomputed_paths.csv', 'images.csv', 'labels_long.csv', 'manifest.json'].sort(),
    );
    expect(files.filter((file) => file.includes(`${path.sep}images${path.sep}`))).toHaveLength(3);
    const needles = [
      ...originals,
      ...originals.map((file) => path.basename(file)),
      ...originals.map((file) => path.basename(file, path.extname(file))),
      photos,
      work,
      'Jane Doe',
      'Clinic Marlowe',
      'Marlowe',
      'follow-up',
      'second visit',
      'MRN-4471',
      'JANEDOE',
      'Jane Q. Doe',
      'itches',
      'Jane Doe embeddings',
      // Short user names (root, dev) also occur inside ordinary words; they are searched where a path would put them.
      ...(userName.length >= 5 ? [userName] : [`/${userName}/`, `\\${userName}\\`]),
    ];
    for (const file of files) {
      const bytes = fs.readFileSync(file);
      for (const needle of needles) {
        for (const encoded of [Buffer.from(needle, 'utf8'), Buffer.from(JSON.stringify(needle).slice(1, -1), 'utf8')]) {
          expect(bytes.includes(encoded), `${path.relative(target(), file)} contains ${JSON.stringify(needle)}`).toBe(false);
        }
      }
    }
  });

  it('uses pseudonymous keys everywhere an image, case or annotator is named, and says so in the manifest', async () => {
    const images = parseCsvTable(fs.readFileSync(path.join(target(), 'images.csv'), 'utf8'), 'images.csv');
    expect(images.header).not.toContain('original_path');
    expect(images.header).not.toContain('relative_path');
    expect(images.header).not.toContain('meta.patient_name');
    expect(images.header).toContain('meta.site');
    const keys = images.rows.map((row) => row.values.export_key!);
    for (const key of keys) expect(key).toMatch(/^img_[0-9a-f]{24}\.(jpg|png)$/);
    expect(new Set(images.rows.map((row) => row.values.case_key))).toEqual(new Set([expect.stringMatching(/^case_[0-9a-f]{16}$/)]));
    const long = parseCsvTable(fs.readFileSync(path.join(target(), 'labels_long.csv'), 'utf8'), 'labels_long.csv');
    expect(long.rows.map((row) => row.values.kind)).toEqual(['condition', 'condition', 'condition']);
    for (const row of long.rows) expect(row.values.annotator).toMatch(/^annotator_[0-9a-f]{12}$/);
    expect(fs.readdirSync(path.join(target(), 'images')).sort()).toEqual([...keys].sort());
    const npzKeys: string[] = [];
    for await (const entry of readNpzEntries(path.join(target(), 'embeddings_precomputed.npz'))) npzKeys.push(entry.key);
    expect(npzKeys.sort()).toEqual([...keys].sort());
    const manifest = JSON.parse(fs.readFileSync(path.join(target(), 'manifest.json'), 'utf8'));
    expect(manifest.request).toMatchObject({ deidentify: true, dropMetadata: ['patient_name'], filter: expect.stringMatching(/omitted/) });
    expect(manifest.deidentified.removed).toEqual(expect.arrayContaining(['original_path', 'relative_path', 'note labels']));
    expect(manifest.settings).toMatch(/omitted/);
  });

  it('gives the same pseudonyms on a re-export, and keeps the secret out of settings and every manifest', async () => {
    const again = path.join(work, 'shared-again');
    await exportsService.export({ folder: again, formats: ['csv'], deidentify: true, dropMetadata: ['patient_name'] });
    const read = (folder: string) => fs.readFileSync(path.join(folder, 'images.csv'), 'utf8');
    expect(read(again)).toBe(read(target()));
    const plain = path.join(work, 'plain');
    await exportsService.export({ folder: plain, formats: ['csv'] });
    const secret = (library.db.prepare("SELECT value FROM settings WHERE key = 'export.pseudonym_secret'").get() as { value: string }).value;
    expect(JSON.parse(secret)).toMatch(/^[0-9a-f]{64}$/);
    for (const folder of [target(), again, plain]) expect(fs.readFileSync(path.join(folder, 'manifest.json'), 'utf8')).not.toContain(JSON.parse(secret));
    // Without de-identification the export still names its paths (the default is unchanged).
    expect(read(plain)).toContain(originals[0]!);
  });

  it('refuses to drop a metadata column the library does not have, so a typo cannot leak the real one', async () => {
    await expect(exportsService.export({ folder: path.join(work, 'typo'), deidentify: true, dropMetadata: ['patient_nmae'] })).rejects.toThrow(
      /dropMetadata names "patient_nmae", which the library has no metadata for \(keys: patient_name, site\)/,
    );
    expect(fs.existsSync(path.join(work, 'typo', 'images.csv'))).toBe(false);
  });

  it('is offered by `dermws export --deidentify --drop-meta`', async () => {
    const folder = path.join(work, 'cli');
    const run = await runDermws('--library', library.paths.root, '--json', 'export', folder, '--deidentify', '--drop-meta', 'patient_name', '--images');
    expect(run.code).toBe(0);
    const text = fs.readFileSync(path.join(folder, 'images.csv'), 'utf8');
    expect(text).not.toContain('Jane');
    expect(text).toBe(fs.readFileSync(path.join(target(), 'images.csv'), 'utf8'));
  });
});
