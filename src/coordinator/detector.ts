// Locating the fault from what every rank reported last: which rank went silent, or on which
// directed link frames went in but did not come out. Pure: fed with progress tables.
import { successor } from '../collective/ring.js';

export interface RankProgress {
  rank: number;
  /** Op the rank is in (null: between ops). */
  opSeq: number | null;
  chunksReceived: number;
  chunksExpected: number;
  chunksSent: number;
  /** Milliseconds since this rank was last heard from. */
  silentMs: number;
  /** Step of the op the rank is at (the lowest not fully received). */
  step?: number;
  /** Where the schedule is not a ring (recursive doubling): whose frames the rank waits for next (null: none). */
  waitingFor?: number | null;
}

export type Location = { kind: 'rank'; rank: number } | { kind: 'link'; from: number; to: number };

export function describeLocation(l: Location | null): string {
  if (!l) return 'unknown';
  return l.kind === 'rank' ? `rank ${l.rank}` : `link ${l.from}->${l.to}`;
}

/**
 * The stuck rank or link. A rank silent for `deadMs` is the culprit. Otherwise, on a ring where
 * rank i sends only to i+1, in the op where ranks stopped: a link where the sender sent more
 * chunks than the receiver got lost frames (cut, or dropped as corrupt); failing that, the rank
 * that received least relative to what it expects is the one the others wait on.
 */
/**
 * Without a ring (recursive doubling, the tree), per-link chunk counts are not kept; who waits for
 * whom is. A rank p waiting for q while q does not wait for p at p's step or before (q has sent,
 * and moved on or finished: in the tree a child that sent its partial up waits for the result
 * from the parent that waits for that partial) points at the link q -> p; the frames it lost hold
 * up the ranks that wait for p later, so of those links the one at the earliest step is where it
 * started. Failing that, the rank most waited for.
 */
function locateByWaits(table: readonly RankProgress[]): Location | null {
  const byRank = new Map(table.map((p) => [p.rank, p]));
  const op = Math.min(...table.filter((p) => p.opSeq !== null && p.waitingFor != null).map((p) => p.opSeq!));
  let best: { from: number; to: number; step: number } | null = null;
  const waitedFor = new Map<number, number>();
  for (const p of table) {
    if (p.opSeq !== op || p.waitingFor == null) continue;
    waitedFor.set(p.waitingFor, (waitedFor.get(p.waitingFor) ?? 0) + 1);
    const q = byRank.get(p.waitingFor);
    if (q && q.opSeq === op && q.waitingFor === p.rank && (q.step ?? 0) <= (p.step ?? 0)) continue; // waiting for each other: not that link
    const step = p.step ?? 0;
    if (!best || step < best.step) best = { from: p.waitingFor, to: p.rank, step };
  }
  if (best) return { kind: 'link', from: best.from, to: best.to };
  const most = [...waitedFor.entries()].sort((a, b) => b[1] - a[1])[0];
  return most ? { kind: 'rank', rank: most[0] } : null;
}

export function locateStuck(table: readonly RankProgress[], deadMs: number): Location | null {
  if (table.length === 0) return null;
  const silent = [...table].filter((p) => p.silentMs >= deadMs).sort((a, b) => b.silentMs - a.silentMs);
  if (silent.length > 0) return { kind: 'rank', rank: silent[0].rank };
  if (table.some((p) => p.waitingFor !== undefined)) return locateByWaits(table);
  const n = table.length;
  const byRank = new Map(table.map((p) => [p.rank, p]));
  let worst: { from: number; to: number; deficit: number } | null = null;
  for (const p of table) {
    const to = successor(p.rank, n);
    const q = byRank.get(to);
    if (!q || p.opSeq === null || q.opSeq !== p.opSeq) continue;
    const deficit = p.chunksSent - q.chunksReceived;
    if (deficit > 0 && (!worst || deficit > worst.deficit)) worst = { from: p.rank, to, deficit };
  }
  if (worst) return { kind: 'link', from: worst.from, to: worst.to };
  const waiting = table
    .filter((p) => p.opSeq !== null && p.chunksExpected > 0)
    .sort((a, b) => (a.opSeq ?? 0) - (b.opSeq ?? 0) || a.chunksReceived / a.chunksExpected - b.chunksReceived / b.chunksExpected);
  return waiting.length ? { kind: 'rank', rank: waiting[0].rank } : null;
}
