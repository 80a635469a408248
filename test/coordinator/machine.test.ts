// The coordinator machine driven by hand, one event at a time, with time as a value: the order of
// every message, exit and timer is the test's choice, as in raft's tests.
import { describe, expect, it } from 'vitest';
import { CoordinatorMachine, SETTLE_MS, type CoordinatorAction, type CoordinatorEvent } from '../../src/coordinator/machine.js';
import type { Fault } from '../../src/coordinator/scenario.js';
import { jobSpec } from '../../src/coordinator/run.js';
import { Harness } from './harness.js';

const kill = (rank: number, step: number, phase?: 'reduce-scatter' | 'all-gather'): Fault => ({ id: 0, kind: 'kill', rank, at: { step, ...(phase ? { phase } : {}) } });

describe('coordinator machine', () => {
  it('launches, rings up, trains and finishes: spawn, assign, start, done', () => {
    const h = new Harness({});
    expect(h.actions.filter((a) => a.type === 'spawn').map((a) => (a as { worker: string }).worker)).toEqual(['w0', 'w1', 'w2', 'w3']);
    h.started();
    const assigns = h.sent('assign');
    expect(assigns.map((a) => [a.to, a.msg.rank, a.msg.next.rank, a.msg.prev.rank])).toEqual([
      ['w0', 0, 1, 3],
      ['w1', 1, 2, 0],
      ['w2', 2, 3, 1],
      ['w3', 3, 0, 2],
    ]);
    expect(h.sent('start')).toHaveLength(4);
    for (let s = 0; s < 3; s++) h.step(s);
    h.done();
    expect(h.m.done).toBe(true);
    expect(h.m.ok).toBe(true);
    expect(h.actions.at(-1)).toEqual({ type: 'finish' });
  });

  it('refuses a worker beyond the job: the job is full', () => {
    const h = new Harness({ workers: 2, spawn: 2 });
    h.started();
    const out = h.on({ type: 'joined', worker: { workerId: 'intruder', pid: 9, dataUrl: 'x', spawned: false } });
    expect(out).toContainEqual(expect.objectContaining({ type: 'disconnect', worker: 'intruder', code: 4008 }));
    expect(h.m.rejected).toBe(1);
  });

  it('a kill mid-op: exit, settle, abort, replace in the same rank, restore from the peer copy, resume', () => {
    const h = new Harness({ faults: [kill(2, 1, 'reduce-scatter')] });
    h.started();
    expect(h.sent('assign')[2].msg.faults).toEqual([expect.objectContaining({ id: 0, kind: 'kill', at: { step: 1, phase: 'reduce-scatter' } })]);
    h.step(0);
    h.checkpoint(1);
    h.msg('w2', { type: 'fault', epoch: 0, id: 0, step: 1, phase: 'reduce-scatter', chunk: 0 });
    h.on({ type: 'exit', worker: 'w2', why: 'worker w2 killed by SIGKILL' }, 5);
    expect(h.timers.has('settle')).toBe(true);
    const mark = h.actions.length;
    h.fire('settle');
    expect(h.sent('abort', mark).map((a) => a.msg.epoch)).toEqual([1, 1, 1]);
    for (const w of ['w0', 'w1', 'w3']) h.msg(w, { type: 'aborted', epoch: 1 });
    expect(h.actions.slice(mark)).toContainEqual({ type: 'spawn', worker: 'w2.1' });
    h.join('w2.1');
    const assigns = h.sent('assign', mark);
    expect(assigns.find((a) => a.to === 'w2.1')!.msg.restore).toEqual({ step: 1, source: 'peer', peer: { rank: 3, dataUrl: 'mem://w3' } });
    expect(assigns.find((a) => a.to === 'w0')!.msg.restore).toEqual({ step: 1, source: 'local' });
    h.readyAll();
    const rec = h.m.faultReports()[0];
    expect(rec).toMatchObject({ kind: 'kill', rank: 2, struck: true, detectedBy: 'exit', located: 'rank 2', action: 'restart rank 2', restoredFrom: 'memory', lostSteps: 0 });
    expect(rec.detectedAfterMs).toBe(5);
    for (let s = 1; s < 3; s++) h.step(s);
    h.done();
    expect(h.m.ok).toBe(true);
  });

  it('a second worker dies while the first is being replaced: a second recovery once the epoch rings up', () => {
    const h = new Harness({});
    h.started();
    h.step(0);
    h.on({ type: 'exit', worker: 'w1', why: 'w1 died' });
    h.fire('settle');
    for (const w of ['w0', 'w2', 'w3']) h.msg(w, { type: 'aborted', epoch: 1 });
    // Meanwhile w3 dies too, before w1's replacement has joined.
    h.on({ type: 'exit', worker: 'w3', why: 'w3 died' });
    h.join('w1.1');
    // The epoch cannot ring up with w3 gone: the machine recovers again at once instead of waiting for its ready.
    expect(h.timers.has('settle')).toBe(true);
    h.fire('settle');
    expect(h.m.epoch).toBe(2);
    for (const m of h.m.members.filter((x) => !x.gone)) h.msg(m.workerId, { type: 'aborted', epoch: 2 });
    h.join('w3.2');
    h.readyAll();
    expect(h.m.faultReports().map((f) => [f.kind, f.rank, f.action])).toEqual([
      ['exit', 1, 'restart rank 1'],
      ['exit', 3, 'restart rank 3'],
    ]);
    expect(h.m.restarts).toBe(2);
  });

  it('a coordinator behind its sockets: reports of the aborted epoch sent before a rank heard of the abort still count, and recovery resumes from the newest step', () => {
    // 64 busy workers on 2 cores left the coordinator 3 steps behind; with the two newest
    // checkpoints kept, dropping those reports left no step both kept and counted: back to step 0.
    const h = new Harness({ steps: 8, checkpointEvery: 1 });
    h.started();
    h.step(0);
    h.step(1);
    const report = (w: string, step: number) => {
      h.msg(w, { type: 'step', epoch: 0, step, wrong: 0, timings: { computeMs: 1, allreduceMs: 1, stepMs: 2, waitMs: 0, linkMs: 0, bytesSent: 16 }, rssMB: 50, pssMB: null });
      h.msg(w, { type: 'checkpointed', epoch: 0, step: step + 1, disk: false });
    };
    // w2 reported steps 2 and 3 and died in step 4; the others' reports of 2 and 3 are still in their sockets.
    h.msg('w2', { type: 'checkpointed', epoch: 0, step: 2, disk: false });
    report('w2', 2);
    report('w2', 3);
    h.on({ type: 'exit', worker: 'w2', why: 'worker w2 killed by SIGKILL' });
    const mark = h.actions.length;
    h.fire('settle');
    expect(h.m.epoch).toBe(1);
    for (const w of ['w0', 'w1', 'w3']) {
      report(w, 2);
      report(w, 3);
      const pred = h.m.members[(h.m.members.find((m) => m.workerId === w)!.rank + 3) % 4];
      h.msg(w, { type: 'aborted', epoch: 1, checkpoints: { own: [3, 4], held: [{ firstCard: pred.firstCard, steps: [3, 4] }] } });
    }
    // A report of the old epoch after its rank's ack is not one it sent before the abort: dropped.
    report('w0', 4);
    h.join('w2.1');
    const assigns = h.sent('assign', mark);
    expect(assigns.find((a) => a.to === 'w2.1')!.msg.restore).toMatchObject({ step: 4, source: 'peer' });
    expect(assigns.find((a) => a.to === 'w0')!.msg.restore).toEqual({ step: 4, source: 'local' });
    h.readyAll();
    expect(h.m.faultReports()[0]).toMatchObject({ kind: 'exit', rank: 2, action: 'restart rank 2', lostSteps: 0 });
    for (let s = 4; s < 8; s++) h.step(s);
    h.done();
    expect(h.m.ok).toBe(true);
  });

  it('a crash its peers see first: the exit, learned while the epoch is being aborted, is what was detected, and the rank is replaced in this recovery', () => {
    const crash: Fault = { id: 0, kind: 'crash', rank: 2, at: { step: 1, phase: 'reduce-scatter' }, code: 1 };
    const h = new Harness({ faults: [crash], steps: 3 });
    h.started();
    h.step(0);
    h.checkpoint(1);
    h.msg('w2', { type: 'fault', epoch: 0, id: 0, step: 1, phase: 'reduce-scatter', chunk: 0 });
    h.msg('w3', { type: 'failed', epoch: 0, code: 'RS_ERR_PEER_LOST', message: 'link from rank 2 closed (1006 connection lost)' });
    const mark = h.actions.length;
    h.fire('settle');
    for (const w of ['w0', 'w1', 'w3']) h.msg(w, { type: 'aborted', epoch: 1 });
    expect(h.actions.slice(mark).filter((a) => a.type === 'spawn')).toEqual([]);
    h.on({ type: 'exit', worker: 'w2', why: 'worker w2 exited with code 1' }, 200);
    expect(h.actions.slice(mark)).toContainEqual({ type: 'spawn', worker: 'w2.1' });
    h.join('w2.1');
    h.readyAll();
    expect(h.m.faultReports().map((f) => [f.kind, f.rank, f.detectedBy, f.located, f.action])).toEqual([['crash', 2, 'exit', 'rank 2', 'restart rank 2']]);
    for (let s = 1; s < 3; s++) h.step(s);
    h.done();
    expect(h.m.ok).toBe(true);
  });

  it('a ring-up that keeps failing: rolled back twice, then the rank that cannot ring up is replaced; after 5 in a row it gives up, saying why', () => {
    const h = new Harness({});
    h.started();
    h.step(0);
    // The first failure is in training; each one after it, in the ring-up of the epoch that follows.
    let rounds = 0;
    while (!h.m.done && rounds++ < 10) {
      h.msg(h.m.members[0].workerId, { type: 'failed', epoch: h.m.epoch, code: 'RS_ERR_TIMEOUT', message: 'rank 1 did not connect' });
      if (h.m.done) break;
      const mark = h.actions.length;
      h.fire('settle');
      for (const m of h.m.members) h.msg(m.workerId, { type: 'aborted', epoch: h.m.epoch });
      for (const a of h.actions.slice(mark)) if (a.type === 'spawn') h.join(a.worker);
    }
    expect(h.m.faultReports().map((f) => f.action)).toEqual(['rollback', 'rollback', 'restart rank 0', 'restart rank 0', 'restart rank 0']);
    expect(rounds).toBe(6);
    expect(h.m.done).toBe(true);
    expect(h.m.failure).toMatch(/5 epochs in a row did not ring up/);
  });

  it('a frozen worker: silence, a probe, the kernel says stopped: detected by heartbeat', () => {
    const h = new Harness({ heartbeatDeadMs: 1000 });
    h.started();
    for (let i = 0; i < 12; i++) {
      for (const w of ['w0', 'w1', 'w3']) h.msg(w, { type: 'heartbeat', epoch: 0, rssMB: 50, progress: null }, );
      h.fire('monitor');
      h.t += 100;
    }
    const probes = h.actions.filter((a) => a.type === 'probe');
    expect(probes).toEqual([{ type: 'probe', worker: 'w2' }]);
    h.on({ type: 'probed', worker: 'w2', state: 'running' });
    expect(h.timers.has('settle')).toBe(false); // slow, not frozen
    h.fire('monitor');
    h.on({ type: 'probed', worker: 'w2', state: 'stopped' });
    expect(h.timers.has('settle')).toBe(true);
    h.fire('settle');
    for (const w of ['w0', 'w1', 'w3']) h.msg(w, { type: 'aborted', epoch: 1 });
    expect(h.m.faultReports()[0]).toMatchObject({ kind: 'hang', injected: false, detectedBy: 'heartbeat', located: 'rank 2' });
    expect(SETTLE_MS).toBeGreaterThan(0);
  });

  it('the watchdog fires on an op nobody moves in, never on one that is slow but moving', () => {
    const h = new Harness({ timeoutMs: 1000, heartbeatDeadMs: 100_000 });
    h.started();
    const beat = (w: string, rank: number, received: number) =>
      h.msg(w, { type: 'heartbeat', epoch: 0, rssMB: 50, progress: { opSeq: 0, phase: 'reduce-scatter', step: 0, chunksReceived: received, chunksExpected: 9, chunksSent: received } });
    // Rank 1 waits on rank 2, which is slow but sends a chunk every 900 ms: for 10 s nothing is stuck.
    for (let t = 0; t < 12; t++) {
      h.t += 900;
      beat('w2', 2, t);
      h.msg('w1', { type: 'stalled', epoch: 0, opSeq: 0, idleMs: 1000 + 900 * t });
      h.fire('monitor');
    }
    expect(h.timers.has('settle')).toBe(false);
    // Then nobody moves for the timeout: stuck.
    h.t += 1100;
    h.msg('w1', { type: 'stalled', epoch: 0, opSeq: 0, idleMs: 2000 });
    expect(h.timers.has('settle')).toBe(true);
    h.fire('settle');
    for (const w of ['w0', 'w1', 'w2', 'w3']) h.msg(w, { type: 'aborted', epoch: 1 });
    expect(h.m.faultReports()[0]).toMatchObject({ kind: 'stall', detectedBy: 'watchdog', injected: false });
  });

  it('every injected fault that did not strike says why', () => {
    const faults: Fault[] = [kill(1, 7), { id: 1, kind: 'kill', rank: 2, at: { step: 2 } }];
    const h = new Harness({ faults, steps: 3 });
    h.started();
    for (let s = 0; s < 3; s++) h.step(s);
    h.done();
    const [late, missed] = h.m.faultReports();
    expect(late).toMatchObject({ struck: false, note: 'step 7 is never reached: the run has steps 0..2' });
    expect(missed.struck).toBe(false);
    expect(missed.note).toMatch(/not reached/);
  });

  it('a link fault on a link the algorithm never uses did not strike, and says so', () => {
    const faults: Fault[] = [{ id: 0, kind: 'link', from: 1, to: 3, at: { step: 1 }, cut: true } as Fault];
    const h = new Harness({ faults, workers: 4, spawn: 4, checkpointEvery: 0 });
    h.started();
    expect(h.sent('assign')[1].msg.faults[0]).toMatchObject({ kind: 'link', to: 3, cut: true });
    h.step(0);
    h.msg('w1', { type: 'fault', epoch: 0, id: 0, step: 1, phase: null, chunk: null });
    const f = h.m.faultReports()[0];
    expect(f).toMatchObject({ link: [1, 3], struck: false });
    expect(f.note).toMatch(/not used: under the ring on 4 workers the sender talks only to 2/);
  });

  describe('the same faults give the same timeline, whatever the order their signs arrive in', () => {
    // A corrupt frame from rank 1 and a crash of rank 3 in the same op (a fault at the end of step 1
    // corrupts step 2's frames, where the next fault strikes): each has its own entry, whether the
    // crash's exit comes in the settle window, during the abort, or before the bad frame.
    const faults: Fault[] = [
      { id: 0, kind: 'corrupt', rank: 1, at: { step: 2 }, frames: 1 },
      { id: 1, kind: 'crash', rank: 3, at: { step: 2 }, code: 3 },
    ];
    const strip = (h: Harness) => h.m.faultReports().map(({ detectedAfterMs: _d, recoveredAfterMs: _r, ...f }) => f);
    const run = (order: 'checksum-first' | 'exit-first' | 'exit-in-abort') => {
      const h = new Harness({ faults, steps: 4 });
      h.started();
      h.step(0);
      h.step(1);
      h.checkpoint(2);
      h.msg('w1', { type: 'fault', epoch: 0, id: 0, step: 2, phase: null, chunk: null });
      h.msg('w3', { type: 'fault', epoch: 0, id: 1, step: 2, phase: null, chunk: null });
      const bad = () => h.msg('w2', { type: 'failed', epoch: 0, code: 'RS_ERR_CHECKSUM', message: 'from rank 1: frame checksum 1 does not match payload CRC32C 2 (16 bytes)' });
      const exit = () => h.on({ type: 'exit', worker: 'w3', why: 'worker w3 exited with code 3' });
      if (order === 'exit-first') exit();
      bad();
      if (order === 'checksum-first') exit();
      h.fire('settle');
      if (order === 'exit-in-abort') exit();
      for (const w of ['w0', 'w1', 'w2']) h.msg(w, { type: 'aborted', epoch: 1 });
      if (h.timers.has('abort-ack')) h.fire('abort-ack'); // w3 left during the abort: nothing more to wait for
      h.join('w3.1');
      h.readyAll();
      expect(h.m.epoch).toBe(1); // one recovery for both
      for (let s = 2; s < 4; s++) h.step(s);
      h.done();
      expect(h.m.ok).toBe(true);
      return strip(h);
    };

    it('a corrupt frame and a crash in one op: two entries, each with its own detection and action', () => {
      const t = run('checksum-first');
      expect(t).toEqual([
        expect.objectContaining({ kind: 'corrupt', rank: 1, detectedBy: 'checksum', located: 'link 1->2', action: 'rollback', restoredFrom: 'memory', lostSteps: 0 }),
        expect.objectContaining({ kind: 'crash', rank: 3, detectedBy: 'exit', located: 'rank 3', action: 'restart rank 3', restoredFrom: 'memory', lostSteps: 0 }),
      ]);
      expect(run('exit-first')).toEqual(t);
      expect(run('exit-in-abort')).toEqual(t);
    });

    it('a crash whose exit comes late (after its peers lost their links, when the probe of the abort found it still running): its entry, at once', () => {
      const h = new Harness({ faults: [{ id: 0, kind: 'crash', rank: 3, at: { step: 1 }, code: 3 }], steps: 3 });
      h.started();
      h.step(0);
      h.checkpoint(1);
      h.msg('w3', { type: 'fault', epoch: 0, id: 0, step: 1, phase: null, chunk: null });
      h.msg('w2', { type: 'failed', epoch: 0, code: 'RS_ERR_PEER_LOST', message: 'link from rank 3 closed (1006 connection lost)' });
      h.fire('settle');
      for (const w of ['w0', 'w1', 'w2']) h.msg(w, { type: 'aborted', epoch: 1 });
      h.fire('abort-ack');
      h.on({ type: 'probed', worker: 'w3', state: 'running' }, 0); // still on its way out
      expect(h.timers.has('abort-slow')).toBe(true);
      h.on({ type: 'exit', worker: 'w3', why: 'worker w3 exited with code 3' });
      expect(h.timers.has('abort-slow')).toBe(false); // decided at the exit, not --ready-timeout-ms later
      expect(h.m.faultReports()).toEqual([expect.objectContaining({ kind: 'crash', detectedBy: 'exit', located: 'rank 3', action: 'restart rank 3' })]);
    });

    it('three kills at one step: three entries, one restart each, the steps lost counted once', () => {
      const kills: Fault[] = [1, 2, 3].map((r) => ({ id: r - 1, kind: 'kill', rank: r, at: { step: 1 } }));
      const timeline = (exits: number[]) => {
        const h = new Harness({ faults: kills, workers: 5, spawn: 5 });
        h.started();
        h.step(0);
        h.checkpoint(1);
        for (const r of [1, 2, 3]) h.msg(`w${r}`, { type: 'fault', epoch: 0, id: r - 1, step: 1, phase: null, chunk: null });
        for (const r of exits) h.on({ type: 'exit', worker: `w${r}`, why: `worker w${r} killed by SIGKILL` });
        h.fire('settle');
        for (const w of ['w0', 'w4']) h.msg(w, { type: 'aborted', epoch: 1 });
        for (const a of h.actions) if (a.type === 'spawn' && a.worker.includes('.')) h.join(a.worker);
        h.readyAll();
        return strip(h);
      };
      const t = timeline([3, 1, 2]);
      expect(t.map((f) => [f.rank, f.detectedBy, f.action, f.lostSteps])).toEqual([
        [1, 'exit', 'restart rank 1', 1], // adjacent ranks lost each other's copies: back to step 0, counted in the lowest rank's entry
        [2, 'exit', 'restart rank 2', 0],
        [3, 'exit', 'restart rank 3', 0],
      ]);
      expect(timeline([2, 3, 1])).toEqual(t);
    });

    it('a step a rank finished before the abort reached it counts (its report comes before its answer)', () => {
      const h = new Harness({ faults: [kill(2, 2)], steps: 4 });
      h.started();
      h.step(0);
      h.checkpoint(1);
      const report = (w: string, step: number) =>
        h.msg(w, { type: 'step', epoch: 0, step, wrong: 0, timings: { computeMs: 1, allreduceMs: 1, stepMs: 2, waitMs: 0, linkMs: 0, bytesSent: 16 }, rssMB: 50, pssMB: null });
      for (const w of ['w0', 'w1', 'w2']) report(w, 1);
      h.msg('w2', { type: 'fault', epoch: 0, id: 0, step: 2, phase: null, chunk: null });
      h.on({ type: 'exit', worker: 'w2', why: 'killed' });
      h.fire('settle');
      // w3 was slow: its report of step 1 and its checkpoint of step 2 come after the abort was sent, then its answer.
      report('w3', 1);
      const mark = h.actions.length;
      for (const [w, rank] of [['w0', 0], ['w1', 1], ['w3', 3]] as const) {
        h.msg(w, { type: 'aborted', epoch: 1, checkpoints: { own: [1, 2], held: [{ firstCard: (rank + 3) % 4, steps: [1, 2] }] } });
      }
      h.join('w2.1');
      expect(h.sent('assign', mark).find((a) => a.to === 'w2.1')!.msg.restore).toMatchObject({ step: 2, source: 'peer' });
      h.readyAll();
      expect(h.m.faultReports()[0]).toMatchObject({ action: 'restart rank 2', restoredFrom: 'memory', lostSteps: 0 });
    });
  });

  describe('hangs: detected by their length, not by which timer fires first', () => {
    const hang = (ms: number): Fault => ({ id: 0, kind: 'hang', rank: 2, at: { step: 1 }, ms });
    const strike = (ms: number) => {
      const h = new Harness({ faults: [hang(ms)], heartbeatDeadMs: 1000, steps: 3 });
      h.started();
      h.step(0);
      h.checkpoint(1);
      h.msg('w2', { type: 'fault', epoch: 0, id: 0, step: 1, phase: null, chunk: null });
      return h;
    };
    const sigconts = (h: Harness) => h.actions.filter((a) => a.type === 'signal' && a.signal === 'SIGCONT').length;

    it('a hang past the heartbeat deadline ends (SIGCONT due) before the monitor looked: probed first, detected, and not thawed', () => {
      const h = strike(1050);
      const cont = [...h.timers.keys()].find((n) => n.startsWith('cont:'))!;
      h.fire(cont); // the monitor's tick is late: the thaw comes first
      expect(sigconts(h)).toBe(0);
      expect(h.actions.at(-2)).toEqual({ type: 'probe', worker: 'w2' });
      h.on({ type: 'probed', worker: 'w2', state: 'stopped' }, 0);
      h.fire([...h.timers.keys()].find((n) => n.startsWith('cont:'))!);
      expect(sigconts(h)).toBe(0); // fenced: it stays stopped until it is replaced
      h.fire('settle');
      for (const w of ['w0', 'w1', 'w3']) h.msg(w, { type: 'aborted', epoch: 1 });
      expect(h.m.faultReports()[0]).toMatchObject({ kind: 'hang', detectedBy: 'heartbeat', action: 'restart rank 2' });
    });

    it('a hang under the deadline is thawed and not detected', () => {
      const h = strike(800);
      h.fire([...h.timers.keys()].find((n) => n.startsWith('cont:'))!);
      expect(sigconts(h)).toBe(1);
      expect(h.timers.has('settle')).toBe(false);
    });

    it('a hang under the deadline whose SIGCONT timer fires late is still a short one', () => {
      const h = strike(990);
      h.t += 1100; // the machine is busy: the monitor's tick and the thaw both come late
      h.fire('monitor');
      expect(h.actions.filter((a) => a.type === 'probe' && a.worker === 'w2')).toEqual([]);
      h.fire([...h.timers.keys()].find((n) => n.startsWith('cont:'))!);
      expect(sigconts(h)).toBe(1);
      expect(h.timers.has('settle')).toBe(false);
    });

    it('a short hang found stopped at an abort is waited for (not lost); a long one is frozen once past the deadline', () => {
      for (const [ms, lost] of [
        [800, false],
        [1500, true],
      ] as const) {
        const h = strike(ms);
        // Another rank dies meanwhile: the abort finds rank 2 stopped.
        h.on({ type: 'exit', worker: 'w0', why: 'w0 died' }, 10);
        h.fire('settle');
        for (const w of ['w1', 'w3']) h.msg(w, { type: 'aborted', epoch: 1 });
        h.fire('abort-ack');
        h.on({ type: 'probed', worker: 'w2', state: 'stopped' }, 0);
        // A hang that ends before the deadline is waited for; a longer one is probed again at the deadline.
        expect(h.timers.has('abort-ack')).toBe(lost);
        if (lost) {
          h.fire('abort-ack');
          h.on({ type: 'probed', worker: 'w2', state: 'stopped' }, 0);
        } else {
          h.fire([...h.timers.keys()].find((n) => n.startsWith('cont:'))!);
          expect(sigconts(h)).toBe(1);
          h.msg('w2', { type: 'aborted', epoch: 1 });
        }
        const [exit, hung] = [h.m.faultReports().find((f) => f.kind === 'exit')!, h.m.faultReports().find((f) => f.kind === 'hang')!];
        expect(exit.action).toBe('restart rank 0');
        expect(hung.detectedBy).toBe(lost ? 'heartbeat' : null);
        expect(hung.action).toBe(lost ? 'restart rank 2' : null);
      }
    });
  });

  it('a checkpoint that does not read back: its own entry at the rank (no link, no injected fault), and the restore it spoilt is not reported as done', () => {
    const faults: Fault[] = [kill(1, 2), { id: 1, kind: 'kill', rank: 2, at: { step: 2 } }];
    const h = new Harness({ faults, steps: 4, checkpointDir: '/ck' });
    h.started();
    for (let s = 0; s < 2; s++) {
      for (const m of h.m.members) h.msg(m.workerId, { type: 'checkpointed', epoch: 0, step: s, disk: true });
      h.step(s);
    }
    for (const m of h.m.members) h.msg(m.workerId, { type: 'checkpointed', epoch: 0, step: 2, disk: true });
    for (const r of [1, 2]) {
      h.msg(`w${r}`, { type: 'fault', epoch: 0, id: r - 1, step: 2, phase: null, chunk: null });
      h.on({ type: 'exit', worker: `w${r}`, why: `worker w${r} killed by SIGKILL` });
    }
    h.fire('settle');
    for (const w of ['w0', 'w3']) h.msg(w, { type: 'aborted', epoch: 1 });
    const mark = h.actions.length;
    h.join('w1.1');
    h.join('w2.2');
    // Rank 1's copy sat with rank 2, lost too: from disk.
    expect(h.sent('assign', mark).find((a) => a.to === 'w1.1')!.msg.restore).toMatchObject({ step: 2, source: 'disk' });
    expect(h.m.faultReports()[0].restoredFrom).toBe('disk');
    h.msg('w1.1', { type: 'failed', epoch: 1, code: 'RS_ERR_CHECKSUM', message: 'checkpoint file /ck/cards-1-step-000000002.ckpt: SHA-256 does not match (torn or corrupted)', restore: true });
    expect(h.m.faultReports()[0].restoredFrom).toBeNull(); // not restored from there after all
    h.fire('settle');
    for (const m of h.m.members) h.msg(m.workerId, { type: 'aborted', epoch: 2 });
    h.readyAll();
    const [k1, k2, ck] = h.m.faultReports();
    expect(ck).toMatchObject({ kind: 'checkpoint', injected: false, rank: 1, detectedBy: 'checksum', located: 'rank 1', action: 'rollback' });
    expect(k1).toMatchObject({ kind: 'kill', rank: 1, detectedBy: 'exit', action: 'restart rank 1' });
    expect(k2).toMatchObject({ kind: 'kill', rank: 2, detectedBy: 'exit', action: 'restart rank 2' });
    expect(k1.restoredFrom).not.toBe('disk');
    expect(k1.recoveredAfterMs).not.toBeNull();
  });

  it('an exit before training starts fails the run at once', () => {
    const h = new Harness({});
    h.join('w0');
    h.on({ type: 'exit', worker: 'w1', why: 'worker w1 exited with code 1' });
    expect(h.m.done).toBe(true);
    expect(h.m.failure).toMatch(/before joining/);
  });
});
