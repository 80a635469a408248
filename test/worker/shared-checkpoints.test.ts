// Checkpoints kept in shared slots: the owner writes each once, its successor keeps the slot's name.
// What is kept, which slot a write takes (never one a kept checkpoint is in), and what a replaced
// owner's slots become.
import { describe, expect, it } from 'vitest';
import { SharedCheckpointStore } from '../../src/worker/checkpoints.js';
import { memorySlots, SHARED_SLOTS, type MemorySlot, type SharedSlots } from '../../src/runtime/shared-slots.js';
import type { Elements } from '../../src/collective/dtypes.js';

const CARDS = 3;
const COUNT = 8;
const OWNER = 16;

const statesAt = (step: number) => Array.from({ length: CARDS }, (_, c) => Float64Array.from({ length: COUNT }, (_, i) => step * 1000 + c * 100 + i));

type Map_ = Map<string, MemorySlot>;

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

// The live states in a slot of their own (zero-copy): a checkpoint marks that slot complete, and the
// next change moves the states into a free slot, writing every element from the kept ones.
describe('SharedCheckpointStore, live states mapped', () => {
  /** The emulated step's change: every element + 1, from `from` into `to` (which may be `from`). */
  const step = (from: Elements[], to: Elements[]) => to.forEach((t, j) => t.forEach((_, i) => (t[i] = from[j]![i]! + 1)));

  it('checkpoints without a write, moves the states out of a kept slot before they change, and restores any kept step', () => {
    const { s, map, writes } = slots();
    const store = new SharedCheckpointStore(s, 'f64', CARDS, COUNT, OWNER, 'w1-100');
    let live = store.mapStates()!;
    expect(store.statesMapped).toBe(true);
    const first = map.get('16.w1-100.0')!;
    expect(first.complete).toBe(false);
    live.forEach((x, j) => x.set(statesAt(0)[j]!));
    const used = new Set<string>();
    for (let k = 0; k < 10; k++) {
      const name = store.save(k, live);
      used.add(name);
      // Saved again with no change between (an epoch's first step): the same slot.
      expect(store.save(k, live)).toBe(name);
      const before = live;
      live = store.moveLive((to) => {
        expect(to).not.toBe(before);
        step(before, to);
      });
      // Changed in place until the next checkpoint.
      expect(store.moveLive((to) => expect(to).toBe(live))).toBe(live);
    }
    expect(writes).toEqual([]);
    expect(used.size).toBe(SHARED_SLOTS);
    expect(store.ownSteps()).toEqual([8, 9]);
    const out = statesAt(0).map((x) => x.fill(-1));
    expect(store.restore(8, out)).toBe(true);
    expect(out).toEqual(statesAt(0).map((x) => x.map((v) => v + 8)));
    expect(store.restore(9, out)).toBe(true);
    expect(out).toEqual(statesAt(0).map((x) => x.map((v) => v + 9)));
    // The live states (step 10) are in the third slot, read as nothing until kept.
    expect(live[0]![0]).toBe(statesAt(0)[0]![0]! + 10);
    expect([...map.values()].filter((e) => !e.complete)).toHaveLength(1);
  });

  it('a rollback restores into the live slot, never into a kept one, and re-keeps the step there', () => {
    const { s, map } = slots();
    const store = new SharedCheckpointStore(s, 'f64', CARDS, COUNT, OWNER, 'w1-100');
    let live = store.mapStates()!;
    live.forEach((x, j) => x.set(statesAt(5)[j]!));
    const five = store.save(5, live);
    live = store.moveLive((to) => step(live, to));
    const six = store.save(6, live);
    // The restore's write: the states just kept (6) move to the third slot first.
    live = store.moveLive((to) => expect(store.restore(5, to)).toBe(true));
    expect(live[2]).toEqual(statesAt(5)[2]);
    expect(map.get(six)!.complete && map.get(five)!.complete).toBe(true);
    const again = store.save(5, live);
    expect([five, six]).not.toContain(again);
    expect(store.ownSteps()).toEqual([5, 6]);
    const out = statesAt(0);
    expect(store.restore(6, out)).toBe(true);
    expect(out).toEqual(statesAt(5).map((x) => x.map((v) => v + 1)));
    // Kept states that are saved as another step are a bug, not a checkpoint.
    expect(() => store.save(7, live)).toThrow(/kept as checkpoint 5 saved as 7/);
  });

  it('without slots that map, the caller keeps its states and save() copies them', () => {
    const { s, writes } = slots();
    const copying = new SharedCheckpointStore({ ...s, map: () => null }, 'f64', CARDS, COUNT, OWNER, 'w1-100');
    expect(copying.mapStates()).toBeNull();
    expect(copying.statesMapped).toBe(false);
    copying.save(0, statesAt(0));
    expect(writes).toHaveLength(1);
    expect(() => copying.moveLive(() => {})).toThrow(/not mapped/);
  });
});
