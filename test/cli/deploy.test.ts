// deploy/ is tested for the contract it relies on: the variables each launcher's files set are the
// ones `ringswarm worker` reads, and a worker started as they start it finds its coordinator,
// token, rank and world size.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { COORDINATOR_ENV, RANK_SOURCES, workerIdentity } from '../../src/api/launcher.js';

const file = (p: string) => readFileSync(fileURLToPath(new URL(`../../deploy/${p}`, import.meta.url)), 'utf8');

describe('deploy/', () => {
  it('Kubernetes: an Indexed Job of workers finds the coordinator Service, the token Secret and its rank', () => {
    const docs = parseAllDocuments(file('kubernetes/ringswarm.yaml')).map((d) => d.toJS());
    const service = docs.find((d) => d.kind === 'Service');
    const coordinator = docs.find((d) => d.kind === 'Job' && d.metadata.name === 'ringswarm-coordinator');
    const workers = docs.find((d) => d.kind === 'Job' && d.spec.completionMode === 'Indexed');
    expect(service.spec.clusterIP).toBe('None');
    expect(service.spec.selector).toEqual(coordinator.spec.template.metadata.labels);
    const cArgs: string[] = coordinator.spec.template.spec.containers[0].args;
    const flag = (f: string) => cArgs[cArgs.indexOf(f) + 1];
    expect(flag('--spawn')).toBe('0');
    expect(Number(flag('--port'))).toBe(service.spec.ports[0].port);
    expect(Number(flag('--workers'))).toBe(workers.spec.completions);

    const pod = workers.spec.template.spec;
    const w = pod.containers[0];
    const env: Record<string, string> = Object.fromEntries(w.env.filter((e: { value?: string }) => e.value !== undefined).map((e: { name: string; value: string }) => [e.name, e.value]));
    expect(env[COORDINATOR_ENV]).toBe(`${service.metadata.name}:${service.spec.ports[0].port}`);
    // What the Job controller adds to each pod, and the Secret mounted where --token-file points.
    env.JOB_COMPLETION_INDEX = '5';
    const tokenPath = w.args[w.args.indexOf('--token-file') + 1];
    const mount = w.volumeMounts.find((m: { name: string }) => m.name === pod.volumes.find((v: { secret?: unknown }) => v.secret).name);
    expect(tokenPath.startsWith(`${mount.mountPath}/`)).toBe(true);
    const secretKey = coordinator.spec.template.spec.containers[0].env.find((e: { name: string }) => e.name === 'RINGSWARM_TOKEN').valueFrom.secretKeyRef.key;
    expect(tokenPath.endsWith(`/${secretKey}`)).toBe(true);
    const id = workerIdentity({ tokenFile: tokenPath }, env, (f) => (f === tokenPath ? 'sekrit\n' : ''));
    expect(id).toMatchObject({ controlUrl: 'ws://ringswarm-coordinator:7400', token: 'sekrit', launcher: { kind: 'kubernetes', rank: 5 }, worldSize: workers.spec.completions });
  });

  it('Slurm and Open MPI: the scripts start workers whose launcher sets a rank variable ringswarm reads', () => {
    const sbatch = file('slurm.sbatch');
    expect(sbatch).toMatch(/ringswarm run [^\n]*--spawn 0/);
    expect(sbatch).toMatch(/srun [^\n]*ringswarm worker/);
    expect(sbatch).toContain(`export ${COORDINATOR_ENV}=`);
    expect(RANK_SOURCES.find((s) => s.kind === 'slurm')).toEqual({ kind: 'slurm', rank: 'SLURM_PROCID', size: 'SLURM_NTASKS' });
    const mpi = file('mpirun.sh');
    expect(mpi).toMatch(/ringswarm run [^\n]*--spawn 0/);
    expect(mpi).toMatch(/mpirun [^\n]*-x RINGSWARM_TOKEN -x RINGSWARM_COORDINATOR=/);
    expect(RANK_SOURCES.find((s) => s.kind === 'mpi')).toEqual({ kind: 'mpi', rank: 'OMPI_COMM_WORLD_RANK', size: 'OMPI_COMM_WORLD_SIZE' });
    // As srun and mpirun set them for task 3 of 8.
    const base = { RINGSWARM_COORDINATOR: 'head:7400', RINGSWARM_TOKEN: 't' };
    expect(workerIdentity({}, { ...base, SLURM_PROCID: '3', SLURM_NTASKS: '8' }, () => '').launcher).toEqual({ kind: 'slurm', rank: 3 });
    expect(workerIdentity({}, { ...base, OMPI_COMM_WORLD_RANK: '3', OMPI_COMM_WORLD_SIZE: '8', PMIX_RANK: '3' }, () => '').launcher).toEqual({ kind: 'mpi', rank: 3 });
  });
});
