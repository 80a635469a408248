// The data of the HTML report and the live dashboard (a "view"), built from what the coordinator
// has: the run report, and what the report does not keep (each counted step's per-rank timings,
// when each fault struck and healed on the coordinator's clock, the injected stragglers' spans).
// Pure. Compact: numbers rounded to 3 significant digits, the heat map as flat arrays, so a
// 256-rank x 200-step run stays a few hundred KB.
import type { BenchReport, FaultReport, RunConfig, RunReport } from '../config.js';
import type { StepAgg } from '../ledger.js';
import type { CoordinatorMachine, RankTimes } from '../machine.js';
import type { JobStatus, RankState } from '../../protocol/operator.js';
import { RANK_STATES } from '../../protocol/operator.js';

export const VIEW_VERSION = 1;

/** x rounded to 3 significant digits (integers above 1000 to the unit). */
export function sig3(x: number): number {
  if (!Number.isFinite(x) || x === 0) return 0;
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x);
  const d = Math.max(0, 2 - Math.floor(Math.log10(a)));
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

/** A fault or straggler span on the step chart, in seconds since training started; `at` a mark inside it (the detection). */
export interface ViewWindow {
  kind: 'fault' | 'straggler';
  label: string;
  from: number;
  to: number;
  at: number | null;
}

export interface ViewFault {
  id: number | null;
  kind: string;
  where: string;
  step: number | null;
  phase: string | null;
  injected: boolean;
  live: boolean;
  struck: boolean;
  note: string | null;
  detectedBy: string | null;
  detectedAfterMs: number | null;
  located: string | null;
  action: string | null;
  restoredFrom: string | null;
  recoveredAfterMs: number | null;
  lostSteps: number | null;
  /** Healed: detected, and training resumed after it. */
  healed: boolean;
}

export interface ViewStraggler {
  kind: string;
  where: string;
  firstSeenStep: number;
  detectedAtStep: number;
  score: number;
  slowdown: number | null;
  action: string;
  injected: boolean;
  stepMsBefore: number | null;
  stepMsAfter: number | null;
}

export interface ViewInjectedStraggler {
  kind: string;
  where: string;
  atStep: number | null;
  struck: boolean;
  note: string | null;
  detectedAtStep: number | null;
}

/** The per-step series, one entry per counted step in step order (columns, not rows). */
export interface ViewSteps {
  step: number[];
  /** When the step was counted, seconds since training started. */
  t: number[];
  stepMs: number[];
  allreduceMs: number[];
  computeMs: number[];
  epoch: number[];
}

/**
 * Rank x step: `ranks` rows and a column per `stepGroup` entries of steps.step (rows group
 * `rankGroup` ranks: 1 up to HEAT_MAX_ROWS ranks); cell (column c, row r) at c * ranks + r, the
 * slowest of its group; null: no report. A live update carries the columns from `from` on.
 */
export interface ViewHeat {
  ranks: number;
  rankGroup: number;
  stepGroup: number;
  from: number;
  /** Per rank: compute + all-reduce (its step time). */
  stepMs: (number | null)[];
  computeMs: (number | null)[];
}

export interface RunView {
  kind: 'run';
  version: number;
  title: string;
  summary: {
    ok: boolean;
    error: string | null;
    interrupted: boolean;
    simulated: boolean;
    wrong: number;
    digest: string | null;
    seed: number;
    workers: number;
    cardsPerWorker: number;
    cards: number;
    bytesPerCard: number;
    dtype: string;
    op: string;
    algo: string[];
    stepsRequested: number;
    stepsCompleted: number;
    wallMs: number;
    startupMs: number;
    stepMsP50: number;
    allreduceMsP50: number;
    busbwGBps: number;
    algbwGBps: number;
    goodput: { productiveMs: number; wallMs: number; ratio: number; lostSteps: number; recomputedSteps: number };
    restarts: number;
    epochs: number;
  };
  steps: ViewSteps;
  heat: ViewHeat;
  windows: ViewWindow[];
  faults: ViewFault[];
  stragglers: ViewStraggler[];
  injectedStragglers: ViewInjectedStraggler[];
  epochs: { epoch: number; t: number; fromStep: number; reason: string; algo: string; workers: number }[];
  /** The live dashboard's rank grid: state per rank (an index into `states`), with its home and pid. */
  live: LiveStatus | null;
}

export interface LiveStatus {
  phase: string;
  epoch: number;
  step: number;
  states: readonly RankState[];
  /** Per rank of the current ring: index into `states`. */
  rankState: number[];
  home: number[];
  pid: number[];
  stuckAt: string | null;
  /** Seconds since training started (0 before). */
  t: number;
}

