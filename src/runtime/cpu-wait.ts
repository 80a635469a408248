// How long this thread has waited for a CPU: the run-queue delay the Linux scheduler keeps per
// thread (/proc/thread-self/schedstat, second field, ns). On one machine running many workers on
// few cores this wait is the machine's contention, shared by every rank, not a rank's own work:
// the worker takes it out of its compute time (see Worker.train), so that a straggler stands out
// from the scheduling noise. With the time on a CPU (the first field) it also tells when the
// thread slept, which the op runner's link clocks count (see OpRunner's LinkTiming).
import { openSync, readSync } from 'node:fs';

/** A thread's time on a CPU and waiting for one so far, in ms (both monotonic). */
export interface CpuTimes {
  runMs: number;
  waitMs: number;
}

/**
 * A reader of this thread's time on a CPU and its run-queue wait so far (the first two fields of
 * /proc/thread-self/schedstat, ns), bound to the thread that calls this (the event loop's); null
 * where the system does not say. One pread, a few µs. What is left of a stretch of wall time
 * once both are taken out, the thread slept: blocked in the event loop with nothing to do.
 */
export function cpuTimesReader(): (() => CpuTimes) | null {
  let fd: number;
  try {
    fd = openSync('/proc/thread-self/schedstat', 'r');
  } catch {
    return null;
  }
  const buf = Buffer.alloc(96);
  const read = (): CpuTimes => {
    const n = readSync(fd, buf, 0, buf.length, 0);
    // "<run ns> <wait ns> <slices>\n": the two numbers parsed in place (called per link interval).
    let i = 0;
    let run = 0;
    for (; i < n && buf[i] !== 0x20; i++) run = run * 10 + (buf[i] - 0x30);
    let wait = 0;
    for (i++; i < n && buf[i] !== 0x20; i++) wait = wait * 10 + (buf[i] - 0x30);
    return { runMs: i < n ? run / 1e6 : Number.NaN, waitMs: wait / 1e6 };
  };
  try {
    const t = read();
    return Number.isFinite(t.runMs) && Number.isFinite(t.waitMs) ? read : null;
  } catch {
    return null;
  }
}

/** A reader of this thread's run-queue wait so far, in ms (monotonic); null where the system does not say. */
export function cpuWaitReader(): (() => number) | null {
  const read = cpuTimesReader();
  return read && (() => read().waitMs);
}
