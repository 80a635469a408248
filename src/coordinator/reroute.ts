// Re-forming the ring around slow links (--on-straggler reroute). Pure.
//
// A ring of n workers uses n directed links, out of the n(n-1) a full mesh has: a slow link can be
// left out by changing who follows whom. The new order changes as few links as it can: for a bad
// link a -> b, b swaps places with a later worker c (a b x … c y → a c x … b y), which changes the
// four links around b and c and leaves the rest of the ring, and its warm connections, alone.

/** Directed links, as [from, to] pairs of the caller's ids. */
export type Link = readonly [number, number];

function badLinks(order: readonly number[], avoid: ReadonlySet<string>): number[] {
  const n = order.length;
  const bad: number[] = [];
  for (let i = 0; i < n; i++) if (avoid.has(key(order[i], order[(i + 1) % n]))) bad.push(i);
  return bad;
}

const key = (from: number, to: number) => `${from}>${to}`;

/**
 * A cyclic order of the ids in `order` in which no id is followed by one it must not send to
 * (`avoid`), found by a bounded search of swaps from `order` itself; null when there is none (two
 * workers with a slow link between them, say, or every way out of a worker avoided).
 */
export function rerouteOrder(order: readonly number[], avoid: readonly Link[]): number[] | null {
  const n = order.length;
  const set = new Set(avoid.map(([a, b]) => key(a, b)));
  let best = [...order];
  let bestBad = badLinks(best, set);
  if (bestBad.length === 0) return best;
  if (n < 3) return null; // two workers have one link each way: nothing to choose
  // Greedy: each round, the swap of the worker after the first bad link that leaves the fewest bad
  // links (ties: the nearest). Rounds are bounded, so this ends; it is not an exhaustive search.
  for (let round = 0; round < 2 * n && bestBad.length > 0; round++) {
    const i = bestBad[0];
    const b = (i + 1) % n;
    let pick: number[] | null = null;
    let pickBad = bestBad;
    for (let d = 1; d < n; d++) {
      const c = (b + d) % n;
      if (c === i) continue;
      const cand = [...best];
      [cand[b], cand[c]] = [cand[c], cand[b]];
      const bad = badLinks(cand, set);
      if (bad.length < pickBad.length) {
        pick = cand;
        pickBad = bad;
        if (bad.length === 0) break;
      }
    }
    if (!pick) return null;
    best = pick;
    bestBad = pickBad;
  }
  return bestBad.length === 0 ? best : null;
}

/** The links of a cyclic order that are not links of another: what a reroute changed. */
export function changedLinks(before: readonly number[], after: readonly number[]): Link[] {
  const n = before.length;
  const old = new Set(before.map((x, i) => key(x, before[(i + 1) % n])));
  return after.map((x, i) => [x, after[(i + 1) % after.length]] as const).filter(([a, b]) => !old.has(key(a, b)));
}
