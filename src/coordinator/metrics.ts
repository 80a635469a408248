// `run --metrics-port P`: the run as Prometheus metrics at http://127.0.0.1:P/metrics, built from the
// coordinator machine's state after each event it handles (as run.ts's eventWatcher builds events).
// Base units (seconds, bytes per second, a ratio), and labels of a handful of values each: the
// all-reduce algorithm, a fault's or straggler's kind, the detector. Never a rank, a card or a pid.
// One registry per run (not prom-client's global one): two runs in one process do not clash.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { RingswarmUsageError } from '../protocol/errors.js';
import type { EpochReport } from './config.js';
import type { StepAgg } from './ledger.js';
import type { CoordinatorMachine, FaultRecord } from './machine.js';
import { allreduceBandwidthGBps, goodputOf } from './report.js';

/** The only labels any ringswarm metric has (histograms add `le`). */
export const METRIC_LABELS = ['algo', 'kind', 'detected_by'] as const;

/** Steps and all-reduces: 0.5 ms to 30 s. */
const STEP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** A recovery (settle, abort, replace, ring up, restore): 50 ms to 10 min. */
const RECOVERY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** The report entry of epoch `epoch` (the newest first: that is where a step usually is). */
function epochOf(m: CoordinatorMachine, epoch: number | undefined): EpochReport | undefined {
  for (let i = m.epochs.length - 1; i >= 0; i--) if (m.epochs[i]!.epoch === epoch) return m.epochs[i];
  return undefined;
}

export class RunMetrics {
  readonly registry = new Registry();
  private readonly stepDuration: Histogram<'algo'>;
  private readonly allreduceDuration: Histogram<'algo'>;
  private readonly busBandwidth: Gauge;
  private readonly faultsInjected: Counter<'kind'>;
  private readonly faultsDetected: Counter<'kind' | 'detected_by'>;
  private readonly recoveryDuration: Histogram;
  private readonly restarts: Counter;
  private readonly stragglers: Counter<'kind'>;
  // What has been counted already: each step run, fault and straggler once.
  private readonly stepsSeen = new WeakSet<StepAgg>();
  private stepRuns = -1;
  private readonly injectedSeen = new WeakSet<FaultRecord>();
  private readonly detectedSeen = new WeakSet<FaultRecord>();
  private readonly recoveredSeen = new WeakSet<FaultRecord>();
  private stragglersSeen = 0;
  private restartsSeen = 0;

  constructor(
    private readonly m: CoordinatorMachine,
    now: () => number,
  ) {
    const registers = [this.registry];
    this.stepDuration = new Histogram({
      name: 'ringswarm_step_duration_seconds',
      help: 'Time of each counted training step (the slowest rank: compute and all-reduce), by all-reduce algorithm.',
      labelNames: ['algo'],
      buckets: STEP_BUCKETS,
      registers,
    });
    this.allreduceDuration = new Histogram({
      name: 'ringswarm_allreduce_duration_seconds',
      help: "Time of each counted step's all-reduce (the slowest rank), by algorithm.",
      labelNames: ['algo'],
      buckets: STEP_BUCKETS,
      registers,
    });
    this.busBandwidth = new Gauge({
      name: 'ringswarm_bus_bandwidth_bytes_per_second',
      help: "Bus bandwidth of the last counted step's all-reduce, as nccl-tests' busbw: bytes per card / time * 2(n-1)/n.",
      registers,
    });
    this.faultsInjected = new Counter({
      name: 'ringswarm_faults_injected_total',
      help: 'Faults ringswarm injected that struck, by kind.',
      labelNames: ['kind'],
      registers,
    });
    this.faultsDetected = new Counter({
      name: 'ringswarm_faults_detected_total',
      help: 'Faults detected (injected ones and ones from outside), by kind and by the detector that found them.',
      labelNames: ['kind', 'detected_by'],
      registers,
    });
    this.recoveryDuration = new Histogram({
      name: 'ringswarm_recovery_duration_seconds',
      help: 'Per fault healed: from the fault (from its detection, for one from outside) to training resumed.',
      buckets: RECOVERY_BUCKETS,
      registers,
    });
    this.restarts = new Counter({ name: 'ringswarm_restarts_total', help: 'Workers restarted or replaced after a fault.', registers });
    this.stragglers = new Counter({
      name: 'ringswarm_stragglers_total',
      help: 'Stragglers confirmed by the detector, by kind (node or link).',
      labelNames: ['kind'],
      registers,
    });
    const m_ = m;
    new Gauge({
      name: 'ringswarm_epoch',
      help: 'The current epoch (a new one begins at each recovery, shrink or reroute).',
      registers,
      collect() {
        this.set(m_.epoch);
      },
    });
    new Gauge({
      name: 'ringswarm_workers_alive',
      help: "Members of the current epoch's ring not known to be gone.",
      registers,
      collect() {
        this.set(m_.members.filter((x) => !x.gone).length);
      },
    });
    new Gauge({
      name: 'ringswarm_goodput_ratio',
      help: 'Time of the counted steps over the time since training started (as the run report gives it).',
      registers,
      collect() {
        this.set(goodputOf(m_, now()).ratio);
      },
    });
    // Every series of a known label set from the start, at 0 (rate() needs the zero).
    for (const kind of ['node', 'link']) this.stragglers.labels(kind).inc(0);
    for (const kind of new Set(m.cfg.faults.map((f) => f.kind))) this.faultsInjected.labels(kind).inc(0);
  }

