// The HTML report's view (pure) and page: compact numbers, the heat map's layout and grouping,
// fault and straggler spans on the coordinator's clock, the bench model's busbw, a page that needs
// no network and keeps its JSON inside its <script>.
import { describe, expect, it } from 'vitest';
import { sim } from '../../../src/api/index.js';
import type { BenchReport } from '../../../src/coordinator/config.js';
import type { StepAgg } from '../../../src/coordinator/ledger.js';
import type { RankTimes } from '../../../src/coordinator/machine.js';
import { renderHtml, scriptJson } from '../../../src/coordinator/html/html.js';
import { buildBenchView, buildRunView, sig3, stepSeries, windowsOf, type RunFacts } from '../../../src/coordinator/html/view.js';

const agg = (stepMs: number, doneAt: number, epoch = 0): StepAgg => ({ reports: 0, wrong: 0, stepMs, allreduceMs: stepMs / 2, computeMs: stepMs / 2, ranks: [], links: [], doneAt, epoch });

function times(workers: number, f: (r: number) => number): RankTimes {
  const t = { computeMs: new Float32Array(workers), allreduceMs: new Float32Array(workers) };
  for (let r = 0; r < workers; r++) (t.computeMs[r] = f(r)), (t.allreduceMs[r] = 1);
  return t;
}

function facts(steps: number, workers: number, f: (step: number, r: number) => number): RunFacts {
  const rankTimes = new Map<number, RankTimes>();
  const list: [number, StepAgg][] = [];
  for (let k = 0; k < steps; k++) {
    list.push([k, agg(10, 1000 + 10 * (k + 1))]);
    rankTimes.set(k, times(workers, (r) => f(k, r)));
  }
  return { steps: list.reverse(), trainingStart: 1000, t0: 900, now: 1000 + 10 * steps, faultInjectedAt: [], stragglerSpans: [], rankTimes };
}

describe('sig3', () => {
  it('keeps 3 significant digits, units above 1000', () => {
    expect([sig3(0.0123456), sig3(1.23456), sig3(12.3456), sig3(123.456), sig3(1234.56), sig3(-2.3456), sig3(0)]).toEqual([0.0123, 1.23, 12.3, 123, 1235, -2.35, 0]);
  });
});

describe('stepSeries', () => {
  it('lays the heat map out step-major, in step order, with each rank compute + all-reduce; a rank with no report is null', () => {
    const f = facts(3, 4, (k, r) => 10 * k + r);
    f.rankTimes!.get(1)!.computeMs[2] = NaN;
    const { steps, heat } = stepSeries(f, 4);
    expect(steps.step).toEqual([0, 1, 2]);
    expect(steps.t).toEqual([0.01, 0.02, 0.03]);
    expect(heat).toMatchObject({ ranks: 4, rankGroup: 1, stepGroup: 1, from: 0 });
    expect(heat.computeMs).toEqual([0, 1, 2, 3, 10, 11, null, 13, 20, 21, 22, 23]);
    expect(heat.stepMs.slice(0, 4)).toEqual([1, 2, 3, 4]);
  });

  it('groups ranks beyond 512 rows and steps beyond 1000 columns, each cell its group slowest', () => {
    const f = facts(2001, 1026, (k, r) => (r === 1025 && k === 2000 ? 99 : 1));
    const { heat } = stepSeries(f, 1026);
    expect(heat).toMatchObject({ ranks: 342, rankGroup: 3, stepGroup: 3 });
    expect(heat.computeMs.length).toBe(342 * 667);
    expect(heat.computeMs[666 * 342 + 341]).toBe(99);
    expect(heat.computeMs[666 * 342 + 340]).toBe(1);
    expect(heat.computeMs[0]).toBe(1);
  });

  it('gives a live update only the columns from `from` on', () => {
    const { heat } = stepSeries(facts(5, 2, () => 1), 2, 3);
    expect(heat.from).toBe(3);
    expect(heat.computeMs).toEqual([1, 1, 1, 1]);
  });
});

