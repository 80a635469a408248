// The API's options (the CLI's flags in camelCase) to a checked RunConfig: one implementation for the CLI and scripts.
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ADVERTISE_ENV } from './launcher.js';
import { elementBytes, type DType, type ReduceOp } from '../collective/dtypes.js';
import type { AllreduceAlgo } from '../collective/types.js';
import { CHECKPOINT_COPIES, RUN_DEFAULTS, type FailurePolicy, type LinkSpec, type RunConfig } from '../coordinator/config.js';
import { checkScenarioSize, parseInjects, parseScenario, scenarioForRun, ScenarioError, type Fault, type Scenario, type StragglerFault } from '../coordinator/scenario/index.js';
import { dtype, host, intIn, kOfM, numberIn, rate, reduceOp, runAlgo, size } from './flags.js';
import { RingswarmUsageError } from './errors.js';
import { MAX_SIM_WORKERS, MAX_WORKERS } from './limits.js';
import { externalAddress, isWildcard } from './address.js';

export { MAX_SIM_WORKERS, MAX_WORKERS } from './limits.js';
export { externalAddress, isWildcard } from './address.js';

/** Bytes, or a size string with a suffix ('64KiB', '1M'). */
export type Size = number | string;

export interface RunOptions {
  workers?: number;
  cardsPerWorker?: number;
  size?: Size;
  dtype?: DType;
  op?: ReduceOp;
  steps?: number;
  computeMs?: number;
  chunk?: Size;
  seed?: number;
  timeoutMs?: number;
  readyTimeoutMs?: number;
  /** A scenario file (YAML or JSON), or the scenario itself. */
  scenario?: string | Record<string, unknown>;
  /** Faults in shorthand: 'kill:rank=3:step=4'. */
  inject?: string[];
  onFailure?: FailurePolicy;
  spares?: number;
  onStraggler?: RunConfig['onStraggler'];
  stragglerThreshold?: number;
  /** 'k/m' or [k, m]. */
  stragglerPersist?: string | [number, number];
  maxRestarts?: number;
  checkpointEvery?: number;
  checkpointDir?: string;
  /** How checkpoint copies reach the next rank (--checkpoint-copy): 'auto' (default), 'shm' or 'net'. */
  checkpointCopy?: RunConfig['checkpointCopy'];
  heartbeatMs?: number;
  heartbeatTimeoutMs?: number;
  algo?: AllreduceAlgo | 'auto';
  tuning?: string[];
  linkLatencyUs?: number;
  linkBandwidth?: Size;
  intraBandwidth?: Size;
  /** run only: */
  port?: number;
  /** Prometheus metrics at http://127.0.0.1:metricsPort/metrics while the run lasts (0: any free port; the URL is logged). */
  metricsPort?: number;
  /** The live dashboard at http://127.0.0.1:uiPort/ while the run lasts (0: any free port; the URL is logged). run only. */
  uiPort?: number;
  /** run and sim: write the self-contained HTML report here at the end (its folder is created). */
  html?: string;
  host?: string;
  /** The address workers and peers dial (default: RINGSWARM_ADVERTISE_ADDR, else host; for 0.0.0.0 this host's first external IPv4). */
  advertise?: string;
  /** A lost worker not spawned here: how long restart waits for its launcher to bring one back, ms. */
  rejoinTimeoutMs?: number;
  /** The nice value of spawned workers, 0-19, or 'auto' (the default: 15 beyond 8 workers a core, else 0): the coordinator and its operator stay responsive on a full machine. */
  workerNice?: number | 'auto';
  spawn?: number;
  token?: string;
  checksum?: 'crc32c' | 'none';
  /** Write the run's timeline to this file (Chrome trace-event JSON: ui.perfetto.dev, chrome://tracing). */
  trace?: string;
}

/** A flag's value through the CLI's own parser (numbers as their text), its error as a usage error. */
function flag<T>(name: string, v: unknown, parse: (t: string) => T): T {
  try {
    return parse(String(v));
  } catch (e) {
    throw new RingswarmUsageError(`${name} ${String(v)}: ${(e as Error).message}`);
  }
}

function oneOfFlag<T extends string>(name: string, v: unknown, values: readonly T[]): T {
  if (!(values as readonly unknown[]).includes(v)) throw new RingswarmUsageError(`${name} ${String(v)}: expected one of ${values.join(', ')}`);
  return v as T;
}

