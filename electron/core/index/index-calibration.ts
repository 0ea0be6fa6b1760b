import { matrix, type OnnxGemm } from '../math/onnx-gemm.js';
import { gaussianSource } from '../math/randomized-pca.js';
import { normalizeRows, TopK } from '../math/vector-math.js';

/**
 * The index measures its own recall: probe queries drawn from the library, their exact top 10 by
 * blocked matrix products over every indexed embedding, and the share of that top 10 a given search
 * setting finds. Two kinds of probe, alternating: a library row with noise added (a photo of the same
 * lesion that is not in the library) and a library row itself, whose own match is left out of both
 * the truth and the answer (a query by library image with "exclude self").
 */

/** What a calibration chose and measured; stored as JSON with the index record (vector_indexes.calibration). */
export interface IndexCalibration {
  /** The recall@10 asked for (the `index.recallTarget` setting, 0.99 by default). */
  target: number;
  /** Recall@10 measured with the chosen settings on the probes. */
  recall: number;
  probes: number;
  /** Graph candidates re-ranked exactly on the full embeddings (the number of results asked of a graph without projection). */
  candidates: number;
  /** HNSW beam width at query time. */
  ef: number;
  graphDim: number;
  /** Projection fit of the graph measured (null: the graph holds the full embeddings). */
  projection: { version: number; sampleSize: number; powerIterations: number } | null;
  /**
   * The in-memory sketch that ranked the candidates before the exact re-rank, and how many of them it
   * kept at k = 10 (null: every candidate was re-ranked exactly). Queries pre-rank only when the
   * calibration measured them doing so.
   */
  preselection: { bits: 4; kept: number } | null;
  met: boolean;
  /** In words: what was tried and, when the target was missed, why and what to do. */
  note: string;
  /** When it was measured: after a build, after the library grew, or at first use of an index built before calibration existed. */
  trigger: 'build' | 'growth' | 'first-use';
  /** Live images in the index when measured (growth beyond this re-measures). */
  elementCount: number;
  seconds: number;
  measuredAt: string;
}

export const calibrationK = 10;

export interface Probe {
  /** The library image the probe was drawn from. */
  imageId: number;
  /** Leave `imageId` out of truth and answer (a library row used as its own query). */
  excludeSelf: boolean;
  /** Unit-length query. */
  vector: Float32Array;
}

/** Every `live.length / count`-th id, offset by half a step (the PCA sample starts each step: the two rarely share rows). */
export function probeIds(liveIds: readonly number[], count: number): number[] {
  const n = Math.min(count, liveIds.length);
  const step = liveIds.length / n;
  return Array.from({ length: n }, (_, index) => liveIds[Math.min(liveIds.length - 1, Math.floor((index + 0.5) * step))]!);
}

/**
 * Probes from unit library rows: even positions get Gaussian noise of norm `noise` (clamped at zero
 * when the row has no negative value, as post-ReLU embeddings never do), odd positions are the row
 * itself with its own match excluded.
 */
export function makeProbes(rows: Array<{ imageId: number; vector: Float32Array }>, noise: number, seed = 7): Probe[] {
  const normal = gaussianSource(seed);
  return rows.map((row, index) => {
    const unit = normalizeRows(Float32Array.from(row.vector), row.vector.length);
    if (index % 2 === 1) return { imageId: row.imageId, excludeSelf: true, vector: unit };
    const nonNegative = unit.every((value) => value >= 0);
    const step = noise / Math.sqrt(unit.length);
    const noisy = unit.map((value) => {
      const shifted = value + step * normal();
      return nonNegative && shifted < 0 ? 0 : shifted;
    });
    return { imageId: row.imageId, excludeSelf: false, vector: normalizeRows(noisy, noisy.length) };
  });
}

/** Exact top-k of every probe, accumulated one block of unit library rows at a time (one ORT product per block). */
export class ProbeTruth {
  private readonly tops: TopK[];
  private readonly queries;

  constructor(
    readonly probes: Probe[],
    private readonly dim: number,
  ) {
    // One extra place so a probe's own row can be dropped and still leave k.
    this.tops = probes.map(() => new TopK(calibrationK + 1));
    const data = new Float32Array(probes.length * dim);
    probes.forEach((probe, index) => data.set(probe.vector, index * dim));
    this.queries = matrix(probes.length, dim, data);
  }

