// Checks of a --trace file that every trace test makes: what Perfetto needs to draw it as meant.
import { expect } from 'vitest';

export interface TraceEvent {
  ph: string;
  pid: number;
  tid: number;
  ts?: number;
  dur?: number;
  name: string;
  s?: string;
  cat?: string;
  args?: Record<string, unknown>;
}

export interface TraceFile {
  traceEvents: TraceEvent[];
  displayTimeUnit: string;
  metadata: Record<string, unknown>;
}

/** Parse, then: the shape; a name per process; on every (pid, tid) lane, no complete event begins before the previous one ended. */
export function checkTrace(text: string): TraceFile {
  const t = JSON.parse(text) as TraceFile;
  expect(Array.isArray(t.traceEvents)).toBe(true);
  expect(t.displayTimeUnit).toBe('ms');
  const named = new Set(t.traceEvents.filter((e) => e.ph === 'M' && e.name === 'process_name').map((e) => e.pid));
  const lanes = new Map<string, TraceEvent[]>();
  for (const e of t.traceEvents) {
    expect(named.has(e.pid), `event ${e.name} of unnamed process ${e.pid}`).toBe(true);
    if (e.ph === 'M') continue;
    expect(Number.isFinite(e.ts), `ts of ${e.name}`).toBe(true);
    if (e.ph !== 'X') continue;
    expect(e.dur! >= 0).toBe(true);
    const key = `${e.pid}/${e.tid}`;
    const l = lanes.get(key) ?? [];
    l.push(e);
    lanes.set(key, l);
  }
  for (const [key, l] of lanes) {
    l.sort((a, b) => a.ts! - b.ts!);
    for (let i = 1; i < l.length; i++) {
      const prevEnd = l[i - 1].ts! + l[i - 1].dur!;
      expect(l[i].ts! + 1e-6 >= prevEnd, `lane ${key}: ${l[i].name} at ${l[i].ts} begins before ${l[i - 1].name} ends (${prevEnd})`).toBe(true);
    }
  }
  return t;
}

export const processNames = (t: TraceFile) => t.traceEvents.filter((e) => e.ph === 'M' && e.name === 'process_name').map((e) => String(e.args!.name));
export const instants = (t: TraceFile, prefix: string) => t.traceEvents.filter((e) => e.ph === 'i' && e.name.startsWith(prefix));
export const counters = (t: TraceFile, name: string) => t.traceEvents.filter((e) => e.ph === 'C' && e.name === name);