export interface BenchView {
  kind: 'bench';
  version: number;
  title: string;
  summary: { collective: string; workers: number; cardsPerWorker: number; avgBusbwGBps: number; startupMs: number; error: string | null; wrong: number; crossover: BenchReport['crossover'] | null };
  /** Per algorithm: sizes, measured busbw, and the model's busbw (from its predicted time; null without a prediction). */
  series: { algo: string; bytes: number[]; busbwGBps: number[]; modelBusbwGBps: (number | null)[]; timeUs: number[]; predictedUs: (number | null)[] }[];
}

export type View = RunView | BenchView;

/** What the view needs of the coordinator beyond the report (its machine is pure: read, not changed). */
export interface RunFacts {
  /** Counted steps with their aggregate, any order. */
  steps: [step: number, agg: StepAgg][];
  /** Coordinator time training started (0: it never did). */
  trainingStart: number;
  /** Coordinator time the run started (the report's epochs' startedAtMs count from it). */
  t0: number;
  /** Coordinator time now (the end of the run, for the report). */
  now: number;
  /** Per report fault, in order: when it struck on the coordinator's clock (null: from outside, or never). */
  faultInjectedAt: (number | null)[];
  /** The injected stragglers as configured (for their spans): same order as the report's injectedStragglers. */
  stragglerSpans: { atStep: number | null; steps: number | null }[];
  /** Per counted step, each rank's times (the machine keeps them for --html and --ui-port). */
  rankTimes: ReadonlyMap<number, RankTimes> | null;
}

/** The machine's facts for the view (a read of its public state). */
export function runFacts(m: CoordinatorMachine, t0: number, now: number): RunFacts {
  return {
    steps: [...m.steps.final.entries()],
    trainingStart: m.trainingStart,
    t0,
    now,
    faultInjectedAt: m.faults.map((f) => f.injectedAt),
    stragglerSpans: m.cfg.stragglers.map((s) => stragglerSpan(s, m.cfg)),
    rankTimes: m.rankTimes,
  };
}

function stragglerSpan(s: RunConfig['stragglers'][number], cfg: RunConfig): { atStep: number | null; steps: number | null } {
  if (s.kind === 'jitter') return { atStep: 0, steps: cfg.steps };
  const at = s.at && 'step' in s.at ? s.at.step : s.kind === 'pause' && !s.at ? 0 : null;
  return { atStep: at, steps: s.steps ?? null };
}

const whereOf = (x: { rank?: number; link?: [number, number] }): string => (x.link ? `link ${x.link[0]}->${x.link[1]}` : x.rank !== undefined ? `rank ${x.rank}` : 'every rank');

const secs = (ms: number) => Math.round(ms) / 1000;

function viewFault(f: FaultReport): ViewFault {
  return {
    id: f.id ?? null,
    kind: f.kind,
    where: whereOf(f),
    step: f.atStep,
    phase: f.phase,
    injected: f.injected,
    live: f.live === true,
    struck: f.struck,
    note: f.note ?? null,
    detectedBy: f.detectedBy,
    detectedAfterMs: f.detectedAfterMs,
    located: f.located,
    action: f.action,
    restoredFrom: f.restoredFrom,
    recoveredAfterMs: f.recoveredAfterMs,
    lostSteps: f.lostSteps,
    healed: f.detectedBy !== null && f.recoveredAfterMs !== null,
  };
}

/** The heat map's largest size: beyond it, ranks (or steps) are grouped, each cell the group's slowest. */
export const HEAT_MAX_ROWS = 512;
export const HEAT_MAX_COLUMNS = 1000;

