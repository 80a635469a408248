// --trace FILE: the run as a Chrome trace-event file (ui.perfetto.dev, chrome://tracing). Pure: fed
// with what the workers report (with the coordinator's time of arrival) and the coordinator
// machine's state after each event; the driver writes the file (trace-file.ts).
//
// The file: one process per rank at launch ("rank R (worker PID)", pid R + 1), one thread lane per
// activity that may overlap another (compute, checkpoint, the copy to the successor, intra-worker
// transfers, the op, each collective phase, each phase's sends and receives: Perfetto does not draw
// overlapping spans on one lane), and the coordinator as a process of its own: its counters (step
// and all-reduce time per counted step) and the run's instants (faults injected, detected, located
// and recovered, epochs, stragglers). Complete events ('X') carry epoch, opSeq, step and bytes.
//
// One clock, the coordinator's. A worker times its spans on its own clock (performance.now() of its
// process, whose origin is its own start); the coordinator estimates each worker's offset from the
// messages that carry the worker's clock as they were sent (the hello, then heartbeats and step
// reports): a message sent at worker time w arrives at coordinator time c = w + offset + d, with d
// >= 0 its one-way delay (socket, scheduling, the coordinator's event loop), so each message gives
// c - w >= offset, and the estimate is the minimum over them so far. Its error is the smallest
// delay seen, never negative: the worker's spans are placed at most that much late (on loopback
// about 0.1-1 ms once a few heartbeats have come in). Spans are kept on their worker's clock and
// placed when the file is written, with the estimate of the whole run. Two workers' errors differ,
// so a lane that two workers fill one after the other (a rank's replacement) may overlap by the
// difference: a span is then clipped to begin where the previous one on its lane ended (and
// dropped when nothing is left), so no lane ever overlaps. In `sim` everyone reads the one virtual
// clock: offsets are 0.
//
// Bounded: past `maxEvents` spans and counters it keeps the first steps (up to half the bound) and
// the last ones (the oldest of the rest are dropped, a step at a time), and says so in the
// metadata, as an instant event and in its summary. Instants and metadata are always kept.
import type { Span, WorkerMessage } from '../protocol/control.js';
import type { StepAgg } from './ledger.js';
import type { CoordinatorMachine, FaultRecord } from './machine.js';

/**
 * Spans and counters kept at most by default: a file of about 140 MB (about 140 bytes an event),
 * which Perfetto opens, and a few hundred MB of the coordinator's memory while the run lasts.
 */
export const DEFAULT_MAX_TRACE_EVENTS = 1_000_000;

/** The coordinator's process in the trace (ranks are 1..n: pid = rank at launch + 1). */
export const COORDINATOR_PID = 0x7ffffffe;

/** Lanes (thread ids) of a rank's process, in the order they are shown. */
export const LANE_TIDS: Record<Span['lane'], number> = {
  compute: 1,
  checkpoint: 2,
  'checkpoint copy': 3,
  intra: 4,
  op: 5,
  'reduce-scatter': 6,
  'all-gather': 7,
  broadcast: 8,
  'send reduce-scatter': 9,
  'send all-gather': 10,
  'send broadcast': 11,
  'recv reduce-scatter': 12,
  'recv all-gather': 13,
  'recv broadcast': 14,
  bench: 15,
};
/** The per-rank counter's lane has no thread: counters belong to the process. */
const COUNTER_TID = 0;

export const rankPid = (home: number) => home + 1;

export interface TraceOptions {
  /** The coordinator's time (ms) that is the trace's 0. */
  t0: number;
  /** What made the trace ('ringswarm run', 'ringswarm sim', 'ringswarm bench'), for the metadata. */
  command: string;
  /** Workers read the coordinator's own clock (sim): no offsets to estimate. */
  sharedClock?: boolean;
  /** Spans and counters kept at most (see the file comment). */
  maxEvents?: number;
  /** More metadata (the job's flags, say). */
  metadata?: Record<string, unknown>;
}

export interface TraceSummary {
  /** Events in the file (metadata included). */
  events: number;
  /** Spans and counters dropped by the bound (0: none). */
  dropped: number;
  /**
   * The step ranges kept, when some were dropped: [first, last] of the head and of the tail, of
   * `of` step runs (a step run again after a recovery is a run of its own).
   */
  kept: { head: [number, number]; tail: [number, number] | null; of: number } | null;
  /** Spans clipped or dropped so that no lane overlaps (see the file comment). */
  clipped: number;
  /** Spans and counters of workers whose clock offset never became known (no clock reading came from them). */
  unplaced: number;
}

