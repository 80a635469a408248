// Ring assignment: who is rank r, who are its neighbours, which cards it holds. Pure.
import { doublingPeers } from '../collective/recursive-doubling.js';
import { predecessor, successor } from '../collective/ring.js';
import type { AllreduceAlgo } from '../collective/types.js';
import type { CoordinatorMessage, JobSpec } from '../protocol/control.js';

export interface Member {
  workerId: string;
  dataUrl: string;
  spawned: boolean;
  /** Arrival order, for workers that joined by themselves. */
  arrival: number;
  /** The rank its launcher gave it (checked unique and in range when it joined), if any. */
  launcherRank?: number | null;
}

export interface RankAssignment {
  rank: number;
  member: Member;
  firstCard: number;
  prev: { rank: number; dataUrl: string };
  next: { rank: number; dataUrl: string };
}

/**
 * Workers a launcher ranked in their ranks; the others fill the ranks left: spawned workers first,
 * in the order they were spawned (w0, w1, …), then joiners by arrival.
 */
export function assignRing(members: readonly Member[], cardsPerWorker: number): RankAssignment[] {
  const spawnIndex = (m: Member) => Number(m.workerId.replace(/^\D+/, ''));
  const rest = members.filter((m) => m.launcherRank == null).sort((a, b) => {
    if (a.spawned !== b.spawned) return a.spawned ? -1 : 1;
    return a.spawned ? spawnIndex(a) - spawnIndex(b) : a.arrival - b.arrival;
  });
  const n = members.length;
  const ordered: Member[] = new Array(n);
  for (const m of members) if (m.launcherRank != null) ordered[m.launcherRank] = m;
  for (let r = 0, i = 0; r < n; r++) if (!ordered[r]) ordered[r] = rest[i++];
  return ordered.map((member, rank) => ({
    rank,
    member,
    firstCard: rank * cardsPerWorker,
    prev: { rank: predecessor(rank, n), dataUrl: ordered[predecessor(rank, n)].dataUrl },
    next: { rank: successor(rank, n), dataUrl: ordered[successor(rank, n)].dataUrl },
  }));
}

type Assign = Extract<CoordinatorMessage, { type: 'assign' }>;

/**
 * The 'assign' of epoch `epoch` for the rank at `rank` of `ring` (members by rank): its neighbours,
 * and with `doublingLinks` its recursive-doubling partners (about log2 n each, so the coordinator's
 * work stays n log n per epoch); what it restores and is armed with comes in `rest`.
 */
export function assignMessage(
  ring: readonly { rank: number; dataUrl: string; firstCard: number }[],
  rank: number,
  epoch: number,
  job: JobSpec,
  algo: AllreduceAlgo,
  doublingLinks: boolean,
  rest: Pick<Assign, 'restore' | 'faults' | 'lostCards' | 'stragglers'>,
): Assign {
  const n = ring.length;
  const at = (r: number) => ({ rank: ring[r].rank, dataUrl: ring[r].dataUrl });
  return {
    type: 'assign',
    epoch,
    rank,
    size: n,
    firstCard: ring[rank].firstCard,
    prev: at(predecessor(rank, n)),
    next: at(successor(rank, n)),
    algo,
    peers: doublingLinks ? doublingPeers(rank, n).map(at) : [],
    job,
    ...rest,
  };
}
