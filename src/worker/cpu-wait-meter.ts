// How much of a rank's compute time went waiting for a CPU (see Worker.train): pure arithmetic on
// readings of a monotonic counter of run-queue delay (runtime/cpu-wait.ts in a worker process).

/**
 * The CPU wait (run-queue delay) to take out of a rank's compute time, segment by segment: all of
 * it while the rank works; in a sleep only what the sleep overran (waiting to handle some other
 * event in the middle of a sleep delays nothing; a stopped process waits for no CPU, so a stall
 * still counts).
 */
export class CpuWaitMeter {
  private at: number;
  /** Since the last reset. */
  waited = 0;

  constructor(private readonly read: () => number) {
    this.at = read();
  }

  /** Work since the last mark. */
  worked(): void {
    const q = this.read();
    this.waited += q - this.at;
    this.at = q;
  }

  /** A sleep of `askedMs` that took `tookMs`, since the last mark. */
  slept(askedMs: number, tookMs: number): void {
    const q = this.read();
    this.waited += Math.min(Math.max(0, tookMs - askedMs), q - this.at);
    this.at = q;
  }

  reset(): void {
    this.at = this.read();
    this.waited = 0;
  }
}
