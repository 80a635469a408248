// Ring assignment: who is rank r, who are its neighbours, which cards it holds. Pure.
import { predecessor, successor } from '../collective/ring.js';

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
