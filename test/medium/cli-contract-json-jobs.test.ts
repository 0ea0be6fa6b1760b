import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliOutputs, type CliOutputName } from '../../electron/cli/cli-outputs.js';
import { clusterImportReportSchema, datasetImportReportSchema, demoReportSchema, embedReportSchema } from '../../electron/common/contract.js';
import { SeededRandom } from '../../electron/common/seeded-random.js';
import { formatCsv } from '../../electron/core/csv/csv.js';
import { writeNpy } from '../../electron/core/embeddings/npy-format.js';
import { writeNpz } from '../../electron/core/embeddings/npz.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { openLibrary } from '../../electron/core/library/library.js';
import { runDermwsProcess, type CliProcessRun } from '../fixtures/cli-process.js';
import { flatNonNegativeVectors } from '../fixtures/clustered-vectors.js';
import { caseLabelledLibrary, quickProbeTrainArgs, seededGaussian } from '../fixtures/library-fixture.js';
import { writeScinDataset } from '../fixtures/scin-dataset.js';
import { writeSkinImage } from '../fixtures/skin-images.js';

/**
 * `dermws … --json` of the commands that run the app's jobs (embed, demo, a cluster merge, dataset
 * imports) prints the job's result schema from the contract; the commands with no app call (session
 * stats, taxonomy import/remove, probe predict, probe report --predictions, models remove, index
 * status/rebuild, embeddings import of a file, embed plan/shard, bench search, serve's start-up line)
 * print their schema in electron/cli/cli-outputs.ts (docs/cli.md).
 * Each runs as its own process through bin/dermws.js, as a script would, and its stdout must parse
 * with the schema without losing a field.
 */

const repoRoot = path.resolve(import.meta.dirname, '../..');
const encoderId = 'nsfwjs-mobilenet-v2';
const env = {
  DERMWS_MODEL_CACHE: process.env.DERMWS_MODEL_CACHE ?? path.join(repoRoot, 'native-models', 'generated'),
  DERMWS_EXECUTION_PROVIDERS: 'cpu',
};

let scratch: string;

beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-cli-json-jobs-'));
});

const madeLibraries: Array<() => void> = [];

afterAll(() => {
  fs.rmSync(scratch, { recursive: true, force: true });
  for (const remove of madeLibraries) remove();
});

function dermws(...args: string[]): Promise<CliProcessRun> {
  return runDermwsProcess(args, env);
}

/** Parses a command's JSON with the schema and requires the parse to keep every field it printed. */
function expectShape(schema: z.ZodType, run: CliProcessRun, exitCode = 0): void {
  expect(run.json?.error, `dermws ${run.args.join(' ')}: ${run.stderr}${JSON.stringify(run.json?.error)}`).toBeUndefined();
  expect(run.code, `dermws ${run.args.join(' ')}: ${run.stderr}`).toBe(exitCode);
  const parsed = schema.safeParse(run.json);
  if (!parsed.success) throw new Error(`output does not match its schema: ${parsed.error.message}\n${run.stdout.slice(0, 400)}`);
  expect(parsed.data).toEqual(run.json);
}

const cliSchema = (name: CliOutputName) => cliOutputs[name];

/**
 * Starts `dermws serve` as its own process and resolves with what it printed once stdout holds one
 * whole JSON document (the start-up line), or once the process ends (after an error); `stop` sends SIGINT, as Ctrl+C
 * does, and resolves with the exit code.
 */
function startServe(args: string[]): Promise<{ run: CliProcessRun; stop(): Promise<number | null> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'dermws.js'), ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let settled = false;
    const exited = new Promise<number | null>((done) => child.on('close', (code) => done(code)));
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      return exited;
    };
    const settle = (code: number | null, json: unknown) => {
      if (settled) return;
      settled = true;
      resolve({ run: { args, code, stdout, stderr, json }, stop });
    };
    child.on('error', reject);
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      try {
        const json = JSON.parse(stdout) as { error?: unknown };
        // An error document is the last thing printed: the exit code follows.
        if (json.error === undefined) settle(null, json);
      } catch {
        // Not one whole document yet: wait for the rest of the line.
      }
    });
    void exited.then((code) => {
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      settle(code, json);
    });
  });
}

