// Straggler detection: which rank (node) or which directed link (from -> to) makes a synchronous
// collective slow, from the timings every worker reports per step. Pure: fed with tables; no
// clock, no timers, no randomness. Links are scored from per-link observations (every link any
// algorithm sends on: the ring's rank -> rank+1, recursive doubling's partners) when the table
// has them, else from each rank's one link to its ring successor.
//
// Every rank leaves a synchronous ring at about the same time, so step time cannot say who is
// slow. What differs is where each rank spent the step: a slow node computes longest (and, as
// copying frames is CPU work, may slow both of its links), a slow link carries its bytes slowly
// on that one directed edge. Each step, every rank's compute time and every link's time per byte
// are divided by the median of the others (robust while fewer than half are slow, and blind to
// the whole machine speeding up or slowing down). A node is slow by compute, or by both of its
// links ('links': a node slow in communication, as in C4's source x destination matrix, where a
// node lights up its whole row and column); a link is slow alone, unless an endpoint explains it.
//
// What a crowded machine does to these measurements (16 workers on 2 cores, other jobs beside):
// a process waiting for a CPU enters the ring late, and one descheduled with a frame in flight
// holds its link's clock running, many times the link's clean time, for a step, on a rank that
// changes from step to step. The worker takes its CPU wait out of its compute time (see
// `RankTiming.computeMs`), and a link's clock runs only while its sender's thread sleeps, neither
// on a CPU nor waiting for one (where the system says: `LinkTiming.busyMs`), so a sender busy or
// descheduled with a frame in flight does not count against the link. Here, a link counts as slow
// in a step only if it was busy for a good part of the time its sender's op was waiting, asleep
// (`LINK_BUSY_SHARE`, against `RankTiming.allreduceSleptMs`): a link slow enough to hold the ring
// up is.
//
// Persistence: the ratios, on a log scale and capped, are summed over the last m steps, leaving
// out the window's largest step (the rest scaled back to m steps); a culprit is confirmed when
// that passes m * log(threshold). The cap is m * log(threshold) / k, so it passes only after
// more than k strongly slow steps (k besides the largest), or k and some excess in the others: a
// one-step spike, however large, counts for nothing, and two spikes on a rank within m steps
// (a crowded machine stalls one process now and then, and sometimes the same one twice) are not
// a straggler either. That is a k-of-m rule, except that a moderate excess held over all m steps
// counts too: on ±20% timing noise a 1.5x straggler's single-step ratio often dips under a
// threshold that keeps clean ranks quiet, and its sum does not.
//
// Under an algorithm that gives a node several links (recursive doubling: one to and one from each
// partner), the same rules hold per link: a node is slow in communication when all its links are
// slow and alike, and a link's busy share is judged against its sender's op divided among the
// links it sent on (a link used in one of log2(p) rounds is not busy most of the op, even slow).
// There a link's raw busy time (handed over to written, on wall time) is nearly all the sender's
// own scheduling: a rank sends its round's frame and goes on (or waits for a CPU) while the frame
// is written, so on this machine clean 16-worker runs gave links 15-60x the median; the slept
// time is ~1x (p99 1.0 after the busy share) and leaves a throttled or delayed link standing out.
//
// Limits: a ring gives each node two links, so two slow links in a row (r-1 -> r -> r+1) read as
// node r, and a slow link next to a slow node is hidden by the node. A link that delays frames
// for a small part of the all-reduce only (idle most of the op) is not a straggler here, however
// slow its frames: the ring did not wait on it for long.

import { successor } from '../collective/ring.js';

/**
 * What one rank measured during one step, each a duration on its own clock (clocks of different
 * processes are never compared).
 */
