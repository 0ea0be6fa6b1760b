/**
 * Import throughput against raw decoding: ~300 generated 1600×1200 JPEGs (made once into
 * .bench-data/import-1600x1200/), decoded to raw pixels by sharp alone, then imported into a fresh
 * library (read, file hash, decode, pixel hash, analysis resize, thumbnail, quality metrics, commit).
 * Both run with the same number of files in flight, side by side, twice, best run kept. The goal is
 * import ≥ 0.8 × raw decode, because the decode is done once and everything else rides on it.
 *
 *   npx tsx test/bench/run-all.ts import
 *
 * Environment: IMPORT_BENCH_COUNT=N (default 300) images; IMPORT_BENCH_CONCURRENCY=N files in flight
 * (default: the import's own default).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { decodeImage, makeThumbnail } from '../../electron/core/import/image-decoder.js';
import { createImportServices } from '../../electron/core/core.js';
import { openLibrary } from '../../electron/core/library/library.js';
import { computeQualityMetrics } from '../../electron/core/quality/quality-metrics.js';
import { reduceForAnalysis } from '../../electron/core/quality/quality-reduce.js';
import { skinImagePixels } from '../fixtures/skin-images.js';
import { integerFromEnvironment } from './bench-environment.js';

const width = 1600;
const height = 1200;

/** Distinct photos without generating 300 large images pixel by pixel: windows of a few larger generated scenes. */
async function ensureImages(folder: string, count: number): Promise<string[]> {
  fs.mkdirSync(folder, { recursive: true });
  const files = Array.from({ length: count }, (_, index) => path.join(folder, `skin-${String(index).padStart(4, '0')}.jpg`));
  const missing = files.filter((file) => !fs.existsSync(file));
  if (missing.length === 0) return files;
  process.stdout.write(`generating ${missing.length} ${width}x${height} JPEGs into ${folder} (once)…\n`);
  const sceneWidth = width + 160;
  const sceneHeight = height + 120;
  const scenes: Array<{ data: Buffer }> = [];
  for (let index = 0; index < count; index++) {
    const file = files[index]!;
    if (fs.existsSync(file)) continue;
    const sceneIndex = index % 12;
    scenes[sceneIndex] ??= skinImagePixels({ seed: 9000 + sceneIndex, width: sceneWidth, height: sceneHeight, toneIndex: sceneIndex % 10 });
    const step = Math.floor(index / 12);
    await sharp(scenes[sceneIndex]!.data, { raw: { width: sceneWidth, height: sceneHeight, channels: 3 } })
      .extract({ left: (step * 7) % 160, top: (step * 5) % 120, width, height })
      .jpeg({ quality: 90 })
      .toFile(`${file}.tmp`);
    fs.renameSync(`${file}.tmp`, file);
  }
  return files;
}

/** Images per second (wall clock) and CPU milliseconds per image (all of this process's threads). */
interface Rate {
  rate: number;
  cpuMs: number;
}

async function rawDecode(files: string[], concurrency: number): Promise<Rate> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  let next = 0;
  let bytes = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < files.length) {
        const file = files[next++]!;
        const data = await sharp(file).raw().toBuffer();
        bytes += data.length;
      }
    }),
  );
  if (bytes !== files.length * width * height * 3) throw new Error('raw decode produced an unexpected size');
  return { rate: files.length / ((performance.now() - started) / 1000), cpuMs: cpuMilliseconds(cpu) / files.length };
}

