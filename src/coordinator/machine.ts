// The coordinator's control logic as a state machine: `handle(event, now)` takes one event (a worker
// joined, a message, a process exit, a timer, the answer to a probe, an operator request) with the
// time as a value, updates the state and returns the actions to carry out (send, spawn, signal,
// disconnect, arm or disarm a timer, probe, log, finish). No sockets, processes, timers or clock in
// here: `run` carries the actions out with real ones, `sim` on a virtual clock in one process.
import { predecessor, successor } from '../collective/ring.js';
import type { AllreduceAlgo } from '../collective/types.js';
import type { LauncherKind } from '../protocol/names.js';
import type { CoordinatorMessage, FaultOrder, JobSpec, Restore, StragglerOrder, WorkerMessage } from '../protocol/control.js';
import type { JobStatus, RankState } from '../protocol/operator.js';
import type { DetectedBy, EpochReport, FaultReport, InjectedStragglerReport, RunConfig, StragglerReport } from './config.js';
import { describeLocation, locateStuck, type Location, type RankProgress } from './detector.js';
import { ALGO_NAMES, peersOf, unusedLinkNote } from './fabric.js';
import { CheckpointLedger, StepLedger, type StepAgg } from './ledger.js';
import { assignMessage, assignRing } from './rendezvous.js';
import { rerouteOrder } from './reroute.js';
import { parseLiveInject, ScenarioError, type Fault, type FaultInput, type StragglerFault } from './scenario/index.js';
import { median, MIN_STRAGGLER_WORKERS, StragglerDetector } from './stragglers.js';

/** After the first sign of a fault, how long to gather the others before deciding what happened. */
export const SETTLE_MS = 150;
/** Steps before a straggler's detection, and after the action on it, whose median step time the report gives. */
const STEPS_AROUND_ACTION = 5;
/** Recoveries in a row whose epoch fails to ring up before the run is given up (rather than loop). */
const MAX_FAILED_RING_UPS = 5;

export type ProcessState = 'running' | 'stopped' | 'dead' | 'unknown';

export interface JoinInfo {
  workerId: string;
  pid: number;
  dataUrl: string;
  spawned: boolean;
  /** The host it runs on, as it says. */
  host?: string;
  /** Who gave it its rank (a launcher's environment, --rank), and the world size given with it. */
  launcher?: { kind: LauncherKind; rank: number | null };
  worldSize?: number | null;
}

export type CoordinatorEvent =
  | { type: 'joined'; worker: JoinInfo }
  | { type: 'message'; worker: string; msg: WorkerMessage }
  /** The worker's process exited, or (for one we did not spawn) its control connection closed. */
  | { type: 'exit'; worker: string; why: string }
  | { type: 'timer'; name: string }
  /** The answer to a `probe`: what the kernel says of the worker's process (unknown: not ours). */
  | { type: 'probed'; worker: string; state: ProcessState }
  /** Ctrl-C, or the caller's abort signal. */
  | { type: 'interrupt' }
  /** The driver could not carry out an action (a spawn that failed, say). */
  | { type: 'error'; message: string }
  /** A fault injected into the running job (`ringswarm inject`, startRun().inject): shorthand or an entry as a scenario holds it; answered by `ref`. */
  | { type: 'inject'; spec: string | FaultInput; ref: number };

export type CoordinatorAction =
  | { type: 'send'; to: string; msg: CoordinatorMessage }
  | { type: 'spawn'; worker: string }
  | { type: 'signal'; worker: string; signal: 'SIGKILL' | 'SIGSTOP' | 'SIGCONT' }
  /** Close the worker's control connection (a refusal, or a member replaced or dropped). */
  | { type: 'disconnect'; worker: string; code: number; reason: string }
  /** Call back with `{ type: 'timer', name }` in `ms`; arming a name again replaces it. */
  | { type: 'arm'; name: string; ms: number }
  | { type: 'disarm'; name: string }
  | { type: 'probe'; worker: string }
  | { type: 'log'; line: string }
  /** A line of live progress; `step`: the step just counted, of the steps asked for (the CLI's time left). */
  | { type: 'progress'; line: string; step?: { done: number; total: number } }
  /** The run is over (ok, failed or interrupted): build the report and stop everything. */
  | { type: 'finish' }
  /** The answer to an `inject` event. */
  | { type: 'answer'; ref: number; answer: InjectAnswer };

/** What a live injection got: the fault as the report will hold it (with its id), or why not. */
export type InjectAnswer = { ok: true; id: number; fault: FaultReport } | { ok: false; error: string };

export interface Member extends JoinInfo {
  /** Position in the ring of this epoch (-1: not in it). */
  rank: number;
  /** The rank this place in the job had at launch: what a scenario's rank means. */
  home: number;
  firstCard: number;
  arrival: number;
  lastSeen: number;
  gone: boolean;
}

interface Signal {
  by: DetectedBy;
  rank: number;
  at: number;
  detail: string;
  /** For checksum: the sender of the bad frame. */
  from?: number;
  /** The rank could not restore the checkpoint it was told to (a torn or corrupted file, say): a fault of that checkpoint, not of a link. */
  restore?: boolean;
}

export interface FaultRecord extends FaultReport {
  fault: Fault | null;
  injectedAt: number | null;
}


const UNDETECTED = {
  injectedAt: null,
  struck: false,
  detectedBy: null,
  detectedAfterMs: null,
  located: null,
  action: null,
  restoredFrom: null,
  recoveredAfterMs: null,
  lostSteps: null,
} as const;

/** The directed link of a link fault or slow-link straggler, by home ranks (`to` defaults to the launch successor). */
export function linkEnds(f: { from: number; to?: number }, workers: number): [number, number] {
  return [f.from, typeof f.to === 'number' ? f.to : successor(f.from, workers)];
}

function faultRecord(f: Fault, workers: number): FaultRecord {
  return {
    fault: f,
    id: f.id,
    kind: f.kind,
    ...(f.kind === 'link' ? { link: linkEnds(f, workers) } : { rank: f.rank }),
    atStep: 'step' in f.at ? f.at.step : null,
    phase: 'step' in f.at ? (f.at.phase ?? null) : null,
    injected: true,
    ...UNDETECTED,
  };
}

/** The most rank x step times the machine keeps for the report (8 bytes each: 32 MiB). */
const RANK_TIMES_CELLS = 1 << 22;

/** A counted step's per-rank compute and all-reduce times (ms, by rank of its epoch): 8 bytes a rank. */
export interface RankTimes {
  computeMs: Float32Array;
  allreduceMs: Float32Array;
}

function rankTimesOf(s: StepAgg, workers: number): RankTimes {
  const t = { computeMs: new Float32Array(workers).fill(NaN), allreduceMs: new Float32Array(workers).fill(NaN) };
  for (const r of s.ranks) {
    if (r.rank < 0 || r.rank >= workers) continue;
    t.computeMs[r.rank] = r.computeMs;
    t.allreduceMs[r.rank] = r.allreduceMs;
  }
  return t;
}

function target(f: Fault): number {
  return f.kind === 'link' ? f.from : f.rank;
}

type Recovery =
  | { stage: 'settle' }
  | { stage: 'abort'; why: 'fault' | 'reroute'; lost: Set<number>; acks: Set<number>; probing: Set<number>; frozen: number[]; stopped: Set<number>; left: Set<number> }
  /** Waiting for replacements: spawned ones by worker id, and (for workers a launcher started) rejoiners by launch rank; both give the rank. */
  | { stage: 'replace'; waiting: Map<string, number>; rejoin: Map<number, number> }
  | { stage: 'ringing' };

export class CoordinatorMachine {
  readonly job: JobSpec;
  phase: 'joining' | 'ringing' | 'training' | 'finished' = 'joining';
  epoch = 0;
  /** Ring size of the current epoch (smaller after a shrink). */
  W: number;
  members: Member[] = [];
  readonly everyone: Member[] = [];
  /** Every member by worker id (a lookup per message: at 12,500 workers a scan per message is n²). */
  private readonly byId = new Map<string, Member>();
  private pendingJoin: Member[] = [];
  spares: Member[] = [];
  /** The members by rank at launch: who the scenario's ranks are. */
  launch: Member[] = [];
  readonly lostCards: number[] = [];
  readonly steps = new StepLedger();
  readonly ckpt = new CheckpointLedger();
  readonly digests = new Map<number, string[]>();
  private progress = new Map<number, RankProgress & { at: number }>();
  /** Per rank, the op it is in or last finished (what `status` shows): from heartbeats and step reports. */
  private readonly opAt = new Map<number, { opSeq: number; phase: string; chunk: number | null }>();
  private readonly fired = new Set<number>();
  readonly faults: FaultRecord[];
  /** The faults to carry out: the config's, then those injected into the running job. */
  private readonly scheduled: Fault[];
  private nextFaultId: number;
  readonly injected: InjectedStragglerReport[];
  readonly epochs: EpochReport[] = [];
  readonly stragglers: StragglerReport[] = [];
  /** Per counted step, each rank's compute and all-reduce ms, for the HTML report and the dashboard (--html, --ui-port); null: not kept. */
  readonly rankTimes: Map<number, RankTimes> | null;
  private rankTimesStride = 1;
  private signals: Signal[] = [];
  private recovery: Recovery | null = null;
  /** The fault record and detection time of the recovery under way. */
  private current: {
    rec: FaultRecord | null;
    /** Other faults this recovery took care of, and the ranks each one's entry names (restart and spare). */
    also?: FaultRecord[];
    ranksOf?: Map<FaultRecord, number[]>;
    detectedAt: number;
    fromStep: number;
    reason: string;
    restoreFor: (r: number) => Restore;
  } | null = null;
  /** Entries whose recovery did not ring up (a checkpoint that did not read back): where their ranks came from is the next one's to say. */
  private readonly unfinished = new Map<FaultRecord, number[]>();
  private failedRingUps = 0;
  private unrestored = new Set<number>();
  restarts = 0;
  lostStepsTotal = 0;
  workerRssMBMax = 0;
  readonly rssByRank = new Map<number, number>();
  readonly pssByRank = new Map<number, number>();
  startupMs = 0;
  trainingStart = 0;
  failure: string | undefined;
  interrupted = false;
  rejected = 0;
  private arrivals = 0;
  private replacements = 0;
  private readyRanks = new Set<number>();
  private detector: StragglerDetector | null = null;
  private detectorEpoch = -1;
  private readonly afterAction: { r: StragglerReport; epoch: number; samples: number[] }[] = [];
  /** Ranks whose worker was evicted as a slow node: a replacement flagged there too is only reported. */
  private readonly evicted = new Set<number>();
  private readonly avoided: [Member, Member][] = [];
  private monitorProbes = new Set<string>();
  /** Workers a detection found frozen: no SIGCONT for them (see thaw). */
  private readonly fenced = new Set<string>();
  /** Per rank: when its op last moved (a chunk in or out, a step, or work outside an op), and what it looked like. */
  private readonly moved = new Map<number, { at: number; key: string }>();
  /** Ranks whose watchdog says their op has not moved, by rank: since when and in which op. */
  private readonly stalled = new Map<number, { at: number; opSeq: number; idleMs: number }>();
  private pauses: { f: Extract<StragglerFault, { kind: 'pause' }>; t: number; end: number }[] = [];
  private timerSeq = 0;
  private out: CoordinatorAction[] = [];
  private now = 0;