export interface RankTiming {
  /** Position in the ring of this epoch; the rank sends to (rank + 1) % workers. */
  rank: number;
  /**
   * From the end of this rank's previous all-reduce (the start of the step, for the first step of
   * an epoch) to the start of this one: emulated compute, gradients, local reduce, checkpoint,
   * applying the previous result. Everything the rank did that makes it enter the ring late
   * counts, but not the time its process waited for a CPU (run-queue delay, where the system
   * reports it): on a machine shared by many workers that is the machine's contention, not the
   * rank's work. A stopped process (SIGSTOP, a stall) does not wait for a CPU, so a stall counts.
   */
  computeMs: number;
  /**
   * Inside the all-reduce, time with nothing to do but wait for a frame from the predecessor,
   * both phases summed. Checked but not scored (why: see `stragglerScores`); it belongs in the
   * same report for the trace.
   */
  waitMs: number;
  /** The whole all-reduce on this rank, waits included. */
  allreduceMs: number;
  /**
   * Of the op, the time this rank's thread slept (blocked: neither on a CPU nor waiting for one),
   * where the system says: links' busy times (which count only such time) are judged against it.
   * Absent: allreduceMs.
   */
  allreduceSleptMs?: number;
  /**
   * The link rank -> successor, measured by its sender (this rank): the time during the
   * all-reduce in which at least one frame for the successor had been given to the transport
   * and its `written` callback had not yet fired (the union of those intervals, not their sum,
   * so frames queued behind each other count once). A late sender does not inflate it, since
   * the clock runs only while bytes wait; a slow or shaped link, or a receiver too slow to read
   * (the kernel buffer fills), does, and so does a sender descheduled with a frame in flight
   * (its callback waits for a CPU): see `LINK_BUSY_SHARE`.
   */
  linkMs: number;
  /** Bytes (headers included) this rank sent to its successor in the all-reduce: links are compared per byte. */
  bytesSent: number;
}

/** One directed link as its sender measured it in one step (ranks of the epoch). */
export interface LinkTiming {
  from: number;
  to: number;
  /**
   * Time with at least one frame for `to` handed to the transport and not yet written (see
   * RankTiming.linkMs), counted only while the sender's thread slept where the system says (see
   * runtime/op-runner.ts, LinkTiming): a sender busy or descheduled with a frame in flight, or a
   * partner that has not reached the round, does not run it.
   */
  busyMs: number;
  /** Bytes (headers included) sent on the link: links are compared per byte. */
  bytes: number;
}

export interface StepTimings {
  step: number;
  /** One row per rank, in any order. */
  ranks: readonly RankTiming[];
  /**
   * Every directed link used in the step, at most one entry each, in any order. When given, links
   * are scored from these (under any algorithm) and the rows' linkMs and bytesSent are not used.
   */
  links?: readonly LinkTiming[];
}

export type Culprit = { kind: 'node'; rank: number } | { kind: 'link'; link: readonly [from: number, to: number] };

/**
 * What gave a culprit away: 'compute' (the node computes longer than the others), 'links' (both
 * links of the node are slow: a node slow in communication), 'link' (one directed link).
 */
export type Evidence = 'compute' | 'links' | 'link';

export type Straggler = Culprit & {
  evidence: Evidence;
  /** First step over the threshold of this episode (the first after m steps that were not). */
  firstSeenStep: number;
  detectedAtStep: number;
  /**
   * The culprit's own slowdown over the others: its compute time ('compute'), its time per byte
   * ('link'), or the lesser of its two links' ('links'), each over the median of the other ranks
   * or links; the median over the window's steps that were over the threshold.
   */
  score: number;
  /**
   * Step time over the clean baseline step time (`baselineStepMs()`), over the same steps; null
   * while there is no baseline yet. Step time is the median over ranks of computeMs + allreduceMs
   * (all ranks take about as long in a synchronous ring; the median ignores one rank's hiccup).
   */
  slowdown: number | null;
};

export type StragglerEvent = ({ type: 'detected' } & Straggler) | ({ type: 'cleared'; clearedAtStep: number } & Straggler);

