// Property tests of the pure ring collectives against the naive reference. Every rank's state
// machine lives in this process; a tiny network moves ChunkSend -> ChunkIn with per-link FIFO, a
// copy of the data (as a wire would make), and a schedule that picks which link moves next: seeded
// random (each seed a different interleaving) or "reverse" (always the highest-numbered busy link).
import { describe, expect, it } from 'vitest';
import { DTYPES, REDUCE_OPS, allocElements, bytesOf, divideInPlace, reduceInto, type DType, type Elements, type ReduceOp } from '../../src/collective/dtypes.js';
import { createCollective } from '../../src/collective/index.js';
import { countWrong, fillExpected, fillGradient, type InputSpec } from '../../src/collective/inputs.js';
import { naiveAllGather, naiveAllReduce, naiveBroadcast, naiveReduceScatter } from '../../src/collective/naive.js';
import { chunkCount, chunkRange, segmentRange } from '../../src/collective/ring.js';
import { Arena } from '../../src/collective/simd.js';
import type { ChunkIn, ChunkSend, Collective, CollectiveKind, Phase } from '../../src/collective/types.js';
import { RingswarmError } from '../../src/protocol/errors.js';
import { seededRandom } from '../../src/collective/random.js';

// ---------------------------------------------------------------------------------------------
// Seeded randomness (mulberry32): the grid sampling and the delivery schedules replay from a seed.

const rng = seededRandom;

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)];
}

// ---------------------------------------------------------------------------------------------
// The in-test network.

type Schedule = { kind: 'random'; seed: number } | { kind: 'reverse' };

interface InFlight {
  from: number;
  send: ChunkSend;
  /** What the wire carries: a copy of `send.data` taken when it was handed out. */
  wire: Elements;
}

/** A cheap assertion for the hot delivery loop (expect() per delivery costs more than the collective). */
function check(cond: boolean, msg: () => string): void {
  if (!cond) throw new Error(msg());
}

const PHASE_ORDER: readonly (Phase | 'done')[] = ['reduce-scatter', 'all-gather', 'broadcast', 'done'];

interface RunResult {
  delivered: number;
  /** Chunks whose `data` changed between hand-out and delivery (must be 0: zero-copy senders rely on it). */
  changedInFlight: number;
}

/**
 * What progress() should say, worked out from the ring schedule independently of the collective:
 * per rank, per phase, the chunks each step receives (rank r gets segment r-s-2 at reduce-scatter
 * step s and r-s-1 at all-gather step s), and a count of those delivered.
 */
class ProgressModel {
  /** need[2r + p][s], got[2r + p][s]: p = 0 reduce-scatter, 1 all-gather. */
  private readonly need: number[][] = [];
  private readonly got: number[][] = [];
  delivered: number[];

  constructor(
    private readonly kind: CollectiveKind,
    size: number,
    count: number,
    chunkElems: number,
  ) {
    this.delivered = new Array(size).fill(0);
    for (let r = 0; r < size; r++)
      for (const p of [0, 1]) {
        this.need.push(
          Array.from({ length: size - 1 }, (_, s) => {
            const k = ((((p === 0 ? r - s - 2 : r - s - 1) % size) + size) % size);
            return chunkCount(segmentRange(count, size, k).count, chunkElems);
          }),
        );
        this.got.push(new Array(size - 1).fill(0));
      }
  }

  record(r: number, c: ChunkIn): void {
    this.delivered[r]++;
    if (c.phase !== 'broadcast') this.got[2 * r + (c.phase === 'reduce-scatter' ? 0 : 1)][c.step]++;
  }

  /** The lowest ring step of `phase` not yet fully received by rank r (ring kinds only). */
  step(r: number, phase: Phase): number | undefined {
    if (this.kind === 'broadcast' || phase === 'broadcast') return undefined;
    const i = 2 * r + (phase === 'reduce-scatter' ? 0 : 1);
    const need = this.need[i];
    const got = this.got[i];
    let s = 0;
    while (s < need.length && got[s] === need[s]) s++;
    return s;
  }
}

/**
 * Starts every rank, then delivers until nothing is in flight. Checks as it goes that progress
 * only moves forward, reports the step and count the schedule implies, and that `done` means
 * "received everything expected".
 */