  constructor(
    readonly cfg: RunConfig,
    job: JobSpec,
    /** The epoch's all-reduce algorithm on `w` workers (auto resolved by the caller's model). */
    private readonly algoFor: (w: number) => AllreduceAlgo,
    private readonly t0 = 0,
  ) {
    this.job = job;
    this.W = cfg.workers;
    this.rankTimes = cfg.htmlFile !== null || cfg.uiPort !== null ? new Map() : null;
    this.faults = cfg.faults.map((f) => faultRecord(f, cfg.workers));
    this.scheduled = [...cfg.faults];
    this.nextFaultId = Math.max(-1, ...cfg.faults.map((f) => f.id), ...cfg.stragglers.map((f) => f.id)) + 1;
    this.injected = cfg.stragglers.map((f) => ({
      kind: f.kind,
      ...(f.kind === 'slow-link' ? { link: linkEnds(f, cfg.workers) } : f.kind === 'jitter' ? {} : { rank: f.rank }),
      atStep: f.kind !== 'jitter' && f.kind !== 'pause' && 'step' in f.at ? f.at.step : f.kind === 'jitter' ? 0 : null,
      struck: false,
      detectedAtStep: null,
    }));
  }

  // ---------------------------------------------------------------- the one input

  /** Take one event at time `now` (ms); returns what to do. */
  handle(e: CoordinatorEvent, now: number): CoordinatorAction[] {
    this.now = now;
    this.out = [];
    if (e.type === 'inject') {
      this.onInject(e.spec, e.ref);
      return this.out;
    }
    if (this.phase === 'finished') return this.out;
    switch (e.type) {
      case 'joined':
        this.onJoined(e.worker);
        break;
      case 'message': {
        const m = this.byId.get(e.worker);
        if (m && !m.gone) {
          m.lastSeen = now;
          if (m.rank >= 0 && this.members[m.rank] === m) this.onMessage(m, e.msg);
        }
        break;
      }
      case 'exit':
        this.onExit(e.worker, e.why);
        break;
      case 'timer':
        this.onTimer(e.name);
        break;
      case 'probed':
        this.onProbed(e.worker, e.state);
        break;
      case 'interrupt':
        this.interrupted = true;
        this.finish();
        break;
      case 'error':
        this.fail(e.message);
        break;
    }
    return this.out;
  }

  /** The first actions: spawn the workers (and spares) and wait for them to join. */
  begin(now: number): CoordinatorAction[] {
    this.now = now;
    this.out = [];
    for (let i = 0; i < this.cfg.spawn; i++) this.act({ type: 'spawn', worker: `w${i}` });
    for (let i = 0; i < this.spawnedSpares; i++) this.act({ type: 'spawn', worker: `spare${i}` });
    this.arm('join', this.cfg.readyTimeoutMs);
    this.arm('monitor', this.monitorMs);
    return this.out;
  }

  private get spareCount(): number {
    return this.cfg.onFailure === 'spare' ? this.cfg.spares : 0;
  }

  /** Spares this coordinator starts itself: none when it spawns no worker (--spawn 0: a launcher starts them, as ranks from --workers up). */
  private get spawnedSpares(): number {
    return this.cfg.spawn > 0 ? this.spareCount : 0;
  }

  private get monitorMs(): number {
    return Math.max(20, Math.min(100, this.cfg.heartbeatDeadMs / 5));
  }

  get done(): boolean {
    return this.phase === 'finished';
  }

  get ok(): boolean {
    return !this.failure && !this.interrupted && this.allDone && this.steps.final.size === this.cfg.steps && this.wrong === 0;
  }

  get allDone(): boolean {
    return this.digests.size === this.W;
  }

  get wrong(): number {
    let w = 0;
    for (const s of this.steps.final.values()) w += s.wrong;
    return w;
  }

  // ---------------------------------------------------------------- status

  /** What `ringswarm status` shows: the job, and per rank what it does and when it was last heard from. Pure: a look, no action. */
  statusSnapshot(now: number): JobStatus {
    const recovering = this.recovery !== null && this.phase === 'training';
    const stateOf = (m: Member): RankState => {
      if (m.gone) return 'dead';
      if (this.digests.has(m.firstCard)) return 'done';
      if (this.phase === 'joining') return 'joining';
      if (this.fenced.has(m.workerId) || (this.thawDue.get(m.workerId) ?? -Infinity) > now) return 'frozen';
      // Past half the deadline: late enough to show, before the detector declares it dead.
      if (now - m.lastSeen > this.cfg.heartbeatDeadMs / 2) return 'silent';
      if (this.stalled.has(m.rank)) return 'stalled';
      if (recovering) return 'recovering';
      return this.phase === 'ringing' || this.recovery?.stage === 'ringing' ? 'ringing' : 'training';
    };
    const ranks = this.members.map((m) => {
      const p = this.opAt.get(m.rank);
      return {
        rank: m.rank,
        home: m.home,
        workerId: m.workerId,
        pid: m.pid,
        host: m.host ?? null,
        state: stateOf(m),
        opSeq: p?.opSeq ?? null,
        phase: p?.phase ?? null,
        chunk: p?.chunk ?? null,
        heartbeatAgeMs: Math.max(0, Math.round(now - m.lastSeen)),
      };
    });
    const stuck = ranks.some((r) => r.state === 'stalled' || r.state === 'silent' || r.state === 'frozen');
    // The detector's table, of ranks still in the ring, only when there is something to locate.
    const table = () => [...this.progress.values()].filter((p) => this.members[p.rank] && !this.members[p.rank].gone).map((p) => ({ ...p, silentMs: now - this.members[p.rank].lastSeen }));
    const at = stuck ? locateStuck(table(), this.cfg.heartbeatDeadMs) : null;
    const quiet = ranks.filter((r) => r.state === 'silent' || r.state === 'frozen').map((r) => r.rank);
    const waitingFor = !stuck ? [] : quiet.length ? quiet : at ? [at.kind === 'rank' ? at.rank : at.from] : [];
    const struck = this.faults.filter((f) => f.struck);
    return {
      job: {
        workers: this.cfg.workers,
        cardsPerWorker: this.cfg.cardsPerWorker,
        bytesPerCard: this.cfg.bytesPerCard,
        steps: this.cfg.steps,
        algo: this.phase === 'joining' ? this.algoFor(this.W) : this.epochAlgo(),
        onFailure: this.cfg.onFailure,
      },
      phase: recovering ? 'recovering' : this.phase,
      epoch: this.epoch,
      step: Math.min(this.cfg.steps, this.steps.highestDone() + 1),
      ranks,
      spares: this.spares.filter((m) => !m.gone).map((m) => ({ workerId: m.workerId, pid: m.pid, host: m.host ?? null })),
      waitingFor,
      stuckAt: stuck ? (quiet.length ? `rank ${quiet[0]}` : at ? describeLocation(at) : 'unknown') : null,
      faults: { injected: struck.filter((f) => f.injected).length, detected: this.faults.filter((f) => f.detectedBy !== null).length, recovered: this.faults.filter((f) => f.recoveredAfterMs !== null).length },
    };
  }

  // ---------------------------------------------------------------- small helpers

  private act(a: CoordinatorAction): void {
    if (a.type === 'spawn') this.spawnedIds.add(a.worker);
    this.out.push(a);
  }

  /** Every worker id this machine asked to spawn. */
  private readonly spawnedIds = new Set<string>();

  private log(line: string): void {
    this.act({ type: 'log', line });
  }

  private arm(name: string, ms: number): void {
    this.act({ type: 'arm', name, ms });
  }

  private disarm(name: string): void {
    this.act({ type: 'disarm', name });
  }

  private send(m: Member, msg: CoordinatorMessage): void {
    if (!m.gone) this.act({ type: 'send', to: m.workerId, msg });
  }

  private broadcast(msg: CoordinatorMessage): void {
    for (const m of this.members) this.send(m, msg);
  }

  private fail(why: string): void {
    this.failure ??= why;
    this.finish();
  }

  private finish(): void {
    if (this.phase === 'finished') return;
    this.phase = 'finished';
    this.noteUnstruck();
    this.act({ type: 'finish' });
  }

  private byHome(home: number): Member | undefined {
    return this.members.find((m) => m.home === home);
  }

  // ---------------------------------------------------------------- joining

  /** The world size a launcher must give: every rank of the job, spares included. */
  private get worldSize(): number {
    return this.cfg.workers + this.cfg.spares;
  }

  private refuse(j: JoinInfo, why: string): void {
    this.rejected++;
    this.act({ type: 'disconnect', worker: j.workerId, code: 4008, reason: `RS_ERR_PROTOCOL: ${why}` });
  }

  /** Why a worker its launcher ranked cannot join, or null. */
  private launcherRefusal(j: JoinInfo, rank: number): string | null {
    const kind = j.launcher!.kind;
    if (j.worldSize != null && j.worldSize !== this.worldSize) {
      return `the launcher (${kind}) gives world size ${j.worldSize}, but this job has --workers ${this.cfg.workers} + --spares ${this.cfg.spares} = ${this.worldSize}`;
    }
    if (rank >= this.worldSize) return `rank ${rank} (${kind}) is not below this job's world size, --workers ${this.cfg.workers} + --spares ${this.cfg.spares} = ${this.worldSize}`;
    if (rank < this.cfg.spawn) return `rank ${rank} (${kind}) belongs to a worker this coordinator spawns (--spawn ${this.cfg.spawn})`;
    const holder = this.everyone.find((m) => !m.gone && m.launcher?.rank === rank && m.launcher.kind !== 'spawned');
    if (holder) return `rank ${rank} (${kind}) is held by worker ${holder.workerId} (pid ${holder.pid}${holder.host ? ` on ${holder.host}` : ''})`;
    return null;
  }

