// --trace FILE: a real run with a kill, a sim with a hang (and one that fails), and a bench, each
// written as a Chrome trace-event file, parsed and checked: one named process per rank, lanes that
// never overlap, the faults' instants, the counters, every span on the coordinator's clock.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { bench, RingswarmUsageError, runConfig, sim } from '../../dist/src/api/index.js';
import { checkTrace, counters, instants, processNames, type TraceEvent, type TraceFile } from '../coordinator/trace-check.js';
import { killLeftovers, runCli } from './helpers.js';

afterEach(killLeftovers);
const dir = mkdtempSync(join(tmpdir(), 'ringswarm-trace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const spans = (t: TraceFile, pid?: number) => t.traceEvents.filter((e) => e.ph === 'X' && (pid === undefined || e.pid === pid));
const end = (e: TraceEvent) => e.ts! + e.dur!;

/** The kill's four instants, in order: injected, detected, located, recovered. */
function expectFaultInstants(t: TraceFile, kind: string, rank: number): void {
  const at = (what: string) => instants(t, `fault ${what}: `).filter((e) => e.args!.kind === kind);
  const [inj, det, loc, rec] = ['injected', 'detected', 'located', 'recovered'].map(at);
  for (const x of [inj, det, loc, rec]) expect(x).toHaveLength(1);
  expect(inj[0].args).toMatchObject({ where: `rank ${rank}` });
  expect(inj[0].pid).toBe(rank + 1);
  expect(loc[0].args).toMatchObject({ located: `rank ${rank}` });
  expect(inj[0].ts!).toBeLessThanOrEqual(det[0].ts!);
  expect(det[0].ts!).toBeLessThanOrEqual(loc[0].ts!);
  expect(loc[0].ts!).toBeLessThanOrEqual(rec[0].ts!);
}

describe('--trace', () => {
  it('run: a kill, on one clock, in a file Perfetto reads', async () => {
    const file = join(dir, 'run.json');
    const r = await runCli(['run', '-w', '3', '-g', '2', '-s', '16KiB', '--steps', '6', '--algo', 'ring', '--inject', 'kill:rank=1:step=2:phase=all-gather', '--trace', file, '--json', '-']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.trace).toMatchObject({ file, dropped: 0, kept: null });
    expect(r.stderr).toContain(`trace: ${file} (${report.trace.events} events)`);
    const t = checkTrace(readFileSync(file, 'utf8'));
    expect(t.traceEvents).toHaveLength(report.trace.events);
    expect(t.metadata).toMatchObject({ command: 'ringswarm run', ok: true, truncated: false });

    // One process per rank at launch, named by its workers (rank 1's replacement after the first).
    const names = processNames(t);
    expect(names).toContain('coordinator');
    const ranks = names.filter((n) => n.startsWith('rank ')).sort();
    expect(ranks).toEqual([expect.stringMatching(/^rank 0 \(worker \d+\)$/), expect.stringMatching(/^rank 1 \(worker \d+, then \d+\)$/), expect.stringMatching(/^rank 2 \(worker \d+\)$/)]);
    const named = ranks.flatMap((n) => [...n.matchAll(/\d+/g)].slice(1).map(Number));
    expect(new Set(named)).toEqual(new Set(report.processes.map((p: { pid: number }) => p.pid)));

    expectFaultInstants(t, 'kill', 1);
    expect(instants(t, 'epoch ').map((e) => e.args!.epoch)).toEqual([0, 1]);
    // A counter sample per counted step (its re-run too), and per rank per step.
    expect(new Set(counters(t, 'step ms').filter((e) => e.pid > 1000).map((e) => e.ts)).size).toBeGreaterThanOrEqual(6);
    for (const pid of [1, 2, 3]) expect(counters(t, 'step ms').filter((e) => e.pid === pid).length).toBeGreaterThanOrEqual(5);

    // Every rank's lanes: compute, checkpoint, the op and its phases, sends and receives, with their args.
    // On the coordinator's clock (its offsets err by a message's delay at most: 20 ms is room for a
    // crowded machine; a worker's own clock is hundreds of ms off, as it starts after the coordinator):
    // nothing a worker did begins before its epoch did, nor ends after the coordinator heard of the last step.
    const epoch0 = instants(t, 'epoch 0')[0].ts!;
    const lastStep = Math.max(...counters(t, 'step ms').filter((e) => e.pid > 1000).map((e) => e.ts!));
    const slack = 20_000;
    for (const pid of [1, 2, 3]) {
      const mine = spans(t, pid);
      expect(new Set(mine.map((e) => e.cat))).toEqual(new Set(['compute', 'checkpoint', 'checkpoint copy', 'intra', 'op', 'reduce-scatter', 'all-gather', 'send reduce-scatter', 'send all-gather', 'recv reduce-scatter', 'recv all-gather']));
      for (const e of mine.filter((x) => x.cat === 'op')) expect(e.args).toMatchObject({ epoch: expect.any(Number), opSeq: expect.any(Number), step: expect.any(Number), bytes: expect.any(Number) });
      for (const e of mine) {
        expect(e.ts!, e.name).toBeGreaterThanOrEqual(epoch0 - slack);
        expect(end(e), e.name).toBeLessThanOrEqual(lastStep + slack);
      }
    }
    // An all-reduce ends on no rank before it has begun on every rank (each result needs every rank's data):
    // the clocks agree to within the offsets' error.
    const ops = spans(t).filter((e) => e.cat === 'op');
    for (const step of new Set(ops.map((e) => `${e.args!.epoch}:${e.args!.step}`))) {
      const these = ops.filter((e) => `${e.args!.epoch}:${e.args!.step}` === step);
      if (these.length < 3) continue;
      const lastStart = Math.max(...these.map((e) => e.ts!));
      const firstEnd = Math.min(...these.map(end));
      expect(lastStart - firstEnd, `step ${step}`).toBeLessThan(slack);
    }
  });

  it('sim: a hang on the virtual clock; the simulation itself unchanged by tracing', async () => {
    const file = join(dir, 'sim.json');
    const o = { workers: 4, cardsPerWorker: 2, size: '16KiB', steps: 6, inject: ['hang:rank=2:step=3:ms=3000'], algo: 'ring' as const };
    const [traced, plain] = [await sim({ ...o, trace: file }), await sim(o)];
    expect(traced.ok).toBe(true);
    expect(traced.traceDigest).toBe(plain.traceDigest);
    expect(traced.stateDigest).toBe(plain.stateDigest);
    expect(plain.trace).toBeUndefined();
    const t = checkTrace(readFileSync(file, 'utf8'));
    expect(t.metadata).toMatchObject({ command: 'ringswarm sim', traceDigest: plain.traceDigest });
    expect(processNames(t).filter((n) => /^rank \d \(worker \d+/.test(n))).toHaveLength(4);
    expectFaultInstants(t, 'hang', 2);
    expect(counters(t, 'all-reduce ms').length).toBeGreaterThanOrEqual(6);
    // The ring's phases, a span each per rank per step run.
    for (const pid of [1, 2, 3, 4]) expect(spans(t, pid).filter((e) => e.cat === 'reduce-scatter').length).toBeGreaterThanOrEqual(6);
  });

  it('sim: a straggler confirmed, on its rank, its slow compute drawn as such', async () => {
    const file = join(dir, 'straggler.json');
    const r = await sim({ workers: 6, cardsPerWorker: 2, size: '16KiB', steps: 14, computeMs: 20, inject: ['slow:rank=2:factor=4:step=2'], trace: file });
    expect(r.stragglers).toHaveLength(1);
    const t = checkTrace(readFileSync(file, 'utf8'));
    const [s] = instants(t, 'straggler confirmed: rank 2');
    expect(s).toMatchObject({ pid: 3, s: 'p', args: { kind: 'node', detectedAtStep: r.stragglers[0].detectedAtStep, injected: true } });
    const compute = spans(t, 3).filter((e) => e.cat === 'compute');
    expect(compute.filter((e) => e.name === 'compute (straggling)').map((e) => e.args!.step)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    // Virtual time: a straggling step computes 4 x 20 ms.
    expect(compute.find((e) => e.args!.step === 5)!.dur).toBe(80_000);
  });

  it('sim: a failed run still writes what it has', async () => {
    const file = join(dir, 'failed.json');
    const r = await sim({ workers: 3, cardsPerWorker: 1, size: '4KiB', steps: 5, inject: ['kill:rank=0:step=2'], onFailure: 'abort', trace: file });
    expect(r.ok).toBe(false);
    const t = checkTrace(readFileSync(file, 'utf8'));
    expect(t.metadata).toMatchObject({ ok: false });
    expect(instants(t, 'fault injected: kill at rank 0')).toHaveLength(1);
    expect(instants(t, 'fault detected: kill at rank 0')).toHaveLength(1);
    expect(spans(t).filter((e) => e.cat === 'op').length).toBeGreaterThanOrEqual(3 * 2);
  });

  it('bench: a span per size per rank, its first iterations op by op', async () => {
    const file = join(dir, 'bench.json');
    const r = await bench({ workers: 2, minBytes: 1024, maxBytes: 4096, stepFactor: 4, iters: 3, warmup: 1, trace: file });
    expect(r.error).toBeUndefined();
    expect(r.trace?.file).toBe(file);
    const t = checkTrace(readFileSync(file, 'utf8'));
    for (const pid of [1, 2]) {
      expect(spans(t, pid).filter((e) => e.cat === 'bench').map((e) => e.args!.bytes)).toEqual([1024, 4096]);
      expect(spans(t, pid).filter((e) => e.cat === 'op')).toHaveLength(2 * 3);
    }
  });

  it('refuses a bad path before anything starts', async () => {
    await expect(runConfig({ trace: ' ' })).rejects.toThrow(new RingswarmUsageError('--trace  : expected the path of the file to write'));
    // Under a plain file: no folder can be made there.
    const under = join(dir, 'run.json', 't.json');
    await expect(sim({ workers: 2, steps: 1, trace: under })).rejects.toThrow(`--trace ${under}: `);
  });
});
