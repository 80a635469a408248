import { describe, expect, it } from 'vitest';
import { RingswarmUsageError, run, runConfig, startRun } from '../../dist/src/api/index.js'; // the built API: spawned workers load dist/worker.cjs beside it
import { workerNiceFor } from '../../dist/src/coordinator/run.js';

describe('API options', () => {
  it('gives the CLI messages for bad input', async () => {
    await expect(runConfig({ onFailure: 'spare' })).rejects.toThrow(new RingswarmUsageError('--on-failure spare needs --spares N (N >= 1)'));
    await expect(runConfig({ size: 6 })).rejects.toThrow('--size 6 is not a whole number of f32 elements (4 bytes each)');
    await expect(runConfig({ workers: 0 })).rejects.toThrow('--workers 0: expected an integer from 1 to 4096');
    await expect(runConfig({ size: '64KiB' })).resolves.toMatchObject({ bytesPerCard: 65536 });
    await expect(runConfig({ workerNice: 20 })).rejects.toThrow('--worker-nice 20: expected an integer from 0 to 19');
    await expect(runConfig({ workerNice: 'auto' })).resolves.toMatchObject({ workerNice: null });
    await expect(runConfig({ metricsPort: 65536 })).rejects.toThrow(new RingswarmUsageError('--metrics-port 65536: expected an integer from 0 to 65535'));
    await expect(runConfig({ metricsPort: 9100, port: 9100 })).rejects.toThrow(new RingswarmUsageError('--metrics-port 9100 is the control --port too'));
    await expect(runConfig({ metricsPort: 0 }, 'sim')).rejects.toThrow(new RingswarmUsageError('--metrics-port is for run: a sim has no live job to scrape'));
    await expect(runConfig({})).resolves.toMatchObject({ metricsPort: null });
    await expect(runConfig({ metricsPort: 0 })).resolves.toMatchObject({ metricsPort: 0 });
  });
});

describe('spawned workers yield the CPU to the coordinator on a full machine', () => {
  it('auto: nice 15 beyond 8 spawned workers a core, else 0; a given value as it is', () => {
    expect(workerNiceFor({ workerNice: null, spawn: 16, spares: 0 }, 2)).toBe(0);
    expect(workerNiceFor({ workerNice: null, spawn: 16, spares: 1 }, 2)).toBe(15);
    expect(workerNiceFor({ workerNice: 3, spawn: 256, spares: 0 }, 2)).toBe(3);
  });
});

describe('API jobs', () => {
  it('run gives the report', async () => {
    const heard: string[] = [];
    const r = await run({ workers: 2, cardsPerWorker: 1, size: '4KiB', steps: 3, port: 0, token: 't0k' }, { listening: (url, token) => heard.push(`${url} ${token}`) });
    expect(r.ok).toBe(true);
    expect(heard).toEqual([`${r.controlUrl} t0k`]);
  }, 60_000);

  it('two runs in one process, each with its own metrics (a registry per run): each logs its URL, and the runs end with the ports closed', async () => {
    const urls: string[] = [];
    const one = () => {
      let url = '';
      const job = startRun(
        { workers: 2, cardsPerWorker: 1, size: '4KiB', steps: 200, computeMs: 10, port: 0, metricsPort: 0 },
        { log: (l) => (l.startsWith('metrics: ') ? urls.push((url = l.slice('metrics: '.length))) : undefined) },
      );
      return { job, url: () => url };
    };
    const a = one();
    const b = one();
    let seen = 0;
    await new Promise<void>((resolve) => {
      const onStep = () => ++seen === 2 && resolve();
      let aSeen = false;
      let bSeen = false;
      a.job.on('step', () => aSeen || ((aSeen = true), onStep()));
      b.job.on('step', () => bSeen || ((bSeen = true), onStep()));
    });
    expect(urls).toHaveLength(2);
    expect(a.url()).not.toBe(b.url());
    for (const u of [a.url(), b.url()]) {
      const text = await (await fetch(u)).text();
      expect(text).toMatch(/^ringswarm_workers_alive 2$/m);
      expect(text).toMatch(/^ringswarm_step_duration_seconds_count\{algo="\w+"\} [1-9]\d*$/m);
    }
    a.job.stop();
    b.job.stop();
    expect((await a.job.done).interrupted).toBe(true);
    expect((await b.job.done).interrupted).toBe(true);
    for (const u of [a.url(), b.url()]) await expect(fetch(u)).rejects.toThrow();
  }, 120_000);

  it('startRun emits ready and step events and resolves done', async () => {
    const job = startRun({ workers: 2, cardsPerWorker: 1, size: '4KiB', steps: 3, port: 0 });
    const seen: string[] = [];
    job.on('ready', () => seen.push('ready')).on('step', (e) => seen.push(`step ${e.step}`));
    const r = await job.done;
    expect(r.ok).toBe(true);
    expect(seen[0]).toBe('ready');
    expect(seen.filter((s) => s.startsWith('step')).length).toBe(3);
    await expect(job.inject('kill:rank=1')).rejects.toThrow(new RingswarmUsageError('the run has finished'));
  }, 60_000);

  it('startRun takes a fault while it runs, and status shows every rank', async () => {
    const job = startRun({ workers: 3, cardsPerWorker: 1, size: '4KiB', steps: 8, computeMs: 30, port: 0, onFailure: 'restart' });
    let answer: Promise<{ id: number; fault: { kind: string; live?: true } }> | null = null;
    const refused: Promise<string>[] = [];
    let status: ReturnType<typeof job.status> = null;
    const healed: { kind: string; recoveredAfterMs: number | null }[] = [];
    job.on('healed', (e) => healed.push(e.fault));
    job.on('step', (e) => {
      if (e.step !== 1 || answer) return;
      status = job.status();
      answer = job.inject('kill:rank=1');
      for (const f of ['kill:rank=9', 'slow:rank=1:factor=2:step=5', 'kill:rank=0:step=0']) refused.push(job.inject(f).then(() => 'taken', (e: Error) => e.message));
    });
    const r = await job.done;
    expect(r.ok).toBe(true);
    expect(status!.ranks.map((x) => [x.rank, x.pid > 0, x.state !== 'dead'])).toEqual([[0, true, true], [1, true, true], [2, true, true]]);
    expect(status!.step).toBeGreaterThanOrEqual(2);
    const took = await answer!;
    expect(took.fault).toMatchObject({ kind: 'kill', rank: 1, live: true });
    expect(r.faults.find((f) => f.id === took.id)).toMatchObject({ kind: 'kill', rank: 1, live: true, struck: true, injected: true, detectedBy: 'exit', located: 'rank 1' });
    // Once training resumed: the same entry as the report's, detection and recovery filled in.
    expect(healed).toEqual([r.faults.find((f) => f.id === took.id)]);
    expect(healed[0]!.recoveredAfterMs).toBeGreaterThan(0);
    const errors = await Promise.all(refused);
    expect(errors[0]).toBe('inject: fault.rank: 9 is not a rank (0..2)');
    expect(errors[1]).toMatch(/is set when a run starts/);
    expect(errors[2]).toMatch(/step 0 has passed/);
  }, 60_000);
});
