/**
 * Image-quality metrics computed from the one decode an import makes: 8-bit sRGB pixels, 3 channels,
 * after EXIF orientation and alpha flattening. Pure functions; no I/O.
 *
 * Formulas (metrics version 1):
 * - brightness of a pixel b = √(0.241·R² + 0.691·G² + 0.068·B²) / 255 (perceived brightness, as in
 *   cleanvision), summarised by its mean, 5th and 99th percentiles (over a grid sample of the
 *   pixels, see computeQualityMetrics);
 * - entropy: Shannon entropy in bits of the 256-bin histogram of b (0 … 8);
 * - saturation: mean chroma (max(R,G,B) − min(R,G,B)) / 255. Chroma rather than HSV saturation
 *   because HSV saturation turns sensor noise in near-black pixels into large values;
 * - blur (0 sharp … 1 fully blurred): the re-blur measure of Crete et al. (2007) on the Rec. 601
 *   luma (0.299 R + 0.587 G + 0.114 B) of the image downscaled to at most 512 px on the long side
 *   (the analysis image). It is blurred again with a 9-tap box filter along rows and along columns; the share of neighbour-to-neighbour variation
 *   that survives the re-blur is how blurred the image already was. Because it is a ratio of the
 *   image to itself it is normalised by local contrast: a dim, low-contrast photo is not called
 *   blurry for being dim. The larger of the row and column values is kept;
 * - greyStd: standard deviation of that luma (grey levels, 0 … 255). An image with almost no
 *   contrast has no edges whose sharpness could be judged, so blur is not assessed below a minimum
 *   contrast: a flat, uniform image is low-information, not blurry (cleanvision's false positive);
 * - laplacianVariance: variance of the 4-neighbour Laplacian of the same grey image, kept for
 *   comparison with the usual Laplacian-variance detector (grey levels², not used for flags);
 * - aspectRatio = width / height; sizeSqrt = √(width · height).
 */
export const metricsVersion = 1;

export interface QualityMetrics {
  brightnessMean: number;
  brightnessP05: number;
  brightnessP99: number;
  blurScore: number;
  laplacianVariance: number;
  entropy: number;
  saturationMean: number;
  aspectRatio: number;
  sizeSqrt: number;
  greyStd: number;
  width: number;
  height: number;
}

export const blurAnalysisSide = 512;
const reblurTaps = 9;

// Per-channel weights are integer lookups, so a pixel's squared brightness (0 … 65025) is an integer;
// its square root is taken directly (a 65k-entry table of roots would be 0.5 MB of cache misses).
// Rounding the squared brightness changes b by less than 0.002 at its darkest non-zero value.
const weightRed = new Float64Array(256);
const weightGreen = new Float64Array(256);
const weightBlue = new Float64Array(256);
for (let value = 0; value < 256; value++) {
  weightRed[value] = 0.241 * value * value;
  weightGreen[value] = 0.691 * value * value;
  weightBlue[value] = 0.068 * value * value;
}
const redSquared = new Int32Array(256);
const greenSquared = new Int32Array(256);
const blueSquared = new Int32Array(256);
for (let value = 0; value < 256; value++) {
  redSquared[value] = Math.round(weightRed[value]! * 64);
  greenSquared[value] = Math.round(weightGreen[value]! * 64);
  blueSquared[value] = Math.round(weightBlue[value]! * 64);
}

/** A downscaled copy of the image (RGB, at most blurAnalysisSide on the long side) used for the blur measures. */
export interface ReducedImage {
  pixels: Uint8Array;
  width: number;
  height: number;
}

/** At most this many pixels are visited for the brightness, entropy and saturation statistics. */
export const statisticsSampleTarget = 65_536;

/**
 * Computes every metric. Brightness, entropy and saturation are statistics of the full-resolution
 * pixels, read on a regular grid of every k-th pixel in both directions with k chosen so at most
 * ~65k pixels are visited (k = 1 up to 0.065 MP, 6 for a 1600×1200 photo): the 5th and 99th
 * percentiles rest on thousands and hundreds of samples and the 256-bin entropy's sampling bias is
 * below 0.01 bit, and it keeps the measurement cheap next to the decode. Blur, greyStd and the
 * Laplacian come from `reduced`, the analysis image made once per image by libvips (see
 * reduceForAnalysis in quality-reduce.ts); without it, it is computed here by box averaging, which
 * gives slightly different blur values.
 */
