// The alpha-beta (Hockney) model of an all-reduce, used to predict times, to check them against
// what was measured, and to pick an algorithm (--algo auto). Pure.
//
// A message of b bytes over one link takes alpha + b / beta. alpha is this machine's own cost of a
// hop (a frame through the transport, a wake-up of the receiving process) plus the emulated link
// latency; 1/beta is this machine's cost per byte plus the emulated link's (--link-bandwidth). On
// one machine every link shares the same cores, so the machine's part of both is multiplied by
// the workers that are busy at once over the cores, when they outnumber them.
//
//   ring (reduce-scatter + all-gather): 2(n-1) hops of S/n bytes  -> 2(n-1) alpha + 2(n-1)/n S/beta
//   recursive doubling, n = p + q:       log2(p) (+2 if q > 0) hops of S bytes
//   inside a worker of g cards:          reduce and broadcast, 2(g-1) S / intraBandwidth
import { doublingPlan } from './recursive-doubling.js';
import type { AllreduceAlgo } from './types.js';

export interface FabricModel {
  /** This machine's cost of one hop, in microseconds. */
  hopUs: number;
  /** This machine's bytes per second over one link, when it has a core to itself. */
  softwareBandwidth: number;
  /** Cores the workers share (bandwidth is divided when more workers than cores move bytes at once). */
  cores: number;
  /** Emulated link latency, microseconds (--link-latency-us). */
  linkLatencyUs: number;
  /** Emulated bytes per second per link (--link-bandwidth); 0: no cap. */
  linkBandwidth: number;
  /** Emulated card-to-card bytes per second inside a worker (--intra-bandwidth); 0: not modelled. */
  intraBandwidth: number;
}

/**
 * Defaults for this machine (2 cores), fitted to `ringswarm bench --algo ring,rd` here: 8-byte
 * all-reduces give the hop cost, 16-64 MiB ones the per-link bandwidth. Noisy machines shift both;
 * the bench prints measured beside predicted so the fit can be judged.
 */
export const MACHINE_MODEL: Pick<FabricModel, 'hopUs' | 'softwareBandwidth'> = { hopUs: 150, softwareBandwidth: 1.0e9 };

export interface Prediction {
  /** Between workers. */
  interUs: number;
  /** Inside each worker (card to card). */
  intraUs: number;
  totalUs: number;
  /** Hops one after the other, and bytes each moves. */
  hops: number;
  bytesPerHop: number;
}

/** Predicted time of one all-reduce of `bytes` per card on `workers` workers of `cards` cards. */
export function predictAllreduce(algo: AllreduceAlgo, workers: number, cards: number, bytes: number, m: FabricModel): Prediction {
  if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`workers must be an integer >= 1, got ${workers}`);
  // A hop is every busy worker handling a frame: beyond the cores they take turns, so the machine's
  // part of both alpha and beta grows with busy workers / cores; the emulated link's does not.
  // (The tree's 2(p-1) frames spread over its 2 log2(p) steps: fewer busy at each.)
  const rounds = doublingPlan(0, workers).rounds;
  const busy = algo === 'ring' ? workers : algo === 'tree' ? Math.max(1, (2 ** rounds - 1) / Math.max(1, rounds)) : 2 ** rounds;
  const share = Math.max(1, busy / Math.max(1, m.cores));
  const alphaUs = m.hopUs * share + m.linkLatencyUs;
  const secPerByte = share / m.softwareBandwidth + (m.linkBandwidth > 0 ? 1 / m.linkBandwidth : 0);
  let hops = 0;
  let bytesPerHop = 0;
  if (workers > 1) {
    if (algo === 'ring') {
      hops = 2 * (workers - 1);
      bytesPerHop = bytes / workers;
    } else {
      // The tree goes up and back down the doubling's steps, each hop carrying the whole vector.
      const plan = doublingPlan(0, workers);
      hops = (algo === 'tree' ? 2 : 1) * plan.rounds + (2 ** plan.rounds < workers ? 2 : 0);
      bytesPerHop = bytes;
    }
  }
  const interUs = hops * (alphaUs + bytesPerHop * secPerByte * 1e6);
  const intraUs = m.intraBandwidth > 0 && cards > 1 ? ((2 * (cards - 1) * bytes) / m.intraBandwidth) * 1e6 : 0;
  return { interUs, intraUs, totalUs: interUs + intraUs, hops, bytesPerHop };
}

/** The algorithm the model predicts fastest (ties: the ring, which moves fewer bytes, then recursive doubling, fewer steps). */
export function pickAlgo(workers: number, cards: number, bytes: number, m: FabricModel): AllreduceAlgo {
  let best: AllreduceAlgo = 'ring';
  let bestUs = predictAllreduce('ring', workers, cards, bytes, m).interUs;
  for (const algo of ['rd', 'tree'] as const) {
    const us = predictAllreduce(algo, workers, cards, bytes, m).interUs;
    if (us < bestUs) [best, bestUs] = [algo, us];
  }
  return best;
}

/**
 * The size per card from which the ring is predicted faster than `small` (recursive doubling by
 * default; null: the ring is faster at every size, as on 1-2 workers), by bisection over [1 B, 1 TiB].
 */
export function predictedCrossover(workers: number, m: FabricModel, small: Exclude<AllreduceAlgo, 'ring'> = 'rd'): number | null {
  const smallWins = (bytes: number) => predictAllreduce(small, workers, 1, bytes, m).interUs < predictAllreduce('ring', workers, 1, bytes, m).interUs;
  if (!smallWins(1)) return null;
  let lo = 1;
  let hi = 2 ** 40;
  if (smallWins(hi)) return hi;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (smallWins(mid)) lo = mid;
    else hi = mid;
  }
  return hi;
}