function cpuMilliseconds(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

async function fullImport(folder: string, count: number, concurrency: number): Promise<Rate> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-import-bench-'));
  const library = openLibrary(path.join(scratch, 'library'));
  try {
    const { import: importer } = createImportServices(library);
    const cpu = process.cpuUsage();
    const started = performance.now();
    const report = await importer.importPaths([folder], { concurrency });
    const seconds = (performance.now() - started) / 1000;
    const cpuMs = cpuMilliseconds(cpu) / count;
    if (report.imported !== count) throw new Error(`expected ${count} imported, got ${report.imported} (${report.failed} failed)`);
    return { rate: count / seconds, cpuMs };
  } finally {
    library.close();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * CPU milliseconds per image of each stage, run one file at a time so process.cpuUsage() (all
 * threads) is attributable: this is what explains the ratio on a machine whose cores are all busy.
 */
async function stageCosts(files: string[]): Promise<Array<[string, number]>> {
  const totals = new Map<string, number>();
  const measure = async <T>(name: string, work: () => Promise<T> | T): Promise<T> => {
    const before = process.cpuUsage();
    const result = await work();
    const used = process.cpuUsage(before);
    totals.set(name, (totals.get(name) ?? 0) + (used.user + used.system) / 1000);
    return result;
  };
  for (const file of files) {
    await measure('raw sharp decode (baseline)', () => sharp(file).raw().toBuffer());
    const bytes = await measure('read file + file sha256', async () => {
      const read = await fs.promises.readFile(file);
      crypto.createHash('sha256').update(read).digest('hex');
      return read;
    });
    const decoded = await measure('import decode (header, rotate, sRGB)', () => decodeImage(bytes));
    const reduced = await measure('downscale to ≤ 512 px (sharp)', () => reduceForAnalysis(decoded.pixels, decoded.width, decoded.height));
    await measure('pixel sha256', () => crypto.createHash('sha256').update(decoded.pixels).digest('hex'));
    await measure('thumbnail 256-px WebP', () => makeThumbnail({ pixels: Buffer.from(reduced.pixels), width: reduced.width, height: reduced.height }));
    await measure('quality metrics', () => computeQualityMetrics(decoded.pixels, decoded.width, decoded.height, reduced));
  }
  return [...totals].map(([name, total]) => [name, total / files.length]);
}

export async function run(): Promise<void> {
  const count = integerFromEnvironment('IMPORT_BENCH_COUNT', 300);
  const concurrency = integerFromEnvironment('IMPORT_BENCH_CONCURRENCY', Math.max(2, Math.min(8, os.availableParallelism() + 1)));
  const folder = path.resolve(import.meta.dirname, '..', '..', '.bench-data', `import-${width}x${height}-${count}`);
  const files = await ensureImages(folder, count);
  const megabytes = files.reduce((sum, file) => sum + fs.statSync(file).size, 0) / 1e6;
  process.stdout.write(
    `${count} JPEGs ${width}x${height} (${megabytes.toFixed(0)} MB), ${os.availableParallelism()} cores, ${concurrency} files in flight, sharp/libvips threads per image ${sharp.concurrency()}, UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? 'default (4)'}\n`,
  );
  // Warm the page cache and sharp so neither side pays for the first touch.
  await rawDecode(files.slice(0, Math.min(20, files.length)), concurrency);
  const decodeRuns: Rate[] = [];
  const importRuns: Rate[] = [];
  for (let round = 0; round < 2; round++) {
    decodeRuns.push(await rawDecode(files, concurrency));
    importRuns.push(await fullImport(folder, count, concurrency));
  }
  const decode = Math.max(...decodeRuns.map((run) => run.rate));
  const imported = Math.max(...importRuns.map((run) => run.rate));
  const decodeCpu = Math.min(...decodeRuns.map((run) => run.cpuMs));
  const importCpu = Math.min(...importRuns.map((run) => run.cpuMs));
  const rows = [
    ['raw sharp decode', `${decode.toFixed(1)} images/s`, decodeRuns.map((run) => run.rate.toFixed(1)).join(', ')],
    ['full import', `${imported.toFixed(1)} images/s`, importRuns.map((run) => run.rate.toFixed(1)).join(', ')],
    ['import / decode', `${(imported / decode).toFixed(2)}`, 'goal ≥ 0.80'],
    ['CPU ms per image', `${decodeCpu.toFixed(1)} / ${importCpu.toFixed(1)}`, 'raw decode / import, all threads, best round'],
    ['CPU ratio', `${(decodeCpu / importCpu).toFixed(2)}`, 'the throughput ratio when every core is busy'],
  ];
  for (const [name, value, detail] of rows) process.stdout.write(`${name!.padEnd(18)} ${value!.padStart(16)}   (${detail})\n`);
  process.stdout.write('\nCPU ms per image by stage (one file at a time, all threads):\n');
  for (const [name, milliseconds] of await stageCosts(files.slice(0, Math.min(30, files.length)))) {
    process.stdout.write(`  ${name.padEnd(38)} ${milliseconds.toFixed(1).padStart(6)}\n`);
  }
}
