// Run and bench configuration: the one place for defaults, and the shape of the reports.
import type { LauncherKind } from '../protocol/names.js';
import type { DType, ReduceOp } from '../collective/dtypes.js';
import type { AllreduceAlgo, CollectiveKind } from '../collective/types.js';
import type { Fault, StragglerFault } from './scenario/index.js';
import type { TraceReport } from './trace.js';

export const FAILURE_POLICIES = ['restart', 'spare', 'shrink', 'abort'] as const;
export type FailurePolicy = (typeof FAILURE_POLICIES)[number];

export interface RunConfig {
  /** Ring size: how many worker processes take part. */
  workers: number;
  /** How many of them the coordinator spawns itself; the rest join with the URL and token. */
  spawn: number;
  cardsPerWorker: number;
  /** Gradient bytes per card. */
  bytesPerCard: number;
  dtype: DType;
  op: ReduceOp;
  steps: number;
  computeMs: number;
  /** Largest data frame payload, bytes. */
  chunkBytes: number;
  seed: number;
  /** Collective watchdog: an op that makes no progress for this long is aborted. */
  timeoutMs: number;
  /** Coordinator control port (0 = any free port). */
  port: number;
  /** Prometheus exposition at http://127.0.0.1:metricsPort/metrics while the run lasts (0 = any free port; null: none). */
  metricsPort: number | null;
  /** `--html FILE`: the self-contained HTML report, written at the end of the run (null: none). */
  htmlFile: string | null;
  /** `--ui-port P`: the live dashboard at http://127.0.0.1:P/ while the run lasts (0 = any free port; null: none). */
  uiPort: number | null;
  host: string;
  /** The address workers and peers dial, when not `host` (binding 0.0.0.0, say); null: `host`. */
  advertise: string | null;
  /** A lost worker the coordinator did not spawn: how long `restart` waits for its launcher to bring one back in its rank. */
  rejoinTimeoutMs: number;
  /**
   * The nice value of the workers this coordinator spawns (0-19), or null: auto (see workerNiceFor).
   * On a full machine (hundreds of workers on two cores) the coordinator, the operator's
   * `ringswarm status` and the user's shell then still get the CPU, as a cluster's control plane
   * has its own.
   */
  workerNice: number | null;
  /** Job token workers present; random when not given. */
  token?: string;
  heartbeatMs: number;
  /** CRC32C on every data frame. */
  checksums: boolean;
  /** A worker silent for this long is dead (its heartbeats come every heartbeatMs). */
  heartbeatDeadMs: number;
  /** Faults to inject (from --scenario and --inject), expanded. */
  faults: Fault[];
  /** Stragglers to inject (same sources). */
  stragglers: StragglerFault[];
  onFailure: FailurePolicy;
  /** Standby workers for --on-failure spare. */
  spares: number;
  maxRestarts: number;
  /** Checkpoint every K steps (0: never; recovery then restarts from step 0). */
  checkpointEvery: number;
  checkpointDir: string | null;
  /**
   * How a checkpoint's copy reaches the next rank: 'shm' written once into shared memory (the
   * successor keeps the slot's name), 'net' as frames over the link, 'auto' shm when every worker
   * is spawned on this host and no link is emulated.
   */
  checkpointCopy: CheckpointCopy;
  /** What to do with a confirmed straggler: report it, or evict it (treated as failed: --on-failure applies). */
  onStraggler: 'report' | 'evict' | 'reroute';
  /** A rank or link is slow when its time is this many times the median... */
  stragglerThreshold: number;
  /** ...in k of the last m steps. */
  stragglerPersist: [k: number, m: number];
  /** How long the coordinator waits for all workers to join and ring up. */
  readyTimeoutMs: number;
  /** All-reduce algorithm; auto: by a measured crossover for the ring size when there is one, else the one the alpha-beta model predicts fastest (per epoch). */
  algo: AllreduceAlgo | 'auto';
  /** Crossovers measured by `bench --algo ring,rd` (--tuning): from `bytes` per card on, the ring (null: recursive doubling at every size measured). */
  crossovers: { workers: number; bytes: number | null }[];
  /** The emulated fabric (see LinkSpec). */
  link: LinkSpec;
  /** --trace: write the run's timeline here (Chrome trace-event JSON, for Perfetto); null: none. */
  traceFile: string | null;
}

export const CHECKPOINT_COPIES = ['auto', 'shm', 'net'] as const;
export type CheckpointCopy = (typeof CHECKPOINT_COPIES)[number];

/** The emulated fabric: between workers, latency and bandwidth per link; inside a worker, card to card. 0: not emulated. */
export interface LinkSpec {
  latencyUs: number;
  /** Bytes per second per directed link between workers. */
  bandwidth: number;
  /** Bytes per second card to card inside a worker. */
  intraBandwidth: number;
}

export const NO_LINK_MODEL: LinkSpec = { latencyUs: 0, bandwidth: 0, intraBandwidth: 0 };

