// What the stress scripts (chaos-soak, long-soak, scale-sweep) share: reading processes from /proc
// (Linux only), finding and killing the worker processes a run left behind, and the fault-free
// digest of a run in closed form. Running a job (the API in a child process) is in run-report.ts.
import { readdirSync, readFileSync } from 'node:fs';
import { faultFreeDigest } from '../src/worker/fault-free-digest.js';

/** The kB figure that `line` captures in /proc/<pid>/<file>, in bytes; null when the process is gone. */
function kBField(pid: number, file: string, line: RegExp): number | null {
  try {
    const m = line.exec(readFileSync(`/proc/${pid}/${file}`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Resident bytes of one process (VmRSS, cheap to read); null when it is gone. */
export const rssOf = (pid: number) => kBField(pid, 'status', /^VmRSS:\s+(\d+) kB/m);

/**
 * Pss of one process in bytes, from smaps_rollup; null when it is gone. Costly: the kernel walks
 * the page tables of node's large reservations (about 10 ms a process here), so sample it less
 * often than RSS.
 */
export const pssOf = (pid: number) => kBField(pid, 'smaps_rollup', /^Pss:\s+(\d+) kB/m);

/** Open file descriptors of one process; null when it is gone. */
export function fdCount(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** Direct children of a process, from /proc/<pid>/task/<tid>/children; null when it is gone. */
export function childrenOf(pid: number): number[] | null {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  const out: number[] = [];
  for (const tid of tids) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ')) if (c.trim()) out.push(Number(c));
    } catch {
      /* thread gone */
    }
  }
  return out;
}

/** A ringswarm worker process (bundled or not), by its command line. */
export function isWorker(pid: number): boolean {
  try {
    return /worker(-loader)?\.cjs|worker[/\\]main\.js/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return false;
  }
}

/** The control URL in a worker process's environment (the run it belongs to); null when gone or none. */
export function controlUrlOf(pid: number): string | null {
  try {
    const v = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((x) => x.startsWith('RINGSWARM_CONTROL_URL='));
    return v ? v.slice('RINGSWARM_CONTROL_URL='.length) : null;
  } catch {
    return null;
  }
}

/** Worker processes whose environment names this control URL: the run's own. */
export function workersOf(controlUrl: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || !isWorker(Number(d))) continue;
    try {
      if (readFileSync(`/proc/${d}/environ`, 'utf8').split('\0').includes(`RINGSWARM_CONTROL_URL=${controlUrl}`)) pids.push(Number(d));
    } catch {
      /* gone, or not ours */
    }
  }
  return pids;
}

/** SIGKILL each pid (one gone meanwhile is no error); returns them, to report. */
export function killAll(pids: number[]): number[] {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

/** After a run: wait up to `graceMs` for its workers to exit by themselves; SIGKILL (and report) any left. */
export async function leftovers(controlUrl: string, graceMs: number): Promise<number[]> {
  const until = Date.now() + graceMs;
  let left = workersOf(controlUrl);
  while (left.length && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 200));
    left = workersOf(controlUrl);
  }
  return killAll(left);
}

/** What the digest of a fault-free run depends on. */
export interface RunShape {
  workers: number;
  cards: number;
  bytesPerCard: number;
  steps: number;
  seed: number;
}

/** The final stateDigest of a fault-free sum/f32 run, in closed form (src/worker/fault-free-digest.ts). */
export function expectedDigest(o: RunShape): string {
  return faultFreeDigest({ workers: o.workers, cardsPerWorker: o.cards, bytesPerCard: o.bytesPerCard, dtype: 'f32', op: 'sum', steps: o.steps, seed: o.seed });
}
