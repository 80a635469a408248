// The checkpoint planner against cases worked by hand (the arithmetic is in the comments).
import { describe, expect, it } from 'vitest';
import {
  dalyIntervalS,
  expectedEttr,
  intervalInSteps,
  jobMtbfForEttrS,
  jobMtbfHours,
  lostWorkPerFailureS,
  perCardRate,
  plan,
  referencePoints,
  youngIntervalS,
} from '../../src/coordinator/plan.js';
import { figuresFromReport } from '../../src/coordinator/plan-report.js';

// The running case: 1,000 cards of 50,000 h each, a 60 s checkpoint, a 10 min recovery.
//   M = 50,000 / 1,000 = 50 h = 180,000 s
//   Young: τ = sqrt(2 · 60 · 180,000) = sqrt(21,600,000) = 4,647.58 s
//   Daly:  C/2M = 60 / 360,000 = 1/6,000; sqrt = 0.0129099
//          factor = 1 + 0.0129099/3 + (1/6,000)/9 = 1 + 0.0043033 + 0.0000185 = 1.0043218
//          τ = 4,647.58 · 1.0043218 − 60 = 4,667.67 − 60 = 4,607.67 s
//   ETTR:  e^{R/M} = e^{600/180,000} = e^{1/300} = 1.0033389
//          e^{(τ+C)/M} − 1 = e^{4,667.67/180,000} − 1 = e^{0.0259315} − 1 = 0.0262707
//          ETTR = 4,607.67 / (180,000 · 1.0033389 · 0.0262707) = 4,607.67 / 4,744.5 = 0.97116
const M50H = 180_000;

describe('job MTBF and the intervals', () => {
  it('divides a card MTBF by the cards', () => {
    expect(jobMtbfHours(50_000, 1_000)).toBe(50);
    expect(jobMtbfHours(50_000, 100_000)).toBe(0.5);
  });

  it("gives Young's interval", () => {
    expect(youngIntervalS(60, M50H)).toBeCloseTo(4647.58, 2);
    // sqrt(2 · 1 · 50) = 10
    expect(youngIntervalS(1, 50)).toBe(10);
  });

  it("gives Daly's higher-order interval, a little under Young's", () => {
    expect(dalyIntervalS(60, M50H)).toBeCloseTo(4607.67, 1);
    // C = 8, M = 16: C/2M = 1/4, sqrt(2·8·16) = 16; 16 · (1 + 0.5/3 + 0.25/9) − 8 = 16 · 1.194444 − 8 = 11.1111
    expect(dalyIntervalS(8, 16)).toBeCloseTo(11.1111, 3);
  });

  it('takes M itself once a checkpoint costs 2M or more', () => {
    expect(dalyIntervalS(3600, 1800)).toBe(1800);
    expect(dalyIntervalS(3600, 1799)).toBe(1799);
  });

  it('is 0 for a free checkpoint', () => {
    expect(youngIntervalS(0, M50H)).toBe(0);
    expect(dalyIntervalS(0, M50H)).toBe(0);
  });
});

describe('expected ETTR', () => {
  it('matches the hand-computed case', () => {
    expect(expectedEttr(dalyIntervalS(60, M50H), 60, 600, M50H)).toBeCloseTo(0.97116, 5);
  });

  it('is worse either side of the optimum', () => {
    const best = expectedEttr(dalyIntervalS(60, M50H), 60, 600, M50H);
    expect(expectedEttr(2000, 60, 600, M50H)).toBeLessThan(best);
    expect(expectedEttr(10_000, 60, 600, M50H)).toBeLessThan(best);
  });

  it('with C ≥ 2M: 1 / (e^{(M + 2M)/M} − 1) = 1 / (e³ − 1) = 0.052396 when R = 0', () => {
    expect(expectedEttr(dalyIntervalS(3600, 1800), 3600, 0, 1800)).toBeCloseTo(0.052396, 6);
  });

  it('falls towards 0 when recovery is long against the MTBF: at most e^{-R/M}', () => {
    const e = expectedEttr(dalyIntervalS(60, 3600), 60, 36_000, 3600);
    expect(e).toBeGreaterThan(0);
    expect(e).toBeLessThan(Math.exp(-10));
    expect(expectedEttr(1, 1e6, 1e9, 1)).toBe(0);
  });

  it('is 1 with free checkpoints and instant recovery, e^{-R/M} with free checkpoints alone', () => {
    expect(expectedEttr(0, 0, 0, M50H)).toBe(1);
    expect(expectedEttr(0, 0, 1800, M50H)).toBeCloseTo(Math.exp(-0.01), 12);
    expect(expectedEttr(0, 60, 0, M50H)).toBe(0);
  });

  it('refuses nonsense', () => {
    expect(() => expectedEttr(10, 1, 1, 0)).toThrow(RangeError);
    expect(() => expectedEttr(-1, 1, 1, 10)).toThrow(RangeError);
    expect(() => jobMtbfHours(50_000, 0)).toThrow(RangeError);
  });
});

