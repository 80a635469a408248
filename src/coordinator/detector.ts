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
export function locateStuck(table: readonly RankProgress[], deadMs: number): Location | null {
  if (table.length === 0) return null;
  const silent = [...table].filter((p) => p.silentMs >= deadMs).sort((a, b) => b.silentMs - a.silentMs);
  if (silent.length > 0) return { kind: 'rank', rank: silent[0].rank };
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