  private onJoined(j: JoinInfo): void {
    const ranked = j.launcher?.rank ?? null;
    if (ranked !== null) {
      const why = this.launcherRefusal(j, ranked);
      if (why) return this.refuse(j, why);
    }
    const replacing = this.recovery?.stage === 'replace' && this.recovery.waiting.has(j.workerId);
    const spare = ranked !== null ? ranked >= this.cfg.workers : j.spawned && j.workerId.startsWith('spare');
    // A launcher's worker that comes back in its rank: the ring waits for it, or will.
    const rejoining = ranked !== null && !spare && this.phase !== 'joining';
    const expected =
      spare ||
      rejoining ||
      (this.phase === 'joining' && (j.spawned || ranked !== null || this.pendingJoin.filter((m) => !m.spawned).length < this.cfg.workers - this.cfg.spawn));
    if (!replacing && !expected) return this.refuse(j, 'the job is full');
    const m: Member = { ...j, rank: -1, home: -1, firstCard: -1, arrival: this.arrivals++, lastSeen: this.now, gone: false };
    this.everyone.push(m);
    this.byId.set(m.workerId, m);
    const r = this.recovery;
    if (r?.stage === 'replace' && (replacing || (rejoining && r.rejoin.has(ranked!)))) {
      const rank = replacing ? r.waiting.get(j.workerId)! : r.rejoin.get(ranked!)!;
      if (replacing) r.waiting.delete(j.workerId);
      else r.rejoin.delete(ranked!);
      this.fill(rank, m);
      if (r.waiting.size === 0 && r.rejoin.size === 0) {
        this.disarm('join');
        this.resumeCurrent();
      }
      return;
    }
    if (rejoining) {
      // Before its recovery asks for it (its predecessor's exit not yet handled): kept for then.
      this.log(`worker ${m.workerId} rejoins for rank ${ranked} (${j.launcher!.kind}); kept until that rank's recovery`);
      this.early.set(ranked!, m);
      return;
    }
    if (spare) {
      this.spares.push(m);
      if (this.phase !== 'joining') this.log(`worker ${m.workerId} joined as a spare${ranked !== null ? ` (rank ${ranked}, ${j.launcher!.kind})` : ''}`);
    } else this.pendingJoin.push(m);
    if (this.phase !== 'joining' || this.pendingJoin.length < this.cfg.workers || this.spares.filter((x) => x.spawned).length < this.spawnedSpares) return;
    // Every worker is here: ranks by launcher, then by launch order (spawned first, then joiners by arrival).
    this.disarm('join');
    const ring = assignRing(
      this.pendingJoin.map((x) => ({ ...x, launcherRank: x.launcher?.rank ?? null })),
      this.cfg.cardsPerWorker,
    );
    const joined = new Map<string, Member>();
    for (const p of this.pendingJoin) if (!joined.has(p.workerId)) joined.set(p.workerId, p);
    this.members = ring.map((a) => {
      const x = joined.get(a.member.workerId)!;
      x.rank = a.rank;
      x.home = a.rank;
      x.firstCard = a.firstCard;
      return x;
    });
    this.pendingJoin = [];
    this.launch = [...this.members];
    this.phase = 'ringing';
    this.startEpoch(0, 'start', () => ({ step: 0, source: 'initial' }));
  }

  /** Launcher-ranked workers that came back before their rank's recovery asked for them, by launch rank. */
  private readonly early = new Map<number, Member>();

  /** `m` takes the place of the member at `rank` (a replacement, a spare, a rejoiner). */
  private fill(rank: number, m: Member): void {
    const old = this.members[rank];
    Object.assign(m, { rank, home: old.home, firstCard: old.firstCard });
    this.members[rank] = m;
  }

  private onExit(worker: string, why: string): void {
    const m = this.byId.get(worker);
    if (!m) {
      // A spawned worker that never joined: at launch or while replacing, the run cannot go on. (One
      // that joined by itself and was refused at the door is no member: its leaving changes nothing.)
      if (this.spawnedIds.has(worker) && (this.phase === 'joining' || this.recovery?.stage === 'replace')) this.fail(`${why} before joining`);
      return;
    }
    if (m.gone) return;
    m.gone = true;
    if (m.rank < 0 || this.members[m.rank] !== m) {
      this.spares = this.spares.filter((s) => s !== m);
      this.pendingJoin = this.pendingJoin.filter((s) => s !== m);
      for (const [home, x] of this.early) if (x === m) this.early.delete(home);
      return;
    }
    if (!this.trainingStart) return this.fail(`${why} (rank ${m.rank})`);
    this.raise({ by: 'exit', rank: m.rank, at: this.now, detail: why });
    // Gone during an abort: no answer to wait for (a crash whose exit is slow to come, say).
    if (this.recovery?.stage === 'abort') {
      this.recovery.left.add(m.rank);
      this.checkAcks();
    }
  }

  // ---------------------------------------------------------------- messages

  private onMessage(m: Member, msg: WorkerMessage): void {
    const rank = m.rank;
    switch (msg.type) {
      case 'ready':
        if (msg.epoch !== this.epoch || (this.phase !== 'ringing' && this.recovery?.stage !== 'ringing')) return;
        this.readyRanks.add(rank);
        if (this.readyRanks.size === this.W) this.ringedUp();
        return;
      case 'heartbeat':
        this.rssByRank.set(rank, msg.rssMB);
        this.workerRssMBMax = Math.max(this.workerRssMBMax, msg.rssMB);
        this.noteMoved(rank, msg.progress ? `${msg.progress.opSeq}:${msg.progress.chunksReceived}:${msg.progress.chunksSent}:${msg.progress.moved ?? ''}` : null);
        if (msg.progress) {
          const p = msg.progress;
          this.opAt.set(rank, { opSeq: p.opSeq, phase: p.phase, chunk: p.chunksReceived });
          this.progress.set(rank, { rank, opSeq: p.opSeq, step: p.step, chunksReceived: p.chunksReceived, chunksExpected: p.chunksExpected, chunksSent: p.chunksSent, waitingFor: p.waitingFor, silentMs: 0, at: this.now });
        } else if (this.progress.has(rank)) this.progress.get(rank)!.at = this.now;
        return;
      case 'aborted':
        if (msg.epoch === this.epoch && this.recovery?.stage === 'abort') {
          if (msg.checkpoints && this.W > 1) {
            const prev = this.members[predecessor(rank, this.W)];
            const held = msg.checkpoints.held.find((h) => h.firstCard === prev.firstCard)?.steps ?? [];
            this.ckpt.inventory(rank, msg.checkpoints.own, prev.rank, held);
          } else if (msg.checkpoints) this.ckpt.inventory(rank, msg.checkpoints.own, rank, []);
          this.recovery.acks.add(rank);
          this.checkAcks();
        }
        return;
      case 'step': {
        if (msg.epoch !== this.epoch) {
          // A step the rank finished before the abort reached it (the report comes before the answer
          // to the abort): counted, or where the recovery resumes would depend on which came first.
          const late = this.beforeAck(rank, msg.epoch) ? this.steps.add({ rank, epoch: msg.epoch, step: msg.step, wrong: msg.wrong, timings: msg.timings }, this.W, this.now) : null;
          if (late) (late.ranks = []), (late.links = []);
          return;
        }
        this.rssByRank.set(rank, msg.rssMB);
        if (msg.pssMB !== null) this.pssByRank.set(rank, msg.pssMB);
        this.workerRssMBMax = Math.max(this.workerRssMBMax, msg.rssMB);
        this.noteMoved(rank, null);
        this.stalled.delete(rank);
        this.opAt.set(rank, { opSeq: msg.step, phase: 'done', chunk: null });
        const s = this.steps.add({ rank, epoch: msg.epoch, step: msg.step, wrong: msg.wrong, timings: msg.timings }, this.W, this.now);
        if (s) this.stepCounted(msg.step, s);
        return;
      }
      // As step reports: a rank reports step s, then checkpoints s + 1. What a rank keeps is
      // replaced by the inventory of its abort ack, which follows both on its socket.
      case 'checkpointed':
        if (msg.epoch !== this.epoch && !this.beforeAck(rank, msg.epoch)) return;
        this.ckpt.checkpointed(rank, msg.step, msg.disk);
        return;
      case 'holding':
        if (msg.epoch !== this.epoch && !this.beforeAck(rank, msg.epoch)) return;
        this.ckpt.holding(msg.owner, msg.step);
        return;
      case 'fault':
        this.onFaultStruck(m, msg);
        return;
      case 'stalled':
        if (msg.epoch !== this.epoch || this.phase !== 'training') return;
        this.stalled.set(rank, { at: this.now, opSeq: msg.opSeq, idleMs: msg.idleMs });
        this.checkStuck();
        return;
      case 'done':
        if (msg.epoch !== this.epoch) return;
        this.workerRssMBMax = Math.max(this.workerRssMBMax, msg.rssMBMax);
        // By first card: the job digest is over cards in card order, whatever order the ring is in.
        this.digests.set(m.firstCard, msg.cardDigests);
        if (this.allDone) this.finish();
        return;
      case 'failed': {
        const by: DetectedBy = msg.code === 'RS_ERR_CHECKSUM' || msg.code === 'RS_ERR_BAD_FRAME' ? 'checksum' : 'watchdog';
        // A bad frame a rank found before the abort reached it is a sign of this recovery's faults too.
        if ((msg.epoch !== this.epoch && !(by === 'checksum' && this.beforeAck(rank, msg.epoch))) || msg.code === 'RS_ERR_ABORTED') return;
        // A checkpoint that is not there or does not read back (not a peer that went away meanwhile).
        if (msg.restore && msg.code !== 'RS_ERR_PEER_LOST' && msg.code !== 'RS_ERR_TIMEOUT') {
          return this.raise({ by, rank, at: this.now, detail: `rank ${rank} could not restore its checkpoint: ${msg.code}: ${msg.message}`, restore: true });
        }
        const from = /from rank (\d+)/.exec(msg.message);
        this.raise({ by, rank, at: this.now, detail: `rank ${rank}: ${msg.code}: ${msg.message}`, from: from ? Number(from[1]) : undefined });
        return;
      }
      default:
        return;
    }
  }

  /**
   * Whether a report of `epoch` from `rank` was sent before the rank heard of the abort under way:
   * one of the aborted epoch, the rank not yet acked. Such a report is of a step the rank finished,
   * and the coordinator may be far behind its sockets (64 busy workers on 2 cores left it 3 steps
   * behind, and, with the two newest checkpoints kept, a recovery found no step both kept and
   * counted, and went back to step 0): it is counted, and its rank's ack comes after it.
   */
  private beforeAck(rank: number, epoch: number): boolean {
    const r = this.recovery;
    return r?.stage === 'abort' && epoch === this.epoch - 1 && !r.acks.has(rank);
  }

