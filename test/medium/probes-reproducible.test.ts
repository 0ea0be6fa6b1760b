import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { readNpzEntries } from '../../electron/core/embeddings/npz.js';
import { ProbesRepository } from '../../electron/core/probes/probes.repository.js';
import { ProbesService, type TrainProbeOptions } from '../../electron/core/probes/probes.service.js';
import { SeededRandom } from '../../electron/common/seeded-random.js';
import { runDermws } from '../fixtures/cli-runner.js';
import { writeSkinImage } from '../fixtures/skin-images.js';
import { importTestLibrary, tempFolder } from './import-helpers.js';

/**
 * The same 64 photo files imported into two libraries in opposite orders and with different
 * concurrency (so image ids, case ids and label row ids all differ), with the same cases, labels,
 * metadata and embeddings attached by file: a probe with the same seed must give bit-identical
 * metrics, folds, curves and out-of-fold predictions in both. The first library then serves the
 * export, the small-group rule, repeats, convergence reporting and the bad-input checks.
 */
const fileCount = 64;
const dim = 16;
const modelId = 'order-test-model';
const sha = 'c'.repeat(64);
const caseOfFile = (file: number) => (file < 48 ? `case-${String(Math.floor(file / 2)).padStart(2, '0')}` : null);
const fitzpatrickOf = (file: number) => ['FST1', 'FST2', 'FST3', 'FST4', 'FST5', 'FST6'][(caseOfFile(file) ? Math.floor(file / 2) : file) % 6]!;

function gaussian(random: SeededRandom): number {
  return Math.sqrt(-2 * Math.log(1 - random.next())) * Math.cos(2 * Math.PI * random.next());
}

/** Per file: a post-ReLU embedding (non-negative, many zeros) from its case's latent vector, and its labels. */
function fileData(): Array<{ vector: number[]; labels: string[] }> {
  const random = new SeededRandom(31);
  const latents = new Map<string, number[]>();
  const coins = new Map<string, boolean>();
  return Array.from({ length: fileCount }, (_, file) => {
    const key = caseOfFile(file) ?? `loose-${file}`;
    if (!latents.has(key)) {
      latents.set(
        key,
        Array.from({ length: dim }, () => gaussian(random)),
      );
      coins.set(key, random.next() < 0.5);
    }
    const latent = latents.get(key)!;
    const vector = latent.map((value) => Math.max(0, value + 0.3 * gaussian(random)));
    const labels = ['seen'];
    if (latent[0]! + latent[1]! - latent[2]! > 0) labels.push('linear');
    if (coins.get(key)) labels.push('coin');
    // Three cases only: the per-label floor must refuse an AUC for it.
    if (['case-00', 'case-01', 'case-02'].includes(key)) labels.push('rare');
    return { vector, labels };
  });
}

interface Built {
  context: ReturnType<typeof importTestLibrary>;
  service: ProbesService;
  shaOfImage: Map<number, string>;
}

let source: string;
let files: string[];
const libraries: Built[] = [];

