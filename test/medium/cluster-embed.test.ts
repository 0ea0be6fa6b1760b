import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runShard } from '../../electron/core/cluster/cluster-shard.js';
import { createCore } from '../../electron/core/core.js';
import { runDermws } from '../fixtures/cli-runner.js';
import { writeSkinImage } from '../fixtures/skin-images.js';

/**
 * Cluster embedding end to end with real parts: `dermws embed plan`, shards run by `dermws embed
 * shard` in separate processes, and `dermws embeddings import OUT_DIR`, on the bundled default
 * encoder (CPU), compared bit for bit with a local `dermws embed` of the same photos.
 */
const repoRoot = path.resolve(import.meta.dirname, '../..');
const modelId = 'nsfwjs-mobilenet-v2';
const scratch: string[] = [];

beforeAll(() => {
  process.env.DERMWS_MODEL_CACHE ??= path.join(repoRoot, 'native-models', 'generated');
  // Parity is promised for the same build on the CPU provider.
  process.env.DERMWS_EXECUTION_PROVIDERS = 'cpu';
});
afterAll(() => {
  for (const folder of scratch) fs.rmSync(folder, { recursive: true, force: true });
});

function tempFolder(): string {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-cluster-'));
  scratch.push(folder);
  return folder;
}

/** Photos of several sizes and two formats (the plan keys keep the sub-folder). */
async function writePhotos(folder: string, count: number): Promise<string[]> {
  const files: string[] = [];
  for (let index = 0; index < count; index++) {
    const file = path.join(folder, index % 2 === 0 ? 'arm' : 'back', `case ${index}.${index % 3 === 0 ? 'png' : 'jpg'}`);
    files.push(await writeSkinImage(file, { seed: 40 + index, width: 180 + 23 * index, height: 140 + 11 * index, format: index % 3 === 0 ? 'png' : 'jpeg' }));
  }
  return files;
}

async function libraryOf(root: string, photos: string): Promise<string> {
  const library = path.join(root, 'library');
  const imported = await runDermws('--library', library, 'import', photos, '--json');
  expect(imported.code).toBe(0);
  return library;
}

