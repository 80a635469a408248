// `ringswarm sim`: the same job as `run`, carried out by the same coordinator machine and the same
// worker code, in one process over the in-memory fabric on a virtual clock. A kill or crash drops
// the worker (its process is gone: no more of its code runs), a hang freezes it for virtual ms, and
// link faults and stragglers shape the simulated links. One seed, one trace: the report's
// traceDigest is the SHA-256 of the ordered events the coordinator machine took.
import { memorySlots } from '../runtime/shared-slots.js';
import { MACHINE_MODEL } from '../collective/model.js';
import type { CoordinatorMessage, WorkerMessage } from '../protocol/control.js';
import { NamedTimers, type Clock, type TimerHandle } from '../runtime/clock.js';
import { SimNetwork } from '../runtime/sim-network.js';
import { simChannelPair, type SimChannel } from '../runtime/sim-channel.js';
import { VirtualClock } from '../runtime/virtual-clock.js';
import { Worker, type CheckpointDisk } from '../worker/worker.js';
import type { LinkSpec, RunConfig, RunReport } from '../coordinator/config.js';
import { CoordinatorMachine, type CoordinatorAction, type CoordinatorEvent } from '../coordinator/machine.js';
import { buildReport } from '../coordinator/report.js';
import { algoChooser, checkSize, fabricModel, jobSpec, type RunHooks } from '../coordinator/run.js';
import { closeTrace, openRunTrace } from '../coordinator/trace-file.js';

/**
 * The simulated fabric when the flags leave it out, from this machine's measurements: a hop costs
 * about 150 us and a link carries about 1 GB/s (the alpha-beta model's fit, collective/model.ts);
 * card to card inside a worker is a memcpy, about 5 GB/s.
 */
export const SIM_LINK_DEFAULTS: LinkSpec = { latencyUs: MACHINE_MODEL.hopUs, bandwidth: MACHINE_MODEL.softwareBandwidth, intraBandwidth: 5e9 };
/** Control messages between the coordinator and a worker. */
const CONTROL_LATENCY_MS = 0.05;
/** A spawned process takes this long (virtual) to say hello; a killed one this long to be reaped. */
const SPAWN_MS = 50;
const EXIT_MS = 1;
/** About 10 minutes of this machine's time: far more than the 100,000-card run needs. */
const DEFAULT_MAX_EVENTS = 50_000_000;

export interface SimOptions {
  /** Give up (a stuck run) once the virtual clock passes this many ms... */
  maxVirtualMs?: number;
  /** ...or once this many events have run (a loop that does not move the clock). */
  maxEvents?: number;
}

/** The simulated fabric: the flags' values, the defaults where they leave one at 0. */
export function simLink(link: LinkSpec): LinkSpec {
  return {
    latencyUs: link.latencyUs || SIM_LINK_DEFAULTS.latencyUs,
    bandwidth: link.bandwidth || SIM_LINK_DEFAULTS.bandwidth,
    intraBandwidth: link.intraBandwidth || SIM_LINK_DEFAULTS.intraBandwidth,
  };
}

/** A process's view of the virtual clock: while it is frozen its timers wait; once it is dead they never fire. */
class ProcessClock implements Clock {
  private frozen = false;
  private dead = false;
  private held: (() => void)[] = [];

  constructor(private readonly base: VirtualClock) {}

  now(): number {
    return this.base.now();
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    return this.base.setTimer(ms, () => {
      if (this.dead) return;
      if (this.frozen) this.held.push(fn);
      else fn();
    });
  }

  clearTimer(t: TimerHandle | null | undefined): void {
    this.base.clearTimer(t);
  }

  sleep(ms: number): Promise<void> {
    return new Promise((r) => this.setTimer(ms, r));
  }

  freeze(): void {
    this.frozen = true;
  }

  thaw(): void {
    if (!this.frozen || this.dead) return;
    this.frozen = false;
    for (const fn of this.held.splice(0)) this.base.setTimer(0, () => !this.dead && fn());
  }

  kill(): void {
    this.dead = true;
    this.held = [];
  }
}

/** Checkpoints on a simulated disk: copies kept in memory by (folder, first card, step). */
function simDisk(): CheckpointDisk {
  const files = new Map<string, Uint8Array[]>();
  return {
    async write(dir, firstCard, step, states) {
      files.set(`${dir}/${firstCard}/${step}`, states.map((s) => s.slice()));
    },
    async read(dir, firstCard, step) {
      const f = files.get(`${dir}/${firstCard}/${step}`);
      if (!f) throw new Error(`no checkpoint of cards from ${firstCard} at step ${step} in ${dir}`);
      return f.map((s) => s.slice());
    },
  };
}

