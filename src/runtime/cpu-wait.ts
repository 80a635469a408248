// How long this thread has waited for a CPU: the run-queue delay the Linux scheduler keeps per
// thread (/proc/thread-self/schedstat, second field, ns). On one machine running many workers on
// few cores this wait is the machine's contention, shared by every rank, not a rank's own work:
// the worker takes it out of its compute time (see Worker.train), so that a straggler stands out
// from the scheduling noise.
import { openSync, readSync } from 'node:fs';

/**
 * A reader of this thread's run-queue wait so far, in ms (monotonic), bound to the thread that
 * calls this (the event loop's); null where the system does not say. One pread, a few µs.
 */
export function cpuWaitReader(): (() => number) | null {
  let fd: number;
  try {
    fd = openSync('/proc/thread-self/schedstat', 'r');
  } catch {
    return null;
  }
  const buf = Buffer.alloc(96);
  const read = (): number => {
    const n = readSync(fd, buf, 0, buf.length, 0);
    const fields = buf.toString('latin1', 0, n).split(' ');
    return Number(fields[1]) / 1e6;
  };
  try {
    return Number.isFinite(read()) ? read : null;
  } catch {
    return null;
  }
}
