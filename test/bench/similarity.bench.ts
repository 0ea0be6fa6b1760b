/**
 * Does raw cosine discriminate? The default encoder on generated skin photos labelled by what the
 * generator controls: the "condition" is the lesion colour (five kinds), drawn independently of the
 * skin tone (ten), so a similarity that ranks by tone instead of lesion does badly. Each photo also
 * has an edited copy (resized to 70% and re-compressed) whose original should rank first. Compared:
 * raw cosine, cosine on library-centred embeddings (the library mean of the unit vectors removed),
 * and on PCA-whitened centred embeddings. SIMILARITY_BENCH_PHOTOS sets the number of photos (default 60).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { createCore } from '../../electron/core/core.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { matrix, OnnxGemm } from '../../electron/core/math/onnx-gemm.js';
import { fitRandomizedPca } from '../../electron/core/math/randomized-pca.js';
import { normalizeRows } from '../../electron/core/math/vector-math.js';
import { insertSyntheticImages } from '../fixtures/library-fixture.js';
import { lesionColours, writeSkinImage } from '../fixtures/skin-images.js';

export async function run(): Promise<void> {
  const repoRoot = path.resolve(import.meta.dirname, '../..');
  process.env.DERMWS_MODEL_CACHE ??= path.join(repoRoot, 'native-models', 'generated');
  const photos = Number(process.env.SIMILARITY_BENCH_PHOTOS ?? 60);
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-similarity-bench-'));
  const core = createCore({ libraryFolder: path.join(folder, 'library') });
  try {
    const ids = insertSyntheticImages(core.library, photos * 2);
    const condition: number[] = [];
    const update = core.library.db.prepare('UPDATE images SET original_path = ?, relative_path = ? WHERE id = ?');
    for (let index = 0; index < photos; index++) {
      const colour = (index * 3) % lesionColours.length;
      const relative = `photos/photo-${index}.jpg`;
      const file = await writeSkinImage(path.join(folder, relative), {
        seed: 900 + index,
        width: 400,
        height: 300,
        toneIndex: index % 10,
        lesionColourIndex: colour,
      });
      update.run(file, relative, ids[index]);
      const variant = path.join(folder, `photos/variant-${index}.jpg`);
      await sharp(file).resize(280, 210).jpeg({ quality: 70 }).toFile(variant);
      update.run(variant, `photos/variant-${index}.jpg`, ids[photos + index]);
      condition.push(colour);
    }
    await core.embeddings.embedLibrary();
    const modelId = core.embeddings.storedModels()[0]!.id;
    const dim = core.embeddings.storedModels()[0]!.dim;
    const unit = new Float32Array(ids.length * dim);
    const stored = new EmbeddingsRepository(core.library.db);
    ids.forEach((id, row) => unit.set(stored.get(modelId, id)!, row * dim));
    normalizeRows(unit, dim);
    let zeros = 0;
    for (const value of unit) if (value === 0) zeros++;
    console.log(`${ids.length} embeddings of ${modelId} (${dim}-d, ${((zeros / unit.length) * 100).toFixed(0)}% exact zeros)`);

    const mean = new Float64Array(dim);
    for (let row = 0; row < ids.length; row++) for (let i = 0; i < dim; i++) mean[i]! += unit[row * dim + i]! / ids.length;
    const centred = new Float32Array(unit.length);
    for (let row = 0; row < ids.length; row++) for (let i = 0; i < dim; i++) centred[row * dim + i] = unit[row * dim + i]! - mean[i]!;
    const gemm = new OnnxGemm();
    const components = Math.min(64, ids.length - 2);
    const pca = await fitRandomizedPca(gemm, matrix(ids.length, dim, unit.slice()), { components, powerIterations: 3 });
    await gemm.release();
    const whitened = new Float32Array(ids.length * pca.outputDim);
    for (let row = 0; row < ids.length; row++) {
      for (let c = 0; c < pca.outputDim; c++) {
        let sum = 0;
        for (let i = 0; i < dim; i++) sum += centred[row * dim + i]! * pca.components[i * pca.outputDim + c]!;
        whitened[row * pca.outputDim + c] = sum / Math.sqrt(pca.variances[c]! + 1e-12);
      }
    }
    const spaces = {
      'raw cosine': { data: unit, width: dim },
      'centred cosine': { data: normalizeRows(centred, dim), width: dim },
      [`whitened (PCA-${pca.outputDim})`]: { data: normalizeRows(whitened, pca.outputDim), width: pca.outputDim },
    };
    console.log('similarity | precision@5 same lesion (photos) | variant→original: mean rank, top-1 | score of hits 1–5 (min–max)');
    for (const [name, space] of Object.entries(spaces)) {
      const score = (a: number, b: number) => {
        let sum = 0;
        for (let i = 0; i < space.width; i++) sum += space.data[a * space.width + i]! * space.data[b * space.width + i]!;
        return sum;
      };
      let precision = 0;
      let rankSum = 0;
      let top1 = 0;
      let low = Infinity;
      let high = -Infinity;
      for (let index = 0; index < photos; index++) {
        // Photos as queries: the other photos (not their own variant), ranked.
        const others = Array.from({ length: photos }, (_, other) => other).filter((other) => other !== index);
        others.sort((a, b) => score(index, b) - score(index, a));
        precision += others.slice(0, 5).filter((other) => condition[other] === condition[index]).length / 5;
        for (const other of others.slice(0, 5)) {
          low = Math.min(low, score(index, other));
          high = Math.max(high, score(index, other));
        }
        // The variant as the query, among every photo and the other variants.
        const variant = photos + index;
        const candidates = Array.from({ length: ids.length }, (_, row) => row).filter((row) => row !== variant);
        candidates.sort((a, b) => score(variant, b) - score(variant, a));
        const rank = candidates.indexOf(index) + 1;
        rankSum += rank;
        if (rank === 1) top1++;
      }
      console.log(
        `${name} | ${(precision / photos).toFixed(3)} (chance ${(1 / lesionColours.length).toFixed(2)}) | ${(rankSum / photos).toFixed(2)}, ${((top1 / photos) * 100).toFixed(0)}% | ${low.toFixed(3)}–${high.toFixed(3)}`,
      );
    }
  } finally {
    core.close();
    fs.rmSync(folder, { recursive: true, force: true });
  }
}
