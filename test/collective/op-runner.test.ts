// OpRunner over the in-memory network: framing, epochs, op sequence ids, early frames, checksums
// and the watchdog, with real timers (the waits here are a few hundred ms at most); then the
// watchdog and the per-link timings on a manual clock, over a network the test moves tick by tick.
import { afterEach, describe, expect, it } from 'vitest';
import { allocElements, bytesOf, type DType, type Elements, type ReduceOp } from '../../src/collective/dtypes.js';
import { countWrong, fillExpected, fillGradient, type InputSpec } from '../../src/collective/inputs.js';
import { RingswarmError } from '../../src/protocol/errors.js';
import { doublingPeers } from '../../src/collective/recursive-doubling.js';
import { treePeers } from '../../src/collective/tree.js';
import type { AllreduceAlgo } from '../../src/collective/types.js';
import { decodeFrame, encodeFrame, FRAME_HEADER_BYTES } from '../../src/protocol/frame.js';
import type { Clock, TimerHandle } from '../../src/runtime/clock.js';
import { MemoryNetwork, type MemoryTransport } from '../../src/runtime/memory-transport.js';
import { OpRunner, type OpRunnerOptions, type StallInfo } from '../../src/runtime/op-runner.js';
import type { LinkEvents, PeerAddress, Transport } from '../../src/runtime/transport.js';

interface Ring {
  net: MemoryNetwork;
  transports: MemoryTransport[];
  runners: OpRunner[];
  logs: string[][];
  /** Per rank, the peers whose link was reported lost (onLinkLost). */
  lost: number[][];
}

const live: OpRunner[] = [];

afterEach(() => {
  // Never leave a watchdog interval behind, whatever a test did.
  for (const r of live.splice(0)) r.abort(new RingswarmError('RS_ERR_ABORTED', 'test over'));
});

interface RingOptions {
  seed?: number;
  epoch?: number;
  dtype?: DType;
  chunkElems?: number;
  timeoutMs?: number;
  checksums?: boolean;
  trace?: boolean;
  onLateBadFrame?: (rank: number, e: RingswarmError) => void;
}

async function ring(size: number, o: RingOptions = {}): Promise<Ring> {
  const net = new MemoryNetwork(o.seed ?? 1);
  const epoch = o.epoch ?? 3;
  const transports = Array.from({ length: size }, (_, r) => net.endpoint(`r${r}`));
  const logs = transports.map(() => [] as string[]);
  const lost = transports.map(() => [] as number[]);
  const runners = transports.map(
    (t, rank) =>
      new OpRunner(
        t,
        { rank, epoch, dtype: o.dtype ?? 'f32', chunkElems: o.chunkElems ?? 16, timeoutMs: o.timeoutMs ?? 10_000, checksums: o.checksums ?? true, trace: o.trace, onLateBadFrame: o.onLateBadFrame && ((e) => o.onLateBadFrame!(rank, e)) },
        (l) => logs[rank].push(l),
      ),
  );
  live.push(...runners);
  await Promise.all(
    transports.map((t, rank) => {
      t.setEvents({ onFrame: (from, frame) => runners[rank].onFrame(from, frame), onLinkLost: (peer) => lost[rank].push(peer) });
      const prev = (rank - 1 + size) % size;
      const next = (rank + 1) % size;
      return t.ring(epoch, rank, { rank: prev, dataUrl: transports[prev].dataUrl }, { rank: next, dataUrl: transports[next].dataUrl });
    }),
  );
  return { net, transports, runners, logs, lost };
}

function spec(dtype: DType, op: ReduceOp, totalCards: number, step = 0): InputSpec {
  return { dtype, op, seed: 42, step, totalCards };
}

function inputs(s: InputSpec, count: number): Elements[] {
  return Array.from({ length: s.totalCards }, (_, r) => {
    const g = allocElements(s.dtype, count);
    fillGradient(g, s, r);
    return g;
  });
}

function expected(s: InputSpec, count: number): Elements {
  const e = allocElements(s.dtype, count);
  fillExpected(e, s);
  return e;
}

/** Settles a promise into a value we can assert on without an unhandled rejection in between. */
function settle(p: Promise<void>): Promise<{ ok: true } | { ok: false; err: unknown }> {
  return p.then(
    () => ({ ok: true as const }),
    (err: unknown) => ({ ok: false as const, err }),
  );
}