/** A span or counter sample as recorded: on its worker's clock (null: the coordinator's), placed when the file is written. */
interface Rec {
  ph: 'X' | 'C';
  pid: number;
  tid: number;
  worker: string | null;
  start: number;
  end: number;
  name: string;
  cat: string;
  args: Record<string, unknown>;
  /** Placed: ticks on the trace's clock, or null when left out (no offset known, or nothing left once clipped). */
  s?: number | null;
  e?: number;
}

interface Bucket {
  step: number;
  events: Rec[];
}

/** µs on the trace's clock in tenths (integers: lanes are compared exactly). */
const TICKS_PER_MS = 10_000;

/**
 * The trace's events: spans and counters on each worker's clock, put on the coordinator's with
 * each worker's offset as estimated by the end (placed when the file is written: the estimate
 * is then the best it gets), instants, process and lane names, with the bound. Knows nothing of
 * the machine (RunTrace feeds it from one; bench feeds it directly).
 */
export class TraceRecorder {
  private readonly offsets = new Map<string, number>();
  private readonly always: string[] = [];
  private readonly buckets = new Map<string, Bucket>();
  private bucketed = 0;
  private readonly evicted = new Set<string>();
  private stepRuns = 0;
  private head: Set<string> | null = null;
  private newest: string | null = null;
  private dropped = 0;
  private spansDroppedByWorkers = 0;
  private readonly names = new Map<number, string>();
  private readonly maxEvents: number;
  /** The placement of the events recorded so far (null: something was recorded since). */
  private placed: { events: Rec[]; clipped: number; unplaced: number } | null = null;

  constructor(readonly o: TraceOptions) {
    this.maxEvents = Math.max(2, o.maxEvents ?? DEFAULT_MAX_TRACE_EVENTS);
    this.names.set(COORDINATOR_PID, 'coordinator');
  }

  /** A message from `workerId` sent at its clock `workerMs`, arrived at `now`: refines its offset. */
  clockReading(workerId: string, workerMs: number | undefined, now: number): void {
    if (this.o.sharedClock || workerMs === undefined) return;
    const est = now - workerMs;
    const old = this.offsets.get(workerId);
    if (old === undefined || est < old) {
      this.offsets.set(workerId, est);
      this.placed = null;
    }
  }

  /** The worker's clock reading on the coordinator's clock (with the offset estimated so far), or null when its offset is not known. */
  toCoordinator(workerId: string, workerMs: number): number | null {
    if (this.o.sharedClock) return workerMs;
    const off = this.offsets.get(workerId);
    return off === undefined ? null : workerMs + off;
  }

  /** The offset estimated for a worker (coordinator time - worker time, ms). */
  offsetOf(workerId: string): number | undefined {
    return this.o.sharedClock ? 0 : this.offsets.get(workerId);
  }

  /** Name a process ('rank 3 (worker 1234)'). */
  nameProcess(pid: number, name: string): void {
    this.names.set(pid, name);
  }

  private ticks(ms: number): number {
    return Math.round((ms - this.o.t0) * TICKS_PER_MS);
  }

  /** A worker's spans (on its clock), each into the step bucket `bucket(span)` says. */
  spans(workerId: string, pid: number, epoch: number, spans: readonly Span[], bucket: (s: Span) => { key: string; step: number }, dropped = 0): void {
    this.spansDroppedByWorkers += dropped;
    for (const s of spans) {
      const b = bucket(s);
      const args = { epoch, ...(s.opSeq !== undefined ? { opSeq: s.opSeq } : {}), step: s.step ?? b.step, ...(s.bytes !== undefined ? { bytes: s.bytes } : {}) };
      this.complete(pid, LANE_TIDS[s.lane], s.lane, s.name, s.start, s.start + s.dur, args, b.key, b.step, workerId);
    }
  }

  /** A complete event on lane `tid` of `pid` from `startMs` to `endMs`, on `worker`'s clock (null: the coordinator's). */
  complete(pid: number, tid: number, cat: string, name: string, startMs: number, endMs: number, args: Record<string, unknown>, key: string, step: number, worker: string | null = null): void {
    this.put(key, step, { ph: 'X', pid, tid, worker, start: startMs, end: Math.max(startMs, endMs), name, cat, args });
  }

