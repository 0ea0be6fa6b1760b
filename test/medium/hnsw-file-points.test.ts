import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import hnswlib from 'hnswlib-node';
import { afterEach, describe, expect, it } from 'vitest';
import { readPointsFromIndexFile } from '../../electron/core/index/hnsw-file-points.js';
import { gaussianSource } from '../../electron/core/math/randomized-pca.js';

/** Points read out of a real hnswlib index file agree with getPoint; a file it cannot vouch for is refused. */
const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) fs.rmSync(folder, { recursive: true, force: true });
});

describe('points from an hnswlib index file', () => {
  it('reads the wanted labels in the order asked, and refuses a short file, another dimension or a missing label', async () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dermws-hnsw-points-'));
    folders.push(folder);
    const dim = 37;
    const normal = gaussianSource(5);
    const index = new hnswlib.HierarchicalNSW('l2', dim);
    index.initIndex({ maxElements: 600, m: 8, efConstruction: 50, randomSeed: 3 });
    // Labels out of insertion order, some marked deleted: the file keeps them all.
    const labels = Array.from({ length: 500 }, (_, position) => 10_000 - position * 7);
    const added = new Map<number, number[]>();
    for (const label of labels) {
      const point = Array.from({ length: dim }, () => Math.fround(normal()));
      added.set(label, point);
      index.addPoint(point, label);
    }
    index.markDelete(labels[3]!);
    const file = path.join(folder, 'points.hnsw');
    await index.writeIndex(file);

    const wanted = [labels[499]!, labels[0]!, labels[250]!, labels[3]!];
    const out = new Float32Array(wanted.length * dim);
    expect(readPointsFromIndexFile(file, dim, new Map(wanted.map((label, row) => [label, row])), out)).toBe(true);
    wanted.forEach((label, row) => expect(Array.from(out.subarray(row * dim, (row + 1) * dim))).toEqual(added.get(label)));
    expect(Array.from(out.subarray(0, dim))).toEqual(index.getPoint(wanted[0]!));

    const rows = new Map(wanted.map((label, row) => [label, row]));
    expect(readPointsFromIndexFile(file, dim + 1, rows, new Float32Array(wanted.length * (dim + 1)))).toBe(false);
    expect(readPointsFromIndexFile(file, dim, new Map([[123_456_789, 0]]), new Float32Array(dim))).toBe(false);
    const short = path.join(folder, 'short.hnsw');
    fs.writeFileSync(short, fs.readFileSync(file).subarray(0, 96 + 100 * 8));
    expect(readPointsFromIndexFile(short, dim, rows, out)).toBe(false);
  });
});