describe('OpRunner over MemoryNetwork', () => {
  it('a 4-rank all-reduce completes and is exact, for every dtype and several seeds', async () => {
    for (const dtype of ['f32', 'f64', 'i32'] as const)
      for (const seed of [1, 2, 3]) {
        const { net, runners } = await ring(4, { seed, dtype, chunkElems: 7 });
        const s = spec(dtype, 'sum', 4);
        const bufs = inputs(s, 101);
        const done = runners.map((r, rank) => settle(r.run('allreduce', 0, { size: 4, op: 'sum', buffer: bufs[rank] })));
        expect(net.run()).toBeGreaterThan(0);
        for (const d of await Promise.all(done)) expect(d).toEqual({ ok: true });
        const e = expected(s, 101);
        bufs.forEach((b, rank) => expect(countWrong(b, e), `${dtype} seed ${seed} rank ${rank}`).toBe(0));
        for (const r of runners) {
          expect(r.stats.badFrames).toBe(0);
          expect(r.stats.staleDropped).toBe(0);
          expect(r.progress()).toBeNull();
        }
        expect(net.inFlight).toBe(0);
      }
  });

  it('with trace on, times each phase of an op, its sends and its receives; off, nothing', async () => {
    for (const trace of [true, false]) {
      const { net, runners } = await ring(3, { chunkElems: 8, trace });
      const s = spec('f32', 'sum', 3);
      const bufs = inputs(s, 50);
      const done = runners.map((r, rank) => settle(r.run('allreduce', 0, { size: 3, op: 'sum', buffer: bufs[rank], algo: 'ring' })));
      net.run();
      for (const d of await Promise.all(done)) expect(d).toEqual({ ok: true });
      for (const r of runners) {
        const last = r.last!;
        if (!trace) {
          expect(last.trace).toBeUndefined();
          continue;
        }
        const t = last.trace!;
        expect(t.phases.map((p) => p.phase)).toEqual(['reduce-scatter', 'all-gather']);
        // Every byte sent is some phase's, and its frames' sends and receives lie within the op.
        expect(t.phases.reduce((n, p) => n + p.bytesSent, 0)).toBe(last.bytesSent);
        for (const p of t.phases) {
          expect(p.bytesReceived).toBeGreaterThan(0);
          expect(t.start).toBeLessThanOrEqual(p.sendStart);
          expect(p.sendStart).toBeLessThanOrEqual(p.sendEnd);
          expect(p.recvStart).toBeLessThanOrEqual(p.recvEnd);
          expect(Math.max(p.sendEnd, p.recvEnd)).toBeLessThanOrEqual(t.end);
        }
      }
    }
  });

  it('runs a sequence of ops (every collective kind) back to back', async () => {
    const { net, runners } = await ring(4, { chunkElems: 5 });
    const s = spec('f32', 'max', 4, 1);
    const bufs = inputs(s, 33);
    const kinds = ['allreduce', 'reducescatter', 'allgather', 'broadcast'] as const;
    for (let k = 0; k < kinds.length; k++) {
      const done = runners.map((r, rank) => settle(r.run(kinds[k], 10 + k, { size: 4, op: 'max', buffer: bufs[rank], root: 2 })));
      net.run();
      for (const d of await Promise.all(done)) expect(d).toEqual({ ok: true });
    }
    // max is idempotent, so all four ops in a row still leave the all-reduce everywhere.
    const e = expected(s, 33);
    bufs.forEach((b) => expect(countWrong(b, e)).toBe(0));
  });

  it('drops frames from an older epoch (counted, never applied)', async () => {
    const { net, runners } = await ring(4, { epoch: 5, chunkElems: 8, dtype: 'f64' });
    const s = spec('f64', 'sum', 4);
    const bufs = inputs(s, 40);
    // A frame that would be valid for rank 1 in this op (rank 0's first reduce-scatter chunk: segment 3,
    // offset 30, 8 elements), but from epoch 4, with poison in it; and the same for the next op.
    const poison = new Float64Array(8).fill(1e300);
    const stale = (opSeq: number) => encodeFrame({ phase: 'reduce-scatter', epoch: 4, opSeq, step: 0, chunk: 0, offset: 30, src: 0 }, bytesOf(poison));
    runners[1].onFrame(0, stale(8)); // before the op starts: must not be held as an early frame
    runners[1].onFrame(0, stale(7));
    const done = runners.map((r, rank) => settle(r.run('allreduce', 7, { size: 4, op: 'sum', buffer: bufs[rank] })));
    runners[1].onFrame(0, stale(7)); // while the op is under way
    net.run();
    for (const d of await Promise.all(done)) expect(d).toEqual({ ok: true });
    expect(runners[1].stats.staleDropped).toBe(3);
    expect(runners[1].stats.badFrames).toBe(0);
    const e = expected(s, 40);
    bufs.forEach((b, rank) => expect(countWrong(b, e), `rank ${rank}`).toBe(0));
    // And the next op is not disturbed by the stale frame for op 8 either.
    const s2 = spec('f64', 'sum', 4, 1);
    const bufs2 = inputs(s2, 40);
    const done2 = runners.map((r, rank) => settle(r.run('allreduce', 8, { size: 4, op: 'sum', buffer: bufs2[rank] })));
    net.run();
    for (const d of await Promise.all(done2)) expect(d).toEqual({ ok: true });
    bufs2.forEach((b) => expect(countWrong(b, expected(s2, 40))).toBe(0));
  });

  it('drops late frames of a finished op (same epoch, older op sequence id)', async () => {
    const { net, runners } = await ring(2, { chunkElems: 4 });
    const bufs = inputs(spec('f32', 'sum', 2), 8);
    const done = runners.map((r, rank) => settle(r.run('allreduce', 0, { size: 2, op: 'sum', buffer: bufs[rank] })));
    net.run();
    await Promise.all(done);
    const snapshot = bufs[1].slice();
    runners[1].onFrame(0, encodeFrame({ phase: 'all-gather', epoch: 3, opSeq: 0, step: 0, chunk: 0, offset: 0, src: 0 }, bytesOf(new Float32Array(4).fill(9))));
    expect(runners[1].stats.staleDropped).toBe(1);
    expect(countWrong(bufs[1], snapshot)).toBe(0);
  });

  it('holds a frame for the next op that arrives before that op starts, and uses it', async () => {
    const { net, runners } = await ring(4, { seed: 9, chunkElems: 4, dtype: 'i32' });
    const s0 = spec('i32', 'sum', 4, 0);
    const b0 = inputs(s0, 30);
    const d0 = runners.map((r, rank) => settle(r.run('allreduce', 0, { size: 4, op: 'sum', buffer: b0[rank] })));
    net.run();
    for (const d of await Promise.all(d0)) expect(d).toEqual({ ok: true });

    // Op 1 starts everywhere but on rank 1: rank 0's frames for op 1 reach rank 1 first.
    const s1 = spec('i32', 'sum', 4, 1);
    const b1 = inputs(s1, 30);
    const d1: Promise<{ ok: boolean }>[] = [];
    for (const rank of [0, 2, 3]) d1[rank] = settle(runners[rank].run('allreduce', 1, { size: 4, op: 'sum', buffer: b1[rank] }));
    const receivedBefore = runners[1].stats.framesReceived;
    net.run();
    const early = runners[1].stats.framesReceived - receivedBefore;
    expect(early).toBeGreaterThan(0); // rank 0's whole first segment, at least
    expect(runners[1].progress()).toBeNull();
    expect(runners[1].stats.staleDropped).toBe(0);
    expect(runners[1].stats.badFrames).toBe(0);

    d1[1] = settle(runners[1].run('allreduce', 1, { size: 4, op: 'sum', buffer: b1[1] }));
    // The held frames are applied as the op starts, before anything else is delivered.
    expect(runners[1].progress()!.chunksReceived).toBe(early);
    net.run();
    for (const d of await Promise.all(d1)) expect(d).toEqual({ ok: true });
    const e = expected(s1, 30);
    b1.forEach((b, rank) => expect(countWrong(b, e), `rank ${rank}`).toBe(0));
  });

  it('holds frames of several ops ahead (a broadcast root runs ahead) and uses each in its own op', async () => {
    const { net, runners } = await ring(3, { seed: 4, chunkElems: 3 });
    const count = 10;
    const roots = [0, 1, 2].map((op) => Float64Array.from({ length: count }, (_, i) => 1000 * op + i + 0.5));
    const asF32 = roots.map((r) => Float32Array.from(r));
    const bufs = [0, 1, 2].map(() => [0, 1, 2].map(() => new Float32Array(count)));
    // Rank 0, the root, broadcasts ops 0, 1 and 2 before ranks 1 and 2 start any of them.
    for (let op = 0; op < 3; op++) {
      bufs[0][op].set(asF32[op]);
      const r = await settle(runners[0].run('broadcast', op, { size: 3, op: 'sum', buffer: bufs[0][op], root: 0 }));
      expect(r).toEqual({ ok: true });
    }
    net.run();
    expect(runners[1].stats.framesReceived).toBe(3 * Math.ceil(count / 3));
    for (let op = 0; op < 3; op++) {
      const d = [1, 2].map((rank) => settle(runners[rank].run('broadcast', op, { size: 3, op: 'sum', buffer: bufs[rank][op], root: 0 })));
      net.run();
      for (const x of await Promise.all(d)) expect(x).toEqual({ ok: true });
      for (const rank of [1, 2]) expect(countWrong(bufs[rank][op], asF32[op]), `op ${op} rank ${rank}`).toBe(0);
    }
    for (const r of runners) expect(r.stats.badFrames + r.stats.staleDropped).toBe(0);
  });

  /** The first frame from `t` to rank `to`, taken off the wire; everything else flows normally. */
  function captureFirst(t: MemoryTransport, to: number): { frame: () => Uint8Array } {
    let captured: Uint8Array | null = null;
    const send = t.send.bind(t);
    t.send = (dest, frame, written) => {
      if (captured === null && dest === to) {
        // A frame is one buffer, or a header and a payload sent as two fragments.
        captured = frame instanceof Uint8Array ? frame.slice() : Uint8Array.from([...frame[0], ...frame[1]]);
        written?.(true);
      } else send(dest, frame, written);
    };
    return {
      frame: () => {
        expect(captured, 'nothing captured').not.toBeNull();
        return captured!;
      },
    };
  }

  it('rejects a payload byte flipped in flight by its checksum: never applied, the op fails, the link drops, the others time out', async () => {
    const timeoutMs = 200;
    const { net, transports, runners, logs, lost } = await ring(4, { chunkElems: 6, timeoutMs });
    const s = spec('f32', 'sum', 4);
    const bufs = inputs(s, 48);
    const cap = captureFirst(transports[0], 1);
    const t0 = Date.now();
    const done = runners.map((r, rank) => settle(r.run('allreduce', 0, { size: 4, op: 'sum', buffer: bufs[rank] })));
    const corrupt = cap.frame();
    corrupt[FRAME_HEADER_BYTES + 5] ^= 0x10;
    expect(() => decodeFrame(corrupt, { maxPayload: 1 << 20 })).toThrowError(expect.objectContaining({ code: 'RS_ERR_CHECKSUM' }));

    const before = { progress: runners[1].progress(), buffer: bufs[1].slice(), sent: runners[1].stats.framesSent, received: runners[1].stats.framesReceived };
    expect(before.progress!.chunksReceived).toBe(0);
    runners[1].onFrame(0, corrupt);
    expect(runners[1].stats.badFrames).toBe(1);
    expect(runners[1].stats.framesReceived).toBe(before.received);
    expect(countWrong(bufs[1], before.buffer)).toBe(0);
    expect(runners[1].stats.framesSent).toBe(before.sent);
    expect(logs[1].join('\n')).toMatch(/bad frame from rank 0: RS_ERR_CHECKSUM/);

    net.run(); // everything else is delivered; the op cannot complete without that chunk
    const results = await Promise.all(done);
    const elapsed = Date.now() - t0;
    const codes = results.map((r) => (r.ok ? 'ok' : (r.err as RingswarmError).code));
    // Rank 1 fails at once with the checksum error; the rest, starved, by their watchdogs.
    expect(codes).toEqual(['RS_ERR_TIMEOUT', 'RS_ERR_CHECKSUM', 'RS_ERR_TIMEOUT', 'RS_ERR_TIMEOUT']);
    for (const rank of [0, 2, 3]) expect((results[rank] as { err: Error }).err.message).toMatch(/op 0 made no progress for \d+ ms/);
    expect((results[1] as { err: Error }).err.message).toMatch(/from rank 0/);
    expect(elapsed).toBeGreaterThanOrEqual(timeoutMs);
    // The link the bad frame came on is dropped (reported on a later microtask).
    expect(lost).toEqual([[], [0], [], []]);
    expect(runners.every((r) => r.progress() === null)).toBe(true);
  });

  it('a bad frame after the op was aborted (a partner lost first) is handed to onLateBadFrame; without it, the next op fails with it', async () => {
    for (const withCallback of [true, false]) {
      const late: [number, string][] = [];
      const { transports, runners } = await ring(3, { chunkElems: 4, onLateBadFrame: withCallback ? (rank, e) => late.push([rank, e.code]) : undefined });
      const bufs = inputs(spec('f32', 'sum', 3), 12);
      const cap = captureFirst(transports[0], 1);
      const done = runners.map((r, rank) => settle(r.run('allreduce', 0, { size: 3, op: 'sum', buffer: bufs[rank] })));
      const corrupt = cap.frame();
      corrupt[FRAME_HEADER_BYTES + 1] ^= 0x01;
      // Rank 1 loses a partner first: its op ends; then the corrupt frame comes in.
      runners[1].abort(new RingswarmError('RS_ERR_PEER_LOST', 'link to rank 2 closed'));
      runners[1].onFrame(0, corrupt);
      expect(runners[1].stats.badFrames).toBe(1);
      for (const r of [0, 2]) runners[r].abort(new RingswarmError('RS_ERR_ABORTED', 'test over'));
      const codes = (await Promise.all(done)).map((r) => (r.ok ? 'ok' : (r.err as RingswarmError).code));
      expect(codes[1]).toBe('RS_ERR_PEER_LOST');
      // The next op: with the callback, the bad frame is no longer its business (it runs until aborted).
      const pending = settle(runners[1].run('allreduce', 1, { size: 3, op: 'sum', buffer: bufs[1] }));
      await Promise.resolve();
      runners[1].abort(new RingswarmError('RS_ERR_ABORTED', 'test over'));
      const next = await pending;
      expect(late).toEqual(withCallback ? [[1, 'RS_ERR_CHECKSUM']] : []);
      expect(next.ok ? 'ok' : (next.err as RingswarmError).code).toBe(withCallback ? 'RS_ERR_ABORTED' : 'RS_ERR_CHECKSUM');
    }
  });

  it('with checksums off, the same flipped byte goes through and the result is wrong (what the checksum buys)', async () => {
    const { net, transports, runners } = await ring(4, { chunkElems: 6, checksums: false });
    const s = spec('f32', 'sum', 4);
    const bufs = inputs(s, 48);
    const cap = captureFirst(transports[0], 1);
    const done = runners.map((r, rank) => settle(r.run('allreduce', 0, { size: 4, op: 'sum', buffer: bufs[rank] })));
    const corrupt = cap.frame();
    corrupt[FRAME_HEADER_BYTES + 5] ^= 0x10;
    runners[1].onFrame(0, corrupt);
    net.run();
    for (const d of await Promise.all(done)) expect(d).toEqual({ ok: true });
    const e = expected(s, 48);
    bufs.forEach((b, rank) => expect(countWrong(b, e), `rank ${rank}`).toBe(1));
    expect(runners[1].stats.badFrames).toBe(0);
  });

  it('abort() rejects the pending op with the given error; late frames of it are then dropped', async () => {
    const { net, runners } = await ring(3, { chunkElems: 4 });
    const bufs = inputs(spec('f32', 'sum', 3), 12);
    const p0 = settle(runners[0].run('allreduce', 0, { size: 3, op: 'sum', buffer: bufs[0] }));
    const p1 = settle(runners[1].run('allreduce', 0, { size: 3, op: 'sum', buffer: bufs[1] }));
    const why = new RingswarmError('RS_ERR_PEER_LOST', 'rank 2 vanished');
    runners[1].abort(why);
    expect(runners[1].progress()).toBeNull();
    const r1 = await p1;
    expect(r1.ok).toBe(false);
    expect((r1 as { err: unknown }).err).toBe(why);
    // Rank 0's frames for op 0 now reach rank 1 after the abort: stale, not applied.
    const snapshot = bufs[1].slice();
    net.run();
    expect(runners[1].stats.staleDropped).toBeGreaterThan(0);
    expect(countWrong(bufs[1], snapshot)).toBe(0);
    // abort() with nothing under way is a no-op, and the runner takes the next op.
    runners[1].abort(new Error('nothing to abort'));
    runners[0].abort(why);
    expect((await p0).ok).toBe(false);
  });

  it('setEpoch() aborts the pending op with RS_ERR_ABORTED and drops the old epoch afterwards', async () => {
    const { runners } = await ring(2, { chunkElems: 4 });
    const p = settle(runners[0].run('allreduce', 0, { size: 2, op: 'sum', buffer: new Float32Array(8) }));
    runners[0].setEpoch(4);
    const r = await p;
    expect(r.ok).toBe(false);
    expect((r as { err: RingswarmError }).err.code).toBe('RS_ERR_ABORTED');
    runners[0].onFrame(1, encodeFrame({ phase: 'reduce-scatter', epoch: 3, opSeq: 1, step: 0, chunk: 0, offset: 0, src: 1 }, bytesOf(new Float32Array(4))));
    expect(runners[0].stats.staleDropped).toBe(1);
  });

  it('refuses an op that overlaps the current one, or does not move the sequence forward', async () => {
    const { runners } = await ring(2, { chunkElems: 4 });
    const p = settle(runners[0].run('allreduce', 5, { size: 2, op: 'sum', buffer: new Float32Array(8) }));
    const overlap = await settle(runners[0].run('allreduce', 6, { size: 2, op: 'sum', buffer: new Float32Array(8) }));
    expect(overlap.ok).toBe(false);
    expect((overlap as { err: RingswarmError }).err.code).toBe('RS_ERR_INTERNAL');
    expect(runners[0].progress()!.opSeq).toBe(5); // the op under way is not disturbed
    runners[0].abort(new Error('x'));
    await p;
    for (const seq of [5, 4]) {
      const back = await settle(runners[0].run('allreduce', seq, { size: 2, op: 'sum', buffer: new Float32Array(8) }));
      expect((back as { err: RingswarmError }).err.code).toBe('RS_ERR_INTERNAL');
    }
  });
});

