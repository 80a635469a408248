// On real launchers: `srun` (a single-node Slurm that scripts/ci/slurm-up.sh starts) and Open MPI's
// `mpirun` start the workers of a `run --spawn 0` coordinator. Each job ends ok with the digest of
// a spawned run, every worker in the rank its launcher gave it; a worker killed under srun is healed
// by the spare srun started. Skipped where the engines are not installed, except under .ci/run
// (RINGSWARM_REQUIRE_ENGINES=1), which installs and starts them.
import { spawn, spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, killLeftovers, runCli, startCli } from './helpers.js';

const has = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore', timeout: 10_000 }).status === 0;
const required = process.env.RINGSWARM_REQUIRE_ENGINES === '1';
const slurm = has('sinfo', ['-h']);
const mpi = has('mpirun', ['--version']);

afterEach(killLeftovers);

const SHAPE = ['-g', '1', '-s', '16KiB', '--steps', '8'];

/** Run a launcher command to its end (reaped; killed if it outlives `timeoutMs`). */
function launcher(cmd: string, args: string[], env: Record<string, string>, timeoutMs = 90_000): Promise<{ code: number | null; out: string }> {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (out += b));
  const t = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), timeoutMs);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    }),
  );
}

async function job(workers: number, extra: string[], start: (url: string, env: Record<string, string>) => Promise<{ code: number | null; out: string }>) {
  const coord = startCli(['run', '-w', String(workers), ...SHAPE, '--spawn', '0', '--port', '0', '--token', 'tok', '--json', '-', ...extra]);
  const url = (await coord.waitFor(/coordinator listening on (ws:\/\/\S+)/))[1];
  const l = await start(url, { RINGSWARM_TOKEN: 'tok', RINGSWARM_COORDINATOR: url });
  const { code } = await coord.exited;
  expect(code, `${coord.stderr()}\nlauncher:\n${l.out}`).toBe(0);
  return { report: JSON.parse(coord.stdout()), launcher: l };
}

async function spawnedDigest(workers: number): Promise<string> {
  return JSON.parse((await runCli(['run', '-w', String(workers), ...SHAPE, '--json', '-'])).stdout).stateDigest;
}

describe('real launchers', () => {
  it.skipIf(!slurm && !required)('srun -n 8 ringswarm worker: ok, the spawned digest, ranks from SLURM_PROCID', async () => {
    const { report, launcher: l } = await job(8, [], (_url, env) => launcher('srun', ['--overcommit', '-n', '8', process.execPath, CLI, 'worker'], env));
    expect(l.code).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.processes.map((p: { rank: number; launcher: unknown }) => [p.rank, p.launcher])).toEqual([...Array(8).keys()].map((r) => [r, { kind: 'slurm', rank: r }]));
    expect(report.stateDigest).toBe(await spawnedDigest(8));
  }, 120_000);

  it.skipIf(!mpi && !required)('mpirun -np 8 ringswarm worker: ok, the spawned digest, ranks from OMPI_COMM_WORLD_RANK', async () => {
    const { report, launcher: l } = await job(8, [], (_url, env) =>
      launcher('mpirun', ['--oversubscribe', '--allow-run-as-root', '-np', '8', '-x', 'RINGSWARM_TOKEN', '-x', 'RINGSWARM_COORDINATOR', process.execPath, CLI, 'worker'], env),
    );
    expect(l.code).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.processes.map((p: { rank: number; launcher: unknown }) => [p.rank, p.launcher])).toEqual([...Array(8).keys()].map((r) => [r, { kind: 'mpi', rank: r }]));
    expect(report.stateDigest).toBe(await spawnedDigest(8));
  }, 120_000);

  it.skipIf(!slurm && !required)('a worker killed under srun is healed by the spare srun started (task 7 of 8)', async () => {
    const { report } = await job(7, ['--spares', '1', '--on-failure', 'spare', '--inject', 'kill:rank=2:step=3:phase=reduce-scatter'], (_url, env) =>
      launcher('srun', ['--overcommit', '--kill-on-bad-exit=0', '-n', '8', process.execPath, CLI, 'worker'], env),
    );
    expect(report.ok).toBe(true);
    expect(report.faults).toEqual([expect.objectContaining({ kind: 'kill', rank: 2, struck: true, detectedBy: 'exit', action: 'spare rank 2' })]);
    const r2 = report.processes.find((p: { rank: number; workerId: string }) => p.rank === 2 && p.launcher.rank === 7);
    expect(r2, JSON.stringify(report.processes)).toBeDefined();
    expect(report.stateDigest).toBe(await spawnedDigest(7));
  }, 120_000);
});
