// Memory figures: Pss read at most once a period.
import { describe, expect, it } from 'vitest';
import { PSS_EVERY_MS, PSS_READS_PER_SECOND, pssEveryMs, readAtMostEvery, selfPssMB } from '../../src/runtime/memory.js';

describe('readAtMostEvery', () => {
  it('reads at the first call, then again only once the period is over', () => {
    let t = 0;
    let reads = 0;
    const f = readAtMostEvery(() => ++reads, 1000, () => t);
    expect(f()).toBe(1);
    t = 999;
    expect(f()).toBe(1);
    t = 1000;
    expect(f()).toBe(2);
    t = 1500;
    expect(f()).toBe(2);
    t = 5000;
    expect(f()).toBe(3);
    expect(reads).toBe(3);
  });

  it("keeps a reading that was null (a system without smaps_rollup) like any other", () => {
    let reads = 0;
    const f = readAtMostEvery(() => (reads++, null), 1000, () => 0);
    expect(f()).toBeNull();
    expect(f()).toBeNull();
    expect(reads).toBe(1);
  });
});

describe('pssEveryMs', () => {
  it('keeps a swarm to PSS_READS_PER_SECOND reads a second, and a worker to one a PSS_EVERY_MS at most', () => {
    for (const workers of [1, 8, 16, 64, 256, 1024]) {
      const every = pssEveryMs(workers);
      expect(every).toBeGreaterThanOrEqual(PSS_EVERY_MS);
      expect((workers * 1000) / every).toBeLessThanOrEqual(PSS_READS_PER_SECOND + 1e-9);
    }
    expect(pssEveryMs(1)).toBe(PSS_EVERY_MS);
    expect(pssEveryMs(256)).toBe(32_000);
    expect(pssEveryMs(0)).toBe(PSS_EVERY_MS);
  });
});

describe('selfPssMB', () => {
  it.runIf(process.platform === 'linux')("is this process's Pss, under its RSS", () => {
    const pss = selfPssMB();
    expect(pss).toBeGreaterThan(1);
    expect(pss!).toBeLessThanOrEqual(process.memoryUsage.rss() / 2 ** 20 + 1);
  });
});
