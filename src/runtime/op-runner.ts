// Runs one collective op at a time over a Transport: encodes and sends what the pure collective
// emits, validates and routes incoming frames by (epoch, op sequence id), holds frames that arrive
// early for the next op, drops stale ones, and aborts an op that makes no progress (watchdog).
// Time comes from an injected Clock: the watchdog, the link-busy clocks and every timing. An op
// is over once all it needs has come in and all it sent is written (handed to the kernel).
import { bytesOf, elementBytes, viewElements, type DType, type Elements } from '../collective/dtypes.js';
import { createCollective } from '../collective/index.js';
import type { ChunkSend, Collective, CollectiveKind, CollectiveOptions, Progress } from '../collective/types.js';
import { closeReason, isRingswarmError, RingswarmError } from '../protocol/errors.js';
import { decodeFrame, FRAME_HEADER_BYTES, payloadChecksum, sealFrame, sealHeader, type DecodedFrame } from '../protocol/frame.js';
import { crc32c } from '../native/kernels.js';
import { realClock, type Clock, type TimerHandle } from './clock.js';
import type { CpuTimes } from './cpu-wait.js';
import { FramePool } from './frame-pool.js';
import type { Transport } from './transport.js';

/** Payloads from a caller's buffer smaller than this are copied into one frame; larger go as two fragments. */
const COPY_BELOW_BYTES = 64 << 10;
/** Frames held for ops not started yet, at most. */
const MAX_EARLY_BYTES = 1 << 30;
/** A new op waits until the previous ones' frames are down to this many bytes queued. */
const MAX_PENDING_BYTES = 64 << 20;
/** How long a reading of the thread's CPU times serves later turns of the event loop (see OpRunner.awakeMs). */
const AWAKE_READING_MS = 1;

export interface OpRunnerOptions {
  rank: number;
  epoch: number;
  dtype: DType;
  chunkElems: number;
  /**
   * An op that makes no progress for this long is stalled: no frame of it received and none of its
   * frames written. A slow op that keeps moving never stalls, however long it takes.
   */
  timeoutMs: number;
  /**
   * Without progress for this long the op fails with RS_ERR_TIMEOUT (default: timeoutMs). Larger
   * (or Infinity) with `onStall` set: the worker reports the stall and the coordinator, which sees
   * every rank's progress, decides (a partner that has not begun the op yet looks dead from here).
   */
  failAfterMs?: number;
  /** Called once per stall, when the op has made no progress for timeoutMs (again after it moved). */
  onStall?: (s: StallInfo) => void;
  /** Where time comes from (default: the process's own clock). */
  clock?: Clock;
  /**
   * This thread's time on a CPU and waiting for one so far, where the system says: the link clocks
   * run only while the thread sleeps (see LinkTiming.busyMs). Absent: they run on wall time.
   */
  cpuTimes?: () => CpuTimes;
  /** CRC32C on every frame (sent and checked); off only to measure what it costs. */
  checksums: boolean;
  /**
   * A bad frame that came in after the op under way had already failed or been aborted (a partner
   * lost first, say): nothing in this epoch will fail with it, so it is handed here, to be reported
   * as a sign of its own. Without it, such a frame fails the next op instead.
   */
  onLateBadFrame?: (e: RingswarmError) => void;
  /** Called after each chunk is applied, with how many of that phase this op has received (fault triggers). */
  delivered?: (opSeq: number, phase: string, received: number) => void;
  /** --trace: time each phase of every op, its sends and its receives (OpTimings.phases). Off, a frame costs one test more. */
  trace?: boolean;
}

/** --trace: one phase of an op on this rank, on the runner's clock (ms); NaN where it sent or received nothing. */
export interface PhaseTiming {
  phase: string;
  /** The first frame of the phase handed to the transport, and the last of them written. */
  sendStart: number;
  sendEnd: number;
  /** The first frame of the phase received (taken from the transport, or from the early ones held), and the last of them applied. */
  recvStart: number;
  recvEnd: number;
  bytesSent: number;
  bytesReceived: number;
}

function newPhaseTiming(phase: string): PhaseTiming {
  return { phase, sendStart: NaN, sendEnd: NaN, recvStart: NaN, recvEnd: NaN, bytesSent: 0, bytesReceived: 0 };
}

