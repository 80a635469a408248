// Refused connections, logged without flooding: the first few each get a line, the rest are
// counted and summed up in one line at most every `everyMs` (an attack of thousands of connections
// gives a handful of lines, not thousands).
export interface RefusalLogOptions {
  /** Refusals logged one by one. */
  first: number;
  /** Then one summary line at most this often. */
  everyMs: number;
}

export const REFUSAL_LOG_DEFAULTS: RefusalLogOptions = { first: 5, everyMs: 10_000 };

export class RefusalLog {
  /** Every refusal so far. */
  count = 0;
  private unsaid = 0;
  private last = '';
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly log: (line: string) => void,
    private readonly o: RefusalLogOptions = REFUSAL_LOG_DEFAULTS,
  ) {}

  /** One refusal, described by `line`. */
  refused(line: string): void {
    this.count++;
    if (this.count <= this.o.first) {
      this.log(this.count === this.o.first ? `${line} (further refusals are counted and summed up every ${this.o.everyMs / 1000} s)` : line);
      return;
    }
    this.unsaid++;
    this.last = line;
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.o.everyMs);
      this.timer.unref();
    }
  }

  /** Say what has not been said yet (at the end, or when the summary is due). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.unsaid === 0) return;
    this.log(`${this.unsaid} more connection${this.unsaid === 1 ? '' : 's'} refused (${this.count} in all), the last: ${this.last}`);
    this.unsaid = 0;
  }

  /** Stop the summary timer without a word (the log is no longer read). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