/** Time that moves only when the test says: timers due by then run in time order. */
class ManualClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimer(ms: number, fn: () => void): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return { id };
  }
  clearTimer(h: TimerHandle | null | undefined): void {
    if (h) this.timers.delete(h.id);
  }
  sleep(ms: number): Promise<void> {
    return new Promise((r) => this.setTimer(ms, r));
  }
  get pending(): number {
    return this.timers.size;
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | null = null;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

interface Queued {
  frame: Uint8Array;
  written?: (ok: boolean) => void;
  /** Not for the op runner (a checkpoint copy): written, not delivered. */
  opaque?: boolean;
}

/**
 * A network the test moves: each tick, the first frame queued on each directed link (that `pass`
 * lets through) is written (its sender told) and delivered. Nothing moves between ticks.
 */
class TickNet {
  readonly runners: (OpRunner | undefined)[] = [];
  /** Frames that are written in their turn but never delivered (as a worker keeps checkpoint copies). */
  readonly opaque = new Set<Uint8Array>();
  private readonly queues = new Map<string, { from: number; to: number; q: Queued[] }>();
  ticks = 0;

  transport(rank: number): Transport {
    const net = this;
    return {
      dataUrl: `tick://${rank}`,
      pendingBytes: 0,
      async drained() {},
      async ring(_e: number, _r: number, _p: PeerAddress, _n: PeerAddress) {},
      send(to, frame, written) {
        const whole = frame instanceof Uint8Array ? frame.slice() : Uint8Array.from([...frame[0], ...frame[1]]);
        const key = `${rank}->${to}`;
        const link = net.queues.get(key) ?? net.queues.set(key, { from: rank, to, q: [] }).get(key)!;
        link.q.push({ frame: whole, written, opaque: frame instanceof Uint8Array && net.opaque.has(frame) });
      },
      setEvents(_e: LinkEvents) {},
      dropLink() {},
      close() {},
    };
  }

  /** Frames queued on the link from -> to. */
  queuedOn(from: number, to: number): number {
    return this.queues.get(`${from}->${to}`)?.q.length ?? 0;
  }

  /** Frames queued, over all links. */
  get queued(): number {
    let n = 0;
    for (const l of this.queues.values()) n += l.q.length;
    return n;
  }

  tick(pass: (from: number, to: number) => boolean = () => true): number {
    this.ticks++;
    const heads: { from: number; to: number; f: Queued }[] = [];
    for (const l of this.queues.values()) if (l.q.length > 0 && pass(l.from, l.to)) heads.push({ from: l.from, to: l.to, f: l.q.shift()! });
    for (const h of heads) {
      h.f.written?.(true);
      if (!h.f.opaque) this.runners[h.to]?.onFrame(h.from, h.f.frame);
    }
    return heads.length;
  }
}

describe('OpRunner on a manual clock', () => {
  const T = 1000;

  function swarm(size: number, o: Partial<OpRunnerOptions> = {}, ranks: number[] = [...Array(size).keys()]) {
    const clock = new ManualClock();
    const net = new TickNet();
    for (const rank of ranks) {
      const r = new OpRunner(net.transport(rank), { rank, epoch: 1, dtype: 'f64', chunkElems: 4, timeoutMs: T, checksums: true, clock, ...o });
      net.runners[rank] = r;
      live.push(r);
    }
    return { clock, net, runners: net.runners };
  }

  /** Flags set as the ops settle (checked after the microtasks of a tick have run). */
  function track(ps: Promise<void>[]) {
    const state = ps.map(() => ({ done: false, err: null as RingswarmError | null }));
    ps.forEach((p, i) =>
      p.then(
        () => (state[i].done = true),
        (e: RingswarmError) => {
          state[i].done = true;
          state[i].err = e;
        },
      ),
    );
    return state;
  }
  const flush = () => new Promise<void>((r) => setImmediate(r));

  it.each([
    ['ring', 4],
    ['rd', 4],
    ['rd', 6],
    ['tree', 6],
  ] as const)('%s, %i ranks: a frame every 0.9 x timeoutMs for dozens of timeouts, the op finishes and is exact', async (algo: AllreduceAlgo, size) => {
    const { clock, net, runners } = swarm(size);
    const s = spec('f64', 'sum', size);
    const count = 4 * 8 * 6; // 8 chunks a segment in the ring, 48 chunks in recursive doubling
    const bufs = inputs(s, count);
    const st = track(runners.map((r, rank) => r!.run('allreduce', 0, { size, op: 'sum', buffer: bufs[rank], algo })));
    while (!st.every((x) => x.done) && net.ticks < 10_000) {
      clock.advance(0.9 * T);
      net.tick();
      await flush();
    }
    expect(st.map((x) => x.err?.code ?? 'ok')).toEqual(runners.map(() => 'ok'));
    expect(clock.now()).toBeGreaterThan(20 * T);
    const e = expected(s, count);
    bufs.forEach((b, rank) => expect(countWrong(b, e), `rank ${rank}`).toBe(0));
    // Every op cleaned up its watchdog.
    expect(clock.pending).toBe(0);
  });

  it('no frame received or written for timeoutMs: RS_ERR_TIMEOUT, not a moment before', async () => {
    const { clock, net, runners } = swarm(2);
    const bufs = inputs(spec('f64', 'sum', 2), 64);
    const st = track(runners.map((r, rank) => r!.run('allreduce', 0, { size: 2, op: 'sum', buffer: bufs[rank] })));
    for (let i = 0; i < 3; i++) {
      clock.advance(0.5 * T);
      net.tick();
    }
    await flush();
    // Then the network stops: the last frames moved at 1.5 T.
    const moved = runners[0]!.progress()!.moved;
    expect(moved).toBeGreaterThan(0);
    clock.advance(T - 1);
    await flush();
    expect(st.map((x) => x.done)).toEqual([false, false]);
    expect(runners[0]!.progress()!.moved).toBe(moved);
    clock.advance(1);
    await flush();
    expect(st.map((x) => x.err?.code)).toEqual(['RS_ERR_TIMEOUT', 'RS_ERR_TIMEOUT']);
    expect(st[0].err!.message).toMatch(new RegExp(`op 0 made no progress for ${T} ms \\(rank 0, .* ${moved} frames moved\\)`));
  });

  it('frames written count as progress: a rank that only sends, slowly, is moving; it stalls a timeout after the last write', async () => {
    // Rank 1 is not there to answer; rank 0's link drains one frame every 0.9 T.
    const { clock, net, runners } = swarm(2, {}, [0]);
    const st = track([runners[0]!.run('allreduce', 0, { size: 2, op: 'sum', buffer: inputs(spec('f64', 'sum', 2), 2 * 4 * 20)[0] })]);
    const sent = net.queued;
    expect(sent).toBe(20);
    let lastWrite = 0;
    for (let i = 0; i < sent; i++) {
      clock.advance(0.9 * T);
      net.tick();
      lastWrite = clock.now();
      await flush();
      expect(st[0].done, `tick ${i}`).toBe(false);
    }
    expect(runners[0]!.progress()).toMatchObject({ chunksReceived: 0, moved: sent });
    clock.advance(T - 1);
    await flush();
    expect(st[0].done).toBe(false);
    clock.advance(1);
    await flush();
    expect(st[0].err?.code).toBe('RS_ERR_TIMEOUT');
    expect(clock.now() - lastWrite).toBe(T);
    expect(lastWrite).toBeGreaterThan(15 * T);
  });

  it('onStall reports each stall once and leaves the verdict to failAfterMs (the coordinator decides meanwhile)', async () => {
    const stalls: StallInfo[] = [];
    const { clock, net, runners } = swarm(2, { failAfterMs: 5 * T, onStall: (s) => stalls.push(s) });
    const bufs = inputs(spec('f64', 'sum', 2), 64);
    const st = track(runners.map((r, rank) => r!.run('allreduce', 0, { size: 2, op: 'sum', buffer: bufs[rank] })));
    clock.advance(3 * T);
    await flush();
    // Nothing moved since the start: one report per rank, at timeoutMs, and both still waiting.
    expect(stalls.map((s) => [s.opSeq, s.idleMs, s.moved])).toEqual([
      [0, T, 0],
      [0, T, 0],
    ]);
    expect(st.map((x) => x.done)).toEqual([false, false]);
    // It moves (a partner that began late), then stalls again: reported again.
    net.tick();
    clock.advance(2 * T);
    await flush();
    expect(stalls).toHaveLength(4);
    expect(stalls[2]).toMatchObject({ idleMs: T });
    expect(stalls[2].moved).toBeGreaterThan(0);
    clock.advance(3 * T - 1);
    await flush();
    expect(st.map((x) => x.done)).toEqual([false, false]);
    clock.advance(1);
    await flush();
    expect(st.map((x) => x.err?.code)).toEqual(['RS_ERR_TIMEOUT', 'RS_ERR_TIMEOUT']);
    expect(stalls).toHaveLength(4);
  });

  /** Ranks on a manual clock, each with its own thread's CPU times where `cpu` gives them (a test moves them). */
  function swarmWithCpu(size: number, cpu: Map<number, { runMs: number; waitMs: number }>) {
    const clock = new ManualClock();
    const net = new TickNet();
    const reads = new Array<number>(size).fill(0);
    for (let rank = 0; rank < size; rank++) {
      const c = cpu.get(rank);
      const cpuTimes = () => (reads[rank]++, { ...c! });
      const r = new OpRunner(net.transport(rank), { rank, epoch: 1, dtype: 'f64', chunkElems: 4, timeoutMs: T, checksums: true, clock, ...(c ? { cpuTimes } : {}) });
      net.runners[rank] = r;
      live.push(r);
    }
    return { clock, net, runners: net.runners as OpRunner[], reads };
  }

  it("a link's clock runs only while its sender sleeps: not while it runs or waits for a CPU with frames in flight", async () => {
    const size = 4;
    // Rank 0 keeps a CPU busy (runs, then waits for one) through the op; rank 1 sleeps whenever
    // it is not handling a frame (its CPU times never move); ranks 2 and 3 do not say (wall time).
    const busy = { runMs: 0, waitMs: 0 };
    const idle = { runMs: 0, waitMs: 0 };
    const { clock, net, runners, reads } = swarmWithCpu(size, new Map([[0, busy], [1, idle]]));
    const bufs = inputs(spec('f64', 'sum', size), 4 * 8);
    const st = track(runners.map((r, rank) => r.run('allreduce', 0, { size, op: 'sum', buffer: bufs[rank], algo: 'rd' })));
    let n = 0;
    while (!st.every((x) => x.done) && n++ < 1000) {
      clock.advance(10);
      if (n % 2) busy.runMs += 10;
      else busy.waitMs += 10;
      net.tick();
      await flush();
    }
    expect(st.every((x) => x.done && !x.err)).toBe(true);
    const [r0, r1, r2] = runners.map((r) => r.last!);
    // Every link had frames in flight for a tick or more, on wall time.
    for (const l of [...r1.links, ...r2.links]) expect(l.busyMs).toBeGreaterThanOrEqual(10);
    // Rank 0 never slept: nothing of its links' time is the links'.
    expect(r0.links.map((l) => l.peer)).toEqual([1, 2]);
    for (const l of r0.links) expect(l.busyMs).toBe(0);
    expect(r0.sleptMs).toBe(0);
    // Rank 1 slept through the op: its links' time and its op's are all wall time.
    expect(r1.sleptMs).toBe(r1.opMs);
    // Without CPU times, nothing is taken out, and the op's slept time is not known.
    expect(r2.sleptMs).toBeNull();
    // The CPU times are read at most once a turn of the event loop (here: the op's start, then one a tick).
    expect(reads[0]).toBeGreaterThan(0);
    expect(reads[0]).toBeLessThanOrEqual(n + 1);
    expect(reads[2]).toBe(0);
  });

  it('a link throttled while its sender runs and sleeps by turns counts the ticks it slept', async () => {
    const size = 4;
    const cpu = { runMs: 0, waitMs: 0 };
    const { clock, net, runners } = swarmWithCpu(size, new Map([[0, cpu]]));
    const bufs = inputs(spec('f64', 'sum', size), 4 * 8);
    const st = track(runners.map((r, rank) => r.run('allreduce', 0, { size, op: 'sum', buffer: bufs[rank], algo: 'rd' })));
    // The link 0 -> 2 moves one tick in eight; rank 0 runs through every other tick.
    let n = 0;
    let slept = 0;
    let inFlightWall = 0;
    while (!st.every((x) => x.done) && n++ < 1000) {
      const held = net.queuedOn(0, 2);
      clock.advance(10);
      if (n % 2) cpu.runMs += 10;
      else if (held > 0) slept += 10;
      if (held > 0) inFlightWall += 10;
      net.tick((from, to) => !(from === 0 && to === 2) || n % 8 === 0);
      await flush();
    }
    expect(st.every((x) => x.done && !x.err)).toBe(true);
    const l = runners[0].last!.links.find((x) => x.peer === 2)!;
    expect(inFlightWall).toBeGreaterThan(slept);
    expect(l.busyMs).toBe(slept);
    // Half its wall time, still well over a clean link's (which moves every tick, on wall time).
    const clean = runners[1].last!.links.find((x) => x.peer === 3)!;
    expect(l.busyMs / l.bytes).toBeGreaterThan(2 * (clean.busyMs / clean.bytes));
  });

  it("a checkpoint copy is not in its link's figures: neither its bytes nor the time the op's frames wait behind it", async () => {
    const size = 4;
    // The link 0 -> 1 is held for 5 ticks at the start of the op, with and without a copy queued
    // on it first: held alone, the op's frames wait on the link and its clock runs; behind a copy,
    // the wait is the copy's (the checkpoint's cost), and the clock runs only once it is written.
    const held = async (copy: boolean) => {
      const { clock, net, runners } = swarm(size);
      if (copy) {
        const frame = new Uint8Array(4096);
        net.opaque.add(frame);
        runners[0]!.sendFrame(1, frame);
      }
      const bufs = inputs(spec('f64', 'sum', size), 4 * 8);
      const st = track(runners.map((r, rank) => r!.run('allreduce', 0, { size, op: 'sum', buffer: bufs[rank], algo: 'ring' })));
      for (let n = 0; !st.every((x) => x.done) && n < 1000; n++) {
        clock.advance(10);
        net.tick((from, to) => !(from === 0 && to === 1) || n >= 5);
        await flush();
      }
      expect(st.every((x) => x.done && !x.err)).toBe(true);
      return runners.map((r) => r!.last!.links[0]);
    };
    const alone = await held(false);
    const behind = await held(true);
    expect(alone[0].busyMs).toBeGreaterThanOrEqual(50);
    expect(behind[0].busyMs).toBeLessThan(alone[0].busyMs - 40);
    // Every ring link carries the same bytes: the copy's are not among them.
    expect(behind.map((l) => l.bytes)).toEqual(alone.map((l) => l.bytes));
    expect(new Set(behind.map((l) => l.bytes)).size).toBe(1);
  });

  it('an op is over only once every frame it sent is written', async () => {
    const size = 4;
    const { clock, net, runners } = swarm(size);
    const bufs = inputs(spec('f64', 'sum', size), 4 * 8);
    const st = track(runners.map((r, rank) => r!.run('allreduce', 0, { size, op: 'sum', buffer: bufs[rank], algo: 'rd' })));
    // The link 0 -> 2 is held: rank 2 cannot finish, and rank 0, which has all it needs, has a frame unwritten.
    for (let i = 0; i < 50; i++) {
      clock.advance(1);
      net.tick((from, to) => !(from === 0 && to === 2));
      await flush();
    }
    expect(runners[0]!.progress()).toMatchObject({ phase: 'done' });
    expect(st.map((x) => x.done)).toEqual([false, true, false, true]);
    clock.advance(1);
    net.tick();
    await flush();
    for (let i = 0; i < 10 && !st.every((x) => x.done); i++) {
      net.tick();
      await flush();
    }
    expect(st.every((x) => x.done && !x.err)).toBe(true);
  });

  it('measures every link it sends on: bytes and busy time per peer, under the ring, recursive doubling and the tree', async () => {
    for (const algo of ['ring', 'rd', 'tree'] as const) {
      const size = 4;
      const { clock, net, runners } = swarm(size);
      const ops = 4;
      // Per rank, per peer: bytes and busy time summed over the ops (a frame still unwritten when
      // its op ends is counted on into the next op that sends on that link).
      const sum = runners.map(() => new Map<number, { bytes: number; busyMs: number }>());
      let n = 0;
      for (let op = 0; op < ops; op++) {
        const bufs = inputs(spec('f64', 'sum', size, op), 4 * 8 * 4);
        const st = track(runners.map((r, rank) => r!.run('allreduce', op, { size, op: 'sum', buffer: bufs[rank], algo })));
        while (!st.every((x) => x.done) && n < 10_000) {
          clock.advance(10);
          n++;
          // The link 0 -> 2 (a recursive-doubling partner; unused by the ring) moves one tick in three.
          net.tick((from, to) => !(from === 0 && to === 2) || n % 3 === 0);
          await flush();
        }
        expect(st.every((x) => x.done && !x.err)).toBe(true);
        for (let rank = 0; rank < size; rank++) {
          const last = runners[rank]!.last!;
          const peers = algo === 'ring' ? [(rank + 1) % size] : algo === 'rd' ? doublingPeers(rank, size) : treePeers(rank, size);
          expect(last.links.map((l) => l.peer), `${algo} rank ${rank}`).toEqual(peers);
          expect(last.links.reduce((a, l) => a + l.bytes, 0)).toBe(last.bytesSent);
          for (const l of last.links) expect(l.busyMs).toBeGreaterThan(0);
          // The union over links is at most their sum, and at least the busiest one.
          expect(last.linkMs).toBeLessThanOrEqual(last.links.reduce((a, l) => a + l.busyMs, 0) + 1e-9);
          expect(last.linkMs).toBeGreaterThanOrEqual(Math.max(...last.links.map((l) => l.busyMs)) - 1e-9);
          for (const l of last.links) {
            const t = sum[rank].get(l.peer) ?? sum[rank].set(l.peer, { bytes: 0, busyMs: 0 }).get(l.peer)!;
            t.bytes += l.bytes;
            t.busyMs += l.busyMs;
          }
        }
      }
      if (algo === 'rd') {
        const perByte = (rank: number, peer: number) => sum[rank].get(peer)!.busyMs / sum[rank].get(peer)!.bytes;
        const others = [0, 1, 2, 3].flatMap((r) => doublingPeers(r, size).filter((p) => !(r === 0 && p === 2)).map((p) => perByte(r, p)));
        // The throttled link is the slow one per byte, well clear of every other.
        expect(perByte(0, 2)).toBeGreaterThan(1.8 * Math.max(...others));
      }
    }
  });
});
