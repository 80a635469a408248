// `ringswarm demo`, small, as a user runs it (not on a terminal): its three faults found, located
// and healed, the slow link named, the digest the fault-free one, the report under runs/ in the
// folder it ran in, and no worker left behind.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { faultFreeDigest } from '../../src/worker/fault-free-digest.js';
import { isAlive, killLeftovers, startCli } from './helpers.js';

afterEach(() => killLeftovers());

const cwd = mkdtempSync(join(tmpdir(), 'ringswarm-demo-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

describe('ringswarm demo', () => {
  it('heals a kill mid reduce-scatter and a hang, names the slow link, and ends with the fault-free digest', async () => {
    const args = ['demo', '-w', '4', '-g', '2', '-s', '64KiB', '--steps', '24', '--compute-ms', '50'];
    const r = startCli(args, undefined, { cwd });
    const { code } = await r.exited;
    const out = r.stdout();
    expect(code, `${out}\n${r.stderr()}`).toBe(0);
    // Not a terminal: no live line, only permanent lines and the summary.
    expect(out).not.toContain('\r');
    expect(out).toMatch(/algorithm ring \(--algo ring/);
    expect(out).toMatch(/^fault 1 kill rank \d at step \d+ reduce-scatter: detected in [\d.]+ s by exit, located rank \d; healed in [\d.]+ s/m);
    expect(out).toMatch(/^fault 2 hang rank \d at step \d+: detected in [\d.]+ s by heartbeat, located rank \d; healed in [\d.]+ s/m);
    expect(out).toMatch(/^slow link (\d)->(\d) named by the straggler detector at step \d+/m);
    expect(out).toMatch(/^OK  ringswarm demo: ring all-reduce, 4 workers x 2 cards/m);
    expect(out).toMatch(/digest: +[0-9a-f]{12}… = the fault-free run's/);

    const path = /^ {2}report: +(\S+)$/m.exec(out)![1]!;
    expect(path).toMatch(/^runs\/demo-\d{8}T\d{6}Z\/report\.json$/);
    const rep = JSON.parse(readFileSync(join(cwd, path), 'utf8'));
    expect(rep).toMatchObject({ ok: true, wrong: 0, workers: 4, cardsPerWorker: 2, stepsCompleted: 24, algo: ['ring'] });
    expect(rep.faults.map((f: { kind: string; recoveredAfterMs: number | null }) => [f.kind, f.recoveredAfterMs !== null])).toEqual([
      ['kill', true],
      ['hang', true],
    ]);
    expect(rep.faults[0].phase).toBe('reduce-scatter');
    // The link the summary names is the one injected, and the report says so.
    const [, from, to] = /^slow link (\d)->(\d)/m.exec(out)!;
    expect(rep.stragglers).toContainEqual(expect.objectContaining({ kind: 'link', link: [Number(from), Number(to)], injected: true }));
    expect(rep.stateDigest).toBe(faultFreeDigest({ workers: 4, cardsPerWorker: 2, bytesPerCard: 64 << 10, dtype: 'f32', op: 'sum', steps: 24, seed: 1 }));
    for (const p of rep.processes) expect(isAlive(p.pid)).toBe(false);
  });

  it('a run too small for its faults is a usage error naming the flag', async () => {
    const r = startCli(['demo', '-w', '3'], undefined, { cwd });
    expect((await r.exited).code).toBe(2);
    expect(r.stderr()).toMatch(/--workers 3: the demo needs at least 4/);
  });
});