/** What the runner knows when an op stalls (for the worker's report to the coordinator). */
export interface StallInfo {
  opSeq: number;
  /** Since the op's last progress (or its start). */
  idleMs: number;
  /** Frames of this op received plus frames of it written so far. */
  moved: number;
  progress: Progress;
}

interface Active {
  opSeq: number;
  collective: Collective;
  resolve: () => void;
  reject: (e: Error) => void;
  /** When the op last moved (a frame of it received or written), or started. */
  lastProgress: number;
  /** Frames of this op received + frames of it written: grows while the op moves. */
  moved: number;
  /** The lastProgress at which onStall was last called (once per stall). */
  stallReported: number | null;
  timer: TimerHandle | null;
  /** Frames of this op not yet written: the op ends only when they are. */
  unwritten: number;
  receivedByPhase: Map<string, number>;
  startedAt: number;
  /** The thread's awake time at the start (see OpRunner.awakeMs). */
  awakeAtStart: number;
  /** Time spent handling frames (the rest of the op was waiting for them). */
  busyMs: number;
  bytesSent: number;
  /** Bytes sent to each peer in this op (headers included). */
  bytesTo: Map<number, number>;
  /** --trace: per phase (in the order first seen), its timing; null when not tracing. */
  phases: PhaseTiming[] | null;
}

/** One directed link this rank sent on during an op. */
export interface LinkTiming {
  peer: number;
  /** Bytes (headers included) sent to `peer` in the op. */
  bytes: number;
  /**
   * Time with at least one frame to `peer` handed to the transport and not yet written, counted
   * only while this rank's thread slept (neither on a CPU nor waiting for one; all of it where
   * `cpuTimes` is not given): the time the link, and nothing on this rank, kept bytes waiting.
   * Every interval has this rank blocked with bytes for the link not yet taken, so this is at
   * most how long the link took. A sender that waits for a CPU, or runs, with a frame in flight
   * delays the frame's `written` callback, not the link: on a crowded machine that was most of
   * the raw interval, many times a clean link's time, on whichever rank was descheduled (under
   * recursive doubling, which is idle between its rounds, nearly always one). What a late
   * partner costs is not in it either: a receiver reads whatever round it is in.
   */
  busyMs: number;
}

/** A link's busy clock: the union of the intervals with frames to one peer not yet written, less the thread's CPU time and wait in them. */
interface LinkClock {
  /** The op frames to the peer not yet written. */
  inFlight: number;
  /** Checkpoint copies to the peer not yet written: the clock stops while there are any. */
  copies: number;
  since: number;
  /** The thread's awake time at `since`. */
  awakeSince: number;
  busyMs: number;
}

/** What one op cost on this rank, measured on this process's clock only (for straggler detection). */
export interface OpTimings {
  /** The whole op. */
  opMs: number;
  /** Idle in the op, waiting for frames from the predecessor. */
  waitMs: number;
  /** Time with at least one frame to a successor handed to the transport and not yet written. */
  linkMs: number;
  /** Of opMs, the time this rank's thread slept (null where `cpuTimes` is not given): what its link clocks are judged against. */
  sleptMs: number | null;
  bytesSent: number;
  /** Per peer this op sent to, in peer order: every algorithm's every link (the fabric). */
  links: LinkTiming[];
  /** --trace: when the op started and ended on the runner's clock, and each phase's timing. */
  trace?: { start: number; end: number; phases: PhaseTiming[] };
}

export interface OpRunnerStats {
  framesSent: number;
  framesReceived: number;
  bytesSent: number;
  staleDropped: number;
  badFrames: number;
}

export class OpRunner {
  private active: Active | null = null;
  private early: { from: number; frame: DecodedFrame; raw: Uint8Array }[] = [];
  private earlyBytes = 0;
  /** Payload views that sit right behind a frame header we own, so they can be sent without a copy. */
  private readonly headroom = new WeakMap<Elements, Uint8Array>();
  private lastOpSeq = -1;
  /** A bad frame that arrived while no op was under way. */
  private poisoned: RingswarmError | null = null;
  /** The last op ended without completing (failed or aborted). */
  private lastEndedUnfinished = false;
  readonly stats: OpRunnerStats = { framesSent: 0, framesReceived: 0, bytesSent: 0, staleDropped: 0, badFrames: 0 };

