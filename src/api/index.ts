// The scripting API: `import { run, sim, bench, plan, startRun } from 'ringswarm'`. The CLI is built on it.
import { EventEmitter } from 'node:events';
import { BENCH_DEFAULTS, type BenchConfig, type BenchReport, type RunReport } from '../coordinator/config.js';
import { runBench } from '../coordinator/bench.js';
import { plan as planRows, referencePoints, type PlanRow, type ReferencePoint } from '../coordinator/plan.js';
import { runJob, type RunControl, type RunEvent, type RunHooks } from '../coordinator/run.js';
import type { JobStatus, RankStatus } from '../protocol/operator.js';
import type { FaultInput } from '../coordinator/scenario/index.js';
import type { FaultReport } from '../coordinator/config.js';
import { simJob } from '../sim/sim.js';
import { RingswarmUsageError } from './errors.js';
import { checkChunk, htmlFile, linkSpec, runConfig, traceFileOf, type RunOptions, type Size } from './options.js';
import { parseSize } from '../protocol/units.js';
import { elementBytes } from '../collective/dtypes.js';

export { RingswarmUsageError, runConfig };
export type { BenchReport, FaultInput, FaultReport, JobStatus, PlanRow, RankStatus, ReferencePoint, RunEvent, RunOptions, RunReport, Size };

export interface JobHooks {
  log?(line: string): void;
  progress?(line: string): void;
  /** run and startRun: the control URL and token, once the coordinator listens (for `ringswarm status`, or workers that join by themselves). */
  listening?(url: string, token: string): void;
}

function hooksOf(h: JobHooks = {}): RunHooks {
  return { log: h.log ?? (() => {}), progress: h.progress ?? (() => {}), ...(h.listening ? { listening: h.listening } : {}) };
}

/** A swarm of worker processes for `steps` steps; resolves to the run's report. */
export async function run(options: RunOptions = {}, hooks?: JobHooks & { signal?: AbortSignal }): Promise<RunReport> {
  return runJob(await runConfig(options, 'run'), hooksOf(hooks), hooks?.signal);
}

/** The same job in one process on a virtual clock. */
export async function sim(options: RunOptions & { maxVirtualMs?: number } = {}, hooks?: JobHooks): Promise<RunReport> {
  return simJob(await runConfig(options, 'sim'), hooksOf(hooks), { maxVirtualMs: options.maxVirtualMs });
}

export interface BenchOptions extends Partial<Omit<BenchConfig, 'minBytes' | 'maxBytes' | 'chunkBytes' | 'link' | 'traceFile' | 'htmlFile'>> {
  /** Write the bench's timeline to this file (Chrome trace-event JSON). */
  trace?: string;
  /** Write the self-contained HTML report (bus bandwidth against size, with the model's) here at the end. */
  html?: string;
  minBytes?: Size;
  maxBytes?: Size;
  chunk?: Size;
  linkLatencyUs?: number;
  linkBandwidth?: Size;
  intraBandwidth?: Size;
}

const bytes = (flag: string, v: Size): number => {
  try {
    return typeof v === 'number' ? parseSize(String(v)) : parseSize(v);
  } catch (e) {
    throw new RingswarmUsageError(`${flag} ${v}: ${(e as Error).message}`);
  }
};

