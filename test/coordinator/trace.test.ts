import { describe, expect, it } from 'vitest';
import type { Span } from '../../src/protocol/control.js';
import { COORDINATOR_PID, LANE_TIDS, processName, rankPid, TraceRecorder } from '../../src/coordinator/trace.js';
import { checkTrace, counters, instants, processNames } from './trace-check.js';

const text = (r: TraceRecorder) => [...r.chunks()].join('');
const span = (lane: Span['lane'], start: number, dur: number, step: number): Span => ({ lane, name: lane, start, dur, step, opSeq: step, bytes: 100 });
const byStep = (s: Span) => ({ key: `0:${s.step}`, step: s.step! });

describe('TraceRecorder', () => {
  it('estimates a worker offset as the smallest (arrival - worker clock) and places its spans with it', () => {
    const r = new TraceRecorder({ t0: 1000, command: 'test' });
    expect(r.toCoordinator('w0', 5)).toBeNull();
    r.clockReading('w0', 10, 1500); // 1490 + delay
    r.clockReading('w0', 20, 1503); // 1483: a shorter delay
    r.clockReading('w0', 30, 1600); // a long one: ignored
    expect(r.offsetOf('w0')).toBe(1483);
    expect(r.toCoordinator('w0', 40)).toBe(1523);
    r.nameProcess(rankPid(0), 'rank 0 (worker 42)');
    r.spans('w0', rankPid(0), 0, [span('compute', 40, 2, 0)], byStep);
    const t = checkTrace(text(r));
    const x = t.traceEvents.find((e) => e.ph === 'X')!;
    expect(x).toMatchObject({ pid: 1, tid: LANE_TIDS.compute, ts: 523_000, dur: 2000, args: { epoch: 0, opSeq: 0, step: 0, bytes: 100 } });
    // One lane named per activity used, with its thread name.
    expect(t.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.pid === 1).map((e) => e.args!.name)).toEqual(['compute']);
  });

  it('leaves out spans from a worker whose offset it does not know, and a shared clock needs none', () => {
    const r = new TraceRecorder({ t0: 0, command: 'test' });
    r.spans('w9', rankPid(9), 0, [span('op', 1, 1, 0)], byStep);
    expect(r.summary()).toMatchObject({ events: 2, unplaced: 1 }); // the coordinator's names only
    const s = new TraceRecorder({ t0: 0, command: 'sim', sharedClock: true });
    s.spans('w9', rankPid(9), 0, [span('op', 1, 1, 0)], byStep);
    expect(s.toCoordinator('w9', 7)).toBe(7);
    expect(s.summary().events).toBe(5); // and the lane: its name and place
  });

  it('places spans with the offset of the whole run, when the file is written', () => {
    const r = new TraceRecorder({ t0: 0, command: 'test' });
    r.nameProcess(rankPid(0), 'rank 0 (worker 1)');
    r.clockReading('w0', 0, 100);
    r.spans('w0', 1, 0, [span('op', 10, 10, 0)], byStep);
    r.counter(1, 'step ms', 20, { step: 10 }, '0:0', 0, 'w0');
    r.clockReading('w0', 50, 145); // the offset falls to 95: the span and the counter move with it
    const t = checkTrace(text(r));
    expect(t.traceEvents.find((e) => e.ph === 'X')).toMatchObject({ ts: 105_000, dur: 10_000 });
    expect(counters(t, 'step ms')[0]).toMatchObject({ ts: 115_000, args: { step: 10 } });
  });

  it("never lets two spans of one lane overlap: a rank's replacement with another clock error is clipped, a span left empty dropped", () => {
    const r = new TraceRecorder({ t0: 0, command: 'test' });
    r.nameProcess(rankPid(0), 'rank 0 (worker 1, then 2)');
    r.clockReading('w0', 0, 100);
    r.clockReading('w1', 0, 90);
    r.spans('w0', 1, 0, [span('op', 10, 10, 0)], byStep); // 110..120
    r.spans('w1', 1, 1, [span('op', 25, 10, 1)], byStep); // 115..125: clipped to 120..125
    r.spans('w1', 1, 1, [span('op', 26, 2, 2)], byStep); // 116..118: inside the first, dropped
    r.spans('w1', 1, 1, [span('compute', 25, 10, 2)], byStep); // another lane: as it is
    r.spans('w9', 1, 1, [span('compute', 40, 10, 2)], byStep); // a worker never heard the clock of: left out
    const t = checkTrace(text(r));
    const ops = t.traceEvents.filter((e) => e.ph === 'X' && e.tid === LANE_TIDS.op);
    expect(ops.map((e) => [e.ts, e.dur])).toEqual([
      [110_000, 10_000],
      [120_000, 5000],
    ]);
    expect(r.summary()).toMatchObject({ clipped: 2, unplaced: 1 });
    expect(t.traceEvents.filter((e) => e.ph === 'X' && e.tid === LANE_TIDS.compute)).toMatchObject([{ ts: 115_000, dur: 10_000 }]);
  });

  it('past its bound keeps the first and the last steps, and says so', () => {
    const r = new TraceRecorder({ t0: 0, command: 'test', sharedClock: true, maxEvents: 100 });
    r.nameProcess(rankPid(0), processName(0, [7]));
    for (let step = 0; step < 50; step++) {
      const lanes: Span['lane'][] = ['compute', 'op', 'reduce-scatter', 'all-gather', 'send reduce-scatter', 'send all-gather', 'recv reduce-scatter', 'recv all-gather', 'intra'];
      r.spans('w0', 1, 0, lanes.map((l) => span(l, step * 10, 5, step)), byStep);
      r.counter(COORDINATOR_PID, 'step ms', step * 10 + 5, { step: 5 }, `0:${step}`, step);
    }
    r.instant('fault injected: kill at rank 0', 12, 'p', 1, { kind: 'kill' });
    const s = r.summary();
    expect(s.kept).not.toBeNull();
    const { head, tail, of } = s.kept!;
    expect(of).toBe(50);
    expect(head[0]).toBe(0);
    expect(tail![1]).toBe(49);
    expect(head[1]).toBeLessThan(tail![0]);
    expect(s.dropped).toBe((tail![0] - head[1] - 1) * 10);
    expect(r.describe()).toMatch(new RegExp(`^\\d+ events; steps 0\\.\\.${head[1]} and ${tail![0]}\\.\\.49 kept of 50 step runs, \\d+ events dropped$`));
    const t = checkTrace(text(r));
    // Within the bound (the instants and names come on top), every kept step whole.
    const steps = t.traceEvents.filter((e) => e.ph === 'X').map((e) => e.args!.step as number);
    expect(steps.length).toBeLessThanOrEqual(100);
    for (let st = 0; st < 50; st++) expect(steps.filter((x) => x === st).length, `step ${st}`).toBe(st <= head[1] || st >= tail![0] ? 9 : 0);
    expect(counters(t, 'step ms').length).toBe(head[1] + 1 + 50 - tail![0]);
    expect(instants(t, 'trace truncated')).toHaveLength(1);
    expect(instants(t, 'fault injected')).toHaveLength(1);
    expect(t.metadata).toMatchObject({ truncated: true, keptSteps: { head, tail, of: 50 }, droppedEvents: s.dropped });
    expect(processNames(t)).toEqual(['coordinator', 'rank 0 (worker 7)']);
  });

  it('names a rank by its workers: the first, then its replacements', () => {
    expect(processName(3, [1234])).toBe('rank 3 (worker 1234)');
    expect(processName(3, [1234, 1301])).toBe('rank 3 (worker 1234, then 1301)');
  });
});
