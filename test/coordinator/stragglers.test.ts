// The straggler detector on synthetic timing tables. The tables come from a seeded model of one
// pipelined ring all-reduce per step (below): every rank computes, then its segments go round the
// ring chunk by chunk, each link a FIFO, each rank reducing one chunk at a time. So waits, link
// times and step times interact as in the real ring, not as independent numbers.
import { describe, expect, it } from 'vitest';
import {
  LINK_BUSY_SHARE,
  MIN_STRAGGLER_WORKERS,
  STRAGGLER_DEFAULTS,
  StragglerDetector,
  stragglerScores,
  type RankTiming,
  type StepTimings,
  type StragglerEvent,
  type StragglerOptions,
} from '../../src/coordinator/stragglers.js';
import { doublingPeers, doublingPlan } from '../../src/collective/recursive-doubling.js';
import { seededRandom } from '../../src/collective/random.js';

/** mulberry32: small, seeded, good enough for noise. */
const prng = seededRandom;

interface Model {
  workers: number;
  /** Chunks per segment. */
  chunks: number;
  chunkBytes: number;
  computeMs: number;
  /** Time one chunk takes on a link, and to reduce one chunk. */
  chunkTxMs: number;
  reduceMs: number;
  /** Multiplicative noise, uniform in [1 - noise, 1 + noise], per rank (and per link) per step. */
  noise: number;
  /** Extra compute, uniform in [0, jitterMs], per rank per step. */
  jitterMs: number;
  /** The whole machine's speed, uniform in [1 - drift, 1 + drift], per step. */
  drift: number;
  /** Measurement noise of linkMs, uniform in [0, linkJitterMs]. */
  linkJitterMs: number;
  /** A node f times slower moves its links' frames (1 + edgeInflation * (f - 1)) times slower (copying is CPU work). */
  edgeInflation: number;
  /** Each rank's compute and each linkMs is, with this probability a step, descheduled for 0.5-1.5 x spikeMs. */
  spikeRate: number;
  spikeMs: number;
  /**
   * Per chunk, after its transfer and before the receiver handles it: waking the receiver (its
   * link is idle meanwhile). 0 in the bandwidth-bound default; on a crowded machine it is most of
   * a hop.
   */
  hopLatencyMs: number;
  /**
   * A sender descheduled with a frame in flight: with this probability a step, a link's time
   * grows by 0.5-1.5 x stallMs (its write callback waits for a CPU), nothing else does.
   */
  stallRate: number;
  stallMs: number;
}

const MODEL: Omit<Model, 'workers'> = {
  chunks: 4,
  chunkBytes: 1 << 20,
  computeMs: 100,
  chunkTxMs: 0.25,
  reduceMs: 0.1,
  noise: 0.2,
  jitterMs: 10,
  drift: 0.2,
  linkJitterMs: 0.5,
  edgeInflation: 0.3,
  spikeRate: 0,
  spikeMs: 100,
  hopLatencyMs: 0,
  stallRate: 0,
  stallMs: 0,
};

/**
 * This machine, roughly: 16 workers on 2 cores run a latency-bound ring (a hop is mostly waking
 * the receiver, its link idle meanwhile; a link is busy a few percent of the all-reduce), and a
 * sender descheduled with a frame in flight holds its link's clock running 4-12x its clean time
 * for a step, on a link that changes from step to step: here 1 link-step in 10, busy 15-45% of
 * the all-reduce (measured on real runs: of the clean link-steps over 8x, 1 in 16 was busy 40% of
 * the all-reduce or more; here 1 in 7 is). Compute is net of CPU waits (as workers report it) with
 * 10 ms of jitter.
 */
const CROWDED: Partial<Model> = {
  chunks: 1,
  chunkBytes: 16 << 10,
  computeMs: 25,
  chunkTxMs: 0.1,
  reduceMs: 0.1,
  jitterMs: 10,
  noise: 0.1,
  hopLatencyMs: 2.5,
  stallRate: 0.1,
  stallMs: 24,
};

/** Slowdown factors this step: node[r] for rank r, link[r] for the link r -> r+1 (1 = healthy). */
interface Faults {
  node?: Record<number, number>;
  link?: Record<number, number>;
}

