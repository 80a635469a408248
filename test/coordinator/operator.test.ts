// Faults injected into a running job and the status an operator sees (`ringswarm inject`,
// `ringswarm status`): the machine driven by hand, with time as a value.
import { describe, expect, it } from 'vitest';
import type { CoordinatorAction, InjectAnswer } from '../../src/coordinator/machine.js';
import type { FaultInput } from '../../src/coordinator/scenario/index.js';
import { Harness } from './harness.js';

let refs = 0;
/** Inject `spec` and return the machine's answer (it answers within the same event). */
function inject(h: Harness, spec: string | FaultInput): InjectAnswer {
  const ref = ++refs;
  const out = h.on({ type: 'inject', spec, ref });
  const a = out.find((x): x is Extract<CoordinatorAction, { type: 'answer' }> => x.type === 'answer' && x.ref === ref);
  expect(a, 'the machine answers every inject').toBeDefined();
  return a!.answer;
}

const error = (a: InjectAnswer) => (a.ok ? 'taken' : a.error);
const heartbeat = (h: Harness, worker: string, progress: { opSeq: number; phase: string; chunksReceived: number } | null) =>
  h.msg(worker, {
    type: 'heartbeat',
    epoch: h.m.epoch,
    rssMB: 50,
    progress: progress && { ...progress, step: 0, chunksExpected: 6, chunksSent: progress.chunksReceived, moved: progress.chunksReceived },
  });

describe('a fault injected into the running job', () => {
  it('without a trigger strikes now: a spawned worker is killed, and the fault is recorded live with its ground truth', () => {
    const h = new Harness({ workers: 4, steps: 6 });
    h.started();
    h.step(0);
    const a = inject(h, 'kill:rank=2');
    expect(a).toEqual({ ok: true, id: 0, fault: expect.objectContaining({ id: 0, kind: 'kill', rank: 2, live: true, injected: true, struck: false }) });
    // Armed at 0 ms: the driver's timer fires it.
    expect(h.timers.has('fault:0')).toBe(true);
    const out = h.fire('fault:0');
    expect(out).toContainEqual({ type: 'signal', worker: 'w2', signal: 'SIGKILL' });
    h.on({ type: 'exit', worker: 'w2', why: 'worker w2 killed by SIGKILL' });
    h.fire('settle');
    for (const w of ['w0', 'w1', 'w3']) h.msg(w, { type: 'aborted', epoch: 1 });
    expect(h.m.faults[0]).toMatchObject({ kind: 'kill', rank: 2, live: true, struck: true, atStep: 1, detectedBy: 'exit' });
  });

  it('with step=N arms the rank for that step, now and in every later epoch', () => {
    const h = new Harness({ workers: 3, steps: 8, spawn: 3 });
    h.started();
    h.step(0);
    const a = inject(h, 'crash:rank=1:step=4:phase=all-gather');
    expect(a.ok).toBe(true);
    expect(h.sent('inject')).toEqual([
      { to: 'w1', msg: { type: 'inject', epoch: 0, arm: true, fault: { id: 0, kind: 'crash', at: { step: 4, phase: 'all-gather' }, ms: null, code: 1 } } },
    ]);
    // A recovery before step 4: the new epoch's assignment carries it.
    h.on({ type: 'exit', worker: 'w0', why: 'worker w0 killed by SIGKILL' });
    h.fire('settle');
    for (const w of ['w1', 'w2']) h.msg(w, { type: 'aborted', epoch: 1 });
    const since = h.actions.length;
    h.join('w0.1');
    const assigns = h.sent('assign', since);
    expect(assigns.find((x) => x.msg.rank === 1)!.msg.faults).toEqual([expect.objectContaining({ id: 0, kind: 'crash', at: { step: 4, phase: 'all-gather' } })]);
    expect(assigns.find((x) => x.msg.rank === 0)!.msg.faults).toEqual([]);
  });

  it('refuses what it cannot carry out, with the --inject messages, and takes nothing', () => {
    const h = new Harness({ workers: 3, steps: 5 });
    h.started();
    h.step(0);
    h.step(1);
    expect(error(inject(h, 'kill:rank=3'))).toBe('inject: fault.rank: 3 is not a rank (0..2)');
    expect(error(inject(h, 'kill:rank=1:step=1'))).toBe('step 1 has passed: every rank has done steps 0..1');
    expect(error(inject(h, 'kill:rank=1:step=9'))).toMatch(/^inject: fault\.at\.step: 9 never comes, the run has 5 steps/);
    expect(error(inject(h, 'slow:rank=1:factor=3'))).toMatch(/^inject: fault\.kind: "slow" is set when a run starts/);
    expect(error(inject(h, 'random:meanSteps=2'))).toMatch(/is set when a run starts/);
    expect(error(inject(h, 'bogus:rank=1'))).toMatch(/^inject: fault\.kind/);
    expect(error(inject(h, { kind: 'kill' }))).toMatch(/^inject: fault\.rank: required/);
    expect(h.m.faults).toEqual([]);
    expect(h.sent('inject')).toEqual([]);
  });

  it('ids follow the scenario faults and stragglers; an entry object works like the shorthand', () => {
    const h = new Harness({
      workers: 3,
      steps: 6,
      faults: [{ id: 0, kind: 'kill', rank: 0, at: { step: 5 } }],
      stragglers: [{ id: 1, kind: 'slow', rank: 1, at: { step: 0 }, factor: 2 }],
    });
    h.started();
    const a = inject(h, { kind: 'hang', rank: 2, ms: 300, at: { step: 3 } });
    expect(a).toMatchObject({ ok: true, id: 2, fault: { id: 2, kind: 'hang', rank: 2, atStep: 3 } });
    expect(inject(h, 'kill:rank=1:step=4')).toMatchObject({ ok: true, id: 3 });
  });

  it('before training starts, a fault for now strikes when training starts; after the run, none is taken', () => {
    const h = new Harness({ workers: 2, steps: 2 });
    h.join('w0');
    expect(inject(h, 'kill:rank=1')).toMatchObject({ ok: true, id: 0 });
    expect(h.timers.has('fault:0')).toBe(false);
    h.join('w1');
    h.readyAll();
    expect(h.timers.has('fault:0')).toBe(true);
    const done = new Harness({ workers: 2, steps: 1 });
    done.started();
    done.step(0);
    done.done();
    expect(done.m.done).toBe(true);
    expect(error(inject(done, 'kill:rank=1'))).toBe('the run has finished');
  });
});

