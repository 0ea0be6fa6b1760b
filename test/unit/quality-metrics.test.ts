import { describe, expect, it } from 'vitest';
import { isDermError } from '../../electron/common/errors.js';
import {
  defaultQualityThresholds,
  imageFlags,
  oddSizeBounds,
  parseThresholdAssignment,
  quantile,
  resolveThresholds,
  validateThresholdChange,
} from '../../electron/core/quality/quality-flags.js';
import { analysisSize, boxReduce, computeQualityMetrics } from '../../electron/core/quality/quality-metrics.js';
import { explainDecodeError, looksLikeText } from '../../electron/core/import/image-decoder.js';

function image(width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): Uint8Array {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * 3);
  return data;
}

/**
 * The re-blur score and Laplacian variance written out literally (a 9-tap box filter with clamped
 * borders, blurred rows and columns materialised), to check the optimised single pass against.
 */
function literalBlurMeasures(pixels: Uint8Array, width: number, height: number): { blurScore: number; laplacianVariance: number } {
  const grey = (x: number, y: number) => {
    const offset = (Math.min(height - 1, Math.max(0, y)) * width + Math.min(width - 1, Math.max(0, x))) * 3;
    return 77 * pixels[offset]! + 150 * pixels[offset + 1]! + 29 * pixels[offset + 2]!;
  };
  const direction = (along: 'rows' | 'columns') => {
    const [length, lines] = along === 'rows' ? [width, height] : [height, width];
    if (length < 2) return 0;
    const at = (position: number, line: number) => (along === 'rows' ? grey(position, line) : grey(line, position));
    let variation = 0;
    let lost = 0;
    for (let line = 0; line < lines; line++) {
      const blurred = Array.from({ length }, (_, position) => {
        let sum = 0;
        for (let k = -4; k <= 4; k++) sum += at(Math.min(length - 1, Math.max(0, position + k)), line);
        return sum;
      });
      for (let position = 1; position < length; position++) {
        const original = Math.abs(at(position, line) - at(position - 1, line)) * 9;
        const after = Math.abs(blurred[position]! - blurred[position - 1]!);
        variation += original;
        lost += Math.max(0, original - after);
      }
    }
    return variation > 0 ? (variation - lost) / variation : 1;
  };
  let sum = 0;
  let squares = 0;
  let n = 0;
  for (let y = 1; y < height - 1; y++) {
    for (let x = 1; x < width - 1; x++) {
      const value = grey(x - 1, y) + grey(x + 1, y) + grey(x, y - 1) + grey(x, y + 1) - 4 * grey(x, y);
      sum += value;
      squares += value * value;
      n++;
    }
  }
  const laplacian = n > 0 ? squares / n - (sum / n) ** 2 : 0;
  return { blurScore: Math.max(direction('rows'), direction('columns')), laplacianVariance: laplacian / (256 * 256) };
}

describe('quality metrics', () => {
  it('measures brightness with the perceived-brightness formula and its percentiles', () => {
    const black = computeQualityMetrics(
      image(64, 48, () => [0, 0, 0]),
      64,
      48,
    );
    expect(black.brightnessMean).toBe(0);
    expect(black.brightnessP99).toBeLessThan(0.01);
    const white = computeQualityMetrics(
      image(64, 48, () => [255, 255, 255]),
      64,
      48,
    );
    expect(white.brightnessP05).toBeGreaterThan(0.99);
    // √(0.241·200²) / 255 for pure red 200.
    const red = computeQualityMetrics(
      image(64, 48, () => [200, 0, 0]),
      64,
      48,
    );
    expect(red.brightnessMean).toBeCloseTo(Math.sqrt(0.241 * 200 * 200) / 255, 2);
    expect(red.saturationMean).toBeCloseTo(200 / 255, 5);
    // Left half black, right half white: 5th percentile dark, 99th bright.
    const split = computeQualityMetrics(
      image(100, 10, (x) => (x < 50 ? [0, 0, 0] : [255, 255, 255])),
      100,
      10,
    );
    expect(split.brightnessP05).toBeLessThan(0.01);
    expect(split.brightnessP99).toBeGreaterThan(0.99);
    expect(split.entropy).toBeCloseTo(1, 5);
  });

  it('calls a crisp pattern sharp and the same pattern smoothed blurry; a flat image has no contrast to judge', () => {
    const crisp = computeQualityMetrics(
      image(256, 256, (x, y) => (((x >> 3) + (y >> 3)) % 2 === 0 ? [40, 30, 30] : [220, 190, 170])),
      256,
      256,
    );
    const smooth = computeQualityMetrics(
      image(256, 256, (x, y) => {
        const v = 130 + 90 * Math.sin(x / 20) * Math.cos(y / 20);
        return [v, v * 0.85, v * 0.8];
      }),
      256,
      256,
    );
    expect(crisp.blurScore).toBeLessThan(0.3);
    expect(smooth.blurScore).toBeGreaterThan(0.8);
    const flat = computeQualityMetrics(
      image(256, 256, () => [180, 150, 130]),
      256,
      256,
    );
    expect(flat.greyStd).toBeLessThan(1e-6);
    expect(imageFlags(flat, defaultQualityThresholds).map((flag) => flag.flag)).not.toContain('blurry');
    expect(imageFlags(smooth, defaultQualityThresholds).map((flag) => flag.flag)).toContain('blurry');
  });

  it('samples large images on a grid and reduces them to the analysis size', () => {
    expect(analysisSize(1600, 1200)).toEqual({ width: 512, height: 384 });
    expect(analysisSize(300, 200)).toEqual({ width: 300, height: 200 });
    const big = image(1600, 1200, (x) => (x < 800 ? [10, 10, 10] : [250, 250, 250]));
    const reduced = boxReduce(big, 1600, 1200);
    expect(reduced.width).toBe(512);
    expect(reduced.pixels[0]).toBe(10);
    expect(reduced.pixels[reduced.pixels.length - 1]).toBe(250);
    const metrics = computeQualityMetrics(big, 1600, 1200);
    expect(metrics.brightnessMean).toBeCloseTo((Math.sqrt(10 * 10) + Math.sqrt(250 * 250)) / 2 / 255, 2);
    expect(metrics.sizeSqrt).toBeCloseTo(Math.sqrt(1600 * 1200), 6);
    expect(() => computeQualityMetrics(new Uint8Array(10), 4, 4)).toThrow(/4×4×3 = 48 bytes/);
  });
});

