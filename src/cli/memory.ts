// What a job's sizes will cost in memory on this machine, before any worker starts: refuse what
// cannot fit, warn when it takes much of what is free. Pure: the machine's figures are passed in.
import { formatBytes } from '../protocol/units.js';

/** A Node process with ringswarm loaded. */
const BASE_BYTES = 64 * 2 ** 20;
/** Checkpoints kept: two of its own (and, in a ring of two or more, two copies of its predecessor's). */
const KEPT = 2;

export interface MemoryJob {
  /** Worker processes started on this machine (spawned workers and spares). */
  localWorkers: number;
  /** Workers in the ring (one alone sends no frames and holds no copies). */
  ringSize: number;
  cardsPerWorker: number;
  bytesPerCard: number;
  checkpointEvery: number;
}

export interface MemoryEstimate {
  perWorkerBytes: number;
  totalBytes: number;
}

/**
 * The least a worker keeps resident, in card-sized buffers: gradients and states (one each per
 * card), the reduced and expected buffers, frames in flight (about two), checkpoints. Peaks run
 * higher (measured on this machine: 731 MiB per worker for -w 2 -g 2 -s 32MiB, where this gives
 * 320 MiB; 6.2 GiB for -w 1 -g 1 -s 1GiB with checkpoints, where this gives 6.06 GiB), so a job
 * this refuses cannot run, and one it warns about may not.
 */
export function estimateMemory(j: MemoryJob): MemoryEstimate {
  const ring = j.ringSize > 1;
  const checkpoints = j.checkpointEvery > 0 ? KEPT * j.cardsPerWorker * (ring ? 2 : 1) : 0;
  const buffers = 2 * j.cardsPerWorker + 2 + (ring ? 2 : 0) + checkpoints;
  const perWorkerBytes = buffers * j.bytesPerCard + BASE_BYTES;
  return { perWorkerBytes, totalBytes: perWorkerBytes * j.localWorkers };
}

export interface MachineMemory {
  totalBytes: number;
  /** What can be had without swapping (os.freemem(): MemAvailable on Linux). */
  availableBytes: number;
}

/** Warn above this share of the available memory. */
const WARN_SHARE = 0.5;

/**
 * `refuse`: the job cannot fit (more than is available); `warn`: it fits but takes more than half of
 * what is available. Both name the figures and the flags that set them.
 */
export function memoryVerdict(j: MemoryJob, est: MemoryEstimate, m: MachineMemory, sizeFlag = '--size'): { refuse?: string; warn?: string } {
  if (j.localWorkers === 0) return {};
  const what =
    `${j.localWorkers} worker${j.localWorkers === 1 ? '' : 's'} x ${j.cardsPerWorker} card${j.cardsPerWorker === 1 ? '' : 's'} x ${sizeFlag} ${formatBytes(j.bytesPerCard)}` +
    `${j.checkpointEvery > 0 ? ' with checkpoints' : ''} need at least ${formatBytes(est.totalBytes)} (${formatBytes(est.perWorkerBytes)} per worker)`;
  if (est.totalBytes > m.availableBytes) {
    const have = m.totalBytes < est.totalBytes ? `this machine has ${formatBytes(m.totalBytes)} in all` : `only ${formatBytes(m.availableBytes)} is available of ${formatBytes(m.totalBytes)}`;
    return { refuse: `${what}; ${have}: use a smaller ${sizeFlag}, fewer --cards-per-worker or fewer --workers` };
  }
  if (est.totalBytes > WARN_SHARE * m.availableBytes) return { warn: `${what}, more than half of the ${formatBytes(m.availableBytes)} available` };
  return {};
}
