/**
 * Map bench: MAP_BENCH_IMAGES (default 20,000) generated 6144-d embeddings shaped like post-ReLU
 * encoder output, in a real library. Measures what the map's core side costs before the first
 * points: reading the 5,000-image sample (only its rows, as mapPoints does now, side by side with
 * reading the whole matrix and sampling it, as it did before) and the randomized PCA to 50
 * components on onnxruntime, fitted on the whole sample and on the subset mapPoints fits on. UMAP runs in the renderer afterwards and is not measured here.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EmbeddingSampleRepository } from '../../electron/core/embeddings/embedding-sample.repository.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { matrix, OnnxGemm } from '../../electron/core/index/onnx-gemm.js';
import { fitRandomizedPca, projectJs } from '../../electron/core/index/randomized-pca.js';
import { openLibrary } from '../../electron/core/library/library.js';
import { mapFitRows } from '../../electron/core/app-api/handlers/map.handlers.js';
import { clusteredVectors } from '../fixtures/clustered-vectors.js';
import { insertSyntheticImages } from '../fixtures/library-fixture.js';

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export async function run(): Promise<void> {
  const count = Number(process.env.MAP_BENCH_IMAGES ?? 20_000);
  const dim = 6144;
  const limit = 5000;
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-map-bench-'));
  const library = openLibrary(path.join(folder, 'library'));
  try {
    const ids = insertSyntheticImages(library, count);
    const embeddings = new EmbeddingsRepository(library.db);
    embeddings.registerModel({ id: 'bench', displayName: 'bench', dim, sha256: 'b'.repeat(64), source: 'imported', preprocessing: null });
    for (let start = 0; start < count; start += 2000) {
      const rows = Math.min(2000, count - start);
      const block = clusteredVectors({ count: rows, dim, clusters: 20, seed: 7 + start });
      embeddings.put(
        'bench',
        'b'.repeat(64),
        Array.from({ length: rows }, (_, row) => ({ imageId: ids[start + row]!, vector: block.data.subarray(row * dim, (row + 1) * dim).map((value) => Math.max(0, value)) })),
      );
    }

    let started = performance.now();
    const whole = embeddings.matrix('bench');
    const stride = Math.max(1, whole.imageIds.length / limit);
    const picked: number[] = [];
    for (let position = 0; position < whole.imageIds.length && picked.length < limit; position = Math.floor(picked.length * stride)) picked.push(position);
    const oldSample = new Float32Array(picked.length * dim);
    picked.forEach((row, index) => oldSample.set(whole.data.subarray(row * dim, (row + 1) * dim), index * dim));
    const wholeRead = performance.now() - started;

    started = performance.now();
    const sampler = new EmbeddingSampleRepository(library.db);
    const { imageIds } = sampler.evenSample('bench', limit);
    const sample = sampler.rows('bench', imageIds);
    const sampledRead = performance.now() - started;
    if (imageIds.length !== picked.length) throw new Error('the two reads sampled different images');

    const fit = async (rows: number) => {
      const begun = performance.now();
      const subset = new Float32Array(rows * dim);
      for (let index = 0; index < rows; index++) {
        const row = Math.floor((index * imageIds.length) / rows);
        subset.set(sample.data.subarray(row * dim, (row + 1) * dim), index * dim);
      }
      const gemm = new OnnxGemm();
      try {
        const model = await fitRandomizedPca(gemm, matrix(rows, dim, subset), { components: 50, seed: 1 });
        return { ms: performance.now() - begun, projected: projectJs(model, sample.data), model };
      } finally {
        await gemm.release();
      }
    };
    // The first fit in a process also loads onnxruntime's native code: measured apart, then each fit
    // with its own session, as mapPoints makes one per map.
    const firstLoad = await fit(200);
    const full = await fit(imageIds.length);
    const subset = await fit(mapFitRows);
    const pca = subset.ms;
    // How much of the full fit's spread the subset's directions keep, over the whole sample.
    const spread = (projected: Float32Array) => {
      let sum = 0;
      for (const value of projected) sum += value * value;
      return sum;
    };
    const kept = spread(subset.projected) / spread(full.projected);

    console.log(`${count.toLocaleString()} embeddings × ${dim}, sample of ${imageIds.length.toLocaleString()}:`);
    console.log(`  read the sample's rows only      ${seconds(sampledRead)}`);
    console.log(`  read the whole matrix, then pick ${seconds(wholeRead)}  (${(wholeRead / sampledRead).toFixed(1)}× the sampled read)`);
    console.log(`  first PCA in the process (200 rows, loads ORT) ${seconds(firstLoad.ms)}`);
    console.log(`  PCA to 50 fitted on all ${imageIds.length}     ${seconds(full.ms)}`);
    console.log(`  PCA to 50 fitted on ${mapFitRows} (mapPoints) ${seconds(pca)}  (${(full.ms / pca).toFixed(1)}× faster; its directions keep ${(kept * 100).toFixed(1)}% of the full fit's projected spread)`);
    console.log(`  core total before UMAP           ${seconds(sampledRead + pca)}`);
  } finally {
    library.close();
    fs.rmSync(folder, { recursive: true, force: true });
  }
}
