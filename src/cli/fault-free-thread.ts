// The fault-free digest (src/worker/fault-free-digest.ts) in a worker thread, at the lowest
// priority, so the demo computes it while its run trains (on 2 cores the run leaves CPU idle in
// its emulated compute) instead of after. This file is both the caller's side and the thread's.
import { readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { faultFreeDigest, type DigestShape } from '../worker/fault-free-digest.js';

export interface FaultFreeResult {
  digest: string;
  /** CPU the thread used (from /proc/thread-self/schedstat; its wall time where that is missing), and its wall time. */
  cpuMs: number;
  wallMs: number;
}

/** CPU time of the calling thread, ms; null off Linux. */
function threadCpuMs(): number | null {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return null;
  }
}

/** The digest computed in a new thread; `stop()` ends the thread (the promise then rejects). */
export function faultFreeDigestInThread(shape: DigestShape): { result: Promise<FaultFreeResult>; stop: () => void } {
  const worker = new Worker(new URL(import.meta.url), { workerData: shape });
  const result = new Promise<FaultFreeResult>((resolve, reject) => {
    worker.once('message', (m: FaultFreeResult) => resolve(m));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the fault-free digest thread exited (code ${code}) before it answered`)));
  });
  return { result, stop: () => void worker.terminate() };
}

if (!isMainThread && parentPort) {
  try {
    // On Linux this is the calling thread's nice value only: the coordinator's thread keeps its own.
    setPriority(0, 19);
  } catch {
    /* not allowed here: run at the process's priority */
  }
  const t0 = performance.now();
  const cpu0 = threadCpuMs();
  const digest = faultFreeDigest(workerData as DigestShape);
  const wallMs = performance.now() - t0;
  const cpu1 = threadCpuMs();
  parentPort.postMessage({ digest, wallMs, cpuMs: cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : wallMs } satisfies FaultFreeResult);
}
