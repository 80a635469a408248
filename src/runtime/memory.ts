// Memory figures of this process.
import { readFileSync } from 'node:fs';

/** Pss of this process from /proc/self/smaps_rollup (Linux), in MB; null elsewhere. */
export function selfPssMB(): number | null {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/**
 * How often a worker reads its Pss (PSS_EVERY_MS): a read of smaps_rollup walks the process's
 * whole address space, and a worker's WebAssembly memories reserve about 11 GB of it. On the demo
 * shape one read took 3.4 ms of CPU: read every step, 16 workers spent 54 ms of CPU a step on it
 * (a sixth of the machine's), for a figure the coordinator only keeps the latest of.
 */
export const PSS_EVERY_MS = 1000;

/**
 * Pss reads a second, at most, over a whole swarm. At 256 workers a read each per step (4-5 s a
 * step) was still 56 reads a second: smaps walks (smaps_account, smaps_pte_range) took 11% of the
 * machine's CPU in `perf record -a` of a 10,240-card run.
 */
export const PSS_READS_PER_SECOND = 8;

/** How often one of `workers` workers reads its Pss: every PSS_EVERY_MS, or less often in a large swarm. */
export function pssEveryMs(workers: number): number {
  return Math.max(PSS_EVERY_MS, (Math.max(1, workers) * 1000) / PSS_READS_PER_SECOND);
}

/** `read`, called at most once every `everyMs` of `now`: the last answer in between. */
export function readAtMostEvery<T>(read: () => T, everyMs: number, now: () => number = () => performance.now()): () => T {
  let at = -Infinity;
  let last: T;
  return () => {
    const t = now();
    if (t - at >= everyMs) {
      last = read();
      at = t;
    }
    return last;
  };
}