function runRing(
  collectives: Collective[],
  schedule: Schedule,
  copy: (x: Elements) => Elements = (x) => x.slice(),
  model?: ProgressModel,
): RunResult {
  const size = collectives.length;
  const links = new Map<number, InFlight[]>(); // key from * size + to
  const post = (from: number, out: ChunkSend[]) => {
    for (const send of out) {
      check(Number.isInteger(send.to) && send.to >= 0 && send.to < size, () => `rank ${from} sends to ${send.to}`);
      const key = from * size + send.to;
      const q = links.get(key);
      const f = { from, send, wire: copy(send.data) };
      if (q) q.push(f);
      else links.set(key, [f]);
    }
  };
  const random = schedule.kind === 'random' ? rng(schedule.seed) : null;
  const lastPhase = collectives.map(() => -1);
  const lastStep = collectives.map(() => -1);
  const observe = (r: number) => {
    const p = collectives[r].progress();
    const idx = PHASE_ORDER.indexOf(p.phase);
    check(idx >= lastPhase[r], () => `rank ${r}: phase went back to ${p.phase}`);
    check(idx !== lastPhase[r] || p.step >= lastStep[r], () => `rank ${r}: step went back to ${p.step} in ${p.phase}`);
    lastPhase[r] = idx;
    lastStep[r] = p.step;
    check(p.chunksReceived <= p.chunksExpected, () => `rank ${r}: ${p.chunksReceived}/${p.chunksExpected} chunks`);
    if (model) {
      check(p.chunksReceived === model.delivered[r], () => `rank ${r}: progress says ${p.chunksReceived} chunks received, ${model.delivered[r]} were`);
      const want = p.phase === 'done' ? undefined : model.step(r, p.phase);
      check(want === undefined || p.step === want, () => `rank ${r}: progress step ${p.step} in ${p.phase}, expected ${want}`);
    }
    check(collectives[r].done === (p.chunksReceived === p.chunksExpected), () => `rank ${r}: done=${collectives[r].done} at ${p.chunksReceived}/${p.chunksExpected}`);
    check((p.phase === 'done') === collectives[r].done, () => `rank ${r}: phase ${p.phase} but done=${collectives[r].done}`);
  };

  for (let r = 0; r < size; r++) {
    check(!collectives[r].done, () => `rank ${r} done before start`);
  }
  for (let r = 0; r < size; r++) {
    post(r, collectives[r].start());
    observe(r);
  }
  let delivered = 0;
  let changedInFlight = 0;
  for (;;) {
    const busy: number[] = [];
    for (const [k, q] of links) if (q.length > 0) busy.push(k);
    if (busy.length === 0) break;
    const key = random ? busy[Math.floor(random() * busy.length)] : Math.max(...busy);
    const f = links.get(key)!.shift()!;
    const to = f.send.to;
    if (countWrong(f.send.data, f.wire) !== 0) changedInFlight++;
    const c: ChunkIn = { from: f.from, phase: f.send.phase, step: f.send.step, chunk: f.send.chunk, offset: f.send.offset, data: f.wire };
    if (f.send.checksum !== undefined) c.checksum = f.send.checksum;
    model?.record(to, c);
    check(!collectives[to].done, () => `rank ${to} got a chunk after it was done`);
    post(to, collectives[to].onChunk(c));
    observe(to);
    delivered++;
  }
  return { delivered, changedInFlight };
}

function checkFinished(collectives: Collective[], res: RunResult): void {
  const size = collectives.length;
  let sent = 0;
  collectives.forEach((c, r) => {
    const p = c.progress();
    check(c.done, () => `rank ${r} not done when the network drained`);
    check(p.phase === 'done', () => `rank ${r}: phase ${p.phase} at the end`);
    check(p.chunksReceived === p.chunksExpected, () => `rank ${r}: ${p.chunksReceived}/${p.chunksExpected} chunks at the end`);
    // Every chunk comes from the predecessor: what rank r-1 sent is what rank r expected.
    const prev = collectives[(r - 1 + size) % size].progress();
    check(prev.chunksSent === p.chunksExpected, () => `rank ${(r - 1 + size) % size} sent ${prev.chunksSent} chunks, rank ${r} expected ${p.chunksExpected}`);
    sent += p.chunksSent;
  });
  check(res.delivered === sent, () => `${res.delivered} chunks delivered, ${sent} sent`);
  check(res.changedInFlight === 0, () => `${res.changedInFlight} chunks changed between hand-out and delivery`);
}

