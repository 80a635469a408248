// Locating a stuck op from each rank's last progress: the ring's per-link chunk counts, and
// recursive doubling's and the tree's who-waits-for-whom.
import { describe, expect, it } from 'vitest';
import { locateStuck, type RankProgress } from '../../src/coordinator/detector.js';
import { createCollective } from '../../src/collective/index.js';
import { doublingPlan } from '../../src/collective/recursive-doubling.js';

const row = (rank: number, o: Partial<RankProgress> = {}): RankProgress => ({ rank, opSeq: 4, chunksReceived: 6, chunksExpected: 6, chunksSent: 6, silentMs: 0, ...o });

describe('locateStuck', () => {
  it('names a silent rank first', () => {
    expect(locateStuck([row(0), row(1, { silentMs: 5000 }), row(2)], 1000)).toEqual({ kind: 'rank', rank: 1 });
  });

  it('on a ring: the link whose sender sent more than its receiver got', () => {
    const t = [row(0, { chunksReceived: 2 }), row(1, { chunksSent: 4 }), row(2, { chunksReceived: 2, chunksSent: 2 }), row(3, { chunksReceived: 2, chunksSent: 2 })];
    expect(locateStuck(t, 1000)).toEqual({ kind: 'link', from: 1, to: 2 });
  });

  it('under recursive doubling: the cut link, not the ranks held up behind it', () => {
    // 8 ranks; the link 2 -> 3 (partners at step 1) is cut. 3 waits for 2 at step 1; 2 got 3's
    // frames and moved on; the ranks that need 3 later (1 at step 2, 7 at step 3) wait for it.
    const n = 8;
    const stage = (r: number) => ({ 3: 0, 1: 1, 7: 2 })[r as 1 | 3 | 7];
    const t = Array.from({ length: n }, (_, r) => {
      const s = stage(r);
      return s === undefined ? row(r, { step: 4, waitingFor: null }) : row(r, { step: s + 1, waitingFor: doublingPlan(r, n).partners[s] });
    });
    expect(doublingPlan(3, n).partners[0]).toBe(2);
    expect(locateStuck(t, 1000)).toEqual({ kind: 'link', from: 2, to: 3 });
  });

  it('under recursive doubling: two ranks waiting for each other point at no link between them', () => {
    const t = [row(0, { step: 1, waitingFor: 1 }), row(1, { step: 1, waitingFor: 0 }), row(2, { step: 2, waitingFor: 0 }), row(3, { step: 2, waitingFor: 1 })];
    expect(locateStuck(t, 1000)).toEqual({ kind: 'link', from: 0, to: 2 });
    const mutual = [row(0, { step: 1, waitingFor: 1 }), row(1, { step: 1, waitingFor: 0 })];
    expect(locateStuck(mutual, 1000)).toMatchObject({ kind: 'rank' });
  });

  it('under the tree: the cut link from a child whose partial never came, though child and parent wait for each other', () => {
    // 8 ranks, the link 5 -> 4 cut: every collective driven as far as it goes without that frame.
    const n = 8;
    const cs = Array.from({ length: n }, (_, rank) => createCollective('allreduce', { rank, size: n, dtype: 'f32', op: 'sum', buffer: new Float32Array(2), chunkElems: 2, algo: 'tree' }));
    const q = cs.flatMap((c, from) => c.start().map((s) => ({ from, s })));
    while (q.length) {
      const { from, s } = q.shift()!;
      if (from === 5 && s.to === 4) continue;
      for (const o of cs[s.to].onChunk({ from, phase: s.phase, step: s.step, chunk: s.chunk, offset: s.offset, data: s.data.slice() })) q.push({ from: s.to, s: o });
    }
    const t = cs.map((c, r) => {
      const p = c.progress();
      return row(r, { step: p.step, waitingFor: p.waitingFor, chunksReceived: p.chunksReceived, chunksExpected: p.chunksExpected });
    });
    // 4 waits for 5's partial; 5, having sent it, waits for the result from 4; 0 waits for 4's.
    expect(t[4].waitingFor).toBe(5);
    expect(t[5].waitingFor).toBe(4);
    expect(t[0].waitingFor).toBe(4);
    expect(locateStuck(t, 1000)).toEqual({ kind: 'link', from: 5, to: 4 });
  });
});
