// The fault-free digest in closed form is the digest a real simulated run ends with: for every
// dtype and op, for a grouping of the cards other than the run's, and it changes with what it
// depends on. (scripts/stress-common.ts's expectedDigest is this function for f32 sum.)
import { describe, expect, it } from 'vitest';
import { RUN_DEFAULTS, type RunConfig } from '../../src/coordinator/config.js';
import type { DType, ReduceOp } from '../../src/collective/dtypes.js';
import { simJob } from '../../src/sim/sim.js';
import { faultFreeDigest } from '../../src/worker/fault-free-digest.js';
import { expectedDigest } from '../../scripts/stress-common.js';

const quiet = { progress: () => {}, log: () => {} };

function job(o: Partial<RunConfig>): RunConfig {
  const workers = o.workers ?? 5;
  return { ...RUN_DEFAULTS, workers, spawn: workers, cardsPerWorker: 3, bytesPerCard: 301 * 8, chunkBytes: 64, steps: 4, ...o };
}

describe('faultFreeDigest', () => {
  const cases: [DType, ReduceOp][] = [
    ['f32', 'sum'],
    ['f64', 'avg'],
    ['i32', 'prod'],
    ['f32', 'min'],
    ['i32', 'max'],
  ];
  it.each(cases)('%s %s: equals the stateDigest of a simulated fault-free run', async (dtype, op) => {
    const cfg = job({ dtype, op });
    const r = await simJob(cfg, quiet);
    expect(r.ok).toBe(true);
    const d = faultFreeDigest({ workers: cfg.workers, cardsPerWorker: cfg.cardsPerWorker, bytesPerCard: cfg.bytesPerCard, dtype, op, steps: cfg.steps, seed: cfg.seed });
    expect(d).toBe(r.stateDigest);
  });

  it('depends on the cards, not on how workers group them; changes with steps, seed and size', () => {
    const base = { workers: 6, cardsPerWorker: 2, bytesPerCard: 1024, dtype: 'f32' as const, op: 'sum' as const, steps: 3, seed: 1 };
    const d = faultFreeDigest(base);
    expect(faultFreeDigest({ ...base, workers: 3, cardsPerWorker: 4 })).toBe(d);
    expect(faultFreeDigest({ ...base, workers: 4, cardsPerWorker: 3 })).toBe(d);
    expect(faultFreeDigest({ ...base, steps: 4 })).not.toBe(d);
    expect(faultFreeDigest({ ...base, seed: 2 })).not.toBe(d);
    expect(faultFreeDigest({ ...base, bytesPerCard: 1028 })).not.toBe(d);
    expect(expectedDigest({ workers: 6, cards: 2, bytesPerCard: 1024, steps: 3, seed: 1 })).toBe(d);
  });

  it('refuses a shape that is no job', () => {
    const base = { workers: 2, cardsPerWorker: 2, bytesPerCard: 64, dtype: 'f64' as const, op: 'sum' as const, steps: 1, seed: 1 };
    expect(() => faultFreeDigest({ ...base, bytesPerCard: 12 })).toThrow(/12 is not a whole number of f64 elements/);
    expect(() => faultFreeDigest({ ...base, workers: 0 })).toThrow(RangeError);
    expect(() => faultFreeDigest({ ...base, steps: -1 })).toThrow(/steps -1/);
  });
});