  private readonly clock: Clock;

  constructor(
    private readonly transport: Transport,
    private o: OpRunnerOptions,
    private readonly log: (line: string) => void = () => {},
    /** Frames to send, and (over WebSockets) the frames the transport receives into. */
    private readonly pool = new FramePool(),
  ) {
    this.clock = o.clock ?? realClock();
  }

  get epoch(): number {
    return this.o.epoch;
  }

  /** Largest payload a frame of this runner may carry. */
  get maxPayload(): number {
    return this.o.chunkElems * elementBytes(this.o.dtype);
  }

  /** A new epoch: abort the op under way and forget everything from the old one. */
  setEpoch(epoch: number, rank = this.o.rank): void {
    this.o = { ...this.o, epoch, rank };
    // Frames carry the epoch: sequence ids need only be unique within one, and a rollback re-runs them.
    this.lastOpSeq = -1;
    this.poisoned = null;
    for (const e of this.early) this.pool.release(e.raw);
    this.early = [];
    this.earlyBytes = 0;
    this.abort(new RingswarmError('RS_ERR_ABORTED', `epoch ${epoch} started`));
    this.lastEndedUnfinished = false;
  }

  abort(err: Error): void {
    const a = this.active;
    if (!a) return;
    this.active = null;
    this.lastEndedUnfinished = true;
    this.clock.clearTimer(a.timer);
    a.reject(err);
  }

  /**
   * The op under way, for heartbeats. `moved` (frames of this op received + written) only grows
   * within an op, so (opSeq, moved) only grows within an epoch: the coordinator compares it
   * between heartbeats to see which ranks move.
   */
  progress(): (Progress & { opSeq: number; moved: number }) | null {
    const a = this.active;
    return a ? { opSeq: a.opSeq, ...a.collective.progress(), moved: a.moved } : null;
  }


  private alloc = (count: number): Elements => {
    const { frame, payload } = this.pool.acquire(count * elementBytes(this.o.dtype));
    const view = viewElements(this.o.dtype, payload);
    this.headroom.set(view, frame);
    return view;
  };

  /**
   * Run one op. `opSeq` must grow by one per op on every rank alike. Resolves when this rank's part
   * is complete; rejects with RS_ERR_TIMEOUT when no frame of it is received or written for
   * failAfterMs (default timeoutMs), or when aborted.
   */
  async run(kind: CollectiveKind, opSeq: number, opts: Omit<CollectiveOptions, 'rank' | 'dtype' | 'chunkElems' | 'alloc'>): Promise<void> {
    if (this.transport.pendingBytes > MAX_PENDING_BYTES) await this.transport.drained(MAX_PENDING_BYTES);
    if (this.poisoned) {
      const e = this.poisoned;
      this.poisoned = null;
      throw e;
    }
    if (this.active) throw new RingswarmError('RS_ERR_INTERNAL', `op ${opSeq} started while op ${this.active.opSeq} is under way`);
    if (opSeq <= this.lastOpSeq) throw new RingswarmError('RS_ERR_INTERNAL', `op sequence went back from ${this.lastOpSeq} to ${opSeq}`);
    this.lastOpSeq = opSeq;
    this.lastEndedUnfinished = false;
    // Every field named, in one order: an object spread here gave each op's options (and what the
    // collective builds from them) a hidden class of its own, which left the hot path's property
    // loads megamorphic.
    const collective = createCollective(kind, {
      rank: this.o.rank,
      size: opts.size,
      dtype: this.o.dtype,
      op: opts.op,
      buffer: opts.buffer,
      input: opts.input,
      chunkElems: this.o.chunkElems,
      divisor: opts.divisor,
      root: opts.root,
      algo: opts.algo,
      alloc: this.alloc,
    });
    return new Promise<void>((resolve, reject) => {
      const a: Active = {
        opSeq,
        collective,
        resolve,
        reject,
        lastProgress: this.clock.now(),
        moved: 0,
        stallReported: null,
        unwritten: 0,
        startedAt: this.clock.now(),
        awakeAtStart: this.awakeMs(this.clock.now()),
        busyMs: 0,
        bytesSent: 0,
        bytesTo: new Map(),
        receivedByPhase: new Map(),
        timer: null,
        phases: this.o.trace ? [] : null,
      };
      this.active = a;
      this.armWatchdog(a, this.o.timeoutMs);
      try {
        const t = this.clock.now();
        this.sendAll(a, collective.start());
        a.busyMs += this.clock.now() - t;
        const held = this.early.filter((e) => e.frame.header.opSeq === opSeq);
        if (held.length) {
          this.early = this.early.filter((e) => e.frame.header.opSeq > opSeq);
          this.earlyBytes = this.early.reduce((n, e) => n + e.raw.byteLength, 0);
        }
        for (const e of held) this.deliver(a, e.from, e.frame, e.raw);
        this.finishIfDone(a);
      } catch (e) {
        this.fail(a, e);
      }
    });
  }