function ringStep(m: Model, rnd: () => number, step: number, faults: Faults): StepTimings {
  const n = m.workers;
  const nodeF = Array.from({ length: n }, (_, r) => faults.node?.[r] ?? 1);
  const linkF = Array.from({ length: n }, (_, r) => faults.link?.[r] ?? 1);
  const u = () => 1 - m.noise + 2 * m.noise * rnd();
  const machine = 1 - m.drift + 2 * m.drift * rnd();
  const spike = () => (m.spikeRate > 0 && rnd() < m.spikeRate ? m.spikeMs * (0.5 + rnd()) : 0);
  const compute = nodeF.map((f) => (m.computeMs * f * u() + m.jitterMs * rnd()) * machine + spike());
  const reduce = nodeF.map((f) => m.reduceMs * f * u() * machine);
  const tx = linkF.map((f, r) => m.chunkTxMs * f * u() * machine * (1 + m.edgeInflation * (Math.max(nodeF[r], nodeF[(r + 1) % n]) - 1)));
  const ringSteps = 2 * (n - 1);
  const linkFree = new Array<number>(n).fill(0);
  const busyUntil = new Array<number>(n).fill(0);
  const busy = new Array<number>(n).fill(0);
  const cpuFree = [...compute];
  const wait = new Array<number>(n).fill(0);
  // sendAt[r][c]: when rank r hands chunk c of the current ring step to its link.
  let sendAt = compute.map((t) => new Array<number>(m.chunks).fill(t));
  for (let s = 0; s < ringSteps; s++) {
    // Each link is a FIFO carrying chunks in (ring step, chunk) order, as the ranks send them.
    const arrive = Array.from({ length: n }, () => new Array<number>(m.chunks).fill(0));
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < m.chunks; c++) {
        const queued = sendAt[r][c];
        const end = Math.max(queued, linkFree[r]) + tx[r] * (0.9 + 0.2 * rnd());
        busy[r] += end - Math.max(queued, busyUntil[r]);
        busyUntil[r] = linkFree[r] = end;
        arrive[(r + 1) % n][c] = end + (m.hopLatencyMs > 0 ? m.hopLatencyMs * (0.5 + rnd()) : 0);
      }
    }
    // Each rank reduces (or stores) chunks in arrival order and sends each on when done.
    sendAt = arrive.map((chunks, r) =>
      chunks.map((t) => {
        if (t > cpuFree[r]) wait[r] += t - cpuFree[r];
        cpuFree[r] = Math.max(t, cpuFree[r]) + reduce[r] * (0.9 + 0.2 * rnd());
        return cpuFree[r];
      }),
    );
  }
  const ranks: RankTiming[] = compute.map((c, r) => ({
    rank: r,
    computeMs: c,
    waitMs: wait[r],
    allreduceMs: cpuFree[r] - c,
    linkMs: busy[r] + m.linkJitterMs * rnd() + spike() + (m.stallRate > 0 && rnd() < m.stallRate ? m.stallMs * (0.5 + rnd()) : 0),
    bytesSent: ringSteps * m.chunks * m.chunkBytes,
  }));
  return { step, ranks };
}

interface Run {
  workers: number;
  steps: number;
  seed: number;
  faults?: (step: number) => Faults;
  model?: Partial<Model>;
  detector?: Partial<StragglerOptions>;
}

function simulate(run: Run): { events: StragglerEvent[]; detector: StragglerDetector; tables: StepTimings[] } {
  const model: Model = { ...MODEL, workers: run.workers, ...run.model };
  const rnd = prng(run.seed);
  const detector = new StragglerDetector({ workers: run.workers, ...run.detector });
  const events: StragglerEvent[] = [];
  const tables: StepTimings[] = [];
  for (let step = 0; step < run.steps; step++) {
    const t = ringStep(model, rnd, step, run.faults?.(step) ?? {});
    tables.push(t);
    events.push(...detector.observe(t));
  }
  return { events, detector, tables };
}

const detected = (events: StragglerEvent[]) => events.filter((e) => e.type === 'detected');
const describe_ = (e: StragglerEvent) => (e.kind === 'node' ? `node ${e.rank}` : `link ${e.link[0]}->${e.link[1]}`);

/**
 * The true slowdown in the model: median step time with the fault over median step time without
 * it, each over 101 noisy steps. (The clean step is paced by the slowest of 16 noisy ranks, so
 * this is not the factor itself.)
 */
function trueSlowdown(workers: number, faults: Faults): number {
  const medianStepMs = (f: Faults, seed: number) => {
    const rnd = prng(seed);
    const model = { ...MODEL, workers };
    const times = Array.from({ length: 101 }, (_, step) => stragglerScores(ringStep(model, rnd, step, f).ranks).stepMs);
    return times.sort((a, b) => a - b)[50];
  };
  return medianStepMs(faults, 7) / medianStepMs({}, 8);
}

const ONSET = 10;