/** The job of `run` or `sim`, checked as one. */
export async function runConfig(o: RunOptions, kind: 'run' | 'sim' = 'run'): Promise<RunConfig> {
  const max = kind === 'run' ? MAX_WORKERS : MAX_SIM_WORKERS;
  const d = RUN_DEFAULTS;
  const workers = flag('--workers', o.workers ?? d.workers, intIn(1, max));
  const seed = flag('--seed', o.seed ?? d.seed, intIn(0, 2 ** 31 - 1));
  const steps = flag('--steps', o.steps ?? d.steps, intIn(0));
  const persist = o.stragglerPersist;
  const { faults, stragglers } = await loadFaults(o.scenario, o.inject ?? [], { seed, workers, steps });
  const cfg: RunConfig = {
    ...d,
    workers,
    spawn: o.spawn === undefined ? workers : flag('--spawn', o.spawn, intIn(0, MAX_WORKERS)),
    cardsPerWorker: flag('--cards-per-worker', o.cardsPerWorker ?? d.cardsPerWorker, intIn(1, 1 << 16)),
    bytesPerCard: flag('--size', o.size ?? d.bytesPerCard, size),
    dtype: flag('--dtype', o.dtype ?? d.dtype, dtype),
    op: flag('--op', o.op ?? d.op, reduceOp),
    steps,
    computeMs: flag('--compute-ms', o.computeMs ?? d.computeMs, numberIn(0, 3_600_000)),
    chunkBytes: flag('--chunk', o.chunk ?? d.chunkBytes, size),
    seed,
    timeoutMs: flag('--timeout-ms', o.timeoutMs ?? d.timeoutMs, intIn(1, 86_400_000)),
    port: flag('--port', o.port ?? d.port, intIn(0, 65535)),
    metricsPort: o.metricsPort === undefined || o.metricsPort === null ? d.metricsPort : flag('--metrics-port', o.metricsPort, intIn(0, 65535)),
    htmlFile: htmlFile(o.html),
    uiPort: o.uiPort === undefined || o.uiPort === null ? d.uiPort : flag('--ui-port', o.uiPort, intIn(0, 65535)),
    host: flag('--host', o.host ?? d.host, host),
    advertise: advertiseOf(o.host ?? d.host, o.advertise ?? process.env[ADVERTISE_ENV]),
    rejoinTimeoutMs: flag('--rejoin-timeout-ms', o.rejoinTimeoutMs ?? d.rejoinTimeoutMs, intIn(1, 86_400_000)),
    workerNice: o.workerNice === undefined || o.workerNice === 'auto' ? d.workerNice : flag('--worker-nice', o.workerNice, intIn(0, 19)),
    token: o.token,
    readyTimeoutMs: flag('--ready-timeout-ms', o.readyTimeoutMs ?? d.readyTimeoutMs, intIn(1, 3_600_000)),
    checksums: oneOfFlag('--checksum', o.checksum ?? 'crc32c', ['crc32c', 'none']) === 'crc32c',
    faults,
    stragglers,
    onStraggler: oneOfFlag('--on-straggler', o.onStraggler ?? d.onStraggler, ['report', 'evict', 'reroute']),
    stragglerThreshold: flag('--straggler-threshold', o.stragglerThreshold ?? d.stragglerThreshold, numberIn(1.01, 100)),
    stragglerPersist: persist === undefined ? d.stragglerPersist : flag('--straggler-persist', Array.isArray(persist) ? persist.join('/') : persist, kOfM),
    onFailure: oneOfFlag('--on-failure', o.onFailure ?? d.onFailure, ['restart', 'spare', 'shrink', 'abort']),
    spares: flag('--spares', o.spares ?? d.spares, intIn(0, max)),
    maxRestarts: flag('--max-restarts', o.maxRestarts ?? d.maxRestarts, intIn(0, 1_000_000)),
    checkpointEvery: flag('--checkpoint-every', o.checkpointEvery ?? d.checkpointEvery, intIn(0)),
    checkpointDir: o.checkpointDir ? resolve(o.checkpointDir) : null,
    checkpointCopy: oneOfFlag('--checkpoint-copy', o.checkpointCopy ?? d.checkpointCopy, CHECKPOINT_COPIES),
    heartbeatMs: flag('--heartbeat-ms', o.heartbeatMs ?? d.heartbeatMs, intIn(1, 60_000)),
    heartbeatDeadMs: flag('--heartbeat-timeout-ms', o.heartbeatTimeoutMs ?? d.heartbeatDeadMs, intIn(1, 3_600_000)),
    algo: flag('--algo', o.algo ?? d.algo, runAlgo),
    crossovers: await loadTuning(o.tuning ?? []),
    link: linkSpec(o),
    traceFile: traceFileOf(o.trace),
  };
  if (cfg.onFailure === 'shrink' && (cfg.op === 'min' || cfg.op === 'max')) {
    throw new RingswarmUsageError(`--on-failure shrink needs --op sum, avg or prod: with ${cfg.op} the result without the lost cards cannot be checked from the closed form`);
  }
  if (cfg.onFailure === 'spare' && cfg.spares === 0) throw new RingswarmUsageError('--on-failure spare needs --spares N (N >= 1)');
  if (cfg.spares > 0 && cfg.onFailure !== 'spare') throw new RingswarmUsageError(`--spares ${cfg.spares} is only used with --on-failure spare`);
  if (cfg.heartbeatDeadMs <= cfg.heartbeatMs) throw new RingswarmUsageError(`--heartbeat-timeout-ms ${cfg.heartbeatDeadMs} must be longer than --heartbeat-ms ${cfg.heartbeatMs}`);
  checkElements('--size', cfg.bytesPerCard, cfg.dtype);
  checkChunk(cfg.chunkBytes, cfg.dtype);
  if (cfg.metricsPort !== null && kind === 'sim') throw new RingswarmUsageError('--metrics-port is for run: a sim has no live job to scrape');
  if (cfg.metricsPort !== null && cfg.metricsPort !== 0 && cfg.metricsPort === cfg.port) throw new RingswarmUsageError(`--metrics-port ${cfg.metricsPort} is the control --port too`);
  if (cfg.uiPort !== null && kind === 'sim') throw new RingswarmUsageError('--ui-port is for run: a sim has no live job to watch (use --html)');
  if (cfg.uiPort !== null && cfg.uiPort !== 0 && (cfg.uiPort === cfg.port || cfg.uiPort === cfg.metricsPort)) throw new RingswarmUsageError(`--ui-port ${cfg.uiPort} is the ${cfg.uiPort === cfg.port ? 'control --port' : '--metrics-port'} too`);
  if (cfg.spawn > cfg.workers) throw new RingswarmUsageError(`--spawn ${cfg.spawn} is more than --workers ${cfg.workers}`);
  return cfg;
}

