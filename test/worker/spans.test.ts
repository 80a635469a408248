import { describe, expect, it } from 'vitest';
import { MAX_SPANS_PER_REPORT, WorkerMessage } from '../../src/protocol/control.js';
import { SpanLog } from '../../src/worker/spans.js';

describe('SpanLog', () => {
  it('turns an op timing into spans on the op, phase, send and receive lanes; a phase that only sent has no receive span', () => {
    const log = new SpanLog();
    log.addOp('all-reduce (ring)', {
      opMs: 10,
      waitMs: 0,
      linkMs: 0,
      sleptMs: null,
      bytesSent: 300,
      links: [],
      trace: {
        start: 100,
        end: 110,
        phases: [
          { phase: 'reduce-scatter', sendStart: 100, sendEnd: 104, recvStart: 101, recvEnd: 105, bytesSent: 200, bytesReceived: 200 },
          { phase: 'all-gather', sendStart: 105, sendEnd: 109, recvStart: NaN, recvEnd: NaN, bytesSent: 100, bytesReceived: 0 },
        ],
      },
    }, 7, 7);
    const { spans } = log.take();
    expect(spans.map((s) => [s.lane, s.start, s.dur, s.bytes])).toEqual([
      ['op', 100, 10, 300],
      ['reduce-scatter', 100, 5, 400],
      ['send reduce-scatter', 100, 4, 200],
      ['recv reduce-scatter', 101, 4, 200],
      ['all-gather', 105, 4, 100],
      ['send all-gather', 105, 4, 100],
    ]);
    expect(spans.every((s) => s.step === 7 && s.opSeq === 7)).toBe(true);
    expect(log.take()).toEqual({ spans: [] });
  });

  it('is bounded per report, counts what it leaves out, and its reports pass the protocol', () => {
    const log = new SpanLog();
    for (let i = 0; i < MAX_SPANS_PER_REPORT + 5; i++) log.add('compute', 'compute', i, i + 0.5, { step: i });
    const taken = log.take();
    expect(taken.spans).toHaveLength(MAX_SPANS_PER_REPORT);
    expect(taken.spansDropped).toBe(5);
    const timings = { computeMs: 0, allreduceMs: 0, stepMs: 0, waitMs: 0, linkMs: 0, bytesSent: 0 };
    const msg = { type: 'step', epoch: 0, step: 0, wrong: 0, timings, rssMB: 1, pssMB: null, ...taken, clock: 12.5 };
    expect(WorkerMessage.safeParse(msg).success).toBe(true);
    expect(WorkerMessage.safeParse({ ...msg, spans: [...taken.spans, taken.spans[0]] }).success).toBe(false);
    expect(WorkerMessage.safeParse({ ...msg, spans: [{ ...taken.spans[0], lane: 'elsewhere' }] }).success).toBe(false);
  });
});
