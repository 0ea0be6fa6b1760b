/**
 * Map bench: MAP_BENCH_IMAGES (default 100,000) embeddings of MAP_BENCH_DIM (default 6144) dimensions
 * shaped like post-ReLU encoder output (the search bench's flat-spectrum non-negative generator), in
 * a real library. Measures the core's time to the map's first points (the sample reduced to 50
 * principal coordinates, with colour groups; UMAP runs in the renderer afterwards and its preview
 * draws the first two coordinates at once), side by side:
 *   old path: read the sampled 6144-d embeddings from SQLite and fit PCA on them (what the map does
 *             for a model without an index);
 *   new path: read the sample's projected points from the index's graph and fit PCA on those,
 *             in a fresh app (index file checked and loaded: cold) and again (index loaded: warm).
 * Run under the shared lock at 100k: flock /work/team/bench.lock npx tsx test/bench/run-all.ts map
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCore, type Core } from '../../electron/core/core.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { VectorIndexRepository } from '../../electron/core/index/vector-index.repository.js';
import { VectorIndexService } from '../../electron/core/index/vector-index.service.js';
import type { MapLayout } from '../../electron/core/map/map.service.js';
import { openLibrary } from '../../electron/core/library/library.js';
import { flatNonNegativeVectors } from '../fixtures/clustered-vectors.js';
import { insertSyntheticImages } from '../fixtures/library-fixture.js';

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const load = () =>
  os
    .loadavg()
    .map((value) => value.toFixed(1))
    .join(' ');

async function timed(core: Core, limit: number): Promise<{ ms: number; layout: MapLayout; jsonMs: number; bytes: number }> {
  const started = performance.now();
  const layout = await core.map.layout({ colourBy: 'fitzpatrick', limit });
  const ms = performance.now() - started;
  // What the bridge adds before the renderer has the points: the answer serialised as JSON.
  const jsonStarted = performance.now();
  const bytes = JSON.stringify(layout).length;
  return { ms, layout, jsonMs: performance.now() - jsonStarted, bytes };
}

export async function run(): Promise<void> {
  const count = Number(process.env.MAP_BENCH_IMAGES ?? 100_000);
  const dim = Number(process.env.MAP_BENCH_DIM ?? 6144);
  const limits = (process.env.MAP_BENCH_LIMITS ?? '5000,20000').split(',').map(Number);
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-map-bench-'));
  const libraryFolder = path.join(folder, 'library');
  try {
    let started = performance.now();
    const library = openLibrary(libraryFolder);
    try {
      const ids = insertSyntheticImages(library, count, { metadataOf: (index): Record<string, string> => ({ fitzpatrick_self: `FST${(index % 6) + 1}` }) });
      const { data } = flatNonNegativeVectors({ count, dim, seed: 42 });
      const embeddings = new EmbeddingsRepository(library.db);
      embeddings.registerModel({ id: 'bench', displayName: 'bench', dim, sha256: 'b'.repeat(64), source: 'imported', preprocessing: null });
      for (let start = 0; start < count; start += 1000) {
        const rows = Math.min(1000, count - start);
        embeddings.put(
          'bench',
          'b'.repeat(64),
          Array.from({ length: rows }, (_, row) => ({ imageId: ids[start + row]!, vector: data.subarray((start + row) * dim, (start + row + 1) * dim) })),
        );
      }
      console.log(`${count.toLocaleString()} embeddings × ${dim} generated and stored in ${seconds(performance.now() - started)}`);
    } finally {
      library.close();
    }

    const oldPath: Array<{ limit: number; ms: number; jsonMs: number }> = [];
    let core = createCore({ libraryFolder });
    try {
      for (const limit of limits) {
        const measured = await timed(core, limit);
        if (measured.layout.source !== 'embeddings') throw new Error('the old path did not read the embeddings');
        oldPath.push({ limit, ms: measured.ms, jsonMs: measured.jsonMs });
        console.log(`  old path, ${limit} points: ${seconds(measured.ms)} (load ${load()})`);
      }
    } finally {
      core.close();
    }

    // The index as the app builds it, calibrated, without the optional projection refits (their budget
    // is a build-time cost, not the map's).
    started = performance.now();
    const builder = openLibrary(libraryFolder);
    const service = new VectorIndexService(new VectorIndexRepository(builder.db), new EmbeddingsRepository(builder.db), builder.paths, {
      calibrationBudgetSeconds: 0,
    });
    try {
      const built = await service.rebuild('bench');
      console.log(
        `index built in ${seconds(performance.now() - started)}: ${built.graphDim}-d graph, ${(built.explainedVariance! * 100).toFixed(1)}% of the variance kept (load ${load()})`,
      );
    } finally {
      await service.close();
      builder.close();
    }

    console.log(`\nfirst points (core: sample → 50 principal coordinates + colour groups), ${count.toLocaleString()} × ${dim}; load average ${load()}`);
    console.log('points | old path (embeddings) | new path, index cold | new path, index loaded | old / new cold | JSON answer');
    core = createCore({ libraryFolder });
    try {
      for (const [position, limit] of limits.entries()) {
        if (position > 0) {
          // Each limit measured cold: a fresh app that has not loaded the index yet.
          core.close();
          core = createCore({ libraryFolder });
        }
        const cold = await timed(core, limit);
        const warm = await timed(core, limit);
        if (cold.layout.source !== 'index' || warm.layout.source !== 'index') throw new Error('the new path did not use the index');
        const old = oldPath.find((entry) => entry.limit === limit)!;
        console.log(
          `${String(limit).padStart(6)} | ${seconds(old.ms).padStart(21)} | ${seconds(cold.ms).padStart(20)} | ${seconds(warm.ms).padStart(22)} | ${(old.ms / cold.ms).toFixed(1).padStart(13)}× | ${(cold.bytes / 1e6).toFixed(1)} MB, ${seconds(cold.jsonMs)}`,
        );
      }
    } finally {
      core.close();
    }
    console.log(`load average at the end ${load()}`);
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}
