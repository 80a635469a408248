// The demo's decisions and its text, without processes: the faults it draws from the seed (valid
// for the run, spread out, on distinct ranks), the live rank line from a JobStatus, a fault's and a
// straggler's line, and the closing verdict from a RunReport against the fault-free digest.
import { describe, expect, it } from 'vitest';
import { runConfig } from '../../src/api/options.js';
import { RingswarmUsageError } from '../../src/api/errors.js';
import type { FaultReport, RunReport, StragglerReport } from '../../src/coordinator/config.js';
import type { JobStatus, RankState } from '../../src/protocol/operator.js';
import { DEMO_MIN_STEPS, demoFaults, demoSteps, midReduceScatterChunk } from '../../src/cli/demo-plan.js';
import { demoSummary, faultLine, liveLine, rankCells, stragglerLine } from '../../src/cli/demo-view.js';
import { runFolder } from '../../src/cli/demo.js';
import { etaSeconds, etaText, fitWidth } from '../../src/cli/progress.js';

const shape = { workers: 16, steps: 40, seed: 1, bytesPerCard: 256 << 10, chunkBytes: 1 << 20, dtype: 'f32' as const };

describe('demo faults', () => {
  it('draws a kill mid reduce-scatter, a hang and a slow link from the seed, on distinct ranks, in that order', () => {
    for (const seed of [1, 2, 3, 7, 99]) {
      for (const workers of [4, 5, 16, 64]) {
        const f = demoFaults({ ...shape, workers, seed });
        expect(f).toEqual(demoFaults({ ...shape, workers, seed }));
        expect(f.slowLink.to).toBe((f.slowLink.from + 1) % workers);
        const ranks = [f.kill.rank, f.hang.rank, f.slowLink.from, f.slowLink.to];
        expect(new Set(ranks).size).toBe(4);
        for (const r of ranks) expect(r).toBeGreaterThanOrEqual(0), expect(r).toBeLessThan(workers);
        expect(f.kill.step).toBeLessThan(f.hang.step);
        expect(f.hang.step).toBeLessThan(f.slowLink.step);
        expect(f.injects[0]).toMatch(/^kill:rank=\d+:step=\d+:phase=reduce-scatter:chunk=\d+$/);
      }
    }
    const seeds = new Set([1, 2, 3, 4, 5, 6, 7, 8].map((seed) => JSON.stringify(demoFaults({ ...shape, seed }).injects)));
    expect(seeds.size).toBeGreaterThan(1);
  });

  it('are faults the run takes (checked by the run options) and leave the slow link time to be confirmed', async () => {
    const f = demoFaults(shape);
    const cfg = await runConfig({ workers: 16, steps: 40, inject: f.injects });
    expect(cfg.faults.map((x) => x.kind)).toEqual(['kill', 'hang']);
    expect(cfg.stragglers).toEqual([expect.objectContaining({ kind: 'slow-link', from: f.slowLink.from, to: f.slowLink.to, delayMs: f.slowLink.delayMs })]);
    // The epoch after the hang: 5 steps of detector warm-up, then 5 to confirm, before the end.
    for (let steps = DEMO_MIN_STEPS; steps < 200; steps++) {
      const at = demoSteps(steps)!;
      expect(at.slowLink - at.hang).toBeGreaterThanOrEqual(7);
      expect(steps - at.slowLink).toBeGreaterThanOrEqual(6);
    }
    expect(demoSteps(DEMO_MIN_STEPS - 1)).toBeNull();
  });

  it('refuses a run too small for them, naming the flag', () => {
    expect(() => demoFaults({ ...shape, workers: 3 })).toThrow(RingswarmUsageError);
    expect(() => demoFaults({ ...shape, workers: 3 })).toThrow(/^--workers 3: the demo needs at least 4/);
    expect(() => demoFaults({ ...shape, steps: DEMO_MIN_STEPS - 1 })).toThrow(new RegExp(`^--steps ${DEMO_MIN_STEPS - 1}: the demo needs at least ${DEMO_MIN_STEPS}`));
  });

  it('kills half way through the reduce-scatter chunks', () => {
    // 16 ranks, 256 KiB: 15 ring steps of one 16 KiB frame; strikes after 8 received.
    expect(midReduceScatterChunk(shape)).toBe(7);
    // 4 ranks, 8 MiB in 1 MiB frames: 3 ring steps of 2 frames each = 6; after 3 received.
    expect(midReduceScatterChunk({ ...shape, workers: 4, bytesPerCard: 8 << 20 })).toBe(2);
  });
});

const rank = (r: number, state: RankState) => ({ rank: r, home: r, workerId: `w${r}`, pid: 100 + r, host: null, state, opSeq: 3, phase: 'reduce-scatter', chunk: 1, heartbeatAgeMs: 5 });