/** `--html FILE`: an absolute path, or null; an empty or non-string one is refused. */
export function htmlFile(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || v.trim() === '') throw new RingswarmUsageError(`--html ${String(v)}: expected a file path`);
  return resolve(v);
}

/** The address to advertise: the one given, else for a wildcard bind this host's external one; null: the bound address itself. */
function advertiseOf(bind: string, given: string | undefined): string | null {
  if (given !== undefined && given.trim() !== '') return flag('--advertise', given.trim(), host);
  return isWildcard(bind) ? externalAddress() : null;
}

/** --trace FILE, resolved; an empty or non-string value is refused. */
export function traceFileOf(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || v.trim() === '') throw new RingswarmUsageError(`--trace ${String(v)}: expected the path of the file to write`);
  return resolve(v);
}

export function linkSpec(o: { linkLatencyUs?: number; linkBandwidth?: Size; intraBandwidth?: Size }): LinkSpec {
  return {
    latencyUs: flag('--link-latency-us', o.linkLatencyUs ?? 0, numberIn(0, 60_000_000)),
    bandwidth: flag('--link-bandwidth', o.linkBandwidth ?? 0, rate),
    intraBandwidth: flag('--intra-bandwidth', o.intraBandwidth ?? 0, rate),
  };
}

/** The measured crossovers of `bench --algo ring,rd --json` outputs (for --algo auto). */
async function loadTuning(files: string[]): Promise<RunConfig['crossovers']> {
  const out: RunConfig['crossovers'] = [];
  for (const f of files) {
    let j: { workers?: unknown; crossover?: { measuredBytes?: unknown } };
    try {
      j = JSON.parse(await readFile(f, 'utf8'));
    } catch (e) {
      throw new RingswarmUsageError(`--tuning ${f}: ${(e as Error).message}`);
    }
    const w = j.workers;
    const b = j.crossover?.measuredBytes;
    if (!Number.isInteger(w) || (b !== null && !Number.isInteger(b))) {
      throw new RingswarmUsageError(`--tuning ${f}: not the JSON of \`ringswarm bench --algo ring,rd --json\` (needs workers and crossover.measuredBytes)`);
    }
    out.push({ workers: w as number, bytes: b as number | null });
  }
  return out;
}

/** The scenario (a file or an object) and the shorthand injects, validated against the run and expanded (random faults drawn from the seed). */
async function loadFaults(
  scenario: string | Record<string, unknown> | undefined,
  injects: string[],
  o: { seed: number; workers: number; steps: number },
): Promise<{ faults: Fault[]; stragglers: StragglerFault[] }> {
  const parts: Scenario[] = [];
  const name = typeof scenario === 'string' ? scenario : scenario ? '(scenario object)' : '--inject';
  try {
    if (typeof scenario === 'string') {
      let text: string;
      try {
        // The size first: a huge file is refused before it is read (a 48 MB one ran the heap out).
        checkScenarioSize((await stat(scenario)).size, scenario);
        text = await readFile(scenario, 'utf8');
      } catch (e) {
        if (e instanceof ScenarioError) throw e;
        throw new RingswarmUsageError(`--scenario ${scenario}: ${(e as Error).message}`);
      }
      parts.push(parseScenario(text, scenario));
    } else if (scenario) parts.push(parseScenario(JSON.stringify(scenario), name));
    if (injects.length) parts.push(parseInjects(injects));
    return scenarioForRun(parts, o, name);
  } catch (e) {
    if (e instanceof ScenarioError) throw new RingswarmUsageError(e.message);
    throw e;
  }
}

export function checkElements(flagName: string, bytes: number, t: DType): void {
  const eb = elementBytes(t);
  if (bytes % eb !== 0) throw new RingswarmUsageError(`${flagName} ${bytes} is not a whole number of ${t} elements (${eb} bytes each)`);
}

export function checkChunk(bytes: number, t: DType): void {
  if (bytes < elementBytes(t)) throw new RingswarmUsageError(`--chunk ${bytes} is smaller than one ${t} element`);
  if (bytes > 256 << 20) throw new RingswarmUsageError(`--chunk ${bytes} is larger than 256 MiB`);
}