/** `dermws embed shard` in its own process, as a cluster task runs it. */
function shardProcess(planFolder: string, shard: number, out: string, extra: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(
    process.execPath,
    [path.join(repoRoot, 'bin', 'dermws.js'), 'embed', 'shard', planFolder, '--shard', String(shard), '--out', out, '--json', ...extra],
    {
      env: { ...process.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

interface StoredRow {
  file_sha256: string;
  model_sha256: string;
  dim: number;
  vector: Buffer;
}

function storedEmbeddings(library: string): StoredRow[] {
  const db = new Database(path.join(library, 'library.sqlite'), { readonly: true });
  try {
    return db
      .prepare(
        'SELECT i.file_sha256, e.model_sha256, e.dim, e.vector FROM embeddings e JOIN images i ON i.id = e.image_id WHERE e.model_id = ? ORDER BY i.file_sha256',
      )
      .all(modelId) as StoredRow[];
  } finally {
    db.close();
  }
}

function storedModel(library: string): unknown {
  const db = new Database(path.join(library, 'library.sqlite'), { readonly: true });
  try {
    return db.prepare('SELECT id, display_name, dim, sha256, source, preprocessing FROM embedding_models WHERE id = ?').get(modelId);
  } finally {
    db.close();
  }
}

function embeddingCount(library: string): number {
  return storedEmbeddings(library).length;
}

async function plan(library: string, out: string, shardSize: number, extra: string[] = []) {
  const planned = await runDermws(
    '--library',
    library,
    'embed',
    'plan',
    '--model',
    modelId,
    '--shard-size',
    String(shardSize),
    '--out',
    out,
    '--json',
    ...extra,
  );
  expect(planned.code).toBe(0);
  return planned.json as { planId: string; images: number; shards: number; root: string; planFolder: string };
}

describe('embedding on a cluster: plan → shards → merge', () => {
  it('gives the library bit-identical vectors to a local dermws embed; a rerun adds nothing; the index is updated incrementally', async () => {
    const root = tempFolder();
    const photos = path.join(root, 'photos');
    await writePhotos(photos, 7);

    const local = await libraryOf(path.join(root, 'local'), photos);
    const embedded = await runDermws('--library', local, 'embed', '--model', modelId, '--json');
    expect(embedded.code).toBe(0);
    expect(embedded.json).toMatchObject({ embedded: 7, provider: 'cpu' });

    const cluster = await libraryOf(path.join(root, 'cluster'), photos);
    const planFolder = path.join(root, 'plan');
    const planned = await plan(cluster, planFolder, 4);
    expect(planned).toMatchObject({ images: 7, shards: 2, root: photos });
    const planJson = JSON.parse(fs.readFileSync(path.join(planFolder, 'plan.json'), 'utf8'));
    expect(planJson.shards[0].images[0]).toEqual({
      key: expect.stringMatching(/^(arm|back)\/case \d\.(png|jpg)$/),
      imageId: expect.any(Number),
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      bytes: expect.any(Number),
    });
    expect(fs.existsSync(path.join(planFolder, 'model', `${modelId}.onnx`))).toBe(true);

    // Two shards at once, each in its own process, into one output folder.
    const out = path.join(root, 'out');
    // Shard 0 runs batches of 3 (the local embed used 8): batch composition must not change a vector.
    const [first, second] = await Promise.all([shardProcess(planFolder, 0, out, ['--batch-size', '3']), shardProcess(planFolder, 1, out)]);
    expect(first.code, first.stderr).toBe(0);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ status: 'success', shard: 0, images: 4, embedded: 4, provider: 'cpu', batchSize: 3 });
    expect(JSON.parse(second.stdout)).toMatchObject({ status: 'success', shard: 1, images: 3, embedded: 3 });
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'shard-1.json'), 'utf8'));
    expect(manifest).toMatchObject({
      planId: planned.planId,
      shard: 1,
      model: { id: modelId, dim: 1280 },
      counts: { images: 3, embedded: 3, failed: 0 },
      failures: [],
    });
    expect(fs.readdirSync(out).filter((name) => name.includes('.partial'))).toEqual([]);

    // A finished shard is skipped when its task runs again.
    const again = await shardProcess(planFolder, 1, out);
    expect(JSON.parse(again.stdout)).toMatchObject({ status: 'skipped', embedded: 3 });

    // Merge only shard 0 first (shard 1 "still running"), then build the index.
    const partial = path.join(root, 'out-partial');
    fs.mkdirSync(partial);
    for (const name of ['plan.json', 'shard-0.npz', 'shard-0.json']) fs.copyFileSync(path.join(out, name), path.join(partial, name));
    const firstMerge = await runDermws('--library', cluster, 'embeddings', 'import', partial, '--json');
    expect(firstMerge.code).toBe(1);
    expect(firstMerge.json).toMatchObject({
      status: 'partial',
      stored: 4,
      missing: [{ shard: 1, reason: expect.stringContaining('shard-1.json') }],
      refused: [],
      index: null,
    });
    const core = createCore({ libraryFolder: cluster });
    try {
      await core.index.ensureReady(modelId);
      expect(core.index.size(modelId)).toBe(4);
    } finally {
      core.close();
    }

    const merged = await runDermws('--library', cluster, 'embeddings', 'import', out, '--json');
    expect(merged.code, merged.stdout).toBe(0);
    expect(merged.json).toMatchObject({
      status: 'success',
      shards: 2,
      stored: 3,
      alreadyStored: 4,
      missing: [],
      refused: [],
      failures: [],
      index: { folded: 3, rebuilt: false, indexed: 7 },
    });

    const rerun = await runDermws('--library', cluster, 'embeddings', 'import', out, '--json');
    expect(rerun.code).toBe(0);
    expect(rerun.json).toMatchObject({ stored: 0, alreadyStored: 7, index: null });

    // Library state equals the local embed: same model record, same rows, the same bytes in every vector.
    expect(storedModel(cluster)).toEqual(storedModel(local));
    const fromCluster = storedEmbeddings(cluster);
    const fromLocal = storedEmbeddings(local);
    expect(fromCluster).toHaveLength(7);
    expect(fromCluster.map((row) => row.file_sha256)).toEqual(fromLocal.map((row) => row.file_sha256));
    fromCluster.forEach((row, index) => {
      expect(row.model_sha256).toBe(fromLocal[index]!.model_sha256);
      expect(row.dim).toBe(1280);
      expect(Buffer.compare(row.vector, fromLocal[index]!.vector), `vector of ${row.file_sha256}`).toBe(0);
    });
    // Real model output: post-ReLU features with zeros, not a constant.
    const values = new Float32Array(new Uint8Array(fromCluster[0]!.vector).buffer);
    expect(values.some((value) => value === 0)).toBe(true);
    expect(Math.max(...values)).toBeGreaterThan(0);

    // The index saw the three new vectors (incrementally, not a rebuild) and now holds all seven.
    const after = createCore({ libraryFolder: cluster });
    try {
      expect((await after.index.status(modelId)).state).toBe('ready');
      await after.index.ensureReady(modelId);
      expect(after.index.size(modelId)).toBe(7);
    } finally {
      after.close();
    }
  });

  it('refuses an image whose file changed after the plan, and reports images the worker could not read; the rest is stored', async () => {
    const root = tempFolder();
    const photos = path.join(root, 'photos');
    const files = await writePhotos(photos, 4);
    const library = await libraryOf(root, photos);
    const planFolder = path.join(root, 'plan');
    await plan(library, planFolder, 10);
    // Same name, different pixels: the worker must not embed it as if it were the library's image.
    await writeSkinImage(files[1]!, { seed: 999, width: 203, height: 151 });
    fs.rmSync(files[2]!);

    const out = path.join(root, 'out');
    const shard = await runDermws('embed', 'shard', planFolder, '--shard', '0', '--out', out, '--json');
    expect(shard.code).toBe(0);
    expect(shard.json).toMatchObject({ status: 'partial', embedded: 2 });
    const reasons = Object.fromEntries((shard.json.failed as Array<{ key: string; reason: string }>).map((failure) => [failure.key, failure.reason]));
    expect(reasons['back/case 1.jpg']).toMatch(/case 1\.jpg: the file changed since the plan was written \(sha256 [0-9a-f]{12}…, the plan has [0-9a-f]{12}…\)/);
    expect(reasons['arm/case 2.jpg']).toMatch(/case 2\.jpg: cannot be read on this machine \(ENOENT\)/);

    const merged = await runDermws('--library', library, 'embeddings', 'import', out);
    expect(merged.code).toBe(1);
    expect(merged.stdout).toMatch(/failed {3}shard 0 back\/case 1\.jpg: .*changed since the plan/);
    expect(merged.stdout).toMatch(/stored 2 new embeddings from 1 of 1 shard\(s\).*2 images failed/);
    expect(embeddingCount(library)).toBe(2);

    // A plan of the two images left: both fail on the worker, and the shard is still merged (as failures).
    const retryPlan = path.join(root, 'retry-plan');
    expect((await plan(library, retryPlan, 10)).images).toBe(2);
    const retryOut = path.join(root, 'retry-out');
    const allFailed = await runDermws('embed', 'shard', retryPlan, '--shard', '0', '--out', retryOut, '--json');
    expect(allFailed.code).toBe(0);
    expect(allFailed.json).toMatchObject({ status: 'partial', embedded: 0 });
    const mergedFailures = await runDermws('--library', library, 'embeddings', 'import', retryOut, '--json');
    expect(mergedFailures.json).toMatchObject({ status: 'partial', stored: 0, refused: [], merged: [{ shard: 0, stored: 0, failed: 2 }] });
    expect(mergedFailures.json.failures).toHaveLength(2);
  });

  it('refuses a damaged shard, a shard of another plan and a shard made with another model, naming the file; nothing of them is stored', async () => {
    const root = tempFolder();
    const photos = path.join(root, 'photos');
    await writePhotos(photos, 6);
    const library = await libraryOf(root, photos);
    const planFolder = path.join(root, 'plan');
    const planned = await plan(library, planFolder, 2);
    expect(planned.shards).toBe(3);
    const out = path.join(root, 'out');
    for (const shard of [0, 1, 2]) expect((await runDermws('embed', 'shard', planFolder, '--shard', String(shard), '--out', out, '--json')).code).toBe(0);

    // Shard 0: a byte flipped inside the npz.
    const npz = path.join(out, 'shard-0.npz');
    const bytes = fs.readFileSync(npz);
    bytes[bytes.length >> 1] ^= 0xff;
    fs.writeFileSync(npz, bytes);
    // Shard 1: replaced by shard 1 of another plan of the same library.
    const otherPlan = path.join(root, 'other-plan');
    const other = await plan(library, otherPlan, 2);
    const otherOut = path.join(root, 'other-out');
    expect((await runDermws('embed', 'shard', otherPlan, '--shard', '1', '--out', otherOut, '--json')).code).toBe(0);
    for (const suffix of ['npz', 'json']) fs.copyFileSync(path.join(otherOut, `shard-1.${suffix}`), path.join(out, `shard-1.${suffix}`));
    // Shard 2: its manifest claims another model file.
    const manifestFile = path.join(out, 'shard-2.json');
    const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
    manifest.model.sha256 = 'a'.repeat(64);
    fs.writeFileSync(manifestFile, JSON.stringify(manifest));

    const merged = await runDermws('--library', library, 'embeddings', 'import', out, '--json');
    expect(merged.code).toBe(1);
    expect(merged.json).toMatchObject({ status: 'partial', stored: 0, merged: [] });
    const refused = merged.json.refused as Array<{ shard: number; file: string; reason: string }>;
    expect(refused.map((entry) => [entry.shard, entry.file])).toEqual([
      [0, npz],
      [1, path.join(out, 'shard-1.json')],
      [2, manifestFile],
    ]);
    expect(refused[0]!.reason).toMatch(/shard-0\.npz: the file does not match its manifest .*damaged or was replaced/);
    expect(refused[1]!.reason).toContain(`belongs to another plan (${other.planId}`);
    expect(refused[2]!.reason).toMatch(/made with model nsfwjs-mobilenet-v2 \(sha256 aaaaaaaaaaaa…\); the plan's model is/);
    expect(embeddingCount(library)).toBe(0);

    // Another library refuses the whole plan before reading any shard.
    const stranger = await libraryOf(path.join(root, 'stranger'), photos);
    const foreign = await runDermws('--library', stranger, 'embeddings', 'import', otherOut, '--json');
    expect(foreign.code).toBe(2);
    expect(foreign.json.error.message).toContain(`${path.join(otherOut, 'plan.json')} was written for another library`);
    expect(embeddingCount(stranger)).toBe(0);
  });

  it('cancels a merge between shards and a shard between batches without half-written results; running again completes them', async () => {
    const root = tempFolder();
    const photos = path.join(root, 'photos');
    await writePhotos(photos, 4);
    const library = await libraryOf(root, photos);
    const planFolder = path.join(root, 'plan');
    await plan(library, planFolder, 2);
    const out = path.join(root, 'out');

    const stopShard = new AbortController();
    stopShard.abort();
    const cancelledShard = await runShard({ planFolder, shard: 0, outFolder: out, signal: stopShard.signal, runtimeOptions: { providers: ['cpu'] } });
    expect(cancelledShard.status).toBe('cancelled');
    expect(fs.existsSync(path.join(out, 'shard-0.npz')) || fs.existsSync(path.join(out, 'shard-0.json'))).toBe(false);
    for (const shard of ['0', '1']) expect((await runDermws('embed', 'shard', planFolder, '--shard', shard, '--out', out, '--json')).code).toBe(0);

    const core = createCore({ libraryFolder: library });
    try {
      const controller = new AbortController();
      const progress: number[] = [];
      const cancelled = await core.cluster.importResults(out, {
        signal: controller.signal,
        onProgress: (event) => {
          progress.push(event.done);
          if (event.done === 1) controller.abort();
        },
      });
      expect(cancelled).toMatchObject({ status: 'cancelled', stored: 2, merged: [{ shard: 0, stored: 2 }] });
      expect(progress).toContain(1);
      expect(embeddingCount(library)).toBe(2);
      const resumed = await core.cluster.importResults(out);
      expect(resumed).toMatchObject({ status: 'success', stored: 2, alreadyStored: 2 });
    } finally {
      core.close();
    }
    expect(embeddingCount(library)).toBe(4);
  });

  it('names the file and the problem for bad input: not a plan, shard out of range, unwritable output, model missing on the worker', async () => {
    const root = tempFolder();
    const photos = path.join(root, 'photos');
    await writePhotos(photos, 3);
    const library = await libraryOf(root, photos);
    const planFolder = path.join(root, 'plan');
    await plan(library, planFolder, 2);

    const empty = path.join(root, 'empty');
    fs.mkdirSync(empty);
    const notPlan = await runDermws('embed', 'shard', empty, '--shard', '0', '--out', path.join(root, 'o1'), '--json');
    expect(notPlan.code).toBe(2);
    expect(notPlan.json.error.message).toBe(`${empty} is not an embedding plan: it has no plan.json (write one with \`dermws embed plan\`).`);
    fs.writeFileSync(path.join(empty, 'plan.json'), JSON.stringify({ format: 'dermws-embedding-plan', version: 1, planId: 'x' }));
    const badField = await runDermws('embed', 'shard', empty, '--shard', '0', '--out', path.join(root, 'o1'), '--json');
    expect(badField.json.error.message).toMatch(/plan\.json: field planId: must be a UUID/);

    const outOfRange = await runDermws('embed', 'shard', planFolder, '--shard', '2', '--out', path.join(root, 'o2'), '--json');
    expect(outOfRange.code).toBe(2);
    expect(outOfRange.json.error.message).toBe(`Shard 2 is out of range: the plan ${path.join(planFolder, 'plan.json')} has 2 shard(s), numbered 0 to 1.`);

    const aFile = path.join(root, 'a-file');
    fs.writeFileSync(aFile, 'not a folder');
    const unwritable = await runDermws('embed', 'shard', planFolder, '--shard', '0', '--out', path.join(aFile, 'out'), '--json');
    expect(unwritable.code).toBe(2);
    expect(unwritable.json.error.message).toMatch(
      new RegExp(`The output folder ${path.join(aFile, 'out').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} cannot be created: ENOTDIR`),
    );

    fs.rmSync(path.join(planFolder, 'model', `${modelId}.onnx`));
    const noModel = await runDermws('embed', 'shard', planFolder, '--shard', '0', '--out', path.join(root, 'o3'), '--json');
    expect(noModel.code).toBe(2);
    expect(noModel.json.error.message).toContain(`The model file ${path.join(planFolder, 'model', `${modelId}.onnx`)} does not exist on this machine`);
    expect(fs.existsSync(path.join(root, 'o3', 'shard-0.npz'))).toBe(false);

    const notAnOutput = await runDermws('--library', library, 'embeddings', 'import', empty, '--json');
    expect(notAnOutput.code).toBe(2);
    expect(embeddingCount(library)).toBe(0);

    const unknownModel = await runDermws(
      '--library',
      library,
      'embed',
      'plan',
      '--model',
      'no-such-model',
      '--shard-size',
      '2',
      '--out',
      path.join(root, 'plan-3'),
      '--json',
    );
    expect(unknownModel.json.error.message).toMatch(/^No model with id "no-such-model"/);
    const badBatch = await runDermws('embed', 'shard', planFolder, '--shard', '0', '--out', path.join(root, 'o4'), '--batch-size', '0', '--json');
    expect(badBatch.json.error.message).toBe('--batch-size must be a whole number from 1 to 1024; got "0".');

    const planTwice = await runDermws('--library', library, 'embed', 'plan', '--shard-size', '2', '--out', planFolder, '--json');
    expect(planTwice.code).toBe(2);
    expect(planTwice.json.error.message).toContain(`${planFolder} already holds a plan`);
    const outsideRoot = await runDermws(
      '--library',
      library,
      'embed',
      'plan',
      '--shard-size',
      '2',
      '--out',
      path.join(root, 'plan-2'),
      '--root',
      path.join(photos, 'arm'),
      '--json',
    );
    expect(outsideRoot.code).toBe(2);
    expect(outsideRoot.json.error.message).toMatch(/case 1\.jpg\) is not inside the root .*arm; give a --root that holds every image/);
  });
});
