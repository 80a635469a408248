// Checkpoints kept in shared slots: the owner writes each once, its successor keeps the slot's name.
// What is kept, which slot a write takes (never one a kept checkpoint is in), and what a replaced
// owner's slots become.
import { describe, expect, it } from 'vitest';
import { SharedCheckpointStore } from '../../src/worker/checkpoints.js';
import { memorySlots, SHARED_SLOTS, type SharedSlots } from '../../src/runtime/shared-slots.js';
import type { Elements } from '../../src/collective/dtypes.js';

const CARDS = 3;
const COUNT = 8;
const OWNER = 16;

const statesAt = (step: number) => Array.from({ length: CARDS }, (_, c) => Float64Array.from({ length: COUNT }, (_, i) => step * 1000 + c * 100 + i));

type Map_ = Map<string, { owner: number; step: number; states: Elements[] }>;

/** Slots in a map, with a log of what was written and removed. */
function slots(map: Map_ = new Map()) {
  const inner = memorySlots(map);
  const writes: string[] = [];
  const removed: string[] = [];
  const s: SharedSlots = {
    ...inner,
    write: (name, owner, step, states) => (writes.push(name), inner.write(name, owner, step, states)),
    remove: (name) => (removed.push(name), inner.remove(name)),
  };
  return { s, map, writes, removed };
}

describe('SharedCheckpointStore', () => {
  it('keeps the two newest own checkpoints, writing the slots in turn', () => {
    const { s, writes } = slots();
    const store = new SharedCheckpointStore(s, 'f64', CARDS, COUNT, OWNER, 'w1-100');
    for (let step = 0; step < 10; step++) store.save(step, statesAt(step));
    expect(store.ownSteps()).toEqual([8, 9]);
    expect(new Set(writes).size).toBe(SHARED_SLOTS);
    expect(writes.slice(0, 6)).toEqual(['16.w1-100.0', '16.w1-100.1', '16.w1-100.2', '16.w1-100.0', '16.w1-100.1', '16.w1-100.2']);
    const out = statesAt(0);
    expect(store.restore(8, out)).toBe(true);
    expect(out).toEqual(statesAt(8));
    expect(store.restore(7, out)).toBe(false);
  });

  it('never writes into a slot a kept checkpoint is in, nor the one of an earlier copy of the same step', () => {
    const { s, map } = slots();
    const store = new SharedCheckpointStore(s, 'f64', CARDS, COUNT, OWNER, 'w1-100');
    store.save(5, statesAt(5));
    store.save(6, statesAt(6));
    // A rollback to 5: the copy of 5 goes to a third slot, 6 stays readable.
    const again = store.save(5, statesAt(5));
    expect(again).toBe('16.w1-100.2');
    expect(store.ownSteps()).toEqual([5, 6]);
    // Rolled back further: 3 pushes out the oldest (5), and still not 6's slot.
    const three = store.save(3, statesAt(3));
    expect(three).not.toBe('16.w1-100.1');
    expect(store.ownSteps()).toEqual([3, 6]);
    const out = statesAt(0);
    expect(store.restore(6, out)).toBe(true);
    expect(out).toEqual(statesAt(6));
    expect(store.restore(3, out)).toBe(true);
    expect(out).toEqual(statesAt(3));
    expect(map.size).toBe(SHARED_SLOTS);
  });

  it('a successor keeps the names it is told, reads them for a replacement, and forgets what a slot no longer holds', () => {
    const shared = new Map() as Map_;
    const owner = new SharedCheckpointStore(slots(shared).s, 'f64', CARDS, COUNT, OWNER, 'w1-100');
    const holder = new SharedCheckpointStore(slots(shared).s, 'f64', CARDS, COUNT, 0, 'w0-99');
    for (let step = 0; step < 4; step++) expect(holder.adopt(OWNER, step, owner.save(step, statesAt(step)))).toBe(true);
    expect(holder.heldInventory()).toEqual([{ firstCard: OWNER, steps: [2, 3] }]);
    expect(holder.heldCopy(OWNER, 3)).toEqual(statesAt(3));
    expect(holder.heldCopy(OWNER, 1)).toBeUndefined();
    // The owner writes 4 into the slot written longest ago (1's): a successor that has not heard of 4 yet still reads 2.
    owner.save(4, statesAt(4));
    expect(holder.heldCopy(OWNER, 2)).toEqual(statesAt(2));
    // 5 goes where 2 was, before the successor hears of 4 or 5: 2 now reads as nothing, 3 as itself.
    owner.save(5, statesAt(5));
    expect(holder.heldCopy(OWNER, 2)).toBeUndefined();
    expect(holder.heldCopy(OWNER, 3)).toEqual(statesAt(3));
    const out = statesAt(0);
    expect(holder.restore(2, out, OWNER)).toBe(false);
  });

  it('a slot this host cannot see is not kept, and a name that is not the owner\'s is refused', () => {
    const holder = new SharedCheckpointStore(slots().s, 'f64', CARDS, COUNT, 0, 'w0-99');
    expect(holder.adopt(OWNER, 1, '16.w1-100.0')).toBe(false);
    expect(holder.heldInventory()).toEqual([]);
    expect(() => holder.adopt(OWNER, 1, '17.w1-100.0')).toThrow(/not one of owner 16/);
    expect(() => holder.adopt(OWNER, 1, '../16.x.0')).toThrow(RangeError);
  });

  it("removes a replaced owner's slots once no kept copy names them, and never the live owner's", () => {
    const shared = new Map() as Map_;
    const log = slots(shared);
    const first = new SharedCheckpointStore(slots(shared).s, 'f64', CARDS, COUNT, OWNER, 'w1-100');
    const holder = new SharedCheckpointStore(log.s, 'f64', CARDS, COUNT, 0, 'w0-99');
    for (let step = 0; step < 5; step++) holder.adopt(OWNER, step, first.save(step, statesAt(step)));
    expect(log.removed).toEqual([]);
    // A replacement process of the same cards, restored to 4, writes its own slots.
    const second = new SharedCheckpointStore(slots(shared).s, 'f64', CARDS, COUNT, OWNER, 'w9-200');
    // Its 4 replaces the first process's 4 (whose slot goes); 3 is still kept, in the first process's slot.
    holder.adopt(OWNER, 4, second.save(4, statesAt(4)));
    expect(log.removed).toEqual(['16.w1-100.1']);
    holder.adopt(OWNER, 5, second.save(5, statesAt(5)));
    expect(log.removed).toEqual(['16.w1-100.1', '16.w1-100.0']);
    expect(holder.heldInventory()).toEqual([{ firstCard: OWNER, steps: [4, 5] }]);
    for (let step = 6; step < 12; step++) holder.adopt(OWNER, step, second.save(step, statesAt(step)));
    expect(log.removed.filter((n) => n.includes('w9-200'))).toEqual([]);
  });

  it('refuses a writer id a slot name cannot carry', () => {
    expect(() => new SharedCheckpointStore(slots().s, 'f64', CARDS, COUNT, OWNER, 'a.b')).toThrow(RangeError);
  });
});