describe('windowsOf', () => {
  it('puts a fault from its strike to training resumed, and an injected straggler over its steps', () => {
    const f = facts(10, 2, () => 1);
    f.faultInjectedAt = [1032, null];
    f.stragglerSpans = [{ atStep: 5, steps: 2 }];
    const fault = { kind: 'kill', rank: 1, recoveredAfterMs: 40, detectedAfterMs: 3 };
    const outside = { kind: 'kill', rank: 0, recoveredAfterMs: 10, detectedAfterMs: null };
    const report = { faults: [fault, outside], injectedStragglers: [{ kind: 'slow', rank: 1, atStep: 5, struck: true, detectedAtStep: 6 }] } as never;
    const { steps } = stepSeries(f, 2);
    expect(windowsOf(report, f, steps)).toEqual([
      { kind: 'fault', label: 'kill rank 1', from: 0.032, to: 0.072, at: 0.035 },
      // Step 5 ends at 0.06 s and took 10 ms; step 6 ends at 0.07 s.
      { kind: 'straggler', label: 'slow rank 1', from: 0.05, to: 0.07, at: 0.07 },
    ]);
  });
});

describe('buildBenchView', () => {
  it('gives per algorithm the measured busbw and the model busbw from the predicted time', () => {
    const row = (algo: 'ring' | 'rd', bytes: number, timeUs: number, predictedUs: number) => ({ bytes, count: bytes / 4, type: 'f32' as const, redop: 'sum' as const, timeUs, algbwGBps: 1, busbwGBps: 2, wrong: 0, algo, predictedUs });
    const r: BenchReport = { collective: 'allreduce', workers: 4, cardsPerWorker: 1, rows: [row('ring', 2048, 100, 50), row('ring', 1024, 100, 200), row('rd', 1024, 10, 10)], avgBusbwGBps: 2, startupMs: 5 };
    const v = buildBenchView(r);
    expect(v.series.map((s) => s.algo)).toEqual(['ring', 'rd']);
    expect(v.series[0]).toMatchObject({ bytes: [1024, 2048], busbwGBps: [2, 2], modelBusbwGBps: [1, 4] });
    expect(v.series[1]!.modelBusbwGBps).toEqual([2]);
  });
});

describe('the page', () => {
  it('keeps a hostile string inside its JSON script', () => {
    const s = scriptJson({ x: '</script><script>alert(1)</script><!--' });
    expect(s).not.toMatch(/<\/script|<!--/i);
    expect(JSON.parse(s)).toEqual({ x: '</script><script>alert(1)</script><!--' });
  });

  it('is one file: uPlot inline, no script, stylesheet or image from anywhere, the view parseable back', async () => {
    const report = await sim({ workers: 4, cardsPerWorker: 1, size: '4KiB', steps: 6, inject: ['kill:rank=1:step=3'] });
    const v = buildRunView(report, facts(6, 4, () => 1), 'a </script> title');
    const html = await renderHtml(v);
    expect(html).toContain('uPlot');
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=["']?(https?:)?\/\//i);
    expect(html).toContain('a &lt;/script&gt; title');
    const json = /<script type="application\/json" id="view">([^<]*)<\/script>/.exec(html)![1]!;
    expect(JSON.parse(json).faults[0]).toMatchObject({ kind: 'kill', where: 'rank 1', struck: true, healed: true });
  });

  it('stays a few hundred KB for 256 ranks x 200 steps', async () => {
    const f = facts(200, 256, (k, r) => 5 + ((k * 7 + r * 13) % 97) / 7);
    const report = await sim({ workers: 2, cardsPerWorker: 1, size: '4KiB', steps: 1 });
    const html = await renderHtml(buildRunView({ ...report, workers: 256 }, f));
    expect(html.length).toBeLessThan(600_000);
  });
});
