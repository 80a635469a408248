// Live progress: one line rewritten in place on a terminal; on a pipe, a line at most every second,
// or none (`offTty: 'quiet'`: bench's table and the demo's summary stay clean in a file).
export class Progress {
  private last = '';
  private lastPrinted = 0;
  private lastShown = true;
  private readonly tty: boolean;

  constructor(
    readonly out: NodeJS.WriteStream,
    private readonly offTty: 'paced' | 'quiet' = 'paced',
  ) {
    this.tty = Boolean(out.isTTY);
  }

  get isTTY(): boolean {
    return this.tty;
  }

  update(text: string): void {
    if (this.tty) {
      this.last = text;
      // Cut to the terminal's width: a wrapped line is not rewritten in place.
      this.out.write(`\r\x1b[2K${fitWidth(text, this.out.columns || 120)}`);
      return;
    }
    if (this.offTty === 'quiet') return;
    this.last = text;
    const now = Date.now();
    this.lastShown = now - this.lastPrinted >= 1000;
    if (this.lastShown) {
      this.lastPrinted = now;
      this.out.write(`${text}\n`);
    }
  }

  /** A permanent line (a log line, a table row), printed above the live one. */
  line(text: string): void {
    if (this.tty && this.last) this.out.write('\r\x1b[2K');
    this.out.write(`${text}\n`);
    if (this.tty && this.last) this.out.write(fitWidth(this.last, this.out.columns || 120));
  }

  /** Take the live line away (when it says nothing once the work is over). */
  clear(): void {
    if (this.tty && this.last) this.out.write('\r\x1b[2K');
    this.last = '';
  }

  done(): void {
    if (this.tty && this.last) this.out.write('\n');
    else if (!this.tty && this.last && !this.lastShown) this.out.write(`${this.last}\n`);
    this.last = '';
  }
}

/** `text` cut to `columns - 1` visible characters (SGR colour codes take no room and are kept). */
export function fitWidth(text: string, columns: number): string {
  const max = Math.max(1, columns - 1);
  if (text.length <= max) return text;
  let visible = 0;
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const sgr = /^\x1b\[[0-9;]*m/.exec(text.slice(i, i + 16));
    if (sgr) {
      out += sgr[0];
      i += sgr[0].length - 1;
      continue;
    }
    if (visible === max) continue;
    out += text[i];
    visible++;
  }
  return out;
}

/** Seconds left at the pace so far (`done` of `total` in `elapsedMs`); null before the first is done or after the last. */
export function etaSeconds(done: number, total: number, elapsedMs: number): number | null {
  if (done <= 0 || done >= total || !(elapsedMs > 0)) return null;
  return ((elapsedMs / done) * (total - done)) / 1000;
}

/** `  ~12 s left` (`  ~3m05s left` from 2 minutes), or empty when etaSeconds is null. */
export function etaText(done: number, total: number, elapsedMs: number): string {
  const eta = etaSeconds(done, total, elapsedMs);
  if (eta === null) return '';
  const s = Math.ceil(eta);
  return s >= 120 ? `  ~${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s left` : `  ~${s} s left`;
}

/** Time left in a run, from the steps counted: the pace since the first one this saw (a run's start-up and ring-up are not steps). */
export class StepEta {
  private t0: number | null = null;
  private done0 = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** `  ~12 s left` for the step just counted; empty for a line that is not a step, and for the first. */
  text(step?: { done: number; total: number }): string {
    if (!step) return '';
    const t = this.now();
    if (this.t0 === null) {
      this.t0 = t;
      this.done0 = step.done;
      return '';
    }
    return etaText(step.done - this.done0, step.total - this.done0, t - this.t0);
  }
}