// ---------------------------------------------------------------------------------------------
// Inputs and comparisons.

function specOf(dtype: DType, op: ReduceOp, size: number, seed: number): InputSpec {
  return { dtype, op, seed, step: 3, totalCards: size };
}

function gradients(spec: InputSpec, count: number): Elements[] {
  return Array.from({ length: spec.totalCards }, (_, r) => {
    const g = allocElements(spec.dtype, count);
    fillGradient(g, spec, r);
    return g;
  });
}

/** Bit for bit (so -0 vs +0 or a different NaN would show); prints the first difference. */
function expectSameBits(actual: Elements, expected: Elements, what: string): void {
  check(actual.constructor === expected.constructor, () => `${what}: a ${actual.constructor.name}, expected a ${expected.constructor.name}`);
  check(actual.length === expected.length, () => `${what}: ${actual.length} elements, expected ${expected.length}`);
  const a = bytesOf(actual);
  const e = bytesOf(expected);
  if (Buffer.compare(a, e) !== 0) {
    let i = 0;
    while (i < actual.length && Object.is(actual[i], expected[i])) i++;
    throw new Error(`${what}: ${countWrong(actual, expected)} elements differ, first at ${i}: got ${actual[i]}, expected ${expected[i]}`);
  }
}

/** A value no valid result has, to fill the parts of a buffer whose content on entry is undefined. */
function garbage(dtype: DType): number {
  return dtype === 'i32' ? -123456789 : 1e30;
}

interface Case {
  kind: CollectiveKind;
  size: number;
  count: number;
  chunkElems: number;
  dtype: DType;
  op: ReduceOp;
  root: number;
  seed: number;
  /** allreduce and reducescatter: false runs out of place (`input` given, left unchanged). */
  inPlace: boolean;
}

const SCHEDULES = (seed: number): Schedule[] => [{ kind: 'random', seed }, { kind: 'random', seed: seed ^ 0x5bd1e995 }, { kind: 'reverse' }];

function describeCase(c: Case, s: Schedule): string {
  const sch = s.kind === 'random' ? `random(${s.seed})` : 'reverse';
  return `${c.kind} size=${c.size} count=${c.count} chunk=${c.chunkElems} ${c.dtype} ${c.op} root=${c.root} ${c.inPlace ? 'in place' : 'out of place'} seed=${c.seed} schedule=${sch}`;
}

/** Where a case's arrays live: ordinary memory, or one WebAssembly arena (the SIMD kernels then run). */
interface Memory {
  alloc(dtype: DType, count: number): Elements;
  copy(x: Elements): Elements;
}

const HEAP: Memory = {
  alloc: allocElements,
  copy: (x) => x.slice(),
};

function arenaMemory(arena: Arena): Memory {
  const alloc = (dtype: DType, count: number) => arena.alloc(dtype, count);
  const dtypeOf = (x: Elements): DType => (x instanceof Float32Array ? 'f32' : x instanceof Float64Array ? 'f64' : 'i32');
  return {
    alloc,
    copy: (x) => {
      const y = alloc(dtypeOf(x), x.length);
      y.set(x);
      return y;
    },
  };
}

