import { describe, expect, it } from 'vitest';
import { calibrationK, searchLadder } from '../../electron/core/index/index-calibration.js';

describe('the calibration ladder of search settings', () => {
  it('grows projected candidates by half a step (64, 96, 144, ...) with two ef values each, up to the cap', () => {
    const ladder = searchLadder(64, 64, true, 100_000, 1024);
    const counts = [...new Set(ladder.map((step) => step.candidates))];
    expect(counts).toEqual([64, 96, 144, 216, 328, 496, 744, 1024]);
    for (const count of counts) {
      const efs = ladder.filter((step) => step.candidates === count).map((step) => step.ef);
      expect(efs).toEqual([count, 2 * count]);
    }
  });

  it('never asks for more candidates than the library holds, and ends there', () => {
    const ladder = searchLadder(64, 200, true, 150, 1024);
    expect(ladder.map((step) => step.candidates)).toEqual([64, 64, 96, 96, 144, 144, 150, 150]);
    expect(ladder[0]).toEqual({ candidates: 64, ef: 200 });
    expect(ladder.at(-1)).toEqual({ candidates: 150, ef: 400 });
  });

  it('raises only ef for a graph without projection (its results are exact cosines)', () => {
    const ladder = searchLadder(64, 32, false, 1000, 1024);
    expect(ladder.every((step) => step.candidates === calibrationK)).toBe(true);
    expect(ladder.map((step) => step.ef)).toEqual([32, 64, 128, 256, 512, 1000]);
  });
});