describe('lost work per failure', () => {
  it('is about half a segment when the segment is short against M', () => {
    // T = 4,607.67 + 60 = 4,667.67 s; T/2 = 2,333.8; exact M − T/(e^{T/M} − 1) is a little less
    const lost = lostWorkPerFailureS(4607.67, 60, M50H);
    expect(lost).toBeLessThan(4667.67 / 2);
    expect(lost).toBeCloseTo(2323.9, 0);
    expect(lostWorkPerFailureS(1, 0, 1e9)).toBeCloseTo(0.5, 9);
  });

  it('is M (1 − 1/(e − 1)) = 0.418023 M for a segment as long as M', () => {
    expect(lostWorkPerFailureS(900, 100, 1000)).toBeCloseTo(418.023, 3);
  });
});

describe('intervals in whole steps', () => {
  it('takes the better whole number of steps around Daly', () => {
    // 4,607.67 s / 1.5 s = 3,071.8 steps: 3,071 or 3,072
    const k = intervalInSteps(60, 600, M50H, 1.5);
    expect([3071, 3072]).toContain(k);
    const e = (n: number) => expectedEttr(n * 1.5, 60, 600, M50H);
    expect(e(k)).toBeGreaterThanOrEqual(Math.max(e(3071), e(3072)));
  });

  it('never goes below one step', () => {
    expect(intervalInSteps(0, 0, M50H, 10)).toBe(1);
    expect(intervalInSteps(60, 600, M50H, 1e6)).toBe(1);
  });
});

describe('plan rows', () => {
  const input = { cards: 1_000, cardMtbfHours: 50_000, checkpointS: 60, recoveryS: 600 };

  it('shows 1,000, 10,000 and 100,000 cards, the plan card count once, marked', () => {
    expect(plan(input).map((r) => [r.cards, r.given])).toEqual([
      [1_000, true],
      [10_000, false],
      [100_000, false],
    ]);
    expect(plan({ ...input, cards: 16_384 }).map((r) => [r.cards, r.given])).toEqual([
      [1_000, false],
      [10_000, false],
      [16_384, true],
      [100_000, false],
    ]);
  });

  it('matches the hand-computed rows', () => {
    const [r1k, r10k] = plan(input);
    expect(r1k.jobMtbfHours).toBe(50);
    expect(r1k.failuresPerDay).toBeCloseTo(0.48, 12);
    expect(r1k.youngIntervalS).toBeCloseTo(4647.58, 2);
    expect(r1k.optimalIntervalS).toBeCloseTo(4607.67, 1);
    expect(r1k.ettr).toBeCloseTo(0.97116, 5);
    expect(r1k.intervalSteps).toBeNull();
    // 10,000 cards: M = 5 h = 18,000 s; Young sqrt(2·60·18,000) = 1,469.69 s;
    // C/2M = 1/600, factor 1 + 0.0408248/3 + 0.0018519/9 = 1.0138141; 1,469.69 · 1.0138141 − 60 = 1,429.97 s
    expect(r10k.jobMtbfHours).toBe(5);
    expect(r10k.youngIntervalS).toBeCloseTo(1469.69, 2);
    expect(r10k.optimalIntervalS).toBeCloseTo(1429.97, 1);
    expect(r10k.ettr).toBeCloseTo(0.89038, 5);
  });

  it('gets worse with every added card', () => {
    const rows = plan({ ...input, cards: 16_384 });
    for (let i = 1; i < rows.length; i++) {
      expect(rows[i].jobMtbfHours).toBeLessThan(rows[i - 1].jobMtbfHours);
      expect(rows[i].optimalIntervalS).toBeLessThan(rows[i - 1].optimalIntervalS);
      expect(rows[i].ettr).toBeLessThan(rows[i - 1].ettr);
    }
    for (const r of rows) {
      expect(r.ettr).toBeGreaterThanOrEqual(0);
      expect(r.ettr).toBeLessThanOrEqual(1);
    }
  });

  it('rounds to whole steps when given a step time, and counts lost steps', () => {
    const [r] = plan({ ...input, stepS: 1.5 });
    expect(r.intervalSteps).not.toBeNull();
    expect(r.optimalIntervalS).toBe(r.intervalSteps! * 1.5);
    expect(r.lostStepsPerFailure).toBeCloseTo(r.lostWorkPerFailureS / 1.5, 12);
    expect(r.ettr).toBeCloseTo(0.97116, 4);
  });

  it('refuses a fractional card count', () => {
    expect(() => plan({ ...input, cards: 1.5 })).toThrow(RangeError);
  });
});

