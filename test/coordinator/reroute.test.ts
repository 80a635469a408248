import { describe, expect, it } from 'vitest';
import { changedLinks, rerouteOrder, type Link } from '../../src/coordinator/reroute.js';
import { seededRandom } from '../../src/collective/random.js';

const ring = (n: number) => Array.from({ length: n }, (_, i) => i);
const links = (o: readonly number[]) => o.map((x, i) => [x, o[(i + 1) % o.length]] as const);
const uses = (o: readonly number[], [a, b]: Link) => links(o).some(([x, y]) => x === a && y === b);

describe('rerouteOrder', () => {
  it('keeps an order that uses no avoided link', () => {
    expect(rerouteOrder(ring(6), [[3, 1]])).toEqual(ring(6));
  });

  it('leaves out one slow link by one swap, changing few links', () => {
    const o = rerouteOrder(ring(8), [[2, 3]])!;
    expect(o).not.toBeNull();
    expect(uses(o, [2, 3])).toBe(false);
    expect([...o].sort((a, b) => a - b)).toEqual(ring(8));
    expect(changedLinks(ring(8), o).length).toBeLessThanOrEqual(4);
  });

  it('leaves out several slow links, in both directions, and the wrap-around one', () => {
    const avoid: Link[] = [[7, 0], [0, 7], [3, 4], [4, 3], [5, 6]];
    const o = rerouteOrder(ring(8), avoid)!;
    expect(o).not.toBeNull();
    for (const l of avoid) expect(uses(o, l)).toBe(false);
  });

  it('says null when no ring avoids the links', () => {
    expect(rerouteOrder([0, 1], [[0, 1]])).toBeNull();
    // 0 may send to nobody.
    expect(rerouteOrder(ring(4), [[0, 1], [0, 2], [0, 3]])).toBeNull();
  });

  it('finds a ring for random sets of a few slow links (seeded)', () => {
    const rnd = seededRandom(7);
    for (let t = 0; t < 200; t++) {
      const n = 4 + Math.floor(rnd() * 29);
      const avoid: Link[] = [];
      for (let k = 0; k < 1 + Math.floor(rnd() * 3); k++) {
        const a = Math.floor(rnd() * n);
        avoid.push([a, (a + 1 + Math.floor(rnd() * (n - 1))) % n]);
      }
      const o = rerouteOrder(ring(n), avoid);
      expect(o, `n=${n} avoid=${JSON.stringify(avoid)}`).not.toBeNull();
      for (const l of avoid) expect(uses(o!, l)).toBe(false);
      expect(new Set(o).size).toBe(n);
    }
  });
});