/** Runs one case under one schedule and compares every rank's buffer with the naive reference. */
function checkCase(c: Case, schedule: Schedule, mem: Memory = HEAP): void {
  const what = describeCase(c, schedule);
  const spec = specOf(c.dtype, c.op, c.size, c.seed);
  const inputs = gradients(spec, c.count);
  const own = (x: Elements) => mem.copy(x);
  const blank = () => mem.alloc(c.dtype, c.count).fill(garbage(c.dtype));
  let buffers: Elements[];
  let expected: Elements[];
  // Out of place: the contribution is `input`, which must come back unchanged.
  let input: Elements[] | undefined;
  switch (c.kind) {
    case 'allreduce': {
      if (c.inPlace) buffers = inputs.map(own);
      else {
        input = inputs.map(own);
        buffers = inputs.map(blank);
      }
      expected = naiveAllReduce(inputs, c.op);
      // The naive reference and the closed form of the verifiable inputs agree.
      const closed = allocElements(c.dtype, c.count);
      fillExpected(closed, spec);
      expectSameBits(expected[0], closed, `${what}: naive vs closed form`);
      break;
    }
    case 'reducescatter': {
      if (c.inPlace) buffers = inputs.map(own);
      else {
        input = inputs.map(own);
        buffers = inputs.map(blank);
      }
      const segs = naiveReduceScatter(inputs, c.op);
      // Segment r holds the reduction; the rest of the buffer is left as it was.
      expected = buffers.map((x, r) => {
        const e = x.slice();
        e.set(segs[r], segmentRange(c.count, c.size, r).offset);
        return e;
      });
      break;
    }
    case 'allgather': {
      const segs = inputs.map((x, r) => {
        const { offset, count } = segmentRange(c.count, c.size, r);
        return x.slice(offset, offset + count);
      });
      buffers = inputs.map((x, r) => {
        const b = blank();
        const { offset, count } = segmentRange(c.count, c.size, r);
        b.set(x.subarray(offset, offset + count), offset);
        return b;
      });
      expected = naiveAllGather(segs);
      break;
    }
    case 'broadcast': {
      buffers = inputs.map((x, r) => (r === c.root ? own(x) : blank()));
      expected = naiveBroadcast(inputs, c.root);
      break;
    }
  }
  const collectives = buffers.map((buffer, rank) =>
    createCollective(c.kind, {
      rank,
      size: c.size,
      dtype: c.dtype,
      op: c.op,
      buffer,
      chunkElems: c.chunkElems,
      root: c.root,
      alloc: (n) => mem.alloc(c.dtype, n),
      ...(input ? { input: input[rank] } : {}),
    }),
  );
  const res = runRing(collectives, schedule, mem.copy, new ProgressModel(c.kind, c.size, c.count, c.chunkElems));
  checkFinished(collectives, res);
  buffers.forEach((b, r) => expectSameBits(b, expected[r], `${what}: rank ${r}`));
  input?.forEach((x, r) => expectSameBits(x, inputs[r], `${what}: rank ${r} input changed`));
}

// ---------------------------------------------------------------------------------------------
// The grid: full for small rings, sampled (seeded) for large ones.

const RANKS = Array.from({ length: 16 }, (_, i) => i + 1);
const FULL_GRID_MAX_RANKS = 3;
const BASE_COUNTS = [0, 1, 7, 13, 1000, 1001];

function countsFor(size: number): number[] {
  // Also a count just below the ring size (some segments empty) and one just above it (uneven).
  return [...new Set([...BASE_COUNTS, Math.max(0, size - 1), size + 1, 3 * size + 2])];
}

function chunksFor(count: number): number[] {
  return [1, 3, 64, count + 5];
}

const DTYPE_OPS = DTYPES.flatMap((dtype) => REDUCE_OPS.map((op) => ({ dtype, op })));

/** Elements moved by one case, roughly: keeps the sampled part of the grid within budget. */
function cost(c: Case): number {
  const chunks = Math.ceil(c.count / c.chunkElems) + c.size;
  return (c.count + 20 * chunks) * Math.max(1, c.size - 1);
}

function gridFor(kind: CollectiveKind, size: number): Case[] {
  const cases: Case[] = [];
  const seed = 1000 * size + kind.length;
  const reduces = kind === 'allreduce' || kind === 'reducescatter';
  const dtypeOps = reduces ? DTYPE_OPS : DTYPES.map((dtype) => ({ dtype, op: 'sum' as ReduceOp }));
  const roots = kind === 'broadcast' ? Array.from({ length: size }, (_, r) => r) : [0];
  if (size <= FULL_GRID_MAX_RANKS) {
    for (const count of countsFor(size))
      for (const chunkElems of chunksFor(count))
        for (const { dtype, op } of dtypeOps)
          for (const root of roots) cases.push({ kind, size, count, chunkElems, dtype, op, root, seed: seed + cases.length, inPlace: !reduces || cases.length % 2 === 0 });
    return cases;
  }
  const r = rng(seed);
  // Every dtype x op (and every root) once, each with a random count and chunk size...
  for (const { dtype, op } of dtypeOps) {
    for (const root of kind === 'broadcast' ? roots : [pick(r, roots)]) {
      const count = pick(r, countsFor(size));
      cases.push({ kind, size, count, chunkElems: pick(r, chunksFor(count)), dtype, op, root, seed: seed + cases.length, inPlace: !reduces || r() < 0.5 });
    }
  }
  // ...and every count x chunk size once, each with a random dtype, op and root.
  for (const count of countsFor(size))
    for (const chunkElems of chunksFor(count)) {
      const { dtype, op } = pick(r, dtypeOps);
      cases.push({ kind, size, count, chunkElems, dtype, op, root: pick(r, roots), seed: seed + cases.length, inPlace: !reduces || r() < 0.5 });
    }
  return cases.filter((c) => cost(c) < 40_000 || r() < 0.3);
}

