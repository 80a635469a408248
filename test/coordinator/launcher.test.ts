// Workers a launcher started (srun, mpirun, a Kubernetes Indexed Job): they take the rank their
// launcher gave them, and back after a restart; ranks from --workers up are spares; a world size
// that disagrees with the job is refused. The machine driven by hand, with time as a value.
import { describe, expect, it } from 'vitest';
import type { LauncherKind } from '../../src/protocol/names.js';
import { Harness } from './harness.js';

const joinRanked = (h: Harness, id: string, rank: number, o: { kind?: LauncherKind; worldSize?: number | null; pid?: number } = {}) =>
  h.on({
    type: 'joined',
    worker: { workerId: id, pid: o.pid ?? 500 + rank, dataUrl: `mem://${id}`, spawned: false, host: `node${rank % 2}`, launcher: { kind: o.kind ?? 'slurm', rank }, worldSize: o.worldSize ?? null },
  });

const refusals = (h: Harness, since = 0) => h.actions.slice(since).flatMap((a) => (a.type === 'disconnect' ? [a.reason] : []));

describe('workers a launcher started', () => {
  it('ranks by the launcher, whatever order they arrive in; spawns nothing with --spawn 0', () => {
    const h = new Harness({ workers: 4, spawn: 0 });
    expect(h.actions.filter((a) => a.type === 'spawn')).toEqual([]);
    for (const r of [2, 0, 3, 1]) joinRanked(h, `t${r}`, r, { worldSize: 4 });
    expect(h.m.members.map((m) => m.workerId)).toEqual(['t0', 't1', 't2', 't3']);
    expect(h.sent('assign').map((a) => [a.to, a.msg.rank])).toEqual([
      ['t0', 0],
      ['t1', 1],
      ['t2', 2],
      ['t3', 3],
    ]);
    expect(h.m.members[2].host).toBe('node0');
  });

  it('refuses a world size that is not --workers + --spares, naming both', () => {
    const h = new Harness({ workers: 4, spawn: 0, onFailure: 'spare', spares: 1 });
    joinRanked(h, 't0', 0, { worldSize: 8 });
    expect(refusals(h)).toEqual(['RS_ERR_PROTOCOL: the launcher (slurm) gives world size 8, but this job has --workers 4 + --spares 1 = 5']);
    expect(h.actions).toContainEqual(expect.objectContaining({ type: 'disconnect', worker: 't0', code: 4008 }));
    expect(h.m.rejected).toBe(1);
  });

  it('refuses a rank out of range, a rank already held, and a rank this coordinator spawns', () => {
    const h = new Harness({ workers: 4, spawn: 2 });
    joinRanked(h, 'a', 4);
    joinRanked(h, 'b', 3, { kind: 'mpi' });
    joinRanked(h, 'c', 3, { kind: 'mpi' });
    joinRanked(h, 'd', 1);
    expect(refusals(h)).toEqual([
      'RS_ERR_PROTOCOL: rank 4 (slurm) is not below this job\'s world size, --workers 4 + --spares 0 = 4',
      'RS_ERR_PROTOCOL: rank 3 (mpi) is held by worker b (pid 503 on node1)',
      'RS_ERR_PROTOCOL: rank 1 (slurm) belongs to a worker this coordinator spawns (--spawn 2)',
    ]);
    // The spawned w0, w1 and the launcher's rank 3 leave rank 2 to the next joiner without a rank.
    h.join('w0');
    h.join('w1');
    h.on({ type: 'joined', worker: { workerId: 'x', pid: 900, dataUrl: 'mem://x', spawned: false } });
    expect(h.m.members.map((m) => m.workerId)).toEqual(['w0', 'w1', 'x', 'b']);
  });

  it('ranks from --workers up join as spares, before or after the start; --on-failure spare uses them', () => {
    const h = new Harness({ workers: 3, spawn: 0, onFailure: 'spare', spares: 2 });
    expect(h.actions.filter((a) => a.type === 'spawn')).toEqual([]);
    joinRanked(h, 't3', 3);
    for (const r of [0, 1, 2]) joinRanked(h, `t${r}`, r);
    h.readyAll();
    joinRanked(h, 't4', 4);
    expect(h.m.spares.map((m) => m.workerId)).toEqual(['t3', 't4']);
    h.step(0);
    const mark = h.actions.length;
    h.on({ type: 'exit', worker: 't1', why: 'closed its control connection' });
    h.fire('settle');
    for (const w of ['t0', 't2']) h.msg(w, { type: 'aborted', epoch: 1 });
    expect(h.actions.slice(mark).filter((a) => a.type === 'spawn')).toEqual([]);
    expect(h.m.members.map((m) => m.workerId)).toEqual(['t0', 't3', 't2']);
    expect(h.m.faultReports()[0]).toMatchObject({ action: 'spare rank 1' });
  });

  it('restart waits for the launcher to bring the rank back, and it takes its rank back', () => {
    const h = new Harness({ workers: 3, spawn: 0, rejoinTimeoutMs: 30_000 });
    for (const r of [0, 1, 2]) joinRanked(h, `t${r}`, r, { kind: 'kubernetes' });
    h.readyAll();
    h.step(0);
    const mark = h.actions.length;
    h.on({ type: 'exit', worker: 't1', why: 'closed its control connection' });
    h.fire('settle');
    for (const w of ['t0', 't2']) h.msg(w, { type: 'aborted', epoch: 1 });
    expect(h.actions.slice(mark).filter((a) => a.type === 'spawn')).toEqual([]);
    expect(h.timers.get('join')! - h.t).toBe(30_000);
    // Its old process is gone; the launcher's new one says the same rank.
    joinRanked(h, 't1-again', 1, { kind: 'kubernetes', pid: 777 });
    expect(h.m.members.map((m) => m.workerId)).toEqual(['t0', 't1-again', 't2']);
    expect(h.sent('assign', mark).find((a) => a.to === 't1-again')!.msg.rank).toBe(1);
    h.readyAll();
    const from = h.sent('start', mark)[0].msg.fromStep;
    for (let s = from; s < 3; s++) h.step(s);
    h.done();
    expect(h.m.ok).toBe(true);
    expect(h.m.faultReports()[0]).toMatchObject({ detectedBy: 'exit', action: 'restart rank 1' });
  });

  it('a rejoiner that comes before its rank is asked for is kept until then', () => {
    const h = new Harness({ workers: 3, spawn: 0 });
    for (const r of [0, 1, 2]) joinRanked(h, `t${r}`, r);
    h.readyAll();
    h.step(0);
    h.on({ type: 'exit', worker: 't2', why: 'closed' });
    joinRanked(h, 't2b', 2, { pid: 4242 });
    expect(refusals(h)).toEqual([]);
    h.fire('settle');
    for (const w of ['t0', 't1']) h.msg(w, { type: 'aborted', epoch: 1 });
    expect(h.m.members.map((m) => m.workerId)).toEqual(['t0', 't1', 't2b']);
  });

  it('fails clearly when no worker comes back within --rejoin-timeout-ms', () => {
    const h = new Harness({ workers: 3, spawn: 0, rejoinTimeoutMs: 5_000 });
    for (const r of [0, 1, 2]) joinRanked(h, `t${r}`, r);
    h.readyAll();
    h.step(0);
    h.on({ type: 'exit', worker: 't0', why: 'closed' });
    h.fire('settle');
    for (const w of ['t1', 't2']) h.msg(w, { type: 'aborted', epoch: 1 });
    h.fire('join');
    expect(h.m.done).toBe(true);
    expect(h.m.failure).toMatch(/^no worker came back for rank 0 within --rejoin-timeout-ms 5000: this coordinator did not start it/);
  });

  it('kill and hang on a worker it did not spawn are orders to the worker, not signals', () => {
    const h = new Harness({
      workers: 2,
      spawn: 0,
      faults: [
        { id: 0, kind: 'kill', rank: 0, at: { ms: 10 } },
        { id: 1, kind: 'hang', rank: 1, at: { ms: 10 }, ms: 200 },
      ],
    });
    for (const r of [0, 1]) joinRanked(h, `t${r}`, r);
    h.readyAll();
    const mark = h.actions.length;
    h.fire('fault:0');
    h.fire('fault:1');
    const after = h.actions.slice(mark);
    expect(after.filter((a) => a.type === 'signal' && a.signal !== 'SIGCONT')).toEqual([]);
    expect(h.sent('inject', mark).map((a) => [a.to, a.msg.fault.kind, a.msg.fault.ms])).toEqual([
      ['t0', 'kill', null],
      ['t1', 'hang', 200],
    ]);
  });
});