  /** A counter sample ('C') on `worker`'s clock (null: the coordinator's): each of `values` is a series of the counter `name` of `pid`. */
  counter(pid: number, name: string, atMs: number, values: Record<string, number>, key: string, step: number, worker: string | null = null): void {
    this.put(key, step, { ph: 'C', pid, tid: COUNTER_TID, worker, start: atMs, end: atMs, name, cat: 'counter', args: values });
  }

  /** An instant ('i') on the coordinator's clock: global (a line across every process) or of process `pid`. Always kept. */
  instant(name: string, atMs: number, scope: 'g' | 'p', pid: number, args: Record<string, unknown>, cat = 'run'): void {
    this.always.push(JSON.stringify({ ph: 'i', s: scope, pid, tid: COUNTER_TID, ts: this.ticks(atMs) / 10, name, cat, args }));
  }

  private put(key: string, step: number, ev: Rec): void {
    if (this.evicted.has(key)) {
      this.dropped++;
      return;
    }
    this.placed = null;
    let b = this.buckets.get(key);
    if (!b) {
      this.buckets.set(key, (b = { step, events: [] }));
      this.newest = key;
      this.stepRuns++;
    }
    b.events.push(ev);
    if (++this.bucketed > this.maxEvents) this.evict(ev.worker === null ? ev.end : (this.toCoordinator(ev.worker, ev.end) ?? this.o.t0));
  }

  /** Over the bound: the head freezes (the first steps, up to half the bound), then the oldest steps after it go. */
  private evict(atMs: number): void {
    if (!this.head) {
      this.head = new Set();
      let n = 0;
      for (const [key, b] of this.buckets) {
        if (this.head.size > 0 && n + b.events.length > this.maxEvents / 2) break;
        this.head.add(key);
        n += b.events.length;
      }
      this.instant('trace truncated: the first and last steps are kept', atMs, 'g', COORDINATOR_PID, { maxEvents: this.maxEvents }, 'trace');
    }
    while (this.bucketed > this.maxEvents) {
      let victim: string | null = null;
      for (const key of this.buckets.keys()) {
        if (this.head.has(key)) continue;
        victim = key;
        break;
      }
      // The newest step may still be filling: it stays, whatever its size.
      if (victim === null || victim === this.newest) return;
      const b = this.buckets.get(victim)!;
      this.buckets.delete(victim);
      this.evicted.add(victim);
      this.bucketed -= b.events.length;
      this.dropped += b.events.length;
    }
  }

  /**
   * Every kept event on the trace's clock, with its worker's offset as estimated now. A lane's
   * spans, in order of their start, are clipped to begin where the one before ended (and left
   * out when nothing is left): offsets err by up to a message's delay, and a worker replaced in
   * its rank carries on the same lanes.
   */
  private place(): { events: Rec[]; clipped: number; unplaced: number } {
    if (this.placed) return this.placed;
    const events: Rec[] = [];
    const lanes = new Map<number, Rec[]>();
    let unplaced = 0;
    for (const b of this.buckets.values()) {
      for (const r of b.events) {
        const off = r.worker === null ? 0 : this.o.sharedClock ? 0 : this.offsets.get(r.worker);
        if (off === undefined) {
          r.s = null;
          unplaced++;
          continue;
        }
        r.s = this.ticks(r.start + off);
        r.e = Math.max(r.s, this.ticks(r.end + off));
        if (r.ph === 'C') {
          events.push(r);
          continue;
        }
        const key = r.pid * 64 + r.tid;
        let l = lanes.get(key);
        if (!l) lanes.set(key, (l = []));
        l.push(r);
      }
    }
    let clipped = 0;
    for (const l of lanes.values()) {
      l.sort((x, y) => x.s! - y.s! || x.e! - y.e!);
      let last = -Infinity;
      for (const r of l) {
        if (r.s! < last) {
          clipped++;
          if (r.e! <= last) continue;
          r.s = last;
        }
        last = r.e!;
        events.push(r);
      }
    }
    return (this.placed = { events, clipped, unplaced });
  }

  summary(): TraceSummary {
    const placed = this.place();
    const events = this.metadataCount(placed.events) + this.always.length + placed.events.length;
    const base = { events, clipped: placed.clipped, unplaced: placed.unplaced };
    if (!this.head) return { ...base, dropped: 0, kept: null };
    const range = (steps: number[]): [number, number] | null => {
      if (!steps.length) return null;
      let lo = Infinity;
      let hi = -Infinity;
      for (const x of steps) [lo, hi] = [Math.min(lo, x), Math.max(hi, x)];
      return [lo, hi];
    };
    const headSteps: number[] = [];
    const tailSteps: number[] = [];
    for (const [key, b] of this.buckets) (this.head.has(key) ? headSteps : tailSteps).push(b.step);
    return { ...base, dropped: this.dropped, kept: { head: range(headSteps) ?? [0, 0], tail: range(tailSteps), of: this.stepRuns } };
  }

