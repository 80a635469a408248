// The Prometheus metrics of a run, from a coordinator machine driven by hand (steps, a kill, its
// recovery, a slow node): the exposition text parsed line by line, its names, label sets and values.
import { createServer } from 'node:net';
import { register as globalRegistry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { busBandwidthFactor } from '../../src/collective/index.js';
import type { Fault } from '../../src/coordinator/scenario/index.js';
import type { WorkerMessage } from '../../src/protocol/control.js';
import { METRIC_LABELS, RunMetrics, serveMetrics, type MetricsServer } from '../../src/coordinator/metrics.js';
import { goodputOf } from '../../src/coordinator/report.js';
import { RingswarmUsageError } from '../../src/protocol/errors.js';
import { Harness } from './harness.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The text format, line by line: `# HELP`/`# TYPE` comments, blank lines, and `name{k="v",...} value`. */
function parse(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ')) continue;
    const t = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (t) {
      types.set(t[1]!, t[2]!);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    expect(m, `a sample line: ${line}`).not.toBeNull();
    const labels: Record<string, string> = {};
    for (const kv of m![2] ? m![2].split(',') : []) {
      const l = /^([a-zA-Z_][a-zA-Z0-9_]*)="([^"\\]*)"$/.exec(kv);
      expect(l, `a label in ${line}`).not.toBeNull();
      labels[l![1]!] = l![2]!;
    }
    samples.push({ name: m![1]!, labels, value: m![3] === '+Inf' ? Infinity : Number(m![3]) });
  }
  return { samples, types };
}

const NAMES = {
  ringswarm_step_duration_seconds: 'histogram',
  ringswarm_allreduce_duration_seconds: 'histogram',
  ringswarm_bus_bandwidth_bytes_per_second: 'gauge',
  ringswarm_faults_injected_total: 'counter',
  ringswarm_faults_detected_total: 'counter',
  ringswarm_recovery_duration_seconds: 'histogram',
  ringswarm_restarts_total: 'counter',
  ringswarm_stragglers_total: 'counter',
  ringswarm_epoch: 'gauge',
  ringswarm_workers_alive: 'gauge',
  ringswarm_goodput_ratio: 'gauge',
};

/** The one sample of `name` with exactly `labels`. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const hits = samples.filter((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort()));
  expect(hits, `${name}${JSON.stringify(labels)}`).toHaveLength(1);
  return hits[0]!.value;
}

const kill = (rank: number, step: number): Fault => ({ id: 0, kind: 'kill', rank, at: { step, phase: 'reduce-scatter' } });

/** A machine whose metrics are observed after each event, as run.ts does. */
function observed(h: Harness): RunMetrics {
  const metrics = new RunMetrics(h.m, () => h.t);
  const handle = h.m.handle.bind(h.m);
  h.m.handle = (e, now) => {
    const out = handle(e, now);
    metrics.observe();
    return out;
  };
  return metrics;
}

/** Every member reports `step` with these timings (rank `slow`, if any, computing `slowBy` times longer). */
function step(h: Harness, s: number, t: { stepMs: number; allreduceMs: number }, slow?: { rank: number; by: number }): void {
  h.checkpoint(s);
  for (const m of [...h.m.members]) {
    const computeMs = slow?.rank === m.rank ? slow.by : 1;
    const msg: WorkerMessage = {
      type: 'step',
      epoch: h.m.epoch,
      step: s,
      wrong: 0,
      timings: { computeMs, allreduceMs: t.allreduceMs, stepMs: t.stepMs + computeMs - 1, waitMs: 0, linkMs: 0, bytesSent: 16 },
      rssMB: 50,
      pssMB: null,
    };
    h.msg(m.workerId, msg);
  }
}

