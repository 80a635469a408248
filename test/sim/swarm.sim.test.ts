// A whole swarm in one process: W real Worker instances (src/worker/worker.ts), each with a
// MemoryTransport endpoint of one seeded MemoryNetwork and one end of an in-memory control
// channel, driven by a small coordinator written here. The network seed fixes the delivery order;
// the job seed fixes the gradients. Nothing here waits on wall-clock time except the event loop.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { allocElements, elementBytes, type DType, type ReduceOp } from '../../src/collective/dtypes.js';
import { fillExpected } from '../../src/collective/inputs.js';
import { doublingPeers } from '../../src/collective/recursive-doubling.js';
import type { AllreduceAlgo } from '../../src/collective/types.js';
import { CoordinatorMessage, WorkerMessage, type JobSpec } from '../../src/protocol/control.js';
import { channelPair, type Channel } from '../../src/runtime/channel.js';
import { seededRandom } from '../../src/collective/random.js';
import { MemoryNetwork, type MemoryTransport } from '../../src/runtime/memory-transport.js';
import { CardGroup, jobDigest } from '../../src/worker/cards.js';
import { Worker, type WorkerEnv } from '../../src/worker/worker.js';

interface SwarmConfig {
  workers: number;
  cardsPerWorker: number;
  count: number;
  dtype: DType;
  op: ReduceOp;
  steps: number;
  /** Job seed: the gradients. */
  seed: number;
  /** Network seed: the delivery order (and which worker gets which rank). */
  netSeed: number;
  chunkBytes: number;
  /** All-reduce algorithm (default ring). */
  algo?: AllreduceAlgo;
}

type StepMsg = Extract<WorkerMessage, { type: 'step' }>;

interface SwarmResult {
  digest: string;
  /** Per rank, the step reports in arrival order. */
  steps: StepMsg[][];
  /** SHA-256 of every frame delivery (receiver, sender, header), in delivery order. */
  trace: string;
  frames: number;
  logs: string[];
}

const EPOCH = 1;
/** Event-loop turns a whole run may take; a hung swarm fails with a message instead of spinning. */
const MAX_TURNS = 20_000;

function jobOf(c: SwarmConfig): JobSpec {
  return {
    cardsPerWorker: c.cardsPerWorker,
    totalCards: c.workers * c.cardsPerWorker,
    bytesPerCard: c.count * elementBytes(c.dtype),
    dtype: c.dtype,
    op: c.op,
    steps: c.steps,
    computeMs: 0,
    chunkBytes: c.chunkBytes,
    seed: c.seed,
    // The watchdog runs on real timers; a simulated op never legitimately stalls, so keep it out of the way.
    timeoutMs: 60_000,
    heartbeatMs: 3_600_000,
    checksums: true,
    checkpointEvery: 0,
    checkpointDir: null,
    link: { latencyUs: 0, bandwidth: 0, intraBandwidth: 0 },
  };
}

