// --trace on the worker's side: what it did and when, on its own clock, carried to the coordinator
// in its step and bench reports (the coordinator puts them on its own clock: coordinator/trace.ts).
// Nothing here runs without --trace: the worker keeps no SpanLog then.
import { MAX_SPANS_PER_REPORT, type Span, type TraceLane } from '../protocol/control.js';
import type { OpTimings } from '../runtime/op-runner.js';

/** Lanes of a phase, its sends and its receives, by phase name (the frame header's phases). */
const PHASE_LANES: Record<string, { phase: TraceLane; send: TraceLane; recv: TraceLane }> = {
  'reduce-scatter': { phase: 'reduce-scatter', send: 'send reduce-scatter', recv: 'recv reduce-scatter' },
  'all-gather': { phase: 'all-gather', send: 'send all-gather', recv: 'recv all-gather' },
  broadcast: { phase: 'broadcast', send: 'send broadcast', recv: 'recv broadcast' },
};

/** The spans finished since the last report, at most MAX_SPANS_PER_REPORT (the rest counted). */
export class SpanLog {
  private spans: Span[] = [];
  private dropped = 0;

  add(lane: TraceLane, name: string, start: number, end: number, extra?: { step?: number; opSeq?: number; bytes?: number }): void {
    if (this.spans.length >= MAX_SPANS_PER_REPORT) {
      this.dropped++;
      return;
    }
    this.spans.push({ lane, name, start, dur: Math.max(0, end - start), ...extra });
  }

  /** One op's span and its phases', sends' and receives' (from the op runner's timings with trace on). */
  addOp(name: string, t: OpTimings | null, step: number, opSeq: number): void {
    const tr = t?.trace;
    if (!tr) return;
    this.add('op', name, tr.start, tr.end, { step, opSeq, bytes: t.bytesSent });
    for (const p of tr.phases) {
      const lanes = PHASE_LANES[p.phase];
      if (!lanes) continue;
      const start = Math.min(nanToInf(p.sendStart), nanToInf(p.recvStart));
      const end = Math.max(nanToMinusInf(p.sendEnd), nanToMinusInf(p.recvEnd));
      if (start <= end) this.add(lanes.phase, p.phase, start, end, { step, opSeq, bytes: p.bytesSent + p.bytesReceived });
      if (!Number.isNaN(p.sendStart) && !Number.isNaN(p.sendEnd)) this.add(lanes.send, `send ${p.phase}`, p.sendStart, p.sendEnd, { step, opSeq, bytes: p.bytesSent });
      if (!Number.isNaN(p.recvStart) && !Number.isNaN(p.recvEnd)) this.add(lanes.recv, `recv ${p.phase}`, p.recvStart, p.recvEnd, { step, opSeq, bytes: p.bytesReceived });
    }
  }

  /** The report's fields: `spans` (and `spansDropped` when some were), and the log starts afresh. */
  take(): { spans: Span[]; spansDropped?: number } {
    const out = { spans: this.spans, ...(this.dropped ? { spansDropped: this.dropped } : {}) };
    this.spans = [];
    this.dropped = 0;
    return out;
  }
}

const nanToInf = (x: number) => (Number.isNaN(x) ? Infinity : x);
const nanToMinusInf = (x: number) => (Number.isNaN(x) ? -Infinity : x);
