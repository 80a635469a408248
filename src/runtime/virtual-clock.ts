// A virtual clock for `ringswarm sim` and tests: a discrete-event scheduler. Timers wait in
// order of (time, creation order); run() fires them one at a time, moving the clock to each
// timer's time, and lets every promise continuation run before the next one, so the code under it
// sees the same order of events on every run. A trace (a running SHA-256 of labels and the virtual
// times they were logged at) tells two runs apart.
//
// The queue is a binary heap of instants, each with the timers due then in the order they were set
// (a FIFO): a simulation sets most of its timers at a few instants (a whole swarm's frames land at
// once), so the heap stays small and setting or firing a timer is mostly an array push or a step.
import { createHash, type Hash } from 'node:crypto';
import type { Clock, TimerHandle } from './clock.js';

/** A timer is its own handle: clearing it needs no lookup. `fn` is null once fired or cleared. */
interface Timer extends TimerHandle {
  fn: (() => void) | null;
}

/** The timers due at one instant, in the order they were set; those before `head` are done. */
interface Instant {
  at: number;
  timers: Timer[];
  head: number;
}

export interface RunOptions {
  /** Stop before the first timer later than this; the clock is then moved to it (also when idle). */
  untilMs?: number;
  /** Stop after firing this many timers. */
  maxEvents?: number;
  /** Checked before each timer, once the previous one's continuations have run. */
  stop?: () => boolean;
  /** Fire timers due at the same instant without draining promise continuations between them (faster; still deterministic). */
  sameInstant?: boolean;
}

export interface RunResult {
  events: number;
  nowMs: number;
  reason: 'idle' | 'until' | 'max-events' | 'stopped';
}

/** Cancelled timers are taken out of the queue once they are this many and half of it. */
const COMPACT_AT = 1024;

/** Resolves once the microtask queue is empty: setImmediate runs only after it has drained. */
const drainMicrotasks = (): Promise<void> => new Promise((r) => setImmediate(r));