const KINDS: CollectiveKind[] = ['allreduce', 'reducescatter', 'allgather', 'broadcast'];

describe.each(KINDS)('%s against the naive reference', (kind) => {
  it.each(RANKS)(`${kind} on %i ranks, every schedule`, (size) => {
    const cases = gridFor(kind, size);
    expect(cases.length).toBeGreaterThan(0);
    cases.forEach((c, i) => {
      // Cheap cases run under every schedule; costly ones (long chunk-1 pipelines) under one or
      // two, alternating, so the grid as a whole still sees random and reverse delivery.
      const schedules = SCHEDULES(c.seed * 7919 + size);
      const k = cost(c);
      const chosen = k < 8_000 ? schedules : k < 40_000 ? [schedules[i % 2], schedules[2]] : [schedules[i % 3]];
      for (const s of chosen) checkCase(c, s);
    });
  });
});

describe('awkward shapes called out explicitly', () => {
  const shapes: [number, number][] = [
    [16, 13], // fewer elements than ranks
    [16, 1001],
    [16, 0],
    [16, 1],
    [15, 1000],
    [9, 8],
    [2, 1],
  ];
  it.each(shapes)('%i ranks, %i elements', (size, count) => {
    for (const kind of KINDS)
      for (const chunkElems of [1, 3, 64, count + 5]) {
        const c: Case = { kind, size, count, chunkElems, dtype: 'f32', op: 'sum', root: size - 1, seed: size * 31 + count, inPlace: true };
        checkCase(c, { kind: 'random', seed: c.seed + chunkElems });
        checkCase({ ...c, inPlace: false }, { kind: 'reverse' });
      }
  });

  it('different seeds give different interleavings (the schedule is not a no-op)', () => {
    const orders = new Set<string>();
    for (const seed of [1, 2, 3, 4]) {
      const size = 4;
      const buffers = gradients(specOf('f32', 'sum', size, 9), 40);
      const cs = buffers.map((buffer, rank) => createCollective('allreduce', { rank, size, dtype: 'f32', op: 'sum', buffer, chunkElems: 3 }));
      const trace: string[] = [];
      const wrapped = cs.map((c, r): Collective => ({
        start: () => c.start(),
        onChunk: (x) => {
          trace.push(`${r}:${x.phase}:${x.step}:${x.chunk}`);
          return c.onChunk(x);
        },
        get done() {
          return c.done;
        },
        progress: () => c.progress(),
      }));
      checkFinished(cs, runRing(wrapped, { kind: 'random', seed }));
      orders.add(trace.join(','));
    }
    expect(orders.size).toBe(4);
  });
});

describe('avg', () => {
  it('divides by `divisor` when given (the worker passes its total cards), once per element', () => {
    for (const kind of ['allreduce', 'reducescatter'] as const)
      for (const dtype of DTYPES) {
        const size = 3;
        const count = 50;
        const divisor = 24; // 3 workers of 8 cards
        const spec = specOf(dtype, 'avg', size, 77);
        const inputs = gradients(spec, count);
        const sum = inputs[0].slice();
        for (const x of inputs.slice(1)) reduceInto('sum', sum, sum, x);
        divideInPlace(sum, divisor);
        const buffers = inputs.map((x) => x.slice());
        const cs = buffers.map((buffer, rank) => createCollective(kind, { rank, size, dtype, op: 'avg', buffer, chunkElems: 7, divisor }));
        checkFinished(cs, runRing(cs, { kind: 'random', seed: 5 }));
        buffers.forEach((b, r) => {
          const { offset, count: n } = kind === 'allreduce' ? { offset: 0, count } : segmentRange(count, size, r);
          expectSameBits(b.subarray(offset, offset + n), sum.subarray(offset, offset + n), `${kind} ${dtype} rank ${r}`);
        });
      }
  });
});

