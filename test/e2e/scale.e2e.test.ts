// A moderate scale test in the default run: 64 worker processes (the 256-worker, 10,240-card run
// is scripts/scale-sweep.ts). Exact, the same digest as the same cards on fewer workers, and
// every process reaped.
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive, killLeftovers, runCli } from './helpers.js';

afterEach(() => killLeftovers());

describe('scale (real processes)', () => {
  it('64 workers x 4 cards: ok, exact, the digest of the same 256 cards on 8 workers, all reaped', { timeout: 180_000 }, async () => {
    const args = ['--steps', '3', '-s', '16KiB', '--json', '-'];
    const r = await runCli(['run', '-w', '64', '-g', '4', ...args]);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const big = JSON.parse(r.stdout);
    expect(big).toMatchObject({ ok: true, workers: 64, cards: 256, wrong: 0, stepsCompleted: 3 });
    expect(big.processes).toHaveLength(64);
    expect(big.memory.workerPssMBTotal ?? big.memory.workerRssMBTotal).toBeGreaterThan(0);
    const small = JSON.parse((await runCli(['run', '-w', '8', '-g', '32', ...args])).stdout);
    expect(big.stateDigest).toBe(small.stateDigest);
    for (const p of big.processes) expect(isAlive(p.pid)).toBe(false);
  });
});
