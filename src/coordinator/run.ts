// `ringswarm run`: the driver that carries out the coordinator machine's actions with real sockets,
// processes and timers. All decisions (rendezvous, epochs, detection, location, recovery, the
// report's ground truth) are the machine's (machine.ts); this file only does I/O.
import { availableParallelism } from 'node:os';
import { elementBytes } from '../collective/dtypes.js';
import { MACHINE_MODEL, pickAlgo, type FabricModel } from '../collective/model.js';
import type { AllreduceAlgo } from '../collective/types.js';
import type { JobSpec } from '../protocol/control.js';
import { isRingswarmError, RingswarmError, RingswarmUsageError } from '../protocol/errors.js';
import { NamedTimers, realClock } from '../runtime/clock.js';
import { ControlServer, type ControlChannel } from '../runtime/control-server.js';
import { selfPssMB } from '../runtime/memory.js';
import { makeSlotDir, removeSlotDir, SHARED_SLOTS, SHM_ROOT, shmFreeBytes, slotDirBytes } from '../runtime/shared-slots.js';
import { formatBytes } from '../protocol/units.js';
import { describeExit, WorkerProcess } from '../runtime/worker-process.js';
import type { FaultReport, LinkSpec, RunConfig, RunReport, StragglerReport } from './config.js';
import { CoordinatorMachine, type CoordinatorAction, type CoordinatorEvent, type InjectAnswer, type ProcessState } from './machine.js';
import type { FaultInput } from './scenario/index.js';
import type { JobStatus } from '../protocol/operator.js';
import { operatorHandler } from '../runtime/operator-http.js';
import { buildReport } from './report.js';
import type { RunMetrics } from './metrics.js';
import { closeTrace, openRunTrace } from './trace-file.js';

export interface RunHooks {
  /** A line of live progress (overwritten in a terminal); `step` when it is a step counted (for time left). */
  progress(line: string, step?: { done: number; total: number }): void;
  log(line: string): void;
  /** Called once the control URL and token are known (for workers that join by themselves). */
  listening?(url: string, token: string): void;
  /** What a live job's caller sees (the API's startRun): derived from the machine after each event it handles. */
  event?(e: RunEvent): void;
  /** Called once at the start with the live job's controls. */
  control?(c: RunControl): void;
}

export type RunEvent =
  | { type: 'ready'; epoch: number; workers: number; pids: number[] }
  | { type: 'step'; step: number; epoch: number; stepMs: number; allreduceMs: number; wrong: number }
  | { type: 'fault'; fault: FaultReport }
  /** A fault (injected or from outside) once training resumed after it: detection, location and recovery filled in. */
  | { type: 'healed'; fault: FaultReport }
  | { type: 'straggler'; straggler: StragglerReport }
  | { type: 'epoch'; epoch: number; workers: number };

export interface RunControl {
  /**
   * A fault injected into the live job: shorthand ('kill:rank=1', 'hang:rank=2:ms=500:step=7') or
   * a scenario entry; resolves with its id and report entry, rejects with why not (RS_ERR_USAGE).
   */
  inject(fault: string | FaultInput): Promise<{ id: number; fault: FaultReport }>;
  /** What `ringswarm status` shows. */
  status(): JobStatus;
}

/** The machine's public fields as events: what changed since the last look. */
function eventWatcher(machine: CoordinatorMachine, emit: (e: RunEvent) => void): () => void {
  let ready = false;
  let epoch = machine.epoch;
  let stragglers = 0;
  const stepsSeen = new Set<number>();
  const faultsSeen = new Set<number>();
  const healedSeen = new Set<number>();
  return () => {
    if (!ready && machine.phase === 'training') {
      ready = true;
      emit({ type: 'ready', epoch: machine.epoch, workers: machine.W, pids: machine.members.map((m) => m.pid) });
    }
    if (machine.epoch !== epoch) {
      epoch = machine.epoch;
      emit({ type: 'epoch', epoch, workers: machine.W });
    }
    for (const [step, s] of machine.steps.final) {
      if (stepsSeen.has(step)) continue;
      stepsSeen.add(step);
      emit({ type: 'step', step, epoch: machine.epoch, stepMs: s.stepMs, allreduceMs: s.allreduceMs, wrong: s.wrong });
    }
    machine.faults.forEach((f, i) => {
      if (f.injectedAt === null || faultsSeen.has(i)) return;
      faultsSeen.add(i);
      const { fault: _f, injectedAt: _at, ...report } = f;
      emit({ type: 'fault', fault: report });
    });
    machine.faults.forEach((f, i) => {
      if (f.recoveredAfterMs === null || healedSeen.has(i)) return;
      healedSeen.add(i);
      const { fault: _f, injectedAt: _at, ...report } = f;
      emit({ type: 'healed', fault: report });
    });
    while (stragglers < machine.stragglers.length) emit({ type: 'straggler', straggler: machine.stragglers[stragglers++]! });
  };
}