describe('with every array in one WebAssembly arena (the SIMD reduction kernels run)', () => {
  it.each([1, 2, 3, 4, 5, 8, 13, 16])('%i ranks, every dtype and op, in and out of place', (size) => {
    const probe = Arena.create(0);
    if (probe === null) {
      // Node 20 has WebAssembly SIMD; without it reduceInto falls back to the JS loops tested above.
      console.warn('WebAssembly SIMD unavailable: arena cases skipped');
      return;
    }
    const r = rng(4242 + size);
    for (const kind of ['allreduce', 'reducescatter'] as const)
      for (const { dtype, op } of DTYPE_OPS) {
        const count = pick(r, [1, 7, 13, 64, 1000, 1001]);
        const chunkElems = pick(r, [1, 3, 64, count + 5]);
        const c: Case = { kind, size, count, chunkElems, dtype, op, root: 0, seed: size * 97 + count, inPlace: r() < 0.5 };
        // Room for every buffer, input, staged chunk and wire copy of the run (bump allocation).
        const bytes = 8 * (count + 16) * (3 * size + 4 * size * size) + 65536;
        const arena = Arena.create(bytes);
        expect(arena, `arena of ${bytes} bytes`).not.toBeNull();
        checkCase(c, { kind: 'random', seed: c.seed }, arenaMemory(arena!));
      }
  });
});

// ---------------------------------------------------------------------------------------------
// Protocol errors: bad chunks are rejected with RS_ERR_PROTOCOL and change nothing.

function expectProtocolError(c: Collective, buffer: Elements, chunk: ChunkIn, why: string): void {
  const before = buffer.slice();
  const sentBefore = c.progress().chunksSent;
  const receivedBefore = c.progress().chunksReceived;
  let thrown: unknown;
  try {
    c.onChunk(chunk);
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `${why}: no error`).toBeInstanceOf(RingswarmError);
  expect((thrown as RingswarmError).code, why).toBe('RS_ERR_PROTOCOL');
  expectSameBits(buffer, before, `${why}: buffer changed`);
  expect(c.progress().chunksSent, `${why}: sent something`).toBe(sentBefore);
  expect(c.progress().chunksReceived, `${why}: counted it`).toBe(receivedBefore);
}

function asIn(from: number, s: ChunkSend, patch: Partial<ChunkIn> = {}): ChunkIn {
  return { from, phase: s.phase, step: s.step, chunk: s.chunk, offset: s.offset, data: s.data.slice(), ...patch };
}

