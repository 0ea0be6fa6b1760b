import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateVectorKernels, kernelsModule } from '../../build/generate-vector-kernels.mjs';
import { floatToHalf, halfToFloat } from '../../electron/core/index/embedding-copy.js';
import {
  bfloat16ToFloat,
  floatToBfloat16,
  QueryProjector,
  RowScorer,
  SketchTable,
  sketchBytesPerRow,
  type SketchRowCheck,
} from '../../electron/core/math/vector-kernels.js';
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

  it('round float32 to bfloat16 to nearest with ties to even, keeping infinities and NaN', () => {
    const bits = (word: number) => new Float32Array(Uint32Array.of(word).buffer)[0]!;
    expect(floatToBfloat16(1)).toBe(0x3f80);
    expect(floatToBfloat16(-2)).toBe(0xc000);
    expect(floatToBfloat16(bits(0x3f808000))).toBe(0x3f80); // a tie rounds to the even 0x3f80
    expect(floatToBfloat16(bits(0x3f818000))).toBe(0x3f82); // a tie rounds to the even 0x3f82
    expect(floatToBfloat16(bits(0x3f808001))).toBe(0x3f81); // past the tie rounds up
    expect(floatToBfloat16(bits(0x3f807fff))).toBe(0x3f80);
    expect(floatToBfloat16(bits(0x00018000))).toBe(0x0002); // subnormals round the same way
    expect(floatToBfloat16(Infinity)).toBe(0x7f80);
    expect(floatToBfloat16(-Infinity)).toBe(0xff80);
    expect(floatToBfloat16(bits(0x7f7fffff))).toBe(0x7f80); // the largest float32 rounds up to infinity
    expect(Number.isNaN(bfloat16ToFloat(floatToBfloat16(NaN)))).toBe(true);
    expect(Number.isNaN(bfloat16ToFloat(floatToBfloat16(bits(0x7f800001))))).toBe(true); // a NaN whose payload is all in the low bits
    expect(Object.is(bfloat16ToFloat(floatToBfloat16(-0)), -0)).toBe(true);
    for (const value of [0.1, -3.14159, 1e-30, 6.1e4, 1 / 78]) {
      expect(Math.abs(bfloat16ToFloat(floatToBfloat16(value)) - value)).toBeLessThanOrEqual(2 ** -8 * Math.abs(value));
    }
  });

  describe('query projection (bfloat16 weights, float32 sums)', () => {
    /** Weights like PCA axes (unit columns, both signs) and a bias like −mean·V. */
    function projection(inputDim: number, outputDim: number, seed: number) {
      const normal = gaussianSource(seed);
      const weights = Float32Array.from({ length: inputDim * outputDim }, () => normal() / Math.sqrt(inputDim));
      const bias = Float32Array.from({ length: outputDim }, () => normal() * 0.1);
      return { weights, bias, projector: new QueryProjector(inputDim, outputDim, weights, bias) };
    }

    /**
     * Each output against float64 references. (1) With the float32 weights: bfloat16 keeps 8
     * significant bits, so |w̃ − w| ≤ 2⁻⁸·|w|, and the m float32 products and sums add at most
     * γ(m+1) = (m+1)·2⁻²⁴/(1 − (m+1)·2⁻²⁴) of Σ|xᵢ·w̃ᵢⱼ| + |bⱼ| (the standard bound of a recursive
     * sum); so |y − y₆₄| ≤ 2⁻⁸·Σ|xᵢ·wᵢⱼ| + γ(m+1)·((1 + 2⁻⁸)·Σ|xᵢ·wᵢⱼ| + |bⱼ|). (2) With the
     * bfloat16 weights themselves, only the γ(m+1) term is left: that checks layout and arithmetic to
     * float32 rounding, where (1) alone would let a small misplacement through.
     */
    function expectWithinBounds(inputDim: number, outputDim: number, weights: Float32Array, bias: Float32Array, query: Float32Array, out: Float32Array) {
      expect(out.length).toBe(outputDim);
      const m = query.filter((value) => value !== 0).length;
      const gamma = ((m + 1) * 2 ** -24) / (1 - (m + 1) * 2 ** -24);
      let worst = 0;
      for (let column = 0; column < outputDim; column++) {
        let exact = bias[column]!;
        let rounded = bias[column]!;
        let magnitude = 0;
        for (let row = 0; row < inputDim; row++) {
          const weight = weights[row * outputDim + column]!;
          exact += query[row]! * weight;
          rounded += query[row]! * bfloat16ToFloat(floatToBfloat16(weight));
          magnitude += Math.abs(query[row]! * weight);
        }
        const summation = gamma * ((1 + 2 ** -8) * magnitude + Math.abs(bias[column]!));
        const error = Math.abs(out[column]! - exact);
        expect(error, `column ${column}`).toBeLessThanOrEqual(2 ** -8 * magnitude + summation);
        expect(Math.abs(out[column]! - rounded), `column ${column} against the bfloat16 weights`).toBeLessThanOrEqual(summation);
        worst = Math.max(worst, error / magnitude);
      }
      return worst;
    }

    const bitsOf = (values: Float32Array) => Array.from(new Uint32Array(values.slice().buffer));

    it.each([
      [6144, 384],
      [1280, 100],
      [37, 5],
      [8, 32],
    ])('projects %i → %i like x · W + b in float64, post-ReLU and dense queries alike', (inputDim, outputDim) => {
      const { weights, bias, projector } = projection(inputDim, outputDim, inputDim + outputDim);
      const relu = reluRows(1, inputDim, 3);
      const normal = gaussianSource(4);
      const dense = Float32Array.from({ length: inputDim }, () => normal());
      if (inputDim > 8) expect(relu.filter((value) => value === 0).length).toBeGreaterThan(inputDim * 0.2);
      for (const query of [relu, dense]) {
        const worst = expectWithinBounds(inputDim, outputDim, weights, bias, query, projector.project(query));
        // The bound is a worst case; rounding errors of both signs mostly cancel.
        expect(worst).toBeLessThan(2 ** -8);
      }
    });

    it('skipping zeros gives exactly the bits of multiplying them, negative zeros included; the same query twice gives the same bits', () => {
      const inputDim = 1283;
      const outputDim = 70;
      const { weights, bias, projector } = projection(inputDim, outputDim, 8);
      const query = reluRows(1, inputDim, 12);
      for (let at = 5; at < inputDim; at += 97) if (query[at] === 0) query[at] = -0;
      const skipping = projector.project(query);
      expect(bitsOf(skipping)).toEqual(bitsOf(projector.project(query, { keepZeros: true })));
      expect(bitsOf(projector.project(query))).toEqual(bitsOf(skipping));
      // A second projector from the same weights (fresh memory) agrees to the bit.
      expect(bitsOf(new QueryProjector(inputDim, outputDim, weights, bias).project(query))).toEqual(bitsOf(skipping));
      // The same values one place later give other bits: each kept value is paired with its own row.
      const shifted = query.slice();
      shifted.copyWithin(1, 0);
      expect(bitsOf(projector.project(shifted))).not.toEqual(bitsOf(skipping));
    });

    it('an all-zero query gives the bias exactly, with no NaN', () => {
      const { bias, projector } = projection(100, 45, 2);
      const out = projector.project(new Float32Array(100));
      expect(Array.from(out)).toEqual(Array.from(bias));
      expect(out.every((value) => Number.isFinite(value))).toBe(true);
      expect(Array.from(projector.project(new Float32Array(100), { keepZeros: true }))).toEqual(Array.from(bias));
    });

    it('refuses a query of the wrong width, mismatched weights, and any use after release', () => {
      const { projector } = projection(37, 5, 1);
      expect(() => projector.project(new Float32Array(36))).toThrow(/36 values; the projection takes 37/);
      expect(() => new QueryProjector(37, 5, new Float32Array(37 * 5 - 1), new Float32Array(5))).toThrow(/needs 185 weights and 5 biases; got 184 and 5/);
      projector.release();
      expect(projector.memoryBytes).toBe(0);
      expect(() => projector.project(new Float32Array(37))).toThrow(/released/);
    });
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