/** The counted steps in order, as columns, and the rank x step heat map (its columns from `heatFrom` on, for a live update). */
export function stepSeries(facts: Pick<RunFacts, 'steps' | 'trainingStart' | 'rankTimes'>, workers: number, heatFrom = 0): { steps: ViewSteps; heat: ViewHeat } {
  const sorted = [...facts.steps].sort((a, b) => a[0] - b[0]);
  const steps: ViewSteps = { step: [], t: [], stepMs: [], allreduceMs: [], computeMs: [], epoch: [] };
  for (const [k, s] of sorted) {
    steps.step.push(k);
    steps.t.push(secs(Math.max(0, (s.doneAt ?? facts.trainingStart) - facts.trainingStart)));
    steps.stepMs.push(sig3(s.stepMs));
    steps.allreduceMs.push(sig3(s.allreduceMs));
    steps.computeMs.push(sig3(s.computeMs));
    steps.epoch.push(s.epoch ?? 0);
  }
  const { rankGroup, stepGroup } = heatGrouping(workers, sorted.length);
  const ranks = Math.ceil(workers / rankGroup);
  const columns = Math.ceil(sorted.length / stepGroup);
  const from = Math.min(heatFrom, columns);
  const heat: ViewHeat = { ranks, rankGroup, stepGroup, from, stepMs: [], computeMs: [] };
  const times = facts.rankTimes;
  for (let c = from; c < columns; c++) {
    const step = new Array<number>(ranks).fill(NaN);
    const compute = new Array<number>(ranks).fill(NaN);
    for (let i = c * stepGroup; i < Math.min(sorted.length, (c + 1) * stepGroup); i++) {
      const t = times?.get(sorted[i]![0]);
      if (!t) continue;
      for (let r = 0; r < Math.min(workers, t.computeMs.length); r++) {
        const g = Math.floor(r / rankGroup);
        const cm = t.computeMs[r]!;
        const st = cm + t.allreduceMs[r]!;
        // NaN (no report) loses every comparison: a group's slowest of those that reported.
        if (!(step[g]! >= st)) step[g] = st;
        if (!(compute[g]! >= cm)) compute[g] = cm;
      }
    }
    for (let g = 0; g < ranks; g++) {
      heat.stepMs.push(Number.isNaN(step[g]) ? null : sig3(step[g]!));
      heat.computeMs.push(Number.isNaN(compute[g]) ? null : sig3(compute[g]!));
    }
  }
  return { steps, heat };
}

/** Fault spans (struck to healed, the detection marked) and injected stragglers' spans (their first step's start to their last step's end), in seconds since training started. */
export function windowsOf(report: Pick<RunReport, 'faults' | 'injectedStragglers'>, facts: RunFacts, steps: ViewSteps): ViewWindow[] {
  const out: ViewWindow[] = [];
  const start = facts.trainingStart;
  const end = secs(Math.max(0, facts.now - start));
  report.faults.forEach((f, i) => {
    const at = facts.faultInjectedAt[i];
    if (at === null || at === undefined || !start) return;
    const from = secs(Math.max(0, at - start));
    out.push({
      kind: 'fault',
      label: `${f.kind} ${whereOf(f)}`,
      from,
      to: f.recoveredAfterMs !== null ? secs(at + f.recoveredAfterMs - start) : end,
      at: f.detectedAfterMs !== null ? secs(at + f.detectedAfterMs - start) : null,
    });
  });
  // A step's span on the clock: from its end less its time, to its end.
  const spanOf = (k: number, which: 'from' | 'to'): number | null => {
    const i = which === 'from' ? steps.step.findIndex((s) => s >= k) : findLastIndex(steps.step, (s) => s <= k);
    if (i < 0) return null;
    return which === 'from' ? Math.max(0, Math.round(steps.t[i]! * 1000 - steps.stepMs[i]!) / 1000) : steps.t[i]!;
  };
  report.injectedStragglers.forEach((s, i) => {
    const span = facts.stragglerSpans[i];
    if (!s.struck || !span || span.atStep === null) return;
    const from = spanOf(span.atStep, 'from');
    if (from === null) return;
    const last = span.steps === null ? Infinity : span.atStep + span.steps - 1;
    const to = last === Infinity ? end : (spanOf(last, 'to') ?? end);
    const det = s.detectedAtStep === null ? null : spanOf(s.detectedAtStep, 'to');
    out.push({ kind: 'straggler', label: `${s.kind} ${whereOf(s)}`, from, to: Math.max(from, to), at: det });
  });
  return out;
}

function findLastIndex<T>(a: readonly T[], p: (x: T) => boolean): number {
  for (let i = a.length - 1; i >= 0; i--) if (p(a[i]!)) return i;
  return -1;
}

/** The heat map's grouping for `workers` ranks and `steps` counted steps: a live update's columns follow on from the last one's only while it holds. */
export function heatGrouping(workers: number, steps: number): { rankGroup: number; stepGroup: number } {
  return { rankGroup: Math.ceil(workers / HEAT_MAX_ROWS), stepGroup: Math.ceil(steps / HEAT_MAX_COLUMNS) || 1 };
}