export interface StragglerOptions {
  workers: number;
  /** Ratio over the median of the others from which a rank or link counts as slow (> 1). */
  threshold?: number;
  /** Confirm after the evidence of persistK slow steps among the last persistM, besides the slowest of them (one step never decides). */
  persistK?: number;
  persistM?: number;
  /** Steps observed before any event: evidence and the baseline step time build up meanwhile. */
  warmupSteps?: number;
  /**
   * An excess over the median smaller than this many ms is no evidence, whatever the ratio
   * (sub-millisecond times on loopback are scheduling noise).
   */
  minExcessMs?: number;
}

export const STRAGGLER_DEFAULTS = {
  threshold: 1.3,
  persistK: 3,
  persistM: 5,
  warmupSteps: 5,
  minExcessMs: 1,
} as const satisfies Required<Omit<StragglerOptions, 'workers'>>;

/**
 * Below this ring size `observe` returns nothing: with 3 ranks the "median of the others" is the
 * mean of two noisy values and a slow node's two links are two of the three links; with 2 there
 * is no majority to compare against.
 */
export const MIN_STRAGGLER_WORKERS = 4;

/**
 * A link counts as slow in a step only if frames waited on it for at least this share of its
 * sender's all-reduce (the time the op slept, where known: `RankTiming.allreduceSleptMs`), divided
 * among the links it sent on. A link slow enough to hold the ring up is busy most of the op; one
 * whose frames waited a moment while the op waited on others is not what slows it.
 */
export const LINK_BUSY_SHARE = 0.4;

/** Clean steps kept for the baseline step time. */
const BASELINE_STEPS = 64;

/** A directed link's ratio in one step. */
export interface LinkScore {
  from: number;
  to: number;
  /** Time per byte over the median of the other links'; at most 1 where not measurable, or not busy enough to count. */
  ratio: number;
}

/** One step's ratios, indexed by rank; link[r] is the link r -> r+1. */
export interface StepScores {
  /** computeMs over the median of the other ranks'. */
  compute: number[];
  /** Ratio of link r -> r+1 (1 where that link was not observed: see `directed`). */
  link: number[];
  /**
   * The least of the ratios of the links into and out of rank r, when the least is at least half
   * the greatest (all slow: the node is); else 1.
   */
  links: number[];
  /** Every observed directed link, sorted by (from, to). */
  directed: LinkScore[];
  /** Median over ranks of computeMs + allreduceMs. */
  stepMs: number;
}

/**
 * Per-step ratios of a full table (rows[r] is rank r; at least
 * MIN_STRAGGLER_WORKERS rows). A ratio whose excess over the median is below `minExcessMs` is
 * capped at 1: no evidence; so is a link's when the link was busy for less than
 * `LINK_BUSY_SHARE` of its sender's all-reduce (less the wait for a rank that computed over
 * `threshold`: no link paced that), and a node's 'links' when its two links are not alike.
 *
 * Waits are not scored. In a pipelined ring a delay travels round the ring within the step: with
 * a slow node every other rank waits about as long as it was late (its successor hardly more than
 * the rest), and a slow link's receiver waits hardly more than the others; the wait only mirrors
 * the compute excess, and a sender held back by a slow link's backpressure is not waiting at all.
 */