  /** "N events" and, when bounded, "steps a..b and c..d kept of S". */
  describe(): string {
    return describeTrace(this.summary());
  }

  /** How many metadata events metadataEvents gives: two per process, two per lane used. */
  private metadataCount(placed: readonly Rec[]): number {
    const lanes = new Set<number>();
    for (const r of placed) if (r.ph === 'X') lanes.add(r.pid * 64 + r.tid);
    return 2 * this.names.size + 2 * lanes.size;
  }

  private metadataEvents(placed: readonly Rec[]): string[] {
    const out: string[] = [];
    for (const [pid, name] of this.names) {
      out.push(JSON.stringify({ ph: 'M', pid, tid: 0, name: 'process_name', args: { name } }));
      out.push(JSON.stringify({ ph: 'M', pid, tid: 0, name: 'process_sort_index', args: { sort_index: pid === COORDINATOR_PID ? -1 : pid } }));
    }
    const lanes = new Set<number>();
    for (const r of placed) if (r.ph === 'X') lanes.add(r.pid * 64 + r.tid);
    for (const lane of [...lanes].sort((a, b) => a - b)) {
      const pid = Math.floor(lane / 64);
      const tid = lane % 64;
      out.push(JSON.stringify({ ph: 'M', pid, tid, name: 'thread_name', args: { name: LANE_NAMES[tid] ?? `lane ${tid}` } }));
      out.push(JSON.stringify({ ph: 'M', pid, tid, name: 'thread_sort_index', args: { sort_index: tid } }));
    }
    return out;
  }

  /** The file's text, in pieces (a big trace is hundreds of MB: written piece by piece). */
  *chunks(extraMetadata: Record<string, unknown> = {}): Generator<string> {
    const s = this.summary();
    const placed = this.place().events;
    const metadata = {
      command: this.o.command,
      clock: this.o.sharedClock
        ? "the simulator's virtual clock (ms), shared by every worker"
        : "the coordinator's performance.now(); each worker's offset estimated as the minimum of (arrival - the worker's clock at sending) over its messages",
      ...this.o.metadata,
      ...extraMetadata,
      events: s.events,
      truncated: s.kept !== null,
      ...(s.kept ? { keptSteps: { head: s.kept.head, tail: s.kept.tail, of: s.kept.of }, droppedEvents: s.dropped, maxEvents: this.maxEvents } : {}),
      clippedSpans: s.clipped,
      unplacedEvents: s.unplaced,
      spansDroppedByWorkers: this.spansDroppedByWorkers,
    };
    yield '{"traceEvents":[\n';
    // Every event but the first is preceded by its comma; pieces of up to 10,000 events.
    let sep = '';
    let piece = '';
    let n = 0;
    const add = (ev: string): string | null => {
      piece += sep + ev;
      sep = ',\n';
      if (++n % 10_000 !== 0) return null;
      const out = piece;
      piece = '';
      return out;
    };
    for (const ev of [...this.metadataEvents(placed), ...this.always]) {
      const out = add(ev);
      if (out !== null) yield out;
    }
    for (const r of placed) {
      const ev =
        r.ph === 'X'
          ? JSON.stringify({ ph: 'X', pid: r.pid, tid: r.tid, ts: r.s! / 10, dur: (r.e! - r.s!) / 10, name: r.name, cat: r.cat, args: r.args })
          : JSON.stringify({ ph: 'C', pid: r.pid, tid: r.tid, ts: r.s! / 10, name: r.name, args: r.args });
      const out = add(ev);
      if (out !== null) yield out;
    }
    if (piece) yield piece;
    yield `\n],"displayTimeUnit":"ms","metadata":${JSON.stringify(metadata)}}\n`;
  }
}

/** What a report says of its trace (RunReport.trace, BenchReport.trace). */
export interface TraceReport extends TraceSummary {
  file: string;
}