describe('run metrics (Prometheus)', () => {
  it('steps, a kill, its recovery and a slow node: every metric, in base units, with only algo, kind and detected_by as labels', async () => {
    const steps = 16;
    const h = new Harness({ faults: [kill(2, 1)], steps, bytesPerCard: 1 << 20 });
    const metrics = observed(h);

    // Before anything: every metric is there, the counters of known label sets at 0.
    let { samples, types } = parse(await metrics.text());
    expect(Object.fromEntries(types)).toEqual(NAMES);
    expect(value(samples, 'ringswarm_restarts_total')).toBe(0);
    expect(value(samples, 'ringswarm_faults_injected_total', { kind: 'kill' })).toBe(0);
    expect(value(samples, 'ringswarm_stragglers_total', { kind: 'node' })).toBe(0);
    expect(value(samples, 'ringswarm_stragglers_total', { kind: 'link' })).toBe(0);
    expect(value(samples, 'ringswarm_epoch')).toBe(0);

    h.started();
    step(h, 0, { stepMs: 3, allreduceMs: 2 });
    ({ samples } = parse(await metrics.text()));
    expect(value(samples, 'ringswarm_step_duration_seconds_count', { algo: 'ring' })).toBe(1);
    expect(value(samples, 'ringswarm_step_duration_seconds_sum', { algo: 'ring' })).toBeCloseTo(0.003, 9);
    expect(value(samples, 'ringswarm_step_duration_seconds_bucket', { algo: 'ring', le: '0.0025' })).toBe(0);
    expect(value(samples, 'ringswarm_step_duration_seconds_bucket', { algo: 'ring', le: '0.005' })).toBe(1);
    expect(value(samples, 'ringswarm_allreduce_duration_seconds_sum', { algo: 'ring' })).toBeCloseTo(0.002, 9);
    // busbw = bytes per card / time * 2(n-1)/n, in bytes per second.
    expect(value(samples, 'ringswarm_bus_bandwidth_bytes_per_second')).toBeCloseTo(((1 << 20) / 0.002) * busBandwidthFactor('allreduce', 4), 3);
    expect(value(samples, 'ringswarm_workers_alive')).toBe(4);

    // Rank 2 is killed mid-reduce-scatter of step 1: detected by its exit, replaced, training resumes.
    h.checkpoint(1);
    h.msg('w2', { type: 'fault', epoch: 0, id: 0, step: 1, phase: 'reduce-scatter', chunk: 0 });
    ({ samples } = parse(await metrics.text()));
    expect(value(samples, 'ringswarm_faults_injected_total', { kind: 'kill' })).toBe(1);
    expect(samples.filter((s) => s.name === 'ringswarm_faults_detected_total')).toEqual([]);
    h.on({ type: 'exit', worker: 'w2', why: 'worker w2 killed by SIGKILL' }, 5);
    ({ samples } = parse(await metrics.text()));
    expect(value(samples, 'ringswarm_workers_alive')).toBe(3);
    h.fire('settle');
    for (const w of ['w0', 'w1', 'w3']) h.msg(w, { type: 'aborted', epoch: 1 });
    h.t += 2000; // the replacement takes its time to start
    h.join('w2.1');
    h.readyAll();
    const fault = h.m.faultReports()[0]!;
    expect(fault).toMatchObject({ kind: 'kill', detectedBy: 'exit', restoredFrom: 'memory' });
    expect(fault.recoveredAfterMs).toBeGreaterThan(2000);

    // The rest, rank 1 computing 10x as long: a slow node, confirmed by the detector.
    for (let s = 1; s < steps; s++) step(h, s, { stepMs: 3, allreduceMs: 2 }, { rank: 1, by: 10 });
    expect(h.m.stragglers.map((s) => s.kind)).toContain('node');

    ({ samples, types } = parse(await metrics.text()));
    expect(Object.fromEntries(types)).toEqual(NAMES);
    expect(value(samples, 'ringswarm_faults_injected_total', { kind: 'kill' })).toBe(1);
    expect(value(samples, 'ringswarm_faults_detected_total', { kind: 'kill', detected_by: 'exit' })).toBe(1);
    expect(value(samples, 'ringswarm_recovery_duration_seconds_count')).toBe(1);
    expect(value(samples, 'ringswarm_recovery_duration_seconds_sum')).toBe(fault.recoveredAfterMs! / 1000);
    expect(value(samples, 'ringswarm_recovery_duration_seconds_bucket', { le: '+Inf' })).toBe(1);
    expect(value(samples, 'ringswarm_restarts_total')).toBe(h.m.restarts);
    expect(h.m.restarts).toBe(1);
    expect(value(samples, 'ringswarm_stragglers_total', { kind: 'node' })).toBe(h.m.stragglers.filter((s) => s.kind === 'node').length);
    expect(value(samples, 'ringswarm_stragglers_total', { kind: 'link' })).toBe(h.m.stragglers.filter((s) => s.kind === 'link').length);
    expect(value(samples, 'ringswarm_epoch')).toBe(1);
    expect(value(samples, 'ringswarm_workers_alive')).toBe(4);
    // Each counted step once (step 0 of epoch 0 and steps 1-15 of epoch 1), its time the slowest rank's.
    expect(value(samples, 'ringswarm_step_duration_seconds_count', { algo: 'ring' })).toBe(steps);
    expect(value(samples, 'ringswarm_step_duration_seconds_sum', { algo: 'ring' })).toBeCloseTo((3 + 12 * (steps - 1)) / 1000, 9);
    expect(value(samples, 'ringswarm_allreduce_duration_seconds_count', { algo: 'ring' })).toBe(steps);
    expect(value(samples, 'ringswarm_step_duration_seconds_bucket', { algo: 'ring', le: '+Inf' })).toBe(steps);
    // The goodput the report gives, at the time of the scrape.
    const g = value(samples, 'ringswarm_goodput_ratio');
    expect(g).toBe(goodputOf(h.m, h.t).ratio);
    expect(g).toBeGreaterThan(0);
    expect(g).toBeLessThan(1);

    // No label but algo, kind and detected_by (and a histogram bucket's le), on any line.
    for (const s of samples) {
      for (const k of Object.keys(s.labels)) {
        if (k === 'le') expect(s.name, `${s.name} has le`).toMatch(/_bucket$/);
        else expect(METRIC_LABELS as readonly string[], `${s.name} label ${k}`).toContain(k);
      }
      expect(Number.isFinite(s.value), `${s.name} ${s.value}`).toBe(true);
      expect(Object.keys(NAMES).some((n) => s.name === n || s.name.startsWith(`${n}_`)), s.name).toBe(true);
    }
    // Label values too stay few: an algorithm, a kind, a detector; never a rank, card or pid.
    for (const s of samples) for (const v of Object.values(s.labels)) expect(v).toMatch(/^(ring|rd|[a-z-]+|[0-9.]+|\+Inf)$/);
  });

  it('counts a fault from outside as detected, not as injected', async () => {
    const h = new Harness({ steps: 3 });
    const metrics = observed(h);
    h.started();
    step(h, 0, { stepMs: 3, allreduceMs: 2 });
    h.on({ type: 'exit', worker: 'w1', why: 'worker w1 killed by SIGKILL' }, 5);
    h.fire('settle');
    for (const w of ['w0', 'w2', 'w3']) h.msg(w, { type: 'aborted', epoch: 1 });
    h.join('w1.1');
    h.readyAll();
    const { samples } = parse(await metrics.text());
    const fault = h.m.faultReports()[0]!;
    expect(fault.injected).toBe(false);
    expect(samples.filter((s) => s.name === 'ringswarm_faults_injected_total')).toEqual([]);
    expect(value(samples, 'ringswarm_faults_detected_total', { kind: fault.kind, detected_by: 'exit' })).toBe(1);
    expect(value(samples, 'ringswarm_recovery_duration_seconds_count')).toBe(1);
    expect(value(samples, 'ringswarm_restarts_total')).toBe(1);
  });

  it('one registry per run: two runs in one process do not clash, and the global registry stays empty', async () => {
    const a = observed(new Harness({}));
    const b = new Harness({});
    const mb = observed(b);
    b.started();
    step(b, 0, { stepMs: 3, allreduceMs: 2 });
    expect(value(parse(await a.text()).samples, 'ringswarm_workers_alive')).toBe(0);
    expect(value(parse(await mb.text()).samples, 'ringswarm_workers_alive')).toBe(4);
    expect(parse(await a.text()).samples.filter((s) => s.name === 'ringswarm_step_duration_seconds_count')).toEqual([]);
    expect(globalRegistry.getMetricsAsArray()).toEqual([]);
  });
});