export function stragglerScores(
  rows: readonly RankTiming[],
  minExcessMs: number = STRAGGLER_DEFAULTS.minExcessMs,
  threshold: number = STRAGGLER_DEFAULTS.threshold,
  observedLinks?: readonly LinkTiming[],
): StepScores {
  const n = rows.length;
  if (n < MIN_STRAGGLER_WORKERS) throw new RangeError(`need at least ${MIN_STRAGGLER_WORKERS} ranks to score, got ${n}`);
  rows.forEach((row, r) => {
    if (row.rank !== r) throw new RangeError(`row ${r} is rank ${row.rank}: rows must be sorted by rank`);
  });
  const computes = rows.map((r) => r.computeMs);
  const computeRef = othersMedian(computes);
  const compute = computes.map((c, r) => ratio(c, computeRef(r), 1, minExcessMs));
  // Waiting for a rank that entered the ring late (computing over the threshold) is time no link
  // could have paced: it is taken out of each rank's all-reduce before its link's busy share is judged.
  const lateEntry = Math.max(0, ...computes.filter((_, j) => compute[j] > threshold));
  const moving = rows.map((r) => (r.allreduceSleptMs ?? r.allreduceMs) - Math.max(0, lateEntry - r.computeMs));
  const observed: readonly LinkTiming[] =
    observedLinks ?? rows.map((r) => ({ from: r.rank, to: successor(r.rank, n), busyMs: r.linkMs, bytes: r.bytesSent }));
  const sorted = [...observed].sort((x, y) => x.from - y.from || x.to - y.to);
  // A sender's op is shared among the links it sent on (one in a ring).
  const used = new Array<number>(n).fill(0);
  for (const l of sorted) if (l.bytes > 0) used[l.from]++;
  // Time per byte; a link that sent nothing is not compared, nor compared against.
  const measured = sorted.filter((l) => l.bytes > 0);
  const rateRef = othersMedian(measured.map((l) => l.busyMs / l.bytes));
  let m = 0;
  const directed: LinkScore[] = sorted.map((l) => {
    if (!(l.bytes > 0)) return { from: l.from, to: l.to, ratio: 1 };
    const j = m++;
    if (measured.length - 1 < MIN_STRAGGLER_WORKERS - 1) return { from: l.from, to: l.to, ratio: 1 };
    // Against at least minExcessMs for the link's bytes: where the other links' clocks hardly ran
    // (recursive doubling's, counted only while their senders slept), the median is about 0.
    const x = ratio(l.busyMs / l.bytes, Math.max(rateRef(j), minExcessMs / l.bytes), l.bytes, minExcessMs);
    // A link the all-reduce waited on was busy most of it; one idle most of the op did not pace it.
    return { from: l.from, to: l.to, ratio: l.busyMs >= (LINK_BUSY_SHARE * moving[l.from]) / used[l.from] ? x : Math.min(x, 1) };
  });
  const link = new Array<number>(n).fill(1);
  // All links of a node slow, and alike (the least at least half the greatest): the node is.
  const lo = new Array<number>(n).fill(Infinity);
  const hi = new Array<number>(n).fill(-Infinity);
  for (const d of directed) {
    if (d.to === successor(d.from, n)) link[d.from] = d.ratio;
    for (const q of [d.from, d.to]) {
      lo[q] = Math.min(lo[q], d.ratio);
      hi[q] = Math.max(hi[q], d.ratio);
    }
  }
  const links = lo.map((least, r) => (least !== Infinity && least >= hi[r] / 2 ? least : 1));
  const stepMs = median(rows.map((r) => r.computeMs + r.allreduceMs));
  return { compute, link, links, directed, stepMs };
}