describe('quality flags', () => {
  it('computes quantiles and the odd-size range with a floor on the spread', () => {
    expect(quantile([1, 2, 3, 4, 5], 0.5)).toBe(3);
    expect(quantile([1, 2, 3, 4], 0.25)).toBeCloseTo(1.75, 10);
    const same = Array.from({ length: 30 }, () => 1000);
    expect(oddSizeBounds(same, defaultQualityThresholds)).toEqual({ low: 1000 - 3 * 100, high: 1000 + 3 * 100 });
    expect(oddSizeBounds(same.slice(0, 10), defaultQualityThresholds)).toBeNull();
  });

  it('validates threshold changes and NAME=VALUE assignments with errors that name the threshold', () => {
    expect(parseThresholdAssignment('blurryAbove=0.7')).toEqual(['blurryAbove', 0.7]);
    for (const [text, message] of [
      ['blurryAbove', /NAME=VALUE/],
      ['blurriness=0.5', /Unknown quality threshold "blurriness"/],
      ['blurryAbove=high', /"high" is not a number/],
    ] as const) {
      let caught: unknown;
      try {
        parseThresholdAssignment(text);
      } catch (error) {
        caught = error;
      }
      expect(isDermError(caught, 'invalid-input')).toBe(true);
      expect((caught as Error).message).toMatch(message);
    }
    expect(() => validateThresholdChange(defaultQualityThresholds, { darkP99Below: -1 })).toThrow(/darkP99Below/);
    expect(validateThresholdChange(defaultQualityThresholds, { darkP99Below: 0.2 }).darkP99Below).toBe(0.2);
    expect(resolveThresholds({ darkP99Below: 'broken', blurryAbove: 0.7 })).toEqual({ ...defaultQualityThresholds, blurryAbove: 0.7 });
    expect(resolveThresholds(undefined)).toEqual(defaultQualityThresholds);
  });

  it('derives per-image flags from metrics with details', () => {
    const metrics = {
      brightnessMean: 0.05,
      brightnessP05: 0.01,
      brightnessP99: 0.05,
      blurScore: 0.9,
      laplacianVariance: 0,
      entropy: 1,
      saturationMean: 0.001,
      aspectRatio: 10,
      sizeSqrt: 316,
      greyStd: 5,
      width: 1000,
      height: 100,
    };
    const flags = imageFlags(metrics, defaultQualityThresholds);
    expect(flags.map((flag) => flag.flag)).toEqual(['dark', 'blurry', 'low_information', 'grayscale', 'odd_aspect_ratio', 'low_resolution']);
    expect(flags.find((flag) => flag.flag === 'low_resolution')!.detail).toBe('short side 100 px < 300 px');
  });
});

describe('decode error reasons', () => {
  it('tells text from random bytes and names truncation', () => {
    expect(looksLikeText(Buffer.from('hello, this is a note\n'))).toBe(true);
    expect(looksLikeText(Buffer.from([0x89, 0x50, 0x00, 0x01, 0xff]))).toBe(false);
    expect(explainDecodeError(new Error('Input buffer contains unsupported image format'), Buffer.from('text'))).toMatch(/contains text/);
    expect(explainDecodeError(new Error('Input buffer contains unsupported image format'), Buffer.from([0, 1, 2, 200]))).toMatch(/Not a recognised image/);
    expect(explainDecodeError(new Error('VipsJpeg: premature end of JPEG image'), Buffer.from([1]))).toMatch(/truncated/);
  });

  it('computes the re-blur score and Laplacian variance exactly as the literal box-filter definition', () => {
    let seed = 12345;
    const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % 256;
    for (const [width, height] of [
      [1, 1],
      [2, 7],
      [3, 3],
      [5, 11],
      [10, 9],
      [11, 10],
      [37, 23],
    ] as const) {
      const noisy = image(width, height, () => [random(), random(), random()]);
      const ramp = image(width, height, (x, y) => [(x * 13 + y * 5) % 256, (x * 7) % 256, (y * 11) % 256]);
      for (const pixels of [noisy, ramp]) {
        const expected = literalBlurMeasures(pixels, width, height);
        const metrics = computeQualityMetrics(pixels, width, height);
        expect(metrics.blurScore, `${width}×${height}`).toBeCloseTo(expected.blurScore, 12);
        expect(metrics.laplacianVariance, `${width}×${height}`).toBeCloseTo(expected.laplacianVariance, 6);
      }
    }
  });
});
