import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDermws } from '../fixtures/cli-runner.js';
import { EmbeddingService } from '../../electron/core/embeddings/embedding.service.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { writeNpz } from '../../electron/core/embeddings/npz.js';
import type { JobProgress } from '../../electron/core/jobs/job.js';
import { providerOrder, type ExecutionProvider } from '../../electron/core/models/execution-providers.js';
import { ModelRegistry } from '../../electron/core/models/model-registry.js';
import { writeTinyEncoder } from '../fixtures/test-encoders.js';
import { createTestLibrary, insertSyntheticImages } from '../fixtures/library-fixture.js';
import { skinImagePixels, writeSkinImage } from '../fixtures/skin-images.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const modelCache = process.env.DERMWS_MODEL_CACHE ?? path.join(repoRoot, 'native-models', 'generated');

type TestLibrary = ReturnType<typeof createTestLibrary>;
const libraries: TestLibrary[] = [];
const services: EmbeddingService[] = [];
let modelsFolder: string;

beforeAll(async () => {
  const scratch = createTestLibrary('dermws-embed-models-');
  libraries.push(scratch);
  modelsFolder = path.join(scratch.paths.root, '..', 'models');
  await writeTinyEncoder({ folder: modelsFolder, id: 'tiny', size: 32, dim: 16, seed: 5 });
});
afterAll(async () => {
  await Promise.all(services.map((service) => service.close()));
  for (const library of libraries) library.cleanup();
});

/** A library whose image rows point at real generated photos (JPEG) in its parent folder. */
async function libraryWithImages(count: number, size = { width: 160, height: 120 }): Promise<{ library: TestLibrary; ids: number[]; files: string[] }> {
  const library = createTestLibrary('dermws-embed-');
  libraries.push(library);
  const ids = insertSyntheticImages(library, count);
  const files: string[] = [];
  const update = library.db.prepare('UPDATE images SET original_path = ?, relative_path = ? WHERE id = ?');
  for (const [index, id] of ids.entries()) {
    const relative = `photos/case-${index}.jpg`;
    const file = await writeSkinImage(path.join(library.paths.root, '..', relative), { seed: 100 + index, ...size });
    update.run(file, relative, id);
    files.push(file);
  }
  return { library, ids, files };
}

function service(
  library: TestLibrary,
  extra: { defaultEncoder?: boolean; providers?: ExecutionProvider[] } = {},
): { embeddings: EmbeddingService; repository: EmbeddingsRepository } {
  const registry = new ModelRegistry({
    libraryModelsFolder: library.paths.models,
    bundledManifestFolders: [modelsFolder],
    runtimeOptions: { providers: extra.providers ?? ['cpu'] },
    ...(extra.defaultEncoder
      ? { defaultEncoder: async () => (await import('../../electron/core/models/model-services.js')).defaultEncoderLocation(modelCache) }
      : {}),
  });
  const repository = new EmbeddingsRepository(library.db);
  const embeddings = new EmbeddingService(repository, registry, library.paths.root);
  services.push(embeddings);
  return { embeddings, repository };
}

/** The real repository, observed: `onSources` runs when the job asks where a batch's files are (the moment it starts reading that batch). */
function observedService(library: TestLibrary, onSources: (imageIds: readonly number[]) => void): { embeddings: EmbeddingService } {
  class ObservedRepository extends EmbeddingsRepository {
    override imageSources(imageIds: readonly number[]) {
      onSources(imageIds);
      return super.imageSources(imageIds);
    }
  }
  const registry = new ModelRegistry({
    libraryModelsFolder: library.paths.models,
    bundledManifestFolders: [modelsFolder],
    runtimeOptions: { providers: ['cpu'] },
  });
  const embeddings = new EmbeddingService(new ObservedRepository(library.db), registry, library.paths.root);
  services.push(embeddings);
  return { embeddings };
}

function rowsFor(library: TestLibrary, modelId: string): Array<{ image_id: number; n: number }> {
  return library.db.prepare('SELECT image_id, COUNT(*) AS n FROM embeddings WHERE model_id = ? GROUP BY image_id ORDER BY image_id').all(modelId) as Array<{
    image_id: number;
    n: number;
  }>;
}

