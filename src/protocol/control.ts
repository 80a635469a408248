// Control messages between coordinator and workers, and the hello on a data link: one
// discriminated union each way, JSON in WebSocket text frames, validated at the edge.
import { z } from 'zod';
import { ALLREDUCE_ALGOS, COLLECTIVES, DTYPES, LAUNCHER_KINDS, REDUCE_OPS } from './names.js';
import { RingswarmError } from './errors.js';
import { FAULT_KINDS, FAULT_PHASES } from './faults.js';

export const PROTOCOL_VERSION = 1;

const int = z.number().int();
const nat = int.nonnegative();

const Peer = z.object({ rank: nat, dataUrl: z.string() });

export const JobSpec = z.object({
  cardsPerWorker: int.positive(),
  totalCards: int.positive(),
  bytesPerCard: nat,
  dtype: z.enum(DTYPES),
  op: z.enum(REDUCE_OPS),
  steps: nat,
  computeMs: z.number().nonnegative(),
  chunkBytes: int.positive(),
  seed: int,
  timeoutMs: int.positive(),
  /**
   * How long a rank waits for its links of a new epoch to come up (handshakes included): hundreds of
   * processes on two cores take far longer to ring up than an op takes to stall. Absent: timeoutMs.
   */
  ringUpTimeoutMs: int.positive().optional(),
  heartbeatMs: int.positive(),
  /** A worker silent this long is dead: a worker that freezes itself for good (a hang, not spawned) is killed a while after. */
  heartbeatDeadMs: int.positive().optional(),
  checksums: z.boolean(),
  /** Checkpoint every K steps (0: never). */
  checkpointEvery: nat,
  /** Also write checkpoints to this folder (atomically), or null. */
  checkpointDir: z.string().nullable(),
  /**
   * The folder of the run's shared checkpoint slots (every worker on the coordinator's host): a
   * worker writes its checkpoints there and sends its successor only the slot's name. Absent or
   * null: the copies travel as frames.
   */
  checkpointShm: z.string().nullable().optional(),
  /**
   * The emulated fabric: every frame between workers is held `latencyUs` and paced to `bandwidth`
   * bytes/s per link; card-to-card transfers inside a worker take bytes / `intraBandwidth` (0: as
   * fast as this machine goes).
   */
  link: z.object({ latencyUs: z.number().nonnegative(), bandwidth: z.number().nonnegative(), intraBandwidth: z.number().nonnegative() }),
  /** --trace: workers time their activity (spans) and stamp reports with their clock; absent: nothing extra is sent. */
  trace: z.boolean().optional(),
});
export type JobSpec = z.infer<typeof JobSpec>;

/** A fault the worker itself carries out when it reaches the trigger point (or at once, for 'inject'). */
export const FaultOrder = z.object({
  id: nat,
  kind: z.enum(FAULT_KINDS),
  at: z.object({ step: nat, phase: z.enum(FAULT_PHASES).optional(), chunk: nat.optional() }),
  ms: z.number().nonnegative().nullable(),
  code: int.optional(),
  frames: int.positive().optional(),
  cut: z.boolean().optional(),
  delayMs: z.number().nonnegative().optional(),
  bandwidth: z.number().positive().optional(),
  /** A link fault: the rank (in this epoch) at the far end of the link; -1 when it left the ring. */
  to: int.min(-1).optional(),
});
export type FaultOrder = z.infer<typeof FaultOrder>;

/** A straggler the worker emulates on itself from `fromStep` for `steps` steps (null: for good). */
export const StragglerOrder = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('slow'), fromStep: nat, steps: nat.nullable(), factor: z.number().min(1).optional(), addMs: z.number().nonnegative().optional() }),
  z.object({ kind: z.literal('slow-link'), fromStep: nat, steps: nat.nullable(), bandwidth: z.number().positive().optional(), delayMs: z.number().nonnegative().optional(), to: nat.optional() }),
  z.object({ kind: z.literal('jitter'), maxMs: z.number().nonnegative() }),
]);
export type StragglerOrder = z.infer<typeof StragglerOrder>;

/** Where a rank's card states come from when a new epoch starts from a checkpoint. */
export const Restore = z.object({
  step: nat,
  source: z.enum(['initial', 'local', 'peer', 'disk']),
  /** For 'peer': the rank whose data server holds our copy. */
  peer: Peer.optional(),
});
export type Restore = z.infer<typeof Restore>;

export const BenchSpec = z.object({
  collective: z.enum(COLLECTIVES),
  sizes: z.array(nat),
  iters: int.positive(),
  warmup: nat,
  check: z.boolean(),
  /** All-reduce algorithm (the others are rings). */
  algo: z.enum(ALLREDUCE_ALGOS),
});
export type BenchSpec = z.infer<typeof BenchSpec>;