async function build(order: number[], concurrency: number): Promise<Built> {
  const context = importTestLibrary();
  const { library } = context;
  const report = await context.import.importPaths(
    order.map((file) => files[file]!),
    { concurrency },
  );
  expect(report.imported).toBe(fileCount);
  const idOfFile = new Map<number, number>();
  for (const outcome of report.outcomes) idOfFile.set(files.indexOf(outcome.path), outcome.imageId!);
  const data = fileData();
  const db = library.db;
  const now = '2026-01-01T00:00:00.000Z';
  // Cases, labels and metadata are written in image-id order, so their row ids differ between the two libraries too.
  const byId = [...idOfFile.entries()].sort((a, b) => a[1] - b[1]);
  for (const [file, imageId] of byId) {
    const caseKey = caseOfFile(file);
    if (caseKey) {
      const found = db.prepare('SELECT id FROM cases WHERE case_key = ?').get(caseKey) as { id: number } | undefined;
      const caseId =
        found?.id ?? (db.prepare("INSERT INTO cases (case_key, source, created_at) VALUES (?, 'test', ?)").run(caseKey, now).lastInsertRowid as number);
      db.prepare('UPDATE images SET case_id = ? WHERE id = ?').run(caseId, imageId);
    }
    db.prepare("INSERT INTO image_metadata (image_id, key, value, source) VALUES (?, 'fitzpatrick_self', ?, 'test')").run(imageId, fitzpatrickOf(file));
    for (const label of data[file]!.labels) {
      db.prepare("INSERT INTO labels (image_id, kind, value, confidence, origin, created_at) VALUES (?, 'condition', ?, 4, 'imported', ?)").run(
        imageId,
        label,
        now,
      );
    }
  }
  const embeddings = new EmbeddingsRepository(db);
  embeddings.registerModel({ id: modelId, displayName: 'order test', dim, sha256: sha, source: 'imported', preprocessing: null });
  embeddings.put(
    modelId,
    sha,
    byId.map(([file, imageId]) => ({ imageId, vector: data[file]!.vector })),
  );
  const shaOfImage = new Map(
    (db.prepare('SELECT id, file_sha256 AS sha FROM images').all() as Array<{ id: number; sha: string }>).map((row) => [row.id, row.sha]),
  );
  return { context, service: new ProbesService(new ProbesRepository(db), embeddings), shaOfImage };
}

const options: TrainProbeOptions = {
  modelId,
  labels: ['linear', 'coin'],
  folds: 4,
  seed: 7,
  bootstrapReplicates: 200,
  curveFractions: [0.5],
  curveSeeds: 2,
  repeats: 3,
  minGroupCases: 4,
  threads: 1,
};

beforeAll(async () => {
  source = tempFolder('dermws-probe-order-');
  files = [];
  for (let file = 0; file < fileCount; file++) {
    files.push(
      await writeSkinImage(path.join(source, `photo-${String(file).padStart(2, '0')}.png`), { width: 64, height: 48, seed: 100 + file, format: 'png' }),
    );
  }
  const forward = Array.from({ length: fileCount }, (_, file) => file);
  // Opposite orders and different concurrency: the ids differ (checked below).
  libraries.push(await build(forward, 1));
  libraries.push(await build([...forward].reverse(), 4));
});

afterAll(() => {
  for (const built of libraries) built.context.library.cleanup();
  fs.rmSync(source, { recursive: true, force: true });
});

