// `run --metrics-port`: a real run scraped while it trains (a kill found and healed), then stopped
// with Ctrl-C: the endpoint is closed with the run and every worker is reaped. A port in use stops
// the run before any worker starts.
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive, killLeftovers, startCli, waitUntil } from './helpers.js';

afterEach(killLeftovers);

/** `name{labels} value` lines of the exposition, by name and label text. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+?)(\{.*\})? (\S+)$/.exec(line);
    expect(m, line).not.toBeNull();
    out.set(`${m![1]}${m![2] ?? ''}`, Number(m![3]));
  }
  return out;
}

describe('run --metrics-port', () => {
  it('serves the run as Prometheus metrics while it trains, and closes with it', async () => {
    const run = startCli(['run', '-w', '3', '-g', '2', '-s', '16KiB', '--steps', '100000', '--compute-ms', '10', '--metrics-port', '0', '--inject', 'kill:rank=1:step=3', '--json', '-']);
    const url = (await run.waitFor(/metrics: (http:\/\/127\.0\.0\.1:\d+\/metrics)/, 60_000))[1]!;
    await run.waitFor(/recovered in \d+ ms/, 180_000);
    // A few steps of the new epoch, so its step times are in.
    await run.waitFor(/step \d+\/100000 .* epoch 1/, 120_000);

    const r = await fetch(url);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await r.text();
    const s = samples(text);
    expect(s.get('ringswarm_faults_injected_total{kind="kill"}')).toBe(1);
    expect(s.get('ringswarm_faults_detected_total{kind="kill",detected_by="exit"}')).toBe(1);
    expect(s.get('ringswarm_restarts_total')).toBe(1);
    expect(s.get('ringswarm_recovery_duration_seconds_count')).toBe(1);
    expect(s.get('ringswarm_recovery_duration_seconds_sum')).toBeGreaterThan(0);
    expect(s.get('ringswarm_epoch')).toBe(1);
    expect(s.get('ringswarm_workers_alive')).toBe(3);
    const algo = [...s.keys()].find((k) => k.startsWith('ringswarm_step_duration_seconds_count{'))!;
    expect(algo).toMatch(/^ringswarm_step_duration_seconds_count\{algo="(ring|rd)"\}$/);
    expect(s.get(algo)).toBeGreaterThanOrEqual(4);
    expect(s.get(algo.replace('step_duration', 'allreduce_duration'))).toBe(s.get(algo));
    expect(s.get('ringswarm_bus_bandwidth_bytes_per_second')).toBeGreaterThan(0);
    const goodput = s.get('ringswarm_goodput_ratio')!;
    expect(goodput).toBeGreaterThan(0);
    expect(goodput).toBeLessThanOrEqual(1);
    // Labels: only algo, kind, detected_by (and a bucket's le).
    for (const k of s.keys()) for (const [, name] of k.matchAll(/([a-z_]+)="/g)) expect(['algo', 'kind', 'detected_by', 'le']).toContain(name);
    expect((await fetch(new URL('/', url))).status).toBe(404);

    run.child.kill('SIGINT');
    const { code } = await run.exited;
    expect(code).toBe(130);
    const report = JSON.parse(run.stdout()) as { interrupted: boolean; restarts: number; processes: { pid: number }[] };
    expect(report.interrupted).toBe(true);
    expect(report.restarts).toBe(1);
    await expect(fetch(url)).rejects.toThrow();
    expect(await waitUntil(() => report.processes.every((p) => !isAlive(p.pid)), 10_000)).toBe(true);
  }, 420_000);

  it('a metrics port in use: a usage error naming it, before any worker starts', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen({ host: '127.0.0.1', port: 0 }, () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const run = startCli(['run', '-w', '2', '-g', '1', '-s', '4KiB', '--steps', '3', '--metrics-port', String(port)]);
      const { code } = await run.exited;
      expect(code).toBe(2);
      expect(run.stderr()).toContain(`--metrics-port ${port}: 127.0.0.1:${port} is already in use`);
      expect(run.stdout() + run.stderr()).not.toMatch(/workers ready|coordinator listening/);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  }, 60_000);
});
