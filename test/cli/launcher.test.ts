// `ringswarm worker` reads its coordinator, token, rank and world size from flags or from the
// environment its launcher sets, first match wins, with a clear error for what is missing or wrong.
import { describe, expect, it } from 'vitest';
import { coordinatorUrl, launcherRank, RANK_SOURCES, workerIdentity } from '../../src/api/launcher.js';

const noFile = (f: string): string => {
  throw new Error(`ENOENT: no such file, open '${f}'`);
};

describe('the launcher contract', () => {
  it('takes the rank from each launcher in order, and --rank over all of them', () => {
    expect(launcherRank({}, { SLURM_PROCID: '3', SLURM_NTASKS: '8' })).toEqual({ launcher: { kind: 'slurm', rank: 3 }, worldSize: 8 });
    expect(launcherRank({}, { OMPI_COMM_WORLD_RANK: '5', OMPI_COMM_WORLD_SIZE: '8', PMIX_RANK: '5' })).toEqual({ launcher: { kind: 'mpi', rank: 5 }, worldSize: 8 });
    expect(launcherRank({}, { PMIX_RANK: '2' })).toEqual({ launcher: { kind: 'pmix', rank: 2 }, worldSize: null });
    expect(launcherRank({}, { JOB_COMPLETION_INDEX: '7' })).toEqual({ launcher: { kind: 'kubernetes', rank: 7 }, worldSize: null });
    expect(launcherRank({}, { RANK: '1', WORLD_SIZE: '4' })).toEqual({ launcher: { kind: 'env', rank: 1 }, worldSize: 4 });
    expect(launcherRank({}, { RINGSWARM_RANK: '0', RINGSWARM_WORLD_SIZE: '2', SLURM_PROCID: '1' })).toEqual({ launcher: { kind: 'env', rank: 0 }, worldSize: 2 });
    expect(launcherRank({ rank: 6, worldSize: 9 }, { SLURM_PROCID: '1' })).toEqual({ launcher: { kind: 'flag', rank: 6 }, worldSize: 9 });
    expect(launcherRank({}, {})).toEqual({ launcher: { kind: 'flag', rank: null }, worldSize: null });
    expect(RANK_SOURCES.map((s) => s.rank)).toEqual(['RINGSWARM_RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK', 'PMIX_RANK', 'JOB_COMPLETION_INDEX', 'RANK']);
  });

  it('refuses a rank that is not a number, or not below its world size', () => {
    expect(() => launcherRank({}, { SLURM_PROCID: 'x' })).toThrow("SLURM_PROCID is 'x', not a whole number >= 0");
    expect(() => launcherRank({}, { SLURM_PROCID: '8', SLURM_NTASKS: '8' })).toThrow('SLURM_PROCID=8 is not below SLURM_NTASKS=8');
  });

  it('finds the coordinator as a URL or host:port, from --url or RINGSWARM_COORDINATOR', () => {
    expect(coordinatorUrl('10.0.0.1:7000', '--url')).toBe('ws://10.0.0.1:7000');
    expect(coordinatorUrl('ws://head:7000', '--url')).toBe('ws://head:7000');
    expect(coordinatorUrl('[fd00::1]:7000', '--url')).toBe('ws://[fd00::1]:7000');
    expect(() => coordinatorUrl('http://x', '--url')).toThrow('--url http://x is not ws://host:port or host:port');
    const id = workerIdentity({}, { RINGSWARM_COORDINATOR: 'head:7000', RINGSWARM_TOKEN: 't' }, noFile);
    expect(id).toMatchObject({ controlUrl: 'ws://head:7000', token: 't', launcher: { kind: 'flag', rank: null }, advertise: null });
    expect(() => workerIdentity({ token: 't' }, {}, noFile)).toThrow('no coordinator: give --url ws://host:port or set RINGSWARM_COORDINATOR');
  });

  it('reads the token from --token, RINGSWARM_TOKEN, or a file', () => {
    const files: Record<string, string> = { '/run/secrets/token': 'sekrit\n', '/empty': '  \n' };
    const read = (f: string) => files[f] ?? noFile(f);
    const env = { RINGSWARM_COORDINATOR: 'h:1' };
    expect(workerIdentity({ tokenFile: '/run/secrets/token' }, env, read).token).toBe('sekrit');
    expect(workerIdentity({}, { ...env, RINGSWARM_TOKEN_FILE: '/run/secrets/token' }, read).token).toBe('sekrit');
    expect(workerIdentity({ token: 'flag' }, { ...env, RINGSWARM_TOKEN: 'env' }, read).token).toBe('flag');
    expect(() => workerIdentity({}, env, read)).toThrow('no job token: give --token, --token-file, or set RINGSWARM_TOKEN or RINGSWARM_TOKEN_FILE');
    expect(() => workerIdentity({ tokenFile: '/nope' }, env, read)).toThrow("cannot read the token file /nope: ENOENT: no such file, open '/nope'");
    expect(() => workerIdentity({ tokenFile: '/empty' }, env, read)).toThrow('the token file /empty is empty');
  });

  it('advertises RINGSWARM_ADVERTISE_ADDR unless --advertise says otherwise', () => {
    const env = { RINGSWARM_COORDINATOR: 'h:1', RINGSWARM_TOKEN: 't', RINGSWARM_ADVERTISE_ADDR: '10.1.0.2' };
    expect(workerIdentity({}, env, noFile).advertise).toBe('10.1.0.2');
    expect(workerIdentity({ advertise: '10.9.9.9' }, env, noFile).advertise).toBe('10.9.9.9');
  });
});

describe('the coordinator\'s advertised address', async () => {
  const { runConfig } = await import('../../src/api/options.js');
  it('is --advertise, else for a wildcard bind an external address, else none', async () => {
    expect((await runConfig({ workers: 2, advertise: '10.0.0.7' })).advertise).toBe('10.0.0.7');
    expect((await runConfig({ workers: 2 })).advertise).toBeNull();
    expect((await runConfig({ workers: 2, host: '0.0.0.0' })).advertise).toMatch(/\S/);
    await expect(runConfig({ workers: 2, advertise: 'bad host!' })).rejects.toThrow(/--advertise/);
  });
});
