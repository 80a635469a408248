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
}

export interface RankAssignment {
  rank: number;
  member: Member;
  firstCard: number;
  prev: { rank: number; dataUrl: string };
  next: { rank: number; dataUrl: string };
}

/** Spawned workers first, in the order they were spawned (w0, w1, …), then joiners by arrival. */
export function assignRing(members: readonly Member[], cardsPerWorker: number): RankAssignment[] {
  const spawnIndex = (m: Member) => Number(m.workerId.replace(/^\D+/, ''));
  const ordered = [...members].sort((a, b) => {
    if (a.spawned !== b.spawned) return a.spawned ? -1 : 1;
    return a.spawned ? spawnIndex(a) - spawnIndex(b) : a.arrival - b.arrival;
  });
  const n = ordered.length;
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