  /** One timer per op, at the next deadline; progress does not touch it (it re-arms when it fires). */
  private armWatchdog(a: Active, ms: number): void {
    a.timer = this.clock.setTimer(ms, () => this.watchdog(a, false));
  }

  /**
   * At a deadline: an op that moved meanwhile re-arms for the rest; a stalled one is reported
   * (onStall), then fails once idle for failAfterMs. The verdict waits for one more turn of the
   * event loop (`confirming`): timers run before pending socket reads, so a process back from a
   * long wait for a CPU would otherwise fail an op whose frames sit unread in its buffers.
   */
  private watchdog(a: Active, confirming: boolean): void {
    if (this.active !== a) return;
    a.timer = null;
    const { timeoutMs } = this.o;
    const failAfterMs = this.o.failAfterMs ?? timeoutMs;
    const idle = this.clock.now() - a.lastProgress;
    // (A microsecond of slack: clock values are floats, and now + (timeout - idle) can round back to now.)
    if (idle < timeoutMs - 1e-3) return this.armWatchdog(a, timeoutMs - idle);
    if (!confirming) {
      a.timer = this.clock.setTimer(0, () => this.watchdog(a, true));
      return;
    }
    if (this.o.onStall && a.stallReported !== a.lastProgress) {
      a.stallReported = a.lastProgress;
      this.o.onStall({ opSeq: a.opSeq, idleMs: idle, moved: a.moved, progress: a.collective.progress() });
      if (this.active !== a) return;
    }
    if (idle < failAfterMs) {
      // Next look: when it would fail, or a timeout after the last progress, whichever comes first
      // (by then it has moved, or it is still stalled and the report is already made).
      return this.armWatchdog(a, Math.min(failAfterMs, idle + timeoutMs) - idle);
    }
    const p = a.collective.progress();
    this.fail(
      a,
      new RingswarmError(
        'RS_ERR_TIMEOUT',
        `op ${a.opSeq} made no progress for ${Math.round(idle)} ms (rank ${this.o.rank}, ${p.phase} step ${p.step}, ${p.chunksReceived}/${p.chunksExpected} chunks received, ${a.moved} frames moved)`,
      ),
    );
  }

  /** A frame of the op received or written. */
  private moved(a: Active): void {
    a.moved++;
    a.lastProgress = this.clock.now();
  }

  private fail(a: Active, e: unknown): void {
    if (this.active !== a) return;
    this.active = null;
    this.lastEndedUnfinished = true;
    this.clock.clearTimer(a.timer);
    a.reject(e instanceof Error ? e : new Error(String(e)));
  }

  private finishIfDone(a: Active): void {
    if (this.active === a && a.collective.done && a.unwritten === 0) {
      this.active = null;
      this.clock.clearTimer(a.timer);
      const t = this.clock.now();
      const opMs = t - a.startedAt;
      const awake = this.awakeMs(t);
      // Frames still unwritten at the end of the op (an earlier, abandoned op's) count up
      // to now, and the rest of their time goes to the next op.
      const linkMs = this.linkMs + (this.linkInFlight > 0 ? t - this.linkSince : 0);
      this.linkMs = 0;
      if (this.linkInFlight > 0) this.linkSince = t;
      const links: LinkTiming[] = [];
      for (const [peer, c] of this.peerLinks) {
        if (c.inFlight > 0) this.countBusy(c, t, awake);
        const busyMs = c.busyMs;
        c.busyMs = 0;
        if (c.inFlight === 0 && c.copies === 0) this.peerLinks.delete(peer);
        const bytes = a.bytesTo.get(peer);
        if (bytes !== undefined) links.push({ peer, bytes, busyMs });
      }
      links.sort((x, y) => x.peer - y.peer);
      const sleptMs = this.o.cpuTimes ? Math.max(0, opMs - (awake - a.awakeAtStart)) : null;
      const last: OpTimings = { opMs, waitMs: Math.max(0, opMs - a.busyMs), linkMs, sleptMs, bytesSent: a.bytesSent, links };
      if (a.phases) last.trace = { start: a.startedAt, end: t, phases: a.phases };
      this.last = last;
      a.resolve();
    }
  }

