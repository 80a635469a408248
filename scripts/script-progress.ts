// The stress scripts' progress line on stderr: jobs (or steps) done out of total, time elapsed, and
// time left (estimated from the pace so far, capped by the script's own time bound). Only when
// stderr is a terminal; on a pipe or a file it prints nothing (the scripts' stdout is their record).
// Lines the script prints go through log(), which takes the live line off the terminal first.

const clock = (ms: number): string => {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${ss}s` : `${s % 60}s`;
};

export interface ProgressOptions {
  /** What is counted: 'runs', 'steps', 'measurements'. */
  unit?: string;
  /** Nothing starts after this time (ms since the epoch): time left is at most what is left of it. */
  deadline?: number;
  /** Where the live line goes; process.stderr unless testing. */
  out?: NodeJS.WriteStream;
  /** Draw even when `out` is no terminal (tests). */
  force?: boolean;
}

export class ScriptProgress {
  readonly enabled: boolean;
  private readonly out: NodeJS.WriteStream;
  private readonly t0 = Date.now();
  private done = 0;
  private note = '';
  private shown = false;
  private ended = false;
  private timer: NodeJS.Timeout | null = null;

  /** `total` null: unknown (a soak bounded by time): time left is then the deadline's. */
  constructor(
    readonly label: string,
    private total: number | null,
    private readonly o: ProgressOptions = {},
  ) {
    this.out = o.out ?? process.stderr;
    this.enabled = Boolean(o.force || this.out.isTTY);
    if (this.enabled) {
      this.timer = setInterval(() => this.draw(), 1000);
      this.timer.unref();
    }
  }

  /** `n` more done (a job finished); `note` says what runs now. */
  advance(n = 1, note?: string): void {
    this.done += n;
    if (note !== undefined) this.note = note;
    this.draw();
  }

  /** Done so far, absolutely (e.g. the step a run is at). */
  set(done: number, total?: number | null): void {
    this.done = done;
    if (total !== undefined) this.total = total;
    this.draw();
  }

  /** What runs now (shown after the figures). */
  running(note: string): void {
    this.note = note;
    this.draw();
  }

  /** The line itself: `label: 3/20 runs, 1m05s elapsed, ~2m10s left (note)`. */
  text(now = Date.now()): string {
    const elapsed = now - this.t0;
    const unit = this.o.unit ?? 'runs';
    const untilDeadline = this.o.deadline === undefined ? Infinity : Math.max(0, this.o.deadline - now);
    let left: number;
    if (this.total !== null && this.done > 0) left = Math.min(untilDeadline, (elapsed / this.done) * Math.max(0, this.total - this.done));
    else left = untilDeadline;
    const count = this.total === null ? `${this.done} ${unit}` : `${this.done}/${this.total} ${unit}`;
    const leftText = Number.isFinite(left) ? `, ~${clock(left)} left` : '';
    return `${this.label}: ${count}, ${clock(elapsed)} elapsed${leftText}${this.note ? ` (${this.note})` : ''}`;
  }

  private draw(): void {
    if (!this.enabled || this.ended) return;
    const cols = this.out.columns || 120;
    this.out.write(`\r\x1b[2K${this.text().slice(0, cols - 1)}`);
    this.shown = true;
  }

  private clear(): void {
    if (this.enabled && this.shown) this.out.write('\r\x1b[2K');
    this.shown = false;
  }

  /** A line of the script's own output (stdout), printed above the live line. */
  log(line = ''): void {
    this.clear();
    process.stdout.write(`${line}\n`);
    this.draw();
  }

  /** A line to stderr, above the live line. */
  warn(line: string): void {
    this.clear();
    process.stderr.write(`${line}\n`);
    this.draw();
  }

  /** Take the live line away for good. */
  end(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.clear();
    this.ended = true;
  }
}