/** Mann–Whitney AUC from mid-ranks, written here independently of the app's metrics. */
function rankSumAuc(scores: number[], truths: number[]): number {
  const order = scores.map((score, index) => ({ score, truth: truths[index]! })).sort((a, b) => a.score - b.score);
  const ranks = new Array<number>(order.length);
  for (let start = 0; start < order.length;) {
    let end = start;
    while (end + 1 < order.length && order[end + 1]!.score === order[start]!.score) end++;
    for (let position = start; position <= end; position++) ranks[position] = (start + end) / 2 + 1;
    start = end + 1;
  }
  let positives = 0;
  let rankSum = 0;
  order.forEach((entry, position) => {
    if (entry.truth === 1) {
      positives++;
      rankSum += ranks[position]!;
    }
  });
  const negatives = order.length - positives;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

describe('probe results that do not depend on import order', () => {
  it('gives bit-identical metrics, folds, curves and out-of-fold predictions for the same files imported in opposite orders', async () => {
    const [first, second] = libraries;
    const idsOf = (built: Built) => [...built.shaOfImage.entries()].sort((a, b) => (a[1] < b[1] ? -1 : 1)).map(([id]) => id);
    // The import orders really gave the same files different ids.
    expect(idsOf(first!)).not.toEqual(idsOf(second!));

    const runA = await first!.service.train(options);
    const runB = await second!.service.train(options);
    expect(runA.status).toBe('completed');
    expect(runB.metrics).toEqual(runA.metrics);
    expect(runA.metrics!.curve.map((point) => point.fraction)).toEqual([0.5, 1]);
    expect(runA.metrics!.repeats!.count).toBe(3);

    const bySha = (built: Built, runId: number) =>
      new Map(
        new ProbesRepository(built.context.library.db)
          .outOfFold(runId, runA.labels)
          .map((image) => [image.fileSha256, { fold: image.fold, group: image.groupKey, truths: image.truths, p: image.probabilities }]),
      );
    const oofA = bySha(first!, runA.id);
    const oofB = bySha(second!, runB.id);
    expect(oofA.size).toBe(fileCount);
    expect([...oofB.entries()].sort()).toEqual([...oofA.entries()].sort());
    // Final-model predictions, image by image.
    const finalOf = (built: Built, runId: number) =>
      new Map(
        new ProbesRepository(built.context.library.db).predictions(runId).map((row) => [`${built.shaOfImage.get(row.imageId)}:${row.label}`, row.probability]),
      );
    expect([...finalOf(second!, runB.id).entries()].sort()).toEqual([...finalOf(first!, runA.id).entries()].sort());
  });

  it('exports out-of-fold predictions (CSV and npz) from which the reported AUC is recomputed exactly, with no case in two folds', async () => {
    const built = libraries[0]!;
    const run = built.service.list().find((entry) => entry.status === 'completed')!;
    const report = built.service.report(run.id);
    const folder = tempFolder('dermws-probe-export-');
    try {
      const csv = await runDermws(
        '--library',
        built.context.library.paths.root,
        '--json',
        'probe',
        'report',
        String(run.id),
        '--predictions',
        path.join(folder, 'oof.csv'),
      );
      expect(csv.code).toBe(0);
      expect(csv.json.images).toBe(fileCount);
      const manifest = JSON.parse(fs.readFileSync(path.join(folder, 'oof.csv.manifest.json'), 'utf8'));
      expect(manifest.run).toMatchObject({ id: run.id, modelSha256: sha, seed: 7, folds: 4, repeats: 3, tolerance: report.manifest.hyperparameters.tolerance });
      expect(manifest.appVersion).toMatch(/^\d+\.\d+\.\d+/);

      // Read with a plain split (nothing in this file needs quoting), independently of the app's CSV code.
      const text = fs.readFileSync(path.join(folder, 'oof.csv'), 'utf8');
      expect(text).not.toContain('"');
      const [headerLine, ...lines] = text.trimEnd().split('\r\n');
      const header = headerLine!.split(',');
      const table = {
        header,
        rows: lines.map((line) => Object.fromEntries(line.split(',').map((value, index) => [header[index]!, value])) as Record<string, string>),
      };
      expect(table.rows).toHaveLength(fileCount);
      expect(table.header.slice(0, 5)).toEqual(['image_id', 'file_sha256', 'path', 'group_key', 'fold']);
      const foldOfGroup = new Map<string, string>();
      for (const row of table.rows) {
        const group = row.group_key!;
        expect(foldOfGroup.get(group) ?? row.fold).toBe(row.fold);
        foldOfGroup.set(group, row.fold!);
      }
      for (const [index, label] of report.labels.entries()) {
        const known = table.rows.filter((row) => row[`truth:${label}`] !== '');
        const recomputed = rankSumAuc(
          known.map((row) => Number(row[`oof:${label}`])),
          known.map((row) => Number(row[`truth:${label}`])),
        );
        const stored = report.metrics!.overall.perLabel[index]!.auc;
        expect(stored.status).toBe('measured');
        if (stored.status === 'measured') expect(Math.abs(recomputed - stored.value)).toBeLessThan(1e-12);
      }

      const npz = await runDermws(
        '--library',
        built.context.library.paths.root,
        'probe',
        'report',
        String(run.id),
        '--predictions',
        path.join(folder, 'oof.npz'),
      );
      expect(npz.code).toBe(0);
      const arrays = new Map<string, { shape: number[]; data: ArrayLike<number> }>();
      for await (const entry of readNpzEntries(path.join(folder, 'oof.npz'))) arrays.set(entry.key, { shape: entry.shape, data: entry.data });
      const npzManifest = JSON.parse(fs.readFileSync(path.join(folder, 'oof.npz.manifest.json'), 'utf8'));
      expect(arrays.get('oof')!.shape).toEqual([fileCount, report.labels.length]);
      expect(npzManifest.groupKeys).toHaveLength(report.metrics!.overall.cases);
      const truth = arrays.get('truth')!.data;
      const oof = arrays.get('oof')!.data;
      const labelCount = report.labels.length;
      const scores: number[] = [];
      const truths: number[] = [];
      for (let row = 0; row < fileCount; row++) {
        if (Number.isNaN(truth[row * labelCount]!)) continue;
        scores.push(oof[row * labelCount]!);
        truths.push(truth[row * labelCount]!);
      }
      const first = report.metrics!.overall.perLabel[0]!.auc;
      if (first.status === 'measured') expect(Math.abs(rankSumAuc(scores, truths) - first.value)).toBeLessThan(1e-12);
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });

  it('reports an AUC only with enough positive and negative cases per label, overall and per subgroup', async () => {
    const built = libraries[0]!;
    const run = await built.service.train({ ...options, labels: ['linear', 'rare'], repeats: 1, curveFractions: [] });
    const rare = run.metrics!.overall.perLabel[1]!;
    expect(rare.positiveCases).toBe(3);
    expect(rare.auc).toEqual({ status: 'too-small', reason: expect.stringContaining('too few positives: 3 positive cases (6 images); at least 5 needed') });
    expect(run.metrics!.repeats!.perLabel[1]!.values).toEqual([null]);
    const fitzpatrick = run.metrics!.subgroups.find((table) => table.attribute === 'fitzpatrick')!;
    let refused = 0;
    for (const group of fitzpatrick.groups) {
      if (group.status !== 'measured') continue;
      for (const label of group.metrics.perLabel) {
        const enough = label.positiveCases >= 5 && label.negativeCases! >= 5;
        expect(label.auc.status === 'measured', `${group.value} ${label.label}`).toBe(enough);
        if (!enough) {
          refused++;
          expect(label.auc.status === 'too-small' && label.auc.reason).toMatch(
            /too few (positives|negatives): \d+ (positive|negative) cases? \(\d+ images?\); at least 5 needed/,
          );
        }
      }
    }
    expect(refused).toBeGreaterThan(0);
    // The floor is a setting.
    const looser = await built.service.train({ ...options, labels: ['linear', 'rare'], repeats: 1, curveFractions: [], minClassCases: 3 });
    expect(looser.metrics!.overall.perLabel[1]!.auc.status).toBe('measured');
  });

  it('shows the spread over fold seeds next to the first seed, and records convergence per label', async () => {
    const built = libraries[0]!;
    const run = built.service.report(built.service.list().find((entry) => entry.status === 'completed')!.id);
    const repeats = run.metrics!.repeats!;
    expect(repeats.seeds[0]).toBe(7);
    expect(new Set(repeats.seeds).size).toBe(3);
    for (const [index, label] of repeats.perLabel.entries()) {
      const first = run.metrics!.overall.perLabel[index]!.auc;
      expect(first.status === 'measured' && label.values[0]).toBe(first.status === 'measured' ? first.value : false);
      expect(label.values).toHaveLength(3);
    }
    expect(repeats.perLabel[1]!.sd!).toBeGreaterThan(0);
    const solver = run.metrics!.solver;
    expect(solver.tolerance).toBe(run.manifest.hyperparameters.tolerance);
    // 4 fold models + the final model + 2 more seeds × 4 fold models per label.
    expect(solver.perLabel!.map((label) => label.iterations.length)).toEqual([13, 13]);
    expect(solver.perLabel!.every((label) => label.converged)).toBe(true);

    // Two iterations cannot meet the rule: the run says so per label, and the report flags it.
    const cut = await built.service.train({ ...options, repeats: 1, curveFractions: [], maxIterations: 2 });
    expect(cut.metrics!.solver.perLabel!.some((label) => !label.converged)).toBe(true);
    const text = await runDermws('--library', built.context.library.paths.root, 'probe', 'report', String(cut.id));
    expect(text.stdout).toMatch(/WARNING: the fits of \d labels? stopped before meeting the tolerance/);
  });

  it('refuses bad input with an error that names it, and changes nothing', async () => {
    const built = libraries[0]!;
    const root = built.context.library.paths.root;
    const runs = () => (built.context.library.db.prepare('SELECT COUNT(*) AS n FROM probe_runs').get() as { n: number }).n;
    const before = runs();
    const train = (...extra: string[]) =>
      runDermws('--library', root, '--json', 'probe', 'train', '--model', modelId, '--labels', 'linear,coin', '--folds', '4', ...extra);

    const zeroRepeats = await train('--repeats', '0');
    expect(zeroRepeats.code).toBe(2);
    expect(zeroRepeats.json.error.message).toMatch(/--repeats must be a whole number from 1 to 50; got "0"/);
    for (const tolerance of ['0', '-1e-5', 'NaN', 'abc', '1']) {
      const refused = await train('--tolerance', tolerance);
      expect(refused.code, tolerance).toBe(2);
      expect(refused.json.error.message).toContain(`--tolerance must be a number between 0 and 1 (exclusive), e.g. 1e-5; got "${tolerance}"`);
    }
    await expect(built.service.train({ ...options, tolerance: Number.NaN })).rejects.toThrow(/tolerance must be a number between 0 and 1.*got NaN/);
    await expect(built.service.train({ ...options, tolerance: 0 })).rejects.toThrow(/tolerance must be a number between 0 and 1.*got 0/);
    await expect(built.service.train({ ...options, repeats: 0 })).rejects.toThrow(/repeats must be a whole number from 1 to 50; got 0/);
    expect(runs()).toBe(before);

    const missing = await runDermws('--library', root, '--json', 'probe', 'report', '424242', '--predictions', 'never.csv');
    expect(missing.code).toBe(2);
    expect(missing.json.error.message).toBe('There is no probe run 424242 in this library.');
    expect(fs.existsSync(path.join(process.cwd(), 'never.csv'))).toBe(false);

    const run = built.service.list().find((entry) => entry.status === 'completed')!;
    const folder = tempFolder('dermws-probe-refuse-');
    try {
      const existing = path.join(folder, 'taken.csv');
      fs.writeFileSync(existing, 'keep me');
      const taken = await runDermws('--library', root, '--json', 'probe', 'report', String(run.id), '--predictions', existing);
      expect(taken.code).toBe(2);
      expect(taken.json.error.message).toBe(`${existing} already exists; nothing was written. Choose another file name or remove it first.`);
      expect(fs.readFileSync(existing, 'utf8')).toBe('keep me');
      expect(fs.existsSync(`${existing}.manifest.json`)).toBe(false);

      expect(() => built.service.exportPredictions(run.id, { folder, fileName: '../escaped.csv' })).toThrow(/"\.\.\/escaped\.csv" escapes the folder/);
      expect(() => built.service.exportPredictions(run.id, { folder, fileName: path.join(path.dirname(folder), 'absolute.csv') })).toThrow(
        /escapes the folder/,
      );
      const outside = tempFolder('dermws-probe-outside-');
      fs.symlinkSync(outside, path.join(folder, 'link'));
      expect(() => built.service.exportPredictions(run.id, { folder, fileName: 'link/through.csv' })).toThrow(/escapes the folder .* through a symbolic link/);
      expect(fs.readdirSync(outside)).toEqual([]);
      fs.rmSync(outside, { recursive: true, force: true });
      expect(() => built.service.exportPredictions(run.id, { folder, fileName: 'predictions.json' })).toThrow(/must end in \.csv or \.npz; got "\.json"/);
      expect(fs.readdirSync(folder).sort()).toEqual(['link', 'taken.csv']);
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
    expect(runs()).toBe(before);
  });
});