  private stepCounted(step: number, s: StepAgg): void {
    this.measureAfterActions(step, s);
    this.markStragglersStruck(step);
    this.watchStragglers(step, s);
    if (this.rankTimes && step % this.rankTimesStride === 0) {
      this.rankTimes.set(step, rankTimesOf(s, this.W));
      // Bounded: past RANK_TIMES_CELLS, every other step kept is let go (the heat map groups steps by then anyway).
      if (this.rankTimes.size * this.W > RANK_TIMES_CELLS && this.rankTimes.size > 16) {
        this.rankTimesStride *= 2;
        for (const k of this.rankTimes.keys()) if (k % this.rankTimesStride !== 0) this.rankTimes.delete(k);
      }
    }
    // The per-rank rows have been used: a long run must not keep W of them per step.
    s.ranks = [];
    s.links = [];
    this.act({
      type: 'progress',
      step: { done: step + 1, total: this.cfg.steps },
      line: `step ${step + 1}/${this.cfg.steps}  step ${s.stepMs.toFixed(1)} ms  all-reduce ${s.allreduceMs.toFixed(1)} ms  wrong ${s.wrong}` + (this.epoch > 0 ? `  epoch ${this.epoch}` : ''),
    });
  }

  private onFaultStruck(m: Member, msg: Extract<WorkerMessage, { type: 'fault' }>): void {
    this.fired.add(msg.id);
    const r = this.faults.find((x) => x.fault?.id === msg.id);
    if (!r || !r.fault) return;
    r.atStep = msg.step;
    r.phase = msg.phase;
    const f = r.fault;
    if (f.kind === 'link') {
      // A link fault takes effect only on a link the epoch's algorithm (or a checkpoint copy) uses.
      const toMember = this.byHome(linkEnds(f, this.cfg.workers)[1]);
      const note = !toMember
        ? `its link ends at rank ${linkEnds(f, this.cfg.workers)[1]} (at launch), which had left the ring`
        : unusedLinkNote(this.epochAlgo(), m.rank, toMember.rank, this.W, this.job.checkpointEvery > 0);
      if (note) {
        r.note = note;
        this.log(`fault ${f.id} (link ${r.link?.join('->')}) did not strike: ${note}`);
        return;
      }
    }
    r.injectedAt = this.now;
    r.struck = true;
    delete r.note;
    if (f.kind === 'hang' && f.ms !== undefined) {
      this.armThaw(m.workerId, f.ms);
    }
  }

  private epochAlgo(): AllreduceAlgo {
    return this.epochs[this.epochs.length - 1]?.algo ?? this.algoFor(this.W);
  }

  // ---------------------------------------------------------------- timers

  private onTimer(name: string): void {
    if (name === 'join') {
      const r = this.recovery;
      if (r?.stage === 'replace' && r.rejoin.size) {
        const ranks = [...r.rejoin.keys()].join(', ');
        return this.fail(
          `no worker came back for rank ${ranks} within --rejoin-timeout-ms ${this.cfg.rejoinTimeoutMs}: this coordinator did not start ${r.rejoin.size > 1 ? 'them' : 'it'}, so ${r.rejoin.size > 1 ? 'their' : 'its'} launcher must (a Kubernetes Indexed Job or srun --requeue restarts tasks), or run with --on-failure spare and spares`,
        );
      }
      const have = this.phase === 'joining' ? this.pendingJoin.length + this.spares.filter((x) => x.spawned).length : r?.stage === 'replace' ? this.cfg.workers - r.waiting.size : 0;
      const want = this.phase === 'joining' ? this.cfg.workers + this.spawnedSpares : this.cfg.workers;
      return this.fail(`only ${have} of ${want} workers joined within ${this.cfg.readyTimeoutMs} ms`);
    }
    if (name === 'ready') return this.fail(`not every worker was ready for epoch ${this.epoch} within ${this.cfg.readyTimeoutMs} ms`);
    if (name === 'monitor') {
      this.heartbeatMonitor();
      this.arm('monitor', this.monitorMs);
      return;
    }
    if (name === 'settle') return this.decideAfterSettle();
    if (name === 'abort-ack') return this.afterAckWait();
    if (name === 'abort-slow') return this.abortDone();
    if (name.startsWith('cont:')) return this.thaw(name.split(':')[1], name.endsWith(':probed'));
    if (name.startsWith('fault:')) return this.timedFault(Number(name.slice(6)));
    if (name.startsWith('pause:')) return this.pauseTick(Number(name.slice(6)));
  }

  /** A rank's op moved (`key` changed), or it works outside an op (null) and has steps left: not stuck. */
  private noteMoved(rank: number, key: string | null): void {
    const last = this.moved.get(rank);
    const m = this.members[rank];
    // A rank that has run all its steps waits for nothing: its heartbeats are no sign of progress.
    if (key === null && m && this.digests.has(m.firstCard)) return;
    if (key === null || !last || last.key !== key) this.moved.set(rank, { at: this.now, key: key ?? '' });
  }

  /**
   * The collective watchdog, over every rank: an op is stuck when a rank's watchdog says it waits
   * and no rank at all has moved for --timeout-ms; a rank that waits while others still move is
   * in a slow op (hundreds of processes on two cores), not a stuck one.
   */
  private checkStuck(): void {
    if (this.stalled.size === 0 || this.recovery || this.phase !== 'training') return;
    let newest = -Infinity;
    for (const m of this.members) if (!m.gone) newest = Math.max(newest, this.moved.get(m.rank)?.at ?? -Infinity);
    if (this.now - newest < this.cfg.timeoutMs) return;
    const [rank, st] = [...this.stalled.entries()].sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
    this.stalled.clear();
    this.raise({ by: 'watchdog', rank, at: this.now, detail: `no rank has moved for ${Math.round(this.now - newest)} ms; rank ${rank} waits in op ${st.opSeq}` });
  }

  private heartbeatMonitor(): void {
    this.checkStuck();
    if (!this.trainingStart || this.recovery) return;
    for (const m of this.members) {
      if (m.gone || !this.silentTooLong(m) || this.monitorProbes.has(m.workerId)) continue;
      // Silence is a suspicion; for a worker we spawned the kernel settles it: a process that runs or
      // waits is slow (hundreds of processes share two cores), one that is stopped is frozen.
      this.monitorProbes.add(m.workerId);
      this.act({ type: 'probe', worker: m.workerId });
    }
  }

  /**
   * The end of a hang or pause (SIGCONT). A worker silent past the heartbeat deadline is probed
   * first, while it is still stopped, as the monitor would on its next tick: whether a hang is
   * detected depends on its length, not on which timer fired first. A worker a detection found
   * frozen stays stopped until its recovery kills it (thawed, it would train on into the abort).
   */
  private thaw(worker: string, probed: boolean): void {
    if (this.fenced.has(worker)) return;
    const m = this.byId.get(worker);
    const member = m && !m.gone && this.members[m.rank] === m ? m : undefined;
    const r = this.recovery;
    if (!probed && member && this.trainingStart && this.silentTooLong(member)) {
      if ((!r || r.stage === 'settle') && !this.monitorProbes.has(worker)) this.monitorProbes.add(worker);
      else if (r?.stage === 'abort' && !r.acks.has(member.rank) && !r.lost.has(member.rank) && !r.frozen.includes(member.rank)) r.probing.add(member.rank);
      else return this.act({ type: 'signal', worker, signal: 'SIGCONT' });
      this.act({ type: 'probe', worker });
      this.arm(`cont:${worker}:${++this.timerSeq}:probed`, 0);
      return;
    }
    this.thawDue.delete(worker);
    this.act({ type: 'signal', worker, signal: 'SIGCONT' });
  }

  /** When each stopped worker's SIGCONT is due (hangs with ms, pauses). */
  private readonly thawDue = new Map<string, number>();

  private armThaw(worker: string, ms: number): void {
    this.thawDue.set(worker, Math.max(this.thawDue.get(worker) ?? 0, this.now + ms));
    this.arm(`cont:${worker}:${++this.timerSeq}`, ms);
  }

  /** Whether a worker we stopped (a hang with ms, a pause) is thawed before the heartbeat deadline. */
  private thawsInTime(m: Member): boolean {
    const due = this.thawDue.get(m.workerId);
    return due !== undefined && due - m.lastSeen <= this.cfg.heartbeatDeadMs;
  }

  /**
   * Silent past the heartbeat deadline; a hang we injected counts as lasting what it was meant to
   * (our SIGCONT timer firing late does not make a short hang a long one).
   */
  private silentTooLong(m: Member): boolean {
    return this.now - m.lastSeen > this.cfg.heartbeatDeadMs && !this.thawsInTime(m);
  }

  private static frozen(s: ProcessState): boolean {
    return s === 'stopped' || s === 'dead' || s === 'unknown';
  }

  private onProbed(worker: string, state: ProcessState): void {
    const found = this.byId.get(worker);
    const m = found && !found.gone && this.members[found.rank] === found ? found : undefined;
    if (this.monitorProbes.delete(worker)) {
      if (m && (!this.recovery || this.recovery.stage === 'settle') && this.trainingStart && CoordinatorMachine.frozen(state) && this.silentTooLong(m)) {
        const before = this.signals.length;
        this.raise({ by: 'heartbeat', rank: m.rank, at: this.now, detail: `rank ${m.rank} silent for ${Math.round(this.now - m.lastSeen)} ms` });
        if (this.signals.length > before) this.fenced.add(worker);
      }
      return;
    }
    const r = this.recovery;
    if (r?.stage !== 'abort' || !m || !r.probing.delete(m.rank)) return;
    // Stopped for less than the heartbeat deadline: a short hang, as the monitor would judge it; it is
    // probed again once past the deadline (see afterProbes) and is frozen only if still stopped then.
    r.stopped.delete(m.rank);
    if (state === 'stopped' && !this.silentTooLong(m)) r.stopped.add(m.rank);
    else if (CoordinatorMachine.frozen(state)) {
      r.frozen.push(m.rank);
      this.fenced.add(worker);
      // Its sign, for the fault that froze or killed it (decide takes every sign given before it).
      if (r.why === 'fault') this.signals.push({ by: state === 'stopped' ? 'heartbeat' : 'exit', rank: m.rank, at: this.now, detail: `rank ${m.rank} did not answer the abort: its process is ${state}` });
    }
    if (r.probing.size === 0) this.afterProbes();
  }

