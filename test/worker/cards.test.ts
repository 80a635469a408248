// A card group's update written out of place (into a mapped slot's states, as zero-copy checkpoints
// do) gives the bits of the update in place, whichever kernel runs it.
import { describe, expect, it } from 'vitest';
import { allocElements, type DType } from '../../src/collective/dtypes.js';
import { CardGroup } from '../../src/worker/cards.js';

const group = (dtype: DType) => new CardGroup({ firstCard: 8, cards: 3, totalCards: 24, count: 1027, dtype, op: 'sum', seed: 11 });

describe('CardGroup', () => {
  for (const dtype of ['f32', 'f64', 'i32'] as const) {
    it(`${dtype}: folding into other buffers gives the states folding in place does, and they are the states after`, () => {
      const inPlace = group(dtype);
      const moved = group(dtype);
      for (let step = 0; step < 3; step++) {
        for (const g of [inPlace, moved]) g.computeGradients(step);
        inPlace.foldOwnGradient();
        const into = moved.states.map((s) => allocElements(dtype, s.length).fill(7));
        moved.foldOwnGradient(into);
        expect(moved.states).toBe(into);
        for (const g of [inPlace, moved]) {
          g.reduceLocal();
          g.broadcastLocal();
          g.applyResult();
        }
        expect(moved.stateDigests()).toEqual(inPlace.stateDigests());
      }
      expect(inPlace.states[0]!.some((v) => v !== 0)).toBe(true);
    });
  }
});
