// Time as a value that is passed in: the real clock in processes, a virtual one in `ringswarm sim`
// and in tests. Everything that waits, times out or measures (the op runner's watchdog, heartbeats,
// emulated compute, link pacing) takes one of these instead of reading the global timers.

export interface TimerHandle {
  readonly id: number;
}

export interface Clock {
  /** Milliseconds on a monotonic clock (fractions allowed). */
  now(): number;
  /** Call `fn` once, `ms` from now (0 or less: as soon as the current work is done). */
  setTimer(ms: number, fn: () => void): TimerHandle;
  clearTimer(t: TimerHandle | null | undefined): void;
  /** Resolves `ms` from now. */
  sleep(ms: number): Promise<void>;
}

/** The process's own clock and timers. Its timers do not keep the process alive (`unref`). */
export function realClock(): Clock {
  const live = new Map<number, NodeJS.Timeout>();
  let next = 1;
  return {
    now: () => performance.now(),
    setTimer(ms, fn) {
      const id = next++;
      const t = setTimeout(() => {
        live.delete(id);
        fn();
      }, Math.max(0, ms));
      t.unref();
      live.set(id, t);
      return { id };
    },
    clearTimer(h) {
      if (!h) return;
      const t = live.get(h.id);
      if (t) clearTimeout(t);
      live.delete(h.id);
    },
    sleep: (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms))),
  };
}

/** A repeating timer on any clock: calls `fn` every `everyMs` until the returned stop is called. */
export function every(clock: Clock, everyMs: number, fn: () => void): () => void {
  let h: TimerHandle | null = null;
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    h = clock.setTimer(everyMs, tick);
    fn();
  };
  h = clock.setTimer(everyMs, tick);
  return () => {
    stopped = true;
    clock.clearTimer(h);
  };
}

/**
 * Timers by name on a clock, as the coordinator machine arms them: arming a name again replaces it,
 * and each fires once with its name. For the drivers of the machine (run and sim).
 */
export class NamedTimers {
  private readonly live = new Map<string, TimerHandle>();

  constructor(
    private readonly clock: Clock,
    private readonly fire: (name: string) => void,
  ) {}

  arm(name: string, ms: number): void {
    this.clock.clearTimer(this.live.get(name));
    this.live.set(
      name,
      this.clock.setTimer(ms, () => {
        this.live.delete(name);
        this.fire(name);
      }),
    );
  }

  disarm(name: string): void {
    this.clock.clearTimer(this.live.get(name));
    this.live.delete(name);
  }

  clear(): void {
    for (const t of this.live.values()) this.clock.clearTimer(t);
    this.live.clear();
  }
}
