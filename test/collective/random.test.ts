import { describe, expect, it } from 'vitest';
import { deriveSeed, fmix32, lowbias32, pick, randomInt, seedBits, seededRandom, seededWords, substream, unitHash } from '../../src/collective/random.js';

/** The mulberry32 that src/runtime/memory-transport.ts carried before: the draws must not change. */
function oldMulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The worker's jitter hash (src/worker/worker.ts unitHash) as it is written there. */
function workerUnitHash(a: number, b: number, c: number): number {
  const fmix = (x: number) => {
    x ^= x >>> 16;
    x = Math.imul(x, 0x85ebca6b);
    x ^= x >>> 13;
    x = Math.imul(x, 0xc2b2ae35);
    return (x ^ (x >>> 16)) >>> 0;
  };
  return fmix(fmix(fmix(a ^ 0x9e3779b9) ^ b) ^ c) / 4294967296;
}

const draws = (r: () => number, n = 64) => Array.from({ length: n }, () => r());

describe('the seeded generator', () => {
  it('draws what the old mulberry32 drew, for every seed in use (int32 and uint32)', () => {
    for (const seed of [0, 1, 7, 42, 2 ** 31 - 1, 2 ** 32 - 1, -1, 1 ^ 0x9e3779b9]) expect(draws(seededRandom(seed))).toEqual(draws(oldMulberry32(seed)));
  });

  it('gives words that are the same draws times 2^32, all in [0, 1)', () => {
    const w = draws(seededWords(9), 1000);
    expect(draws(seededRandom(9), 1000)).toEqual(w.map((x) => x / 2 ** 32));
    expect(w.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32)).toBe(true);
  });

  it('folds in the high bits of large seeds, and refuses seeds that are not safe integers', () => {
    expect(seedBits(42)).toBe(42);
    expect(seedBits(2 ** 40 + 42)).not.toBe(42);
    expect(draws(seededRandom(2 ** 40 + 42))).not.toEqual(draws(seededRandom(42)));
    for (const bad of [1.5, NaN, Infinity, 2 ** 53]) expect(() => seededRandom(bad)).toThrow(RangeError);
  });
});

describe('sub-streams of one seed', () => {
  it('are the same for the same seed and labels, and unrelated for any change', () => {
    expect(deriveSeed(7, 'scenario', 3)).toBe(deriveSeed(7, 'scenario', 3));
    const seeds = [
      deriveSeed(7),
      deriveSeed(7, 'scenario'),
      deriveSeed(7, 'scenario', 3),
      deriveSeed(7, 'scenario', 4),
      deriveSeed(8, 'scenario', 3),
      deriveSeed(7, 'ab', 'c'),
      deriveSeed(7, 'a', 'bc'),
      deriveSeed(7, 1),
      deriveSeed(7, '1'),
      deriveSeed(7, 2 ** 40),
      deriveSeed(7, 0),
    ];
    expect(new Set(seeds).size).toBe(seeds.length);
    expect(seeds.every((s) => Number.isInteger(s) && s >= 0 && s < 2 ** 32)).toBe(true);
    expect(draws(substream(7, 'net'))).toEqual(draws(seededRandom(deriveSeed(7, 'net'))));
    expect(draws(substream(7, 'net'))).not.toEqual(draws(substream(7, 'faults')));
    expect(() => deriveSeed(7, 0.5)).toThrow(RangeError);
  });

  it('spread evenly: integers, picks', () => {
    const r = substream(1, 'test');
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 40_000; i++) counts[randomInt(r, 0, 3)]!++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
    expect(['a', 'b']).toContain(pick(r, ['a', 'b']));
    expect(() => pick(r, [])).toThrow(RangeError);
  });
});

describe('the hashes', () => {
  it('unitHash is the worker jitter hash, value for value', () => {
    for (const [a, b, c] of [[1, 0, 0], [7, 12, 3], [-5, 2 ** 31, 99], [2 ** 32 - 1, 1, 2]] as const) expect(unitHash(a, b, c)).toBe(workerUnitHash(a, b, c));
  });

  it('fmix32 and lowbias32 are bijections on a sample (no two inputs share an output)', () => {
    const inputs = Array.from({ length: 50_000 }, (_, i) => (i * 2654435761) >>> 0);
    expect(new Set(inputs.map(fmix32)).size).toBe(inputs.length);
    expect(new Set(inputs.map(lowbias32)).size).toBe(inputs.length);
    expect(fmix32(0)).toBe(0);
  });
});
