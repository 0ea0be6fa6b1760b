import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateVectorKernels, kernelsModule } from '../../build/generate-vector-kernels.mjs';
import { floatToHalf, halfToFloat } from '../../electron/core/index/embedding-copy.js';
import { RowScorer, SketchTable, sketchBytesPerRow, type SketchRowCheck } from '../../electron/core/math/vector-kernels.js';
import { gaussianSource } from '../../electron/core/math/randomized-pca.js';

/** Post-ReLU-like rows: ~40% exact zeros, the rest positive. */
function reluRows(count: number, dim: number, seed: number): Float32Array {
  const normal = gaussianSource(seed);
  const rows = new Float32Array(count * dim);
  for (let index = 0; index < rows.length; index++) rows[index] = Math.max(0, normal() + 0.25);
  for (let row = 0; row < count; row++) {
    const values = rows.subarray(row * dim, (row + 1) * dim);
    const norm = Math.hypot(...values);
    for (let at = 0; at < dim; at++) values[at]! /= norm;
  }
  return rows;
}

function loadHalves(scorer: RowScorer, slot: number, halves: Uint16Array): void {
  const bytes = scorer.slot(slot);
  new Uint16Array(bytes.buffer, bytes.byteOffset, halves.length).set(halves);
}

describe('WebAssembly vector kernels', () => {
  it('are compiled from vector-kernels.wat as committed (else run npm run generate:kernels)', async () => {
    expect(fs.readFileSync(kernelsModule, 'utf8')).toBe(await generateVectorKernels());
  });

  it('decode every finite float16 exactly, subnormals and signs included, and sum the raw words', () => {
    const dim = 3; // padded to 8 by the scorer: the padding must read as zeros
    const scorer = new RowScorer(dim, 'float16', 256);
    scorer.setQuery(Float32Array.of(1, 0, 0));
    const finite = Array.from({ length: 65536 }, (_, half) => half).filter((half) => ((half >> 10) & 0x1f) !== 31);
    const wrong: string[] = [];
    for (let start = 0; start < finite.length; start += 256) {
      const batch = finite.slice(start, start + 256);
      batch.forEach((half, slot) => loadHalves(scorer, slot, Uint16Array.of(half, 0, 0)));
      scorer.score(batch.length);
      batch.forEach((half, slot) => {
        const value = halfToFloat(half);
        // -0 times 1 plus the +0 the sum starts from is +0.
        if (scorer.dot(slot) !== (value === 0 ? 0 : value)) wrong.push(`0x${half.toString(16)}: dot ${scorer.dot(slot)}, expected ${value}`);
        if (scorer.squares(slot) !== Math.fround(value * value)) wrong.push(`0x${half.toString(16)}: squares ${scorer.squares(slot)}`);
        if (scorer.words(slot) !== half) wrong.push(`0x${half.toString(16)}: word sum ${scorer.words(slot)}`);
      });
    }
    expect(finite.length).toBe(63488);
    expect(wrong).toEqual([]);
  });

  it('score float16 and float32 rows like a float64 reference, on a width that is not a multiple of 8', () => {
    const dim = 6141;
    const rows = reluRows(40, dim, 5);
    const query = reluRows(1, dim, 6);
    for (const precision of ['float16', 'float32'] as const) {
      const scorer = new RowScorer(dim, precision, 16);
      scorer.setQuery(query);
      for (let start = 0; start < 40; start += 16) {
        const count = Math.min(16, 40 - start);
        const decoded: Float32Array[] = [];
        const words: number[] = [];
        for (let slot = 0; slot < count; slot++) {
          const values = rows.subarray((start + slot) * dim, (start + slot + 1) * dim);
          const bytes = scorer.slot(slot);
          if (precision === 'float16') {
            const halves = Uint16Array.from(values, floatToHalf);
            loadHalves(scorer, slot, halves);
            decoded.push(Float32Array.from(halves, halfToFloat));
            words.push(halves.reduce((sum, half) => (sum + half) | 0, 0));
          } else {
            new Float32Array(bytes.buffer, bytes.byteOffset, dim).set(values);
            decoded.push(values);
            words.push(new Int32Array(values.slice().buffer).reduce((sum, word) => (sum + word) | 0, 0));
          }
        }
        scorer.score(count);
        decoded.forEach((values, slot) => {
          let dot = 0;
          let squares = 0;
          for (let at = 0; at < dim; at++) {
            dot += query[at]! * values[at]!;
            squares += values[at]! * values[at]!;
          }
          expect(Math.abs(scorer.dot(slot) - dot)).toBeLessThan(1e-5 * dot);
          expect(Math.abs(scorer.squares(slot) - squares)).toBeLessThan(1e-5 * squares);
          expect(scorer.words(slot)).toBe(words[slot]);
        });
      }
    }
  });

  it('any single flipped bit, the last value included, changes a float16 row’s word sum', () => {
    const dim = 13;
    const scorer = new RowScorer(dim, 'float16', 1);
    scorer.setQuery(new Float32Array(dim));
    const halves = Uint16Array.from(reluRows(1, dim, 9), floatToHalf);
    loadHalves(scorer, 0, halves);
    scorer.score(1);
    const intact = scorer.words(0);
    for (let at = 0; at < dim; at++) {
      for (let bit = 0; bit < 16; bit++) {
        const damaged = halves.slice();
        damaged[at]! ^= 1 << bit;
        loadHalves(scorer, 0, damaged);
        scorer.score(1);
        expect(scorer.words(0), `value ${at}, bit ${bit}`).not.toBe(intact);
      }
    }
  });
});

