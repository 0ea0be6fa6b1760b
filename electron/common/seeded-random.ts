/**
 * mulberry32: a small, fast generator fully determined by its 32-bit seed, so generated weights, test
 * images, session queues and map layouts are the same on every machine and every run. Math.random
 * cannot be seeded. Pure JavaScript: usable in the core, the renderer and its workers alike.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