describe('the status an operator sees', () => {
  it('per rank: pid, host, state, the op it is in, heartbeat age; the step under way', () => {
    const h = new Harness({ workers: 3, steps: 5, heartbeatDeadMs: 1000 });
    h.started();
    h.step(0);
    heartbeat(h, 'w0', { opSeq: 1, phase: 'reduce-scatter', chunksReceived: 2 });
    heartbeat(h, 'w1', null);
    const s = h.m.statusSnapshot(h.t + 5);
    expect(s).toMatchObject({ phase: 'training', epoch: 0, step: 1, waitingFor: [], job: { workers: 3, steps: 5, algo: 'ring', onFailure: 'restart' } });
    expect(s.ranks.map((r) => [r.rank, r.pid, r.state, r.opSeq, r.phase, r.chunk])).toEqual([
      [0, 100, 'training', 1, 'reduce-scatter', 2],
      [1, 101, 'training', 0, 'done', null],
      [2, 102, 'training', 0, 'done', null],
    ]);
    expect(s.ranks[0].heartbeatAgeMs).toBe(6);
  });

  it('when the job is stuck: the silent rank is the one everyone waits for', () => {
    const h = new Harness({ workers: 4, steps: 5, heartbeatDeadMs: 1000 });
    h.started();
    h.step(0);
    for (const [w, c] of [['w0', 3], ['w1', 3], ['w2', 1]] as const) heartbeat(h, w, { opSeq: 1, phase: 'reduce-scatter', chunksReceived: c });
    const later = h.t + 1500;
    for (const w of ['w0', 'w1', 'w2']) h.on({ type: 'message', worker: w, msg: { type: 'heartbeat', epoch: 0, rssMB: 50, progress: { opSeq: 1, phase: 'reduce-scatter', step: 0, chunksReceived: 3, chunksExpected: 6, chunksSent: 3, moved: 3 } } }, later - h.t);
    const s = h.m.statusSnapshot(h.t);
    expect(s.ranks.find((r) => r.rank === 3)).toMatchObject({ state: 'silent', heartbeatAgeMs: expect.any(Number) });
    expect(s.ranks[3].heartbeatAgeMs).toBeGreaterThan(1000);
    expect(s.waitingFor).toEqual([3]);
  });

  it('a dead rank, the ring after a recovery, and the faults counted', () => {
    const h = new Harness({ workers: 3, steps: 4 });
    h.started();
    h.on({ type: 'exit', worker: 'w1', why: 'worker w1 killed by SIGKILL' });
    const s = h.m.statusSnapshot(h.t);
    expect(s.ranks.map((r) => r.state)).toEqual(['recovering', 'dead', 'recovering']);
    h.fire('settle');
    for (const w of ['w0', 'w2']) h.msg(w, { type: 'aborted', epoch: 1 });
    expect(h.m.statusSnapshot(h.t)).toMatchObject({ phase: 'recovering', faults: { injected: 0, detected: 1, recovered: 0 } });
    h.join('w1.1');
    h.readyAll();
    const after = h.m.statusSnapshot(h.t);
    expect(after).toMatchObject({ phase: 'training', epoch: 1, faults: { detected: 1, recovered: 1 } });
    expect(after.ranks.map((r) => [r.workerId, r.state])).toEqual([['w0', 'training'], ['w1.1', 'training'], ['w2', 'training']]);
  });
});