export const RUN_DEFAULTS: RunConfig = {
  workers: 8,
  spawn: 8,
  cardsPerWorker: 8,
  bytesPerCard: 1 << 20,
  dtype: 'f32',
  op: 'sum',
  steps: 20,
  computeMs: 0,
  chunkBytes: 1 << 20,
  seed: 1,
  timeoutMs: 10_000,
  port: 0,
  metricsPort: null,
  htmlFile: null,
  uiPort: null,
  host: '127.0.0.1',
  advertise: null,
  rejoinTimeoutMs: 60_000,
  workerNice: null,
  heartbeatMs: 100,
  checksums: true,
  heartbeatDeadMs: 1000,
  faults: [],
  stragglers: [],
  onFailure: 'restart',
  spares: 0,
  maxRestarts: 10,
  checkpointEvery: 1,
  checkpointDir: null,
  checkpointCopy: 'auto',
  onStraggler: 'report',
  stragglerThreshold: 1.3,
  stragglerPersist: [3, 5],
  readyTimeoutMs: 60_000,
  algo: 'auto',
  crossovers: [],
  link: NO_LINK_MODEL,
  traceFile: null,
};

export interface BenchConfig {
  workers: number;
  cardsPerWorker: number;
  collective: CollectiveKind;
  minBytes: number;
  maxBytes: number;
  stepFactor: number;
  iters: number;
  warmup: number;
  op: ReduceOp;
  dtype: DType;
  check: boolean;
  chunkBytes: number;
  timeoutMs: number;
  seed: number;
  port: number;
  host: string;
  checksums: boolean;
  /** All-reduce algorithms to measure, one after the other over all sizes. */
  algos: AllreduceAlgo[];
  link: LinkSpec;
  /** --trace: write the bench's timeline here (Chrome trace-event JSON); null: none. */
  traceFile: string | null;
  /** `--html FILE`: the HTML report (bus bandwidth against size), written at the end (null: none). */
  htmlFile: string | null;
}

export const BENCH_DEFAULTS: BenchConfig = {
  workers: 8,
  cardsPerWorker: 1,
  collective: 'allreduce',
  minBytes: 8,
  maxBytes: 64 << 20,
  stepFactor: 2,
  iters: 20,
  warmup: 5,
  op: 'sum',
  dtype: 'f32',
  check: true,
  chunkBytes: 1 << 20,
  timeoutMs: 30_000,
  seed: 1,
  port: 0,
  host: '127.0.0.1',
  checksums: true,
  algos: ['ring'],
  link: NO_LINK_MODEL,
  traceFile: null,
  htmlFile: null,
};

export interface Quantiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface RunReport {
  ok: boolean;
  /** Why the run is not ok, when it is not. */
  error?: string;
  seed: number;
  workers: number;
  cardsPerWorker: number;
  cards: number;
  bytesPerCard: number;
  dtype: DType;
  op: ReduceOp;
  stepsRequested: number;
  stepsCompleted: number;
  wrong: number;
  /** SHA-256 over every card's final state digest, in card order; null when the run did not finish. */
  stateDigest: string | null;
  controlUrl: string;
  startupMs: number;
  wallMs: number;
  stepMs: Quantiles;
  allreduceMs: Quantiles;
  computeMs: Quantiles;
  algbwGBps: number;
  busbwGBps: number;
  /** The all-reduce algorithm of each epoch (auto resolves per ring size), and the fabric emulated. */
  algo: AllreduceAlgo[];
  link: LinkSpec;
  /** Median all-reduce time between workers as measured (allreduceMs includes the cards' local reduce and copy), and as the alpha-beta model predicts it for the first epoch. */
  model: { predictedAllreduceMs: number; predictedInterMs: number; predictedIntraMs: number; measuredAllreduceMs: number; ratio: number | null };
  memory: {
    coordinatorRssMB: number;
    workerRssMBMax: number;
    workerRssMBTotal: number;
    workerPssMBTotal: number | null;
    coordinatorPssMB: number | null;
    /** The shared-memory checkpoint slots at the end of the run (in /dev/shm; a worker's RSS counts only the one its live states are in, when mapped), MB; null: the copies went as frames (--checkpoint-copy). */
    checkpointSlotsMB: number | null;
  };
  /** CPU time the coordinator process used over the run, and as a share of the wall time: it must never be the bottleneck. */
  coordinatorCpu: { ms: number; share: number };
  /** Every worker that held a rank: its host, and who gave it the rank (`launcher.rank` null when spawned or ranked by arrival). */
  /** Per rank: its process, host (as it says), the data URL it advertised to its peers, and who gave it its rank. */
  processes: { rank: number; pid: number; workerId: string; spawned: boolean; host: string; dataUrl: string; launcher: { kind: LauncherKind; rank: number | null } }[];
  /** Connections refused at the door (wrong token, malformed hello, job full). */
  rejectedConnections: number;
  interrupted?: boolean;
  faults: FaultReport[];
  /** Every straggler the scenario injected: whether it struck (and why not), and when it was detected. */
  injectedStragglers: InjectedStragglerReport[];
  stragglers: StragglerReport[];
  /** `ringswarm sim`: the run was simulated in one process on a virtual clock... */
  simulated?: true;
  /** ...and this is the SHA-256 of its ordered event trace (same flags and seed, same digest). */
  traceDigest?: string;
  /** `ringswarm sim`: events the virtual clock ran, virtual and real time, and the CPU it took. */
  sim?: { events: number; virtualMs: number; realMs: number; cpuMs: number };
  /** With --what-if: the same run without the injected stragglers. */
  whatIf?: { wallMs: number; stepMsP50: number; costMs: number; slowdown: number | null; sameDigest: boolean };
  epochs: EpochReport[];
  goodput: Goodput;
  restarts: number;
  /** --trace: the file written, its events, and (when bounded) the steps it kept. */
  trace?: TraceReport;
}

