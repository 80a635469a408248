// Live progress: one line rewritten in place on a terminal; on a pipe, a line at most every second.
export class Progress {
  private last = '';
  private lastPrinted = 0;
  private lastShown = true;
  private readonly tty: boolean;

  constructor(readonly out: NodeJS.WriteStream) {
    this.tty = Boolean(out.isTTY);
  }

  update(text: string): void {
    this.last = text;
    if (this.tty) {
      this.out.write(`\r\x1b[2K${text}`);
      return;
    }
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
    if (this.tty && this.last) this.out.write(this.last);
  }

  done(): void {
    if (this.tty && this.last) this.out.write('\n');
    else if (!this.tty && this.last && !this.lastShown) this.out.write(`${this.last}\n`);
    this.last = '';
  }
}