  /** Entry point for every frame the transport receives. Never throws. */
  onFrame(from: number, raw: Uint8Array): void {
    let frame: DecodedFrame;
    try {
      // Structure first, then the epoch (a stale frame is dropped whatever its payload), then the checksum.
      frame = decodeFrame(raw, { maxPayload: this.o.chunkElems * elementBytes(this.o.dtype), verifyChecksum: false });
      if (frame.header.epoch !== this.o.epoch) {
        this.stats.staleDropped++;
        this.pool.release(raw);
        return;
      }
      if (this.o.checksums) {
        const actual = payloadChecksum(frame.payload, crc32c);
        if (actual !== frame.header.checksum) {
          throw new RingswarmError('RS_ERR_CHECKSUM', `frame checksum ${frame.header.checksum.toString(16)} does not match payload CRC32C ${actual.toString(16)} (${frame.payload.byteLength} bytes)`);
        }
      }
    } catch (e) {
      // A bad frame is never applied: the link it came on is closed with the error's close code,
      // and the op under way fails with the error (a corrupt frame is a fault to recover from).
      this.stats.badFrames++;
      this.pool.release(raw);
      const err = isRingswarmError(e) ? e : new RingswarmError('RS_ERR_BAD_FRAME', String(e));
      this.log(`bad frame from rank ${from}: ${err.code}: ${err.message}`);
      const failure = new RingswarmError(err.code, `from rank ${from}: ${err.message}`);
      // Between ops (a frame held early), the next op fails with it instead.
      if (this.active) this.fail(this.active, failure);
      else if (this.lastEndedUnfinished && this.o.onLateBadFrame) this.o.onLateBadFrame(failure);
      else this.poisoned = failure;
      this.transport.dropLink(from, err.closeCode, closeReason(err));
      return;
    }
    this.stats.framesReceived++;
    const h = frame.header;
    const a = this.active;
    if (a && h.opSeq === a.opSeq) {
      try {
        const t = this.clock.now();
        this.deliver(a, from, frame, raw);
        a.busyMs += this.clock.now() - t;
        this.finishIfDone(a);
      } catch (e) {
        this.fail(a, e);
      }
      return;
    }
    if (h.opSeq > this.lastOpSeq) {
      // A peer that needs nothing from us (a broadcast root) may run ops ahead: hold its frames,
      // within a bound, until we get there. Links are FIFO, so they arrive in the order we use them.
      if (this.earlyBytes + raw.byteLength > MAX_EARLY_BYTES) {
        this.stats.badFrames++;
        this.log(`frame for op ${h.opSeq} from rank ${from} while at op ${this.lastOpSeq}: over ${MAX_EARLY_BYTES} bytes held, dropped`);
        this.pool.release(raw);
        return;
      }
      this.early.push({ from, frame, raw });
      this.earlyBytes += raw.byteLength;
      return;
    }
    this.stats.staleDropped++;
    this.pool.release(raw);
  }

  /** --trace: the timing of `phase` in op `a` (a handful of phases an op: a scan beats a map). */
  private phaseOf(a: Active, phase: string): PhaseTiming | null {
    const ps = a.phases;
    if (!ps) return null;
    for (const p of ps) if (p.phase === phase) return p;
    const p = newPhaseTiming(phase);
    ps.push(p);
    return p;
  }