  /** Bring the metrics up to the machine's state: cheap when nothing changed. */
  observe(): void {
    const m = this.m;
    if (m.steps.runs !== this.stepRuns) {
      this.stepRuns = m.steps.runs;
      let last: StepAgg | null = null;
      for (const s of m.steps.final.values()) {
        if (this.stepsSeen.has(s)) continue;
        this.stepsSeen.add(s);
        const algo = epochOf(m, s.epoch)?.algo ?? 'unknown';
        this.stepDuration.labels(algo).observe(s.stepMs / 1000);
        this.allreduceDuration.labels(algo).observe(s.allreduceMs / 1000);
        if (!last || s.doneAt! >= last.doneAt!) last = s;
      }
      if (last) {
        const n = epochOf(m, last.epoch)?.members.length ?? m.W;
        this.busBandwidth.set(allreduceBandwidthGBps(m.cfg.bytesPerCard, last.allreduceMs, n).busbw * 1e9);
      }
    }
    for (const f of m.faults) {
      if (f.injected && f.injectedAt !== null && !this.injectedSeen.has(f)) {
        this.injectedSeen.add(f);
        this.faultsInjected.labels(f.kind).inc();
      }
      if (f.detectedBy !== null && !this.detectedSeen.has(f)) {
        this.detectedSeen.add(f);
        this.faultsDetected.labels(f.kind, f.detectedBy).inc();
      }
      if (f.recoveredAfterMs !== null && !this.recoveredSeen.has(f)) {
        this.recoveredSeen.add(f);
        this.recoveryDuration.observe(f.recoveredAfterMs / 1000);
      }
    }
    for (; this.stragglersSeen < m.stragglers.length; this.stragglersSeen++) this.stragglers.labels(m.stragglers[this.stragglersSeen]!.kind).inc();
    if (m.restarts > this.restartsSeen) {
      this.restarts.inc(m.restarts - this.restartsSeen);
      this.restartsSeen = m.restarts;
    }
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

export const METRICS_HOST = '127.0.0.1';

/** GET /metrics on 127.0.0.1:`port` (0: any free port); 404 elsewhere. A port that cannot be had is a usage error. */
export async function serveMetrics(metrics: RunMetrics, port: number): Promise<MetricsServer> {
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found: the metrics are at /metrics\n');
      return;
    }
    metrics.text().then(
      (body) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(req.method === 'HEAD' ? undefined : body),
      (e: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${String(e)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') reject(new RingswarmUsageError(`--metrics-port ${port}: ${METRICS_HOST}:${port} is already in use`));
      else if (e.code === 'EACCES') reject(new RingswarmUsageError(`--metrics-port ${port}: not permitted to listen on ${METRICS_HOST}:${port}`));
      else reject(e);
    });
    server.listen({ host: METRICS_HOST, port, exclusive: true }, () => resolve());
  });
  const bound = (server.address() as { port: number }).port;
  return {
    url: `http://${METRICS_HOST}:${bound}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // A scraper's keep-alive connection must not hold the run open.
        server.closeAllConnections();
      }),
  };
}