describe('stragglerScores', () => {
  const row = (rank: number, computeMs: number, linkMs: number, bytesSent = 1000): RankTiming => ({
    rank,
    computeMs,
    waitMs: 0,
    allreduceMs: 20,
    linkMs,
    bytesSent,
  });

  it('divides each rank by the median of the others, links per byte', () => {
    const s = stragglerScores([row(0, 100, 10), row(1, 100, 10), row(2, 300, 20), row(3, 100, 10, 500), row(4, 100, 10), row(5, 100, 10)]);
    expect(s.compute).toEqual([1, 1, 3, 1, 1, 1]);
    // Link 2->3 took twice as long; link 3->4 took as long for half the bytes: both twice as slow.
    expect(s.link).toEqual([1, 1, 2, 2, 1, 1]);
    // links[r] = lesser of the links into and out of r: both of rank 3's links are slow.
    expect(s.links).toEqual([1, 1, 1, 2, 1, 1]);
    expect(s.stepMs).toBe(120);
  });

  it('ignores excesses under minExcessMs and links that sent nothing', () => {
    const s = stragglerScores([row(0, 0.2, 0.1), row(1, 0.2, 0.1), row(2, 0.9, 0.1, 0), row(3, 0.2, 0.1)], 1);
    expect(s.compute).toEqual([1, 1, 1, 1]);
    expect(s.link).toEqual([1, 1, 1, 1]);
    expect(stragglerScores([row(0, 0.2, 0), row(1, 0.2, 0), row(2, 0.9, 0), row(3, 0.2, 0)], 0).compute[2]).toBeCloseTo(4.5);
  });

  it('counts a link only if it was busy for at least LINK_BUSY_SHARE of its all-reduce', () => {
    // Link 2 -> 3 took ten times the others' time per byte, but for a tenth of the all-reduce (a
    // sender descheduled with a frame in flight); link 4 -> 5, as much slower and busy all along.
    const rows = [row(0, 100, 2), row(1, 100, 2), row(2, 100, 20), row(3, 100, 2), row(4, 100, 200), row(5, 100, 2)].map((r) => ({ ...r, allreduceMs: 200 }));
    const s = stragglerScores(rows);
    expect(s.link[2]).toBe(1);
    expect(s.link[4]).toBeCloseTo(100);
    expect(LINK_BUSY_SHARE).toBe(0.4);
  });

  it('judges a link on the time the ring moved data, not the wait for a rank that entered late', () => {
    // Rank 3 computed 3x: everyone else waited about 200 ms of their 250 ms all-reduce for it.
    // Link 5 -> 6 was busy 40 ms of the 50 in which data moved.
    const rows = [0, 1, 2, 3, 4, 5, 6, 7].map((r) => ({ ...row(r, r === 3 ? 300 : 100, r === 5 ? 40 : 4), allreduceMs: r === 3 ? 50 : 250 }));
    const s = stragglerScores(rows);
    expect(s.compute[3]).toBe(3);
    expect(s.link[5]).toBeCloseTo(10);
    // Without the late rank, 40 ms of a 250 ms all-reduce would not count.
    expect(stragglerScores(rows.map((r) => ({ ...r, computeMs: 100 }))).link[5]).toBe(1);
  });

  it("scores a node's links only when both are slow and alike", () => {
    const rows = (a: number, b: number) => [row(0, 100, 10), row(1, 100, 10), row(2, 100, a), row(3, 100, b), row(4, 100, 10), row(5, 100, 10)].map((r) => ({ ...r, allreduceMs: 20 }));
    // A 10x link beside a 1.5x one: a slow link (rank 3's links are not alike), not a node.
    expect(stragglerScores(rows(100, 15)).links[3]).toBe(1);
    // 3x and 2.5x: both of rank 3's links, the node.
    expect(stragglerScores(rows(30, 25)).links[3]).toBeCloseTo(2.5);
  });

  it('refuses rings below the minimum size, and rows out of rank order', () => {
    expect(() => stragglerScores([row(0, 1, 1), row(1, 1, 1), row(2, 1, 1)])).toThrow(RangeError);
    expect(() => stragglerScores([row(0, 1, 1), row(2, 1, 1), row(1, 1, 1), row(3, 1, 1)])).toThrow(/sorted by rank/);
  });
});

describe('StragglerDetector on a clean noisy ring', () => {
  it.each([16, 8])('flags nothing in 200 steps with W=%i', (workers) => {
    const { events, detector, tables } = simulate({ workers, steps: 200, seed: 1 });
    expect(events.map(describe_)).toEqual([]);
    expect(detector.current()).toEqual([]);
    const stepMs = tables.map((t) => stragglerScores(t.ranks).stepMs).sort((a, b) => a - b);
    const base = detector.baselineStepMs()!;
    expect(base).toBeGreaterThan(stepMs[Math.floor(stepMs.length * 0.25)]);
    expect(base).toBeLessThan(stepMs[Math.floor(stepMs.length * 0.75)]);
  });
});

describe('a slow node', () => {
  it.each([1.5, 3, 5])('%fx slower from step 10: that node, within 5 steps, with its slowdown', (factor) => {
    for (const [seed, rank] of [
      [11, 5],
      [12, 0],
      [13, 15],
    ]) {
      const faults = (step: number): Faults => (step >= ONSET ? { node: { [rank]: factor } } : {});
      const { events, detector } = simulate({ workers: 16, steps: 40, seed, faults });
      expect(events.map(describe_)).toEqual([`node ${rank}`]);
      const e = events[0];
      expect(e).toMatchObject({ type: 'detected', kind: 'node', rank, evidence: 'compute' });
      expect(e.detectedAtStep - ONSET).toBeLessThan(5);
      expect(e.firstSeenStep).toBeGreaterThanOrEqual(ONSET);
      expect(e.firstSeenStep).toBeLessThanOrEqual(e.detectedAtStep);
      // Its compute over the others' (jitter adds about 5 ms to every rank's 100).
      expect(e.score).toBeGreaterThan(factor * 0.8);
      expect(e.score).toBeLessThan(factor * 1.2);
      const truth = trueSlowdown(16, { node: { [rank]: factor } });
      // Within the model's step-to-step noise (the machine's speed varies by ±20% a step).
      expect(e.slowdown).not.toBeNull();
      expect(Math.abs(e.slowdown! / truth - 1)).toBeLessThan(0.15);
      expect(detector.current()).toMatchObject([{ kind: 'node', rank }]);
    }
  });

  it('slow only in communication (both of its links 3x): the node, not two links', () => {
    const faults = (step: number): Faults => (step >= ONSET ? { link: { 6: 3, 7: 3 } } : {});
    const { events } = simulate({ workers: 16, steps: 40, seed: 21, faults });
    expect(events.map(describe_)).toEqual(['node 7']);
    expect(events[0]).toMatchObject({ evidence: 'links' });
    expect(events[0].detectedAtStep - ONSET).toBeLessThan(5);
  });
});

