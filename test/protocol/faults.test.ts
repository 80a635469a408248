import { describe, expect, it } from 'vitest';
import { FaultOrder } from '../../src/protocol/control.js';
import { FAULT_DEFAULTS, FAULT_KINDS, FAULT_PHASES, STRAGGLER_KINDS } from '../../src/protocol/faults.js';
import { PHASES as FRAME_PHASES } from '../../src/protocol/frame.js';

describe('fault kinds and phases, defined once', () => {
  it('are what a FaultOrder on the wire accepts, and nothing else', () => {
    for (const kind of FAULT_KINDS) {
      for (const phase of FAULT_PHASES) expect(FaultOrder.safeParse({ id: 0, kind, at: { step: 1, phase }, ms: null }).success).toBe(true);
    }
    expect(FaultOrder.safeParse({ id: 0, kind: 'slow', at: { step: 1 }, ms: null }).success).toBe(false);
    expect(FaultOrder.safeParse({ id: 0, kind: 'kill', at: { step: 1, phase: 'broadcast' }, ms: null }).success).toBe(false);
  });

  it('aim faults at frame phases, keep stragglers apart from faults, and default from the kinds', () => {
    for (const p of FAULT_PHASES) expect(FRAME_PHASES).toContain(p);
    expect(STRAGGLER_KINDS.filter((k) => (FAULT_KINDS as readonly string[]).includes(k))).toEqual([]);
    expect(FAULT_DEFAULTS.randomKinds).toBe(FAULT_KINDS);
  });
});