/**
 * How the run's checkpoint copies reach the next rank, and why: 'shm' (a slot folder in shared
 * memory) needs every worker on this host (all spawned here), a shared-memory folder with room
 * for every spawned worker's SHARED_SLOTS slots (`shmFree` bytes, null: none), and, for 'auto', no
 * emulated link (whose cost the copies then pay). Asked for and impossible: a usage error.
 */
export function checkpointCopyPlan(cfg: RunConfig, shmFree: number | null): { copy: 'shm' | 'net'; why: string } {
  if (cfg.checkpointEvery === 0) return { copy: 'net', why: 'no checkpoints' };
  if (cfg.checkpointCopy === 'net') return { copy: 'net', why: '--checkpoint-copy net' };
  const need = (cfg.spawn + cfg.spares) * SHARED_SLOTS * cfg.cardsPerWorker * cfg.bytesPerCard;
  const impossible =
    cfg.spawn < cfg.workers
      ? `${cfg.workers - cfg.spawn} of the ${cfg.workers} workers are not spawned here (--spawn ${cfg.spawn}): they may be on other hosts`
      : shmFree === null
        ? `this host has no ${SHM_ROOT}`
        : shmFree < 2 * need
          ? `${SHM_ROOT} has ${formatBytes(shmFree)} free, and the slots need ${formatBytes(need)} (twice that is asked, for replacements' slots)`
          : null;
  if (impossible) {
    if (cfg.checkpointCopy === 'shm') throw new RingswarmUsageError(`--checkpoint-copy shm: ${impossible}`);
    return { copy: 'net', why: impossible };
  }
  if (cfg.checkpointCopy === 'auto' && (cfg.link.latencyUs > 0 || cfg.link.bandwidth > 0)) return { copy: 'net', why: 'the links are emulated: the copies cross them' };
  return { copy: 'shm', why: cfg.checkpointCopy === 'shm' ? '--checkpoint-copy shm' : `every worker is on this host` };
}

export function jobSpec(cfg: RunConfig, checkpointShm: string | null = null): JobSpec {
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
    // Half the coordinator's own wait for ready, so a rank that cannot ring up says so before the run gives up.
    ringUpTimeoutMs: Math.max(cfg.timeoutMs, Math.floor(cfg.readyTimeoutMs / 2)),
    heartbeatMs: cfg.heartbeatMs,
    heartbeatDeadMs: cfg.heartbeatDeadMs,
    checksums: cfg.checksums,
    checkpointEvery: cfg.checkpointEvery,
    checkpointDir: cfg.checkpointDir,
    ...(checkpointShm ? { checkpointShm } : {}),
    link: cfg.link,
    ...(cfg.traceFile ? { trace: true } : {}),
  };
}

/** The alpha-beta model of this machine with the emulated fabric of `link`. */
export function fabricModel(link: LinkSpec, cores = availableParallelism()): FabricModel {
  return { ...MACHINE_MODEL, cores, linkLatencyUs: link.latencyUs, linkBandwidth: link.bandwidth, intraBandwidth: link.intraBandwidth };
}

/** The epoch's all-reduce algorithm: the one asked for, or for auto a measured crossover for `w` workers, else the model's pick. */
export function algoChooser(cfg: RunConfig, fabric: FabricModel): (w: number) => AllreduceAlgo {
  return (w) => {
    if (cfg.algo !== 'auto') return cfg.algo;
    const measured = cfg.crossovers.find((c) => c.workers === w);
    if (measured) return measured.bytes === null || cfg.bytesPerCard < measured.bytes ? 'rd' : 'ring';
    return pickAlgo(w, cfg.cardsPerWorker, cfg.bytesPerCard, fabric);
  };
}

