// `ringswarm sim --explore N`: each seed draws a whole run (shape, dtype and op, algorithm, policies,
// faults and stragglers of every kind at every point of a collective, some timed to strike during a
// recovery or a ring-up), simulates it, and checks its invariant: with restart or spare the
// fault-free digest, with shrink no wrong element, and never a run stuck (the virtual clock bounds
// it). A failure names its seed and the one command that replays it.
import { ALLREDUCE_ALGOS } from '../collective/types.js';
import { seededRandom } from '../collective/random.js';
import { RUN_DEFAULTS, type FailurePolicy, type RunConfig, type RunReport } from '../coordinator/config.js';
import { parseScenario, scenarioForRun } from '../coordinator/scenario/index.js';
import { simJob } from './sim.js';

export interface DrawnRun {
  cfg: RunConfig;
  /** The scenario as a user would write it (JSON), for the replay. */
  scenario: { faults: Record<string, unknown>[] };
}

/** A whole run drawn from `seed`: the same seed, the same run. */
export function drawRun(seed: number): DrawnRun {
  const r = seededRandom(seed ^ 0x5eed);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  // Small rings are where most interleavings differ; now and then a large one.
  const workers = r() < 0.85 ? int(1, 12) : int(13, 64);
  const cards = int(1, 4);
  const dtype = pick(['f32', 'f64', 'i32'] as const);
  const onFailure: FailurePolicy = pick(['restart', 'restart', 'spare', 'shrink'] as const);
  const op = onFailure === 'shrink' ? pick(['sum', 'avg'] as const) : pick(['sum', 'sum', 'avg', 'min', 'max'] as const);
  const eb = dtype === 'f64' ? 8 : 4;
  const count = pick([1, 2, 7, 64, 299, 1000]);
  const steps = int(2, 10);
  const checkpointEvery = pick([0, 1, 1, 2, 3]);
  // Chunks of one element make a frame per element: awkward sizes, but kept to short buffers (events grow with frames).
  const chunkElems = count <= 64 ? pick([1, 3, 16, 4096]) : pick([16, 64, 4096]);
  const faults: Record<string, unknown>[] = [];
  const nFaults = workers > 1 ? int(0, 3) : 0;
  for (let i = 0; i < nFaults; i++) {
    const kind = pick(['kill', 'hang', 'crash', 'link', 'corrupt'] as const);
    const rank = int(0, workers - 1);
    const timed = r() < 0.2;
    const at = timed ? { ms: int(0, 3000) } : { step: int(0, steps - 1), ...(r() < 0.7 ? { phase: pick(['reduce-scatter', 'all-gather'] as const), chunk: int(0, 3) } : {}) };
    if (kind === 'link') {
      let to = int(0, workers - 1);
      if (to === rank) to = (rank + 1) % workers;
      faults.push({ kind, from: rank, ...(r() < 0.5 ? { to } : {}), at, ...(r() < 0.6 ? { cut: true } : { delayMs: int(1, 200) }), ...(r() < 0.5 ? { ms: int(100, 2000) } : {}) });
    } else if (kind === 'hang') faults.push({ kind, rank, at, ...(r() < 0.5 ? { ms: pick([200, 1500, 5000]) } : {}) });
    else if (kind === 'crash') faults.push({ kind, rank, at, code: int(1, 9) });
    else if (kind === 'corrupt') faults.push({ kind, rank, at, frames: int(1, 2) });
    else faults.push({ kind, rank, at });
  }
  const stragglers: Record<string, unknown>[] = [];
  if (workers >= 4 && r() < 0.3) stragglers.push({ kind: 'slow', rank: int(0, workers - 1), at: { step: 0 }, factor: 3 });
  if (workers >= 4 && r() < 0.3) stragglers.push({ kind: 'slow-link', from: int(0, workers - 1), at: { step: 0 }, delayMs: 20 });
  if (r() < 0.2) stragglers.push({ kind: 'jitter', maxMs: 5 });
  const scenario = { faults: [...faults, ...stragglers] };
  const { faults: expanded, stragglers: expandedStragglers } = scenarioForRun([parseScenario(JSON.stringify(scenario), `explore seed ${seed}`)], { seed, workers, steps }, `explore seed ${seed}`);
  const cfg: RunConfig = {
    ...RUN_DEFAULTS,
    workers,
    spawn: workers,
    cardsPerWorker: cards,
    bytesPerCard: count * eb,
    dtype,
    op,
    steps,
    computeMs: pick([0, 0, 5, 50]),
    chunkBytes: chunkElems * eb,
    seed,
    faults: expanded,
    stragglers: expandedStragglers,
    onFailure,
    spares: onFailure === 'spare' ? int(1, 2) : 0,
    maxRestarts: 1000,
    checkpointEvery,
    checkpointDir: checkpointEvery > 0 && r() < 0.3 ? 'sim-checkpoints' : null,
    // From the seed's low bit, not the draws: the other choices of a seed stay what they were.
    checkpointCopy: seed & 1 ? 'shm' : 'net',
    onStraggler: pick(['report', 'report', 'evict', 'reroute'] as const),
    algo: pick([...ALLREDUCE_ALGOS, 'auto'] as const),
    timeoutMs: pick([500, 2000, 10_000]),
  };
  return { cfg, scenario };
}

export interface ExploreResult {
  seed: number;
  ok: boolean;
  why?: string;
  report: RunReport;
  replay: string;
}

/** The command that replays seed `seed` of the explorer. */
export function replayCommand(seed: number): string {
  return `ringswarm sim --explore 1 --seed-start ${seed}`;
}

/** Simulate the run drawn from `seed` and check its invariant. */
export async function exploreSeed(seed: number, log: (line: string) => void = () => {}): Promise<ExploreResult> {
  const { cfg } = drawRun(seed);
  const quiet = { progress: () => {}, log };
  const report = await simJob(cfg, quiet);
  const replay = replayCommand(seed);
  const fail = (why: string): ExploreResult => ({ seed, ok: false, why, report, replay });
  if (report.wrong > 0) return fail(`${report.wrong} wrong elements`);
  // Shrink may lose every worker (the faults drawn kill them all): then it must say so, not hang.
  if (cfg.onFailure === 'shrink' && !report.ok && report.error?.startsWith('no worker left to shrink to')) return { seed, ok: true, report, replay };
  if (!report.ok) return fail(`not ok: ${report.error ?? 'unknown'}`);
  // Shrink drops cards: its digest is not the fault-free one, but every step is still exact.
  const dropped = report.faults.some((f) => f.action?.startsWith('shrink'));
  if (!dropped) {
    const clean = await simJob({ ...cfg, faults: [], stragglers: [] }, quiet);
    if (clean.stateDigest !== report.stateDigest) return fail(`digest ${report.stateDigest?.slice(0, 12)} differs from the fault-free run's ${clean.stateDigest?.slice(0, 12)}`);
  }
  return { seed, ok: true, report, replay };
}
