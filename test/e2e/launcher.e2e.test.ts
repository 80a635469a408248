// Workers started by someone else (a launcher: here the test, as srun or a Kubernetes Indexed Job
// would): `run --spawn 0` waits for them, each takes the rank its environment gives, a killed or
// frozen one is brought back by its "launcher" in its rank, and the job ends exact with the same
// digest as a spawned run.
import { hostname } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { killLeftovers, runCli, startCli, type CliRun } from './helpers.js';

afterEach(killLeftovers);

const SHAPE = ['-w', '4', '-g', '2', '-s', '64KiB', '--steps', '8'];

/** A launcher of 4 workers: ranks from RINGSWARM_RANK, started in reverse order; with `restart`, a worker that ends badly is started again in its rank. */
function launch(url: string, ranks: number[], restart: boolean, worldSize = 4) {
  const runs: { rank: number; run: CliRun }[] = [];
  let stopped = false;
  const start = (rank: number) => {
    const run = startCli(['worker', '--url', url.replace(/^ws:\/\//, '')], { RINGSWARM_TOKEN: 'tok', RINGSWARM_RANK: String(rank), RINGSWARM_WORLD_SIZE: String(worldSize) });
    runs.push({ rank, run });
    void run.exited.then((e) => {
      if (restart && !stopped && (e.code !== 0 || e.signal)) start(rank);
    });
  };
  for (const r of ranks) start(r);
  return {
    runs,
    stop: () => (stopped = true),
    exits: () => Promise.all(runs.map((x) => x.run.exited)),
  };
}

describe('run --spawn 0 with workers a launcher started', () => {
  it('ranks by the launcher, the same digest as a spawned run, and processes[] says who ranked whom', async () => {
    const coord = startCli(['run', ...SHAPE, '--spawn', '0', '--port', '0', '--token', 'tok', '--json', '-']);
    const url = (await coord.waitFor(/coordinator listening on (ws:\/\/\S+)/))[1];
    const workers = launch(url, [3, 2, 1, 0], false);
    const { code } = await coord.exited;
    const report = JSON.parse(coord.stdout());
    expect(code, coord.stderr()).toBe(0);
    expect(report.ok).toBe(true);
    const exits = await workers.exits();
    expect(exits.map((e) => e.code)).toEqual([0, 0, 0, 0]);
    expect(report.processes.map((p: { rank: number; launcher: unknown; host: string; spawned: boolean }) => [p.rank, p.launcher, p.host, p.spawned])).toEqual(
      [0, 1, 2, 3].map((r) => [r, { kind: 'env', rank: r }, hostname(), false]),
    );
    const pidOf = new Map(workers.runs.map((w) => [w.rank, w.run.child.pid]));
    for (const p of report.processes) expect(p.pid).toBe(pidOf.get(p.rank));
    const spawned = await runCli(['run', ...SHAPE, '--json', '-']);
    const clean = JSON.parse(spawned.stdout);
    expect(clean.processes[0].launcher).toEqual({ kind: 'spawned', rank: null });
    expect(report.stateDigest).toBe(clean.stateDigest);
  }, 90_000);

  it('a killed and a frozen worker come back through their launcher, in their ranks', async () => {
    const coord = startCli([
      'run', ...SHAPE, '--steps', '12', '--spawn', '0', '--port', '0', '--token', 'tok', '--json', '-', '--on-failure', 'restart', '--rejoin-timeout-ms', '30000',
      '--inject', 'kill:rank=1:step=3:phase=reduce-scatter', '--inject', 'hang:rank=2:step=7',
    ]);
    const url = (await coord.waitFor(/coordinator listening on (ws:\/\/\S+)/))[1];
    const workers = launch(url, [0, 1, 2, 3], true);
    const { code } = await coord.exited;
    workers.stop();
    await workers.exits();
    const report = JSON.parse(coord.stdout());
    expect(code, coord.stderr()).toBe(0);
    expect(report.ok).toBe(true);
    const faults = report.faults.map((f: { kind: string; rank: number; struck: boolean; detectedBy: string; action: string }) => [f.kind, f.rank, f.struck, f.detectedBy, f.action]);
    expect(faults).toEqual([
      ['kill', 1, true, 'exit', 'restart rank 1'],
      ['hang', 2, true, 'heartbeat', 'restart rank 2'],
    ]);
    // Each rank's newest worker is the one its launcher started last.
    const last = new Map(workers.runs.map((w) => [w.rank, w.run.child.pid]));
    const byRank = new Map<number, number>();
    for (const p of report.processes) byRank.set(p.rank, p.pid);
    expect(byRank).toEqual(last);
    expect(workers.runs.filter((w) => w.rank === 1)).toHaveLength(2);
    expect(workers.runs.filter((w) => w.rank === 2)).toHaveLength(2);
    const clean = JSON.parse((await runCli(['run', ...SHAPE, '--steps', '12', '--json', '-'])).stdout);
    expect(report.stateDigest).toBe(clean.stateDigest);
  }, 120_000);

  it('refuses a launcher whose world size is not the job\'s, naming both; the worker exits 2', async () => {
    const coord = startCli(['run', ...SHAPE, '--spawn', '0', '--port', '0', '--token', 'tok', '--ready-timeout-ms', '3000']);
    const url = (await coord.waitFor(/coordinator listening on (ws:\/\/\S+)/))[1];
    const w = launch(url, [0], false, 5);
    const [exit] = await w.exits();
    expect(exit.code).toBe(2);
    expect(w.runs[0].run.stderr()).toContain('the launcher (env) gives world size 5, but this job has --workers 4 + --spares 0 = 4');
    const c = await coord.exited;
    expect(c.code).toBe(1);
    expect(coord.stdout() + coord.stderr()).toMatch(/only 0 of 4 workers joined within 3000 ms/);
  }, 60_000);

  it('a worker without a coordinator or token says what to set, exit 2', async () => {
    const r = await runCli(['worker', '--token', 't']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no coordinator: give --url ws://host:port or set RINGSWARM_COORDINATOR');
  });
});
