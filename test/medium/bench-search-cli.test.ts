import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeNpy, writeNpy } from '../../electron/core/embeddings/npy-format.js';
import { writeNpz } from '../../electron/core/embeddings/npz.js';
import { runDermws } from '../fixtures/cli-runner.js';
import { flatNonNegativeVectors } from '../fixtures/clustered-vectors.js';

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) fs.rmSync(folder, { recursive: true, force: true });
});

function scratch(): string {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-bench-cli-'));
  folders.push(folder);
  return folder;
}

/** An .npy file with a hand-written header (dtypes the writer refuses to produce). */
function rawNpy(file: string, descr: string, shape: number[], data: Uint8Array): void {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  while ((10 + header.length + 1) % 64 !== 0) header += ' ';
  header += '\n';
  const preamble = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  fs.writeFileSync(file, Buffer.concat([preamble, Buffer.from(header, 'latin1'), data]));
}

describe('dermws bench search', () => {
  it('builds, calibrates and measures the index on vectors from an .npy or .npz file', async () => {
    const folder = scratch();
    const dim = 96;
    const { data } = flatNonNegativeVectors({ count: 600, dim, clusters: 12, latentDim: 48, seed: 4 });
    writeNpy(path.join(folder, 'vectors.npy'), data, [600, dim]);
    const result = await runDermws('bench', 'search', '--vectors', path.join(folder, 'vectors.npy'), '--json');
    expect(result.code).toBe(0);
    expect(result.json).toMatchObject({ count: 600, dim, k: 10, queries: { count: 100, kind: 'noisy library rows' }, graphDim: dim });
    expect(result.json.calibration).toMatchObject({ target: 0.99, met: true });
    expect(result.json.service.recall).toBeGreaterThanOrEqual(0.97);
    expect(result.json.native.recall).toBeGreaterThanOrEqual(0.97);
    for (const figure of [
      result.json.service.p50Ms,
      result.json.service.p99Ms,
      result.json.openMs,
      result.json.buildSeconds,
      result.json.request.firstMs,
      result.json.request.p50Ms,
    ]) {
      expect(Number.isFinite(figure)).toBe(true);
    }

    // float64 queries in an .npz, SCIN's layout: one 1-D vector per key.
    writeNpz(
      path.join(folder, 'queries.npz'),
      Array.from({ length: 20 }, (_, row): [string, Float64Array, number[]] => [
        `images/${row}.png`,
        Float64Array.from(data.subarray(row * dim, (row + 1) * dim)),
        [dim],
      ]),
    );
    const given = await runDermws('bench', 'search', '--vectors', path.join(folder, 'vectors.npy'), '--queries', path.join(folder, 'queries.npz'), '--k', '5');
    expect(given.code).toBe(0);
    expect(given.stdout).toContain('20 queries (given); recall@5 against an exact scan');
    expect(given.stdout).toMatch(/service query: p50 .* recall@5 1\.000/);
  });

  it('refuses bad files with an error naming the file and the problem', async () => {
    const folder = scratch();
    const good = path.join(folder, 'good.npy');
    writeNpy(good, new Float32Array(40 * 8).fill(0.5), [40, 8]);
    const cases: Array<{ name: string; make: (file: string) => void; message: RegExp; asQueries?: boolean }> = [
      {
        name: 'flat.npy',
        make: (file) => writeNpy(file, new Float32Array(16), [16]),
        message: /expected a 2-D array \(rows × dimensions\); it has shape \(16\)/,
      },
      {
        name: 'nan.npy',
        make: (file) => {
          const values = new Float32Array(40 * 8).fill(0.5);
          values[3 * 8 + 2] = Number.NaN;
          writeNpy(file, values, [40, 8]);
        },
        message: /row 3 has a non-finite value \(NaN\) at column 2/,
      },
      {
        name: 'inf.npy',
        make: (file) => {
          const values = new Float64Array(40 * 8).fill(0.5);
          values[39 * 8] = Number.POSITIVE_INFINITY;
          writeNpy(file, values, [40, 8]);
        },
        message: /row 39 has a non-finite value \(Infinity\)/,
      },
      {
        name: 'wide.npy',
        make: (file) => writeNpy(file, new Float32Array(5 * 9).fill(1), [5, 9]),
        message: /the queries have 9 dimensions; the vectors in .*good\.npy have 8/,
        asQueries: true,
      },
      { name: 'empty.npy', make: (file) => fs.writeFileSync(file, ''), message: /empty\.npy is empty/ },
      { name: 'zero-rows.npy', make: (file) => fs.writeFileSync(file, encodeNpy(new Float32Array(0), [0, 8])), message: /the array is empty \(shape 0 × 8\)/ },
      { name: 'object.npy', make: (file) => rawNpy(file, '|O', [2, 2], new Uint8Array(32)), message: /object\.npy: unsupported dtype "\|O"/ },
      {
        name: 'big-endian.npy',
        make: (file) => rawNpy(file, '>f4', [2, 2], new Uint8Array(16)),
        message: /big-endian\.npy: unsupported dtype ">f4"\. Big-endian arrays are not supported/,
      },
    ];
    for (const item of cases) {
      const file = path.join(folder, item.name);
      item.make(file);
      const args = item.asQueries ? ['--vectors', good, '--queries', file] : ['--vectors', file];
      const result = await runDermws('bench', 'search', ...args);
      expect(result.code, item.name).toBe(2);
      expect(result.stderr, item.name).toMatch(item.message);
      expect(result.stderr, item.name).toContain(item.name);
    }
    const missing = await runDermws('bench', 'search', '--vectors', path.join(folder, 'absent.npy'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('absent.npy does not exist');
  });
});
