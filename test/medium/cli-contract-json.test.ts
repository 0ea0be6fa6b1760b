import fs from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contract, exportReportSchema, importReportSchema, libraryCheckReportSchema, type CallName } from '../../electron/common/contract.js';
import { SeededRandom } from '../../electron/common/seeded-random.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { runDermws } from '../fixtures/cli-runner.js';
import { createTestLibrary, insertSyntheticImages } from '../fixtures/library-fixture.js';
import { writeSkinImage } from '../fixtures/skin-images.js';
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

let library: ReturnType<typeof createTestLibrary>;
let root: string;
let scratch: string;
let imageIds: number[];

function gaussian(random: SeededRandom): number {
  return Math.sqrt(-2 * Math.log(1 - random.next())) * Math.cos(2 * Math.PI * random.next());
}

beforeAll(() => {
  library = createTestLibrary('dermws-contract-json-');
  root = library.paths.root;
  scratch = tempFolder('dermws-contract-json-scratch-');
  // Two images per case; the label "raised" follows the first coordinate of the case's vector, so a probe can learn it.
  imageIds = insertSyntheticImages(library, cases * 2, {
    caseKeyOf: (index) => `case-${Math.floor(index / 2)}`,
    metadataOf: (index) => ({ fitzpatrick_self: `FST${1 + (Math.floor(index / 2) % 6)}` }),
  });
  const random = new SeededRandom(11);
  const embeddings = new EmbeddingsRepository(library.db);
  embeddings.registerModel({ id: modelId, displayName: 'contract test', dim, sha256: 'b'.repeat(64), source: 'imported', preprocessing: null });
  const insertLabel = library.db.prepare(
    "INSERT INTO labels (image_id, kind, value, confidence, origin, created_at) VALUES (?, 'condition', ?, 4, 'imported', '2026-01-01')",
  );
  const rows: Array<{ imageId: number; vector: number[] }> = [];
  let latent: number[] = [];
  imageIds.forEach((imageId, index) => {
    // Post-ReLU-like vectors: non-negative with zeros, as real encoders give.
    if (index % 2 === 0) latent = Array.from({ length: dim }, () => Math.max(0, gaussian(random)));
    const vector = latent.map((value) => Math.max(0, value + 0.05 * gaussian(random)));
    rows.push({ imageId, vector });
    insertLabel.run(imageId, latent[0]! > 0.4 ? 'raised' : 'flat');
  });
  embeddings.put(modelId, 'b'.repeat(64), rows);
  library.close();
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
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
    const trained = await expectCallOutput(
      'probeReport',
      'probe',
      'train',
      '--labels',
      'raised',
      '--model',
      modelId,
      '--folds',
      '3',
      '--bootstrap',
      '50',
      '--curve',
      'none',
      '--min-class-cases',
      '2',
    );
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
});
