// Whole swarms simulated by the real coordinator machine and the real worker code on a virtual
// clock (src/sim/sim.ts): the same seed gives the same trace, faults at chosen points of a
// collective recover exactly, and every recovery bug the soaks once found has a named scenario.
import { describe, expect, it } from 'vitest';
import { RUN_DEFAULTS, type RunConfig, type RunReport } from '../../src/coordinator/config.js';
import type { Fault, StragglerFault } from '../../src/coordinator/scenario/index.js';
import { exploreSeed } from '../../src/sim/explore.js';
import { simJob } from '../../src/sim/sim.js';

const quiet = { progress: () => {}, log: () => {} };

function job(o: Partial<RunConfig> = {}): RunConfig {
  const workers = o.workers ?? 6;
  return { ...RUN_DEFAULTS, workers, spawn: workers, cardsPerWorker: 2, bytesPerCard: 299 * 4, chunkBytes: 16 * 4, steps: 6, ...o };
}

let n = 0;
const fault = (f: Record<string, unknown>): Fault => ({ id: n++, ...f }) as unknown as Fault;

const cleanDigests = new Map<string, string | null>();
async function clean(cfg: RunConfig): Promise<string | null> {
  const key = JSON.stringify({ ...cfg, faults: [], stragglers: [] });
  if (!cleanDigests.has(key)) cleanDigests.set(key, (await simJob({ ...cfg, faults: [], stragglers: [] }, quiet)).stateDigest);
  return cleanDigests.get(key)!;
}

/** Simulate, and check the invariant of restart and spare: ok, nothing wrong, the fault-free digest. */
async function exact(cfg: RunConfig): Promise<RunReport> {
  const r = await simJob(cfg, quiet);
  expect(r.error).toBeUndefined();
  expect(r.ok).toBe(true);
  expect(r.wrong).toBe(0);
  expect(r.stateDigest).toBe(await clean(cfg));
  return r;
}

