// The worker's in-memory checkpoints: what is kept, what memory it takes, and copies lent to the
// sender without a copy.
import { describe, expect, it } from 'vitest';
import { CheckpointStore } from '../../src/worker/checkpoints.js';

const CARDS = 3;
const COUNT = 8;

const statesAt = (step: number) => Array.from({ length: CARDS }, (_, c) => Float64Array.from({ length: COUNT }, (_, i) => step * 1000 + c * 100 + i));

/** The buffers behind own checkpoint `step` (by lending and returning it at once). */
function buffersOf(store: CheckpointStore, step: number): ArrayBufferLike[] {
  const { pieces, returned } = store.lend(step, COUNT);
  returned();
  return pieces.map((p) => p.data.buffer);
}

describe('CheckpointStore', () => {
  it('keeps the two newest own checkpoints in two sets of buffers, however many steps are saved', () => {
    const store = new CheckpointStore('f64', CARDS, COUNT);
    const seen = new Set<ArrayBufferLike>();
    for (let step = 0; step < 20; step++) {
      store.save(step, statesAt(step));
      for (const b of buffersOf(store, step)) seen.add(b);
    }
    expect(store.ownSteps()).toEqual([18, 19]);
    expect(seen.size).toBe(2 * CARDS);
    const out = statesAt(0);
    expect(store.restore(18, out)).toBe(true);
    expect(out).toEqual(statesAt(18));
    expect(store.restore(17, out)).toBe(false);
  });

  it('does not reuse a lent checkpoint until it is returned: its pieces still read what was saved', () => {
    const store = new CheckpointStore('f64', CARDS, COUNT);
    store.save(0, statesAt(0));
    const loan = store.lend(0, 4);
    expect(loan.pieces.map((p) => [p.card, p.offset, p.data.length])).toEqual([
      [0, 0, 4],
      [0, 4, 4],
      [1, 0, 4],
      [1, 4, 4],
      [2, 0, 4],
      [2, 4, 4],
    ]);
    for (let step = 1; step < 6; step++) store.save(step, statesAt(step));
    // Step 0 was pushed out long ago, but its frames are not written yet: they still hold step 0.
    expect(loan.pieces.map((p) => Array.from(p.data))).toEqual(statesAt(0).flatMap((s) => [Array.from(s.subarray(0, 4)), Array.from(s.subarray(4))]));
    loan.returned();
    loan.returned(); // twice is once
    // Returned, and pushed out: nothing holds it; the store goes on in two sets.
    expect(store.loans).toBe(0);
    const seen = new Set<ArrayBufferLike>();
    for (let step = 6; step < 12; step++) {
      store.save(step, statesAt(step));
      for (const b of buffersOf(store, step)) seen.add(b);
    }
    expect(seen.has(loan.pieces[0].data.buffer)).toBe(false);
    expect(seen.size).toBe(2 * CARDS);
  });

  it('forgets loans that are never returned past a few, so memory stays bounded', () => {
    const store = new CheckpointStore('f64', CARDS, COUNT);
    const loans = [];
    for (let step = 0; step < 50; step++) {
      store.save(step, statesAt(step));
      loans.push(store.lend(step, COUNT));
      expect(store.loans).toBeLessThanOrEqual(4);
    }
    // A forgotten loan returned late changes nothing; the newest ones still count.
    loans[0].returned();
    expect(store.loans).toBe(4);
    for (const l of loans.slice(-4)) l.returned();
    expect(store.loans).toBe(0);
    expect(store.ownSteps()).toEqual([48, 49]);
  });

  it("assembles a predecessor's copy from pieces, keeps the two newest complete ones, and reuses their buffers", () => {
    const store = new CheckpointStore('f64', CARDS, COUNT);
    const owner = 6;
    const seen = new Set<ArrayBufferLike>();
    for (let step = 0; step < 10; step++) {
      const src = statesAt(step);
      let done = false;
      src.forEach((s, card) => {
        done = store.receive(owner, step, { card, offset: 0, data: s.subarray(0, 5) }) || done;
        done = store.receive(owner, step, { card, offset: 5, data: s.subarray(5) }) || done;
      });
      expect(done).toBe(true);
      for (const b of store.heldCopy(owner, step)!.map((s) => s.buffer)) seen.add(b);
    }
    expect(store.heldSteps(owner)).toEqual([8, 9]);
    expect(store.heldCopy(owner, 9)).toEqual(statesAt(9));
    expect(seen.size).toBe(2 * CARDS);
    const out = statesAt(0);
    expect(store.restore(8, out, owner)).toBe(true);
    expect(out).toEqual(statesAt(8));
    expect(() => store.receive(owner, 10, { card: CARDS, offset: 0, data: new Float64Array(1) })).toThrow(RangeError);
  });
});
