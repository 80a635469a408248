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
  /**
   * The pace from the first unit done rather than from the start (the steps of one run: its
   * start-up and ring-up are no step, and made the first estimates minutes long).
   */
  paceFromFirst?: boolean;
}

export class ScriptProgress {
  readonly enabled: boolean;
  private readonly out: NodeJS.WriteStream;
  private readonly t0 = Date.now();
  private done = 0;
  /** When the pace starts, and what was done then. */
  private paceAt: { t: number; done: number } | null = null;
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
    this.notePace();
    if (note !== undefined) this.note = note;
    this.draw();
  }

  /** Done so far, absolutely (e.g. the step a run is at). */
  set(done: number, total?: number | null): void {
    this.done = done;
    this.notePace();
    if (total !== undefined) this.total = total;
    this.draw();
  }

  private notePace(): void {
    if (this.o.paceFromFirst && this.paceAt === null && this.done > 0) this.paceAt = { t: Date.now(), done: this.done };
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
    const pace = this.o.paceFromFirst ? (this.paceAt ? { ms: now - this.paceAt.t, done: this.done - this.paceAt.done } : { ms: 0, done: 0 }) : { ms: elapsed, done: this.done };
    let leftText = '';
    if (this.total !== null && pace.done > 0) leftText = `, ~${clock(Math.min(untilDeadline, (pace.ms / pace.done) * Math.max(0, this.total - this.done)))} left`;
    // Nothing to go by yet: the bound, said as one (it read as an estimate of minutes).
    else if (this.total !== null && Number.isFinite(untilDeadline)) leftText = `, at most ${clock(untilDeadline)} left`;
    // A soak bounded by time goes on until its deadline.
    else if (Number.isFinite(untilDeadline)) leftText = `, ~${clock(untilDeadline)} left`;
    const count = this.total === null ? `${this.done} ${unit}` : `${this.done}/${this.total} ${unit}`;
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