describe('embedding job', () => {
  it('embeds every image once, stores Float32 blobs with the model sha256, and skips them on the next run', async () => {
    const { library, ids } = await libraryWithImages(11);
    const { embeddings, repository } = service(library);
    const progress: JobProgress[] = [];
    const result = await embeddings.embedLibrary({ modelId: 'tiny', batchSize: 4, onProgress: (event) => progress.push(event) });
    expect(result).toMatchObject({ status: 'success', modelId: 'tiny', total: 11, embedded: 11, skipped: 0, failed: [], provider: 'cpu', batchSize: 4 });
    expect(rowsFor(library, 'tiny')).toEqual(ids.map((id) => ({ image_id: id, n: 1 })));
    const stored = library.db.prepare('SELECT model_sha256, dim, length(vector) AS bytes FROM embeddings LIMIT 1').get() as {
      model_sha256: string;
      dim: number;
      bytes: number;
    };
    const manifest = JSON.parse(fs.readFileSync(path.join(modelsFolder, 'tiny.manifest.json'), 'utf8'));
    expect(stored).toEqual({ model_sha256: manifest.sha256, dim: 16, bytes: 64 });
    expect(repository.model('tiny')).toMatchObject({ dim: 16, source: 'onnx', sha256: manifest.sha256 });
    expect(progress.at(-1)).toMatchObject({ job: 'embed', done: 11, total: 11 });
    expect(progress.some((event) => event.ratePerSecond > 0)).toBe(true);

    const vectors = ids.map((id) => repository.get('tiny', id)!);
    expect(new Set(vectors.map((vector) => vector.join(','))).size).toBe(11);

    const again = await embeddings.embedLibrary({ modelId: 'tiny' });
    expect(again).toMatchObject({ status: 'success', total: 0, embedded: 0, skipped: 11 });
  });

  it('gives the same vector for a library image, the same file from outside, and its decoded pixels', async () => {
    const { library, ids, files } = await libraryWithImages(3);
    const { embeddings, repository } = service(library);
    await embeddings.embedLibrary({ modelId: 'tiny', batchSize: 2 });
    const fromFile = await embeddings.embedImageFile(files[1]!, 'tiny');
    expect(Array.from(fromFile)).toEqual(Array.from(repository.get('tiny', ids[1]!)!));

    const pixels = skinImagePixels({ seed: 5, width: 100, height: 80 });
    const png = path.join(library.paths.root, '..', 'lossless.png');
    await sharp(pixels.data, { raw: { width: 100, height: 80, channels: 3 } })
      .png()
      .toFile(png);
    const fromPixels = await embeddings.embedPixels({ data: pixels.data, width: 100, height: 80, channels: 3 }, 'tiny');
    const fromPng = await embeddings.embedImageFile(png, 'tiny');
    expect(fromPixels.length).toBe(16);
    for (let index = 0; index < 16; index++) expect(fromPixels[index]).toBeCloseTo(fromPng[index]!, 5);
  });

  it('resumes after a cancel without duplicates or holes', async () => {
    const { library, ids } = await libraryWithImages(12);
    const controller = new AbortController();
    // Cancel while the second batch is being read: the first batch is still committed, nothing after it.
    const { embeddings: cancelling } = observedService(library, (imageIds) => {
      if (imageIds[0] === ids[3]) controller.abort();
    });
    const first = await cancelling.embedLibrary({ modelId: 'tiny', batchSize: 3, signal: controller.signal });
    const { embeddings } = service(library);
    expect(first.status).toBe('cancelled');
    expect(first.embedded).toBe(3);
    expect(rowsFor(library, 'tiny')).toHaveLength(first.embedded);

    const second = await embeddings.embedLibrary({ modelId: 'tiny', batchSize: 3 });
    expect(second).toMatchObject({ status: 'success', skipped: first.embedded, embedded: 12 - first.embedded });
    expect(rowsFor(library, 'tiny')).toEqual(ids.map((id) => ({ image_id: id, n: 1 })));
  });

  it('reports a vanished or unreadable file as a per-image failure and embeds the rest; managed copies are preferred', async () => {
    const { library, ids, files } = await libraryWithImages(6);
    fs.rmSync(files[2]!);
    fs.writeFileSync(files[4]!, 'this is no longer a JPEG');
    // Image 0's original is gone but its managed copy inside the library is there.
    const managed = path.join(library.paths.managedImages, 'copy-0.jpg');
    fs.copyFileSync(files[0]!, managed);
    fs.rmSync(files[0]!);
    library.db.prepare('UPDATE images SET managed_path = ? WHERE id = ?').run(path.relative(library.paths.root, managed), ids[0]);
    // A deleted image is not embedded at all.
    library.db.prepare("UPDATE images SET deleted_at = '2026-01-01' WHERE id = ?").run(ids[5]);

    const { embeddings } = service(library);
    const result = await embeddings.embedLibrary({ modelId: 'tiny', batchSize: 2 });
    expect(result.status).toBe('partial');
    expect(result.total).toBe(5);
    expect(result.embedded).toBe(3);
    expect(result.failed.map((failure) => failure.imageId)).toEqual([ids[2], ids[4]]);
    expect(result.failed[0]).toMatchObject({ path: files[2], reason: expect.stringContaining('no longer exists') });
    expect(result.failed[1]!.reason).toContain(files[4]!);
    expect(rowsFor(library, 'tiny').map((row) => row.image_id)).toEqual([ids[0], ids[1], ids[3]]);
  });

  it('goes on when a file vanishes while the job is running', async () => {
    const { library, ids, files } = await libraryWithImages(8);
    // When the job asks where batch 2 (images 2–3) is, batch 4 has not been read yet: remove its first file then.
    let removed = false;
    const { embeddings } = observedService(library, (imageIds) => {
      if (imageIds[0] === ids[2]) {
        fs.rmSync(files[6]!);
        removed = true;
      }
    });
    const result = await embeddings.embedLibrary({ modelId: 'tiny', batchSize: 2 });
    expect(removed).toBe(true);
    expect(result).toMatchObject({ status: 'partial', total: 8, embedded: 7 });
    expect(result.failed).toEqual([{ imageId: ids[6], path: files[6], reason: expect.stringContaining('no longer exists') }]);
    expect(rowsFor(library, 'tiny').map((row) => row.image_id)).toEqual(ids.filter((_, index) => index !== 6));
  });

  it('says in the job result which provider ran and why faster ones were skipped', async () => {
    const { library } = await libraryWithImages(2);
    // DirectML exists only on Windows; elsewhere the platform order starts with CUDA or CoreML, absent here.
    const providers: ExecutionProvider[] = process.platform === 'win32' ? providerOrder() : ['dml', 'cpu'];
    const { embeddings } = service(library, { providers });
    const result = await embeddings.embedLibrary({ modelId: 'tiny' });
    expect(result.embedded).toBe(2);
    if (result.provider === 'cpu') expect(result.fallbackReason).toMatch(new RegExp(`^${providers[0]}: .+`));
  });

  it('refuses to mix an ONNX model with imported embeddings under the same id, leaving the library unchanged', async () => {
    const { library } = await libraryWithImages(2);
    const { embeddings, repository } = service(library);
    repository.registerModel({ id: 'tiny', displayName: 'imported', dim: 16, sha256: 'f'.repeat(64), source: 'imported', preprocessing: null });
    await expect(embeddings.embedLibrary({ modelId: 'tiny' })).rejects.toThrow(/imported embeddings under the model id "tiny"/);
    expect(rowsFor(library, 'tiny')).toEqual([]);
  });

  it('resumes after the embedding process is killed with SIGKILL (the embed job in a child process)', async () => {
    const { library, ids } = await libraryWithImages(24, { width: 240, height: 180 });
    const root = library.paths.root;
    // The child kills itself right after its second batch of two is committed: a kill mid-job at a
    // fixed point, however fast or loaded the machine is.
    const env = { ...process.env, DERMWS_MODEL_CACHE: modelCache, DERMWS_EXECUTION_PROVIDERS: 'cpu' };
    const child = spawn(process.execPath, [path.join(repoRoot, 'test', 'fixtures', 'embed-then-die.child.mjs'), root, '2'], { env, stdio: 'ignore' });
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, killedBy) => resolve(killedBy)));
    expect(signal).toBe('SIGKILL');
    const afterKill = rowsFor(library, 'nsfwjs-mobilenet-v2');
    expect(afterKill).toHaveLength(4);

    const { embeddings } = service(library, { defaultEncoder: true });
    const resumed = await embeddings.embedLibrary({ batchSize: 8 });
    expect(resumed).toMatchObject({ status: 'success', modelId: 'nsfwjs-mobilenet-v2', skipped: afterKill.length, embedded: 24 - afterKill.length });
    expect(rowsFor(library, 'nsfwjs-mobilenet-v2')).toEqual(ids.map((id) => ({ image_id: id, n: 1 })));
  });
});