/** The run's view; its heat map from column `heatFrom` on (a live update: the columns before are the browser's already). */
export function buildRunView(report: RunReport, facts: RunFacts, title = 'ringswarm run', heatFrom = 0): RunView {
  const { steps, heat } = stepSeries(facts, report.workers, heatFrom);
  return {
    kind: 'run',
    version: VIEW_VERSION,
    title,
    summary: {
      ok: report.ok,
      error: report.error ?? null,
      interrupted: report.interrupted === true,
      simulated: report.simulated === true,
      wrong: report.wrong,
      digest: report.stateDigest,
      seed: report.seed,
      workers: report.workers,
      cardsPerWorker: report.cardsPerWorker,
      cards: report.cards,
      bytesPerCard: report.bytesPerCard,
      dtype: report.dtype,
      op: report.op,
      algo: report.algo,
      stepsRequested: report.stepsRequested,
      stepsCompleted: report.stepsCompleted,
      wallMs: report.wallMs,
      startupMs: report.startupMs,
      stepMsP50: sig3(report.stepMs.p50),
      allreduceMsP50: sig3(report.allreduceMs.p50),
      busbwGBps: sig3(report.busbwGBps),
      algbwGBps: sig3(report.algbwGBps),
      goodput: { ...report.goodput, ratio: sig3(report.goodput.ratio) },
      restarts: report.restarts,
      epochs: report.epochs.length,
    },
    steps,
    heat,
    windows: windowsOf(report, facts, steps),
    faults: report.faults.map(viewFault),
    stragglers: report.stragglers.map((s) => ({
      kind: s.kind,
      where: whereOf(s),
      firstSeenStep: s.firstSeenStep,
      detectedAtStep: s.detectedAtStep,
      score: sig3(s.score),
      slowdown: s.slowdown === null ? null : sig3(s.slowdown),
      action: s.action,
      injected: s.injected,
      stepMsBefore: s.stepMsBefore === null ? null : sig3(s.stepMsBefore),
      stepMsAfter: s.stepMsAfter === null ? null : sig3(s.stepMsAfter),
    })),
    injectedStragglers: report.injectedStragglers.map((s) => ({ kind: s.kind, where: whereOf(s), atStep: s.atStep, struck: s.struck, note: s.note ?? null, detectedAtStep: s.detectedAtStep })),
    epochs: report.epochs.map((e) => ({
      epoch: e.epoch,
      t: facts.trainingStart ? secs(Math.max(0, facts.t0 + e.startedAtMs - facts.trainingStart)) : 0,
      fromStep: e.fromStep,
      reason: e.reason,
      algo: e.algo,
      workers: e.members.length,
    })),
    live: null,
  };
}

/** The live grid from a status snapshot: one small integer per rank. */
export function liveStatus(s: JobStatus, trainingStart: number, now: number): LiveStatus {
  return {
    phase: s.phase,
    epoch: s.epoch,
    step: s.step,
    states: RANK_STATES,
    rankState: s.ranks.map((r) => RANK_STATES.indexOf(r.state)),
    home: s.ranks.map((r) => r.home),
    pid: s.ranks.map((r) => r.pid),
    stuckAt: s.stuckAt,
    t: trainingStart ? secs(Math.max(0, now - trainingStart)) : 0,
  };
}

/** The bench report as a view: per algorithm, busbw against size, measured and as the model predicts. */
export function buildBenchView(report: BenchReport, title = 'ringswarm bench'): BenchView {
  const algos = [...new Set(report.rows.map((r) => r.algo ?? 'ring'))];
  // busbw = algbw * factor, algbw = bytes / time: the model's busbw is the measured one scaled by measured / predicted time.
  const series = algos.map((algo) => {
    const rows = report.rows.filter((r) => (r.algo ?? 'ring') === algo).sort((a, b) => a.bytes - b.bytes);
    return {
      algo,
      bytes: rows.map((r) => r.bytes),
      busbwGBps: rows.map((r) => sig3(r.busbwGBps)),
      modelBusbwGBps: rows.map((r) => (r.predictedUs && r.timeUs > 0 ? sig3((r.busbwGBps * r.timeUs) / r.predictedUs) : null)),
      timeUs: rows.map((r) => sig3(r.timeUs)),
      predictedUs: rows.map((r) => (r.predictedUs === undefined ? null : sig3(r.predictedUs))),
    };
  });
  return {
    kind: 'bench',
    version: VIEW_VERSION,
    title,
    summary: {
      collective: report.collective,
      workers: report.workers,
      cardsPerWorker: report.cardsPerWorker,
      avgBusbwGBps: sig3(report.avgBusbwGBps),
      startupMs: Math.round(report.startupMs),
      error: report.error ?? null,
      wrong: report.rows.reduce((a, r) => a + r.wrong, 0),
      crossover: report.crossover ?? null,
    },
    series,
  };
}