export function benchConfig(o: BenchOptions = {}): BenchConfig {
  const { minBytes, maxBytes, chunk, linkLatencyUs, linkBandwidth, intraBandwidth, trace, html, ...rest } = o;
  const cfg: BenchConfig = {
    ...BENCH_DEFAULTS,
    ...rest,
    minBytes: minBytes === undefined ? BENCH_DEFAULTS.minBytes : bytes('--min-bytes', minBytes),
    maxBytes: maxBytes === undefined ? BENCH_DEFAULTS.maxBytes : bytes('--max-bytes', maxBytes),
    chunkBytes: chunk === undefined ? BENCH_DEFAULTS.chunkBytes : bytes('--chunk', chunk),
    link: linkSpec({ linkLatencyUs, linkBandwidth, intraBandwidth }),
    traceFile: traceFileOf(trace),
    htmlFile: htmlFile(html),
  };
  if (cfg.minBytes > cfg.maxBytes) throw new RingswarmUsageError(`--min-bytes ${cfg.minBytes} is larger than --max-bytes ${cfg.maxBytes}`);
  checkChunk(cfg.chunkBytes, cfg.dtype);
  if (cfg.maxBytes < elementBytes(cfg.dtype)) throw new RingswarmUsageError(`--max-bytes ${cfg.maxBytes} holds no ${cfg.dtype} element`);
  return cfg;
}

/** A collective measured over a range of sizes. */
export async function bench(options: BenchOptions = {}, hooks: JobHooks = {}): Promise<BenchReport> {
  const log = hooks.log ?? (() => {});
  return runBench(benchConfig(options), { log, header: log, row: log, ...(hooks.progress ? { progress: hooks.progress } : {}) });
}

export interface PlanOptions {
  cards: number;
  cardMtbfHours: number;
  checkpointMs: number;
  recoveryMs: number;
  stepMs?: number;
}

/** MTBF, the Young/Daly checkpoint interval and effective training time at 1,000 to 100,000 cards. */
export function plan(o: PlanOptions): { rows: PlanRow[]; references: ReferencePoint[] } {
  try {
    const rows = planRows({ cards: o.cards, cardMtbfHours: o.cardMtbfHours, checkpointS: o.checkpointMs / 1000, recoveryS: o.recoveryMs / 1000, stepS: o.stepMs === undefined ? null : o.stepMs / 1000 });
    return { rows, references: referencePoints(o.checkpointMs / 1000, o.recoveryMs / 1000) };
  } catch (e) {
    if (e instanceof RangeError) throw new RingswarmUsageError(e.message);
    throw e;
  }
}

type EventPayload<K extends RunEvent['type']> = Omit<Extract<RunEvent, { type: K }>, 'type'>;

export interface LiveRun {
  on<K extends RunEvent['type']>(event: K, fn: (e: EventPayload<K>) => void): LiveRun;
  /**
   * A fault into the running job: the --inject shorthand without a trigger strikes now
   * ('kill:rank=3'), with `step=N` at that step; or a scenario entry. Ranks are ranks at launch.
   * Resolves with its id and report entry; rejects with RingswarmUsageError saying why not.
   */
  inject(fault: string | FaultInput): Promise<{ id: number; fault: FaultReport }>;
  /** What `ringswarm status` shows; null until the coordinator is up. */
  status(): JobStatus | null;
  /** Stop the run: `done` then resolves to a partial report (interrupted: true). */
  stop(): void;
  done: Promise<RunReport>;
}

/** A run as a live job: events, status, stop, and `done` (its report). Option errors reject `done`. */
export function startRun(options: RunOptions = {}, hooks?: JobHooks & { signal?: AbortSignal }): LiveRun {
  const events = new EventEmitter();
  const ctl = new AbortController();
  hooks?.signal?.addEventListener('abort', () => ctl.abort(), { once: true });
  if (hooks?.signal?.aborted) ctl.abort();
  let control: RunControl | null = null;
  const done = runConfig(options, 'run').then((cfg) =>
    runJob(
      cfg,
      {
        ...hooksOf(hooks),
        event: ({ type, ...payload }) => events.emit(type, payload),
        control: (c) => (control = c),
      },
      ctl.signal,
    ),
  );
  const live: LiveRun = {
    on: (event, fn) => {
      events.on(event, fn);
      return live;
    },
    inject: (fault) => (control ? control.inject(fault) : Promise.reject(new RingswarmUsageError('the run has not started yet (its options are still being checked)'))),
    status: () => control?.status() ?? null,
    stop: () => ctl.abort(),
    done,
  };
  return live;
}
