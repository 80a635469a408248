// `ringswarm run`: launch a swarm, train for N steps, verify every op, inject the scenario's
// faults, detect, locate and recover from them, and report.
import { availableParallelism } from 'node:os';
import { elementBytes } from '../collective/dtypes.js';
import { MACHINE_MODEL, pickAlgo, predictAllreduce, type FabricModel } from '../collective/model.js';
import type { AllreduceAlgo } from '../collective/types.js';
import { busBandwidthFactor } from '../collective/index.js';
import { predecessor, successor } from '../collective/ring.js';
import type { FaultOrder, JobSpec, Restore, StragglerOrder, WorkerMessage } from '../protocol/control.js';
import { isRingswarmError } from '../protocol/errors.js';
import { jobDigest } from '../collective/digest.js';
import { quantiles, type LinkSpec, type DetectedBy, type EpochReport, type FaultReport, type RunConfig, type RunReport, type StragglerReport } from './config.js';
import { describeLocation, locateStuck, type Location, type RankProgress } from './detector.js';
import type { Fault } from './scenario/index.js';
import { Swarm, type SwarmMember } from './swarm.js';
import { median, MIN_STRAGGLER_WORKERS, StragglerDetector, type RankTiming } from './stragglers.js';
import { rerouteOrder } from './reroute.js';
import { selfPssMB } from '../runtime/memory.js';

export interface RunHooks {
  /** A line of live progress (overwritten in a terminal). */
  progress(line: string): void;
  log(line: string): void;
  /** Called once the control URL and token are known (for workers that join by themselves). */
  listening?(url: string, token: string): void;
}

interface StepAgg {
  reports: number;
  wrong: number;
  stepMs: number;
  allreduceMs: number;
  computeMs: number;
  ranks: RankTiming[];
  /** Once final: when its last report came in, and in which epoch. */
  doneAt?: number;
  epoch?: number;
}

interface Signal {
  by: DetectedBy;
  rank: number;
  at: number;
  detail: string;
  /** For checksum: the sender of the bad frame. */
  from?: number;
}

interface FaultRecord extends FaultReport {
  fault: Fault | null;
  injectedAt: number | null;
}

/** A fault record before anything happened to it. */
const UNDETECTED = {
  injectedAt: null,
  detectedBy: null,
  detectedAfterMs: null,
  located: null,
  action: null,
  restoredFrom: null,
  recoveredAfterMs: null,
  lostSteps: null,
} as const;

/** Checkpoints a worker keeps in memory (and on disk), newest first: see worker/checkpoints.ts. */
const CHECKPOINTS_KEPT = 2;
/** After the first sign of a fault, how long to gather the others before deciding what happened. */
const SETTLE_MS = 150;
/** Steps before a straggler's detection, and after the action on it, whose median step time the report gives. */
const STEPS_AROUND_ACTION = 5;
/** Recoveries in a row whose epoch fails to ring up before the run is given up (rather than loop). */
const MAX_FAILED_RING_UPS = 5;

/** The median to 0.1 ms, or null for no samples (the report's step times around an action). */
function medianMs(xs: readonly number[]): number | null {
  return xs.length === 0 ? null : Math.round(median(xs) * 10) / 10;
}

export function jobSpec(cfg: RunConfig): JobSpec {
  return {
    cardsPerWorker: cfg.cardsPerWorker,
    totalCards: cfg.workers * cfg.cardsPerWorker,
    bytesPerCard: cfg.bytesPerCard,
    dtype: cfg.dtype,
    op: cfg.op,
    steps: cfg.steps,
    computeMs: cfg.computeMs,
    chunkBytes: cfg.chunkBytes,
    seed: cfg.seed,
    timeoutMs: cfg.timeoutMs,
    heartbeatMs: cfg.heartbeatMs,
    checksums: cfg.checksums,
    checkpointEvery: cfg.checkpointEvery,
    checkpointDir: cfg.checkpointDir,
    link: cfg.link,
  };
}

/** The alpha-beta model of this machine with the emulated fabric of `link`. */
export function fabricModel(link: LinkSpec): FabricModel {
  return { ...MACHINE_MODEL, cores: availableParallelism(), linkLatencyUs: link.latencyUs, linkBandwidth: link.bandwidth, intraBandwidth: link.intraBandwidth };
}

function target(f: Fault): number {
  return f.kind === 'link' ? f.from : f.rank;
}

type StepTrigger = { step: number; phase?: 'reduce-scatter' | 'all-gather'; chunk?: number };

function order(f: Fault, at: StepTrigger): FaultOrder {
  const o: FaultOrder = { id: f.id, kind: f.kind, at: { step: at.step }, ms: 'ms' in f && f.ms !== undefined ? f.ms : null };
  if (at.phase) o.at.phase = at.phase;
  if (at.chunk !== undefined) o.at.chunk = at.chunk;
  if (f.kind === 'crash') o.code = f.code;
  if (f.kind === 'corrupt') o.frames = f.frames;
  if (f.kind === 'link') {
    if (f.cut) o.cut = true;
    if (f.delayMs !== undefined) o.delayMs = f.delayMs;
    if (f.bandwidth !== undefined) o.bandwidth = f.bandwidth;
  }
  return o;
}