  private deliver(a: Active, from: number, frame: DecodedFrame, raw: Uint8Array): void {
    const h = frame.header;
    const pt = a.phases && this.phaseOf(a, h.phase);
    if (pt) {
      if (Number.isNaN(pt.recvStart)) pt.recvStart = this.clock.now();
      pt.bytesReceived += raw.byteLength;
    }
    const data = viewElements(this.o.dtype, frame.payload);
    const inPlace = data.buffer === raw.buffer && data.byteOffset === raw.byteOffset + FRAME_HEADER_BYTES;
    if (inPlace) this.headroom.set(data, raw);
    this.moved(a);
    const out = a.collective.onChunk({ from, phase: h.phase, step: h.step, chunk: h.chunk, offset: h.offset, data, checksum: h.checksum });
    this.sendAll(a, out);
    // A frame forwarded as it is goes back to the pool once written (in sendAll); any other now.
    if (!(inPlace && out.some((c) => c.data === data))) this.pool.release(raw);
    if (pt) pt.recvEnd = this.clock.now();
    if (this.o.delivered) {
      const n = (a.receivedByPhase.get(h.phase) ?? 0) + 1;
      a.receivedByPhase.set(h.phase, n);
      this.o.delivered(a.opSeq, h.phase, n);
    }
  }

  /** Timings of the last op that completed. */
  last: OpTimings | null = null;
  private linkMs = 0;
  private linkInFlight = 0;
  private linkSince = 0;
  /** Per peer, its link's busy clock (kept while frames to it are unwritten, across ops). */
  private readonly peerLinks = new Map<number, LinkClock>();

  /**
   * Count a frame of op `a` to `to` into the link-busy times (the union of intervals with frames
   * not yet written: over all links, and per link). The returned callback is its `written`: a
   * frame written is progress of its op.
   */
  private linkSent(a: Active, to: number, bytes: number): (ok: boolean) => void {
    const now = this.clock.now();
    let c = this.peerLinks.get(to);
    if (!c) this.peerLinks.set(to, (c = { inFlight: 0, copies: 0, since: now, awakeSince: 0, busyMs: 0 }));
    if (c.inFlight++ === 0) {
      c.since = now;
      c.awakeSince = this.awakeMs(now);
    }
    const link = c;
    if (this.linkInFlight++ === 0) this.linkSince = now;
    a.bytesSent += bytes;
    a.bytesTo.set(to, (a.bytesTo.get(to) ?? 0) + bytes);
    return (ok) => {
      const t = this.clock.now();
      if (--this.linkInFlight === 0) this.linkMs += t - this.linkSince;
      if (--link.inFlight === 0) this.countBusy(link, t, this.awakeMs(t));
      if (ok && this.active === a) this.moved(a);
    };
  }

  /** The last reading of awakeMs, when it was taken, and whether the turn of the event loop it was taken in is still under way. */
  private awake: { at: number; ms: number; sameTurn: boolean } | null = null;

  /**
   * The thread's time awake so far (on a CPU or waiting for one: `cpuTimes` run + wait; 0 where
   * not given), at `now`. It is wanted at every link interval's ends, two or three times a frame,
   * and each read of /proc is a system call (on a 2-rank ring, reading every turn made an 8 B op
   * 7-10% slower). So a reading serves:
   * - the rest of its turn of the event loop, exactly: within a turn the thread runs JavaScript,
   *   never sleeps, so it has been awake all the time since;
   * - and later turns for AWAKE_READING_MS, as if awake all along. A link interval's busy time is
   *   then off by at most that much at each end, against the detector's 1 ms floor for a link.
   */
  private awakeMs(now: number): number {
    const read = this.o.cpuTimes;
    if (!read) return 0;
    const a = this.awake;
    if (a && (a.sameTurn || now - a.at < AWAKE_READING_MS)) return a.ms + (now - a.at);
    const c = read();
    const r = { at: now, ms: c.runMs + c.waitMs, sameTurn: true };
    this.awake = r;
    queueMicrotask(() => (r.sameTurn = false));
    return r.ms;
  }

  /** Add a link's busy time from `since` up to `t` (awake time `awake`), less the time the thread was awake in it; the clock goes on from `t`. */
  private countBusy(c: LinkClock, t: number, awake: number): void {
    if (c.copies === 0) c.busyMs += Math.max(0, t - c.since - (awake - c.awakeSince));
    c.since = t;
    c.awakeSince = awake;
  }