  private timedFault(id: number): void {
    const rec = this.faults.find((x) => x.fault?.id === id);
    const f = rec?.fault;
    if (!rec || !f || this.fired.has(id)) return;
    const m = this.byHome(target(f));
    if (!m || m.gone) {
      rec.note = `its worker (rank ${target(f)} at launch) had left the ring by ${'ms' in f.at ? f.at.ms : '?'} ms`;
      return;
    }
    rec.injectedAt = this.now;
    rec.struck = true;
    rec.atStep = Math.max(0, this.steps.highestDone() + 1);
    this.fired.add(id);
    // A worker we did not spawn is no child of ours to signal: it kills, stops and resumes itself.
    if (f.kind === 'kill' && m.spawned) this.act({ type: 'signal', worker: m.workerId, signal: 'SIGKILL' });
    else if (f.kind === 'hang' && m.spawned) {
      this.act({ type: 'signal', worker: m.workerId, signal: 'SIGSTOP' });
      if (f.ms !== undefined) this.armThaw(m.workerId, f.ms);
    } else {
      this.send(m, { type: 'inject', epoch: this.epoch, fault: this.order(f, { step: 0 }) });
      // Its resume is its own; the timer keeps the books (and its SIGCONT reaches no one).
      if (f.kind === 'hang' && f.ms !== undefined) this.armThaw(m.workerId, f.ms);
    }
  }

  /**
   * A fault injected into the running job. Its ranks are ranks at launch, as a scenario's; without
   * a trigger it strikes now (a fault before training starts strikes when it starts), `atMs` is
   * from the start of training, and `step` arms the rank for that step (in this epoch and the next).
   */
  private onInject(spec: string | FaultInput, ref: number): void {
    const no = (error: string) => this.act({ type: 'answer', ref, answer: { ok: false, error } });
    if (this.phase === 'finished') return no('the run has finished');
    let f: Fault;
    try {
      f = parseLiveInject(spec, { workers: this.cfg.workers, steps: this.cfg.steps, id: this.nextFaultId });
    } catch (e) {
      if (e instanceof ScenarioError) return no(e.message);
      throw e;
    }
    const home = target(f);
    const m = this.phase === 'joining' ? undefined : this.byHome(home);
    if (this.phase !== 'joining' && (!m || m.gone)) return no(`rank ${home} (at launch) is not in the ring now`);
    const done = this.steps.highestDone();
    if ('step' in f.at && f.at.step <= done) return no(`step ${f.at.step} has passed: every rank has done steps 0..${done}`);
    if (this.allDone) return no('every rank has done its steps');
    this.nextFaultId++;
    this.scheduled.push(f);
    const rec: FaultRecord = { ...faultRecord(f, this.cfg.workers), live: true };
    this.faults.push(rec);
    if ('ms' in f.at) {
      if (this.trainingStart) this.arm(`fault:${f.id}`, Math.max(0, this.trainingStart + f.at.ms - this.now));
    } else if (m) this.send(m, { type: 'inject', epoch: this.epoch, fault: this.order(f, f.at), arm: true });
    const { fault: _f, injectedAt: _i, ...report } = rec;
    const where = f.kind === 'link' ? `link ${rec.link!.join('->')}` : `rank ${f.rank}`;
    const when = 'step' in f.at ? `at step ${f.at.step}${f.at.phase ? ` ${f.at.phase}` : ''}` : f.at.ms > 0 ? `at ${f.at.ms} ms` : 'now';
    this.log(`fault ${f.id} (${f.kind}, ${where}) injected into the running job, ${when}`);
    this.act({ type: 'answer', ref, answer: { ok: true, id: f.id, fault: report } });
  }

  /** pause stragglers: short SIGSTOP/SIGCONT cycles from outside, like long garbage-collection stalls. */
  private pauseTick(i: number): void {
    const p = this.pauses[i];
    const m = this.launch[p.f.rank];
    if (this.allDone || p.t >= p.end || !m || m.gone) return;
    if (m.spawned) {
      this.act({ type: 'signal', worker: m.workerId, signal: 'SIGSTOP' });
      this.armThaw(m.workerId, p.f.ms);
    } else {
      this.send(m, { type: 'inject', epoch: this.epoch, fault: { id: 0, kind: 'hang', at: { step: 0 }, ms: p.f.ms } });
      this.armThaw(m.workerId, p.f.ms);
    }
    const inj = this.injected[this.cfg.stragglers.indexOf(p.f)];
    if (inj && !inj.struck) {
      inj.struck = true;
      inj.atStep = Math.max(0, this.steps.highestDone() + 1);
    }
    p.t += p.f.everyMs;
    this.arm(`pause:${i}`, p.f.everyMs);
  }

  private trainingStarted(): void {
    this.startupMs = this.now - this.t0;
    this.trainingStart = this.now;
    this.act({ type: 'progress', line: `${this.W} workers ready in ${Math.round(this.startupMs)} ms; training ${this.cfg.steps} steps` });
    for (const f of this.scheduled) if ('ms' in f.at) this.arm(`fault:${f.id}`, f.at.ms);
    for (const f of this.cfg.stragglers) {
      if (f.kind !== 'pause') continue;
      const start = f.at && 'ms' in f.at ? f.at.ms : 0;
      this.pauses.push({ f, t: start, end: f.forMs !== undefined ? start + f.forMs : Infinity });
      this.arm(`pause:${this.pauses.length - 1}`, start);
    }
  }

  // ---------------------------------------------------------------- epochs

  private order(f: Fault, at: { step: number; phase?: 'reduce-scatter' | 'all-gather'; chunk?: number }): FaultOrder {
    const o: FaultOrder = { id: f.id, kind: f.kind, at: { step: at.step }, ms: 'ms' in f && f.ms !== undefined ? f.ms : null };
    if (at.phase) o.at.phase = at.phase;
    if (at.chunk !== undefined) o.at.chunk = at.chunk;
    if (f.kind === 'crash') o.code = f.code;
    if (f.kind === 'corrupt') o.frames = f.frames;
    if (f.kind === 'link') {
      const to = this.byHome(linkEnds(f, this.cfg.workers)[1]);
      // The rank at the far end in this epoch; a link whose far end left the ring shapes nothing.
      o.to = to ? to.rank : -1;
      if (f.cut) o.cut = true;
      if (f.delayMs !== undefined) o.delayMs = f.delayMs;
      if (f.bandwidth !== undefined) o.bandwidth = f.bandwidth;
    }
    return o;
  }

  private faultsFor(m: Member, fromStep: number): FaultOrder[] {
    return this.scheduled.flatMap((f) => ('step' in f.at && target(f) === m.home && !this.fired.has(f.id) && f.at.step >= fromStep ? [this.order(f, f.at)] : []));
  }

  /**
   * Injected stragglers belong to the hardware: a slow node is the worker process that held the
   * rank at launch (its replacement is a new server, not slow), a slow link the cable between two
   * launch identities (after a reroute it may no longer carry anything).
   */
  private stragglersFor(m: Member): StragglerOrder[] {
    const out: StragglerOrder[] = [];
    for (const f of this.cfg.stragglers) {
      const fromStep = f.kind !== 'jitter' && f.kind !== 'pause' && 'step' in f.at ? f.at.step : 0;
      if (f.kind === 'jitter') out.push({ kind: 'jitter', maxMs: f.maxMs });
      else if (f.kind === 'slow' && m === this.launch[f.rank]) out.push({ kind: 'slow', fromStep, steps: f.steps ?? null, factor: f.factor, addMs: f.addMs });
      else if (f.kind === 'slow-link' && m === this.launch[f.from]) {
        const [, toHome] = linkEnds(f, this.cfg.workers);
        const to = this.launch[toHome];
        if (to && this.members[to.rank] === to) {
          out.push({ kind: 'slow-link', fromStep, steps: f.steps ?? null, bandwidth: f.bandwidth, delayMs: f.delayMs, to: to.rank });
        }
      }
    }
    return out;
  }

  /** Assign and ring up epoch `epoch` from step `fromStep`. */
  private startEpoch(fromStep: number, reason: string, restoreFor: (r: number) => Restore): void {
    this.readyRanks = new Set();
    // Ranks that finished the last step before a fault struck another said 'done' in the old
    // epoch; they will again in this one, after redoing it.
    this.digests.clear();
    const algo = this.algoFor(this.W);
    const lostCards = [...this.lostCards];
    for (const m of this.members) {
      this.send(m, assignMessage(this.members, m.rank, this.epoch, this.job, algo, algo !== 'ring', {
        restore: restoreFor(m.rank),
        faults: this.faultsFor(m, fromStep),
        lostCards,
        stragglers: this.stragglersFor(m),
      }));
    }
    this.pendingEpoch = { fromStep, reason, algo };
    if (this.recovery) this.recovery = { stage: 'ringing' };
    this.arm('ready', this.cfg.readyTimeoutMs);
  }

  private pendingEpoch: { fromStep: number; reason: string; algo: AllreduceAlgo } | null = null;

  private ringedUp(): void {
    this.disarm('ready');
    const p = this.pendingEpoch!;
    this.stalled.clear();
    for (const m of this.members) {
      m.lastSeen = this.now;
      this.moved.set(m.rank, { at: this.now, key: '' });
    }
    this.epochs.push({
      epoch: this.epoch,
      startedAtMs: Math.round(this.now - this.t0),
      fromStep: p.fromStep,
      reason: p.reason,
      cards: this.W * this.cfg.cardsPerWorker,
      algo: p.algo,
      members: this.members.map((m) => ({ rank: m.rank, workerId: m.workerId, pid: m.pid })),
    });
    this.broadcast({ type: 'start', epoch: this.epoch, fromStep: p.fromStep });
    if (this.phase === 'ringing') {
      this.phase = 'training';
      this.trainingStarted();
    }
    if (this.recovery) {
      const c = this.current!;
      this.failedRingUps = 0;
      this.unrestored = new Set();
      // From the fault (or, for one from outside, from its detection) to training resumed.
      const tookMs = Math.round(this.now - (c.rec?.injectedAt ?? c.detectedAt));
      if (c.rec) c.rec.recoveredAfterMs = tookMs;
      for (const a of c.also ?? []) a.recoveredAfterMs = Math.round(this.now - (a.injectedAt ?? c.detectedAt));
      for (const [r, ranks] of this.unfinished) {
        r.restoredFrom = restoredFrom(ranks, c.restoreFor);
        r.recoveredAfterMs = Math.round(this.now - (r.injectedAt ?? c.detectedAt));
      }
      this.unfinished.clear();
      this.log(`${c.rec ? 'recovered' : 'resumed'} in ${tookMs} ms: epoch ${this.epoch}, ${this.W} workers, from step ${c.fromStep}${c.rec ? ` (${c.rec.restoredFrom})` : ''}`);
      this.recovery = null;
      this.current = null;
      if (this.signals.length) this.beginRecovery();
    }
  }