describe('ringswarm sim: determinism', () => {
  it('the same flags and seed give the same trace; another seed another', async () => {
    const cfg = job({ faults: [fault({ kind: 'kill', rank: 2, at: { step: 3, phase: 'reduce-scatter', chunk: 2 } })] });
    const [a, b, c] = [await simJob(cfg, quiet), await simJob(cfg, quiet), await simJob({ ...cfg, seed: 2 }, quiet)];
    expect(a.simulated).toBe(true);
    expect(a.traceDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(b.traceDigest).toBe(a.traceDigest);
    expect(b.faults).toEqual(a.faults);
    expect(c.traceDigest).not.toBe(a.traceDigest);
  });

  it('the digest depends on the cards only: ring and recursive doubling, any grouping', async () => {
    const ring = await simJob(job({ workers: 6, cardsPerWorker: 2, algo: 'ring' }), quiet);
    const rd = await simJob(job({ workers: 6, cardsPerWorker: 2, algo: 'rd' }), quiet);
    const regrouped = await simJob(job({ workers: 3, cardsPerWorker: 4, algo: 'ring' }), quiet);
    expect(ring.ok && rd.ok && regrouped.ok).toBe(true);
    expect(rd.stateDigest).toBe(ring.stateDigest);
    expect(regrouped.stateDigest).toBe(ring.stateDigest);
  });
});

describe('ringswarm sim: faults at every point of a collective', () => {
  for (const kind of ['kill', 'crash', 'hang', 'corrupt'] as const) {
    for (const algo of ['ring', 'rd', 'tree'] as const) {
      for (const phase of ['reduce-scatter', 'all-gather'] as const) {
        it(`${kind} in ${phase} under ${algo}: detected, healed, exact`, async () => {
          const extra = kind === 'crash' ? { code: 3 } : kind === 'corrupt' ? { frames: 1 } : {};
          const r = await exact(job({ algo, faults: [fault({ kind, rank: 3, at: { step: 2, phase, chunk: 1 }, ...extra })] }));
          expect(r.faults[0]).toMatchObject({ kind, struck: true, injected: true });
          expect(r.faults[0].detectedBy).not.toBeNull();
        });
      }
    }
  }

  it('a link cut for a while: the watchdog over every rank finds it, the run rolls back, exact', async () => {
    const r = await exact(job({ algo: 'ring', timeoutMs: 500, faults: [fault({ kind: 'link', from: 1, to: 2, at: { step: 2 }, cut: true, ms: 800 })] }));
    expect(r.faults[0]).toMatchObject({ kind: 'link', link: [1, 2], struck: true, detectedBy: 'watchdog', located: 'link 1->2' });
  });

  it('a link the algorithm never uses did not strike, and the report says why', async () => {
    const r = await exact(job({ algo: 'ring', checkpointEvery: 0, faults: [fault({ kind: 'link', from: 1, to: 4, at: { step: 2 }, cut: true })] }));
    expect(r.faults[0].struck).toBe(false);
    expect(r.faults[0].note).toMatch(/not used/);
  });

  it('shrink drops the lost worker and stays exact', async () => {
    const r = await simJob(job({ onFailure: 'shrink', faults: [fault({ kind: 'kill', rank: 4, at: { step: 3, phase: 'all-gather' } })] }), quiet);
    expect(r.ok).toBe(true);
    expect(r.wrong).toBe(0);
    expect(r.faults[0].action).toMatch(/^shrink to 5 workers/);
  });

  it('spare takes the lost rank', async () => {
    const r = await exact(job({ onFailure: 'spare', spares: 1, faults: [fault({ kind: 'kill', rank: 0, at: { step: 1 } })] }));
    expect(r.faults[0].action).toBe('spare rank 0');
  });

  it('a slow node is named under the ring, recursive doubling and the tree; every injected straggler is listed', async () => {
    for (const algo of ['ring', 'rd', 'tree'] as const) {
      const slow: StragglerFault = { id: 90, kind: 'slow', rank: 5, at: { step: 0 }, factor: 4 } as StragglerFault;
      const r = await simJob(job({ workers: 8, steps: 12, computeMs: 20, algo, stragglers: [slow] }), quiet);
      expect(r.ok).toBe(true);
      expect(r.stragglers.find((s) => s.kind === 'node' && s.rank === 5)).toBeDefined();
      expect(r.injectedStragglers).toEqual([expect.objectContaining({ kind: 'slow', rank: 5, struck: true, detectedAtStep: expect.any(Number) })]);
    }
  });
});

// Each recovery bug found by the soaks on real processes (see `git log src/coordinator/run.ts`),
// replayed in the simulator.
describe('ringswarm sim: checkpoint copies in shared slots (--checkpoint-copy shm)', () => {
  // The same worker logic with the copy written once and its slot's name sent: every recovery ends
  // where the copies-as-frames one does, from the same tier, losing the same steps.
  const cases: [string, Partial<RunConfig>][] = [
    ['a kill', { faults: [fault({ kind: 'kill', rank: 3, at: { step: 2, phase: 'reduce-scatter', chunk: 1 } })] }],
    ['a hang, replaced', { faults: [fault({ kind: 'hang', rank: 1, at: { step: 3 } })] }],
    ['two kills, the second during the first recovery', { steps: 8, computeMs: 20, faults: [fault({ kind: 'kill', rank: 2, at: { step: 2 } }), fault({ kind: 'kill', rank: 3, at: { ms: 260 } })] }],
    ['neighbours killed together (no copy left in memory)', { faults: [fault({ kind: 'kill', rank: 2, at: { step: 3 } }), fault({ kind: 'kill', rank: 3, at: { step: 3 } })] }],
    ['a cut link', { faults: [fault({ kind: 'link', rank: 1, to: 2, at: { step: 2 }, ms: 300, cut: true })] }],
    ['spare, under the tree', { algo: 'tree', onFailure: 'spare', spares: 1, faults: [fault({ kind: 'kill', rank: 4, at: { step: 3, phase: 'all-gather' } })] }],
  ];
  for (const [name, o] of cases) {
    it(`${name}: exact, recovered as with frames`, async () => {
      const shm = await exact(job({ ...o, checkpointCopy: 'shm' }));
      const net = await exact(job({ ...o, checkpointCopy: 'net' }));
      const what = (r: RunReport) => r.faults.map((f) => ({ kind: f.kind, detectedBy: f.detectedBy, located: f.located, restoredFrom: f.restoredFrom, lostSteps: f.lostSteps }));
      expect(what(shm)).toEqual(what(net));
      expect(shm.faults.length).toBeGreaterThan(0);
    });
  }
});

describe('ringswarm sim: regressions the soaks found', () => {
  it("d22712e: ranks that finished the last step before a kill said 'done' in the old epoch", async () => {
    await exact(job({ steps: 4, faults: [fault({ kind: 'kill', rank: 5, at: { step: 3, phase: 'all-gather', chunk: 3 } })] }));
  });

  it('6dcd7d9: a fault armed at a chunk a rank never sees strikes at the end of the op', async () => {
    const r = await exact(job({ algo: 'rd', workers: 5, faults: [fault({ kind: 'kill', rank: 4, at: { step: 2, phase: 'all-gather', chunk: 99 } })] }));
    expect(r.faults[0].struck).toBe(true);
  });

  it('17252cf: resume only from a checkpoint every step before which was counted (rd, shrink)', async () => {
    const r = await simJob(job({ algo: 'rd', onFailure: 'shrink', faults: [fault({ kind: 'kill', rank: 1, at: { step: 3, phase: 'all-gather', chunk: 2 } })] }), quiet);
    expect(r.ok).toBe(true);
    expect(r.wrong).toBe(0);
  });

  it('07bf3be: a detection goes to the fault on the worker it points at, not to an older harmless one', async () => {
    const r = await exact(job({ faults: [fault({ kind: 'link', from: 0, at: { step: 1 }, delayMs: 1, ms: 50 }), fault({ kind: 'crash', rank: 3, at: { step: 3 }, code: 2 })] }));
    const crash = r.faults.find((f) => f.kind === 'crash')!;
    expect(crash).toMatchObject({ detectedBy: 'exit', located: 'rank 3' });
  });

  it("849fe3b / 50298ae: a fault during a recovery's ring-up recovers again, and the replacement restores from its copy", async () => {
    // The second kill lands while the first replacement rings up (a replacement starts 50 ms after its spawn).
    const r = await exact(
      job({ steps: 8, computeMs: 20, faults: [fault({ kind: 'kill', rank: 2, at: { step: 2 } }), fault({ kind: 'kill', rank: 3, at: { ms: 260 } })] }),
    );
    expect(r.faults.filter((f) => f.detectedBy === 'exit')).toHaveLength(2);
    expect(r.wallMs).toBeLessThan(RUN_DEFAULTS.readyTimeoutMs);
  });

  it('this session: a hang just past the heartbeat timeout, the others training on before the abort reaches them', async () => {
    // Steps of 20 ms of compute, so the others are mid-step when the hang ends.
    const r = await exact(job({ steps: 40, computeMs: 20, faults: [fault({ kind: 'hang', rank: 1, at: { step: 3 }, ms: 1101 })] }));
    expect(r.faults[0]).toMatchObject({ kind: 'hang', detectedBy: 'heartbeat' });
    expect(r.epochs.length).toBeLessThanOrEqual(3);
  });

  it('5f54179: a link cut for good no longer loops on ring-ups: the ranks that cannot ring up are replaced', async () => {
    const r = await exact(job({ algo: 'ring', timeoutMs: 300, faults: [fault({ kind: 'link', from: 2, to: 3, at: { step: 2 }, cut: true })] }));
    expect(r.restarts).toBeGreaterThanOrEqual(1);
  });
});

describe('found by --explore', () => {
  it('seed 2256: a replacement of an evicted straggler flagged at the same rank is reported, not evicted again (was: 1000 restarts)', async () => {
    const r = await exploreSeed(2256);
    expect(r.ok, r.why).toBe(true);
    const at3 = r.report.stragglers.filter((s) => s.kind === 'node' && s.rank === 3);
    expect(at3.map((s) => s.action)).toEqual(['evict', 'report']);
    expect(r.report.restarts).toBeLessThanOrEqual(3);
  });
});

describe('ringswarm sim --explore', () => {
  // Every seed draws a whole run; each must hold its invariant. `ringswarm sim --explore 1000` runs more.
  const SEEDS = Number(process.env.RINGSWARM_EXPLORE_SEEDS ?? 200);
  it(`${SEEDS} seeds hold their invariants`, async () => {
    const failed: string[] = [];
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = await exploreSeed(seed);
      if (!r.ok) failed.push(`seed ${seed}: ${r.why} (replay: ${r.replay})`);
    }
    expect(failed).toEqual([]);
  }, 300_000);
});