/** "N events" and, when bounded, "steps a..b and c..d kept of S, D events dropped". */
export function describeTrace(s: TraceSummary): string {
  const n = `${s.events.toLocaleString('en-US')} events`;
  if (!s.kept) return n;
  const r = ([a, b]: [number, number]) => (a === b ? `${a}` : `${a}..${b}`);
  return `${n}; steps ${r(s.kept.head)}${s.kept.tail ? ` and ${r(s.kept.tail)}` : ''} kept of ${s.kept.of} step runs, ${s.dropped.toLocaleString('en-US')} events dropped`;
}

/** The CLI's line at the end of a run: "trace: FILE (N events; ...)". */
export const traceLine = (t: TraceReport) => `trace: ${t.file} (${describeTrace(t)})\n`;

const LANE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(LANE_TIDS).map(([name, tid]) => [tid, name]));

/** Messages that never change a fault record (the rest may: a fault striking, an abort's answer, a ready, a failure). */
const ROUTINE = new Set<WorkerMessage['type']>(['heartbeat', 'step', 'checkpointed', 'holding', 'bench-result']);

/** Where a fault struck, in words: 'rank 3', 'link 2->5'. */
function faultWhere(f: FaultRecord): string {
  return f.link ? `link ${f.link[0]}->${f.link[1]}` : f.rank !== undefined ? `rank ${f.rank}` : 'the job';
}

/**
 * The recorder fed from a run or a sim: the workers' messages (hook: message) and the machine's state
 * after each batch of events (hook: observe). Ranks are ranks at launch (homes): a replacement
 * carries on in its predecessor's process of the trace.
 */
export class RunTrace {
  readonly rec: TraceRecorder;
  private readonly memberById = new Map<string, CoordinatorMachine['everyone'][number]>();
  private everyoneSeen = 0;
  private epochsSeen = 0;
  private stragglersSeen = 0;
  private stepRuns = -1;
  private readonly stepsSeen = new WeakSet<StepAgg>();
  private faultsDirty = true;
  private lastNow = 0;
  private faultSig = '';
  private readonly faultSeen = new Map<FaultRecord, { injected: boolean; detected: boolean; located: boolean; recovered: boolean }>();

  constructor(
    private readonly m: CoordinatorMachine,
    o: TraceOptions,
  ) {
    this.rec = new TraceRecorder(o);
  }

  private member(workerId: string) {
    const ev = this.m.everyone;
    for (; this.everyoneSeen < ev.length; this.everyoneSeen++) this.memberById.set(ev[this.everyoneSeen]!.workerId, ev[this.everyoneSeen]!);
    return this.memberById.get(workerId);
  }

  /** A message from worker `workerId`, arrived at `now` (the hello too). */
  message(workerId: string, msg: WorkerMessage, now: number): void {
    if (!ROUTINE.has(msg.type)) this.faultsDirty = true;
    switch (msg.type) {
      case 'hello':
      case 'heartbeat':
        return this.rec.clockReading(workerId, msg.clock, now);
      case 'step': {
        this.rec.clockReading(workerId, msg.clock, now);
        const home = this.member(workerId)?.home ?? -1;
        if (home < 0) return;
        const pid = rankPid(home);
        if (msg.spans) this.rec.spans(workerId, pid, msg.epoch, msg.spans, (s) => ({ key: `${msg.epoch}:${s.step ?? msg.step}`, step: s.step ?? msg.step }), msg.spansDropped);
        if (msg.clock !== undefined) this.rec.counter(pid, 'step ms', msg.clock, { step: msg.timings.stepMs, allreduce: msg.timings.allreduceMs, compute: msg.timings.computeMs }, `${msg.epoch}:${msg.step}`, msg.step, workerId);
        return;
      }
      default:
        return;
    }
  }