describe('the metrics server', () => {
  let open: MetricsServer[] = [];
  afterEach(async () => {
    await Promise.all(open.map((s) => s.close()));
    open = [];
  });

  it('serves /metrics on 127.0.0.1 with the registry content type, 404 elsewhere', async () => {
    const metrics = new RunMetrics(new Harness({}).m, () => 0);
    const s = await serveMetrics(metrics, 0);
    open.push(s);
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const r = await fetch(s.url);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe(metrics.registry.contentType);
    expect(await r.text()).toContain('# TYPE ringswarm_epoch gauge');
    expect((await fetch(`${s.url}?x=1`)).status).toBe(200);
    for (const path of ['/', '/metrics/x', '/favicon.ico']) {
      const nf = await fetch(new URL(path, s.url));
      expect(nf.status, path).toBe(404);
      await nf.text();
    }
    const post = await fetch(s.url, { method: 'POST' });
    expect(post.status).toBe(404);
    await post.text();
  });

  it('a port in use is a usage error that names it', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen({ host: '127.0.0.1', port: 0 }, () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const p = serveMetrics(new RunMetrics(new Harness({}).m, () => 0), port);
      await expect(p).rejects.toThrow(new RingswarmUsageError(`--metrics-port ${port}: 127.0.0.1:${port} is already in use`));
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it('closes with a scraper still connected (keep-alive)', async () => {
    const s = await serveMetrics(new RunMetrics(new Harness({}).m, () => 0), 0);
    const r = await fetch(s.url, { headers: { connection: 'keep-alive' } });
    await r.text();
    await s.close();
    await expect(fetch(s.url)).rejects.toThrow();
  });
});