interface SimProc {
  id: string;
  pid: number;
  state: 'running' | 'stopped' | 'dead';
  clock: ProcessClock;
  coordSide: SimChannel<WorkerMessage, CoordinatorMessage>;
  workerSide: SimChannel<CoordinatorMessage, WorkerMessage>;
  worker: Worker | null;
}

export async function simJob(cfgIn: RunConfig, hooks: RunHooks, o: SimOptions = {}): Promise<RunReport> {
  checkSize(cfgIn);
  const cfg: RunConfig = { ...cfgIn, link: simLink(cfgIn.link) };
  const real0 = performance.now();
  const cpu0 = process.cpuUsage();
  const clock = new VirtualClock();
  // Each worker sets its links' model from the job (setLinkModel), so the network adds nothing of its own.
  const net = new SimNetwork(clock, { seed: cfg.seed, latencyUs: 0, bandwidth: 0 });
  // The simulated machine is a cluster: one core per worker, the model's hop cost unscaled.
  const fabric = fabricModel(cfg.link, cfg.workers + cfg.spares);
  const algoFor = algoChooser(cfg, fabric);
  // The simulated machine's hosts are one per worker: checkpoint copies go as frames unless shm is asked for (the same worker logic, slots in a map).
  const slots = cfg.checkpointCopy === 'shm' && cfg.checkpointEvery > 0 ? memorySlots() : null;
  const machine = new CoordinatorMachine(cfg, jobSpec(cfg, slots ? 'sim-slots' : null), algoFor, 0);
  const procs = new Map<string, SimProc>();
  const timers = new NamedTimers(clock, (name) => feed({ type: 'timer', name }));
  const disk = cfg.checkpointDir ? simDisk() : undefined;
  let pids = 10_000;
  const trace = cfg.traceFile ? await openRunTrace(cfg.traceFile, machine, { t0: 0, command: 'ringswarm sim', sharedClock: true }) : null;

  const queue: CoordinatorEvent[] = [];
  let draining = false;
  const feed = (e: CoordinatorEvent) => {
    queue.push(e);
    if (draining) return;
    draining = true;
    try {
      while (queue.length && !machine.done) {
        const ev = queue.shift()!;
        clock.trace(traceLabel(ev));
        for (const a of machine.handle(ev, clock.now())) carry(a);
      }
    } finally {
      draining = false;
    }
    trace?.observe(clock.now());
  };

  const kill = (p: SimProc, why: string) => {
    if (p.state === 'dead') return;
    p.state = 'dead';
    p.clock.kill();
    net.kill(p.id);
    p.workerSide.close(1006, 'process died');
    clock.setTimer(EXIT_MS, () => feed({ type: 'exit', worker: p.id, why: `worker ${p.id} (pid ${p.pid}) ${why}` }));
  };
  const freeze = (p: SimProc) => {
    if (p.state !== 'running') return;
    p.state = 'stopped';
    p.clock.freeze();
    net.freeze(p.id);
    p.workerSide.pause();
  };
  const thaw = (p: SimProc) => {
    if (p.state !== 'stopped') return;
    p.state = 'running';
    p.clock.thaw();
    net.thaw(p.id);
    p.workerSide.resume();
  };

  const spawn = (id: string) => {
    const [coordSide, workerSide] = simChannelPair<WorkerMessage, CoordinatorMessage>(clock, CONTROL_LATENCY_MS);
    const p: SimProc = { id, pid: pids++, state: 'running', clock: new ProcessClock(clock), coordSide, workerSide, worker: null };
    procs.set(id, p);
    let joined = false;
    coordSide.setHandlers({
      onMessage: (msg) => {
        trace?.message(id, msg, clock.now());
        if (joined) return feed({ type: 'message', worker: id, msg });
        if (msg.type !== 'hello') return;
        joined = true;
        feed({ type: 'joined', worker: { workerId: id, pid: msg.pid, dataUrl: msg.dataUrl, spawned: true } });
      },
      onClose: () => {},
    });
    p.clock.setTimer(SPAWN_MS, () => {
      const endpoint = net.endpoint(id);
      p.worker = new Worker(workerSide, endpoint, { workerId: id, pid: p.pid, token: 'sim', spawned: true }, {
        clock: p.clock,
        arena: false,
        rssMB: () => 0,
        pssMB: () => null,
        // A dead process says nothing more.
        log: (line) => p.state !== 'dead' && hooks.log(`[${id}] ${line}`),
        // The worker strikes itself at the point it reached; the process dies (or stops) right after.
        strike: (how) => {
          clock.setTimer(0, () => ('exit' in how ? kill(p, `exited with code ${how.exit}`) : 'signal' in how && how.signal === 'SIGKILL' ? kill(p, 'killed by SIGKILL') : freeze(p)));
        },
        disk,
        ...(slots ? { sharedSlots: () => slots } : {}),
      });
      void p.worker.exited.then(() => {
        if (p.state !== 'dead') kill(p, 'exited with code 0');
      });
    });
  };

  function carry(a: CoordinatorAction): void {
    const p = 'worker' in a ? procs.get(a.worker) : 'to' in a ? procs.get(a.to) : undefined;
    switch (a.type) {
      case 'send':
        if (p && p.state !== 'dead') p.coordSide.send(a.msg);
        return;
      case 'spawn':
        return spawn(a.worker);
      case 'signal':
        if (!p) return;
        if (a.signal === 'SIGKILL') kill(p, 'killed by SIGKILL');
        else if (a.signal === 'SIGSTOP') freeze(p);
        else thaw(p);
        return;
      case 'disconnect':
        p?.coordSide.close(a.code, a.reason);
        return;
      case 'arm':
        return timers.arm(a.name, a.ms);
      case 'disarm':
        return timers.disarm(a.name);
      case 'probe':
        queue.push({ type: 'probed', worker: a.worker, state: !p || p.state === 'dead' ? 'dead' : p.state });
        return;
      case 'log':
        return hooks.log(a.line);
      case 'progress':
        return hooks.progress(a.line, a.step);
      case 'finish':
        return;
    }
  }

  const maxVirtualMs = o.maxVirtualMs ?? defaultVirtualLimit(cfg);
  // The trace starts with the job itself: two runs of different flags never share a trace.
  clock.trace(JSON.stringify({ ...cfg, token: undefined, traceFile: undefined }));
  for (const a of machine.begin(clock.now())) carry(a);
  const ran = await clock.run({ stop: () => machine.done, untilMs: maxVirtualMs, maxEvents: o.maxEvents ?? DEFAULT_MAX_EVENTS, sameInstant: true });
  if (!machine.done) {
    const why = ran.reason === 'max-events' ? `${ran.events} events ran and the virtual clock got only to ${Math.round(clock.now())} ms` : `it had not finished after ${Math.round(maxVirtualMs)} virtual ms (${ran.events} events)`;
    feed({ type: 'error', message: `stuck: ${why}` });
  }
  const virtualMs = clock.now();
  // Every simulated process is done with; nothing of theirs runs after the report.
  // (Not worker.stop(): closing each endpoint tells every peer, n² over the swarm.)
  for (const p of procs.values()) {
    p.state = 'dead';
    p.clock.kill();
  }
  const cpu = process.cpuUsage(cpu0);
  const report = buildReport(machine, fabric, algoFor, 0, {
    now: virtualMs,
    controlUrl: 'sim://coordinator',
    rejectedConnections: 0,
    coordinatorRssMB: process.memoryUsage.rss() / 2 ** 20,
    coordinatorPssMB: null,
    coordinatorCpuMs: 0,
  });
  report.simulated = true;
  report.traceDigest = clock.traceDigest();
  report.sim = { events: ran.events, virtualMs: Math.round(virtualMs), realMs: Math.round(performance.now() - real0), cpuMs: Math.round((cpu.user + cpu.system) / 1000) };
  if (trace && cfg.traceFile) report.trace = await closeTrace(cfg.traceFile, trace, { ok: report.ok, seed: cfg.seed, workers: cfg.workers, steps: cfg.steps, traceDigest: report.traceDigest }, hooks.log);
  if (cfg.htmlFile) await (await import('../coordinator/html/index.js')).writeRunHtml(cfg.htmlFile, report, machine, 0, virtualMs, hooks.log);
  return report;
}

/** Long enough for any run that is not stuck: every step, fault and wait the flags allow, with room. */
export function defaultVirtualLimit(cfg: RunConfig): number {
  const perStep = cfg.computeMs + 1000;
  const perFault = cfg.readyTimeoutMs + cfg.timeoutMs + cfg.heartbeatDeadMs + 2000;
  return 60_000 + cfg.steps * perStep + (cfg.faults.length + 1) * perFault;
}

function traceLabel(e: CoordinatorEvent): string {
  switch (e.type) {
    case 'message': {
      const m = e.msg as { type: string; epoch?: number; step?: number };
      return `m ${e.worker} ${m.type} ${m.epoch ?? ''} ${m.step ?? ''}`;
    }
    case 'joined':
      return `j ${e.worker.workerId}`;
    case 'exit':
      return `x ${e.worker}`;
    case 'timer':
      return `t ${e.name}`;
    case 'probed':
      return `p ${e.worker} ${e.state}`;
    case 'interrupt':
      return 'i';
    case 'error':
      return `e ${e.message}`;
    case 'inject':
      return `inject ${e.ref}`;
  }
}