describe('a slow link', () => {
  it.each([1.5, 3])('%fx slower from step 10: that link, not its endpoints, within 5 steps', (factor) => {
    for (const [seed, from] of [
      [31, 4],
      [32, 15],
      [33, 0],
    ]) {
      const faults = (step: number): Faults => (step >= ONSET ? { link: { [from]: factor } } : {});
      const { events, detector } = simulate({ workers: 16, steps: 40, seed, faults });
      const to = (from + 1) % 16;
      expect(events.map(describe_)).toEqual([`link ${from}->${to}`]);
      const e = events[0];
      expect(e).toMatchObject({ type: 'detected', kind: 'link', link: [from, to], evidence: 'link' });
      expect(e.detectedAtStep - ONSET).toBeLessThan(5);
      expect(e.score).toBeGreaterThan(factor * 0.8);
      expect(e.score).toBeLessThan(factor * 1.2);
      const truth = trueSlowdown(16, { link: { [from]: factor } });
      expect(Math.abs(e.slowdown! / truth - 1)).toBeLessThan(0.15);
      expect(detector.current()).toHaveLength(1);
    }
  });

  it('a 5x slow node shows on both its links, and is still one node', () => {
    const faults = (step: number): Faults => (step >= ONSET ? { node: { 3: 5 } } : {});
    const { events, tables } = simulate({ workers: 16, steps: 30, seed: 41, faults });
    const s = stragglerScores(tables[ONSET + 1].ranks);
    expect(s.link[2]).toBeGreaterThan(STRAGGLER_DEFAULTS.threshold);
    expect(s.link[3]).toBeGreaterThan(STRAGGLER_DEFAULTS.threshold);
    expect(events.map(describe_)).toEqual(['node 3']);
  });
});

describe('a crowded machine: latency-bound ring, descheduled senders', () => {
  // The accuracy script's slow link of severity S carries its bytes S times slower than a clean
  // link does over the whole all-reduce: here each frame takes S times a clean hop.
  const hopMs = 0.1 + 2.5 + 0.1;
  const slowLink = (severity: number) => (severity * hopMs) / 0.1;

  it('flags nothing in 20 clean runs of 200 steps, though a sender descheduled mid-frame inflates its link 5-15x for a step', () => {
    let spikes = 0;
    const flagged: string[] = [];
    for (let i = 0; i < 20; i++) {
      const { events, tables } = simulate({ workers: 16, steps: 200, seed: 4000 + i, model: CROWDED });
      flagged.push(...detected(events).map((e) => `run ${i}: ${describe_(e)} at ${e.detectedAtStep}`));
      for (const t of tables) {
        const rates = t.ranks.map((r) => r.linkMs / r.bytesSent);
        const mid = [...rates].sort((a, b) => a - b)[8];
        spikes += rates.filter((x) => x > 5 * mid).length;
      }
    }
    expect(spikes).toBeGreaterThan(20 * 200 * 16 * 0.05);
    expect(flagged).toEqual([]);
  });

  it.each([1.5, 3, 5])('a link %fx slower: that link, within 5 steps', (severity) => {
    for (const [seed, from] of [
      [4101, 3],
      [4102, 15],
      [4103, 8],
    ]) {
      const faults = (step: number): Faults => (step >= ONSET ? { link: { [from]: slowLink(severity) } } : {});
      const { events } = simulate({ workers: 16, steps: 40, seed, faults, model: CROWDED });
      expect(events.map(describe_)).toEqual([`link ${from}->${(from + 1) % 16}`]);
      expect(events[0].detectedAtStep - ONSET).toBeLessThan(5);
    }
  });

  it.each([1.5, 3, 5])('a node %fx slower: that node, within 5 steps', (factor) => {
    for (const [seed, rank] of [
      [4201, 2],
      [4202, 9],
      [4203, 14],
    ]) {
      const faults = (step: number): Faults => (step >= ONSET ? { node: { [rank]: factor } } : {});
      const { events } = simulate({ workers: 16, steps: 40, seed, faults, model: CROWDED });
      expect(events.map(describe_)).toEqual([`node ${rank}`]);
      expect(events[0].detectedAtStep - ONSET).toBeLessThan(5);
    }
  });

  it('a slow link between noisy links stays a link: an endpoint is not slow by one noisy link beside it', () => {
    // Link 5 -> 6 is 20x slower, busy all along; links 4 -> 5 and 6 -> 7 take turns at 2x (before,
    // either made an endpoint look slow in both its links and hid the slow link).
    const d = new StragglerDetector({ workers: 8 });
    const events: StragglerEvent[] = [];
    for (let step = 0; step < 15; step++) {
      const ranks = Array.from({ length: 8 }, (_, rank) => ({
        rank,
        computeMs: 25,
        waitMs: 0,
        allreduceMs: 60,
        linkMs: rank === 5 ? (step >= 6 ? 60 : 3) : (rank === 4 && step % 2 === 0) || (rank === 6 && step % 2 === 1) ? 6 : 3,
        bytesSent: 1000,
      }));
      events.push(...d.observe({ step, ranks }));
    }
    expect(events.map(describe_)).toEqual(['link 5->6']);
  });
});

describe('persistence', () => {
  it('does not flag a one-step spike, of a node or of a link', () => {
    for (let seed = 50; seed < 60; seed++) {
      const faults = (step: number): Faults => (step === 30 ? { node: { 2: 10 } } : step === 60 ? { link: { 9: 10 } } : {});
      const { events, tables } = simulate({ workers: 16, steps: 100, seed, faults });
      // The spike is there, one step long.
      expect(stragglerScores(tables[30].ranks).compute[2]).toBeGreaterThan(5);
      expect(stragglerScores(tables[60].ranks).link[9]).toBeGreaterThan(5);
      expect(events.map(describe_)).toEqual([]);
    }
  });

  it('clears a straggler that went away, and flags it again when it comes back', () => {
    const faults = (step: number): Faults => ((step >= 10 && step < 30) || step >= 60 ? { node: { 6: 3 } } : {});
    const { events, detector } = simulate({ workers: 16, steps: 90, seed: 61, faults });
    expect(events.map((e) => [e.type, describe_(e)])).toEqual([
      ['detected', 'node 6'],
      ['cleared', 'node 6'],
      ['detected', 'node 6'],
    ]);
    const cleared = events[1];
    expect(cleared.type === 'cleared' && cleared.clearedAtStep).toBeGreaterThanOrEqual(30 + STRAGGLER_DEFAULTS.persistM - 1);
    expect(cleared.type === 'cleared' && cleared.clearedAtStep).toBeLessThan(30 + STRAGGLER_DEFAULTS.persistM + 3);
    expect(events[2].detectedAtStep - 60).toBeLessThan(5);
    expect(detector.current()).toMatchObject([{ kind: 'node', rank: 6 }]);
  });

  it('holds events until warmup is over; with no clean step yet, slowdown is null', () => {
    const faults = (): Faults => ({ node: { 1: 3 } });
    const { events, detector } = simulate({ workers: 16, steps: 20, seed: 71, faults, detector: { warmupSteps: 8 } });
    expect(events.map(describe_)).toEqual(['node 1']);
    expect(events[0].detectedAtStep).toBe(8);
    expect(events[0].firstSeenStep).toBe(0);
    expect(events[0].slowdown).toBeNull();
    expect(detector.baselineStepMs()).toBeNull();
  });
});

