// Recursive-doubling all-reduce against the naive reference: every ring size 1..33, every dtype and
// op, in and out of place, chunked, under random per-link-FIFO delivery orders.
import { describe, expect, it } from 'vitest';
import { DTYPES, REDUCE_OPS } from '../../src/collective/dtypes.js';
import { createCollective } from '../../src/collective/index.js';
import { doublingPeers, doublingPlan } from '../../src/collective/recursive-doubling.js';
import { seededRandom } from '../../src/collective/random.js';
import { runCase } from './schedule-harness.js';

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
        runCase('rd', doublingPeers, size, count, chunkElems, dtype, op, rnd() < 0.5, size * 1000 + i++);
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