export function computeQualityMetrics(pixels: Uint8Array, width: number, height: number, reduced?: ReducedImage): QualityMetrics {
  if (pixels.length !== width * height * 3) {
    throw new RangeError(`Expected ${width}×${height}×3 = ${width * height * 3} bytes of RGB pixels, got ${pixels.length}.`);
  }
  const small = reduced ?? boxReduce(pixels, width, height);
  if (small.pixels.length !== small.width * small.height * 3) {
    throw new RangeError(`Expected a reduced image of ${small.width}×${small.height}×3 bytes, got ${small.pixels.length}.`);
  }
  const step = Math.max(1, Math.ceil(Math.sqrt((width * height) / statisticsSampleTarget)));
  const histogram = new Uint32Array(256);
  let brightnessTotal = 0;
  let chromaTotal = 0;
  let count = 0;
  for (let y = Math.floor(step / 2); y < height; y += step) {
    let offset = (y * width + Math.floor(step / 2)) * 3;
    const rowEnd = (y + 1) * width * 3;
    for (; offset < rowEnd; offset += step * 3) {
      const r = pixels[offset]!;
      const g = pixels[offset + 1]!;
      const b = pixels[offset + 2]!;
      // Weights scaled by 64 keep 6 bits of the fraction; >> 6 with rounding gives the squared brightness.
      const squared = (redSquared[r]! + greenSquared[g]! + blueSquared[b]! + 32) >> 6;
      const root = Math.sqrt(squared);
      brightnessTotal += root;
      histogram[root < 255 ? Math.floor(root) : 255]!++;
      const max = r > g ? (r > b ? r : b) : g > b ? g : b;
      const min = r < g ? (r < b ? r : b) : g < b ? g : b;
      chromaTotal += max - min;
      count++;
    }
  }

  // Grey of the analysis image as Rec. 601 luma scaled by 256 (integers 0 … 65280): integer
  // arithmetic keeps the blur measures cheap, and they are ratios or are rescaled below.
  const grey = new Int32Array(small.width * small.height);
  const smallPixels = small.pixels;
  let greySum = 0;
  let greySquares = 0;
  for (let index = 0, offset = 0; index < grey.length; index++, offset += 3) {
    const value = 77 * smallPixels[offset]! + 150 * smallPixels[offset + 1]! + 29 * smallPixels[offset + 2]!;
    grey[index] = value;
    greySum += value;
    greySquares += value * value;
  }
  const greyMean = greySum / grey.length;
  const greyStd = Math.sqrt(Math.max(0, greySquares / grey.length - greyMean * greyMean)) / 256;

  const blur = blurMeasures(grey, small.width, small.height);

  let entropy = 0;
  for (const bin of histogram) {
    if (bin === 0) continue;
    const p = bin / count;
    entropy -= p * Math.log2(p);
  }
  return {
    brightnessMean: brightnessTotal / count / 255,
    brightnessP05: histogramPercentile(histogram, count, 0.05) / 255,
    brightnessP99: histogramPercentile(histogram, count, 0.99) / 255,
    blurScore: blur.blurScore,
    laplacianVariance: blur.laplacianVariance / (256 * 256),
    entropy: Math.max(0, entropy),
    saturationMean: chromaTotal / count / 255,
    aspectRatio: width / height,
    sizeSqrt: Math.sqrt(width * height),
    greyStd,
    width,
    height,
  };
}

/** The size of the analysis image for a width × height photo: fits inside blurAnalysisSide, never enlarged. */
export function analysisSize(width: number, height: number): { width: number; height: number } {
  const scale = Math.max(1, Math.max(width, height) / blurAnalysisSide);
  return { width: Math.max(1, Math.round(width / scale)), height: Math.max(1, Math.round(height / scale)) };
}

/** Area-averaging downscale in plain JavaScript, for callers that have no reduced image at hand. */
export function boxReduce(pixels: Uint8Array, width: number, height: number): ReducedImage {
  const size = analysisSize(width, height);
  if (size.width === width && size.height === height) return { pixels, width, height };
  const sums = new Float64Array(size.width * size.height * 3);
  const counts = new Uint32Array(size.width * size.height);
  for (let y = 0; y < height; y++) {
    const rowBase = Math.min(size.height - 1, Math.floor((y * size.height) / height)) * size.width;
    for (let x = 0; x < width; x++) {
      const cell = rowBase + Math.min(size.width - 1, Math.floor((x * size.width) / width));
      const offset = (y * width + x) * 3;
      sums[cell * 3]! += pixels[offset]!;
      sums[cell * 3 + 1]! += pixels[offset + 1]!;
      sums[cell * 3 + 2]! += pixels[offset + 2]!;
      counts[cell]!++;
    }
  }
  const reduced = new Uint8Array(sums.length);
  for (let cell = 0; cell < counts.length; cell++) {
    for (let channel = 0; channel < 3; channel++) reduced[cell * 3 + channel] = Math.round(sums[cell * 3 + channel]! / Math.max(1, counts[cell]!));
  }
  return { pixels: reduced, width: size.width, height: size.height };
}

/** The value below which `fraction` of the pixels lie, interpolated inside the bin (bins are 1 grey level wide). */
function histogramPercentile(histogram: Uint32Array, count: number, fraction: number): number {
  const target = fraction * count;
  let seen = 0;
  for (let bin = 0; bin < histogram.length; bin++) {
    const inBin = histogram[bin]!;
    if (inBin > 0 && seen + inBin >= target) return Math.min(255, bin + (target - seen) / inBin);
    seen += inBin;
  }
  return 255;
}

const half = (reblurTaps - 1) / 2;