describe('several stragglers, other ring sizes', () => {
  it('finds a slow node and a slow link at once', () => {
    const faults = (step: number): Faults => (step >= ONSET ? { node: { 3: 3 }, link: { 9: 2 } } : {});
    const { events } = simulate({ workers: 16, steps: 40, seed: 81, faults });
    expect(events.map(describe_).sort()).toEqual(['link 9->10', 'node 3']);
    for (const e of events) expect(e.detectedAtStep - ONSET).toBeLessThan(5);
  });

  it('finds two slow nodes at once', () => {
    const faults = (step: number): Faults => (step >= ONSET ? { node: { 2: 2, 11: 4 } } : {});
    const { events } = simulate({ workers: 16, steps: 40, seed: 82, faults });
    expect(events.map(describe_).sort()).toEqual(['node 11', 'node 2']);
  });

  it.each([
    [{ node: { 2: 3 } }, 'node 2'],
    [{ link: { 1: 3 } }, 'link 1->2'],
    [{ link: { 3: 3 } }, 'link 3->0'],
  ] as const)('W=4: %j is found as %s', (fault, name) => {
    const faults = (step: number): Faults => (step >= ONSET ? fault : {});
    for (const seed of [91, 92, 93]) {
      const { events } = simulate({ workers: 4, steps: 40, seed, faults });
      expect(events.map(describe_)).toEqual([name]);
      expect(events[0].detectedAtStep - ONSET).toBeLessThan(5);
    }
  });

  it.each([2, 3])('W=%i is below the minimum: nothing, even for a 5x straggler', (workers) => {
    expect(workers).toBeLessThan(MIN_STRAGGLER_WORKERS);
    const { events } = simulate({ workers, steps: 30, seed: 5, faults: () => ({ node: { 0: 5 } }) });
    expect(events).toEqual([]);
  });
});

describe('inputs', () => {
  const table = (step: number, workers: number): StepTimings => ({
    step,
    ranks: Array.from({ length: workers }, (_, rank) => ({ rank, computeMs: 10, waitMs: 1, allreduceMs: 5, linkMs: 2, bytesSent: 100 })),
  });

  it('rejects conflicting or out-of-range options, naming them', () => {
    expect(() => new StragglerDetector({ workers: 8, persistK: 4, persistM: 3 })).toThrow(/persistK \(4\).*persistM \(3\)/);
    expect(() => new StragglerDetector({ workers: 8, threshold: 1 })).toThrow(/threshold/);
    expect(() => new StragglerDetector({ workers: 0 })).toThrow(/workers/);
    expect(() => new StragglerDetector({ workers: 8, warmupSteps: -1 })).toThrow(/warmupSteps/);
    expect(() => new StragglerDetector({ workers: 8, threshold: undefined })).not.toThrow();
  });

  it('rejects a table that is not one finite, non-negative row per rank, and steps that do not increase', () => {
    const d = new StragglerDetector({ workers: 4 });
    expect(() => d.observe({ step: 0, ranks: table(0, 4).ranks.slice(1) })).toThrow(/3 rows for 4 workers/);
    const dup = table(0, 4);
    dup.ranks[1].rank = 0;
    expect(() => d.observe(dup)).toThrow(/rank 0 reported twice/);
    const bad = table(0, 4);
    bad.ranks[2].linkMs = Number.NaN;
    expect(() => d.observe(bad)).toThrow(/rank 2 linkMs/);
    const shuffled = table(0, 4);
    expect(d.observe({ step: 0, ranks: [...shuffled.ranks].reverse() })).toEqual([]);
    expect(() => d.observe(table(0, 4))).toThrow(/steps must increase/);
    expect(d.observe(table(3, 4))).toEqual([]);
  });
});

