// Recursive-doubling all-reduce against the naive reference: every ring size 1..33, every dtype and
// op, in and out of place, chunked, under random per-link-FIFO delivery orders.
import { describe, expect, it } from 'vitest';
import { allocElements, bytesOf, DTYPES, REDUCE_OPS, type DType, type Elements, type ReduceOp } from '../../src/collective/dtypes.js';
import { createCollective } from '../../src/collective/index.js';
import { fillExpected, fillGradient, type InputSpec } from '../../src/collective/inputs.js';
import { doublingPeers, doublingPlan } from '../../src/collective/recursive-doubling.js';
import type { ChunkSend, Collective } from '../../src/collective/types.js';
import { seededRandom } from '../../src/collective/random.js';

interface InFlight {
  from: number;
  send: ChunkSend;
  wire: Elements;
}

/** Deliver until nothing is in flight, picking a random non-empty link each time (FIFO per link). */
function drain(cs: Collective[], seed: number): { delivered: number; sent: number; peersUsed: Set<string> } {
  const size = cs.length;
  const links = new Map<number, InFlight[]>();
  /** Links with something in flight. */
  const busy: number[] = [];
  const peersUsed = new Set<string>();
  let sent = 0;
  const post = (from: number, out: ChunkSend[]) => {
    for (const send of out) {
      sent++;
      peersUsed.add(`${from}>${send.to}`);
      const k = from * size + send.to;
      const q = links.get(k) ?? links.set(k, []).get(k)!;
      if (q.length === 0) busy.push(k);
      q.push({ from, send, wire: send.data.slice() });
    }
  };
  cs.forEach((c, r) => post(r, c.start()));
  const rnd = seededRandom(seed);
  let delivered = 0;
  for (;;) {
    if (!busy.length) break;
    const at = Math.floor(rnd() * busy.length);
    const q = links.get(busy[at])!;
    const f = q.shift()!;
    if (q.length === 0) busy[at] = busy[busy.length - 1], busy.pop();
    // What was handed out is what arrives: the sender did not change it in flight.
    // (Plain checks: expect() per delivery is most of the time here.)
    if (Buffer.compare(bytesOf(f.send.data), bytesOf(f.wire)) !== 0) throw new Error(`rank ${f.from} changed a chunk in flight`);
    const to = f.send.to;
    if (cs[to].done) throw new Error(`rank ${to} got a chunk after it was done`);
    post(to, cs[to].onChunk({ from: f.from, phase: f.send.phase, step: f.send.step, chunk: f.send.chunk, offset: f.send.offset, data: f.wire }));
    delivered++;
  }
  return { delivered, sent, peersUsed };
}

function runCase(size: number, count: number, chunkElems: number, dtype: DType, op: ReduceOp, inPlace: boolean, seed: number): void {
  const spec: InputSpec = { dtype, op, seed, step: 1, totalCards: size };
  const inputs = Array.from({ length: size }, (_, r) => {
    const g = allocElements(dtype, count);
    fillGradient(g, spec, r);
    return g;
  });
  const expected = allocElements(dtype, count);
  fillExpected(expected, spec);
  const buffers = inputs.map((x) => (inPlace ? x.slice() : allocElements(dtype, count).fill(7)));
  const cs = buffers.map((buffer, rank) =>
    createCollective('allreduce', { rank, size, dtype, op, buffer, chunkElems, algo: 'rd', ...(inPlace ? {} : { input: inputs[rank].slice() }) }),
  );
  const { delivered, sent, peersUsed } = drain(cs, seed);
  const what = `size ${size} count ${count} chunk ${chunkElems} ${dtype} ${op} ${inPlace ? 'in' : 'out of'} place`;
  expect(delivered, what).toBe(sent);
  cs.forEach((c, r) => {
    expect(c.done, `${what}: rank ${r} done`).toBe(true);
    const p = c.progress();
    expect(p.phase).toBe('done');
    expect(p.chunksReceived).toBe(p.chunksExpected);
    expect(Buffer.compare(bytesOf(buffers[r]), bytesOf(expected)), `${what}: rank ${r}`).toBe(0);
  });
  // Only the links the plan names are used (the transport opens just those).
  for (const l of peersUsed) {
    const [a, b] = l.split('>').map(Number);
    expect(doublingPeers(a, size), `${what}: ${l}`).toContain(b);
  }
}

