// The run report, built from the coordinator machine's state and what only the driver knows (its
// own memory and CPU, the control URL, connections refused at the door). Pure.
import { busBandwidthFactor } from '../collective/index.js';
import { predictAllreduce, type FabricModel } from '../collective/model.js';
import type { AllreduceAlgo } from '../collective/types.js';
import { jobDigest } from '../collective/digest.js';
import { quantiles, type Goodput, type RunReport } from './config.js';
import type { CoordinatorMachine } from './machine.js';

export interface DriverFacts {
  now: number;
  controlUrl: string;
  rejectedConnections: number;
  coordinatorRssMB: number;
  coordinatorPssMB: number | null;
  coordinatorCpuMs: number;
  /** Bytes of the run's shared checkpoint slots at the end (absent: the copies went as frames). */
  checkpointSlotBytes?: number;
}

/** nccl-tests' bandwidths of an all-reduce of `bytesPerCard` in `allreduceMs` on `workers` ranks, GB/s: algbw, and busbw = algbw * 2(n-1)/n. */
export function allreduceBandwidthGBps(bytesPerCard: number, allreduceMs: number, workers: number): { algbw: number; busbw: number } {
  const algbw = allreduceMs > 0 ? bytesPerCard / (allreduceMs / 1000) / 1e9 : 0;
  return { algbw, busbw: algbw * busBandwidthFactor('allreduce', workers) };
}

/** Goodput so far: the time of the counted steps over the time since training started. */
export function goodputOf(m: CoordinatorMachine, now: number): Goodput {
  const trainingMs = m.trainingStart ? now - m.trainingStart : 0;
  const productiveMs = m.productiveMs();
  return {
    productiveMs: Math.round(productiveMs),
    wallMs: Math.round(trainingMs),
    ratio: trainingMs > 0 ? Math.min(1, productiveMs / trainingMs) : 0,
    lostSteps: m.lostStepsTotal,
    recomputedSteps: Math.max(0, m.steps.runs - m.steps.final.size),
  };
}

export function buildReport(m: CoordinatorMachine, fabric: FabricModel, algoFor: (w: number) => AllreduceAlgo, t0: number, facts: DriverFacts): RunReport {
  const cfg = m.cfg;
  const allDone = m.allDone;
  const cardDigests = allDone ? [...m.digests.entries()].sort((a, b) => a[0] - b[0]).flatMap(([, d]) => d) : [];
  const steps = [...m.steps.final.entries()].sort((a, b) => a[0] - b[0]).map(([, s]) => s);
  const ar = quantiles(steps.map((s) => s.allreduceMs));
  const bw = allreduceBandwidthGBps(cfg.bytesPerCard, ar.p50, m.W);
  const wrong = m.wrong;
  const ok = m.ok;
  const wallMs = Math.round(facts.now - t0);
  const p = predictAllreduce(m.epochs[0]?.algo ?? algoFor(cfg.workers), cfg.workers, cfg.cardsPerWorker, cfg.bytesPerCard, fabric);
  const round3 = (x: number) => Math.round(x * 1000) / 1000;
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
    stepsCompleted: m.steps.final.size,
    wrong,
    stateDigest: allDone ? jobDigest(cardDigests) : null,
    controlUrl: facts.controlUrl,
    startupMs: Math.round(m.startupMs),
    wallMs,
    stepMs: quantiles(steps.map((s) => s.stepMs)),
    allreduceMs: ar,
    computeMs: quantiles(steps.map((s) => s.computeMs)),
    algbwGBps: bw.algbw,
    busbwGBps: bw.busbw,
    algo: [...new Set(m.epochs.map((e) => e.algo))],
    link: cfg.link,
    model: {
      predictedAllreduceMs: round3(p.totalUs / 1000),
      predictedInterMs: round3(p.interUs / 1000),
      predictedIntraMs: round3(p.intraUs / 1000),
      measuredAllreduceMs: round3(ar.p50),
      ratio: p.totalUs > 0 && ar.p50 > 0 ? Math.round((ar.p50 / (p.totalUs / 1000)) * 100) / 100 : null,
    },
    memory: {
      coordinatorRssMB: Math.round(facts.coordinatorRssMB),
      workerRssMBMax: Math.round(m.workerRssMBMax),
      workerRssMBTotal: Math.round([...m.rssByRank.values()].reduce((a, b) => a + b, 0)),
      // RSS counts the pages workers share (node's code) once per process; PSS splits them.
      workerPssMBTotal: m.pssByRank.size ? Math.round([...m.pssByRank.values()].reduce((a, b) => a + b, 0)) : null,
      coordinatorPssMB: facts.coordinatorPssMB === null ? null : Math.round(facts.coordinatorPssMB),
      checkpointSlotsMB: facts.checkpointSlotBytes === undefined ? null : Math.round(facts.checkpointSlotBytes / 2 ** 20),
    },
    coordinatorCpu: { ms: Math.round(facts.coordinatorCpuMs), share: wallMs > 0 ? Math.round((facts.coordinatorCpuMs / wallMs) * 1000) / 1000 : 0 },
    processes: m.everyone
      .filter((x) => x.rank >= 0)
      .sort((a, b) => a.rank - b.rank)
      .map((x) => ({ rank: x.rank, pid: x.pid, workerId: x.workerId, spawned: x.spawned, host: x.host ?? 'localhost', dataUrl: x.dataUrl, launcher: x.launcher ?? { kind: x.spawned ? 'spawned' : 'flag', rank: null } })),
    rejectedConnections: facts.rejectedConnections + m.rejected,
    faults: m.faultReports(),
    injectedStragglers: m.injected.map((s) => ({ ...s })),
    stragglers: m.stragglers,
    epochs: m.epochs,
    goodput: goodputOf(m, facts.now),
    restarts: m.restarts,
  };
  if (!ok) r.error = m.failure ?? (m.interrupted ? 'interrupted' : wrong > 0 ? `${wrong} wrong elements` : 'incomplete');
  if (m.interrupted) r.interrupted = true;
  return r;
}