describe('dermws models / embed (CLI)', () => {
  const cli = (args: string[]) => runDermws(...args);

  it('adds, lists and checks a model, embeds the library and imports precomputed embeddings, with --json output', async () => {
    const { library } = await libraryWithImages(5);
    const root = library.paths.root;
    const previousCache = process.env.DERMWS_MODEL_CACHE;
    const previousProviders = process.env.DERMWS_EXECUTION_PROVIDERS;
    process.env.DERMWS_MODEL_CACHE = modelCache;
    process.env.DERMWS_EXECUTION_PROVIDERS = 'cpu';
    try {
      const added = await cli([
        '--library',
        root,
        '--json',
        'models',
        'add',
        path.join(modelsFolder, 'tiny.onnx'),
        '--manifest',
        path.join(modelsFolder, 'tiny.manifest.json'),
      ]);
      expect(added.code).toBe(0);
      expect(JSON.parse(added.stdout)).toMatchObject({ id: 'tiny', source: 'library', provider: 'cpu', dim: 16 });

      const listed = await cli(['--library', root, '--json', 'models', 'list']);
      const listing = JSON.parse(listed.stdout);
      expect(listing.defaultModelId).toBe('nsfwjs-mobilenet-v2');
      expect(listing.models.map((model: { id: string }) => model.id)).toEqual(['nsfwjs-mobilenet-v2', 'tiny']);
      expect(listing.models[1]).toMatchObject({ source: 'library', dim: 16, embedded: 0, fileExists: true });

      const checked = await cli(['--library', root, '--json', 'models', 'check', 'tiny']);
      expect(JSON.parse(checked.stdout)).toMatchObject({ id: 'tiny', provider: 'cpu', fallbackReason: null });

      const embedded = await cli(['--library', root, '--json', 'embed', '--model', 'tiny', '--batch-size', '2']);
      expect(embedded.code).toBe(0);
      expect(JSON.parse(embedded.stdout)).toMatchObject({ status: 'success', modelId: 'tiny', embedded: 5, failed: [], provider: 'cpu', batchSize: 2 });

      const npz = path.join(root, '..', 'precomputed.npz');
      writeNpz(npz, [
        ['photos/case-0.jpg', new Float64Array(6).fill(0.5), [6]],
        ['photos/not-in-library.jpg', new Float64Array(6).fill(0.25), [6]],
      ]);
      const imported = await cli(['--library', root, '--json', 'embeddings', 'import', npz, '--model', 'precomputed']);
      expect(imported.code).toBe(1);
      expect(JSON.parse(imported.stdout)).toMatchObject({
        modelId: 'precomputed',
        dim: 6,
        stored: 1,
        matchedByRelativePath: 1,
        unmatched: ['photos/not-in-library.jpg'],
      });
      const afterwards = JSON.parse((await cli(['--library', root, '--json', 'models', 'list'])).stdout);
      expect(afterwards.stored.map((model: { id: string; source: string; images: number }) => [model.id, model.source, model.images])).toEqual([
        ['precomputed', 'imported', 1],
        ['tiny', 'onnx', 5],
      ]);

      const missing = await cli(['--library', root, '--json', 'models', 'check', 'no-such-model']);
      expect(missing.code).toBe(2);
      expect(JSON.parse(missing.stdout).error.message).toMatch(/No model with id "no-such-model". Known models: nsfwjs-mobilenet-v2, tiny/);

      const badBatch = await cli(['--library', root, '--json', 'embed', '--batch-size', '0']);
      expect(badBatch.code).toBe(2);
      expect(JSON.parse(badBatch.stdout).error.message).toContain('--batch-size');
    } finally {
      if (previousCache === undefined) delete process.env.DERMWS_MODEL_CACHE;
      else process.env.DERMWS_MODEL_CACHE = previousCache;
      if (previousProviders === undefined) delete process.env.DERMWS_EXECUTION_PROVIDERS;
      else process.env.DERMWS_EXECUTION_PROVIDERS = previousProviders;
    }
  });
});
