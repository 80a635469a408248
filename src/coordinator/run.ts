// `ringswarm run`: launch a swarm, train for N steps, verify every op, report.
import { elementBytes } from '../collective/dtypes.js';
import { busBandwidthFactor } from '../collective/index.js';
import type { JobSpec } from '../protocol/control.js';
import { isRingswarmError } from '../protocol/errors.js';
import { jobDigest } from '../worker/cards.js';
import { quantiles, type RunConfig, type RunReport } from './config.js';
import { Swarm } from './swarm.js';

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
  };
}

export async function runJob(cfg: RunConfig, hooks: RunHooks, signal?: AbortSignal): Promise<RunReport> {
  const t0 = performance.now();
  const eb = elementBytes(cfg.dtype);
  if (cfg.bytesPerCard % eb !== 0) throw new RangeError(`--size ${cfg.bytesPerCard} is not a whole number of ${cfg.dtype} elements (${eb} bytes each)`);
  const swarm = new Swarm({ workers: cfg.workers, spawn: cfg.spawn, host: cfg.host, port: cfg.port, token: cfg.token, readyTimeoutMs: cfg.readyTimeoutMs, log: hooks.log });
  const steps = new Map<number, StepAgg>();
  const completed: StepAgg[] = [];
  const digests = new Map<number, string[]>();
  let workerRssMBMax = 0;
  const rssByRank = new Map<number, number>();
  let startupMs = 0;
  let coordinatorRssMB = process.memoryUsage.rss() / 2 ** 20;
  let failure: string | undefined;
  let interrupted = false;

  const report = (): RunReport => {
    const allDone = digests.size === cfg.workers;
    const cardDigests = allDone ? [...digests.entries()].sort((a, b) => a[0] - b[0]).flatMap(([, d]) => d) : [];
    const ar = quantiles(completed.map((s) => s.allreduceMs));
    const algbw = ar.p50 > 0 ? cfg.bytesPerCard / (ar.p50 / 1000) / 1e9 : 0;
    const wrong = completed.reduce((a, s) => a + s.wrong, 0);
    const ok = !failure && !interrupted && allDone && completed.length === cfg.steps && wrong === 0;
    coordinatorRssMB = Math.max(coordinatorRssMB, process.memoryUsage.rss() / 2 ** 20);
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
      stepsCompleted: completed.length,
      wrong,
      stateDigest: allDone ? jobDigest(cardDigests) : null,
      controlUrl: swarm.controlUrl,
      startupMs: Math.round(startupMs),
      wallMs: Math.round(performance.now() - t0),
      stepMs: quantiles(completed.map((s) => s.stepMs)),
      allreduceMs: ar,
      computeMs: quantiles(completed.map((s) => s.computeMs)),
      algbwGBps: algbw,
      busbwGBps: algbw * busBandwidthFactor('allreduce', cfg.workers),
      memory: {
        coordinatorRssMB: Math.round(coordinatorRssMB),
        workerRssMBMax: Math.round(workerRssMBMax),
        workerRssMBTotal: Math.round([...rssByRank.values()].reduce((a, b) => a + b, 0)),
      },
      processes: swarm.members.map((m) => ({ rank: m.rank, pid: m.pid, workerId: m.workerId, spawned: m.spawned })),
      rejectedConnections: swarm.rejectedConnections,
    };
    if (!ok) r.error = failure ?? (interrupted ? 'interrupted' : wrong > 0 ? `${wrong} wrong elements` : 'incomplete');
    if (interrupted) r.interrupted = true;
    return r;
  };

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

  let ready = 0;
  let resolveReady!: () => void;
  const allReady = new Promise<void>((r) => (resolveReady = r));

  swarm.onEvent((e) => {
    if (e.type === 'lost') return fail(`${e.why} (rank ${e.member.rank})`);
    const { member, msg } = e;
    switch (msg.type) {
      case 'ready':
        if (++ready === cfg.workers) resolveReady();
        return;
      case 'heartbeat':
        member.rssMB = msg.rssMB;
        rssByRank.set(member.rank, msg.rssMB);
        workerRssMBMax = Math.max(workerRssMBMax, msg.rssMB);
        return;
      case 'step': {
        rssByRank.set(member.rank, msg.rssMB);
        workerRssMBMax = Math.max(workerRssMBMax, msg.rssMB);
        const s = steps.get(msg.step) ?? { reports: 0, wrong: 0, stepMs: 0, allreduceMs: 0, computeMs: 0 };
        s.reports++;
        s.wrong += msg.wrong;
        s.stepMs = Math.max(s.stepMs, msg.timings.stepMs);
        s.allreduceMs = Math.max(s.allreduceMs, msg.timings.allreduceMs);
        s.computeMs = Math.max(s.computeMs, msg.timings.computeMs);
        steps.set(msg.step, s);
        if (s.reports === cfg.workers) {
          steps.delete(msg.step);
          completed.push(s);
          coordinatorRssMB = Math.max(coordinatorRssMB, process.memoryUsage.rss() / 2 ** 20);
          hooks.progress(
            `step ${completed.length}/${cfg.steps}  step ${s.stepMs.toFixed(1)} ms  all-reduce ${s.allreduceMs.toFixed(1)} ms  wrong ${s.wrong}`,
          );
        }
        return;
      }
      case 'done':
        workerRssMBMax = Math.max(workerRssMBMax, msg.rssMBMax);
        digests.set(member.rank, msg.cardDigests);
        if (digests.size === cfg.workers) finish();
        return;
      case 'failed':
        return fail(`rank ${member.rank} (${member.workerId}): ${msg.code}: ${msg.message}`);
      default:
        return;
    }
  });

  try {
    await swarm.listen();
    hooks.listening?.(swarm.controlUrl, swarm.token);
    swarm.spawnWorkers();
    const joined = await Promise.race([swarm.rendezvous(jobSpec(cfg)).then(() => true), finished.then(() => false)]);
    if (joined) {
      await Promise.race([allReady, finished]);
      if (!failure && !interrupted) {
        startupMs = performance.now() - t0;
        hooks.progress(`${cfg.workers} workers ready in ${Math.round(startupMs)} ms; training ${cfg.steps} steps`);
        swarm.broadcast({ type: 'start', epoch: swarm.epoch, fromStep: 0 });
        await finished;
      }
    }
  } catch (e) {
    failure ??= isRingswarmError(e) ? `${e.code}: ${e.message}` : String(e);
  }
  signal?.removeEventListener('abort', onAbort);
  const r = report();
  if (interrupted || failure) await swarm.kill();
  else await swarm.close('run finished');
  r.wallMs = Math.round(performance.now() - t0);
  return r;
}