export type DetectedBy = 'exit' | 'heartbeat' | 'watchdog' | 'checksum';

export interface FaultReport {
  /** The injected fault's id (the scenario's, in order; live ones follow); absent for a fault from outside. */
  id?: number;
  kind: string;
  rank?: number;
  link?: [number, number];
  atStep: number | null;
  phase: string | null;
  /** Whether ringswarm injected it (false: it came from outside, e.g. someone's kill -9). */
  injected: boolean;
  /** Injected into the running job (`ringswarm inject`, startRun().inject) rather than given at launch. */
  live?: true;
  /** Whether it took effect (an injected fault whose step, rank or link was never reached did not). */
  struck: boolean;
  /** Why it did not strike, when it did not. */
  note?: string;
  detectedBy: DetectedBy | null;
  detectedAfterMs: number | null;
  /** Where the detector put it: "rank 3", "link 2->3". */
  located: string | null;
  action: string | null;
  restoredFrom: 'memory' | 'disk' | 'initial' | null;
  /** From the fault to training resumed. */
  recoveredAfterMs: number | null;
  lostSteps: number | null;
}

export interface InjectedStragglerReport {
  kind: 'slow' | 'slow-link' | 'jitter' | 'pause';
  /** A node's rank at launch, or a link's two ends (ranks at launch). */
  rank?: number;
  link?: [number, number];
  atStep: number | null;
  struck: boolean;
  note?: string;
  /** The step at which the detector confirmed it, or null when it was not detected. */
  detectedAtStep: number | null;
}

export interface StragglerReport {
  kind: 'node' | 'link';
  rank?: number;
  link?: [number, number];
  firstSeenStep: number;
  detectedAtStep: number;
  score: number;
  /** Step time over the clean baseline, when there was one. */
  slowdown: number | null;
  /** What was done: only reported, evicted (a node), or the ring re-formed without it (a link). */
  action: 'report' | 'evict' | 'reroute';
  /** Whether it matches a straggler the scenario injected. */
  injected: boolean;
  /** Median step time (ms) of the last steps up to the detection. */
  stepMsBefore: number | null;
  /** Median step time (ms) of the first steps after the action (evict, reroute), leaving out the first step of the new epoch; null for report. */
  stepMsAfter: number | null;
}

export interface EpochReport {
  epoch: number;
  startedAtMs: number;
  fromStep: number;
  reason: string;
  /** Cards that contribute in this epoch (fewer after a shrink). */
  cards: number;
  algo: AllreduceAlgo;
  members: { rank: number; workerId: string; pid: number }[];
}

export interface Goodput {
  /** Time of the steps that count (each step's final run). */
  productiveMs: number;
  wallMs: number;
  ratio: number;
  lostSteps: number;
  recomputedSteps: number;
}

export interface BenchRow {
  bytes: number;
  count: number;
  type: DType;
  redop: ReduceOp;
  /** Mean time of an op over the timed iterations (as nccl-tests), the slowest rank's. */
  timeUs: number;
  /**
   * The median over timed iterations of the slowest rank's time in each: what the peers in
   * `npm run bench:peers` report, and robust to the odd descheduled iteration on a busy machine.
   */
  medianUs?: number;
  algbwGBps: number;
  busbwGBps: number;
  wrong: number;
  /** All-reduce: the algorithm of this row, and the time the alpha-beta model predicts for it. */
  algo?: AllreduceAlgo;
  predictedUs?: number;
}

export interface BenchReport {
  collective: CollectiveKind;
  workers: number;
  cardsPerWorker: number;
  rows: BenchRow[];
  avgBusbwGBps: number;
  startupMs: number;
  /** With two all-reduce algorithms: the smallest size from which the ring was measured (and predicted) faster for good. */
  crossover?: { measuredBytes: number | null; predictedBytes: number | null };
  error?: string;
  /** --trace: the file written and its events. */
  trace?: TraceReport;
}

export function quantiles(values: readonly number[]): Quantiles {
  if (values.length === 0) return { p50: 0, p90: 0, p99: 0, max: 0 };
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: s[s.length - 1] };
}
