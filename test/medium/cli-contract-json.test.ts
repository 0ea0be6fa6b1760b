import fs from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contract, exportReportSchema, importReportSchema, libraryCheckReportSchema, type CallName } from '../../electron/common/contract.js';
import { runDermws } from '../fixtures/cli-runner.js';
import { caseLabelledLibrary, quickProbeTrainArgs } from '../fixtures/library-fixture.js';
import { writeSkinImage } from '../fixtures/skin-images.js';
import { writeTinyEncoder } from '../fixtures/test-encoders.js';
import { tempFolder } from './import-helpers.js';

/**
 * `dermws … --json` prints the output of the contract call the command corresponds to (docs/cli.md),
 * so a script and the app read one documented shape. Each command's stdout must parse with that
 * call's output schema AND parsing must drop nothing: zod objects strip keys they do not know, so a
 * command printing a shape of its own (an extra field, a bare array) fails here.
 */

const modelId = 'contract-json-model';
const dim = 12;
const cases = 24;

let root: string;
let scratch: string;
let imageIds: number[];

let removeLibrary: () => void;

beforeAll(() => {
  // Two images per case; the label "raised" follows the first coordinate of the case's vector, so a probe can learn it.
  const made = caseLabelledLibrary({
    prefix: 'dermws-contract-json-',
    modelId,
    displayName: 'contract test',
    modelSha256: 'b'.repeat(64),
    dim,
    cases,
    seed: 11,
    metadataOf: (index) => ({ fitzpatrick_self: `FST${1 + (Math.floor(index / 2) % 6)}` }),
  });
  root = made.root;
  imageIds = made.imageIds;
  removeLibrary = made.remove;
  scratch = tempFolder('dermws-contract-json-scratch-');
});

afterAll(() => {
  removeLibrary();
  fs.rmSync(scratch, { recursive: true, force: true });
});

const run = (...args: string[]) => runDermws('--library', root, '--json', ...args);

/** Parses a command's JSON with the schema and requires the parse to keep every field it printed. */
function expectShape(schema: z.ZodType, printed: unknown): void {
  const parsed = schema.safeParse(printed);
  if (!parsed.success) throw new Error(`output does not match the contract: ${parsed.error.message}\n${JSON.stringify(printed).slice(0, 400)}`);
  expect(parsed.data).toEqual(printed);
}

async function expectCallOutput(name: CallName, ...args: string[]) {
  const result = await run(...args);
  // An error prints { error: { code, message } }; probeReport's own `error` field is a string or null.
  expect(result.json?.error?.code, `dermws ${args.join(' ')}: ${JSON.stringify(result.json?.error)}`).toBeUndefined();
  expectShape(contract[name].output, result.json);
  return result.json;
}