describe('accuracy on the model (seeded trials)', () => {
  const within = 5;

  it('finds >= 95% of 1.5x-5x stragglers within 5 steps, as the right kind (confusion <= 5%)', () => {
    const trials = 100;
    let found = 0;
    let confused = 0;
    let other = 0;
    for (let i = 0; i < trials; i++) {
      const rnd = prng(1000 + i);
      const workers = 16;
      const kind = rnd() < 0.5 ? 'node' : 'link';
      const factor = 1.5 * Math.pow(5 / 1.5, rnd());
      const at = Math.floor(rnd() * workers);
      const onset = 8 + Math.floor(rnd() * 12);
      const fault: Faults = kind === 'node' ? { node: { [at]: factor } } : { link: { [at]: factor } };
      const { events } = simulate({ workers, steps: onset + 15, seed: 2000 + i, faults: (s) => (s >= onset ? fault : {}) });
      const want = kind === 'node' ? `node ${at}` : `link ${at}->${(at + 1) % workers}`;
      const hit = detected(events).find((e) => describe_(e) === want);
      if (hit && hit.detectedAtStep - onset < within) found++;
      // The same fault reported as the other kind: its node as links, or its link as an endpoint.
      const wrongKind = detected(events).filter((e) =>
        kind === 'node' ? e.kind === 'link' && e.link.includes(at) : e.kind === 'node' && (e.rank === at || e.rank === (at + 1) % workers),
      );
      if (wrongKind.length > 0) confused++;
      other += detected(events).filter((e) => describe_(e) !== want).length;
    }
    expect(found / trials).toBeGreaterThanOrEqual(0.95);
    expect(confused / trials).toBeLessThanOrEqual(0.05);
    expect(other).toBeLessThanOrEqual(trials * 0.05);
  });

  const cleanRuns = (model: Partial<Model>, detector: Partial<StragglerOptions> = {}) => {
    const flagged: string[] = [];
    for (let i = 0; i < 20; i++) {
      const { events } = simulate({ workers: 16, steps: 200, seed: 3000 + i, model, detector });
      flagged.push(...detected(events).map((e) => `run ${i}: ${describe_(e)} at ${e.detectedAtStep}`));
    }
    return flagged;
  };

  it('flags nothing in 20 clean runs of 200 steps', () => {
    expect(cleanRuns({})).toEqual([]);
  });

  // Descheduling on a crowded machine: rare spikes of about a step's compute. A window's largest
  // step never decides, so a spike is no evidence at all (before, two spikes and a little noise on
  // one rank within five steps passed 3 of 5).
  it('with rare descheduling spikes (1% of steps), flags nothing in 20 clean runs', () => {
    const spiky = { spikeRate: 0.01, spikeMs: 100 };
    expect(cleanRuns(spiky)).toEqual([]);
    expect(cleanRuns(spiky, { persistK: 4 })).toEqual([]);
  });
});

/**
 * The same kind of model for recursive doubling (a power-of-two swarm): every rank computes, then
 * at round j exchanges the whole vector, chunk by chunk, with rank ^ 2^j, reducing each chunk as
 * it arrives and sending it on to the next round's partner (pipelined). Each directed link is a
 * FIFO of its own, measured by its sender; `links` in the table holds them all.
 */
interface RdFaults {
  node?: Record<number, number>;
  /** Slowdown of the directed link `from>to`. */
  link?: Record<string, number>;
}

function rdStep(m: Model, rnd: () => number, step: number, faults: RdFaults): StepTimings {
  const n = m.workers;
  const plans = Array.from({ length: n }, (_, r) => doublingPlan(r, n));
  if (plans.some((p) => p.role !== 'plain')) throw new RangeError('the model takes a power of two');
  const rounds = plans[0].rounds;
  const nodeF = Array.from({ length: n }, (_, r) => faults.node?.[r] ?? 1);
  const u = () => 1 - m.noise + 2 * m.noise * rnd();
  const machine = 1 - m.drift + 2 * m.drift * rnd();
  const spike = () => (m.spikeRate > 0 && rnd() < m.spikeRate ? m.spikeMs * (0.5 + rnd()) : 0);
  const compute = nodeF.map((f) => (m.computeMs * f * u() + m.jitterMs * rnd()) * machine + spike());
  const reduce = nodeF.map((f) => m.reduceMs * f * u() * machine);
  const cpuFree = [...compute];
  const wait = new Array<number>(n).fill(0);
  const busy = new Map<string, number>();
  let sendAt = compute.map((t) => new Array<number>(m.chunks).fill(t));
  for (let j = 0; j < rounds; j++) {
    const arrive = Array.from({ length: n }, () => new Array<number>(m.chunks).fill(0));
    for (let r = 0; r < n; r++) {
      const p = plans[r].partners[j];
      const key = `${r}>${p}`;
      const tx = m.chunkTxMs * (faults.link?.[key] ?? 1) * u() * machine * (1 + m.edgeInflation * (Math.max(nodeF[r], nodeF[p]) - 1));
      let free = 0;
      let b = 0;
      for (let c = 0; c < m.chunks; c++) {
        const queued = sendAt[r][c];
        const end = Math.max(queued, free) + tx * (0.9 + 0.2 * rnd());
        b += end - Math.max(queued, free);
        free = end;
        arrive[p][c] = end + (m.hopLatencyMs > 0 ? m.hopLatencyMs * (0.5 + rnd()) : 0);
      }
      busy.set(key, b);
    }
    sendAt = arrive.map((chunks, r) => {
      const next = new Array<number>(m.chunks);
      for (const c of chunks.map((_, c) => c).sort((a, b) => chunks[a] - chunks[b])) {
        const t = chunks[c];
        if (t > cpuFree[r]) wait[r] += t - cpuFree[r];
        cpuFree[r] = Math.max(t, cpuFree[r]) + reduce[r] * (0.9 + 0.2 * rnd());
        next[c] = cpuFree[r];
      }
      return next;
    });
  }
  const links = plans.flatMap((plan, r) => {
    // A sender descheduled with a frame in flight holds one of its links' clocks running.
    const stalled = m.stallRate > 0 && rnd() < m.stallRate ? Math.floor(rnd() * rounds) : -1;
    return plan.partners.map((p, j) => ({
      from: r,
      to: p,
      busyMs: busy.get(`${r}>${p}`)! + m.linkJitterMs * rnd() + spike() + (j === stalled ? m.stallMs * (0.5 + rnd()) : 0),
      bytes: m.chunks * m.chunkBytes,
    }));
  });
  const ranks: RankTiming[] = compute.map((c, r) => ({
    rank: r,
    computeMs: c,
    waitMs: wait[r],
    allreduceMs: cpuFree[r] - c,
    linkMs: links.filter((l) => l.from === r).reduce((a, l) => a + l.busyMs, 0),
    bytesSent: rounds * m.chunks * m.chunkBytes,
  }));
  return { step, ranks, links };
}

