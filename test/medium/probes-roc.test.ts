import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeReportSchema } from '../../electron/common/contract.js';
import { probesHandlers } from '../../electron/core/app-api/handlers/probes.handlers.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { rocArea } from '../../electron/core/probes/metrics.js';
import { ProbesRepository } from '../../electron/core/probes/probes.repository.js';
import { ProbesService } from '../../electron/core/probes/probes.service.js';
import { SeededRandom } from '../../electron/common/seeded-random.js';
import { createTestLibrary, insertSyntheticImages } from '../fixtures/library-fixture.js';

/**
 * 150 cases of two photos, 16-d embeddings = case latent + noise. "signal" is a noisy threshold on
 * one direction (AUC well inside (0.5, 1), so the curve has a real shape), "rare" is positive in
 * only a handful of cases (a short, steppy curve).
 */
const dim = 16;
const caseCount = 150;
const modelId = 'probe-roc-model';

function gaussian(random: SeededRandom): number {
  return Math.sqrt(-2 * Math.log(1 - random.next())) * Math.cos(2 * Math.PI * random.next());
}

let library: ReturnType<typeof createTestLibrary>;
let service: ProbesService;

beforeAll(() => {
  library = createTestLibrary('dermws-probes-roc-');
  const imageIds = insertSyntheticImages(library, caseCount * 2, { caseKeyOf: (index) => `case-${Math.floor(index / 2)}` });
  const random = new SeededRandom(21);
  const direction = Array.from({ length: dim }, () => gaussian(random));
  const embeddings = new EmbeddingsRepository(library.db);
  embeddings.registerModel({ id: modelId, displayName: 'roc test', dim, sha256: 'b'.repeat(64), source: 'imported', preprocessing: null });
  const insertLabel = library.db.prepare(
    "INSERT INTO labels (image_id, kind, value, confidence, origin, created_at) VALUES (?, 'condition', ?, 4, 'imported', '2026-01-01')",
  );
  const rows: Array<{ imageId: number; vector: number[] }> = [];
  let latent: number[] = [];
  imageIds.forEach((imageId, index) => {
    if (index % 2 === 0) latent = Array.from({ length: dim }, () => gaussian(random));
    const vector = latent.map((value) => value + 0.2 * gaussian(random));
    rows.push({ imageId, vector });
    const projection = vector.reduce((sum, value, feature) => sum + value * direction[feature]!, 0);
    insertLabel.run(imageId, 'other');
    if (projection + 2.5 * gaussian(random) > 0) insertLabel.run(imageId, 'signal');
    if (Math.floor(index / 2) % 25 === 0) insertLabel.run(imageId, 'rare');
  });
  embeddings.put(modelId, 'b'.repeat(64), rows);
  service = new ProbesService(new ProbesRepository(library.db), embeddings);
});

afterAll(() => library.cleanup());

describe('stored probe ROC curves', () => {
  it('stores one pooled out-of-fold curve per measured label: (0,0) to (1,1), monotone, area = stored AUC', async () => {
    const trained = await service.train({
      modelId,
      labels: ['signal', 'rare'],
      seed: 5,
      bootstrapReplicates: 100,
      curveFractions: [],
      maxIterations: 150,
      threads: 1,
    });
    expect(trained.status).toBe('completed');
    // Read back from SQLite, as the app does.
    const run = service.report(trained.id);
    const perLabel = run.metrics!.overall.perLabel;
    expect(perLabel.map((label) => label.label)).toEqual(['signal', 'rare']);
    for (const label of perLabel) {
      expect(label.auc.status).toBe('measured');
      const roc = label.roc!;
      expect(roc).toBeDefined();
      if (label.auc.status !== 'measured') continue;
      const count = roc.fpr.length;
      expect(roc.tpr).toHaveLength(count);
      expect(roc.threshold).toHaveLength(count);
      expect(count).toBeGreaterThan(2);
      expect(count).toBeLessThanOrEqual(200);
      // Out-of-fold probabilities are continuous: one vertex per image plus the start, before downsampling.
      expect(roc.exactPoints).toBeGreaterThan(Math.min(200, label.images * 0.9));
      expect(roc.exactPoints).toBeLessThanOrEqual(label.images + 1);
      expect([roc.fpr[0], roc.tpr[0], roc.threshold[0]]).toEqual([0, 0, null]);
      expect([roc.fpr.at(-1), roc.tpr.at(-1)]).toEqual([1, 1]);
      for (let index = 1; index < count; index++) {
        expect(roc.fpr[index]!).toBeGreaterThanOrEqual(roc.fpr[index - 1]!);
        expect(roc.tpr[index]!).toBeGreaterThanOrEqual(roc.tpr[index - 1]!);
        // Thresholds fall as the curve rises: each vertex calls more images positive.
        if (index > 1) expect(roc.threshold[index]!).toBeLessThanOrEqual(roc.threshold[index - 1]!);
        expect(roc.threshold[index]!).toBeGreaterThan(0);
        expect(roc.threshold[index]!).toBeLessThan(1);
      }
      const area = rocArea(roc.fpr.map((fpr, index) => ({ fpr, tpr: roc.tpr[index]! })));
      expect(Math.abs(area - label.auc.value)).toBeLessThan(1e-4);
    }
    const signal = perLabel[0]!;
    if (signal.auc.status === 'measured') {
      expect(signal.auc.value).toBeGreaterThan(0.6);
      expect(signal.auc.value).toBeLessThan(0.98);
    }
    // Curves are kept for the overall table only, so the stored JSON stays small.
    for (const table of run.metrics!.subgroups) {
      for (const group of table.groups) if (group.status === 'measured') for (const label of group.metrics.perLabel) expect(label.roc).toBeUndefined();
    }
    const stored = library.db.prepare('SELECT length(metrics) AS bytes FROM probe_runs WHERE id = ?').get(trained.id) as { bytes: number };
    expect(stored.bytes).toBeLessThan(60_000);
  });

  it('carries the curves through the probeReport contract, and a run stored before curves still validates', async () => {
    const runId = service.list()[0]!.id;
    const view = probeReportSchema.parse(await probesHandlers.probeReport({ runId }, { core: { probes: service } } as never));
    const roc = view.metrics!.overall.perLabel[0]!.roc!;
    expect(roc.fpr[0]).toBe(0);
    expect(roc.tpr.at(-1)).toBe(1);
    expect(roc.exactPoints).toBeGreaterThan(0);

    const old = structuredClone(view);
    for (const label of old.metrics!.overall.perLabel) delete label.roc;
    const parsed = probeReportSchema.parse(old);
    expect(parsed.metrics!.overall.perLabel.every((label) => label.roc === undefined)).toBe(true);
  });
});
