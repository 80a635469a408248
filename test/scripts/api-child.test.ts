// The stress scripts' job runner (scripts/api-child.ts, built into dist/scripts): a tiny run in a
// child gives the typed report and the run's events over IPC; refused options come back as the
// API's usage error; a script's own flags are refused with a message naming the flag. No timing asserted.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RunEvent } from '../../src/api/index.js';
import { API_CHILD, startJob } from '../../scripts/run-report.js';
import { ScriptProgress } from '../../scripts/script-progress.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const script = (name: string) => path.join(ROOT, 'dist', 'scripts', `${name}.js`);

describe('api-child', () => {
  it('is built', () => expect(existsSync(API_CHILD)).toBe(true));

  it('runs a tiny job and sends the typed report and its events', async () => {
    const events: RunEvent[] = [];
    const logs: string[] = [];
    const job = startJob('run', { workers: 2, cardsPerWorker: 1, size: '4KiB', steps: 2 }, { timeoutMs: 50_000, killAfterMs: 5_000, stderrChars: 4000, onEvent: (e) => events.push(e), onLog: (l) => logs.push(l) });
    expect(job.pid).toBeGreaterThan(0);
    const f = await job.done;
    expect(f.error).toBeNull();
    expect(f.timedOut).toBe(false);
    expect(f.code).toBe(0);
    expect(f.report).not.toBeNull();
    const r = f.report!;
    expect(r.ok).toBe(true);
    expect(r.workers).toBe(2);
    expect(r.stepsCompleted).toBe(2);
    expect(r.wrong).toBe(0);
    expect(r.stateDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(typeof r.stepMs.p50).toBe('number');
    expect(events[0]?.type).toBe('ready');
    expect(events.filter((e) => e.type === 'step').map((e) => (e as { step: number }).step)).toEqual([0, 1]);
  }, 60_000);

  it('gives refused options back as the API usage error, and no report', async () => {
    const f = await startJob('run', { workers: 0 }, { timeoutMs: 20_000, stderrChars: 2000 }).done;
    expect(f.report).toBeNull();
    expect(f.code).toBe(2);
    expect(f.error).toEqual({ name: 'RingswarmUsageError', code: 'RS_ERR_USAGE', message: '--workers 0: expected an integer from 1 to 4096' });
  }, 30_000);

  it('without IPC: exit 2 and the message on stderr for bad JSON', () => {
    const r = spawnSync(process.execPath, [API_CHILD, 'run', '{not json'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/the options are not JSON/);
  });
});

describe("the scripts' flags", () => {
  it.each([
    ['size-sweep', ['--workers', '4,x'], /--workers 4,x: expected a comma-separated list of positive integers/],
    ['size-sweep', ['--workers', '2', '--min', '1KiB', '--max', '8'], /--min-bytes 1024 is larger than --max-bytes 8/],
    ['scale-sweep', ['--workers', '8,0'], /--workers: expected a list of positive integers, got 8,0/],
    ['bench-faults', ['--repeats', 'lots'], /--repeats lots: expected an integer >= 1/],
  ])('%s %j is refused before any job starts', (name, args, message) => {
    const r = spawnSync(process.execPath, [script(name), ...args], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});

describe('ScriptProgress', () => {
  afterEach(() => vi.useRealTimers());

  it('says done of total, elapsed and time left from the pace', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const p = new ScriptProgress('soak', 4, { force: true, out: { isTTY: false, columns: 80, write: () => true } as unknown as NodeJS.WriteStream });
    expect(p.text()).toBe('soak: 0/4 runs, 0s elapsed');
    vi.setSystemTime(1_000_000 + 60_000);
    p.advance(1, 'seed 2');
    expect(p.text()).toBe('soak: 1/4 runs, 1m00s elapsed, ~3m00s left (seed 2)');
    p.end();
  });

  it('caps time left by the deadline, and is quiet when stderr is no terminal', () => {
    vi.useFakeTimers({ now: 0 });
    const writes: string[] = [];
    const out = { isTTY: false, write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream;
    const p = new ScriptProgress('soak', null, { deadline: 90_000, out });
    p.advance();
    expect(p.enabled).toBe(false);
    expect(p.text()).toBe('soak: 1 runs, 0s elapsed, ~1m30s left');
    expect(writes).toEqual([]);
    p.end();
  });

  it('before anything is done, the deadline is a bound, not an estimate', () => {
    vi.useFakeTimers({ now: 0 });
    const p = new ScriptProgress('sweep', 3, { deadline: 300_000, out: { isTTY: false } as unknown as NodeJS.WriteStream });
    expect(p.text()).toBe('sweep: 0/3 runs, 0s elapsed, at most 5m00s left');
    vi.setSystemTime(60_000);
    p.advance();
    expect(p.text()).toBe('sweep: 1/3 runs, 1m00s elapsed, ~2m00s left');
    p.end();
  });

  it('paceFromFirst: the steps of a run, its start-up left out of the pace', () => {
    vi.useFakeTimers({ now: 0 });
    const p = new ScriptProgress('soak', 100, { unit: 'steps', paceFromFirst: true, out: { isTTY: false } as unknown as NodeJS.WriteStream });
    vi.setSystemTime(30_000); // start-up
    p.set(1);
    expect(p.text()).toBe('soak: 1/100 steps, 30s elapsed');
    vi.setSystemTime(40_000);
    p.set(11);
    expect(p.text()).toBe('soak: 11/100 steps, 40s elapsed, ~1m29s left');
    p.end();
  });
});
