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