export async function runJob(cfg: RunConfig, hooks: RunHooks, signal?: AbortSignal): Promise<RunReport> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const eb = elementBytes(cfg.dtype);
  if (cfg.bytesPerCard % eb !== 0) throw new RangeError(`--size ${cfg.bytesPerCard} is not a whole number of ${cfg.dtype} elements (${eb} bytes each)`);
  /** Ring size of the current epoch (smaller after a shrink). */
  let W = cfg.workers;
  /** Cards of workers dropped from the ring: they no longer contribute. */
  const lostCards: number[] = [];
  const swarm = new Swarm({
    workers: W,
    spawn: cfg.spawn,
    spares: cfg.onFailure === 'spare' ? cfg.spares : 0,
    host: cfg.host,
    port: cfg.port,
    token: cfg.token,
    readyTimeoutMs: cfg.readyTimeoutMs,
    log: hooks.log,
  });
  const job = jobSpec(cfg);
  const fabric = fabricModel(cfg.link);
  /** The epoch's all-reduce algorithm: the one asked for, or for auto the one the model predicts fastest on `w` workers. */
  const algoFor = (w: number): AllreduceAlgo => {
    if (cfg.algo !== 'auto') return cfg.algo;
    // A crossover that `bench --algo ring,rd` measured on this many workers, else the model's.
    const measured = cfg.crossovers.find((c) => c.workers === w);
    if (measured) return measured.bytes === null || cfg.bytesPerCard < measured.bytes ? 'rd' : 'ring';
    return pickAlgo(w, cfg.cardsPerWorker, cfg.bytesPerCard, fabric);
  };

  let epoch = 0;
  const pending = new Map<string, StepAgg>();
  /** Each step's final (counted) run. */
  const final = new Map<number, StepAgg>();
  let stepRuns = 0;
  const digests = new Map<number, string[]>();
  const progress = new Map<number, RankProgress & { at: number }>();
  const ownCkpt = new Map<number, Set<number>>();
  const heldCkpt = new Map<number, Set<number>>();
  const fired = new Set<number>();
  const faults: FaultRecord[] = cfg.faults.map((f) => ({
    fault: f,
    kind: f.kind,
    ...(f.kind === 'link' ? { link: [f.from, successor(f.from, W)] as [number, number] } : { rank: f.rank }),
    atStep: 'step' in f.at ? f.at.step : null,
    phase: 'step' in f.at ? (f.at.phase ?? null) : null,
    injected: true,
    ...UNDETECTED,
  }));
  const epochs: EpochReport[] = [];
  let signals: Signal[] = [];
  let recovering = false;
  /** Recoveries in a row whose new epoch did not ring up. */
  let failedRingUps = 0;
  /** Ranks replaced by a recovery whose epoch has not started yet (their new processes have restored nothing). */
  let unrestored = new Set<number>();
  let restarts = 0;
  let lostStepsTotal = 0;
  let workerRssMBMax = 0;
  const rssByRank = new Map<number, number>();
  const pssByRank = new Map<number, number>();
  let startupMs = 0;
  let trainingStart = 0;
  let coordinatorRssMB = process.memoryUsage.rss() / 2 ** 20;
  let failure: string | undefined;
  let interrupted = false;
  const timers: NodeJS.Timeout[] = [];

  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const fail = (why: string) => {
    failure ??= why;
    finish();
  };
  const onAbort = () => {
    interrupted = true;
    finish();
  };
  signal?.addEventListener('abort', onAbort, { once: true });

  let abortAcks: Set<number> | null = null;
  let readyRanks = new Set<number>();
  let readyWaiter: (() => void) | null = null;
  /** Ends a recovery's wait for the new epoch to ring up when a fault strikes meanwhile. */
  let readyInterrupt: (() => void) | null = null;

  const now = () => performance.now();
  const highestDone = () => Math.max(-1, ...final.keys());

  const onMessage = (rank: number, msg: WorkerMessage) => {
    switch (msg.type) {
      case 'ready':
        if (msg.epoch !== epoch) return;
        readyRanks.add(rank);
        if (readyRanks.size === W) readyWaiter?.();
        return;
      case 'heartbeat':
        rssByRank.set(rank, msg.rssMB);
        workerRssMBMax = Math.max(workerRssMBMax, msg.rssMB);
        // The last op each rank was in, as it stood: what the locator compares once ranks stop.
        if (msg.progress) {
          const p = msg.progress;
          progress.set(rank, { rank, opSeq: p.opSeq, step: p.step, chunksReceived: p.chunksReceived, chunksExpected: p.chunksExpected, chunksSent: p.chunksSent, waitingFor: p.waitingFor, silentMs: 0, at: now() });
        }
        else if (progress.has(rank)) progress.get(rank)!.at = now();
        return;
      case 'aborted':
        if (msg.epoch === epoch) abortAcks?.add(rank);
        return;
      case 'step': {
        if (msg.epoch !== epoch) return;
        rssByRank.set(rank, msg.rssMB);
        if (msg.pssMB !== null) pssByRank.set(rank, msg.pssMB);
        workerRssMBMax = Math.max(workerRssMBMax, msg.rssMB);
        const key = `${msg.epoch}:${msg.step}`;
        const s = pending.get(key) ?? { reports: 0, wrong: 0, stepMs: 0, allreduceMs: 0, computeMs: 0, ranks: [] };
        const tm = msg.timings;
        s.ranks.push({ rank, computeMs: tm.computeMs, waitMs: tm.waitMs, allreduceMs: tm.allreduceMs, linkMs: tm.linkMs, bytesSent: tm.bytesSent });
        s.reports++;
        s.wrong += msg.wrong;
        s.stepMs = Math.max(s.stepMs, msg.timings.stepMs);
        s.allreduceMs = Math.max(s.allreduceMs, msg.timings.allreduceMs);
        s.computeMs = Math.max(s.computeMs, msg.timings.computeMs);
        pending.set(key, s);
        if (s.reports === W) {
          pending.delete(key);
          final.set(msg.step, s);
          s.doneAt = now();
          s.epoch = msg.epoch;
          stepRuns++;
          if (process.env.RINGSWARM_DEBUG_TIMINGS) hooks.log(`timings step ${msg.step}: ${[...s.ranks].sort((a, b) => a.rank - b.rank).map((r) => `${r.rank}:c${r.computeMs.toFixed(0)} w${r.waitMs.toFixed(0)} l${r.linkMs.toFixed(1)}`).join(' ')}`);
          measureAfterActions(msg.step, s);
          watchStragglers(msg.step, s);
          // The per-rank rows have been used: a long run must not keep W of them per step.
          s.ranks = [];
          coordinatorRssMB = Math.max(coordinatorRssMB, process.memoryUsage.rss() / 2 ** 20);
          hooks.progress(
            `step ${msg.step + 1}/${cfg.steps}  step ${s.stepMs.toFixed(1)} ms  all-reduce ${s.allreduceMs.toFixed(1)} ms  wrong ${s.wrong}` +
              (epoch > 0 ? `  epoch ${epoch}` : ''),
          );
        }
        return;
      }
      // Only of the current epoch, as step reports: a rank reports step s, then checkpoints s + 1. Once
      // an abort has moved the epoch on, its report of s is dropped, and so must its checkpoint be,
      // or recovery would resume from s + 1 with step s never counted (the older checkpoint is
      // still kept: workers keep two).
      case 'checkpointed':
        if (msg.epoch !== epoch) return;
        {
          const own = ownCkpt.get(rank) ?? ownCkpt.set(rank, new Set()).get(rank)!;
          own.add(msg.step);
          // Workers keep the newest two; a few more are plenty here (the set must not grow with the run).
          if (own.size > 2 * CHECKPOINTS_KEPT) own.delete(Math.min(...own));
        }
        return;
      case 'holding':
        if (msg.epoch !== epoch) return;
        {
          const held = heldCkpt.get(msg.owner) ?? heldCkpt.set(msg.owner, new Set()).get(msg.owner)!;
          held.add(msg.step);
          if (held.size > 2 * CHECKPOINTS_KEPT) held.delete(Math.min(...held));
        }
        return;
      case 'fault': {
        fired.add(msg.id);
        const r = faults.find((x) => x.fault?.id === msg.id);
        if (r) {
          r.injectedAt = now();
          r.atStep = msg.step;
          r.phase = msg.phase;
          if (r.fault?.kind === 'hang' && r.fault.ms !== undefined) {
            const proc = swarm.members[rank]?.process;
            const ms = r.fault.ms;
            timers.push(setTimeout(() => proc?.kill('SIGCONT'), ms));
          }
        }
        return;
      }
      case 'done':
        if (msg.epoch !== epoch) return;
        workerRssMBMax = Math.max(workerRssMBMax, msg.rssMBMax);
        // By first card: the job digest is over cards in card order, whatever order the ring is in.
        digests.set(swarm.members[rank].firstCard, msg.cardDigests);
        if (digests.size === W) finish();
        return;
      case 'failed': {
        if (msg.epoch !== epoch || msg.code === 'RS_ERR_ABORTED') return;
        const by: DetectedBy = msg.code === 'RS_ERR_TIMEOUT' ? 'watchdog' : msg.code === 'RS_ERR_CHECKSUM' || msg.code === 'RS_ERR_BAD_FRAME' ? 'checksum' : 'watchdog';
        const from = /from rank (\d+)/.exec(msg.message);
        raise({ by, rank, at: now(), detail: `rank ${rank}: ${msg.code}: ${msg.message}`, from: from ? Number(from[1]) : undefined });
        return;
      }
      default:
        return;
    }
  };

  swarm.onEvent((e) => {
    if (e.type === 'lost') {
      if (!trainingStart) return fail(`${e.why} (rank ${e.member.rank})`);
      raise({ by: 'exit', rank: e.member.rank, at: now(), detail: e.why });
      return;
    }
    if (e.member.gone) return;
    onMessage(e.member.rank, e.msg);
  });

  /** The members by rank at launch: who the scenario's ranks are. */
  let launch: SwarmMember[] = [];
  let detector: StragglerDetector | null = null;
  let detectorEpoch = -1;
  const stragglers: StragglerReport[] = [];

  /** Feed the step's timings to the detector (one per epoch: ranks and baselines change with it). */
  function watchStragglers(step: number, s: StepAgg): void {
    if (detectorEpoch !== epoch) {
      detectorEpoch = epoch;
      detector =
        W >= MIN_STRAGGLER_WORKERS
          ? new StragglerDetector({ workers: W, threshold: cfg.stragglerThreshold, persistK: cfg.stragglerPersist[0], persistM: cfg.stragglerPersist[1] })
          : null;
    }
    if (!detector || s.ranks.length !== W) return;
    let events;
    try {
      // Link times are per ring link (rank -> rank + 1); recursive doubling mixes every partner's
      // bytes into them, so under it only nodes are scored (a link that sent nothing is not compared).
      const ringLinks = epochs[epochs.length - 1]?.algo !== 'rd';
      const ranks = [...s.ranks].sort((a, b) => a.rank - b.rank).map((r) => (ringLinks ? r : { ...r, linkMs: 0, bytesSent: 0 }));
      events = detector.observe({ step, ranks });
    } catch (e) {
      hooks.log(`straggler detector: ${(e as Error).message}`);
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
        injected: injectedStraggler(ev),
        stepMsBefore: medianMs([...final.entries()].filter(([k]) => k <= step && k > step - STEPS_AROUND_ACTION).map(([, v]) => v.stepMs)),
        stepMsAfter: null,
      };
      stragglers.push(r);
      const what = ev.kind === 'node' ? `rank ${ev.rank}` : `link ${ev.link[0]}->${ev.link[1]}`;
      hooks.log(`straggler: ${what} (score ${r.score}, step ${r.slowdown ?? '?'}x the baseline), seen at step ${ev.firstSeenStep}, confirmed at step ${ev.detectedAtStep}`);
      if (cfg.onStraggler === 'evict' && ev.kind === 'node' && !recovering) {
        // Evicting is failing it on purpose: the --on-failure policy takes it from there.
        r.action = 'evict';
        afterAction.push({ r, epoch, samples: [] });
        swarm.members[ev.rank]?.process?.kill('SIGKILL');
      } else if (cfg.onStraggler === 'reroute' && ev.kind === 'link') {
        reroute(r, ev.link);
      } else if (cfg.onStraggler !== 'report') {
        hooks.log(`straggler: ${what} only reported (${cfg.onStraggler} ${recovering ? 'waits for no recovery under way' : ev.kind === 'node' ? 'cannot route around a node' : 'acts on nodes'})`);
      }
    }
  }

  /** Actions whose step time after is still being measured: the first steps of a later epoch. */
  const afterAction: { r: StragglerReport; epoch: number; samples: number[] }[] = [];
  function measureAfterActions(step: number, s: StepAgg): void {
    const fromStep = epochs[epochs.length - 1]?.fromStep;
    for (const a of [...afterAction]) {
      // The first step of an epoch re-keeps checkpoints and warms the new links up: not counted.
      if (epoch <= a.epoch || step === fromStep) continue;
      a.samples.push(s.stepMs);
      a.r.stepMsAfter = medianMs(a.samples);
      if (a.samples.length >= STEPS_AROUND_ACTION) afterAction.splice(afterAction.indexOf(a), 1);
    }
  }

  /** Slow links rerouted around so far, by the workers at their ends (positions change with every reroute). */
  const avoided: [SwarmMember, SwarmMember][] = [];

  /** --on-straggler reroute: a new epoch in a ring order without the slow links, from the newest checkpoint. */
  function reroute(r: StragglerReport, link: readonly [number, number]): void {
    const what = `link ${link[0]}->${link[1]}`;
    if (recovering) return void hooks.log(`straggler: ${what} not rerouted: a recovery is under way`);
    avoided.push([swarm.members[link[0]], swarm.members[link[1]]]);
    const pos = (m: SwarmMember) => swarm.members.indexOf(m);
    const avoid = avoided.filter(([a, b]) => pos(a) >= 0 && pos(b) >= 0).map(([a, b]) => [pos(a), pos(b)] as const);
    const order = rerouteOrder(swarm.members.map((_, i) => i), avoid);
    if (!order) return void hooks.log(`straggler: ${what} not rerouted: no ring of ${W} workers avoids ${avoid.map(([a, b]) => `${a}->${b}`).join(', ')}`);
    r.action = 'reroute';
    afterAction.push({ r, epoch, samples: [] });
    recovering = true;
    const reason = `reroute around ${what}`;
    const detectedAt = now();
    void (async () => {
      const frozen = await abortEpoch(reason, new Set());
      if (failure || interrupted) return;
      if (frozen.length) {
        // Not the time to reorder: recover the frozen ranks first (the slow link stays avoided next time).
        for (const f of frozen) signals.push({ by: 'heartbeat', rank: f, at: now(), detail: `rank ${f} did not answer the abort of a reroute` });
        r.action = 'report';
        return recover();
      }
      const own = order.map((p) => ownCkpt.get(p) ?? new Set<number>());
      ownCkpt.clear();
      own.forEach((set, i) => ownCkpt.set(i, set));
      // Copies sit with the old successors; the first step of the new epoch sends new ones.
      heldCkpt.clear();
      progress.clear();
      swarm.reorder(order);
      hooks.log(`${reason}: new ring ${swarm.members.map((m) => m.home).join(' ')} (ranks at launch)`);
      const c = consistentStep(new Set());
      await resume(null, detectedAt, c, reason, (rank) => (c === 0 && !keeps(ownCkpt, rank, 0) ? { step: 0, source: 'initial' } : { step: c, source: 'local' }));
    })().catch((e) => fail(`reroute failed: ${isRingswarmError(e) ? `${e.code}: ${e.message}` : String(e)}`));
  }

  function injectedStraggler(ev: { kind: 'node'; rank: number } | { kind: 'link'; link: readonly [number, number] }): boolean {
    return cfg.stragglers.some((f) =>
      ev.kind === 'node'
        ? (f.kind === 'slow' || f.kind === 'pause') && slowNode(f, swarm.members[ev.rank])
        : f.kind === 'slow-link' && slowLink(f, swarm.members[ev.link[0]], swarm.members[ev.link[1]]),
    );
  }

  function raise(s: Signal): void {
    if (failure || interrupted || digests.size === W) return;
    signals.push(s);
    if (recovering) {
      // A rank that fails to ring up for the new epoch (a link that timed out, a new fault) would
      // otherwise leave the recovery waiting --ready-timeout-ms for a ready that never comes.
      readyInterrupt?.();
      return;
    }
    recovering = true;
    void recover().catch((e) => fail(`recovery failed: ${isRingswarmError(e) ? `${e.code}: ${e.message}` : String(e)}`));
  }

  /**
   * Silence is a suspicion; for a worker we spawned the kernel settles it: a process that runs or
   * waits is slow (hundreds of processes share two cores), one that is stopped is frozen.
   */
  const frozenOrUnknown = (m: SwarmMember) => {
    const s = m.process?.kernelState() ?? 'unknown';
    return s === 'stopped' || s === 'dead' || s === 'unknown';
  };

  function heartbeatMonitor(): void {
    if (!trainingStart || recovering) return;
    const t = now();
    for (const m of swarm.members) {
      if (m.gone || t - m.lastSeen <= cfg.heartbeatDeadMs) continue;
      if (frozenOrUnknown(m)) raise({ by: 'heartbeat', rank: m.rank, at: t, detail: `rank ${m.rank} silent for ${Math.round(t - m.lastSeen)} ms` });
    }
  }

  /** Whether `rank` (or, with `held`, its successor for it) still keeps checkpoint `step`: workers keep the newest two. */
  const keeps = (m: Map<number, Set<number>>, rank: number, step: number) =>
    [...(m.get(rank) ?? [])].sort((a, b) => b - a).slice(0, CHECKPOINTS_KEPT).includes(step);

  /** Where a replaced rank's checkpoint `step` can come from, if anywhere. */
  function lostSource(r: number, step: number, lost: Set<number>): 'peer' | 'disk' | null {
    if (!lost.has(successor(r, W)) && keeps(heldCkpt, r, step)) return 'peer';
    if (cfg.checkpointDir && keeps(ownCkpt, r, step)) return 'disk';
    return null;
  }

  /** The newest step every rank can restore, given which ranks are replaced, or dropped (`shrink`) (0: start over). */
  function consistentStep(lost: Set<number>, shrink = false): number {
    if (cfg.checkpointEvery === 0) return 0;
    // Every step before the resume point must be counted: with a rank dropped (shrink), or under
    // recursive doubling, the others may finish a step and checkpoint the next that the lost rank
    // never reported.
    let counted = 0;
    while (final.has(counted)) counted++;
    const candidates = [...new Set([...ownCkpt.values()].flatMap((s) => [...s]))].filter((s) => s <= counted).sort((a, b) => b - a);
    for (const s of candidates) {
      let ok = true;
      for (let r = 0; r < W && ok; r++) ok = lost.has(r) ? shrink || lostSource(r, s, lost) !== null : keeps(ownCkpt, r, s);
      if (ok) return s;
    }
    return 0;
  }

  /** A new epoch: every rank abandons the op under way. Resolves with the ranks (not in `lost`) that did not answer and are frozen. */
  async function abortEpoch(reason: string, lost: ReadonlySet<number>): Promise<number[]> {
    epoch++;
    abortAcks = new Set();
    swarm.broadcast({ type: 'abort', epoch, reason });
    const live = () => swarm.members.filter((m) => !m.gone && !lost.has(m.rank)).every((m) => abortAcks!.has(m.rank));
    // A live worker answers within milliseconds; a few heartbeat periods is plenty.
    const ackWait = Math.min(cfg.heartbeatDeadMs, Math.max(300, 5 * cfg.heartbeatMs));
    for (let waited = 0; !live() && waited < ackWait; waited += 20) await new Promise((r) => setTimeout(r, 20));
    const frozen = swarm.members.filter((m) => !m.gone && !lost.has(m.rank) && !abortAcks!.has(m.rank) && frozenOrUnknown(m)).map((m) => m.rank);
    // Alive but slow to answer: wait for them (they must ring up for the next epoch anyway).
    for (let waited = 0; !swarm.members.filter((m) => !m.gone && !lost.has(m.rank) && !frozen.includes(m.rank)).every((m) => abortAcks!.has(m.rank)) && waited < cfg.readyTimeoutMs; waited += 50) {
      await new Promise((r) => setTimeout(r, 50));
    }
    abortAcks = null;
    return frozen;
  }

  async function recover(): Promise<void> {
    const first = signals[0];
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    if (failure || interrupted) return;
    const seen = signals;
    signals = [];
    const pick = (by: DetectedBy) => seen.find((s) => s.by === by);
    const main = pick('exit') ?? pick('heartbeat') ?? pick('checksum') ?? first;
    const lost = new Set(seen.filter((s) => s.by === 'exit' || s.by === 'heartbeat').map((s) => s.rank));
    const t = now();
    const table = [...progress.values()].map((p) => ({ ...p, silentMs: t - p.at }));

    // A rank that does not answer the abort is frozen: lost too.
    const frozen = await abortEpoch(main.detail, lost);
    for (const r of frozen) lost.add(r);

    let location: Location | null;
    if (main.by === 'exit' || main.by === 'heartbeat') location = { kind: 'rank', rank: main.rank };
    else if (frozen.length) location = { kind: 'rank', rank: frozen[0] };
    else if (main.by === 'checksum' && main.from !== undefined) location = { kind: 'link', from: main.from, to: main.rank };
    else location = locateStuck(table, cfg.heartbeatDeadMs);
    const rec = attribute(main, location) ?? newExternal(main, location);
    rec.detectedBy = main.by;
    rec.detectedAfterMs = rec.injectedAt !== null ? Math.max(0, Math.round(main.at - rec.injectedAt)) : null;
    rec.located = describeLocation(location);
    hooks.log(`fault detected by ${main.by} after ${rec.detectedAfterMs ?? '?'} ms, located at ${rec.located}: ${main.detail}`);

    if (cfg.onFailure === 'abort') {
      rec.action = 'abort';
      return fail(`stopped on the first fault (--on-failure abort): ${main.detail}`);
    }
    if (restarts + lost.size > cfg.maxRestarts) {
      rec.action = 'abort';
      return fail(`more than --max-restarts ${cfg.maxRestarts} restarts: ${main.detail}`);
    }
    if (cfg.onFailure === 'shrink' && lost.size) {
      if (lost.size >= W) return fail(`no worker left to shrink to: ${main.detail}`);
      const c = consistentStep(lost, true);
      const survivors = swarm.members.filter((m) => !lost.has(m.rank));
      const own = survivors.map((m) => ownCkpt.get(m.rank) ?? new Set<number>());
      ownCkpt.clear();
      own.forEach((s, i) => ownCkpt.set(i, s));
      heldCkpt.clear();
      progress.clear();
      const dropped = swarm.drop(lost);
      for (const m of dropped) for (let j = 0; j < cfg.cardsPerWorker; j++) lostCards.push(m.firstCard + j);
      W = swarm.members.length;
      rec.action = `shrink to ${W} workers (cards ${dropped.map((m) => `${m.firstCard}..${m.firstCard + cfg.cardsPerWorker - 1}`).join(', ')} stop contributing)`;
      rec.restoredFrom = 'memory';
      return resume(rec, main.at, c, `${main.by} at ${rec.located}: shrink`, (r) =>
        c === 0 && !keeps(ownCkpt, r, 0) ? { step: 0, source: 'initial' } : { step: c, source: 'local' },
      );
    }
    // Replacements of an earlier recovery whose epoch never started hold no state yet: they restore
    // from their copies as the lost ones do (but are not replaced again).
    const restoring = new Set([...lost, ...unrestored]);
    const c = consistentStep(restoring);
    const sources = new Map([...restoring].map((r) => [r, lostSource(r, c, restoring)]));
    const fromScratch = c === 0 && [...sources.values()].some((s) => s === null);
    const spareBefore = swarm.spares.length;
    for (const r of lost) {
      await swarm.replace(r, cfg.onFailure === 'spare');
      ownCkpt.delete(r);
      heldCkpt.delete(predecessor(r, W));
      progress.delete(r);
    }
    unrestored = restoring;
    restarts += lost.size;
    const restoreFor = (r: number): Restore => {
      if (fromScratch || (c === 0 && !restoring.has(r) && !keeps(ownCkpt, r, 0))) return { step: 0, source: 'initial' };
      if (!restoring.has(r)) return { step: c, source: 'local' };
      if (sources.get(r) === 'peer') {
        const buddy = swarm.members[successor(r, W)];
        return { step: c, source: 'peer', peer: { rank: buddy.rank, dataUrl: buddy.dataUrl } };
      }
      return { step: c, source: sources.get(r) === 'disk' ? 'disk' : 'initial' };
    };
    const source = lost.size ? restoreFor([...lost][0]).source : 'local';
    const spared = spareBefore - swarm.spares.length;
    rec.action = lost.size ? `${spared ? 'spare' : 'restart'} rank ${[...lost].join(', ')}` : 'rollback';
    rec.restoredFrom = source === 'peer' || source === 'local' ? 'memory' : source === 'disk' ? 'disk' : 'initial';
    return resume(rec, main.at, c, `${main.by} at ${rec.located}`, restoreFor);
  }

  /** Roll every rank back to step `c`, start the new epoch, and look at what came in meanwhile. */
  async function resume(rec: FaultRecord | null, detectedAt: number, c: number, reason: string, restoreFor: (r: number) => Restore): Promise<void> {
    const lostSteps = Math.max(0, highestDone() + 1 - c);
    if (rec) rec.lostSteps = lostSteps;
    lostStepsTotal += lostSteps;
    for (const s of [...final.keys()]) if (s >= c) final.delete(s);
    pending.clear();
    if (!(await startEpoch(c, reason, restoreFor))) {
      // A ring-up that fails every time would loop for ever: give up, saying why.
      if (++failedRingUps >= MAX_FAILED_RING_UPS && !failure && !interrupted) {
        return fail(`${failedRingUps} epochs in a row did not ring up; the last: ${signals[0]?.detail ?? 'unknown'}`);
      }
    } else {
      failedRingUps = 0;
      unrestored = new Set();
      // From the fault (or, for one from outside, from its detection) to training resumed.
      const tookMs = Math.round(now() - (rec?.injectedAt ?? detectedAt));
      if (rec) rec.recoveredAfterMs = tookMs;
      hooks.log(`${rec ? 'recovered' : 'resumed'} in ${tookMs} ms: epoch ${epoch}, ${W} workers, from step ${c}${rec ? ` (${rec.restoredFrom})` : ''}`);
    }
    recovering = false;
    if (signals.length) {
      recovering = true;
      void recover().catch((e) => fail(`recovery failed: ${String(e)}`));
    }
  }

  /**
   * The injected fault a detection belongs to: one struck and not yet detected whose worker (home
   * rank) is where the detection points (the rank; a link's sender, whose link or frames it was);
   * failing that, for a detection that names no rank of an injected fault, the newest one struck
   * (an older one that did no harm, a short delay say, must not take it). Null: from outside.
   */
  function attribute(s: Signal, l: Location | null): FaultRecord | undefined {
    const open = faults.filter((r) => r.injectedAt !== null && r.detectedBy === null && r.fault);
    const home = (pos: number) => swarm.members[pos]?.home ?? pos;
    const at = l ? home(l.kind === 'rank' ? l.rank : l.from) : home(s.rank);
    // The newest struck on that worker: an older one there may have done no harm.
    const mine = open.filter((r) => target(r.fault!) === at).sort((a, b) => b.injectedAt! - a.injectedAt!);
    if (mine.length) return mine[0];
    // A process that exited or went silent with no fault of ours on it: someone else's doing.
    if (s.by === 'exit' || s.by === 'heartbeat') return undefined;
    return open.sort((a, b) => b.injectedAt! - a.injectedAt!)[0];
  }

  function newExternal(s: Signal, l: Location | null): FaultRecord {
    const r: FaultRecord = {
      fault: null,
      kind: s.by === 'exit' ? 'exit' : s.by === 'heartbeat' ? 'hang' : s.by === 'checksum' ? 'corrupt' : 'stall',
      ...(l?.kind === 'link' ? { link: [l.from, l.to] as [number, number] } : { rank: l?.rank ?? s.rank }),
      atStep: Math.max(0, highestDone() + 1),
      phase: null,
      injected: false,
      ...UNDETECTED,
    };
    faults.push(r);
    return r;
  }

  /** Assign and ring up epoch `epoch`, then start it; false when a fault struck during a recovery's ring-up (the caller recovers again). */
  async function startEpoch(fromStep: number, reason: string, restoreFor: (r: number) => Restore): Promise<boolean> {
    readyRanks = new Set();
    // Ranks that finished the last step before a fault struck another said 'done' in the old
    // epoch; they will again in this one, after redoing it.
    digests.clear();
    let struck = false;
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not every worker was ready for epoch ${epoch} within ${cfg.readyTimeoutMs} ms`)), cfg.readyTimeoutMs);
      readyWaiter = () => {
        clearTimeout(timer);
        resolve();
      };
      readyInterrupt = () => {
        clearTimeout(timer);
        struck = true;
        resolve();
      };
      // Interrupted or failed meanwhile: the timer must not keep the process alive.
      void finished.then(() => clearTimeout(timer));
    });
    const faultsFor = (rank: number): FaultOrder[] =>
      cfg.faults.flatMap((f) => ('step' in f.at && target(f) === swarm.members[rank].home && !fired.has(f.id) && f.at.step >= fromStep ? [order(f, f.at)] : []));
    const algo = algoFor(W);
    swarm.assignAll(epoch, job, restoreFor, faultsFor, [...lostCards], stragglersFor, algo);
    try {
      await Promise.race([ready, finished]);
    } finally {
      readyWaiter = readyInterrupt = null;
    }
    if (failure || interrupted) return false;
    if (struck) {
      hooks.log(`epoch ${epoch} did not ring up: ${signals[0]?.detail ?? 'a fault'}`);
      return false;
    }
    for (const m of swarm.members) m.lastSeen = now();
    epochs.push({
      epoch,
      startedAtMs: Math.round(now() - t0),
      fromStep,
      reason,
      cards: W * cfg.cardsPerWorker,
      algo,
      members: swarm.members.map((m) => ({ rank: m.rank, workerId: m.workerId, pid: m.pid })),
    });
    swarm.broadcast({ type: 'start', epoch, fromStep });
    return true;
  }

  /**
   * Injected stragglers belong to the hardware: a slow node is the worker process that held the
   * rank at launch (its replacement is a new server, not slow), a slow link the one between the
   * two workers that were neighbours at launch (after a reroute it may no longer be in the ring).
   */
  const slowNode = (f: { rank: number }, m: SwarmMember | undefined) => m !== undefined && m === launch[f.rank];
  const slowLink = (f: { from: number }, from: SwarmMember | undefined, to: SwarmMember | undefined) =>
    from !== undefined && from === launch[f.from] && to === launch[successor(f.from, cfg.workers)];

  /** What each rank emulates on itself: slow compute, a slow outgoing link, jitter. */
  function stragglersFor(rank: number): StragglerOrder[] {
    const out: StragglerOrder[] = [];
    const m = swarm.members[rank];
    const next = swarm.members[successor(rank, W)];
    for (const f of cfg.stragglers) {
      const fromStep = f.kind !== 'jitter' && f.kind !== 'pause' && 'step' in f.at ? f.at.step : 0;
      if (f.kind === 'jitter') out.push({ kind: 'jitter', maxMs: f.maxMs });
      else if (f.kind === 'slow' && slowNode(f, m)) out.push({ kind: 'slow', fromStep, steps: f.steps ?? null, factor: f.factor, addMs: f.addMs });
      else if (f.kind === 'slow-link' && slowLink(f, m, next)) out.push({ kind: 'slow-link', fromStep, steps: f.steps ?? null, bandwidth: f.bandwidth, delayMs: f.delayMs });
    }
    return out;
  }

  /** pause stragglers: short SIGSTOP/SIGCONT cycles from outside, like long garbage-collection stalls. */
  function schedulePauses(): void {
    for (const f of cfg.stragglers) {
      if (f.kind !== 'pause') continue;
      const start = f.at && 'ms' in f.at ? f.at.ms : 0;
      const end = f.forMs !== undefined ? start + f.forMs : Infinity;
      let t = start;
      const tick = () => {
        const m = launch[f.rank];
        if (failure || interrupted || digests.size === W || t >= end || !m || m.gone) return;
        m.process?.kill('SIGSTOP');
        timers.push(setTimeout(() => m.process?.kill('SIGCONT'), f.ms));
        t += f.everyMs;
        timers.push(setTimeout(tick, f.everyMs));
      };
      timers.push(setTimeout(tick, start));
    }
  }

  function scheduleTimedFaults(): void {
    for (const f of cfg.faults) {
      if (!('ms' in f.at)) continue;
      const fault = f;
      const atMs = f.at.ms;
      timers.push(
        setTimeout(() => {
          const m = swarm.byHome(target(fault));
          if (!m || m.gone || failure) return;
          const r = faults.find((x) => x.fault === fault)!;
          r.injectedAt = now();
          r.atStep = Math.max(0, highestDone() + 1);
          fired.add(fault.id);
          if (fault.kind === 'kill') m.process?.kill('SIGKILL');
          else if (fault.kind === 'hang') {
            m.process?.kill('SIGSTOP');
            if (fault.ms !== undefined) timers.push(setTimeout(() => m.process?.kill('SIGCONT'), fault.ms));
          } else {
            m.channel.send({ type: 'inject', epoch, fault: order(fault, { step: 0 }) });
          }
        }, atMs),
      );
    }
  }

  /** What the alpha-beta model predicts for the first epoch's ring, beside what was measured. */
  const modelReport = (measuredMs: number): RunReport['model'] => {
    const p = predictAllreduce(epochs[0]?.algo ?? algoFor(cfg.workers), cfg.workers, cfg.cardsPerWorker, cfg.bytesPerCard, fabric);
    const round = (x: number) => Math.round(x * 1000) / 1000;
    return {
      predictedAllreduceMs: round(p.totalUs / 1000),
      predictedInterMs: round(p.interUs / 1000),
      predictedIntraMs: round(p.intraUs / 1000),
      measuredAllreduceMs: round(measuredMs),
      ratio: p.totalUs > 0 && measuredMs > 0 ? Math.round((measuredMs / (p.totalUs / 1000)) * 100) / 100 : null,
    };
  };

  const report = (): RunReport => {
    const allDone = digests.size === W;
    const cardDigests = allDone ? [...digests.entries()].sort((a, b) => a[0] - b[0]).flatMap(([, d]) => d) : [];
    const steps = [...final.entries()].sort((a, b) => a[0] - b[0]).map(([, s]) => s);
    const ar = quantiles(steps.map((s) => s.allreduceMs));
    const algbw = ar.p50 > 0 ? cfg.bytesPerCard / (ar.p50 / 1000) / 1e9 : 0;
    const wrong = steps.reduce((a, s) => a + s.wrong, 0);
    const ok = !failure && !interrupted && allDone && final.size === cfg.steps && wrong === 0;
    coordinatorRssMB = Math.max(coordinatorRssMB, process.memoryUsage.rss() / 2 ** 20);
    const wallMs = Math.round(now() - t0);
    const coordinatorPss = selfPssMB();
    const trainingMs = trainingStart ? now() - trainingStart : 0;
    // Each counted step's share of the wall: from the end of the step before it in the same epoch
    // (or from the epoch's start) to its own end. Ranks overlap consecutive steps, so summing step
    // times would count the overlap twice (and pass the wall on large rings).
    const epochStart = new Map(epochs.map((e) => [e.epoch, t0 + e.startedAtMs]));
    const productiveMs = [...final.entries()].reduce((sum, [step, s]) => {
      const prev = final.get(step - 1);
      const from = prev && prev.epoch === s.epoch ? prev.doneAt! : (epochStart.get(s.epoch!) ?? s.doneAt! - s.stepMs);
      return sum + Math.max(0, s.doneAt! - from);
    }, 0);
    const r: RunReport = {
      ok,
      seed: cfg.seed,
      workers: cfg.workers,
      cardsPerWorker: cfg.cardsPerWorker,
      cards: cfg.workers * cfg.cardsPerWorker,
      bytesPerCard: cfg.bytesPerCard,
      dtype: cfg.dtype,
      op: cfg.op,
      stepsRequested: cfg.steps,
      stepsCompleted: final.size,
      wrong,
      stateDigest: allDone ? jobDigest(cardDigests) : null,
      controlUrl: swarm.controlUrl,
      startupMs: Math.round(startupMs),
      wallMs,
      stepMs: quantiles(steps.map((s) => s.stepMs)),
      allreduceMs: ar,
      computeMs: quantiles(steps.map((s) => s.computeMs)),
      algbwGBps: algbw,
      busbwGBps: algbw * busBandwidthFactor('allreduce', W),
      algo: [...new Set(epochs.map((e) => e.algo))],
      link: cfg.link,
      model: modelReport(ar.p50),
      memory: {
        coordinatorRssMB: Math.round(coordinatorRssMB),
        workerRssMBMax: Math.round(workerRssMBMax),
        workerRssMBTotal: Math.round([...rssByRank.values()].reduce((a, b) => a + b, 0)),
        // RSS counts the pages workers share (node's code) once per process; PSS splits them.
        workerPssMBTotal: pssByRank.size ? Math.round([...pssByRank.values()].reduce((a, b) => a + b, 0)) : null,
        coordinatorPssMB: coordinatorPss === null ? null : Math.round(coordinatorPss),
      },
      coordinatorCpu: (() => {
        const u = process.cpuUsage(cpu0);
        const ms = (u.user + u.system) / 1000;
        return { ms: Math.round(ms), share: wallMs > 0 ? Math.round((ms / wallMs) * 1000) / 1000 : 0 };
      })(),
      processes: swarm.everyone.filter((m) => m.rank >= 0).map((m) => ({ rank: m.rank, pid: m.pid, workerId: m.workerId, spawned: m.spawned })),
      rejectedConnections: swarm.rejectedConnections,
      faults: faults.map(({ fault: _f, injectedAt: _i, ...rest }) => rest),
      stragglers,
      epochs,
      goodput: {
        productiveMs: Math.round(productiveMs),
        wallMs: Math.round(trainingMs),
        ratio: trainingMs > 0 ? Math.min(1, productiveMs / trainingMs) : 0,
        lostSteps: lostStepsTotal,
        recomputedSteps: Math.max(0, stepRuns - final.size),
      },
      restarts,
    };
    if (!ok) r.error = failure ?? (interrupted ? 'interrupted' : wrong > 0 ? `${wrong} wrong elements` : 'incomplete');
    if (interrupted) r.interrupted = true;
    return r;
  };

  const monitor = setInterval(heartbeatMonitor, Math.max(20, Math.min(100, cfg.heartbeatDeadMs / 5)));
  try {
    await swarm.listen();
    hooks.listening?.(swarm.controlUrl, swarm.token);
    swarm.spawnWorkers();
    const joined = await Promise.race([swarm.rendezvous(cfg.cardsPerWorker).then(() => true), finished.then(() => false)]);
    if (joined && !failure && !interrupted) {
      launch = [...swarm.members];
      trainingStart = 0;
      const started = startEpoch(0, 'start', () => ({ step: 0, source: 'initial' }));
      await Promise.race([started, finished]);
      if (!failure && !interrupted) {
        startupMs = now() - t0;
        trainingStart = now();
        hooks.progress(`${W} workers ready in ${Math.round(startupMs)} ms; training ${cfg.steps} steps`);
        scheduleTimedFaults();
        schedulePauses();
        await finished;
      }
    }
  } catch (e) {
    failure ??= isRingswarmError(e) ? `${e.code}: ${e.message}` : String(e);
  }
  clearInterval(monitor);
  for (const t of timers) clearTimeout(t);
  signal?.removeEventListener('abort', onAbort);
  const r = report();
  if (interrupted || failure) await swarm.kill();
  else await swarm.close('run finished');
  r.wallMs = Math.round(now() - t0);
  return r;
}
