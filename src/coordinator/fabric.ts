// The physical fabric as the coordinator sees it, pure: a link is a directed pair of workers named
// by their launch identities (home ranks), whatever algorithm runs over it; which of those links an
// epoch's algorithm (and the checkpoint copies) actually uses.
import { doublingPeers } from '../collective/recursive-doubling.js';
import { successor } from '../collective/ring.js';
import { treePeers } from '../collective/tree.js';
import type { AllreduceAlgo } from '../collective/types.js';

/** What the notes call each algorithm. */
export const ALGO_NAMES: Record<AllreduceAlgo, string> = { ring: 'the ring', rd: 'recursive doubling', tree: 'the binomial tree' };

/** The ranks `rank` sends to in an epoch of `size` ranks running `algo`, checkpoint copies included. */
export function peersOf(algo: AllreduceAlgo, rank: number, size: number, checkpoints: boolean): number[] {
  if (size < 2) return [];
  const out = new Set<number>(algo === 'rd' ? doublingPeers(rank, size) : algo === 'tree' ? treePeers(rank, size) : [successor(rank, size)]);
  // A rank's checkpoint copy goes to its ring successor under every algorithm.
  if (checkpoints) out.add(successor(rank, size));
  out.delete(rank);
  return [...out].sort((a, b) => a - b);
}

/** Why the directed link from rank `from` to rank `to` carries nothing in this epoch, or null when it is used. */
export function unusedLinkNote(algo: AllreduceAlgo, from: number, to: number, size: number, checkpoints: boolean): string | null {
  const peers = peersOf(algo, from, size, checkpoints);
  if (peers.includes(to)) return null;
  const name = ALGO_NAMES[algo];
  return `its link is not used: under ${name} on ${size} workers the sender talks only to ${peers.length ? peers.join(', ') : 'no one'}${checkpoints ? ' (checkpoint copies included)' : ''}`;
}