  /**
   * Send a frame that belongs to no op (a checkpoint copy) on the link to `to`. It is not in the
   * link's figures: a copy of several MiB waits on its receiver's reads where an op's frames fit
   * the socket's buffers, so its time per byte says little about the link and, under recursive
   * doubling (where only some links carry copies), set those links apart; nor is the time an
   * op's frame waits behind a copy (the link's clock stops while a copy is unwritten): that is
   * the checkpoint's cost, not the link's.
   */
  sendFrame(to: number, frame: Uint8Array | readonly [Uint8Array, Uint8Array], written?: (ok: boolean) => void): void {
    let c = this.peerLinks.get(to);
    if (!c) this.peerLinks.set(to, (c = { inFlight: 0, copies: 0, since: 0, awakeSince: 0, busyMs: 0 }));
    const link = c;
    if (link.copies++ === 0 && link.inFlight > 0) {
      const t = this.clock.now();
      this.countBusy(link, t, this.awakeMs(t));
    }
    this.transport.send(to, frame, (ok) => {
      if (--link.copies === 0 && link.inFlight > 0) {
        const t = this.clock.now();
        link.since = t;
        link.awakeSince = this.awakeMs(t);
      }
      written?.(ok);
    });
  }

  private corrupting = 0;

  /** Fault injection: flip a payload byte in each of the next `frames` frames sent (after the checksum). */
  corruptNext(frames: number): void {
    this.corrupting += frames;
  }

  private corrupt(frame: Uint8Array): void {
    this.corrupting--;
    const at = frame.byteLength > FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES + ((frame.byteLength - FRAME_HEADER_BYTES) >> 1) : 28;
    frame[at] ^= 0x5a;
  }

  private sendAll(a: Active, out: ChunkSend[]): void {
    // Held while sending: a transport that calls `written` at once must not end the op before
    // its last frame is sent (the caller looks at the op once this returns).
    a.unwritten++;
    try {
      this.sendEach(a, out);
    } finally {
      a.unwritten--;
    }
  }

  private sendEach(a: Active, out: ChunkSend[]): void {
    for (const c of out) {
      const checksum = this.o.checksums ? c.checksum : 0;
      const fields = { phase: c.phase, epoch: this.o.epoch, opSeq: a.opSeq, step: c.step, chunk: c.chunk, offset: c.offset, src: this.o.rank, checksum };
      this.stats.framesSent++;
      const pt = a.phases && this.phaseOf(a, c.phase);
      if (pt && Number.isNaN(pt.sendStart)) pt.sendStart = this.clock.now();
      let frame = this.headroom.get(c.data);
      if (!frame && (c.data.byteLength < COPY_BELOW_BYTES || this.corrupting > 0)) {
        // Small: one copy costs less than the second write a separate payload fragment takes.
        const f = this.pool.acquire(c.data.byteLength);
        f.payload.set(bytesOf(c.data));
        frame = f.frame;
      }
      if (frame) {
        // Staged or received: a frame of our own, back to the pool once written.
        sealFrame(frame, fields, crc32c);
        if (this.corrupting > 0) this.corrupt(frame);
        this.stats.bytesSent += frame.byteLength;
        const owned = frame;
        const pooled = this.pool.owns(frame);
        const done = this.linkSent(a, c.to, frame.byteLength);
        if (pt) pt.bytesSent += frame.byteLength;
        a.unwritten++;
        this.transport.send(c.to, frame, (ok) => {
          done(ok);
          if (pt) pt.sendEnd = this.clock.now();
          if (ok && pooled) this.pool.release(owned);
          a.unwritten--;
          this.finishIfDone(a);
        });
        continue;
      }
      // A view of the caller's buffer: header and payload go as two fragments (socket writes do
      // not copy: the caller may reuse the buffer once the op is over, all its frames written).
      const payload = bytesOf(c.data);
      const header = sealHeader(fields, payload, crc32c);
      this.stats.bytesSent += header.byteLength + payload.byteLength;
      a.unwritten++;
      const done = this.linkSent(a, c.to, header.byteLength + payload.byteLength);
      if (pt) pt.bytesSent += header.byteLength + payload.byteLength;
      this.transport.send(c.to, [header, payload], (ok) => {
        done(ok);
        if (pt) pt.sendEnd = this.clock.now();
        a.unwritten--;
        this.finishIfDone(a);
      });
    }
  }
}
