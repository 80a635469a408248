// The coordinator's bookkeeping of a run, pure: which steps are counted (every rank reported),
// which checkpoints each rank and its successor hold, and the newest step every rank can restore.
import { successor } from '../collective/ring.js';
import type { RankTiming } from './stragglers.js';

/** Checkpoints a worker keeps in memory (and on disk), newest first: see worker/checkpoints.ts. */
export const CHECKPOINTS_KEPT = 2;

export interface StepAgg {
  reports: number;
  wrong: number;
  stepMs: number;
  allreduceMs: number;
  computeMs: number;
  ranks: RankTiming[];
  /** Directed links (ranks of the epoch) with the bytes and busy time each carried in the step's op. */
  links: { from: number; to: number; bytes: number; busyMs: number }[];
  /** Once final: when its last report came in, and in which epoch. */
  doneAt?: number;
  epoch?: number;
}

export interface StepReportIn {
  rank: number;
  epoch: number;
  step: number;
  wrong: number;
  timings: {
    computeMs: number;
    waitMs: number;
    allreduceMs: number;
    linkMs: number;
    bytesSent: number;
    stepMs: number;
    links?: { peer: number; bytes: number; busyMs: number }[];
    allreduceSleptMs?: number;
  };
}

/** Steps of a run: reports gathered per (epoch, step), and each step's final (counted) run. */
export class StepLedger {
  private readonly pending = new Map<string, StepAgg>();
  readonly final = new Map<number, StepAgg>();
  /** Step runs completed, counted or not (recomputed ones too). */
  runs = 0;

  /** Add one rank's report; returns the step's aggregate once all `workers` have reported. */
  add(r: StepReportIn, workers: number, now: number): StepAgg | null {
    const key = `${r.epoch}:${r.step}`;
    const s = this.pending.get(key) ?? { reports: 0, wrong: 0, stepMs: 0, allreduceMs: 0, computeMs: 0, ranks: [], links: [] };
    const tm = r.timings;
    s.ranks.push({
      rank: r.rank,
      computeMs: tm.computeMs,
      waitMs: tm.waitMs,
      allreduceMs: tm.allreduceMs,
      linkMs: tm.linkMs,
      bytesSent: tm.bytesSent,
      ...(tm.allreduceSleptMs !== undefined ? { allreduceSleptMs: tm.allreduceSleptMs } : {}),
    });
    for (const l of tm.links ?? []) s.links.push({ from: r.rank, to: l.peer, bytes: l.bytes, busyMs: l.busyMs });
    s.reports++;
    s.wrong += r.wrong;
    s.stepMs = Math.max(s.stepMs, tm.stepMs);
    s.allreduceMs = Math.max(s.allreduceMs, tm.allreduceMs);
    s.computeMs = Math.max(s.computeMs, tm.computeMs);
    if (s.reports < workers) {
      this.pending.set(key, s);
      return null;
    }
    this.pending.delete(key);
    this.final.set(r.step, s);
    s.doneAt = now;
    s.epoch = r.epoch;
    this.runs++;
    return s;
  }

  /** The highest counted step, or -1. */
  highestDone(): number {
    let h = -1;
    for (const k of this.final.keys()) if (k > h) h = k;
    return h;
  }

  /** Steps counted from 0 without a gap: every step before this one is counted. */
  countedPrefix(): number {
    let c = 0;
    while (this.final.has(c)) c++;
    return c;
  }

  /** A rollback to step `c`: later steps will be run again; reports under way are void. */
  rollback(c: number): void {
    for (const s of [...this.final.keys()]) if (s >= c) this.final.delete(s);
    this.pending.clear();
  }

  /** Median step time of the counted steps in (`to` - n, `to`]. */
  stepTimes(fromExclusive: number, toInclusive: number): number[] {
    return [...this.final.entries()].filter(([k]) => k <= toInclusive && k > fromExclusive).map(([, v]) => v.stepMs);
  }
}

/** Which checkpoints each rank holds of its own cards, and which copies its successor holds for it. */
export class CheckpointLedger {
  private own = new Map<number, Set<number>>();
  private held = new Map<number, Set<number>>();
  /** Steps whose disk copy a rank wrote (and synced): the disk tier, by rank. */
  private disk = new Map<number, Set<number>>();