/** A library of 24 two-image cases with post-ReLU-like 12-d embeddings; "raised" follows the first coordinate, so a probe can learn it. Removed after the file's tests. */
function syntheticLibrary(): { root: string; imageIds: number[]; modelId: string } {
  const modelId = 'jobs-json-model';
  const made = caseLabelledLibrary({
    prefix: 'dermws-cli-json-synthetic-',
    modelId,
    displayName: 'jobs json test',
    modelSha256: 'c'.repeat(64),
    dim: 12,
    cases: 24,
    seed: 23,
  });
  madeLibraries.push(made.remove);
  return { root: made.root, imageIds: made.imageIds, modelId };
}

describe('dermws --json of jobs and of commands without an app call', () => {
  it('session stats, taxonomy import and remove, probe predict, index status and rebuild print their schemas', async () => {
    const { root, imageIds, modelId } = syntheticLibrary();
    const run = (...args: string[]) => dermws('--library', root, '--json', ...args);

    const created = await run('session', 'create', '--name', 'stats', '--annotator', 'dr-a', '--images', imageIds.slice(0, 3).join(','));
    expect(created.code).toBe(0);
    const next = await run('session', 'next', String(created.json.id));
    expect(
      (await run('session', 'record', String(created.json.id), String(next.json.current.imageId), '--label', 'fitzpatrick=IV', '--seconds', '2')).code,
    ).toBe(0);
    const stats = await run('session', 'stats', String(created.json.id));
    expectShape(cliSchema('sessionStats'), stats);
    expect(stats.json.labelCounts).toEqual({ fitzpatrick: { IV: 1 } });

    const taxonomyFile = path.join(scratch, 'taxonomy.csv');
    fs.writeFileSync(taxonomyFile, 'code,display_name,hotkey\nchilblains,Chilblains,x\n');
    const imported = await run('taxonomy', 'import', taxonomyFile, '--kind', 'condition');
    expectShape(cliSchema('taxonomyImport'), imported);
    expect(imported.json).toMatchObject({ added: 1, entries: 1 });
    const removed = await run('taxonomy', 'remove', 'condition', 'chilblains');
    expectShape(cliSchema('taxonomyRemove'), removed);
    expect(removed.json).toEqual({ removed: { kind: 'condition', code: 'chilblains' } });

    const trained = await run(...quickProbeTrainArgs(modelId));
    expect(trained.code).toBe(0);
    const predicted = await run('probe', 'predict', String(trained.json.id), '--images', imageIds.slice(0, 2).join(','));
    expectShape(cliSchema('probePredict'), predicted);
    expect(predicted.json.images.map((image: { imageId: number }) => image.imageId)).toEqual(imageIds.slice(0, 2));

    // The out-of-fold export: the file and its manifest are written where the report says.
    const exportFile = path.join(scratch, 'out-of-fold.csv');
    const exported = await run('probe', 'report', String(trained.json.id), '--predictions', exportFile);
    expectShape(cliSchema('probePredictionsExport'), exported);
    expect(exported.json).toMatchObject({ file: exportFile, format: 'csv', images: 48, labels: ['raised'] });
    expect(fs.readFileSync(exportFile, 'utf8').split('\n')[0]).toMatch(/raised/);
    expect(JSON.parse(fs.readFileSync(exported.json.manifestFile, 'utf8'))).toMatchObject({ run: expect.objectContaining({ id: trained.json.id }) });
    const unknownExport = await run('probe', 'report', '999', '--predictions', path.join(scratch, 'never.csv'));
    expect(unknownExport.code).toBe(2);
    expect(unknownExport.json.error.message).toMatch(/999/);
    expect(fs.existsSync(path.join(scratch, 'never.csv'))).toBe(false);

    const missing = await run('index', 'status');
    expectShape(cliSchema('indexStatus'), missing);
    expect(missing.json.indexes).toEqual([expect.objectContaining({ modelId, state: 'missing', databaseCount: 48 })]);
    const rebuilt = await run('index', 'rebuild');
    expectShape(cliSchema('indexRebuild'), rebuilt);
    expect(rebuilt.json.indexes).toEqual([expect.objectContaining({ status: 'success', modelId, elements: 48 })]);
    const ready = await run('index', 'status', '--model', modelId);
    expectShape(cliSchema('indexStatus'), ready);
    expect(ready.json.indexes[0].state).toBe('ready');

    // Bad input still gets a clear error naming what was wrong, as JSON.
    const unknownRun = await run('probe', 'predict', '999');
    expect(unknownRun.code).toBe(2);
    expect(unknownRun.json.error.message).toMatch(/999/);
    const unknownCode = await run('taxonomy', 'remove', 'condition', 'no-such-code');
    expect(unknownCode.code).toBe(2);
    expect(unknownCode.json.error.message).toMatch(/no-such-code/);
  });

  it('models remove prints its schema; an unknown model or one holding embeddings is refused by name', async () => {
    const { root, modelId } = syntheticLibrary();
    const library = openLibrary(root);
    new EmbeddingsRepository(library.db).registerModel({
      id: 'matched-nothing',
      displayName: 'an import that matched no image',
      dim: 4,
      sha256: 'd'.repeat(64),
      source: 'imported',
      preprocessing: null,
    });
    library.close();
    const run = (...args: string[]) => dermws('--library', root, '--json', ...args);

    const removed = await run('models', 'remove', 'matched-nothing', '--yes');
    expectShape(cliSchema('modelsRemove'), removed);
    expect(removed.json).toEqual({ removed: 'matched-nothing', source: 'imported' });

    const unknown = await run('models', 'remove', 'matched-nothing', '--yes');
    expect(unknown.code).toBe(2);
    expect(unknown.json.error).toMatchObject({ code: 'not-found', message: expect.stringContaining('"matched-nothing"') });
    const holding = await run('models', 'remove', modelId, '--yes');
    expect(holding.code).toBe(2);
    expect(holding.json.error).toMatchObject({ code: 'conflict', message: expect.stringMatching(new RegExp(`${modelId}.*48 embedding`)) });
  });

  it('embed plan, shard, the cluster merge, embed and embeddings import of a file print their schemas', async () => {
    const photos = path.join(scratch, 'photos');
    for (let index = 0; index < 3; index++) await writeSkinImage(path.join(photos, `photo-${index}.jpg`), { seed: 60 + index, width: 240, height: 180 });
    const library = path.join(scratch, 'photo-library');
    expect((await dermws('--library', library, 'import', photos, '--json')).code).toBe(0);

    const planFolder = path.join(scratch, 'plan');
    const planned = await dermws('--library', library, 'embed', 'plan', '--model', encoderId, '--shard-size', '2', '--out', planFolder, '--json');
    expectShape(cliSchema('embedPlan'), planned);
    expect(planned.json).toMatchObject({ modelId: encoderId, images: 3, shards: 2 });
    const out = path.join(scratch, 'shards');
    for (const shard of ['0', '1']) {
      const ran = await dermws('embed', 'shard', planFolder, '--shard', shard, '--out', out, '--json');
      expectShape(cliSchema('embedShard'), ran);
      expect(ran.json.status).toBe('success');
    }
    const merged = await dermws('--library', library, 'embeddings', 'import', out, '--json');
    expectShape(clusterImportReportSchema, merged);
    expect(merged.json).toMatchObject({ status: 'success', modelId: encoderId, stored: 3 });

    const later = path.join(scratch, 'later-photos');
    await writeSkinImage(path.join(later, 'photo-later.jpg'), { seed: 70, width: 240, height: 180 });
    expect((await dermws('--library', library, 'import', later, '--json')).code).toBe(0);
    const embedded = await dermws('--library', library, 'embed', '--model', encoderId, '--json');
    expectShape(embedReportSchema, embedded);
    expect(embedded.json).toMatchObject({ status: 'success', modelId: encoderId, total: 1, embedded: 1, provider: 'cpu' });

    // Precomputed 8-d vectors keyed by file name; one key matches no image (exit 1, still the full report).
    const npz = path.join(scratch, 'vectors.npz');
    const random = new SeededRandom(5);
    const vector = () => Float32Array.from({ length: 8 }, () => Math.max(0, seededGaussian(random)));
    writeNpz(npz, [
      ['photo-0.jpg', vector(), [8]],
      ['photo-1.jpg', vector(), [8]],
      ['not-in-library.jpg', vector(), [8]],
    ]);
    const fileImport = await dermws('--library', library, 'embeddings', 'import', npz, '--model', 'precomputed-8d', '--json');
    expectShape(cliSchema('embeddingsImport'), fileImport, 1);
    expect(fileImport.json).toMatchObject({ modelId: 'precomputed-8d', dim: 8, entries: 3, stored: 2, unmatched: ['not-in-library.jpg'] });
    const noModel = await dermws('--library', library, 'embeddings', 'import', npz, '--json');
    expect(noModel.code).toBe(2);
    expect(noModel.json.error.message).toMatch(/--model/);
  });

  it('dataset import-scin, import-csv and import-isic print datasetImportReportSchema', async () => {
    const dataset = await writeScinDataset(path.join(scratch, 'scin'), { cases: 5 });
    const library = path.join(scratch, 'scin-library');
    // The generated dataset carries deliberate faults: the import is partial (exit 1) and reports each by line.
    const scin = await dermws('--library', library, 'dataset', 'import-scin', dataset.root, '--json');
    expectShape(datasetImportReportSchema, scin, 1);
    expect(scin.json.dataset).toBe('scin');
    expect(scin.json.issues.length).toBeGreaterThan(0);

    const first = dataset.imagesOnDisk[0]!;
    const csv = path.join(scratch, 'extra.csv');
    fs.writeFileSync(
      csv,
      formatCsv([
        ['path', 'clinic'],
        [first, 'north'],
      ]),
    );
    const mapped = await dermws('--library', library, 'dataset', 'import-csv', csv, '--map', 'image=path,meta.clinic=clinic', '--json');
    expectShape(datasetImportReportSchema, mapped);
    expect(mapped.json).toMatchObject({ dataset: 'csv', images: { matched: 1 }, metadata: { set: 1 } });

    const isic = path.join(scratch, 'isic.csv');
    fs.writeFileSync(
      isic,
      formatCsv([
        ['isic_id', 'diagnosis'],
        [path.basename(first, path.extname(first)), 'nevus'],
      ]),
    );
    const isicImport = await dermws('--library', library, 'dataset', 'import-isic', isic, '--json');
    expectShape(datasetImportReportSchema, isicImport);
    expect(isicImport.json).toMatchObject({ dataset: 'isic', images: { matched: 1 } });
  });

  it('demo prints demoReportSchema, the demo job’s result', async () => {
    const demo = await dermws('--library', path.join(scratch, 'demo-library'), 'demo', '--no-embed', '--json');
    expectShape(demoReportSchema, demo);
    expect(demo.json).toMatchObject({ status: 'success', cases: 62, embedding: null, datasetImport: { dataset: 'scin' } });
  });

  it('serve prints its start-up line as its schema, with a URL that opens the app; a port in use or a bad --host is refused', async () => {
    const { root } = syntheticLibrary();
    const first = await startServe(['--library', root, '--json', 'serve', '--port', '0']);
    try {
      // Still running: the line comes once it listens, before Ctrl+C.
      expect(first.run.code, first.run.stderr).toBeNull();
      const parsed = cliSchema('serve').safeParse(first.run.json);
      if (!parsed.success) throw new Error(`output does not match its schema: ${parsed.error.message}\n${first.run.stdout}`);
      expect(parsed.data).toEqual(first.run.json);
      const { url, origin, port, host, library } = first.run.json;
      expect(host).toBe('127.0.0.1');
      expect(library).toBe(fs.realpathSync(root));
      expect(origin).toBe(`http://127.0.0.1:${port}`);
      // The token travels in the URL only, as before: the URL opens the app (traded for a cookie), the bare origin does not.
      expect(Object.keys(first.run.json).sort()).toEqual(['host', 'library', 'origin', 'port', 'url']);
      const opened = await fetch(url, { redirect: 'manual' });
      expect(opened.status).toBe(303);
      expect(opened.headers.get('set-cookie')).toMatch(/HttpOnly/);
      expect((await fetch(origin)).status).toBe(401);

      const taken = await startServe(['--library', root, '--json', 'serve', '--port', String(port)]);
      expect(taken.run.code).toBe(2);
      expect(taken.run.json.error).toMatchObject({ code: 'in-use', message: expect.stringContaining(`Port ${port}`) });
    } finally {
      expect(await first.stop()).toBe(0);
    }
    const badHost = await startServe(['--library', root, '--json', 'serve', '--host', 'not a host']);
    expect(badHost.run.code).toBe(2);
    expect(badHost.run.json.error.message).toMatch(/--host/);
  });

  it('bench search prints its schema', async () => {
    const dim = 16;
    const { data } = flatNonNegativeVectors({ count: 300, dim, clusters: 6, latentDim: 8, seed: 9 });
    const file = path.join(scratch, 'bench.npy');
    writeNpy(file, data, [300, dim]);
    const bench = await dermws('bench', 'search', '--vectors', file, '--json');
    expectShape(cliSchema('benchSearch'), bench);
    expect(bench.json).toMatchObject({ count: 300, dim, k: 10 });
    const tooMany = await dermws('bench', 'search', '--vectors', file, '--k', '0', '--json');
    expect(tooMany.code).toBe(2);
    expect(tooMany.json.error.message).toMatch(/--k/);
  });
});