/** Recursive doubling carries the whole vector each round: 16 chunks of the ring model's size. */
const RD: Partial<Model> = { chunks: 16 };

function simulateRd(run: { workers: number; steps: number; seed: number; faults?: (step: number) => RdFaults; model?: Partial<Model> }) {
  const model: Model = { ...MODEL, ...RD, workers: run.workers, ...run.model };
  const rnd = prng(run.seed);
  const detector = new StragglerDetector({ workers: run.workers });
  const events: StragglerEvent[] = [];
  for (let step = 0; step < run.steps; step++) events.push(...detector.observe(rdStep(model, rnd, step, run.faults?.(step) ?? {})));
  return { events, detector };
}

describe('under recursive doubling (per-link observations)', () => {
  it.each([1.5, 3])('a link %fx slower from step 10: that link (a doubling partner, not the ring successor), within 5 steps (6 at 1.5x)', (factor) => {
    for (const [seed, from, to] of [
      [5101, 5, 1],
      [5102, 12, 13],
      [5103, 0, 8],
      [5104, 9, 11],
    ]) {
      expect(doublingPeers(from, 16)).toContain(to);
      const faults = (step: number): RdFaults => (step >= ONSET ? { link: { [`${from}>${to}`]: factor } } : {});
      const { events, detector } = simulateRd({ workers: 16, steps: 40, seed, faults });
      expect(events.map(describe_), `seed ${seed}`).toEqual([`link ${from}->${to}`]);
      expect(events[0]).toMatchObject({ kind: 'link', link: [from, to], evidence: 'link' });
      // Each link carries a quarter of its sender's bytes (one of 4 rounds): a 1.5x link may take a step more than on the ring.
      expect(events[0].detectedAtStep - ONSET).toBeLessThan(factor < 2 ? 6 : 5);
      expect(events[0].score).toBeGreaterThan(factor * 0.8);
      expect(events[0].score).toBeLessThan(factor * 1.2);
      expect(detector.current()).toHaveLength(1);
    }
  });

  it('a slow link on the crowded machine: that link, within 5 steps', () => {
    const hopMs = 0.1 + 2.5 + 0.1;
    for (const [seed, from, to] of [
      [5301, 3, 2],
      [5302, 10, 14],
      [5303, 7, 15],
    ]) {
      const faults = (step: number): RdFaults => (step >= ONSET ? { link: { [`${from}>${to}`]: (3 * hopMs) / 0.1 / 4 } /* its 4 chunks take 3 hops */ } : {});
      const { events } = simulateRd({ workers: 16, steps: 40, seed, faults, model: CROWDED_RD });
      expect(events.map(describe_), `seed ${seed}`).toEqual([`link ${from}->${to}`]);
      expect(events[0].detectedAtStep - ONSET).toBeLessThan(5);
    }
  });

  it('the same slow link in the rows alone (linkMs over all partners): not named as a link, as before', () => {
    const model: Model = { ...MODEL, ...RD, workers: 16 };
    const rnd = prng(5105);
    const d = new StragglerDetector({ workers: 16 });
    const events: StragglerEvent[] = [];
    for (let step = 0; step < 40; step++) {
      const { ranks } = rdStep(model, rnd, step, step >= ONSET ? { link: { '5>1': 3 } } : {});
      events.push(...d.observe({ step, ranks }));
    }
    expect(events.filter((e) => e.kind === 'link' && e.link[0] === 5 && e.link[1] === 1)).toEqual([]);
  });

  it('a slow node: that node; a node slow in communication (all its links 3x): that node, by its links', () => {
    const slow = simulateRd({ workers: 16, steps: 40, seed: 5201, faults: (s) => (s >= ONSET ? { node: { 6: 3 } } : {}) });
    expect(slow.events.map(describe_)).toEqual(['node 6']);
    expect(slow.events[0]).toMatchObject({ evidence: 'compute' });
    const all: Record<string, number> = {};
    for (const p of doublingPeers(6, 16)) {
      all[`6>${p}`] = 3;
      all[`${p}>6`] = 3;
    }
    const comm = simulateRd({ workers: 16, steps: 40, seed: 5202, faults: (s) => (s >= ONSET ? { link: all } : {}) });
    expect(comm.events.map(describe_)).toEqual(['node 6']);
    expect(comm.events[0]).toMatchObject({ evidence: 'links' });
    expect(comm.events[0].detectedAtStep - ONSET).toBeLessThan(5);
  });

  // The crowded ring's stall rate (1 sender in 10 a step) scaled to the time recursive doubling
  // has frames in flight: 4 rounds x 4 chunks x 0.1 ms where the ring has 30 hops x 0.1 ms.
  const CROWDED_RD: Partial<Model> = { ...CROWDED, chunks: 4, stallRate: (0.1 * (4 * 4 * 0.1)) / (30 * 0.1) };

  it('flags nothing in 20 clean jittery runs of 200 steps, bandwidth-bound or crowded (descheduled senders)', () => {
    const flagged: string[] = [];
    for (const model of [{}, CROWDED_RD, { spikeRate: 0.01, spikeMs: 100 }])
      for (let i = 0; i < 20; i++) {
        const { events } = simulateRd({ workers: 16, steps: 200, seed: 6000 + i, model });
        flagged.push(...detected(events).map((e) => `${JSON.stringify(model)} run ${i}: ${describe_(e)} at ${e.detectedAtStep}`));
      }
    expect(flagged).toEqual([]);
  });

  it('the ring given as per-link observations scores as from its rows', () => {
    for (const seed of [7001, 7002]) {
      const model: Model = { ...MODEL, workers: 16 };
      const rnd = prng(seed);
      const a = new StragglerDetector({ workers: 16 });
      const b = new StragglerDetector({ workers: 16 });
      const ea: StragglerEvent[] = [];
      const eb: StragglerEvent[] = [];
      for (let step = 0; step < 40; step++) {
        const t = ringStep(model, rnd, step, step >= ONSET ? { link: { 4: 2 }, node: { 11: 2 } } : {});
        ea.push(...a.observe(t));
        eb.push(...b.observe({ ...t, links: t.ranks.map((r) => ({ from: r.rank, to: (r.rank + 1) % 16, busyMs: r.linkMs, bytes: r.bytesSent })) }));
      }
      expect(eb).toEqual(ea);
      expect(ea.map(describe_).sort()).toEqual(['link 4->5', 'node 11']);
    }
  });

  it("judges a link's busy share against the time its sender's op slept, where the row says (allreduceSleptMs)", () => {
    // A sender's link clock counts only time it slept; so does the share it is judged against. A
    // crowded op (100 ms, of which it slept 30) with its link busy 20 of them: slow (10x the
    // others), though under 0.4 of the op's wall time.
    const rows = (slept?: number) =>
      Array.from({ length: 4 }, (_, rank) => ({ rank, computeMs: 10, waitMs: 0, allreduceMs: 100, linkMs: 0, bytesSent: 0, ...(slept === undefined ? {} : { allreduceSleptMs: slept }) }));
    const links = [0, 1, 2, 3].map((r) => ({ from: r, to: (r + 1) % 4, busyMs: r === 0 ? 20 : 2, bytes: 1000 }));
    expect(stragglerScores(rows(), 1, 1.3, links).directed[0].ratio).toBe(1);
    expect(stragglerScores(rows(30), 1, 1.3, links).directed[0].ratio).toBeCloseTo(10);
    // The others stay at 1: busy 2 of a slept 30 is not a good part of it.
    expect(stragglerScores(rows(30), 1, 1.3, links).directed.slice(1).map((d) => d.ratio)).toEqual([1, 1, 1]);
    const d = new StragglerDetector({ workers: 4 });
    expect(() => d.observe({ step: 0, ranks: rows(Number.NaN), links })).toThrow(/allreduceSleptMs/);
  });

  it("scores a slow link where the others' clocks hardly ran (recursive doubling): against at least minExcessMs, not a median of 0", () => {
    // 8 ranks, each sending to its 3 partners; clean links measure 0 ms, the link 2 -> 3 180 ms
    // of an op its sender slept 160 ms of.
    const rows = Array.from({ length: 8 }, (_, rank) => ({ rank, computeMs: 20, waitMs: 0, allreduceMs: 170, allreduceSleptMs: 160, linkMs: 0, bytesSent: 0 }));
    const links = [...Array(8).keys()].flatMap((r) => [1, 2, 4].map((b) => ({ from: r, to: r ^ b, busyMs: r === 2 && (r ^ b) === 3 ? 180 : 0, bytes: 1 << 20 })));
    const s = stragglerScores(rows, 1, 1.3, links);
    expect(s.directed.find((d) => d.from === 2 && d.to === 3)!.ratio).toBeCloseTo(180);
    expect(s.directed.filter((d) => !(d.from === 2 && d.to === 3)).every((d) => d.ratio <= 1)).toBe(true);
    // Under a millisecond over: noise, not a link.
    const faint = links.map((l) => (l.from === 2 && l.to === 3 ? { ...l, busyMs: 1.5 } : l));
    expect(stragglerScores(rows, 1, 1.3, faint).directed.every((d) => d.ratio <= 1.5)).toBe(true);
    const d = new StragglerDetector({ workers: 8, warmupSteps: 0 });
    const events = [0, 1, 2, 3, 4].flatMap((step) => d.observe({ step, ranks: rows, links }));
    expect(events).toEqual([expect.objectContaining({ type: 'detected', kind: 'link', link: [2, 3] })]);
  });

  it('rejects links out of range, to themselves, twice, or not finite', () => {
    const ranks = Array.from({ length: 4 }, (_, rank) => ({ rank, computeMs: 10, waitMs: 1, allreduceMs: 5, linkMs: 2, bytesSent: 100 }));
    const l = (from: number, to: number, busyMs = 1) => ({ from, to, busyMs, bytes: 10 });
    const d = new StragglerDetector({ workers: 4 });
    expect(() => d.observe({ step: 0, ranks, links: [l(0, 4)] })).toThrow(/out of range/);
    expect(() => d.observe({ step: 0, ranks, links: [l(2, 2)] })).toThrow(/goes nowhere/);
    expect(() => d.observe({ step: 0, ranks, links: [l(0, 1), l(0, 1)] })).toThrow(/reported twice/);
    expect(() => d.observe({ step: 0, ranks, links: [l(0, 1, Number.NaN)] })).toThrow(/busyMs/);
    expect(d.observe({ step: 0, ranks, links: [l(0, 1), l(1, 0), l(2, 3), l(3, 2)] })).toEqual([]);
  });
});