/**
 * The blur score (Crete et al.'s re-blur measure, rows and columns; the blurrier direction wins) and
 * the Laplacian variance of the grey analysis image, in one walk over its rows.
 *
 * Re-blur: a box filter of reblurTaps samples (clamped at the borders), kept as a sum (reblurTaps ×
 * the blurred value), so original neighbour differences are multiplied by reblurTaps to compare like
 * with like. The difference between two neighbouring box sums is the sample entering the window minus
 * the one leaving it, |g[x + half] − g[x − half − 1]|, so no running sum is kept. Each row is copied
 * with its border samples repeated (no clamping inside the loop), and for every row that has
 * neighbours above and below, the row, column and Laplacian terms of a pixel are taken in the same
 * step while its neighbours are in registers and cache. Math.abs and Math.max rather than
 * comparisons: photo gradients are too irregular for branch prediction, and mispredicted branches
 * cost more than the arithmetic. The re-blur sums are of integers below 2^53, so they are exact
 * whatever the order of the additions; the Laplacian sums are taken in row-major order.
 */
function blurMeasures(grey: Int32Array, width: number, height: number): { blurScore: number; laplacianVariance: number } {
  const lastX = width - 1;
  const lastY = height - 1;
  // Module constants copied into locals: the loops below then use them as plain numbers.
  const taps = reblurTaps;
  const radius = half;
  // Row y with its first and last sample repeated radius + 1 times on each side: padded[i] = g[clamp(i − radius)].
  const padded = new Int32Array(width + 2 * radius + 1);
  let rowVariation = 0;
  let rowLost = 0;
  let columnVariation = 0;
  let columnLost = 0;
  let laplacianSum = 0;
  let laplacianSquares = 0;
  for (let y = 0; y < height; y++) {
    const base = y * width;
    const first = grey[base]!;
    const final = grey[base + lastX]!;
    for (let i = 0; i < radius; i++) padded[i] = first;
    padded.set(grey.subarray(base, base + width), radius);
    for (let i = radius + width; i < padded.length; i++) padded[i] = final;
    const above = base - width;
    const entering = (y + radius > lastY ? lastY : y + radius) * width;
    const leaving = (y - radius - 1 < 0 ? 0 : y - radius - 1) * width;

    if (y >= 1 && y < lastY && width >= 3) {
      const below = base + width;
      // x = 0: column term only (a row term starts at x = 1, the Laplacian at x = 1).
      let original = Math.abs(first - grey[above]!) * taps;
      columnVariation += original;
      columnLost += Math.max(0, original - Math.abs(grey[entering]! - grey[leaving]!));
      for (let x = 1; x < lastX; x++) {
        const current = padded[x + radius]!;
        const left = padded[x + radius - 1]!;
        const up = grey[above + x]!;
        original = Math.abs(current - left) * taps;
        rowVariation += original;
        rowLost += Math.max(0, original - Math.abs(padded[x + 2 * radius]! - padded[x - 1]!));
        original = Math.abs(current - up) * taps;
        columnVariation += original;
        columnLost += Math.max(0, original - Math.abs(grey[entering + x]! - grey[leaving + x]!));
        const laplacian = left + padded[x + radius + 1]! + up + grey[below + x]! - 4 * current;
        laplacianSum += laplacian;
        laplacianSquares += laplacian * laplacian;
      }
      original = Math.abs(final - padded[lastX + radius - 1]!) * taps;
      rowVariation += original;
      rowLost += Math.max(0, original - Math.abs(padded[lastX + 2 * radius]! - padded[lastX - 1]!));
      original = Math.abs(final - grey[above + lastX]!) * taps;
      columnVariation += original;
      columnLost += Math.max(0, original - Math.abs(grey[entering + lastX]! - grey[leaving + lastX]!));
      continue;
    }

    // First and last rows, and images too narrow for the Laplacian: row and column terms separately.
    for (let x = 1; x < width; x++) {
      const original = Math.abs(padded[x + radius]! - padded[x + radius - 1]!) * taps;
      rowVariation += original;
      rowLost += Math.max(0, original - Math.abs(padded[x + 2 * radius]! - padded[x - 1]!));
    }
    if (y >= 1) {
      for (let x = 0; x < width; x++) {
        const original = Math.abs(grey[base + x]! - grey[above + x]!) * taps;
        columnVariation += original;
        columnLost += Math.max(0, original - Math.abs(grey[entering + x]! - grey[leaving + x]!));
      }
    }
  }
  const rows = width < 2 ? 0 : rowVariation > 0 ? (rowVariation - rowLost) / rowVariation : 1;
  const columns = height < 2 ? 0 : columnVariation > 0 ? (columnVariation - columnLost) / columnVariation : 1;
  let laplacian = 0;
  if (width >= 3 && height >= 3) {
    const n = (width - 2) * (height - 2);
    const mean = laplacianSum / n;
    laplacian = laplacianSquares / n - mean * mean;
  }
  return { blurScore: Math.max(rows, columns), laplacianVariance: laplacian };
}
