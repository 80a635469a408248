// Stragglers with real processes: found from timings, told node from link, acted on.
import { afterEach, describe, expect, it } from 'vitest';
import { killLeftovers, runCli } from './helpers.js';

afterEach(() => killLeftovers());

// The ring, as auto may pick recursive doubling at this size (its links are tested on their own below).
const BASE = ['run', '-w', '8', '-g', '2', '-s', '256KiB', '--steps', '30', '--compute-ms', '20', '--algo', 'ring', '--json', '-'];

describe('stragglers, real processes', () => {
  it('a 3x slow rank is named, as a node, within 5 steps', async () => {
    const r = await runCli([...BASE, '--inject', 'slow:rank=3:factor=3:step=8']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    const found = rep.stragglers.find((s: { kind: string; rank?: number }) => s.kind === 'node' && s.rank === 3);
    expect(found, JSON.stringify(rep.stragglers)).toMatchObject({ injected: true, action: 'report' });
    expect(found.detectedAtStep - 8).toBeLessThanOrEqual(5);
  });

  it('a throttled link is named as that link, not as a node at either end', async () => {
    const r = await runCli([...BASE, '--inject', 'slow-link:from=2:step=6:bandwidth=4MiB']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    const found = rep.stragglers.find((s: { kind: string; link?: number[] }) => s.kind === 'link' && s.link?.[0] === 2);
    expect(found, JSON.stringify(rep.stragglers)).toMatchObject({ link: [2, 3], injected: true });
    expect(found.detectedAtStep - 6).toBeLessThanOrEqual(5);
    expect(rep.stragglers.filter((s: { kind: string; rank?: number }) => s.kind === 'node' && (s.rank === 2 || s.rank === 3))).toEqual([]);
  });

  it('a delayed link is named as that link', async () => {
    const r = await runCli([...BASE, '--inject', 'slow-link:from=5:step=6:delayMs=30']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    const found = rep.stragglers.find((s: { kind: string; link?: number[] }) => s.kind === 'link' && s.link?.[0] === 5);
    expect(found, JSON.stringify(rep.stragglers)).toMatchObject({ link: [5, 6], injected: true });
    // (On this shared 2-core machine an end of the link is sometimes flagged as well: see the note.)
  });

  it('under recursive doubling, a throttled link is named as that link; one it never uses says why it was not scored', async () => {
    const RD = BASE.map((a) => (a === 'ring' ? 'rd' : a));
    // 2 -> 3 is a round-0 pair of recursive doubling on 8 ranks.
    const r = await runCli([...RD, '--inject', 'slow-link:from=2:to=3:step=6:bandwidth=4MiB']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.algo).toEqual(['rd']);
    const found = rep.stragglers.find((s: { kind: string; link?: number[] }) => s.kind === 'link' && s.link?.[0] === 2);
    expect(found, JSON.stringify(rep.stragglers)).toMatchObject({ link: [2, 3], injected: true });
    expect(rep.injectedStragglers).toEqual([expect.objectContaining({ link: [2, 3], struck: true, detectedAtStep: found.detectedAtStep })]);
    // 1 -> 2 (1's successor, the default) carries only 1's checkpoint copies under recursive doubling.
    const unused = JSON.parse((await runCli([...RD, '--steps', '14', '--inject', 'slow-link:from=1:step=6:bandwidth=4MiB'])).stdout);
    expect(unused.injectedStragglers).toEqual([expect.objectContaining({ link: [1, 2], struck: true, detectedAtStep: null, note: expect.stringMatching(/recursive doubling.*checkpoint copies/) })]);
  });

  it('--what-if runs the same seed without the stragglers and reports what they cost', async () => {
    const r = await runCli([...BASE, '--steps', '15', '--inject', 'slow:rank=1:factor=3:step=2', '--what-if']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.whatIf.sameDigest).toBe(true);
    expect(rep.whatIf.slowdown).toBeGreaterThan(1);
  });

  it('jitter only delays: the run stays exact, with the digest of the run without it', async () => {
    // Whether jitter is ever flagged is a statistical question for scripts/straggler-accuracy.ts,
    // not for a test on a machine where 8 processes share 2 cores.
    const a = JSON.parse((await runCli([...BASE, '--steps', '12', '--inject', 'jitter:maxMs=10'])).stdout);
    const b = JSON.parse((await runCli([...BASE, '--steps', '12'])).stdout);
    expect(a).toMatchObject({ ok: true, wrong: 0 });
    expect(a.stateDigest).toBe(b.stateDigest);
  });

  it('--on-straggler evict replaces the slow rank and ends ok with the exact digest', async () => {
    const clean = JSON.parse((await runCli([...BASE])).stdout);
    const r = await runCli([...BASE, '--inject', 'slow:rank=2:factor=4:step=6:steps=6', '--on-straggler', 'evict']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.stragglers.find((s: { kind: string; rank?: number }) => s.kind === 'node' && s.rank === 2)).toMatchObject({ action: 'evict' });
    expect(rep.restarts).toBeGreaterThanOrEqual(1);
    expect(rep.stateDigest).toBe(clean.stateDigest);
  });

  it('--on-straggler reroute re-forms the ring without the slow link and ends ok with the exact digest', async () => {
    const args = [...BASE, '--steps', '40'];
    const clean = JSON.parse((await runCli(args)).stdout);
    const r = await runCli([...args, '--inject', 'slow-link:from=5:step=4:delayMs=30', '--on-straggler', 'reroute']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    const found = rep.stragglers.find((s: { kind: string; link?: number[] }) => s.kind === 'link' && s.link?.[0] === 5);
    expect(found, JSON.stringify(rep.stragglers)).toMatchObject({ link: [5, 6], injected: true, action: 'reroute' });
    expect(found.stepMsBefore).toBeGreaterThan(0);
    const epoch = rep.epochs.find((e: { reason: string }) => e.reason === 'reroute around link 5->6');
    expect(epoch, JSON.stringify(rep.epochs)).toBeDefined();
    // The workers that held ranks 5 and 6 at launch are no longer neighbours in that order.
    const pids = rep.epochs[0].members.map((m: { pid: number }) => m.pid);
    const after = epoch.members.map((m: { pid: number }) => m.pid);
    const at5 = after.indexOf(pids[5]);
    expect(after[(at5 + 1) % after.length]).not.toBe(pids[6]);
    expect(rep.restarts).toBe(0);
    expect(rep).toMatchObject({ ok: true, wrong: 0 });
    expect(rep.stateDigest).toBe(clean.stateDigest);
  });
});