  // ---------------------------------------------------------------- detection and recovery

  private raise(s: Signal): void {
    if (this.phase === 'finished' || this.allDone) return;
    const r = this.recovery;
    this.signals.push(s);
    if (r) {
      // A rank that fails to ring up for the new epoch (a link that timed out, a new fault) would
      // otherwise leave the recovery waiting --ready-timeout-ms for a ready that never comes.
      if (r.stage === 'ringing') this.ringUpFailed();
      return;
    }
    if (this.phase === 'ringing') {
      // The first epoch did not ring up: recover as from any fault.
      this.disarm('ready');
      this.current = null;
    }
    this.beginRecovery();
  }

  private ringUpFailed(): void {
    this.disarm('ready');
    this.log(`epoch ${this.epoch} did not ring up: ${this.signals[0]?.detail ?? 'a fault'}`);
    // What those entries said they were restored from did not happen: the recovery that rings up says.
    for (const [r, ranks] of this.current?.ranksOf ?? []) {
      this.unfinished.set(r, ranks);
      r.restoredFrom = null;
    }
    // A ring-up that fails every time would loop for ever: give up, saying why.
    if (++this.failedRingUps >= MAX_FAILED_RING_UPS) return this.fail(`${this.failedRingUps} epochs in a row did not ring up; the last: ${this.signals[0]?.detail ?? 'unknown'}`);
    this.recovery = null;
    this.current = null;
    this.beginRecovery();
  }

  private beginRecovery(): void {
    this.recovery = { stage: 'settle' };
    this.arm('settle', SETTLE_MS);
  }

  private settled: { main: Signal; lost: Set<number>; table: RankProgress[]; seen: Signal[] } | null = null;

  private decideAfterSettle(): void {
    const seen = this.signals;
    this.signals = [];
    if (seen.length === 0) {
      this.recovery = null;
      return;
    }
    const main = CoordinatorMachine.mainSign(seen);
    const lost = new Set(seen.filter((s) => s.by === 'exit' || s.by === 'heartbeat').map((s) => s.rank));
    // Rolled back and still failing to ring up (a link cut for good, a peer that cannot connect):
    // the ranks that cannot ring up go to new workers, on other hardware, as a lost one would.
    // One at a time (the first to say so), so that a shrink keeps a ring.
    const stuck = this.failedRingUps >= 2 ? seen.find((s) => s.by === 'watchdog' && this.members[s.rank] && !this.members[s.rank].gone) : undefined;
    if (stuck) lost.add(stuck.rank);
    const table = [...this.progress.values()].map((p) => ({ ...p, silentMs: this.now - p.at }));
    this.settled = { main, lost, table, seen };
    this.abortEpoch(main.detail, lost, 'fault');
  }

  /**
   * The sign a recovery is named after: an exit, a silence, a bad frame, else the first; of one
   * kind, the lowest rank's, not the first to arrive (two kills at one step give the same main
   * entry, the one the steps lost are counted in, in every run).
   */
  private static mainSign(signs: Signal[]): Signal {
    const pick = (by: DetectedBy) => signs.filter((s) => s.by === by).sort((a, b) => a.rank - b.rank || (a.from ?? -1) - (b.from ?? -1))[0];
    return pick('exit') ?? pick('heartbeat') ?? pick('checksum') ?? signs[0];
  }

  /** A new epoch: every rank abandons the op under way; then those that do not answer are probed. */
  private abortEpoch(reason: string, lost: Set<number>, why: 'fault' | 'reroute'): void {
    this.epoch++;
    this.recovery = { stage: 'abort', why, lost, acks: new Set(), probing: new Set(), frozen: [], stopped: new Set(), left: new Set() };
    this.broadcast({ type: 'abort', epoch: this.epoch, reason });
    // A live worker answers within milliseconds; a few heartbeat periods is plenty.
    this.arm('abort-ack', Math.min(this.cfg.heartbeatDeadMs, Math.max(300, 5 * this.cfg.heartbeatMs)));
    this.checkAcks();
  }

  private unacked(r: Extract<Recovery, { stage: 'abort' }>): Member[] {
    return this.members.filter((m) => !m.gone && !r.lost.has(m.rank) && !r.acks.has(m.rank) && !r.frozen.includes(m.rank));
  }

  private checkAcks(): void {
    const r = this.recovery;
    if (r?.stage !== 'abort' || r.probing.size > 0) return;
    // Cheap first: a whole scan per ack would be n² over an abort of thousands of workers.
    if (r.acks.size < this.members.length - r.lost.size - r.frozen.length - r.left.size) return;
    if (this.unacked(r).length > 0) return;
    this.disarm('abort-ack');
    this.disarm('abort-slow');
    this.abortDone();
  }

  private afterAckWait(): void {
    const r = this.recovery;
    if (r?.stage !== 'abort') return;
    const silent = this.unacked(r);
    if (silent.length === 0) return this.abortDone();
    for (const m of silent) {
      r.probing.add(m.rank);
      this.act({ type: 'probe', worker: m.workerId });
    }
  }

  private afterProbes(): void {
    const r = this.recovery;
    if (r?.stage !== 'abort') return;
    // Alive but slow to answer: wait for them (they must ring up for the next epoch anyway).
    const waiting = this.unacked(r);
    if (waiting.length === 0) return this.abortDone();
    const again = Math.min(...waiting.filter((m) => r.stopped.has(m.rank) && !this.thawsInTime(m)).map((m) => m.lastSeen + this.cfg.heartbeatDeadMs - this.now));
    if (Number.isFinite(again)) this.arm('abort-ack', Math.max(1, again + 1));
    this.arm('abort-slow', this.cfg.readyTimeoutMs);
  }

  private abortDone(): void {
    const r = this.recovery;
    if (r?.stage !== 'abort') return;
    this.disarm('abort-ack');
    this.disarm('abort-slow');
    if (r.why === 'reroute') return this.rerouteAfterAbort(r.frozen);
    this.decide(r.frozen);
  }

  private decide(frozen: number[]): void {
    const { lost, table, seen } = this.settled!;
    this.settled = null;
    // Every rank has answered the abort or been found frozen: what came before those answers (a
    // worker's exit, a bad frame, a frozen process) is part of this recovery, in whatever order it came.
    const late = this.signals;
    this.signals = [];
    const main = CoordinatorMachine.mainSign([...seen, ...late]);
    for (const s of late) if ((s.by === 'exit' || s.by === 'heartbeat') && this.members[s.rank]) lost.add(s.rank);
    for (const f of frozen) lost.add(f);
    let location: Location | null;
    if (main.by === 'exit' || main.by === 'heartbeat' || main.restore) location = { kind: 'rank', rank: main.rank };
    else if (frozen.length) location = { kind: 'rank', rank: frozen[0] };
    else if (main.by === 'checksum' && main.from !== undefined) location = { kind: 'link', from: main.from, to: main.rank };
    else location = locateStuck(table, this.cfg.heartbeatDeadMs);
    const rec = this.attribute(main, location) ?? this.newExternal(main, location);
    rec.detectedBy = main.by;
    rec.detectedAfterMs = rec.injectedAt !== null ? Math.max(0, Math.round(main.at - rec.injectedAt)) : null;
    rec.located = describeLocation(location);
    this.log(`fault detected by ${main.by}${rec.detectedAfterMs !== null ? ` after ${rec.detectedAfterMs} ms` : ''}, located at ${rec.located}: ${main.detail}`);
    const also = this.alsoStruck([...seen, ...late], main, rec, location);
    const alike = (what: Pick<FaultRecord, 'action' | 'restoredFrom'>) => {
      for (const a of also) Object.assign(a.rec, { action: what.action, restoredFrom: what.restoredFrom, lostSteps: 0 });
    };

    if (this.cfg.onFailure === 'abort') {
      rec.action = 'abort';
      alike(rec);
      return this.fail(`stopped on the first fault (--on-failure abort): ${main.detail}`);
    }
    if (this.restarts + lost.size > this.cfg.maxRestarts) {
      rec.action = 'abort';
      alike(rec);
      return this.fail(`more than --max-restarts ${this.cfg.maxRestarts} restarts: ${main.detail}`);
    }
    if (this.cfg.onFailure === 'shrink' && lost.size) {
      this.shrink(rec, main, lost);
      return alike(rec);
    }
    // Replacements of an earlier recovery whose epoch never started hold no state yet: they restore
    // from their copies as the lost ones do (but are not replaced again).
    const restoring = new Set([...lost, ...this.unrestored]);
    const c = this.ckpt.consistentStep(restoring, this.W, this.steps.countedPrefix());
    if (this.cfg.checkpointEvery > 0 && this.steps.highestDone() + 1 - c > 2 * this.cfg.checkpointEvery) {
      // A long way back: say why, so a lost stretch of training can be explained from the log.
      this.log(`resuming from step ${c}, ${this.steps.highestDone() + 1 - c} steps back: ${this.ckpt.whyNot(restoring, this.W, this.steps.countedPrefix())}`);
    }
    const sources = new Map([...restoring].map((r) => [r, this.ckpt.lostSource(r, c, restoring, this.W)]));
    const fromScratch = c === 0 && [...sources.values()].some((s) => s === null);
    const waiting = new Map<string, number>();
    const rejoin = new Map<number, number>();
    const spared = new Set<number>();
    for (const r of lost) {
      const old = this.members[r];
      old.gone = true;
      this.act({ type: 'signal', worker: old.workerId, signal: 'SIGKILL' });
      this.act({ type: 'disconnect', worker: old.workerId, code: 4005, reason: 'RS_ERR_PEER_LOST: replaced' });
      const spare = this.cfg.onFailure === 'spare' ? this.spares.find((s) => !s.gone) : undefined;
      const back = old.spawned ? undefined : this.early.get(old.home);
      if (back) this.early.delete(old.home);
      if (spare) {
        this.spares = this.spares.filter((s) => s !== spare);
        this.fill(r, spare);
        spared.add(r);
      } else if (back && !back.gone) {
        this.fill(r, back);
      } else if (!old.spawned) {
        // Not ours to start again: its launcher brings one back in its launch rank (rejoin below).
        rejoin.set(old.home, r);
      } else {
        const id = `w${r}.${++this.replacements}`;
        waiting.set(id, r);
        this.act({ type: 'spawn', worker: id });
      }
      this.ckpt.forget(r, predecessor(r, this.W));
      this.progress.delete(r);
    }
    this.unrestored = restoring;
    this.restarts += lost.size;
    const restoreFor = (r: number): Restore => {
      if (fromScratch || (c === 0 && !restoring.has(r) && !this.ckpt.keepsOwn(r, 0))) return { step: 0, source: 'initial' };
      if (!restoring.has(r)) return { step: c, source: 'local' };
      if (sources.get(r) === 'peer') {
        const buddy = this.members[successor(r, this.W)];
        return { step: c, source: 'peer', peer: { rank: buddy.rank, dataUrl: buddy.dataUrl } };
      }
      return { step: c, source: sources.get(r) === 'disk' ? 'disk' : 'initial' };
    };
    // Each entry names the ranks its own fault cost: the others' are in theirs.
    const ranksOf = new Map(also.map((a) => [a.rec, a.rank !== null && lost.has(a.rank) ? [a.rank] : []]));
    const theirs = new Set([...ranksOf.values()].flat());
    ranksOf.set(rec, [...lost].filter((r) => !theirs.has(r)));
    for (const [r, ranks] of ranksOf) {
      r.action = ranks.length ? `${ranks.some((x) => spared.has(x)) ? 'spare' : 'restart'} rank ${ranks.join(', ')}` : 'rollback';
      r.restoredFrom = restoredFrom(ranks, restoreFor);
      if (r !== rec) r.lostSteps = 0;
    }
    this.current = { rec, also: also.map((a) => a.rec), ranksOf, detectedAt: main.at, fromStep: c, reason: `${main.by} at ${rec.located}`, restoreFor };
    if (waiting.size || rejoin.size) {
      this.recovery = { stage: 'replace', waiting, rejoin };
      if (rejoin.size) this.log(`waiting up to ${this.cfg.rejoinTimeoutMs} ms for a worker to rejoin in rank ${[...rejoin.keys()].join(', ')} (started by a launcher, not by this coordinator)`);
      this.arm('join', rejoin.size ? Math.max(this.cfg.rejoinTimeoutMs, waiting.size ? this.cfg.readyTimeoutMs : 0) : this.cfg.readyTimeoutMs);
      return;
    }
    this.resumeCurrent();
  }

