/** A seeded pseudo-random source: returns floats in [0, 1). */
export type Random = () => number;

/**
 * Creates a deterministic PRNG (mulberry32) from a 32-bit seed. Same seed, same sequence.
 * Pure modules take one of these instead of calling `Math.random`.
 */
export function createRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal draw from a seeded source (Box–Muller). */
export function randomNormal(random: Random): number {
  let u = random();
  while (u <= 1e-12) u = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}
