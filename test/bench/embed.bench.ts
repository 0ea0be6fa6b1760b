/**
 * The embedding pipeline with the bundled default encoder (MobileNetV2, 224x224, 1280-d), three
 * figures measured in one run on the same generated photos:
 *   1. raw `session.run` images/s on pre-made tensors (no decoding at all),
 *   2. raw decode + preprocess images/s (sharp, no inference),
 *   3. the end-to-end embed job images/s (decode of batch n+1 overlapping inference of batch n in the
 *      encoder worker, committing each batch to SQLite).
 * Pipeline efficiency = end-to-end ÷ (1 / (1/decode + 1/infer)): 1.0 means the job is as fast as
 * doing the two stages back to back with no overhead; above 1.0 the overlap wins time back.
 *
 *   npx tsx test/bench/run-all.ts embed
 *
 * Environment: EMBED_BENCH_IMAGES=N (default 300), EMBED_BENCH_BATCH=N (default: the provider's),
 * DERMWS_EXECUTION_PROVIDERS=cuda,cpu to time a GPU, DERMWS_MODEL_CACHE for the converted model.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { EmbeddingService } from '../../electron/core/embeddings/embedding.service.js';
import { EmbeddingsRepository } from '../../electron/core/embeddings/embeddings.repository.js';
import { sessionOptions } from '../../electron/core/models/encoder-session.js';
import { defaultBatchSize, providerOrder, providersFromEnvironment } from '../../electron/core/models/execution-providers.js';
import { defaultEncoderLocation } from '../../electron/core/models/model-services.js';
import { ModelRegistry } from '../../electron/core/models/model-registry.js';
import { inputDims, resizeForModel, valuesPerImage, writeNormalised } from '../../electron/core/models/preprocess.js';
import { createTestLibrary, insertSyntheticImages } from '../fixtures/library-fixture.js';
import { writeSkinImage } from '../fixtures/skin-images.js';

const repoRoot = path.resolve(import.meta.dirname, '..', '..');

function integerFromEnvironment(name: string, fallback: number): number {
  const text = process.env[name];
  if (!text) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name}=${text} is not a positive integer.`);
  return value;
}

/** 640x480 JPEG skin photos in .bench-data/embed-photos, made once and reused. */
async function benchPhotos(count: number): Promise<string[]> {
  const folder = path.join(repoRoot, '.bench-data', 'embed-photos');
  const files: string[] = [];
  for (let index = 0; index < count; index++) {
    const file = path.join(folder, `photo-${String(index).padStart(4, '0')}.jpg`);
    if (!fs.existsSync(file)) await writeSkinImage(file, { seed: 5000 + index, width: 640, height: 480, quality: 88 });
    files.push(file);
  }
  return files;
}

export async function run(): Promise<void> {
  const count = integerFromEnvironment('EMBED_BENCH_IMAGES', 300);
  const cacheFolder = process.env.DERMWS_MODEL_CACHE ?? path.join(repoRoot, 'native-models', 'generated');
  const providers = providersFromEnvironment(process.env.DERMWS_EXECUTION_PROVIDERS) ?? providerOrder();
  const model = await defaultEncoderLocation(cacheFolder);
  const input = model.manifest.input;
  const files = await benchPhotos(count);

  // 1. Inference only, on pre-made tensors, with the job's session options and provider order.
  // A provider that cannot load is reported once, with figure 3, not by ORT's own logger.
  ort.env.logLevel = 'fatal';
  let session: ort.InferenceSession | undefined;
  let provider = 'cpu';
  for (const candidate of providers) {
    try {
      session = await ort.InferenceSession.create(model.onnxPath, sessionOptions(candidate));
      provider = candidate;
      break;
    } catch {
      // The job falls back the same way; its reason is printed with figure 3.
    }
  }
  if (!session) throw new Error(`No execution provider of ${providers.join(', ')} could load ${model.onnxPath}.`);
  const batch = integerFromEnvironment('EMBED_BENCH_BATCH', defaultBatchSize(provider as 'cpu'));
  const tensorData = new Float32Array(batch * valuesPerImage(input)).map((_, index) => Math.sin(index) * 0.5 + 0.5);
  const tensor = new ort.Tensor('float32', tensorData, inputDims(input, batch));
  await session.run({ [input.name]: tensor });
  const inferStarted = performance.now();
  let inferred = 0;
  while (inferred < count) {
    const outputs = await session.run({ [input.name]: tensor });
    for (const value of Object.values(outputs)) value.dispose();
    inferred += batch;
  }
  const inferPerSecond = inferred / ((performance.now() - inferStarted) / 1000);
  await session.release();

  // 2. Decode + preprocess only, batch by batch as the job does (sharp works on libuv's threads).
  const decodeStarted = performance.now();
  for (let start = 0; start < files.length; start += batch) {
    const slice = files.slice(start, start + batch);
    const target = new Float32Array(slice.length * valuesPerImage(input));
    const rgb = await Promise.all(slice.map((file) => resizeForModel({ file }, input)));
    rgb.forEach((pixels, slot) => writeNormalised(pixels, input, target, slot));
  }
  const decodePerSecond = files.length / ((performance.now() - decodeStarted) / 1000);

  // 3. The end-to-end job on a fresh library whose rows point at the same photos.
  const library = createTestLibrary('dermws-embed-bench-');
  try {
    const ids = insertSyntheticImages(library, files.length);
    const update = library.db.prepare('UPDATE images SET original_path = ? WHERE id = ?');
    library.db.transaction(() => ids.forEach((id, index) => update.run(files[index], id)))();
    const registry = new ModelRegistry({ libraryModelsFolder: library.paths.models, defaultEncoder: async () => model, runtimeOptions: { providers } });
    const embeddings = new EmbeddingService(new EmbeddingsRepository(library.db), registry, library.paths.root);
    await embeddings.encoder();
    const jobStarted = performance.now();
    const result = await embeddings.embedLibrary({ batchSize: batch });
    const jobPerSecond = result.embedded / ((performance.now() - jobStarted) / 1000);
    await embeddings.close();
    if (result.embedded !== files.length) throw new Error(`The job embedded ${result.embedded} of ${files.length} images: ${JSON.stringify(result.failed.slice(0, 3))}`);

    const serial = 1 / (1 / decodePerSecond + 1 / inferPerSecond);
    console.log(`model ${model.manifest.id} (${input.width}x${input.height} → ${model.manifest.output.dim}-d), ${files.length} photos 640x480 JPEG, provider ${result.provider}, batch ${batch}, ${os.availableParallelism()} cores`);
    if (result.fallbackReason) console.log(`fallback: ${result.fallbackReason}`);
    console.log(`1. session.run on pre-made tensors   ${inferPerSecond.toFixed(1)} images/s`);
    console.log(`2. decode + preprocess               ${decodePerSecond.toFixed(1)} images/s`);
    console.log(`3. end-to-end embed job              ${jobPerSecond.toFixed(1)} images/s`);
    console.log(`   back-to-back bound 1/(1/d + 1/i)   ${serial.toFixed(1)} images/s`);
    console.log(`   pipeline efficiency (3 ÷ bound)    ${(jobPerSecond / serial).toFixed(2)}  (goal ≥ 0.9)`);
  } finally {
    library.cleanup();
  }
}