export function checkSize(cfg: RunConfig): void {
  const eb = elementBytes(cfg.dtype);
  if (cfg.bytesPerCard % eb !== 0) throw new RangeError(`--size ${cfg.bytesPerCard} is not a whole number of ${cfg.dtype} elements (${eb} bytes each)`);
}

/**
 * The spawned workers' nice value: the flag's, or for auto 15 beyond 8 spawned workers a core and
 * 0 below. The coordinator's work grows with the workers (their heartbeats) while its fair share of
 * the CPU shrinks with them: with 64 workers on 2 cores a status request waited 2-24 s, with 128
 * workers whose groups were niced 0.3-0.9 s. Few workers need no help, and niced ones yield to
 * any other load (on a busy machine 256 of them at 15 took minutes to start).
 */
export function workerNiceFor(cfg: Pick<RunConfig, 'workerNice' | 'spawn' | 'spares'>, cores = availableParallelism()): number {
  return cfg.workerNice ?? (cfg.spawn + cfg.spares > 8 * cores ? 15 : 0);
}

/** How long a dead worker's control socket may take to end before its exit is handled anyway. */
const EXIT_DRAIN_MS = 2000;

const KERNEL_TO_PROBE: Record<ReturnType<WorkerProcess['kernelState']>, ProcessState> = { alive: 'running', stopped: 'stopped', dead: 'dead', unknown: 'unknown' };

export async function runJob(cfg: RunConfig, hooks: RunHooks, signal?: AbortSignal): Promise<RunReport> {
  checkSize(cfg);
  const copyPlan = checkpointCopyPlan(cfg, shmFreeBytes());
  // Made before anything starts, removed once every worker is gone (the workers write it).
  const slotDir = copyPlan.copy === 'shm' ? makeSlotDir() : null;
  hooks.log(`checkpoint copies: ${slotDir ? `shared memory (${slotDir})` : 'frames over the links'}: ${copyPlan.why}`);
  try {
    return await runWith(cfg, hooks, signal, slotDir);
  } finally {
    if (slotDir) removeSlotDir(slotDir);
  }
}