describe('reference points', () => {
  it('gives the per-card rate of a job MTBF at a scale', () => {
    // 7.9 h · 1,024 = 8,089.6 h per card = 8,089.6 / 8,766 = 0.92284 years; 1 / 8,089.6 = 1.23616e-4 per hour
    const meta1k = perCardRate(7.9, 1_024);
    expect(meta1k.perCardMtbfHours).toBeCloseTo(8089.6, 9);
    expect(meta1k.perCardMtbfYears).toBeCloseTo(0.92284, 5);
    expect(meta1k.failuresPerCardHour).toBeCloseTo(1.23616e-4, 9);
  });

  it('lists Meta and the vendor claims with their implied per-card MTBF', () => {
    const refs = referencePoints(60, 600);
    expect(refs.map((r) => [r.cards, r.jobMtbfHours])).toEqual([
      [1_024, 7.9],
      [16_384, 1.8],
      [10_000, 360],
      [10_000, refs[3].jobMtbfHours],
    ]);
    // 1.8 h · 16,384 = 29,491.2 h; 15 days = 360 h, · 10,000 = 3,600,000 h = 410.7 years
    expect(refs[1].perCardMtbfHours).toBeCloseTo(29_491.2, 9);
    expect(refs[2].perCardMtbfHours).toBe(3_600_000);
    expect(refs[2].perCardMtbfYears).toBeCloseTo(410.68, 2);
    expect(refs[3].ettr).toBe(0.99);
    expect(refs[3].perCardMtbfHours).toBeCloseTo(refs[3].jobMtbfHours * 10_000, 6);
  });

  it('solves for the job MTBF that 99% needs', () => {
    // To first order 1 − ETTR ≈ sqrt(2C/M) + R/M. With C = 60, R = 600 and u = 1/sqrt(M):
    // 600 u² + 10.954 u − 0.01 = 0, u = (−10.954 + 12) / 1,200 = 8.7133e-4, M = 1.3171e6 s = 365.9 h.
    const m = jobMtbfForEttrS(0.99, 60, 600);
    expect(expectedEttr(dalyIntervalS(60, m), 60, 600, m)).toBeCloseTo(0.99, 9);
    expect(m / 3600).toBeGreaterThan(365.9 * 0.98);
    expect(m / 3600).toBeLessThan(365.9 * 1.02);
    // Free checkpoints: only recoveries cost, e^{-R/M} = 0.99, M = R / −ln 0.99 = 600 / 0.0100503 = 59,699 s.
    expect(jobMtbfForEttrS(0.99, 0, 600)).toBeCloseTo(59_699, -1);
    expect(jobMtbfForEttrS(0.99, 0, 0)).toBe(0);
    expect(() => jobMtbfForEttrS(1, 60, 600)).toThrow(RangeError);
  });
});

describe('figures from a run report', () => {
  const report = (faults: { kind: string; recoveredAfterMs: number | null }[]) => ({ ok: true, cards: 64, computeMs: { p50: 12.5, p90: 20, p99: 30, max: 31 }, faults });

  it('takes R as the mean recovery of the faults that recovered, C from computeMs.p50', () => {
    const f = figuresFromReport(
      report([
        { kind: 'kill', recoveredAfterMs: 700 },
        { kind: 'hang', recoveredAfterMs: 900 },
        { kind: 'link', recoveredAfterMs: null },
      ]),
    );
    expect(f.recovery?.ms).toBe(800);
    expect(f.recovery?.from).toMatch(/mean recoveredAfterMs of 2 recovered faults/);
    expect(f.checkpoint?.ms).toBe(12.5);
    expect(f.checkpoint?.from).toMatch(/computeMs\.p50, an upper bound/);
  });

  it('has no recovery time without a recovered fault', () => {
    expect(figuresFromReport(report([])).recovery).toBeNull();
    expect(figuresFromReport(report([{ kind: 'kill', recoveredAfterMs: null }])).recovery).toBeNull();
  });

  it('refuses what is not a run report, naming the field', () => {
    expect(() => figuresFromReport({ rows: [] })).toThrow(/computeMs/);
    expect(() => figuresFromReport(null)).toThrow(TypeError);
  });
});