describe('4-bit sketch kernel', () => {
  /** Scores `rows` of the table (row numbers) against `query`. */
  function sketchScores(table: SketchTable, query: Float32Array, rows: number[], checks: SketchRowCheck[]): { scores: Float64Array; words: Int32Array } {
    const scores = new Float64Array(rows.length);
    const words = new Int32Array(rows.length);
    table.setQuery(query);
    table.score(
      rows,
      rows.map((row) => checks[row]),
      scores,
      words,
    );
    return { scores, words };
  }

  it('scores every row within the bound its 4-bit codes and the 12-bit query allow, on widths that are not a multiple of 32', () => {
    for (const dim of [37, 96, 1280, 6141]) {
      const rows = reluRows(50, dim, dim);
      const query = reluRows(1, dim, dim + 1);
      // Start small so encoding grows the memory under the rows already written.
      const table = new SketchTable(dim, 4);
      const checks = Array.from({ length: 50 }, (_, row) => table.encode(row, rows.subarray(row * dim, (row + 1) * dim)));
      expect(table.codes(0, 1).length).toBe(sketchBytesPerRow(dim));
      const { scores, words } = sketchScores(
        table,
        query,
        Array.from({ length: 50 }, (_, row) => row),
        checks,
      );
      const queryScale = Math.max(...query.map(Math.abs)) / 2047;
      const bad: string[] = [];
      for (let row = 0; row < 50; row++) {
        const values = rows.subarray(row * dim, (row + 1) * dim);
        let exact = 0;
        let codeSum = 0;
        let queryAbs = 0;
        for (let at = 0; at < dim; at++) {
          exact += query[at]! * values[at]!;
          codeSum += checks[row]!.step > 0 ? (values[at]! - checks[row]!.min) / checks[row]!.step + 0.5 : 0;
          queryAbs += Math.abs(query[at]!);
        }
        // value = min + code·step + e (|e| ≤ step/2); query = q̂ + d (|d| ≤ scale/2):
        // |score − exact| ≤ step·(scale/2)·Σcodes + (step/2)·Σ|q|, plus float rounding.
        const bound = checks[row]!.step * (queryScale / 2) * codeSum + (checks[row]!.step / 2) * queryAbs + 1e-6;
        if (!(Math.abs(scores[row]! - exact) <= bound)) bad.push(`${dim}-d row ${row}: ${scores[row]} against ${exact} (bound ${bound})`);
        if (words[row] !== checks[row]!.words) bad.push(`${dim}-d row ${row}: word sum ${words[row]}, stored ${checks[row]!.words}`);
      }
      expect(bad).toEqual([]);
    }
  });

  it('ranks rows close to the exact order, is exact for a constant row, and its word sum sees one changed byte', () => {
    const dim = 6144;
    const rows = reluRows(64, dim, 77);
    const query = reluRows(1, dim, 78);
    const table = new SketchTable(dim, 64);
    const checks = Array.from({ length: 64 }, (_, row) => table.encode(row, rows.subarray(row * dim, (row + 1) * dim)));
    const all = Array.from({ length: 64 }, (_, row) => row);
    const { scores } = sketchScores(table, query, all, checks);
    const exact = all.map((row) => rows.subarray(row * dim, (row + 1) * dim).reduce((sum, value, at) => sum + value * query[at]!, 0));
    // These rows' cosines with the query spread over ~0.2; the sketch's error is ~1e-3.
    const largest = Math.max(...all.map((row) => Math.abs(scores[row]! - exact[row]!)));
    expect(largest).toBeLessThan(3e-3);
    expect(largest).toBeGreaterThan(0);

    const constant = new Float32Array(dim).fill(1 / Math.sqrt(dim));
    checks[5] = table.encode(5, constant);
    expect(checks[5]!.step).toBe(0);
    const [score] = sketchScores(table, query, [5], checks).scores;
    const sum = query.reduce((total, value) => total + value, 0);
    expect(score).toBeCloseTo(Math.fround(1 / Math.sqrt(dim)) * sum, 12);

    const bytes = table.codes(9, 1);
    bytes[100]! ^= 0x10;
    const { words } = sketchScores(table, query, [9], checks);
    expect(words[0]).not.toBe(checks[9]!.words);
  });
});