async function runWith(cfg: RunConfig, hooks: RunHooks, signal: AbortSignal | undefined, slotDir: string | null): Promise<RunReport> {
  const clock = realClock();
  const t0 = clock.now();
  const cpu0 = process.cpuUsage();
  const fabric = fabricModel(cfg.link);
  const algoFor = algoChooser(cfg, fabric);
  const machine = new CoordinatorMachine(cfg, jobSpec(cfg, slotDir), algoFor, t0);
  // A --trace path that cannot be written stops the run before anything starts (the file is written at the end).
  const trace = cfg.traceFile ? await openRunTrace(cfg.traceFile, machine, { t0, command: 'ringswarm run' }) : null;
  // First of all: a metrics port that cannot be had stops the run before anything starts.
  // prom-client is loaded only for a run that serves metrics: it adds a few hundred ms to a start.
  let metrics: RunMetrics | null = null;
  let metricsServer: { url: string; close(): Promise<void> } | null = null;
  if (cfg.metricsPort !== null) {
    const { RunMetrics, serveMetrics } = await import('./metrics.js');
    metrics = new RunMetrics(machine, () => clock.now());
    metricsServer = await serveMetrics(metrics, cfg.metricsPort);
    hooks.log(`metrics: ${metricsServer.url}`);
  }
  // --ui-port: the live dashboard (lazy-loaded too); a port in use stops the run here as well.
  const liveReport = () => buildReport(machine, fabric, algoFor, t0, { now: clock.now(), controlUrl: '', rejectedConnections: 0, coordinatorRssMB: 0, coordinatorPssMB: null, coordinatorCpuMs: 0 });
  const dashboard = cfg.uiPort === null ? null : await (await import('./html/live.js')).serveDashboard({ machine, t0, now: () => clock.now(), report: liveReport, log: hooks.log }, cfg.uiPort).catch(async (e: unknown) => (await metricsServer?.close(), Promise.reject(e)));
  if (dashboard) hooks.log(`dashboard: ${dashboard.url}`);
  const procs = new Map<string, WorkerProcess>();
  const channels = new Map<string, ControlChannel>();
  const timers = new NamedTimers(clock, (name) => feed({ type: 'timer', name }));
  let closing = false;
  let coordinatorRssMB = process.memoryUsage.rss() / 2 ** 20;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));

  const server = new ControlServer({ host: cfg.host, port: cfg.port, advertise: cfg.advertise ?? undefined, token: cfg.token, log: hooks.log });

  // Events are handled one at a time, in order: an action that answers at once (a probe) queues its event.
  const queue: CoordinatorEvent[] = [];
  let draining = false;
  const feed = (e: CoordinatorEvent) => {
    if (closing) return;
    if (e.type === 'message') trace?.message(e.worker, e.msg, clock.now());
    queue.push(e);
    if (draining) return;
    draining = true;
    try {
      while (queue.length && !closing) for (const a of machine.handle(queue.shift()!, clock.now())) carry(a);
    } finally {
      draining = false;
    }
    afterEvents();
  };
  const observe = hooks.event && eventWatcher(machine, hooks.event);
  // Live injections wait for the machine's answer (it comes with the actions of their event).
  const answers = new Map<number, (a: InjectAnswer) => void>();
  let refs = 0;
  const control: RunControl = {
    inject: (fault) =>
      new Promise((resolve, reject) => {
        if (closing) return reject(new RingswarmUsageError('the run has finished'));
        const ref = ++refs;
        answers.set(ref, (a) => (a.ok ? resolve({ id: a.id, fault: a.fault }) : reject(new RingswarmUsageError(a.error))));
        feed({ type: 'inject', spec: fault, ref });
      }),
    status: () => machine.statusSnapshot(clock.now()),
  };
  hooks.control?.(control);
  server.onRequest = operatorHandler({ token: server.token, status: control.status, inject: control.inject, refused: (l) => server.noteRefused(l) });

  // Workers start and ring up at the coordinator's priority (niced, 256 of them took 4-5 times as
  // long to be ready); once training they are niced, and so is every worker spawned after that.
  const nice = workerNiceFor(cfg);
  let niced = false;
  const yieldOnceTraining = () => {
    if (niced || !nice || machine.phase !== 'training') return;
    niced = true;
    for (const p of procs.values()) p.renice(nice);
  };
  /** What follows the machine's handling of events: the caller's events, the metrics, the workers' priority. */
  const afterEvents = () => {
    observe?.();
    metrics?.observe();
    trace?.observe(clock.now());
    yieldOnceTraining();
  };
  const spawn = (workerId: string) => {
    const p = new WorkerProcess({ workerId, controlUrl: server.url, token: server.token, host: cfg.host, advertise: cfg.advertise, nice: niced ? nice : 0, log: hooks.log });
    procs.set(workerId, p);
    p.start();
    void p.exited.then(async (e) => {
      await drained(workerId);
      feed({ type: 'exit', worker: workerId, why: `worker ${workerId} (pid ${p.pid}) ${describeExit(e)}` });
    });
  };

  // A dead worker's last reports first: its control socket ends after every byte it sent, and a
  // coordinator behind its sockets may learn of the exit first. A step it reported before dying
  // counts (a recovery resumes from the newest step everyone reported).
  const closeWaiters = new Map<string, () => void>();
  const drained = (workerId: string) =>
    channels.has(workerId)
      ? new Promise<void>((resolve) => {
          const t = clock.setTimer(EXIT_DRAIN_MS, () => done());
          const done = () => {
            clock.clearTimer(t);
            closeWaiters.delete(workerId);
            resolve();
          };
          closeWaiters.set(workerId, done);
        })
      : Promise.resolve();

  function carry(a: CoordinatorAction): void {
    switch (a.type) {
      case 'send':
        channels.get(a.to)?.send(a.msg);
        return;
      case 'spawn':
        return spawn(a.worker);
      case 'signal':
        procs.get(a.worker)?.kill(a.signal);
        return;
      case 'disconnect':
        channels.get(a.worker)?.close(a.code, a.reason);
        channels.delete(a.worker);
        return;
      case 'arm':
        return timers.arm(a.name, a.ms);
      case 'disarm':
        return timers.disarm(a.name);
      case 'probe': {
        const p = procs.get(a.worker);
        queue.push({ type: 'probed', worker: a.worker, state: p ? KERNEL_TO_PROBE[p.kernelState()] : 'unknown' });
        return;
      }
      case 'log':
        return hooks.log(a.line);
      case 'progress':
        coordinatorRssMB = Math.max(coordinatorRssMB, process.memoryUsage.rss() / 2 ** 20);
        return hooks.progress(a.line, a.step);
      case 'finish':
        return finish();
      case 'answer': {
        const answer = answers.get(a.ref);
        answers.delete(a.ref);
        return answer?.(a.answer);
      }
    }
  }

  server.onHello = (hello, ch) => {
    const id = hello.workerId;
    if (hello.spawned && procs.get(id)?.pid !== hello.pid) return new RingswarmError('RS_ERR_AUTH', `no spawned worker ${id} with pid ${hello.pid}`);
    channels.set(id, ch);
    trace?.message(id, hello, clock.now());
    ch.setHandlers({
      onMessage: (msg) => feed({ type: 'message', worker: id, msg }),
      onClose: (code, reason) => {
        if (channels.get(id) === ch) channels.delete(id);
        closeWaiters.get(id)?.();
        // A spawned worker's exit is the better signal; a joined one has only its connection.
        if (!procs.has(id)) feed({ type: 'exit', worker: id, why: `worker ${id} (pid ${hello.pid}) closed its control connection (${code} ${reason})` });
      },
    });
    feed({
      type: 'joined',
      worker: { workerId: id, pid: hello.pid, dataUrl: hello.dataUrl, spawned: hello.spawned, host: hello.host, launcher: hello.spawned ? { kind: 'spawned', rank: null } : hello.launcher, worldSize: hello.worldSize },
    });
  };

  const onAbort = () => feed({ type: 'interrupt' });
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await server.listen();
    hooks.listening?.(server.url, server.token);
    if (signal?.aborted) feed({ type: 'interrupt' });
    else for (const a of machine.begin(clock.now())) carry(a);
    afterEvents();
    await finished;
  } catch (e) {
    feed({ type: 'error', message: isRingswarmError(e) ? `${e.code}: ${e.message}` : String(e) });
    if (!machine.done) machine.failure ??= String(e);
  }
  closing = true;
  signal?.removeEventListener('abort', onAbort);
  timers.clear();
  const cpu = process.cpuUsage(cpu0);
  const report = buildReport(machine, fabric, algoFor, t0, {
    now: clock.now(),
    controlUrl: server.url,
    rejectedConnections: server.rejected,
    coordinatorRssMB: Math.max(coordinatorRssMB, process.memoryUsage.rss() / 2 ** 20),
    coordinatorPssMB: selfPssMB(),
    ...(slotDir ? { checkpointSlotBytes: slotDirBytes(slotDir) } : {}),
    coordinatorCpuMs: (cpu.user + cpu.system) / 1000,
  });
  if (report.ok) {
    for (const ch of channels.values()) ch.send({ type: 'shutdown', reason: 'run finished' });
    await Promise.all([...procs.values()].map((p) => p.reap(1500)));
  } else {
    // A frozen worker cannot exit: SIGCONT first, then SIGTERM and SIGKILL.
    for (const p of procs.values()) p.kill('SIGCONT');
    await Promise.all([...procs.values()].map((p) => p.stop(1000)));
  }
  await server.close();
  await metricsServer?.close();
  report.wallMs = Math.round(clock.now() - t0);
  if (trace && cfg.traceFile) report.trace = await closeTrace(cfg.traceFile, trace, { ok: report.ok, seed: cfg.seed, workers: cfg.workers, steps: cfg.steps, ...(report.interrupted ? { interrupted: true } : {}) }, hooks.log);
  await dashboard?.close(report);
  if (cfg.htmlFile) await (await import('./html/index.js')).writeRunHtml(cfg.htmlFile, report, machine, t0, clock.now(), hooks.log);
  return report;
}
