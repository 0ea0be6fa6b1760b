/**
 * mulberry32: a small, fast generator fully determined by its 32-bit seed, so generated weights, test
 * images, session queues, map layouts, probe folds, case subsamples and bootstrap replicates are the
 * same on every machine and every run. Math.random cannot be seeded. Pure JavaScript: usable in the
 * core, the renderer and its workers alike.
 */
export class SeededRandom {
  // A typed array rather than a number field: uint32 values above 2^30 would be boxed on every store.
  private readonly state = new Uint32Array(1);

  constructor(seed: number) {
    this.state[0] = seed >>> 0;
  }

  /** A child stream whose sequence depends only on this seed and `parts`, not on how much was drawn. */
  static derive(seed: number, ...parts: number[]): SeededRandom {
    let hash = (seed ^ 0x9e3779b9) >>> 0;
    for (const part of parts) {
      hash = Math.imul(hash ^ (part >>> 0), 0x85ebca6b) >>> 0;
      hash = (hash ^ (hash >>> 13)) >>> 0;
      hash = Math.imul(hash, 0xc2b2ae35) >>> 0;
      hash = (hash ^ (hash >>> 16)) >>> 0;
    }
    return new SeededRandom(hash);
  }

  /** Uniform in [0, 1). */
  next(): number {
    const state = (this.state[0] = (this.state[0]! + 0x6d2b79f5) >>> 0);
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, bound). */
  nextInt(bound: number): number {
    return Math.floor(this.next() * bound);
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T>(items: T[]): T[] {
    for (let index = items.length - 1; index > 0; index--) {
      const other = this.nextInt(index + 1);
      const swap = items[index]!;
      items[index] = items[other]!;
      items[other] = swap;
    }
    return items;
  }
}

/** The same stream as a plain function, for callers that only draw uniforms in [0, 1). */
export function seededRandom(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.next();
}
