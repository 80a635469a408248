// Binomial-tree all-reduce: its plan (parents and children agree, 2(p-1) frames plus the extras'),
// and its result against the closed form for every ring size 1..33, every dtype and op, in and out
// of place, chunked, under random per-link-FIFO delivery orders.
import { describe, expect, it } from 'vitest';
import { DTYPES, REDUCE_OPS } from '../../src/collective/dtypes.js';
import { createCollective } from '../../src/collective/index.js';
import { doublingPeers } from '../../src/collective/recursive-doubling.js';
import { seededRandom } from '../../src/collective/random.js';
import { treePeers, treePlan } from '../../src/collective/tree.js';
import { drain, runCase } from './schedule-harness.js';

describe('binomial tree plan', () => {
  it('has one root, and every other doubling rank sends up to a parent that counts it among its children', () => {
    for (let n = 1; n <= 70; n++) {
      let roots = 0;
      for (let r = 0; r < n; r++) {
        const p = treePlan(r, n);
        if (p.role === 'extra') {
          expect(p.parent).toBe(-1);
          continue;
        }
        if (p.parent < 0) {
          roots++;
          expect(p.up).toBe(p.rounds);
          continue;
        }
        const parent = treePlan(p.parent, n);
        // r is the parent's child at step up + 1: the parent's partner there is r.
        expect(parent.up).toBeGreaterThan(p.up);
        expect(parent.partners[p.up]).toBe(r);
      }
      expect(roots, `n=${n}`).toBe(1);
    }
  });

  it('uses only links recursive doubling opens, about log2(n) of them at the root and one at a leaf', () => {
    for (const n of [2, 3, 8, 13, 64, 200]) for (let r = 0; r < n; r++) for (const q of treePeers(r, n)) expect(doublingPeers(r, n)).toContain(q);
    expect(treePeers(0, 256)).toEqual([1, 2, 4, 8, 16, 32, 64, 128]);
    expect(treePeers(255, 256)).toEqual([254]);
  });

  it('sends 2(p-1) frames a chunk among the p doubling ranks, plus two per extra (p log2 p under recursive doubling)', () => {
    for (const [n, frames] of [[8, 14], [5, 6 + 2], [16, 30], [1, 0]] as const) {
      const cs = Array.from({ length: n }, (_, rank) => createCollective('allreduce', { rank, size: n, dtype: 'f32', op: 'sum', buffer: new Float32Array(4), chunkElems: 4, algo: 'tree' }));
      expect(drain(cs, 1).sent, `n=${n}`).toBe(frames);
    }
  });
});

describe('binomial tree all-reduce against the closed form', () => {
  it.each([...Array.from({ length: 18 }, (_, i) => i + 1), 24, 31, 32, 33])('%i ranks', (size) => {
    const rnd = seededRandom(size * 103);
    let i = 0;
    for (const dtype of DTYPES)
      for (const op of REDUCE_OPS) {
        const count = [0, 1, 5, 64, 257][i % 5];
        const chunkElems = [1, 3, 16, 1000][(i >> 1) % 4];
        runCase('tree', treePeers, size, count, chunkElems, dtype, op, rnd() < 0.5, size * 1000 + i++);
      }
  });

  it('rejects a chunk from the wrong rank, of the wrong phase, or received twice', () => {
    // On 4 ranks: rank 0 (the root) takes rank 1's partial at step 1 and rank 2's at step 2; rank 3 sends to 2.
    const mk = (rank: number) => createCollective('allreduce', { rank, size: 4, dtype: 'f64', op: 'sum', buffer: new Float64Array(8), chunkElems: 8, algo: 'tree' });
    const c = mk(0);
    c.start();
    const data = new Float64Array(8);
    expect(() => c.onChunk({ from: 2, phase: 'reduce-scatter', step: 1, chunk: 0, offset: 0, data })).toThrow(/expected rank 1/);
    expect(() => c.onChunk({ from: 1, phase: 'all-gather', step: 1, chunk: 0, offset: 0, data })).toThrow(/unexpected/);
    c.onChunk({ from: 2, phase: 'reduce-scatter', step: 2, chunk: 0, offset: 0, data }); // early: held
    expect(() => c.onChunk({ from: 2, phase: 'reduce-scatter', step: 2, chunk: 0, offset: 0, data })).toThrow(/twice/);
    expect(c.progress()).toMatchObject({ waitingFor: 1, phase: 'reduce-scatter', step: 1 });
    // Both partials in: the root sends the result down, largest subtree first.
    expect(c.onChunk({ from: 1, phase: 'reduce-scatter', step: 1, chunk: 0, offset: 0, data }).map((s) => [s.to, s.phase, s.step])).toEqual([
      [2, 'all-gather', 2],
      [1, 'all-gather', 1],
    ]);
    expect(c.done).toBe(true);
    const leaf = mk(3);
    expect(leaf.start().map((s) => [s.to, s.phase, s.step])).toEqual([[2, 'reduce-scatter', 1]]);
    expect(leaf.progress()).toMatchObject({ waitingFor: 2, phase: 'all-gather' });
    expect(() => leaf.onChunk({ from: 2, phase: 'all-gather', step: 2, chunk: 0, offset: 0, data })).toThrow(/unexpected/);
    expect(leaf.onChunk({ from: 2, phase: 'all-gather', step: 1, chunk: 0, offset: 0, data })).toEqual([]);
    expect(leaf.done).toBe(true);
  });
});
