// Locating a stuck op from each rank's last progress: the ring's per-link chunk counts, and
// recursive doubling's who-waits-for-whom.
import { describe, expect, it } from 'vitest';
import { locateStuck, type RankProgress } from '../../src/coordinator/detector.js';
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
});