  private static add(m: Map<number, Set<number>>, rank: number, step: number): void {
    const set = m.get(rank) ?? m.set(rank, new Set()).get(rank)!;
    set.add(step);
    // Workers keep the newest two; a few more are plenty here (the set must not grow with the run).
    if (set.size > 2 * CHECKPOINTS_KEPT) set.delete(Math.min(...set));
  }

  checkpointed(rank: number, step: number, onDisk: boolean): void {
    CheckpointLedger.add(this.own, rank, step);
    if (onDisk) CheckpointLedger.add(this.disk, rank, step);
  }

  holding(owner: number, step: number): void {
    CheckpointLedger.add(this.held, owner, step);
  }

  private static keeps(m: Map<number, Set<number>>, rank: number, step: number): boolean {
    return [...(m.get(rank) ?? [])].sort((a, b) => b - a).slice(0, CHECKPOINTS_KEPT).includes(step);
  }

  /** Whether `rank` still keeps its own checkpoint `step` in memory. */
  keepsOwn(rank: number, step: number): boolean {
    return CheckpointLedger.keeps(this.own, rank, step);
  }

  /** Where a replaced rank's checkpoint `step` can come from, if anywhere. */
  lostSource(r: number, step: number, lost: ReadonlySet<number>, workers: number): 'peer' | 'disk' | null {
    if (!lost.has(successor(r, workers)) && CheckpointLedger.keeps(this.held, r, step)) return 'peer';
    if (CheckpointLedger.keeps(this.disk, r, step)) return 'disk';
    return null;
  }

  /**
   * The newest step every rank can restore, given which ranks are replaced, or dropped (`shrink`)
   * (0: start over). Every step before the resume point must be counted (`counted`): with a rank
   * dropped, or under recursive doubling, the others may finish a step and checkpoint the next that
   * the lost rank never reported.
   */
  consistentStep(lost: ReadonlySet<number>, workers: number, counted: number, shrink = false): number {
    const candidates = [...new Set([...this.own.values()].flatMap((s) => [...s]))].filter((s) => s <= counted).sort((a, b) => b - a);
    for (const s of candidates) {
      let ok = true;
      for (let r = 0; r < workers && ok; r++) ok = lost.has(r) ? shrink || this.lostSource(r, s, lost, workers) !== null : this.keepsOwn(r, s);
      if (ok) return s;
    }
    return 0;
  }

  /**
   * What `rank` says it keeps at an abort (its own steps, and the copies it holds of its ring
   * predecessor's): reports it sent after the abort was announced were dropped as of the old
   * epoch, so this replaces what was recorded.
   */
  inventory(rank: number, own: readonly number[], predecessorRank: number, heldOfPredecessor: readonly number[]): void {
    this.own.set(rank, new Set(own));
    this.held.set(predecessorRank, new Set(heldOfPredecessor));
  }

  /** Why no newer step than consistentStep's could be resumed from: for the newest candidate, the first rank that lacks it. */
  whyNot(lost: ReadonlySet<number>, workers: number, counted: number): string {
    const newest = Math.max(-1, ...[...this.own.values()].flatMap((s) => [...s]).filter((s) => s <= counted));
    if (newest < 0) return `no checkpoint at or before step ${counted} is recorded`;
    for (let r = 0; r < workers; r++) {
      if (lost.has(r) ? this.lostSource(r, newest, lost, workers) === null : !this.keepsOwn(r, newest)) {
        return `step ${newest}: rank ${r} ${lost.has(r) ? `(lost) has no copy with its successor nor on disk (held ${[...(this.held.get(r) ?? [])].join(',')})` : `keeps only ${[...(this.own.get(r) ?? [])].join(',')}`}; steps counted up to ${counted}`;
      }
    }
    return `step ${newest} is restorable everywhere`;
  }

  /** A replaced rank's new process holds nothing; its predecessor's copies it held are gone too. */
  forget(rank: number, predecessorRank: number): void {
    this.own.delete(rank);
    this.disk.delete(rank);
    this.held.delete(predecessorRank);
  }

  /**
   * The ring renumbered: `order[i]` is the old rank that becomes rank i (shrink drops ranks, reroute
   * permutes them). Own checkpoints follow their workers; copies sat with the old successors and are
   * gone (the first step of the new epoch sends new ones); disk files are named by card and follow too.
   */
  renumber(order: readonly number[]): void {
    const move = (m: Map<number, Set<number>>) => new Map(order.map((old, i) => [i, m.get(old) ?? new Set<number>()]));
    this.own = move(this.own);
    this.disk = move(this.disk);
    this.held = new Map();
  }
}
