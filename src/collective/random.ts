// The one seeded generator, and the hashes that derive everything else from a run's seed. Pure: no
// Math.random, no clock. One run seed drives a whole run: each consumer draws from its own
// sub-stream, `substream(seed, 'label', n, ...)`, so adding draws to one stream never shifts another.
// Here, in collective, so that every folder above it (runtime, coordinator, worker, cli) and the
// scripts can import it.

/** A generator of numbers in [0, 1), each a multiple of 2^-32. */
export type Random = () => number;

const GOLDEN = 0x9e3779b9;
const TWO_32 = 2 ** 32;

/**
 * 32 bits of a seed. Seeds in [-2^31, 2^32) are `seed >>> 0` (so the draws of every seed used so
 * far are unchanged); larger safe integers fold their high half in, so 42 and 2^40 + 42 differ.
 * Throws RangeError for anything that is not a safe integer.
 */
export function seedBits(seed: number): number {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  const high = Math.floor(seed / TWO_32);
  return ((seed >>> 0) ^ (high === 0 || high === -1 ? 0 : fmix32(high >>> 0))) >>> 0;
}

/** Raw 32-bit outputs (unsigned integers) of mulberry32 from `seed`: for tests that want bit patterns. */
export function seededWords(seed: number): () => number {
  let a = seedBits(seed);
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** The seeded generator (mulberry32: small, fast, 2^32 period), numbers in [0, 1). */
export function seededRandom(seed: number): Random {
  const words = seededWords(seed);
  return () => words() / TWO_32;
}

/** A label of a sub-stream: a name, or a safe integer (a rank, a step, an index). */
export type StreamLabel = string | number;

/**
 * A 32-bit seed for the sub-stream `labels` of `seed`: the same inputs give the same seed, and any
 * change to one label gives an unrelated one. Labels are length-delimited, so ('ab', 'c') and
 * ('a', 'bc') differ.
 */
export function deriveSeed(seed: number, ...labels: readonly StreamLabel[]): number {
  let h = fmix32(seedBits(seed) ^ GOLDEN);
  for (const label of labels) {
    if (typeof label === 'number') {
      if (!Number.isSafeInteger(label)) throw new RangeError(`a stream label must be a string or a safe integer, got ${label}`);
      h = absorb(absorb(absorb(h, 1), label >>> 0), Math.floor(label / TWO_32) >>> 0);
    } else {
      h = absorb(absorb(h, 2), label.length);
      for (let i = 0; i < label.length; i++) h = absorb(h, label.charCodeAt(i));
    }
  }
  return h;
}

/** An independent generator for one consumer of a run's seed: `substream(seed, 'scenario', j)`. */
export function substream(seed: number, ...labels: readonly StreamLabel[]): Random {
  return seededRandom(deriveSeed(seed, ...labels));
}

/** An integer from `lo` to `hi` inclusive, uniform (for spans far below 2^32). */
export function randomInt(random: Random, lo: number, hi: number): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}

/** One element of a non-empty list, uniform. */
export function pick<T>(random: Random, xs: readonly T[]): T {
  if (xs.length === 0) throw new RangeError('pick from an empty list');
  return xs[Math.floor(random() * xs.length)]!;
}

/** The murmur3 32-bit finaliser: a bijection of uint32 that mixes every input bit into every output bit. */
export function fmix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** lowbias32 (Chris Wellons), a bijective 32-bit mixer; returns an int32. The verifiable inputs hash with it. */
export function lowbias32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  return x ^ (x >>> 16);
}

/**
 * A number in [0, 1) from three integers, no state: the same inputs, the same value (murmur3's
 * finaliser chained). The same function as the worker's jitter hash (`unitHash` in
 * src/worker/worker.ts), which may import it from here.
 */
export function unitHash(a: number, b: number, c: number): number {
  return fmix32(fmix32(fmix32(a ^ GOLDEN) ^ b) ^ c) / TWO_32;
}

function absorb(h: number, word: number): number {
  return fmix32((Math.imul(h, 0x9e3779b1) ^ word) >>> 0);
}
