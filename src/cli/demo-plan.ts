// What `ringswarm demo` runs: the run's defaults it changes, and its three faults, drawn from the
// seed and spread over the steps. Pure: the command (demo.ts) turns them into a run.
import { elementBytes, type DType } from '../collective/dtypes.js';
import { pick, substream } from '../collective/random.js';
import { RingswarmUsageError } from '../api/errors.js';
import { STRAGGLER_DEFAULTS } from '../coordinator/stragglers.js';

/** The demo's defaults, as the run's flags take them (attribute names); every other flag keeps run's default. */
export const DEMO_DEFAULTS = {
  workers: 16,
  cardsPerWorker: 8,
  // 256 KiB a card and 250 ms of emulated compute: a step of about half a second on 2 cores, with
  // CPU to spare for the fault-free digest (its cost grows with the size: 1 MiB took 13 s of CPU).
  size: 256 << 10,
  computeMs: 250,
  steps: 40,
  algo: 'ring',
} as const;

/** At least this many workers: a killed rank, a hung rank and a slow link between two others. */
export const DEMO_MIN_WORKERS = 4;
/** The slow link's extra latency per frame. */
export const SLOW_LINK_DELAY_MS = 20;

export interface DemoShape {
  workers: number;
  steps: number;
  seed: number;
  bytesPerCard: number;
  chunkBytes: number;
  dtype: DType;
}

export interface DemoFaults {
  /** Killed (SIGKILL) in the middle of its reduce-scatter: after `chunk + 1` chunks received. */
  kill: { rank: number; step: number; chunk: number };
  /** Frozen (SIGSTOP) for good at the start of its step: found by heartbeat silence, replaced. */
  hang: { rank: number; step: number };
  /** The link from -> to (to: from's successor) delayed from `step` to the end. */
  slowLink: { from: number; to: number; step: number; delayMs: number };
  /** The same, as --inject words. */
  injects: string[];
}

/**
 * The steps of the three faults: the kill at 20% of the steps, the hang at 40%, the slow link once
 * the epoch after the hang is past the straggler detector's warm-up (a new epoch's detector
 * watches 5 steps before it says anything), with the steps to confirm it (k of m) before the end.
 * Null when `steps` is too few for that.
 */
export function demoSteps(steps: number): { kill: number; hang: number; slowLink: number } | null {
  const kill = Math.max(1, Math.round(steps * 0.2));
  const hang = Math.max(kill + 2, Math.round(steps * 0.4));
  const slowLink = hang + STRAGGLER_DEFAULTS.warmupSteps + 2;
  return slowLink + STRAGGLER_DEFAULTS.persistM + 1 <= steps ? { kill, hang, slowLink } : null;
}

/** The fewest steps demoSteps places the three faults in. */
export const DEMO_MIN_STEPS = (() => {
  let s = 1;
  while (!demoSteps(s)) s++;
  return s;
})();

/**
 * The demo's faults for a run shape, from its seed (demoSteps says when). The link's two ends are
 * neither the killed nor the hung rank (a replacement does not inherit its predecessor's slow
 * link, so it would vanish half way).
 */
export function demoFaults(o: DemoShape): DemoFaults {
  if (o.workers < DEMO_MIN_WORKERS) {
    throw new RingswarmUsageError(`--workers ${o.workers}: the demo needs at least ${DEMO_MIN_WORKERS} (a killed rank, a hung one and a slow link between two others); give --inject for a run of your own`);
  }
  const at = demoSteps(o.steps);
  if (!at) throw new RingswarmUsageError(`--steps ${o.steps}: the demo needs at least ${DEMO_MIN_STEPS} to spread its three faults and confirm the slow link`);
  const random = substream(o.seed, 'demo');
  const ranks = Array.from({ length: o.workers }, (_, r) => r);
  const from = pick(random, ranks);
  const to = (from + 1) % o.workers;
  const others = ranks.filter((r) => r !== from && r !== to);
  const killRank = pick(random, others);
  const rest = others.filter((r) => r !== killRank);
  const hangRank = pick(random, rest);
  const kill = { rank: killRank, step: at.kill, chunk: midReduceScatterChunk(o) };
  const hang = { rank: hangRank, step: at.hang };
  const slowLink = { from, to, step: at.slowLink, delayMs: SLOW_LINK_DELAY_MS };
  return {
    kill,
    hang,
    slowLink,
    injects: [
      `kill:rank=${kill.rank}:step=${kill.step}:phase=reduce-scatter:chunk=${kill.chunk}`,
      `hang:rank=${hang.rank}:step=${hang.step}`,
      `slow-link:from=${from}:to=${to}:step=${slowLink.step}:delayMs=${slowLink.delayMs}`,
    ],
  };
}

/**
 * The chunk index half way through a ring reduce-scatter: W - 1 ring steps, each moving one
 * segment (about S / W bytes) in frames of at most `chunkBytes`. A trigger past the last chunk
 * strikes at the end of the op, so an estimate too high is still a kill in that op.
 */
export function midReduceScatterChunk(o: Pick<DemoShape, 'workers' | 'bytesPerCard' | 'chunkBytes' | 'dtype'>): number {
  const eb = elementBytes(o.dtype);
  const segmentBytes = Math.ceil(o.bytesPerCard / eb / o.workers) * eb;
  const perRingStep = Math.max(1, Math.ceil(segmentBytes / o.chunkBytes));
  const total = (o.workers - 1) * perRingStep;
  return Math.max(0, Math.floor((total - 1) / 2));
}