/** Links one rank may report per step (recursive doubling uses log2(workers) + 1). */
export const MAX_LINKS_PER_STEP = 1024;
/** Iteration times a bench result carries at most (more timed iterations: the mean only). */
export const MAX_BENCH_ITERS = 100_000;

/**
 * The lanes of a worker's timeline (--trace): one per activity that may overlap another. Each
 * collective phase has its own lane and its own send and receive lanes (a ring's all-gather begins
 * while its reduce-scatter's last frames are still being written).
 */
export const TRACE_LANES = [
  'compute',
  'checkpoint',
  'checkpoint copy',
  'intra',
  'op',
  'reduce-scatter',
  'all-gather',
  'broadcast',
  'send reduce-scatter',
  'send all-gather',
  'send broadcast',
  'recv reduce-scatter',
  'recv all-gather',
  'recv broadcast',
  'bench',
] as const;
export type TraceLane = (typeof TRACE_LANES)[number];
/** Spans one report may carry at most (a worker drops the rest and says how many in `spansDropped`). */
export const MAX_SPANS_PER_REPORT = 512;

/** One interval of a worker's activity, on the worker's own clock (ms). */
export const Span = z.object({
  lane: z.enum(TRACE_LANES),
  name: z.string().max(64),
  start: z.number().finite(),
  dur: z.number().nonnegative().finite(),
  /** The step (training) or iteration (bench) it belongs to, when not the report's. */
  step: nat.optional(),
  opSeq: nat.optional(),
  bytes: nat.optional(),
});
export type Span = z.infer<typeof Span>;
const Spans = z.array(Span).max(MAX_SPANS_PER_REPORT);

const Timings = z.object({
  computeMs: z.number().nonnegative(),
  allreduceMs: z.number().nonnegative(),
  stepMs: z.number().nonnegative(),
  /** In the all-reduce: idle waiting for the predecessor's frames. */
  waitMs: z.number().nonnegative(),
  /** Time with frames to the successor handed over and not yet written (a slow link holds them). */
  linkMs: z.number().nonnegative(),
  bytesSent: nat,
  /**
   * Per peer this rank sent to in the all-reduce, whatever the algorithm: bytes (headers included)
   * and the time with frames to it handed over and not yet written while this rank's thread
   * slept (neither on a CPU nor waiting for one, where the system says): the fabric's directed
   * links, each measured by its sender (OpRunner's LinkTiming).
   */
  links: z.array(z.object({ peer: nat, bytes: nat, busyMs: z.number().nonnegative() })).max(MAX_LINKS_PER_STEP).optional(),
  /** Of the all-reduce, the time this rank's thread slept in the op (absent where the system does not say): what `links[].busyMs` are judged against. */
  allreduceSleptMs: z.number().nonnegative().optional(),
});

const OpProgress = z.object({
  opSeq: nat,
  phase: z.string(),
  step: nat,
  chunksReceived: nat,
  chunksExpected: nat,
  chunksSent: nat,
  /** Not a ring (recursive doubling): whose frames the rank waits for next. */
  waitingFor: nat.nullable().optional(),
  /** Frames of this op received + written so far: grows while the op moves ((opSeq, moved) only grows in an epoch). */
  moved: nat.optional(),
});

