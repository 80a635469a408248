// A virtual clock for `ringswarm sim` and tests: a discrete-event scheduler. Timers wait in a
// binary heap ordered by (time, creation order); run() fires them one at a time, moving the clock
// to each timer's time, and lets every promise continuation run before the next one, so the code
// under it sees the same order of events on every run. A trace (a running SHA-256 of labels and
// the virtual times they were logged at) tells two runs apart.
import { createHash, type Hash } from 'node:crypto';
import type { Clock, TimerHandle } from './clock.js';

interface Timer {
  at: number;
  seq: number;
  fn: (() => void) | null;
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

/** Cancelled timers are taken out of the heap once they are this many and half of it. */
const COMPACT_AT = 1024;

/** Resolves once the microtask queue is empty: setImmediate runs only after it has drained. */
const drainMicrotasks = (): Promise<void> => new Promise((r) => setImmediate(r));

export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private heap: Timer[] = [];
  private readonly live = new Map<number, Timer>();
  private cancelled = 0;
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
    const timer: Timer = { at: this.t + Math.max(0, ms), seq: ++this.seq, fn };
    this.live.set(timer.seq, timer);
    this.push(timer);
    return { id: timer.seq };
  }

  clearTimer(h: TimerHandle | null | undefined): void {
    if (!h) return;
    const timer = this.live.get(h.id);
    if (!timer) return;
    this.live.delete(h.id);
    timer.fn = null;
    if (++this.cancelled >= COMPACT_AT && this.cancelled * 2 >= this.heap.length) this.compact();
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimer(ms, resolve));
  }

  /** Timers set and not yet fired or cleared. */
  get pending(): number {
    return this.live.size;
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
        this.pop();
        this.live.delete(next.seq);
        this.t = next.at;
        const fn = next.fn!;
        next.fn = null;
        events++;
        this.fired++;
        fn();
        // Timers due at the same instant run one after the other, as the callbacks of one turn of an
        // event loop do; promise continuations run before time moves on (and before every 64th, so a
        // crowd of simultaneous timers does not starve them).
        const after = this.peek();
        if (after && after.at === this.t && events % 64 !== 0 && opts.sameInstant) continue;
        await drainMicrotasks();
      }
    } finally {
      this.running = false;
    }
  }

  /** The next timer still live, cancelled ones on top discarded. */
  private peek(): Timer | undefined {
    while (this.heap.length > 0 && this.heap[0].fn === null) {
      this.pop();
      this.cancelled--;
    }
    return this.heap[0];
  }

  private compact(): void {
    this.heap = this.heap.filter((x) => x.fn !== null);
    this.cancelled = 0;
    // Heapify bottom-up.
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private static before(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(x: Timer): void {
    const h = this.heap;
    h.push(x);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!VirtualClock.before(x, h[p])) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = x;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    this.down(0);
  }

  private down(i: number): void {
    const h = this.heap;
    const x = h[i];
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const c = l + 1 < n && VirtualClock.before(h[l + 1], h[l]) ? l + 1 : l;
      if (!VirtualClock.before(h[c], x)) break;
      h[i] = h[c];
      i = c;
    }
    h[i] = x;
  }
}