  /** The machine's state after events, at `now`: epochs, faults, stragglers, counted steps. */
  observe(now: number): void {
    this.lastNow = now;
    const m = this.m;
    const t0 = this.rec.o.t0;
    for (; this.epochsSeen < m.epochs.length; this.epochsSeen++) {
      const e = m.epochs[this.epochsSeen]!;
      this.rec.instant(`epoch ${e.epoch}: ${e.reason}`, t0 + e.startedAtMs, 'g', COORDINATOR_PID, { epoch: e.epoch, fromStep: e.fromStep, cards: e.cards, algo: e.algo, workers: e.members.length }, 'epoch');
    }
    // The faults are looked at when something that changes them may have happened: not after
    // every heartbeat and step report (a scenario may hold 100,000 faults).
    const sig = `${m.faults.length} ${m.epoch} ${m.restarts} ${m.phase} ${m.stragglers.length}`;
    if (this.faultsDirty || sig !== this.faultSig) {
      this.faultsDirty = false;
      this.faultSig = sig;
      for (const f of m.faults) this.observeFault(f, now);
    }
    for (; this.stragglersSeen < m.stragglers.length; this.stragglersSeen++) {
      const s = m.stragglers[this.stragglersSeen]!;
      const what = s.kind === 'node' ? `rank ${s.rank}` : `link ${s.link![0]}->${s.link![1]}`;
      const args = { kind: s.kind, score: s.score, slowdown: s.slowdown, firstSeenStep: s.firstSeenStep, detectedAtStep: s.detectedAtStep, action: s.action, injected: s.injected };
      if (s.kind === 'node' && s.rank !== undefined) this.rec.instant(`straggler confirmed: ${what}`, now, 'p', rankPid(s.rank), args, 'straggler');
      else this.rec.instant(`straggler confirmed: ${what}`, now, 'g', COORDINATOR_PID, args, 'straggler');
    }
    if (m.steps.runs !== this.stepRuns) {
      this.stepRuns = m.steps.runs;
      for (const [step, s] of m.steps.final) {
        if (this.stepsSeen.has(s) || s.doneAt === undefined) continue;
        this.stepsSeen.add(s);
        const key = `${s.epoch ?? 0}:${step}`;
        this.rec.counter(COORDINATOR_PID, 'step ms', s.doneAt, { step: s.stepMs }, key, step);
        this.rec.counter(COORDINATOR_PID, 'all-reduce ms', s.doneAt, { allreduce: s.allreduceMs }, key, step);
      }
    }
  }

  private observeFault(f: FaultRecord, now: number): void {
    let seen = this.faultSeen.get(f);
    if (!seen) this.faultSeen.set(f, (seen = { injected: false, detected: false, located: false, recovered: false }));
    const where = faultWhere(f);
    const pid = f.rank !== undefined ? rankPid(f.rank) : f.link ? rankPid(f.link[0]) : COORDINATOR_PID;
    const args = { ...(f.id !== undefined ? { id: f.id } : {}), kind: f.kind, where, atStep: f.atStep, phase: f.phase, injected: f.injected };
    if (!seen.injected && f.injectedAt !== null) {
      seen.injected = true;
      this.rec.instant(`fault injected: ${f.kind} at ${where}`, f.injectedAt, 'p', pid, args, 'fault');
    }
    if (!seen.detected && f.detectedBy !== null) {
      seen.detected = true;
      const at = f.injectedAt !== null && f.detectedAfterMs !== null ? f.injectedAt + f.detectedAfterMs : now;
      this.rec.instant(`fault detected: ${f.kind} at ${where} by ${f.detectedBy}`, at, 'g', COORDINATOR_PID, { ...args, detectedBy: f.detectedBy, detectedAfterMs: f.detectedAfterMs }, 'fault');
    }
    if (!seen.located && f.located !== null) {
      seen.located = true;
      this.rec.instant(`fault located: ${f.located}`, now, 'g', COORDINATOR_PID, { ...args, located: f.located, action: f.action }, 'fault');
    }
    if (!seen.recovered && f.recoveredAfterMs !== null) {
      seen.recovered = true;
      this.rec.instant(`fault recovered: ${f.kind} at ${where}`, now, 'g', COORDINATOR_PID, { ...args, action: f.action, restoredFrom: f.restoredFrom, recoveredAfterMs: f.recoveredAfterMs, lostSteps: f.lostSteps }, 'fault');
    }
  }

  /** The processes' names ('rank R (worker PID)', with the replacements' pids after), then the file's pieces. */
  chunks(extraMetadata: Record<string, unknown> = {}): Generator<string> {
    // One last look at everything, as the run ended.
    this.faultsDirty = true;
    this.observe(this.lastNow);
    const pids = new Map<number, number[]>();
    for (const mem of this.m.everyone) {
      if (mem.home < 0) continue;
      const list = pids.get(mem.home) ?? [];
      list.push(mem.pid);
      pids.set(mem.home, list);
    }
    for (const [home, list] of pids) this.rec.nameProcess(rankPid(home), processName(home, list));
    return this.rec.chunks(extraMetadata);
  }
}

/** 'rank 3 (worker 1234)', or with its replacements 'rank 3 (worker 1234, then 1301)'. */
export function processName(home: number, pids: readonly number[]): string {
  return `rank ${home} (worker ${pids[0]}${pids.length > 1 ? `, then ${pids.slice(1).join(', ')}` : ''})`;
}