  /** Offers a block of unit rows (row-major, `ids.length` × dim). */
  async add(gemm: OnnxGemm, ids: readonly number[], unitRows: Float32Array): Promise<void> {
    if (ids.length === 0 || this.probes.length === 0) return;
    const scores = await gemm.multiply(matrix(ids.length, this.dim, unitRows.subarray(0, ids.length * this.dim)), this.queries, false, true);
    const width = this.probes.length;
    for (let row = 0; row < ids.length; row++) {
      const offset = row * width;
      for (let probe = 0; probe < width; probe++) this.tops[probe]!.offer(ids[row]!, scores.data[offset + probe]!);
    }
  }

  /** The exact top-k ids of each probe (its own row left out where it must be). */
  result(): Array<Set<number>> {
    return this.tops.map((top, index) => {
      const probe = this.probes[index]!;
      const ids = top
        .result()
        .map((neighbour) => neighbour.imageId)
        .filter((id) => !(probe.excludeSelf && id === probe.imageId));
      return new Set(ids.slice(0, calibrationK));
    });
  }
}

/**
 * Recall@10 of a candidate list against the exact top 10. The candidates are re-ranked exactly on the
 * full embeddings, and a true top-10 neighbour has at most nine better ones anywhere, so it is in the
 * re-ranked top 10 exactly when it is among the candidates: recall is the share of the truth found in
 * the candidate list, measured without reading a single embedding.
 */
export function recallOfCandidates(truth: Array<Set<number>>, candidates: Array<readonly number[]>): number {
  let hits = 0;
  let wanted = 0;
  truth.forEach((expected, index) => {
    const found = new Set(candidates[index]);
    for (const id of expected) if (found.has(id)) hits++;
    wanted += expected.size;
  });
  return wanted === 0 ? 1 : hits / wanted;
}

/** The (candidates, ef) settings tried in order of query cost, cheapest first. */
export function searchLadder(
  startCandidates: number,
  startEf: number,
  projected: boolean,
  live: number,
  maxCandidates: number,
): Array<{ candidates: number; ef: number }> {
  const cap = Math.max(1, Math.min(maxCandidates, live));
  const steps: Array<{ candidates: number; ef: number }> = [];
  if (!projected) {
    for (let ef = Math.max(calibrationK, startEf); ; ef *= 2) {
      steps.push({ candidates: calibrationK, ef: Math.min(ef, cap) });
      if (ef >= cap) break;
    }
    return steps;
  }
  // Candidate counts grow by half at each step (64, 96, 128, 192, ...), not doubling: each candidate is
  // a read and a 6144-value product in the re-rank, so stopping at 96 where 96 reaches the target saves
  // a quarter of it (on the flat, post-ReLU-like bench data at 100k the target sits between 64 and 128).
  for (let candidates = Math.max(calibrationK, Math.min(startCandidates, cap)); ; candidates = Math.ceil((candidates * 1.5) / 8) * 8) {
    const c = Math.min(candidates, cap);
    const first = Math.max(c, startEf);
    steps.push({ candidates: c, ef: first });
    steps.push({ candidates: c, ef: first * 2 });
    if (c >= cap) break;
  }
  return steps;
}

/** "recall@10 0.996 measured on 256 probes at build (candidates 128, ef 160, 256-d)", plus the target when it was missed. */
export function describeCalibration(calibration: IndexCalibration): string {
  const when = calibration.trigger === 'build' ? 'at build' : calibration.trigger === 'growth' ? 'after the library grew' : 'at first use';
  const sketch = calibration.preselection ? `, ${calibration.preselection.bits}-bit sketch keeps ${calibration.preselection.kept}` : '';
  const settings = `candidates ${calibration.candidates}, ef ${calibration.ef}, ${calibration.graphDim}-d${sketch}`;
  const line = `recall@10 ${calibration.recall.toFixed(3)} measured on ${calibration.probes} probes ${when} (${settings})`;
  return calibration.met ? line : `${line}; below the target ${calibration.target}: ${calibration.note}`;
}
