/**
 * What Derm Foundation costs per image: builds a BiT-ResNet101x3-shaped ONNX model with random
 * weights at 448x448 (the real model's architecture and size) and times onnxruntime on one image.
 *
 *   npx tsx test/bench/run-all.ts bit-encoder
 *
 * Environment:
 *   BIT_BENCH_KEEP=1         keep .bench-data/bit-r101x3-448.onnx afterwards (and reuse it next time)
 *   BIT_BENCH_PROVIDER=cuda  execution provider to time (default cpu; cuda/dml/coreml where installed)
 *   BIT_BENCH_RUNS=N         timed runs after one warm-up (default 2)
 *   BIT_BENCH_WIDTH / BIT_BENCH_BLOCKS=3,4,6,3 / BIT_BENCH_SIZE   a smaller variant, for a quick look
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { buildBitResNet } from '../fixtures/build-bit-resnet.js';
import { integerFromEnvironment } from './bench-environment.js';

export async function run(): Promise<void> {
  const width = integerFromEnvironment('BIT_BENCH_WIDTH', 3);
  const size = integerFromEnvironment('BIT_BENCH_SIZE', 448);
  const runs = integerFromEnvironment('BIT_BENCH_RUNS', 2);
  const blocksText = process.env.BIT_BENCH_BLOCKS ?? '3,4,23,3';
  const blocks = blocksText.split(',').map(Number);
  if (blocks.length !== 4 || !blocks.every((count) => Number.isInteger(count) && count >= 1)) {
    throw new Error(`BIT_BENCH_BLOCKS=${blocksText} must be four positive integers, e.g. 3,4,23,3.`);
  }
  const keep = process.env.BIT_BENCH_KEEP === '1' || process.argv.includes('--keep');
  const provider = process.env.BIT_BENCH_PROVIDER ?? 'cpu';
  const name = `bit-r${blocks.reduce((a, b) => a + b, 0) * 3 + 2}x${width}-${size}`;
  const folder = path.resolve(import.meta.dirname, '..', '..', '.bench-data');
  const file = path.join(folder, `${name}.onnx`);

  const model = buildBitResNet({ size, widthFactor: width, blocks: blocks as [number, number, number, number] });
  let buildSeconds: number | null = null;
  if (keep && fs.existsSync(file)) {
    console.log(`reusing ${file}`);
  } else {
    const started = performance.now();
    await model.graph.writeFile(file);
    buildSeconds = (performance.now() - started) / 1000;
  }
  const fileBytes = fs.statSync(file).size;

  try {
    const threads = os.availableParallelism();
    const loadStarted = performance.now();
    const session = await ort.InferenceSession.create(file, {
      executionProviders: [provider],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
    });
    const loadSeconds = (performance.now() - loadStarted) / 1000;
    const image = new Float32Array(size * size * 3);
    for (let i = 0; i < image.length; i++) image[i] = ((i * 2654435761) % 1000) / 1000;
    const feeds = { [model.inputName]: new ort.Tensor('float32', image, [1, size, size, 3]) };
    const warmStarted = performance.now();
    await session.run(feeds);
    const warmSeconds = (performance.now() - warmStarted) / 1000;
    // Wall time depends on what else the machine is doing; CPU time (all of onnxruntime's threads,
    // which run in this process) does much less, so both are printed.
    const times: number[] = [];
    const cpuTimes: number[] = [];
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      const cpuStarted = process.cpuUsage();
      await session.run(feeds);
      const cpu = process.cpuUsage(cpuStarted);
      times.push((performance.now() - started) / 1000);
      cpuTimes.push((cpu.user + cpu.system) / 1e6);
    }
    await session.release();

    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    const cpuMean = cpuTimes.reduce((a, b) => a + b, 0) / cpuTimes.length;
    const load = os.loadavg()[0]!;
    const table = {
      model: `${name} (BiT-ResNet-v2, blocks ${blocks.join('/')}, width x${width}, ${size}x${size}, random weights)`,
      parameters: `${(model.parameterCount / 1e6).toFixed(1)} M (backbone, no head)`,
      'multiply-accumulates per image': `${(model.multiplyAccumulates / 1e9).toFixed(1)} G`,
      'ONNX file': `${(fileBytes / 2 ** 30).toFixed(2)} GiB`,
      'write (generate weights + serialise)': buildSeconds === null ? 'reused' : `${buildSeconds.toFixed(1)} s`,
      [`session create (${provider})`]: `${loadSeconds.toFixed(1)} s`,
      'first run (warm-up)': `${warmSeconds.toFixed(2)} s`,
      [`seconds per image, batch 1 (${provider}, ${threads} threads, mean of ${runs})`]: `${mean.toFixed(2)} s (min ${Math.min(...times).toFixed(2)} s)`,
      'CPU time per image (all threads)': `${cpuMean.toFixed(1)} s → ${(cpuMean / threads).toFixed(1)} s per image if ${threads} cores were free`,
      'effective throughput (wall)': `${((2 * model.multiplyAccumulates) / mean / 1e9).toFixed(1)} GFLOP/s`,
      'load average during the bench (1 min)': `${load.toFixed(1)} on ${os.cpus().length} cores`,
    };
    for (const [key, value] of Object.entries(table)) console.log(`${key.padEnd(58)} ${value}`);
  } finally {
    if (!keep) fs.rmSync(file, { force: true });
  }
}