function status(states: RankState[], o: Partial<JobStatus> = {}): JobStatus {
  return {
    job: { workers: states.length, cardsPerWorker: 8, bytesPerCard: 1024, steps: 40, algo: 'ring', onFailure: 'restart' },
    phase: 'training',
    epoch: 1,
    step: 12,
    ranks: states.map((s, i) => rank(i, s)),
    spares: [],
    waitingFor: [],
    stuckAt: null,
    faults: { injected: 1, detected: 1, recovered: 0 },
    ...o,
  };
}

describe('the live line', () => {
  it('a cell per rank, by state; the step, epoch, pace and faults', () => {
    const s = status(['training', 'training', 'dead', 'frozen', 'recovering', 'stalled', 'silent', 'done'], { phase: 'recovering', stuckAt: 'rank 3' });
    expect(liveLine(s, { stepMs: 487.4, etaS: 13.2, color: false, maxCells: 64 })).toBe('[==XZr!?+]  12/40 steps  epoch 1  recovering  stuck at rank 3  487 ms/step  ~14 s left  faults 0 healed of 1');
    expect(liveLine(status(['ringing', 'joining']), { stepMs: null, etaS: null, color: false, maxCells: 64 })).toBe('[~.]  12/40 steps  epoch 1  faults 0 healed of 1');
  });

  it('in colour on a terminal, each cell its own', () => {
    expect(rankCells(['training', 'dead'], true, 64)).toBe('[\x1b[32m=\x1b[0m\x1b[31;1mX\x1b[0m]');
  });

  it('many ranks: a cell stands for a run of them and shows the worst', () => {
    const states: RankState[] = Array.from({ length: 256 }, (_, i) => (i === 130 ? 'dead' : i === 7 ? 'frozen' : 'training'));
    const cells = rankCells(states, false, 64);
    expect(cells).toBe(`[=Z${'='.repeat(30)}X${'='.repeat(31)}] (4 ranks a cell)`);
  });

  it('fits the terminal without cutting a colour code in half', () => {
    const line = `${rankCells(['training', 'dead', 'training'], true, 64)}  12/40 steps`;
    const cut = fitWidth(line, 4);
    expect(cut.replace(/\x1b\[[0-9;]*m/g, '')).toBe('[=X');
    expect(cut).toContain('\x1b[31;1mX\x1b[0m');
    expect(fitWidth('short', 80)).toBe('short');
  });

  it('time left from the pace so far', () => {
    expect(etaSeconds(10, 40, 5000)).toBe(15);
    expect(etaSeconds(0, 40, 5000)).toBeNull();
    expect(etaSeconds(40, 40, 5000)).toBeNull();
    expect(etaText(10, 40, 5000)).toBe('  ~15 s left');
    expect(etaText(1, 100, 3000)).toBe('  ~4m57s left');
  });
});

const kill: FaultReport = { id: 0, kind: 'kill', rank: 5, atStep: 8, phase: 'reduce-scatter', injected: true, struck: true, detectedBy: 'exit', detectedAfterMs: 24, located: 'rank 5', action: 'restart rank 5', restoredFrom: 'memory', recoveredAfterMs: 617, lostSteps: 0 };
const hang: FaultReport = { id: 1, kind: 'hang', rank: 11, atStep: 18, phase: null, injected: true, struck: true, detectedBy: 'heartbeat', detectedAfterMs: 1054, located: 'rank 11', action: 'restart rank 11', restoredFrom: 'memory', recoveredAfterMs: 1720, lostSteps: 1 };
const link: StragglerReport = { kind: 'link', link: [2, 3], firstSeenStep: 26, detectedAtStep: 30, score: 68.4, slowdown: 1.04, action: 'report', injected: true, stepMsBefore: null, stepMsAfter: null };

describe('fault and straggler lines', () => {
  it('say when, how found, where, and how healed', () => {
    expect(faultLine(kill)).toBe('fault 1 kill rank 5 at step 8 reduce-scatter: detected in 0.02 s by exit, located rank 5; healed in 0.62 s (restart rank 5, restored from memory, 0 steps lost)');
    expect(faultLine(hang)).toBe('fault 2 hang rank 11 at step 18: detected in 1.05 s by heartbeat, located rank 11; healed in 1.72 s (restart rank 11, restored from memory, 1 steps lost)');
    expect(faultLine({ ...kill, recoveredAfterMs: null, action: 'abort' })).toMatch(/located rank 5; NOT healed \(abort\)$/);
    expect(faultLine({ ...kill, struck: false, detectedBy: null, note: 'its step is never reached' })).toBe('fault 1 kill rank 5 at step 8 reduce-scatter: did not strike (its step is never reached)');
    const outside: FaultReport = { ...kill, id: undefined, injected: false, detectedAfterMs: null };
    expect(faultLine(outside)).toMatch(/^fault from outside: kill rank 5 at step 8 reduce-scatter: detected by exit/);
  });

  it('name the slow link', () => {
    expect(stragglerLine(link)).toBe('slow link 2->3 named by the straggler detector at step 30 (first seen at step 26, score 68.4)');
    expect(stragglerLine({ ...link, kind: 'node', link: undefined, rank: 4, injected: false, action: 'evict' })).toBe('slow rank 4 named by the straggler detector at step 30 (first seen at step 26, score 68.4, not injected, evict)');
  });
});

function report(o: Partial<RunReport> = {}): RunReport {
  const q = { p50: 487.2, p90: 560, p99: 1300, max: 1300 };
  return {
    ok: true,
    seed: 1,
    workers: 16,
    cardsPerWorker: 8,
    cards: 128,
    bytesPerCard: 256 << 10,
    dtype: 'f32',
    op: 'sum',
    stepsRequested: 40,
    stepsCompleted: 40,
    wrong: 0,
    stateDigest: 'abcdef0123456789',
    controlUrl: 'ws://127.0.0.1:1',
    startupMs: 3000,
    wallMs: 25263,
    stepMs: q,
    allreduceMs: { ...q, p50: 199.6 },
    computeMs: q,
    algbwGBps: 0,
    busbwGBps: 0,
    algo: ['ring', 'ring', 'ring'],
    link: { latencyUs: 0, bandwidth: 0, intraBandwidth: 0 },
    model: { predictedAllreduceMs: 1, predictedInterMs: 1, predictedIntraMs: 0, measuredAllreduceMs: 1, ratio: 1 },
    memory: { coordinatorRssMB: 1, workerRssMBMax: 1, workerRssMBTotal: 1, workerPssMBTotal: null, coordinatorPssMB: null, checkpointSlotsMB: null },
    coordinatorCpu: { ms: 1, share: 0 },
    processes: [],
    rejectedConnections: 0,
    faults: [kill, hang],
    injectedStragglers: [{ kind: 'slow-link', link: [2, 3], atStep: 26, struck: true, detectedAtStep: 30 }],
    stragglers: [link],
    epochs: [],
    goodput: { productiveMs: 18972, wallMs: 21595, ratio: 0.8785, lostSteps: 1, recomputedSteps: 1 },
    restarts: 2,
    ...o,
  };
}

const clean = { digest: 'abcdef0123456789', how: 'closed form' };
const files = [{ label: 'report', path: 'runs/demo-x/report.json' }];

describe('the verdict', () => {
  it('OK: every fault healed, the slow link named, exact, the fault-free digest, the files', () => {
    const v = demoSummary(report(), clean, files);
    expect(v.ok).toBe(true);
    expect(v.problems).toEqual([]);
    const lines = v.text.split('\n');
    expect(lines[1]).toBe('OK  ringswarm demo: ring all-reduce, 16 workers x 8 cards = 128 cards, 256 KiB f32 sum per card, seed 1, 25.3 s');
    expect(v.text).toContain(`    ${faultLine(kill)}\n    ${faultLine(hang)}\n`);
    expect(v.text).toContain(`    ${stragglerLine(link)}\n`);
    expect(v.text).toContain('  result:    exact: 0 wrong elements, 40/40 steps\n');
    expect(v.text).toContain("  digest:    abcdef012345… = the fault-free run's (closed form)\n");
    expect(v.text).toContain('  report:    runs/demo-x/report.json\n');
    expect(v.text).not.toContain('problem');
  });

  it('FAILED when the digest differs, saying both', () => {
    const v = demoSummary(report({ stateDigest: '99999999999999' }), clean, files);
    expect(v.ok).toBe(false);
    expect(v.text).toContain("digest:    999999999999… DIFFERS from the fault-free run's abcdef012345…");
    expect(v.problems).toEqual(["the state digest 999999999999… differs from the fault-free run's abcdef012345…"]);
  });

  it('FAILED when a fault is not healed, the slow link not named, or the run failed', () => {
    const v = demoSummary(
      report({ ok: false, error: 'too many restarts', faults: [kill, { ...hang, recoveredAfterMs: null }], stragglers: [], injectedStragglers: [{ kind: 'slow-link', link: [2, 3], atStep: 26, struck: true, detectedAtStep: null }], stateDigest: null }),
      clean,
      files,
    );
    expect(v.ok).toBe(false);
    expect(v.problems).toEqual(['the run failed: too many restarts', 'fault 2 hang rank 11 at step 18 was not healed', 'injected slow-link link 2->3 was not named', 'no state digest: the run did not finish']);
    expect(v.text.split('\n')[1]).toMatch(/^FAILED  ringswarm demo/);
    expect(v.text).toContain('injected slow-link link 2->3 from step 26: NOT named');
  });
});

describe('runFolder', () => {
  it('runs/demo-<UTC time>', () => {
    expect(runFolder(new Date('2026-12-02T17:15:30.123Z'))).toBe('runs/demo-20261202T171530Z');
  });
});