describe('recursive doubling plan', () => {
  it('pairs ranks so that partners agree and the steps are log2 of the power of two', () => {
    for (let n = 1; n <= 70; n++) {
      const p = 2 ** Math.floor(Math.log2(n));
      let extras = 0;
      for (let r = 0; r < n; r++) {
        const plan = doublingPlan(r, n);
        expect(plan.rounds).toBe(Math.log2(p));
        if (plan.role === 'extra') {
          extras++;
          expect(doublingPlan(plan.buddy, n)).toMatchObject({ role: 'host', buddy: r });
        }
        plan.partners.forEach((q, k) => expect(doublingPlan(q, n).partners[k]).toBe(r));
      }
      expect(extras).toBe(n - p);
    }
  });

  it('has frames of both phases on every rank from 4 ranks on (faults armed at either phase strike everywhere)', () => {
    for (const n of [4, 5, 8, 13, 16]) {
      const cs = Array.from({ length: n }, (_, rank) => createCollective('allreduce', { rank, size: n, dtype: 'f32', op: 'sum', buffer: new Float32Array(4), chunkElems: 4, algo: 'rd' }));
      const sent = cs.map((c) => c.start());
      // Every rank both sends and (so its partner receives) a frame of each phase over the op.
      const phases = Array.from({ length: n }, () => new Set<string>());
      const q = sent.flatMap((out, from) => out.map((s) => ({ from, s })));
      while (q.length) {
        const { from, s } = q.shift()!;
        phases[s.to].add(s.phase);
        for (const o of cs[s.to].onChunk({ from, phase: s.phase, step: s.step, chunk: s.chunk, offset: s.offset, data: s.data.slice() })) q.push({ from: s.to, s: o });
      }
      // (An extra rank only gets the result back, as all-gather step 0: a reduce-scatter fault strikes it at the op's end.)
      phases.forEach((p, r) => expect([...p].sort(), `n=${n} rank ${r}`).toEqual(doublingPlan(r, n).role === 'extra' ? ['all-gather'] : ['all-gather', 'reduce-scatter']));
    }
  });

  it('needs about log2(n) peers per rank, not n', () => {
    expect(doublingPeers(0, 256)).toEqual([1, 2, 4, 8, 16, 32, 64, 128]);
    expect(Math.max(...Array.from({ length: 200 }, (_, r) => doublingPeers(r, 200).length))).toBeLessThanOrEqual(8);
  });
});

describe('recursive doubling all-reduce against the closed form', () => {
  it.each([...Array.from({ length: 18 }, (_, i) => i + 1), 24, 31, 32, 33])('%i ranks', (size) => {
    const rnd = seededRandom(size * 101);
    let i = 0;
    for (const dtype of DTYPES)
      for (const op of REDUCE_OPS) {
        const count = [0, 1, 5, 64, 257][i % 5];
        const chunkElems = [1, 3, 16, 1000][(i >> 1) % 4];
        runCase(size, count, chunkElems, dtype, op, rnd() < 0.5, size * 1000 + i++);
      }
  });

  it('rejects a chunk from the wrong rank, or one received twice', () => {
    const mk = (rank: number) => createCollective('allreduce', { rank, size: 4, dtype: 'f64', op: 'sum', buffer: new Float64Array(8), chunkElems: 8, algo: 'rd' });
    const c = mk(0);
    c.start();
    const data = new Float64Array(8);
    expect(() => c.onChunk({ from: 3, phase: 'reduce-scatter', step: 1, chunk: 0, offset: 0, data })).toThrow(/expected rank 1/);
    // On 4 ranks the second of the 2 doubling steps goes as 'all-gather'.
    expect(() => c.onChunk({ from: 2, phase: 'reduce-scatter', step: 2, chunk: 0, offset: 0, data })).toThrow(/unexpected/);
    c.onChunk({ from: 2, phase: 'all-gather', step: 2, chunk: 0, offset: 0, data }); // early: held
    expect(() => c.onChunk({ from: 2, phase: 'all-gather', step: 2, chunk: 0, offset: 0, data })).toThrow(/twice/);
    expect(() => c.onChunk({ from: 1, phase: 'all-gather', step: 0, chunk: 0, offset: 0, data })).toThrow(/unexpected/);
  });
});