export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  /** Instants with timers, earliest first (a binary heap on `at`; no two share one). */
  private heap: Instant[] = [];
  private readonly instants = new Map<number, Instant>();
  /** Where the last timer went: most timers are set at the instant the one before was. */
  private last: Instant | null = null;
  /** Timers in the queue: live ones and cancelled ones not yet taken out. */
  private queued = 0;
  private cancelled = 0;
  private live = 0;
  private running = false;
  private hash: Hash = createHash('sha256');
  /** Labels traced so far. */
  traceEvents = 0;
  /** Timers fired over the clock's life. */
  fired = 0;

  constructor(startMs = 0) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    if (Number.isNaN(ms) || ms === Infinity) throw new RangeError(`timer delay must be a finite number of ms, got ${ms}`);
    const at = this.t + Math.max(0, ms);
    const timer: Timer = { id: ++this.seq, fn };
    let i = this.last;
    if (i === null || i.at !== at) {
      i = this.instants.get(at) ?? this.addInstant(at);
      this.last = i;
    }
    i.timers.push(timer);
    this.queued++;
    this.live++;
    return timer;
  }

  clearTimer(h: TimerHandle | null | undefined): void {
    const timer = h as Timer | null | undefined;
    if (!timer || timer.fn == null) return;
    timer.fn = null;
    this.live--;
    if (++this.cancelled >= COMPACT_AT && this.cancelled * 2 >= this.queued) this.compact();
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimer(ms, resolve));
  }

  /** Timers set and not yet fired or cleared. */
  get pending(): number {
    return this.live;
  }

  /** Adds `label` at the current virtual time to the trace. */
  trace(label: string): void {
    this.hash.update(`${this.t}\t${label}\n`);
    this.traceEvents++;
  }

  /** The SHA-256 (hex) of everything traced so far; tracing can go on after. */
  traceDigest(): string {
    return this.hash.copy().digest('hex');
  }

  /**
   * Fires timers in order until none is left, the next is later than `untilMs`, `maxEvents` have
   * fired, or `stop()` says so. Continuations of code already started run first.
   */
  async run(opts: RunOptions = {}): Promise<RunResult> {
    if (this.running) throw new Error('VirtualClock.run() is already running');
    this.running = true;
    const { untilMs = Infinity, maxEvents = Infinity, stop } = opts;
    let events = 0;
    try {
      await drainMicrotasks();
      for (;;) {
        if (stop?.()) return { events, nowMs: this.t, reason: 'stopped' };
        if (events >= maxEvents) return { events, nowMs: this.t, reason: 'max-events' };
        const next = this.peek();
        if (!next) {
          if (untilMs !== Infinity) this.t = Math.max(this.t, untilMs);
          return { events, nowMs: this.t, reason: 'idle' };
        }
        if (next.at > untilMs) {
          this.t = Math.max(this.t, untilMs);
          return { events, nowMs: this.t, reason: 'until' };
        }
        const timer = next.timers[next.head++];
        // An instant that keeps getting timers (a chain of zero delays) lets go of those done.
        if (next.head >= COMPACT_AT && next.head * 2 >= next.timers.length) {
          next.timers = next.timers.slice(next.head);
          next.head = 0;
        }
        this.queued--;
        this.live--;
        this.t = next.at;
        const fn = timer.fn!;
        timer.fn = null;
        events++;
        this.fired++;
        fn();
        // Timers due at the same instant run one after the other, as the callbacks of one turn of an
        // event loop do; promise continuations run before time moves on (and before every 64th, so a
        // crowd of simultaneous timers does not starve them).
        if (opts.sameInstant && events % 64 !== 0 && this.peek()?.at === this.t) continue;
        await drainMicrotasks();
      }
    } finally {
      this.running = false;
    }
  }

  /** The instant of the next live timer (which is `timers[head]`), cancelled ones before it discarded. */
  private peek(): Instant | undefined {
    for (;;) {
      const i = this.heap[0];
      if (i === undefined) return undefined;
      const { timers } = i;
      while (i.head < timers.length) {
        if (timers[i.head].fn !== null) return i;
        i.head++;
        this.queued--;
        this.cancelled--;
      }
      this.removeTop();
    }
  }

  private addInstant(at: number): Instant {
    const i: Instant = { at, timers: [], head: 0 };
    this.instants.set(at, i);
    const h = this.heap;
    let k = h.length;
    h.push(i);
    while (k > 0) {
      const p = (k - 1) >> 1;
      if (h[p].at <= at) break;
      h[k] = h[p];
      k = p;
    }
    h[k] = i;
    return i;
  }

  /** Takes the earliest instant (all of its timers done) out. */
  private removeTop(): void {
    const top = this.heap[0];
    this.instants.delete(top.at);
    if (this.last === top) this.last = null;
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.down(0);
    }
  }

  /** Drops cancelled timers, and the instants left with none. */
  private compact(): void {
    const kept: Instant[] = [];
    for (const i of this.heap) {
      i.timers = i.timers.slice(i.head).filter((x) => x.fn !== null);
      i.head = 0;
      if (i.timers.length > 0) kept.push(i);
      else this.instants.delete(i.at);
    }
    this.heap = kept;
    this.queued = this.live;
    this.cancelled = 0;
    this.last = null;
    // Heapify bottom-up.
    for (let k = (kept.length >> 1) - 1; k >= 0; k--) this.down(k);
  }

  private down(k: number): void {
    const h = this.heap;
    const x = h[k];
    const n = h.length;
    for (;;) {
      const l = 2 * k + 1;
      if (l >= n) break;
      const c = l + 1 < n && h[l + 1].at < h[l].at ? l + 1 : l;
      if (h[c].at >= x.at) break;
      h[k] = h[c];
      k = c;
    }
    h[k] = x;
  }
}