/** A deterministic clock: every reading is one millisecond after the previous one. */
function fakeEnv(logs: string[], name: string): WorkerEnv {
  let t = 1_000_000;
  return {
    clock: {
      now: () => (t += 1),
      sleep: async (ms) => {
        t += ms;
      },
      // Heartbeats are every hour here: a timer that never fires.
      setTimer: () => ({ id: 0 }),
      clearTimer: () => {},
    },
    rssMB: () => 50,
    pssMB: () => null,
    log: (line) => logs.push(`${name}: ${line}`),
    strike: (how) => {
      throw new Error(`${name}: no fault was scheduled, yet the worker would strike itself: ${JSON.stringify(how)}`);
    },
  };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function runSwarm(c: SwarmConfig): Promise<SwarmResult> {
  const net = new MemoryNetwork(c.netSeed);
  const logs: string[] = [];
  const trace = createHash('sha256');
  let frames = 0;

  interface Seat {
    name: string;
    transport: MemoryTransport;
    control: Channel<WorkerMessage, CoordinatorMessage>;
    worker: Worker;
    hello?: Extract<WorkerMessage, { type: 'hello' }>;
    ready: boolean;
    steps: StepMsg[];
    done?: Extract<WorkerMessage, { type: 'done' }>;
    closed: boolean;
  }
  const seats: Seat[] = [];
  const failures: string[] = [];

  for (let i = 0; i < c.workers; i++) {
    const name = `w${i}`;
    const transport = net.endpoint(name);
    const deliver = transport.deliver.bind(transport);
    transport.deliver = (from, frame) => {
      frames++;
      trace.update(`${name}<${from}:`).update(frame.subarray(0, 24));
      deliver(from, frame);
    };
    const [workerEnd, coordEnd] = channelPair(CoordinatorMessage, WorkerMessage);
    const seat: Seat = { name, transport, control: coordEnd, worker: undefined as unknown as Worker, ready: false, steps: [], closed: false };
    coordEnd.setHandlers({
      onMessage: (m) => {
        switch (m.type) {
          case 'hello':
            seat.hello = m;
            return;
          case 'ready':
            seat.ready = true;
            return;
          case 'step':
            seat.steps.push(m);
            return;
          case 'done':
            seat.done = m;
            return;
          case 'failed':
            failures.push(`${name}: ${m.code}: ${m.message}`);
            return;
          default:
            return; // heartbeats, bench results, checkpoint news: not what this test looks at
        }
      },
      onClose: () => {
        seat.closed = true;
      },
    });
    seat.worker = new Worker(workerEnd, transport, { workerId: name, pid: 1000 + i, token: 'sim', spawned: true }, fakeEnv(logs, name));
    seats.push(seat);
  }

  let turns = 0;
  const pump = async (what: string, until: () => boolean) => {
    while (!until()) {
      if (failures.length) throw new Error(`swarm failed while waiting for ${what}:\n${failures.join('\n')}\n${logs.join('\n')}`);
      if (++turns > MAX_TURNS) {
        throw new Error(`swarm (${JSON.stringify(c)}) did not reach "${what}" in ${MAX_TURNS} turns; ${net.inFlight} frames in flight\n${logs.join('\n')}`);
      }
      net.run(1_000_000);
      await turn();
    }
  };

  await pump('hellos', () => seats.every((s) => s.hello));
  // Which worker takes which rank is drawn from the network seed: the result must not care.
  const order = seats.map((_, i) => i);
  const random = seededRandom(c.netSeed ^ 0x9e3779b9);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const byRank = order.map((i) => seats[i]);
  const job = jobOf(c);
  byRank.forEach((s, rank) => {
    const prev = byRank[(rank - 1 + c.workers) % c.workers];
    const next = byRank[(rank + 1) % c.workers];
    s.control.send({
      type: 'assign',
      epoch: EPOCH,
      rank,
      size: c.workers,
      firstCard: rank * c.cardsPerWorker,
      prev: { rank: (rank - 1 + c.workers) % c.workers, dataUrl: prev.hello!.dataUrl },
      next: { rank: (rank + 1) % c.workers, dataUrl: next.hello!.dataUrl },
      algo: c.algo ?? 'ring',
      peers: c.algo === 'rd' ? doublingPeers(rank, c.workers).map((r) => ({ rank: r, dataUrl: byRank[r].hello!.dataUrl })) : [],
      job,
      restore: { step: 0, source: 'initial' },
      faults: [],
        lostCards: [],
        stragglers: [],
    });
  });
  await pump('ready', () => seats.every((s) => s.ready));
  for (const s of byRank) s.control.send({ type: 'start', epoch: EPOCH, fromStep: 0 });
  await pump('done', () => seats.every((s) => s.done));
  expect(net.inFlight).toBe(0);

  for (const s of seats) s.control.send({ type: 'shutdown', reason: 'sim over' });
  await pump('exit', () => seats.every((s) => s.closed));
  expect(await Promise.all(seats.map((s) => s.worker.exited))).toEqual(seats.map(() => 0));

  const digests = byRank.flatMap((s) => s.done!.cardDigests);
  expect(digests).toHaveLength(job.totalCards);
  return { digest: jobDigest(digests), steps: byRank.map((s) => s.steps), trace: trace.digest('hex'), frames, logs };
}

/**
 * The fault-free state without any network or reduction: every card's gradient replaced by the
 * closed-form result of the step (fillExpected), through the same CardGroup update.
 */
function referenceDigest(c: SwarmConfig): string {
  const total = c.workers * c.cardsPerWorker;
  const g = new CardGroup({ firstCard: 0, cards: total, totalCards: total, count: c.count, dtype: c.dtype, op: c.op, seed: c.seed });
  const expected = allocElements(c.dtype, c.count);
  for (let step = 0; step < c.steps; step++) {
    g.computeGradients(step);
    g.foldOwnGradient();
    fillExpected(expected, { dtype: c.dtype, op: c.op, seed: c.seed, step, totalCards: total });
    for (const x of g.gradients) x.set(expected);
    g.applyResult();
  }
  return jobDigest(g.stateDigests());
}

function expectAllStepsExact(c: SwarmConfig, r: SwarmResult): void {
  expect(r.steps).toHaveLength(c.workers);
  r.steps.forEach((steps, rank) => {
    expect(
      steps.map((s) => s.step),
      `rank ${rank} step reports`,
    ).toEqual(Array.from({ length: c.steps }, (_, i) => i));
    for (const s of steps) {
      expect(s.wrong, `rank ${rank} step ${s.step}`).toBe(0);
      expect(s.epoch).toBe(EPOCH);
      expect(s.timings.stepMs).toBeGreaterThanOrEqual(s.timings.allreduceMs);
    }
  });
}

const base: SwarmConfig = { workers: 4, cardsPerWorker: 2, count: 1001, dtype: 'f32', op: 'sum', steps: 3, seed: 7, netSeed: 1, chunkBytes: 256 };

describe('simulated swarm', () => {
  const combos: Partial<SwarmConfig>[] = [
    { workers: 1, cardsPerWorker: 1, count: 100, dtype: 'f32', op: 'sum' },
    { workers: 1, cardsPerWorker: 4, count: 33, dtype: 'f64', op: 'avg' },
    { workers: 2, cardsPerWorker: 3, count: 7, dtype: 'i32', op: 'max', chunkBytes: 4 },
    { workers: 3, cardsPerWorker: 2, count: 1001, dtype: 'i32', op: 'prod' }, // 1001 = 3 * 333 + 2
    { workers: 4, cardsPerWorker: 2, count: 1000, dtype: 'f32', op: 'min', chunkBytes: 64 },
    { workers: 5, cardsPerWorker: 3, count: 13, dtype: 'f64', op: 'max', chunkBytes: 16 },
    { workers: 6, cardsPerWorker: 1, count: 4, dtype: 'f32', op: 'avg', chunkBytes: 4 }, // fewer elements than workers
    { workers: 7, cardsPerWorker: 2, count: 500, dtype: 'i32', op: 'avg', chunkBytes: 1 << 20 }, // one chunk per segment
    { workers: 8, cardsPerWorker: 1, count: 257, dtype: 'f64', op: 'sum', chunkBytes: 24 },
    { workers: 4, cardsPerWorker: 2, count: 0, dtype: 'f32', op: 'sum' }, // nothing to reduce
    // Recursive doubling: powers of two and not (extra ranks fold in and out), chunked.
    { workers: 2, cardsPerWorker: 3, count: 7, dtype: 'i32', op: 'max', chunkBytes: 4, algo: 'rd' },
    { workers: 5, cardsPerWorker: 3, count: 13, dtype: 'f64', op: 'avg', chunkBytes: 16, algo: 'rd' },
    { workers: 8, cardsPerWorker: 1, count: 257, dtype: 'f64', op: 'sum', chunkBytes: 24, algo: 'rd' },
    { workers: 11, cardsPerWorker: 2, count: 1001, dtype: 'f32', op: 'prod', chunkBytes: 256, algo: 'rd' },
  ];
  it.each(combos.map((o) => ({ ...base, algo: 'ring' as AllreduceAlgo, ...o })))(
    'W=$workers G=$cardsPerWorker count=$count $dtype $op chunk=$chunkBytes B $algo: every step exact, state as the reference',
    async (c) => {
      const r = await runSwarm(c);
      expectAllStepsExact(c, r);
      expect(r.digest).toBe(referenceDigest(c));
      if (c.workers > 1 && c.count > 0) expect(r.frames).toBeGreaterThan(0);
      expect(r.logs).toEqual([]);
    },
  );

  it('the same network seed twice gives the same trace and digest', async () => {
    const a = await runSwarm(base);
    const b = await runSwarm(base);
    expect(b.trace).toBe(a.trace);
    expect(b.frames).toBe(a.frames);
    expect(b.digest).toBe(a.digest);
  });

  it('different network seeds change the delivery order but not the digest', async () => {
    const runs = await Promise.all([1, 2, 3, 4].map((netSeed) => runSwarm({ ...base, op: 'avg', netSeed })));
    expect(new Set(runs.map((r) => r.trace)).size).toBe(runs.length);
    expect(new Set(runs.map((r) => r.digest)).size).toBe(1);
    expect(runs[0].digest).toBe(referenceDigest({ ...base, op: 'avg' }));
  });

  it('the digest depends only on the global cards, not on how they are grouped into workers', async () => {
    for (const dtype of ['f32', 'i32'] as const) {
      const shapes = [
        { workers: 4, cardsPerWorker: 2 },
        { workers: 2, cardsPerWorker: 4 },
        { workers: 8, cardsPerWorker: 1 },
        { workers: 1, cardsPerWorker: 8 },
      ];
      const runs = [];
      for (const [i, shape] of shapes.entries()) {
        const c = { ...base, ...shape, dtype, op: 'avg' as const, count: 999, netSeed: 10 + i };
        const r = await runSwarm(c);
        expectAllStepsExact(c, r);
        runs.push(r.digest);
      }
      expect(new Set(runs).size, `${dtype}: ${runs.join(' ')}`).toBe(1);
    }
  });

  it('the digest changes when the job seed changes', async () => {
    const a = await runSwarm(base);
    const b = await runSwarm({ ...base, seed: base.seed + 1 });
    expectAllStepsExact({ ...base, seed: base.seed + 1 }, b);
    expect(b.digest).not.toBe(a.digest);
    // ...and when the number of steps does (the state really accumulates every step).
    const c = await runSwarm({ ...base, steps: base.steps + 1 });
    expect(c.digest).not.toBe(a.digest);
  });
});
