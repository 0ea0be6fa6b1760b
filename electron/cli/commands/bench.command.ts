import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { DermError } from '../../common/errors.js';
import { globalOptions, parsePositiveInteger, printCliOutput } from '../cli-context.js';

/**
 * `dermws bench search --vectors X.npy [--queries Q.npy] [--k 10] [--json]`: the similar-case index
 * measured on a researcher's own embeddings (SCIN ships Derm Foundation embeddings as npz) in a
 * temporary library; the user's library is not opened. --json prints the benchSearch schema of cli-outputs.ts.
 */
export function registerBenchCommands(program: Command): void {
  const bench = program.command('bench').description('measure the workstation on your own data');
  bench
    .command('search')
    .description(
      'build the similar-case index on your vectors in a temporary library and report build, fit and open time, memory, query latency and recall@k against an exact scan',
    )
    .requiredOption('--vectors <file>', '.npy or .npz with a 2-D float32/float64 array (rows × dimensions)')
    .option('--queries <file>', '.npy or .npz with query vectors of the same width (default: 100 library rows with noise added)')
    .option('--k <n>', 'neighbours per query for recall@k, 1..100 (default 10)')
    .action(async (options: { vectors: string; queries?: string; k?: string }, command: Command) => {
      const { json } = globalOptions(command);
      const k = options.k === undefined ? 10 : parsePositiveInteger('--k', options.k, 100);
      // The benchmark (hnswlib, the npz reader) is loaded by this command only.
      const { benchmarkSearch, formatSearchBenchmark } = await import('../../core/search/search-benchmark.js');
      const vectors = await readMatrix(options.vectors);
      const queries = options.queries === undefined ? undefined : await readMatrix(options.queries);
      if (queries && queries.dim !== vectors.dim) {
        throw new DermError(
          'invalid-input',
          `${path.resolve(options.queries!)}: the queries have ${queries.dim} dimensions; the vectors in ${path.resolve(options.vectors)} have ${vectors.dim}.`,
          {
            file: options.queries,
          },
        );
      }
      if (k >= vectors.rows)
        throw new DermError('invalid-input', `--k ${k} needs more than ${k} vectors; ${path.resolve(options.vectors)} has ${vectors.rows}.`, { field: 'k' });
      const report = await benchmarkSearch({
        vectors: vectors.data,
        count: vectors.rows,
        dim: vectors.dim,
        k,
        ...(queries ? { queries: queries.data } : {}),
        onStep: json ? undefined : (line) => process.stderr.write(`${line}…\n`),
      });
      if (json) await printCliOutput('benchSearch', report);
      else process.stdout.write(`${formatSearchBenchmark(report).join('\n')}\n`);
    });
}

/** A 2-D float matrix from an .npy file or the single 2-D array of an .npz file, checked, as float32. */
async function readMatrix(file: string): Promise<{ rows: number; dim: number; data: Float32Array }> {
  const [{ readNpy }, { readNpzEntries }, { checkBenchmarkVectors }] = await Promise.all([
    import('../../core/embeddings/npy-format.js'),
    import('../../core/embeddings/npz.js'),
    import('../../core/search/search-benchmark.js'),
  ]);
  const resolved = path.resolve(file);
  if (!fs.existsSync(resolved)) throw new DermError('not-found', `${resolved} does not exist.`, { file: resolved });
  if (fs.statSync(resolved).size === 0) throw new DermError('invalid-input', `${resolved} is empty.`, { file: resolved });
  let array: { shape: number[]; data: Float32Array | Float64Array; source: string };
  if (resolved.endsWith('.npz')) {
    const matrices: Array<{ key: string; shape: number[]; data: Float32Array | Float64Array; source: string }> = [];
    for await (const entry of readNpzEntries(resolved))
      matrices.push({ key: entry.key, shape: entry.shape, data: entry.data, source: `${resolved}, key "${entry.key}"` });
    const twoD = matrices.filter((entry) => entry.shape.length === 2);
    let chosen = twoD.length === 1 ? twoD[0] : twoD.find((entry) => entry.key === 'embeddings');
    const width = matrices[0]?.shape[0];
    if (!chosen && matrices.length > 0 && matrices.every((entry) => entry.shape.length === 1 && entry.shape[0] === width)) {
      // SCIN's layout: one 1-D embedding per key (the image path); the rows are the entries in archive order.
      const data = new Float32Array(matrices.length * width!);
      matrices.forEach((entry, row) => data.set(entry.data, row * width!));
      chosen = { key: '(one vector per key)', shape: [matrices.length, width!], data, source: resolved };
    }
    if (!chosen) {
      throw new DermError(
        'invalid-input',
        `${resolved}: expected one 2-D array (or one named "embeddings", or one 1-D vector of the same width per key); found ${matrices.map((entry) => `"${entry.key}" (${entry.shape.join(' × ') || 'scalar'})`).join(', ') || 'no arrays'}.`,
        { file: resolved },
      );
    }
    array = chosen;
  } else {
    const npy = readNpy(resolved);
    array = { shape: npy.shape, data: npy.data, source: resolved };
  }
  checkBenchmarkVectors(array.data, array.shape, array.source);
  const [rows, dim] = array.shape as [number, number];
  return { rows, dim, data: array.data instanceof Float32Array ? array.data : Float32Array.from(array.data) };
}