  private shrink(rec: FaultRecord, main: Signal, lost: Set<number>): void {
    if (lost.size >= this.W) return this.fail(`no worker left to shrink to: ${main.detail}`);
    const c = this.ckpt.consistentStep(lost, this.W, this.steps.countedPrefix(), true);
    const survivors = this.members.filter((m) => !lost.has(m.rank));
    this.ckpt.renumber(survivors.map((m) => m.rank));
    this.progress.clear();
    this.opAt.clear();
    const dropped = this.members.filter((m) => lost.has(m.rank));
    for (const m of dropped) {
      m.gone = true;
      this.act({ type: 'signal', worker: m.workerId, signal: 'SIGKILL' });
      this.act({ type: 'disconnect', worker: m.workerId, code: 4005, reason: 'RS_ERR_PEER_LOST: dropped from the ring' });
      for (let j = 0; j < this.cfg.cardsPerWorker; j++) this.lostCards.push(m.firstCard + j);
    }
    this.members = survivors;
    this.members.forEach((m, i) => (m.rank = i));
    this.W = this.members.length;
    rec.action = `shrink to ${this.W} workers (cards ${dropped.map((m) => `${m.firstCard}..${m.firstCard + this.cfg.cardsPerWorker - 1}`).join(', ')} stop contributing)`;
    rec.restoredFrom = 'memory';
    this.current = {
      rec,
      detectedAt: main.at,
      fromStep: c,
      reason: `${main.by} at ${rec.located}: shrink`,
      restoreFor: (r) => (c === 0 && !this.ckpt.keepsOwn(r, 0) ? { step: 0, source: 'initial' } : { step: c, source: 'local' }),
    };
    this.resumeCurrent();
  }

  /** Roll every rank back to the current recovery's step and ring the new epoch up. */
  private resumeCurrent(): void {
    const c = this.current!;
    const lostSteps = Math.max(0, this.steps.highestDone() + 1 - c.fromStep);
    if (c.rec) c.rec.lostSteps = lostSteps;
    this.lostStepsTotal += lostSteps;
    this.steps.rollback(c.fromStep);
    // A fault that struck during this recovery (a worker lost while its neighbour was replaced) would
    // leave the new epoch waiting for a ready that never comes: recover again first.
    if (this.signals.length) return this.ringUpFailed();
    this.startEpoch(c.fromStep, c.reason, c.restoreFor);
  }

  /**
   * The injected fault a detection belongs to: one struck and not yet detected whose worker (home
   * rank) is where the detection points (the rank; a link's sender, whose link or frames it was);
   * failing that, for a detection that names no rank of an injected fault, the newest one struck.
   * Null: from outside.
   */
  private attribute(s: Signal, l: Location | null): FaultRecord | undefined {
    // A checkpoint that does not read back was spoilt outside the scenario's faults.
    if (s.restore) return undefined;
    const open = this.faults.filter((r) => r.injectedAt !== null && r.detectedBy === null && r.fault);
    const home = (pos: number) => this.members[pos]?.home ?? pos;
    const at = l ? home(l.kind === 'rank' ? l.rank : l.from) : home(s.rank);
    const mine = open.filter((r) => target(r.fault!) === at).sort((a, b) => b.injectedAt! - a.injectedAt!);
    if (mine.length) return mine[0];
    // A process that exited or went silent with no fault of ours on it: someone else's doing.
    if (s.by === 'exit' || s.by === 'heartbeat') return undefined;
    return open.sort((a, b) => b.injectedAt! - a.injectedAt!)[0];
  }

  /**
   * The other faults whose signs this recovery took (a crash in the op a corrupt frame failed, three
   * kills at one step, a hang found frozen at the abort): each gets its own entry, as it would had
   * it been detected alone, so the timeline does not depend on whether the signs came in one
   * window or two. A sign names a rank (exit, heartbeat) or a link (checksum); a rank's exit or
   * silence with no fault of ours on it is one from outside. Signs of the main fault add nothing.
   */
  private alsoStruck(signs: Signal[], main: Signal, rec: FaultRecord, l: Location | null): { rec: FaultRecord; rank: number | null }[] {
    const order: Record<DetectedBy, number> = { exit: 0, heartbeat: 1, checksum: 2, watchdog: 3 };
    const home = (pos: number) => this.members[pos]?.home ?? pos;
    const taken = new Set<FaultRecord>([rec]);
    const ranks = new Set<number>(l?.kind === 'rank' ? [l.rank] : []);
    const out: { rec: FaultRecord; rank: number | null }[] = [];
    const sorted = signs.filter((s) => s !== main && s.by !== 'watchdog').sort((a, b) => order[a.by] - order[b.by] || a.rank - b.rank || (a.from ?? -1) - (b.from ?? -1));
    for (const s of sorted) {
      const ranked = s.by !== 'checksum' || s.restore === true;
      const at: Location | null = ranked ? { kind: 'rank', rank: s.rank } : s.from !== undefined ? { kind: 'link', from: s.from, to: s.rank } : null;
      if (!at || (ranked && ranks.has(s.rank)) || !this.members[s.rank]) continue;
      const who = home(at.kind === 'rank' ? at.rank : at.from);
      const open = s.restore ? [] : this.faults.filter((r) => !taken.has(r) && r.injectedAt !== null && r.detectedBy === null && r.fault && target(r.fault) === who);
      const r = open.sort((a, b) => b.injectedAt! - a.injectedAt!)[0] ?? (ranked ? this.newExternal(s, at) : undefined);
      if (!r) continue;
      taken.add(r);
      if (ranked) ranks.add(s.rank);
      r.detectedBy = s.by;
      r.detectedAfterMs = r.injectedAt !== null ? Math.max(0, Math.round(s.at - r.injectedAt)) : null;
      r.located = describeLocation(at);
      this.log(`also detected by ${s.by}, located at ${r.located}: ${s.detail}`);
      out.push({ rec: r, rank: ranked ? s.rank : null });
    }
    return out;
  }

  private newExternal(s: Signal, l: Location | null): FaultRecord {
    const home = (pos: number) => this.members[pos]?.home ?? pos;
    const r: FaultRecord = {
      fault: null,
      kind: s.restore ? 'checkpoint' : s.by === 'exit' ? 'exit' : s.by === 'heartbeat' ? 'hang' : s.by === 'checksum' ? 'corrupt' : 'stall',
      ...(l?.kind === 'link' ? { link: [home(l.from), home(l.to)] as [number, number] } : { rank: home(l?.rank ?? s.rank) }),
      atStep: Math.max(0, this.steps.highestDone() + 1),
      phase: null,
      injected: false,
      ...UNDETECTED,
    };
    this.faults.push(r);
    return r;
  }

  // ---------------------------------------------------------------- stragglers

  private watchStragglers(step: number, s: StepAgg): void {
    if (this.detectorEpoch !== this.epoch) {
      this.detectorEpoch = this.epoch;
      this.detector =
        this.W >= MIN_STRAGGLER_WORKERS
          ? new StragglerDetector({ workers: this.W, threshold: this.cfg.stragglerThreshold, persistK: this.cfg.stragglerPersist[0], persistM: this.cfg.stragglerPersist[1] })
          : null;
    }
    if (!this.detector || s.ranks.length !== this.W) return;
    let events;
    try {
      // Every directed link the step's op used, as its sender measured it, under every algorithm
      // (a link's clock runs only while its sender sleeps: see docs/ARCHITECTURE.md, the fabric).
      const ranks = [...s.ranks].sort((a, b) => a.rank - b.rank);
      events = this.detector.observe({ step, ranks, ...(s.links.length ? { links: s.links } : {}) });
    } catch (e) {
      this.log(`straggler detector: ${(e as Error).message}`);
      return;
    }
    for (const ev of events) {
      if (ev.type !== 'detected') continue;
      const r: StragglerReport = {
        kind: ev.kind,
        ...(ev.kind === 'node' ? { rank: ev.rank } : { link: [ev.link[0], ev.link[1]] as [number, number] }),
        firstSeenStep: ev.firstSeenStep,
        detectedAtStep: ev.detectedAtStep,
        score: Math.round(ev.score * 100) / 100,
        slowdown: ev.slowdown === null ? null : Math.round(ev.slowdown * 100) / 100,
        action: 'report',
        injected: this.markDetected(ev),
        stepMsBefore: medianMs(this.steps.stepTimes(step - STEPS_AROUND_ACTION, step)),
        stepMsAfter: null,
      };
      this.stragglers.push(r);
      const what = ev.kind === 'node' ? `rank ${ev.rank}` : `link ${ev.link[0]}->${ev.link[1]}`;
      this.log(`straggler: ${what} (score ${r.score}, ${r.slowdown === null ? 'no baseline step time yet' : `step ${r.slowdown}x the baseline`}), seen at step ${ev.firstSeenStep}, confirmed at step ${ev.detectedAtStep}`);
      if (this.cfg.onStraggler === 'evict' && ev.kind === 'node' && this.evicted.has(ev.rank)) {
        // The worker that held this rank was evicted, and its replacement is slow as well: the
        // slowness is the rank's place (its links, its share of the work), not a worker, and
        // evicting again would only loop (each time from the last checkpoint).
        this.log(`straggler: ${what} only reported: its worker was evicted before and the replacement is slow too`);
      } else if (this.cfg.onStraggler === 'evict' && ev.kind === 'node' && !this.recovery) {
        // Evicting is failing it on purpose: the --on-failure policy takes it from there.
        r.action = 'evict';
        this.evicted.add(ev.rank);
        this.afterAction.push({ r, epoch: this.epoch, samples: [] });
        const m = this.members[ev.rank];
        if (m) this.act({ type: 'signal', worker: m.workerId, signal: 'SIGKILL' });
      } else if (this.cfg.onStraggler === 'reroute' && ev.kind === 'link') {
        this.reroute(r, ev.link);
      } else if (this.cfg.onStraggler !== 'report') {
        this.log(`straggler: ${what} only reported (${this.cfg.onStraggler} ${this.recovery ? 'waits for no recovery under way' : ev.kind === 'node' ? 'cannot route around a node' : 'acts on nodes'})`);
      }
    }
  }