describe('dermws --json prints contract outputs', () => {
  it('probe train, list and report print probeReport and probeList', async () => {
    const trained = await expectCallOutput('probeReport', ...quickProbeTrainArgs(modelId));
    expect(trained.status).toBe('completed');
    const listed = await expectCallOutput('probeList', 'probe', 'list');
    expect(listed.runs.map((entry: { id: number }) => entry.id)).toContain(trained.id);
    const report = await expectCallOutput('probeReport', 'probe', 'report', String(trained.id));
    expect(report.metrics.overall.perLabel[0].label).toBe('raised');
  });

  it('taxonomy, sessions, suggestions, agreement and adjudication print their calls', async () => {
    await expectCallOutput('taxonomyList', 'taxonomy', 'list', '--kind', 'body_site');
    const created = await expectCallOutput(
      'sessionCreate',
      'session',
      'create',
      '--name',
      'contract',
      '--annotator',
      'dr-a',
      '--images',
      imageIds.slice(0, 4).join(','),
      '--order',
      'random',
      '--seed',
      '4',
    );
    expect(created.seed).toBe(4);
    const id = String(created.id);
    const next = await expectCallOutput('sessionNext', 'session', 'next', id);
    const current = String(next.current.imageId);
    await expectCallOutput('sessionRecord', 'session', 'record', id, current, '--label', 'fitzpatrick=IV', '--seconds', '3');
    await expectCallOutput('sessionPrevious', 'session', 'previous', id);
    await expectCallOutput('sessionSkip', 'session', 'skip', id);
    await expectCallOutput('sessionPause', 'session', 'pause', id);
    await expectCallOutput('sessionNext', 'session', 'resume', id);
    await expectCallOutput('sessionSetSuggestions', 'session', 'suggestions', id, 'blind');
    const sessions = await expectCallOutput('sessionList', 'session', 'list');
    expect(sessions.sessions).toHaveLength(1);

    const suggested = await expectCallOutput('labelSuggestions', 'label', 'suggest', current, '--model', modelId, '--kind', 'condition');
    expect(suggested.modelId).toBe(modelId);

    expect((await run('label', current, '--kind', 'fitzpatrick', '--value', 'II', '--annotator', 'dr-b')).code).toBe(0);
    const shown = await expectCallOutput('labelsOfImage', 'label', current);
    const fitzpatrick = shown.labels.filter((entry: { kind: string }) => entry.kind === 'fitzpatrick');
    expect(fitzpatrick.map((entry: { annotator: string; value: string }) => `${entry.annotator}:${entry.value}`).sort()).toEqual(['dr-a:IV', 'dr-b:II']);
    const agreement = await expectCallOutput('agreementReport', 'agreement', '--kind', 'fitzpatrick');
    expect(agreement.disagreements).toHaveLength(1);
    // A multi-valued kind also reports agreement per value; the CLI prints it because the contract carries it.
    for (const annotator of ['dr-a', 'dr-b']) {
      expect((await run('label', current, '--kind', 'body_site', '--value', 'HEAD_OR_NECK', '--annotator', annotator)).code).toBe(0);
    }
    const perValue = await expectCallOutput('agreementReport', 'agreement', '--kind', 'body_site');
    expect(perValue.kinds[0].perValue).toEqual([expect.objectContaining({ value: 'HEAD_OR_NECK' })]);
    const adjudicated = await expectCallOutput('adjudicate', 'adjudicate', current, '--kind', 'fitzpatrick', '--value', 'III', '--annotator', 'dr-lead');
    expect(adjudicated).toEqual({ changed: 1, values: ['III'] });
  });

  it('import, check and export print their jobs’ result schemas', async () => {
    const photos = path.join(scratch, 'photos');
    for (let index = 0; index < 2; index++) await writeSkinImage(path.join(photos, `photo-${index}.jpg`), { seed: 40 + index, width: 320, height: 240 });
    const imported = await run('import', photos);
    expect(imported.code).toBe(0);
    expectShape(importReportSchema, imported.json);
    // The synthetic rows have no files, so the check finds problems (exit 1) and still prints its report.
    const checked = await run('check');
    expect(checked.json.ok).toBe(false);
    expectShape(libraryCheckReportSchema, checked.json);
    const exported = await run('export', path.join(scratch, 'export'), '--model', modelId);
    expect(exported.json.files.length).toBeGreaterThan(0);
    expectShape(exportReportSchema, exported.json);
  });

  it('info and qc print libraryOverview, qualityOverview and qualitySetThresholds', async () => {
    const info = await expectCallOutput('libraryOverview', 'info');
    // The synthetic images, plus what the import above added (the tests of this file run in order).
    expect(info.images).toBeGreaterThanOrEqual(cases * 2);
    expect(info).toMatchObject({ deletedImages: 0, batchCount: info.batches.length });
    expect(info.cases).toBeGreaterThanOrEqual(cases);
    expect(info.schemaVersion).toBeGreaterThan(0);
    expect(Object.values(info.formats).reduce((sum: number, count) => sum + (count as number), 0)).toBe(info.images);
    expect(info.embeddings).toEqual([{ modelId, count: cases * 2 }]);

    const overview = await expectCallOutput('qualityOverview', 'qc');
    expect(overview.images).toBe(info.images);
    expect(await expectCallOutput('qualityOverview', 'qc', '--reflag')).toEqual(overview);
    const before = overview.thresholds.lowResolutionBelow;
    const set = await expectCallOutput('qualitySetThresholds', 'qc', '--set', `lowResolutionBelow=${before + 1}`);
    expect(set.changed).toEqual([{ name: 'lowResolutionBelow', from: before, to: before + 1 }]);
    expect(set.thresholds.lowResolutionBelow).toBe(before + 1);
    expect(set.images).toBe(info.images);
    // Bad input still fails by name before anything is stored.
    const unknown = await run('qc', '--set', 'sharpness=1');
    expect(unknown.code).toBe(2);
    expect(unknown.json.error.message).toMatch(/sharpness/);
    expect((await expectCallOutput('qualityOverview', 'qc')).thresholds.lowResolutionBelow).toBe(before + 1);
  });

  it('search and duplicates print searchSimilar and duplicatesFind/Resolve/Undo, naming files but never their folders', async () => {
    const query = String(imageIds[0]);
    const found = await run('search', query, '--model', modelId, '-k', '5', '--where', 'flag!=blurry');
    expect(found.json?.error).toBeUndefined();
    expectShape(contract.searchSimilar.output, found.json);
    expect(found.json.results).toHaveLength(5);
    expect(found.json.where).toEqual(['flag!=blurry']);
    // The query image is its own nearest neighbour unless --exclude-self leaves it out, as before.
    expect(found.json.results[0].imageId).toBe(imageIds[0]);
    const excluded = await expectCallOutput('searchSimilar', 'search', query, '--model', modelId, '-k', '5', '--exclude-self', '--exact');
    expect(excluded.completeness.method).toBe('exact');
    expect(excluded.results.map((hit: { imageId: number }) => hit.imageId)).not.toContain(imageIds[0]);
    // The synthetic images lie at /synthetic/image-N.jpg with thumbnails under thumbnails/: cards name the file only.
    expect(found.json.results[0].fileName).toBe(`image-${imageIds[0]}.jpg`);
    expect(found.stdout).not.toMatch(/\/synthetic\/|thumbnails\//);
    // A query that is neither an image id nor a file is still a clear error.
    expect((await run('search', path.join(scratch, 'absent.png'), '--model', modelId)).json.error.message).toMatch(/does not exist/);

    const duplicates = await run('duplicates', '--model', modelId, '--threshold', '0.9');
    expect(duplicates.json?.error).toBeUndefined();
    expectShape(contract.duplicatesFind.output, duplicates.json);
    expect(duplicates.json.groups.length).toBeGreaterThan(0);
    expect(duplicates.stdout).not.toMatch(/\/synthetic\/|thumbnails\//);
    const [keep, other] = duplicates.json.groups[0].imageIds as number[];
    const resolved = await expectCallOutput('duplicatesResolve', 'duplicates', '--keep', String(keep), '--mark', String(other));
    expect(resolved).toEqual({ changed: 1, changedImages: [other] });
    const undone = await expectCallOutput('duplicatesUndo', 'duplicates', '--unflag', String(other));
    expect(undone).toEqual({ changed: 1, changedImages: [other] });
  });

  it('label set, remove, undo, redo and history print labelSet, labelRemove, labelUndo, labelRedo and labelHistory', async () => {
    const image = String(imageIds[5]);
    const set = await expectCallOutput('labelSet', 'label', image, '--kind', 'condition', '--value', 'eczema', '--confidence', '3', '--annotator', 'dr-h');
    expect(set.changes).toEqual([
      { imageId: imageIds[5], kind: 'condition', origin: 'manual', annotator: 'dr-h', before: [], after: [{ value: 'eczema', confidence: 3 }] },
    ]);
    expect(set.labels).toContainEqual({ kind: 'condition', value: 'eczema', confidence: 3, annotator: 'dr-h', origin: 'manual' });
    const removed = await expectCallOutput('labelRemove', 'label', image, '--kind', 'condition', '--annotator', 'dr-h', '--remove');
    expect(removed.changes[0]).toMatchObject({ before: [{ value: 'eczema', confidence: 3 }], after: [] });
    expect(removed.labels.filter((entry: { annotator: string | null }) => entry.annotator === 'dr-h')).toEqual([]);
    const undone = await expectCallOutput('labelUndo', 'label', 'undo', '--annotator', 'dr-h');
    expect(undone).toMatchObject({ canUndo: true, canRedo: true });
    expect(undone.changes[0]).toMatchObject({ before: [], after: [{ value: 'eczema', confidence: 3 }] });
    const redone = await expectCallOutput('labelRedo', 'label', 'redo', '--annotator', 'dr-h');
    expect(redone.changes[0]).toMatchObject({ before: [{ value: 'eczema', confidence: 3 }], after: [] });
    const nothing = await expectCallOutput('labelRedo', 'label', 'redo', '--annotator', 'dr-h');
    expect(nothing).toEqual({ description: null, canUndo: true, canRedo: false, changes: [] });
    const history = await expectCallOutput('labelHistory', 'label', 'history', '--image', image);
    expect(history.entries.map((entry: { action: string }) => entry.action)).toEqual(['set', 'remove', 'undo', 'redo']);
    expect(history.entries[0]).toMatchObject({ annotator: 'dr-h', kind: 'condition', after: [{ value: 'eczema', confidence: 3 }] });
    const noSession = await run('label', image, '--kind', 'condition', '--value', 'eczema', '--annotator', 'dr-h', '--session', '999999');
    expect(noSession.json.error).toMatchObject({ code: 'not-found', message: expect.stringContaining('999999') });
    const missing = await run('label', 'history', '--image', '999999');
    expect(missing.code).toBe(2);
    expect(missing.json.error).toMatchObject({ code: 'not-found' });
    expect(missing.json.error.message).toMatch(/999999/);
  });

  it('models add, list and check print modelsAdd, modelsList and modelsCheck, without file paths', async () => {
    const models = path.join(scratch, 'models');
    await writeTinyEncoder({ folder: models, id: 'tiny-contract', size: 32, dim: 16, seed: 3 });
    const previousProviders = process.env.DERMWS_EXECUTION_PROVIDERS;
    process.env.DERMWS_EXECUTION_PROVIDERS = 'cpu';
    try {
      const added = await run('models', 'add', path.join(models, 'tiny-contract.onnx'), '--manifest', path.join(models, 'tiny-contract.manifest.json'));
      expect(added.json?.error).toBeUndefined();
      expectShape(contract.modelsAdd.output, added.json);
      expect(added.json).toMatchObject({ id: 'tiny-contract', source: 'library', dim: 16, provider: 'cpu', attempts: [{ provider: 'cpu' }] });
      expect(added.json.sampleNorms.length).toBeGreaterThan(0);
      expect(added.stdout).not.toContain(scratch);
      expect(added.stdout).not.toContain(root);

      const listed = await run('models', 'list');
      expectShape(contract.modelsList.output, listed.json);
      expect(listed.json.models.find((model: { id: string }) => model.id === 'tiny-contract')).toMatchObject({
        source: 'library',
        dim: 16,
        embedded: 0,
        inputLayout: 'NHWC',
        fileExists: true,
      });
      expect(listed.json.stored).toContainEqual({
        id: modelId,
        displayName: 'contract test',
        source: 'imported',
        dim,
        sha256: 'b'.repeat(64),
        images: cases * 2,
      });
      expect(listed.stdout).not.toContain(root);

      const checked = await expectCallOutput('modelsCheck', 'models', 'check', 'tiny-contract');
      expect(checked.inputs[0].name).toBe('image');
      expect(checked.outputs[0].name).toBe('embedding');
      // A photo file as the query (embedded on the fly): the two photos imported above are the images this model embeds
      // (the synthetic rows have no files, so the embedding reports them failed and goes on).
      await run('embed', '--model', 'tiny-contract');
      const photo = path.join(scratch, 'photos', 'photo-0.jpg');
      const byFile = await expectCallOutput('searchSimilar', 'search', photo, '--model', 'tiny-contract', '-k', '2');
      expect(byFile.results.map((hit: { fileName: string }) => hit.fileName).sort()).toEqual(['photo-0.jpg', 'photo-1.jpg']);
      expect(byFile.results[0]).toMatchObject({ fileName: 'photo-0.jpg', similarity: expect.closeTo(1, 5) });
      expect(JSON.stringify(byFile)).not.toContain(scratch);
      const unknown = await run('models', 'check', 'no-such-model');
      expect(unknown.code).toBe(2);
      expect(unknown.json.error.message).toMatch(/no-such-model/);
    } finally {
      if (previousProviders === undefined) delete process.env.DERMWS_EXECUTION_PROVIDERS;
      else process.env.DERMWS_EXECUTION_PROVIDERS = previousProviders;
    }
  });
});