describe.each(['allreduce', 'reducescatter', 'allgather'] as const)('%s rejects bad chunks', (kind) => {
  const size = 4;
  const count = 22; // segments of 6, 6, 5, 5
  const chunkElems = 4;
  const setup = () => {
    const spec = specOf('f64', 'sum', size, 1);
    const buffers = gradients(spec, count);
    const cs = buffers.map((buffer, rank) => createCollective(kind, { rank, size, dtype: 'f64', op: 'sum', buffer, chunkElems }));
    const firsts = cs.map((c) => c.start());
    // Rank 1 receives from rank 0; rank 0's first chunk is a valid one for rank 1.
    return { cs, buffers, good: firsts[0][0], rank1: cs[1], buf1: buffers[1] };
  };

  it('a chunk before start, and a second start', () => {
    const buffer = new Float64Array(count);
    const c = createCollective(kind, { rank: 1, size, dtype: 'f64', op: 'sum', buffer, chunkElems });
    const other = createCollective(kind, { rank: 0, size, dtype: 'f64', op: 'sum', buffer: new Float64Array(count), chunkElems });
    const good = other.start()[0];
    expectProtocolError(c, buffer, asIn(0, good), 'before start');
    c.start();
    expect(() => c.start()).toThrowError(expect.objectContaining({ code: 'RS_ERR_PROTOCOL' }));
  });

  it('a duplicate chunk', () => {
    const { good, rank1, buf1 } = setup();
    rank1.onChunk(asIn(0, good));
    expectProtocolError(rank1, buf1, asIn(0, good), 'duplicate');
  });

  it('a wrong offset or length', () => {
    const { good, rank1, buf1 } = setup();
    expectProtocolError(rank1, buf1, asIn(0, good, { offset: good.offset + 1 }), 'offset + 1');
    expectProtocolError(rank1, buf1, asIn(0, good, { offset: good.offset - 1 }), 'offset - 1');
    expectProtocolError(rank1, buf1, asIn(0, good, { data: good.data.slice(1) }), 'short data');
    expectProtocolError(rank1, buf1, asIn(0, good, { data: new Float64Array(good.data.length + 1) }), 'long data');
    expectProtocolError(rank1, buf1, asIn(0, good, { chunk: 99 }), 'chunk index out of range');
    expectProtocolError(rank1, buf1, asIn(0, good, { chunk: -1 }), 'negative chunk index');
    // And the good one is still accepted afterwards.
    expect(() => rank1.onChunk(asIn(0, good))).not.toThrow();
  });

  it('a step out of range', () => {
    const { good, rank1, buf1 } = setup();
    expectProtocolError(rank1, buf1, asIn(0, good, { step: size - 1 }), `step ${size - 1}`);
    expectProtocolError(rank1, buf1, asIn(0, good, { step: -1 }), 'step -1');
    expectProtocolError(rank1, buf1, asIn(0, good, { step: 1.5 }), 'step 1.5');
    // Also when offset and length are exactly those the out-of-range step would map to (so only
    // the step check can catch it): rank 1 at "step size-1" would get segment 1-(size-1)-2 (rs) or
    // 1-(size-1)-1 (ag), chunk 0.
    for (const step of [size - 1, size, 2 * size - 1]) {
      const k = ((((good.phase === 'reduce-scatter' ? 1 - step - 2 : 1 - step - 1) % size) + size) % size);
      const r = chunkRange(segmentRange(count, size, k), chunkElems, 0);
      const data = new Float64Array(r.count).fill(7);
      expectProtocolError(rank1, buf1, { from: 0, phase: good.phase, step, chunk: 0, offset: r.offset, data }, `step ${step}, offset ${r.offset} of segment ${k}`);
    }
  });

  it('a chunk from a rank that is not the predecessor', () => {
    const { good, rank1, buf1 } = setup();
    for (const from of [1, 2, 3, 7, -1]) expectProtocolError(rank1, buf1, asIn(from, good), `from ${from}`);
  });

  it('a chunk of a phase this collective does not run', () => {
    const { good, rank1, buf1 } = setup();
    expectProtocolError(rank1, buf1, asIn(0, good, { phase: 'broadcast' }), 'broadcast phase');
    if (kind !== 'allreduce') {
      expectProtocolError(rank1, buf1, asIn(0, good, { phase: kind === 'allgather' ? 'reduce-scatter' : 'all-gather' }), 'other ring phase');
    }
  });
});

describe('broadcast rejects bad chunks', () => {
  const size = 4;
  const count = 10;
  const chunkElems = 4;
  const setup = (root = 0) => {
    const buffers = Array.from({ length: size }, (_, r) => Float64Array.from({ length: count }, (_, i) => r * 100 + i));
    const cs = buffers.map((buffer, rank) => createCollective('broadcast', { rank, size, dtype: 'f64', op: 'sum', buffer, chunkElems, root }));
    const firsts = cs.map((c) => c.start());
    return { cs, buffers, good: firsts[root][0] };
  };

  it('duplicate, wrong offset or length, wrong hop, wrong sender, wrong phase', () => {
    const { cs, buffers, good } = setup();
    const [c1, b1] = [cs[1], buffers[1]];
    expectProtocolError(c1, b1, asIn(0, good, { offset: 1 }), 'offset');
    expectProtocolError(c1, b1, asIn(0, good, { data: good.data.slice(1) }), 'length');
    expectProtocolError(c1, b1, asIn(0, good, { chunk: 3 }), 'chunk out of range');
    expectProtocolError(c1, b1, asIn(0, good, { step: 1 }), 'hop 1 (rank 1 expects hop 0)');
    expectProtocolError(c1, b1, asIn(0, good, { step: -1 }), 'hop -1');
    expectProtocolError(c1, b1, asIn(2, good), 'from rank 2');
    expectProtocolError(c1, b1, asIn(0, good, { phase: 'all-gather' }), 'phase');
    c1.onChunk(asIn(0, good));
    expectProtocolError(c1, b1, asIn(0, good), 'duplicate');
    // The root receives nothing, even from its predecessor.
    expectProtocolError(cs[0], buffers[0], asIn(3, { ...good, step: 2 }), 'chunk to the root');
  });

  it('rejects a root out of range', () => {
    const buffer = new Float64Array(3);
    for (const root of [-1, 4, 1.5]) {
      expect(() => createCollective('broadcast', { rank: 0, size: 4, dtype: 'f64', op: 'sum', buffer, chunkElems: 1, root })).toThrow(RangeError);
    }
  });
});