  /** Whether a detection matches an injected straggler (and record its step there). */
  private markDetected(ev: { kind: 'node'; rank: number; detectedAtStep: number } | { kind: 'link'; link: readonly [number, number]; detectedAtStep: number }): boolean {
    let hit = false;
    this.cfg.stragglers.forEach((f, i) => {
      const inj = this.injected[i];
      const match =
        ev.kind === 'node'
          ? (f.kind === 'slow' || f.kind === 'pause') && this.members[ev.rank] === this.launch[f.rank]
          : f.kind === 'slow-link' && this.members[ev.link[0]] === this.launch[f.from] && this.members[ev.link[1]] === this.launch[linkEnds(f, this.cfg.workers)[1]];
      if (!match) return;
      hit = true;
      inj.detectedAtStep ??= ev.detectedAtStep;
    });
    return hit;
  }

  /** An injected straggler struck once a step ran with it on where it could slow anything. */
  private markStragglersStruck(step: number): void {
    this.cfg.stragglers.forEach((f, i) => {
      const inj = this.injected[i];
      if (inj.struck || f.kind === 'pause') return;
      if (f.kind === 'jitter') {
        if (f.maxMs > 0) inj.struck = true;
        return;
      }
      const fromStep = 'step' in f.at ? f.at.step : 0;
      if (step < fromStep || (f.steps !== undefined && f.steps !== null && step >= fromStep + f.steps)) return;
      if (f.kind === 'slow') {
        const m = this.launch[f.rank];
        if (m && this.members[m.rank] === m) inj.struck = true;
        return;
      }
      const from = this.launch[f.from];
      const to = this.launch[linkEnds(f, this.cfg.workers)[1]];
      if (!from || !to || this.members[from.rank] !== from || this.members[to.rank] !== to) return;
      const note = unusedLinkNote(this.epochAlgo(), from.rank, to.rank, this.W, this.job.checkpointEvery > 0);
      if (note) inj.note = note;
      else {
        inj.struck = true;
        delete inj.note;
      }
    });
  }

  private measureAfterActions(step: number, s: StepAgg): void {
    const fromStep = this.epochs[this.epochs.length - 1]?.fromStep;
    for (const a of [...this.afterAction]) {
      // The first step of an epoch re-keeps checkpoints and warms the new links up: not counted.
      if (this.epoch <= a.epoch || step === fromStep) continue;
      a.samples.push(s.stepMs);
      a.r.stepMsAfter = medianMs(a.samples);
      if (a.samples.length >= STEPS_AROUND_ACTION) this.afterAction.splice(this.afterAction.indexOf(a), 1);
    }
  }

  private rerouteOrderFor: { order: number[]; r: StragglerReport; detectedAt: number; reason: string } | null = null;

  /** --on-straggler reroute: a new epoch in a ring order without the slow links, from the newest checkpoint. */
  private reroute(r: StragglerReport, link: readonly [number, number]): void {
    const what = `link ${link[0]}->${link[1]}`;
    if (this.recovery) return void this.log(`straggler: ${what} not rerouted: a recovery is under way`);
    this.avoided.push([this.members[link[0]], this.members[link[1]]]);
    const pos = (m: Member) => this.members.indexOf(m);
    const avoid = this.avoided.filter(([a, b]) => pos(a) >= 0 && pos(b) >= 0).map(([a, b]) => [pos(a), pos(b)] as const);
    const order = rerouteOrder(this.members.map((_, i) => i), avoid);
    if (!order) return void this.log(`straggler: ${what} not rerouted: no ring of ${this.W} workers avoids ${avoid.map(([a, b]) => `${a}->${b}`).join(', ')}`);
    r.action = 'reroute';
    this.afterAction.push({ r, epoch: this.epoch, samples: [] });
    const reason = `reroute around ${what}`;
    this.rerouteOrderFor = { order, r, detectedAt: this.now, reason };
    this.abortEpoch(reason, new Set(), 'reroute');
  }

  private rerouteAfterAbort(frozen: number[]): void {
    const ro = this.rerouteOrderFor!;
    this.rerouteOrderFor = null;
    if (frozen.length) {
      // Not the time to reorder: recover the frozen ranks first (the slow link stays avoided next time).
      for (const f of frozen) this.signals.push({ by: 'heartbeat', rank: f, at: this.now, detail: `rank ${f} did not answer the abort of a reroute` });
      ro.r.action = 'report';
      this.recovery = null;
      return this.beginRecovery();
    }
    this.ckpt.renumber(ro.order);
    this.progress.clear();
    this.opAt.clear();
    this.members = ro.order.map((r) => this.members[r]);
    this.members.forEach((m, i) => (m.rank = i));
    this.log(`${ro.reason}: new ring ${this.members.map((m) => m.home).join(' ')} (ranks at launch)`);
    const c = this.ckpt.consistentStep(new Set(), this.W, this.steps.countedPrefix());
    this.current = {
      rec: null,
      detectedAt: ro.detectedAt,
      fromStep: c,
      reason: ro.reason,
      restoreFor: (rank) => (c === 0 && !this.ckpt.keepsOwn(rank, 0) ? { step: 0, source: 'initial' } : { step: c, source: 'local' }),
    };
    this.resumeCurrent();
  }

  // ---------------------------------------------------------------- ground truth

  /** Every injected fault or straggler that did not strike says why. */
  private noteUnstruck(): void {
    const reached = this.steps.highestDone();
    for (const r of this.faults) {
      const f = r.fault;
      if (!f || r.struck || r.note) continue;
      const home = target(f);
      const inRing = this.members.some((m) => m.home === home);
      if ('step' in f.at) {
        if (f.at.step >= this.cfg.steps) r.note = `step ${f.at.step} is never reached: the run has steps 0..${this.cfg.steps - 1}`;
        else if (!inRing) r.note = `its worker (rank ${home} at launch) left the ring before step ${f.at.step}`;
        else if (reached < f.at.step) r.note = `the run ended at step ${reached + 1}, before step ${f.at.step}`;
        else r.note = `not reached: its rank did not get to step ${f.at.step}${f.at.phase ? ` ${f.at.phase}` : ''} in any epoch that ran it`;
      } else {
        r.note = this.trainingStart ? `the run ended before ${f.at.ms} ms of training` : 'training never started';
      }
    }
    this.cfg.stragglers.forEach((f, i) => {
      const inj = this.injected[i];
      if (inj.struck) {
        if (inj.detectedAtStep === null && f.kind !== 'jitter' && this.W < MIN_STRAGGLER_WORKERS) inj.note ??= `not scored: the detector needs at least ${MIN_STRAGGLER_WORKERS} workers`;
        const algo = this.epochAlgo();
        if (inj.detectedAtStep === null && f.kind === 'slow-link' && algo !== 'ring') {
          // Judged in the last epoch, by the ranks the link's two launch identities hold in it.
          const from = this.launch[f.from];
          const to = this.launch[linkEnds(f, this.cfg.workers)[1]];
          const inRing = (m: Member | undefined): m is Member => m !== undefined && this.members[m.rank] === m;
          if (inRing(from) && inRing(to) && !peersOf(algo, from.rank, this.W, false).includes(to.rank)) {
            inj.note ??= `under ${ALGO_NAMES[algo]} its link carries only checkpoint copies, which hold no all-reduce up (not scored)`;
          }
        }
        return;
      }
      if (inj.note) return;
      if (f.kind === 'pause') inj.note = 'the run ended before its first pause';
      else if (f.kind === 'jitter') inj.note = 'jitter of 0 ms';
      else {
        const fromStep = 'step' in f.at ? f.at.step : 0;
        inj.note = fromStep >= this.cfg.steps ? `step ${fromStep} is never reached` : reached < fromStep ? `the run ended before step ${fromStep}` : 'its worker or link had left the ring';
      }
    });
  }

  /** The fault timeline as the report gives it. */
  faultReports(): FaultReport[] {
    return this.faults.map(({ fault: _f, injectedAt: _i, ...rest }) => rest);
  }

  productiveMs(): number {
    // Each counted step's share of the wall: from the end of the step before it in the same epoch
    // (or from the epoch's start) to its own end. Ranks overlap consecutive steps, so summing step
    // times would count the overlap twice (and pass the wall on large rings).
    const epochStart = new Map(this.epochs.map((e) => [e.epoch, this.t0 + e.startedAtMs]));
    let sum = 0;
    for (const [step, s] of this.steps.final) {
      const prev = this.steps.final.get(step - 1);
      const from = prev && prev.epoch === s.epoch ? prev.doneAt! : (epochStart.get(s.epoch!) ?? s.doneAt! - s.stepMs);
      sum += Math.max(0, s.doneAt! - from);
    }
    return sum;
  }
}

/** Where an entry's ranks were restored from (none: every rank from its own memory). */
function restoredFrom(ranks: readonly number[], restoreFor: (r: number) => Restore): FaultRecord['restoredFrom'] {
  const source = ranks.length ? restoreFor(ranks[0]).source : 'local';
  return source === 'peer' || source === 'local' ? 'memory' : source === 'disk' ? 'disk' : 'initial';
}

/** The median to 0.1 ms, or null for no samples (the report's step times around an action). */
function medianMs(xs: readonly number[]): number | null {
  return xs.length === 0 ? null : Math.round(median(xs) * 10) / 10;
}