/** x / ref, capped at 1 when the excess (x - ref) * scale is under minExcessMs; 1 with no reference. */
function ratio(x: number, ref: number, scale: number, minExcessMs: number): number {
  if (!(ref > 0)) return 1;
  const r = x / ref;
  return (x - ref) * scale < minExcessMs ? Math.min(r, 1) : r;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/**
 * For each index j, the median of the values other than xs[j] (the same as the median of
 * xs without it), from one sort: O(log n) per call, not a filter and sort per index.
 */
function othersMedian(xs: readonly number[]): (j: number) => number {
  const order = xs.map((_, j) => j).sort((a, b) => xs[a] - xs[b]);
  const pos = new Array<number>(xs.length);
  order.forEach((j, i) => (pos[j] = i));
  const sorted = order.map((j) => xs[j]);
  const len = xs.length - 1;
  // The i-th smallest of the others: skip the excluded one's place in the sorted values.
  const at = (i: number, skip: number) => sorted[i < skip ? i : i + 1];
  return (j) => {
    if (len <= 0) return Number.NaN;
    const h = len >> 1;
    const p = pos[j];
    return len % 2 ? at(h, p) : (at(h - 1, p) + at(h, p)) / 2;
  };
}

/** One step of one key, as kept in its window. */
interface Sample {
  step: number;
  /** The step's ratio; at most 1 when masked (explained by a node). */
  ratio: number;
  /** log(ratio), capped to [-cap, cap]; at most 0 when masked. */
  evidence: number;
  stepMs: number;
}

/** A key is one way a culprit shows: `compute:r` and `links:r` for node r, `link:a>b` for the link a -> b. */
type KeyName = `compute:${number}` | `links:${number}` | `link:${number}>${number}`;

interface KeyState {
  /** The last m samples, oldest first. */
  window: Sample[];
  /** First step over the threshold after m steps that were not (null: none since). */
  episodeStart: number | null;
  /** Steps in a row at or under the threshold. */
  cleanRun: number;
}

interface Flag {
  straggler: Straggler;
  /** Keys that passed the bar for this culprit; it is cleared once all are clean for m steps. */
  keys: KeyName[];
}

export class StragglerDetector {
  private readonly workers: number;
  private readonly threshold: number;
  private readonly k: number;
  private readonly m: number;
  private readonly warmupSteps: number;
  private readonly minExcessMs: number;
  /** m * log(threshold): the sum a window must pass. */
  private readonly bar: number;
  /** bar / k: the most one step may add to a window. */
  private readonly cap: number;
  private readonly keys = new Map<KeyName, KeyState>();
  private readonly flags = new Map<string, Flag>();
  private readonly baseline: number[] = [];
  private observed = 0;
  private lastStep = -1;

  constructor(opts: StragglerOptions) {
    const o = { ...STRAGGLER_DEFAULTS, ...definedOnly(opts) };
    if (!Number.isInteger(o.workers) || o.workers < 1) throw new RangeError(`workers must be an integer >= 1, got ${o.workers}`);
    if (!Number.isFinite(o.threshold) || o.threshold <= 1) throw new RangeError(`threshold must be a finite ratio > 1, got ${o.threshold}`);
    if (!Number.isInteger(o.persistM) || o.persistM < 1 || o.persistM > 64) throw new RangeError(`persistM must be an integer in 1..64, got ${o.persistM}`);
    if (!Number.isInteger(o.persistK) || o.persistK < 1) throw new RangeError(`persistK must be an integer >= 1, got ${o.persistK}`);
    if (o.persistK > o.persistM) throw new RangeError(`persistK (${o.persistK}) must not exceed persistM (${o.persistM})`);
    if (!Number.isInteger(o.warmupSteps) || o.warmupSteps < 0) throw new RangeError(`warmupSteps must be an integer >= 0, got ${o.warmupSteps}`);
    if (!Number.isFinite(o.minExcessMs) || o.minExcessMs < 0) throw new RangeError(`minExcessMs must be a finite number >= 0, got ${o.minExcessMs}`);
    this.workers = o.workers;
    this.threshold = o.threshold;
    this.k = o.persistK;
    this.m = o.persistM;
    this.warmupSteps = o.warmupSteps;
    this.minExcessMs = o.minExcessMs;
    this.bar = this.m * Math.log(this.threshold);
    this.cap = this.bar / this.k;
  }

  /**
   * Feed one step's table (steps strictly increasing; gaps allowed: the window is the last m
   * tables observed). Returns the stragglers this step confirmed and those it cleared (a flagged
   * culprit is cleared after m steps in a row at or under the threshold). Returns nothing for
   * rings smaller than MIN_STRAGGLER_WORKERS, and no event during warmup. Throws RangeError on a
   * table that is not one finite, non-negative row per rank.
   */
  observe(t: StepTimings): StragglerEvent[] {
    const rows = this.validate(t);
    const observedLinks = t.links && this.validateLinks(t.step, t.links);
    this.lastStep = t.step;
    if (this.workers < MIN_STRAGGLER_WORKERS) return [];
    this.observed++;
    const s = stragglerScores(rows, this.minExcessMs, this.threshold, observedLinks);
    const n = this.workers;
    const over = (x: number) => x > this.threshold;
    for (let r = 0; r < n; r++) {
      this.record(`compute:${r}`, t.step, s.compute[r], s.stepMs, false);
      this.record(`links:${r}`, t.step, s.links[r], s.stepMs, false);
    }
    // A link's slowness is explained by an endpoint when both of that node's links are slow, or
    // when the node computes at least as much slower as the link is (a slow node slows its links
    // too, less than itself). An endpoint over the threshold by noise does not hide a link twice
    // as slow.
    const explains = (q: number, linkRatio: number) => over(s.links[q]) || (over(s.compute[q]) && s.compute[q] >= linkRatio);
    const seen = new Set<KeyName>();
    for (const d of s.directed) {
      const masked = explains(d.from, d.ratio) || explains(d.to, d.ratio);
      const key: KeyName = `link:${d.from}>${d.to}`;
      seen.add(key);
      this.record(key, t.step, d.ratio, s.stepMs, masked);
    }
    // A link known from earlier steps and not used in this one: no evidence either way.
    for (const key of this.keys.keys()) if (key.startsWith('link:') && !seen.has(key)) this.record(key, t.step, 1, s.stepMs, false);

    const events: StragglerEvent[] = [];
    for (const [id, f] of this.flags) {
      if (f.keys.every((key) => this.key(key).cleanRun >= this.m)) {
        this.flags.delete(id);
        events.push({ type: 'cleared', clearedAtStep: t.step, ...f.straggler });
      }
    }
    let pending = false;
    for (const [key, state] of this.keys) {
      const sum = this.sum(key);
      if (sum > this.bar / 2 || state.cleanRun === 0) pending = true;
      if (sum <= this.bar) continue;
      const [evidence, where] = key.split(':') as [Evidence, string];
      const [rank, to] = where.split('>').map(Number);
      const culprit: Culprit = evidence === 'link' ? { kind: 'link', link: [rank, to] } : { kind: 'node', rank };
      const id = evidence === 'link' ? key : `node:${rank}`;
      const existing = this.flags.get(id);
      if (existing) {
        if (!existing.keys.includes(key)) existing.keys.push(key);
        continue;
      }
      if (this.observed <= this.warmupSteps) continue;
      // A node whose compute and links are both on their way to the bar: name the stronger.
      const keys: KeyName[] = evidence === 'link' ? [key] : [`compute:${rank}`, `links:${rank}`];
      const best = keys
        .filter((k) => this.sum(k) > this.bar / 2)
        .map((k) => this.summary(k))
        .reduce((a, b) => (b.score > a.score ? b : a));
      const straggler = { ...culprit, ...best, detectedAtStep: t.step } as Straggler;
      this.flags.set(id, { straggler, keys: keys.filter((k) => this.sum(k) > this.bar) });
      events.push({ type: 'detected', ...straggler });
    }
    // The baseline learns only from steps with nothing flagged, nothing half way there and nothing
    // over the threshold: a straggler present from the first step must not become the baseline.
    if (this.flags.size === 0 && !pending) {
      this.baseline.push(s.stepMs);
      if (this.baseline.length > BASELINE_STEPS) this.baseline.shift();
    }
    return events;
  }

  /** The culprits flagged now, as they were when detected. */
  current(): Straggler[] {
    return [...this.flags.values()].map((f) => f.straggler);
  }

  /** Median step time of the last clean steps (up to 64), or null before the first. */
  baselineStepMs(): number | null {
    return this.baseline.length === 0 ? null : median(this.baseline);
  }

  private key(key: KeyName): KeyState {
    let state = this.keys.get(key);
    if (!state) this.keys.set(key, (state = { window: [], episodeStart: null, cleanRun: this.m }));
    return state;
  }

  private record(key: KeyName, step: number, ratio: number, stepMs: number, masked: boolean): void {
    const state = this.key(key);
    const r = masked ? Math.min(ratio, 1) : ratio;
    const evidence = Math.max(-this.cap, Math.min(this.cap, Math.log(r)));
    state.window.push({ step, ratio: r, evidence, stepMs });
    if (state.window.length > this.m) state.window.shift();
    if (r > this.threshold) {
      if (state.cleanRun >= this.m) state.episodeStart = step;
      state.cleanRun = 0;
    } else if (++state.cleanRun >= this.m) {
      state.episodeStart = null;
    }
  }

  /**
   * The window's evidence, leaving out its largest step and scaled back to m steps (a full window;
   * with persistK 1, or while the window fills, all of it): one step, however slow, never decides.
   */
  private sum(key: KeyName): number {
    const w = this.key(key).window;
    const total = w.reduce((a, x) => a + x.evidence, 0);
    if (this.k < 2 || w.length < this.m) return total;
    return ((total - Math.max(...w.map((x) => x.evidence))) * this.m) / (this.m - 1);
  }

  /** What a key says, from the steps of its window over the threshold. */
  private summary(key: KeyName): { evidence: Evidence; firstSeenStep: number; score: number; slowdown: number | null } {
    const state = this.key(key);
    const counted = state.window.filter((x) => x.ratio > this.threshold);
    const base = this.baselineStepMs();
    return {
      evidence: key.split(':')[0] as Evidence,
      firstSeenStep: state.episodeStart ?? counted[0]?.step ?? this.lastStep,
      score: counted.length ? median(counted.map((x) => x.ratio)) : 1,
      slowdown: base === null || !counted.length ? null : median(counted.map((x) => x.stepMs)) / base,
    };
  }

  private validateLinks(step: number, links: readonly LinkTiming[]): LinkTiming[] {
    const seen = new Set<string>();
    for (const l of links) {
      for (const end of ['from', 'to'] as const) {
        const v = l[end];
        if (!Number.isInteger(v) || v < 0 || v >= this.workers) throw new RangeError(`step ${step}: link ${l.from}->${l.to} ${end} out of range 0..${this.workers - 1}`);
      }
      if (l.from === l.to) throw new RangeError(`step ${step}: link ${l.from}->${l.to} goes nowhere`);
      const id = `${l.from}>${l.to}`;
      if (seen.has(id)) throw new RangeError(`step ${step}: link ${l.from}->${l.to} reported twice`);
      seen.add(id);
      for (const field of ['busyMs', 'bytes'] as const) {
        const v = l[field];
        if (!Number.isFinite(v) || v < 0) throw new RangeError(`step ${step}: link ${l.from}->${l.to} ${field} must be a finite number >= 0, got ${v}`);
      }
    }
    return [...links];
  }

  private validate(t: StepTimings): RankTiming[] {
    if (!Number.isInteger(t.step) || t.step < 0) throw new RangeError(`step must be an integer >= 0, got ${t.step}`);
    if (t.step <= this.lastStep) throw new RangeError(`step ${t.step} after step ${this.lastStep}: steps must increase`);
    if (t.ranks.length !== this.workers) throw new RangeError(`step ${t.step}: ${t.ranks.length} rows for ${this.workers} workers`);
    const rows: RankTiming[] = new Array(this.workers);
    for (const row of t.ranks) {
      if (!Number.isInteger(row.rank) || row.rank < 0 || row.rank >= this.workers) {
        throw new RangeError(`step ${t.step}: rank ${row.rank} out of range 0..${this.workers - 1}`);
      }
      if (rows[row.rank]) throw new RangeError(`step ${t.step}: rank ${row.rank} reported twice`);
      for (const field of ['computeMs', 'waitMs', 'allreduceMs', 'linkMs', 'bytesSent', 'allreduceSleptMs'] as const) {
        const v = row[field];
        if (field === 'allreduceSleptMs' && v === undefined) continue;
        if (!Number.isFinite(v) || v! < 0) throw new RangeError(`step ${t.step}: rank ${row.rank} ${field} must be a finite number >= 0, got ${v}`);
      }
      rows[row.rank] = row;
    }
    return rows;
  }
}

/** Options without the keys set to undefined, so defaults fill them. */
function definedOnly(o: StragglerOptions): StragglerOptions {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as unknown as StragglerOptions;
}
