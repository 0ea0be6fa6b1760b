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
 * EMBED_BENCH_ROUNDS=N (default 3: the stages alternate over slices of the photos),
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
import { integerFromEnvironment } from './bench-environment.js';

const repoRoot = path.resolve(import.meta.dirname, '..', '..');

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
  const rounds = integerFromEnvironment('EMBED_BENCH_ROUNDS', 3);
  const tensorData = new Float32Array(batch * valuesPerImage(input)).map((_, index) => Math.sin(index) * 0.5 + 0.5);
  const tensor = new ort.Tensor('float32', tensorData, inputDims(input, batch));
  await session.run({ [input.name]: tensor });

  const library = createTestLibrary('dermws-embed-bench-');
  const registry = new ModelRegistry({ libraryModelsFolder: library.paths.models, defaultEncoder: async () => model, runtimeOptions: { providers } });
  const embeddings = new EmbeddingService(new EmbeddingsRepository(library.db), registry, library.paths.root);
  try {
    await embeddings.encoder();
    // The three stages alternate in rounds over slices of the photos, so on a shared machine each
    // sees the same background load on average and the ratio between them stays meaningful.
    let inferSeconds = 0;
    let inferred = 0;
    let decodeSeconds = 0;
    let jobSeconds = 0;
    let jobEmbedded = 0;
    let result: Awaited<ReturnType<EmbeddingService['embedLibrary']>> | undefined;
    const perRound = Math.ceil(files.length / rounds);
    for (let round = 0; round < rounds; round++) {
      const slice = files.slice(round * perRound, (round + 1) * perRound);
      if (slice.length === 0) break;

      // 1. Inference only, on pre-made tensors.
      let started = performance.now();
      for (let done = 0; done < slice.length; done += batch) {
        const outputs = await session.run({ [input.name]: tensor });
        for (const value of Object.values(outputs)) value.dispose();
        inferred += batch;
      }
      inferSeconds += (performance.now() - started) / 1000;

      // 2. Decode + preprocess only, batch by batch as the job does (sharp works on libuv's threads).
      started = performance.now();
      for (let start = 0; start < slice.length; start += batch) {
        const part = slice.slice(start, start + batch);
        const target = new Float32Array(part.length * valuesPerImage(input));
        const rgb = await Promise.all(part.map((file) => resizeForModel({ file }, input)));
        rgb.forEach((pixels, index) => writeNormalised(pixels, input, target, index));
      }
      decodeSeconds += (performance.now() - started) / 1000;

      // 3. The end-to-end job over library rows that point at the same photos.
      const ids = insertSyntheticImages(library, slice.length);
      const update = library.db.prepare('UPDATE images SET original_path = ? WHERE id = ?');
      library.db.transaction(() => ids.forEach((id, index) => update.run(slice[index], id)))();
      started = performance.now();
      result = await embeddings.embedLibrary({ batchSize: batch });
      jobSeconds += (performance.now() - started) / 1000;
      jobEmbedded += result.embedded;
      if (result.embedded !== slice.length)
        throw new Error(`The job embedded ${result.embedded} of ${slice.length} images: ${JSON.stringify(result.failed.slice(0, 3))}`);
    }
    await session.release();
    const inferPerSecond = inferred / inferSeconds;
    const decodePerSecond = files.length / decodeSeconds;
    const jobPerSecond = jobEmbedded / jobSeconds;
    result = result!;

    const serial = 1 / (1 / decodePerSecond + 1 / inferPerSecond);
    console.log(
      `model ${model.manifest.id} (${input.width}x${input.height} → ${model.manifest.output.dim}-d), ${files.length} photos 640x480 JPEG in ${rounds} interleaved rounds, provider ${result.provider}, batch ${batch}, ${os.availableParallelism()} cores`,
    );
    if (result.fallbackReason) console.log(`fallback: ${result.fallbackReason}`);
    console.log(`1. session.run on pre-made tensors   ${inferPerSecond.toFixed(1)} images/s`);
    console.log(`2. decode + preprocess               ${decodePerSecond.toFixed(1)} images/s`);
    console.log(`3. end-to-end embed job              ${jobPerSecond.toFixed(1)} images/s`);
    console.log(`   back-to-back bound 1/(1/d + 1/i)   ${serial.toFixed(1)} images/s`);
    console.log(`   pipeline efficiency (3 ÷ bound)    ${(jobPerSecond / serial).toFixed(2)}  (goal ≥ 0.9)`);
  } finally {
    await embeddings.close();
    library.cleanup();
  }
}