/** Worker -> coordinator. */
export const WorkerMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('hello'),
    version: int,
    token: z.string(),
    workerId: z.string().min(1).max(128),
    pid: int.positive(),
    dataUrl: z.string(),
    spawned: z.boolean(),
    /** The host it runs on (os.hostname()). */
    host: z.string().max(255).optional(),
    /** Who gave it its rank: its launcher's kind and rank (null: none given; the coordinator ranks it by arrival). */
    launcher: z.object({ kind: z.enum(LAUNCHER_KINDS), rank: nat.nullable() }).optional(),
    /** The world size its launcher gave (SLURM_NTASKS, say): the coordinator refuses one that is not --workers + --spares. */
    worldSize: int.positive().nullable().optional(),
    /** The worker's clock (ms) as it sent this: the coordinator's first estimate of the worker's clock offset (--trace). */
    clock: z.number().finite().optional(),
  }),
  z.object({ type: z.literal('ready'), epoch: nat }),
  /** `clock`, with --trace: the worker's clock (ms) as it sent this, which refines the coordinator's estimate of its offset. */
  z.object({ type: z.literal('heartbeat'), epoch: nat, rssMB: z.number(), progress: OpProgress.nullable(), clock: z.number().finite().optional() }),
  /**
   * pssMB: proportional set size (shared pages split among the processes that share them), where known.
   * With --trace: `spans` (this step's, and any finished since the last report), `spansDropped`, `clock`.
   */
  z.object({
    type: z.literal('step'),
    epoch: nat,
    step: nat,
    wrong: nat,
    timings: Timings,
    rssMB: z.number(),
    pssMB: z.number().nullable(),
    spans: Spans.optional(),
    spansDropped: nat.optional(),
    clock: z.number().finite().optional(),
  }),
  z.object({
    type: z.literal('bench-result'),
    epoch: nat,
    bytes: nat,
    count: nat,
    timeUs: z.number().nonnegative(),
    /** Each timed iteration's time on this rank (its median over ranks' maxima is the row's medianUs). */
    itersUs: z.array(z.number().nonnegative()).max(MAX_BENCH_ITERS).optional(),
    wrong: nat,
    /** With --trace: the size's whole span and its first timed iterations' (op, phases, sends, receives), and the worker's clock. */
    spans: Spans.optional(),
    spansDropped: nat.optional(),
    clock: z.number().finite().optional(),
  }),
  z.object({ type: z.literal('done'), epoch: nat, cardDigests: z.array(z.string()), rssMBMax: z.number() }),
  /** `restore`: the rank could not restore the checkpoint its assignment named (a torn or corrupted file, a copy not there). */
  z.object({ type: z.literal('failed'), epoch: nat, code: z.string(), message: z.string(), restore: z.boolean().optional() }),
  /** A scenario fault is about to strike this worker (ground truth for scoring detection). */
  z.object({ type: z.literal('fault'), epoch: nat, id: nat, step: nat, phase: z.string().nullable(), chunk: nat.nullable() }),
  /** This worker saved checkpoint `step`; `disk`: its disk copy was written and synced (false: memory tiers only). */
  z.object({ type: z.literal('checkpointed'), epoch: nat, step: nat, disk: z.boolean() }),
  /** The op under way is abandoned: the answer to 'abort', which shows the worker is alive. */
  z.object({
    type: z.literal('aborted'),
    epoch: nat,
    /** The checkpoints this worker keeps, own steps and complete copies by owner's first card: the truth at the abort. */
    checkpoints: z.object({ own: z.array(nat).max(64), held: z.array(z.object({ firstCard: nat, steps: z.array(nat).max(64) })).max(64) }).optional(),
  }),
  /**
   * The op under way has made no progress on this rank for `idleMs` (its watchdog): the rank keeps
   * waiting, and the coordinator, which sees every rank, decides whether the op is stuck or slow.
   */
  z.object({ type: z.literal('stalled'), epoch: nat, opSeq: nat, idleMs: z.number().nonnegative() }),
  /** This worker now holds a complete copy of `owner`'s checkpoint `step`. */
  z.object({ type: z.literal('holding'), epoch: nat, owner: nat, step: nat }),
]);
export type WorkerMessage = z.infer<typeof WorkerMessage>;

/** Coordinator -> worker. */
export const CoordinatorMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('assign'),
    epoch: nat,
    rank: nat,
    size: int.positive(),
    firstCard: nat,
    prev: Peer,
    next: Peer,
    /** The all-reduce algorithm of this epoch. */
    algo: z.enum(ALLREDUCE_ALGOS),
    /** Links beyond the ring's, both ways (recursive doubling's partners). */
    peers: z.array(Peer),
    job: JobSpec,
    restore: Restore,
    faults: z.array(FaultOrder),
    /** Cards whose worker was dropped from the ring (--on-failure shrink): they no longer contribute. */
    lostCards: z.array(nat),
    stragglers: z.array(StragglerOrder),
  }),
  z.object({ type: z.literal('abort'), epoch: nat, reason: z.string() }),
  /** A fault carried out at once, or (`arm`) armed for its trigger like an assignment's (a fault injected into a running job). */
  z.object({ type: z.literal('inject'), epoch: nat, fault: FaultOrder, arm: z.boolean().optional() }),
  z.object({ type: z.literal('start'), epoch: nat, fromStep: nat }),
  z.object({ type: z.literal('bench'), epoch: nat, spec: BenchSpec }),
  z.object({ type: z.literal('shutdown'), reason: z.string() }),
]);
export type CoordinatorMessage = z.infer<typeof CoordinatorMessage>;

/** The first message on a data link, from the receiving rank to the sending rank's data server. */
export const DataHello = z.object({
  type: z.literal('data-hello'),
  version: int,
  token: z.string(),
  epoch: nat,
  rank: nat,
  /** 'fetch': not a ring link; send me the copy you hold of checkpoint `step` of the cards from `owner` (a card id), then close. */
  fetch: z.object({ owner: nat, step: nat }).optional(),
});
export type DataHello = z.infer<typeof DataHello>;

function describe(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}

/** Parse and validate one JSON message; throws RingswarmError RS_ERR_BAD_MESSAGE naming the bad field. */
export function parseMessage<T>(schema: z.ZodType<T>, text: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new RingswarmError('RS_ERR_BAD_MESSAGE', `not JSON: ${JSON.stringify(text.slice(0, 40))}`);
  }
  const r = schema.safeParse(value);
  if (!r.success) throw new RingswarmError('RS_ERR_BAD_MESSAGE', describe(r.error));
  return r.data;
}
